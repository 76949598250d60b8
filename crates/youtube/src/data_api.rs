//! YouTube Data API v3: `videos.list`, `channels.list`, `thumbnails.set` and `videos.update`
//! (read-modify-write of the snippet), and the mapping of Google's error JSON to typed errors
//! (`quotaExceeded`, `forbidden`, `invalidImage`, 401).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use reqwest::header;
use serde::{Deserialize, Serialize};
use tubewatch_core::{ChannelId, Handle, VideoId};

use crate::YoutubeError;
use crate::client::{RequestSpec, YoutubeClient, endpoint};

/// The most ids one `videos.list` request takes.
pub const VIDEOS_LIST_MAX_IDS: usize = 50;

/// How a Data API request authenticates: an API key (read-only calls) or an OAuth access token.
#[derive(Clone, PartialEq, Eq)]
pub enum ApiAuth {
    Key(String),
    Bearer(String),
}

impl fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(_) => f.write_str("ApiAuth::Key(<redacted>)"),
            Self::Bearer(_) => f.write_str("ApiAuth::Bearer(<redacted>)"),
        }
    }
}

/// A video as `videos.list?part=snippet,statistics` describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiVideo {
    pub id: VideoId,
    pub channel_id: Option<ChannelId>,
    pub title: String,
    pub description: String,
    pub published_at: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
    pub category_id: Option<String>,
    pub live_broadcast_content: Option<String>,
    /// Thumbnail URLs by size name (`default`, `medium`, `high`, `standard`, `maxres`).
    pub thumbnails: BTreeMap<String, String>,
    pub views: Option<u64>,
    pub likes: Option<u64>,
    pub comments: Option<u64>,
}

