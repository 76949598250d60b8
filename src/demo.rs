//! `tubewatch demo`: the simulator and the full service in one process on an accelerated clock,
//! tracking a handful of simulated channels, with live counts and a summary checked against the
//! simulator's truth. Also the harness `eval` builds on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tubewatch_core::Email;
use tubewatch_core::{AcceleratedClock, ChannelId, Clock, SchedulePolicy, Slot};
use tubewatch_sim::{RunningSim, SimClock, SimConfig, Simulator, VariantKind, WorldParams};
use tubewatch_store::{ChangeKind, NewUser, Plan, Store};

use crate::app::App;
use crate::settings::Settings;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Virtual days to run.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Simulated channels to track.
    #[arg(long, default_value_t = 6)]
    pub channels: u32,
    /// Virtual seconds per real second (21600: a day in 4 seconds).
    #[arg(long, default_value_t = 21_600.0)]
    pub speed: f64,
    /// Seed of the simulated world.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep serving after the run (Ctrl-C to stop).
    #[arg(long)]
    pub keep_running: bool,
    /// Folder for the demo's database and thumbnails (recreated on every run).
    #[arg(long, default_value = "tubewatch-demo")]
    pub data_dir: PathBuf,
    /// Size of the simulator's watch pages in bytes.
    #[arg(long, default_value_t = 200_000)]
    pub page_bytes: usize,
}

const MARKER: &str = ".tubewatch-demo";
const DEMO_EMAIL: &str = "demo@tubewatch.local";

/// Empties a folder this command made before; refuses any other non-empty folder.
fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!("{} exists and was not made by `tubewatch demo`; pass another --data-dir", dir.display());
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(MARKER), "made by tubewatch demo; deleted on the next run\n")?;
    Ok(())
}

/// A simulator and the service's parts sharing one accelerated clock.
pub struct Harness {
    pub sim: RunningSim,
    pub clock: AcceleratedClock,
    pub settings: Settings,
    pub app: App,
    pub start: DateTime<Utc>,
}

pub struct HarnessOptions {
    pub seed: u64,
    pub world_channels: u32,
    pub speed: f64,
    pub page_bytes: usize,
    pub faults: tubewatch_sim::FaultConfig,
    pub data_dir: PathBuf,
}

impl Harness {
    pub async fn start(base: Settings, opts: HarnessOptions) -> anyhow::Result<Self> {
        let start = WorldParams::default().epoch;
        let clock = AcceleratedClock::starting_now(start, opts.speed)?;
        let mut config = SimConfig::new(opts.seed, opts.world_channels, SimClock::Shared(Arc::new(clock)));
        config.page_bytes = opts.page_bytes;
        config.faults = opts.faults;
        let sim = Simulator::start(config, "127.0.0.1:0".parse()?).await?;
        let mut settings = base;
        // A fresh SQLite file unless a database was named explicitly (e.g. PostgreSQL).
        if settings.database_url == Settings::default().database_url {
            settings.database_url = format!("sqlite://{}", opts.data_dir.join("tubewatch.db").display());
        }
        settings.blob_dir = opts.data_dir.join("blobs");
        settings.youtube.base_url = Some(sim.base_url.clone());
        settings.clock = clock.to_string();
        settings.validate()?;
        let app = App::open(&settings).await?;
        Ok(Self { sim, clock, settings, app, start })
    }

    /// The `n` channels with the most uploads in the first `days`, among the first 100.
    pub fn busiest_channels(&self, n: u32, days: u32) -> Vec<ChannelId> {
        let until = self.start + Duration::days(i64::from(days));
        let mut by_uploads: Vec<(usize, ChannelId)> = self
            .sim
            .sim
            .channels()
            .iter()
            .take(100)
            .map(|c| {
                (self.sim.sim.channel_videos(c.id.as_str(), self.start, until).map_or(0, |v| v.len()), c.id.clone())
            })
            .collect();
        by_uploads.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        by_uploads.into_iter().take(n as usize).map(|(_, id)| id).collect()
    }
}

/// What tracking recorded, compared with the simulator's truth.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrackingReport {
    pub channels: usize,
    pub videos_tracked: usize,
    pub slots_expected: usize,
    pub slots_recorded: usize,
    pub slots_missing: usize,
    pub duplicate_records: usize,
    pub thumbnail_changes_true: usize,
    pub thumbnail_changes_detected: usize,
    pub title_changes_true: usize,
    pub title_changes_detected: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub p95_lag_seconds: f64,
    pub max_lag_seconds: f64,
    /// Up to ten missing `video@slot`, for a look at why.
    pub missing_examples: Vec<String>,
}

