//! The jobs: a channel check (read the feed, turn unknown videos into video targets due in the
//! current slot) and a video check (views, title and thumbnail at the target's slot; changes
//! detected against the stored state and archived). Each writes its result and the target's next
//! due time in one store transaction, only while it still holds the lease; checks share their
//! transaction with the others of their kind finished at the same moment (`CheckWriter`'s group
//! commit), and the videos and channels of a claim are read in one query each (`with_subjects`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use tubewatch_core::schedule::next_channel_check;
use tubewatch_core::{ChannelId, Clock, SchedulePolicy, VideoId};
use tubewatch_store::{
    ChangeKind, Channel, ChannelCheck, FinishedChannelCheck, FinishedVideoCheck, Lease, NewChange, NewVideo, Store,
    StoreError, Target, TargetKind, ThumbState, Video, VideoCheck, ViewsRecord,
};
use tubewatch_youtube::{
    ApiVideo, PerceptualHash, ThumbnailCheck, ThumbnailSize, ViewsEndpoint, YoutubeClient, YoutubeError,
};

use crate::blobs::{Blobs, thumbnail_key};
use crate::check_writer::CheckWriter;
use crate::metrics::{EndpointLabel, FailureLabels, Metrics};

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub policy: SchedulePolicy,
    /// A/B tests' OAuth app, token keys and analysis settings (`None`: A/B tests are off).
    pub abtests: Option<crate::abtest::AbTestServices>,
    /// Channel feeds are read this long before each hour.
    pub channel_check_offset: Duration,
    /// Claims of one slot before it is given up.
    pub max_attempts: u32,
    /// First retry delay (clock time); doubled per attempt, capped at `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Weekly outlier runs and digests.
    pub outliers: crate::outliers_config::OutliersConfig,
    /// Where digests (and other mail) go.
    pub mailer: crate::mail::Mailer,
    /// Outgoing webhooks (`None`: the operator allows no webhook hosts).
    pub webhooks: Option<crate::webhook::Webhooks>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            policy: SchedulePolicy::default(),
            abtests: None,
            channel_check_offset: Duration::minutes(5),
            max_attempts: 8,
            retry_base: Duration::seconds(30),
            retry_max: Duration::minutes(5),
            outliers: crate::outliers_config::OutliersConfig::default(),
            mailer: crate::mail::Mailer::default_outbox(),
            webhooks: None,
        }
    }
}

/// Everything a job needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub store: Arc<dyn Store>,
    pub youtube: YoutubeClient,
    pub blobs: Blobs,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub config: PipelineConfig,
    /// Writes finished video checks in batches (`CheckWriter::default()` starts one on first use).
    pub writer: CheckWriter,
}

/// A claimed target's stored subject, read with the rest of its claim (`Pipeline::with_subjects`).
#[derive(Debug, Clone, Default)]
pub enum Prefetched {
    /// Not read: the check reads what it needs itself.
    #[default]
    Unread,
    /// A video target's stored video.
    Video(Video),
    /// A channel target's stored channel (`None`: not stored).
    Channel(Option<Channel>),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    #[error(transparent)]
    Youtube(#[from] YoutubeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target cannot be worked on again (bad subject, video gone from the store).
    #[error("{0}")]
    Permanent(String),
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

impl JobError {
    fn class(&self) -> &'static str {
        match self {
            Self::Youtube(e) => e.kind().as_str(),
            Self::Store(StoreError::LeaseLost(_)) => "lease_lost",
            Self::Store(_) => "store",
            Self::Permanent(_) => "permanent",
            Self::Other(_) => "other",
        }
    }

    fn is_permanent(&self) -> bool {
        match self {
            Self::Youtube(e) => e.is_permanent(),
            Self::Permanent(_) => true,
            Self::Store(_) | Self::Other(_) => false,
        }
    }
}

impl Pipeline {
    /// Claims and runs every target due at the clock's `now` until none is left, `concurrency`
    /// at a time; returns how many runs were made. For stepping a virtual clock (tests, eval).
    pub async fn drain(
        &self,
        owner: &str,
        lease: std::time::Duration,
        concurrency: usize,
    ) -> Result<usize, StoreError> {
        let mut runs = 0;
        let lease_for = self.clock.virtual_span(lease);
        loop {
            let claimed = self.store.claim_due(owner, self.clock.now(), lease_for, 500).await?;
            if claimed.is_empty() {
                return Ok(runs);
            }
            runs += claimed.len();
            futures::stream::iter(self.with_subjects(claimed).await)
                .for_each_concurrent(concurrency.max(1), |(target, read)| self.run_target_with(target, read))
                .await;
        }
    }

