//! The dashboard and the video page: what a signed-in user tracks, read from the store and shaped
//! for the templates (numbers already formatted, times as RFC 3339 for the browser to localise).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tubewatch_core::abtest::variant_label;
use tubewatch_core::outliers::{ChangeJudgement, ChangeLift};
use tubewatch_core::{ChannelId, VideoId};
use tubewatch_store::{AbTestId, ChangeKind, TargetState, Video};
use tubewatch_worker::service::ChannelEntry;

use super::{CsrfForm, PageUser, error_page, form_user, render, visible_video};
use crate::AppState;
use crate::api::tracking::Series;
use crate::api::{Allowance, Usage};
use crate::error::ApiError;
use crate::path_ids::video_param;

/// At most this many of a channel's videos are listed on the dashboard (newest first).
const VIDEOS_PER_CHANNEL: usize = 12;
/// At most this many items per kind under "since your last visit".
const NEWS_LIMIT: u32 = 20;

/// `1234` → `1.2K`, `1_250_000` → `1.3M`: short figures for lists; exact ones are in titles.
pub fn compact_number(n: i64) -> String {
    let abs = n.unsigned_abs() as f64;
    let sign = if n < 0 { "-" } else { "" };
    let (value, suffix) = match abs {
        a if a >= 1e9 => (a / 1e9, "B"),
        a if a >= 1e6 => (a / 1e6, "M"),
        a if a >= 1e3 => (a / 1e3, "K"),
        a => return format!("{sign}{a}"),
    };
    // Halves round away from zero, as the browser's `Intl.NumberFormat` does in the chart.
    let text =
        if value < 10.0 { format!("{:.1}", (value * 10.0).round() / 10.0) } else { format!("{:.0}", value.round()) };
    format!("{sign}{}{suffix}", text.strip_suffix(".0").unwrap_or(&text))
}

/// `1234567` → `1,234,567`.
pub fn exact_number(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A time for `<time datetime>`: RFC 3339 plus a UTC fallback text the page script localises.
pub struct TimeView {
    pub iso: String,
    pub text: String,
}

impl TimeView {
    pub fn of(t: DateTime<Utc>) -> Self {
        Self { iso: rfc3339(t), text: t.format("%Y-%m-%d %H:%M UTC").to_string() }
    }
}

pub struct VideoRow {
    pub id: String,
    pub title: String,
    pub published: TimeView,
    /// Compact and exact current views (`None`: not measured yet).
    pub views: Option<(String, String)>,
    pub changes: usize,
    pub tracking: String,
}

pub struct ChannelRow {
    pub id: String,
    pub title: String,
    pub handle: Option<String>,
    pub tracking: String,
    pub videos: Vec<VideoRow>,
}

pub struct AllowanceView {
    pub used: u64,
    /// `None`: unlimited.
    pub limit: Option<u32>,
    /// Percentage used, for a meter.
    pub percent: u64,
}

impl From<&Allowance> for AllowanceView {
    fn from(a: &Allowance) -> Self {
        let percent = a.limit.map_or(0, |l| if l == 0 { 100 } else { (a.used * 100 / u64::from(l)).min(100) });
        Self { used: a.used, limit: a.limit, percent }
    }
}

pub struct FailingRow {
    pub what: String,
    pub label: String,
    pub error: String,
    pub since: Option<TimeView>,
}

#[derive(askama::Template)]
#[template(path = "dashboard.html")]
struct DashboardTemplate {
    email: String,
    plan: String,
    channels_usage: AllowanceView,
    videos_usage: AllowanceView,
    channels: Vec<ChannelRow>,
    videos: Vec<VideoRow>,
    failing: Vec<FailingRow>,
    news: Option<News>,
    signed_in: bool,
    csrf: String,
}

/// What changed since the user's last visit.
pub struct News {
    pub since: TimeView,
    pub new_videos: Vec<NewsVideo>,
    pub changes: Vec<NewsChange>,
    pub outliers: Vec<NewsOutlier>,
}

impl News {
    fn is_empty(&self) -> bool {
        self.new_videos.is_empty() && self.changes.is_empty() && self.outliers.is_empty()
    }
}

pub struct NewsVideo {
    pub id: String,
    pub title: String,
    pub channel: String,
    pub published: TimeView,
}

pub struct NewsChange {
    pub video_id: String,
    pub video_title: String,
    pub what: String,
    pub at: TimeView,
}

pub struct NewsOutlier {
    pub video_id: String,
    pub video_title: String,
    pub explanation: String,
    pub week: String,
}

impl DashboardTemplate {
    fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.videos.is_empty()
    }
}

