//! Outgoing webhooks: each week's outliers POSTed as JSON to a URL the user sets, for further
//! processing (a chat channel, a spreadsheet, an automation).
//!
//! A user's URL must name a host the operator allows (`[webhooks] allowed_hosts`): user input
//! never chooses a host the service connects to on its own. Redirects are not followed, for the
//! same reason. Every request is signed like Stripe's: the header
//! `Tubewatch-Signature: t=UNIX_SECONDS,v1=HEX` carries the HMAC-SHA256, under the user's
//! secret, of `"{t}.{body}"`, so the receiver can check both origin and freshness. The secret is
//! shown to the user once and kept sealed (AEAD, the token keyring), as signing needs it back.

use std::fmt;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tubewatch_core::UserId;
use tubewatch_store::SealedToken;
use url::Url;

use crate::token_crypto::{TokenCryptoError, TokenKeyring, TokenPurpose};

pub const SIGNATURE_HEADER: &str = "tubewatch-signature";
/// The delivery's id (`digest-USER-WEEK`): the same on every retry, so receivers can drop repeats.
pub const DELIVERY_HEADER: &str = "tubewatch-delivery";
const MAX_URL_LEN: usize = 2000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookUrlError {
    #[error("{0:?} is not a URL: {1}")]
    NotAUrl(String, String),
    #[error("a webhook URL must be http or https, not {0:?}")]
    Scheme(String),
    #[error("a webhook URL must not carry a user name, password or #fragment")]
    Extra,
    #[error("a webhook URL may have at most {MAX_URL_LEN} characters")]
    TooLong,
    #[error("{host:?} is not a webhook host this service allows (allowed: {allowed})")]
    HostNotAllowed { host: String, allowed: String },
}

/// A host the operator allows: any URL on it with the scheme's default port, or only `port`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

impl AllowedHost {
    /// `host` or `host:port` (IPv6 in brackets).
    fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim().to_ascii_lowercase();
        let url = Url::parse(&format!("http://{entry}/")).map_err(|e| format!("{entry:?}: {e}"))?;
        let host = url.host_str().filter(|_| url.path() == "/" && url.query().is_none() && url.username().is_empty());
        let host = host.ok_or_else(|| format!("{entry:?} is not a host or host:port"))?.to_owned();
        // `url` drops port 80 as http's default, so the port is read from the entry itself.
        let port = match entry.rsplit_once(':') {
            Some((_, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                Some(port.parse::<u16>().map_err(|e| format!("{entry:?}: {e}"))?)
            }
            _ => None,
        };
        Ok(Self { host, port })
    }

    fn admits(&self, url: &Url) -> bool {
        url.host_str() == Some(self.host.as_str())
            && match self.port {
                Some(port) => url.port_or_known_default() == Some(port),
                None => url.port().is_none(),
            }
    }
}

/// Why a delivery failed: the receiver's status when it answered, and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub status: Option<u16>,
    pub message: String,
}

/// What the service needs to deliver webhooks: the allowed hosts, the keyring that seals the
/// secrets, an HTTP client that follows no redirects.
#[derive(Debug, Clone)]
pub struct Webhooks {
    allowed: Vec<AllowedHost>,
    keyring: TokenKeyring,
    http: reqwest::Client,
}

impl Webhooks {
    /// `allowed_hosts` must not be empty: with none allowed, webhooks are off (no `Webhooks`).
    pub fn new(allowed_hosts: &[String], keyring: TokenKeyring, timeout: StdDuration) -> Result<Self, String> {
        if allowed_hosts.is_empty() {
            return Err("no webhook host is allowed".into());
        }
        let allowed = allowed_hosts.iter().map(|h| AllowedHost::parse(h)).collect::<Result<Vec<_>, _>>()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(concat!("tubewatch-webhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the webhook HTTP client: {e}"))?;
        Ok(Self { allowed, keyring, http })
    }

    /// The allowed hosts as the operator wrote them (normalised), for messages and pages.
    pub fn allowed_hosts(&self) -> Vec<String> {
        self.allowed.iter().map(ToString::to_string).collect()
    }

