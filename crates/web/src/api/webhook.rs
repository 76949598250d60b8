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
use tubewatch_store::{UserWebhook, WebhookDelivery};
use tubewatch_worker::Webhooks;
use utoipa::ToSchema;

use crate::auth::CurrentUser;
use crate::error::{ApiError, ErrorBody};
use crate::{ApiJson, AppState};

/// Deliveries listed with the webhook.
const DELIVERIES_LISTED: u32 = 20;

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
    Ok(Json(webhook_view(&state, webhooks, &caller).await?))
}

pub(crate) async fn webhook_view(
    state: &AppState,
    webhooks: &Webhooks,
    caller: &CurrentUser,
) -> Result<WebhookView, ApiError> {
    let user = caller.user.id;
    let hook = state.store.webhook(user).await?;
    let deliveries = state.store.webhook_deliveries(user, DELIVERIES_LISTED).await?;
    Ok(WebhookView {
        url: hook.as_ref().map(|h| h.url.clone()),
        created_at: hook.map(|h| h.created_at),
        allowed_hosts: webhooks.allowed_hosts(),
        deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
    })
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
    Ok(Json(set(&state, webhooks, &caller, &body.url).await?))
}

pub(crate) async fn set(
    state: &AppState,
    webhooks: &Webhooks,
    caller: &CurrentUser,
    url: &str,
) -> Result<CreatedWebhook, ApiError> {
    let user = caller.user.id;
    let url = webhooks.check_url(url).map_err(|e| ApiError::bad_request("invalid_webhook_url", e.to_string()))?;
    let secret = Webhooks::new_secret();
    let sealed = webhooks.seal_secret(user, &secret).map_err(ApiError::internal)?;
    let created_at = state.clock.now();
    let hook = UserWebhook { user_id: user, url: url.to_string(), secret: sealed, created_at };
    state.store.set_webhook(&hook).await?;
    tracing::info!(user_id = %user, host = url.host_str().unwrap_or_default(), "user {user} set a webhook");
    Ok(CreatedWebhook { url: hook.url, secret, created_at })
}

/// Removes the caller's webhook.
#[utoipa::path(delete, path = "/api/v1/webhook", tag = "outliers",
    security(("session" = []), ("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 404, description = "no webhook is set", body = ErrorBody)))]
pub async fn delete_webhook(State(state): State<AppState>, caller: CurrentUser) -> Result<StatusCode, ApiError> {
    // Works with webhooks off too: it only removes the caller's own setting.
    if state.store.delete_webhook(caller.user.id).await? {
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
    Ok(Json(ping(&state, webhooks, &caller).await?))
}

const PINGS_PER_WINDOW: u32 = 5;

pub(crate) async fn ping(state: &AppState, webhooks: &Webhooks, caller: &CurrentUser) -> Result<PingResult, ApiError> {
    let user = caller.user.id;
    let hook = state.store.webhook(user).await?.ok_or_else(|| ApiError::not_found("webhook"))?;
    crate::auth::throttle(state, &format!("webhook-test:user:{user}"), PINGS_PER_WINDOW, chrono::Duration::minutes(10))
        .await?;
    let now = state.clock.now();
    let id = format!("ping-{}-{}", user.get(), now.timestamp());
    let body = serde_json::json!({ "id": id, "event": "ping", "created_at": now }).to_string().into_bytes();
    let secret = webhooks.open_secret(user, &hook.secret).map_err(ApiError::internal)?;
    Ok(match webhooks.deliver(&hook.url, &secret, &id, body, now).await {
        Ok(status) => PingResult { delivered: true, status_code: Some(status), error: None },
        Err(e) => PingResult { delivered: false, status_code: e.status, error: Some(e.message) },
    })
}
