//! Tracking over the API: start and stop tracking channels and videos (any URL form, resolved,
//! validated and checked against the plan's limits by the worker's `Tracker`), list them with usage against the plan's limits, read a
//! video's series and a channel's videos (the worker's `Service`), and fetch archived thumbnails.
//! The views here (`ChannelView`, `VideoView`, `Series`) are also what the pages' charts and
//! downloads read.
//!
//! Access control: a user reads only what the mapping tables say they track (a video directly or
//! through a monitored channel). Anything else answers 404, exactly like something that does not
//! exist, so the API reveals nothing about other users. Limits are enforced by the store in the
//! transaction that adds the mapping (the `Tracker` checks first, so that requests bound to be
//! refused create nothing).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_core::{ChannelId, VideoId};
use tubewatch_store::{ChangeEvent, Target, Video};
use tubewatch_worker::service::{ChannelEntry, VisibleVideo};
use tubewatch_worker::thumbnail_key;
use utoipa::ToSchema;

use super::{PageQuery, Usage, track_refused};
use crate::auth::CurrentUser;
use crate::error::{ApiError, ErrorBody};
use crate::path_ids::{channel_param, video_param};
use crate::{ApiJson, ApiQuery, AppState, series_cache};

#[derive(Debug, Deserialize, ToSchema)]
pub struct TrackRequest {
    /// A channel or video in any form users write it: a URL, `@handle`, `UC…` id or video id.
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    pub id: String,
    pub title: String,
    pub handle: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
    /// `active`, `finished` or `failed` (e.g. the channel is gone).
    pub tracking: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VideoView {
    pub id: String,
    pub channel_id: String,
    pub title: String,
    pub published_at: DateTime<Utc>,
    pub is_short: bool,
    /// The current thumbnail, when archived (an authorised URL of this API).
    pub thumbnail_url: Option<String>,
    pub tracking: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelList {
    pub items: Vec<ChannelView>,
    pub next_offset: Option<u64>,
    pub usage: Usage,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VideoList {
    pub items: Vec<VideoView>,
    pub next_offset: Option<u64>,
    pub usage: Usage,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelVideos {
    pub items: Vec<VideoView>,
    pub next_offset: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrackedChannel {
    pub channel: ChannelView,
    /// Whether this used one of the plan's channel slots (false when already tracked).
    pub charged: bool,
    pub usage: Usage,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrackedVideo {
    pub video: VideoView,
    /// Whether this used one of the month's video credits (false for a video of a monitored
    /// channel, or one already tracked or charged this month).
    pub charged: bool,
    pub usage: Usage,
}

/// One measurement, ready for a chart.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// The slot the measurement belongs to (aligned, e.g. the hour).
    pub slot: DateTime<Utc>,
    pub measured_at: DateTime<Utc>,
    pub views: i64,
}

/// A detected thumbnail or title change, to mark on the chart.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeMark {
    /// `thumbnail` or `title`.
    pub kind: String,
    pub slot: DateTime<Utc>,
    pub detected_at: DateTime<Utc>,
    pub before_title: Option<String>,
    pub after_title: Option<String>,
    pub before_thumbnail_url: Option<String>,
    pub after_thumbnail_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Series {
    pub video: VideoView,
    pub points: Vec<SeriesPoint>,
    pub changes: Vec<ChangeMark>,
}

/// The API URL of an archived blob `thumbnails/VIDEO/SHA/SIZE.jpg`.
pub(crate) fn thumbnail_url(key: &str) -> Option<String> {
    let rest = key.strip_prefix("thumbnails/")?.strip_suffix(".jpg")?;
    let mut parts = rest.split('/');
    let (video, sha, size) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next().is_none().then(|| format!("/api/v1/videos/{video}/thumbnails/{sha}/{size}"))
}

impl VideoView {
    fn of(v: &Video, target: Option<&Target>) -> Self {
        Self {
            id: v.id.to_string(),
            channel_id: v.channel_id.to_string(),
            title: v.title.clone(),
            published_at: v.published_at,
            is_short: v.is_short,
            thumbnail_url: v.thumb.as_ref().and_then(|t| t.blob_key.as_deref()).and_then(thumbnail_url),
            tracking: target.map(|t| t.state.as_str().to_owned()),
        }
    }
}

async fn video_view(state: &AppState, v: &Video) -> Result<VideoView, ApiError> {
    let target = state.service().video_target(&v.id).await?;
    Ok(VideoView::of(v, target.as_ref()))
}

impl ChannelView {
    /// The view of a channel the store knows; `None` for one it does not.
    fn of(entry: ChannelEntry) -> Option<Self> {
        let channel = entry.channel?;
        Some(Self {
            id: channel.id.to_string(),
            title: channel.title,
            handle: channel.handle,
            checked_at: channel.checked_at,
            tracking: entry.target.map(|t| t.state.as_str().to_owned()),
        })
    }
}

async fn channel_view(state: &AppState, id: &ChannelId) -> Result<ChannelView, ApiError> {
    ChannelView::of(state.service().channel_entry(id).await?).ok_or_else(|| ApiError::not_found("channel"))
}

/// The video, if the caller may see it.
async fn visible_video(state: &AppState, caller: &CurrentUser, id: &VideoId) -> Result<Video, ApiError> {
    state.service().visible_video(caller.user.id, id).await?.ok_or_else(|| ApiError::not_found("video"))
}

/// The channels the caller monitors, with usage against the plan.
#[utoipa::path(get, path = "/api/v1/channels", tag = "tracking", params(PageQuery),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = ChannelList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_channels(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<ChannelList>, ApiError> {
    let (ids, next_offset) = page.page(state.service().monitored_channels(caller.user.id).await?)?;
    let mut items = Vec::with_capacity(ids.len());
    for id in &ids {
        items.push(channel_view(&state, id).await?);
    }
    Ok(Json(ChannelList { items, next_offset, usage: Usage::of(&state, &caller.user).await? }))
}

/// Starts monitoring a channel (its feed read hourly; its new videos tracked at no credit).
#[utoipa::path(post, path = "/api/v1/channels", tag = "tracking", request_body = TrackRequest,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Now monitored", body = TrackedChannel),
        (status = 200, description = "Already monitored", body = TrackedChannel),
        (status = 401, body = ErrorBody),
        (status = 402, description = "`channel_limit_reached`: the free plan's limit; premium allows more", body = ErrorBody),
        (status = 403, description = "`channel_limit_reached` on a plan with no higher tier", body = ErrorBody),
        (status = 422, description = "Not a channel, or no such channel", body = ErrorBody),
        (status = 503, description = "YouTube could not be read", body = ErrorBody)))]
pub async fn track_channel(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(body): ApiJson<TrackRequest>,
) -> Result<Response, ApiError> {
    let limit = caller.limits(&state).channels.get();
    let tracked = state
        .tracker
        .track_channel_for(caller.user.id, &body.url, limit)
        .await
        .map_err(|e| track_refused(&state, &caller, e))?;
    let status = if tracked.added { StatusCode::CREATED } else { StatusCode::OK };
    let body = TrackedChannel {
        channel: channel_view(&state, &tracked.id).await?,
        charged: tracked.charged,
        usage: Usage::of(&state, &caller.user).await?,
    };
    Ok((status, Json(body)).into_response())
}

/// Stops monitoring a channel for the caller (others who monitor it are unaffected). When nobody
/// monitors it any more, its checks stop, with those of its videos nobody tracks on their own.
#[utoipa::path(delete, path = "/api/v1/channels/{channel_id}", tag = "tracking",
    params(("channel_id" = String, Path, description = "The channel's UC… id")),
    security(("session" = []), ("bearer" = [])),
    responses((status = 204, description = "No longer monitored"), (status = 401, body = ErrorBody),
        (status = 404, description = "The caller does not monitor it", body = ErrorBody)))]
