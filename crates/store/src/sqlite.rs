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
