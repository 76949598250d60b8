//! Accounts over the API: sign-up with email verification, log-in (throttled per account and per
//! client address), password reset by mail, log-out, the caller's account and usage, password
//! change, and API tokens. The use cases are `crate::accounts`' and the worker's `Service`'s,
//! shared with the pages; here they are answered as JSON.
//!
//! No answer says whether an email is registered: sign-up, verification re-sends and reset
//! requests answer 202 with the same body whatever the email (see `crate::accounts`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_store::{ApiToken, User};
use tubewatch_worker::service::TokenRequest;
use utoipa::ToSchema;

use super::Usage;
use crate::auth::{self, CurrentUser};
use crate::error::{ApiError, ErrorBody};
use crate::{ApiJson, AppState, accounts};

pub use crate::accounts::ClientIp;

#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub plan: String,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.get(),
            email: u.email.to_string(),
            plan: u.plan.as_str().to_owned(),
            is_admin: u.is_admin,
            created_at: u.created_at,
        }
    }
}

/// A new session: the session cookie is set on the response; `csrf_token` must be sent back in
/// `X-CSRF-Token` on state-changing requests made with the cookie.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub user: UserView,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    pub user: UserView,
    pub usage: Usage,
}

/// Opens a session for `user` and answers with its cookies.
async fn start_session(state: &AppState, user: User, status: StatusCode) -> Result<Response, ApiError> {
    let session = accounts::open_session(state, user).await?;
    let cookies = session.cookies(state)?;
    let body =
        SessionView { user: (&session.user).into(), csrf_token: session.csrf_token, expires_at: session.expires_at };
    let mut response = (status, Json(body)).into_response();
    for value in cookies {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// The answer to a sign-up: the same, byte for byte, whether the email was new or taken.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignupAccepted {
    /// What to do next when the email was new: `verify_email` (follow the link mailed to it, then
    /// you are logged in) or `log_in` (this server does not verify emails; log in). When the email
    /// already had an account, its owner is mailed instead, and nothing else changes.
    pub next: String,
    pub message: String,
}

impl SignupAccepted {
    fn new(verify_email: bool) -> Self {
        let (next, message) = if verify_email {
            ("verify_email", "Check your mail: we sent a message to this address with what to do next.")
        } else {
            ("log_in", "If this email had no account, it has one now: log in with the password you chose.")
        };
        Self { next: next.to_owned(), message: message.to_owned() }
    }
}

/// Opens an account on the free plan, or tells the owner of a taken email by mail; the answer is
/// the same either way. With email verification on (see `accounts.verify_email`), a new account
/// cannot log in until the link mailed to it (valid 24 hours, usable once) is followed.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "accounts", request_body = Credentials,
    responses(
        (status = 202, description = "Accepted, whether the email was new (an account is opened and, with \
            verification on, a link mailed) or taken (its owner is mailed); the same body for both", body = SignupAccepted),
        (status = 400, description = "`bad_email` or `weak_password`", body = ErrorBody),
        (status = 429, description = "Too many sign-ups from this address", body = ErrorBody)))]
pub async fn signup(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<SignupAccepted>), ApiError> {
    accounts::signup(&state, ip, &body.email, body.password).await?;
    Ok((StatusCode::ACCEPTED, Json(SignupAccepted::new(state.config.accounts.verify_email))))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyEmail {
    /// The token from the mailed link.
    pub token: String,
}

/// Confirms an email with the token from the mailed link and logs its account in. A `POST`, never
/// a `GET`: mail scanners and link previews fetch links, and must not use them up.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "accounts", request_body = VerifyEmail,
    responses(
        (status = 200, description = "Confirmed; logged in, session cookie set", body = SessionView),
        (status = 400, description = "`invalid_verification_token` (unknown, used or expired)", body = ErrorBody)))]
pub async fn verify_email(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<VerifyEmail>,
) -> Result<Response, ApiError> {
    let user = accounts::verify_email(&state, &body.token).await?;
    start_session(&state, user, StatusCode::OK).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResendVerification {
    pub email: String,
}

/// Mails a new verification link (valid 24 hours) when the email has an account that is not
/// confirmed yet. The answer is the same whatever the email, and the mail goes after it.
#[utoipa::path(post, path = "/api/v1/auth/verify-email/resend", tag = "accounts", request_body = ResendVerification,
    responses(
        (status = 202, description = "A link was mailed if the email has an unconfirmed account"),
        (status = 400, description = "`bad_email`", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody)))]