pub async fn untrack_channel(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(channel_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = channel_param(&channel_id)?;
    if state.tracker.untrack_channel_for(caller.user.id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("channel"))
    }
}

/// A monitored channel's known videos, newest first.
#[utoipa::path(get, path = "/api/v1/channels/{channel_id}/videos", tag = "tracking",
    params(("channel_id" = String, Path, description = "The channel's UC… id"), PageQuery),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = ChannelVideos), (status = 401, body = ErrorBody),
        (status = 404, description = "The caller does not monitor it", body = ErrorBody)))]
pub async fn channel_videos(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(channel_id): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<ChannelVideos>, ApiError> {
    let id = channel_param(&channel_id)?;
    let videos = state.service().monitored_channel_videos(caller.user.id, &id).await?;
    let (videos, next_offset) = page.page(videos.ok_or_else(|| ApiError::not_found("channel"))?)?;
    let mut items = Vec::with_capacity(videos.len());
    for v in &videos {
        items.push(video_view(&state, v).await?);
    }
    Ok(Json(ChannelVideos { items, next_offset }))
}

/// The videos the caller tracks individually, with usage against the plan.
#[utoipa::path(get, path = "/api/v1/videos", tag = "tracking", params(PageQuery),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = VideoList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_videos(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<VideoList>, ApiError> {
    let service = state.service();
    let (mapped, next_offset) = page.page(service.videos_tracked_alone(caller.user.id).await?)?;
    let mut items = Vec::with_capacity(mapped.len());
    for m in &mapped {
        if let Some(v) = service.video(&m.video_id).await? {
            items.push(video_view(&state, &v).await?);
        }
    }
    Ok(Json(VideoList { items, next_offset, usage: Usage::of(&state, &caller.user).await? }))
}