    /// Checks a webhook URL a user gives: http(s), no credentials or fragment, an allowed host.
    pub fn check_url(&self, raw: &str) -> Result<Url, WebhookUrlError> {
        let raw = raw.trim();
        if raw.len() > MAX_URL_LEN {
            return Err(WebhookUrlError::TooLong);
        }
        let url = Url::parse(raw).map_err(|e| WebhookUrlError::NotAUrl(raw.to_owned(), e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WebhookUrlError::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(WebhookUrlError::Extra);
        }
        if !self.allowed.iter().any(|a| a.admits(&url)) {
            let host = match url.port() {
                Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
                None => url.host_str().unwrap_or_default().to_owned(),
            };
            return Err(WebhookUrlError::HostNotAllowed { host, allowed: self.allowed_hosts().join(", ") });
        }
        Ok(url)
    }

    /// A new signing secret: `whsec_` and 64 hex digits (32 random bytes).
    pub fn new_secret() -> String {
        let bytes: [u8; 32] = rand::random();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("whsec_{hex}")
    }

    pub fn seal_secret(&self, user: UserId, secret: &str) -> Result<SealedToken, TokenCryptoError> {
        self.keyring.seal(user, TokenPurpose::WebhookSecret, secret)
    }

    pub fn open_secret(&self, user: UserId, sealed: &SealedToken) -> Result<String, TokenCryptoError> {
        self.keyring.open(user, TokenPurpose::WebhookSecret, sealed)
    }

    /// POSTs `body` (JSON) signed with `secret` to a stored webhook URL, checked again first
    /// (the operator may have withdrawn its host since it was set); `Ok(status)` on a 2xx answer.
    pub async fn deliver(
        &self,
        url: &str,
        secret: &str,
        delivery_id: &str,
        body: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<u16, SendError> {
        let url = self.check_url(url).map_err(|e| SendError { status: None, message: e.to_string() })?;
        let signature = signature(secret, now.timestamp(), &body);
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, delivery_id)
            .body(body)
            .send()
            .await
            .map_err(|e| SendError { status: None, message: e.without_url().to_string() })?;
        let status = response.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(SendError { status: Some(status.as_u16()), message: format!("the receiver answered {status}") })
        }
    }
}

/// `t=TIMESTAMP,v1=HEX(HMAC-SHA256(secret, "TIMESTAMP.BODY"))`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn webhooks(allowed: &[&str]) -> Webhooks {
        let keyring = TokenKeyring::from_hex("k1", &[("k1".into(), "ab".repeat(32))]).unwrap();
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        Webhooks::new(&allowed, keyring, StdDuration::from_secs(5)).unwrap()
    }

    #[test]
    fn only_urls_on_allowed_hosts_pass() {
        let w = webhooks(&["Hooks.Example.com", "127.0.0.1:8080", "[::1]:9000"]);
        for ok in [
            "https://hooks.example.com/tw/123?x=1",
            "http://HOOKS.example.com/",
            "https://hooks.example.com:443/a",
            "http://127.0.0.1:8080/hook",
            "http://[::1]:9000/",
        ] {
            assert!(w.check_url(ok).is_ok(), "{ok}");
        }
        let rejected = |raw: &str| w.check_url(raw).unwrap_err();
        assert!(matches!(rejected("https://evil.example.com/"), WebhookUrlError::HostNotAllowed { .. }));
        assert!(matches!(rejected("https://hooks.example.com:8443/"), WebhookUrlError::HostNotAllowed { .. }));
        assert!(matches!(rejected("https://hooks.example.com.evil.net/"), WebhookUrlError::HostNotAllowed { .. }));
        assert!(matches!(rejected("http://127.0.0.1/"), WebhookUrlError::HostNotAllowed { .. }));
        assert!(matches!(rejected("http://127.0.0.1:8081/"), WebhookUrlError::HostNotAllowed { .. }));
        assert_eq!(rejected("ftp://hooks.example.com/"), WebhookUrlError::Scheme("ftp".into()));
        assert_eq!(rejected("https://user:pw@hooks.example.com/"), WebhookUrlError::Extra);
        assert_eq!(rejected("https://hooks.example.com/#x"), WebhookUrlError::Extra);
        assert!(matches!(rejected("hooks.example.com/x"), WebhookUrlError::NotAUrl(..)));
        assert_eq!(rejected(&format!("https://hooks.example.com/{}", "a".repeat(2000))), WebhookUrlError::TooLong);
        let message = rejected("https://evil.example.com/").to_string();
        assert!(message.contains("hooks.example.com, 127.0.0.1:8080, [::1]:9000"), "{message}");
    }

    #[test]
    fn bad_allow_list_entries_are_refused() {
        let keyring = TokenKeyring::from_hex("k1", &[("k1".into(), "ab".repeat(32))]).unwrap();
        for bad in
            [&[][..], &["https://x.com/path".to_owned()], &["x.com/path".to_owned()], &["x.com:99999".to_owned()]]
        {
            assert!(Webhooks::new(bad, keyring.clone(), StdDuration::from_secs(1)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_signature_matches_an_independent_hmac() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            signature("whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn secrets_are_sealed_per_user() {
        let w = webhooks(&["hooks.example.com"]);
        let secret = Webhooks::new_secret();
        assert!(secret.starts_with("whsec_") && secret.len() == 70, "{secret}");
        let sealed = w.seal_secret(UserId::new(7), &secret).unwrap();
        assert!(!String::from_utf8_lossy(&sealed.sealed).contains(&secret[6..]));
        assert_eq!(w.open_secret(UserId::new(7), &sealed).unwrap(), secret);
        assert!(w.open_secret(UserId::new(8), &sealed).is_err(), "bound to its user");
    }
}
