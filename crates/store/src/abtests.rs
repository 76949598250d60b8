//! A/B tests: YouTube account connections (tokens sealed by the caller: the store only ever sees
//! ciphertext and the id of the key that sealed it), tests with their variants, the schedule
//! fixed at creation with each swap's actual time and outcome, the hourly views measured during
//! a test, and the quota it used; the owner's daily reach (the channel's reporting job, the days
//! read from its reports) and each test's reach state.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_core::{ChannelId, UserId, VideoId};

use crate::Result;

row_id!(
    /// An A/B test.
    AbTestId
);

/// A token sealed with an AEAD: `sealed` is the nonce followed by the ciphertext, `key_id` names
/// the key that sealed it so that keys can rotate.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedToken {
    pub key_id: String,
    pub sealed: Vec<u8>,
}

impl fmt::Debug for SealedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedToken").field("key_id", &self.key_id).field("len", &self.sealed.len()).finish()
    }
}

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),* }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok(Self::$variant),)*
                    other => Err(format!(concat!("unknown ", stringify!($name), " {:?}"), other)),
                }
            }
        }
    };
}

text_enum!(
    /// `Revoked`: Google refused the refresh token (revoked by the user, or expired); the user
    /// must connect again.
    ConnectionState { Active = "active", Revoked = "revoked" }
);

text_enum!(
    /// What a test rotates.
    AbTestKind { Thumbnail = "thumbnail", Title = "title", Both = "both" }
);

text_enum!(
    /// `Paused`: the test cannot go on for now (grant revoked); `Failed`: a permanent error
    /// (video gone, not allowed to edit it).
    AbTestState { Running = "running", Paused = "paused", Finished = "finished", Stopped = "stopped", Failed = "failed" }
);

text_enum!(
    /// How variants take turns. `Balanced`: rotation periods of a few hours in random order with
    /// every variant the same hours of the day and days of the week. `PacificDays`: one variant a
    /// whole US Pacific day, the days balanced over the weekdays — what the owner's daily reach
    /// (impressions, click-through rate) can attribute to one variant. `DailyAlternation`: one
    /// variant a day in turn from the start, as common tools do (for comparison in `eval abtest`:
    /// a variant cannot be told from its day under it).
    AbDesign { Balanced = "balanced", PacificDays = "pacific_days", DailyAlternation = "daily_alternation" }
);

text_enum!(
    /// What the wrap-up leaves live: the winner (the original when there is none), or the original.
    FinalAction { ApplyWinner = "apply_winner", RestoreOriginal = "restore_original" }
);

