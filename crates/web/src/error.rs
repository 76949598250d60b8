//! The one error type of the HTTP edge. Every failure a handler or extractor returns becomes
//! `{"error": {"code", "message", …}}` with a status code and a stable machine-readable `code`.
//! Server-side failures are logged here with their cause and answered with a generic message:
//! no SQL, paths or stack traces ever reach a client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use tubewatch_store::StoreError;
use tubewatch_worker::TrackError;
use tubewatch_worker::service::AccountError;
use utoipa::ToSchema;

/// An API failure: status, stable code, human message and optional details (e.g. a plan limit).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra machine-readable fields merged into the error object (`limit`, `used`, `plan`, …).
    pub details: Map<String, Value>,
    /// Seconds to announce in `Retry-After` (throttling).
    pub retry_after: Option<u64>,
}

/// The error body of every failed API call.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorObject {
    /// Stable machine-readable code, e.g. `unauthenticated`, `channel_limit_reached`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// For plan limits: the limit that was reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// For plan limits: how much of it is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// For plan limits and features: the user's plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: Map::new(), retry_after: None }
    }

    /// Adds a machine-readable detail to the error object.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "log in or send an API token")
    }

    /// The answer for anything the caller may not see, whether or not it exists: a user cannot
    /// learn which videos or channels others track.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no such {what}"))
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// A failure of ours: logged with its cause, answered without it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error: {cause}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut object = Map::new();
        object.insert("code".into(), Value::from(self.code));
        object.insert("message".into(), Value::from(self.message));
        for (k, v) in self.details {
            object.entry(k).or_insert(v);
        }
        let mut response = (self.status, Json(serde_json::json!({ "error": object }))).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => Self::not_found("resource"),
            StoreError::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", "that conflicts with existing data"),
            other => Self::internal(other),
        }
    }
}

impl From<TrackError> for ApiError {
    fn from(e: TrackError) -> Self {
        let code = e.code();
        match e {
            TrackError::BadInput(_) | TrackError::NoSuchChannel(_) | TrackError::VideoUnavailable(..) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
            }
            TrackError::TrackingOver(..) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string()),
            TrackError::Youtube(_) => {
                tracing::warn!(error = %e, "tracking: YouTube unavailable");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, code, "YouTube could not be read just now; try again")
            }
            // Without the caller's plan the upgrade that would help is unknown: see
            // `api::track_refused`, which the handlers use.
            TrackError::LimitReached { limit, used, .. } => {
                Self::new(StatusCode::FORBIDDEN, code, e.to_string()).with("limit", limit).with("used", used)
            }
            TrackError::Store(inner) => inner.into(),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::BadInput(message) => Self::bad_request("bad_input", message),
            AccountError::Store(inner) => inner.into(),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(format!("{e:#}"))
    }
}