pub async fn resend_verification(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<ResendVerification>,
) -> Result<StatusCode, ApiError> {
    accounts::resend_verification(&state, ip, &body.email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Logs in with email and password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = Credentials,
    responses(
        (status = 200, description = "Logged in; session cookie set", body = SessionView),
        (status = 401, description = "Wrong email or password (the same answer for both)", body = ErrorBody),
        (status = 403, description = "`email_unverified`: the password is right but the email is not confirmed \
            yet (follow the mailed link, or POST /api/v1/auth/verify-email/resend)", body = ErrorBody),
        (status = 429, description = "Too many failed attempts for this account or address", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let user = accounts::login(&state, ip, &body.email, body.password).await?;
    start_session(&state, user, StatusCode::OK).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetConfirm {
    /// The token from the mailed link.
    pub token: String,
    pub new_password: String,
}

/// Mails a password reset link (valid for an hour, usable once) when the email has an account.
/// The answer is the same whether or not it has one, and the mail is sent after answering, so
/// neither the answer nor its timing tells.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "accounts", request_body = ResetRequest,
    responses(
        (status = 202, description = "A link was mailed if the email has an account"),
        (status = 400, description = "`bad_email`", body = ErrorBody),
        (status = 429, description = "Too many resets for this address or email", body = ErrorBody)))]
pub async fn request_reset(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    accounts::request_reset(&state, ip, &body.email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Sets a new password with a mailed reset token; every session and API token of the account is
/// revoked.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "accounts", request_body = ResetConfirm,
    responses(
        (status = 204, description = "The password is changed; log in with it"),
        (status = 400, description = "`invalid_reset_token` (unknown, used or expired) or `weak_password`", body = ErrorBody)))]
pub async fn confirm_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetConfirm>,
) -> Result<StatusCode, ApiError> {
    accounts::confirm_reset(&state, &body.token, body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends the current session (server-side) and clears the cookies. With an API token it does
/// nothing: revoke the token instead.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts",
    security(("session" = []), ("bearer" = [])),
    responses((status = 204, description = "Logged out"), (status = 401, description = "Not logged in", body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, caller: CurrentUser) -> Result<Response, ApiError> {
    let cleared = accounts::logout(&state, &caller).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    for value in cleared {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// The caller's account, plan and usage against its limits.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, caller: CurrentUser) -> Result<Json<MeView>, ApiError> {
    Ok(Json(MeView { user: (&caller.user).into(), usage: Usage::of(&state, &caller.user).await? }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Changes the password; every other session of the user and every API token is revoked.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "accounts", request_body = PasswordChange,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "Weak new password", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Wrong current password", body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    auth::change_password(&state, &caller, body.current_password, body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    /// The token's first characters.
    pub prefix: String,
    /// `read` (GET only) or `write`.
    pub scope: String,
    pub created_at: DateTime<Utc>,
    /// `null` only for tokens made before tokens expired.
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            scope: t.scope.as_str().to_owned(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenView>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewToken {
    /// A label, 1–100 characters.
    pub name: String,
    /// `read` (the default: GET requests only) or `write`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Days until the token expires: 1 to 365, 90 when not given.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

impl NewToken {
    /// The request as the account service takes it.
    pub fn request(&self) -> TokenRequest<'_> {
        TokenRequest { name: &self.name, scope: self.scope.as_deref(), expires_in_days: self.expires_in_days }
    }
}

/// How long a token lives when its creator does not say, and at most.
pub use tubewatch_worker::service::accounts::{TOKEN_DEFAULT_DAYS, TOKEN_MAX_DAYS};

/// A new token: `token` is shown this once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenView,
}

/// The caller's API tokens (never their values).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "accounts", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(State(state): State<AppState>, caller: CurrentUser) -> Result<Json<TokenList>, ApiError> {
    let items = state.service().api_tokens(caller.user.id).await?.into_iter().map(TokenView::from).collect();
    Ok(Json(TokenList { items }))
}

/// Creates an API token for `Authorization: Bearer`.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "accounts", request_body = NewToken,
    security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let secret = auth::MintedApiToken::new();
    let stored = state.service().create_api_token(caller.user.id, body.request(), secret.minted()).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token: secret.token, info: stored.into() })))
}

/// Revokes one of the caller's tokens at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{token_id}", tag = "accounts",
    params(("token_id" = i64, Path, description = "The token's id")),
    security(("session" = []), ("bearer" = [])),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody),
        (status = 404, description = "No such live token of the caller's", body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(token_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let token_id: i64 = token_id.parse().map_err(|_| ApiError::not_found("token"))?;
    if state.service().revoke_api_token(caller.user.id, token_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("token"))
    }
}
