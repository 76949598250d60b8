//! The Google APIs tubewatch uses: Data API v3 (`videos.list`, `channels.list`,
//! `thumbnails.set`, `videos.update`) with API-key/bearer checks, per-project daily quota and
//! Google-shaped errors; and OAuth 2.0 (authorize with auto-consent for the configured user,
//! token with PKCE S256 verification and refresh, revoke). Tokens and codes are drawn from the
//! seed and a counter, so runs are reproducible.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::books::{AccessToken, PendingCode, RefreshToken};
use crate::pages::{self, VideoView, google_json_error};
use crate::respond::{html, json_response};
use crate::rng::{self, tag};
use crate::sim::{Shared, SimInner};
use crate::thumbs::{self, ThumbSize};
use crate::world::{Channel, Stream, Video};
use tubewatch_core::ChannelId;

/// Scopes that allow `thumbnails.set` / `videos.update`.
const WRITE_SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/youtube",
    "https://www.googleapis.com/auth/youtube.force-ssl",
    "https://www.googleapis.com/auth/youtube.upload",
];

/// A Data API error: status and Google's JSON body.
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) Value);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.0, &self.1)
    }
}

fn api_error(code: u16, status: &str, domain: &str, reason: &str, message: &str) -> ApiError {
    ApiError(
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        google_json_error(code, status, domain, reason, message),
    )
}

fn bad_request(reason: &str, domain: &str, message: &str) -> ApiError {
    api_error(400, "INVALID_ARGUMENT", domain, reason, message)
}

/// Who is calling the Data API.
pub(crate) enum Caller {
    Key(String),
    /// `channel`: the channel the grant was made for, when one was picked at consent.
    User {
        client_id: String,
        scope: String,
        channel: Option<ChannelId>,
    },
}

impl Caller {
    fn project(&self) -> String {
        match self {
            Caller::Key(k) => k.clone(),
            Caller::User { client_id, .. } => format!("oauth:{client_id}"),
        }
    }
}

fn invalid_credentials() -> ApiError {
    let mut body = google_json_error(
        401,
        "UNAUTHENTICATED",
        "global",
        "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
    );
    body["error"]["errors"][0]["message"] = json!("Invalid Credentials");
    body["error"]["errors"][0]["location"] = json!("Authorization");
    body["error"]["errors"][0]["locationType"] = json!("header");
    ApiError(StatusCode::UNAUTHORIZED, body)
}

fn login_required() -> ApiError {
    let mut body = google_json_error(401, "UNAUTHENTICATED", "global", "required", "Login Required.");
    body["error"]["errors"][0]["location"] = json!("Authorization");
    body["error"]["errors"][0]["locationType"] = json!("header");
    ApiError(StatusCode::UNAUTHORIZED, body)
}

/// Authenticates by bearer token (checked first) or API key.
pub(crate) fn caller(
    sim: &SimInner,
    headers: &HeaderMap,
    key: Option<&str>,
    need_user: bool,
) -> Result<Caller, ApiError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let token = auth.strip_prefix("Bearer ").ok_or_else(invalid_credentials)?.trim();
        let book = sim.auth.lock().unwrap_or_else(|e| e.into_inner());
        let access = book.access.get(token).filter(|t| t.expires > sim.now()).ok_or_else(invalid_credentials)?;
        return Ok(Caller::User {
            client_id: access.client_id.clone(),
            scope: access.scope.clone(),
            channel: access.channel.clone(),
        });
    }
    if need_user {
        return Err(login_required());
    }
    match key {
        Some(k)
            if !k.is_empty()
                && (sim.config.oauth.api_keys.is_empty() || sim.config.oauth.api_keys.iter().any(|a| a == k)) =>
        {
            Ok(Caller::Key(k.to_owned()))
        }
        Some(_) => Err(bad_request("badRequest", "global", "API key not valid. Please pass a valid API key.")),
        None => Err(api_error(
            403,
            "PERMISSION_DENIED",
            "global",
            "forbidden",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        )),
    }
}

fn charge(sim: &SimInner, caller: &Caller, cost: u64) -> Result<(), ApiError> {
    let mut quota = sim.quota.lock().unwrap_or_else(|e| e.into_inner());
    if quota.charge(&caller.project(), cost, sim.config.quota_per_day, sim.now()) {
        Ok(())
    } else {
        Err(api_error(
            403,
            "PERMISSION_DENIED",
            "youtube.quota",
            "quotaExceeded",
            "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
        ))
    }
}

