//! `tubewatch eval tracking`: runs the pipeline against the simulator for some virtual days,
//! with real `tubewatch worker` processes (optionally killed with SIGKILL and restarted), and
//! compares what was stored with the simulator's truth.

use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration as StdDuration, Instant};

use anyhow::Context;
use chrono::Duration;
use clap::{Args, Subcommand};
use serde::Serialize;
use tubewatch_core::{ChannelId, Clock};
use tubewatch_sim::{FaultConfig, FaultSpec};

use crate::demo::{Harness, HarnessOptions, TrackingReport, pending_before, tracking_report};
use crate::progress::Progress;
use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Tracking: missing slots, duplicates, change detection and lag against the truth.
    Tracking(TrackingArgs),
    /// A/B tests: correct verdicts and false winners per true lift, ours and the naive method.
    Abtest(crate::eval_abtest::AbtestArgs),
    /// Weekly outliers: precision and recall against the truth, ours and the naive baseline.
    Outliers(crate::eval_outliers::OutliersArgs),
    /// The simulator's world: each calibrated statistic of a sampled world beside its published
    /// value and tolerance; exits 1 when one is outside.
    World(WorldArgs),
}

#[derive(Debug, Args)]
pub struct WorldArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Channels sampled.
    #[arg(long, default_value_t = 2_000)]
    pub channels: u32,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tubewatch eval world`.
fn world(args: WorldArgs) -> anyhow::Result<ExitCode> {
    use tubewatch_sim::calibration::{Sample, measure};
    let params = tubewatch_sim::WorldParams { seed: args.seed, ..tubewatch_sim::WorldParams::default() };
    let progress = Progress::spinner(&format!("eval world: sampling {} channels", args.channels));
    let report = measure(params, Sample { channels: args.channels, ..Sample::default() });
    progress.finish();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "The simulated world (seed {}, {} channels) against published figures:\n",
            report.seed, report.channels
        );
        println!("  {:<38} {:>10}  {:<19} {:>6}  published", "statistic", "measured", "tolerance", "n");
        for s in &report.statistics {
            println!(
                "  {:<38} {:>10.4}  {:<19} {:>6}  {}{} ({})",
                s.name,
                s.measured,
                format!("[{}, {}]", s.low, s.high),
                s.sample,
                if s.within { "" } else { "OUTSIDE; " },
                s.published,
                s.source
            );
        }
        let outside = report.statistics.iter().filter(|s| !s.within).count();
        println!(
            "\n  {} of {} statistics within tolerance",
            report.statistics.len() - outside,
            report.statistics.len()
        );
    }
    Ok(if report.all_within() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[derive(Debug, Args)]
pub struct TrackingArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Channels tracked.
    #[arg(long, default_value_t = 50)]
    pub channels: u32,
    /// Virtual days.
    #[arg(long, default_value_t = 60)]
    pub days: u32,
    /// Virtual seconds per real second.
    #[arg(long, default_value_t = 7200.0)]
    pub speed: f64,
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Also run a `tubewatch serve` process (web edge and workers) sharing the work.
    #[arg(long)]
    pub with_serve: bool,
    /// Turn on the simulator's faults (5xx, 429, timeouts, truncated bodies, bot checks, wrong
    /// video, feed outages) at a few percent.
    #[arg(long)]
    pub faults: bool,
    /// Kill one worker with SIGKILL every this many real seconds, and start a new one.
    #[arg(long)]
    pub kill_worker_every: Option<f64>,
    /// Lease held by a worker, in real seconds (a killed worker's targets wait this long); above
    /// the longest check (three requests of at most one second each here).
    #[arg(long, default_value_t = 5)]
    pub lease_seconds: u32,
    /// Request timeout in real seconds (a hung request costs this much clock time × speed).
    #[arg(long, default_value_t = 1)]
    pub timeout_seconds: u64,
    /// Watch page size served by the simulator.
    #[arg(long, default_value_t = 100_000)]
    pub page_bytes: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct EvalReport {
    seed: u64,
    virtual_days: u32,
    wall_seconds: f64,
    workers: usize,
    faults: bool,
    workers_killed: usize,
    #[serde(flatten)]
    tracking: TrackingReport,
    /// The last errors of targets that failed most recently.
    recent_errors: Vec<String>,
}

fn fault_config() -> FaultConfig {
    let spec = FaultSpec {
        rate_429: 0.01,
        rate_500: 0.01,
        rate_503: 0.01,
        rate_hang: 0.005,
        rate_truncate: 0.01,
        rate_bot_check: 0.02,
        rate_consent: 0.005,
        rate_wrong_video: 0.005,
        rate_outage: 0.01,
        ..FaultSpec::default()
    };
    FaultConfig { default: spec, hang_secs: 5, ..FaultConfig::default() }
}

pub async fn run(cmd: EvalCommand, settings: Settings) -> anyhow::Result<ExitCode> {
    match cmd {
        EvalCommand::Tracking(args) => tracking(args, settings).await,
        EvalCommand::Abtest(args) => crate::eval_abtest::run(args, settings).await,
        EvalCommand::Outliers(args) => crate::eval_outliers::run(args, settings).await,
        EvalCommand::World(args) => tokio::task::spawn_blocking(move || world(args)).await?,
    }
}

struct Workers {
    config: std::path::PathBuf,
    log: std::path::PathBuf,
    children: Vec<Child>,
}

impl Workers {
    /// Starts `tubewatch worker`, or with `serve` a `tubewatch serve` (web edge and workers).
    fn spawn(&self, serve: bool) -> anyhow::Result<Child> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let command: &[&str] = if serve { &["--listen", "127.0.0.1:0", "serve"] } else { &["worker"] };
        Command::new(std::env::current_exe()?)
            .args(["--config", &self.config.display().to_string()])
            .args(command)
            .env_remove("TUBEWATCH_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting a worker process")
    }

    fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn tracking(args: TrackingArgs, mut settings: Settings) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    settings.worker.lease_seconds = args.lease_seconds;
    settings.youtube.timeout_seconds = args.timeout_seconds;
    let opts = HarnessOptions {
        world: tubewatch_sim::WorldParams {
            seed: args.seed,
            channels: args.channels.max(100) * 2,
            ..tubewatch_sim::WorldParams::default()
        },
        speed: args.speed,
        page_bytes: args.page_bytes,
        faults: if args.faults { fault_config() } else { FaultConfig::default() },
        data_dir: dir.path().to_path_buf(),
    };
    let h = Harness::start(settings, opts).await?;
    let config = dir.path().join("tubewatch.toml");
    std::fs::write(&config, toml::to_string(&h.settings)?)?;
    let channels = track_channels(&h, args.channels).await?;
    let mut workers = Workers::start(config, dir.path().join("workers.log"), &args)?;
    let wall = Instant::now();
    let progress = Progress::new("eval tracking", u64::from(args.days) * 24, "virtual hours");
    let killed = workers.run_days(&h, &args, &progress).await?;
    // Let the workers catch up with every channel and video check due up to an hour before the
    // end (a slow machine lags; a killed worker's leases must expire first), then stop them.
    let horizon = h.clock.now() - Duration::hours(1);
    let catch_up = Instant::now() + StdDuration::from_secs(180);
    while Instant::now() < catch_up && pending_before(&*h.app.store, horizon).await? > 0 {
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let finished_at = horizon + Duration::hours(1);
    progress.finish();
    workers.stop();
    let pipeline = h.app.pipeline_config()?;
    let report = EvalReport {
        seed: args.seed,
        virtual_days: args.days,
        wall_seconds: wall.elapsed().as_secs_f64(),
        workers: args.workers,
        faults: args.faults,
        workers_killed: killed,
        tracking: tracking_report(&*h.app.store, &h.sim.sim, &pipeline.policy, &channels, h.start, finished_at).await?,
        recent_errors: h
            .app
            .store
            .failing_targets(10)
            .await?
            .into_iter()
            .map(|t| format!("{} {}: {}", t.kind, t.subject, t.last_error.unwrap_or_default()))
            .collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print();
    }
    let t = &report.tracking;
    if t.slots_missing > 0 {
        // Show what the worker processes said.
        let log = std::fs::read_to_string(&workers.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        eprintln!("worker log (last lines, newest first):\n{}", tail.join("\n"));
    }
    let exact = t.slots_missing == 0 && t.duplicate_records == 0 && t.false_positives == 0 && t.false_negatives == 0;
    Ok(if exact { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Tracks the world's first `count` channels (by id) for the operator; returns their ids.
async fn track_channels(h: &Harness, count: u32) -> anyhow::Result<Vec<ChannelId>> {
    let channels = {
        let mut ids: Vec<_> = h.sim.sim.channels().iter().take(count as usize).map(|c| c.id.clone()).collect();
        ids.sort();
        ids
    };
    let tracker = h.app.tracker()?;
    for id in &channels {
        // A feed outage may hit the first read: try again, as a user would.
        let mut tries = 0;
        while let Err(e) = tracker.track_channel(None, id.as_str()).await {
            tries += 1;
            anyhow::ensure!(tries < 20, "tracking {id}: {e}");
        }
    }
    Ok(channels)
}

impl Workers {
    /// Starts the eval's worker processes, and its `tubewatch serve` last when asked for.
    fn start(config: std::path::PathBuf, log: std::path::PathBuf, args: &TrackingArgs) -> anyhow::Result<Self> {
        let mut workers = Workers { config, log, children: Vec::new() };
        for _ in 0..args.workers.max(1) {
            let child = workers.spawn(false)?;
            workers.children.push(child);
        }
        if args.with_serve {
            let child = workers.spawn(true)?;
            workers.children.push(child);
        }
        Ok(workers)
    }

    /// Lets the virtual days pass, killing a process (and starting its replacement) every
    /// `kill_worker_every` real seconds; returns how many were killed.
    async fn run_days(&mut self, h: &Harness, args: &TrackingArgs, progress: &Progress) -> anyhow::Result<usize> {
        let end = h.start + Duration::days(i64::from(args.days));
        let mut killed = 0;
        let mut next_kill = args.kill_worker_every.map(|s| Instant::now() + StdDuration::from_secs_f64(s));
        while h.clock.now() < end {
            progress.set(u64::try_from((h.clock.now() - h.start).num_hours()).unwrap_or(0));
            if let (Some(at), Some(every)) = (next_kill, args.kill_worker_every)
                && Instant::now() >= at
            {
                let i = killed % self.children.len();
                self.children[i].kill()?; // SIGKILL: no chance to finish or release anything
                self.children[i].wait()?;
                self.children[i] = self.spawn(args.with_serve && i == args.workers.max(1))?;
                killed += 1;
                next_kill = Some(Instant::now() + StdDuration::from_secs_f64(every));
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        Ok(killed)
    }
}

impl EvalReport {
    fn print(&self) {
        let t = &self.tracking;
        println!(
            "{} videos on {} channels over {} virtual days ({:.0} s)",
            t.videos_tracked, t.channels, self.virtual_days, self.wall_seconds
        );
        println!(
            "slots: {} expected, {} recorded, {} missing, {} duplicates",
            t.slots_expected, t.slots_recorded, t.slots_missing, t.duplicate_records
        );
        println!("thumbnail changes: {} true, {} detected", t.thumbnail_changes_true, t.thumbnail_changes_detected);
        println!("title changes: {} true, {} detected", t.title_changes_true, t.title_changes_detected);
        println!(
            "false positives {}, false negatives {}, p95 lag {:.0} s",
            t.false_positives, t.false_negatives, t.p95_lag_seconds
        );
    }
}
