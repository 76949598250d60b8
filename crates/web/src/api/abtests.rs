//! A/B tests over HTTP: connecting a YouTube account (OAuth 2.0 with PKCE), creating tests from
//! uploaded thumbnails and/or titles, listing, reading and stopping them. The engine is the
//! worker's `AbTests` (held with the pending connections in `crate::abtests_web`), the reads the
//! worker's `Service`; this module only checks who asks and translates.
//!
//! Access: every route needs a logged-in user on a plan with A/B tests (402 otherwise); when
//! `[abtests]` is not configured they answer 503 `abtests_not_configured`. A test belongs to its
//! creator: anyone else gets 404, as for a test that does not exist.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_core::abtest::variant_label;
use tubewatch_core::{ChannelId, VideoId};
use tubewatch_store::{AbDesign, AbTest, AbTestDetail, AbTestState, FinalAction, ReachState};
use tubewatch_worker::abtest::CreateAbTest;
use tubewatch_worker::abtest_result::AbResult;
use tubewatch_worker::reach::TestReach;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::abtest_form::{CreateFormFields, Poster, read_create_form};
use crate::abtests_web::{PendingConnect, engine};
use crate::auth::{self, CurrentUser};
use crate::error::{ApiError, ErrorBody};
use crate::{ApiQuery, AppState};

/// Connection starts a user may make per window: each one mints a `state` and a PKCE verifier
/// kept in memory, so a script must not be able to mint them without bound.
const CONNECT_STARTS_PER_WINDOW: u32 = 5;
const CONNECT_START_WINDOW_MINUTES: i64 = 10;
/// The create request's body limit: four 2 MB images, titles and form overhead.
pub const CREATE_BODY_LIMIT: usize = 4 * 2 * 1024 * 1024 + 256 * 1024;

pub use crate::abtests_web::AbTestsWeb;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(oauth_start))
        .routes(routes!(oauth_callback))
        .routes(routes!(connection_status, disconnect))
        .routes(routes!(list_abtests))
        .routes(routes!(get_abtest))
        .routes(routes!(stop_abtest))
        .merge(OpenApiRouter::new().routes(routes!(create_abtest)).layer(DefaultBodyLimit::max(CREATE_BODY_LIMIT)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// The channel to connect (`UC…`): every test's video must belong to it.
    pub channel: String,
}

/// Starts connecting a YouTube account: redirects to Google's consent page. At most five starts
/// per user in ten minutes (429 `too_many_attempts` with `Retry-After` beyond).
#[utoipa::path(get, path = "/oauth/google/start", tag = "abtests", params(StartQuery),
    security(("session" = []), ("bearer" = [])),
    responses((status = 303, description = "To Google's authorization page"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many starts in ten minutes", body = ErrorBody),
        (status = 503, description = "`abtests_not_configured`", body = ErrorBody)))]
