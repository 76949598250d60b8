//! The HTTP side of the client: configuration (every base URL, timeouts, limits, retry policy),
//! per-host concurrency and pacing, retries with exponential backoff and jitter for transient
//! failures only, and the public scraping methods (feed, watch page, player, thumbnail,
//! channel resolution). URLs are always built from the configured bases and validated ids: no
//! input chooses the host.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;
use tubewatch_core::{ChannelId, ChannelRef, VideoId};
use url::Url;

use crate::feed::{Feed, parse_feed};
use crate::player::{VideoInfo, parse_player_response, parse_watch_page};
use crate::resolve::{parse_resolve_response, resolve_request_body};
use crate::sniff;
use crate::thumbnail::{ThumbnailHashes, ThumbnailSize, classify_thumbnail_response};
use crate::{ErrorKind, YoutubeError};

/// NewPipe's consent cookie value: "reject all", accepted without a consent page.
pub const CONSENT_COOKIE: &str = "SOCS=CAE=";

/// How failed requests are repeated.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts including the first; 1 disables retries.
    pub max_attempts: u32,
    /// Delay before the first retry, doubled for every further one.
    pub base_delay: Duration,
    /// Cap on any single delay (also caps a server's `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 4, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry): `base × 2^(retry-1)`, capped,
    /// then scaled by a random factor in [0.5, 1.0) ("equal jitter") so that many workers that
    /// failed together do not retry in lockstep.
    pub fn delay_for(&self, retry: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1).min(30)));
        let capped = exp.min(self.max_delay);
        capped.mul_f64(rand::random_range(0.5..1.0))
    }
}

/// Everything the client needs to know. `Default` points at the real YouTube and Google hosts;
/// [`YoutubeConfig::with_single_base`] points every surface at one host (the simulator).
#[derive(Clone)]
pub struct YoutubeConfig {
    /// `www.youtube.com`: feeds, watch pages, InnerTube.
    pub web_base: Url,
    /// `i.ytimg.com`: thumbnails.
    pub image_base: Url,
    /// `www.googleapis.com`: Data API v3 and its upload endpoint.
    pub api_base: Url,
    /// `accounts.google.com`: OAuth consent screen.
    pub accounts_base: Url,
    /// `oauth2.googleapis.com`: OAuth token and revoke endpoints.
    pub oauth_base: Url,
    /// `youtubereporting.googleapis.com`: Reporting API (bulk reports) and its report downloads.
    pub reporting_base: Url,
    pub user_agent: String,
    /// Whole-request timeout (connect + send + read body).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Requests in flight at once to one host.
    pub max_concurrent_per_host: usize,
    /// Minimum spacing between request starts to one host (a simple rate limit); `None` for none.
    pub min_interval_per_host: Option<Duration>,
    pub retry: RetryPolicy,
    /// Data API key for read-only calls (`videos.list`, `channels.list`).
    pub api_key: Option<String>,
    /// The WEB client version InnerTube requests claim to be.
    pub innertube_client_version: String,
    /// Bodies larger than this are refused (watch pages are about 1 MB).
    pub max_body_bytes: usize,
    /// Largest thumbnail accepted for `thumbnails.set` (YouTube documents 2 MB; keep configurable).
    pub max_upload_bytes: usize,
    /// How long [`YoutubeClient::video_batched`] gathers ids before sending a `videos.list`.
    pub batch_window: Duration,
    /// Ask for compressed bodies (`Accept-Encoding: gzip`), as browsers do; YouTube then sends
    /// pages and feeds gzipped. Off only to measure the difference.
    pub gzip: bool,
    /// Where a check reads views and title from (without a Data API key).
    pub views_from: ViewsEndpoint,
}

/// The endpoint a check reads a video's views and title from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewsEndpoint {
    /// InnerTube `/youtubei/v1/player` with a `$fields` mask: under a kilobyte instead of the
    /// watch page's megabyte, the same `videoDetails`/`microformat` fields. The watch page stands
    /// in when this answers with something unusable (a bot check, a refused mask).
    #[default]
    Player,
    /// The watch page's embedded `ytInitialPlayerResponse`.
    WatchPage,
}

