//! Benchmarks that print figures: `bench parse` (the parsers), `bench burst` (one hourly slot
//! at the design's full scale against a simulator running as its own process) and `bench
//! scaleout` (the burst on several worker processes, in `bench_scaleout`) and `bench chart-api`
//! (the chart's API under load, in `bench_chart`).

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tubewatch_core::{AcceleratedClock, Clock, Resolution, SchedulePolicy};
use tubewatch_sim::WorldParams;
use tubewatch_sim::world::World;
use tubewatch_store::TargetKind;
use tubewatch_worker::{Blobs, Metrics, Pipeline, PipelineConfig, RunnerConfig};
use tubewatch_youtube::{ViewsEndpoint, YoutubeClient, YoutubeConfig};

use crate::bench_support::{cpu_seconds, populate, proc_cpu, start_sim};
use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Watch-page extraction on a 1 MB page and feed parsing.
    Parse,
    /// One hourly burst at full scale: every channel feed and every video checked at once.
    Burst(BurstArgs),
    /// The hourly burst handled by 1, 2 and 4 `tubewatch worker` processes sharing one
    /// PostgreSQL, one S3 bucket and the simulator; a worker killed mid-burst loses nothing.
    Scaleout(crate::bench_scaleout::ScaleoutArgs),
    /// The chart API (`/api/v1/videos/{id}/series`) at a steady request rate on loopback: p50/p99.
    ChartApi(crate::bench_chart::ChartArgs),
}

#[derive(Debug, Args)]
pub struct BurstArgs {
    /// Monitored channels (their feeds are read in the burst).
    #[arg(long, default_value_t = 10_000)]
    pub channels: u32,
    /// Videos measured in the burst.
    #[arg(long, default_value_t = 90_000)]
    pub videos: u32,
    /// Median latency the simulator adds to every request (uniform on 0..2×median).
    #[arg(long, default_value_t = 200)]
    pub latency_ms: u64,
    /// Watch page size served by the simulator.
    #[arg(long, default_value_t = 1_000_000)]
    pub page_bytes: usize,
    /// Checks in flight at once (each holds a watch page in memory while it is parsed). The
    /// round's time is about checks × round trip ÷ this: 100,000 checks of two parallel requests
    /// at a 200 ms median latency (about 270 ms a check) need 230 in flight to end within 120 s
    /// with no time to spare, so the default leaves room for the CPU's share of each check.
    #[arg(long, default_value_t = 512)]
    pub concurrency: usize,
    /// Port for the simulator process.
    #[arg(long, default_value_t = 18_090)]
    pub sim_port: u16,
    /// Ask for gzip (`Accept-Encoding: gzip`; the simulator then compresses pages, feeds and
    /// InnerTube JSON as YouTube does) or not.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub gzip: String,
    /// Where checks read views and title: `player` (InnerTube with a `$fields` mask) or `watch`
    /// (the watch page).
    #[arg(long, default_value = "player", value_parser = ["player", "watch"])]
    pub views_from: String,
    /// Videos the simple peer (`bench/peer_burst.py`: a thread pool, regex and sqlite3) checks
    /// against the same simulator after the rounds, for comparison; 0 skips it.
    #[arg(long, default_value_t = 5_000)]
    pub peer_videos: u32,
    /// Threads of the async runtime the worker runs on (default: the `worker.runtime_threads`
    /// setting, else one per CPU core).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub runtime_threads: Option<usize>,
    /// Threads of the peer's pool.
    #[arg(long, default_value_t = 64)]
    pub peer_threads: u32,
    #[arg(long)]
    pub json: bool,
}

/// Real time plus an offset that can jump ahead: the bench's "hour" starts when it says so.
#[derive(Debug, Default)]
struct OffsetClock(Mutex<Duration>);

