//! The claim loop: lease due targets in batches while there is capacity, run each concurrently
//! (I/O overlaps), and on shutdown stop claiming and let in-flight work finish. A worker that dies
//! instead simply stops renewing nothing: its leases expire and other workers take the targets.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Names this worker's leases (unique per process).
    pub owner: String,
    /// Targets claimed per round trip at most.
    pub batch_size: u32,
    /// Targets in flight at once.
    pub concurrency: usize,
    /// Real time a claim is held before other workers may take the target over.
    pub lease: StdDuration,
    /// How long shutdown waits for in-flight targets.
    pub grace: StdDuration,
}

impl RunnerConfig {
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            batch_size: 200,
            concurrency: 128,
            lease: StdDuration::from_secs(300),
            grace: StdDuration::from_secs(30),
        }
    }
}

/// Runs until `shutdown` is cancelled.
pub async fn run_worker(pipeline: Pipeline, config: RunnerConfig, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let lease_for = pipeline.clock.virtual_span(config.lease);
    tracing::info!(owner = %config.owner, concurrency = config.concurrency, "worker started");
    // Claims wait until this many checks are free to start (while others run): claiming each
    // freed slot on its own costs two statements per check (the claim, its videos) instead of two
    // per batch.
    let claim_at_least = (config.concurrency / 8).clamp(1, config.batch_size.max(1) as usize);
    while !shutdown.is_cancelled() {
        while tasks.try_join_next().is_some() {}
        let free = permits.available_permits().min(config.batch_size as usize);
        if free == 0 || (free < claim_at_least && !tasks.is_empty()) {
            tokio::select! {
                _ = tasks.join_next() => {}
                () = shutdown.cancelled() => break,
            }
            continue;
        }
        let now = pipeline.clock.now();
        let claimed = match pipeline.store.claim_due(&config.owner, now, lease_for, free as u32).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::error!(error = %e, "claiming due targets failed");
                sleep_or_stop(StdDuration::from_secs(1), &shutdown).await;
                continue;
            }
        };
        if claimed.is_empty() {
            // Poll every 15 s of clock time, but at least every second and at most 200 times a second.
            let idle = pipeline.clock.wall_span(chrono::Duration::seconds(15));
            sleep_or_stop(idle.clamp(StdDuration::from_millis(5), StdDuration::from_secs(1)), &shutdown).await;
            continue;
        }
        for (target, prefetched) in pipeline.with_subjects(claimed).await {
            pipeline.metrics.claimed.get_or_create(&Metrics::kind(target.kind.as_str())).inc();
            let Ok(permit) = permits.clone().acquire_owned().await else { break };
            let pipeline = pipeline.clone();
            tasks.spawn(async move {
                let _permit = permit;
                pipeline.run_target_with(target, prefetched).await;
            });
        }
    }
    let in_flight = tasks.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "worker stopping: finishing in-flight targets");
        if tokio::time::timeout(config.grace, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
            // Their leases expire and another worker takes them: nothing is lost.
            tracing::warn!(left = tasks.len(), "grace period over; abandoning in-flight targets to lease expiry");
            tasks.abort_all();
        }
    }
    tracing::info!(owner = %config.owner, "worker stopped");
}

async fn sleep_or_stop(d: StdDuration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        () = shutdown.cancelled() => {}
    }
}
