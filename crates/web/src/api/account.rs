//! Accounts over the API: sign-up with email verification, log-in (throttled per account and per
//! client address), password reset by mail, log-out, the caller's account and usage, password
//! change, and API tokens.
//!
//! No answer says whether an email is registered. Log-in: an unknown email and a wrong password
//! get the same answer after the same argon2 work, and an unconfirmed account is named as such
//! only to someone who gave its password. Sign-up, verification re-sends and reset requests
//! answer 202 with the same body whatever the email, after the same password hashing, and send
//! their mail (a link, or "you already have an account") after answering.
//!
//! Mailed links (verification, reset) carry a 256-bit token kept only as its SHA-256, usable once
//! until it expires, built on the configured public origin (never on the request's `Host`).

use std::net::IpAddr;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_core::Email;
use tubewatch_store::{ApiToken, NewApiToken, NewUser, Plan, StoreError, TokenScope, User};
use utoipa::ToSchema;

use super::Usage;
use crate::auth::{self, AuthMethod, CurrentUser};
use crate::error::{ApiError, ErrorBody};
use crate::{ApiJson, AppState};

/// The client's address (the connection's, or a trusted proxy's report of it), for per-address
/// throttling.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(auth::client_ip(&parts.headers, &parts.extensions, &state.config.http.trusted_proxies)))
    }
}

impl ClientIp {
    /// The throttling key: IPv6 clients count per /64.
    pub fn key(&self, purpose: &str) -> String {
        match self.0 {
            Some(ip) => format!("{purpose}:ip:{}", auth::throttle_key(ip)),
            None => format!("{purpose}:ip:unknown"),
        }
    }
}

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

fn invalid_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong email or password")
}