impl OffsetClock {
    fn jump_to(&self, virtual_now: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = virtual_now - Utc::now();
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Serialize)]
struct Round {
    /// First round: every video's baseline (thumbnail archived); second: the steady state.
    round: &'static str,
    checks: u64,
    seconds_after_the_hour: f64,
    checks_per_second: f64,
    cpu_seconds: f64,
    checks_per_cpu_second: f64,
    /// The simulator process's CPU in the round (not counted in `cpu_seconds`).
    simulator_cpu_seconds: f64,
    failed_checks: u64,
    peak_rss_mib: f64,
    /// Store transactions that wrote video checks, and video checks per such transaction.
    check_batches: u64,
    checks_per_batch: f64,
}

#[derive(Debug, Serialize)]
struct BurstReport {
    channels: u32,
    videos: u32,
    median_latency_ms: u64,
    page_bytes: usize,
    concurrency: usize,
    /// The async runtime's threads (`--runtime-threads`).
    runtime_threads: usize,
    database: String,
    gzip: bool,
    views_from: String,
    setup_seconds: f64,
    rounds: Vec<Round>,
    bytes_per_views_record: f64,
    /// The simple peer's figures (`bench/peer_burst.py`), when it ran.
    peer: Option<serde_json::Value>,
}

pub fn parse() -> anyhow::Result<()> {
    let working = crate::progress::Progress::spinner("bench parse: parsing the recorded pages");
    let report = tubewatch_youtube::bench::bench_parse();
    working.finish();
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

pub async fn run(cmd: BenchCommand, settings: Settings) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Parse => parse(),
        BenchCommand::Burst(args) => burst(args, settings).await,
        BenchCommand::Scaleout(args) => crate::bench_scaleout::run(args, settings).await,
        BenchCommand::ChartApi(args) => crate::bench_chart::run(args, settings).await,
    }
}

/// Starts a new peak-RSS measurement (Linux: writing 5 to `clear_refs` resets `VmHWM`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size of this process in MiB, from `/proc/self/status`.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

async fn burst(args: BurstArgs, mut settings: Settings) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let sqlite = settings.database_url == Settings::default().database_url;
    if sqlite {
        settings.database_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    }
    let setup = Instant::now();
    let setting_up = crate::progress::Progress::spinner("bench burst: populating the database");
    // The hour of the burst: a month into the simulated world.
    let hour = WorldParams::default().epoch + Duration::days(30) + Duration::hours(12);
    let sim_clock = AcceleratedClock::starting_now(hour - Duration::seconds(2), 1.0)?;
    let sim = start_sim(args.channels, &sim_clock, args.sim_port, args.page_bytes, args.latency_ms).await?;

    let store = crate::app::open_store(&settings).await?;
    let world = World::new(WorldParams { channels: args.channels, ..WorldParams::default() });
    // Every video hourly (the seed's burst): fine tracking stretched over the whole 60 days.
    let policy = SchedulePolicy::new(Resolution::HOURLY, 59, 60)?;
    let videos = populate(&*store, &world, &policy, args.videos, hour).await?;
    let clock = Arc::new(OffsetClock::default());
    let pipeline = Pipeline {
        store: store.clone(),
        youtube: YoutubeClient::new(burst_youtube_config(&args)?)?,
        blobs: Blobs::local(&dir.path().join("blobs"))?,
        clock: clock.clone(),
        metrics: Arc::new(Metrics::default()),
        writer: Default::default(),
        config: PipelineConfig { policy, ..PipelineConfig::default() },
    };
    let setup_seconds = setup.elapsed().as_secs_f64();
    setting_up.finish();
    let db = dir.path().join("bench.db");
    let mut rounds = Vec::new();
    let mut bytes_per_record = f64::NAN;
    for (round, at) in [("baseline", hour), ("steady", hour + Duration::hours(1))] {
        store.checkpoint().await?;
        let size_before = file_size(&db) + file_size(&db.with_extension("db-wal"));
        let burst_round = BurstRound { name: round, at, videos: videos.len(), sim_pid: sim.0.id() };
        rounds.push(burst_round.run(&args, &pipeline, &clock).await?);
        if round == "steady" && sqlite {
            // The log emptied into the file on both sides: the growth is the data's, not how
            // much of the WAL happened to be in use.
            store.checkpoint().await?;
            let size_after = file_size(&db) + file_size(&db.with_extension("db-wal"));
            bytes_per_record = size_after.saturating_sub(size_before) as f64 / videos.len().max(1) as f64;
        }
    }
    let peer = if args.peer_videos > 0 {
        let ids: Vec<String> = videos.iter().take(args.peer_videos as usize).map(|id| id.to_string()).collect();
        Some(run_peer(&args, &ids, dir.path()).await?)
    } else {
        None
    };
    drop(sim);
    let report = BurstReport {
        channels: args.channels,
        videos: u32::try_from(videos.len()).unwrap_or(u32::MAX),
        median_latency_ms: args.latency_ms,
        page_bytes: args.page_bytes,
        concurrency: args.concurrency,
        runtime_threads: tokio::runtime::Handle::current().metrics().num_workers(),
        database: if sqlite { "sqlite".into() } else { crate::app::redact_url(&settings.database_url) },
        gzip: args.gzip == "on",
        views_from: args.views_from.clone(),
        setup_seconds,
        rounds,
        bytes_per_views_record: bytes_per_record,
        peer,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print(&args);
    }
    Ok(())
}

