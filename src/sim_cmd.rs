//! `tubewatch sim`: runs the YouTube simulator as its own process on an accelerated clock and
//! prints what the service needs to talk to it (the base URL and the clock parameters).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tubewatch_core::AcceleratedClock;
use tubewatch_sim::{FaultConfig, FaultSpec, SimClock, SimConfig, Simulator, WorldParams};

#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Seed of the world: the same seed gives the same channels, videos and views.
    #[arg(long, default_value_t = 1, env = "TUBEWATCH_SIM_SEED")]
    pub seed: u64,
    /// Number of channels in the world (10,000 is the design's scale).
    #[arg(long, default_value_t = 10_000)]
    pub channels: u32,
    /// Address the simulator listens on (`--listen` is the service's own address).
    #[arg(long, default_value = "127.0.0.1:8090", env = "TUBEWATCH_SIM_BIND")]
    pub bind: SocketAddr,
    /// Virtual seconds per wall second (3600: an hour per second).
    #[arg(long, default_value_t = 3600.0)]
    pub speed: f64,
    /// Virtual time at start (RFC 3339); default: the world's epoch.
    #[arg(long)]
    pub start: Option<DateTime<Utc>>,
    /// Join an existing accelerated clock instead (`VIRT0@WALL0xSPEED`, as printed by a service
    /// or another simulator); overrides --speed and --start.
    #[arg(long)]
    pub clock: Option<String>,
    /// Target size of watch pages in bytes.
    #[arg(long, default_value_t = 1_000_000)]
    pub page_bytes: usize,
    /// Base URL written into links, if clients reach the simulator under another name.
    #[arg(long)]
    pub public_base: Option<String>,
    /// Added latency on every endpoint, as MIN-MAX milliseconds (e.g. 20-200).
    #[arg(long)]
    pub latency_ms: Option<String>,
    /// Share of requests answered 429.
    #[arg(long, default_value_t = 0.0)]
    pub fault_429: f64,
    /// Share of requests answered 500 or 503 (half each).
    #[arg(long, default_value_t = 0.0)]
    pub fault_5xx: f64,
    /// Share of requests that hang (a client timeout should fire).
    #[arg(long, default_value_t = 0.0)]
    pub fault_hang: f64,
    /// Share of responses cut in half.
    #[arg(long, default_value_t = 0.0)]
    pub fault_truncate: f64,
    /// Share of watch/player responses that are bot checks.
    #[arg(long, default_value_t = 0.0)]
    pub fault_bot_check: f64,
    /// Share of watch pages that redirect to the consent page.
    #[arg(long, default_value_t = 0.0)]
    pub fault_consent: f64,
    /// Share of watch/player responses for another video.
    #[arg(long, default_value_t = 0.0)]
    pub fault_wrong_video: f64,
    /// Share of feed requests that fail with 404 although the channel exists.
    #[arg(long, default_value_t = 0.0)]
    pub fault_feed_outage: f64,
    /// A JSON file with a whole fault configuration (per endpoint); replaces the flags above.
    #[arg(long)]
    pub faults_json: Option<std::path::PathBuf>,
}

fn faults(args: &SimArgs) -> anyhow::Result<FaultConfig> {
    if let Some(path) = &args.faults_json {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return serde_json::from_str(&text)
            .with_context(|| format!("parsing the fault configuration {}", path.display()));
    }
    let (latency_min_ms, latency_max_ms) = match &args.latency_ms {
        None => (0, 0),
        Some(range) => {
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            let parse =
                |s: &str| s.trim().parse::<u64>().with_context(|| format!("--latency-ms {range:?}: expected MIN-MAX"));
            (parse(lo)?, parse(hi)?)
        }
    };
    let spec = FaultSpec {
        latency_min_ms,
        latency_max_ms,
        rate_429: args.fault_429,
        rate_500: args.fault_5xx / 2.0,
        rate_503: args.fault_5xx / 2.0,
        rate_hang: args.fault_hang,
        rate_truncate: args.fault_truncate,
        rate_bot_check: args.fault_bot_check,
        rate_consent: args.fault_consent,
        rate_wrong_video: args.fault_wrong_video,
        rate_outage: args.fault_feed_outage,
    };
    Ok(FaultConfig { default: spec, ..FaultConfig::default() })
}

/// Starts the simulator, prints its base URL and clock, and serves until Ctrl-C.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let clock = match &args.clock {
        Some(text) => AcceleratedClock::parse(text)?,
        None => AcceleratedClock::starting_now(args.start.unwrap_or(WorldParams::default().epoch), args.speed)?,
    };
    let mut config = SimConfig::new(args.seed, args.channels, SimClock::Shared(Arc::new(clock)));
    config.page_bytes = args.page_bytes;
    config.public_base = args.public_base.clone();
    config.faults = faults(&args)?;
    let running = Simulator::start(config, args.bind).await?;
    let base = args.public_base.clone().unwrap_or_else(|| running.base_url.clone());
    println!("tubewatch simulator: seed {}, {} channels", args.seed, running.sim.channels().len());
    println!(
        "base URL (for www.youtube.com, i.ytimg.com, www.googleapis.com, accounts.google.com, oauth2.googleapis.com): {base}"
    );
    println!("clock: {clock}");
    println!(
        "control and truth API: {base}/_sim/time, {base}/_sim/channels, {base}/_sim/changes, {base}/_sim/breakouts"
    );
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    running.shutdown().await;
    Ok(())
}