/// Opens a session for `user` and answers with its cookies.
async fn start_session(state: &AppState, user: &User, status: StatusCode) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let accounts = &state.config.accounts;
    let expires_at = now + Duration::days(i64::from(accounts.session_days));
    let token = auth::random_secret();
    state.store.create_session(user.id, &auth::hash_token(&token), now, expires_at).await?;
    let csrf = auth::csrf_token(&token);
    let max_age = cookie::time::Duration::days(i64::from(accounts.session_days));
    let secure = accounts.cookie_secure;
    // Lax, not Strict: a user following a link from the weekly digest, or coming back from
    // Google's consent screen, arrives signed in. Cross-site POSTs are refused by the Origin check
    // and the CSRF token.
    let session_cookie = cookie::Cookie::build((auth::session_cookie(secure), token))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(cookie::SameSite::Lax)
        .max_age(max_age)
        .build();
    let csrf_cookie = cookie::Cookie::build((auth::csrf_cookie(secure), csrf.clone()))
        .path("/")
        .secure(secure)
        .same_site(cookie::SameSite::Lax)
        .max_age(max_age)
        .build();
    let body = SessionView { user: user.into(), csrf_token: csrf, expires_at };
    let mut response = (status, Json(body)).into_response();
    for c in [session_cookie, csrf_cookie] {
        let value = HeaderValue::from_str(&c.to_string()).map_err(ApiError::internal)?;
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// How long a mailed verification link works.
pub const VERIFY_VALID_HOURS: i64 = 24;
/// Account mails (verification links, "you already have an account") per address within an hour.
/// Beyond that nothing is mailed, but the answer stays the same, so it tells nothing.
const ACCOUNT_MAILS_PER_EMAIL_PER_HOUR: u32 = 3;

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

/// Counts one account mail to `email` and says whether it may be sent (at most
/// `ACCOUNT_MAILS_PER_EMAIL_PER_HOUR` an hour). Never an error the caller sees: a refusal here
/// would tell that the address had mail coming.
async fn account_mail_allowed(state: &AppState, email: &Email) -> Result<bool, ApiError> {
    let key = format!("account-mail:acct:{}", email.as_str());
    let now = state.clock.now();
    state.store.record_login_failure(&[&key], now).await?;
    let sent = state.store.login_failures_since(&key, now - Duration::hours(1)).await?;
    Ok(sent <= u64::from(ACCOUNT_MAILS_PER_EMAIL_PER_HOUR))
}

/// Sends `mail` in the background, so that the answer goes out first and its timing does not tell
/// whether there was anything to send.
fn send_after_answering(state: &AppState, mail: tubewatch_worker::Mail) {
    let mailer = state.tracker.config.mailer.clone();
    tokio::spawn(async move {
        if let Err(e) = mailer.send(&mail).await {
            tracing::error!(error = %e, "account mail {} not sent: {e:#}", mail.key);
        }
    });
}

/// The configured public origin for links in mail (empty: links are relative).
fn public_origin(state: &AppState) -> &str {
    state.config.http.public_origin.as_deref().unwrap_or("")
}

/// A new verification link for `user`: stored by its hash, and the mail that carries it.
async fn verification_mail(state: &AppState, user: &User) -> Result<tubewatch_worker::Mail, ApiError> {
    let token = auth::random_secret();
    let now = state.clock.now();
    let expires_at = now + Duration::hours(VERIFY_VALID_HOURS);
    state.store.create_email_verification(user.id, &auth::hash_token(&token), now, expires_at).await?;
    let link = format!("{}/verify-email?token={token}", public_origin(state));
    let text = format!(
        "Welcome to tubewatch.\n\n\
         Open this link within {VERIFY_VALID_HOURS} hours to confirm your email and log in:\n{link}\n\n\
         If you did not sign up, ignore this mail: no account is opened without this link.\n"
    );
    let html = format!(
        "<p>Welcome to tubewatch.</p>\
         <p><a href=\"{link}\">Confirm your email</a> within {VERIFY_VALID_HOURS} hours to log in.</p>\
         <p>If you did not sign up, ignore this mail: no account is opened without this link.</p>"
    );
    Ok(tubewatch_worker::Mail {
        key: format!("verify-email-{}-{}", user.id, &token[..12]),
        to: user.email.to_string(),
        subject: "Confirm your email for tubewatch".into(),
        text,
        html,
        images: Vec::new(),
        unsubscribe_url: None,
    })
}

/// The mail to the owner of an address someone tried to sign up with again.
fn already_registered_mail(state: &AppState, user: &User) -> tubewatch_worker::Mail {
    let origin = public_origin(state);
    let (login, forgot) = (format!("{origin}/login"), format!("{origin}/forgot-password"));
    let text = format!(
        "Someone, maybe you, tried to sign up to tubewatch with this address.\n\n\
         You already have an account. Log in at {login}\n\
         or, if you forgot your password, choose a new one at {forgot}\n\
         (which also confirms this address if you never did).\n\n\
         If it was not you, ignore this mail: nothing changed.\n"
    );
    let html = format!(
        "<p>Someone, maybe you, tried to sign up to tubewatch with this address.</p>\
         <p>You already have an account: <a href=\"{login}\">log in</a>, or \
         <a href=\"{forgot}\">choose a new password</a> if you forgot it (which also confirms this \
         address if you never did).</p>\
         <p>If it was not you, ignore this mail: nothing changed.</p>"
    );
    let nonce = auth::random_secret();
    tubewatch_worker::Mail {
        key: format!("signup-again-{}-{}", user.id, &nonce[..12]),
        to: user.email.to_string(),
        subject: "You already have a tubewatch account".into(),
        text,
        html,
        images: Vec::new(),
        unsubscribe_url: None,
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
    let accounts = &state.config.accounts;
    let now = state.clock.now();
    let window = Duration::minutes(i64::from(accounts.login_window_minutes));
    let ip_key = ip.key("signup");
    let email =
        Email::parse(&body.email).map_err(|_| ApiError::bad_request("bad_email", "not a valid email address"))?;
    auth::validate_password(&body.password)?;
    // Every attempt counts against the address, so sign-up cannot be used to probe many emails.
    auth::throttle(&state, &ip_key, accounts.signups_per_ip, window).await?;
    // The password is hashed for a taken email too, so that both take the same time.
    let password_hash = auth::hash_password(body.password).await?;
    let verify = accounts.verify_email;
    // Accounts opened while verification is off count as verified: turning it on later (say, by
    // configuring SMTP) must not lock them out.
    let new =
        NewUser { email: email.clone(), password_hash, plan: Plan::Free, is_admin: false, email_verified: !verify };
    let mail = match state.store.create_user(&new, now).await {
        Ok(user) => {
            tracing::info!(user_id = %user.id, "account created for user {}", user.id);
            let allowed = account_mail_allowed(&state, &email).await?;
            if verify && allowed { Some(verification_mail(&state, &user).await?) } else { None }
        }
        Err(StoreError::Conflict(_)) => {
            let owner = state.store.user_by_email(&email).await?;
            let allowed = account_mail_allowed(&state, &email).await?;
            if let Some(owner) = &owner {
                tracing::info!(user_id = %owner.id, "sign-up with the email of user {}; owner told by mail", owner.id);
            }
            owner.filter(|_| allowed).map(|owner| already_registered_mail(&state, &owner))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(mail) = mail {
        send_after_answering(&state, mail);
    }
    Ok((StatusCode::ACCEPTED, Json(SignupAccepted::new(verify))))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyEmail {
    /// The token from the mailed link.
    pub token: String,
}

fn invalid_verification_token() -> ApiError {
    ApiError::bad_request("invalid_verification_token", "this confirmation link is unknown, used or expired")
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
    let token = body.token.trim();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid_verification_token());
    }
    match state.store.verify_email(&auth::hash_token(token), state.clock.now()).await? {
        Some(user) => {
            tracing::info!(user_id = %user.id, "email of user {} confirmed", user.id);
            start_session(&state, &user, StatusCode::OK).await
        }
        None => Err(invalid_verification_token()),
    }
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
    let accounts = &state.config.accounts;
    let email =
        Email::parse(&body.email).map_err(|_| ApiError::bad_request("bad_email", "not a valid email address"))?;
    let window = Duration::minutes(i64::from(accounts.login_window_minutes));
    auth::throttle(&state, &ip.key("verify-resend"), accounts.signups_per_ip, window).await?;
    let allowed = account_mail_allowed(&state, &email).await?;
    let user = state.store.user_by_email(&email).await?;
    if let Some(user) = user.filter(|u| accounts.verify_email && !u.email_verified() && allowed) {
        let mail = verification_mail(&state, &user).await?;
        send_after_answering(&state, mail);
        tracing::info!(user_id = %user.id, "verification link mailed again to user {}", user.id);
    }
    Ok(StatusCode::ACCEPTED)
}

/// 403 `email_unverified`: the right password for an account whose email is not confirmed.
fn email_unverified() -> ApiError {
    ApiError::forbidden(
        "email_unverified",
        "confirm your email first: follow the link we mailed you, or ask for a new one",
    )
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
    let accounts = &state.config.accounts;
    let now = state.clock.now();
    let window = Duration::minutes(i64::from(accounts.login_window_minutes));
    let window_start = now - window;
    let email = Email::parse(&body.email).ok();
    let account_key = format!("login:acct:{}", email.as_ref().map_or("invalid", |e| e.as_str()));
    let ip_key = ip.key("login");
    if state.store.login_failures_since(&ip_key, window_start).await? >= u64::from(accounts.login_max_failures_per_ip) {
        tracing::warn!(ip = ?ip.0, "log-in throttled (address)");
        return Err(auth::too_many_attempts(window));
    }
    // The attempt is counted before the password is checked, and forgotten only if it succeeds:
    // of any number of parallel attempts, at most `login_max_failures_per_account` reach argon2.
    auth::throttle(&state, &account_key, accounts.login_max_failures_per_account, window).await?;
    let user = match &email {
        Some(email) => state.store.user_by_email(email).await?,
        None => None,
    };
    let password = if body.password.chars().count() > auth::MAX_PASSWORD_CHARS { String::new() } else { body.password };
    let valid = auth::verify_password(password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    match user.filter(|_| valid) {
        Some(user) => {
            state.store.clear_login_failures(&account_key, window_start).await?;
            // Said only after the password was checked: to anyone else an unconfirmed account
            // looks like any other.
            if accounts.verify_email && !user.email_verified() {
                tracing::info!(user_id = %user.id, "log-in of user {} refused: email not confirmed", user.id);
                return Err(email_unverified());
            }
            tracing::info!(user_id = %user.id, "user {} logged in", user.id);
            start_session(&state, &user, StatusCode::OK).await
        }
        None => {
            state.store.record_login_failure(&[&ip_key], now).await?;
            Err(invalid_credentials())
        }
    }
}

/// How long a mailed password reset link works.
pub const RESET_VALID_MINUTES: i64 = 60;
/// Reset mails per address within an hour.
const RESETS_PER_EMAIL_PER_HOUR: u32 = 3;

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
    let accounts = &state.config.accounts;
    let email =
        Email::parse(&body.email).map_err(|_| ApiError::bad_request("bad_email", "not a valid email address"))?;
    let window = Duration::minutes(i64::from(accounts.login_window_minutes));
    auth::throttle(&state, &ip.key("reset"), accounts.signups_per_ip, window).await?;
    let per_email = format!("reset:acct:{}", email.as_str());
    auth::throttle(&state, &per_email, RESETS_PER_EMAIL_PER_HOUR, Duration::hours(1)).await?;
    if let Some(user) = state.store.user_by_email(&email).await? {
        let token = auth::random_secret();
        let now = state.clock.now();
        let expires_at = now + Duration::minutes(RESET_VALID_MINUTES);
        state.store.create_password_reset(user.id, &auth::hash_token(&token), now, expires_at).await?;
        send_after_answering(&state, reset_mail(&state, &user, &token));
        tracing::info!(user_id = %user.id, "password reset mailed to user {}", user.id);
    }
    Ok(StatusCode::ACCEPTED)
}

/// The reset mail. Its link is built on the configured public origin, never on the request's
/// `Host` (which a requester chooses).
fn reset_mail(state: &AppState, user: &User, token: &str) -> tubewatch_worker::Mail {
    let link = format!("{}/reset-password?token={token}", public_origin(state));
    let text = format!(
        "Someone asked to reset the password of your tubewatch account.\n\n\
         Open this link within {RESET_VALID_MINUTES} minutes to choose a new one:\n{link}\n\n\
         Or enter this code on the reset page:\n{token}\n\n\
         If it was not you, ignore this mail: your password stays as it is.\n"
    );
    let html = format!(
        "<p>Someone asked to reset the password of your tubewatch account.</p>\
         <p><a href=\"{link}\">Choose a new password</a> within {RESET_VALID_MINUTES} minutes.</p>\
         <p>If it was not you, ignore this mail: your password stays as it is.</p>"
    );
    tubewatch_worker::Mail {
        key: format!("password-reset-{}-{}", user.id, &token[..12]),
        to: user.email.to_string(),
        subject: "Reset your tubewatch password".into(),
        text,
        html,
        images: Vec::new(),
        unsubscribe_url: None,
    }
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
    auth::validate_password(&body.new_password)?;
    let invalid = || ApiError::bad_request("invalid_reset_token", "this reset link is unknown, used or expired");
    let token = body.token.trim();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let hash = auth::hash_password(body.new_password).await?;
    match state.store.reset_password(&auth::hash_token(token), &hash, state.clock.now()).await? {
        Some(user) => {
            tracing::info!(user_id = %user, "password of user {user} reset by mail");
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(invalid()),
    }
}

/// Ends the current session (server-side) and clears the cookies. With an API token it does
/// nothing: revoke the token instead.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts",
    security(("session" = []), ("bearer" = [])),
    responses((status = 204, description = "Logged out"), (status = 401, description = "Not logged in", body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, caller: CurrentUser) -> Result<Response, ApiError> {
    if let AuthMethod::Session { token_hash } = &caller.via {
        state.store.revoke_session(token_hash, state.clock.now()).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let secure = state.config.accounts.cookie_secure;
    for name in [auth::session_cookie(secure), auth::csrf_cookie(secure)] {
        let gone =
            cookie::Cookie::build((name, "")).path("/").secure(secure).max_age(cookie::time::Duration::ZERO).build();
        let value = HeaderValue::from_str(&gone.to_string()).map_err(ApiError::internal)?;
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
    auth::validate_password(&body.new_password)?;
    if !auth::verify_password(body.current_password, Some(caller.user.password_hash.clone())).await? {
        return Err(ApiError::forbidden("wrong_password", "the current password is wrong"));
    }
    let hash = auth::hash_password(body.new_password).await?;
    let keep = match &caller.via {
        AuthMethod::Session { token_hash } => Some(token_hash.as_str()),
        AuthMethod::ApiToken { .. } => None,
    };
    state.store.change_password(caller.user.id, &hash, keep, state.clock.now()).await?;
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

/// How long a token lives when its creator does not say, and at most.
pub const TOKEN_DEFAULT_DAYS: u32 = 90;
pub const TOKEN_MAX_DAYS: u32 = 365;

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
    let items = state.store.api_tokens(caller.user.id).await?.into_iter().map(TokenView::from).collect();
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
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request("bad_input", "name must be 1 to 100 printable characters"));
    }
    let scope = match body.scope.as_deref() {
        None => TokenScope::Read,
        Some(s) => TokenScope::parse(s).ok_or_else(|| ApiError::bad_request("bad_input", "scope is read or write"))?,
    };
    let days = body.expires_in_days.unwrap_or(TOKEN_DEFAULT_DAYS);
    if !(1..=TOKEN_MAX_DAYS).contains(&days) {
        return Err(ApiError::bad_request("bad_input", format!("expires_in_days is 1 to {TOKEN_MAX_DAYS}")));
    }
    let token = auth::new_api_token();
    let prefix: String = token.chars().take(auth::TOKEN_PREFIX.len() + 6).collect();
    let now = state.clock.now();
    let new = NewApiToken {
        name,
        token_hash: &auth::hash_token(&token),
        prefix: &prefix,
        scope,
        expires_at: now + Duration::days(i64::from(days)),
    };
    let stored = state.store.create_api_token(caller.user.id, &new, now).await?;
    tracing::info!(user_id = %caller.user.id, token_id = stored.id, "API token {} created", stored.id);
    Ok((StatusCode::CREATED, Json(CreatedToken { token, info: stored.into() })))
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
    if state.store.revoke_api_token(caller.user.id, token_id, state.clock.now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("token"))
    }
}
