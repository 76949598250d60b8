//! Who is calling: the `CurrentUser` extractor (a session cookie or an `Authorization: Bearer`
//! API token), CSRF protection for cookie-authenticated state changes, and the secrets behind
//! them (password hashing with argon2id, random tokens stored only as SHA-256 hashes).
//!
//! Any handler — JSON API or HTML page — that takes a `CurrentUser` is authenticated, and if it
//! changes state (any method but GET/HEAD/OPTIONS) under a session cookie it is CSRF-checked too:
//! the request must carry `X-CSRF-Token` equal to the session's CSRF token (returned at log-in and
//! set in the readable `tw_csrf` cookie: the double-submit pattern). Bearer requests are exempt:
//! browsers never attach them on their own, but a `read` token may not change state at all.
//! Take `Option<CurrentUser>` for pages that also serve anonymous visitors.
//!
//! Password hashing is the costliest thing a request can ask for, so it passes a gate: one hash
//! per core at a time and a short queue; beyond that the request is answered 503 at once.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use tubewatch_store::{TokenScope, User};

use crate::AppState;
use crate::config::{IpRange, PlanLimits};
use crate::error::ApiError;

/// The session cookie (HttpOnly) when served over plain HTTP (development, the demo).
pub const SESSION_COOKIE: &str = "tw_session";
/// The CSRF cookie, readable by the page's scripts so they can echo it in `X-CSRF-Token`.
pub const CSRF_COOKIE: &str = "tw_csrf";

/// The session cookie's name. With `Secure` cookies it carries the `__Host-` prefix, which
/// browsers accept only from HTTPS, with `Path=/` and no `Domain`: a sibling subdomain can neither
/// plant nor overwrite it.
pub fn session_cookie(secure: bool) -> &'static str {
    if secure { "__Host-tw_session" } else { SESSION_COOKIE }
}

/// The CSRF cookie's name (prefixed like the session's).
pub fn csrf_cookie(secure: bool) -> &'static str {
    if secure { "__Host-tw_csrf" } else { CSRF_COOKIE }
}
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
    ApiToken { token_id: i64, scope: TokenScope },
}

/// The authenticated caller. Extracting it fails with 401 (no or bad credentials) or 403
/// (`csrf_failed`: a cookie-authenticated state change without the CSRF token;
/// `insufficient_scope`: a state change with a read-only token).
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
        if let Some(authorization) = parts.headers.get(header::AUTHORIZATION) {
            let token = authorization
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| t.starts_with(TOKEN_PREFIX))
                .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", "malformed bearer token"))?;
            let Some((token, user)) = state.service().api_token_user(&hash_token(token)).await? else {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "unknown, expired or revoked API token",
                ));
            };
            if token.scope == TokenScope::Read && !is_safe(&parts.method) {
                return Err(ApiError::forbidden("insufficient_scope", "this API token may only read"));
            }
            return Ok(Some(Self { user, via: AuthMethod::ApiToken { token_id: token.id, scope: token.scope } }));
        }
        let Some(session_token) = session_of(&parts.headers, state) else {
            return Ok(None);
        };
        let token_hash = hash_token(&session_token);
        let Some((_, user)) = state.service().session_user(&token_hash).await? else {
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

/// The session token from the request's cookies, under the configured cookie name.
pub fn session_of(headers: &HeaderMap, state: &AppState) -> Option<String> {
    cookie(headers, session_cookie(state.config.accounts.cookie_secure))
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

/// The client's address: the connection's peer, unless the peer is a trusted proxy; then the
/// nearest address in `Forwarded` / `X-Forwarded-For` (read from the right, skipping trusted
/// proxies) that is not a trusted proxy. `None` when served without connect info.
pub fn client_ip(headers: &HeaderMap, extensions: &axum::http::Extensions, trusted: &[IpRange]) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_canonical())?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all(header::FORWARDED).iter().filter_map(|v| v.to_str().ok()) {
        hops.extend(value.split(',').filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, v) = pair.trim().split_once('=')?;
                key.eq_ignore_ascii_case("for").then(|| forwarded_address(v)).flatten()
            })
        }));
    }
    if hops.is_empty() {
        for value in headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()) {
            hops.extend(value.split(',').filter_map(|v| v.trim().parse::<IpAddr>().ok()));
        }
    }
    Some(hops.into_iter().rev().map(|ip| ip.to_canonical()).find(|ip| !is_trusted(*ip)).unwrap_or(peer))
}

