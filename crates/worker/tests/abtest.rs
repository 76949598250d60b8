//! A/B tests end to end over real HTTP against the simulator, on a stepped virtual clock:
//! connecting an account (OAuth with PKCE, tokens sealed in the database), creating a test from
//! uploaded images, the swaps going live at the scheduled times (the simulator's truth), the
//! wrap-up applying the winner and mailing the result; refreshed and revoked grants, quota
//! exhaustion mid-test, rejected uploads and videos the user does not own; the owner's daily
//! reach (waiting for the first report, then the simulator's truth; not granted; revoked; cut
//! downloads retried with nothing lost).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, Timelike};
use tubewatch_core::{ChannelId, Clock, Email, ManualClock, Slot, UserId, VideoId};
use tubewatch_sim::{
    ChangeSource, Endpoint, FaultConfig, FaultSpec, SimConfig, Simulator, VariantKind, pacific_day,
    thumbnail_variant_id, title_variant_id,
};
use tubewatch_store::{
    AbDesign, AbTestDetail, AbTestId, AbTestState, ConnectionState, FinalAction, NewChannel, NewUser, NewVideo, Plan,
    ReachState, Store, StoreOptions, TargetKind, ViewsRecord, connect,
};
use tubewatch_worker::abtest::{AbTestError, AbTestServices, AbTests, CreateAbTest, UploadLimits};
use tubewatch_worker::token_crypto::{TokenKeyring, TokenPurpose};
use tubewatch_worker::{Blobs, Mailer, Metrics, Pipeline, PipelineConfig};
use tubewatch_youtube::{
    AB_TEST_SCOPES, OAuthConfig, RetryPolicy, SCOPE_YOUTUBE_FORCE_SSL, YoutubeClient, YoutubeConfig,
};

const KEY: &str = "8f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
const CLIENT_ID: &str = "tubewatch-test";

struct World {
    sim: tubewatch_sim::RunningSim,
    clock: Arc<ManualClock>,
    pipeline: Pipeline,
    ab: AbTests,
    db_path: PathBuf,
    outbox: PathBuf,
    owned: ChannelId,
    other: ChannelId,
    _dir: tempfile::TempDir,
}

/// The OAuth app as tubewatch configures it: swaps and reach.
async fn world(seed: u64, quota_per_day: u64) -> World {
    world_asking(seed, quota_per_day, &AB_TEST_SCOPES).await
}

