//! The server-rendered web UI (askama templates in `crates/web/templates/`): sign-up with email
//! confirmation, log-in and log-out, password reset, the dashboard (with what changed since the last visit), the add-a-channel-or-video
//! form, the channel page with its typical band, the video page with its chart, the video series
//! as CSV or JSON downloads, the weekly outliers, the A/B test pages and the account page. Static assets (the vendored uPlot chart library, the
//! page script and style) are compiled into the binary and served from `/assets/`.
//!
//! Pages are HTML, not API: they are merged into the router outside the OpenAPI document. They
//! go through the same use cases as the JSON API (the worker's `Service` and `Tracker`, the
//! account flows of `crate::accounts`), never through its handlers, and use its `CurrentUser`
//! extractor, so access rules are the API's:
//! a page for a visitor without a session redirects to `/login`, and a video the caller does not
//! track answers 404 exactly like one that does not exist. HTML forms cannot send the
//! `X-CSRF-Token` header, so every form carries the session's CSRF token in a hidden field, and
//! `form_user` hands it to the same check the API uses. The log-in and sign-up forms, posted
//! before there is a session, carry a token of their own, double-submitted against a
//! `SameSite=Strict` cookie, so that no other site can log a visitor in to an account of its
//! choosing.
//!
//! Mailed links (`/verify-email?token=…`, `/reset-password?token=…`) open a page with a button;
//! only the button's `POST` uses the token, so a mail scanner or link preview that fetches the
//! link does not use it up.

mod abtests;
mod account_page;
mod assets;
mod channel;
mod digest;
mod export;
mod outliers;
mod views;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tubewatch_core::VideoId;
use tubewatch_store::User;
use tubewatch_worker::service::VisibleVideo;

use crate::AppState;
use crate::accounts::{self, ClientIp};
use crate::api::track_refused;
use crate::api::tracking;
use crate::auth::{self, CSRF_HEADER, CurrentUser};
use crate::error::ApiError;

pub use views::{compact_number, exact_number};

/// Every page and asset route. Merged into the router by `crate::router`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signup", get(signup_page).post(signup_submit))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout_submit))
        .route("/forgot-password", get(forgot_page).post(forgot_submit))
        .route("/reset-password", get(reset_page).post(reset_submit))
        .route("/verify-email", get(verify_page).post(verify_submit))
        .route("/verify-email/resend", get(resend_page).post(resend_submit))
        .route("/dashboard", get(views::dashboard))
        .route("/track", get(track_page).post(track_submit))
        .route("/channels/{channel_id}", get(channel::channel_page))
        .route("/channels/{channel_id}/remove", post(channel::remove_submit))
        .route("/outliers", get(outliers::outliers_page))
        .route("/abtests", get(abtests::list_page))
        .route(
            "/abtests/new",
            get(abtests::new_page)
                .post(abtests::create_submit)
                .layer(DefaultBodyLimit::max(crate::api::abtests::CREATE_BODY_LIMIT)),
        )
        .route("/abtests/{test_id}", get(abtests::detail_page))
        .route("/abtests/{test_id}/stop", post(abtests::stop_submit))
        .route("/abtests/{test_id}/variants/{variant}", get(abtests::variant_thumbnail))
        .route("/account", get(account_page::account_page))
        .route("/account/tokens", post(account_page::token_create))
        .route("/account/tokens/{token_id}/revoke", post(account_page::token_revoke))
        .route("/account/password", post(account_page::password_change))
        .route("/account/upgrade", post(account_page::upgrade))
        .route("/account/youtube/disconnect", post(account_page::youtube_disconnect))
        .route("/videos/{video_id}", get(views::video_page))
        .route("/videos/{video_id}/remove", post(views::video_remove_submit))
        .route("/videos/{video_id}/series.csv", get(export::series_csv))
        .route("/videos/{video_id}/series.json", get(export::series_json))
        .route("/assets/{name}", get(assets::asset))
        .merge(digest::routes())
}

