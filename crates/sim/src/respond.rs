//! How a handler answers with a body it made itself: an HTML page, or JSON with the content
//! type Google's APIs send.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub(crate) fn html(code: StatusCode, body: String) -> Response {
    (code, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

pub(crate) fn json_response(code: StatusCode, value: &Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json; charset=UTF-8")], value.to_string()).into_response()
}
