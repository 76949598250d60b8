//! The account use cases as the HTTP edge runs them, one implementation that the JSON API's
//! handlers and the pages' forms both call: sign-up with email verification, log-in (throttled
//! per account and per client address), password reset by mail, sessions opened and ended. What
//! they keep goes through the worker's `Service`; the edge adds what is its own: password hashing
//! (argon2, through the password gate), minted secrets, session cookies, and the mails' links.
//!
//! No answer says whether an email is registered. Log-in: an unknown email and a wrong password
//! get the same answer after the same argon2 work, and an unconfirmed account is named as such
//! only to someone who gave its password. Sign-up, verification re-sends and reset requests
//! succeed alike whatever the email, after the same password hashing, and send their mail (a
//! link, or "you already have an account") after answering.
//!
//! Mailed links (verification, reset) carry a 256-bit token kept only as its SHA-256, usable once
//! until it expires, built on the configured public origin (never on the request's `Host`).

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use chrono::{DateTime, Duration, Utc};
use tubewatch_core::Email;
use tubewatch_store::{NewUser, Plan, StoreError, User};

use crate::AppState;
use crate::auth::{self, AuthMethod, CurrentUser};
use crate::error::ApiError;

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

/// How long a mailed verification link works.
pub const VERIFY_VALID_HOURS: i64 = 24;
/// Account mails (verification links, "you already have an account") per address within an hour.
/// Beyond that nothing is mailed, but the answer stays the same, so it tells nothing.
const ACCOUNT_MAILS_PER_EMAIL_PER_HOUR: u32 = 3;
/// How long a mailed password reset link works.
pub const RESET_VALID_MINUTES: i64 = 60;
/// Reset mails per address within an hour.
const RESETS_PER_EMAIL_PER_HOUR: u32 = 3;

fn bad_email() -> ApiError {
    ApiError::bad_request("bad_email", "not a valid email address")
}

fn invalid_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong email or password")
}

fn invalid_verification_token() -> ApiError {
    ApiError::bad_request("invalid_verification_token", "this confirmation link is unknown, used or expired")
}

/// 403 `email_unverified`: the right password for an account whose email is not confirmed.
fn email_unverified() -> ApiError {
    ApiError::forbidden(
        "email_unverified",
        "confirm your email first: follow the link we mailed you, or ask for a new one",
    )
}