/// A signed-in page visitor. Without a session (or with an expired one) the request is answered
/// with a redirect to `/login`, never with the API's JSON error.
#[derive(Debug, Clone)]
pub struct PageUser {
    pub caller: CurrentUser,
    /// The session's CSRF token, echoed by the page's forms (empty under a bearer token).
    pub csrf: String,
}

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match <CurrentUser as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(Some(caller)) => Ok(Self { caller, csrf: csrf_of(&parts.headers, state) }),
            Ok(None) => Err(to_login()),
            Err(e) if e.status == StatusCode::UNAUTHORIZED => Err(to_login()),
            Err(e) => Err(error_page(&e)),
        }
    }
}

fn csrf_of(headers: &HeaderMap, state: &AppState) -> String {
    auth::session_of(headers, state).map(|s| auth::csrf_token(&s)).unwrap_or_default()
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// The caller of a form submission: the API's `CurrentUser` check (session or bearer, CSRF for
/// cookie sessions) with the CSRF token taken from the form's hidden field.
async fn form_user(state: &AppState, headers: &HeaderMap, csrf_field: &str) -> Result<PageUser, Response> {
    let mut request =
        Request::builder().method(Method::POST).body(()).map_err(|e| error_page(&ApiError::internal(e)))?;
    *request.headers_mut() = headers.clone();
    if let Ok(value) = HeaderValue::from_str(csrf_field) {
        request.headers_mut().insert(CSRF_HEADER, value);
    }
    let (mut parts, ()) = request.into_parts();
    match <CurrentUser as FromRequestParts<AppState>>::from_request_parts(&mut parts, state).await {
        Ok(caller) => Ok(PageUser { caller, csrf: csrf_of(headers, state) }),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => Err(to_login()),
        Err(e) => Err(error_page(&e)),
    }
}

/// Renders a template; a rendering failure is ours and logged.
fn render(template: &impl askama::Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => error_page(&ApiError::internal(e)),
    }
}

fn render_with(status: StatusCode, template: &impl askama::Template) -> Response {
    let mut response = render(template);
    if response.status().is_success() {
        *response.status_mut() = status;
    }
    response
}

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    title: &'a str,
    message: &'a str,
    signed_in: bool,
    csrf: &'a str,
}

/// An HTML error page with the error's status; its message is the API's (never internals).
pub(crate) fn error_page(e: &ApiError) -> Response {
    let title = e.status.canonical_reason().unwrap_or("Error");
    let message =
        if e.status == StatusCode::NOT_FOUND { "There is nothing here, or it is not yours." } else { &e.message };
    let template = ErrorTemplate { title, message, signed_in: false, csrf: "" };
    match askama::Template::render(&template) {
        Ok(html) => (e.status, Html(html)).into_response(),
        Err(_) => (e.status, title.to_owned()).into_response(),
    }
}

/// The dashboard, which sends visitors without a session on to `/login`.
async fn home() -> Redirect {
    Redirect::to("/dashboard")
}

#[derive(askama::Template)]
#[template(path = "auth.html")]
struct AuthTemplate<'a> {
    /// `signup` or `login`.
    mode: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    /// The log-in was refused for an unconfirmed email: offer to mail a new link.
    unverified: bool,
    /// The form's own token (there is no session yet).
    form_token: &'a str,
    signed_in: bool,
    csrf: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct CredentialsForm {
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// The log-in and sign-up forms' token cookie.
fn form_cookie(state: &AppState) -> &'static str {
    if state.config.accounts.cookie_secure { "__Host-tw_form" } else { "tw_form" }
}

/// Renders the log-in or sign-up form with the visitor's form token, setting the cookie when the
/// visitor has none yet.
fn auth_page(
    state: &AppState,
    headers: &HeaderMap,
    mode: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    auth_page_with(state, headers, AuthTemplate { mode, email, error, ..AuthTemplate::blank() }, status)
}

fn auth_page_with(state: &AppState, headers: &HeaderMap, template: AuthTemplate<'_>, status: StatusCode) -> Response {
    with_form_token(state, headers, |token| render_with(status, &AuthTemplate { form_token: token, ..template }))
}

impl AuthTemplate<'_> {
    fn blank() -> Self {
        Self {
            mode: "login",
            email: "",
            error: None,
            notice: None,
            unverified: false,
            form_token: "",
            signed_in: false,
            csrf: "",
        }
    }
}

