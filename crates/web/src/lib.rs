//! tubewatch's HTTP edge (axum): health, Prometheus metrics, accounts and the JSON API under
//! `/api/v1` (documented by the OpenAPI document at `/api/v1/openapi.json`), and Stripe billing.
//!
//! Every route is registered through `utoipa_axum`'s `OpenApiRouter` (`routes!`), so a route
//! cannot be served without being documented; a test checks the document against the router.
//! Modules: `auth` (who is calling, CSRF, throttling), `guard` (concurrency, deadlines, the
//! same-origin check), `error` (the one error type), `config` (plans, limits, Stripe), `api`
//! (handlers), `pages` (the HTML UI), `accounts` (the account flows both share), `abtests_web`
//! (the A/B engine both share), `series_cache` (the chart API's answers and ETags), `billing`
//! (Stripe checkout and webhooks). Handlers and pages reach the store through the worker's
//! `Service` (`AppState::service`), never through each other; only the health, readiness and
//! metrics endpoints ask the store directly.
#![forbid(unsafe_code)]

mod abtest_form;
mod abtests_web;
pub mod accounts;
pub mod api;
pub mod auth;
pub mod billing;
pub mod config;
pub mod error;
pub mod guard;
pub mod pages;
mod path_ids;
pub mod series_cache;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Json};
use serde::de::DeserializeOwned;
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tubewatch_core::Clock;
use tubewatch_store::Store;
use tubewatch_worker::{Blobs, Metrics, Service, Tracker};
use utoipa::OpenApi;

use crate::api::SecurityAddon;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::config::WebConfig;
pub use crate::error::{ApiError, ErrorBody};

/// What every handler may use. Cloned per request (cheap: `Arc`s and handles).
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Resolves and validates what users ask to track (any URL form) and creates the targets.
    pub tracker: Tracker,
    /// Archived thumbnails, served only through an authorised route.
    pub blobs: Blobs,
    pub config: Arc<WebConfig>,
    /// The A/B test engine and pending YouTube connections; `None`: `[abtests]` is not configured.
    pub abtests: Option<api::abtests::AbTestsWeb>,
    /// Outgoing webhooks; `None`: the operator allows no webhook hosts.
    pub webhooks: Option<tubewatch_worker::Webhooks>,
    /// The chart API's answers per video and series version (`SeriesCache::default()`).
    pub series_cache: series_cache::SeriesCache,
}

impl AppState {
    /// The application's use cases over this state's store and clock: pages and API handlers go
    /// through them, and only present their answers.
    pub fn service(&self) -> Service<'_> {
        Service::new(&*self.store, &*self.clock)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "tubewatch API", description = "Hourly YouTube views, thumbnail and title changes, plans and billing."),
    components(schemas(ErrorBody)),
    modifiers(&SecurityAddon),
)]
struct ApiDoc;

/// Every documented route. The only way routes are added: what is registered here is what the
/// OpenAPI document lists.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .merge(api::routes())
        .merge(billing::routes())
}

/// The OpenAPI 3 document, generated from the handlers' annotations.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| documented_routes().split_for_parts().1)
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "ops", responses((status = 200, description = "OpenAPI 3 document")))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi().clone())
}

