//! The account page: plan and usage against its limits, billing (Stripe checkout), API tokens
//! (created — shown once —, listed, revoked), the YouTube connection used by A/B tests, and the
//! password. Every form posts to a small handler here that goes through the same use cases as the
//! JSON API (the worker's `Service`, `auth::change_password`), so the rules (limits, CSRF,
//! validation, audit) are the API's; errors are shown inline.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::views::{AllowanceView, TimeView};
use super::{CsrfForm, PageUser, error_page, form_user, render_with};
use tubewatch_worker::service::TokenRequest;

use crate::abtests_web::engine;
use crate::api::Usage;
use crate::error::ApiError;
use crate::{AppState, auth, billing};

pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub scope: &'static str,
    pub created: TimeView,
    /// `None`: a token made before tokens expired.
    pub expires: Option<TimeView>,
    pub last_used: Option<TimeView>,
    pub revoked: Option<TimeView>,
}

pub struct ConnectionView {
    pub channel_id: String,
    pub channel_title: String,
    pub active: bool,
    pub reason: Option<String>,
    pub connected: TimeView,
}

/// Which form an error or notice belongs to, so it is shown beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Billing,
    Tokens,
    Youtube,
    Password,
}

#[derive(askama::Template)]
#[template(path = "account.html")]
struct AccountTemplate {
    email: String,
    plan: String,
    is_admin: bool,
    channels_usage: AllowanceView,
    videos_usage: AllowanceView,
    ab_tests: bool,
    billing_enabled: bool,
    tokens: Vec<TokenRow>,
    /// A token just created: shown this once.
    new_token: Option<(String, String)>,
    youtube: Option<ConnectionView>,
    abtests_configured: bool,
    /// The caller's monitored channels, to pick the one to connect.
    channels: Vec<(String, String)>,
    error: Option<(Section, String)>,
    notice: Option<(Section, String)>,
    signed_in: bool,
    csrf: String,
}

impl AccountTemplate {
    fn error_for(&self, section: Section) -> Option<&str> {
        self.error.as_ref().filter(|(s, _)| *s == section).map(|(_, m)| m.as_str())
    }

    fn notice_for(&self, section: Section) -> Option<&str> {
        self.notice.as_ref().filter(|(s, _)| *s == section).map(|(_, m)| m.as_str())
    }
}

async fn load(state: &AppState, user: &PageUser) -> Result<AccountTemplate, ApiError> {
    let me = &user.caller.user;
    let service = state.service();
    let usage = Usage::of(state, me).await?;
    let tokens = service
        .api_tokens(me.id)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            scope: t.scope.as_str(),
            created: TimeView::of(t.created_at),
            expires: t.expires_at.map(TimeView::of),
            last_used: t.last_used_at.map(TimeView::of),
            revoked: t.revoked_at.map(TimeView::of),
        })
        .collect();
    let youtube = match service.youtube_connection(me.id).await? {
        Some(c) => {
            let title = service.channel_title(&c.channel_id).await?;
            Some(ConnectionView {
                channel_id: c.channel_id.to_string(),
                channel_title: title,
                active: c.state == tubewatch_store::ConnectionState::Active,
                reason: c.state_reason,
                connected: TimeView::of(c.connected_at),
            })
        }
        None => None,
    };
    let mut channels = Vec::new();
    for id in service.monitored_channels(me.id).await? {
        let title = service.channel_title(&id).await?;
        channels.push((id.to_string(), title));
    }
    Ok(AccountTemplate {
        email: me.email.to_string(),
        plan: usage.plan.clone(),
        is_admin: usage.is_admin,
        channels_usage: (&usage.channels).into(),
        videos_usage: (&usage.videos_this_month).into(),
        ab_tests: usage.ab_tests,
        billing_enabled: state.config.stripe.is_some(),
        tokens,
        new_token: None,
        youtube,
        abtests_configured: state.abtests.is_some(),
        channels,
        error: None,
        notice: None,
        signed_in: true,
        csrf: user.csrf.clone(),
    })
}