fn etag(seed: u64, parts: &[u64]) -> String {
    format!("{}{}", rng::encode_id11(rng::hash(seed, parts)), rng::encode_id11(rng::hash(seed, &[parts.len() as u64])))
}

fn category_id(category: &str) -> &'static str {
    match category {
        "Gaming" => "20",
        "People & Blogs" => "22",
        "Entertainment" => "24",
        "Howto & Style" => "26",
        "Education" => "27",
        _ => "28",
    }
}

fn iso_duration(secs: u32) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 { format!("PT{h}H{m}M{s}S") } else { format!("PT{m}M{s}S") }
}

fn thumbnails_json(base: &str, id: &str, has_maxres: bool) -> Value {
    let mut map = serde_json::Map::new();
    for size in ThumbSize::ALL {
        if size == ThumbSize::Maxres && !has_maxres {
            continue;
        }
        let (w, h) = size.dimensions();
        map.insert(
            size.api_key().to_owned(),
            json!({"url": format!("{base}/vi/{id}/{}", size.file_name()), "width": w, "height": h}),
        );
    }
    Value::Object(map)
}

fn video_resource(sim: &SimInner, v: &VideoView<'_>, parts: &[&str]) -> Value {
    let id = v.video.id.as_str();
    let mut item = json!({
        "kind": "youtube#video",
        "etag": etag(sim.world.seed(), &[tag("video-etag"), v.live.views, v.video.published.timestamp() as u64]),
        "id": id
    });
    if parts.contains(&"snippet") {
        let desc = pages::description(&sim.world, v);
        item["snippet"] = json!({
            "publishedAt": v.video.published.to_rfc3339_opts(SecondsFormat::Secs, true),
            "channelId": v.channel.id.as_str(),
            "title": v.live.title,
            "description": desc,
            "thumbnails": thumbnails_json(sim.base(), id, v.video.has_maxres),
            "channelTitle": v.channel.title,
            "tags": v.video.keywords,
            "categoryId": category_id(v.video.category),
            "liveBroadcastContent": "none",
            "localized": {"title": v.live.title, "description": desc}
        });
    }
    if parts.contains(&"statistics") {
        item["statistics"] = json!({
            "viewCount": v.live.views.to_string(),
            "likeCount": v.live.likes.to_string(),
            "favoriteCount": "0",
            "commentCount": (v.live.likes / 20).to_string()
        });
    }
    if parts.contains(&"contentDetails") {
        item["contentDetails"] = json!({
            "duration": iso_duration(v.video.length_seconds),
            "dimension": "2d",
            "definition": "hd",
            "caption": "false",
            "licensedContent": true,
            "projection": "rectangular"
        });
    }
    item
}

fn list_response(kind: &str, seed: u64, items: Vec<Value>) -> Value {
    let n = items.len();
    json!({
        "kind": kind,
        "etag": etag(seed, &[tag(kind), n as u64]),
        "items": items,
        "pageInfo": {"totalResults": n, "resultsPerPage": n}
    })
}

/// A read of one quota unit by API key or token: the caller checked, the `part` list read, then
/// the unit charged.
fn charged_read(sim: &SimInner, headers: &HeaderMap, q: &HashMap<String, String>) -> Result<Vec<String>, ApiError> {
    let who = caller(sim, headers, q.get("key").map(String::as_str), false)?;
    let parts = parts_of(q)?;
    charge(sim, &who, 1)?;
    Ok(parts)
}

fn parts_of(q: &HashMap<String, String>) -> Result<Vec<String>, ApiError> {
    let part = q.get("part").filter(|p| !p.is_empty()).ok_or_else(|| {
        bad_request("required", "global", "No filter selected. Expected one of: part")
            .with_message("Required parameter: part")
    })?;
    Ok(part.split(',').map(|p| p.trim().to_owned()).collect())
}

impl ApiError {
    fn with_message(mut self, message: &str) -> Self {
        self.1["error"]["message"] = json!(message);
        self.1["error"]["errors"][0]["message"] = json!(message);
        self
    }
}

