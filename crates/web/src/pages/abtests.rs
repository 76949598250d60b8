//! A/B test pages: the caller's tests, the create form with a preview of the balanced schedule
//! and the power estimate (core's `balanced_schedule`, `exposure` and `power_estimate`, before
//! anything is uploaded), one test's live status and result, and the stop button. Creating and
//! stopping call the worker's `AbTests` engine exactly as `POST /api/v1/abtests` does.
//!
//! A/B tests need the premium plan, a server with `[abtests]` configured and a connected YouTube
//! account: each page says which is missing and links to where it is fixed. A test is its
//! creator's: anyone else gets the same 404 as for a test that does not exist.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Duration;
use serde::Deserialize;
use tubewatch_core::abtest::{
    AbError, AbPeriod, ScheduleRequest, Verdict, balanced_schedule, exposure, pacific_day_schedule, power_estimate,
    variant_label,
};
use tubewatch_core::{Slot, VideoId};
use tubewatch_store::{AbDesign, AbTestDetail, AbTestId, AbTestState, FinalAction, ReachState};
use tubewatch_worker::abtest::{CreateAbTest, DesignForecast, FORECAST_CTR_LIFT, expected_traffic, forecast};
use tubewatch_worker::abtest_job::first_look;
use tubewatch_worker::abtest_result::AbResult;
use tubewatch_worker::reach::{TestReach, has_reach_scope};

use super::views::{TimeView, compact_number, exact_number};
use super::{CsrfForm, PageUser, error_page, form_user, render, render_with};
use crate::abtest_form::{CreateFormFields, Poster, discard_rest, read_create_form};
use crate::abtests_web::{AbTestsWeb, engine};
use crate::auth::{self, CurrentUser};
use crate::error::ApiError;
use crate::{ApiQuery, AppState};

/// Why A/B tests are not available to the caller, if they are not.
pub enum Access<'a> {
    Ready(&'a AbTestsWeb),
    NeedsPremium,
    NotConfigured,
}

pub fn access<'a>(state: &'a AppState, caller: &CurrentUser) -> Access<'a> {
    if caller.require_ab_tests(state).is_err() {
        Access::NeedsPremium
    } else {
        state.abtests.as_ref().map_or(Access::NotConfigured, Access::Ready)
    }
}

/// What the page shows instead of the feature: `premium` or `not_configured`.
fn blocked(access: &Access<'_>) -> Option<&'static str> {
    match access {
        Access::Ready(_) => None,
        Access::NeedsPremium => Some("premium"),
        Access::NotConfigured => Some("not_configured"),
    }
}

pub struct TestRow {
    pub id: AbTestId,
    pub video_id: String,
    pub video_title: String,
    pub kind: String,
    pub state: String,
    pub starts: TimeView,
    pub ends: TimeView,
    pub quota_used: i64,
}

#[derive(askama::Template)]
#[template(path = "abtests.html")]
struct ListTemplate {
    blocked: Option<&'static str>,
    connected: bool,
    tests: Vec<TestRow>,
    signed_in: bool,
    csrf: String,
}

/// The caller's A/B tests, newest first.
#[tracing::instrument(skip_all, fields(user_id = %user.caller.user.id))]
pub async fn list_page(State(state): State<AppState>, user: PageUser) -> Response {
    let me = user.caller.user.id;
    let gate = access(&state, &user.caller);
    let service = state.service();
    let result: Result<ListTemplate, ApiError> = async {
        let mut tests = Vec::new();
        for t in service.abtests(me).await? {
            tests.push(TestRow {
                id: t.id,
                video_id: t.video_id.to_string(),
                video_title: service.video_title(&t.video_id).await?,
                kind: t.kind.as_str().to_owned(),
                state: t.state.as_str().to_owned(),
                starts: TimeView::of(t.starts_at),
                ends: TimeView::of(t.ends_at),
                quota_used: t.quota_used,
            });
        }
        let connected = service.youtube_connection(me).await?.is_some();
        Ok(ListTemplate { blocked: blocked(&gate), connected, tests, signed_in: true, csrf: user.csrf.clone() })
    }
    .await;
    match result {
        Ok(template) => render(&template),
        Err(e) => error_page(&e),
    }
}

/// The plan of a test being prepared: what the preview is computed from.
#[derive(Debug, Default, Deserialize)]
pub struct PlanQuery {
    video: Option<String>,
    variants: Option<String>,
    duration_days: Option<String>,
    rotation_hours: Option<String>,
    design: Option<String>,
    sequential: Option<String>,
}

impl PlanQuery {
    /// The plan of a posted create form.
    fn of_form(form: &CreateFormFields) -> Self {
        Self {
            video: form.video.clone(),
            variants: form.variants.clone(),
            duration_days: form.duration_days.clone(),
            rotation_hours: form.rotation_hours.clone(),
            design: form.design.clone(),
            sequential: form.sequential.clone(),
        }
    }
}

/// A validated plan (defaults: 2 variants, 14 days, a swap every 12 hours, balanced, not
/// sequential).
#[derive(Debug, Clone)]
pub struct Plan {
    pub video: Option<String>,
    pub variants: usize,
    pub duration_days: u32,
    pub rotation_hours: u32,
    pub design: AbDesign,
    pub sequential: bool,
}

fn number(field: &str, text: Option<&str>, default: u32, range: std::ops::RangeInclusive<u32>) -> Result<u32, String> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(default),
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| format!("{field}: a whole number from {} to {}", range.start(), range.end())),
    }
}

