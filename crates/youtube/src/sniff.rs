//! Recognising the pages YouTube serves *instead of* the content asked for: consent walls,
//! "unusual traffic" captchas, rate-limit notices and Google's HTML error pages. Shared by every
//! parser so that each classifies these the same way.

use memchr::memmem;

use crate::YoutubeError;

/// True when the body starts (after whitespace and a BOM) like an HTML document.
pub(crate) fn looks_like_html(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    let head: Vec<u8> = body[start..].iter().take(15).map(u8::to_ascii_lowercase).collect();
    head.starts_with(b"<!doctype html") || head.starts_with(b"<html")
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memmem::find(haystack, needle).is_some()
}

/// True for a consent wall: the page posts to or links consent.youtube.com / consent.google.com.
pub(crate) fn is_consent_page(body: &[u8]) -> bool {
    contains(body, b"consent.youtube.com") || contains(body, b"consent.google.com")
}

/// True for Google's "unusual traffic from your computer network" captcha page (`/sorry/`).
pub(crate) fn is_captcha_page(body: &[u8]) -> bool {
    contains(body, b"unusual traffic") || contains(body, b"/sorry/index") || contains(body, b"g-recaptcha")
}

/// Normalises YouTube's reason text: the bot check uses U+2019 in "you’re".
pub(crate) fn normalise_reason(reason: &str) -> String {
    reason.replace('\u{2019}', "'").to_lowercase()
}

/// "This content isn't available, try again later" is YouTube's rate-limit notice.
pub(crate) fn is_rate_limit_text(reason: &str) -> bool {
    let r = normalise_reason(reason);
    r.contains("try again later")
}

/// Classifies an HTML page that came where something else was expected.
pub(crate) fn classify_html(body: &[u8], expected: &str) -> YoutubeError {
    if is_consent_page(body) {
        YoutubeError::Consent
    } else if is_captcha_page(body) {
        YoutubeError::BotCheck { reason: "Google's unusual-traffic captcha page".into() }
    } else if contains(body, b"try again later") {
        YoutubeError::RateLimited { detail: "YouTube asked to try again later".into(), retry_after: None }
    } else if contains(body, b"404") && (contains(body, b"Not Found") || contains(body, b"not found")) {
        YoutubeError::not_found(expected.to_owned())
    } else {
        YoutubeError::malformed(format!("expected {expected}, got an HTML page"))
    }
}