/// Starts tracking one video (hourly for 7 days after publish, then daily until day 60).
#[utoipa::path(post, path = "/api/v1/videos", tag = "tracking", request_body = TrackRequest,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Now tracked", body = TrackedVideo),
        (status = 200, description = "Already tracked", body = TrackedVideo),
        (status = 401, body = ErrorBody),
        (status = 402, description = "`video_limit_reached`: the free plan's monthly limit", body = ErrorBody),
        (status = 403, description = "`video_limit_reached` on a plan with no higher tier", body = ErrorBody),
        (status = 422, description = "Not a video, unavailable, or past its tracking window", body = ErrorBody),
        (status = 503, description = "YouTube could not be read", body = ErrorBody)))]
pub async fn track_video(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(body): ApiJson<TrackRequest>,
) -> Result<Response, ApiError> {
    let limit = caller.limits(&state).videos_per_month.get();
    let tracked = state
        .tracker
        .track_video_for(caller.user.id, &body.url, limit)
        .await
        .map_err(|e| track_refused(&state, &caller, e))?;
    let status = if tracked.added { StatusCode::CREATED } else { StatusCode::OK };
    let video = state.service().video(&tracked.id).await?.ok_or_else(|| ApiError::not_found("video"))?;
    let body = TrackedVideo {
        video: video_view(&state, &video).await?,
        charged: tracked.charged,
        usage: Usage::of(&state, &caller.user).await?,
    };
    Ok((status, Json(body)).into_response())
}

/// Stops tracking a video for the caller. The month's credit is not refunded.
#[utoipa::path(delete, path = "/api/v1/videos/{video_id}", tag = "tracking",
    params(("video_id" = String, Path, description = "The video's id")),
    security(("session" = []), ("bearer" = [])),
    responses((status = 204, description = "No longer tracked"), (status = 401, body = ErrorBody),
        (status = 404, description = "The caller does not track it individually", body = ErrorBody)))]
pub async fn untrack_video(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(video_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = video_param(&video_id)?;
    if state.tracker.untrack_video_for(caller.user.id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("video"))
    }
}

fn change_mark(c: ChangeEvent) -> ChangeMark {
    let c = c.change;
    ChangeMark {
        kind: c.kind.as_str().to_owned(),
        slot: c.slot.start(),
        detected_at: c.detected_at,
        before_title: c.before_title,
        after_title: c.after_title,
        before_thumbnail_url: c.before_thumb_key.as_deref().and_then(thumbnail_url),
        after_thumbnail_url: c.after_thumb_key.as_deref().and_then(thumbnail_url),
    }
}