async fn video_row(state: &AppState, video: &Video) -> Result<VideoRow, ApiError> {
    let service = state.service();
    let history = service.history(&video.id).await?;
    let views = history.views.last().map(|r| (compact_number(r.views), exact_number(r.views)));
    let changes = history.changes.len();
    let target = service.video_target(&video.id).await?;
    Ok(VideoRow {
        id: video.id.to_string(),
        title: video.title.clone(),
        published: TimeView::of(video.published_at),
        views,
        changes,
        tracking: target.map_or_else(|| "pending".to_owned(), |t| t.state.as_str().to_owned()),
    })
}

fn failing(kind: &str, label: &str, target: &tubewatch_store::Target) -> Option<FailingRow> {
    let failed = target.state == TargetState::Failed || (target.attempts > 0 && target.last_error.is_some());
    failed.then(|| FailingRow {
        what: kind.to_owned(),
        label: label.to_owned(),
        error: target.last_error.clone().unwrap_or_else(|| "failed".to_owned()),
        since: target.last_error_at.map(TimeView::of),
    })
}

/// Tracked channels (with their newest videos) and videos, current views, usage, failures.
#[tracing::instrument(skip_all, fields(user_id = %user.caller.user.id))]
pub async fn dashboard(State(state): State<AppState>, user: PageUser) -> Response {
    match dashboard_template(&state, user).await {
        Ok(template) => render(&template),
        Err(e) => error_page(&e),
    }
}

async fn dashboard_template(state: &AppState, user: PageUser) -> Result<DashboardTemplate, ApiError> {
    let me = &user.caller.user;
    let service = state.service();
    let usage = Usage::of(state, me).await?;
    let since = service.visit_dashboard(me.id).await?;
    let mut failing_rows = Vec::new();
    let mut channels = Vec::new();
    let mut new_videos = Vec::new();
    for id in service.monitored_channels(me.id).await? {
        channels.push(channel_row(state, &id, &mut failing_rows, since, &mut new_videos).await?);
    }
    let mut videos = Vec::new();
    for mapped in service.videos_tracked_alone(me.id).await? {
        if let Some(video) = service.video(&mapped.video_id).await? {
            if let Some(target) = service.video_target(&video.id).await?
                && let Some(row) = failing("Video", &video.title, &target)
            {
                failing_rows.push(row);
            }
            videos.push(video_row(state, &video).await?);
        }
    }
    Ok(DashboardTemplate {
        email: me.email.to_string(),
        plan: usage.plan.clone(),
        channels_usage: (&usage.channels).into(),
        videos_usage: (&usage.videos_this_month).into(),
        channels,
        videos,
        failing: failing_rows,
        news: match since {
            Some(since) => Some(news(state, me.id, since, new_videos).await?),
            None => None,
        },
        signed_in: true,
        csrf: user.csrf,
    })
}

