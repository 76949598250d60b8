//! The weekly digest's settings: `/settings/digest` (signed in: on or off, and the outgoing
//! webhook the same findings are POSTed to, with its deliveries) and the unsubscribe
//! link every digest carries, `/unsubscribe/digest?token=…`. The link works without logging in
//! (mail clients' one-click unsubscribe, RFC 8058, POSTs to it): its random token, of which the
//! store keeps only the hash, is its whole authority and can only turn that user's digest off.
//! Opening the link (GET) only asks for confirmation, so a mail scanner that follows links
//! unsubscribes nobody.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{CsrfForm, PageUser, error_page, form_user, render};
use crate::AppState;
use crate::api::webhook::{DELIVERIES_LISTED, PingResult, WebhookView, webhooks};
use crate::auth::hash_token;
use crate::error::ApiError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings/digest", get(settings_page).post(settings_submit))
        .route("/settings/webhook", post(webhook_submit))
        .route("/settings/webhook/test", post(webhook_test))
        .route("/settings/webhook/delete", post(webhook_delete))
        .route("/unsubscribe/digest", get(unsubscribe_page).post(unsubscribe_submit))
}

#[derive(askama::Template)]
#[template(path = "digest_settings.html")]
struct SettingsTemplate<'a> {
    enabled: bool,
    /// `None`: the operator allows no webhook hosts.
    webhook: Option<WebhookView>,
    flash: Flash,
    signed_in: bool,
    csrf: &'a str,
}

/// What a webhook form just did, shown once.
#[derive(Debug, Default)]
struct Flash {
    /// A new signing secret.
    new_secret: Option<String>,
    /// Why the URL given was refused, or the test delivery failed.
    error: Option<String>,
    /// How the test delivery went.
    notice: Option<String>,
}

/// The settings page, with what a webhook form just did.
async fn settings(state: &AppState, user: &PageUser, flash: Flash) -> Response {
    let service = state.service();
    let enabled = match service.digest_enabled(user.caller.user.id).await {
        Ok(enabled) => enabled,
        Err(e) => return error_page(&ApiError::from(e)),
    };
    let webhook = match &state.webhooks {
        Some(webhooks) => match service.webhook_settings(user.caller.user.id, DELIVERIES_LISTED).await {
            Ok(settings) => Some(WebhookView::of(settings, webhooks)),
            Err(e) => return error_page(&e.into()),
        },
        None => None,
    };
    render(&SettingsTemplate { enabled, webhook, flash, signed_in: true, csrf: &user.csrf })
}

async fn settings_page(State(state): State<AppState>, user: PageUser) -> Response {
    settings(&state, &user, Flash::default()).await
}

#[derive(Debug, Deserialize)]
pub struct WebhookForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    url: String,
}

async fn webhook_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<WebhookForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let webhooks = match webhooks(&state) {
        Ok(webhooks) => webhooks,
        Err(e) => return error_page(&e),
    };
    match state.service().set_webhook(webhooks, user.caller.user.id, &form.url).await.map_err(ApiError::from) {
        Ok(created) => settings(&state, &user, Flash { new_secret: Some(created.secret), ..Flash::default() }).await,
        Err(e) if e.code == "invalid_webhook_url" => {
            let mut page = settings(&state, &user, Flash { error: Some(e.message.clone()), ..Flash::default() }).await;
            *page.status_mut() = e.status;
            page
        }
        Err(e) => error_page(&e),
    }
}

async fn webhook_test(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let result = match webhooks(&state) {
        Ok(webhooks) => state.service().ping_webhook(webhooks, user.caller.user.id).await.map(PingResult::of),
        Err(e) => return error_page(&e),
    };
    let flash = match result {
        Ok(r) if r.delivered => Flash {
            notice: Some(format!("Test delivery sent: the receiver answered {}.", r.status_code.unwrap_or(200))),
            ..Flash::default()
        },
        Ok(r) => {
            Flash { error: Some(format!("Test delivery failed: {}", r.error.unwrap_or_default())), ..Flash::default() }
        }
        Err(e) => return error_page(&e.into()),
    };
    settings(&state, &user, flash).await
}

async fn webhook_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match state.service().delete_webhook(user.caller.user.id).await {
        Ok(_) => Redirect::to("/settings/digest").into_response(),
        Err(e) => error_page(&ApiError::from(e)),
    }
}

#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf_token: String,
    /// `on` or `off`.
    #[serde(default)]
    digest: String,
}

async fn settings_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SettingsForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let enabled = match form.digest.as_str() {
        "on" => true,
        "off" => false,
        other => {
            return error_page(&ApiError::bad_request(
                "invalid_setting",
                format!("digest must be on or off, not {other:?}"),
            ));
        }
    };
    match state.service().set_digest_enabled(user.caller.user.id, enabled).await {
        Ok(_) => Redirect::to("/settings/digest").into_response(),
        Err(e) => error_page(&ApiError::from(e)),
    }
}

#[derive(askama::Template)]
#[template(path = "unsubscribe.html")]
struct UnsubscribeTemplate<'a> {
    /// The token to confirm with, or `None` once done.
    token: Option<&'a str>,
    signed_in: bool,
    csrf: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// A token as digests write it: 64 lowercase hex digits.
fn valid_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn invalid_link() -> Response {
    error_page(&ApiError::bad_request("invalid_link", "This unsubscribe link is not valid."))
}

async fn unsubscribe_page(Query(query): Query<TokenQuery>) -> Response {
    if !valid_token(&query.token) {
        return invalid_link();
    }
    render(&UnsubscribeTemplate { token: Some(&query.token), signed_in: false, csrf: "" })
}

async fn unsubscribe_submit(State(state): State<AppState>, Query(query): Query<TokenQuery>) -> Response {
    if !valid_token(&query.token) {
        return invalid_link();
    }
    match state.service().unsubscribe_digest(&hash_token(&query.token)).await {
        Ok(Some(_)) => render(&UnsubscribeTemplate { token: None, signed_in: false, csrf: "" }),
        Ok(None) => invalid_link(),
        Err(e) => error_page(&ApiError::from(e)),
    }
}
