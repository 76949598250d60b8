//! The channel page: a monitored channel's videos (current views, age, changes) and its typical
//! band — the weekly snapshot's median and P25–P75 of views by age — with the channel's recent
//! videos drawn over it. A channel the caller does not monitor is a 404, like a missing one.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tubewatch_core::outliers::TypicalBand;
use tubewatch_store::Video;
use tubewatch_worker::service::ChannelEntry;

use super::views::{TimeView, compact_number, exact_number, script_safe_json};
use super::{CsrfForm, PageUser, error_page, form_user, render};
use crate::AppState;
use crate::error::ApiError;
use crate::path_ids::channel_param;

/// The channel's videos listed (newest first).
const VIDEOS_LISTED: usize = 50;
/// Trajectories drawn over a band (newest first): more would hide the band.
const TRAJECTORIES: usize = 8;

/// `3 h`, `2 d`: how long ago, for lists.
pub fn age_text(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let hours = (now - t).num_hours().max(0);
    if hours < 48 { format!("{hours} h") } else { format!("{} d", hours / 24) }
}

pub struct ChannelVideoRow {
    pub id: String,
    pub title: String,
    pub published: TimeView,
    pub age: String,
    pub views: Option<(String, String)>,
    pub changes: usize,
    pub is_short: bool,
}

/// One stream's band and trajectories, for the chart script. Ages in hours.
#[derive(Debug, Serialize)]
struct BandChart {
    label: &'static str,
    /// `[age_hours, low, median, high]`.
    band: Vec<[f64; 4]>,
    videos: Vec<Trajectory>,
}

#[derive(Debug, Serialize)]
struct Trajectory {
    title: String,
    /// `[age_hours, views]`.
    points: Vec<[f64; 2]>,
}

pub struct BandSummary {
    pub label: &'static str,
    pub videos: usize,
    pub median_at_day: Option<(String, String)>,
    /// Of the videos at 1 day, how many were published before tracking began (their views at
    /// that age estimated from later measurements).
    pub estimated_at_day: usize,
}

#[derive(askama::Template)]
#[template(path = "channel.html")]
struct ChannelTemplate {
    id: String,
    title: String,
    handle: Option<String>,
    tracking: String,
    checked: Option<TimeView>,
    videos: Vec<ChannelVideoRow>,
    total_videos: usize,
    bands: Vec<BandSummary>,
    band_updated: Option<TimeView>,
    /// The charts' data (JSON safe inside `<script>`), `None` without a band.
    band_json: Option<String>,
    signed_in: bool,
    csrf: String,
}

#[tracing::instrument(skip_all, fields(channel_id = %channel_id))]
pub async fn channel_page(State(state): State<AppState>, user: PageUser, Path(channel_id): Path<String>) -> Response {
    match channel_template(&state, user, &channel_id).await {
        Ok(template) => render(&template),
        Err(e) => error_page(&e),
    }
}

/// "Stop monitoring": the tracker's removal, as over the API (the channel's checks stop when
/// nobody else monitors it), then back to the dashboard.
pub async fn remove_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let user = match form_user(&state, &headers, &form.csrf_token).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let id = match channel_param(&channel_id) {
        Ok(id) => id,
        Err(e) => return error_page(&e),
    };
    match state.tracker.untrack_channel_for(user.caller.user.id, &id).await {
        Ok(true) => Redirect::to("/dashboard").into_response(),
        Ok(false) => error_page(&ApiError::not_found("channel")),
        Err(e) => error_page(&e.into()),
    }
}