impl ViewsEndpoint {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "player" => Some(Self::Player),
            "watch" | "watch_page" => Some(Self::WatchPage),
            _ => None,
        }
    }
}

/// The fields a check needs from the player response (Google's partial-response mask, dotted
/// paths as in the recorded `player_web_fields_mock.json`): the playability verdict with its error
/// screen (bot checks are recognised there), the video id (another video's response is refused),
/// title and views with the microformat's as fallback, and the channel.
pub const PLAYER_CHECK_FIELDS: &str = "playabilityStatus.status,playabilityStatus.reason,playabilityStatus.errorScreen,\
videoDetails.videoId,videoDetails.title,videoDetails.viewCount,videoDetails.channelId,videoDetails.author,\
videoDetails.isLiveContent,microformat.playerMicroformatRenderer.externalVideoId,\
microformat.playerMicroformatRenderer.title,microformat.playerMicroformatRenderer.viewCount";

impl fmt::Debug for YoutubeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YoutubeConfig")
            .field("web_base", &self.web_base.as_str())
            .field("image_base", &self.image_base.as_str())
            .field("api_base", &self.api_base.as_str())
            .field("accounts_base", &self.accounts_base.as_str())
            .field("oauth_base", &self.oauth_base.as_str())
            .field("reporting_base", &self.reporting_base.as_str())
            .field("user_agent", &self.user_agent)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_concurrent_per_host", &self.max_concurrent_per_host)
            .field("min_interval_per_host", &self.min_interval_per_host)
            .field("retry", &self.retry)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("innertube_client_version", &self.innertube_client_version)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("batch_window", &self.batch_window)
            .field("gzip", &self.gzip)
            .field("views_from", &self.views_from)
            .finish()
    }
}

fn fixed_url(s: &str) -> Url {
    // Only called with the literal default hosts below, which always parse (tested).
    Url::parse(s).expect("default base URLs are valid literals")
}

impl Default for YoutubeConfig {
    fn default() -> Self {
        Self {
            web_base: fixed_url("https://www.youtube.com"),
            image_base: fixed_url("https://i.ytimg.com"),
            api_base: fixed_url("https://www.googleapis.com"),
            accounts_base: fixed_url("https://accounts.google.com"),
            oauth_base: fixed_url("https://oauth2.googleapis.com"),
            reporting_base: fixed_url("https://youtubereporting.googleapis.com"),
            user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0".into(),
            request_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(10),
            max_concurrent_per_host: 16,
            min_interval_per_host: None,
            retry: RetryPolicy::default(),
            api_key: None,
            innertube_client_version: "2.20260603.05.00".into(),
            batch_window: Duration::from_millis(20),
            max_body_bytes: 8 * 1024 * 1024,
            max_upload_bytes: 2 * 1024 * 1024,
            gzip: true,
            views_from: ViewsEndpoint::Player,
        }
    }
}

impl YoutubeConfig {
    /// Points every surface (web, images, Data API, OAuth, Reporting API) at one base URL. This is how the
    /// service is pointed at the simulator, which serves all paths on one host.
    pub fn with_single_base(mut self, base: Url) -> Self {
        self.web_base = base.clone();
        self.image_base = base.clone();
        self.api_base = base.clone();
        self.accounts_base = base.clone();
        self.oauth_base = base.clone();
        self.reporting_base = base;
        self
    }

    /// The default configuration pointed at one base URL given as text.
    pub fn single_base(base: &str) -> Result<Self, url::ParseError> {
        Ok(Self::default().with_single_base(Url::parse(base)?))
    }
}

/// `base` + `path`, keeping any path prefix the base has (e.g. `http://host/sim`).
pub(crate) fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// A response as the classifiers see it: already fully read.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// One request, rebuildable for every attempt.
#[derive(Debug, Clone)]
pub(crate) struct RequestSpec {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
    /// Extra attempts granted to a 404 (valid feeds return 404 now and then).
    pub not_found_retries: u32,
    /// A watch page: stop reading once its player response is complete (the rest is not used).
    pub stop_after_player: bool,
}