impl Plan {
    fn parse(q: &PlanQuery) -> Result<Self, String> {
        Ok(Self {
            video: q.video.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned),
            variants: number("Variants", q.variants.as_deref(), 2, 2..=4)? as usize,
            duration_days: number("Duration", q.duration_days.as_deref(), 14, 1..=90)?,
            rotation_hours: number("Rotation", q.rotation_hours.as_deref(), 12, 1..=168)?,
            design: match q.design.as_deref().map(str::trim) {
                None | Some("") => AbDesign::Balanced,
                Some(text) => text
                    .parse()
                    .ok()
                    .filter(|d| *d != AbDesign::DailyAlternation)
                    .ok_or("Schedule: balanced or pacific_days")?,
            },
            sequential: match q.sequential.as_deref().map(str::trim) {
                None | Some("" | "false" | "off") => false,
                Some("true" | "on") => true,
                Some(_) => return Err("Stop early: on or off".into()),
            },
        })
    }

    fn schedule(&self, design: AbDesign, start: chrono::DateTime<chrono::Utc>) -> Result<Vec<AbPeriod>, AbError> {
        let days = i64::from(self.duration_days);
        match design {
            AbDesign::PacificDays => pacific_day_schedule(self.variants, start, days, rand::random()),
            _ => balanced_schedule(&ScheduleRequest {
                variants: self.variants,
                start,
                duration: Duration::days(days),
                rotation: Duration::hours(i64::from(self.rotation_hours)),
                seed: rand::random(),
            }),
        }
    }
}

pub struct PeriodPreview {
    pub variant: String,
    pub start: TimeView,
    pub end: TimeView,
}

pub struct ExposureRow {
    pub variant: String,
    pub total_hours: String,
    /// Hours in each quarter of the UTC day: 00–06, 06–12, 12–18, 18–24.
    pub quarters: [String; 4],
}

/// One schedule's forecast as the form shows it.
pub struct ForecastRow {
    pub name: &'static str,
    pub views_only: String,
    pub with_reach: Option<String>,
    pub recommended: bool,
}

pub struct Preview {
    pub periods: Vec<PeriodPreview>,
    pub exposure: Vec<ExposureRow>,
    pub power_summary: Option<String>,
    pub views_per_hour: Option<String>,
    /// Each schedule's chance of naming a 10 % better thumbnail, the better one recommended.
    pub forecasts: Vec<ForecastRow>,
    pub reach_granted: bool,
    pub forecast_lift: String,
}

pub fn design_name(design: AbDesign) -> &'static str {
    match design {
        AbDesign::Balanced => "Balanced rotation (hours of the day)",
        AbDesign::PacificDays => "One variant per Pacific day",
        AbDesign::DailyAlternation => "One variant a day, in turn",
    }
}

