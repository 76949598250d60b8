//! The client against a real local HTTP server (axum on 127.0.0.1:0): URL building from one base,
//! headers, every classification over the wire, the retry policy (transient failures retried with
//! growing delays, permanent ones not retried), per-host concurrency and pacing, the Data API
//! and OAuth flows.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tubewatch_core::{ChannelId, ChannelRef, Handle, VideoId};
use tubewatch_youtube::{
    ApiAuth, ErrorKind, OAuthConfig, REACH_REPORT_TYPE, ReportFilter, RetryPolicy, ThumbnailSize, YoutubeClient,
    YoutubeConfig,
};

#[derive(Clone)]
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    delay: Duration,
}

fn canned(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Canned {
    Canned {
        status,
        headers: vec![("content-type", content_type.to_owned())],
        body: body.into(),
        delay: Duration::ZERO,
    }
}

#[derive(Debug, Clone)]
struct Hit {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
    at: Instant,
}

#[derive(Clone, Default)]
struct Mock {
    /// Responses per "METHOD /path", served in order; the last one repeats.
    routes: Arc<Mutex<HashMap<String, VecDeque<Canned>>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl Mock {
    fn on(&self, route: &str, responses: Vec<Canned>) {
        self.routes.lock().unwrap().insert(route.to_owned(), responses.into());
    }
    fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits.lock().unwrap().iter().filter(|h| h.path == path).cloned().collect()
    }
}

async fn handle(State(mock): State<Mock>, req: Request) -> Response {
    let now = Instant::now();
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap().to_vec();
    let path = parts.uri.path().to_owned();
    mock.hits.lock().unwrap().push(Hit {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts.headers.clone(),
        body,
        at: now,
    });
    let current = mock.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    mock.max_in_flight.fetch_max(current, Ordering::SeqCst);
    let answer = {
        let mut routes = mock.routes.lock().unwrap();
        let queue = routes.get_mut(&format!("{} {path}", parts.method));
        match queue {
            Some(q) if q.len() > 1 => q.pop_front(),
            Some(q) => q.front().cloned(),
            None => None,
        }
    };
    let answer = answer.unwrap_or_else(|| canned(404, "text/html", "<!DOCTYPE html><html>404 Not Found</html>"));
    tokio::time::sleep(answer.delay).await;
    mock.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut response = Response::builder().status(StatusCode::from_u16(answer.status).unwrap());
    for (k, v) in &answer.headers {
        response = response.header(*k, v);
    }
    response.body(Body::from(answer.body)).unwrap()
}

async fn start() -> (Mock, String) {
    let mock = Mock::default();
    let app = axum::Router::new().fallback(handle).with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (mock, format!("http://{addr}"))
}

fn config(base: &str) -> YoutubeConfig {
    let mut config = YoutubeConfig::single_base(base).unwrap();
    config.retry =
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(40), max_delay: Duration::from_secs(1) };
    config.request_timeout = Duration::from_secs(5);
    config
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

fn vid() -> VideoId {
    VideoId::parse("AAAAAAAAAA1").unwrap()
}

fn channel() -> ChannelId {
    ChannelId::parse("UCabcdefghijklmnopqrstuv").unwrap()
}

fn jpeg(shade: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(120, 90, |x, y| image::Rgb([shade, (x * 2) as u8, (y * 2) as u8]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&image::DynamicImage::ImageRgb8(img))
        .unwrap();
    out
}

#[test]
fn defaults_are_the_real_hosts_and_single_base_points_everything_at_one_host() {
    let d = YoutubeConfig::default();
    assert_eq!(d.web_base.as_str(), "https://www.youtube.com/");
    assert_eq!(d.image_base.as_str(), "https://i.ytimg.com/");
    assert_eq!(d.api_base.as_str(), "https://www.googleapis.com/");
    assert_eq!(d.accounts_base.as_str(), "https://accounts.google.com/");
    assert_eq!(d.oauth_base.as_str(), "https://oauth2.googleapis.com/");
    assert_eq!(d.reporting_base.as_str(), "https://youtubereporting.googleapis.com/");
    let s = YoutubeConfig::single_base("http://127.0.0.1:9/sim").unwrap();
    for base in [&s.web_base, &s.image_base, &s.api_base, &s.accounts_base, &s.oauth_base, &s.reporting_base] {
        assert_eq!(base.as_str(), "http://127.0.0.1:9/sim");
    }
    assert!(!format!("{:?}", YoutubeConfig { api_key: Some("secret-key".into()), ..d }).contains("secret-key"));
}

#[tokio::test]
async fn feed_request_shape_and_result() {
    let (mock, base) = start().await;
    mock.on("GET /feeds/videos.xml", vec![canned(200, "text/xml; charset=UTF-8", fixture("feed_small.xml"))]);
    let client = YoutubeClient::new(config(&base)).unwrap();
    let feed = client.channel_feed(&channel()).await.unwrap();
    assert_eq!(feed.entries.len(), 3);
    let hits = mock.hits("/feeds/videos.xml");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].query, "channel_id=UCabcdefghijklmnopqrstuv");
    assert_eq!(hits[0].headers["cookie"], "SOCS=CAE=");
}

