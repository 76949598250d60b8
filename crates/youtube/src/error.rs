//! The one error type of the YouTube client, and the policy that says which failures are
//! permanent (stop tracking the thing), which are worth retrying now, and which are neither.

use std::time::Duration;

use serde::Serialize;

/// The Data API's reason for a token without the scope the call needs (what
/// [`YoutubeError::is_insufficient_scope`] looks for, whichever body shape said so).
pub(crate) const INSUFFICIENT_PERMISSIONS: &str = "insufficientPermissions";

/// Stable, machine-readable classification of a [`YoutubeError`]. The snake_case names
/// (`bot_check`, `not_found`, …) are part of the interface: the worker records them and
/// `tubewatch inspect` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    BotCheck,
    Consent,
    NotFound,
    Unavailable,
    WrongVideo,
    Malformed,
    RateLimited,
    Http,
    Timeout,
    QuotaExceeded,
    Forbidden,
    InvalidImage,
    Unauthorized,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BotCheck => "bot_check",
            Self::Consent => "consent",
            Self::NotFound => "not_found",
            Self::Unavailable => "unavailable",
            Self::WrongVideo => "wrong_video",
            Self::Malformed => "malformed",
            Self::RateLimited => "rate_limited",
            Self::Http => "http",
            Self::Timeout => "timeout",
            Self::QuotaExceeded => "quota_exceeded",
            Self::Forbidden => "forbidden",
            Self::InvalidImage => "invalid_image",
            Self::Unauthorized => "unauthorized",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong talking to YouTube or Google, classified so callers can decide
/// between "stop tracking", "retry later" and "fix the configuration".
#[derive(Debug, Clone, thiserror::Error)]
pub enum YoutubeError {
    /// "Sign in to confirm you're not a bot" or a captcha: YouTube distrusts this client for now.
    #[error("YouTube asked to confirm this is not a bot: {reason}")]
    BotCheck { reason: String },
    /// A consent page or a redirect to consent.youtube.com: the consent cookie was not accepted.
    #[error("YouTube answered with a consent page instead of content")]
    Consent,
    /// The channel, video, thumbnail size or handle does not exist.
    #[error("not found: {what}")]
    NotFound { what: String },
    /// The video exists (or existed) but cannot be watched: private, deleted, terminated account.
    #[error("video unavailable ({status}): {reason}")]
    Unavailable { status: String, reason: String },
    /// YouTube answered with another video's data (a symptom of rate limiting).
    #[error("asked for video {requested} but the response is for {got}")]
    WrongVideo { requested: String, got: String },
    /// The body is not what the format promises. `truncated` says the body ended early, which
    /// is transient (a cut connection), unlike a changed layout.
    #[error("malformed response{}: {detail}", if *truncated { " (truncated)" } else { "" })]
    Malformed { detail: String, truncated: bool },
    /// HTTP 429, a Data API rate-limit reason, or "This content isn't available, try again later".
    #[error("rate limited: {detail}")]
    RateLimited { detail: String, retry_after: Option<Duration> },
    /// Any other HTTP failure; `status` is `None` when no response arrived (connection error).
    #[error("HTTP error{}: {message}", status.map(|s| format!(" {s}")).unwrap_or_default())]
    Http { status: Option<u16>, message: String },
    #[error("timed out: {0}")]
    Timeout(String),
    /// The Data API daily quota is spent; it resets at midnight Pacific time.
    #[error("Data API quota exceeded: {0}")]
    QuotaExceeded(String),
    /// Google refused the operation (e.g. the channel may not set custom thumbnails).
    #[error("forbidden ({reason}): {message}")]
    Forbidden { reason: String, message: String },
    /// The image is not one YouTube (or we) accept.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// Missing, expired or revoked credentials: refresh the access token or reconnect the account.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
}