text_enum!(
    /// Where a test's daily reach data (the owner's thumbnail impressions and click-through rate)
    /// stands: `NotGranted` (the grant lacks `yt-analytics.readonly`), `WaitingForFirstReport`
    /// (the channel's reporting job exists, its first reports come about 48 hours after it was
    /// created), `Receiving`, `Failed` (the last poll failed; retried), `Revoked` (the grant is
    /// gone: the test goes on with public views alone).
    ReachState {
        NotGranted = "not_granted",
        WaitingForFirstReport = "waiting_for_first_report",
        Receiving = "receiving",
        Failed = "failed",
        Revoked = "revoked",
    }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewYoutubeConnection {
    pub user_id: UserId,
    pub channel_id: ChannelId,
    pub scopes: String,
    pub refresh: SealedToken,
    pub access: Option<SealedToken>,
    pub access_expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YoutubeConnection {
    pub user_id: UserId,
    pub channel_id: ChannelId,
    pub scopes: String,
    pub refresh: SealedToken,
    pub access: Option<SealedToken>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub state: ConnectionState,
    pub state_reason: Option<String>,
    pub connected_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One variant: a thumbnail (its normalised upload in the blob store, and the perceptual hash of
/// its small version, to recognise it live), a title, or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbVariant {
    pub thumb_blob_key: Option<String>,
    pub thumb_phash: Option<String>,
    pub title: Option<String>,
}

/// One rotation period of the stored schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbTestPeriod {
    pub index: i32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub variant: i32,
    /// When the swap that starts the period was made (`None`: not yet, or it failed).
    pub swapped_at: Option<DateTime<Utc>>,
    /// `ok`, `unchanged` (the variant was already live), or the failure.
    pub outcome: Option<String>,
    /// The analysis leaves the period out (failed or late swap).
    pub excluded: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAbTest {
    pub user_id: UserId,
    pub video_id: VideoId,
    /// When the video was published (the analysis models its decay with age).
    pub video_published_at: DateTime<Utc>,
    pub kind: AbTestKind,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub rotation_minutes: i32,
    pub design: AbDesign,
    /// The test may stop as soon as its always-valid verdict is decided.
    pub sequential: bool,
    pub final_action: FinalAction,
    pub original_title: Option<String>,
    pub original_thumb_key: Option<String>,
    pub original_thumb_phash: Option<String>,
    /// The power estimate shown at creation (JSON).
    pub power_json: String,
    pub variants: Vec<AbVariant>,
    pub periods: Vec<AbTestPeriod>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbTest {
    pub id: AbTestId,
    pub user_id: UserId,
    pub video_id: VideoId,
    /// When the video was published (the analysis models its decay with age).
    pub video_published_at: DateTime<Utc>,
    pub kind: AbTestKind,
    pub state: AbTestState,
    pub state_reason: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub rotation_minutes: i32,
    pub design: AbDesign,
    /// The test may stop as soon as its always-valid verdict is decided.
    pub sequential: bool,
    pub final_action: FinalAction,
    pub original_title: Option<String>,
    pub original_thumb_key: Option<String>,
    pub original_thumb_phash: Option<String>,
    pub power_json: String,
    /// The analysis and the wrap-up's outcome (JSON), once finished.
    pub result_json: Option<String>,
    /// Data API units spent on this test's writes.
    pub quota_used: i64,
    /// Set when the video's thumbnail or title was changed outside tubewatch during the test.
    pub outside_change: Option<String>,
    pub outside_change_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the result was sent to the user (`None`: not yet).
    pub notified_at: Option<DateTime<Utc>>,
    pub reach_state: ReachState,
    /// Why: when the reporting job was created, the last day received, the last error.
    pub reach_reason: Option<String>,
    pub reach_updated_at: Option<DateTime<Utc>>,
}

/// A test with its variants and schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbTestDetail {
    pub test: AbTest,
    pub variants: Vec<AbVariant>,
    pub periods: Vec<AbTestPeriod>,
}

/// One hourly measurement during a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AbViews {
    pub slot: DateTime<Utc>,
    pub measured_at: DateTime<Utc>,
    pub views: i64,
}

/// What a swap did to its period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapRecord {
    pub period: i32,
    pub swapped_at: Option<DateTime<Utc>>,
    pub outcome: String,
    pub excluded: bool,
    /// Data API units spent (added to the test's total).
    pub quota_units: i64,
}

/// A channel's reporting job for the reach report, and how far its reports were read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReachJob {
    pub channel_id: ChannelId,
    pub job_id: String,
    /// When YouTube created the job: its first reports come about 48 hours later.
    pub job_created_at: DateTime<Utc>,
    /// The creation time of the newest report read (with every one created before it): the next
    /// poll asks for reports created after it. `None`: no report read yet.
    pub reports_through: Option<DateTime<Utc>>,
    /// The newest Pacific day a report was read for.
    pub last_day: Option<NaiveDate>,
    pub updated_at: DateTime<Utc>,
}

/// A video's thumbnail impressions on one Pacific day (`[day_start, day_end)`) and the share of
/// them that became views.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReachDay {
    pub video_id: VideoId,
    pub date: NaiveDate,
    pub day_start: DateTime<Utc>,
    pub day_end: DateTime<Utc>,
    pub impressions: i64,
    pub ctr: f64,
}

/// One downloaded reach report: a Pacific day and the channel's rows for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReachReport {
    pub channel_id: ChannelId,
    pub date: NaiveDate,
    pub day_start: DateTime<Utc>,
    pub day_end: DateTime<Utc>,
    /// (video, impressions, click-through rate)
    pub rows: Vec<(VideoId, i64, f64)>,
}

