//! Google OAuth 2.0 for connecting a creator's YouTube account: authorization-code flow with
//! PKCE (S256), `access_type=offline` for a refresh token, refresh, and revoke. Built on the
//! `oauth2` crate (default features off, so it does not bring a second reqwest) with a small
//! adapter that sends its requests through this crate's reqwest 0.13 client. Endpoints come from
//! the configured `accounts_base` / `oauth_base`, so the simulator can stand in for Google.

use std::fmt;
use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use serde::Serialize;

use crate::YoutubeError;
use crate::client::{YoutubeClient, endpoint};

/// The scope that covers `thumbnails.set` and `videos.update`.
pub const SCOPE_YOUTUBE_FORCE_SSL: &str = "https://www.googleapis.com/auth/youtube.force-ssl";

/// The scope that covers the Reporting API's non-monetary reports (reach: thumbnail impressions
/// and click-through rate).
pub const SCOPE_YT_ANALYTICS_READONLY: &str = "https://www.googleapis.com/auth/yt-analytics.readonly";

/// What an A/B test connection asks for: edits (swaps) and the owner's reach reports. Google
/// lets the user grant either alone; the granted ones are in the token response.
pub const AB_TEST_SCOPES: [&str; 2] = [SCOPE_YOUTUBE_FORCE_SSL, SCOPE_YT_ANALYTICS_READONLY];

type GoogleOAuth = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The app's OAuth registration.
#[derive(Clone)]
pub struct OAuthConfig {
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Where Google sends the user back (tubewatch's callback URL).
    pub redirect_uri: String,
    pub scopes: Vec<String>,
}

impl fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Where to send the user, and what to keep (in their session) until they come back.
#[derive(Clone, Serialize)]
pub struct AuthorizationRequest {
    pub url: String,
    /// Compare with the `state` query parameter of the callback (CSRF protection).
    pub state: String,
    /// Needed to exchange the code; keep it server-side.
    pub pkce_verifier: String,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest").field("url", &self.url).finish_non_exhaustive()
    }
}

/// Tokens from the token endpoint. A refresh returns no new refresh token.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<Duration>,
    pub scopes: Vec<String>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// An OAuth client bound to one app registration and this crate's HTTP client.
#[derive(Clone)]
pub struct OAuthClient {
    inner: GoogleOAuth,
    http: reqwest::Client,
    revoke_url: url::Url,
    scopes: Vec<String>,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient").field("scopes", &self.scopes).finish_non_exhaustive()
    }
}

fn config_error(what: &str, e: impl fmt::Display) -> YoutubeError {
    YoutubeError::Http { status: None, message: format!("OAuth configuration: {what}: {e}") }
}

impl YoutubeClient {
    /// An OAuth client using the configured Google account and token hosts.
    pub fn oauth(&self, config: &OAuthConfig) -> Result<OAuthClient, YoutubeError> {
        let auth = endpoint(&self.config.accounts_base, "/o/oauth2/v2/auth");
        let token = endpoint(&self.config.oauth_base, "/token");
        let revoke = endpoint(&self.config.oauth_base, "/revoke");
        let mut inner = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(auth))
            .set_token_uri(TokenUrl::from_url(token))
            .set_redirect_uri(
                RedirectUrl::new(config.redirect_uri.clone()).map_err(|e| config_error("redirect_uri", e))?,
            )
            // Google documents client credentials in the form body.
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = &config.client_secret {
            inner = inner.set_client_secret(ClientSecret::new(secret.clone()));
        }
        Ok(OAuthClient { inner, http: self.http.clone(), revoke_url: revoke, scopes: config.scopes.clone() })
    }
}