impl RequestSpec {
    pub(crate) fn new(method: reqwest::Method, url: Url) -> Self {
        Self { method, url, headers: HeaderMap::new(), body: None, not_found_retries: 0, stop_after_player: false }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Result<Self, YoutubeError> {
        let value = HeaderValue::from_str(value)
            .map_err(|_| YoutubeError::Http { status: None, message: format!("invalid {name} header value") })?;
        self.headers.insert(name, value);
        Ok(self)
    }

    pub(crate) fn json_body(mut self, value: &serde_json::Value) -> Self {
        self.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body = Some(value.to_string().into_bytes());
        self
    }
}

/// Per-host gate: a concurrency limit and an optional minimum spacing between request starts.
#[derive(Debug)]
struct HostGate {
    permits: Semaphore,
    next_start: Mutex<Instant>,
    min_interval: Option<Duration>,
}

/// A fetched thumbnail with its hashes.
#[derive(Debug, Clone, Serialize)]
pub struct Thumbnail {
    pub video_id: VideoId,
    pub size: ThumbnailSize,
    #[serde(skip)]
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    #[serde(flatten)]
    pub hashes: ThumbnailHashes,
}

/// What [`YoutubeClient::thumbnail_unless_unchanged`] found.
#[derive(Debug, Clone)]
pub enum ThumbnailCheck {
    /// The same bytes as the known hash.
    Unchanged,
    /// Different (or first) bytes, decoded and hashed.
    Fetched(Thumbnail),
}

/// The YouTube client. Cheap to clone (shared connection pool and host gates).
#[derive(Clone)]
pub struct YoutubeClient {
    pub(crate) http: reqwest::Client,
    pub(crate) config: Arc<YoutubeConfig>,
    prepared: Arc<Prepared>,
    gates: Arc<std::sync::Mutex<HashMap<String, Arc<HostGate>>>>,
    pub(crate) batcher: crate::batch::BatcherSlot,
}

/// What every check's requests share, built once per client: a check then neither parses its
/// URLs again nor builds its JSON body and headers piece by piece.
#[derive(Debug)]
struct Prepared {
    /// The player endpoint with [`PLAYER_CHECK_FIELDS`] (the video goes in the body, so this is
    /// every check's URL), and without a mask.
    player_check_url: Url,
    player_url: Url,
    /// The player request's JSON body before and after the video id.
    player_body: (String, String),
    /// InnerTube's request headers (consent cookie, language, client name and version, origin,
    /// JSON content type).
    innertube_headers: HeaderMap,
    /// `image_base` up to its path, without a trailing slash: a thumbnail's URL is this and
    /// `/vi/ID/NAME.jpg`.
    image_prefix: String,
}

impl Prepared {
    fn new(config: &YoutubeConfig) -> Result<Self, YoutubeError> {
        let mut player_url = endpoint(&config.web_base, "/youtubei/v1/player");
        player_url.query_pairs_mut().append_pair("prettyPrint", "false");
        let mut player_check_url = player_url.clone();
        // Written as the recorded request writes it (`$` and `,` unescaped).
        let query = format!("{}&$fields={PLAYER_CHECK_FIELDS}", player_url.query().unwrap_or_default());
        player_check_url.set_query(Some(&query));
        let body = player_request_template(&config.innertube_client_version).to_string();
        const ID_AT: &str = "\"videoId\":\"";
        let split = body.find(ID_AT).map(|at| at + ID_AT.len()).ok_or_else(|| YoutubeError::Http {
            status: None,
            message: "the player request body has no video id".into(),
        })?;
        let player_body = (body[..split].to_owned(), body[split..].to_owned());
        let spec = web_request_spec(reqwest::Method::POST, player_url.clone())
            .header(HeaderName::from_static("x-youtube-client-name"), "1")?
            .header(HeaderName::from_static("x-youtube-client-version"), &config.innertube_client_version)?
            .header(header::ORIGIN, &config.web_base.origin().ascii_serialization())?
            .json_body(&serde_json::Value::Null);
        let mut image_base = config.image_base.clone();
        image_base.set_query(None);
        image_base.set_fragment(None);
        let image_prefix = image_base.as_str().trim_end_matches('/').to_owned();
        Ok(Self { player_check_url, player_url, player_body, innertube_headers: spec.headers, image_prefix })
    }
}

/// The player request's body with an empty video id: cut around the id once, so that each check
/// only splices its [`VideoId`] in (`player_with_fields`).
fn player_request_template(client_version: &str) -> serde_json::Value {
    serde_json::json!({
        "context": {"client": {
            "clientName": "WEB", "clientVersion": client_version, "hl": "en", "gl": "US"
        }},
        "videoId": "",
        "contentCheckOk": true,
        "racyCheckOk": true,
    })
}

/// A request to www.youtube.com with the consent cookie and the language a browser sends.
fn web_request_spec(method: reqwest::Method, url: Url) -> RequestSpec {
    let mut spec = RequestSpec::new(method, url);
    spec.headers.insert(header::COOKIE, HeaderValue::from_static(CONSENT_COOKIE));
    spec.headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en-US,en;q=0.9"));
    spec
}

impl fmt::Debug for YoutubeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YoutubeClient").field("config", &self.config).finish_non_exhaustive()
    }
}