    /// Pairs claimed targets with their stored subjects, read in one round trip per kind for the
    /// whole claim (a video check needs its video's row, a channel check its channel's last check
    /// time); a failed read leaves each check to read its own.
    pub async fn with_subjects(&self, claimed: Vec<Target>) -> Vec<(Target, Prefetched)> {
        let subjects = |kind| claimed.iter().filter(move |t: &&Target| t.kind == kind).map(|t| t.subject.as_str());
        let video_ids: Vec<VideoId> = subjects(TargetKind::Video).filter_map(|s| VideoId::parse(s).ok()).collect();
        let channel_ids: Vec<ChannelId> =
            subjects(TargetKind::Channel).filter_map(|s| ChannelId::parse(s).ok()).collect();
        let mut videos: HashMap<VideoId, Video> = match self.store.videos(&video_ids).await {
            Ok(videos) => videos.into_iter().map(|v| (v.id.clone(), v)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading the claimed videos failed; each check reads its own");
                HashMap::new()
            }
        };
        let mut channels: Option<HashMap<ChannelId, Channel>> = match self.store.channels(&channel_ids).await {
            Ok(channels) => Some(channels.into_iter().map(|c| (c.id.clone(), c)).collect()),
            Err(e) => {
                tracing::warn!(error = %e, "reading the claimed channels failed; each check reads its own");
                None
            }
        };
        claimed
            .into_iter()
            .map(|t| {
                let prefetched = match t.kind {
                    TargetKind::Video => VideoId::parse(&t.subject)
                        .ok()
                        .and_then(|id| videos.remove(&id))
                        .map_or(Prefetched::Unread, Prefetched::Video),
                    TargetKind::Channel => match (&mut channels, ChannelId::parse(&t.subject)) {
                        (Some(channels), Ok(id)) => Prefetched::Channel(channels.remove(&id)),
                        _ => Prefetched::Unread,
                    },
                    _ => Prefetched::Unread,
                };
                (t, prefetched)
            })
            .collect()
    }

    /// Runs one claimed target to its end: success, retry later, slot given up, or stopped for good.
    pub async fn run_target(&self, target: Target) {
        self.run_target_with(target, Prefetched::Unread).await;
    }