/// Compares the store with the truth for the tracked channels over `[start, end]`. A slot is
/// expected from the video's first slot (its publish slot, or tracking's start) until an hour
/// before `end`.
/// Lag is measured on every record but a video's first.
pub async fn tracking_report(
    store: &dyn Store,
    sim: &Simulator,
    policy: &SchedulePolicy,
    channels: &[ChannelId],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> anyhow::Result<TrackingReport> {
    let mut report = TrackingReport { channels: channels.len(), ..TrackingReport::default() };
    let mut lags = Vec::new();
    let mut detected: BTreeMap<(String, ChangeKind), usize> = BTreeMap::new();
    let mut truth: BTreeMap<(String, ChangeKind), usize> = BTreeMap::new();
    let horizon = end - Duration::hours(1);
    for channel in channels {
        let true_changes = sim.changes(start, end, Some(channel.as_str()))?;
        // Channels are tracked one after another: each from its own start.
        let tracked_at = store.channel(channel).await?.map_or(start, |c| c.created_at.max(start));
        for video in store.channel_videos(channel).await? {
            report.videos_tracked += 1;
            let records = store.views(&video.id).await?;
            // Videos already out when their channel was tracked start at that slot; later ones
            // at the slot of their publish time.
            let Some(first) = policy.slot_at(video.published_at, video.published_at.max(tracked_at)) else {
                continue;
            };
            let expected: Vec<Slot> = policy
                .all_slots(video.published_at)
                .into_iter()
                .filter(|s| *s >= first && s.start() <= horizon)
                .collect();
            let recorded: std::collections::HashSet<Slot> = records.iter().map(|r| r.slot).collect();
            report.duplicate_records += records.len() - recorded.len();
            report.slots_expected += expected.len();
            let hits = expected.iter().filter(|s| recorded.contains(s)).count();
            for slot in
                expected.iter().filter(|s| !recorded.contains(s)).take(10 - report.missing_examples.len().min(10))
            {
                report.missing_examples.push(format!("{}@{slot}", video.id));
            }
            report.slots_recorded += hits;
            report.slots_missing += expected.len() - hits;
            // A video's first measurement is due when the video is found, not at its slot's start.
            lags.extend(
                records.iter().skip(1).map(|r| (r.measured_at - r.slot.start()).num_milliseconds() as f64 / 1000.0),
            );
            for change in store.changes(&video.id).await? {
                *detected.entry((video.id.to_string(), change.change.kind)).or_default() += 1;
            }
            let (Some(first_seen), Some(last_seen)) = (records.first(), records.last()) else { continue };
            for change in true_changes.iter().filter(|c| c.video_id == video.id) {
                if change.at > first_seen.measured_at && change.at <= last_seen.measured_at {
                    let kind = match change.kind {
                        VariantKind::Thumbnail => ChangeKind::Thumbnail,
                        VariantKind::Title => ChangeKind::Title,
                    };
                    *truth.entry((video.id.to_string(), kind)).or_default() += 1;
                }
            }
        }
    }
    let count =
        |m: &BTreeMap<(String, ChangeKind), usize>, kind| m.iter().filter(|(k, _)| k.1 == kind).map(|(_, n)| n).sum();
    report.thumbnail_changes_true = count(&truth, ChangeKind::Thumbnail);
    report.title_changes_true = count(&truth, ChangeKind::Title);
    report.thumbnail_changes_detected = count(&detected, ChangeKind::Thumbnail);
    report.title_changes_detected = count(&detected, ChangeKind::Title);
    for key in truth.keys().chain(detected.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (t, d) = (truth.get(key).copied().unwrap_or(0), detected.get(key).copied().unwrap_or(0));
        report.false_positives += d.saturating_sub(t);
        report.false_negatives += t.saturating_sub(d);
    }
    lags.sort_by(f64::total_cmp);
    report.p95_lag_seconds =
        lags.get((lags.len() * 95 / 100).min(lags.len().saturating_sub(1))).copied().unwrap_or(0.0);
    report.max_lag_seconds = lags.last().copied().unwrap_or(0.0);
    Ok(report)
}

pub async fn run(args: DemoArgs, settings: Settings) -> anyhow::Result<()> {
    fresh_dir(&args.data_dir)?;
    let opts = HarnessOptions {
        seed: args.seed,
        world_channels: 200,
        speed: args.speed,
        page_bytes: args.page_bytes,
        faults: tubewatch_sim::FaultConfig::default(),
        data_dir: args.data_dir.clone(),
    };
    let h = Harness::start(settings, opts).await?;
    let app = &h.app;
    let listener = match tokio::net::TcpListener::bind(h.settings.listen).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    let url = format!("http://{}", listener.local_addr()?);
    let web = tubewatch_web::router(app.web_state()?);
    let shutdown = CancellationToken::new();
    let web_token = shutdown.clone();
    let web_task = tokio::spawn(async move {
        axum::serve(listener, web.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(async move { web_token.cancelled().await })
            .await
    });
    let worker_app = app.clone();
    let worker_token = shutdown.clone();
    let worker = tokio::spawn(async move { worker_app.run_worker(worker_token).await });

    println!("tubewatch demo: simulator at {}, service at {url}", h.sim.base_url);
    println!("clock: {} (one virtual day every {:.1} s)", h.clock, 86_400.0 / args.speed);
    let channels = h.busiest_channels(args.channels, args.days);
    // A premium demo user owns the tracked channels, so the web UI has something to show.
    let password = tubewatch_web::auth::random_secret();
    let password_hash = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || tubewatch_web::auth::hash_password_blocking(&password))
            .await?
            .map_err(|e| anyhow::anyhow!("hashing the demo password: {e}"))?
    };
    let user = NewUser {
        email: Email::parse(DEMO_EMAIL)?,
        password_hash,
        plan: Plan::Premium,
        is_admin: false,
        email_verified: true,
    };
    let user = app.store.create_user(&user, app.clock.now()).await?;
    let tracker = app.tracker()?;
    for id in &channels {
        tracker.track_channel(Some(user.id), id.as_str()).await?;
    }
    println!("tracking {} simulated channels for {} virtual days\n", channels.len(), args.days);

    let end = h.start + Duration::days(i64::from(args.days));
    let wall = Instant::now();
    let mut last_line = Instant::now() - StdDuration::from_secs(10);
    while h.clock.now() < end {
        if last_line.elapsed() >= StdDuration::from_secs(1) {
            let (videos, records, changes) = counts(&*app.store, &channels).await?;
            let day = (h.clock.now() - h.start).num_minutes() as f64 / 1440.0;
            println!(
                "  day {day:>4.1}/{}: {videos:>4} videos tracked, {records:>6} views records, {changes:>3} changes detected",
                args.days
            );
            last_line = Instant::now();
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let policy = app.pipeline_config()?;
    let report = tracking_report(&*app.store, &h.sim.sim, &policy.policy, &channels, h.start, h.clock.now()).await?;
    println!("\nafter {} virtual days ({:.0} s):", args.days, wall.elapsed().as_secs_f64());
    println!("  videos tracked:        {}", report.videos_tracked);
    println!(
        "  views records:         {} of {} slots expected ({} missing)",
        report.slots_recorded, report.slots_expected, report.slots_missing
    );
    println!(
        "  thumbnail changes:     {} detected, {} in the simulator's truth",
        report.thumbnail_changes_detected, report.thumbnail_changes_true
    );
    println!(
        "  title changes:         {} detected, {} in the truth",
        report.title_changes_detected, report.title_changes_true
    );
    println!("  slot lag p95:          {:.0} s (virtual)", report.p95_lag_seconds);
    if let Some(video) = first_changed_video(&*app.store, &channels).await? {
        println!(
            "\nA video with a detected change:  tubewatch --database-url {} views {video}",
            h.settings.database_url
        );
    }
    let browse = if args.keep_running { "" } else { " (run with --keep-running to browse it)" };
    println!("\nWeb UI: {url}/login   as {DEMO_EMAIL} with password {password}{browse}");
    println!("Data: {}   Health: {url}/healthz   Metrics: {url}/metrics", args.data_dir.display());
    if args.keep_running {
        println!("\nserving at {url}; Ctrl-C to stop");
        crate::app::shutdown_signal().await;
    }
    shutdown.cancel();
    worker.await??;
    web_task.await??;
    Ok(())
}

async fn counts(store: &dyn Store, channels: &[ChannelId]) -> anyhow::Result<(usize, usize, usize)> {
    let (mut videos, mut records, mut changes) = (0, 0, 0);
    for channel in channels {
        for video in store.channel_videos(channel).await? {
            videos += 1;
            records += store.views(&video.id).await?.len();
            changes += store.changes(&video.id).await?.len();
        }
    }
    Ok((videos, records, changes))
}

async fn first_changed_video(store: &dyn Store, channels: &[ChannelId]) -> anyhow::Result<Option<String>> {
    for channel in channels {
        for video in store.channel_videos(channel).await? {
            if !store.changes(&video.id).await?.is_empty() {
                return Ok(Some(video.id.to_string()));
            }
        }
    }
    Ok(None)
}