/// Sends oauth2's requests with reqwest 0.13. Token requests are not retried: an authorization
/// code is single-use, and the caller decides about refresh retries.
async fn send(http: reqwest::Client, request: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let request = reqwest::Request::try_from(request)?;
    let response = http.execute(request).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    let mut out = HttpResponse::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

fn token_error(e: RequestTokenError<reqwest::Error, oauth2::basic::BasicErrorResponse>) -> YoutubeError {
    match e {
        RequestTokenError::ServerResponse(err) => {
            let detail =
                format!("{}{}", err.error(), err.error_description().map(|d| format!(": {d}")).unwrap_or_default());
            match err.error() {
                // A revoked or expired refresh token (7 days for apps in "Testing"): reconnect.
                BasicErrorResponseType::InvalidGrant
                | BasicErrorResponseType::InvalidClient
                | BasicErrorResponseType::UnauthorizedClient => YoutubeError::Unauthorized(detail),
                _ => YoutubeError::Http { status: Some(400), message: detail },
            }
        }
        RequestTokenError::Request(e) if e.is_timeout() => YoutubeError::Timeout("OAuth token endpoint".into()),
        RequestTokenError::Request(e) => {
            YoutubeError::Http { status: None, message: format!("OAuth token endpoint: {e}") }
        }
        RequestTokenError::Parse(e, _) => YoutubeError::malformed(format!("OAuth token response: {e}")),
        RequestTokenError::Other(s) => {
            YoutubeError::Http { status: None, message: format!("OAuth token endpoint: {s}") }
        }
    }
}

fn token_set(token: &oauth2::basic::BasicTokenResponse) -> TokenSet {
    TokenSet {
        access_token: token.access_token().secret().clone(),
        refresh_token: token.refresh_token().map(|t| t.secret().clone()),
        expires_in: token.expires_in(),
        scopes: token.scopes().map(|s| s.iter().map(|x| x.to_string()).collect()).unwrap_or_default(),
    }
}

impl OAuthClient {
    /// The consent-screen URL with a fresh state and PKCE (S256) challenge, asking for offline
    /// access (a refresh token) and forcing the consent prompt so one is always issued.
    pub fn authorize_url(&self) -> AuthorizationRequest {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self.inner.authorize_url(CsrfToken::new_random);
        for scope in &self.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state) = request
            .set_pkce_challenge(challenge)
            .add_extra_param("access_type", "offline")
            // Scopes granted before (e.g. to a connection made without reach data) stay granted.
            .add_extra_param("include_granted_scopes", "true")
            .add_extra_param("prompt", "consent")
            .url();
        AuthorizationRequest {
            url: url.to_string(),
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Exchanges the callback's `code` (with the PKCE verifier kept from [`Self::authorize_url`]).
    pub async fn exchange_code(&self, code: &str, pkce_verifier: &str) -> Result<TokenSet, YoutubeError> {
        let http = self.http.clone();
        let adapter = move |req: HttpRequest| send(http.clone(), req);
        let token = self
            .inner
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&adapter)
            .await
            .map_err(token_error)?;
        let mut set = token_set(&token);
        // RFC 6749 §5.1: a response without `scope` grants exactly what was asked.
        if set.scopes.is_empty() {
            set.scopes = self.scopes.clone();
        }
        Ok(set)
    }

    /// A new access token from a refresh token. The refresh token stays the same.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, YoutubeError> {
        let http = self.http.clone();
        let adapter = move |req: HttpRequest| send(http.clone(), req);
        let refresh = RefreshToken::new(refresh_token.to_owned());
        let token = self.inner.exchange_refresh_token(&refresh).request_async(&adapter).await.map_err(token_error)?;
        let mut set = token_set(&token);
        if set.refresh_token.is_none() {
            set.refresh_token = Some(refresh_token.to_owned());
        }
        Ok(set)
    }

    /// Revokes a refresh token (and with it the grant). A token Google no longer knows counts as
    /// revoked, so disconnecting twice is not an error.
    ///
    /// Sent directly rather than through `oauth2`: that crate insists on an HTTPS revocation URL
    /// (RFC 7009), which would rule out the simulator on plain HTTP, and Google's revoke is a
    /// one-field form POST.
    pub async fn revoke(&self, refresh_token: &str) -> Result<(), YoutubeError> {
        let response =
            self.http.post(self.revoke_url.clone()).form(&[("token", refresh_token)]).send().await.map_err(|e| {
                if e.is_timeout() {
                    YoutubeError::Timeout("OAuth revoke endpoint".into())
                } else {
                    YoutubeError::Http { status: None, message: format!("OAuth revoke endpoint: {e}") }
                }
            })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = response.bytes().await.unwrap_or_default();
        let error = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(serde_json::Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        match (status, error.as_str()) {
            (400, "invalid_token") => Ok(()),
            (429, _) => Err(YoutubeError::RateLimited { detail: "OAuth revoke".into(), retry_after: None }),
            _ => Err(YoutubeError::Http { status: Some(status), message: format!("OAuth revoke failed: {error}") }),
        }
    }
}
