//! What YouTube Data API v3 answers, as plain functions over bytes: the `videos.list` and
//! `channels.list` resources and a video's snippet (read, and written back by `videos.update`).
//! The requests that ask for them are the client's (`data_api_calls`); Google's error bodies are
//! read by `google_error`.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_core::{ChannelId, VideoId};

use crate::YoutubeError;

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

/// The most `playlistItems.list` returns in one page.
pub const PLAYLIST_ITEMS_MAX: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPlaylistItem {
    content_details: RawPlaylistItemDetails,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPlaylistItemDetails {
    video_id: String,
}

/// Parses a `playlistItems.list?part=contentDetails` body: the videos' ids in the playlist's
/// order. An item without a valid video id makes the whole body malformed.
pub fn parse_playlist_items(body: &[u8]) -> Result<Vec<VideoId>, YoutubeError> {
    let list: ListResponse = serde_json::from_slice(body).map_err(|e| json_error("playlistItems.list", &e))?;
    list.items
        .into_iter()
        .map(|item| {
            let raw: RawPlaylistItem =
                serde_json::from_value(item).map_err(|e| json_error("playlistItems.list item", &e))?;
            VideoId::parse(&raw.content_details.video_id).map_err(|e| YoutubeError::malformed(e.to_string()))
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

/// A video's snippet, as `videos.list?part=snippet` gives it and `videos.update` takes it back.
pub(crate) type Snippet = serde_json::Map<String, serde_json::Value>;

fn snippet_of(value: &serde_json::Value, what: &str) -> Result<Snippet, YoutubeError> {
    match value.get("snippet") {
        Some(serde_json::Value::Object(map)) => Ok(map.clone()),
        _ => Err(YoutubeError::malformed(format!("{what} without a snippet"))),
    }
}

/// The snippet of `video` in a `videos.list?part=snippet` body.
pub(crate) fn parse_video_snippet(body: &[u8], video: &VideoId) -> Result<Snippet, YoutubeError> {
    let list: ListResponse = serde_json::from_slice(body).map_err(|e| json_error("videos.list", &e))?;
    let item = list.items.into_iter().next().ok_or_else(|| YoutubeError::not_found(format!("video {video}")))?;
    snippet_of(&item, "videos.list item")
}

/// The snippet a `videos.update` body gives back.
pub(crate) fn parse_updated_snippet(body: &[u8]) -> Result<Snippet, YoutubeError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| json_error("videos.update", &e))?;
    snippet_of(&value, "videos.update response")
}
