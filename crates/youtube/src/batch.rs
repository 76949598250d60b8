//! Batched `videos.list` reads. The tracking pipeline checks videos one by one, many at once; the
//! Data API answers up to 50 ids per request for the same quota cost (1 unit) as one. A caller
//! asks for one video; a background task gathers the ids asked within a short window (or 50 of
//! them, whichever comes first) into one request and hands every caller its own answer.
//!
//! The task is started by the first ask (inside the caller's runtime), with what fetches a
//! batch, and ends when the last sender to it, held in the client's slot, is dropped.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tubewatch_core::VideoId;

use crate::YoutubeError;
use crate::data_api::{ApiVideo, VIDEOS_LIST_MAX_IDS};

type Answer = Result<Option<ApiVideo>, YoutubeError>;

#[derive(Debug)]
pub(crate) struct Ask {
    id: VideoId,
    reply: oneshot::Sender<Answer>,
}

/// The sending side of a client's batching task, created on first use.
pub(crate) type BatcherSlot = Arc<OnceLock<mpsc::UnboundedSender<Ask>>>;

/// Asks for one video through the batching task in `slot`. The first ask starts the task with
/// what `start` gives: how long to gather a batch, and what fetches one (the videos of the ids
/// asked; a video it leaves out is answered `None`).
pub(crate) async fn ask<F, Fut>(slot: &BatcherSlot, id: &VideoId, start: impl FnOnce() -> (Duration, F)) -> Answer
where
    F: Fn(Vec<VideoId>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<ApiVideo>, YoutubeError>> + Send + 'static,
{
    let sender = slot.get_or_init(|| {
        let (tx, rx) = mpsc::unbounded_channel();
        let (window, fetch) = start();
        tokio::spawn(gather(window, fetch, rx));
        tx
    });
    let (reply, answer) = oneshot::channel();
    let closed = || YoutubeError::Http { status: None, message: "videos.list batching stopped".into() };
    sender.send(Ask { id: id.clone(), reply }).map_err(|_| closed())?;
    answer.await.map_err(|_| closed())?
}

/// Gathers asks into batches and answers each batch on its own task, so a slow request does
/// not hold up the next batch.
async fn gather<F, Fut>(window: Duration, fetch: F, mut asks: mpsc::UnboundedReceiver<Ask>)
where
    F: Fn(Vec<VideoId>) -> Fut,
    Fut: Future<Output = Result<Vec<ApiVideo>, YoutubeError>> + Send + 'static,
{
    while let Some(first) = asks.recv().await {
        let deadline = Instant::now() + window;
        let mut batch = vec![first];
        while batch.len() < VIDEOS_LIST_MAX_IDS {
            match tokio::time::timeout_at(deadline, asks.recv()).await {
                Ok(Some(ask)) => batch.push(ask),
                Ok(None) | Err(_) => break,
            }
        }
        let mut ids: Vec<VideoId> = batch.iter().map(|a| a.id.clone()).collect();
        ids.sort();
        ids.dedup();
        tokio::spawn(answer(fetch(ids), batch));
    }
}

async fn answer(videos: impl Future<Output = Result<Vec<ApiVideo>, YoutubeError>>, batch: Vec<Ask>) {
    match videos.await {
        Ok(videos) => {
            let by_id: HashMap<VideoId, ApiVideo> = videos.into_iter().map(|v| (v.id.clone(), v)).collect();
            for ask in batch {
                // A caller that gave up (timed out) is simply not answered.
                let _ = ask.reply.send(Ok(by_id.get(&ask.id).cloned()));
            }
        }
        Err(e) => {
            for ask in batch {
                let _ = ask.reply.send(Err(e.clone()));
            }
        }
    }
}