/// An address in a `Forwarded` `for=` value: `192.0.2.1`, `"192.0.2.1:4711"`, `"[2001:db8::1]:80"`.
fn forwarded_address(value: &str) -> Option<IpAddr> {
    let value = value.trim().trim_matches('"');
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    value.parse().ok().or_else(|| value.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok()))
}

/// The throttling key of an address: IPv4 as is, IPv6 by its /64 (one subscriber's network,
/// which hands its hosts any number of addresses).
pub fn throttle_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let network = std::net::Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1));
            format!("{network}/64")
        }
    }
}

/// Counts one attempt under `key` in the store's attempt book (shared by every web process) and
/// refuses it (429 `too_many_attempts`, `Retry-After` the window) when more than `limit` were made
/// within `window`. The attempt is recorded before it is counted, so parallel attempts cannot all
/// pass: whatever their interleaving, at most `limit` of them do.
pub async fn throttle(state: &AppState, key: &str, limit: u32, window: chrono::Duration) -> Result<(), ApiError> {
    if state.service().note_attempt(key, limit, window).await? {
        Ok(())
    } else {
        tracing::warn!(key, "throttled: {key}");
        Err(too_many_attempts(window))
    }
}

/// 429 `too_many_attempts` with `Retry-After` the window.
pub fn too_many_attempts(window: chrono::Duration) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        "too many attempts; wait a few minutes and try again",
    );
    e.retry_after = u64::try_from(window.num_seconds()).ok();
    e
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

/// A freshly minted API token: its value (shown once to its owner), and the hash and first
/// characters the store keeps.
#[derive(Debug)]
pub struct MintedApiToken {
    pub token: String,
    pub hash: String,
    pub prefix: String,
}

impl MintedApiToken {
    pub fn new() -> Self {
        let token = new_api_token();
        let prefix = token.chars().take(TOKEN_PREFIX.len() + 6).collect();
        Self { hash: hash_token(&token), token, prefix }
    }

    /// What the store keeps of it.
    pub fn minted(&self) -> tubewatch_worker::service::MintedToken<'_> {
        tubewatch_worker::service::MintedToken { hash: &self.hash, prefix: &self.prefix }
    }
}

impl Default for MintedApiToken {
    fn default() -> Self {
        Self::new()
    }
}

/// Changes the caller's password after checking the current one; every other session of theirs
/// and every API token is revoked (the session making the change stays).
pub async fn change_password(
    state: &AppState,
    caller: &CurrentUser,
    current_password: String,
    new_password: String,
) -> Result<(), ApiError> {
    validate_password(&new_password)?;
    if !verify_password(current_password, Some(caller.user.password_hash.clone())).await? {
        return Err(ApiError::forbidden("wrong_password", "the current password is wrong"));
    }
    let hash = hash_password(new_password).await?;
    let keep = match &caller.via {
        AuthMethod::Session { token_hash } => Some(token_hash.as_str()),
        AuthMethod::ApiToken { .. } => None,
    };
    Ok(state.service().change_password(caller.user.id, &hash, keep).await?)
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

/// Admits argon2 work: `running` hashes at once on the blocking pool, and at most `queued` more
/// waiting; any request beyond is refused at once (503 `busy`), so a flood of log-ins costs a
/// bounded amount of CPU and memory (argon2id takes 19 MiB per hash).
#[derive(Debug)]
pub struct PasswordGate {
    admitted: Semaphore,
    running: Semaphore,
}

impl PasswordGate {
    pub fn new(running: usize, queued: usize) -> Self {
        Self { admitted: Semaphore::new(running + queued), running: Semaphore::new(running) }
    }

    /// The process's gate: one hash per core, eight waiting per core.
    fn global() -> &'static Self {
        static GATE: OnceLock<PasswordGate> = OnceLock::new();
        GATE.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
            Self::new(cores, cores * 8)
        })
    }

    /// Runs `work` on the blocking pool once admitted.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let Ok(_admitted) = self.admitted.try_acquire() else {
            let mut busy =
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "too many log-ins at once; try again shortly");
            busy.retry_after = Some(1);
            return Err(busy);
        };
        let _running = self.running.acquire().await.map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(work).await.map_err(ApiError::internal)
    }
}