/// `GET /youtube/v3/videos?part=snippet,statistics&id=a,b,…` (1 unit, at most 50 ids).
pub(crate) async fn videos_list(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let run = || -> Result<Value, ApiError> {
        let parts = charged_read(&sim, &headers, &q)?;
        let ids: Vec<&str> = q.get("id").map(|s| s.split(',').filter(|i| !i.is_empty()).collect()).unwrap_or_default();
        if ids.len() > 50 {
            return Err(bad_request(
                "badRequest",
                "youtube.parameter",
                "The request specifies more than 50 video ids.",
            ));
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let now = sim.now();
        let items: Vec<Value> = ids
            .iter()
            .filter_map(|id| sim.world.published_video(id, now))
            .filter_map(|video| {
                let channel = sim.world.channel(video.key.channel)?;
                let live = sim.world.live_state(&video, &sim.read_muts(), now);
                Some(video_resource(&sim, &VideoView { video: &video, channel, live }, &parts))
            })
            .collect();
        Ok(list_response("youtube#videoListResponse", sim.world.seed(), items))
    };
    run().map(|v| json_response(StatusCode::OK, &v)).map_err(IntoResponse::into_response)
}

/// The channel and stream of an uploads playlist id: `UU…` (every upload), `UULF…` (long
/// videos), `UUSH…` (Shorts).
pub(crate) fn uploads_playlist<'a>(sim: &'a SimInner, playlist: &str) -> Option<(&'a Channel, Option<Stream>)> {
    let (suffix, stream) = match playlist.len() {
        26 if playlist.starts_with("UULF") => (&playlist[4..], Some(Stream::Long)),
        26 if playlist.starts_with("UUSH") => (&playlist[4..], Some(Stream::Short)),
        24 if playlist.starts_with("UU") => (&playlist[2..], None),
        _ => return None,
    };
    Some((sim.world.channel_by_id(&format!("UC{suffix}"))?, stream))
}

/// How far back an uploads playlist (and its feed) lists (the simulated channels' history).
const PLAYLIST_DAYS: i64 = 3 * 365;

/// A channel's uploads up to `now`, of one stream or (`None`) both, newest first.
pub(crate) fn stream_videos(
    sim: &SimInner,
    channel: &Channel,
    stream: Option<Stream>,
    now: DateTime<Utc>,
) -> Vec<Video> {
    let mut videos = sim.world.videos_between(channel, now - Duration::days(PLAYLIST_DAYS), now);
    videos.retain(|v| stream.is_none_or(|s| v.key.stream == s));
    videos
}

/// `GET /youtube/v3/playlistItems?part=contentDetails&playlistId=UU…&maxResults=N[&pageToken=T]`:
/// an uploads playlist's videos, newest first, `maxResults` (0–50, default 5) a page, with
/// `contentDetails{videoId,videoPublishedAt}` (and `snippet` when asked); 1 quota unit.
pub(crate) async fn playlist_items_list(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let run = || -> Result<Value, ApiError> {
        let parts = charged_read(&sim, &headers, &q)?;
        let Some(playlist) = q.get("playlistId") else {
            return Err(bad_request(
                "missingRequiredParameter",
                "youtube.parameter",
                "No filter selected. Expected one of: id, playlistId",
            ));
        };
        let per_page = match q.get("maxResults").map(|m| m.parse::<usize>()) {
            None => 5,
            Some(Ok(n)) if n <= 50 => n,
            Some(_) => {
                return Err(bad_request(
                    "invalidValue",
                    "youtube.parameter",
                    "Invalid value for maxResults: it must be between 0 and 50.",
                ));
            }
        };
        let offset = match q.get("pageToken") {
            None => 0,
            Some(t) => page_offset(t).ok_or_else(|| {
                bad_request("invalidPageToken", "youtube.parameter", "The request specifies an invalid page token.")
            })?,
        };
        let not_found = || {
            api_error(
                404,
                "NOT_FOUND",
                "youtube.playlistItem",
                "playlistNotFound",
                "The playlist identified with the request's <code>playlistId</code> parameter cannot be found.",
            )
        };
        let (channel, stream) = uploads_playlist(&sim, playlist).ok_or_else(not_found)?;
        let now = sim.now();
        let videos = stream_videos(&sim, channel, stream, now);
        let items: Vec<Value> = videos
            .iter()
            .skip(offset)
            .take(per_page)
            .map(|v| playlist_item(&sim, channel, playlist, v, &parts))
            .collect();
        let mut out = json!({
            "kind": "youtube#playlistItemListResponse",
            "etag": etag(sim.world.seed(), &[tag("playlist-items"), u64::from(channel.index), offset as u64]),
            "items": items,
            "pageInfo": {"totalResults": videos.len(), "resultsPerPage": per_page}
        });
        if offset + per_page < videos.len() {
            out["nextPageToken"] = json!(page_token(offset + per_page));
        }
        Ok(out)
    };
    run().map(|v| json_response(StatusCode::OK, &v)).map_err(IntoResponse::into_response)
}

