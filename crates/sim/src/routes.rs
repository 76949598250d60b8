//! The HTTP surface: the router, the fault-injection layer in front of every YouTube/Google
//! endpoint, and the `www.youtube.com` / `i.ytimg.com` handlers (feed, watch page, InnerTube
//! player and resolve_url, thumbnails). The Data API and OAuth live in `api`, the Reporting API
//! in `reporting`, the control and truth API in `control`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use crate::faults::{Endpoint, Fault};
use crate::pages::{self, VideoView};
use crate::respond::{html, json_response};
use crate::sim::{Shared, SimInner};
use crate::thumbs::{self, ThumbSize, ThumbSource};
use crate::world::Video;

pub(crate) fn router(sim: Shared) -> Router {
    let upload_limit = sim.config.thumbnail_max_bytes.saturating_mul(2).max(1024 * 1024);
    Router::new()
        .route("/feeds/videos.xml", get(feed).layer(middleware::from_fn(gzip_small)))
        .route("/watch", get(watch))
        .route("/m", get(consent))
        .route("/youtubei/v1/player", post(player).layer(middleware::from_fn(gzip_small)))
        .route("/youtubei/v1/navigation/resolve_url", post(resolve_url).layer(middleware::from_fn(gzip_small)))
        .route("/vi/{id}/{name}", get(thumbnail))
        .route("/youtube/v3/videos", get(crate::api::videos_list).put(crate::api::videos_update))
        .route("/youtube/v3/channels", get(crate::api::channels_list))
        .route("/youtube/v3/playlistItems", get(crate::api::playlist_items_list))
        .route(
            "/upload/youtube/v3/thumbnails/set",
            post(crate::api::thumbnails_set).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/o/oauth2/v2/auth", get(crate::api::authorize))
        .route("/token", post(crate::api::token))
        .route("/revoke", post(crate::api::revoke))
        .route("/v1/reportTypes", get(crate::reporting::report_types))
        .route("/v1/jobs", get(crate::reporting::jobs_list).post(crate::reporting::jobs_create))
        .route("/v1/jobs/{job_id}/reports", get(crate::reporting::reports_list))
        .route("/v1/jobs/{job_id}/reports/{report_id}", get(crate::reporting::report_get))
        .route("/v1/media/{*resource}", get(crate::reporting::media))
        .merge(crate::control::routes())
        .route("/_sim/faults", put(crate::control::put_faults).get(crate::control::get_faults))
        .layer(middleware::from_fn_with_state(sim.clone(), inject_faults))
        .with_state(sim)
}

/// An error in the style of the endpoint's family: Google's HTML page for the web hosts, the
/// JSON error body for the APIs.
fn family_error(endpoint: Endpoint, code: StatusCode) -> Response {
    let (status, reason) = match code.as_u16() {
        429 => ("RESOURCE_EXHAUSTED", "rateLimitExceeded"),
        503 => ("UNAVAILABLE", "backendError"),
        504 => ("DEADLINE_EXCEEDED", "backendError"),
        404 => ("NOT_FOUND", "notFound"),
        _ => ("INTERNAL", "backendError"),
    };
    let phrase = code.canonical_reason().unwrap_or("Error");
    match endpoint {
        Endpoint::Feed | Endpoint::Watch | Endpoint::Thumbnail => {
            let message = match code.as_u16() {
                404 => "The requested URL was not found on this server.",
                429 => "We're sorry, but you have sent too many requests to us recently. Please try again later.",
                _ => "The server encountered an error and could not complete your request. Please try again later.",
            };
            html(code, pages::google_error_page(code.as_u16(), phrase, message))
        }
        _ => json_response(code, &pages::google_json_error(code.as_u16(), status, "global", reason, phrase)),
    }
}

/// Compresses a small document (feed, InnerTube JSON) when the client accepts gzip, as
/// `www.youtube.com` does. Watch pages compress themselves (their padding is compressed once).
async fn gzip_small(req: Request, next: Next) -> Response {
    let gzip = crate::gzip::accepts_gzip(req.headers());
    let response = next.run(req).await;
    if !gzip || response.headers().contains_key(header::CONTENT_ENCODING) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return family_error(Endpoint::Feed, StatusCode::INTERNAL_SERVER_ERROR);
    };
    crate::gzip::set_gzip_headers(&mut parts.headers);
    Response::from_parts(parts, Body::from(crate::gzip::gzip(&bytes, pages::GZIP_LEVEL)))
}