    /// `run_target` for a target whose stored subject was read already (`with_subjects`).
    pub async fn run_target_with(&self, target: Target, prefetched: Prefetched) {
        let Some(lease) = target.lease() else {
            tracing::error!(target_id = target.id.get(), "run_target called with an unleased target");
            return;
        };
        let kind = target.kind.as_str();
        let result = match target.kind {
            TargetKind::Video => self.check_video(&target, &lease, prefetched).await,
            TargetKind::Channel => self.check_channel(&target, &lease, prefetched).await,
            TargetKind::Outliers => self.run_outliers(&target, &lease).await,
            TargetKind::Digest => self.run_digest(&target, &lease).await,
            TargetKind::AbTest => self.run_abtest_step(&target, &lease).await,
            TargetKind::Reach => self.run_reach(&target, &lease).await,
        };
        let error = match result {
            Ok(()) => {
                self.metrics.completed.get_or_create(&Metrics::kind(kind)).inc();
                return;
            }
            Err(error) => error,
        };
        self.metrics.failed.get_or_create(&FailureLabels { kind: kind.into(), class: error.class().into() }).inc();
        if matches!(error, JobError::Store(StoreError::LeaseLost(_))) {
            tracing::warn!(target_id = target.id.get(), subject = %target.subject, "lease lost; another worker has the target");
            return;
        }
        let now = self.clock.now();
        let message = format!("{}: {error}", error.class());
        // YouTube answers a valid channel's feed with 404 now and then: a channel that was read
        // before is retried like any transient failure, never dropped on one 404.
        let feed_hiccup = target.kind == TargetKind::Channel
            && matches!(&error, JobError::Youtube(e) if e.kind() == tubewatch_youtube::ErrorKind::NotFound);
        // `attempts` counts earlier failures of this slot; this one makes one more.
        let failures = target.attempts.saturating_add(1);
        let exhausted = u32::try_from(failures).unwrap_or(u32::MAX) >= self.config.max_attempts;
        // Retries go on until the next slot comes due; then this slot is given up, the error kept.
        let permanent = error.is_permanent() && !feed_hiccup;
        let give_up = if exhausted && !permanent {
            let next = self.next_due_after_giving_up(&target, now).await;
            next.is_none_or(|next| now >= next).then_some(next)
        } else {
            None
        };
        let outcome = if permanent {
            tracing::warn!(target_id = target.id.get(), subject = %target.subject, error = %message, "target stopped for good");
            self.store.fail(&lease, &message, now, None).await
        } else if let Some(next) = give_up {
            tracing::warn!(target_id = target.id.get(), subject = %target.subject, error = %message, "slot given up after retries");
            self.store.skip_slot(&lease, &message, now, next).await
        } else {
            let retry_at = now + self.backoff(failures);
            tracing::info!(target_id = target.id.get(), subject = %target.subject, error = %message, %retry_at, "will retry");
            self.store.fail(&lease, &message, now, Some(retry_at)).await
        };
        if let Err(e) = outcome {
            tracing::warn!(target_id = target.id.get(), error = %e, "could not record the failure; the lease will expire");
        }
    }

    /// `retry_base × 2^(failures−1)`, capped, with jitter in [50%, 100%].
    fn backoff(&self, failures: i32) -> Duration {
        let exp = u32::try_from(failures.saturating_sub(1).clamp(0, 16)).unwrap_or(0);
        let delay = (self.config.retry_base * 2i32.pow(exp)).min(self.config.retry_max);
        let jitter: f64 = rand::random_range(0.5..1.0);
        Duration::milliseconds((delay.num_milliseconds() as f64 * jitter) as i64)
    }

    async fn next_due_after_giving_up(&self, target: &Target, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match target.kind {
            TargetKind::Channel => Some(next_channel_check(now, self.config.channel_check_offset)),
            TargetKind::Outliers | TargetKind::Digest | TargetKind::AbTest | TargetKind::Reach => {
                Some(now + Duration::hours(1))
            }
            TargetKind::Video => {
                let id = VideoId::parse(&target.subject).ok()?;
                let video = self.store.video(&id).await.ok()??;
                let slot = self.config.policy.slot_at(video.published_at, target.next_due_at)?;
                self.config.policy.next_slot(video.published_at, slot).map(|s| s.start())
            }
        }
    }

    async fn timed<T>(
        &self,
        endpoint: &str,
        call: impl Future<Output = Result<T, YoutubeError>>,
    ) -> Result<T, YoutubeError> {
        let started = Instant::now();
        let result = call.await;
        self.metrics
            .youtube_seconds
            .get_or_create(&EndpointLabel { endpoint: endpoint.into() })
            .observe(started.elapsed().as_secs_f64());
        result
    }