fn oauth_config(scopes: &[&str]) -> OAuthConfig {
    OAuthConfig {
        client_id: CLIENT_ID.into(),
        client_secret: None,
        redirect_uri: "http://127.0.0.1:9/oauth/google/callback".into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// A world whose OAuth app asks for `scopes` (the simulated user grants what is asked).
async fn world_asking(seed: u64, quota_per_day: u64, scopes: &[&str]) -> World {
    let (mut config, clock) = SimConfig::for_tests(seed, 12);
    // No creator edits during the test: any change the truth shows is ours.
    config.world.creator_thumbnail_change_rate = 0.0;
    config.world.creator_title_change_rate = 0.0;
    config.quota_per_day = quota_per_day;
    config.oauth.client_id = Some(CLIENT_ID.into());
    // The user's channel is the busiest one: the analysis needs traffic to say anything.
    let mut channels = Simulator::new(config.clone()).channels().to_vec();
    channels.sort_by(|a, b| b.typical_long_views.total_cmp(&a.typical_long_views));
    let channels: Vec<ChannelId> = channels.into_iter().map(|c| c.id).collect();
    // The simulated Google account owns only the first channel.
    config.oauth.user_channels = vec![channels[0].clone()];
    let sim = Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("tw.db");
    let store: Arc<dyn Store> =
        connect(&format!("sqlite://{}", db_path.display()), &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let mut yt = YoutubeConfig::single_base(&sim.base_url).unwrap();
    yt.retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    let youtube = YoutubeClient::new(yt).unwrap();
    let oauth = youtube.oauth(&oauth_config(scopes)).unwrap();
    let keyring = TokenKeyring::from_hex("k1", &[("k1".into(), KEY.into())]).unwrap();
    let outbox = dir.path().join("outbox");
    let services = AbTestServices::new(oauth, keyring);
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let blobs = Blobs::local(&dir.path().join("blobs")).unwrap();
    let config = PipelineConfig {
        abtests: Some(services.clone()),
        mailer: Mailer::outbox("tubewatch <tw@example.com>", &outbox).unwrap(),
        ..PipelineConfig::default()
    };
    let pipeline = Pipeline {
        store: store.clone(),
        youtube: youtube.clone(),
        blobs: blobs.clone(),
        clock: clock_dyn.clone(),
        metrics: Arc::new(Metrics::default()),
        writer: Default::default(),
        config,
    };
    let ab = AbTests { store, youtube, blobs, clock: clock_dyn, services };
    World {
        sim,
        clock,
        pipeline,
        ab,
        db_path,
        outbox,
        owned: channels[0].clone(),
        other: channels[1].clone(),
        _dir: dir,
    }
}

impl World {
    async fn user(&self, name: &str) -> UserId {
        let new = NewUser {
            email: Email::parse(&format!("{name}@example.com")).unwrap(),
            password_hash: "$argon2id$x".into(),
            plan: Plan::Premium,
            is_admin: false,
            email_verified: true,
        };
        self.ab.store.create_user(&new, self.clock.now()).await.unwrap().id
    }

    /// The OAuth dance as a browser makes it: follow the consent URL (the simulated user
    /// consents at once), check `state`, hand the code and the PKCE verifier back.
    async fn connect(&self, user: UserId, channel: &ChannelId) {
        let request = self.ab.start_connect();
        assert!(request.url.contains("code_challenge_method=S256"), "PKCE is used");
        let consent = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(&request.url)
            .send()
            .await
            .unwrap();
        let location = url::Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
        assert_eq!(location.path(), "/oauth/google/callback");
        let pairs: HashMap<_, _> = location.query_pairs().into_owned().collect();
        assert_eq!(pairs["state"], request.state);
        let conn = self.ab.finish_connect(user, channel, &pairs["code"], &request.pkce_verifier).await.unwrap();
        assert_eq!((conn.state, &conn.channel_id), (ConnectionState::Active, channel));
    }

    /// The busiest video of a channel published 2–60 days ago (long-form first).
    fn video_of(&self, channel: &ChannelId) -> VideoId {
        let now = self.clock.now();
        let mut videos =
            self.sim.sim.channel_videos(channel, now - Duration::days(60), now - Duration::days(2)).unwrap();
        videos.sort_by_key(|v| (v.is_short, std::cmp::Reverse(v.views)));
        videos.first().expect("a video").id.clone()
    }

    /// Steps the clock to 30 s past each whole hour and runs what is due.
    async fn run_hours(&self, hours: i64) {
        for _ in 0..hours {
            let at = Slot::hour_of(self.clock.now()).start() + Duration::hours(1) + Duration::seconds(30);
            self.clock.set(at);
            self.pipeline.drain("test-worker", StdDuration::from_secs(60), 8).await.unwrap();
        }
    }

    async fn detail(&self, id: AbTestId) -> AbTestDetail {
        self.ab.store.abtest(id).await.unwrap().unwrap()
    }

    async fn variant_bytes(&self, detail: &AbTestDetail, v: usize) -> Vec<u8> {
        let key = detail.variants[v].thumb_blob_key.as_ref().unwrap();
        self.ab.blobs.get(key).await.unwrap().unwrap().to_vec()
    }

    fn db_bytes(&self) -> Vec<u8> {
        let mut all = std::fs::read(&self.db_path).unwrap();
        let wal = self.db_path.with_extension("db-wal");
        if let Ok(more) = std::fs::read(wal) {
            all.extend(more);
        }
        all
    }
}

/// A 1280×720 picture, different per `look`.
fn picture(look: u8, format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(1280, 720, |x, y| {
        let band = ((x / 160 + y / 180 + u32::from(look)) % 4) as u8;
        image::Rgb([look.wrapping_mul(70).wrapping_add(band * 40), (x / 6) as u8, 255 - (y / 3) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_create_swap_on_schedule_and_apply_the_winner() {
    let w = world(21, 10_000).await;
    let ann = w.user("ann").await;
    w.connect(ann, &w.owned).await;

    // Tokens are sealed: the database file holds neither token in clear.
    let conn = w.ab.store.youtube_connection(ann).await.unwrap().unwrap();
    let refresh = w.ab.services.keyring.open(ann, TokenPurpose::Refresh, &conn.refresh).unwrap();
    let access = w.ab.services.keyring.open(ann, TokenPurpose::Access, conn.access.as_ref().unwrap()).unwrap();
    assert!(refresh.starts_with("1//") && access.starts_with("ya29."));
    let db = w.db_bytes();
    assert!(!contains(&db, &refresh) && !contains(&db, &access), "no plaintext token in the database");
    assert!(contains(&db, "youtube_connections"), "the check reads the real database file");

    let video = w.video_of(&w.owned);
    let mut request = CreateAbTest::new(video.clone());
    request.thumbnails = vec![picture(1, image::ImageFormat::Png), picture(2, image::ImageFormat::Jpeg)];
    // Four days on a quiet video (a few views an hour), so B's click-through rate is 2.5× A's:
    // with the simulator's 30 % hour-to-hour noise and intervals on Student's t over eight
    // periods, a smaller lift is not always pinned down in four days.
    request.duration = Duration::days(4);
    request.seed = Some(5);
    let created = w.ab.create(ann, request).await.unwrap();
    let id = created.test.id;
    assert_eq!(created.test.starts_at, Slot::hour_of(w.clock.now()).start() + Duration::hours(1));
    assert_eq!(created.periods.len(), 8);
    let power: serde_json::Value = serde_json::from_str(&created.test.power_json).unwrap();
    assert!(power["estimate"]["min_detectable_lift"].as_f64().unwrap() > 0.0);
    assert!(w.ab.store.target(TargetKind::AbTest, &id.to_string()).await.unwrap().is_some());

    // Variant B truly lifts the view rate by 60 %.
    let mut ids = Vec::new();
    for v in 0..2 {
        ids.push(thumbnail_variant_id(&w.variant_bytes(&created, v).await));
    }
    // Both are set: an uploaded variant otherwise draws its own multiplier from its bytes.
    w.sim.sim.set_multiplier(video.as_str(), VariantKind::Thumbnail, &ids[0], 1.0).unwrap();
    w.sim.sim.set_multiplier(video.as_str(), VariantKind::Thumbnail, &ids[1], 2.5).unwrap();
    let start = w.clock.now();
    // The video was never tracked: the estimate at creation is its lifetime average, made again
    // from the test's own hourly views after its first day.
    assert!(power["basis"].as_str().unwrap().starts_with("lifetime average"), "{power}");
    w.run_hours(26).await;
    let again: serde_json::Value = serde_json::from_str(&w.detail(id).await.test.power_json).unwrap();
    assert!(
        again["basis"].as_str().unwrap().starts_with("hourly views over the test's first day (at creation: lifetime")
    );
    let (before, after) =
        (power["traffic"]["views_per_hour"].as_f64().unwrap(), again["traffic"]["views_per_hour"].as_f64().unwrap());
    assert!(
        after > 0.0 && after < before,
        "a decaying video's rate now is below its lifetime average: {after} vs {before}"
    );
    w.run_hours(72).await;

    let detail = w.detail(id).await;
    assert_eq!(detail.test.state, AbTestState::Finished, "{:?}", detail.test.state_reason);
    // Every swap the truth shows was made by the API at the recorded time, within a minute of
    // its period's start, and the scheduled variant was live through each period.
    let changes: Vec<_> = w
        .sim
        .sim
        .changes(start, w.clock.now(), Some(w.owned.as_str()))
        .unwrap()
        .into_iter()
        .filter(|c| c.video_id == video)
        .collect();
    assert!(changes.iter().all(|c| c.source == ChangeSource::Api && c.kind == VariantKind::Thumbnail));
    let mut swaps = 0;
    for p in &detail.periods {
        assert!(!p.excluded, "period {} excluded: {:?}", p.index, p.outcome);
        let at = p.swapped_at.unwrap();
        assert!(at >= p.start && at - p.start < Duration::minutes(1));
        let live = w.sim.sim.video_at(&video, p.start + Duration::hours(1)).unwrap();
        assert_eq!(live.thumbnail_variant, ids[p.variant as usize], "variant live in period {}", p.index);
        if p.outcome.as_deref() == Some("ok") {
            swaps += 1;
            assert!(changes.iter().any(|c| c.at == at), "the truth shows the swap of period {}", p.index);
        }
    }
    // The swaps (consecutive equal variants need no call) and perhaps the final apply.
    assert!((swaps..=swaps + 1).contains(&changes.len()), "{} changes for {swaps} swaps", changes.len());

    let result: serde_json::Value = serde_json::from_str(detail.test.result_json.as_ref().unwrap()).unwrap();
    assert_eq!(result["analysis"]["verdict"]["verdict"], "winner", "{result}");
    assert_eq!(result["analysis"]["verdict"]["variant"], 1);
    assert_eq!((result["applied_variant"].as_u64(), result["verified"].as_bool()), (Some(1), Some(true)), "{result}");
    let truth = w.sim.sim.video(&video).unwrap();
    assert_eq!(truth.thumbnail_variant, ids[1], "the winner is live");
    assert!(w.ab.store.views(&video).await.unwrap().is_empty(), "the test measured on its own");
    assert!(w.ab.store.abtest_views(id).await.unwrap().len() >= 96, "hourly views during the test");
    // Quota: the creation's read and probe (52), 50 per swap made, 50 for the final apply.
    assert_eq!(detail.test.quota_used, 52 + 50 * i64::try_from(swaps).unwrap() + 50);
    // Today's part matches what the simulated Google project charged today.
    assert!(w.sim.sim.quota_used(&format!("oauth:{CLIENT_ID}")) > 0);
    assert!(detail.test.outside_change.is_none());

    // The result email.
    let mail = std::fs::read_to_string(w.outbox.join(format!("abtest-{id}-result.eml"))).unwrap();
    assert!(mail.contains("To: ann@example.com") && mail.contains("variant B won"), "{mail}");
    assert!(detail.test.notified_at.is_some());
    assert!(w.ab.store.abtests_to_notify(10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_refresh_and_a_revoked_grant_pauses_until_reconnected() {
    let w = world(22, 10_000).await;
    let ann = w.user("ann").await;
    w.connect(ann, &w.owned).await;
    let video = w.video_of(&w.owned);
    let mut request = CreateAbTest::new(video.clone());
    request.titles = vec!["First title to try".into(), "Second title to try".into()];
    request.duration = Duration::days(2);
    request.final_action = FinalAction::RestoreOriginal;
    let created = w.ab.create(ann, request).await.unwrap();
    let original = created.test.original_title.clone().unwrap();
    let original_variant = w.sim.sim.video(&video).unwrap().title_variant;
    let id = created.test.id;
    let before = w.ab.store.youtube_connection(ann).await.unwrap().unwrap();

    // Access tokens last an hour: the next swap refreshes.
    w.run_hours(13).await;
    let after = w.ab.store.youtube_connection(ann).await.unwrap().unwrap();
    assert_ne!(after.access, before.access, "the access token was refreshed");
    assert_eq!(after.refresh, before.refresh);
    assert!(after.access_expires_at > before.access_expires_at);
    let d = w.detail(id).await;
    assert!(d.periods[..2].iter().all(|p| p.swapped_at.is_some()), "{:?}", d.periods);

    // The user revokes access in their Google account: the next swap cannot refresh.
    let refresh = w.ab.services.keyring.open(ann, TokenPurpose::Refresh, &after.refresh).unwrap();
    w.ab.services.oauth.revoke(&refresh).await.unwrap();
    for _ in 0..30 {
        w.run_hours(1).await;
        let state = w.ab.store.youtube_connection(ann).await.unwrap().unwrap().state;
        if state == ConnectionState::Revoked {
            break;
        }
    }
    let conn = w.ab.store.youtube_connection(ann).await.unwrap().unwrap();
    assert_eq!(conn.state, ConnectionState::Revoked);
    assert!(conn.state_reason.as_deref().unwrap().contains("invalid_grant"), "{:?}", conn.state_reason);
    let d = w.detail(id).await;
    assert_eq!(d.test.state, AbTestState::Paused);
    assert!(d.test.state_reason.as_deref().unwrap().contains("refresh"), "the user is told why");
    // The hourly reach read may find the grant revoked before a swap does: go on into the next
    // period, which starts while the test is paused.
    let next_start = d.periods.iter().find(|p| p.start > w.clock.now()).unwrap().start;
    w.run_hours((next_start - w.clock.now()).num_hours() + 1).await;
    let d = w.detail(id).await;
    assert_eq!(d.test.state, AbTestState::Paused);
    let missed = d.periods.iter().find(|p| p.start <= w.clock.now() && w.clock.now() < p.end).unwrap().clone();
    assert!(missed.swapped_at.is_none());
    assert!(matches!(w.ab.access_token(ann, false).await, Err(AbTestError::Revoked(_))));

    // Reconnecting resumes the test; the period missed meanwhile is left out.
    w.connect(ann, &w.owned).await;
    w.run_hours(30).await;
    let d = w.detail(id).await;
    assert_eq!(d.test.state, AbTestState::Finished, "{:?}", d.test.state_reason);
    let missed = &d.periods[missed.index as usize];
    assert!(missed.excluded, "{missed:?}");
    assert!(d.periods.iter().filter(|p| p.start >= missed.end).all(|p| !p.excluded), "{:?}", d.periods);
    // RestoreOriginal: the original title is back and verified.
    let result: serde_json::Value = serde_json::from_str(d.test.result_json.as_ref().unwrap()).unwrap();
    assert_eq!(result["verified"], true, "{result}");
    assert_eq!(w.sim.sim.video(&video).unwrap().title, original);
    assert_eq!(w.sim.sim.video(&video).unwrap().title_variant, original_variant);
    let changes = w.sim.sim.video(&video).unwrap().changes;
    assert!(changes.iter().any(|c| c.variant == title_variant_id("Second title to try")), "variant B went live");

    // Disconnecting revokes at Google and forgets the tokens.
    assert!(w.ab.disconnect(ann).await.unwrap());
    assert!(w.ab.store.youtube_connection(ann).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exhaustion_mid_test_excludes_the_period_and_the_test_goes_on() {
    // Creation (52 units) and two swaps (50 each) fit; the third swap of the day does not.
    let w = world(23, 160).await;
    let ann = w.user("ann").await;
    w.connect(ann, &w.owned).await;
    let video = w.video_of(&w.owned);
    let mut request = CreateAbTest::new(video.clone());
    request.thumbnails = vec![picture(3, image::ImageFormat::Png), picture(4, image::ImageFormat::Png)];
    request.duration = Duration::days(3);
    request.rotation = Duration::hours(6);
    request.seed = Some(9);
    let created = w.ab.create(ann, request).await.unwrap();
    let id = created.test.id;
    // The final apply may meet a spent quota too: it is retried until the quota resets.
    w.run_hours(24 * 4 + 2).await;
    let d = w.detail(id).await;
    assert_eq!(d.test.state, AbTestState::Finished, "{:?}", d.test.state_reason);
    let refused: Vec<_> = d.periods.iter().filter(|p| p.outcome.as_deref() == Some("quota_exceeded")).collect();
    assert!(!refused.is_empty(), "{:?}", d.periods);
    assert!(refused.iter().all(|p| p.excluded && p.swapped_at.is_none()));
    // After the quota resets (midnight Pacific) swaps succeed again.
    let last_refused = refused.last().unwrap().index;
    assert!(d.periods.iter().any(|p| p.index > last_refused && p.outcome.as_deref() == Some("ok")), "{:?}", d.periods);
    let ok_swaps = d.periods.iter().filter(|p| matches!(p.outcome.as_deref(), Some("ok" | "late"))).count();
    // Creation, the successful swaps and the final apply: refused calls cost nothing.
    assert_eq!(d.test.quota_used, 52 + 50 * i64::try_from(ok_swaps).unwrap() + 50);
    let result: serde_json::Value = serde_json::from_str(d.test.result_json.as_ref().unwrap()).unwrap();
    assert_eq!(result["periods_excluded"].as_u64().unwrap() as usize, refused.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_and_videos_the_user_does_not_own_are_refused() {
    let w = world(24, 10_000).await;
    let ann = w.user("ann").await;
    let video = w.video_of(&w.owned);
    let mut two_pictures = CreateAbTest::new(video.clone());
    two_pictures.thumbnails = vec![picture(1, image::ImageFormat::Png), picture(2, image::ImageFormat::Png)];
    assert!(matches!(w.ab.create(ann, two_pictures.clone()).await, Err(AbTestError::NotConnected)));
    w.connect(ann, &w.owned).await;

    let with = |bad: Vec<u8>| {
        let mut r = two_pictures.clone();
        r.thumbnails[1] = bad;
        r
    };
    let err = w.ab.create(ann, with(b"<html>not an image</html>".to_vec())).await.unwrap_err();
    assert!(
        matches!(&err, AbTestError::BadImage { index: 1, reason } if reason.contains("not a JPEG or PNG")),
        "{err}"
    );
    // A decompression bomb: a tiny PNG declaring 50000×50000 pixels of one colour.
    let bomb = bomb_png(50_000, 50_000);
    assert!(bomb.len() < 1_000);
    let err = w.ab.create(ann, with(bomb)).await.unwrap_err();
    assert!(matches!(&err, AbTestError::BadImage { reason, .. } if reason.contains("over the limit")), "{err}");
    let mut strict = w.ab.clone();
    strict.services.upload_limits = UploadLimits { max_bytes: 1_000, ..UploadLimits::default() };
    let err = strict.create(ann, two_pictures.clone()).await.unwrap_err();
    assert!(matches!(&err, AbTestError::BadImage { index: 0, reason } if reason.contains("byte limit")), "{err}");
    let mut long_title = CreateAbTest::new(video.clone());
    long_title.titles = vec!["ok".into(), "x".repeat(101)];
    assert!(matches!(w.ab.create(ann, long_title).await, Err(AbTestError::BadInput(_))));

    // A video on another channel.
    let foreign = w.video_of(&w.other);
    let mut r = two_pictures.clone();
    r.video = foreign.clone();
    let err = w.ab.create(ann, r.clone()).await.unwrap_err();
    assert!(matches!(err, AbTestError::NotOwner(..)), "{err}");
    // Claiming the other channel at connection does not help: YouTube refuses the edit.
    let bob = w.user("bob").await;
    w.connect(bob, &w.other).await;
    let err = w.ab.create(bob, r).await.unwrap_err();
    assert!(matches!(err, AbTestError::NotOwner(..)), "{err}");

    // Nothing was stored or changed by the refusals.
    assert!(w.ab.store.user_abtests(ann).await.unwrap().is_empty());
    assert!(w.ab.store.user_abtests(bob).await.unwrap().is_empty());
    let truth = w.sim.sim.video(&foreign).unwrap();
    assert!(truth.changes.is_empty());
}

/// A PNG whose header declares `w`×`h` pixels (a few bytes of data): the shape of a
/// decompression bomb, refused before any decoding.
fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    let mut png = Vec::new();
    image::RgbImage::from_pixel(8, 8, image::Rgb([9, 9, 9]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let mut crc = 0xFFFF_FFFFu32;
    for &b in &png[12..29] {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    png[29..33].copy_from_slice(&(!crc).to_be_bytes());
    png
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_stopped_early_wraps_up_within_the_hour_and_restores_the_original() {
    let w = world(25, 10_000).await;
    let ann = w.user("ann").await;
    let bob = w.user("bob").await;
    w.connect(ann, &w.owned).await;
    let video = w.video_of(&w.owned);
    // The video was tracked once, until two days ago: the power estimate reads its rate since.
    let truth = w.sim.sim.video(&video).unwrap();
    let last_at = w.clock.now() - Duration::days(2);
    let last_views = i64::try_from(w.sim.sim.views_at(&video, last_at).unwrap()).unwrap();
    let stored = NewVideo {
        id: video.clone(),
        channel_id: w.owned.clone(),
        published_at: truth.published,
        is_short: truth.is_short,
        title: truth.title.clone(),
    };
    let channel = NewChannel { id: w.owned.clone(), title: "owned".into(), handle: None };
    w.ab.store.upsert_channel(&channel, last_at).await.unwrap();
    w.ab.store.insert_video(&stored, last_at).await.unwrap();
    let record =
        ViewsRecord { video_id: video.clone(), slot: Slot::hour_of(last_at), measured_at: last_at, views: last_views };
    w.ab.store.record_views(&record).await.unwrap();
    let mut request = CreateAbTest::new(video.clone());
    request.titles = vec!["A title for the stop test".into(), "B title for the stop test".into()];
    let created = w.ab.create(ann, request).await.unwrap();
    let id = created.test.id;
    let power: serde_json::Value = serde_json::from_str(&created.test.power_json).unwrap();
    assert!(power["basis"].as_str().unwrap().starts_with("average views per hour since its last tracked"), "{power}");
    let views_now = w.sim.sim.views_at(&video, w.clock.now()).unwrap() as f64;
    let rate = power["traffic"]["views_per_hour"].as_f64().unwrap();
    assert!((rate - (views_now - last_views as f64) / 48.0).abs() <= 1.0, "{power}");
    let lifetime = views_now / ((w.clock.now() - truth.published).num_seconds() as f64 / 3600.0);
    assert!(rate < lifetime, "a decaying video's recent rate is below its lifetime average: {rate} vs {lifetime}");
    let original = created.test.original_title.clone().unwrap();
    w.run_hours(14).await;
    assert!(matches!(w.ab.stop(bob, id).await, Err(AbTestError::NoSuchTest(_))), "only the owner may stop it");
    w.ab.stop(ann, id).await.unwrap();
    w.run_hours(1).await;
    let d = w.detail(id).await;
    assert_eq!(d.test.state, AbTestState::Stopped);
    let result: serde_json::Value = serde_json::from_str(d.test.result_json.as_ref().unwrap()).unwrap();
    assert_eq!((result["stopped_early"].as_bool(), result["verified"].as_bool()), (Some(true), Some(true)), "{result}");
    assert_eq!(w.sim.sim.video(&video).unwrap().title, original);
    assert!(
        d.periods.iter().filter(|p| p.start > w.clock.now()).all(|p| p.swapped_at.is_none()),
        "no swap after the stop"
    );
    assert!(matches!(w.ab.stop(ann, id).await, Err(AbTestError::AlreadyEnded)));
    let runs_before = w.detail(id).await.test.quota_used;
    w.run_hours(24).await;
    assert_eq!(w.detail(id).await.test.quota_used, runs_before, "a stopped test makes no more calls");
}

impl World {
    /// A test of two titles on the owned channel's busiest video, created now.
    async fn title_test(&self, user: UserId, days: i64) -> AbTestDetail {
        let mut request = CreateAbTest::new(self.video_of(&self.owned));
        request.titles = vec!["A title with reach".into(), "B title with reach".into()];
        request.duration = Duration::days(days);
        self.ab.create(user, request).await.unwrap()
    }

    async fn reach_state(&self, id: AbTestId) -> (ReachState, String) {
        let test = self.detail(id).await.test;
        (test.reach_state, test.reach_reason.unwrap_or_default())
    }

    /// Every stored day of the video since the backfill began, and the simulator's truth for the
    /// same span (YouTube leaves out days without impressions): (Pacific day, impressions, CTR).
    async fn stored_and_true_reach(&self, video: &VideoId) -> (BTreeMap<i64, (i64, f64)>, BTreeMap<i64, (i64, f64)>) {
        let job = self.ab.store.reach_job(&self.owned).await.unwrap().expect("a reporting job");
        let first = pacific_day(job.job_created_at.timestamp()) - 30;
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let last = (job.last_day.expect("a day received") - epoch).num_days();
        let stored = self
            .ab
            .store
            .reach_days(video, job.job_created_at - Duration::days(40), self.clock.now())
            .await
            .unwrap()
            .into_iter()
            .map(|d| (pacific_day(d.day_start.timestamp()), (d.impressions, d.ctr)))
            .collect();
        let truth = (first..=last)
            .filter_map(|day| {
                let r = self.sim.sim.reach_day(video, day).unwrap()?;
                (r.impressions > 0).then(|| (day, (i64::try_from(r.impressions).unwrap(), r.ctr)))
            })
            .collect();
        (stored, truth)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reach_waits_for_the_first_report_then_matches_the_truth() {
    let w = world(26, 10_000).await;
    let ann = w.user("ann").await;
    w.connect(ann, &w.owned).await;
    let conn = w.ab.store.youtube_connection(ann).await.unwrap().unwrap();
    assert!(conn.scopes.contains("yt-analytics.readonly"), "the granted scopes are recorded: {}", conn.scopes);
    let created = w.title_test(ann, 4).await;
    let id = created.test.id;
    let video = created.test.video_id.clone();
    // The reporting job is created with the test; its first reports come 48 hours later.
    let job = w.ab.store.reach_job(&w.owned).await.unwrap().expect("the job is created with the test");
    assert!((job.job_created_at - w.clock.now()).num_seconds().abs() <= 1, "{job:?}");
    let (state, reason) = w.reach_state(id).await;
    assert_eq!(state, ReachState::WaitingForFirstReport, "{reason}");
    assert!(reason.contains("first report is expected around"), "{reason}");
    w.run_hours(46).await;
    assert_eq!(w.reach_state(id).await.0, ReachState::WaitingForFirstReport);
    assert!(
        w.ab.store.reach_days(&video, job.job_created_at - Duration::days(40), w.clock.now()).await.unwrap().is_empty()
    );

    w.run_hours(3).await;
    let (state, reason) = w.reach_state(id).await;
    assert_eq!(state, ReachState::Receiving, "{reason}");
    let (stored, truth) = w.stored_and_true_reach(&video).await;
    assert!(truth.len() >= 3, "the backfill since the video came out and the test's first day: {}", truth.len());
    assert_eq!(stored, truth);
    // Another day's report a day later.
    w.run_hours(24).await;
    let (stored_later, truth_later) = w.stored_and_true_reach(&video).await;
    assert_eq!(stored_later, truth_later);
    assert_eq!(stored_later.len(), stored.len() + 1);

    // The test's days carry which variant was live: every hour of a day inside the test had one.
    let detail = w.detail(id).await;
    let reach = tubewatch_worker::reach::reach_of(&*w.ab.store, &detail).await.unwrap();
    assert_eq!((reach.state, reach.job_created_at), (ReachState::Receiving, Some(job.job_created_at)));
    assert!(!reach.days.is_empty());
    for day in &reach.days {
        let live: f64 = day.variant_share.iter().sum();
        assert!(live > 0.0 && live <= 1.0 + 1e-9, "{day:?}");
    }
    assert!(reach.days.iter().any(|d| (d.variant_share.iter().sum::<f64>() - 1.0).abs() < 1e-9), "{:?}", reach.days);

    // The wrap-up keeps the days that cover the test.
    w.run_hours(26).await;
    let detail = w.detail(id).await;
    assert_eq!(detail.test.state, AbTestState::Finished, "{:?}", detail.test.state_reason);
    let result: serde_json::Value = serde_json::from_str(detail.test.result_json.as_ref().unwrap()).unwrap();
    assert_eq!(result["reach_state"], "receiving", "{result}");
    assert!(result["reach_days"].as_array().unwrap().len() >= 3, "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_with_reach_is_read_without_any_test_for_the_owners_own_changes() {
    let w = world(30, 10_000).await;
    let ann = w.user("ann").await;
    w.connect(ann, &w.owned).await;
    // Connecting with the scope starts the reading: the job at once, its first reports 48 h later.
    w.run_hours(1).await;
    let job = w.ab.store.reach_job(&w.owned).await.unwrap().expect("the job is created on connection");
    assert!(job.last_day.is_none(), "{job:?}");
    w.run_hours(49).await;
    let video = w.video_of(&w.owned);
    let (stored, truth) = w.stored_and_true_reach(&video).await;
    assert!(truth.len() >= 3, "{}", truth.len());
    assert_eq!(stored, truth);
    // A day later, the next day's report, still without any test.
    w.run_hours(24).await;
    let (later, truth_later) = w.stored_and_true_reach(&video).await;
    assert_eq!((later.len(), &later), (stored.len() + 1, &truth_later));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_reach_scope_the_test_runs_on_public_views_until_reconnected() {
    let mut w = world_asking(27, 10_000, &[SCOPE_YOUTUBE_FORCE_SSL]).await;
    let ann = w.user("ann").await;
    w.connect(ann, &w.owned).await;
    let created = w.title_test(ann, 3).await;
    let id = created.test.id;
    let (state, reason) = w.reach_state(id).await;
    assert_eq!(state, ReachState::NotGranted);
    assert!(reason.contains("connect the account again"), "{reason}");
    w.run_hours(13).await;
    let d = w.detail(id).await;
    assert_eq!(w.reach_state(id).await.0, ReachState::NotGranted);
    assert!(w.ab.store.reach_job(&w.owned).await.unwrap().is_none(), "no reporting job without the scope");
    assert!(d.periods[..2].iter().all(|p| p.swapped_at.is_some()), "swaps go on: {:?}", d.periods);
    assert!(w.ab.store.abtest_views(id).await.unwrap().len() >= 12, "public views are measured");

    // Connecting again with both scopes adds reach to the running test.
    w.ab.services.oauth = w.ab.youtube.oauth(&oauth_config(&AB_TEST_SCOPES)).unwrap();
    w.connect(ann, &w.owned).await;
    w.run_hours(1).await;
    let (state, reason) = w.reach_state(id).await;
    assert_eq!(state, ReachState::WaitingForFirstReport, "{reason}");
    assert!(w.ab.store.reach_job(&w.owned).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_marks_reach_revoked_and_keeps_what_was_read() {
    let w = world(28, 10_000).await;
    let ann = w.user("ann").await;
    w.connect(ann, &w.owned).await;
    let created = w.title_test(ann, 4).await;
    let id = created.test.id;
    w.run_hours(49).await;
    assert_eq!(w.reach_state(id).await.0, ReachState::Receiving);
    let (before, _) = w.stored_and_true_reach(&created.test.video_id).await;

    let conn = w.ab.store.youtube_connection(ann).await.unwrap().unwrap();
    let refresh = w.ab.services.keyring.open(ann, TokenPurpose::Refresh, &conn.refresh).unwrap();
    w.ab.services.oauth.revoke(&refresh).await.unwrap();
    // Access tokens last an hour: within two the grant is found revoked.
    w.run_hours(3).await;
    let (state, reason) = w.reach_state(id).await;
    assert_eq!(state, ReachState::Revoked, "{reason}");
    assert!(reason.contains("invalid_grant"), "{reason}");
    let (after, _) = w.stored_and_true_reach(&created.test.video_id).await;
    assert_eq!(after, before, "the days read stay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_reports_fail_then_recover_with_nothing_lost() {
    let w = world(29, 10_000).await;
    let ann = w.user("ann").await;
    w.connect(ann, &w.owned).await;
    let created = w.title_test(ann, 4).await;
    let (id, video) = (created.test.id, created.test.video_id.clone());
    w.run_hours(46).await;
    let faults = |rate: f64| FaultConfig {
        endpoints: [(Endpoint::Reporting, FaultSpec { rate_truncate: rate, ..FaultSpec::default() })].into(),
        ..FaultConfig::default()
    };
    // Every Reporting API answer cut short when the first reports come.
    w.sim.sim.set_faults(faults(1.0));
    w.run_hours(3).await;
    let (state, reason) = w.reach_state(id).await;
    assert_eq!(state, ReachState::Failed, "{reason}");
    assert!(reason.contains("truncated"), "{reason}");
    let job = w.ab.store.reach_job(&w.owned).await.unwrap().unwrap();
    assert_eq!(job.reports_through, None, "nothing read from a cut report");
    // Some answers cut: reports of the batch are stored, the read position waits for the rest.
    w.sim.sim.set_faults(faults(0.3));
    w.run_hours(2).await;
    w.sim.sim.set_faults(FaultConfig::default());
    w.run_hours(1).await;
    let (state, reason) = w.reach_state(id).await;
    assert_eq!(state, ReachState::Receiving, "{reason}");
    let (stored, truth) = w.stored_and_true_reach(&video).await;
    assert!(truth.len() >= 3);
    assert_eq!(stored, truth, "every day arrived once the downloads came through whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_test_of_pacific_days_ends_once_decided_with_views_and_reach() {
    let w = world(27, 10_000).await;
    let ann = w.user("ann").await;
    w.connect(ann, &w.owned).await;
    let video = w.video_of(&w.owned);
    let mut request = CreateAbTest::new(video.clone());
    request.titles = vec!["A plain title".into(), "B title that draws clicks".into()];
    request.design = AbDesign::PacificDays;
    request.sequential = true;
    let created = w.ab.create(ann, request).await.unwrap();
    let id = created.test.id;
    assert_eq!((created.test.design, created.test.sequential), (AbDesign::PacificDays, true));
    // Whole Pacific days: the first starts at the next Pacific midnight (07:00 or 08:00 UTC).
    assert!(created.periods.iter().all(|p| matches!(p.start.hour(), 7 | 8)), "{:?}", created.periods);
    assert!(created.test.starts_at > w.clock.now());
    // Title B's click-through rate is 60 % higher.
    for (title, multiplier) in [("A plain title", 1.0), ("B title that draws clicks", 1.6)] {
        w.sim.sim.set_multiplier(video.as_str(), VariantKind::Title, &title_variant_id(title), multiplier).unwrap();
    }
    let first_look = tubewatch_worker::abtest_job::first_look(&created).unwrap();
    let mut hours = 0;
    while w.detail(id).await.test.state == AbTestState::Running && hours < 16 * 24 {
        w.run_hours(1).await;
        hours += 1;
    }
    let d = w.detail(id).await;
    assert_eq!(d.test.state, AbTestState::Finished, "{:?}", d.test.state_reason);
    let finished = d.test.finished_at.unwrap();
    assert!(finished >= first_look, "no look before every variant was live twice: {finished} < {first_look}");
    assert!(finished < d.test.ends_at - Duration::days(1), "decided early: {finished} vs {}", d.test.ends_at);
    let result: serde_json::Value = serde_json::from_str(d.test.result_json.as_ref().unwrap()).unwrap();
    assert_eq!(result["decided_early"], true, "{result}");
    assert_eq!(result["stopped_early"], false, "{result}");
    assert_eq!(result["analysis"]["verdict"]["verdict"], "winner", "{result}");
    assert_eq!(result["analysis"]["verdict"]["variant"], 1, "{result}");
    assert_eq!(w.sim.sim.video(&video).unwrap().title, "B title that draws clicks");
}
