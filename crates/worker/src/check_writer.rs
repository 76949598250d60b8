//! Group commit for video and channel checks. A finished check queues here and waits; one task
//! takes whatever has queued (up to `MAX_BATCH`) and writes it in one store transaction per kind
//! (`Store::complete_video_checks`, `Store::complete_channel_checks`), so an hourly burst costs a
//! few statements per batch instead of several per check. The task waits up to `LINGER` for checks still running to join a batch, and
//! writes at once when every running check has queued (a lone check, a test's last one). A check
//! counts as done only once its batch committed; a failed batch fails each of its checks, which
//! then take the usual retry path (their leases were left untouched), so nothing is lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tubewatch_store::{FinishedChannelCheck, FinishedVideoCheck, Store, StoreError, TargetId};

use crate::metrics::Metrics;

/// Checks written in one transaction at most.
const MAX_BATCH: usize = 512;

/// How long a batch waits for running checks to join it: short beside a check's own round trips
/// to YouTube, long enough for a burst's checks to share transactions by the dozen.
const LINGER: Duration = Duration::from_millis(50);

type Reply = oneshot::Sender<Result<(), StoreError>>;

/// A check waiting for its batch.
#[derive(Debug)]
enum Finished {
    Video(FinishedVideoCheck),
    Channel(FinishedChannelCheck),
}

/// A handle on the writer task, started on first use; cheap to clone. The task ends when the last
/// handle is dropped.
#[derive(Debug, Clone, Default)]
pub struct CheckWriter {
    queue: Arc<OnceLock<mpsc::UnboundedSender<(Finished, Reply)>>>,
    running: Arc<AtomicUsize>,
}

/// A check under way (from its start until its write returned): the writer waits for those.
#[derive(Debug)]
pub struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl CheckWriter {
    /// Counts a check as running until the guard is dropped.
    pub fn running(&self) -> Running {
        self.running.fetch_add(1, Ordering::Relaxed);
        Running(self.running.clone())
    }

    /// Writes `check` with whatever else is queued; `LeaseLost` when its lease was no longer held
    /// (nothing of it written), `BatchFailed` when its batch could not be written.
    pub async fn write(
        &self,
        store: &Arc<dyn Store>,
        metrics: &Arc<Metrics>,
        check: FinishedVideoCheck,
    ) -> Result<(), StoreError> {
        self.submit(store, metrics, Finished::Video(check)).await
    }

    /// `write` for a channel check.
    pub async fn write_channel(
        &self,
        store: &Arc<dyn Store>,
        metrics: &Arc<Metrics>,
        check: FinishedChannelCheck,
    ) -> Result<(), StoreError> {
        self.submit(store, metrics, Finished::Channel(check)).await
    }

    async fn submit(&self, store: &Arc<dyn Store>, metrics: &Arc<Metrics>, check: Finished) -> Result<(), StoreError> {
        let queue = self.queue.get_or_init(|| {
            let (queue, pending) = mpsc::unbounded_channel();
            tokio::spawn(write_batches(store.clone(), metrics.clone(), self.running.clone(), pending));
            queue
        });
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError((check, _))) = queue.send((check, reply)) {
            // The writer task is gone (its runtime ended): write this one alone.
            return write_alone(&**store, check).await;
        }
        answer.await.unwrap_or_else(|_| Err(StoreError::BatchFailed("the check writer stopped".into())))
    }
}

async fn write_alone(store: &dyn Store, check: Finished) -> Result<(), StoreError> {
    let (held, target) = match check {
        Finished::Video(check) => {
            (store.complete_video_checks(std::slice::from_ref(&check)).await?, check.lease.target_id)
        }
        Finished::Channel(check) => {
            (store.complete_channel_checks(std::slice::from_ref(&check)).await?, check.lease.target_id)
        }
    };
    match held.first() {
        Some(true) => Ok(()),
        _ => Err(StoreError::LeaseLost(target)),
    }
}

/// Answers the checks of one kind in a batch with what their write did.
fn answer(
    written: Result<Vec<bool>, StoreError>,
    targets: impl Iterator<Item = TargetId>,
    replies: Vec<Reply>,
    kind: &str,
) {
    match written {
        Ok(held) => {
            for ((target, reply), held) in targets.zip(replies).zip(held) {
                let outcome = if held { Ok(()) } else { Err(StoreError::LeaseLost(target)) };
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            tracing::warn!(checks = replies.len(), kind, error = %e, "a batch of checks could not be written; they will be retried");
            let message = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(StoreError::BatchFailed(message.clone())));
            }
        }
    }
}

async fn write_batches(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    running: Arc<AtomicUsize>,
    mut pending: mpsc::UnboundedReceiver<(Finished, Reply)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let deadline = tokio::time::Instant::now() + LINGER;
        // Queued checks are still running (they wait for this write): more are coming only while
        // the running ones outnumber the batch.
        while batch.len() < MAX_BATCH && batch.len() < running.load(Ordering::Relaxed) {
            let room = MAX_BATCH - batch.len();
            tokio::select! {
                received = pending.recv_many(&mut batch, room) => if received == 0 { break },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let (mut videos, mut video_replies) = (Vec::new(), Vec::new());
        let (mut channels, mut channel_replies) = (Vec::new(), Vec::new());
        for (check, reply) in batch.drain(..) {
            match check {
                Finished::Video(check) => {
                    videos.push(check);
                    video_replies.push(reply);
                }
                Finished::Channel(check) => {
                    channels.push(check);
                    channel_replies.push(reply);
                }
            }
        }
        if !channels.is_empty() {
            let written = store.complete_channel_checks(&channels).await;
            answer(written, channels.iter().map(|c| c.lease.target_id), channel_replies, "channel");
        }
        if !videos.is_empty() {
            metrics.check_batch_size.observe(videos.len() as f64);
            let written = store.complete_video_checks(&videos).await;
            answer(written, videos.iter().map(|c| c.lease.target_id), video_replies, "video");
        }
    }
}