fn host_key(url: &Url) -> String {
    format!("{}://{}:{}", url.scheme(), url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0))
}

fn is_consent_host(url: &Url) -> bool {
    url.host_str().is_some_and(|h| h.starts_with("consent."))
}

impl YoutubeClient {
    pub fn new(config: YoutubeConfig) -> Result<Self, YoutubeError> {
        // Redirects: never follow one to the consent host (that is a classification, and with the
        // simulator it would leave the configured hosts); follow others only on the same host.
        let redirect = reqwest::redirect::Policy::custom(|attempt| {
            let same_host = attempt.previous().last().is_some_and(|prev| host_key(prev) == host_key(attempt.url()));
            if is_consent_host(attempt.url()) || !same_host {
                attempt.stop()
            } else if attempt.previous().len() > 5 {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .gzip(config.gzip)
            .redirect(redirect)
            .build()
            .map_err(|e| YoutubeError::Http { status: None, message: format!("cannot build the HTTP client: {e}") })?;
        let prepared = Arc::new(Prepared::new(&config)?);
        Ok(Self { http, config: Arc::new(config), prepared, gates: Arc::default(), batcher: Arc::default() })
    }

    pub fn config(&self) -> &YoutubeConfig {
        &self.config
    }

    /// A clone sharing everything but the `videos.list` batcher (for the batching task itself).
    pub(crate) fn without_batcher(&self) -> Self {
        Self {
            http: self.http.clone(),
            config: self.config.clone(),
            prepared: self.prepared.clone(),
            gates: self.gates.clone(),
            batcher: Arc::default(),
        }
    }

    fn gate(&self, url: &Url) -> Arc<HostGate> {
        let key = host_key(url);
        let mut gates = self.gates.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        gates
            .entry(key)
            .or_insert_with(|| {
                Arc::new(HostGate {
                    permits: Semaphore::new(self.config.max_concurrent_per_host.max(1)),
                    next_start: Mutex::new(Instant::now()),
                    min_interval: self.config.min_interval_per_host,
                })
            })
            .clone()
    }

    /// Sends one attempt: waits for the host's gate, then reads the whole body (bounded).
    async fn send_once(&self, spec: &RequestSpec) -> Result<RawResponse, YoutubeError> {
        let gate = self.gate(&spec.url);
        let _permit = gate
            .permits
            .acquire()
            .await
            .map_err(|_| YoutubeError::Http { status: None, message: "client shut down".into() })?;
        if let Some(interval) = gate.min_interval {
            let start = {
                let mut next = gate.next_start.lock().await;
                let start = (*next).max(Instant::now());
                *next = start + interval;
                start
            };
            tokio::time::sleep_until(start).await;
        }
        let mut request = self.http.request(spec.method.clone(), spec.url.clone()).headers(spec.headers.clone());
        if let Some(body) = &spec.body {
            request = request.body(body.clone());
        }
        let mut response = request.send().await.map_err(|e| map_transport_error(&e, &spec.url))?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let text_header = |name: HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_type = text_header(header::CONTENT_TYPE);
        let location = text_header(header::LOCATION);
        let retry_after =
            text_header(header::RETRY_AFTER).and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        // A body of known length (a thumbnail's) is received into a buffer of its size: growing
        // one by doubling copies it up to twice and leaves up to half of it unused.
        let known_length = response.content_length().filter(|_| !spec.stop_after_player);
        let mut body =
            Vec::with_capacity(known_length.map_or(0, |n| n.min(self.config.max_body_bytes as u64) as usize));
        let mut scan = (spec.stop_after_player && status == 200).then(crate::player::PlayerResponseScan::default);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.config.max_body_bytes {
                        return Err(YoutubeError::malformed(format!(
                            "response body larger than {} bytes",
                            self.config.max_body_bytes
                        )));
                    }
                    body.extend_from_slice(&chunk);
                    // What follows the player response is never read: dropping the response
                    // here saves receiving and decompressing most of the page.
                    if scan.as_mut().is_some_and(|scan| scan.complete(&body)) {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(YoutubeError::Timeout(format!("reading {}", spec.url.path()))),
                // A body that stops early (connection cut, length mismatch) is transient.
                Err(e) => return Err(YoutubeError::truncated(format!("body of {} cut off: {e}", spec.url.path()))),
            }
        }
        Ok(RawResponse { status, content_type, location, retry_after, body })
    }

    /// Runs a request with the retry policy; `interpret` turns a read response into a value or a
    /// classified error. Only errors that are [`YoutubeError::is_retryable`] are retried.
    pub(crate) async fn execute<T>(
        &self,
        spec: RequestSpec,
        interpret: impl Fn(RawResponse) -> Result<T, YoutubeError>,
    ) -> Result<T, YoutubeError> {
        let policy = &self.config.retry;
        let mut attempt = 1u32;
        let mut not_found_retries = spec.not_found_retries;
        loop {
            let result = match self.send_once(&spec).await {
                Ok(raw) => pre_classify(&raw).map_or_else(|| interpret(raw), Err),
                Err(e) => Err(e),
            };
            let err = match result {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let extra_not_found = err.kind() == ErrorKind::NotFound && not_found_retries > 0;
            if attempt >= policy.max_attempts.max(1) || !(err.is_retryable() || extra_not_found) {
                return Err(err);
            }
            if extra_not_found {
                not_found_retries -= 1;
            }
            let backoff = policy.delay_for(attempt);
            let delay = err.retry_after().map_or(backoff, |server| server.min(policy.max_delay).max(backoff));
            tracing::warn!(
                url = %spec.url.path(), attempt, kind = %err.kind(), delay_ms = delay.as_millis() as u64,
                "YouTube request failed ({err}); retrying {} in {delay:?}", spec.url.path()
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn web_request(&self, method: reqwest::Method, url: Url) -> Result<RequestSpec, YoutubeError> {
        Ok(web_request_spec(method, url))
    }

    fn innertube_request(&self, path: &str, body: &serde_json::Value) -> Result<RequestSpec, YoutubeError> {
        let mut url = endpoint(&self.config.web_base, path);
        url.query_pairs_mut().append_pair("prettyPrint", "false");
        let mut spec = RequestSpec::new(reqwest::Method::POST, url).json_body(body);
        spec.headers = self.prepared.innertube_headers.clone();
        Ok(spec)
    }

    /// A thumbnail's URL on `image_base`.
    fn thumbnail_url(&self, video: &VideoId, size: ThumbnailSize) -> Result<Url, YoutubeError> {
        let url = format!("{}/vi/{video}/{}.jpg", self.prepared.image_prefix, size.name());
        Url::parse(&url).map_err(|e| YoutubeError::Http { status: None, message: format!("thumbnail URL {url}: {e}") })
    }

    /// The channel's RSS feed (15 newest uploads, newest first).
    #[tracing::instrument(skip_all, fields(channel_id = %channel))]
    pub async fn channel_feed(&self, channel: &ChannelId) -> Result<Feed, YoutubeError> {
        self.feed(channel, "channel_id", channel.as_str().to_owned()).await
    }

    /// The feed of one of the channel's two upload streams: its 15 newest long videos (the
    /// `UULF…` playlist) or Shorts (`UUSH…`), newest first. A channel that posts many of one kind
    /// hides the other from its own feed; these show each kind's history.
    #[tracing::instrument(skip_all, fields(channel_id = %channel, shorts))]
    pub async fn stream_feed(&self, channel: &ChannelId, shorts: bool) -> Result<Feed, YoutubeError> {
        let prefix = if shorts { "UUSH" } else { "UULF" };
        let mut feed = self.feed(channel, "playlist_id", format!("{prefix}{}", &channel.as_str()[2..])).await?;
        // The playlist says the kind more surely than each entry's link.
        for entry in &mut feed.entries {
            entry.is_short = shorts;
        }
        Ok(feed)
    }

    async fn feed(&self, channel: &ChannelId, key: &str, value: String) -> Result<Feed, YoutubeError> {
        let mut url = endpoint(&self.config.web_base, "/feeds/videos.xml");
        url.query_pairs_mut().append_pair(key, &value);
        let mut spec = self.web_request(reqwest::Method::GET, url)?;
        // Valid feeds answer 404 now and then: one extra try before believing it.
        spec.not_found_retries = 1;
        self.execute(spec, |raw| {
            match raw.status {
                200 => {}
                404 | 410 => return Err(YoutubeError::not_found(format!("channel feed for {channel}"))),
                s => return Err(unexpected_status(s, "channel feed")),
            }
            let feed = parse_feed(&raw.body)?;
            if let Some(got) = &feed.channel_id
                && got != channel
            {
                return Err(YoutubeError::malformed(format!("asked for the feed of {channel}, got {got}'s")));
            }
            if let Some(entry) = feed.entries.iter().find(|e| &e.channel_id != channel) {
                return Err(YoutubeError::malformed(format!(
                    "the feed of {channel} lists {} of {}",
                    entry.video_id, entry.channel_id
                )));
            }
            Ok(feed)
        })
        .await
    }

    /// Reads the watch page and its embedded player response.
    #[tracing::instrument(skip_all, fields(video_id = %video))]
    pub async fn watch_page(&self, video: &VideoId) -> Result<VideoInfo, YoutubeError> {
        let mut url = endpoint(&self.config.web_base, "/watch");
        url.query_pairs_mut()
            .append_pair("v", video.as_str())
            .append_pair("bpctr", "9999999999")
            .append_pair("has_verified", "1");
        let mut spec = self.web_request(reqwest::Method::GET, url)?;
        spec.stop_after_player = true;
        self.execute(spec, |raw| match raw.status {
            200 => parse_watch_page(&raw.body, Some(video)),
            404 | 410 => Err(YoutubeError::not_found(format!("watch page of {video}"))),
            s => Err(unexpected_status(s, "watch page")),
        })
        .await
    }

    /// Asks InnerTube's player endpoint (smaller than the watch page, same fields).
    #[tracing::instrument(skip_all, fields(video_id = %video))]
    pub async fn player(&self, video: &VideoId) -> Result<VideoInfo, YoutubeError> {
        self.player_with_fields(video, false).await
    }

    /// Views and title for a check, from [`YoutubeConfig::views_from`]: the player endpoint with
    /// [`PLAYER_CHECK_FIELDS`] (the watch page standing in when that answer is unusable), or the
    /// watch page.
    #[tracing::instrument(skip_all, fields(video_id = %video))]
    pub async fn video_check_info(&self, video: &VideoId) -> Result<VideoInfo, YoutubeError> {
        if self.config.views_from == ViewsEndpoint::WatchPage {
            return self.watch_page(video).await;
        }
        match self.player_with_fields(video, true).await {
            // A bot check on the API, a refused mask or a changed shape: the page may still serve.
            Err(e)
                if matches!(e.kind(), ErrorKind::BotCheck | ErrorKind::Malformed)
                    || matches!(e, YoutubeError::Http { status: Some(400..=499), .. }) =>
            {
                tracing::debug!(video_id = %video, error = %e, "player endpoint unusable; reading the watch page");
                self.watch_page(video).await
            }
            other => other,
        }
    }

    /// The player endpoint, its response cut to [`PLAYER_CHECK_FIELDS`] (Google's `$fields` mask)
    /// when `masked`.
    async fn player_with_fields(&self, video: &VideoId, masked: bool) -> Result<VideoInfo, YoutubeError> {
        let prepared = &*self.prepared;
        let url = if masked { &prepared.player_check_url } else { &prepared.player_url };
        let (head, tail) = &prepared.player_body;
        // A video id is 11 of `A-Za-z0-9_-`: nothing in it needs escaping in JSON.
        let mut body = Vec::with_capacity(head.len() + video.as_str().len() + tail.len());
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(video.as_str().as_bytes());
        body.extend_from_slice(tail.as_bytes());
        let mut spec = RequestSpec::new(reqwest::Method::POST, url.clone());
        spec.headers = prepared.innertube_headers.clone();
        spec.body = Some(body);
        self.execute(spec, |raw| match raw.status {
            200 => parse_player_response(&raw.body, Some(video)),
            404 => Err(YoutubeError::not_found(format!("player response for {video}"))),
            s => Err(unexpected_status(s, "player")),
        })
        .await
    }

    /// Fetches and hashes one thumbnail size. A missing size is `NotFound` (YouTube's grey
    /// placeholder is recognised by its 404 and never hashed as the video's thumbnail).
    #[tracing::instrument(skip_all, fields(video_id = %video, size = size.name()))]
    pub async fn thumbnail(&self, video: &VideoId, size: ThumbnailSize) -> Result<Thumbnail, YoutubeError> {
        let spec = RequestSpec::new(reqwest::Method::GET, self.thumbnail_url(video, size)?);
        self.execute(spec, |raw| {
            let hashes = classify_thumbnail_response(raw.status, raw.content_type.as_deref(), &raw.body)?;
            Ok(Thumbnail { video_id: video.clone(), size, bytes: raw.body, content_type: raw.content_type, hashes })
        })
        .await
    }

    /// One thumbnail size's bytes, checked as [`YoutubeClient::thumbnail`] checks them (a whole
    /// JPEG or PNG, YouTube's placeholder refused) but not decoded or hashed: for archiving a size
    /// whose hashes nothing reads.
    #[tracing::instrument(skip_all, fields(video_id = %video, size = size.name()))]
    pub async fn thumbnail_bytes(&self, video: &VideoId, size: ThumbnailSize) -> Result<Vec<u8>, YoutubeError> {
        let spec = RequestSpec::new(reqwest::Method::GET, self.thumbnail_url(video, size)?);
        self.execute(spec, |raw| {
            crate::thumbnail::check_thumbnail_bytes(raw.status, raw.content_type.as_deref(), &raw.body)?;
            Ok(raw.body)
        })
        .await
    }

    /// Like [`YoutubeClient::thumbnail`], but when the bytes' SHA-256 equals `known_sha256` (the
    /// picture stored at the last check) the image is not decoded or hashed again: identical bytes
    /// decode to the identical picture. Most checks find the thumbnail unchanged.
    #[tracing::instrument(skip_all, fields(video_id = %video, size = size.name()))]
    pub async fn thumbnail_unless_unchanged(
        &self,
        video: &VideoId,
        size: ThumbnailSize,
        known_sha256: Option<&str>,
    ) -> Result<ThumbnailCheck, YoutubeError> {
        let spec = RequestSpec::new(reqwest::Method::GET, self.thumbnail_url(video, size)?);
        self.execute(spec, |raw| {
            if raw.status == 200
                && let Some(known) = known_sha256
                && crate::thumbnail::sha256_hex(&raw.body) == known
            {
                return Ok(ThumbnailCheck::Unchanged);
            }
            let hashes = classify_thumbnail_response(raw.status, raw.content_type.as_deref(), &raw.body)?;
            Ok(ThumbnailCheck::Fetched(Thumbnail {
                video_id: video.clone(),
                size,
                bytes: raw.body,
                content_type: raw.content_type,
                hashes,
            }))
        })
        .await
    }

    /// Resolves a handle, `/c/` or `/user/` name to a channel id (an id resolves to itself).
    #[tracing::instrument(skip_all, fields(channel = %channel))]
    pub async fn resolve_channel(&self, channel: &ChannelRef) -> Result<ChannelId, YoutubeError> {
        if let ChannelRef::Id(id) = channel {
            return Ok(id.clone());
        }
        let body = resolve_request_body(channel, &self.config.innertube_client_version);
        let spec = self.innertube_request("/youtubei/v1/navigation/resolve_url", &body)?;
        let what = channel.to_string();
        self.execute(spec, |raw| parse_resolve_response(raw.status, &raw.body, &what)).await
    }

    /// Fetches an arbitrary URL once, without retries, for `tubewatch inspect` only: a user
    /// debugging their own scrape supplies the URL. Service code never calls this.
    pub async fn fetch_for_inspection(&self, url: &str) -> Result<RawResponse, YoutubeError> {
        let url = Url::parse(url)
            .map_err(|e| YoutubeError::Http { status: None, message: format!("not a URL: {url:?}: {e}") })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(YoutubeError::Http { status: None, message: "only http and https URLs".into() });
        }
        self.send_once(&self.web_request(reqwest::Method::GET, url)?).await
    }
}

/// Classifications that hold whatever was asked: consent redirects, 429, 5xx.
fn pre_classify(raw: &RawResponse) -> Option<YoutubeError> {
    if (300..400).contains(&raw.status) {
        let to_consent = raw.location.as_deref().and_then(|l| Url::parse(l).ok()).is_some_and(|u| is_consent_host(&u));
        return Some(if to_consent || raw.location.as_deref().is_some_and(|l| l.contains("consent.")) {
            YoutubeError::Consent
        } else {
            YoutubeError::Http { status: Some(raw.status), message: "redirect to another host not followed".into() }
        });
    }
    if raw.status == 429 {
        // A spent daily quota answers 429 too on the newer Google APIs; waiting seconds won't help.
        if let quota @ YoutubeError::QuotaExceeded(_) = crate::google_error::parse_google_error(429, &raw.body) {
            return Some(quota);
        }
        return Some(YoutubeError::RateLimited {
            detail: "HTTP 429 Too Many Requests".into(),
            retry_after: raw.retry_after,
        });
    }
    if raw.status >= 500 {
        return Some(YoutubeError::Http { status: Some(raw.status), message: "server error".into() });
    }
    if raw.status == 200 && sniff::looks_like_html(&raw.body) && sniff::is_captcha_page(&raw.body) {
        return Some(YoutubeError::BotCheck { reason: "Google's unusual-traffic captcha page".into() });
    }
    None
}

fn unexpected_status(status: u16, what: &str) -> YoutubeError {
    YoutubeError::Http { status: Some(status), message: format!("unexpected status for {what}") }
}

fn map_transport_error(e: &reqwest::Error, url: &Url) -> YoutubeError {
    if e.is_timeout() {
        YoutubeError::Timeout(format!("{} {}", url.host_str().unwrap_or(""), url.path()))
    } else {
        // Connection refused/reset and the like: no response at all, worth retrying.
        YoutubeError::Http { status: None, message: format!("{} {}: {e}", url.host_str().unwrap_or(""), url.path()) }
    }
}
