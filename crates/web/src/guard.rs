//! What every request passes before its handler: a bound on requests handled at once, a deadline
//! for the whole request (its body included), and, for state changes, a same-origin check.
//!
//! The origin check is the first line against cross-site request forgery: a browser names the
//! page a request comes from in `Origin` (or at least `Referer`), and a state-changing request
//! naming another site is refused before any handler runs, log-in and sign-up included. Requests
//! naming no origin at all are not from a browser page (scripts, Stripe's webhooks) and pass; the
//! session's CSRF token still guards every cookie-authenticated change.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::AppState;
use crate::error::ApiError;

/// Admits a request if fewer than `max_concurrent_requests` are being handled (503 `overloaded`
/// otherwise) and answers 408 `request_timeout` when it is not done within the deadline.
pub async fn admit(State((state, slots)): State<(AppState, Arc<Semaphore>)>, request: Request, next: Next) -> Response {
    let Ok(_slot) = slots.try_acquire() else {
        let mut busy = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "the server is busy; try again");
        busy.retry_after = Some(1);
        return busy.into_response();
    };
    match tokio::time::timeout(state.config.http.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request took too long").into_response()
        }
    }
}

/// Refuses a state-changing request whose `Origin` (or `Referer`) is another site: 403
/// `cross_origin`.
pub async fn same_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !origin_allowed(request.headers(), request.uri().authority().map(|a| a.as_str()), &state) {
        tracing::warn!(method = %request.method(), path = %request.uri().path(), "cross-origin request refused");
        return ApiError::forbidden("cross_origin", "cross-site requests are refused").into_response();
    }
    next.run(request).await
}

fn origin_allowed(headers: &HeaderMap, uri_authority: Option<&str>, state: &AppState) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let claimed = match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(origin), _) => origin.to_owned(),
        (None, Some(referer)) => match origin_of(referer) {
            Some(origin) => origin,
            None => return false,
        },
        (None, None) => return true,
    };
    if state.config.http.public_origin.as_deref().is_some_and(|public| public.eq_ignore_ascii_case(&claimed)) {
        return true;
    }
    // Otherwise the page must come from the host the request was sent to.
    let Some((_, authority)) = claimed.split_once("://") else { return false };
    let host = text(header::HOST).or(uri_authority);
    host.is_some_and(|host| host.eq_ignore_ascii_case(authority))
}

/// `scheme://authority` of a URL (`None` when it has none).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().filter(|a| !a.is_empty())?;
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_referers() {
        assert_eq!(origin_of("https://tw.example/login?x=1").as_deref(), Some("https://tw.example"));
        assert_eq!(origin_of("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(origin_of("http:///nohost"), None);
        assert_eq!(origin_of("not a url"), None);
    }
}