    #[tracing::instrument(skip_all, fields(channel_id = %target.subject))]
    async fn check_channel(&self, target: &Target, lease: &Lease, prefetched: Prefetched) -> Result<(), JobError> {
        let _running = self.writer.running();
        let id = ChannelId::parse(&target.subject).map_err(|e| JobError::Permanent(e.to_string()))?;
        let channel = match prefetched {
            Prefetched::Channel(channel) => channel,
            _ => self.store.channel(&id).await?,
        };
        let feed = self.timed("feed", self.youtube.channel_feed(&id)).await?;
        let now = self.clock.now();
        // A video published since the last check starts at the slot of its publish time (filled
        // late if this check is late); on a channel's first check, at the slot tracking began in.
        let last_check = channel.and_then(|c| c.checked_at).unwrap_or(target.next_due_at);
        let policy = &self.config.policy;
        // Every entry still in its tracking window: the store adds those it does not know yet
        // (deciding which while it writes, so the check reads nothing) and leaves the others.
        let feed_videos = feed
            .entries
            .iter()
            .filter_map(|e| {
                // A video past its tracking window is not tracked at all.
                let first = policy.slot_at(e.published, e.published.max(last_check.min(now)))?;
                let video = NewVideo {
                    id: e.video_id.clone(),
                    channel_id: id.clone(),
                    published_at: e.published,
                    is_short: e.is_short,
                    title: e.title.clone(),
                };
                Some((video, first.start()))
            })
            .collect::<Vec<_>>();
        let latest = feed.entries.iter().max_by_key(|e| e.published).map(|e| e.video_id.clone());
        let check = ChannelCheck { channel_id: id, checked_at: now, latest_video_id: latest, feed_videos };
        let next = next_channel_check(now, self.config.channel_check_offset);
        let finished = FinishedChannelCheck { lease: lease.clone(), check, next_due_at: next };
        self.writer.write_channel(&self.store, &self.metrics, finished).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(video_id = %target.subject))]
    async fn check_video(&self, target: &Target, lease: &Lease, prefetched: Prefetched) -> Result<(), JobError> {
        let _running = self.writer.running();
        let id = VideoId::parse(&target.subject).map_err(|e| JobError::Permanent(e.to_string()))?;
        let video = match prefetched {
            Prefetched::Video(video) => video,
            _ => self
                .store
                .video(&id)
                .await?
                .ok_or_else(|| JobError::Permanent(format!("video {id} is not in the store")))?,
        };
        let policy = &self.config.policy;
        // The slot this run was scheduled for: a late run (expired lease, retries) still fills it.
        let Some(slot) = policy.slot_at(video.published_at, target.next_due_at) else {
            self.store.complete(lease, None).await?;
            return Ok(());
        };
        // Views and thumbnail are independent requests: in flight together, a check takes one
        // round trip instead of two. The thumbnail is decoded only when its bytes changed.
        let known_sha256 = video.thumb.as_ref().map(|t| t.sha256.as_str());
        let thumbnail = async {
            let fetch = self.youtube.thumbnail_unless_unchanged(&id, ThumbnailSize::Default, known_sha256);
            self.timed("thumbnail", fetch).await.map_err(JobError::from)
        };
        let ((views, title), thumb) = if self.youtube.config().api_key.is_some() {
            // `videos.list` gathers the ids of checks arriving within a short window; decoding
            // thumbnails at the same moment would delay those arrivals and shrink the batches.
            let views_and_title = self.views_and_title(&id).await?;
            (views_and_title, thumbnail.await?)
        } else {
            futures::future::try_join(self.views_and_title(&id), thumbnail).await?
        };
        let measured_at = self.clock.now();
        let (thumb_state, mut changes) = match &thumb {
            ThumbnailCheck::Unchanged => (None, vec![]),
            ThumbnailCheck::Fetched(thumb) => self.compare_thumbnail(&video, thumb, slot, measured_at).await?,
        };
        // The first measurement sets the baseline; only later differences are changes.
        if video.thumb.is_some() && title != video.title {
            changes.push(NewChange {
                video_id: id.clone(),
                kind: ChangeKind::Title,
                slot,
                detected_at: measured_at,
                before_title: Some(video.title.clone()),
                after_title: Some(title.clone()),
                before_thumb_key: None,
                after_thumb_key: None,
            });
        }
        for change in &changes {
            tracing::info!(video_id = %id, kind = change.kind.as_str(), %slot, "{} change on video {id}", change.kind.as_str());
        }
        let views = i64::try_from(views).unwrap_or(i64::MAX);
        let check = VideoCheck {
            record: ViewsRecord { video_id: id, slot, measured_at, views },
            title,
            thumb: thumb_state,
            changes,
        };
        let next_due_at = policy.next_slot(video.published_at, slot).map(|s| s.start());
        let finished = FinishedVideoCheck { lease: lease.clone(), check, next_due_at };
        self.writer.write(&self.store, &self.metrics, finished).await?;
        // A new video's first slot is due when the video is found, not at the slot's start.
        if video.thumb.is_some() {
            let lag = (measured_at - slot.start()).num_milliseconds() as f64 / 1000.0;
            self.metrics.slot_lag_seconds.get_or_create(&Metrics::kind("video")).observe(lag);
        }
        Ok(())
    }

