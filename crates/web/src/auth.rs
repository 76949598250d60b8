//! Who is calling: the `CurrentUser` extractor (a session cookie or an `Authorization: Bearer`
//! API token), CSRF protection for cookie-authenticated state changes, and the secrets behind
//! them (password hashing with argon2id, random tokens stored only as SHA-256 hashes).
//!
//! Any handler — JSON API or HTML page — that takes a `CurrentUser` is authenticated, and if it
//! changes state (any method but GET/HEAD/OPTIONS) under a session cookie it is CSRF-checked too:
//! the request must carry `X-CSRF-Token` equal to the session's CSRF token (returned at log-in and
//! set in the readable `tw_csrf` cookie: the double-submit pattern). Bearer requests are exempt:
//! browsers never attach them on their own. Take `Option<CurrentUser>` for pages that also serve
//! anonymous visitors.

use std::net::{IpAddr, SocketAddr};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tubewatch_store::User;

use crate::AppState;
use crate::config::PlanLimits;
use crate::error::ApiError;

/// The session cookie (HttpOnly).
pub const SESSION_COOKIE: &str = "tw_session";
/// The CSRF cookie, readable by the page's scripts so they can echo it in `X-CSRF-Token`.
pub const CSRF_COOKIE: &str = "tw_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// API tokens start with this, so that leaked ones are recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "tw_";
/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longer passwords are refused too: argon2 would hash megabytes of input.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// A browser session; `token_hash` identifies it in the store.
    Session { token_hash: String },
    /// An API token (by its id).
    ApiToken { token_id: i64 },
}

/// The authenticated caller. Extracting it fails with 401 (no or bad credentials) or 403
/// (`csrf_failed`: a cookie-authenticated state change without the CSRF token).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub via: AuthMethod,
}

impl CurrentUser {
    /// The limits of the caller's plan (admins: unlimited).
    pub fn limits<'a>(&self, state: &'a AppState) -> &'a PlanLimits {
        state.config.accounts.plans.for_user(&self.user)
    }

    /// Refuses callers whose plan has no A/B tests: 402 `plan_feature_unavailable`.
    pub fn require_ab_tests(&self, state: &AppState) -> Result<(), ApiError> {
        if self.limits(state).ab_tests {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "plan_feature_unavailable",
                "A/B tests need the premium plan",
            )
            .with("plan", self.user.plan.as_str()))
        }
    }

    /// Refuses non-admins: 403 `admin_only`.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.user.is_admin { Ok(()) } else { Err(ApiError::forbidden("admin_only", "administrators only")) }
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        <Self as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await?
            .ok_or_else(ApiError::unauthenticated)
    }
}

impl OptionalFromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    /// `Ok(None)` when the request carries no credentials at all; credentials that are present
    /// but wrong (unknown, revoked, expired) are an error, never silently anonymous.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, ApiError> {
        let now = state.clock.now();
        if let Some(authorization) = parts.headers.get(header::AUTHORIZATION) {
            let token = authorization
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| t.starts_with(TOKEN_PREFIX))
                .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", "malformed bearer token"))?;
            let Some((token, user)) = state.store.api_token_user(&hash_token(token), now).await? else {
                return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", "unknown or revoked API token"));
            };
            return Ok(Some(Self { user, via: AuthMethod::ApiToken { token_id: token.id } }));
        }
        let Some(session_token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let token_hash = hash_token(&session_token);
        let Some((_, user)) = state.store.session_user(&token_hash, now).await? else {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "session_expired", "log in again"));
        };
        if !is_safe(&parts.method) {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !constant_time_eq(sent, &csrf_token(&session_token)) {
                return Err(ApiError::forbidden("csrf_failed", "missing or wrong X-CSRF-Token header"));
            }
        }
        Ok(Some(Self { user, via: AuthMethod::Session { token_hash } }))
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// One cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The client's address as the connection reports it (`None` when served without connect info).
pub fn client_ip(parts_extensions: &axum::http::Extensions) -> Option<IpAddr> {
    parts_extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// A fresh high-entropy secret (256 bits from the OS-seeded CSPRNG), hex-encoded.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A new API token as shown (once) to its owner.
pub fn new_api_token() -> String {
    format!("{TOKEN_PREFIX}{}", random_secret())
}

/// How sessions and API tokens are stored: SHA-256 is right for high-entropy random tokens
/// (nothing to brute-force), and lets a request be authenticated by one indexed lookup.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The CSRF token bound to a session: derived from the (HttpOnly) session token, so it needs no
/// storage and cannot be computed by a page that cannot read the session cookie.
pub fn csrf_token(session_token: &str) -> String {
    hex::encode(Sha256::digest(format!("tubewatch-csrf:{session_token}").as_bytes()))
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Checks a new password's length (characters, not bytes).
pub fn validate_password(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ApiError::bad_request(
            "weak_password",
            format!("passwords need at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::bad_request(
            "weak_password",
            format!("passwords may have at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Hashes a password with argon2id (default parameters, random salt) into a PHC string. Runs on
/// the blocking pool: argon2 is deliberately slow.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password_blocking(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// The synchronous form, for the CLI.
pub fn hash_password_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default().hash_password(password.as_bytes())?.to_string())
}

/// Verifies a password against a PHC string. With `None` (unknown account) it verifies against a
/// fixed hash anyway, so that a log-in for an unknown email takes as long as one for a known one.
pub async fn verify_password(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let phc = phc.as_deref().unwrap_or(DUMMY_HASH);
        let Ok(parsed) = PasswordHash::new(phc) else { return false };
        let valid = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        valid && phc != DUMMY_HASH
    })
    .await
    .unwrap_or(false)
}

/// An argon2id hash (default parameters) of a random string nobody knows.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1hJ3mJ4HnQ3zRZ0Wc9fXyq0kW2iKJb8z3aX5mYxk0sY";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn passwords_hash_with_argon2id_and_verify() {
        let phc = hash_password("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify_password("correct horse battery".into(), Some(phc.clone())).await);
        assert!(!verify_password("wrong horse battery".into(), Some(phc)).await);
        assert!(!verify_password("anything at all".into(), None).await);
        // The dummy hash is a well-formed argon2id hash, so unknown accounts cost a full verify.
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_api_token(), new_api_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), a);
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd") && !constant_time_eq("abc", "ab"));
    }

    #[test]
    fn password_length_is_checked_in_characters() {
        assert!(validate_password("short").is_err());
        assert!(validate_password("ééééééééé").is_err());
        assert!(validate_password("éééééééééé").is_ok());
        assert!(validate_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
    }
}
