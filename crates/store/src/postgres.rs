//! The scaled-out backend: PostgreSQL with a connection pool, shared by any number of web and
//! worker processes. Claims use `FOR UPDATE SKIP LOCKED`, so concurrent workers skip each other's
//! rows instead of waiting on them, and never share a target.
//!
//! This module is the dialect only; the SQL is in `src/sql/`, compiled here once more.

// Each file of `src/sql/` is compiled once per backend on purpose: that is how the SQL is written once.

#[path = "sql/abtests.rs"]
#[allow(clippy::duplicate_mod)]
mod abtests;
#[path = "sql/accounts.rs"]
#[allow(clippy::duplicate_mod)]
mod accounts;
#[path = "sql/outliers.rs"]
#[allow(clippy::duplicate_mod)]
mod outliers;
#[path = "sql/tracking.rs"]
#[allow(clippy::duplicate_mod)]
mod tracking;
#[path = "sql/ui.rs"]
#[allow(clippy::duplicate_mod)]
mod ui;

use std::str::FromStr;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgPool, Postgres, Row, Transaction};
use tubewatch_core::UserId;

use crate::schema::Dialect;
use crate::{Result, StoreError, StoreOptions};

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

type Backend = PgStore;
type Db = Postgres;
type DbRow = PgRow;
const DIALECT: Dialect = Dialect::Postgres;

/// A time as stored: `timestamptz`.
fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

fn at(row: &DbRow, column: &str) -> Result<DateTime<Utc>> {
    Ok(row.try_get(column)?)
}

fn at_opt(row: &DbRow, column: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(row.try_get(column)?)
}

/// Leases the due targets (binds: owner, lease until, now, now, limit), skipping rows another
/// worker is claiming at the same moment.
const CLAIM_DUE: &str = "WITH due AS ( \
       SELECT id FROM targets WHERE state = 'active' AND next_due_at <= $3 \
       AND (lease_until IS NULL OR lease_until < $4) ORDER BY next_due_at, id LIMIT $5 \
       FOR UPDATE SKIP LOCKED) \
     UPDATE targets t SET lease_owner = $1, lease_until = $2 \
     FROM due WHERE t.id = due.id RETURNING t.*";

/// The ids among a JSON array of video ids that are stored.
const EXISTING_VIDEOS: &str =
    "SELECT id FROM videos WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY id";

/// The stored videos among a JSON array of video ids.
const VIDEOS_BY_IDS: &str = "SELECT * FROM videos WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))";

/// The stored channels among a JSON array of channel ids.
const CHANNELS_BY_IDS: &str = "SELECT * FROM channels WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))";

// A batch of video checks arrives as one JSON array per statement (`sql/tracking.rs` writes it):
// one prepared statement whatever the batch's size, and no limit on bound parameters.

/// Reschedules the targets of a batch whose lease is still held, each to its `next` due time
/// (finished when null), and returns their ids: the lease check and the reschedule in one.
const RESCHEDULE_HELD: &str = "UPDATE targets t SET \
       state = CASE WHEN b.next IS NULL THEN 'finished' ELSE 'active' END, \
       next_due_at = COALESCE(b.next, t.next_due_at), lease_owner = NULL, lease_until = NULL, \
       attempts = 0, last_error = NULL, last_error_at = NULL \
     FROM jsonb_to_recordset($1::jsonb) AS b(id bigint, owner text, until timestamptz, next timestamptz) \
     WHERE t.id = b.id AND t.lease_owner = b.owner AND t.lease_until = b.until \
     RETURNING t.id";

/// Inserts a batch's views records; a slot already measured keeps its record.
const INSERT_VIEWS_BATCH: &str = "INSERT INTO views (video_id, slot, measured_at, views) \
     SELECT video_id, slot, measured_at, views FROM jsonb_to_recordset($1::jsonb) \
       AS b(video_id text, slot timestamptz, measured_at timestamptz, views bigint) \
     ON CONFLICT (video_id, slot) DO NOTHING";