/// The whole HTTP edge: every route, the OpenAPI document, security headers, body limits, the
/// request guards, and request ids with a tracing span per request.
pub fn router(state: AppState) -> Router {
    let (router, _) = documented_routes().split_for_parts();
    let secure = state.config.accounts.cookie_secure;
    let max_body = state.config.accounts.max_body_bytes;
    let slots = Arc::new(tokio::sync::Semaphore::new(state.config.http.max_concurrent_requests));
    let mut app = router
        .merge(pages::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .with_state(state.clone())
        .layer(middleware::from_fn_with_state(state.clone(), guard::same_origin))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state((state, slots), guard::admit))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header_layer(header::REFERRER_POLICY, "strict-origin-when-cross-origin"))
        .layer(header_layer(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ))
        .layer(header_layer(header::CACHE_CONTROL, "no-store"));
    if secure {
        app = app.layer(header_layer(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains"));
    }
    // Outermost, so that every answer (a guard's 503 or 408 too) has an id and a span.
    app.layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(middleware::map_request(drop_unusable_request_id))
}

/// The header a request's id travels in: taken from the client (or a proxy) when usable,
/// generated (a UUID) otherwise, echoed in the response and recorded in the request's span.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A client's `x-request-id` is kept only when it is short and plain, so logs stay readable.
async fn drop_unusable_request_id(mut request: Request) -> Request {
    let usable = |v: &HeaderValue| {
        let bytes = v.as_bytes();
        (1..=64).contains(&bytes.len())
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    };
    if request.headers().get(REQUEST_ID).is_some_and(|v| !usable(v)) {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

/// Every event logged while a request is handled carries its id, method and path (never the
/// query, which may hold a token).
fn request_span(request: &Request) -> tracing::Span {
    let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
    tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
}

/// Sets a header unless the handler set its own (e.g. thumbnails' `Cache-Control`).
fn header_layer(name: header::HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// Liveness and store reachability.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "The store answers"), (status = 503, description = "The store does not answer")))]
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ok", "now": state.clock.now() }))),
        Err(e) => {
            tracing::error!(error = %e, "health check: store unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" })))
        }
    }
}

/// Readiness: 200 when the database answers a query and the blob store takes a write; 503 with
/// `failed` naming the checks that did not pass (details go to the log, not to the client).
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, description = "Ready: every check passed"),
        (status = 503, description = "Not ready: `failed` lists the checks (`database`, `blobs`) that did not pass")))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(5);
    let in_time = |r: Result<Result<(), String>, tokio::time::error::Elapsed>| {
        r.unwrap_or_else(|_| Err(format!("no answer within {} s", LIMIT.as_secs())))
    };
    let (database, blobs) = tokio::join!(
        tokio::time::timeout(LIMIT, async { state.store.ping().await.map_err(|e| e.to_string()) }),
        tokio::time::timeout(LIMIT, async { state.blobs.check_writable().await.map_err(|e| format!("{e:#}")) }),
    );
    let mut checks = serde_json::Map::new();
    let mut failed = Vec::new();
    for (name, result) in [("database", in_time(database)), ("blobs", in_time(blobs))] {
        let status = match result {
            Ok(()) => "ok",
            Err(error) => {
                tracing::error!(check = name, %error, "readiness: the {name} check failed");
                failed.push(name);
                "failed"
            }
        };
        checks.insert(name.to_owned(), status.into());
    }
    if failed.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready", "checks": checks })))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "failed": failed, "checks": checks })))
    }
}

/// Prometheus text exposition; queue gauges are read from the store at scrape time, so they are
/// true for the whole fleet, not only this process's workers. With `http.metrics_token` set it
/// needs `Authorization: Bearer <token>`; without, it answers only clients on the loopback
/// interface.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "OpenMetrics text"),
    (status = 401, description = "`metrics_token_required`", body = ErrorBody),
    (status = 403, description = "`metrics_local_only`", body = ErrorBody)))]
async fn metrics(
    State(state): State<AppState>,
    ip: accounts::ClientIp,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    match &state.config.http.metrics_token {
        Some(token) => {
            let sent = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if !sent.is_some_and(|sent| auth::constant_time_eq(sent.trim(), token)) {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "metrics_token_required",
                    "send the metrics token",
                ));
            }
        }
        None if !ip.0.is_some_and(|ip| ip.is_loopback()) => {
            return Err(ApiError::forbidden("metrics_local_only", "metrics are served to this machine only"));
        }
        None => {}
    }
    let now = state.clock.now();
    match state.store.queue_stats(now).await {
        Ok(stats) => state.metrics.set_queue(&stats, now),
        Err(e) => tracing::error!(error = %e, "metrics: queue stats unavailable"),
    }
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render()))
}

/// `Json<T>` whose rejections (bad JSON, wrong fields, body too large) are `ApiError`s with the
/// usual error body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    let status = rejection.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ => "bad_input",
    };
    ApiError::new(status, code, rejection.body_text())
}

/// `Query<T>` with `ApiError` rejections.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e: QueryRejection| ApiError::bad_request("bad_input", e.body_text()))
    }
}
