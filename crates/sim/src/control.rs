//! The control and truth API under `/_sim/…` (JSON). It is how an evaluation or a test reads
//! what really happened (channels, videos with publish times, true multipliers and breakouts,
//! every thumbnail/title change) and steers the world (time, multipliers, faults). It is never
//! faulted.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use tubewatch_core::{ChannelId, VideoId};

use crate::faults::FaultConfig;
use crate::respond::json_response;
use crate::sim::{Shared, SimError, Simulator};
use crate::world::VariantKind;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/_sim/time", get(get_time).post(set_time))
        .route("/_sim/channels", get(list_channels))
        .route("/_sim/channels/{id}/videos", get(channel_videos))
        .route("/_sim/videos/{id}", get(video))
        .route("/_sim/videos/{id}/views", get(views_series))
        .route("/_sim/breakouts", get(breakouts))
        .route("/_sim/changes", get(changes))
        .route("/_sim/multipliers", post(set_multiplier))
        .route("/_sim/stats", get(stats))
}

fn sim(shared: &Shared) -> Simulator {
    Simulator { inner: shared.clone() }
}

fn error(code: StatusCode, message: impl std::fmt::Display) -> Response {
    json_response(code, &json!({"error": message.to_string()}))
}

fn sim_error(e: SimError) -> Response {
    let code = match e {
        SimError::UnknownVideo(_) | SimError::UnknownChannel(_) => StatusCode::NOT_FOUND,
        SimError::BadMultiplier(_) => StatusCode::UNPROCESSABLE_ENTITY,
        SimError::ClockNotManual => StatusCode::CONFLICT,
    };
    error(code, e)
}

fn time_param(q: &HashMap<String, String>, name: &str, default: DateTime<Utc>) -> Result<DateTime<Utc>, Box<Response>> {
    match q.get(name) {
        None => Ok(default),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.to_utc())
            .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("{name}: not an RFC 3339 time ({e})")))),
    }
}

/// `GET /_sim/time`
async fn get_time(State(s): State<Shared>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"now": s.now(), "manual": s.manual.is_some(), "epoch": s.world.params.epoch, "seed": s.world.seed()}),
    )
}

#[derive(Debug, Deserialize)]
struct SetTime {
    set: Option<DateTime<Utc>>,
    advance_secs: Option<i64>,
}

/// `POST /_sim/time` with `{"set": "…"}` or `{"advance_secs": n}` (manual clock only).
async fn set_time(State(s): State<Shared>, Json(body): Json<SetTime>) -> Response {
    let Some(clock) = &s.manual else { return sim_error(SimError::ClockNotManual) };
    if let Some(t) = body.set {
        clock.set(t);
    }
    if let Some(secs) = body.advance_secs {
        clock.advance(Duration::seconds(secs));
    }
    get_time(State(s)).await
}

/// `GET /_sim/channels?offset=&limit=`: channel truth (sizes, cadences, time zones, typical views).
async fn list_channels(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
    let all = s.world.channels();
    let page: Vec<_> = all.iter().skip(offset).take(limit).collect();
    json_response(StatusCode::OK, &json!({"total": all.len(), "channels": page}))
}

/// `GET /_sim/channels/{id}/videos?since=&until=`: videos published in the window (default:
/// all history up to now), newest first, with their truth at `until`.
async fn channel_videos(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = s.now();
    let (since, until) = match (time_param(&q, "since", DateTime::<Utc>::MIN_UTC), time_param(&q, "until", now)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return *e,
    };
    // A malformed id names no channel of the world: the same 404 as an unknown one.
    let Ok(id) = ChannelId::parse(&id) else { return sim_error(SimError::UnknownChannel(id)) };
    match sim(&s).channel_videos(&id, since, until) {
        Ok(videos) => json_response(StatusCode::OK, &json!({"channel_id": id, "videos": videos})),
        Err(e) => sim_error(e),
    }
}

