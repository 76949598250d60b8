//! The real YouTube client (`tubewatch-youtube`) parses every simulator endpoint over HTTP:
//! feed, watch page, player, thumbnails, resolve_url, Data API, OAuth — and recognises the
//! injected failures (bot check, wrong video).
#![allow(clippy::unwrap_used)]

use chrono::Duration;
use tubewatch_core::{ChannelId, ChannelRef};
use tubewatch_sim::{Endpoint, FaultConfig, FaultSpec, SimConfig, Simulator};
use tubewatch_youtube::thumbnail::ThumbnailSize;
use tubewatch_youtube::{ApiAuth, ErrorKind, OAuthConfig, SCOPE_YOUTUBE_FORCE_SSL, YoutubeClient, YoutubeConfig};

fn client(base: &str) -> YoutubeClient {
    let mut config = YoutubeConfig::single_base(base).unwrap();
    config.api_key = Some("sim-key".to_owned());
    config.retry.max_attempts = 1;
    YoutubeClient::new(config).unwrap()
}

#[tokio::test]
async fn the_client_parses_every_simulator_endpoint() {
    let (config, clock) = SimConfig::for_tests(40, 30);
    clock.advance(Duration::hours(2));
    let running = Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let sim = running.sim.clone();
    let yt = client(&running.base_url);
    let channel = sim.channels().iter().find(|c| c.long_every_hours.is_some()).unwrap().clone();

    let feed = yt.channel_feed(&channel.id).await.unwrap();
    assert_eq!(feed.channel_id.as_ref(), Some(&channel.id));
    assert_eq!(feed.entries.len(), 15);
    let newest = &feed.entries[0];
    let truth = sim.video(&newest.video_id).unwrap();
    assert_eq!(newest.views, Some(truth.views));
    assert_eq!(newest.title, truth.title);
    assert_eq!(newest.published, truth.published);
    assert_eq!(newest.is_short, truth.is_short);

    // Each upload stream's feed: that kind's newest videos, newest first, whatever the other
    // kind's pace; a channel that does not exist has none.
    for shorts in [false, true] {
        let stream = yt.stream_feed(&channel.id, shorts).await.unwrap();
        assert_eq!(stream.channel_id.as_ref(), Some(&channel.id));
        assert!(stream.entries.windows(2).all(|w| w[0].published >= w[1].published));
        for e in &stream.entries {
            let truth = sim.video(&e.video_id).unwrap();
            assert_eq!((e.is_short, truth.is_short, e.views), (shorts, shorts, Some(truth.views)));
        }
        if !shorts {
            assert_eq!(stream.entries.len(), 15);
        }
    }
    let nobody = ChannelId::parse("UCxxxxxxxxxxxxxxxxxxxxxx").unwrap();
    assert_eq!(yt.stream_feed(&nobody, false).await.unwrap_err().kind(), ErrorKind::NotFound);

    let id = &newest.video_id;
    let watch = yt.watch_page(id).await.unwrap();
    assert_eq!((&watch.video_id, watch.views, &watch.title), (id, truth.views, &truth.title));
    let player = yt.player(id).await.unwrap();
    assert_eq!(player.views, truth.views);
    assert_eq!(player.channel_id.as_ref(), Some(&channel.id));

    let thumb = yt.thumbnail(id, ThumbnailSize::Default).await.unwrap();
    assert_eq!((thumb.hashes.width, thumb.hashes.height), (120, 90));

    let resolved = yt.resolve_channel(&ChannelRef::Handle(channel.handle.clone())).await.unwrap();
    assert_eq!(resolved, channel.id);
    let key = ApiAuth::Key("sim-key".to_owned());
    let listed = yt.videos_list(&key, std::slice::from_ref(id)).await.unwrap();
    assert_eq!(listed[0].views, Some(truth.views));
    let api_channel = yt.channel_by_handle(&key, &channel.handle).await.unwrap();
    assert_eq!(api_channel.uploads_playlist, Some(channel.id.uploads_playlist()));
    // Each stream's uploads through playlistItems.list: the feed's 15 first, then older ones, up
    // to 50; a channel that does not exist has no playlist.
    for shorts in [false, true] {
        let uploads = yt.stream_uploads(&key, &channel.id, shorts, 50).await.unwrap();
        let feed = yt.stream_feed(&channel.id, shorts).await.unwrap();
        let ids: Vec<_> = feed.entries.iter().map(|e| e.video_id.clone()).collect();
        assert_eq!(uploads[..ids.len()], ids[..]);
        assert!(uploads.len() <= 50);
        let truth: Vec<_> = uploads.iter().map(|id| sim.video(id).unwrap()).collect();
        assert!(truth.iter().all(|v| v.is_short == shorts && v.channel_id == channel.id));
        assert!(truth.windows(2).all(|w| w[0].published >= w[1].published));
        if !shorts {
            assert_eq!(uploads.len(), 50);
        }
    }
    assert_eq!(yt.stream_uploads(&key, &nobody, false, 50).await.unwrap_err().kind(), ErrorKind::NotFound);

    // OAuth with PKCE, then the two writes an A/B test makes.
    let oauth = yt
        .oauth(&OAuthConfig {
            client_id: "tubewatch-test".to_owned(),
            client_secret: None,
            redirect_uri: "http://127.0.0.1:9/oauth/callback".to_owned(),
            scopes: vec![SCOPE_YOUTUBE_FORCE_SSL.to_owned()],
        })
        .unwrap();
    let request = oauth.authorize_url();
    let consent = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&request.url)
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], request.state);
    let tokens = oauth.exchange_code(&pairs["code"], &request.pkce_verifier).await.unwrap();
    let refreshed = oauth.refresh(tokens.refresh_token.as_deref().unwrap()).await.unwrap();
    let thumb_before = yt.thumbnail(id, ThumbnailSize::Default).await.unwrap();
    let png = {
        let img = image::RgbImage::from_fn(1280, 720, |x, y| image::Rgb([(x / 5) as u8, (y / 3) as u8, 200]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    yt.set_thumbnail(&refreshed.access_token, id, &png).await.unwrap();
    let thumb_after = yt.thumbnail(id, ThumbnailSize::Default).await.unwrap();
    assert_ne!(thumb_before.hashes.sha256, thumb_after.hashes.sha256);
    assert!(thumb_before.hashes.phash.distance(&thumb_after.hashes.phash) > 0);
    yt.update_video_title(&refreshed.access_token, id, "Simulated A/B title").await.unwrap();
    assert_eq!(yt.player(id).await.unwrap().title, "Simulated A/B title");
    let truth = sim.video(id).unwrap();
    assert_eq!(truth.changes.len(), 2);
    oauth.revoke(tokens.refresh_token.as_deref().unwrap()).await.unwrap();
}

#[tokio::test]
async fn the_client_recognises_injected_failures() {
    let (mut config, _clock) = SimConfig::for_tests(41, 10);
    let bot = FaultSpec { rate_bot_check: 1.0, ..FaultSpec::default() };
    let wrong = FaultSpec { rate_wrong_video: 1.0, ..FaultSpec::default() };
    config.faults = FaultConfig {
        endpoints: [(Endpoint::Player, bot), (Endpoint::Watch, wrong)].into_iter().collect(),
        ..FaultConfig::default()
    };
    let running = Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let yt = client(&running.base_url);
    let now = running.sim.now();
    let c = &running.sim.channels()[0];
    let id = running.sim.channel_videos(&c.id, now - Duration::days(90), now).unwrap()[0].id.clone();
    assert_eq!(yt.player(&id).await.unwrap_err().kind(), ErrorKind::BotCheck);
    assert_eq!(yt.watch_page(&id).await.unwrap_err().kind(), ErrorKind::WrongVideo);
}