#[tokio::test]
async fn stream_feeds_name_their_kind_and_refuse_another_channels_videos() {
    let (mock, base) = start().await;
    mock.on("GET /feeds/videos.xml", vec![canned(200, "text/xml; charset=UTF-8", fixture("feed_small.xml"))]);
    let client = YoutubeClient::new(config(&base)).unwrap();
    let long = client.stream_feed(&channel(), false).await.unwrap();
    assert_eq!(long.entries.len(), 3);
    assert!(long.entries.iter().all(|e| !e.is_short), "the playlist sets the kind over each entry's link");
    assert!(client.stream_feed(&channel(), true).await.unwrap().entries.iter().all(|e| e.is_short));
    let queries: Vec<String> = mock.hits("/feeds/videos.xml").iter().map(|h| h.query.clone()).collect();
    assert_eq!(queries, ["playlist_id=UULFabcdefghijklmnopqrstuv", "playlist_id=UUSHabcdefghijklmnopqrstuv"]);

    // One entry of another channel: the whole feed is refused, for a channel's feed too.
    let body = String::from_utf8(fixture("feed_small.xml")).unwrap();
    let (head, tail) = body.split_at(body.rfind("<yt:channelId>UCabcdefghijklmnopqrstuv").unwrap());
    let mixed = format!("{head}{}", tail.replacen("UCabcdefghijklmnopqrstuv", "UCzzzzzzzzzzzzzzzzzzzzzz", 1));
    mock.on("GET /feeds/videos.xml", vec![canned(200, "text/xml; charset=UTF-8", mixed.into_bytes())]);
    assert_eq!(client.stream_feed(&channel(), false).await.unwrap_err().kind(), ErrorKind::Malformed);
    assert_eq!(client.channel_feed(&channel()).await.unwrap_err().kind(), ErrorKind::Malformed);
}

#[tokio::test]
async fn base_url_path_prefix_is_kept() {
    let (mock, base) = start().await;
    mock.on("GET /sim/feeds/videos.xml", vec![canned(200, "text/xml", fixture("feed_small.xml"))]);
    let client = YoutubeClient::new(config(&format!("{base}/sim/"))).unwrap();
    assert_eq!(client.channel_feed(&channel()).await.unwrap().entries.len(), 3);
}

#[tokio::test]
async fn transient_failures_are_retried_with_growing_backoff() {
    let (mock, base) = start().await;
    let mut too_many = canned(429, "text/html", "slow down");
    too_many.headers.push(("retry-after", "0".into()));
    mock.on(
        "GET /feeds/videos.xml",
        vec![
            canned(503, "text/html", "unavailable"),
            too_many,
            canned(500, "text/html", "oops"),
            canned(200, "text/xml", fixture("feed_small.xml")),
        ],
    );
    let client = YoutubeClient::new(config(&base)).unwrap();
    let feed = client.channel_feed(&channel()).await.unwrap();
    assert_eq!(feed.entries.len(), 3);
    let hits = mock.hits("/feeds/videos.xml");
    assert_eq!(hits.len(), 4);
    let gaps: Vec<Duration> = hits.windows(2).map(|w| w[1].at - w[0].at).collect();
    // Equal jitter: retry n waits within [0.5, 1) × 40 ms × 2^(n-1).
    for (n, gap) in gaps.iter().enumerate() {
        let floor = Duration::from_millis(20 << n);
        assert!(*gap >= floor, "retry {} came after {gap:?}, expected at least {floor:?}", n + 1);
    }
    assert!(gaps[2] > gaps[0], "delays grow: {gaps:?}");
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    let (mock, base) = start().await;
    mock.on("POST /youtubei/v1/player", vec![canned(200, "application/json", fixture("player_bot_check.json"))]);
    let client = YoutubeClient::new(config(&base)).unwrap();
    let err = client.player(&vid()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BotCheck);
    assert_eq!(mock.hits("/youtubei/v1/player").len(), 4);
}