impl YoutubeError {
    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        Self::Malformed { detail: detail.into(), truncated: false }
    }

    pub(crate) fn truncated(detail: impl Into<String>) -> Self {
        Self::Malformed { detail: detail.into(), truncated: true }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::BotCheck { .. } => ErrorKind::BotCheck,
            Self::Consent => ErrorKind::Consent,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::WrongVideo { .. } => ErrorKind::WrongVideo,
            Self::Malformed { .. } => ErrorKind::Malformed,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Http { .. } => ErrorKind::Http,
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::QuotaExceeded(_) => ErrorKind::QuotaExceeded,
            Self::Forbidden { .. } => ErrorKind::Forbidden,
            Self::InvalidImage(_) => ErrorKind::InvalidImage,
            Self::Unauthorized(_) => ErrorKind::Unauthorized,
        }
    }

    /// True when the thing asked about is gone or refused for good: the caller should stop
    /// tracking it (or stop retrying the operation) and tell the user. Everything else is
    /// either transient or a problem of this client's configuration, not of the target.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::NotFound { .. } | Self::Unavailable { .. } | Self::Forbidden { .. } | Self::InvalidImage(_)
        )
    }

    /// True when the same request may well succeed if repeated after a short wait. This is what
    /// the client's retry loop consults; quota, consent and credential problems are not retried
    /// because a repeat within seconds cannot fix them.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::BotCheck { .. } | Self::WrongVideo { .. } | Self::RateLimited { .. } | Self::Timeout(_) => true,
            Self::Malformed { truncated, .. } => *truncated,
            Self::Http { status, .. } => match status {
                None => true,
                Some(s) => *s == 408 || *s == 429 || *s >= 500,
            },
            _ => false,
        }
    }

    /// True when Google refused because the access token lacks a scope the call needs: the
    /// account must be connected again with that scope (no retry or refresh can fix it).
    pub fn is_insufficient_scope(&self) -> bool {
        matches!(self, Self::Forbidden { reason, .. } if reason == INSUFFICIENT_PERMISSIONS)
    }

    /// How long the server asked us to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_stable_names_and_policies() {
        let cases: Vec<(YoutubeError, &str, bool, bool)> = vec![
            (YoutubeError::BotCheck { reason: "x".into() }, "bot_check", false, true),
            (YoutubeError::Consent, "consent", false, false),
            (YoutubeError::not_found("x"), "not_found", true, false),
            (YoutubeError::Unavailable { status: "ERROR".into(), reason: "x".into() }, "unavailable", true, false),
            (YoutubeError::WrongVideo { requested: "a".into(), got: "b".into() }, "wrong_video", false, true),
            (YoutubeError::malformed("x"), "malformed", false, false),
            (YoutubeError::truncated("x"), "malformed", false, true),
            (YoutubeError::RateLimited { detail: "x".into(), retry_after: None }, "rate_limited", false, true),
            (YoutubeError::Http { status: Some(503), message: "x".into() }, "http", false, true),
            (YoutubeError::Http { status: Some(400), message: "x".into() }, "http", false, false),
            (YoutubeError::Http { status: None, message: "x".into() }, "http", false, true),
            (YoutubeError::Timeout("x".into()), "timeout", false, true),
            (YoutubeError::QuotaExceeded("x".into()), "quota_exceeded", false, false),
            (YoutubeError::Forbidden { reason: "forbidden".into(), message: "x".into() }, "forbidden", true, false),
            (YoutubeError::InvalidImage("x".into()), "invalid_image", true, false),
            (YoutubeError::Unauthorized("x".into()), "unauthorized", false, false),
        ];
        for (err, name, permanent, retryable) in cases {
            assert_eq!(err.kind().as_str(), name, "{err}");
            assert_eq!(serde_json::to_value(err.kind()).unwrap(), serde_json::json!(name));
            assert_eq!(err.is_permanent(), permanent, "{err}");
            assert_eq!(err.is_retryable(), retryable, "{err}");
        }
    }
}