/// A pre-session form rendered with the visitor's form token (the cookie is set when new).
fn with_form_token(state: &AppState, headers: &HeaderMap, render_form: impl FnOnce(&str) -> Response) -> Response {
    let existing = auth::cookie(headers, form_cookie(state)).filter(|t| t.len() == 64);
    let token = existing.clone().unwrap_or_else(auth::random_secret);
    let mut response = render_form(&token);
    if existing.is_none() {
        let secure = state.config.accounts.cookie_secure;
        let cookie = cookie::Cookie::build((form_cookie(state), token))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(cookie::SameSite::Strict)
            .max_age(cookie::time::Duration::days(1))
            .build();
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Whether a posted pre-session form carries the visitor's form token.
fn form_token_ok(state: &AppState, headers: &HeaderMap, form_token: &str) -> bool {
    auth::cookie(headers, form_cookie(state)).is_some_and(|t| !t.is_empty() && auth::constant_time_eq(&t, form_token))
}

const FORM_EXPIRED: &str = "This form has expired. Please try again.";

async fn signup_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    auth_page(&state, &headers, "signup", "", None, StatusCode::OK)
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    auth_page(&state, &headers, "login", "", None, StatusCode::OK)
}

/// A redirect that sets `cookies` (a new session's, or the ones clearing it).
fn redirect_setting_cookies(cookies: impl IntoIterator<Item = HeaderValue>, to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    for value in cookies {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Opens a session for `user` and sends the browser on to `to` with it.
async fn signed_in(state: &AppState, user: User, to: &str) -> Result<Response, ApiError> {
    let session = accounts::open_session(state, user).await?;
    Ok(redirect_setting_cookies(session.cookies(state)?, to))
}

async fn signup_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    axum::Form(form): axum::Form<CredentialsForm>,
) -> Response {
    credentials_submit(state, headers, ip, form, "signup").await
}

async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    axum::Form(form): axum::Form<CredentialsForm>,
) -> Response {
    credentials_submit(state, headers, ip, form, "login").await
}

/// A posted log-in or sign-up form: its form token is checked, then the account use case runs.
async fn credentials_submit(
    state: AppState,
    headers: HeaderMap,
    ip: ClientIp,
    form: CredentialsForm,
    mode: &str,
) -> Response {
    if !form_token_ok(&state, &headers, &form.form_token) {
        return auth_page(&state, &headers, mode, &form.email, Some(FORM_EXPIRED), StatusCode::FORBIDDEN);
    }
    let email = form.email;
    let outcome = if mode == "signup" {
        accounts::signup(&state, ip, &email, form.password).await.map(|()| None)
    } else {
        match accounts::login(&state, ip, &email, form.password).await {
            Ok(user) => signed_in(&state, user, "/dashboard").await.map(Some),
            Err(e) => Err(e),
        }
    };
    match outcome {
        Ok(Some(session)) => session,
        // The same page for a new and a taken email: what happens next is in the mail.
        Ok(None) if state.config.accounts.verify_email => verify_page_with(
            &state,
            &headers,
            VerifyTemplate { mode: "sent", email: &email, ..VerifyTemplate::blank() },
            StatusCode::OK,
        ),
        Ok(None) => {
            let notice = "If this email had no account, it has one now: log in with the password you chose.";
            let template = AuthTemplate { email: &email, notice: Some(notice), ..AuthTemplate::blank() };
            auth_page_with(&state, &headers, template, StatusCode::OK)
        }
        Err(e) if e.status.is_server_error() && e.status != StatusCode::SERVICE_UNAVAILABLE => error_page(&e),
        Err(e) => {
            let unverified = e.code == "email_unverified";
            let template =
                AuthTemplate { mode, email: &email, error: Some(&e.message), unverified, ..AuthTemplate::blank() };
            auth_page_with(&state, &headers, template, e.status)
        }
    }
}

#[derive(askama::Template)]
#[template(path = "verify.html")]
struct VerifyTemplate<'a> {
    /// `sent` (after sign-up: check your mail), `confirm` (the mailed link's page, with its
    /// button), `resend` (the ask-for-a-new-link form) or `resent`.
    mode: &'a str,
    email: &'a str,
    token: &'a str,
    form_token: &'a str,
    error: Option<&'a str>,
    signed_in: bool,
    csrf: &'a str,
}