pub struct VideoChoice {
    pub id: String,
    pub title: String,
}

#[derive(askama::Template)]
#[template(path = "abtest_new.html")]
struct NewTemplate {
    blocked: Option<&'static str>,
    connected_channel: Option<(String, String)>,
    videos: Vec<VideoChoice>,
    plan: Plan,
    preview: Option<Preview>,
    error: Option<String>,
    signed_in: bool,
    csrf: String,
}

impl NewTemplate {
    fn selected(&self, id: &str) -> bool {
        self.plan.video.as_deref() == Some(id)
    }

    /// The variants' indexes and letters, for the upload fields.
    fn labels(&self) -> Vec<(usize, String)> {
        (0..self.plan.variants).map(|n| (n, variant_label(n))).collect()
    }
}

/// The form's page: the plan, its preview when a video is chosen, and the upload form.
async fn new_template(
    state: &AppState,
    user: &PageUser,
    plan: Plan,
    error: Option<String>,
) -> Result<NewTemplate, ApiError> {
    let me = user.caller.user.id;
    let gate = access(state, &user.caller);
    let mut template = NewTemplate {
        blocked: blocked(&gate),
        connected_channel: None,
        videos: Vec::new(),
        plan,
        preview: None,
        error,
        signed_in: true,
        csrf: user.csrf.clone(),
    };
    let Access::Ready(web) = gate else { return Ok(template) };
    let service = state.service();
    let Some(conn) = service.youtube_connection(me).await? else { return Ok(template) };
    let channel_title = service.channel_title(&conn.channel_id).await?;
    template.connected_channel = Some((conn.channel_id.to_string(), channel_title));
    let videos = service.testable_videos(me, &conn.channel_id).await?;
    template.videos = videos.iter().map(|v| VideoChoice { id: v.id.to_string(), title: v.title.clone() }).collect();
    let chosen = template.plan.video.as_deref().and_then(|id| videos.iter().find(|v| v.id.as_str() == id));
    if let Some(video) = chosen {
        match preview(state, web, user, &template.plan, video).await {
            Ok(p) => template.preview = Some(p),
            Err(message) => template.error = template.error.take().or(Some(message)),
        }
    }
    Ok(template)
}