    /// A video's views and title: from the Data API (`videos.list`, batched 50 ids per request)
    /// when an API key is configured, else from the player endpoint cut to the needed fields (or
    /// the watch page, per `views_from`). When the key's daily quota is spent, the scraped source
    /// stands in until it resets, so tracking never stops for quota.
    async fn views_and_title(&self, id: &VideoId) -> Result<(u64, String), JobError> {
        if self.youtube.config().api_key.is_some() {
            match self.timed("videos.list", self.youtube.video_batched(id)).await {
                Ok(Some(ApiVideo { views: Some(views), title, .. })) => return Ok((views, title)),
                // Statistics withheld: the player response still shows the count.
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(YoutubeError::Unavailable {
                        status: "NOT_RETURNED".into(),
                        reason: "videos.list does not return it (deleted, private or never existed)".into(),
                    }
                    .into());
                }
                Err(e @ YoutubeError::QuotaExceeded(_)) => {
                    tracing::debug!(video_id = %id, "{e}; reading the player response instead");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let endpoint = match self.youtube.config().views_from {
            ViewsEndpoint::Player => "player",
            ViewsEndpoint::WatchPage => "watch",
        };
        let info = self.timed(endpoint, self.youtube.video_check_info(id)).await?;
        Ok((info.views, info.title))
    }

    /// Compares the fetched thumbnail with the stored one. A new content hash whose perceptual
    /// hash shows the same picture is a re-encode, not a change.
    async fn compare_thumbnail(
        &self,
        video: &Video,
        thumb: &tubewatch_youtube::Thumbnail,
        slot: tubewatch_core::Slot,
        measured_at: DateTime<Utc>,
    ) -> Result<(Option<ThumbState>, Vec<NewChange>), JobError> {
        let sha256 = &thumb.hashes.sha256;
        let phash = &thumb.hashes.phash;
        let Some(old) = &video.thumb else {
            let key = self.archive(&video.id, thumb).await?;
            return Ok((
                Some(ThumbState { sha256: sha256.clone(), phash: phash.to_hex(), blob_key: Some(key) }),
                vec![],
            ));
        };
        if &old.sha256 == sha256 {
            return Ok((None, vec![]));
        }
        let same_picture = PerceptualHash::from_hex(&old.phash).is_some_and(|p| p.same_picture(phash));
        if same_picture {
            // Keep the archived picture's perceptual hash so slow drift cannot add up.
            let state = ThumbState { sha256: sha256.clone(), phash: old.phash.clone(), blob_key: old.blob_key.clone() };
            return Ok((Some(state), vec![]));
        }
        let key = self.archive(&video.id, thumb).await?;
        let change = NewChange {
            video_id: video.id.clone(),
            kind: ChangeKind::Thumbnail,
            slot,
            detected_at: measured_at,
            before_title: None,
            after_title: None,
            before_thumb_key: old.blob_key.clone(),
            after_thumb_key: Some(key.clone()),
        };
        Ok((Some(ThumbState { sha256: sha256.clone(), phash: phash.to_hex(), blob_key: Some(key) }), vec![change]))
    }

    /// Archives the small thumbnail already fetched and a large one; returns the small one's key.
    /// The large one is checked but not decoded: its hashes are never read.
    async fn archive(&self, video: &VideoId, small: &tubewatch_youtube::Thumbnail) -> Result<String, JobError> {
        let large = self.timed("thumbnail", self.youtube.thumbnail_bytes(video, ThumbnailSize::High)).await?;
        let sha = &small.hashes.sha256;
        self.blobs.put(&thumbnail_key(video, sha, ThumbnailSize::High.name()), large).await?;
        let key = thumbnail_key(video, sha, ThumbnailSize::Default.name());
        self.blobs.put(&key, small.bytes.clone()).await?;
        Ok(key)
    }
}