async fn news(
    state: &AppState,
    user: tubewatch_core::UserId,
    since: DateTime<Utc>,
    mut new_videos: Vec<NewsVideo>,
) -> Result<News, ApiError> {
    new_videos.sort_by(|a, b| b.published.iso.cmp(&a.published.iso));
    new_videos.truncate(NEWS_LIMIT as usize);
    let news = state.service().news_since(user, since, NEWS_LIMIT).await?;
    let changes = news
        .changes
        .into_iter()
        .map(|c| {
            let what = match (c.event.change.kind, &c.event.change.after_title) {
                (ChangeKind::Title, Some(after)) => format!("Title changed to “{after}”"),
                (ChangeKind::Title, None) => "Title changed".to_owned(),
                (ChangeKind::Thumbnail, _) => "Thumbnail changed".to_owned(),
            };
            NewsChange {
                video_id: c.event.change.video_id.to_string(),
                video_title: c.video_title,
                what,
                at: TimeView::of(c.event.change.detected_at),
            }
        })
        .collect();
    let outliers = news
        .outliers
        .into_iter()
        .map(|o| NewsOutlier {
            video_id: o.outlier.video_id.to_string(),
            video_title: o.video_title,
            explanation: o.outlier.explanation,
            week: o.outlier.week,
        })
        .collect();
    Ok(News { since: TimeView::of(since), new_videos, changes, outliers })
}

async fn channel_row(
    state: &AppState,
    id: &ChannelId,
    failing_rows: &mut Vec<FailingRow>,
    since: Option<DateTime<Utc>>,
    new_videos: &mut Vec<NewsVideo>,
) -> Result<ChannelRow, ApiError> {
    let service = state.service();
    let ChannelEntry { channel, target, .. } = service.channel_entry(id).await?;
    let title = channel.as_ref().map_or_else(|| id.to_string(), |c| c.title.clone());
    if let Some(row) = target.as_ref().and_then(|t| failing("Channel", &title, t)) {
        failing_rows.push(row);
    }
    let all = service.channel_videos(id).await?;
    if let Some(since) = since {
        // New to tubewatch and published since: found in the feed since the last visit.
        for v in all.iter().filter(|v| v.created_at > since && v.published_at > since) {
            new_videos.push(NewsVideo {
                id: v.id.to_string(),
                title: v.title.clone(),
                channel: title.clone(),
                published: TimeView::of(v.published_at),
            });
        }
    }
    let mut videos = Vec::new();
    for video in all.iter().take(VIDEOS_PER_CHANNEL) {
        videos.push(video_row(state, video).await?);
    }
    Ok(ChannelRow {
        id: id.to_string(),
        title,
        handle: channel.and_then(|c| c.handle),
        tracking: target.map_or_else(|| "pending".to_owned(), |t| t.state.as_str().to_owned()),
        videos,
    })
}

pub struct ChangeView {
    pub kind: String,
    pub at: TimeView,
    /// What the change did to views, as far as the measurements tell: its lift against the
    /// counterfactual with the interval, or why it is not judged (yet).
    pub verdict: Option<String>,
    /// The lift is flagged as a thumbnail/title outlier.
    pub outlier: bool,
    pub before_title: Option<String>,
    pub after_title: Option<String>,
    pub before_thumbnail_url: Option<String>,
    pub after_thumbnail_url: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "video.html")]
struct VideoTemplate {
    id: String,
    title: String,
    published: TimeView,
    thumbnail_url: Option<String>,
    views: Option<(String, String)>,
    points: usize,
    changes: Vec<ChangeView>,
    /// The series for the chart script, as JSON safe inside `<script type="application/json">`.
    series_json: String,
    /// The channel's typical band and the video's A/B rotation periods, for the chart script.
    overlay_json: String,
    has_band: bool,
    tests: Vec<TestShading>,
    /// The caller tracks it on its own (not only as one of a monitored channel's videos).
    tracked_alone: bool,
    signed_in: bool,
    csrf: String,
}

/// What the video chart draws behind the views: the channel's typical band at the video's age,
/// and the rotation periods of the caller's A/B tests of the video, shaded by variant.
#[derive(Debug, Default, Serialize)]
struct Overlay {
    /// `[unix_seconds, low, median, high]`.
    band: Vec<[f64; 4]>,
    /// `[start_seconds, end_seconds, variant]`.
    periods: Vec<[i64; 3]>,
    /// After each judged change: the cumulative views the trend alone predicted, with the
    /// interval the change's lift carries, `[unix_seconds, low, expected, high]`.
    counterfactual: Vec<[f64; 4]>,
}

