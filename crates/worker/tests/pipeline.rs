//! The tracking pipeline against the simulator over real HTTP, on a stepped virtual clock:
//! every slot recorded once, changes detected exactly as the simulator's truth says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tubewatch_core::{Clock, ManualClock, Slot, VideoId};
use tubewatch_sim::{SimConfig, Simulator, VariantKind};
use tubewatch_store::{ChangeKind, Store, StoreOptions, TargetKind, TargetState, connect};
use tubewatch_worker::{Blobs, Metrics, Pipeline, PipelineConfig, Tracker};
use tubewatch_youtube::{RetryPolicy, YoutubeClient, YoutubeConfig};

struct World {
    sim: tubewatch_sim::RunningSim,
    clock: Arc<ManualClock>,
    pipeline: Pipeline,
    tracker: Tracker,
    _dir: tempfile::TempDir,
}

async fn world(seed: u64, channels: u32) -> World {
    world_with(seed, channels, None, |_| {}).await
}

/// A world whose client reads views through the Data API with `api_key`, on a simulator
/// adjusted by `adjust`.
async fn world_with(seed: u64, channels: u32, api_key: Option<&str>, adjust: impl FnOnce(&mut SimConfig)) -> World {
    let (mut config, clock) = SimConfig::for_tests(seed, channels);
    adjust(&mut config);
    let sim = Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        connect(&format!("sqlite://{}/tw.db", dir.path().display()), &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let mut yt = YoutubeConfig::single_base(&sim.base_url).unwrap();
    // The queue retries on the virtual clock; no wall-clock retries inside the client.
    yt.retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    yt.api_key = api_key.map(str::to_owned);
    let youtube = YoutubeClient::new(yt).unwrap();
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let pipeline = Pipeline {
        store: store.clone(),
        youtube: youtube.clone(),
        blobs: Blobs::local(&dir.path().join("blobs")).unwrap(),
        clock: clock_dyn.clone(),
        metrics: Arc::new(Metrics::default()),
        writer: Default::default(),
        config: PipelineConfig::default(),
    };
    let tracker = Tracker { store, youtube, clock: clock_dyn, config: PipelineConfig::default() };
    World { sim, clock, pipeline, tracker, _dir: dir }
}

impl World {
    /// Steps the clock hour by hour (channel checks at :55, video checks just after the hour),
    /// running everything due at each step.
    async fn run_hours(&self, hours: i64) {
        for _ in 0..hours {
            let now = self.clock.now();
            let next_hour = Slot::hour_of(now).start() + Duration::hours(1);
            for at in [next_hour - Duration::minutes(5), next_hour + Duration::seconds(30)] {
                if at > self.clock.now() {
                    self.clock.set(at);
                }
                self.pipeline.drain("test-worker", StdDuration::from_secs(60), 32).await.unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_api_key_a_channels_history_is_each_streams_fifty_newest() {
    let w = world_with(12, 6, Some("sim-key"), |_| {}).await;
    let now = w.clock.now();
    let both = |c: &&tubewatch_sim::Channel| c.long_every_hours.is_some() && c.shorts_every_hours.is_some();
    let channel = w.sim.sim.channels().iter().find(both).unwrap().clone();
    w.tracker.track_channel(None, channel.id.as_str()).await.unwrap();
    // Two calls per stream: playlistItems.list and videos.list, a unit each.
    assert_eq!(w.sim.sim.quota_used("sim-key"), 4);
    // The channel check stores the feed's videos in their window.
    w.run_hours(1).await;
    let store = &w.pipeline.store;
    let stored = store.channel_videos(&channel.id).await.unwrap();
    let all = w.sim.sim.channel_videos(&channel.id, now - Duration::days(3 * 365), now).unwrap();
    for shorts in [false, true] {
        // The stream's 50 newest, every one stored (the feed's in-window ones tracked, the rest
        // seen once with their views now); no older one.
        let newest: Vec<_> = all.iter().filter(|v| v.is_short == shorts).take(50).collect();
        let mine: HashSet<_> = stored.iter().filter(|v| v.is_short == shorts).map(|v| v.id.clone()).collect();
        assert_eq!(mine.len(), newest.len(), "shorts {shorts}");
        for truth in newest {
            assert!(mine.contains(&truth.id), "{} stored", truth.id);
            let series = store.views(&truth.id).await.unwrap();
            if store.target(TargetKind::Video, truth.id.as_str()).await.unwrap().is_none() {
                assert_eq!(series.len(), 1);
                let views = w.sim.sim.views_at(&truth.id, series[0].measured_at).unwrap();
                assert_eq!(series[0].views, i64::try_from(views).unwrap());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_tracked_slot_by_slot_with_exact_change_detection() {
    let w = world(11, 6).await;
    let start = w.clock.now();
    for channel in w.sim.sim.channels().iter().take(4) {
        w.tracker.track_channel(None, &channel.id.to_string()).await.unwrap();
    }
    w.run_hours(24 * 4).await;
    let end = w.clock.now();
    let store = &w.pipeline.store;
    let policy = w.pipeline.config.policy;

    let mut videos = 0;
    let mut seen_once = 0;
    let mut records = 0;
    let mut detected: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for channel in w.sim.sim.channels().iter().take(4) {
        for video in store.channel_videos(&channel.id).await.unwrap() {
            let series = store.views(&video.id).await.unwrap();
            if store.target(TargetKind::Video, video.id.as_str()).await.unwrap().is_none() {
                // A video of the channel's history, older than its feed: its views when
                // tracking began, and nothing after.
                assert_eq!(series.len(), 1, "{} seen once", video.id);
                assert!(series[0].measured_at >= start && series[0].measured_at < start + Duration::minutes(1));
                let truth = w.sim.sim.views_at(&video.id, series[0].measured_at).unwrap();
                assert_eq!(series[0].views, i64::try_from(truth).unwrap());
                seen_once += 1;
                continue;
            }
            videos += 1;
            let slots: Vec<Slot> = series.iter().map(|r| r.slot).collect();
            let unique: HashSet<_> = slots.iter().collect();
            assert_eq!(unique.len(), slots.len(), "no duplicate slots for {}", video.id);
            // Every slot from the first one to the last one due before `end` is there.
            let first = slots[0];
            let expected: Vec<Slot> = policy
                .all_slots(video.published_at)
                .into_iter()
                .filter(|s| *s >= first && s.start() + Duration::seconds(30) <= end)
                .collect();
            assert_eq!(slots, expected, "slots of {}", video.id);
            // Views never decrease and match the simulator at the measurement time.
            assert!(series.windows(2).all(|p| p[0].views <= p[1].views));
            let last = series.last().unwrap();
            let truth = w.sim.sim.views_at(&video.id, last.measured_at).unwrap();
            assert_eq!(last.views, i64::try_from(truth).unwrap());
            records += series.len();
            for change in store.changes(&video.id).await.unwrap() {
                *detected.entry((video.id.to_string(), change.change.kind.as_str())).or_default() += 1;
                if change.change.kind == ChangeKind::Thumbnail {
                    let key = change.change.after_thumb_key.clone().unwrap();
                    assert!(w.pipeline.blobs.get(&key).await.unwrap().is_some(), "small thumbnail archived");
                    let large = key.replace("/default.jpg", "/hqdefault.jpg");
                    assert!(w.pipeline.blobs.get(&large).await.unwrap().is_some(), "large thumbnail archived");
                }
            }
        }
    }
    // The truth: changes to videos we track, after their first measurement.
    let mut truth: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for channel in w.sim.sim.channels().iter().take(4) {
        for change in w.sim.sim.changes(start, end, Some(channel.id.as_str())).unwrap() {
            let Some(first) = store.views(&change.video_id).await.unwrap().first().map(|r| r.measured_at) else {
                continue;
            };
            if change.at > first {
                let kind = if change.kind == VariantKind::Thumbnail { "thumbnail" } else { "title" };
                *truth.entry((change.video_id.to_string(), kind)).or_default() += 1;
            }
        }
    }
    assert!(videos >= 4, "videos tracked: {videos}");
    assert!(seen_once >= 4, "videos seen in the channels' history: {seen_once}");
    assert_eq!(detected, truth, "detected changes equal the truth");
    eprintln!("videos {videos}, records {records}, changes {}", truth.len());
}

/// Requests the simulator served per endpoint (`/_sim/stats`).
async fn requests(w: &World, endpoint: &str) -> u64 {
    let body = reqwest::get(format!("{}/_sim/stats", w.sim.base_url)).await.unwrap().text().await.unwrap();
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    stats["endpoints"][endpoint]["requests"].as_u64().unwrap_or(0)
}

/// Every record of the tracked channels: (video, views, measured_at); checks each against the
/// simulator's truth at its measurement time.
async fn records_match_truth(w: &World, channels: usize) -> usize {
    let mut records = 0;
    for channel in w.sim.sim.channels().iter().take(channels) {
        for video in w.pipeline.store.channel_videos(&channel.id).await.unwrap() {
            for r in w.pipeline.store.views(&video.id).await.unwrap() {
                let truth = w.sim.sim.views_at(&video.id, r.measured_at).unwrap();
                assert_eq!(r.views, i64::try_from(truth).unwrap(), "{} at {}", video.id, r.measured_at);
                records += 1;
            }
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_api_key_views_come_from_batched_videos_list() {
    let w = world_with(11, 6, Some("test-key"), |_| {}).await;
    for channel in w.sim.sim.channels().iter().take(4) {
        w.tracker.track_channel(None, &channel.id.to_string()).await.unwrap();
    }
    w.run_hours(6).await;
    let records = records_match_truth(&w, 4).await;
    let calls = requests(&w, "data_api").await;
    assert_eq!(requests(&w, "watch").await + requests(&w, "player").await, 0, "nothing scraped");
    // Videos due in the same step share requests of up to 50 ids.
    assert!(records > 50 && calls > 0, "records {records}, videos.list calls {calls}");
    assert!(calls * 5 <= records as u64, "batched: {calls} calls for {records} records");
    eprintln!("{records} records from {calls} videos.list calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_quota_is_spent_the_player_endpoint_stands_in() {
    // Three videos.list calls a day: spent within the first steps.
    let w = world_with(11, 6, Some("test-key"), |c| c.quota_per_day = 3).await;
    for channel in w.sim.sim.channels().iter().take(4) {
        w.tracker.track_channel(None, &channel.id.to_string()).await.unwrap();
    }
    w.run_hours(6).await;
    let records = records_match_truth(&w, 4).await;
    assert!(records > 50, "records {records}");
    assert!(requests(&w, "player").await > 0, "the player endpoint stood in");
    let stats = w.pipeline.store.queue_stats(w.clock.now()).await.unwrap();
    assert_eq!((stats.failed, stats.erroring), (0, 0), "nothing failed for quota: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_a_video_by_url_and_bad_input() {
    let w = world(5, 3).await;
    w.clock.advance(Duration::days(2));
    let channel = &w.sim.sim.channels()[0];
    let recent = w.sim.sim.channel_videos(&channel.id, w.clock.now() - Duration::days(20), w.clock.now()).unwrap();
    let video = recent.first().expect("a recent video");
    let url = format!("https://www.youtube.com/watch?v={}", video.id);
    let id = w.tracker.track_video(None, &url).await.unwrap();
    assert_eq!(id, video.id);
    let target = w.pipeline.store.target(TargetKind::Video, id.as_str()).await.unwrap().unwrap();
    let policy = w.pipeline.config.policy;
    assert_eq!(target.next_due_at, policy.slot_at(video.published, w.clock.now()).unwrap().start());
    w.run_hours(3).await;
    assert_eq!(w.pipeline.store.views(&id).await.unwrap().len(), 4);

    for bad in ["https://vimeo.com/1", "not a video", "@handle"] {
        let err = w.tracker.track_video(None, bad).await.unwrap_err();
        assert_eq!(err.code(), "bad_input", "{bad}: {err}");
    }
    let missing = VideoId::parse("AAAAAAAAAAA").unwrap();
    let err = w.tracker.track_video(None, missing.as_str()).await.unwrap_err();
    assert_eq!(err.code(), "video_unavailable", "{err}");
    let err = w.tracker.track_channel(None, "UCAAAAAAAAAAAAAAAAAAAAAA").await.unwrap_err();
    assert_eq!(err.code(), "no_such_channel", "{err}");
    let err = w.tracker.track_channel(None, "@nobody-here-at-all").await.unwrap_err();
    assert_eq!(err.code(), "no_such_channel", "{err}");
    let handle = format!("https://www.youtube.com/{}", channel.handle);
    assert_eq!(w.tracker.track_channel(None, &handle).await.unwrap(), channel.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_again_resumes_a_stopped_channel_and_video() {
    let w = world(5, 3).await;
    let store = &w.pipeline.store;
    let channel = &w.sim.sim.channels()[0];
    let video =
        w.sim.sim.channel_videos(&channel.id, w.clock.now() - Duration::days(20), w.clock.now()).unwrap()[0].id.clone();
    w.tracker.track_channel(None, channel.id.as_str()).await.unwrap();
    w.tracker.track_video(None, video.as_str()).await.unwrap();
    w.run_hours(1).await;
    // Stopped (as `tubewatch untrack` does for everyone): nothing is read while stopped.
    assert!(store.stop_target(TargetKind::Channel, channel.id.as_str()).await.unwrap());
    assert!(store.stop_target(TargetKind::Video, video.as_str()).await.unwrap());
    let records = store.views(&video).await.unwrap().len();
    w.run_hours(3).await;
    assert_eq!(store.views(&video).await.unwrap().len(), records);
    // Tracking them again resumes the same targets from now.
    w.tracker.track_channel(None, channel.id.as_str()).await.unwrap();
    w.tracker.track_video(None, video.as_str()).await.unwrap();
    for (kind, subject) in [(TargetKind::Channel, channel.id.as_str()), (TargetKind::Video, video.as_str())] {
        let target = store.target(kind, subject).await.unwrap().unwrap();
        assert_eq!(target.state, TargetState::Active, "{kind} {subject}");
        assert!(target.next_due_at <= w.clock.now(), "{kind} {subject} due {}", target.next_due_at);
    }
    w.run_hours(2).await;
    // The current slot at once, then one a slot.
    assert_eq!(store.views(&video).await.unwrap().len(), records + 3);
    let checked = store.target(TargetKind::Channel, channel.id.as_str()).await.unwrap().unwrap();
    assert!(checked.next_due_at > w.clock.now() && checked.last_error.is_none(), "{checked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_its_last_user_lets_go_stops_and_comes_back_when_added_again() {
    let w = world(6, 3).await;
    let store = &w.pipeline.store;
    let new_user = tubewatch_store::NewUser {
        email: tubewatch_core::Email::parse("ann@example.com").unwrap(),
        password_hash: "h".into(),
        plan: tubewatch_store::Plan::Free,
        is_admin: false,
        email_verified: true,
    };
    let ann = store.create_user(&new_user, w.clock.now()).await.unwrap().id;
    let channel = w.sim.sim.channels()[0].id.clone();
    w.tracker.track_channel(Some(ann), channel.as_str()).await.unwrap();
    w.run_hours(2).await;
    let videos = store.channel_videos(&channel).await.unwrap();
    assert!(!videos.is_empty());
    let records = |store: Arc<dyn Store>, videos: Vec<VideoId>| async move {
        let mut n = 0;
        for v in &videos {
            n += store.views(v).await.unwrap().len();
        }
        n
    };
    let ids: Vec<VideoId> = videos.iter().map(|v| v.id.clone()).collect();
    let active = |store: Arc<dyn Store>, ids: Vec<VideoId>| async move {
        let mut n = 0;
        for v in &ids {
            n += usize::from(
                // (videos of the channel's history, seen once, have no target)
                store
                    .target(TargetKind::Video, v.as_str())
                    .await
                    .unwrap()
                    .is_some_and(|t| t.state == TargetState::Active),
            );
        }
        n
    };
    let tracked = active(store.clone(), ids.clone()).await;
    assert!(tracked > 0);

    // Her channel, nobody else's: it stops with its videos, and nothing is read any more.
    assert!(store.remove_user_channel(ann, &channel).await.unwrap());
    let target = store.target(TargetKind::Channel, channel.as_str()).await.unwrap().unwrap();
    assert_eq!(target.state, TargetState::Finished);
    assert_eq!(active(store.clone(), ids.clone()).await, 0);
    let before = records(store.clone(), ids.clone()).await;
    w.run_hours(3).await;
    assert_eq!(records(store.clone(), ids.clone()).await, before);

    // Added again: the channel and its videos still in their tracking window come back.
    w.tracker.track_channel(Some(ann), channel.as_str()).await.unwrap();
    assert_eq!(active(store.clone(), ids.clone()).await, tracked);
    w.run_hours(1).await;
    assert!(records(store.clone(), ids.clone()).await > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_video_stops_its_target_and_says_why() {
    let w = world(5, 3).await;
    let channel = &w.sim.sim.channels()[0];
    w.tracker.track_channel(None, channel.id.as_str()).await.unwrap();
    w.run_hours(1).await;
    // A target whose video does not exist on YouTube: permanent failure, visible.
    let ghost = VideoId::parse("ghost000001").unwrap();
    let store = &w.pipeline.store;
    let published: DateTime<Utc> = w.clock.now() - Duration::hours(3);
    let video = tubewatch_store::NewVideo {
        id: ghost.clone(),
        channel_id: channel.id.clone(),
        published_at: published,
        is_short: false,
        title: "gone".into(),
    };
    store.insert_video(&video, published).await.unwrap();
    store.ensure_target(TargetKind::Video, ghost.as_str(), w.clock.now(), w.clock.now()).await.unwrap();
    w.run_hours(1).await;
    let target = store.target(TargetKind::Video, ghost.as_str()).await.unwrap().unwrap();
    assert_eq!(target.state, TargetState::Failed);
    assert!(target.last_error.unwrap().contains("not_found") || target.state == TargetState::Failed);
    assert!(store.views(&ghost).await.unwrap().is_empty());
}