/// The client of the burst's simulator.
fn burst_youtube_config(args: &BurstArgs) -> anyhow::Result<YoutubeConfig> {
    let mut youtube = YoutubeConfig::single_base(&format!("http://127.0.0.1:{}", args.sim_port))?;
    // A check asks www.youtube.com (views) and i.ytimg.com (thumbnail) at once, each host behind
    // its own gate of `concurrency`; the simulator serves both on one host, whose gate then takes
    // two requests per check (with one gate of `concurrency`, half as many checks were in flight).
    youtube.max_concurrent_per_host = args.concurrency * 2;
    youtube.gzip = args.gzip == "on";
    youtube.views_from = ViewsEndpoint::parse(&args.views_from).unwrap_or_default();
    Ok(youtube)
}

/// One round of the burst: the hour `at` begins and a worker checks everything due.
struct BurstRound {
    name: &'static str,
    at: DateTime<Utc>,
    /// Videos due in the round (the progress bar's length).
    videos: usize,
    /// The simulator process, whose CPU is measured apart.
    sim_pid: u32,
}

impl BurstRound {
    /// Jumps the clock to just before the hour, runs a worker until nothing is due or leased, and
    /// measures the round.
    async fn run(&self, args: &BurstArgs, pipeline: &Pipeline, clock: &OffsetClock) -> anyhow::Result<Round> {
        let (round, at) = (self.name, self.at);
        let done_before = runs(&pipeline.metrics);
        let batches_before = check_batches(&pipeline.metrics);
        clock.jump_to(at - Duration::milliseconds(500));
        reset_peak_rss();
        let cpu = cpu_seconds();
        let sim_cpu = proc_cpu(self.sim_pid).map_or(f64::NAN, |(own, _)| own);
        let shutdown = CancellationToken::new();
        let runner = RunnerConfig { batch_size: 500, concurrency: args.concurrency, ..RunnerConfig::new("bench") };
        let worker = tokio::spawn(tubewatch_worker::run_worker(pipeline.clone(), runner, shutdown.clone()));
        let progress =
            crate::progress::Progress::new(&format!("bench burst: {round}"), self.videos as u64 + 1, "checks");
        // Done when nothing is due or leased any more. Asked of the due-time index: counting
        // every target (`queue_stats`) five times a second cost this process a core's tenth at
        // full scale, counted as if the worker spent it.
        let finished = loop {
            tokio::time::sleep(StdDuration::from_millis(200)).await;
            progress.set(runs(&pipeline.metrics).0 - done_before.0);
            let now = clock.now();
            if now > at && !pipeline.store.queue_busy(now).await? {
                break now;
            }
        };
        progress.finish();
        shutdown.cancel();
        worker.await?;
        let seconds = (finished - at).num_milliseconds() as f64 / 1000.0;
        let (claimed, completed) = runs(&pipeline.metrics);
        let checks = claimed - done_before.0;
        let failed = checks.saturating_sub(completed - done_before.1);
        let cpu = cpu_seconds() - cpu;
        let sim_cpu = proc_cpu(self.sim_pid).map_or(f64::NAN, |(own, _)| own) - sim_cpu;
        Ok(Round {
            round,
            checks,
            seconds_after_the_hour: seconds,
            checks_per_second: checks as f64 / seconds.max(0.001),
            cpu_seconds: cpu,
            checks_per_cpu_second: checks as f64 / cpu.max(0.001),
            simulator_cpu_seconds: sim_cpu,
            failed_checks: failed,
            peak_rss_mib: peak_rss_mib(),
            check_batches: check_batches(&pipeline.metrics).0 - batches_before.0,
            checks_per_batch: (check_batches(&pipeline.metrics).1 - batches_before.1)
                / (check_batches(&pipeline.metrics).0 - batches_before.0).max(1) as f64,
        })
    }
}