/// `GET /_sim/videos/{id}?at=`: one video's truth (default now).
async fn video(State(s): State<Shared>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Response {
    let at = match time_param(&q, "at", s.now()) {
        Ok(t) => t,
        Err(e) => return *e,
    };
    // A malformed id names no video of the world: the same 404 as an unknown one.
    let Ok(id) = VideoId::parse(&id) else { return sim_error(SimError::UnknownVideo(id)) };
    match sim(&s).video_at(&id, at) {
        Ok(v) => json_response(StatusCode::OK, &json!(v)),
        Err(e) => sim_error(e),
    }
}

/// `GET /_sim/videos/{id}/views?from=&to=&step_secs=`: the true views series (≤ 10,000 points).
async fn views_series(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = s.now();
    let Some(video) = s.world.published_video(&id, now) else {
        return sim_error(SimError::UnknownVideo(id));
    };
    let (from, to) = match (time_param(&q, "from", video.published), time_param(&q, "to", now)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return *e,
    };
    let step = q.get("step_secs").and_then(|v| v.parse::<i64>().ok()).unwrap_or(3600).max(1);
    if (to - from).num_seconds() / step > 10_000 {
        return error(StatusCode::BAD_REQUEST, "more than 10,000 points: use a larger step_secs");
    }
    let muts = s.read_muts();
    let mut points = Vec::new();
    let mut t = from;
    while t <= to {
        points.push(json!({"t": t, "views": s.world.live_state(&video, &muts, t).views}));
        t += Duration::seconds(step);
    }
    json_response(StatusCode::OK, &json!({"video_id": id, "points": points}))
}

/// `GET /_sim/breakouts?since=&until=`: true breakouts published in the window.
async fn breakouts(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let now = s.now();
    let (since, until) = match (time_param(&q, "since", now - Duration::days(60)), time_param(&q, "until", now)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return *e,
    };
    json_response(StatusCode::OK, &json!({"videos": sim(&s).breakouts(since, until)}))
}

/// `GET /_sim/changes?since=&until=&channel_id=`: every thumbnail/title change in the window.
async fn changes(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let now = s.now();
    let (since, until) = match (time_param(&q, "since", now - Duration::days(60)), time_param(&q, "until", now)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return *e,
    };
    match sim(&s).changes(since, until, q.get("channel_id").map(String::as_str)) {
        Ok(c) => json_response(StatusCode::OK, &json!({"changes": c})),
        Err(e) => sim_error(e),
    }
}

#[derive(Debug, Deserialize)]
struct SetMultiplier {
    video_id: String,
    kind: VariantKind,
    variant: String,
    multiplier: f64,
}

/// `POST /_sim/multipliers` with `{"video_id","kind":"thumbnail"|"title","variant","multiplier"}`.
async fn set_multiplier(State(s): State<Shared>, Json(body): Json<SetMultiplier>) -> Response {
    match sim(&s).set_multiplier(&body.video_id, body.kind, &body.variant, body.multiplier) {
        Ok(()) => json_response(StatusCode::OK, &json!({"ok": true, "effective_from": s.now()})),
        Err(e) => sim_error(e),
    }
}

/// `GET /_sim/faults`
pub(crate) async fn get_faults(State(s): State<Shared>) -> Response {
    json_response(StatusCode::OK, &json!(sim(&s).faults()))
}

/// `PUT /_sim/faults` with a whole [`FaultConfig`].
pub(crate) async fn put_faults(State(s): State<Shared>, Json(body): Json<FaultConfig>) -> Response {
    sim(&s).set_faults(body);
    get_faults(State(s)).await.into_response()
}

/// `GET /_sim/stats`: requests and injected faults per endpoint, cache size.
async fn stats(State(s): State<Shared>) -> Response {
    let endpoints: serde_json::Map<String, serde_json::Value> = s
        .dice
        .counts()
        .into_iter()
        .map(|(e, (requests, faults))| {
            (
                serde_json::to_value(e).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                json!({"requests": requests, "faults": faults}),
            )
        })
        .collect();
    json_response(StatusCode::OK, &json!({"endpoints": endpoints, "thumbnail_cache_entries": s.thumbs.len()}))
}
