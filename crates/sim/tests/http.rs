//! The simulator over real HTTP on loopback, on a manual clock: determinism, monotone views,
//! truth consistent with what the endpoints serve, fault injection, OAuth with PKCE, the Data API.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::Duration;
use serde_json::{Value, json};
use tubewatch_core::{ManualClock, VideoId};
use tubewatch_sim::{Endpoint, FaultConfig, FaultSpec, RunningSim, SimConfig, Simulator, VariantKind};

async fn start(seed: u64, channels: u32) -> (RunningSim, Arc<ManualClock>) {
    let (config, clock) = SimConfig::for_tests(seed, channels);
    (Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap(), clock)
}

/// A client that sends no `Accept-Encoding` of its own and never decompresses: bodies as sent.
fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).gzip(false).build().unwrap()
}

/// The first long-form video of a channel that has one, published at least `min_age` ago.
fn some_video(sim: &Simulator, min_age: Duration) -> VideoId {
    let now = sim.now();
    for c in sim.channels() {
        let videos = sim.channel_videos(&c.id, now - Duration::days(30), now - min_age).unwrap();
        if let Some(v) = videos.iter().find(|v| !v.is_short) {
            return v.id.clone();
        }
    }
    panic!("no video in the world");
}

async fn text(url: &str) -> (u16, String) {
    let r = client().get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn player_from_page(page: &str) -> Value {
    let start = page.find("var ytInitialPlayerResponse = ").unwrap() + "var ytInitialPlayerResponse = ".len();
    let mut de = serde_json::Deserializer::from_str(&page[start..]).into_iter::<Value>();
    de.next().unwrap().unwrap()
}

async fn player(base: &str, id: &str) -> Value {
    client()
        .post(format!("{base}/youtubei/v1/player?prettyPrint=false"))
        .json(
            &json!({"context": {"client": {"clientName": "WEB", "clientVersion": "2.20260123.01.00"}}, "videoId": id}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn same_seed_serves_byte_identical_responses() {
    let mut bodies: Vec<(VideoId, String, String, axum::body::Bytes, String)> = Vec::new();
    for seed in [11, 11, 12] {
        let (mut config, clock) = SimConfig::for_tests(seed, 40);
        config.public_base = Some("http://sim.test".to_owned());
        let running = Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        clock.advance(Duration::hours(5));
        let base = &running.base_url;
        let channel = running.sim.channels()[3].id.to_string();
        // The same video id in every world: the first seed's (unknown in the third world).
        let id = if bodies.is_empty() { some_video(&running.sim, Duration::hours(1)) } else { bodies[0].0.clone() };
        let feed = text(&format!("{base}/feeds/videos.xml?channel_id={channel}")).await.1;
        let watch = text(&format!("{base}/watch?v={id}")).await.1;
        let thumb = client().get(format!("{base}/vi/{id}/hqdefault.jpg")).send().await.unwrap().bytes().await.unwrap();
        let list = text(&format!("{base}/youtube/v3/videos?part=snippet,statistics&id={id}&key=k")).await.1;
        bodies.push((id, feed, watch, thumb, list));
        running.shutdown().await;
    }
    assert_eq!(bodies[0], bodies[1], "one seed, one virtual time: identical bodies");
    assert_ne!(bodies[0].1, bodies[2].1, "another seed is another world");
    assert!(bodies[0].2.len() > 60_000, "watch pages are padded to the configured size");
}

#[tokio::test]
async fn views_never_decrease_over_http() {
    let (running, clock) = start(3, 30).await;
    let id = some_video(&running.sim, Duration::zero());
    let mut previous = 0u64;
    let first = running.sim.views_at(&id, running.sim.now()).unwrap();
    for _ in 0..72 {
        let p = player(&running.base_url, id.as_str()).await;
        let views: u64 = p["videoDetails"]["viewCount"].as_str().unwrap().parse().unwrap();
        assert!(views >= previous, "views went down: {views} < {previous}");
        previous = views;
        clock.advance(Duration::minutes(53));
    }
    assert!(previous > first, "a young video gains views over 2.6 days ({first} → {previous})");
}

#[tokio::test]
async fn truth_matches_what_the_endpoints_serve() {
    let (running, clock) = start(5, 30).await;
    clock.advance(Duration::hours(7));
    let base = &running.base_url;
    let channel = running.sim.channels().iter().find(|c| c.long_every_hours.is_some()).unwrap().clone();
    let feed = text(&format!("{base}/feeds/videos.xml?channel_id={}", channel.id)).await.1;
    let truth: Value =
        client().get(format!("{base}/_sim/channels/{}/videos", channel.id)).send().await.unwrap().json().await.unwrap();
    let videos = truth["videos"].as_array().unwrap();
    assert!(!videos.is_empty());
    // The feed lists the 15 newest videos of the truth, newest first, with their true views.
    let feed_ids: Vec<&str> =
        feed.split("<yt:videoId>").skip(1).map(|s| s.split("</yt:videoId>").next().unwrap()).collect();
    let truth_ids: Vec<&str> = videos.iter().take(15).map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(feed_ids, truth_ids);
    let views_in_feed: Vec<u64> = feed
        .split("<media:statistics views=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse().unwrap())
        .collect();
    let views_in_truth: Vec<u64> = videos.iter().take(15).map(|v| v["views"].as_u64().unwrap()).collect();
    assert_eq!(views_in_feed, views_in_truth);

    let id = videos[0]["id"].as_str().unwrap();
    let page = text(&format!("{base}/watch?v={id}")).await.1;
    let p = player_from_page(&page);
    let v: Value = client().get(format!("{base}/_sim/videos/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(p["videoDetails"]["viewCount"].as_str().unwrap(), v["views"].as_u64().unwrap().to_string());
    assert_eq!(p["videoDetails"]["title"], v["title"]);
    assert!(page.contains(&format!("<meta itemprop=\"interactionCount\" content=\"{}\">", v["views"])));
    let list: Value = client()
        .get(format!("{base}/youtube/v3/videos?part=snippet,statistics&id={id}&key=k"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["statistics"]["viewCount"].as_str().unwrap(), v["views"].as_u64().unwrap().to_string());
    assert_eq!(list["items"][0]["snippet"]["title"], v["title"]);
    // A future video does not exist yet anywhere.
    let later = running.sim.world().channels()[0].clone();
    let future = running
        .sim
        .world()
        .videos_between(&later, running.sim.now() + Duration::days(1), running.sim.now() + Duration::days(90))
        .pop()
        .unwrap();
    let p = player(base, future.id.as_str()).await;
    assert_eq!(p["playabilityStatus"]["status"], "ERROR");
    let (status, _) = text(&format!("{base}/vi/{}/default.jpg", future.id)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn creator_changes_change_thumbnail_and_are_in_the_truth() {
    let (running, clock) = start(8, 200).await;
    let sim = running.sim.clone();
    let now = sim.now();
    let changes = sim.changes(now - Duration::days(30), now, None).unwrap();
    let change = changes.iter().find(|c| c.kind == VariantKind::Thumbnail).expect("some creator thumbnail change");
    let id = change.video_id.clone();
    clock.set(change.at - Duration::minutes(5));
    let url = format!("{}/vi/{id}/default.jpg", running.base_url);
    let before = client().get(&url).send().await.unwrap().bytes().await.unwrap();
    let again = client().get(&url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(before, again, "the same variant is byte-identical");
    clock.set(change.at + Duration::minutes(5));
    let after = client().get(&url).send().await.unwrap().bytes().await.unwrap();
    assert_ne!(before, after, "a new variant is a new picture");
    let img = image::load_from_memory(&after).unwrap();
    assert_eq!((img.width(), img.height()), (120, 90));
    assert_eq!(sim.video(&id).unwrap().thumbnail_variant, change.variant);
}

#[tokio::test]
async fn shorts_links_and_missing_maxres_placeholder() {
    let (running, _clock) = start(9, 120).await;
    let sim = &running.sim;
    let now = sim.now();
    let channel = sim.channels().iter().find(|c| c.shorts_every_hours.is_some()).unwrap();
    let feed = text(&format!("{}/feeds/videos.xml?channel_id={}", running.base_url, channel.id)).await.1;
    assert!(feed.contains(&format!("{}/shorts/", running.base_url)));
    let mut missing = None;
    for c in sim.channels() {
        if let Some(v) =
            sim.channel_videos(&c.id, now - Duration::days(60), now).unwrap().into_iter().find(|v| !v.has_maxres)
        {
            missing = Some(v.id.to_string());
            break;
        }
    }
    let id = missing.unwrap();
    let r = client().get(format!("{}/vi/{id}/maxresdefault.jpg", running.base_url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let grey = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert_eq!((grey.width(), grey.height()), (120, 90));
    let r = client().get(format!("{}/vi/{id}/sddefault.jpg", running.base_url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(image::load_from_memory(&r.bytes().await.unwrap()).unwrap().width(), 640);
    let (status, body) =
        text(&format!("{}/feeds/videos.xml?channel_id=UCxxxxxxxxxxxxxxxxxxxxxx", running.base_url)).await;
    assert_eq!(status, 404);
    assert!(body.contains("Error 404 (Not Found)"));
}

#[tokio::test]
async fn resolve_url_finds_handles() {
    let (running, _clock) = start(10, 20).await;
    let channel = running.sim.channels()[4].clone();
    let r: Value = client()
        .post(format!("{}/youtubei/v1/navigation/resolve_url", running.base_url))
        .json(&json!({"url": format!("https://www.youtube.com/{}", channel.handle)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["endpoint"]["browseEndpoint"]["browseId"], channel.id.as_str());
    let r = client()
        .post(format!("{}/youtubei/v1/navigation/resolve_url", running.base_url))
        .json(&json!({"url": "https://www.youtube.com/@nobody-here-at-all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "NOT_FOUND");
}

async fn with_fault(spec: FaultSpec, endpoint: Endpoint) -> RunningSim {
    let (mut config, _clock) = SimConfig::for_tests(21, 20);
    config.faults =
        FaultConfig { endpoints: [(endpoint, spec)].into_iter().collect(), hang_secs: 30, ..FaultConfig::default() };
    Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

#[tokio::test]
async fn faults_produce_the_configured_failures() {
    let one = |f: fn(&mut FaultSpec)| {
        let mut s = FaultSpec::default();
        f(&mut s);
        s
    };
    // 429 on the feed, as Google's HTML page.
    let running = with_fault(one(|s| s.rate_429 = 1.0), Endpoint::Feed).await;
    let ch = running.sim.channels()[0].id.to_string();
    let (status, body) = text(&format!("{}/feeds/videos.xml?channel_id={ch}", running.base_url)).await;
    assert_eq!((status, body.contains("Error 429")), (429, true));

    // Feed outage: a valid channel's feed answers 404.
    let running = with_fault(one(|s| s.rate_outage = 1.0), Endpoint::Feed).await;
    assert_eq!(text(&format!("{}/feeds/videos.xml?channel_id={ch}", running.base_url)).await.0, 404);

    let id = some_video(&running.sim, Duration::zero());
    // Bot check on the player.
    let running = with_fault(one(|s| s.rate_bot_check = 1.0), Endpoint::Player).await;
    let p = player(&running.base_url, id.as_str()).await;
    assert_eq!(p["playabilityStatus"]["status"], "LOGIN_REQUIRED");
    assert_eq!(p["playabilityStatus"]["reason"], "Sign in to confirm you’re not a bot");
    assert!(p.get("videoDetails").is_none());

    // Wrong video on the watch page.
    let running = with_fault(one(|s| s.rate_wrong_video = 1.0), Endpoint::Watch).await;
    let p = player_from_page(&text(&format!("{}/watch?v={id}", running.base_url)).await.1);
    assert_ne!(p["videoDetails"]["videoId"].as_str().unwrap(), id.as_str());

    // Consent redirect.
    let running = with_fault(one(|s| s.rate_consent = 1.0), Endpoint::Watch).await;
    let r = client().get(format!("{}/watch?v={id}", running.base_url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("/m?continue="), "{location}");
    assert!(text(&location).await.1.contains("Before you continue to YouTube"));

    // Truncated body: the JSON does not parse.
    let running = with_fault(one(|s| s.rate_truncate = 1.0), Endpoint::Player).await;
    let r = client()
        .post(format!("{}/youtubei/v1/player", running.base_url))
        .json(&json!({"videoId": id}))
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&body).is_err() && !body.is_empty());

    // 503 on the Data API, as Google's JSON error.
    let running = with_fault(one(|s| s.rate_503 = 1.0), Endpoint::DataApi).await;
    let r = client()
        .get(format!("{}/youtube/v3/videos?part=snippet&id={id}&key=k", running.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], 503);

    // A hang: the client's timeout fires.
    let running = with_fault(one(|s| s.rate_hang = 1.0), Endpoint::Thumbnail).await;
    let r = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .unwrap()
        .get(format!("{}/vi/{id}/default.jpg", running.base_url))
        .send()
        .await;
    assert!(r.unwrap_err().is_timeout());
    running.shutdown().await;

    // Latency, and a 50% rate that is deterministic: the same requests meet the same faults.
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let running = with_fault(
            FaultSpec { rate_500: 0.5, latency_min_ms: 20, latency_max_ms: 30, ..FaultSpec::default() },
            Endpoint::Feed,
        )
        .await;
        let started = std::time::Instant::now();
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(text(&format!("{}/feeds/videos.xml?channel_id={ch}", running.base_url)).await.0);
        }
        assert!(started.elapsed() >= std::time::Duration::from_millis(400));
        assert!(statuses.contains(&500) && statuses.contains(&200));
        outcomes.push(statuses);
    }
    assert_eq!(outcomes[0], outcomes[1]);
}

#[tokio::test]
async fn faults_can_be_set_through_the_control_api() {
    let (running, _clock) = start(22, 10).await;
    let ch = running.sim.channels()[0].id.to_string();
    let config = json!({"endpoints": {"feed": {"rate_500": 1.0}}});
    let r = client().put(format!("{}/_sim/faults", running.base_url)).json(&config).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(text(&format!("{}/feeds/videos.xml?channel_id={ch}", running.base_url)).await.0, 500);
    let stats: Value =
        client().get(format!("{}/_sim/stats", running.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["endpoints"]["feed"]["faults"], 1);
}

const REDIRECT: &str = "http://127.0.0.1:9/callback";

async fn authorize(base: &str, challenge: &str) -> String {
    let r = client()
        .get(format!("{base}/o/oauth2/v2/auth"))
        .query(&[
            ("client_id", "tw-client"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "https://www.googleapis.com/auth/youtube.force-ssl"),
            ("state", "xyz"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("access_type", "offline"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT));
    let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "xyz");
    pairs["code"].clone()
}

async fn exchange(base: &str, code: &str, verifier: &str) -> reqwest::Response {
    client()
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("client_id", "tw-client"),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap()
}

/// Runs the whole OAuth dance and returns an access token.
async fn access_token(base: &str) -> String {
    // RFC 7636 appendix B's verifier and challenge.
    let code = authorize(base, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").await;
    let r = exchange(base, &code, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").await;
    assert_eq!(r.status().as_u16(), 200);
    r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn oauth_pkce_refresh_and_revoke() {
    let (running, clock) = start(30, 10).await;
    let base = &running.base_url;
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let code = authorize(base, challenge).await;
    let r = exchange(base, &code, "not-the-verifier-that-made-the-challenge").await;
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // The code is spent even though the exchange failed.
    let r = exchange(base, &code, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").await;
    assert_eq!(r.status().as_u16(), 400);

    let code = authorize(base, challenge).await;
    let tokens: Value =
        exchange(base, &code, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").await.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3599);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let id = some_video(&running.sim, Duration::zero());
    let update = |token: String| {
        let id = id.clone();
        let base = base.clone();
        async move {
            client()
                .put(format!("{base}/youtube/v3/videos?part=snippet"))
                .bearer_auth(token)
                .json(&json!({"id": id, "snippet": {"title": "A brand new title", "categoryId": "27"}}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(update(access.to_owned()).await, 200);
    // The access token expires on the virtual clock.
    clock.advance(Duration::hours(2));
    assert_eq!(update(access.to_owned()).await, 401);
    let refreshed: Value = client()
        .post(format!("{base}/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "tw-client")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(refreshed.get("refresh_token").is_none());
    let fresh = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(update(fresh.clone()).await, 200);
    let r = client().post(format!("{base}/revoke")).form(&[("token", refresh)]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(update(fresh).await, 401, "revoking the refresh token revokes its access tokens");
    let truth = running.sim.video(&id).unwrap();
    assert_eq!(truth.title, "A brand new title");
    assert!(
        truth
            .changes
            .iter()
            .any(|c| c.source == tubewatch_sim::ChangeSource::Api && c.title.as_deref() == Some("A brand new title"))
    );
}

fn png(seed: u8) -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(1280, 720, |x, y| image::Rgb([(x as u8).wrapping_add(seed), (y as u8) ^ seed, seed]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn thumbnails_set_validates_and_goes_live_with_its_multiplier() {
    let (running, clock) = start(31, 10).await;
    let base = &running.base_url;
    let token = access_token(base).await;
    let id = some_video(&running.sim, Duration::zero());
    let set = |body: Vec<u8>, token: Option<String>| {
        let url = format!("{base}/upload/youtube/v3/thumbnails/set?videoId={id}");
        async move {
            let mut req = client().post(url).header("content-type", "image/png").body(body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = set(b"this is not an image".to_vec(), Some(token.clone())).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["errors"][0]["reason"], "invalidImage");
    let (status, body) = set(Vec::new(), Some(token.clone())).await;
    assert_eq!((status, body["error"]["errors"][0]["reason"].as_str()), (400, Some("mediaBodyRequired")));
    assert_eq!(set(png(1), None).await.0, 401);

    let url = format!("{base}/vi/{id}/mqdefault.jpg");
    let before = client().get(&url).send().await.unwrap().bytes().await.unwrap();
    let image = png(7);
    let variant = tubewatch_sim::thumbnail_variant_id(&image);
    running.sim.set_multiplier(id.as_str(), VariantKind::Thumbnail, &variant, 1.8).unwrap();
    let views_before = running.sim.views_at(&id, running.sim.now()).unwrap();
    let (status, body) = set(image, Some(token.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "youtube#thumbnailSetResponse");
    let after = client().get(&url).send().await.unwrap().bytes().await.unwrap();
    assert_ne!(before, after);
    let truth = running.sim.video(&id).unwrap();
    assert_eq!(truth.thumbnail_variant, variant);
    assert_eq!(truth.thumbnail_multiplier, 1.8);
    assert_eq!(truth.views, views_before, "a change does not rewrite views already counted");
    clock.advance(Duration::hours(1));
    assert!(running.sim.views_at(&id, running.sim.now()).unwrap() >= views_before);
    // 50 units per set (the rejected attempts cost too: 3 × 50 after authentication).
    assert_eq!(running.sim.quota_used("oauth:tw-client"), 150);
}

#[tokio::test]
async fn data_api_quota_and_errors() {
    let (mut config, _clock) = SimConfig::for_tests(32, 10);
    config.quota_per_day = 3;
    config.oauth.api_keys = vec!["good-key".to_owned()];
    let running = Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = &running.base_url;
    let ch = running.sim.channels()[2].clone();
    let r: Value = client()
        .get(format!("{base}/youtube/v3/channels?part=contentDetails&forHandle={}&key=good-key", ch.handle))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["items"][0]["id"], ch.id.as_str());
    assert_eq!(r["items"][0]["contentDetails"]["relatedPlaylists"]["uploads"], ch.id.uploads_playlist());
    let r = client()
        .get(format!("{base}/youtube/v3/channels?part=contentDetails&id={}&key=bad", ch.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let ids: Vec<String> = (0..51).map(|i| format!("AAAAAAAAA{:02}", i % 10)).collect();
    let r = client()
        .get(format!("{base}/youtube/v3/videos?part=snippet&id={}&key=good-key", ids.join(",")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = client().get(format!("{base}/youtube/v3/videos?part=snippet&id=x&key=good-key")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = client().get(format!("{base}/youtube/v3/videos?part=snippet&id=x&key=good-key")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["reason"], "quotaExceeded");
}

#[tokio::test]
async fn control_api_time_and_truth() {
    let (running, _clock) = start(33, 30).await;
    let base = &running.base_url;
    let t0: Value = client().get(format!("{base}/_sim/time")).send().await.unwrap().json().await.unwrap();
    let t1: Value = client()
        .post(format!("{base}/_sim/time"))
        .json(&json!({"advance_secs": 3600}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parse = |v: &Value| v["now"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    assert_eq!(parse(&t1) - parse(&t0), Duration::hours(1));
    let channels: Value =
        client().get(format!("{base}/_sim/channels?limit=5")).send().await.unwrap().json().await.unwrap();
    assert_eq!(channels["total"], 30);
    assert_eq!(channels["channels"].as_array().unwrap().len(), 5);
    let id = some_video(&running.sim, Duration::hours(30));
    let series: Value = client()
        .get(format!("{base}/_sim/videos/{id}/views?step_secs=3600"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let points = series["points"].as_array().unwrap();
    assert!(points.len() > 24);
    assert!(points.windows(2).all(|w| w[0]["views"].as_u64() <= w[1]["views"].as_u64()));
    let r = client()
        .post(format!("{base}/_sim/multipliers"))
        .json(&json!({"video_id": id, "kind": "title", "variant": "c0", "multiplier": 2.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(running.sim.video(&id).unwrap().title_multiplier, 2.5);
    let breakouts: Value = client()
        .get(format!("{base}/_sim/breakouts?since=2025-01-01T00:00:00Z"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for b in breakouts["videos"].as_array().unwrap() {
        let f = b["breakout"].as_f64().unwrap();
        assert!((5.0..=20.0).contains(&f));
    }
}

async fn gunzipped(response: reqwest::Response) -> Vec<u8> {
    use std::io::Read;
    let body = response.bytes().await.unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).unwrap();
    out
}

#[tokio::test]
async fn pages_feeds_and_player_json_are_gzipped_when_the_client_accepts_it() {
    let (running, _clock) = start(11, 20).await;
    let base = &running.base_url;
    let id = some_video(&running.sim, Duration::hours(2));
    let channel = running.sim.channels()[0].id.to_string();
    let watch = format!("{base}/watch?v={id}");
    let feed = format!("{base}/feeds/videos.xml?channel_id={channel}");
    for url in [&watch, &feed] {
        let plain = client().get(url).send().await.unwrap();
        assert!(plain.headers().get("content-encoding").is_none(), "{url}: identity unless asked");
        let plain = plain.bytes().await.unwrap();
        let zipped = client().get(url).header("accept-encoding", "gzip, deflate, br").send().await.unwrap();
        assert_eq!(zipped.headers()["content-encoding"], "gzip", "{url}");
        assert!(zipped.headers().get_all("vary").iter().any(|v| v == "Accept-Encoding"), "{url}");
        let raw_len = zipped.content_length();
        let body = gunzipped(zipped).await;
        assert_eq!(body, plain.to_vec(), "{url}: the same document, compressed");
        assert!(raw_len.is_none_or(|n| (n as usize) < body.len() / 2), "{url}: compressed to less than half");
    }
    let request =
        json!({"context": {"client": {"clientName": "WEB", "clientVersion": "2.20260123.01.00"}}, "videoId": id});
    let zipped = client()
        .post(format!("{base}/youtubei/v1/player?prettyPrint=false"))
        .header("accept-encoding", "gzip")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let json: Value = serde_json::from_slice(&gunzipped(zipped).await).unwrap();
    assert_eq!(json, player(base, id.as_str()).await);
}

#[tokio::test]
async fn player_fields_mask_keeps_only_the_named_fields() {
    let (running, _clock) = start(12, 20).await;
    let base = &running.base_url;
    let id = some_video(&running.sim, Duration::hours(2));
    let full = player(base, id.as_str()).await;
    let request =
        json!({"context": {"client": {"clientName": "WEB", "clientVersion": "2.20260123.01.00"}}, "videoId": id});
    let url = format!("{base}/youtubei/v1/player?prettyPrint=false&$fields={}", tubewatch_youtube::PLAYER_CHECK_FIELDS);
    let cut: Value = client().post(&url).json(&request).send().await.unwrap().json().await.unwrap();
    assert_eq!(cut["videoDetails"]["viewCount"], full["videoDetails"]["viewCount"]);
    assert_eq!(cut["videoDetails"]["title"], full["videoDetails"]["title"]);
    assert_eq!(cut["playabilityStatus"], json!({"status": "OK"}));
    assert!(cut.get("responseContext").is_none() && cut["videoDetails"].get("keywords").is_none());
    assert!(cut.to_string().len() * 4 < full.to_string().len(), "a fraction of the full response");
    // The parser reads the cut response as it reads the full one.
    let video = id.clone();
    let info = tubewatch_youtube::parse_player_response(cut.to_string().as_bytes(), Some(&video)).unwrap();
    assert_eq!(info.views.to_string(), full["videoDetails"]["viewCount"].as_str().unwrap());
    let bad = client().post(format!("{base}/youtubei/v1/player?$fields=a,,b")).json(&request).send().await.unwrap();
    assert_eq!(bad.status(), 400);
}