impl BurstReport {
    /// The report as text, a line per round and one for the peer.
    fn print(&self, args: &BurstArgs) {
        println!("{} checks in flight, {} runtime threads", self.concurrency, self.runtime_threads);
        for r in &self.rounds {
            println!(
                "{}: {} checks done {:.1} s after the hour ({:.0}/s), {:.1} CPU s ({:.0} checks per CPU s; simulator {:.1} CPU s), peak RSS {:.0} MiB, {} failed, {:.0} video checks per store transaction",
                r.round,
                r.checks,
                r.seconds_after_the_hour,
                r.checks_per_second,
                r.cpu_seconds,
                r.checks_per_cpu_second,
                r.simulator_cpu_seconds,
                r.peak_rss_mib,
                r.failed_checks,
                r.checks_per_batch
            );
        }
        println!("{:.0} bytes per views record", self.bytes_per_views_record);
        if let Some(peer) = &self.peer {
            let num = |k: &str| peer.get(k).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
            println!(
                "peer (bench/peer_burst.py, {} threads): {:.0} checks in {:.1} s ({:.0}/s), {:.1} CPU s ({:.0} checks per CPU s), peak RSS {:.0} MiB, {:.0} bytes per record, {:.0} failed",
                args.peer_threads,
                num("checks"),
                num("seconds"),
                num("checks_per_second"),
                num("cpu_seconds"),
                num("checks_per_cpu_second"),
                num("peak_rss_mib"),
                num("bytes_per_record"),
                num("failed_checks"),
            );
        }
    }
}

/// Runs the simple peer (`bench/peer_burst.py`) on `ids` against the bench's simulator and
/// returns the JSON it prints.
async fn run_peer(args: &BurstArgs, ids: &[String], dir: &Path) -> anyhow::Result<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/peer_burst.py");
    let list = dir.join("peer_ids.txt");
    std::fs::write(&list, ids.join("\n"))?;
    let output = tokio::process::Command::new("python3")
        .arg(&script)
        .args(["--base", &format!("http://127.0.0.1:{}", args.sim_port)])
        .arg("--ids")
        .arg(&list)
        .arg("--db")
        .arg(dir.join("peer.db"))
        .args(["--threads", &args.peer_threads.to_string(), "--gzip", &args.gzip])
        .args(["--endpoint", &args.views_from])
        .stderr(Stdio::inherit())
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!("{} failed ({})", script.display(), output.status);
    }
    serde_json::from_slice(&output.stdout).context("reading the peer's JSON")
}

/// Store transactions that wrote video checks so far, and the checks they wrote (from the
/// batch-size histogram's count and sum in the Prometheus text).
fn check_batches(metrics: &Metrics) -> (u64, f64) {
    let text = metrics.render();
    let value = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(0.0)
    };
    (value("tubewatch_video_check_batch_size_count ") as u64, value("tubewatch_video_check_batch_size_sum "))
}

/// Claimed and completed runs so far (a claimed run that did not complete failed).
fn runs(metrics: &Metrics) -> (u64, u64) {
    [TargetKind::Channel, TargetKind::Video].iter().fold((0, 0), |(claimed, completed), kind| {
        let label = Metrics::kind(kind.as_str());
        (
            claimed + metrics.claimed.get_or_create(&label).get(),
            completed + metrics.completed.get_or_create(&label).get(),
        )
    })
}
