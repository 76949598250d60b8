//! tubewatch storage. The `Store` trait speaks domain types; the SQLite (embedded default) and
//! PostgreSQL (scaled-out) backends share one implementation: the SQL is written once in
//! `src/sql/` and compiled once per backend, whose module (`sqlite.rs`, `postgres.rs`) supplies
//! only the dialect (how a time is stored, the claim statement, transactions). The schema is one
//! source too (`migrations/`, rendered per dialect by `schema`), and one conformance suite
//! (`tests/conformance.rs`) runs on both.
#![forbid(unsafe_code)]

/// An id the store assigns (a row's integer key): stored as an integer on both backends, written
/// as the number in JSON, text and logs. `new` wraps one read back (a path, a target's subject).
macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(i64);

        impl $name {
            pub const fn new(id: i64) -> Self {
                Self(id)
            }

            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

mod abtests;
mod accounts;
mod model;
mod outliers;
pub mod pg_server;
mod postgres;
mod schema;
mod sqlite;
mod ui;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use tubewatch_core::{ChannelId, Email, UserId, VideoId};

pub use abtests::*;
pub use accounts::*;
pub use model::*;
pub use outliers::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use ui::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// The lease expired and the target was claimed again; the result must be dropped.
    #[error("lease on target {0} is no longer held")]
    LeaseLost(TargetId),
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("invalid schema name {0:?}: use lower-case letters, digits and '_'")]
    InvalidSchema(String),
    /// A write batched with others failed as a whole; nothing of it was written.
    #[error("the batch this write was part of failed: {0}")]
    BatchFailed(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything tubewatch keeps. Every method is one transaction. The tracking core is declared
/// here; accounts, outliers, A/B tests and the web UI's reads have traits of their own (one file each, with their
/// SQL in `sqlite/` and `postgres/`), all required of a `Store`.
#[async_trait]
pub trait Store: AccountStore + OutlierStore + AbTestStore + UiStore + Send + Sync + std::fmt::Debug {
    /// Applies this backend's embedded migrations.
    async fn migrate(&self) -> Result<()>;
    /// A cheap round trip, for health checks.
    async fn ping(&self) -> Result<()>;
    /// Closes the connection pool: every later call fails.
    async fn close(&self);
    /// Moves what SQLite's write-ahead log holds into the database file and empties the log, so
    /// the file's size is the data's (what `bench burst` measures per record); nothing on
    /// PostgreSQL, whose server manages its log.
    async fn checkpoint(&self) -> Result<()>;

    async fn upsert_channel(&self, channel: &NewChannel, now: DateTime<Utc>) -> Result<()>;
    async fn channel(&self, id: &ChannelId) -> Result<Option<Channel>>;
    /// The stored channels among `ids` (one round trip for a claim's channel targets), in no
    /// particular order.
    async fn channels(&self, ids: &[ChannelId]) -> Result<Vec<Channel>>;

    /// Inserts a video unless it exists; returns whether it was new.
    async fn insert_video(&self, video: &NewVideo, now: DateTime<Utc>) -> Result<bool>;
    async fn video(&self, id: &VideoId) -> Result<Option<Video>>;
    /// Which of `ids` are already known.
    async fn existing_videos(&self, ids: &[VideoId]) -> Result<Vec<VideoId>>;
    /// A channel's known videos, newest first.
    async fn channel_videos(&self, id: &ChannelId) -> Result<Vec<Video>>;

    /// Creates the target `(kind, subject)` due at `due`, or returns the existing one unchanged
    /// (two users tracking one thing share one target).
    async fn ensure_target(
        &self,
        kind: TargetKind,
        subject: &str,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Target>;
    async fn target(&self, kind: TargetKind, subject: &str) -> Result<Option<Target>>;
    /// Targets of one kind ordered by subject, a page at a time.
    async fn list_targets(&self, kind: TargetKind, offset: u64, limit: u32) -> Result<Vec<Target>>;
    /// Stops a target for everyone (its history stays); returns whether it was active.
    async fn stop_target(&self, kind: TargetKind, subject: &str) -> Result<bool>;
    /// Makes a stopped or failed target active again, due at `due`, its failures forgotten (an
    /// explicit request to track it again); returns whether it was not active.
    async fn resume_target(&self, kind: TargetKind, subject: &str, due: DateTime<Utc>) -> Result<bool>;
    /// Marks a target as the operator's (tracked without a user): it is kept when its last user
    /// lets it go.
    async fn keep_target(&self, kind: TargetKind, subject: &str) -> Result<()>;
    /// Atomically leases up to `limit` active targets due at `now` whose lease is free or expired
    /// (a failed run waiting for its retry time holds a lease owned by nobody), oldest due first.
    /// Concurrent callers never receive the same target.
    async fn claim_due(&self, owner: &str, now: DateTime<Utc>, lease_for: Duration, limit: u32) -> Result<Vec<Target>>;
    /// Ends a successful run: reschedules at `next_due_at`, or finishes the target when `None`.
    async fn complete(&self, lease: &Lease, next_due_at: Option<DateTime<Utc>>) -> Result<()>;
    /// Records a failed run. `retry_at: Some` keeps the target active and its due time (so the
    /// retry still fills the slot it was scheduled for) but lets nobody claim it before
    /// `retry_at`; `None` marks it failed for good (permanent errors).
    async fn fail(&self, lease: &Lease, error: &str, now: DateTime<Utc>, retry_at: Option<DateTime<Utc>>)
    -> Result<()>;
    /// Gives up on the current slot after repeated transient failures: the error is recorded,
    /// attempts reset, and the target moves on to `next_due_at` (`None`: finished).
    async fn skip_slot(
        &self,
        lease: &Lease,
        error: &str,
        now: DateTime<Utc>,
        next_due_at: Option<DateTime<Utc>>,
    ) -> Result<()>;
    /// Gives a lease back without running (graceful shutdown): due again at once.
    async fn release(&self, lease: &Lease) -> Result<()>;
    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats>;
    /// Whether any target is due at `now` or leased (`queue_stats`' `due + leased > 0`), read
    /// from the due-time index without counting: cheap enough to poll while a burst runs.
    async fn queue_busy(&self, now: DateTime<Utc>) -> Result<bool>;
    /// Active targets whose last run failed, and failed targets, most recent error first.
    async fn failing_targets(&self, limit: u32) -> Result<Vec<Target>>;

    /// Writes a measurement, the video's new title and thumbnail, its change events and the
    /// target's next due time in one transaction, only while `lease` is held. A record for an
    /// already measured slot is kept as it was (idempotent retries).
    async fn complete_video_check(
        &self,
        lease: &Lease,
        check: &VideoCheck,
        next_due_at: Option<DateTime<Utc>>,
    ) -> Result<()>;
    /// Writes a batch of finished video checks in one transaction, in a few statements whatever
    /// its size. Each check whose lease is still held gets its record (an already measured slot
    /// keeps its record), its change events, its video's title and thumbnail (the row is written
    /// only where they differ) and its target's next due time; a check whose lease was lost writes
    /// nothing. Returns, in the batch's order, whether each lease was held. On an error nothing is
    /// written and every lease stays as it was: the targets are claimed again when their leases
    /// expire (or when the caller records the failure), so no slot is lost.
    async fn complete_video_checks(&self, checks: &[FinishedVideoCheck]) -> Result<Vec<bool>>;
    /// The stored videos among `ids` (one round trip for a batch of claimed targets), in no
    /// particular order.
    async fn videos(&self, ids: &[VideoId]) -> Result<Vec<Video>>;
    /// Inserts the feed's videos not stored yet, each with a target due at its first slot (the
    /// stored ones and their targets are left as they are), updates the channel and reschedules
    /// its target.
    async fn complete_channel_check(
        &self,
        lease: &Lease,
        check: &ChannelCheck,
        next_due_at: DateTime<Utc>,
    ) -> Result<()>;
    /// `complete_channel_check` for a batch, in one transaction and a few statements whatever its
    /// size: each check whose lease is still held gets its new videos and their targets,
    /// its channel's check time and latest video, and its target's next check; a check whose
    /// lease was lost writes nothing. Returns, in the batch's order, whether each lease was held.
    /// On an error nothing is written and every lease stays as it was.
    async fn complete_channel_checks(&self, checks: &[FinishedChannelCheck]) -> Result<Vec<bool>>;

    /// Inserts a views record; `false` when the slot already had one (which is kept).
    async fn record_views(&self, record: &ViewsRecord) -> Result<bool>;
    /// A video's records in slot order.
    async fn views(&self, video: &VideoId) -> Result<Vec<ViewsRecord>>;
    async fn record_change(&self, change: &NewChange) -> Result<bool>;
    /// A video's change events in slot order.
    async fn changes(&self, video: &VideoId) -> Result<Vec<ChangeEvent>>;

    /// Fails with `Conflict` when the email is taken.
    async fn create_user(&self, user: &NewUser, now: DateTime<Utc>) -> Result<User>;
    async fn user(&self, id: UserId) -> Result<Option<User>>;
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>>;
    async fn set_user_plan(&self, id: UserId, plan: Plan) -> Result<()>;

    /// Returns whether the mapping is new.
    async fn add_user_channel(&self, user: UserId, channel: &ChannelId, now: DateTime<Utc>) -> Result<bool>;
    /// Removes the user's mapping. When no user monitors the channel any more and the operator
    /// does not keep it, its target stops, and so do those of its videos that no user tracks on
    /// their own and the operator does not keep. Returns whether the mapping existed.
    async fn remove_user_channel(&self, user: UserId, channel: &ChannelId) -> Result<bool>;
    async fn user_channels(&self, user: UserId) -> Result<Vec<ChannelId>>;
    async fn add_user_video(&self, user: UserId, video: &VideoId, now: DateTime<Utc>) -> Result<bool>;
    /// Removes the user's mapping. When no user tracks the video any more, the operator does not
    /// keep it and its channel is not tracked, its target stops. Returns whether the mapping
    /// existed.
    async fn remove_user_video(&self, user: UserId, video: &VideoId) -> Result<bool>;
    async fn user_videos(&self, user: UserId) -> Result<Vec<UserVideo>>;
    /// Individually tracked videos added at or after `since` (the monthly limit's count).
    async fn count_user_videos_since(&self, user: UserId, since: DateTime<Utc>) -> Result<u64>;
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections kept by the pool.
    pub max_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { max_connections: 10 }
    }
}

/// Opens the backend named by the URL's scheme. The only place the dialect is chosen.
pub async fn connect(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url, options).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Turns a stored text column back into a validated domain value.
fn decode<T, E: std::fmt::Display>(column: &str, parsed: std::result::Result<T, E>) -> Result<T> {
    parsed.map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}
