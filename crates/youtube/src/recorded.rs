//! Recorded request/response files, in the shape of NewPipe's test mocks (the samples in
//! `shared/fixtures/youtube/`): `{"request":{…},"response":{"responseCode":200,
//! "responseHeaders":{"content-type":["…"]},"responseBody":"…" or [bytes]}}`. Used by
//! `tubewatch inspect` and the tests to feed a recorded exchange to the same classifiers the
//! client uses.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The response half of a recorded exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recording {
    request: Option<RecordedRequest>,
    response: RawRecorded,
}

#[derive(Deserialize)]
struct RecordedRequest {
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecorded {
    response_code: u16,
    #[serde(default)]
    response_headers: BTreeMap<String, Vec<String>>,
    response_body: Body,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    Text(String),
    Bytes(Vec<u8>),
}

/// Reads a recorded exchange; `None` when the bytes are not one (then they are a raw body).
pub fn parse_recorded(bytes: &[u8]) -> Option<RecordedResponse> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    let rec: Recording = serde_json::from_slice(bytes).ok()?;
    let content_type = rec
        .response
        .response_headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .and_then(|(_, v)| v.first().cloned());
    let body = match rec.response.response_body {
        Body::Text(s) => s.into_bytes(),
        Body::Bytes(b) => b,
    };
    Some(RecordedResponse {
        status: rec.response.response_code,
        content_type,
        body,
        url: rec.request.and_then(|r| r.url),
    })
}