/// Decides each request's fault before it reaches its handler. Faults that change the content
/// (bot check, consent, wrong video) are handed to the handler as a request extension.
async fn inject_faults(State(sim): State<Shared>, mut req: Request, next: Next) -> Response {
    let Some(endpoint) = Endpoint::classify(req.uri().path()) else {
        return next.run(req).await;
    };
    let (spec, hang_secs) = {
        let faults = sim.faults.read().unwrap_or_else(|e| e.into_inner());
        (faults.spec(endpoint).clone(), faults.hang_secs)
    };
    let decision = sim.dice.roll(sim.world.seed(), endpoint, &spec);
    if decision.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(decision.latency_ms)).await;
    }
    match decision.fault {
        None => next.run(req).await,
        Some(Fault::TooManyRequests) => family_error(endpoint, StatusCode::TOO_MANY_REQUESTS),
        Some(Fault::InternalError) => family_error(endpoint, StatusCode::INTERNAL_SERVER_ERROR),
        Some(Fault::Unavailable) => family_error(endpoint, StatusCode::SERVICE_UNAVAILABLE),
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(hang_secs)).await;
            family_error(endpoint, StatusCode::GATEWAY_TIMEOUT)
        }
        Some(Fault::Outage) => family_error(endpoint, StatusCode::NOT_FOUND),
        Some(Fault::Truncate) => {
            let response = next.run(req).await;
            let (mut parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            parts.headers.remove(header::CONTENT_LENGTH);
            let cut = bytes.slice(..bytes.len() / 2);
            Response::from_parts(parts, Body::from(cut))
        }
        Some(f @ (Fault::BotCheck | Fault::Consent | Fault::WrongVideo)) => {
            req.extensions_mut().insert(f);
            next.run(req).await
        }
    }
}

fn view<'a>(sim: &'a SimInner, video: &'a Video) -> Option<VideoView<'a>> {
    let channel = sim.world.channel(video.key.channel)?;
    let live = sim.world.live_state(video, &sim.read_muts(), sim.now());
    Some(VideoView { video, channel, live })
}

#[derive(Debug, serde::Deserialize)]
struct FeedQuery {
    channel_id: Option<String>,
    playlist_id: Option<String>,
}

/// `GET /feeds/videos.xml?channel_id=UC…`, also of the uploads playlist `UU…` and of its two
/// streams, `UULF…` (long videos) and `UUSH…` (Shorts): the 15 newest entries.
async fn feed(State(sim): State<Shared>, Query(q): Query<FeedQuery>) -> Response {
    let found = match (&q.channel_id, &q.playlist_id) {
        (Some(id), _) => sim.world.channel_by_id(id).map(|c| (c, None)),
        (None, Some(p)) => crate::api::uploads_playlist(&sim, p),
        (None, None) => None,
    };
    let Some((channel, stream)) = found else {
        return family_error(Endpoint::Feed, StatusCode::NOT_FOUND);
    };
    let now = sim.now();
    let videos = match stream {
        None => sim.world.newest_videos(channel, now, 15),
        Some(stream) => crate::api::stream_videos(&sim, channel, Some(stream), now).into_iter().take(15).collect(),
    };
    let entries: Vec<VideoView<'_>> = videos.iter().filter_map(|v| view(&sim, v)).collect();
    let body = pages::feed(&sim.world, sim.base(), channel, q.playlist_id.as_deref(), &entries);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=UTF-8"), (header::CACHE_CONTROL, "public, max-age=900")],
        body,
    )
        .into_response()
}

/// The player response for `id` under the request's fault, and the live state it shows.
fn player_for(sim: &SimInner, id: &str, fault: Option<Fault>) -> (Value, Option<crate::world::LiveState>) {
    if fault == Some(Fault::BotCheck) {
        return (pages::bot_check_response(&sim.world), None);
    }
    let now = sim.now();
    let Some(mut video) = sim.world.published_video(id, now) else {
        return (pages::unavailable_response(&sim.world), None);
    };
    if fault == Some(Fault::WrongVideo) {
        // Under rate limiting YouTube answers with another video's player response.
        let next = (video.key.channel + 1) % sim.world.channels().len().max(1) as u32;
        if let Some(other) = sim.world.channel(next).and_then(|c| sim.world.newest_videos(c, now, 1).pop()) {
            video = other;
        }
    }
    match view(sim, &video) {
        Some(v) => {
            let json = pages::player_response(&sim.world, sim.base(), &v);
            (json, Some(v.live))
        }
        None => (pages::unavailable_response(&sim.world), None),
    }
}

/// `GET /watch?v=ID`: the page with `var ytInitialPlayerResponse = {…};`, padded to size.
async fn watch(
    State(sim): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    fault: Option<axum::Extension<Fault>>,
) -> Response {
    let fault = fault.map(|f| f.0);
    let id = q.get("v").cloned().unwrap_or_default();
    if fault == Some(Fault::Consent) {
        let target = format!("{}/watch?v={id}", sim.base());
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("continue", &target)
            .append_pair("gl", "GB")
            .append_pair("m", "0")
            .append_pair("pc", "yt")
            .append_pair("hl", "en")
            .append_pair("src", "1")
            .finish();
        let location = format!("{}/m?{query}", sim.base());
        return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    }
    let (player, live) = player_for(&sim, &id, fault);
    let gzip = crate::gzip::accepts_gzip(&headers);
    let chunks = pages::watch_page(sim.base(), &id, &player, live.as_ref(), &sim.padding, gzip);
    let stream = futures::stream::iter(chunks.into_iter().map(Ok::<Bytes, Infallible>));
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if gzip {
        crate::gzip::set_gzip_headers(response.headers_mut());
    }
    response
}