async fn channel_template(state: &AppState, user: PageUser, raw: &str) -> Result<ChannelTemplate, ApiError> {
    let id = channel_param(raw)?;
    let service = state.service();
    let all = service.monitored_channel_videos(user.caller.user.id, &id).await?;
    let all = all.ok_or_else(|| ApiError::not_found("channel"))?;
    let ChannelEntry { channel, target, .. } = service.channel_entry(&id).await?;
    let channel = channel.ok_or_else(|| ApiError::not_found("channel"))?;
    let now = state.clock.now();
    let mut videos = Vec::new();
    for v in all.iter().take(VIDEOS_LISTED) {
        videos.push(video_row(state, v, now).await?);
    }
    let snapshot = service.typical_band(&id).await?;
    let mut charts = Vec::new();
    let mut bands = Vec::new();
    if let Some((snapshot, _)) = &snapshot {
        for (is_short, label) in [(false, "Long-form videos"), (true, "Shorts")] {
            let band = snapshot.band(is_short);
            if band.points.is_empty() {
                continue;
            }
            bands.push(summary(label, &band, snapshot.stream(is_short).len()));
            let mut trajectories = Vec::new();
            for v in all.iter().filter(|v| v.is_short == is_short).take(TRAJECTORIES) {
                trajectories.push(trajectory(state, v).await?);
            }
            charts.push(BandChart {
                label,
                band: band.points.iter().map(|p| [p.age_hours, p.low, p.median, p.high]).collect(),
                videos: trajectories.into_iter().filter(|t| !t.points.is_empty()).collect(),
            });
        }
    }
    let band_json = if charts.is_empty() { None } else { Some(script_safe_json(&charts)?) };
    Ok(ChannelTemplate {
        id: id.to_string(),
        title: channel.title,
        handle: channel.handle,
        tracking: target.map_or_else(|| "pending".to_owned(), |t| t.state.as_str().to_owned()),
        checked: channel.checked_at.map(TimeView::of),
        videos,
        total_videos: all.len(),
        bands,
        band_updated: snapshot.filter(|_| band_json.is_some()).map(|(_, at)| TimeView::of(at)),
        band_json,
        signed_in: true,
        csrf: user.csrf,
    })
}

fn summary(label: &'static str, band: &TypicalBand, videos: usize) -> BandSummary {
    let day = band.points.iter().min_by(|a, b| (a.age_hours - 24.0).abs().total_cmp(&(b.age_hours - 24.0).abs()));
    let day = day.filter(|p| (p.age_hours - 24.0).abs() < 1.0);
    let median_at_day = day.map(|p| {
        let m = p.median.round() as i64;
        (compact_number(m), exact_number(m))
    });
    BandSummary { label, videos, median_at_day, estimated_at_day: day.map_or(0, |p| p.estimated) }
}

async fn video_row(state: &AppState, v: &Video, now: DateTime<Utc>) -> Result<ChannelVideoRow, ApiError> {
    let history = state.service().history(&v.id).await?;
    let views = history.views.last().map(|r| (compact_number(r.views), exact_number(r.views)));
    Ok(ChannelVideoRow {
        id: v.id.to_string(),
        title: v.title.clone(),
        published: TimeView::of(v.published_at),
        age: age_text(now, v.published_at),
        views,
        changes: history.changes.len(),
        is_short: v.is_short,
    })
}

/// A video's views by age (hours since publish), up to the band's 60 days.
async fn trajectory(state: &AppState, v: &Video) -> Result<Trajectory, ApiError> {
    let points = state
        .service()
        .views(&v.id)
        .await?
        .iter()
        .map(|r| ((r.measured_at - v.published_at).num_seconds() as f64 / 3600.0, r.views as f64))
        .filter(|(age, _)| *age > 0.0 && *age <= 60.0 * 24.0)
        .map(|(age, views)| [age, views])
        .collect();
    Ok(Trajectory { title: v.title.clone(), points })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ages_read_in_hours_then_days() {
        let t: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
        assert_eq!(age_text(t + chrono::Duration::minutes(30), t), "0 h");
        assert_eq!(age_text(t + chrono::Duration::hours(47), t), "47 h");
        assert_eq!(age_text(t + chrono::Duration::hours(50), t), "2 d");
        assert_eq!(age_text(t - chrono::Duration::hours(5), t), "0 h", "a clock behind publish is no age");
    }
}
