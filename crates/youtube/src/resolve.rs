//! Channel resolution: turning a handle, `/c/` or `/user/` name into a `UC…` channel id through
//! InnerTube's `navigation/resolve_url`. This module owns the request body and the response
//! interpretation (including the 404 `NOT_FOUND` that means "no such channel").

use serde::Deserialize;
use tubewatch_core::{ChannelId, ChannelRef};

use crate::YoutubeError;
use crate::sniff;

/// The JSON body InnerTube expects. The URL inside is data for YouTube's resolver (always the
/// canonical youtube.com form), not an address this client fetches.
pub fn resolve_request_body(channel: &ChannelRef, client_version: &str) -> serde_json::Value {
    serde_json::json!({
        "context": {"client": {"clientName": "WEB", "clientVersion": client_version, "hl": "en", "gl": "US"}},
        "url": format!("https://www.youtube.com{}", channel.path()),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ResolveResponse {
    endpoint: Option<Endpoint>,
    error: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Endpoint {
    browse_endpoint: Option<BrowseEndpoint>,
    url_endpoint: Option<serde_json::Value>,
    watch_endpoint: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BrowseEndpoint {
    browse_id: Option<String>,
}

/// Interprets a `resolve_url` response (status and body) for `what` (used in messages).
pub fn parse_resolve_response(status: u16, body: &[u8], what: &str) -> Result<ChannelId, YoutubeError> {
    if sniff::looks_like_html(body) {
        return Err(sniff::classify_html(body, "resolve_url JSON"));
    }
    if status == 404 {
        return Err(YoutubeError::not_found(format!("channel {what}")));
    }
    if status == 429 {
        return Err(YoutubeError::RateLimited { detail: "HTTP 429 on resolve_url".into(), retry_after: None });
    }
    if status >= 400 {
        return Err(YoutubeError::Http { status: Some(status), message: "resolve_url failed".into() });
    }
    let parsed: ResolveResponse = serde_json::from_slice(body).map_err(|e| {
        if e.is_eof() {
            YoutubeError::truncated(format!("resolve_url JSON: {e}"))
        } else {
            YoutubeError::malformed(format!("resolve_url JSON: {e}"))
        }
    })?;
    if let Some(err) = parsed.error {
        let code = err.get("code").and_then(serde_json::Value::as_u64);
        let status_text = err.get("status").and_then(serde_json::Value::as_str);
        if code == Some(404) || status_text == Some("NOT_FOUND") {
            return Err(YoutubeError::not_found(format!("channel {what}")));
        }
        return Err(YoutubeError::malformed(format!("resolve_url error: {err}")));
    }
    let Some(endpoint) = parsed.endpoint else {
        return Err(YoutubeError::malformed("resolve_url response without an endpoint"));
    };
    match endpoint.browse_endpoint.and_then(|b| b.browse_id) {
        Some(id) => ChannelId::parse(&id).map_err(|_| {
            // A browse id that is not a channel (a playlist, a topic page) is not a channel.
            YoutubeError::not_found(format!("channel {what} (resolves to {id:?}, not a channel)"))
        }),
        None if endpoint.url_endpoint.is_some() || endpoint.watch_endpoint.is_some() => {
            Err(YoutubeError::not_found(format!("channel {what} (resolves to something else than a channel)")))
        }
        None => Err(YoutubeError::malformed("resolve_url endpoint without browseEndpoint.browseId")),
    }
}