/// `GET /m?continue=…`: the consent interstitial.
async fn consent(Query(q): Query<HashMap<String, String>>) -> Response {
    html(StatusCode::OK, pages::consent_page(q.get("continue").map_or("", String::as_str)))
}

/// `POST /youtubei/v1/player` with `{"videoId": …}`; `?$fields=a.b,c(d,e)` keeps only those
/// fields, as Google's partial responses do.
async fn player(
    State(sim): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    fault: Option<axum::Extension<Fault>>,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &pages::google_json_error(
                400,
                "INVALID_ARGUMENT",
                "global",
                "badRequest",
                "Invalid JSON payload received.",
            ),
        );
    };
    let id = request.get("videoId").and_then(Value::as_str).unwrap_or_default();
    let (json, _) = player_for(&sim, id, fault.map(|f| f.0));
    match q.get("$fields").map(|mask| crate::fields::FieldMask::parse(mask)) {
        None => json_response(StatusCode::OK, &json),
        Some(Ok(mask)) => json_response(StatusCode::OK, &mask.apply(&json)),
        Some(Err(e)) => json_response(
            StatusCode::BAD_REQUEST,
            &pages::google_json_error(400, "INVALID_ARGUMENT", "global", "badRequest", &e),
        ),
    }
}

/// `POST /youtubei/v1/navigation/resolve_url` with `{"url": "https://www.youtube.com/@handle"}`.
async fn resolve_url(State(sim): State<Shared>, body: Bytes) -> Response {
    let not_found = || {
        json_response(
            StatusCode::NOT_FOUND,
            &pages::google_json_error(404, "NOT_FOUND", "global", "notFound", "Requested entity was not found."),
        )
    };
    let Some(url) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("url").and_then(Value::as_str).map(str::to_owned))
    else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &pages::google_json_error(
                400,
                "INVALID_ARGUMENT",
                "global",
                "badRequest",
                "Request contains an invalid argument.",
            ),
        );
    };
    let path = url::Url::parse(&url).map(|u| u.path().to_owned()).unwrap_or(url);
    let mut segments = path.trim_start_matches('/').split('/');
    let channel = match (segments.next(), segments.next()) {
        (Some(h), _) if h.starts_with('@') => sim.world.channel_by_handle(h),
        (Some("channel"), Some(id)) => sim.world.channel_by_id(id),
        _ => None,
    };
    let Some(channel) = channel else { return not_found() };
    let json = json!({
        "responseContext": {"visitorData": crate::rng::encode_id11(u64::from(channel.index))},
        "endpoint": {
            "clickTrackingParams": "IhMIk7j4q-SpkgMVMARgAh1a8jBMMghleHRlcm5hbA==",
            "commandMetadata": {
                "webCommandMetadata": {
                    "url": format!("/{}", channel.handle),
                    "webPageType": "WEB_PAGE_TYPE_CHANNEL",
                    "rootVe": 3611,
                    "apiUrl": "/youtubei/v1/browse"
                },
                "resolveUrlCommandMetadata": {"isVanityUrl": true}
            },
            "browseEndpoint": {"browseId": channel.id.as_str(), "params": "EgC4AQCSAwDyBgQKAjIA"}
        }
    });
    json_response(StatusCode::OK, &json)
}

fn placeholder_404(sim: &SimInner) -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "image/jpeg")], sim.placeholder.clone()).into_response()
}

/// `GET /vi/ID/NAME.jpg`: the live variant's picture at that size, or the grey placeholder 404.
async fn thumbnail(State(sim): State<Shared>, Path((id, name)): Path<(String, String)>) -> Response {
    let Some(size) = ThumbSize::from_file_name(&name) else { return placeholder_404(&sim) };
    let now = sim.now();
    let Some(video) = sim.world.published_video(&id, now) else { return placeholder_404(&sim) };
    if size == ThumbSize::Maxres && !video.has_maxres {
        return placeholder_404(&sim);
    }
    let (cache_key, source) = {
        let muts = sim.read_muts();
        let variant = sim.world.live_state(&video, &muts, now).thumbnail_variant;
        match muts.image(&variant) {
            Some(bytes) => (variant, ThumbSource::Uploaded(bytes)),
            None => (format!("{id}:{variant}"), ThumbSource::Generated(sim.world.thumbnail_look(&video, &variant))),
        }
    };
    let bytes = match sim.thumbs.get(&cache_key, size) {
        Some(b) => b,
        None => {
            let encoded = tokio::task::spawn_blocking(move || thumbs::encode(&source, size)).await;
            match encoded {
                Ok(Ok(data)) => {
                    let data = Bytes::from(data);
                    sim.thumbs.put(&cache_key, size, data.clone());
                    data
                }
                _ => return family_error(Endpoint::Thumbnail, StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "public, max-age=7200")], bytes)
        .into_response()
}
