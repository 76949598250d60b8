//! The caller's outgoing webhook: `GET`, `PUT` and `DELETE /api/v1/webhook`, and
//! `POST /api/v1/webhook/test` to send a signed ping at once. Each week the
//! outliers of what the caller tracks (the digest's findings) are POSTed to it as JSON, signed
//! with a secret that `PUT` returns once (see `tubewatch_worker::webhook`). The URL must be on a
//! host the operator allows; with none allowed, `GET` and `PUT` answer 503 `webhooks_not_configured`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_store::WebhookDelivery;
use tubewatch_worker::Webhooks;
use tubewatch_worker::service::{NewWebhook, WebhookError, WebhookSettings};
use tubewatch_worker::webhook::SendError;
use utoipa::ToSchema;

use crate::auth::CurrentUser;
use crate::error::{ApiError, ErrorBody};
use crate::{ApiJson, AppState};

/// Deliveries listed with the webhook.
pub(crate) const DELIVERIES_LISTED: u32 = 20;

pub(crate) fn webhooks(state: &AppState) -> Result<&Webhooks, ApiError> {
    state.webhooks.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks_not_configured",
            "webhooks are off on this server: its operator allows no webhook hosts",
        )
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// `https://…` on one of the hosts the server allows.
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub week: String,
    pub url: String,
    pub outliers: i32,
    pub attempts: i32,
    /// The receiver's last HTTP status, if it answered.
    pub status_code: Option<i32>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    pub last_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<WebhookDelivery> for DeliveryView {
    fn from(d: WebhookDelivery) -> Self {
        Self {
            week: d.week,
            url: d.url,
            outliers: d.outliers,
            attempts: d.attempts,
            status_code: d.status_code,
            error: d.error,
            last_attempt_at: d.last_attempt_at,
            delivered_at: d.delivered_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// `null` when no webhook is set.
    pub url: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// The hosts a webhook URL may use on this server.
    pub allowed_hosts: Vec<String>,
    /// The latest deliveries, newest first.
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    pub url: String,
    /// The signing secret, shown this once: requests carry
    /// `Tubewatch-Signature: t=UNIX_SECONDS,v1=HEX(HMAC-SHA256(secret, "{t}.{body}"))`.
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

/// The caller's webhook (without its secret) and its latest deliveries.
#[utoipa::path(get, path = "/api/v1/webhook", tag = "outliers",
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = WebhookView), (status = 401, body = ErrorBody),
        (status = 503, description = "`webhooks_not_configured`", body = ErrorBody)))]
pub async fn get_webhook(State(state): State<AppState>, caller: CurrentUser) -> Result<Json<WebhookView>, ApiError> {
    let webhooks = webhooks(&state)?;
    let settings = state.service().webhook_settings(caller.user.id, DELIVERIES_LISTED).await?;
    Ok(Json(WebhookView::of(settings, webhooks)))
}

impl WebhookView {
    pub(crate) fn of(settings: WebhookSettings, webhooks: &Webhooks) -> Self {
        let WebhookSettings { webhook, deliveries } = settings;
        Self {
            url: webhook.as_ref().map(|h| h.url.clone()),
            created_at: webhook.map(|h| h.created_at),
            allowed_hosts: webhooks.allowed_hosts(),
            deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::InvalidUrl(e) => ApiError::bad_request("invalid_webhook_url", e.to_string()),
            WebhookError::NotSet => ApiError::not_found("webhook"),
            WebhookError::TooManyPings { window } => crate::auth::too_many_attempts(window),
            WebhookError::Crypto(e) => ApiError::internal(e),
            WebhookError::Store(e) => e.into(),
        }
    }
}

/// Sets (or replaces) the caller's webhook, with a new signing secret returned once.
#[utoipa::path(put, path = "/api/v1/webhook", tag = "outliers", request_body = WebhookInput,
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = CreatedWebhook),
        (status = 400, description = "`invalid_webhook_url`: not http(s), or not on an allowed host", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 503, description = "`webhooks_not_configured`", body = ErrorBody)))]
pub async fn set_webhook(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(body): ApiJson<WebhookInput>,
) -> Result<Json<CreatedWebhook>, ApiError> {
    let webhooks = webhooks(&state)?;
    let NewWebhook { url, secret, created_at } =
        state.service().set_webhook(webhooks, caller.user.id, &body.url).await?;
    Ok(Json(CreatedWebhook { url, secret, created_at }))
}

/// Removes the caller's webhook.
#[utoipa::path(delete, path = "/api/v1/webhook", tag = "outliers",
    security(("session" = []), ("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 404, description = "no webhook is set", body = ErrorBody)))]
pub async fn delete_webhook(State(state): State<AppState>, caller: CurrentUser) -> Result<StatusCode, ApiError> {
    // Works with webhooks off too: it only removes the caller's own setting.
    if state.service().delete_webhook(caller.user.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("webhook"))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PingResult {
    /// Whether the receiver answered 2xx.
    pub delivered: bool,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// Why it was not delivered.
    pub error: Option<String>,
}

/// Sends a signed `{"event": "ping"}` to the caller's webhook now and says how the receiver
/// answered (not recorded with the weekly deliveries). At most five per user in ten minutes: each
/// is an outgoing request the service makes on the caller's say-so.
#[utoipa::path(post, path = "/api/v1/webhook/test", tag = "outliers",
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = PingResult), (status = 401, body = ErrorBody),
        (status = 404, description = "no webhook is set", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody),
        (status = 503, description = "`webhooks_not_configured`", body = ErrorBody)))]
pub async fn test_webhook(State(state): State<AppState>, caller: CurrentUser) -> Result<Json<PingResult>, ApiError> {
    let webhooks = webhooks(&state)?;
    let delivered = state.service().ping_webhook(webhooks, caller.user.id).await?;
    Ok(Json(PingResult::of(delivered)))
}

impl PingResult {
    pub(crate) fn of(delivered: Result<u16, SendError>) -> Self {
        match delivered {
            Ok(status) => Self { delivered: true, status_code: Some(status), error: None },
            Err(e) => Self { delivered: false, status_code: e.status, error: Some(e.message) },
        }
    }
}