#[tokio::test]
async fn permanent_failures_are_not_retried() {
    let (mock, base) = start().await;
    let wrap = |name: &str| {
        let json = String::from_utf8(fixture(name)).unwrap();
        format!("<!DOCTYPE html><html><script>var ytInitialPlayerResponse = {json};</script></html>")
    };
    mock.on("GET /watch", vec![canned(200, "text/html", wrap("player_private.json"))]);
    mock.on("POST /youtubei/v1/player", vec![canned(200, "application/json", fixture("player_unavailable.json"))]);
    mock.on(
        "POST /youtubei/v1/navigation/resolve_url",
        vec![canned(404, "application/json", fixture("resolve_404.json"))],
    );
    let client = YoutubeClient::new(config(&base)).unwrap();

    let err = client.watch_page(&vid()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_permanent());
    assert_eq!(mock.hits("/watch").len(), 1);

    assert_eq!(client.player(&vid()).await.unwrap_err().kind(), ErrorKind::Unavailable);
    assert_eq!(mock.hits("/youtubei/v1/player").len(), 1);

    let handle = ChannelRef::Handle(Handle::parse("@nobody").unwrap());
    assert_eq!(client.resolve_channel(&handle).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(mock.hits("/youtubei/v1/navigation/resolve_url").len(), 1);
}

#[tokio::test]
async fn feed_404_gets_exactly_one_extra_try() {
    let (mock, base) = start().await;
    mock.on("GET /feeds/videos.xml", vec![canned(404, "text/html; charset=UTF-8", fixture("feed_404.html"))]);
    let client = YoutubeClient::new(config(&base)).unwrap();
    let err = client.channel_feed(&channel()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(mock.hits("/feeds/videos.xml").len(), 2);
}

#[tokio::test]
async fn watch_page_classifications_over_http() {
    let (mock, base) = start().await;
    let client = YoutubeClient::new(config(&base)).unwrap();
    // Consent redirect: not followed (it would leave the configured host), classified, not retried.
    let mut redirect = canned(302, "text/html", "");
    redirect
        .headers
        .push(("location", "https://consent.youtube.com/m?continue=https%3A%2F%2Fwww.youtube.com%2Fwatch".into()));
    mock.on("GET /watch", vec![redirect]);
    assert_eq!(client.watch_page(&vid()).await.unwrap_err().kind(), ErrorKind::Consent);
    assert_eq!(mock.hits("/watch").len(), 1);

    // A consent page served in place.
    mock.on("GET /watch", vec![canned(200, "text/html", fixture("watch_consent.html"))]);
    assert_eq!(client.watch_page(&vid()).await.unwrap_err().kind(), ErrorKind::Consent);

    // Another video's response, then the right one: retried, and the right one is returned.
    let wrong = String::from_utf8(fixture("player_wrong_video.json")).unwrap();
    let wrong_page = format!("<html><script>var ytInitialPlayerResponse = {wrong};</script></html>");
    mock.on(
        "GET /watch",
        vec![canned(200, "text/html", wrong_page), canned(200, "text/html", fixture("watch_ok.html"))],
    );
    let before = mock.hits("/watch").len();
    let info = client.watch_page(&vid()).await.unwrap();
    assert_eq!(info.views, 1_234_567);
    assert_eq!(mock.hits("/watch").len() - before, 2);
    let query = mock.hits("/watch").last().unwrap().query.clone();
    assert!(query.starts_with("v=AAAAAAAAAA1&"), "{query}");

    // Rate-limit notice, then success.
    mock.on(
        "POST /youtubei/v1/player",
        vec![
            canned(200, "application/json", fixture("player_rate_limited.json")),
            canned(200, "application/json", fixture("player_ok.json")),
        ],
    );
    assert_eq!(client.player(&vid()).await.unwrap().views, 98_765);
    let hit = mock.hits("/youtubei/v1/player").pop().unwrap();
    let body: serde_json::Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(body["videoId"], "AAAAAAAAAA1");
    assert_eq!(hit.headers["x-youtube-client-name"], "1");
    assert_eq!(hit.query, "prettyPrint=false");
}

#[tokio::test]
async fn timeouts_are_retried_then_reported() {
    let (mock, base) = start().await;
    let mut slow = canned(200, "text/xml", fixture("feed_small.xml"));
    slow.delay = Duration::from_millis(800);
    mock.on("GET /feeds/videos.xml", vec![slow]);
    let mut cfg = config(&base);
    cfg.request_timeout = Duration::from_millis(150);
    cfg.retry.max_attempts = 2;
    let client = YoutubeClient::new(cfg).unwrap();
    let err = client.channel_feed(&channel()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(mock.hits("/feeds/videos.xml").len(), 2);
}

#[tokio::test]
async fn truncated_body_is_retried() {
    let (mock, base) = start().await;
    let full = fixture("feed_small.xml");
    // A body shorter than its Content-Length: the connection ends early.
    let mut cut = canned(200, "text/xml", full[..full.len() / 2].to_vec());
    cut.headers.push(("content-length", full.len().to_string()));
    mock.on("GET /feeds/videos.xml", vec![cut, canned(200, "text/xml", full.clone())]);
    let client = YoutubeClient::new(config(&base)).unwrap();
    assert_eq!(client.channel_feed(&channel()).await.unwrap().entries.len(), 3);
    assert_eq!(mock.hits("/feeds/videos.xml").len(), 2);

    // A well-framed but cut XML document is retried too.
    let (mock, base) = start().await;
    mock.on(
        "GET /feeds/videos.xml",
        vec![canned(200, "text/xml", full[..full.len() - 40].to_vec()), canned(200, "text/xml", full)],
    );
    let client = YoutubeClient::new(config(&base)).unwrap();
    assert_eq!(client.channel_feed(&channel()).await.unwrap().entries.len(), 3);
    assert_eq!(mock.hits("/feeds/videos.xml").len(), 2);
}

#[tokio::test]
async fn thumbnails_are_fetched_hashed_and_placeholders_recognised() {
    let (mock, base) = start().await;
    let first = jpeg(10);
    mock.on("GET /vi/AAAAAAAAAA1/default.jpg", vec![canned(200, "image/jpeg", first.clone())]);
    let grey = image::RgbImage::from_pixel(120, 90, image::Rgb([204, 204, 204]));
    let mut grey_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut grey_jpeg).encode_image(&image::DynamicImage::ImageRgb8(grey)).unwrap();
    mock.on("GET /vi/AAAAAAAAAA1/maxresdefault.jpg", vec![canned(404, "image/jpeg", grey_jpeg)]);
    let client = YoutubeClient::new(config(&base)).unwrap();

    let thumb = client.thumbnail(&vid(), ThumbnailSize::Default).await.unwrap();
    assert_eq!(thumb.bytes, first);
    assert_eq!(thumb.hashes.sha256, tubewatch_youtube::sha256_hex(&first));
    assert_eq!((thumb.hashes.width, thumb.hashes.height), (120, 90));

    let err = client.thumbnail(&vid(), ThumbnailSize::MaxRes).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(mock.hits("/vi/AAAAAAAAAA1/maxresdefault.jpg").len(), 1, "a placeholder is not retried");
}

#[tokio::test]
async fn resolve_channel_sends_the_canonical_url_and_reads_the_browse_id() {
    let (mock, base) = start().await;
    mock.on(
        "POST /youtubei/v1/navigation/resolve_url",
        vec![canned(200, "application/json", fixture("resolve_ok.json"))],
    );
    let client = YoutubeClient::new(config(&base)).unwrap();
    let id = client.resolve_channel(&ChannelRef::Handle(Handle::parse("@TinyTest").unwrap())).await.unwrap();
    assert_eq!(id, channel());
    let hit = mock.hits("/youtubei/v1/navigation/resolve_url").pop().unwrap();
    let body: serde_json::Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(body["url"], "https://www.youtube.com/@tinytest");
    assert_eq!(hit.headers["cookie"], "SOCS=CAE=");
    // An id needs no request.
    assert_eq!(client.resolve_channel(&ChannelRef::Id(channel())).await.unwrap(), channel());
    assert_eq!(mock.hits("/youtubei/v1/navigation/resolve_url").len(), 1);
}

#[tokio::test]
async fn per_host_concurrency_limit_holds() {
    let (mock, base) = start().await;
    let mut slow = canned(200, "text/xml", fixture("feed_small.xml"));
    slow.delay = Duration::from_millis(80);
    mock.on("GET /feeds/videos.xml", vec![slow]);
    let mut cfg = config(&base);
    cfg.max_concurrent_per_host = 2;
    let client = YoutubeClient::new(cfg).unwrap();
    let c = channel();
    let tasks: Vec<_> = (0..6).map(|_| client.channel_feed(&c)).collect();
    for r in futures_join(tasks).await {
        r.unwrap();
    }
    assert_eq!(mock.max_in_flight.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn per_host_pacing_spaces_request_starts() {
    let (mock, base) = start().await;
    mock.on("GET /feeds/videos.xml", vec![canned(200, "text/xml", fixture("feed_small.xml"))]);
    let mut cfg = config(&base);
    cfg.min_interval_per_host = Some(Duration::from_millis(60));
    let client = YoutubeClient::new(cfg).unwrap();
    let c = channel();
    let tasks: Vec<_> = (0..4).map(|_| client.channel_feed(&c)).collect();
    for r in futures_join(tasks).await {
        r.unwrap();
    }
    let hits = mock.hits("/feeds/videos.xml");
    let span = hits.last().unwrap().at - hits[0].at;
    assert!(span >= Duration::from_millis(170), "4 requests at 60 ms spacing took only {span:?}");
}

async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    // Drive all futures concurrently on this task without an extra dependency.
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn videos_list_batches_fifty_ids_with_the_api_key() {
    let (mock, base) = start().await;
    mock.on("GET /youtube/v3/videos", vec![canned(200, "application/json", fixture("api_videos.json"))]);
    let mut cfg = config(&base);
    cfg.api_key = Some("test-key".into());
    let client = YoutubeClient::new(cfg).unwrap();
    let ids: Vec<VideoId> = (0..120).map(|n| VideoId::parse(&format!("vid{n:08}")).unwrap()).collect();
    let videos = client.videos_list(&client.api_key_auth().unwrap(), &ids).await.unwrap();
    assert_eq!(videos.len(), 6, "two items per canned page, three pages");
    let hits = mock.hits("/youtube/v3/videos");
    assert_eq!(hits.len(), 3);
    let counts: Vec<usize> = hits
        .iter()
        .map(|h| {
            let q: HashMap<String, String> = url::form_urlencoded::parse(h.query.as_bytes()).into_owned().collect();
            assert_eq!(q["key"], "test-key");
            assert_eq!(q["part"], "snippet,statistics");
            q["id"].split(',').count()
        })
        .collect();
    assert_eq!(counts, [50, 50, 20]);
}

#[tokio::test]
async fn stream_uploads_list_a_streams_playlist_with_the_api_key() {
    let (mock, base) = start().await;
    mock.on("GET /youtube/v3/playlistItems", vec![canned(200, "application/json", fixture("api_playlist_items.json"))]);
    let client = YoutubeClient::new(config(&base)).unwrap();
    let key = ApiAuth::Key("test-key".into());
    let ids = client.stream_uploads(&key, &channel(), true, 80).await.unwrap();
    assert_eq!(ids, [VideoId::parse("dQw4w9WgXcQ").unwrap(), VideoId::parse("zg40FHOAqC0").unwrap()]);
    let hit = &mock.hits("/youtube/v3/playlistItems")[0];
    let q: HashMap<String, String> = url::form_urlencoded::parse(hit.query.as_bytes()).into_owned().collect();
    assert_eq!(q["playlistId"], "UUSHabcdefghijklmnopqrstuv");
    assert_eq!((q["part"].as_str(), q["maxResults"].as_str(), q["key"].as_str()), ("contentDetails", "50", "test-key"));

    // An item without a valid video id: the page is refused; a channel without the stream: 404.
    let body = String::from_utf8(fixture("api_playlist_items.json")).unwrap().replace("zg40FHOAqC0", "zg40FH/AqC0");
    mock.on("GET /youtube/v3/playlistItems", vec![canned(200, "application/json", body.into_bytes())]);
    assert_eq!(client.stream_uploads(&key, &channel(), false, 50).await.unwrap_err().kind(), ErrorKind::Malformed);
    mock.on(
        "GET /youtube/v3/playlistItems",
        vec![canned(404, "application/json", fixture("google_playlist_not_found.json"))],
    );
    assert_eq!(client.stream_uploads(&key, &channel(), false, 50).await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn data_api_errors_are_typed_and_not_retried() {
    let (mock, base) = start().await;
    mock.on("GET /youtube/v3/videos", vec![canned(403, "application/json", fixture("google_quota.json"))]);
    mock.on("GET /youtube/v3/channels", vec![canned(401, "application/json", fixture("google_401.json"))]);
    mock.on(
        "POST /upload/youtube/v3/thumbnails/set",
        vec![canned(403, "application/json", fixture("google_forbidden.json"))],
    );
    let client = YoutubeClient::new(config(&base)).unwrap();
    let err = client.videos_list(&ApiAuth::Key("k".into()), &[vid()]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(mock.hits("/youtube/v3/videos").len(), 1);
    let err = client.channel_by_id(&ApiAuth::Bearer("expired".into()), &channel()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let err = client.set_thumbnail("token", &vid(), &jpeg(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert_eq!(mock.hits("/upload/youtube/v3/thumbnails/set").len(), 1);
}

const JOB: &str = "1c20da45-0604-4d60-85db-925989df1db6";

#[tokio::test]
async fn reports_follow_pages_and_downloads_stay_on_the_configured_host() {
    let (mock, base) = start().await;
    let path = format!("/v1/jobs/{JOB}/reports");
    mock.on(
        &format!("GET {path}"),
        vec![
            canned(200, "application/json", fixture("reporting_reports_list.json")),
            canned(200, "application/json", "{}"),
        ],
    );
    let media = format!("/v1/media/CHANNEL/ybpwL6sPt6SSzazIV400WQ/jobs/{JOB}/reports/4317112913");
    mock.on(
        &format!("GET {media}"),
        vec![canned(503, "text/html", "busy"), canned(200, "text/csv", fixture("reach_basic_a1.csv"))],
    );
    let client = YoutubeClient::new(config(&base)).unwrap();
    let since = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
    let filter = ReportFilter { created_after: Some(since), ..ReportFilter::default() };
    let reports = client.reports("tok", JOB, &filter).await.unwrap();
    assert_eq!(reports.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["4315953856", "4317112913"]);
    let hits = mock.hits(&path);
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].headers["authorization"], "Bearer tok");
    assert!(hits[0].query.contains("createdAfter=2026-01-01T00%3A00%3A00.000000Z"), "{}", hits[0].query);
    assert!(hits[1].query.contains("pageToken=CAIQAhgB"), "{}", hits[1].query);
    // The report names youtubereporting.googleapis.com; the request goes to the configured base.
    let rows = client.reach_rows("tok", &reports[1]).await.unwrap();
    assert_eq!(rows.len(), 4);
    let downloads = mock.hits(&media);
    assert_eq!(downloads.len(), 2, "the 503 was retried");
    assert_eq!(downloads[1].query, "alt=media");
    assert_eq!(downloads[1].headers["authorization"], "Bearer tok");
    let mut elsewhere = reports[1].clone();
    elsewhere.download_url = "https://attacker.example/steal?alt=media".into();
    assert_eq!(client.reach_rows("tok", &elsewhere).await.unwrap_err().kind(), ErrorKind::Malformed);
    assert!(client.reports("tok", "../jobs", &filter).await.is_err());
}

#[tokio::test]
async fn ensure_reporting_job_reuses_the_existing_job_and_survives_a_creation_race() {
    let (mock, base) = start().await;
    mock.on("GET /v1/jobs", vec![canned(200, "application/json", fixture("reporting_jobs_list.json"))]);
    let client = YoutubeClient::new(config(&base)).unwrap();
    let job = client.ensure_reporting_job("tok", REACH_REPORT_TYPE, "tubewatch reach").await.unwrap();
    assert_eq!((job.id.as_str(), job.report_type_id.as_str()), (JOB, REACH_REPORT_TYPE));
    assert!(mock.hits("/v1/jobs").iter().all(|h| h.method == "GET"), "no second job is created");

    // None listed ({} as Google answers), then another worker wins the creation: 409, list again.
    let (mock, base) = start().await;
    mock.on(
        "GET /v1/jobs",
        vec![
            canned(200, "application/json", "{}"),
            canned(200, "application/json", fixture("reporting_jobs_list.json")),
        ],
    );
    mock.on("POST /v1/jobs", vec![canned(409, "application/json", fixture("reporting_job_exists.json"))]);
    let client = YoutubeClient::new(config(&base)).unwrap();
    let job = client.ensure_reporting_job("tok", REACH_REPORT_TYPE, "tubewatch reach").await.unwrap();
    assert_eq!(job.id, JOB);
    let posts: Vec<Hit> = mock.hits("/v1/jobs").into_iter().filter(|h| h.method == "POST").collect();
    assert_eq!(posts.len(), 1, "409 is not retried");
    let body: serde_json::Value = serde_json::from_slice(&posts[0].body).unwrap();
    assert_eq!(body, serde_json::json!({"reportTypeId": REACH_REPORT_TYPE, "name": "tubewatch reach"}));
}

#[tokio::test]
async fn reporting_errors_are_typed_and_only_transient_ones_retried() {
    let (mock, base) = start().await;
    let client = YoutubeClient::new(config(&base)).unwrap();
    let cases = [
        (403, "reporting_insufficient_scope.json", ErrorKind::Forbidden, 1),
        (401, "google_401.json", ErrorKind::Unauthorized, 1),
        (429, "reporting_quota_daily.json", ErrorKind::QuotaExceeded, 1),
        (429, "reporting_rate_limited.json", ErrorKind::RateLimited, 4),
        (500, "reporting_job_exists.json", ErrorKind::Http, 4),
    ];
    for (status, body, kind, attempts) in cases {
        let before = mock.hits("/v1/reportTypes").len();
        mock.on("GET /v1/reportTypes", vec![canned(status, "application/json", fixture(body))]);
        let err = client.report_types("tok").await.unwrap_err();
        assert_eq!(err.kind(), kind, "{body}: {err}");
        assert_eq!(err.is_insufficient_scope(), status == 403, "{body}");
        assert_eq!(mock.hits("/v1/reportTypes").len() - before, attempts, "{body}");
    }
}

#[tokio::test]
async fn thumbnails_set_uploads_the_image() {
    let (mock, base) = start().await;
    mock.on("POST /upload/youtube/v3/thumbnails/set", vec![canned(200, "application/json", "{\"items\":[]}")]);
    let client = YoutubeClient::new(config(&base)).unwrap();
    let image = jpeg(200);
    client.set_thumbnail("tok", &vid(), &image).await.unwrap();
    let hit = mock.hits("/upload/youtube/v3/thumbnails/set").pop().unwrap();
    assert_eq!(hit.body, image);
    assert_eq!(hit.headers["authorization"], "Bearer tok");
    assert_eq!(hit.headers["content-type"], "image/jpeg");
    assert!(hit.query.contains("videoId=AAAAAAAAAA1"), "{}", hit.query);
    // Not an image: refused locally, costing no quota.
    let err = client.set_thumbnail("tok", &vid(), b"GIF89a not allowed").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidImage);
    assert_eq!(mock.hits("/upload/youtube/v3/thumbnails/set").len(), 1);
}

#[tokio::test]
async fn videos_update_keeps_description_and_tags() {
    let (mock, base) = start().await;
    mock.on("GET /youtube/v3/videos", vec![canned(200, "application/json", fixture("api_videos.json"))]);
    let updated = serde_json::json!({"id": "AAAAAAAAAA1", "snippet": {"title": "New title", "categoryId": "27", "description": "Desc", "tags": ["a", "b"]}});
    mock.on("PUT /youtube/v3/videos", vec![canned(200, "application/json", updated.to_string())]);
    let client = YoutubeClient::new(config(&base)).unwrap();
    let snippet = client.update_video_title("tok", &vid(), "New title").await.unwrap();
    assert_eq!(snippet["title"], "New title");
    let put = mock.hits("/youtube/v3/videos").into_iter().find(|h| h.method == "PUT").unwrap();
    assert_eq!(put.query, "part=snippet");
    let sent: serde_json::Value = serde_json::from_slice(&put.body).unwrap();
    assert_eq!(sent["id"], "AAAAAAAAAA1");
    assert_eq!(sent["snippet"]["title"], "New title");
    assert_eq!(sent["snippet"]["description"], "Desc");
    assert_eq!(sent["snippet"]["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(sent["snippet"]["categoryId"], "27");
}

#[tokio::test]
async fn oauth_code_flow_with_pkce_refresh_and_revoke() {
    let (mock, base) = start().await;
    let token = serde_json::json!({"access_token": "ya29.a", "expires_in": 3599, "refresh_token": "1//r", "scope": "https://www.googleapis.com/auth/youtube.force-ssl", "token_type": "Bearer"});
    let refreshed = serde_json::json!({"access_token": "ya29.b", "expires_in": 3599, "token_type": "Bearer"});
    let invalid =
        serde_json::json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."});
    mock.on(
        "POST /token",
        vec![
            canned(200, "application/json", token.to_string()),
            canned(200, "application/json", refreshed.to_string()),
            canned(400, "application/json", invalid.to_string()),
        ],
    );
    mock.on("POST /revoke", vec![canned(200, "application/json", "{}")]);
    let client = YoutubeClient::new(config(&base)).unwrap();
    let oauth = client
        .oauth(&OAuthConfig {
            client_id: "cid".into(),
            client_secret: Some("csecret".into()),
            redirect_uri: "http://localhost:8080/oauth/callback".into(),
            scopes: vec![tubewatch_youtube::SCOPE_YOUTUBE_FORCE_SSL.into()],
        })
        .unwrap();

    let auth = oauth.authorize_url();
    let url = url::Url::parse(&auth.url).unwrap();
    assert_eq!(format!("{}{}", url.origin().ascii_serialization(), url.path()), format!("{base}/o/oauth2/v2/auth"));
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "cid");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["state"], auth.state);
    assert_eq!(q["scope"], tubewatch_youtube::SCOPE_YOUTUBE_FORCE_SSL);
    // The challenge is the base64url SHA-256 of the verifier.
    use sha2::Digest;
    let digest = sha2::Sha256::digest(auth.pkce_verifier.as_bytes());
    assert_eq!(q["code_challenge"], base64url(digest.as_slice()));

    let tokens = oauth.exchange_code("the-code", &auth.pkce_verifier).await.unwrap();
    assert_eq!(tokens.access_token, "ya29.a");
    assert_eq!(tokens.refresh_token.as_deref(), Some("1//r"));
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(3599)));
    let form: HashMap<String, String> =
        url::form_urlencoded::parse(&mock.hits("/token")[0].body).into_owned().collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "the-code");
    assert_eq!(form["code_verifier"], auth.pkce_verifier);
    assert_eq!(form["client_secret"], "csecret");

    let again = oauth.refresh("1//r").await.unwrap();
    assert_eq!(again.access_token, "ya29.b");
    assert_eq!(again.refresh_token.as_deref(), Some("1//r"), "a refresh keeps the refresh token");
    let err = oauth.refresh("1//r").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);

    oauth.revoke("1//r").await.unwrap();
    let form: HashMap<String, String> =
        url::form_urlencoded::parse(&mock.hits("/revoke")[0].body).into_owned().collect();
    assert_eq!(form["token"], "1//r");
    assert!(!format!("{tokens:?}").contains("ya29"), "tokens are redacted in Debug");
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
