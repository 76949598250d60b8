//! What the web UI and A/B API test files share beyond `common`: the server with the A/B test engine
//! configured against the simulator's Google, premium users, test pictures, and a channel's
//! typical band and an outlier stored the way the weekly run stores them (a band computed by core
//! from the channel's real measured series, written with `complete_outlier_run` under the
//! channel's weekly-run lease).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::Duration;
use tubewatch_core::outliers::{BandConfig, ChannelBandSnapshot, VideoViews, ViewsPoint};
use tubewatch_core::{ChannelId, Clock, Email, VideoId};
use tubewatch_sim::{RunningSim, SimConfig, Simulator};
use tubewatch_store::{BandSnapshotRecord, NewOutlier, OutlierKind, Plan, Store, StoreOptions, TargetKind, connect};
use tubewatch_web::api::abtests::AbTestsWeb;
use tubewatch_web::{AppState, WebConfig, router};
use tubewatch_worker::abtest::{AbTestServices, AbTests};
use tubewatch_worker::token_crypto::TokenKeyring;
use tubewatch_worker::{Blobs, Mailer, Metrics, PipelineConfig, Tracker, Webhooks};
use tubewatch_youtube::{AB_TEST_SCOPES, OAuthConfig, RetryPolicy, YoutubeClient, YoutubeConfig};

use crate::common::TestApp;

const KEY: &str = "8f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
const CLIENT_ID: &str = "tubewatch-ui-test";

/// The server with A/B tests configured (its OAuth redirect is its own callback), and the channel
/// the simulated Google account owns.
pub async fn spawn_ab_app(channels: u32) -> (TestApp, ChannelId) {
    spawn_ab_app_with_webhooks(channels, &[]).await
}

/// The same, with webhooks allowed to `webhook_hosts` (none: webhooks off).
pub async fn spawn_ab_app_with_webhooks(channels: u32, webhook_hosts: &[String]) -> (TestApp, ChannelId) {
    spawn_ab_app_asking(channels, webhook_hosts, &AB_TEST_SCOPES).await
}