/// The page, with an optional error or notice beside one of its forms.
async fn page(
    state: &AppState,
    user: &PageUser,
    status: StatusCode,
    edit: impl FnOnce(&mut AccountTemplate),
) -> Response {
    match load(state, user).await {
        Ok(mut template) => {
            edit(&mut template);
            render_with(status, &template)
        }
        Err(e) => error_page(&e),
    }
}

/// The page again with the API's error beside the form that failed; server failures are error
/// pages.
async fn failed(state: &AppState, user: &PageUser, section: Section, e: ApiError) -> Response {
    if e.status.is_server_error() && e.status != StatusCode::SERVICE_UNAVAILABLE && e.status != StatusCode::BAD_GATEWAY
    {
        return error_page(&e);
    }
    page(state, user, e.status, |t| t.error = Some((section, e.message))).await
}

#[tracing::instrument(skip_all, fields(user_id = %user.caller.user.id))]
pub async fn account_page(State(state): State<AppState>, user: PageUser) -> Response {
    page(&state, &user, StatusCode::OK, |_| {}).await
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    /// `read` or `write`.
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// Creates a token and shows it once, on this response only.
pub async fn token_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let request =
        TokenRequest { name: &form.name, scope: form.scope.as_deref(), expires_in_days: form.expires_in_days };
    let secret = auth::MintedApiToken::new();
    match state.service().create_api_token(user.caller.user.id, request, secret.minted()).await {
        Ok(created) => {
            page(&state, &user, StatusCode::CREATED, |t| t.new_token = Some((created.name, secret.token))).await
        }
        Err(e) => failed(&state, &user, Section::Tokens, e.into()).await,
    }
}

pub async fn token_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token_id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let Ok(token_id) = token_id.parse::<i64>() else { return error_page(&ApiError::not_found("token")) };
    match state.service().revoke_api_token(user.caller.user.id, token_id).await {
        Ok(true) => Redirect::to("/account#tokens").into_response(),
        Ok(false) => error_page(&ApiError::not_found("token")),
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::NOT_FOUND {
                return error_page(&e);
            }
            failed(&state, &user, Section::Tokens, e).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

pub async fn password_change(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<PasswordForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match auth::change_password(&state, &user.caller, form.current_password, form.new_password).await {
        Ok(_) => {
            let notice = "Password changed. Your other sessions were logged out.".to_owned();
            page(&state, &user, StatusCode::OK, |t| t.notice = Some((Section::Password, notice))).await
        }
        Err(e) => failed(&state, &user, Section::Password, e).await,
    }
}

#[derive(askama::Template)]
#[template(path = "checkout.html")]
struct CheckoutTemplate {
    url: String,
    signed_in: bool,
    csrf: String,
}

/// Starts a Stripe Checkout and sends the browser there: by a page that goes on at once (and a
/// link), because the pages' `form-action 'self'` policy forbids a form from redirecting to
/// another site.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match billing::start_checkout(&state, &user.caller).await {
        Ok(checkout) => super::render(&CheckoutTemplate { url: checkout.url, signed_in: true, csrf: user.csrf }),
        Err(e) => failed(&state, &user, Section::Billing, e).await,
    }
}

pub async fn youtube_disconnect(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let disconnected = match engine(&state, &user.caller) {
        Ok(web) => web.engine.disconnect(user.caller.user.id).await.map_err(ApiError::from),
        Err(refused) => Err(refused),
    };
    match disconnected.and_then(|any| any.then_some(()).ok_or_else(|| ApiError::not_found("YouTube connection"))) {
        Ok(()) => {
            let notice = "YouTube account disconnected; running A/B tests are paused.".to_owned();
            page(&state, &user, StatusCode::OK, |t| t.notice = Some((Section::Youtube, notice))).await
        }
        Err(e) => failed(&state, &user, Section::Youtube, e).await,
    }
}