/// A session just opened: its token goes into the session cookie, and never anywhere else.
#[derive(Debug)]
pub struct OpenedSession {
    pub user: User,
    token: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Opens a session for `user`.
pub async fn open_session(state: &AppState, user: User) -> Result<OpenedSession, ApiError> {
    let token = auth::random_secret();
    let days = state.config.accounts.session_days;
    let expires_at = state.service().open_session(user.id, &auth::hash_token(&token), days).await?;
    Ok(OpenedSession { user, csrf_token: auth::csrf_token(&token), token, expires_at })
}

impl OpenedSession {
    /// The `Set-Cookie` values that hand the session to the browser: the session cookie
    /// (`HttpOnly`) and the CSRF cookie the page script reads.
    pub fn cookies(&self, state: &AppState) -> Result<[HeaderValue; 2], ApiError> {
        let accounts = &state.config.accounts;
        let max_age = cookie::time::Duration::days(i64::from(accounts.session_days));
        let secure = accounts.cookie_secure;
        // Lax, not Strict: a user following a link from the weekly digest, or coming back from
        // Google's consent screen, arrives signed in. Cross-site POSTs are refused by the Origin
        // check and the CSRF token.
        let session_cookie = cookie::Cookie::build((auth::session_cookie(secure), self.token.clone()))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(cookie::SameSite::Lax)
            .max_age(max_age)
            .build();
        let csrf_cookie = cookie::Cookie::build((auth::csrf_cookie(secure), self.csrf_token.clone()))
            .path("/")
            .secure(secure)
            .same_site(cookie::SameSite::Lax)
            .max_age(max_age)
            .build();
        let value = |c: cookie::Cookie<'_>| HeaderValue::from_str(&c.to_string()).map_err(ApiError::internal);
        Ok([value(session_cookie)?, value(csrf_cookie)?])
    }
}

/// Ends the caller's session (server-side); with an API token it does nothing. Returns the
/// `Set-Cookie` values that clear the session's cookies.
pub async fn logout(state: &AppState, caller: &CurrentUser) -> Result<Vec<HeaderValue>, ApiError> {
    if let AuthMethod::Session { token_hash } = &caller.via {
        state.service().end_session(token_hash).await?;
    }
    let secure = state.config.accounts.cookie_secure;
    [auth::session_cookie(secure), auth::csrf_cookie(secure)]
        .into_iter()
        .map(|name| {
            let gone = cookie::Cookie::build((name, ""))
                .path("/")
                .secure(secure)
                .max_age(cookie::time::Duration::ZERO)
                .build();
            HeaderValue::from_str(&gone.to_string()).map_err(ApiError::internal)
        })
        .collect()
}

/// Counts one account mail to `email` and says whether it may be sent (at most
/// `ACCOUNT_MAILS_PER_EMAIL_PER_HOUR` an hour). Never an error the caller sees: a refusal here
/// would tell that the address had mail coming.
async fn account_mail_allowed(state: &AppState, email: &Email) -> Result<bool, ApiError> {
    let key = format!("account-mail:acct:{}", email.as_str());
    Ok(state.service().note_attempt(&key, ACCOUNT_MAILS_PER_EMAIL_PER_HOUR, Duration::hours(1)).await?)
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
    let valid = Duration::hours(VERIFY_VALID_HOURS);
    state.service().start_email_verification(user.id, &auth::hash_token(&token), valid).await?;
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

/// Opens an account on the free plan, or tells the owner of a taken email by mail; the outcome
/// is the same either way. With email verification on (see `accounts.verify_email`), a new
/// account cannot log in until the link mailed to it (valid 24 hours, usable once) is followed.
pub async fn signup(state: &AppState, ip: ClientIp, email: &str, password: String) -> Result<(), ApiError> {
    let accounts = &state.config.accounts;
    let window = Duration::minutes(i64::from(accounts.login_window_minutes));
    let ip_key = ip.key("signup");
    let email = Email::parse(email).map_err(|_| bad_email())?;
    auth::validate_password(&password)?;
    // Every attempt counts against the address, so sign-up cannot be used to probe many emails.
    auth::throttle(state, &ip_key, accounts.signups_per_ip, window).await?;
    // The password is hashed for a taken email too, so that both take the same time.
    let password_hash = auth::hash_password(password).await?;
    let verify = accounts.verify_email;
    // Accounts opened while verification is off count as verified: turning it on later (say, by
    // configuring SMTP) must not lock them out.
    let new =
        NewUser { email: email.clone(), password_hash, plan: Plan::Free, is_admin: false, email_verified: !verify };
    let service = state.service();
    let mail = match service.create_user(&new).await {
        Ok(user) => {
            tracing::info!(user_id = %user.id, "account created for user {}", user.id);
            let allowed = account_mail_allowed(state, &email).await?;
            if verify && allowed { Some(verification_mail(state, &user).await?) } else { None }
        }
        Err(StoreError::Conflict(_)) => {
            let owner = service.user_by_email(&email).await?;
            let allowed = account_mail_allowed(state, &email).await?;
            if let Some(owner) = &owner {
                tracing::info!(user_id = %owner.id, "sign-up with the email of user {}; owner told by mail", owner.id);
            }
            owner.filter(|_| allowed).map(|owner| already_registered_mail(state, &owner))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(mail) = mail {
        send_after_answering(state, mail);
    }
    Ok(())
}

/// Confirms an email with the token from the mailed link; returns its account, to log in.
pub async fn verify_email(state: &AppState, token: &str) -> Result<User, ApiError> {
    let token = token.trim();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid_verification_token());
    }
    match state.service().confirm_email(&auth::hash_token(token)).await? {
        Some(user) => {
            tracing::info!(user_id = %user.id, "email of user {} confirmed", user.id);
            Ok(user)
        }
        None => Err(invalid_verification_token()),
    }
}

/// Mails a new verification link (valid 24 hours) when the email has an account that is not
/// confirmed yet. The outcome is the same whatever the email, and the mail goes after it.
pub async fn resend_verification(state: &AppState, ip: ClientIp, email: &str) -> Result<(), ApiError> {
    let accounts = &state.config.accounts;
    let email = Email::parse(email).map_err(|_| bad_email())?;
    let window = Duration::minutes(i64::from(accounts.login_window_minutes));
    auth::throttle(state, &ip.key("verify-resend"), accounts.signups_per_ip, window).await?;
    let allowed = account_mail_allowed(state, &email).await?;
    let user = state.service().user_by_email(&email).await?;
    if let Some(user) = user.filter(|u| accounts.verify_email && !u.email_verified() && allowed) {
        let mail = verification_mail(state, &user).await?;
        send_after_answering(state, mail);
        tracing::info!(user_id = %user.id, "verification link mailed again to user {}", user.id);
    }
    Ok(())
}

/// Checks an email and password; returns the account to open a session for.
pub async fn login(state: &AppState, ip: ClientIp, email: &str, password: String) -> Result<User, ApiError> {
    let accounts = &state.config.accounts;
    let service = state.service();
    let now = state.clock.now();
    let window = Duration::minutes(i64::from(accounts.login_window_minutes));
    let window_start = now - window;
    let email = Email::parse(email).ok();
    let account_key = format!("login:acct:{}", email.as_ref().map_or("invalid", |e| e.as_str()));
    let ip_key = ip.key("login");
    if service.failed_attempts_since(&ip_key, window_start).await? >= u64::from(accounts.login_max_failures_per_ip) {
        tracing::warn!(ip = ?ip.0, "log-in throttled (address)");
        return Err(auth::too_many_attempts(window));
    }
    // The attempt is counted before the password is checked, and forgotten only if it succeeds:
    // of any number of parallel attempts, at most `login_max_failures_per_account` reach argon2.
    auth::throttle(state, &account_key, accounts.login_max_failures_per_account, window).await?;
    let user = match &email {
        Some(email) => service.user_by_email(email).await?,
        None => None,
    };
    let password = if password.chars().count() > auth::MAX_PASSWORD_CHARS { String::new() } else { password };
    let valid = auth::verify_password(password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    match user.filter(|_| valid) {
        Some(user) => {
            service.forget_attempts(&account_key, window_start).await?;
            // Said only after the password was checked: to anyone else an unconfirmed account
            // looks like any other.
            if accounts.verify_email && !user.email_verified() {
                tracing::info!(user_id = %user.id, "log-in of user {} refused: email not confirmed", user.id);
                return Err(email_unverified());
            }
            tracing::info!(user_id = %user.id, "user {} logged in", user.id);
            Ok(user)
        }
        None => {
            service.record_failed_attempt(&ip_key, now).await?;
            Err(invalid_credentials())
        }
    }
}

/// Mails a password reset link (valid for an hour, usable once) when the email has an account.
/// The outcome is the same whether or not it has one, and the mail is sent after answering, so
/// neither the answer nor its timing tells.
pub async fn request_reset(state: &AppState, ip: ClientIp, email: &str) -> Result<(), ApiError> {
    let accounts = &state.config.accounts;
    let email = Email::parse(email).map_err(|_| bad_email())?;
    let window = Duration::minutes(i64::from(accounts.login_window_minutes));
    auth::throttle(state, &ip.key("reset"), accounts.signups_per_ip, window).await?;
    let per_email = format!("reset:acct:{}", email.as_str());
    auth::throttle(state, &per_email, RESETS_PER_EMAIL_PER_HOUR, Duration::hours(1)).await?;
    let service = state.service();
    if let Some(user) = service.user_by_email(&email).await? {
        let token = auth::random_secret();
        let valid = Duration::minutes(RESET_VALID_MINUTES);
        service.start_password_reset(user.id, &auth::hash_token(&token), valid).await?;
        send_after_answering(state, reset_mail(state, &user, &token));
        tracing::info!(user_id = %user.id, "password reset mailed to user {}", user.id);
    }
    Ok(())
}

/// Sets a new password with a mailed reset token; every session and API token of the account is
/// revoked.
pub async fn confirm_reset(state: &AppState, token: &str, new_password: String) -> Result<(), ApiError> {
    auth::validate_password(&new_password)?;
    let invalid = || ApiError::bad_request("invalid_reset_token", "this reset link is unknown, used or expired");
    let token = token.trim();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let hash = auth::hash_password(new_password).await?;
    match state.service().reset_password(&auth::hash_token(token), &hash).await? {
        Some(user) => {
            tracing::info!(user_id = %user, "password of user {user} reset by mail");
            Ok(())
        }
        None => Err(invalid()),
    }
}