fn playlist_item(sim: &SimInner, channel: &Channel, playlist: &str, video: &Video, parts: &[String]) -> Value {
    let published = video.published.to_rfc3339_opts(SecondsFormat::Secs, true);
    let id = base64::engine::general_purpose::STANDARD.encode(format!("{playlist}.{}", video.id));
    let mut item = json!({
        "kind": "youtube#playlistItem",
        "etag": etag(sim.world.seed(), &[tag("playlist-item"), u64::from(video.key.index)]),
        "id": id,
    });
    if parts.iter().any(|p| p == "contentDetails") {
        item["contentDetails"] = json!({"videoId": video.id.as_str(), "videoPublishedAt": published});
    }
    if parts.iter().any(|p| p == "snippet") {
        item["snippet"] = json!({
            "publishedAt": published,
            "channelId": channel.id.as_str(),
            "playlistId": playlist,
            "resourceId": {"kind": "youtube#video", "videoId": video.id.as_str()},
            "videoOwnerChannelId": channel.id.as_str(),
        });
    }
    item
}

/// Page tokens are opaque to callers; here, the offset behind a fixed prefix.
fn page_token(offset: usize) -> String {
    format!("EAAaB1BUOk{offset}")
}

fn page_offset(token: &str) -> Option<usize> {
    token.strip_prefix("EAAaB1BUOk")?.parse().ok()
}

fn channel_resource(sim: &SimInner, channel: &Channel, parts: &[&str]) -> Value {
    let id = channel.id.as_str();
    let mut item = json!({"kind": "youtube#channel", "etag": etag(sim.world.seed(), &[tag("channel-etag"), u64::from(channel.index)]), "id": id});
    if parts.contains(&"snippet") {
        item["snippet"] = json!({
            "title": channel.title,
            "description": format!("{} — new videos every week.", channel.title),
            "customUrl": channel.handle.as_str(),
            "publishedAt": channel.created.to_rfc3339_opts(SecondsFormat::Secs, true),
            "thumbnails": {"default": {"url": format!("{}/vi/{}/default.jpg", sim.base(), id), "width": 88, "height": 88}},
            "localized": {"title": channel.title, "description": ""}
        });
    }
    if parts.contains(&"contentDetails") {
        item["contentDetails"] = json!({"relatedPlaylists": {"likes": "", "uploads": channel.id.uploads_playlist()}});
    }
    if parts.contains(&"statistics") {
        let now = sim.now();
        let muts = sim.read_muts();
        let videos = sim.world.videos_between(channel, DateTime::<Utc>::MIN_UTC, now);
        let views: u64 = videos.iter().map(|v| sim.world.live_state(v, &muts, now).views).sum();
        item["statistics"] = json!({
            "viewCount": views.to_string(),
            "subscriberCount": channel.subscribers.to_string(),
            "hiddenSubscriberCount": false,
            "videoCount": videos.len().to_string()
        });
    }
    item
}

/// `GET /youtube/v3/channels?part=contentDetails&id=UC…|forHandle=@…` (1 unit).
pub(crate) async fn channels_list(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let run = || -> Result<Value, ApiError> {
        let parts = charged_read(&sim, &headers, &q)?;
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let channels: Vec<&Channel> = if let Some(ids) = q.get("id") {
            ids.split(',').filter_map(|id| sim.world.channel_by_id(id)).collect()
        } else if let Some(handle) = q.get("forHandle") {
            sim.world.channel_by_handle(handle).into_iter().collect()
        } else {
            return Err(bad_request(
                "missingRequiredParameter",
                "youtube.parameter",
                "No filter selected. Expected one of: forHandle, forUsername, id, idParam, managedByMe, mine, mySubscribers",
            ));
        };
        let items = channels.iter().map(|c| channel_resource(&sim, c, &parts)).collect();
        Ok(list_response("youtube#channelListResponse", sim.world.seed(), items))
    };
    run().map(|v| json_response(StatusCode::OK, &v)).map_err(IntoResponse::into_response)
}