#[async_trait]
pub trait AbTestStore: Send + Sync {
    /// Connects (or reconnects) the user's YouTube account; a reconnect replaces the tokens and
    /// makes the connection active again.
    async fn upsert_youtube_connection(&self, connection: &NewYoutubeConnection, now: DateTime<Utc>) -> Result<()>;
    async fn youtube_connection(&self, user: UserId) -> Result<Option<YoutubeConnection>>;
    /// Replaces the access token (and the refresh token when `refresh` is given, e.g. resealed
    /// with the current key). `NotFound` without a connection.
    async fn update_youtube_tokens(
        &self,
        user: UserId,
        refresh: Option<&SealedToken>,
        access: Option<(&SealedToken, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Marks the connection revoked (its access token dropped) and pauses the user's running
    /// tests with `reason`; returns how many tests were paused.
    async fn revoke_youtube_connection(&self, user: UserId, reason: &str, now: DateTime<Utc>) -> Result<u64>;
    /// Forgets the connection (disconnect); returns whether there was one.
    async fn remove_youtube_connection(&self, user: UserId) -> Result<bool>;

    /// Stores a test, its variants and its schedule in one transaction, in state `Running`.
    async fn create_abtest(&self, test: &NewAbTest, now: DateTime<Utc>) -> Result<AbTest>;
    async fn abtest(&self, id: AbTestId) -> Result<Option<AbTestDetail>>;
    /// A user's tests, newest first.
    async fn user_abtests(&self, user: UserId) -> Result<Vec<AbTest>>;
    /// Records a swap's outcome on its period and adds its quota units to the test.
    async fn record_abtest_swap(&self, id: AbTestId, swap: &SwapRecord) -> Result<()>;
    /// Adds Data API units spent outside swaps (wrap-up, verification).
    async fn add_abtest_quota(&self, id: AbTestId, units: i64) -> Result<()>;
    /// Inserts an hourly measurement; `false` when the slot already had one (kept as it was).
    async fn record_abtest_views(&self, id: AbTestId, views: &AbViews) -> Result<bool>;
    /// The test's measurements in slot order.
    async fn abtest_views(&self, id: AbTestId) -> Result<Vec<AbViews>>;
    /// Sets the state (`Paused`, `Stopped`, `Failed`, or `Running` again) with a reason.
    async fn set_abtest_state(
        &self,
        id: AbTestId,
        state: AbTestState,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Flags the first change made outside tubewatch; later flags keep the first one.
    async fn flag_abtest_outside_change(&self, id: AbTestId, detail: &str, at: DateTime<Utc>) -> Result<bool>;

    /// Replaces the test's power estimate (re-estimated from the test's own views).
    async fn set_abtest_power(&self, id: AbTestId, power_json: &str) -> Result<()>;
    /// Stores the result and ends the test in `state` (`Finished` or `Stopped`).
    async fn finish_abtest(
        &self,
        id: AbTestId,
        state: AbTestState,
        result_json: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Ended tests with a result not yet sent to their user, oldest first: what the result
    /// mailer picks up.
    async fn abtests_to_notify(&self, limit: u32) -> Result<Vec<AbTest>>;
    async fn mark_abtest_notified(&self, id: AbTestId, now: DateTime<Utc>) -> Result<()>;

    /// Sets a test's reach state and its reason.
    async fn set_abtest_reach(
        &self,
        id: AbTestId,
        state: ReachState,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Records the channel's reporting job. Another job than the one recorded (the old one
    /// expired) starts reading its reports from the beginning.
    async fn set_reach_job(
        &self,
        channel: &ChannelId,
        job_id: &str,
        job_created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ReachJob>;
    async fn reach_job(&self, channel: &ChannelId) -> Result<Option<ReachJob>>;
    /// Stores a report's rows (each replacing the same video and day) in one transaction, and
    /// moves the job's read position to `through` when given (never backwards). `NotFound`
    /// without a job for the channel.
    async fn record_reach_report(
        &self,
        report: &ReachReport,
        through: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// A video's days that overlap `[from, to)`, oldest first.
    async fn reach_days(&self, video: &VideoId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<ReachDay>>;
}