async fn preview(
    state: &AppState,
    web: &AbTestsWeb,
    user: &PageUser,
    plan: &Plan,
    video: &tubewatch_store::Video,
) -> Result<Preview, String> {
    let now = state.clock.now();
    let start = Slot::hour_of(now).start() + Duration::hours(1);
    let periods = plan.schedule(plan.design, start).map_err(|e| e.to_string())?;
    let service = state.service();
    let series = service.views(&video.id).await.map_err(|e| ApiError::from(e).message)?;
    let traffic = expected_traffic(&series, now);
    let config = &web.engine.services.analysis;
    let power_summary = match &traffic {
        Some(t) => Some(
            power_estimate(&periods, plan.variants, video.published_at, t, config).map_err(|e| e.to_string())?.summary,
        ),
        None => None,
    };
    let connection = service.youtube_connection(user.caller.user.id).await.map_err(|e| ApiError::from(e).message)?;
    let reach_granted = connection.as_ref().is_some_and(has_reach_scope);
    let mut forecasts: Vec<DesignForecast> = Vec::new();
    if let Some(t) = &traffic {
        let reach = match reach_granted {
            true => Some(service.reach_plan(&video.id, t, now).await.map_err(|e| ApiError::from(e).message)?),
            false => None,
        };
        for design in [AbDesign::Balanced, AbDesign::PacificDays] {
            let periods = if design == plan.design {
                periods.clone()
            } else {
                plan.schedule(design, start).map_err(|e| e.to_string())?
            };
            forecasts.push(
                forecast(design, &periods, plan.variants, video.published_at, t, reach.as_ref(), config)
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    let best = forecasts.iter().map(DesignForecast::power).fold(f64::NEG_INFINITY, f64::max);
    let percent = |p: f64| if p.is_finite() { format!("{:.0}%", p * 100.0) } else { "–".to_owned() };
    let exposed = exposure(&periods, plan.variants);
    let exposure = (0..plan.variants)
        .map(|v| {
            let hours = &exposed.by_hour_of_day[v];
            let quarter = |q: usize| format!("{:.0}", hours[q * 6..q * 6 + 6].iter().sum::<f64>());
            ExposureRow {
                variant: variant_label(v),
                total_hours: format!("{:.0}", exposed.total_hours[v]),
                quarters: [quarter(0), quarter(1), quarter(2), quarter(3)],
            }
        })
        .collect();
    Ok(Preview {
        periods: periods
            .iter()
            .map(|p| PeriodPreview {
                variant: variant_label(p.variant),
                start: TimeView::of(p.start),
                end: TimeView::of(p.end),
            })
            .collect(),
        exposure,
        power_summary,
        views_per_hour: traffic.map(|t| exact_number(t.views_per_hour.round() as i64)),
        forecasts: forecasts
            .iter()
            .map(|f| ForecastRow {
                name: design_name(f.design),
                views_only: percent(f.views_only),
                with_reach: f.with_reach.map(percent),
                recommended: f.power() >= best,
            })
            .collect(),
        reach_granted,
        forecast_lift: format!("{:.0}%", FORECAST_CTR_LIFT * 100.0),
    })
}

#[tracing::instrument(skip_all, fields(user_id = %user.caller.user.id))]
pub async fn new_page(State(state): State<AppState>, user: PageUser, ApiQuery(query): ApiQuery<PlanQuery>) -> Response {
    let (plan, error) = match Plan::parse(&query) {
        Ok(plan) => (plan, None),
        Err(message) => (Plan::parse(&PlanQuery::default()).unwrap_or_else(|_| unreachable_plan()), Some(message)),
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    match new_template(&state, &user, plan, error).await {
        Ok(template) => render_with(status, &template),
        Err(e) => error_page(&e),
    }
}

/// The defaults, which always parse.
fn unreachable_plan() -> Plan {
    Plan {
        video: None,
        variants: 2,
        duration_days: 14,
        rotation_hours: 12,
        design: AbDesign::Balanced,
        sequential: false,
    }
}

/// The form's first field, which must be its CSRF token (the template puts it first), read
/// before any upload so that the caller is known before megabytes are.
async fn csrf_field(form: &mut Multipart) -> Result<String, ApiError> {
    let refused = || ApiError::forbidden("csrf_failed", "the form's CSRF token must come first");
    let field = form.next_field().await.map_err(|e| ApiError::bad_request("bad_input", e.body_text()))?;
    let mut field = field.filter(|f| f.name() == Some("csrf_token")).ok_or_else(refused)?;
    let mut token = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| ApiError::bad_request("bad_input", e.body_text()))? {
        token.extend_from_slice(&chunk);
        if token.len() > 128 {
            return Err(refused());
        }
    }
    String::from_utf8(token).map_err(|_| refused())
}

/// Answers a form refused before its uploads were read: they are read and thrown away first.
async fn refuse(form: &mut Multipart, response: Response) -> Response {
    discard_rest(form).await;
    response
}

/// Creates the test through the engine (as `POST /api/v1/abtests` does) and opens its page;
/// errors are shown on the form with the plan kept (files must be chosen again). Nothing of the
/// body is read before the session is known, and no upload before the CSRF token and the plan's
/// A/B feature are checked (a refused form's uploads are read and thrown away, never kept).
pub async fn create_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    if auth::session_of(&headers, &state).is_none() && !headers.contains_key(header::AUTHORIZATION) {
        return Redirect::to("/login").into_response();
    }
    let mut form = match form {
        Ok(form) => form,
        Err(e) => return error_page(&ApiError::bad_request("bad_input", e.body_text())),
    };
    let csrf = match csrf_field(&mut form).await {
        Ok(csrf) => csrf,
        Err(e) => return refuse(&mut form, error_page(&e)).await,
    };
    let user = match form_user(&state, &headers, &csrf).await {
        Ok(user) => user,
        Err(response) => return refuse(&mut form, response).await,
    };
    let web = match engine(&state, &user.caller) {
        Ok(web) => web,
        Err(e) => {
            let response = match new_template(&state, &user, unreachable_plan(), Some(e.message.clone())).await {
                Ok(template) => render_with(e.status, &template),
                Err(e) => error_page(&e),
            };
            return refuse(&mut form, response).await;
        }
    };
    let form = match read_create_form(&mut form, Poster::Page).await {
        Ok(form) => form,
        Err(e) => return error_page(&e),
    };
    let plan = Plan::parse(&PlanQuery::of_form(&form));
    let outcome = match &plan {
        Err(message) => Err(ApiError::bad_request("bad_input", message.clone())),
        Ok(plan) => create(web, &user, plan, form.thumbnails, form.titles, form.final_action).await,
    };
    match outcome {
        Ok(id) => Redirect::to(&format!("/abtests/{id}")).into_response(),
        Err(e) if e.status.is_server_error() && e.status != StatusCode::SERVICE_UNAVAILABLE => error_page(&e),
        Err(e) => {
            let plan = plan.unwrap_or_else(|_| unreachable_plan());
            match new_template(&state, &user, plan, Some(e.message.clone())).await {
                Ok(template) => render_with(e.status, &template),
                Err(e) => error_page(&e),
            }
        }
    }
}

async fn create(
    web: &AbTestsWeb,
    user: &PageUser,
    plan: &Plan,
    thumbnails: Vec<Vec<u8>>,
    titles: Vec<String>,
    final_action: Option<String>,
) -> Result<AbTestId, ApiError> {
    let video = plan.video.as_deref().ok_or_else(|| ApiError::bad_request("bad_input", "choose a video"))?;
    let video = VideoId::parse(video).map_err(|e| ApiError::bad_request("bad_input", format!("video: {e}")))?;
    let final_action = match final_action.as_deref().map(str::trim) {
        None | Some("") => FinalAction::ApplyWinner,
        Some(text) => text
            .parse()
            .map_err(|_| ApiError::bad_request("bad_input", "final action: apply_winner or restore_original"))?,
    };
    let request = CreateAbTest {
        thumbnails,
        titles,
        duration: Duration::days(i64::from(plan.duration_days)),
        rotation: Duration::hours(i64::from(plan.rotation_hours)),
        final_action,
        design: plan.design,
        sequential: plan.sequential,
        ..CreateAbTest::new(video)
    };
    let detail = web.engine.create(user.caller.user.id, request).await?;
    Ok(detail.test.id)
}

/// Whether and from when the test looks at its data every hour to stop once decided.
fn sequential_text(d: &AbTestDetail) -> String {
    if !d.test.sequential {
        return "no: it runs its full length".to_owned();
    }
    match first_look(d) {
        Some(at) => format!("when decided, looking every hour from {}", TimeView::of(at).text),
        None => "when decided (the schedule is too short for hourly looks)".to_owned(),
    }
}

/// The caller's test, or the same 404 as a missing one.
async fn own_test(state: &AppState, caller: &CurrentUser, raw: &str) -> Result<AbTestDetail, ApiError> {
    let id: AbTestId = raw.parse().map_err(|_| ApiError::not_found("A/B test"))?;
    state.service().own_abtest(caller.user.id, id).await?.ok_or_else(|| ApiError::not_found("A/B test"))
}

pub struct VariantView {
    pub index: usize,
    pub label: String,
    pub title: Option<String>,
    pub has_thumbnail: bool,
}

pub struct PeriodRow {
    pub index: i32,
    pub variant: String,
    pub variant_index: i32,
    pub start: TimeView,
    pub end: TimeView,
    pub swapped: Option<TimeView>,
    pub outcome: String,
    /// `planned`, `live` or `done`.
    pub phase: &'static str,
    pub excluded: bool,
}

pub struct EffectRow {
    pub label: String,
    pub vs_a: String,
    pub interval: String,
    pub prob_best: String,
    pub naive_views: String,
    pub naive_rate: String,
}

pub struct ResultView {
    pub verdict: String,
    pub summary: String,
    /// What the verdict was made from.
    pub signal: String,
    /// The reach model's own figures, e.g. "B +12 % (CTR vs A) over 12 days; …".
    pub reach: Option<String>,
    pub decided_early: bool,
    pub effects: Vec<EffectRow>,
    pub naive_winner: String,
    pub hours_used: String,
    pub analysis_error: Option<String>,
    pub applied: String,
    pub verified: bool,
    pub verification: String,
}

fn percent_vs_a(ratio: f64) -> String {
    let p = ((ratio - 1.0) * 100.0).round();
    if p > 0.0 { format!("+{p:.0} %") } else { format!("{p:.0} %") }
}

fn result_view(stored: AbResult) -> ResultView {
    let signal = stored.analysis.as_ref().map_or_else(String::new, |a| a.signal.describe().to_owned());
    let reach = stored.analysis.as_ref().and_then(|a| a.reach.as_ref()).map(|r| {
        let ratios: Vec<String> = r
            .ctr_ratio_to_a
            .iter()
            .enumerate()
            .skip(1)
            .map(|(v, ratio)| format!("{} {}", variant_label(v), percent_vs_a(*ratio)))
            .collect();
        format!(
            "Click-through rate vs A: {} over {} days of about {} impressions (the rate's own day-to-day variation: {:.0} %).",
            ratios.join(", "),
            r.days_used,
            exact_number(r.impressions_per_day.round() as i64),
            r.day_to_day_cv * 100.0
        )
    });
    let (verdict, summary, effects, naive_winner, hours_used) = match &stored.analysis {
        Some(a) => {
            let verdict = match a.verdict {
                Verdict::Winner { variant } => format!("Winner: variant {}", variant_label(variant)),
                Verdict::PerformedSame => "The variants performed the same".to_owned(),
                Verdict::Inconclusive => "Inconclusive".to_owned(),
            };
            let effects = a
                .effects
                .iter()
                .map(|e| {
                    let views = a.naive.views.get(e.variant).copied().unwrap_or(0.0);
                    let hours = a.naive.hours.get(e.variant).copied().unwrap_or(0.0);
                    EffectRow {
                        label: variant_label(e.variant),
                        vs_a: if e.variant == 0 { "reference".to_owned() } else { percent_vs_a(e.ratio_to_a) },
                        interval: if e.variant == 0 {
                            "—".to_owned()
                        } else {
                            format!("{} to {}", percent_vs_a(e.ci_low), percent_vs_a(e.ci_high))
                        },
                        prob_best: format!("{:.0} %", e.prob_best * 100.0),
                        naive_views: exact_number(views.round() as i64),
                        naive_rate: if hours > 0.0 {
                            compact_number((views / hours).round() as i64)
                        } else {
                            "—".into()
                        },
                    }
                })
                .collect();
            let naive_winner =
                a.naive.winner.map_or_else(|| "a tie".to_owned(), |v| format!("variant {}", variant_label(v)));
            (verdict, a.summary.clone(), effects, naive_winner, format!("{:.0}", a.hours_used))
        }
        None => ("No analysis".to_owned(), String::new(), Vec::new(), "—".to_owned(), "0".to_owned()),
    };
    ResultView {
        verdict,
        summary,
        signal,
        reach,
        decided_early: stored.decided_early,
        effects,
        naive_winner,
        hours_used,
        analysis_error: stored.analysis_error,
        applied: stored.applied,
        verified: stored.verified,
        verification: stored.verification,
    }
}

pub struct ReachDayRow {
    pub date: String,
    pub impressions: String,
    pub ctr: String,
    /// The variants live that day with their share of it, e.g. `A 50 %, B 50 %`.
    pub live: String,
}

/// The signals the test reads and the state of the owner's daily reach.
pub struct ReachSection {
    /// Whether daily reach is among the signals (granted).
    pub granted: bool,
    pub state: &'static str,
    pub state_text: &'static str,
    pub reason: Option<String>,
    /// The channel to connect again to add reach data, when it is missing.
    pub reconnect_channel: Option<String>,
    pub days: Vec<ReachDayRow>,
}

impl ReachSection {
    fn new(reach: &TestReach, channel: Option<String>) -> Self {
        let state_text = match reach.state {
            ReachState::NotGranted => "not granted",
            ReachState::WaitingForFirstReport => "waiting for the first report",
            ReachState::Receiving => "receiving",
            ReachState::Failed => "failed, retrying",
            ReachState::Revoked => "revoked",
        };
        let days = reach
            .days
            .iter()
            .map(|d| ReachDayRow {
                date: d.date.to_string(),
                impressions: exact_number(d.impressions),
                ctr: format!("{:.2} %", d.ctr * 100.0),
                live: d
                    .variant_share
                    .iter()
                    .enumerate()
                    .filter(|(_, share)| **share > 0.0)
                    .map(|(v, share)| format!("{} {:.0} %", variant_label(v), share * 100.0))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect();
        Self {
            granted: crate::api::abtests::uses_daily_reach(reach),
            state: reach.state.as_str(),
            state_text,
            reason: reach.reason.clone(),
            reconnect_channel: channel.filter(|_| matches!(reach.state, ReachState::NotGranted | ReachState::Revoked)),
            days,
        }
    }
}

#[derive(askama::Template)]
#[template(path = "abtest.html")]
struct DetailTemplate {
    id: AbTestId,
    video_id: String,
    video_title: String,
    kind: String,
    state: String,
    state_reason: Option<String>,
    starts: TimeView,
    ends: TimeView,
    rotation_hours: i32,
    design: &'static str,
    /// "no", or when the hourly looks begin (or began).
    sequential: String,
    final_action: &'static str,
    quota_used: String,
    outside_change: Option<String>,
    variants: Vec<VariantView>,
    periods: Vec<PeriodRow>,
    live_variant: Option<String>,
    next_swap: Option<TimeView>,
    swaps_done: usize,
    power_summary: Option<String>,
    /// What the power estimate's traffic was read from.
    power_basis: Option<String>,
    result: Option<ResultView>,
    /// Why the stored result cannot be shown, when it cannot be read.
    result_error: Option<String>,
    reach: ReachSection,
    can_stop: bool,
    error: Option<String>,
    signed_in: bool,
    csrf: String,
}

async fn detail_template(
    state: &AppState,
    user: &PageUser,
    raw: &str,
    error: Option<String>,
) -> Result<DetailTemplate, ApiError> {
    let d = own_test(state, &user.caller, raw).await?;
    let t = &d.test;
    let now = state.clock.now();
    let label = |v: i32| variant_label(usize::try_from(v).unwrap_or(0));
    let periods: Vec<PeriodRow> = d
        .periods
        .iter()
        .map(|p| PeriodRow {
            index: p.index + 1,
            variant: label(p.variant),
            variant_index: p.variant,
            start: TimeView::of(p.start),
            end: TimeView::of(p.end),
            swapped: p.swapped_at.map(TimeView::of),
            outcome: p.outcome.clone().unwrap_or_default(),
            phase: if p.start > now {
                "planned"
            } else if p.end > now {
                "live"
            } else {
                "done"
            },
            excluded: p.excluded,
        })
        .collect();
    let running = matches!(t.state, AbTestState::Running | AbTestState::Paused);
    let live_variant = d.periods.iter().find(|p| running && p.start <= now && now < p.end).map(|p| label(p.variant));
    let next_swap = d.periods.iter().find(|p| running && p.start > now).map(|p| TimeView::of(p.start));
    let power: serde_json::Value = serde_json::from_str(&t.power_json).unwrap_or_default();
    let service = state.service();
    let channel = service.youtube_connection(t.user_id).await?.map(|c| c.channel_id.to_string());
    let reach = ReachSection::new(&service.abtest_reach(&d).await?, channel);
    let (result, result_error) = match AbResult::stored(t) {
        Ok(result) => (result.map(result_view), None),
        Err(unreadable) => (None, Some(unreadable.to_string())),
    };
    Ok(DetailTemplate {
        id: t.id,
        video_id: t.video_id.to_string(),
        video_title: service.video_title(&t.video_id).await?,
        kind: t.kind.as_str().to_owned(),
        state: t.state.as_str().to_owned(),
        state_reason: t.state_reason.clone(),
        starts: TimeView::of(t.starts_at),
        ends: TimeView::of(t.ends_at),
        rotation_hours: t.rotation_minutes / 60,
        design: design_name(t.design),
        sequential: sequential_text(&d),
        final_action: match t.final_action {
            FinalAction::ApplyWinner => "apply the winner (the original when there is none)",
            FinalAction::RestoreOriginal => "restore the original",
        },
        quota_used: exact_number(t.quota_used),
        outside_change: t.outside_change.clone(),
        variants: d
            .variants
            .iter()
            .enumerate()
            .map(|(index, v)| VariantView {
                index,
                label: variant_label(index),
                title: v.title.clone(),
                has_thumbnail: v.thumb_blob_key.is_some(),
            })
            .collect(),
        swaps_done: d.periods.iter().filter(|p| p.swapped_at.is_some()).count(),
        periods,
        live_variant,
        next_swap,
        power_summary: power["estimate"]["summary"].as_str().map(str::to_owned),
        power_basis: power["basis"].as_str().map(str::to_owned),
        result,
        result_error,
        reach,
        can_stop: running && state.abtests.is_some(),
        error,
        signed_in: true,
        csrf: user.csrf.clone(),
    })
}

#[tracing::instrument(skip_all, fields(test_id = %test_id))]
pub async fn detail_page(State(state): State<AppState>, user: PageUser, Path(test_id): Path<String>) -> Response {
    match detail_template(&state, &user, &test_id, None).await {
        Ok(template) => render(&template),
        Err(e) => error_page(&e),
    }
}

/// Stops the test early through the engine; its wrap-up runs within the hour.
#[tracing::instrument(skip_all, fields(test_id = %test_id))]
pub async fn stop_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(test_id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let detail = match own_test(&state, &user.caller, &test_id).await {
        Ok(detail) => detail,
        Err(e) => return error_page(&e),
    };
    let outcome = match engine(&state, &user.caller) {
        Ok(web) => web.engine.stop(user.caller.user.id, detail.test.id).await.map_err(ApiError::from),
        Err(refused) => Err(refused),
    };
    match outcome {
        Ok(()) => Redirect::to(&format!("/abtests/{}", detail.test.id)).into_response(),
        Err(e) if e.status.is_server_error() && e.status != StatusCode::SERVICE_UNAVAILABLE => error_page(&e),
        Err(e) => match detail_template(&state, &user, &test_id, Some(e.message.clone())).await {
            Ok(template) => render_with(e.status, &template),
            Err(e) => error_page(&e),
        },
    }
}

/// A variant's uploaded thumbnail (as normalised for YouTube), for its owner only.
pub async fn variant_thumbnail(
    State(state): State<AppState>,
    user: PageUser,
    Path((test_id, variant)): Path<(String, String)>,
) -> Response {
    let result: Result<Response, ApiError> = async {
        let detail = own_test(&state, &user.caller, &test_id).await?;
        let index: usize = variant.parse().map_err(|_| ApiError::not_found("variant"))?;
        let key = detail
            .variants
            .get(index)
            .and_then(|v| v.thumb_blob_key.clone())
            .ok_or_else(|| ApiError::not_found("variant"))?;
        let bytes = state.blobs.get(&key).await?.ok_or_else(|| ApiError::not_found("variant"))?;
        Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, max-age=86400")], bytes)
            .into_response())
    }
    .await;
    result.unwrap_or_else(|e| error_page(&e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plans_parse_with_defaults_and_limits() {
        let plan = Plan::parse(&PlanQuery::default()).unwrap();
        assert_eq!((plan.variants, plan.duration_days, plan.rotation_hours), (2, 14, 12));
        let q = PlanQuery { variants: Some("5".into()), ..PlanQuery::default() };
        assert!(Plan::parse(&q).unwrap_err().contains("Variants"));
        let q = PlanQuery { rotation_hours: Some("x".into()), ..PlanQuery::default() };
        assert!(Plan::parse(&q).unwrap_err().contains("Rotation"));
    }
}
