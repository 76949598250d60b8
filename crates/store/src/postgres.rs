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
            .bind(user.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
        Ok(tx)
    }
}
