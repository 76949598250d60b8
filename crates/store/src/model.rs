//! The store's domain types: what callers write and read, independent of any SQL dialect.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_core::{ChannelId, Email, Slot, UserId, VideoId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewChannel {
    pub id: ChannelId,
    pub title: String,
    pub handle: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub id: ChannelId,
    pub title: String,
    pub handle: Option<String>,
    pub latest_video_id: Option<VideoId>,
    pub checked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVideo {
    pub id: VideoId,
    pub channel_id: ChannelId,
    pub published_at: DateTime<Utc>,
    pub is_short: bool,
    pub title: String,
}

/// The current thumbnail of a video as last measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThumbState {
    /// SHA-256 of the smallest thumbnail's bytes, hex.
    pub sha256: String,
    /// Perceptual hash, encoded by the YouTube client.
    pub phash: String,
    /// Where the archived copy lives in the blob store.
    pub blob_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Video {
    pub id: VideoId,
    pub channel_id: ChannelId,
    pub published_at: DateTime<Utc>,
    pub is_short: bool,
    pub title: String,
    pub thumb: Option<ThumbState>,
    pub created_at: DateTime<Utc>,
}

/// What a target is: the schedule and queue hold every kind of recurring job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A channel's feed, read hourly (subject: channel id).
    Channel,
    /// A video's measurements (subject: video id).
    Video,
    /// A channel's weekly outlier run (subject: channel id).
    Outliers,
    /// A user's weekly digest (subject: user id).
    Digest,
    /// An A/B test's next step, a swap or the wrap-up (subject: test id).
    AbTest,
    /// A user's hourly read of their channel's reach reports for their A/B tests (subject: user id).
    Reach,
}

impl TargetKind {
    pub const ALL: [TargetKind; 6] =
        [Self::Channel, Self::Video, Self::Outliers, Self::Digest, Self::AbTest, Self::Reach];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Channel => "channel",
            Self::Video => "video",
            Self::Outliers => "outliers",
            Self::Digest => "digest",
            Self::AbTest => "abtest",
            Self::Reach => "reach",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TargetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown target kind {s:?}"))
    }
}

/// `Active` targets are scheduled; `Finished` ones ran their course; `Failed` ones hit a permanent
/// error (video deleted, channel gone) and are shown to their users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    Active,
    Finished,
    Failed,
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Finished => "finished",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for TargetState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(Self::Active),
            "finished" => Ok(Self::Finished),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown target state {other:?}")),
        }
    }
}

row_id!(
    /// A target of the work queue.
    TargetId
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub id: TargetId,
    pub kind: TargetKind,
    pub subject: String,
    pub state: TargetState,
    pub next_due_at: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// Failed runs since the last success (a claim lost to a dead worker is not one); drives
    /// backoff and when a slot is given up.
    pub attempts: i32,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Proof of a claim. Completing or failing a target only works while this lease is the current
/// one: once it expires and another worker claims the target, the old lease is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub target_id: TargetId,
    pub owner: String,
    pub until: DateTime<Utc>,
}

impl Target {
    /// The lease of a target returned by `claim_due`.
    pub fn lease(&self) -> Option<Lease> {
        Some(Lease { target_id: self.id, owner: self.lease_owner.clone()?, until: self.lease_until? })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueStats {
    pub active: u64,
    /// Active, due at or before `now`, not leased.
    pub due: u64,
    pub leased: u64,
    pub failed: u64,
    pub finished: u64,
    /// Active targets whose last attempt failed.
    pub erroring: u64,
    /// The oldest due time among due targets.
    pub oldest_due_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewsRecord {
    pub video_id: VideoId,
    pub slot: Slot,
    pub measured_at: DateTime<Utc>,
    pub views: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Thumbnail,
    Title,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Thumbnail => "thumbnail",
            Self::Title => "title",
        }
    }
}

impl FromStr for ChangeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "thumbnail" => Ok(Self::Thumbnail),
            "title" => Ok(Self::Title),
            other => Err(format!("unknown change kind {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewChange {
    pub video_id: VideoId,
    pub kind: ChangeKind,
    pub slot: Slot,
    pub detected_at: DateTime<Utc>,
    pub before_title: Option<String>,
    pub after_title: Option<String>,
    pub before_thumb_key: Option<String>,
    pub after_thumb_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub id: i64,
    #[serde(flatten)]
    pub change: NewChange,
}

/// Everything one video measurement writes, applied with the target's next due time in one
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoCheck {
    pub record: ViewsRecord,
    pub title: String,
    pub thumb: Option<ThumbState>,
    pub changes: Vec<NewChange>,
}

/// A video check ready to be written in a batch (`Store::complete_video_checks`): the lease it
/// ran under and its target's next due time (`None`: that was its last slot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedVideoCheck {
    pub lease: Lease,
    pub check: VideoCheck,
    pub next_due_at: Option<DateTime<Utc>>,
}

/// A channel check ready to be written in a batch (`Store::complete_channel_checks`): the lease
/// it ran under and the channel's next check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedChannelCheck {
    pub lease: Lease,
    pub check: ChannelCheck,
    pub next_due_at: DateTime<Utc>,
}

/// A channel check's outcome: the videos its feed shows that are still to be tracked, each with
/// the start of the first slot it would be measured in. The store adds those it does not know yet,
/// each with a video target due then, and leaves the known ones (and their targets) as they are:
/// which are new is decided where they are written, so a check reads nothing before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCheck {
    pub channel_id: ChannelId,
    pub checked_at: DateTime<Utc>,
    pub latest_video_id: Option<VideoId>,
    pub feed_videos: Vec<(NewVideo, DateTime<Utc>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    Free,
    Premium,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Premium => "premium",
        }
    }
}

impl FromStr for Plan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "free" => Ok(Self::Free),
            "premium" => Ok(Self::Premium),
            other => Err(format!("unknown plan {other:?} (expected free or premium)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: Email,
    /// A PHC-format password hash (argon2id); never a password.
    pub password_hash: String,
    pub plan: Plan,
    pub is_admin: bool,
    /// Whether the email counts as confirmed from the start: true for accounts the operator
    /// creates (CLI, demo); false for a sign-up, which must follow the mailed link before it
    /// can log in.
    pub email_verified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    #[serde(skip)]
    pub password_hash: String,
    pub plan: Plan,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
    /// When the email was confirmed; `None`: not yet, and the account cannot log in.
    pub email_verified_at: Option<DateTime<Utc>>,
}

impl User {
    pub fn email_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserVideo {
    pub video_id: VideoId,
    pub added_at: DateTime<Utc>,
}