pub async fn oauth_start(
    caller: CurrentUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<StartQuery>,
) -> Result<Response, ApiError> {
    let web = engine(&state, &caller)?;
    let channel = ChannelId::parse(query.channel.trim())
        .map_err(|e| ApiError::bad_request("bad_input", format!("channel: {e}")))?;
    let now = state.clock.now();
    let key = format!("oauth-start:user:{}", caller.user.id);
    let window = Duration::minutes(CONNECT_START_WINDOW_MINUTES);
    auth::throttle(&state, &key, CONNECT_STARTS_PER_WINDOW, window).await?;
    let request = web.engine.start_connect();
    web.remember(
        request.state.clone(),
        PendingConnect { user: caller.user.id, channel, verifier: request.pkce_verifier.clone(), started: now },
    );
    Ok(Redirect::to(&request.url).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set by Google when the user declined.
    pub error: Option<String>,
}

/// Where Google sends the user back: checks `state`, completes the connection, redirects to the
/// dashboard.
#[utoipa::path(get, path = "/oauth/google/callback", tag = "abtests", params(CallbackQuery),
    security(("session" = []), ("bearer" = [])),
    responses((status = 303, description = "Connected: to the dashboard"),
        (status = 400, description = "`bad_state`, `oauth_declined` or `bad_input`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn oauth_callback(
    caller: CurrentUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> Result<Response, ApiError> {
    let web = engine(&state, &caller)?;
    if let Some(error) = query.error {
        return Err(ApiError::bad_request("oauth_declined", format!("Google answered: {error}")));
    }
    let (Some(code), Some(oauth_state)) = (query.code, query.state) else {
        return Err(ApiError::bad_request("bad_input", "code and state are required"));
    };
    let pending = web
        .take(&oauth_state, caller.user.id, state.clock.now())
        .ok_or_else(|| ApiError::bad_request("bad_state", "unknown or expired state: start connecting again"))?;
    web.engine.finish_connect(caller.user.id, &pending.channel, &code, &pending.verifier).await?;
    Ok(Redirect::to("/dashboard").into_response())
}

/// The connected YouTube account as the user may see it (never its tokens).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    /// The channel every test's video must belong to.
    pub channel_id: String,
    pub connected_at: DateTime<Utc>,
    /// `active`, or `revoked` when Google no longer accepts the grant (revoked by the user at
    /// Google, or a refresh refused): tests pause until the account is connected again.
    pub state: String,
    /// Why the grant stopped working.
    pub state_reason: Option<String>,
    pub scopes: Vec<String>,
    pub updated_at: DateTime<Utc>,
    /// The caller's tests paused for now, with the reason each was paused.
    pub paused_tests: Vec<PausedTestView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PausedTestView {
    pub id: i64,
    pub video_id: String,
    pub reason: Option<String>,
}

/// The connected YouTube account: channel, since when, and whether the grant still works (and
/// why not), with the tests it paused.
#[utoipa::path(get, path = "/api/v1/youtube/connection", tag = "abtests",
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = ConnectionView), (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody), (status = 404, description = "No connection", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn connection_status(
    caller: CurrentUser,
    State(state): State<AppState>,
) -> Result<Json<ConnectionView>, ApiError> {
    let _ = engine(&state, &caller)?;
    let service = state.service();
    let conn =
        service.youtube_connection(caller.user.id).await?.ok_or_else(|| ApiError::not_found("YouTube connection"))?;
    let paused_tests = service
        .abtests(caller.user.id)
        .await?
        .iter()
        .filter(|t| t.state == AbTestState::Paused)
        .map(|t| PausedTestView { id: t.id.get(), video_id: t.video_id.to_string(), reason: t.state_reason.clone() })
        .collect();
    Ok(Json(ConnectionView {
        channel_id: conn.channel_id.to_string(),
        connected_at: conn.connected_at,
        state: conn.state.as_str().to_owned(),
        state_reason: conn.state_reason,
        scopes: conn.scopes.split_whitespace().map(str::to_owned).collect(),
        updated_at: conn.updated_at,
        paused_tests,
    }))
}

/// Disconnects the YouTube account: revokes the grant at Google; running tests pause.
#[utoipa::path(delete, path = "/api/v1/youtube/connection", tag = "abtests",
    security(("session" = []), ("bearer" = [])),
    responses((status = 204, description = "Disconnected"), (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody), (status = 404, description = "No connection", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn disconnect(caller: CurrentUser, State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    let web = engine(&state, &caller)?;
    if web.engine.disconnect(caller.user.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("YouTube connection"))
    }
}

/// The create form (`multipart/form-data`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CreateAbTestForm {
    /// The video (id) on the connected channel.
    pub video: String,
    /// 0 or 2–4 JPEG/PNG files (each at most 2 MB), repeated field.
    #[schema(value_type = Vec<String>, format = Binary)]
    pub thumbnail: Vec<Vec<u8>>,
    /// 0 or 2–4 titles (as many as thumbnails when both), repeated field.
    pub title: Vec<String>,
    /// Days (default 14).
    pub duration_days: Option<u32>,
    /// Hours between swaps (default 12).
    pub rotation_hours: Option<u32>,
    /// `apply_winner` (default) or `restore_original`.
    pub final_action: Option<String>,
    /// `balanced` (default: swaps every `rotation_hours`, balanced over the hours of the day) or
    /// `pacific_days` (one variant per US Pacific day, what daily reach data can attribute; the
    /// test starts at the next Pacific midnight).
    pub design: Option<String>,
    /// `true`: stop as soon as the always-valid verdict is decided (looked at every hour).
    pub sequential: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AbTestSummary {
    pub id: i64,
    pub video_id: String,
    /// `thumbnail`, `title` or `both`.
    pub kind: String,
    /// `running`, `paused`, `finished`, `stopped` or `failed`.
    pub state: String,
    pub state_reason: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub rotation_hours: i32,
    /// `balanced`, `pacific_days` or `daily_alternation`.
    pub design: String,
    /// The test may stop as soon as its always-valid verdict is decided; `result.decided_early`
    /// says whether it did.
    pub sequential: bool,
    pub final_action: String,
    /// Data API units spent.
    pub quota_used: i64,
    /// A change made outside tubewatch during the test.
    pub outside_change: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&AbTest> for AbTestSummary {
    fn from(t: &AbTest) -> Self {
        Self {
            id: t.id.get(),
            video_id: t.video_id.to_string(),
            kind: t.kind.as_str().to_owned(),
            state: t.state.as_str().to_owned(),
            state_reason: t.state_reason.clone(),
            starts_at: t.starts_at,
            ends_at: t.ends_at,
            rotation_hours: t.rotation_minutes / 60,
            design: t.design.as_str().to_owned(),
            sequential: t.sequential,
            final_action: t.final_action.as_str().to_owned(),
            quota_used: t.quota_used,
            outside_change: t.outside_change.clone(),
            created_at: t.created_at,
            finished_at: t.finished_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantView {
    pub index: usize,
    pub title: Option<String>,
    pub has_thumbnail: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodView {
    pub index: i32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub variant: i32,
    pub swapped_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub excluded: bool,
}

/// One Pacific day of the owner's reach for the tested video.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReachDayView {
    /// The Pacific (YouTube reporting) day, `YYYY-MM-DD`.
    pub date: String,
    /// Thumbnail impressions that day.
    pub impressions: i64,
    /// The share of those impressions that became views, in [0, 1].
    pub ctr: f64,
    /// The share of the day each variant was live, by variant index (the rest of the day, none
    /// was: before the first swap or after the end).
    pub variant_share: Vec<f64>,
    /// The variants live at some point that day (`A`, `B`, …).
    pub live_variants: Vec<String>,
}

/// The owner's daily reach data for the test.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReachView {
    /// `not_granted` (the connection lacks `yt-analytics.readonly`: connect again to add it),
    /// `waiting_for_first_report` (the channel's reporting job makes its first reports about 48 h
    /// after it was created), `receiving`, `failed` (the last read failed; retried) or `revoked`
    /// (the grant is gone).
    pub state: String,
    /// Why: when the job was created, the last day received, the last error.
    pub reason: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    pub job_created_at: Option<DateTime<Utc>>,
    pub first_report_expected_at: Option<DateTime<Utc>>,
    /// The newest day received for the channel, `YYYY-MM-DD`.
    pub last_day_received: Option<String>,
    /// The days received that overlap the test, oldest first.
    pub days: Vec<ReachDayView>,
}

impl From<&TestReach> for ReachView {
    fn from(r: &TestReach) -> Self {
        Self {
            state: r.state.as_str().to_owned(),
            reason: r.reason.clone(),
            updated_at: r.updated_at,
            job_created_at: r.job_created_at,
            first_report_expected_at: r.first_report_expected_at,
            last_day_received: r.last_day_received.map(|d| d.to_string()),
            days: r
                .days
                .iter()
                .map(|d| ReachDayView {
                    date: d.date.to_string(),
                    impressions: d.impressions,
                    ctr: d.ctr,
                    variant_share: d.variant_share.clone(),
                    live_variants: d
                        .variant_share
                        .iter()
                        .enumerate()
                        .filter(|(_, share)| **share > 0.0)
                        .map(|(v, _)| variant_label(v))
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Whether the owner's daily reach is among the test's signals: granted, or days received.
pub fn uses_daily_reach(reach: &TestReach) -> bool {
    matches!(reach.state, ReachState::WaitingForFirstReport | ReachState::Receiving | ReachState::Failed)
        || !reach.days.is_empty()
}

/// The signals a test reads: public hourly views always, the owner's daily reach while granted.
pub fn signals(reach: &TestReach) -> Vec<String> {
    let mut signals = vec!["public_hourly_views".to_owned()];
    if uses_daily_reach(reach) {
        signals.push("daily_reach".to_owned());
    }
    signals
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AbTestView {
    #[serde(flatten)]
    pub test: AbTestSummary,
    /// `public_hourly_views`, plus `daily_reach` when the owner's reach data is granted.
    pub signals: Vec<String>,
    pub reach: ReachView,
    pub variants: Vec<VariantView>,
    /// The rotation schedule, fixed at creation.
    pub schedule: Vec<PeriodView>,
    /// The power estimate made at creation.
    #[schema(value_type = Object)]
    pub power: serde_json::Value,
    /// The analysis and the wrap-up's outcome, once finished.
    #[schema(value_type = Option<Object>)]
    pub result: Option<AbResult>,
    /// Set when the test has a stored result that cannot be read (`result` is null then).
    pub result_error: Option<String>,
}

impl AbTestView {
    pub fn new(d: &AbTestDetail, reach: &TestReach) -> Self {
        let parse = |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::Null);
        let (result, result_error) = match AbResult::stored(&d.test) {
            Ok(result) => (result, None),
            Err(unreadable) => (None, Some(unreadable.to_string())),
        };
        Self {
            test: AbTestSummary::from(&d.test),
            signals: signals(reach),
            reach: ReachView::from(reach),
            variants: d
                .variants
                .iter()
                .enumerate()
                .map(|(index, v)| VariantView {
                    index,
                    title: v.title.clone(),
                    has_thumbnail: v.thumb_blob_key.is_some(),
                })
                .collect(),
            schedule: d
                .periods
                .iter()
                .map(|p| PeriodView {
                    index: p.index,
                    start: p.start,
                    end: p.end,
                    variant: p.variant,
                    swapped_at: p.swapped_at,
                    outcome: p.outcome.clone(),
                    excluded: p.excluded,
                })
                .collect(),
            power: parse(&d.test.power_json),
            result,
            result_error,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AbTestList {
    pub items: Vec<AbTestSummary>,
}

fn bad_form(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("bad_input", message)
}

fn small_number(field: &str, text: &str) -> Result<u32, ApiError> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| bad_form(format!("{field}: a positive whole number")))
}

/// The API's create request from the form's fields: `video` required, the rest defaulted.
fn create_request(fields: CreateFormFields) -> Result<CreateAbTest, ApiError> {
    let video = fields
        .video
        .map(|text| VideoId::parse(text.trim()).map_err(|e| bad_form(format!("video: {e}"))))
        .transpose()?;
    let number =
        |field: &str, text: Option<String>, default: u32| text.map_or(Ok(default), |text| small_number(field, &text));
    let duration_days = number("duration_days", fields.duration_days, 14)?;
    let rotation_hours = number("rotation_hours", fields.rotation_hours, 12)?;
    let design = match fields.design {
        None => AbDesign::Balanced,
        Some(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|d| *d != AbDesign::DailyAlternation)
            .ok_or_else(|| bad_form("design: balanced or pacific_days"))?,
    };
    let sequential = match fields.sequential {
        None => false,
        Some(text) => text.trim().parse().map_err(|_| bad_form("sequential: true or false"))?,
    };
    let final_action = match fields.final_action {
        None => FinalAction::ApplyWinner,
        Some(text) => text.trim().parse().map_err(|_| bad_form("final_action: apply_winner or restore_original"))?,
    };
    let video = video.ok_or_else(|| bad_form("video is required"))?;
    Ok(CreateAbTest {
        thumbnails: fields.thumbnails,
        titles: fields.titles,
        duration: Duration::days(i64::from(duration_days)),
        rotation: Duration::hours(i64::from(rotation_hours)),
        final_action,
        design,
        sequential,
        ..CreateAbTest::new(video)
    })
}

/// Creates a test on a video of the connected channel.
#[utoipa::path(post, path = "/api/v1/abtests", tag = "abtests",
    request_body(content = CreateAbTestForm, content_type = "multipart/form-data"),
    security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = AbTestView),
        (status = 400, description = "`bad_input`: malformed form", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 403, description = "`not_owner`: the video is not on the connected channel", body = ErrorBody),
        (status = 409, description = "`not_connected` or `connection_revoked`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 422, description = "`bad_image`, `bad_input` or `no_such_video`", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn create_abtest(
    caller: CurrentUser,
    State(state): State<AppState>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<AbTestView>), ApiError> {
    let web = engine(&state, &caller)?;
    let mut form = form.map_err(|e| ApiError::new(e.status(), "bad_input", e.body_text()))?;
    let request = create_request(read_create_form(&mut form, Poster::Api).await?)?;
    let detail = web.engine.create(caller.user.id, request).await?;
    let reach = state.service().abtest_reach(&detail).await?;
    Ok((StatusCode::CREATED, Json(AbTestView::new(&detail, &reach))))
}

/// The caller's tests, newest first.
#[utoipa::path(get, path = "/api/v1/abtests", tag = "abtests", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = AbTestList), (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn list_abtests(caller: CurrentUser, State(state): State<AppState>) -> Result<Json<AbTestList>, ApiError> {
    let _ = engine(&state, &caller)?;
    let tests = state.service().abtests(caller.user.id).await?;
    Ok(Json(AbTestList { items: tests.iter().map(AbTestSummary::from).collect() }))
}

/// One of the caller's tests: status, schedule, the signals read (public hourly views; the
/// owner's daily reach when granted) with the reach state and days, result.
#[utoipa::path(get, path = "/api/v1/abtests/{test_id}", tag = "abtests", params(("test_id" = i64, Path)),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = AbTestView), (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 404, description = "Not the caller's, or no such test", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn get_abtest(
    caller: CurrentUser,
    State(state): State<AppState>,
    Path(test_id): Path<String>,
) -> Result<Json<AbTestView>, ApiError> {
    let web = engine(&state, &caller)?;
    let id = test_id.parse().map_err(|_| ApiError::not_found("A/B test"))?;
    let detail = web.engine.get(caller.user.id, id).await?;
    let reach = state.service().abtest_reach(&detail).await?;
    Ok(Json(AbTestView::new(&detail, &reach)))
}

/// Stops a test early: it is wrapped up on the data so far within the hour.
#[utoipa::path(post, path = "/api/v1/abtests/{test_id}/stop", tag = "abtests", params(("test_id" = i64, Path)),
    security(("session" = []), ("bearer" = [])),
    responses((status = 204, description = "Stopped"), (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody),
        (status = 404, description = "Not the caller's, or no such test", body = ErrorBody),
        (status = 409, description = "`already_ended`", body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn stop_abtest(
    caller: CurrentUser,
    State(state): State<AppState>,
    Path(test_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let web = engine(&state, &caller)?;
    let id = test_id.parse().map_err(|_| ApiError::not_found("A/B test"))?;
    web.engine.stop(caller.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