impl VerifyTemplate<'_> {
    fn blank() -> Self {
        Self { mode: "confirm", email: "", token: "", form_token: "", error: None, signed_in: false, csrf: "" }
    }
}

fn verify_page_with(
    state: &AppState,
    headers: &HeaderMap,
    template: VerifyTemplate<'_>,
    status: StatusCode,
) -> Response {
    with_form_token(state, headers, |token| render_with(status, &VerifyTemplate { form_token: token, ..template }))
}

#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
}

/// The page of the mailed link: a button that confirms. Opening it uses nothing up.
async fn verify_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<TokenQuery>,
) -> Response {
    let token: String = query.token.chars().filter(char::is_ascii_hexdigit).take(64).collect();
    verify_page_with(&state, &headers, VerifyTemplate { token: &token, ..VerifyTemplate::blank() }, StatusCode::OK)
}

async fn verify_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<VerifyForm>,
) -> Response {
    let token: String = form.token.chars().filter(char::is_ascii_hexdigit).take(64).collect();
    if !form_token_ok(&state, &headers, &form.form_token) {
        let template = VerifyTemplate { token: &token, error: Some(FORM_EXPIRED), ..VerifyTemplate::blank() };
        return verify_page_with(&state, &headers, template, StatusCode::FORBIDDEN);
    }
    let outcome = match accounts::verify_email(&state, &token).await {
        Ok(user) => signed_in(&state, user, "/dashboard").await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(session) => session,
        Err(e) if e.status.is_server_error() && e.status != StatusCode::SERVICE_UNAVAILABLE => error_page(&e),
        Err(e) => {
            let message = format!("{}. Ask for a new link below.", e.message);
            let template = VerifyTemplate { mode: "resend", error: Some(&message), ..VerifyTemplate::blank() };
            verify_page_with(&state, &headers, template, e.status)
        }
    }
}

async fn resend_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    verify_page_with(&state, &headers, VerifyTemplate { mode: "resend", ..VerifyTemplate::blank() }, StatusCode::OK)
}

async fn resend_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    axum::Form(form): axum::Form<VerifyForm>,
) -> Response {
    if !form_token_ok(&state, &headers, &form.form_token) {
        let template =
            VerifyTemplate { mode: "resend", email: &form.email, error: Some(FORM_EXPIRED), ..VerifyTemplate::blank() };
        return verify_page_with(&state, &headers, template, StatusCode::FORBIDDEN);
    }
    match accounts::resend_verification(&state, ip, &form.email).await {
        Ok(_) => verify_page_with(
            &state,
            &headers,
            VerifyTemplate { mode: "resent", email: &form.email, ..VerifyTemplate::blank() },
            StatusCode::OK,
        ),
        Err(e) if e.status.is_server_error() => error_page(&e),
        Err(e) => {
            let template = VerifyTemplate {
                mode: "resend",
                email: &form.email,
                error: Some(&e.message),
                ..VerifyTemplate::blank()
            };
            verify_page_with(&state, &headers, template, e.status)
        }
    }
}

#[derive(askama::Template)]
#[template(path = "reset.html")]
struct ResetTemplate<'a> {
    /// `request` (the email form), `confirm` (the new-password form) or `done`.
    mode: &'a str,
    token: &'a str,
    form_token: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    signed_in: bool,
    csrf: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

fn reset_page_with(
    state: &AppState,
    headers: &HeaderMap,
    mode: &str,
    token: &str,
    message: Result<Option<&str>, &str>,
    status: StatusCode,
) -> Response {
    let (notice, error) = match message {
        Ok(notice) => (notice, None),
        Err(error) => (None, Some(error)),
    };
    with_form_token(state, headers, |form_token| {
        let template = ResetTemplate { mode, token, form_token, error, notice, signed_in: false, csrf: "" };
        render_with(status, &template)
    })
}

async fn forgot_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    reset_page_with(&state, &headers, "request", "", Ok(None), StatusCode::OK)
}

