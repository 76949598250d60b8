//! `tubewatch bench scaleout`: the hourly burst handled by 1, 2 and 4 `tubewatch worker`
//! processes — separate OS processes sharing no memory and no folder — on one PostgreSQL server,
//! one S3-compatible bucket and the simulator (its own process). Per worker count, in a database of
//! its own: a baseline round (every video's first check, its thumbnails archived to the bucket)
//! and a steady round an hour later (the burst of every hour after). Then, with
//! `--kill-round-workers`, a third round in which one worker is killed with SIGKILL when half the
//! burst is done: every slot must be recorded exactly once. Prints checks per second, the workers'
//! CPU, PostgreSQL's CPU (its processes on this machine, from `/proc`) and PostgreSQL work per check
//! (`pg_stat_database`; statements when `pg_stat_statements` is loaded).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use futures::StreamExt;
use serde::Serialize;
use tubewatch_core::{AcceleratedClock, Clock, Resolution, SchedulePolicy, VideoId};
use tubewatch_sim::WorldParams;
use tubewatch_sim::world::World;
use tubewatch_store::pg_server::PgServer;
use tubewatch_store::{Store, StoreOptions, TargetKind, TargetState};
use tubewatch_worker::Blobs;

use crate::bench_support::{populate, proc_cpu, start_sim};
use crate::settings::{S3Settings, Secret, Settings};