/// A test shown on the chart, for the legend under it.
pub struct TestShading {
    pub id: AbTestId,
    pub state: String,
    pub variants: Vec<String>,
}

async fn overlay(
    state: &AppState,
    user: &PageUser,
    series: &crate::api::tracking::Series,
) -> Result<(Overlay, Vec<TestShading>), ApiError> {
    let v = &series.video;
    let mut overlay = Overlay::default();
    let last_age_hours = series.points.last().map_or(0.0, |p| (p.slot - v.published_at).num_seconds() as f64 / 3600.0);
    if let Ok(channel) = ChannelId::parse(&v.channel_id)
        && let Some((snapshot, _)) = state.service().typical_band(&channel).await?
    {
        let published = v.published_at.timestamp() as f64;
        overlay.band = snapshot
            .band(v.is_short)
            .points
            .iter()
            .filter(|p| p.age_hours <= last_age_hours + 24.0)
            .map(|p| [published + p.age_hours * 3600.0, p.low, p.median, p.high])
            .collect();
    }
    let mut tests = Vec::new();
    let Ok(video) = VideoId::parse(&v.id) else { return Ok((overlay, tests)) };
    for detail in state.service().video_abtests(user.caller.user.id, &video).await? {
        let test = &detail.test;
        overlay
            .periods
            .extend(detail.periods.iter().map(|p| [p.start.timestamp(), p.end.timestamp(), i64::from(p.variant)]));
        tests.push(TestShading {
            id: test.id,
            state: test.state.as_str().to_owned(),
            variants: (0..detail.variants.len()).map(variant_label).collect(),
        });
    }
    Ok((overlay, tests))
}

/// The counterfactual after a judged change as the chart draws it: from the views measured where
/// the compared hours start, the predicted views added up, and the band the lift's interval gives
/// them (what views would be at the interval's ends of the lift).
fn counterfactual_points(lift: &ChangeLift, points: &[crate::api::tracking::SeriesPoint]) -> Vec<[f64; 4]> {
    let at = |t: DateTime<Utc>| points.iter().find(|p| p.measured_at == t);
    let Some(first) = lift.counterfactual.first().and_then(|e| at(e.start)) else { return Vec::new() };
    let base = first.views as f64;
    let low_ratio = (1.0 + lift.lift) / (1.0 + lift.ci_high);
    let high_ratio = (1.0 + lift.lift) / (1.0 + lift.ci_low).max(1e-6);
    let mut out = vec![[first.slot.timestamp() as f64, base, base, base]];
    let mut expected = 0.0;
    for e in &lift.counterfactual {
        expected += e.views;
        let x = at(e.end).map_or(e.end, |p| p.slot).timestamp() as f64;
        out.push([x, base + expected * low_ratio, base + expected, base + expected * high_ratio]);
    }
    out
}

