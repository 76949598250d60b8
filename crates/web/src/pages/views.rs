//! The dashboard and the video page: what a signed-in user tracks, read from the store and shaped
//! for the templates (numbers already formatted, times as RFC 3339 for the browser to localise).

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use tubewatch_core::ChannelId;
use tubewatch_store::{TargetKind, TargetState, Video};

use super::{PageUser, error_page, render, series_of};
use crate::AppState;
use crate::api::{Allowance, Usage};
use crate::error::ApiError;

/// At most this many of a channel's videos are listed on the dashboard (newest first).
const VIDEOS_PER_CHANNEL: usize = 12;

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
    signed_in: bool,
    csrf: String,
}

impl DashboardTemplate {
    fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.videos.is_empty()
    }
}

async fn video_row(state: &AppState, video: &Video) -> Result<VideoRow, ApiError> {
    let views = state.store.views(&video.id).await?.last().map(|r| (compact_number(r.views), exact_number(r.views)));
    let changes = state.store.changes(&video.id).await?.len();
    let target = state.store.target(TargetKind::Video, video.id.as_str()).await?;
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
    let usage = Usage::of(state, me).await?;
    let mut failing_rows = Vec::new();
    let mut channels = Vec::new();
    for id in state.store.user_channels(me.id).await? {
        channels.push(channel_row(state, &id, &mut failing_rows).await?);
    }
    let mut videos = Vec::new();
    for mapped in state.store.user_videos(me.id).await? {
        if let Some(video) = state.store.video(&mapped.video_id).await? {
            if let Some(target) = state.store.target(TargetKind::Video, video.id.as_str()).await?
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
        signed_in: true,
        csrf: user.csrf,
    })
}

async fn channel_row(
    state: &AppState,
    id: &ChannelId,
    failing_rows: &mut Vec<FailingRow>,
) -> Result<ChannelRow, ApiError> {
    let channel = state.store.channel(id).await?;
    let title = channel.as_ref().map_or_else(|| id.to_string(), |c| c.title.clone());
    let target = state.store.target(TargetKind::Channel, id.as_str()).await?;
    if let Some(row) = target.as_ref().and_then(|t| failing("Channel", &title, t)) {
        failing_rows.push(row);
    }
    let mut videos = Vec::new();
    for video in state.store.channel_videos(id).await?.iter().take(VIDEOS_PER_CHANNEL) {
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
    signed_in: bool,
    csrf: String,
}

/// JSON that cannot close the `<script>` element it is embedded in.
fn script_safe_json(value: &impl serde::Serialize) -> Result<String, ApiError> {
    let json = serde_json::to_string(value).map_err(ApiError::internal)?;
    Ok(json.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026"))
}

/// A video's page: its chart of cumulative views with the thumbnail and title changes marked.
#[tracing::instrument(skip_all, fields(video_id = %video_id))]
pub async fn video_page(State(state): State<AppState>, user: PageUser, Path(video_id): Path<String>) -> Response {
    let series = match series_of(&state, &user.caller, &video_id).await {
        Ok(series) => series,
        Err(e) => return error_page(&e),
    };
    let series_json = match script_safe_json(&series) {
        Ok(json) => json,
        Err(e) => return error_page(&e),
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
            .map(|c| ChangeView {
                kind: c.kind.clone(),
                at: TimeView::of(c.slot),
                before_title: c.before_title.clone(),
                after_title: c.after_title.clone(),
                before_thumbnail_url: c.before_thumbnail_url.clone(),
                after_thumbnail_url: c.after_thumbnail_url.clone(),
            })
            .collect(),
        series_json,
        signed_in: true,
        csrf: user.csrf,
    };
    render(&template)
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