/// Hashes a password with argon2id (default parameters, random salt) into a PHC string, through
/// the password gate: argon2 is deliberately slow.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    PasswordGate::global().run(move || hash_password_blocking(&password)).await?.map_err(ApiError::internal)
}

/// The synchronous form, for the CLI.
pub fn hash_password_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default().hash_password(password.as_bytes())?.to_string())
}

/// Verifies a password against a PHC string, through the password gate. With `None` (unknown
/// account) it verifies against a fixed hash anyway, so that a log-in for an unknown email takes as
/// long as one for a known one.
pub async fn verify_password(password: String, phc: Option<String>) -> Result<bool, ApiError> {
    PasswordGate::global()
        .run(move || {
            let phc = phc.as_deref().unwrap_or(DUMMY_HASH);
            let Ok(parsed) = PasswordHash::new(phc) else { return false };
            let valid = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
            valid && phc != DUMMY_HASH
        })
        .await
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
        assert!(verify_password("correct horse battery".into(), Some(phc.clone())).await.unwrap());
        assert!(!verify_password("wrong horse battery".into(), Some(phc)).await.unwrap());
        assert!(!verify_password("anything at all".into(), None).await.unwrap());
        // The dummy hash is a well-formed argon2id hash, so unknown accounts cost a full verify.
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[tokio::test]
    async fn the_password_gate_refuses_work_beyond_its_queue() {
        let gate = std::sync::Arc::new(PasswordGate::new(1, 1));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let first = tokio::spawn({
            let gate = gate.clone();
            async move {
                gate.run(move || {
                    let _ = started.send(());
                    wait.recv().ok()
                })
                .await
            }
        });
        running.await.unwrap();
        // One running, one waiting: the third is refused at once.
        let second = tokio::spawn({
            let gate = gate.clone();
            async move { gate.run(|| 2).await }
        });
        tokio::task::yield_now().await;
        while gate.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = gate.run(|| 3).await.unwrap_err();
        assert_eq!(
            (refused.status, refused.code, refused.retry_after),
            (StatusCode::SERVICE_UNAVAILABLE, "busy", Some(1))
        );
        release.send(()).unwrap();
        assert!(first.await.unwrap().is_ok());
        assert_eq!(second.await.unwrap().unwrap(), 2);
        assert_eq!(gate.run(|| 4).await.unwrap(), 4, "admitted again once the queue drained");
    }

    fn with_peer(peer: &str) -> axum::http::Extensions {
        let mut extensions = axum::http::Extensions::new();
        extensions.insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 5000)));
        extensions
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpRange> = vec!["10.0.0.0/8".parse().unwrap()];
        let headers = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
            }
            h
        };
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let xff = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2")]);
        // From an untrusted peer the header is the client's own claim: ignored.
        assert_eq!(client_ip(&xff, &with_peer("198.51.100.7"), &trusted), ip("198.51.100.7"));
        // From a trusted proxy: the nearest untrusted hop (the leftmost entry is client-chosen).
        assert_eq!(client_ip(&xff, &with_peer("10.0.0.1"), &trusted), ip("203.0.113.9"));
        let forwarded = headers(&[("forwarded", r#"for=1.1.1.1, for="[2001:db8::7]:443";proto=https"#)]);
        assert_eq!(client_ip(&forwarded, &with_peer("10.0.0.1"), &trusted), ip("2001:db8::7"));
        assert_eq!(client_ip(&HeaderMap::new(), &with_peer("10.0.0.1"), &trusted), ip("10.0.0.1"));
        assert_eq!(client_ip(&xff, &axum::http::Extensions::new(), &trusted), None);
        assert_eq!(client_ip(&xff, &with_peer("::ffff:10.0.0.1"), &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn ipv6_clients_are_throttled_per_64() {
        let key = |s: &str| throttle_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(key("192.0.2.1"), "192.0.2.1");
        assert_eq!(key("::ffff:192.0.2.1"), "192.0.2.1");
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