/// Sets a batch's titles and thumbnails (a null thumbnail field keeps the stored one), writing
/// only the rows where something differs.
const UPDATE_VIDEOS_BATCH: &str = "UPDATE videos v SET title = b.title, \
       thumb_sha256 = COALESCE(b.sha256, v.thumb_sha256), thumb_phash = COALESCE(b.phash, v.thumb_phash), \
       thumb_blob_key = COALESCE(b.blob_key, v.thumb_blob_key) \
     FROM jsonb_to_recordset($1::jsonb) AS b(id text, title text, sha256 text, phash text, blob_key text) \
     WHERE v.id = b.id AND (v.title IS DISTINCT FROM b.title \
       OR v.thumb_sha256 IS DISTINCT FROM COALESCE(b.sha256, v.thumb_sha256) \
       OR v.thumb_phash IS DISTINCT FROM COALESCE(b.phash, v.thumb_phash) \
       OR v.thumb_blob_key IS DISTINCT FROM COALESCE(b.blob_key, v.thumb_blob_key))";

/// Inserts a batch of the videos channel feeds show, leaving those already stored as they are;
/// returns the ids it inserted.
const INSERT_VIDEOS_BATCH: &str = "INSERT INTO videos (id, channel_id, published_at, is_short, title, created_at) \
     SELECT id, channel_id, published_at, is_short, title, created_at FROM jsonb_to_recordset($1::jsonb) \
       AS b(id text, channel_id text, published_at timestamptz, is_short boolean, title text, created_at timestamptz) \
     ON CONFLICT (id) DO NOTHING RETURNING id";

/// Inserts a batch of video targets, each due at its `due` time; a target that exists is kept.
const INSERT_VIDEO_TARGETS_BATCH: &str = "INSERT INTO targets (kind, subject, next_due_at, created_at) \
     SELECT 'video', id, due, created_at FROM jsonb_to_recordset($1::jsonb) \
       AS b(id text, due timestamptz, created_at timestamptz) \
     ON CONFLICT (kind, subject) DO NOTHING";

/// Sets a batch's channel check times and latest videos (a null latest video keeps the stored one).
const UPDATE_CHANNELS_BATCH: &str = "UPDATE channels c SET checked_at = b.checked_at, \
       latest_video_id = COALESCE(b.latest, c.latest_video_id) \
     FROM jsonb_to_recordset($1::jsonb) AS b(id text, checked_at timestamptz, latest text) \
     WHERE c.id = b.id";

/// Empties the write-ahead log into the database file, where the backend has one to empty.
const CHECKPOINT: Option<&str> = None;

const MIGRATIONS_TABLE_EXISTS: &str =
    "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = '_sqlx_migrations'";

impl PgStore {
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self> {
        Self::connect_in_schema(url, options, None).await
    }

    /// Connects with `search_path` set to `schema`, creating the schema if needed: several
    /// tubewatch instances (or tests) can share one database, each in its own schema.
    pub async fn connect_in_schema(url: &str, options: &StoreOptions, schema: Option<&str>) -> Result<Self> {
        let mut connect = PgConnectOptions::from_str(url)?;
        if let Some(schema) = schema {
            if schema.is_empty() || !schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                return Err(StoreError::InvalidSchema(schema.to_owned()));
            }
            let mut conn = sqlx::PgConnection::connect_with(&connect).await?;
            // The name was checked above to be a plain lower-case identifier.
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {schema}")))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            connect = connect.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(StdDuration::from_secs(30))
            .connect_with(connect)
            .await?;
        Ok(Self { pool })
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// A transaction in which `user`'s limited adds are serialised: the user's row stays locked
    /// until it ends.
    async fn begin_for_user(&self, user: UserId) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
            .bind(user.get())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
        Ok(tx)
    }
}
