//! tubewatch's HTTP edge (axum): health, Prometheus metrics and, as they land, the JSON API and
//! the web pages.
#![forbid(unsafe_code)]

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::json;
use tubewatch_core::Clock;
use tubewatch_store::Store;
use tubewatch_worker::Metrics;

/// What every handler may use. Cloned per request (cheap: `Arc`s).
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: AppState) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics)).with_state(state)
}

/// 200 when the store answers, 503 otherwise; never reveals more than that.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ok", "now": state.clock.now() }))),
        Err(e) => {
            tracing::error!(error = %e, "health check: store unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" })))
        }
    }
}

/// Prometheus text exposition; queue gauges are read from the store at scrape time, so they are
/// true for the whole fleet, not only this process's workers.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let now = state.clock.now();
    match state.store.queue_stats(now).await {
        Ok(stats) => state.metrics.set_queue(&stats, now),
        Err(e) => tracing::error!(error = %e, "metrics: queue stats unavailable"),
    }
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.render(),
    )
}