/// The same, with the OAuth app asking for `scopes` (the simulated user grants what is asked).
pub async fn spawn_ab_app_asking(channels: u32, webhook_hosts: &[String], scopes: &[&str]) -> (TestApp, ChannelId) {
    let (mut config, clock) = SimConfig::for_tests(11, channels);
    config.oauth.client_id = Some(CLIENT_ID.into());
    let owned = Simulator::new(config.clone()).channels()[0].id.clone();
    config.oauth.user_channels = vec![owned.clone()];
    let sim: RunningSim = Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        connect(&format!("sqlite://{}/tw.db", dir.path().display()), &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut yt = YoutubeConfig::single_base(&sim.base_url).unwrap();
    yt.retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    let youtube = YoutubeClient::new(yt).unwrap();
    let oauth = youtube
        .oauth(&OAuthConfig {
            client_id: CLIENT_ID.into(),
            client_secret: None,
            redirect_uri: format!("{base}/oauth/google/callback"),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        })
        .unwrap();
    let keyring = TokenKeyring::from_hex("k1", &[("k1".into(), KEY.into())]).unwrap();
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let blobs = Blobs::local(&dir.path().join("blobs")).unwrap();
    let engine = AbTests {
        store: store.clone(),
        youtube: youtube.clone(),
        blobs: blobs.clone(),
        clock: clock_dyn.clone(),
        services: AbTestServices::new(oauth, keyring.clone()),
    };
    let mailer = Mailer::outbox("tubewatch <tubewatch@localhost>", &dir.path().join("outbox")).unwrap();
    let config = PipelineConfig { mailer, ..PipelineConfig::default() };
    let tracker = Tracker { store: store.clone(), youtube, clock: clock_dyn.clone(), config };
    let state = AppState {
        store: store.clone(),
        clock: clock_dyn,
        metrics: Arc::new(Metrics::default()),
        tracker,
        blobs: blobs.clone(),
        config: Arc::new(WebConfig::default()),
        abtests: Some(AbTestsWeb::new(engine)),
        webhooks: (!webhook_hosts.is_empty())
            .then(|| Webhooks::new(webhook_hosts, keyring, std::time::Duration::from_secs(5)).unwrap()),
        series_cache: Default::default(),
    };
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (TestApp { base, store, clock, sim, blobs, dir }, owned)
}

/// Puts a signed-up user on the premium plan.
pub async fn make_premium(app: &TestApp, email: &str) {
    let user = app.store.user_by_email(&Email::parse(email).unwrap()).await.unwrap().unwrap();
    app.store.change_plan(user.id, Plan::Premium, None, "test", app.clock.now()).await.unwrap();
}

/// A 1280×720 picture, different per `look`.
pub fn picture(look: u8, format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(1280, 720, |x, y| {
        let band = ((x / 160 + y / 180 + u32::from(look)) % 4) as u8;
        image::Rgb([look.wrapping_mul(70).wrapping_add(band * 40), (x / 6) as u8, 255 - (y / 3) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// What `store_weekly_run` wrote.
pub struct StoredRun {
    pub week: String,
    pub outlier_video: VideoId,
    pub explanation: String,
    pub band_points: usize,
}

/// Stores the channel's typical band (core's snapshot of the channel's measured series, needing
/// `min_videos` videos at an age) and one channel outlier (its most viewed video) for `week`, as
/// the weekly run does: under the lease of the channel's weekly-run target, which stays due when
/// it was.
pub async fn store_weekly_run(app: &TestApp, channel: &ChannelId, week: &str, min_videos: usize) -> StoredRun {
    let store = &app.store;
    let now = app.clock.now();
    let series = store.channel_series(channel, now - Duration::days(120)).await.unwrap();
    let videos: Vec<VideoViews> = series
        .iter()
        .map(|s| VideoViews {
            video_id: s.video.id.clone(),
            published: s.video.published_at,
            is_short: s.video.is_short,
            points: s.views.iter().map(|r| ViewsPoint { at: r.measured_at, views: r.views }).collect(),
        })
        .collect();
    let config = BandConfig { min_videos, ..BandConfig::default() };
    let snapshot = ChannelBandSnapshot::from_history(config, &videos).unwrap();
    let band_points = snapshot.band(false).points.len() + snapshot.band(true).points.len();
    let top = series
        .iter()
        .filter(|s| !s.views.is_empty())
        .max_by_key(|s| s.views.last().unwrap().views)
        .expect("a measured video");
    let views = top.views.last().unwrap().views;
    let explanation = format!("3.4× this channel's typical views at {} hours", top.views.len());
    let outlier = NewOutlier {
        video_id: top.video.id.clone(),
        channel_id: channel.clone(),
        kind: OutlierKind::Channel,
        week: week.to_owned(),
        score: 3.4,
        lift: None,
        ci_low: None,
        ci_high: None,
        age_hours: Some(top.views.len() as f64),
        views,
        changed_at: None,
        thumb_key: top.video.thumb.as_ref().and_then(|t| t.blob_key.clone()),
        explanation: explanation.clone(),
        found_at: now,
    };
    let target = store.ensure_target(TargetKind::Outliers, channel.as_str(), now, now).await.unwrap();
    let due = target.next_due_at.max(now);
    let claimed = store.claim_due("ui-test-outliers", due, Duration::minutes(10), 100_000).await.unwrap();
    let mut lease = None;
    for t in claimed {
        if t.id == target.id {
            lease = t.lease();
        } else {
            store.release(&t.lease().unwrap()).await.unwrap();
        }
    }
    let lease = lease.expect("the channel's weekly-run target was claimed");
    let record = BandSnapshotRecord {
        channel_id: channel.clone(),
        snapshot_json: serde_json::to_string(&snapshot).unwrap(),
        applied_through: now,
        updated_at: now,
    };
    store.complete_outlier_run(&lease, &record, &[outlier], due).await.unwrap();
    StoredRun { week: week.to_owned(), outlier_video: top.video.id.clone(), explanation, band_points }
}
