//! Weekly outliers: channel band snapshots, outlier results, digests sent, and the reads the
//! weekly outlier and digest jobs need (a channel's videos with their series and changes, a
//! week's outliers for one user's channels and videos).

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_core::{ChannelId, UserId, VideoId};

use crate::{ChangeEvent, Lease, Result, SealedToken, Video, ViewsRecord};

/// What an outlier is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutlierKind {
    /// Far above the channel's typical views at the same age.
    Channel,
    /// Views jumped after a thumbnail change (or a thumbnail and title change made together).
    Thumbnail,
    /// Views jumped after a title change.
    Title,
}

impl OutlierKind {
    pub const ALL: [OutlierKind; 3] = [Self::Channel, Self::Thumbnail, Self::Title];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Channel => "channel",
            Self::Thumbnail => "thumbnail",
            Self::Title => "title",
        }
    }
}

impl fmt::Display for OutlierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutlierKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown outlier kind {s:?}"))
    }
}

/// A channel's typical-band snapshot as stored: core's `ChannelBandSnapshot` serialised to JSON
/// (the store does not interpret it), and the time up to which measurements were applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandSnapshotRecord {
    pub channel_id: ChannelId,
    pub snapshot_json: String,
    pub applied_through: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One finding of a weekly run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOutlier {
    pub video_id: VideoId,
    pub channel_id: ChannelId,
    pub kind: OutlierKind,
    /// ISO week, e.g. `2026-W03`.
    pub week: String,
    /// Channel outliers: views ÷ band median. Change outliers: 1 + lift.
    pub score: f64,
    pub lift: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub age_hours: Option<f64>,
    pub views: i64,
    pub changed_at: Option<DateTime<Utc>>,
    /// The archived thumbnail (blob key) to show.
    pub thumb_key: Option<String>,
    /// One line saying why, e.g. "4.2× this channel's typical views at 3 days".
    pub explanation: String,
    pub found_at: DateTime<Utc>,
}

/// A stored outlier with what a digest shows about its video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outlier {
    pub id: i64,
    #[serde(flatten)]
    pub outlier: NewOutlier,
    pub video_title: String,
}

/// A video with everything the outlier rules read: its measurements and its change events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSeries {
    pub video: Video,
    pub views: Vec<ViewsRecord>,
    pub changes: Vec<ChangeEvent>,
}

/// A digest that went out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestSent {
    pub user_id: UserId,
    pub week: String,
    pub outliers: i32,
    /// `smtp` or `outbox`.
    pub delivery: String,
    pub sent_at: DateTime<Utc>,
}

/// A user's outgoing webhook: where each week's outliers are POSTed, and the signing secret,
/// sealed (signing needs it back, so it cannot be hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserWebhook {
    pub user_id: UserId,
    pub url: String,
    pub secret: SealedToken,
    pub created_at: DateTime<Utc>,
}

/// One week's webhook delivery to a user: the attempts so far and how the last one ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub user_id: UserId,
    pub week: String,
    pub url: String,
    pub outliers: i32,
    pub attempts: i32,
    /// The last answer's HTTP status, if there was an answer.
    pub status_code: Option<i32>,
    /// Why the last attempt failed (`None` once delivered).
    pub error: Option<String>,
    pub last_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait OutlierStore: Send + Sync {
    async fn band_snapshot(&self, channel: &ChannelId) -> Result<Option<BandSnapshotRecord>>;

    /// A channel's videos published at or after `published_since`, newest first, each with its
    /// views records (slot order) and change events.
    async fn channel_series(&self, channel: &ChannelId, published_since: DateTime<Utc>) -> Result<Vec<VideoSeries>>;

    /// Ends a weekly outlier run in one transaction, only while `lease` is held: stores the band
    /// snapshot, inserts the findings (a `(video, kind, week)` already stored is kept as it was,
    /// so re-running a week is idempotent) and reschedules the target. Returns how many findings
    /// were new.
    async fn complete_outlier_run(
        &self,
        lease: &Lease,
        snapshot: &BandSnapshotRecord,
        outliers: &[NewOutlier],
        next_due_at: DateTime<Utc>,
    ) -> Result<u64>;

    /// Every outlier of `week`, by channel, kind and video.
    async fn week_outliers(&self, week: &str) -> Result<Vec<Outlier>>;

    /// The outliers of `week` a user sees: those of the channels they monitor and of the videos
    /// they track, each once, by channel, kind and video.
    async fn user_week_outliers(&self, user: UserId, week: &str) -> Result<Vec<Outlier>>;

    /// Users who monitor the channel or track one of its videos (they get its outliers).
    async fn channel_watchers(&self, channel: &ChannelId) -> Result<Vec<UserId>>;

    /// Channels a user sees outliers from: those they monitor and those of videos they track.
    async fn user_outlier_channels(&self, user: UserId) -> Result<Vec<ChannelId>>;

    async fn digest_sent(&self, user: UserId, week: &str) -> Result<Option<DigestSent>>;

    /// Records a sent digest and reschedules the digest target in one transaction, only while
    /// `lease` is held. Returns `false` when that week's digest was already recorded.
    async fn complete_digest(&self, lease: &Lease, sent: &DigestSent, next_due_at: DateTime<Utc>) -> Result<bool>;

    /// Whether the user wants the weekly digest (`true` for a new user). `None`: no such user.
    async fn digest_enabled(&self, user: UserId) -> Result<Option<bool>>;

    /// Turns the user's weekly digest on or off. Returns `false` when there is no such user.
    async fn set_digest_enabled(&self, user: UserId, enabled: bool) -> Result<bool>;

    /// Stores the SHA-256 (hex) of an unsubscribe token carried by a digest.
    async fn add_unsubscribe_token(&self, user: UserId, token_hash: &str, now: DateTime<Utc>) -> Result<()>;

    /// Turns off the digest of the user whose unsubscribe token hashes to `token_hash`; returns
    /// that user, or `None` for an unknown token (nothing changes).
    async fn unsubscribe_by_token(&self, token_hash: &str) -> Result<Option<UserId>>;

    async fn webhook(&self, user: UserId) -> Result<Option<UserWebhook>>;

    /// Sets (or replaces, with its new secret) the user's webhook.
    async fn set_webhook(&self, webhook: &UserWebhook) -> Result<()>;

    /// Removes the user's webhook; `false` when there was none.
    async fn delete_webhook(&self, user: UserId) -> Result<bool>;

    async fn webhook_delivery(&self, user: UserId, week: &str) -> Result<Option<WebhookDelivery>>;

    /// Stores the state of a week's delivery after an attempt (inserted or replaced).
    async fn record_webhook_attempt(&self, delivery: &WebhookDelivery) -> Result<()>;

    /// The user's latest deliveries, newest attempt first.
    async fn webhook_deliveries(&self, user: UserId, limit: u32) -> Result<Vec<WebhookDelivery>>;
}