#[derive(Debug, Args)]
pub struct ScaleoutArgs {
    /// Worker process counts to measure, in order.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub workers: Vec<usize>,
    /// Monitored channels (their feeds are read in the burst).
    #[arg(long, default_value_t = 200)]
    pub channels: u32,
    /// Videos measured in the burst (at most the world's recent videos of those channels).
    #[arg(long, default_value_t = 2_000)]
    pub videos: u32,
    /// Median latency the simulator adds to every request (uniform on 0..2×median).
    #[arg(long, default_value_t = 200)]
    pub latency_ms: u64,
    /// Watch page size served by the simulator.
    #[arg(long, default_value_t = 100_000)]
    pub page_bytes: usize,
    /// Checks in flight at once in each worker process (`worker.concurrency`).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Workers in the round where one of them is killed mid-burst (one of --workers; 0: no such
    /// round).
    #[arg(long, default_value_t = 2)]
    pub kill_round_workers: usize,
    /// `worker.lease_seconds`: how long a killed worker's claimed targets wait for another worker.
    #[arg(long, default_value_t = 10)]
    pub lease_seconds: u32,
    /// The PostgreSQL server; the bench makes (and drops) databases of its own there.
    #[arg(long, env = "TUBEWATCH_TEST_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres_url: String,
    /// Port for the simulator process.
    #[arg(long, default_value_t = 18_091)]
    pub sim_port: u16,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct RoundReport {
    workers: usize,
    /// `baseline` (first checks, thumbnails archived), `steady` (an hour later) or `kill`.
    round: &'static str,
    /// The burst's checks: every channel feed and every video due at the hour.
    checks: u64,
    seconds_after_the_hour: f64,
    checks_per_second: f64,
    worker_cpu_seconds: f64,
    checks_per_worker_cpu_second: f64,
    /// Every process of the PostgreSQL server (other clients of the server included), when it
    /// runs on this machine.
    postgres_cpu_seconds: Option<f64>,
    postgres_transactions_per_check: f64,
    /// With `pg_stat_statements` loaded on the server.
    postgres_statements_per_check: Option<f64>,
    postgres_rows_written_per_check: f64,
    simulator_cpu_seconds: f64,
    /// Targets whose last attempt failed when the round ended.
    failed_checks: u64,
    slots_expected: u64,
    slots_missing: u64,
    duplicate_records: u64,
    workers_killed: usize,
    /// Share of the burst done when the worker was killed.
    killed_at_fraction_done: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Speedup {
    workers: usize,
    steady_checks_per_second: f64,
    times_one_worker: f64,
}

#[derive(Debug, Serialize)]
struct ScaleoutReport {
    channels: u32,
    videos: u64,
    median_latency_ms: u64,
    page_bytes: usize,
    concurrency_per_worker: usize,
    lease_seconds: u32,
    cores: usize,
    postgres: String,
    s3: String,
    rounds: Vec<RoundReport>,
    speedup: Vec<Speedup>,
    /// Videos whose archived thumbnail was read back from the bucket, of those sampled.
    thumbnails_found_in_s3: u64,
    thumbnails_sampled: u64,
}

/// The bucket: the `[s3]` settings, or else the test server's (`TUBEWATCH_TEST_S3_*`, printed by
/// `scripts/s3-test-server`).
fn s3_settings(settings: &Settings) -> anyhow::Result<S3Settings> {
    if settings.s3.bucket.is_some() {
        return Ok(settings.s3.clone());
    }
    let var = |name: &str| std::env::var(format!("TUBEWATCH_TEST_S3_{name}")).ok().filter(|v| !v.is_empty());
    let endpoint = var("ENDPOINT").context(
        "bench scaleout needs an S3 bucket: set [s3] (TUBEWATCH_S3_BUCKET, …) or the test server's \
         TUBEWATCH_TEST_S3_* (eval \"$(scripts/s3-test-server)\")",
    )?;
    Ok(S3Settings {
        bucket: Some(var("BUCKET").unwrap_or_else(|| "tubewatch-test".into())),
        region: var("REGION"),
        allow_http: endpoint.starts_with("http://"),
        endpoint: Some(endpoint),
        virtual_hosted_style: false,
        access_key_id: var("ACCESS_KEY_ID"),
        secret_access_key: var("SECRET_ACCESS_KEY").map(Secret::new),
    })
}

/// The parent pid of process `pid`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds of the PostgreSQL server whose postmaster is `postmaster`: its own, its exited
/// backends' (reaped, so counted in its children's time) and its live processes'.
fn postgres_cpu(postmaster: u32) -> Option<f64> {
    let (own, reaped) = proc_cpu(postmaster)?;
    let live: f64 = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(postmaster))
        .filter_map(|pid| proc_cpu(pid).map(|(own, _)| own))
        .sum();
    Some(own + reaped + live)
}

/// This process's reaped children's CPU seconds (the worker processes, once waited for).
fn reaped_children_cpu() -> f64 {
    proc_cpu(std::process::id()).map_or(f64::NAN, |(_, children)| children)
}

struct WorkerProcesses {
    children: Vec<Child>,
}

impl WorkerProcesses {
    fn spawn(config: &Path, log: &Path, count: usize) -> anyhow::Result<Self> {
        let mut children = Vec::new();
        for _ in 0..count {
            let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
            let mut cmd = Command::new(std::env::current_exe()?);
            cmd.args(["--config", &config.display().to_string(), "worker"]);
            // The config file is the whole configuration: no variable of the bench's own may win.
            for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("TUBEWATCH_")) {
                cmd.env_remove(name);
            }
            let child =
                cmd.env("RUST_LOG", "warn").stdout(Stdio::null()).stderr(log).spawn().context("starting a worker")?;
            children.push(child);
        }
        Ok(Self { children })
    }

