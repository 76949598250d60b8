//! Google's error JSON, as every Google API tubewatch calls writes it (the Data API's
//! `errors[].reason`, the newer APIs' `status` and `details[]`), and the typed error it means.

use serde::Deserialize;

use crate::YoutubeError;
use crate::error::INSUFFICIENT_PERMISSIONS;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GoogleErrorBody {
    error: GoogleError,
}

/// Google's error body. The Data API lists `errors[].reason` (`quotaExceeded`, …); the newer
/// APIs (the Reporting API among them) give `status` and `details[].reason`
/// (`ACCESS_TOKEN_SCOPE_INSUFFICIENT`, `RATE_LIMIT_EXCEEDED`, …) instead.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GoogleError {
    code: u16,
    message: String,
    errors: Vec<GoogleErrorItem>,
    details: Vec<GoogleErrorItem>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GoogleErrorItem {
    reason: String,
    metadata: serde_json::Map<String, serde_json::Value>,
}

impl GoogleErrorItem {
    /// A `RATE_LIMIT_EXCEEDED` detail whose limit is per day: a spent daily quota, not a burst.
    fn is_daily_limit(&self) -> bool {
        self.metadata.get("quota_limit").and_then(serde_json::Value::as_str).is_some_and(|l| l.contains("PerDay"))
    }
}

/// Maps a Google API error response (status + `{"error":{…}}` body) to a typed error.
/// Insufficient scopes come out as `Forbidden` with the reason `insufficientPermissions`
/// (see [`YoutubeError::is_insufficient_scope`]), whichever of the two body shapes said so.
pub fn parse_google_error(status: u16, body: &[u8]) -> YoutubeError {
    let parsed: GoogleErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message = if parsed.error.message.is_empty() {
        String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
    } else {
        parsed.error.message.clone()
    };
    let items: Vec<&GoogleErrorItem> = parsed.error.errors.iter().chain(&parsed.error.details).collect();
    let has = |r: &str| items.iter().any(|i| i.reason == r);
    let daily_limit = items.iter().any(|i| i.reason == "RATE_LIMIT_EXCEEDED" && i.is_daily_limit());
    if has("quotaExceeded") || has("dailyLimitExceeded") || daily_limit {
        YoutubeError::QuotaExceeded(message)
    } else if has("rateLimitExceeded") || has("userRateLimitExceeded") || has("RATE_LIMIT_EXCEEDED") || status == 429 {
        YoutubeError::RateLimited { detail: message, retry_after: None }
    } else if has("invalidImage") || has("mediaBodyRequired") || has("uploadLimitExceeded") {
        YoutubeError::InvalidImage(message)
    } else if status == 401 || has("authError") || has("unauthorized") {
        YoutubeError::Unauthorized(message)
    } else if status == 404 || has("videoNotFound") || has("channelNotFound") || has("notFound") {
        YoutubeError::not_found(message)
    } else if status == 403 {
        let reason = if has("ACCESS_TOKEN_SCOPE_INSUFFICIENT") {
            INSUFFICIENT_PERMISSIONS
        } else {
            items.first().map(|i| i.reason.as_str()).filter(|r| !r.is_empty()).unwrap_or("forbidden")
        };
        YoutubeError::Forbidden { reason: reason.to_owned(), message }
    } else {
        YoutubeError::Http { status: Some(status), message }
    }
}

/// Nothing for a success status, else the typed error its body says.
pub(crate) fn ok_or_google_error(status: u16, body: &[u8]) -> Result<(), YoutubeError> {
    if (200..300).contains(&status) { Ok(()) } else { Err(parse_google_error(status, body)) }
}