/// The caller must be a user whose token carries a write scope and who owns the video's channel.
fn editor(sim: &SimInner, headers: &HeaderMap, video: Option<&Video>) -> Result<Caller, ApiError> {
    let who = caller(sim, headers, None, true)?;
    if let Caller::User { scope, .. } = &who
        && !scope.split(' ').any(|s| WRITE_SCOPES.contains(&s))
    {
        return Err(api_error(
            403,
            "PERMISSION_DENIED",
            "global",
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
        ));
    }
    if let Some(video) = video {
        let owned = &sim.config.oauth.user_channels;
        let channel_id = sim.world.channel_id_of(video);
        let granted = match &who {
            Caller::User { channel: Some(c), .. } => c == &channel_id,
            _ => true,
        };
        if !granted || (!owned.is_empty() && !owned.contains(&channel_id)) {
            return Err(api_error(
                403,
                "PERMISSION_DENIED",
                "youtube.thumbnail",
                "forbidden",
                "The authenticated user doesn't have permissions to update this video.",
            ));
        }
    }
    Ok(who)
}

fn video_not_found(domain: &str) -> ApiError {
    api_error(404, "NOT_FOUND", domain, "videoNotFound", "The video that you are trying to update cannot be found.")
}

/// `POST /upload/youtube/v3/thumbnails/set?videoId=ID` with a JPEG/PNG body (50 units).
pub(crate) async fn thumbnails_set(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, Response> {
    let run = || -> Result<Value, ApiError> {
        let now = sim.now();
        let id = q.get("videoId").cloned().unwrap_or_default();
        let video = sim.world.published_video(&id, now);
        let who = editor(&sim, &headers, video.as_ref())?;
        charge(&sim, &who, 50)?;
        let video = video.ok_or_else(|| video_not_found("youtube.thumbnail"))?;
        if body.is_empty() {
            return Err(bad_request(
                "mediaBodyRequired",
                "youtube.thumbnail",
                "The request does not include the image content.",
            ));
        }
        if body.len() > sim.config.thumbnail_max_bytes {
            return Err(bad_request(
                "invalidImage",
                "youtube.thumbnail",
                &format!("The thumbnail image is larger than the {} bytes allowed.", sim.config.thumbnail_max_bytes),
            ));
        }
        thumbs::validate_upload(&body).map_err(|e| {
            bad_request("invalidImage", "youtube.thumbnail", &format!("The provided image content is invalid: {e}"))
        })?;
        let variant = {
            let mut muts = sim.write_muts();
            sim.world.set_thumbnail(&mut muts, &video, body.to_vec(), now)
        };
        tracing::info!(video_id = %video.id, %variant, "thumbnail set through the Data API");
        Ok(json!({
            "kind": "youtube#thumbnailSetResponse",
            "etag": etag(sim.world.seed(), &[tag("thumb-set"), rng::mix64(now.timestamp() as u64)]),
            "items": [thumbnails_json(sim.base(), video.id.as_str(), video.has_maxres)]
        }))
    };
    run().map(|v| json_response(StatusCode::OK, &v)).map_err(IntoResponse::into_response)
}

/// `PUT /youtube/v3/videos?part=snippet` with `{"id":…,"snippet":{"title":…,"categoryId":…}}` (50 units).
pub(crate) async fn videos_update(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, Response> {
    let run = || -> Result<Value, ApiError> {
        let now = sim.now();
        let parts = parts_of(&q)?;
        let request: Value =
            serde_json::from_slice(&body).map_err(|_| bad_request("parseError", "global", "Parse Error"))?;
        let id = request.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let video = sim.world.published_video(&id, now);
        let who = editor(&sim, &headers, video.as_ref())?;
        charge(&sim, &who, 50)?;
        let video = video.ok_or_else(|| video_not_found("youtube.video"))?;
        if !parts.iter().any(|p| p == "snippet") {
            return Err(bad_request(
                "unexpectedPart",
                "youtube.part",
                "The request specifies an unexpected value for the part parameter.",
            ));
        }
        let snippet = request
            .get("snippet")
            .ok_or_else(|| bad_request("invalidVideoMetadata", "youtube.video", "The request metadata is invalid."))?;
        let title = snippet.get("title").and_then(Value::as_str).unwrap_or_default();
        if title.trim().is_empty() || title.chars().count() > 100 || title.contains('<') || title.contains('>') {
            return Err(bad_request(
                "invalidTitle",
                "youtube.video",
                "The request metadata specifies an invalid or empty video title.",
            ));
        }
        if snippet.get("categoryId").and_then(Value::as_str).is_none_or(|c| c.parse::<u32>().is_err()) {
            return Err(bad_request(
                "invalidCategoryId",
                "youtube.video",
                "The snippet.categoryId property specifies an invalid category ID.",
            ));
        }
        {
            let mut muts = sim.write_muts();
            if let Some(variant) = sim.world.set_title(&mut muts, &video, title, now) {
                tracing::info!(video_id = %video.id, %variant, "title changed through the Data API");
            }
        }
        let channel = sim.world.channel(video.key.channel).ok_or_else(|| video_not_found("youtube.video"))?;
        let live = sim.world.live_state(&video, &sim.read_muts(), now);
        Ok(video_resource(&sim, &VideoView { video: &video, channel, live }, &["snippet"]))
    };
    run().map(|v| json_response(StatusCode::OK, &v)).map_err(IntoResponse::into_response)
}

fn oauth_error(code: StatusCode, error: &str, description: &str) -> Response {
    json_response(code, &json!({"error": error, "error_description": description}))
}

/// `GET /o/oauth2/v2/auth`: the simulated user consents at once; redirect back with a code.
pub(crate) async fn authorize(State(sim): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let client_id = get("client_id");
    let client_ok = !client_id.is_empty() && sim.config.oauth.client_id.as_deref().is_none_or(|c| c == client_id);
    if !client_ok {
        return html(
            StatusCode::UNAUTHORIZED,
            pages::google_error_page(401, "Unauthorized", "Error 401: invalid_client. The OAuth client was not found."),
        );
    }
    let Ok(mut redirect) = url::Url::parse(get("redirect_uri")) else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::google_error_page(
                400,
                "Bad Request",
                "Error 400: invalid_request. Missing or invalid redirect_uri.",
            ),
        );
    };
    let state = q.get("state").cloned();
    let fail = |mut redirect: url::Url, error: &str| {
        redirect.query_pairs_mut().append_pair("error", error);
        if let Some(state) = &state {
            redirect.query_pairs_mut().append_pair("state", state);
        }
        (StatusCode::FOUND, [(header::LOCATION, redirect.to_string())]).into_response()
    };
    if get("response_type") != "code" {
        return fail(redirect, "unsupported_response_type");
    }
    let challenge = match (q.get("code_challenge"), get("code_challenge_method")) {
        (None, _) => None,
        (Some(c), "S256") => Some((c.clone(), "S256".to_owned())),
        (Some(c), "plain" | "") => Some((c.clone(), "plain".to_owned())),
        (Some(_), _) => return fail(redirect, "invalid_request"),
    };
    let scope = get("scope").to_owned();
    // Google's account chooser, where the user picks which of their channels to grant: the
    // simulated consent takes the pick as `channel` (a channel of the world), else the default.
    let channel = match q.get("channel") {
        None => None,
        Some(id) => match ChannelId::parse(id).ok().filter(|c| sim.world.channel_by_id(c.as_str()).is_some()) {
            Some(c) => Some(c),
            None => return fail(redirect, "invalid_request"),
        },
    };
    let code = {
        let mut book = sim.auth.lock().unwrap_or_else(|e| e.into_inner());
        let code = book.mint(sim.world.seed(), "4/0Asim");
        book.codes.insert(
            code.clone(),
            PendingCode {
                client_id: client_id.to_owned(),
                redirect_uri: get("redirect_uri").to_owned(),
                challenge,
                scope: scope.clone(),
                channel,
            },
        );
        code
    };
    {
        let mut pairs = redirect.query_pairs_mut();
        if let Some(state) = &state {
            pairs.append_pair("state", state);
        }
        pairs.append_pair("code", &code).append_pair("scope", &scope);
    }
    (StatusCode::FOUND, [(header::LOCATION, redirect.to_string())]).into_response()
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn pkce_s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `POST /token`: `authorization_code` (with PKCE) or `refresh_token`.
pub(crate) async fn token(State(sim): State<Shared>, body: Bytes) -> Response {
    let f = form(&body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let client_id = get("client_id");
    if client_id.is_empty() || sim.config.oauth.client_id.as_deref().is_some_and(|c| c != client_id) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "The OAuth client was not found.");
    }
    if sim.config.oauth.client_secret.as_deref().is_some_and(|s| s != get("client_secret")) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
    }
    let now = sim.now();
    let seed = sim.world.seed();
    let lifetime = sim.config.oauth.access_token_secs;
    let mut book = sim.auth.lock().unwrap_or_else(|e| e.into_inner());
    match get("grant_type") {
        "authorization_code" => {
            // A code is single-use whether or not the exchange succeeds, as at Google.
            let Some(pending) = book.codes.remove(get("code")) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Malformed auth code.");
            };
            if pending.client_id != client_id {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
            }
            if pending.redirect_uri != get("redirect_uri") {
                return oauth_error(StatusCode::BAD_REQUEST, "redirect_uri_mismatch", "Bad Request");
            }
            if let Some((challenge, method)) = &pending.challenge {
                let verifier = get("code_verifier");
                let computed = if method == "S256" { pkce_s256(verifier) } else { verifier.to_owned() };
                if verifier.is_empty() || &computed != challenge {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid code verifier.");
                }
            }
            let refresh = book.mint(seed, "1//sim");
            let access = book.mint(seed, "ya29.sim");
            book.refresh.insert(
                refresh.clone(),
                RefreshToken {
                    client_id: client_id.to_owned(),
                    scope: pending.scope.clone(),
                    channel: pending.channel.clone(),
                },
            );
            book.access.insert(
                access.clone(),
                AccessToken {
                    client_id: client_id.to_owned(),
                    scope: pending.scope.clone(),
                    channel: pending.channel.clone(),
                    expires: now + Duration::seconds(lifetime),
                    refresh: Some(refresh.clone()),
                },
            );
            json_response(
                StatusCode::OK,
                &json!({"access_token": access, "expires_in": lifetime, "refresh_token": refresh, "scope": pending.scope, "token_type": "Bearer"}),
            )
        }
        "refresh_token" => {
            let refresh = get("refresh_token").to_owned();
            let Some(grant) = book.refresh.get(&refresh).cloned().filter(|g| g.client_id == client_id) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Token has been expired or revoked.");
            };
            let access = book.mint(seed, "ya29.sim");
            book.access.insert(
                access.clone(),
                AccessToken {
                    client_id: client_id.to_owned(),
                    scope: grant.scope.clone(),
                    channel: grant.channel.clone(),
                    expires: now + Duration::seconds(lifetime),
                    refresh: Some(refresh),
                },
            );
            json_response(
                StatusCode::OK,
                &json!({"access_token": access, "expires_in": lifetime, "scope": grant.scope, "token_type": "Bearer"}),
            )
        }
        other => {
            oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", &format!("Invalid grant_type: {other}"))
        }
    }
}

/// `POST /revoke` with `token=…`: revokes an access token, or a refresh token and every access
/// token minted from it.
pub(crate) async fn revoke(
    State(sim): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let f = form(&body);
    let token = f.get("token").or_else(|| q.get("token")).cloned().unwrap_or_default();
    let mut book = sim.auth.lock().unwrap_or_else(|e| e.into_inner());
    let known = if book.refresh.remove(&token).is_some() {
        book.access.retain(|_, a| a.refresh.as_deref() != Some(token.as_str()));
        true
    } else {
        book.access.remove(&token).is_some()
    };
    if known {
        json_response(StatusCode::OK, &json!({}))
    } else {
        oauth_error(StatusCode::BAD_REQUEST, "invalid_token", "Token expired or revoked")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