    /// Whether a worker exited on its own (a crash, a bad configuration).
    fn any_exited(&mut self) -> bool {
        self.children.iter_mut().any(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    fn kill_one(&mut self) -> anyhow::Result<()> {
        ensure!(!self.children.is_empty(), "no worker to kill");
        let mut child = self.children.remove(0);
        let killed = child.kill(); // SIGKILL: no chance to finish or release anything
        child.wait()?;
        Ok(killed?)
    }

    fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for WorkerProcesses {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a round shares with the others.
struct Bench {
    args: ScaleoutArgs,
    dir: tempfile::TempDir,
    server: PgServer,
    postmaster: Option<u32>,
    worker_settings: Settings,
    policy: SchedulePolicy,
}

/// One worker count's database and the videos of its burst.
struct Database {
    name: String,
    url: String,
    videos: Vec<VideoId>,
}

/// Channel targets due at `at`, and video targets due at `at` with the time each is due (the
/// start of the slot its check records: a video past its hourly days is due daily, not hourly).
async fn due_targets(store: &dyn Store, at: DateTime<Utc>) -> anyhow::Result<(u64, Vec<(VideoId, DateTime<Utc>)>)> {
    let mut channels = 0;
    let mut videos = Vec::new();
    for kind in [TargetKind::Channel, TargetKind::Video] {
        let mut offset = 0;
        loop {
            let page = store.list_targets(kind, offset, 1000).await?;
            for target in page.iter().filter(|t| t.state == TargetState::Active && t.next_due_at <= at) {
                match kind {
                    TargetKind::Video => videos.push((VideoId::parse(&target.subject)?, target.next_due_at)),
                    _ => channels += 1,
                }
            }
            if page.len() < 1000 {
                break;
            }
            offset += 1000;
        }
    }
    Ok((channels, videos))
}

pub async fn run(args: ScaleoutArgs, settings: Settings) -> anyhow::Result<()> {
    ensure!(!args.workers.is_empty() && !args.workers.contains(&0), "--workers: counts of at least 1");
    ensure!(
        args.kill_round_workers == 0
            || (args.kill_round_workers >= 2 && args.workers.contains(&args.kill_round_workers)),
        "--kill-round-workers must be 0 or one of --workers, at least 2 (one is killed, another takes over)"
    );
    let s3 = s3_settings(&settings)?;
    let mut worker_settings = settings.clone();
    worker_settings.s3 = s3;
    let s3_config = worker_settings.s3_config()?.context("the S3 settings")?;
    let blobs = Blobs::s3(&s3_config)?;
    blobs.check_writable().await.context("the bench's S3 bucket")?;

    let server = PgServer::new(&args.postgres_url);
    let postmaster = match server.data_directory().await.context("connecting to PostgreSQL")? {
        Some(dir) => std::fs::read_to_string(Path::new(&dir).join("postmaster.pid"))
            .ok()
            .and_then(|pid| pid.lines().next()?.trim().parse().ok()),
        None => None,
    };
    let dir = tempfile::tempdir()?;
    worker_settings.youtube.base_url = Some(format!("http://127.0.0.1:{}", args.sim_port));
    worker_settings.youtube.concurrency_per_host = args.concurrency;
    worker_settings.worker.concurrency = args.concurrency;
    worker_settings.worker.batch_size = u32::try_from(args.concurrency).unwrap_or(u32::MAX);
    worker_settings.worker.lease_seconds = args.lease_seconds;
    // Every video hourly (the seed's burst): fine tracking stretched over the whole 60 days.
    worker_settings.tracking.resolution_minutes = 60;
    worker_settings.tracking.fine_days = 59;
    worker_settings.tracking.track_days = 60;
    worker_settings.mail.outbox_dir = dir.path().join("outbox");
    worker_settings.blob_dir = dir.path().join("unused-blob-dir");
    let policy = SchedulePolicy::new(Resolution::HOURLY, 59, 60)?;
    let bench = Bench { args, dir, server, postmaster, worker_settings, policy };

    let world = World::new(WorldParams { channels: bench.args.channels, ..WorldParams::default() });
    // The hour of the burst: a month into the simulated world.
    let hour = WorldParams::default().epoch + Duration::days(30) + Duration::hours(12);
    let mut rounds = Vec::new();
    let mut sampled = (0, 0);
    let mut videos = 0;
    for &workers in &bench.args.workers {
        let db = bench.database(workers, &world, hour).await?;
        videos = db.videos.len() as u64;
        let result = bench.rounds_of(workers, &db, hour, &mut rounds).await;
        if result.is_ok() && sampled.1 == 0 {
            sampled = sample_thumbnails(&db, &blobs).await?;
        }
        bench.server.drop_database(&db.name).await?;
        result?;
    }
    let one = rounds.iter().find(|r| r.workers == 1 && r.round == "steady").map(|r| r.checks_per_second);
    let speedup = rounds
        .iter()
        .filter(|r| r.round == "steady")
        .map(|r| Speedup {
            workers: r.workers,
            steady_checks_per_second: r.checks_per_second,
            times_one_worker: one.map_or(f64::NAN, |one| r.checks_per_second / one),
        })
        .collect();
    let report = ScaleoutReport {
        channels: bench.args.channels,
        videos,
        median_latency_ms: bench.args.latency_ms,
        page_bytes: bench.args.page_bytes,
        concurrency_per_worker: bench.args.concurrency,
        lease_seconds: bench.args.lease_seconds,
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        postgres: crate::app::redact_url(&bench.args.postgres_url),
        s3: blobs.location().to_owned(),
        rounds,
        speedup,
        thumbnails_found_in_s3: sampled.0,
        thumbnails_sampled: sampled.1,
    };
    if bench.args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    let lost_or_duplicated = report.rounds.iter().any(|r| r.slots_missing > 0 || r.duplicate_records > 0);
    ensure!(!lost_or_duplicated, "slots were lost or duplicated (see the report)");
    ensure!(sampled.0 == sampled.1, "archived thumbnails are missing from the bucket");
    Ok(())
}

impl Bench {
    /// A fresh database for `workers`' rounds with the burst's channels and videos, due at `hour`.
    async fn database(&self, workers: usize, world: &World, hour: DateTime<Utc>) -> anyhow::Result<Database> {
        let name = format!("tw_scaleout_{}_{workers}", std::process::id());
        let url = self.server.create_database(&name).await.with_context(|| format!("creating database {name}"))?;
        let store = tubewatch_store::connect(&url, &StoreOptions { max_connections: 4 }).await?;
        store.migrate().await?;
        populate(&*store, world, &self.policy, self.args.videos, hour).await?;
        let (_, due) = due_targets(&*store, hour).await?;
        store.close().await;
        Ok(Database { name, url, videos: due.into_iter().map(|(video, _)| video).collect() })
    }

    /// The baseline and steady rounds of `workers`, and the kill round when it is theirs.
    async fn rounds_of(
        &self,
        workers: usize,
        db: &Database,
        hour: DateTime<Utc>,
        rounds: &mut Vec<RoundReport>,
    ) -> anyhow::Result<()> {
        // The simulator's clock starts with the baseline round's and runs on (as in `bench burst`).
        let lead = Duration::seconds(5);
        let sim_clock = AcceleratedClock::starting_now(hour - lead, 1.0)?;
        let a = &self.args;
        let sim = start_sim(a.channels, &sim_clock, a.sim_port, a.page_bytes, a.latency_ms).await?;
        let sim_pid = sim.0.id();
        let mut plan = vec![("baseline", hour, false), ("steady", hour + Duration::hours(1), false)];
        if a.kill_round_workers == workers {
            plan.push(("kill", hour + Duration::hours(2), true));
        }
        for (name, at, kill) in plan {
            let clock = if name == "baseline" { sim_clock } else { AcceleratedClock::starting_now(at - lead, 1.0)? };
            let report = self.round(workers, db, name, at, kill, &clock, sim_pid).await?;
            if !a.json {
                eprintln!(
                    "  {workers} worker(s), {name}: {} checks in {:.1} s ({:.0}/s)",
                    report.checks, report.seconds_after_the_hour, report.checks_per_second
                );
            }
            rounds.push(report);
        }
        drop(sim);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn round(
        &self,
        workers: usize,
        db: &Database,
        name: &'static str,
        at: DateTime<Utc>,
        kill: bool,
        clock: &AcceleratedClock,
        sim_pid: u32,
    ) -> anyhow::Result<RoundReport> {
        let mut settings = self.worker_settings.clone();
        settings.database_url = db.url.clone();
        settings.clock = clock.to_string();
        let config = self.dir.path().join(format!("{}-{name}.toml", db.name));
        std::fs::write(&config, toml::to_string(&settings)?)?;
        let log = self.dir.path().join("workers.log");

        let activity_before = self.server.activity(&db.name).await?;
        let postgres_before = self.postmaster.and_then(postgres_cpu);
        let sim_before = proc_cpu(sim_pid).map_or(f64::NAN, |(own, _)| own);
        let workers_before = reaped_children_cpu();

        let monitor = tubewatch_store::connect(&db.url, &StoreOptions { max_connections: 1 }).await?;
        let (channels_due, videos_due) = due_targets(&*monitor, at).await?;
        let total = channels_due + videos_due.len() as u64;
        let mut processes = WorkerProcesses::spawn(&config, &log, workers)?;
        let progress = crate::progress::Progress::new(&format!("{workers} worker(s), {name}"), total, "checks");
        let deadline = Instant::now() + StdDuration::from_secs(900);
        let mut killed_at = None;
        let (finished, failed) = loop {
            tokio::time::sleep(StdDuration::from_millis(250)).await;
            if processes.any_exited() {
                bail!("a worker exited on its own; its log:\n{}", log_tail(&log));
            }
            ensure!(
                Instant::now() < deadline,
                "the round did not finish in 15 minutes; worker log:\n{}",
                log_tail(&log)
            );
            let now = clock.now();
            if now <= at {
                continue;
            }
            let stats = monitor.queue_stats(now).await?;
            let left = stats.due + stats.leased;
            progress.set(total.saturating_sub(left));
            if kill && killed_at.is_none() && left * 2 <= total {
                killed_at = Some(1.0 - left as f64 / total as f64);
                processes.kill_one()?;
            }
            if left == 0 {
                break (now, stats.erroring);
            }
        };
        progress.finish();
        processes.stop();
        monitor.close().await;
        ensure!(!kill || killed_at.is_some(), "the burst was over before a worker could be killed: use more --videos");
        // Backends report their counters as they exit.
        tokio::time::sleep(StdDuration::from_millis(1500)).await;
        let worker_cpu = reaped_children_cpu() - workers_before;
        let postgres_cpu =
            self.postmaster.and_then(postgres_cpu).zip(postgres_before).map(|(after, before)| after - before);
        let sim_cpu = proc_cpu(sim_pid).map_or(f64::NAN, |(own, _)| own) - sim_before;
        let activity = self.server.activity(&db.name).await?.since(&activity_before);
        let (missing, duplicates) = verify_slots(&db.url, &videos_due).await?;

        let seconds = (finished - at).num_milliseconds() as f64 / 1000.0;
        let per_check = |n: f64| n / total.max(1) as f64;
        Ok(RoundReport {
            workers,
            round: name,
            checks: total,
            seconds_after_the_hour: seconds,
            checks_per_second: total as f64 / seconds.max(0.001),
            worker_cpu_seconds: worker_cpu,
            checks_per_worker_cpu_second: total as f64 / worker_cpu.max(0.001),
            postgres_cpu_seconds: postgres_cpu,
            postgres_transactions_per_check: per_check(activity.transactions as f64),
            postgres_statements_per_check: activity.statements.map(|s| per_check(s as f64)),
            postgres_rows_written_per_check: per_check(activity.rows_written as f64),
            simulator_cpu_seconds: sim_cpu,
            failed_checks: failed,
            slots_expected: videos_due.len() as u64,
            slots_missing: missing,
            duplicate_records: duplicates,
            workers_killed: usize::from(killed_at.is_some()),
            killed_at_fraction_done: killed_at,
        })
    }
}

/// Videos without a views record for the slot they were due for, and records beyond one per slot.
/// A missing one is described on standard error (its target and records) before the database goes.
async fn verify_slots(url: &str, due: &[(VideoId, DateTime<Utc>)]) -> anyhow::Result<(u64, u64)> {
    let store = tubewatch_store::connect(url, &StoreOptions { max_connections: 8 }).await?;
    let counts: Vec<anyhow::Result<(&VideoId, DateTime<Utc>, usize)>> = futures::stream::iter(due)
        .map(|(video, slot)| {
            let store = store.clone();
            async move {
                let records = store.views(video).await?.iter().filter(|r| r.slot.start() == *slot).count();
                Ok((video, *slot, records))
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let (mut missing, mut duplicates) = (0, 0);
    for count in counts {
        match count? {
            (video, slot, 0) => {
                missing += 1;
                let target = store.target(TargetKind::Video, video.as_str()).await?;
                let records: Vec<String> = store
                    .views(video)
                    .await?
                    .iter()
                    .map(|r| format!("{} measured {}", r.slot.start(), r.measured_at))
                    .collect();
                eprintln!("missing: video {video} has no record for {slot}: target {target:?}, records {records:?}");
            }
            (_, _, n) => duplicates += n as u64 - 1,
        }
    }
    store.close().await;
    Ok((missing, duplicates))
}

/// Reads back the archived thumbnails of up to 20 videos from the bucket.
async fn sample_thumbnails(db: &Database, blobs: &Blobs) -> anyhow::Result<(u64, u64)> {
    let store = tubewatch_store::connect(&db.url, &StoreOptions { max_connections: 1 }).await?;
    let (mut found, mut sampled) = (0, 0);
    for video in db.videos.iter().take(20) {
        sampled += 1;
        let key = store.video(video).await?.and_then(|v| v.thumb).and_then(|t| t.blob_key);
        if let Some(key) = key
            && blobs.get(&key).await?.is_some()
        {
            found += 1;
        }
    }
    store.close().await;
    Ok((found, sampled))
}

fn log_tail(log: &PathBuf) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn print_report(r: &ScaleoutReport) {
    println!(
        "bench scaleout: {} channels + {} videos a burst, {} ms median latency, {}-byte pages, {} checks in flight \
         per worker, lease {} s, {} cores for everything",
        r.channels, r.videos, r.median_latency_ms, r.page_bytes, r.concurrency_per_worker, r.lease_seconds, r.cores
    );
    println!("PostgreSQL {}; {}", r.postgres, r.s3);
    println!(
        "{:>7} {:<8} {:>6} {:>8} {:>8} {:>8} {:>9} {:>7} {:>8} {:>8} {:>7} {:>6} {:>7} {:>4}",
        "workers",
        "round",
        "checks",
        "s after",
        "checks/s",
        "wrk CPU",
        "checks/CPU",
        "PG CPU",
        "PG xact/",
        "PG stmt/",
        "sim CPU",
        "failed",
        "missing",
        "dup"
    );
    let or_na = |v: Option<f64>, digits: usize| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"));
    for x in &r.rounds {
        println!(
            "{:>7} {:<8} {:>6} {:>8.1} {:>8.0} {:>8.1} {:>9.0} {:>7} {:>8.2} {:>8} {:>7.1} {:>6} {:>7} {:>4}",
            x.workers,
            x.round,
            x.checks,
            x.seconds_after_the_hour,
            x.checks_per_second,
            x.worker_cpu_seconds,
            x.checks_per_worker_cpu_second,
            or_na(x.postgres_cpu_seconds, 1),
            x.postgres_transactions_per_check,
            or_na(x.postgres_statements_per_check, 2),
            x.simulator_cpu_seconds,
            x.failed_checks,
            x.slots_missing,
            x.duplicate_records
        );
    }
    let speedups: Vec<String> = r
        .speedup
        .iter()
        .map(|s| format!("{} worker(s) {:.0}/s ({:.2}x)", s.workers, s.steady_checks_per_second, s.times_one_worker))
        .collect();
    println!("steady throughput: {} (target: 2 workers >= 1.7x one)", speedups.join(", "));
    for k in r.rounds.iter().filter(|x| x.round == "kill") {
        println!(
            "kill round: {} workers, one killed (SIGKILL) at {:.0} % of the burst: {} slots expected, {} missing, {} \
             duplicate records, done {:.1} s after the hour",
            k.workers,
            k.killed_at_fraction_done.unwrap_or(f64::NAN) * 100.0,
            k.slots_expected,
            k.slots_missing,
            k.duplicate_records,
            k.seconds_after_the_hour
        );
    }
    println!("thumbnails read back from the bucket: {} of {} sampled", r.thumbnails_found_in_s3, r.thumbnails_sampled);
}
