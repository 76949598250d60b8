//! The embedded default: one SQLite file in WAL mode. Times are stored as integer milliseconds.
//! Claims rely on SQLite's single writer: one `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`
//! is atomic, so concurrent claimers never share a target.
//!
//! This module is the dialect only; the SQL is in `src/sql/`, compiled here once more.

#[path = "sql/abtests.rs"]
mod abtests;
#[path = "sql/accounts.rs"]
mod accounts;
#[path = "sql/outliers.rs"]
mod outliers;
#[path = "sql/tracking.rs"]
mod tracking;
#[path = "sql/ui.rs"]
mod ui;

use std::str::FromStr;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use tubewatch_core::UserId;

use crate::schema::Dialect;
use crate::{Result, StoreError, StoreOptions};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

type Backend = SqliteStore;
type Db = Sqlite;
type DbRow = SqliteRow;
const DIALECT: Dialect = Dialect::Sqlite;

/// A time as stored: integer milliseconds since the Unix epoch.
fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(column: &str, v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| StoreError::Corrupt(format!("{column}: time {v} out of range")))
}

fn at(row: &DbRow, column: &str) -> Result<DateTime<Utc>> {
    from_ms(column, row.try_get(column)?)
}

fn at_opt(row: &DbRow, column: &str) -> Result<Option<DateTime<Utc>>> {
    row.try_get::<Option<i64>, _>(column)?.map(|v| from_ms(column, v)).transpose()
}

/// Leases the due targets (binds: owner, lease until, now, now, limit); one statement, so the
/// single writer makes it atomic.
const CLAIM_DUE: &str = "UPDATE targets SET lease_owner = $1, lease_until = $2 WHERE id IN ( \
       SELECT id FROM targets WHERE state = 'active' AND next_due_at <= $3 \
       AND (lease_until IS NULL OR lease_until < $4) ORDER BY next_due_at, id LIMIT $5) \
     RETURNING *";

/// The ids among a JSON array of video ids that are stored.
const EXISTING_VIDEOS: &str = "SELECT id FROM videos WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id";

/// The stored videos among a JSON array of video ids.
const VIDEOS_BY_IDS: &str = "SELECT * FROM videos WHERE id IN (SELECT value FROM json_each($1))";

/// The stored channels among a JSON array of channel ids.
const CHANNELS_BY_IDS: &str = "SELECT * FROM channels WHERE id IN (SELECT value FROM json_each($1))";

// A batch of video checks arrives as one JSON array per statement (`sql/tracking.rs` writes it):
// one prepared statement whatever the batch's size, and no limit on bound parameters.

/// Reschedules the targets of a batch whose lease is still held, each to its `next` due time
/// (finished when null), and returns their ids: the lease check and the reschedule in one.
const RESCHEDULE_HELD: &str = "UPDATE targets SET \
       state = CASE WHEN b.next IS NULL THEN 'finished' ELSE 'active' END, \
       next_due_at = COALESCE(b.next, targets.next_due_at), lease_owner = NULL, lease_until = NULL, \
       attempts = 0, last_error = NULL, last_error_at = NULL \
     FROM (SELECT value ->> 'id' AS id, value ->> 'owner' AS owner, value ->> 'until' AS until, \
           value ->> 'next' AS next FROM json_each($1)) AS b \
     WHERE targets.id = b.id AND targets.lease_owner = b.owner AND targets.lease_until = b.until \
     RETURNING id";

/// Inserts a batch's views records; a slot already measured keeps its record.
const INSERT_VIEWS_BATCH: &str = "INSERT INTO views (video_id, slot, measured_at, views) \
     SELECT value ->> 'video_id', value ->> 'slot', value ->> 'measured_at', value ->> 'views' \
     FROM json_each($1) WHERE true \
     ON CONFLICT (video_id, slot) DO NOTHING";

/// Sets a batch's titles and thumbnails (a null thumbnail field keeps the stored one), writing
/// only the rows where something differs.
const UPDATE_VIDEOS_BATCH: &str = "UPDATE videos SET title = b.title, \
       thumb_sha256 = COALESCE(b.sha256, videos.thumb_sha256), thumb_phash = COALESCE(b.phash, videos.thumb_phash), \
       thumb_blob_key = COALESCE(b.blob_key, videos.thumb_blob_key) \
     FROM (SELECT value ->> 'id' AS id, value ->> 'title' AS title, value ->> 'sha256' AS sha256, \
           value ->> 'phash' AS phash, value ->> 'blob_key' AS blob_key FROM json_each($1)) AS b \
     WHERE videos.id = b.id AND (videos.title IS DISTINCT FROM b.title \
       OR videos.thumb_sha256 IS DISTINCT FROM COALESCE(b.sha256, videos.thumb_sha256) \
       OR videos.thumb_phash IS DISTINCT FROM COALESCE(b.phash, videos.thumb_phash) \
       OR videos.thumb_blob_key IS DISTINCT FROM COALESCE(b.blob_key, videos.thumb_blob_key))";

/// Inserts a batch of the videos channel feeds show, leaving those already stored as they are;
/// returns the ids it inserted.
const INSERT_VIDEOS_BATCH: &str = "INSERT INTO videos (id, channel_id, published_at, is_short, title, created_at) \
     SELECT value ->> 'id', value ->> 'channel_id', value ->> 'published_at', value ->> 'is_short', \
       value ->> 'title', value ->> 'created_at' \
     FROM json_each($1) WHERE true \
     ON CONFLICT (id) DO NOTHING RETURNING id";

/// Inserts a batch of video targets, each due at its `due` time; a target that exists is kept.
const INSERT_VIDEO_TARGETS_BATCH: &str = "INSERT INTO targets (kind, subject, next_due_at, created_at) \
     SELECT 'video', value ->> 'id', value ->> 'due', value ->> 'created_at' \
     FROM json_each($1) WHERE true \
     ON CONFLICT (kind, subject) DO NOTHING";

/// Sets a batch's channel check times and latest videos (a null latest video keeps the stored one).
const UPDATE_CHANNELS_BATCH: &str = "UPDATE channels SET checked_at = b.checked_at, \
       latest_video_id = COALESCE(b.latest, channels.latest_video_id) \
     FROM (SELECT value ->> 'id' AS id, value ->> 'checked_at' AS checked_at, value ->> 'latest' AS latest \
           FROM json_each($1)) AS b \
     WHERE channels.id = b.id";

/// Empties the write-ahead log into the database file, where the backend has one to empty.
const CHECKPOINT: Option<&str> = Some("PRAGMA wal_checkpoint(TRUNCATE)");

const MIGRATIONS_TABLE_EXISTS: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'";

impl SqliteStore {
    /// Opens (creating if needed) the database file of a `sqlite://PATH` URL, and its folder.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(StdDuration::from_secs(30))
            .foreign_keys(true);
        if let Some(dir) = connect.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Database(sqlx::Error::Configuration(format!("{}: {e}", dir.display()).into()))
            })?;
        }
        let pool =
            SqlitePoolOptions::new().max_connections(options.max_connections.max(1)).connect_with(connect).await?;
        Ok(Self { pool })
    }

    /// Write transactions take the write lock up front: a deferred transaction that reads and then
    /// writes fails at once with SQLITE_BUSY under WAL instead of waiting for `busy_timeout`.
    async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A transaction in which `user`'s limited adds are serialised: the write lock does it.
    async fn begin_for_user(&self, _user: UserId) -> Result<Transaction<'static, Sqlite>> {
        self.begin().await
    }
}
