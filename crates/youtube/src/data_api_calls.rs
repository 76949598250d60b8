//! The client's Data API v3 requests: `videos.list` (one at a time or batched), `channels.list`,
//! `thumbnails.set` and `videos.update` (read-modify-write of the snippet). Google's errors come
//! out typed (`quotaExceeded`, `forbidden`, `invalidImage`, 401), through `google_error`.

use reqwest::header;
use tubewatch_core::{ChannelId, Handle, VideoId};

use crate::YoutubeError;
use crate::batch;
use crate::client::{RequestSpec, YoutubeClient, endpoint};
use crate::data_api::{
    ApiAuth, ApiChannel, ApiVideo, PLAYLIST_ITEMS_MAX, Snippet, VIDEOS_LIST_MAX_IDS, parse_channels_list,
    parse_playlist_items, parse_updated_snippet, parse_video_snippet, parse_videos_list,
};
use crate::google_error::ok_or_google_error;

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
                    ok_or_google_error(raw.status, &raw.body)?;
                    parse_videos_list(&raw.body)
                })
                .await?;
            out.extend(videos);
        }
        Ok(out)
    }

    /// One video's snippet and statistics through `videos.list` with the configured API key,
    /// batched with concurrent calls (up to 50 ids per request, gathered for at most the
    /// configured `batch_window`). `Ok(None)`: the API does not return the video, which is how it
    /// answers for deleted, private and unknown videos. Without an API key: `Unauthorized`.
    ///
    /// The batching task runs on a clone of this client without the batcher, so the two never
    /// keep each other alive: it ends when the last clone of this client is dropped.
    pub async fn video_batched(&self, id: &VideoId) -> Result<Option<ApiVideo>, YoutubeError> {
        let Some(auth) = self.api_key_auth() else {
            return Err(YoutubeError::Unauthorized("no Data API key configured".into()));
        };
        batch::ask(&self.batcher, id, || {
            let worker = self.without_batcher();
            let window = worker.config.batch_window;
            let fetch = move |ids: Vec<VideoId>| {
                let (worker, auth) = (worker.clone(), auth.clone());
                async move { worker.videos_list(&auth, &ids).await }
            };
            (window, fetch)
        })
        .await
    }

    /// The `max` (at most 50) newest uploads of one of the channel's two streams, long videos
    /// (`UULF…`) or Shorts (`UUSH…`), through `playlistItems.list` (1 quota unit), newest first.
    /// A channel with no video of the kind has no such playlist: `NotFound`.
    pub async fn stream_uploads(
        &self,
        auth: &ApiAuth,
        channel: &ChannelId,
        shorts: bool,
        max: usize,
    ) -> Result<Vec<VideoId>, YoutubeError> {
        let playlist = format!("{}{}", if shorts { "UUSH" } else { "UULF" }, &channel.as_str()[2..]);
        let mut spec = self.api_request(reqwest::Method::GET, "/youtube/v3/playlistItems", auth)?;
        spec.url
            .query_pairs_mut()
            .append_pair("part", "contentDetails")
            .append_pair("playlistId", &playlist)
            .append_pair("maxResults", &max.min(PLAYLIST_ITEMS_MAX).to_string());
        self.execute(spec, |raw| {
            ok_or_google_error(raw.status, &raw.body)?;
            parse_playlist_items(&raw.body)
        })
        .await
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
            ok_or_google_error(raw.status, &raw.body)?;
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
        self.execute(spec, |raw| ok_or_google_error(raw.status, &raw.body)).await
    }

    /// Reads the video's snippet (with the access token, so private fields come back too).
    pub async fn video_snippet(&self, access_token: &str, video: &VideoId) -> Result<Snippet, YoutubeError> {
        let mut spec =
            self.api_request(reqwest::Method::GET, "/youtube/v3/videos", &ApiAuth::Bearer(access_token.into()))?;
        spec.url.query_pairs_mut().append_pair("part", "snippet").append_pair("id", video.as_str());
        self.execute(spec, |raw| {
            ok_or_google_error(raw.status, &raw.body)?;
            parse_video_snippet(&raw.body, video)
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
        modify: impl FnOnce(&mut Snippet),
    ) -> Result<Snippet, YoutubeError> {
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
            ok_or_google_error(raw.status, &raw.body)?;
            parse_updated_snippet(&raw.body)
        })
        .await
    }

    /// Sets a new title, keeping the rest of the snippet.
    pub async fn update_video_title(
        &self,
        access_token: &str,
        video: &VideoId,
        title: &str,
    ) -> Result<Snippet, YoutubeError> {
        let title = title.to_owned();
        self.update_video_snippet(access_token, video, move |s| {
            s.insert("title".into(), serde_json::Value::String(title));
        })
        .await
    }
}
