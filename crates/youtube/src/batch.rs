//! Batched `videos.list` reads. The tracking pipeline checks videos one by one, many at once; the
//! Data API answers up to 50 ids per request for the same quota cost (1 unit) as one. A caller
//! asks for one video; a background task gathers the ids asked within a short window (or 50 of
//! them, whichever comes first) into one request and hands every caller its own answer.
//!
//! The task is started by the first call (inside the caller's runtime) and ends when the last
//! clone of the client is dropped. It holds a clone of the client without the batcher, so the
//! two never keep each other alive.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tubewatch_core::VideoId;

use crate::data_api::{ApiAuth, ApiVideo, VIDEOS_LIST_MAX_IDS};
use crate::{YoutubeClient, YoutubeError};

type Answer = Result<Option<ApiVideo>, YoutubeError>;

#[derive(Debug)]
pub(crate) struct Ask {
    id: VideoId,
    reply: oneshot::Sender<Answer>,
}

/// The sending side of a client's batching task, created on first use.
pub(crate) type BatcherSlot = Arc<OnceLock<mpsc::UnboundedSender<Ask>>>;

impl YoutubeClient {
    /// One video's snippet and statistics through `videos.list` with the configured API key,
    /// batched with concurrent calls (up to 50 ids per request, gathered for at most the
    /// configured `batch_window`). `Ok(None)`: the API does not return the video, which is how it
    /// answers for deleted, private and unknown videos. Without an API key: `Unauthorized`.
    pub async fn video_batched(&self, id: &VideoId) -> Answer {
        let Some(auth) = self.api_key_auth() else {
            return Err(YoutubeError::Unauthorized("no Data API key configured".into()));
        };
        let sender = self.batcher.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let worker = self.without_batcher();
            tokio::spawn(gather(worker, auth, rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let closed = || YoutubeError::Http { status: None, message: "videos.list batching stopped".into() };
        sender.send(Ask { id: id.clone(), reply }).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// Gathers asks into batches and answers each batch on its own task, so a slow request does
/// not hold up the next batch.
async fn gather(client: YoutubeClient, auth: ApiAuth, mut asks: mpsc::UnboundedReceiver<Ask>) {
    let window = client.config.batch_window;
    while let Some(first) = asks.recv().await {
        let deadline = Instant::now() + window;
        let mut batch = vec![first];
        while batch.len() < VIDEOS_LIST_MAX_IDS {
            match tokio::time::timeout_at(deadline, asks.recv()).await {
                Ok(Some(ask)) => batch.push(ask),
                Ok(None) | Err(_) => break,
            }
        }
        tokio::spawn(answer(client.clone(), auth.clone(), batch));
    }
}

async fn answer(client: YoutubeClient, auth: ApiAuth, batch: Vec<Ask>) {
    let mut ids: Vec<VideoId> = batch.iter().map(|a| a.id.clone()).collect();
    ids.sort();
    ids.dedup();
    match client.videos_list(&auth, &ids).await {
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