/// A video's views series and its thumbnail and title changes, ready for a chart. This is the
/// video's views endpoint: every measurement (slot, time measured, cumulative views) in slot
/// order, with the changes to mark on the chart. The answer carries an `ETag`; sent back in
/// `If-None-Match`, it is answered 304 until a new measurement or change arrives.
#[utoipa::path(get, path = "/api/v1/videos/{video_id}/series", tag = "tracking",
    params(("video_id" = String, Path, description = "The video's id"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` of this series received before")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, body = Series, headers(("ETag" = String, description = "The series' version"))),
        (status = 304, description = "Unchanged since the `ETag` in `If-None-Match`"),
        (status = 401, body = ErrorBody),
        (status = 404, description = "The caller does not track it", body = ErrorBody)))]
pub async fn video_series(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(video_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = video_param(&video_id)?;
    // The access check and the series' version in one index-only query.
    let stamp =
        state.service().visible_series_stamp(caller.user.id, &id).await?.ok_or_else(|| ApiError::not_found("video"))?;
    let etag = series_cache::etag(&id, &stamp);
    let validators =
        [(header::ETAG, etag.clone()), (header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"))];
    if headers.get(header::IF_NONE_MATCH).is_some_and(|sent| series_cache::none_match(sent, &etag)) {
        return Ok((StatusCode::NOT_MODIFIED, validators).into_response());
    }
    let body = match state.series_cache.get(&id, &stamp) {
        Some(body) => body,
        None => {
            let video = state.service().video(&id).await?.ok_or_else(|| ApiError::not_found("video"))?;
            let series = Series::of(state.service().history_of(video).await?);
            let body = Bytes::from(serde_json::to_vec(&series).map_err(ApiError::internal)?);
            // Read after the stamp, the series is at least as new as it: never older than its key.
            state.series_cache.insert(id, stamp, body.clone());
            body
        }
    };
    Ok((validators, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

impl Series {
    /// A video's series document: its view, every measurement and every change mark.
    pub fn of(visible: VisibleVideo) -> Self {
        let VisibleVideo { video, target, history } = visible;
        let points = history
            .views
            .into_iter()
            .map(|r| SeriesPoint { slot: r.slot.start(), measured_at: r.measured_at, views: r.views })
            .collect();
        let changes = history.changes.into_iter().map(change_mark).collect();
        Series { video: VideoView::of(&video, target.as_ref()), points, changes }
    }
}

/// An archived thumbnail of a video the caller tracks.
#[utoipa::path(get, path = "/api/v1/videos/{video_id}/thumbnails/{sha}/{size}", tag = "tracking",
    params(
        ("video_id" = String, Path, description = "The video's id"),
        ("sha" = String, Path, description = "SHA-256 (hex) of the small thumbnail version"),
        ("size" = String, Path, description = "`default`, `hqdefault`, …")),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, description = "JPEG bytes", content_type = "image/jpeg"), (status = 401, body = ErrorBody),
        (status = 404, description = "Not tracked by the caller, or not archived", body = ErrorBody)))]
pub async fn thumbnail(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path((video_id, sha, size)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let video = visible_video(&state, &caller, &video_param(&video_id)?).await?;
    let sha_ok = (16..=128).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit());
    let size_ok = (1..=16).contains(&size.len()) && size.bytes().all(|b| b.is_ascii_alphanumeric());
    if !sha_ok || !size_ok {
        return Err(ApiError::not_found("thumbnail"));
    }
    let bytes = state.blobs.get(&thumbnail_key(&video.id, &sha, &size)).await?;
    let bytes = bytes.ok_or_else(|| ApiError::not_found("thumbnail"))?;
    // Archived thumbnails are content-addressed, hence immutable; `private` keeps shared caches
    // from serving them to other users.
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, max-age=86400, immutable")], bytes)
        .into_response())
}