/// A channel as `channels.list?part=snippet,contentDetails,statistics` describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiChannel {
    pub id: ChannelId,
    pub title: String,
    pub custom_url: Option<String>,
    /// The uploads playlist (`UU…`).
    pub uploads_playlist: Option<String>,
    pub subscribers: Option<u64>,
    pub views: Option<u64>,
    pub videos: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListResponse {
    items: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawVideo {
    id: String,
    snippet: RawVideoSnippet,
    statistics: RawStatistics,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawVideoSnippet {
    published_at: Option<String>,
    channel_id: Option<String>,
    title: String,
    description: String,
    tags: Vec<String>,
    category_id: Option<String>,
    live_broadcast_content: Option<String>,
    thumbnails: BTreeMap<String, RawThumb>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawThumb {
    url: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawStatistics {
    view_count: Option<String>,
    like_count: Option<String>,
    comment_count: Option<String>,
    subscriber_count: Option<String>,
    video_count: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawChannel {
    id: String,
    snippet: RawChannelSnippet,
    content_details: RawContentDetails,
    statistics: RawStatistics,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawChannelSnippet {
    title: String,
    custom_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawContentDetails {
    related_playlists: BTreeMap<String, String>,
}

pub(crate) fn json_error(what: &str, e: &serde_json::Error) -> YoutubeError {
    if e.is_eof() {
        YoutubeError::truncated(format!("{what}: {e}"))
    } else {
        YoutubeError::malformed(format!("{what}: {e}"))
    }
}

fn count(s: Option<&str>) -> Option<u64> {
    s.and_then(|s| s.parse().ok())
}

/// Parses a `videos.list` body.
pub fn parse_videos_list(body: &[u8]) -> Result<Vec<ApiVideo>, YoutubeError> {
    let list: ListResponse = serde_json::from_slice(body).map_err(|e| json_error("videos.list", &e))?;
    list.items
        .into_iter()
        .map(|item| {
            let raw: RawVideo = serde_json::from_value(item).map_err(|e| json_error("videos.list item", &e))?;
            let id = VideoId::parse(&raw.id).map_err(|e| YoutubeError::malformed(e.to_string()))?;
            let s = raw.snippet;
            Ok(ApiVideo {
                id,
                channel_id: s.channel_id.as_deref().and_then(|c| ChannelId::parse(c).ok()),
                title: s.title,
                description: s.description,
                published_at: s
                    .published_at
                    .as_deref()
                    .and_then(|p| DateTime::parse_from_rfc3339(p).ok())
                    .map(|t| t.with_timezone(&Utc)),
                tags: s.tags,
                category_id: s.category_id,
                live_broadcast_content: s.live_broadcast_content,
                thumbnails: s.thumbnails.into_iter().map(|(k, v)| (k, v.url)).collect(),
                views: count(raw.statistics.view_count.as_deref()),
                likes: count(raw.statistics.like_count.as_deref()),
                comments: count(raw.statistics.comment_count.as_deref()),
            })
        })
        .collect()
}

/// Parses a `channels.list` body.
pub fn parse_channels_list(body: &[u8]) -> Result<Vec<ApiChannel>, YoutubeError> {
    let list: ListResponse = serde_json::from_slice(body).map_err(|e| json_error("channels.list", &e))?;
    list.items
        .into_iter()
        .map(|item| {
            let raw: RawChannel = serde_json::from_value(item).map_err(|e| json_error("channels.list item", &e))?;
            Ok(ApiChannel {
                id: ChannelId::parse(&raw.id).map_err(|e| YoutubeError::malformed(e.to_string()))?,
                title: raw.snippet.title,
                custom_url: raw.snippet.custom_url,
                uploads_playlist: raw.content_details.related_playlists.get("uploads").cloned(),
                subscribers: count(raw.statistics.subscriber_count.as_deref()),
                views: count(raw.statistics.view_count.as_deref()),
                videos: count(raw.statistics.video_count.as_deref()),
            })
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GoogleErrorBody {
    error: GoogleError,
}

/// Google's error body. The Data API lists `errors[].reason` (`quotaExceeded`, …); the newer
/// APIs (the Reporting API among them) give `status` and `details[].reason`
/// (`ACCESS_TOKEN_SCOPE_INSUFFICIENT`, `RATE_LIMIT_EXCEEDED`, …) instead.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GoogleError {
    code: u16,
    message: String,
    errors: Vec<GoogleErrorItem>,
    details: Vec<GoogleErrorItem>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GoogleErrorItem {
    reason: String,
    metadata: serde_json::Map<String, serde_json::Value>,
}

impl GoogleErrorItem {
    /// A `RATE_LIMIT_EXCEEDED` detail whose limit is per day: a spent daily quota, not a burst.
    fn is_daily_limit(&self) -> bool {
        self.metadata.get("quota_limit").and_then(serde_json::Value::as_str).is_some_and(|l| l.contains("PerDay"))
    }
}

/// Maps a Google API error response (status + `{"error":{…}}` body) to a typed error.
/// Insufficient scopes come out as `Forbidden` with the reason `insufficientPermissions`
/// (see [`YoutubeError::is_insufficient_scope`]), whichever of the two body shapes said so.
pub fn parse_google_error(status: u16, body: &[u8]) -> YoutubeError {
    let parsed: GoogleErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message = if parsed.error.message.is_empty() {
        String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
    } else {
        parsed.error.message.clone()
    };
    let items: Vec<&GoogleErrorItem> = parsed.error.errors.iter().chain(&parsed.error.details).collect();
    let has = |r: &str| items.iter().any(|i| i.reason == r);
    let daily_limit = items.iter().any(|i| i.reason == "RATE_LIMIT_EXCEEDED" && i.is_daily_limit());
    if has("quotaExceeded") || has("dailyLimitExceeded") || daily_limit {
        YoutubeError::QuotaExceeded(message)
    } else if has("rateLimitExceeded") || has("userRateLimitExceeded") || has("RATE_LIMIT_EXCEEDED") || status == 429 {
        YoutubeError::RateLimited { detail: message, retry_after: None }
    } else if has("invalidImage") || has("mediaBodyRequired") || has("uploadLimitExceeded") {
        YoutubeError::InvalidImage(message)
    } else if status == 401 || has("authError") || has("unauthorized") {
        YoutubeError::Unauthorized(message)
    } else if status == 404 || has("videoNotFound") || has("channelNotFound") || has("notFound") {
        YoutubeError::not_found(message)
    } else if status == 403 {
        let reason = if has("ACCESS_TOKEN_SCOPE_INSUFFICIENT") {
            INSUFFICIENT_PERMISSIONS
        } else {
            items.first().map(|i| i.reason.as_str()).filter(|r| !r.is_empty()).unwrap_or("forbidden")
        };
        YoutubeError::Forbidden { reason: reason.to_owned(), message }
    } else {
        YoutubeError::Http { status: Some(status), message }
    }
}

/// The Data API's reason for a token without the scope the call needs.
pub(crate) const INSUFFICIENT_PERMISSIONS: &str = "insufficientPermissions";

pub(crate) fn ok_or_google_error(raw: &crate::RawResponse) -> Result<(), YoutubeError> {
    if (200..300).contains(&raw.status) { Ok(()) } else { Err(parse_google_error(raw.status, &raw.body)) }
}

impl YoutubeClient {
    /// The configured API key as [`ApiAuth`], if there is one.
    pub fn api_key_auth(&self) -> Option<ApiAuth> {
        self.config.api_key.clone().map(ApiAuth::Key)
    }

    fn api_request(&self, method: reqwest::Method, path: &str, auth: &ApiAuth) -> Result<RequestSpec, YoutubeError> {
        let mut url = endpoint(&self.config.api_base, path);
        match auth {
            ApiAuth::Key(key) => {
                url.query_pairs_mut().append_pair("key", key);
                Ok(RequestSpec::new(method, url))
            }
            ApiAuth::Bearer(token) => {
                RequestSpec::new(method, url).header(header::AUTHORIZATION, &format!("Bearer {token}"))
            }
        }
    }

    /// `videos.list` with `part=snippet,statistics`, in requests of at most 50 ids. Videos that
    /// are deleted or private are simply absent from the result.
    pub async fn videos_list(&self, auth: &ApiAuth, ids: &[VideoId]) -> Result<Vec<ApiVideo>, YoutubeError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(VIDEOS_LIST_MAX_IDS) {
            let joined = chunk.iter().map(VideoId::as_str).collect::<Vec<_>>().join(",");
            let mut spec = self.api_request(reqwest::Method::GET, "/youtube/v3/videos", auth)?;
            spec.url.query_pairs_mut().append_pair("part", "snippet,statistics").append_pair("id", &joined);
            let videos = self
                .execute(spec, |raw| {
                    ok_or_google_error(&raw)?;
                    parse_videos_list(&raw.body)
                })
                .await?;
            out.extend(videos);
        }
        Ok(out)
    }

    /// `channels.list` by id.
    pub async fn channel_by_id(&self, auth: &ApiAuth, id: &ChannelId) -> Result<ApiChannel, YoutubeError> {
        self.channels_list(auth, ("id", id.as_str()), &id.to_string()).await
    }

    /// `channels.list` by handle (`forHandle=@…`).
    pub async fn channel_by_handle(&self, auth: &ApiAuth, handle: &Handle) -> Result<ApiChannel, YoutubeError> {
        self.channels_list(auth, ("forHandle", handle.as_str()), &handle.to_string()).await
    }

    async fn channels_list(&self, auth: &ApiAuth, key: (&str, &str), what: &str) -> Result<ApiChannel, YoutubeError> {
        let mut spec = self.api_request(reqwest::Method::GET, "/youtube/v3/channels", auth)?;
        spec.url.query_pairs_mut().append_pair("part", "snippet,contentDetails,statistics").append_pair(key.0, key.1);
        self.execute(spec, |raw| {
            ok_or_google_error(&raw)?;
            parse_channels_list(&raw.body)?
                .into_iter()
                .next()
                .ok_or_else(|| YoutubeError::not_found(format!("channel {what}")))
        })
        .await
    }

    /// `thumbnails.set`: uploads `image` (JPEG or PNG) as the video's custom thumbnail. The image
    /// is checked locally first so that a bad file costs no quota.
    pub async fn set_thumbnail(&self, access_token: &str, video: &VideoId, image: &[u8]) -> Result<(), YoutubeError> {
        if image.len() > self.config.max_upload_bytes {
            return Err(YoutubeError::InvalidImage(format!(
                "{} bytes is over the {} byte limit",
                image.len(),
                self.config.max_upload_bytes
            )));
        }
        let content_type = match image::guess_format(image) {
            Ok(image::ImageFormat::Jpeg) => "image/jpeg",
            Ok(image::ImageFormat::Png) => "image/png",
            _ => return Err(YoutubeError::InvalidImage("thumbnails must be JPEG or PNG".into())),
        };
        crate::thumbnail::hash_image_bytes(image)?;
        let mut spec = self
            .api_request(
                reqwest::Method::POST,
                "/upload/youtube/v3/thumbnails/set",
                &ApiAuth::Bearer(access_token.into()),
            )?
            .header(header::CONTENT_TYPE, content_type)?;
        spec.url.query_pairs_mut().append_pair("videoId", video.as_str()).append_pair("uploadType", "media");
        spec.body = Some(image.to_vec());
        self.execute(spec, |raw| ok_or_google_error(&raw)).await
    }

    /// Reads the video's snippet (with the access token, so private fields come back too).
    pub async fn video_snippet(
        &self,
        access_token: &str,
        video: &VideoId,
    ) -> Result<serde_json::Map<String, serde_json::Value>, YoutubeError> {
        let mut spec =
            self.api_request(reqwest::Method::GET, "/youtube/v3/videos", &ApiAuth::Bearer(access_token.into()))?;
        spec.url.query_pairs_mut().append_pair("part", "snippet").append_pair("id", video.as_str());
        self.execute(spec, |raw| {
            ok_or_google_error(&raw)?;
            let list: ListResponse = serde_json::from_slice(&raw.body).map_err(|e| json_error("videos.list", &e))?;
            let item =
                list.items.into_iter().next().ok_or_else(|| YoutubeError::not_found(format!("video {video}")))?;
            match item.get("snippet") {
                Some(serde_json::Value::Object(map)) => Ok(map.clone()),
                _ => Err(YoutubeError::malformed("videos.list item without a snippet")),
            }
        })
        .await
    }

    /// `videos.update` of the snippet, read-modify-write: `videos.update` overwrites every
    /// mutable snippet field, so the current snippet is read and sent back whole with only the
    /// changes `modify` makes; description, tags and category survive. Returns the new snippet.
    pub async fn update_video_snippet(
        &self,
        access_token: &str,
        video: &VideoId,
        modify: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> Result<serde_json::Map<String, serde_json::Value>, YoutubeError> {
        let mut snippet = self.video_snippet(access_token, video).await?;
        modify(&mut snippet);
        if snippet.get("categoryId").and_then(serde_json::Value::as_str).is_none_or(str::is_empty) {
            return Err(YoutubeError::malformed("snippet has no categoryId, which videos.update requires"));
        }
        let body = serde_json::json!({"id": video.as_str(), "snippet": snippet});
        let mut spec = self
            .api_request(reqwest::Method::PUT, "/youtube/v3/videos", &ApiAuth::Bearer(access_token.into()))?
            .json_body(&body);
        spec.url.query_pairs_mut().append_pair("part", "snippet");
        self.execute(spec, |raw| {
            ok_or_google_error(&raw)?;
            let value: serde_json::Value =
                serde_json::from_slice(&raw.body).map_err(|e| json_error("videos.update", &e))?;
            match value.get("snippet") {
                Some(serde_json::Value::Object(map)) => Ok(map.clone()),
                _ => Err(YoutubeError::malformed("videos.update response without a snippet")),
            }
        })
        .await
    }

    /// Sets a new title, keeping the rest of the snippet.
    pub async fn update_video_title(
        &self,
        access_token: &str,
        video: &VideoId,
        title: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, YoutubeError> {
        let title = title.to_owned();
        self.update_video_snippet(access_token, video, move |s| {
            s.insert("title".into(), serde_json::Value::String(title));
        })
        .await
    }
}