async fn forgot_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    axum::Form(form): axum::Form<ResetForm>,
) -> Response {
    if !form_token_ok(&state, &headers, &form.form_token) {
        return reset_page_with(&state, &headers, "request", "", Err(FORM_EXPIRED), StatusCode::FORBIDDEN);
    }
    match accounts::request_reset(&state, ip, &form.email).await {
        Ok(_) => {
            let sent = "If this email has an account, a link to choose a new password is on its way.";
            reset_page_with(&state, &headers, "done", "", Ok(Some(sent)), StatusCode::OK)
        }
        Err(e) if e.status.is_server_error() => error_page(&e),
        Err(e) => reset_page_with(&state, &headers, "request", "", Err(&e.message), e.status),
    }
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<TokenQuery>,
) -> Response {
    let token: String = query.token.chars().filter(char::is_ascii_hexdigit).take(64).collect();
    reset_page_with(&state, &headers, "confirm", &token, Ok(None), StatusCode::OK)
}

async fn reset_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ResetForm>,
) -> Response {
    if !form_token_ok(&state, &headers, &form.form_token) {
        return reset_page_with(&state, &headers, "confirm", "", Err(FORM_EXPIRED), StatusCode::FORBIDDEN);
    }
    match accounts::confirm_reset(&state, &form.token, form.password).await {
        Ok(_) => {
            let done = "Your password is changed. Log in with it.";
            reset_page_with(&state, &headers, "done", "", Ok(Some(done)), StatusCode::OK)
        }
        Err(e) if e.status.is_server_error() && e.status != StatusCode::SERVICE_UNAVAILABLE => error_page(&e),
        Err(e) => reset_page_with(&state, &headers, "confirm", &form.token, Err(&e.message), e.status),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

async fn logout_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match accounts::logout(&state, &user.caller).await {
        Ok(cleared) => redirect_setting_cookies(cleared, "/login"),
        Err(e) => error_page(&e),
    }
}

#[derive(askama::Template)]
#[template(path = "track.html")]
struct TrackTemplate<'a> {
    url: &'a str,
    kind: &'a str,
    error: Option<&'a str>,
    signed_in: bool,
    csrf: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct TrackForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    url: String,
    /// `channel` or `video`.
    #[serde(default)]
    kind: String,
}

async fn track_page(user: PageUser) -> Response {
    render(&TrackTemplate { url: "", kind: "channel", error: None, signed_in: true, csrf: &user.csrf })
}

async fn track_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<TrackForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let kind = if form.kind == "video" { "video" } else { "channel" };
    let (me, url, limits) = (user.caller.user.id, form.url.trim(), user.caller.limits(&state));
    let outcome = if kind == "video" {
        state.tracker.track_video_for(me, url, limits.videos_per_month.get()).await.map(drop)
    } else {
        state.tracker.track_channel_for(me, url, limits.channels.get()).await.map(drop)
    };
    match outcome.map_err(|e| track_refused(&state, &user.caller, e)) {
        Ok(_) => Redirect::to("/dashboard").into_response(),
        Err(e) if e.status.is_server_error() && e.status != StatusCode::SERVICE_UNAVAILABLE => error_page(&e),
        Err(e) => {
            let template =
                TrackTemplate { url: &form.url, kind, error: Some(&e.message), signed_in: true, csrf: &user.csrf };
            render_with(e.status, &template)
        }
    }
}

/// A video the caller may see, with its history; the same 404 as a missing one otherwise.
pub(crate) async fn visible_video(
    state: &AppState,
    caller: &CurrentUser,
    video_id: &VideoId,
) -> Result<VisibleVideo, ApiError> {
    let visible = state.service().visible_history(caller.user.id, video_id).await?;
    visible.ok_or_else(|| ApiError::not_found("video"))
}

/// The series document of a visible video (points and change marks), as the API answers it.
pub(crate) async fn series_of(
    state: &AppState,
    caller: &CurrentUser,
    video_id: &VideoId,
) -> Result<tracking::Series, ApiError> {
    Ok(tracking::Series::of(visible_video(state, caller, video_id).await?))
}