/// JSON that cannot close the `<script>` element it is embedded in.
pub(crate) fn script_safe_json(value: &impl serde::Serialize) -> Result<String, ApiError> {
    let json = serde_json::to_string(value).map_err(ApiError::internal)?;
    Ok(json.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026"))
}

/// A video's page: its chart of cumulative views with the thumbnail and title changes marked.
#[tracing::instrument(skip_all, fields(video_id = %video_id))]
pub async fn video_page(State(state): State<AppState>, user: PageUser, Path(video_id): Path<String>) -> Response {
    let id = match video_param(&video_id) {
        Ok(id) => id,
        Err(e) => return error_page(&e),
    };
    let visible = match visible_video(&state, &user.caller, &id).await {
        Ok(visible) => visible,
        Err(e) => return error_page(&e),
    };
    // Each change judged with what is measured now (keyed by when it was detected).
    let judgements = match state.service().judge_changes(&state.tracker.config.outliers, &visible.video).await {
        Ok(judgements) => judgements,
        Err(e) => return error_page(&e.into()),
    };
    let series = Series::of(visible);
    let (series_json, overlay_json, has_band, tests) = match overlay(&state, &user, &series).await {
        Ok((mut overlay, tests)) => {
            // The changes of one quick flip-flop share a judgement: drawn once.
            for (_, judged) in &judgements {
                if let ChangeJudgement::Judged(lift) = judged
                    && overlay.counterfactual.last().is_none_or(|last| last[0] < lift.changed_at.timestamp() as f64)
                {
                    overlay.counterfactual.extend(counterfactual_points(lift, &series.points));
                }
            }
            match (script_safe_json(&series), script_safe_json(&overlay)) {
                (Ok(s), Ok(o)) => (s, o, !overlay.band.is_empty(), tests),
                (Err(e), _) | (_, Err(e)) => return error_page(&e),
            }
        }
        Err(e) => return error_page(&e),
    };
    let tracked_alone = match state.service().tracks_video_alone(user.caller.user.id, &id).await {
        Ok(alone) => alone,
        Err(e) => return error_page(&e.into()),
    };
    let v = &series.video;
    let template = VideoTemplate {
        id: v.id.clone(),
        title: v.title.clone(),
        published: TimeView::of(v.published_at),
        thumbnail_url: v.thumbnail_url.clone(),
        views: series.points.last().map(|p| (compact_number(p.views), exact_number(p.views))),
        points: series.points.len(),
        changes: series
            .changes
            .iter()
            .map(|c| {
                let judged = judgements.iter().find(|(at, _)| *at == c.detected_at).map(|(_, j)| j);
                (c, judged)
            })
            .map(|(c, judged)| ChangeView {
                kind: c.kind.clone(),
                at: TimeView::of(c.slot),
                verdict: match judged {
                    Some(ChangeJudgement::Judged(lift)) => Some(lift.explanation.clone()),
                    Some(ChangeJudgement::Skipped(why)) => Some(why.explanation()),
                    Some(ChangeJudgement::NoChange) | None => None,
                },
                outlier: matches!(judged, Some(ChangeJudgement::Judged(lift)) if lift.flagged),
                before_title: c.before_title.clone(),
                after_title: c.after_title.clone(),
                before_thumbnail_url: c.before_thumbnail_url.clone(),
                after_thumbnail_url: c.after_thumbnail_url.clone(),
            })
            .collect(),
        series_json,
        overlay_json,
        has_band,
        tests,
        tracked_alone,
        signed_in: true,
        csrf: user.csrf,
    };
    render(&template)
}

/// "Stop tracking" a video tracked on its own: the tracker's removal, as over the API (its checks
/// stop when nobody else tracks it and its channel is not tracked), then back to the dashboard.
pub async fn video_remove_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(video_id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let id = match video_param(&video_id) {
        Ok(id) => id,
        Err(e) => return error_page(&e),
    };
    match state.tracker.untrack_video_for(user.caller.user.id, &id).await {
        Ok(true) => Redirect::to("/dashboard").into_response(),
        Ok(false) => error_page(&ApiError::not_found("video")),
        Err(e) => error_page(&e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn numbers_are_compact_or_exact() {
        let cases = [(0, "0"), (999, "999"), (1_000, "1K"), (1_234, "1.2K"), (56_789, "57K"), (1_250_000, "1.3M")];
        for (n, text) in cases {
            assert_eq!(compact_number(n), text, "{n}");
        }
        assert_eq!(compact_number(3_000_000_000), "3B");
        assert_eq!(exact_number(1_234_567), "1,234,567");
        assert_eq!(exact_number(100), "100");
        assert_eq!(exact_number(-1_000), "-1,000");
    }

    #[test]
    fn embedded_json_cannot_close_its_script_element() {
        let json = script_safe_json(&serde_json::json!({ "title": "</script><script>alert(1)</script>&" })).unwrap();
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["title"], "</script><script>alert(1)</script>&");
    }
}
