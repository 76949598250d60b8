//! A PostgreSQL server as benchmarks see it: scratch databases made and dropped, and the server's
//! activity counters for one database (transactions, rows, and statements when
//! `pg_stat_statements` is loaded). Not part of the `Store`: nothing in the service uses it.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::{Result, StoreError};

/// The server behind a `postgres://` URL (its database is the one connected to for
/// administration).
#[derive(Debug, Clone)]
pub struct PgServer {
    url: String,
}

/// Cumulative counters of one database (`pg_stat_database`, `pg_stat_statements`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PgActivity {
    pub transactions: i64,
    pub rows_read: i64,
    pub rows_written: i64,
    /// Statements run, when the server has `pg_stat_statements` loaded.
    pub statements: Option<i64>,
}

impl PgActivity {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            transactions: self.transactions - earlier.transactions,
            rows_read: self.rows_read - earlier.rows_read,
            rows_written: self.rows_written - earlier.rows_written,
            statements: self.statements.zip(earlier.statements).map(|(a, b)| a - b),
        }
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 63
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(StoreError::InvalidSchema(name.to_owned()));
    }
    Ok(())
}

impl PgServer {
    pub fn new(url: &str) -> Self {
        Self { url: url.to_owned() }
    }

    async fn connect(&self) -> Result<PgConnection> {
        let options = PgConnectOptions::from_str(&self.url)?.disable_statement_logging();
        Ok(PgConnection::connect_with(&options).await?)
    }

    /// The URL of database `name` on this server: the server's URL with its path replaced.
    pub fn url_of(&self, name: &str) -> Result<String> {
        let (base, query) = self.url.split_once('?').map_or((self.url.as_str(), None), |(b, q)| (b, Some(q)));
        let start = base.find("://").map(|i| i + 3).ok_or_else(|| StoreError::UnsupportedUrl(self.url.clone()))?;
        let authority = base[start..].split('/').next().unwrap_or_default();
        let query = query.map(|q| format!("?{q}")).unwrap_or_default();
        Ok(format!("{}{authority}/{name}{query}", &base[..start]))
    }

    /// Makes an empty database `name` (dropping one left by an earlier run) and returns its URL.
    pub async fn create_database(&self, name: &str) -> Result<String> {
        check_name(name)?;
        let mut conn = self.connect().await?;
        // The name was checked above to be a plain lower-case identifier.
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&mut conn)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
        conn.close().await?;
        self.url_of(name)
    }

    pub async fn drop_database(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let mut conn = self.connect().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }

    /// Database `name`'s counters so far. Backends report theirs when a transaction ends (at most
    /// once a second) and when they exit: read after the clients have disconnected.
    pub async fn activity(&self, name: &str) -> Result<PgActivity> {
        let mut conn = self.connect().await?;
        let (transactions, rows_read, rows_written): (i64, i64, i64) = sqlx::query_as(
            "SELECT xact_commit + xact_rollback, tup_returned + tup_fetched, tup_inserted + tup_updated + tup_deleted \
             FROM pg_stat_database WHERE datname = $1",
        )
        .bind(name)
        .fetch_optional(&mut conn)
        .await?
        .unwrap_or_default();
        let statements: Option<i64> = sqlx::query_scalar(
            "SELECT sum(calls)::bigint FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
             WHERE d.datname = $1",
        )
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .ok()
        .flatten();
        conn.close().await?;
        Ok(PgActivity { transactions, rows_read, rows_written, statements })
    }

    /// The server's data directory, when this connection may see it (a superuser's may): with it,
    /// a server on this machine is found through `postmaster.pid`.
    pub async fn data_directory(&self) -> Result<Option<String>> {
        let mut conn = self.connect().await?;
        let dir: Option<String> = sqlx::query_scalar("SHOW data_directory").fetch_one(&mut conn).await.ok();
        conn.close().await?;
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_on_the_same_server() {
        let server = PgServer::new("postgres://u:p@db.internal:5433/test?sslmode=require");
        assert_eq!(server.url_of("tw_bench_1").unwrap(), "postgres://u:p@db.internal:5433/tw_bench_1?sslmode=require");
        assert_eq!(PgServer::new("postgres://db").url_of("x").unwrap(), "postgres://db/x");
        assert!(check_name("Bad-Name").is_err() && check_name("tw_bench_1").is_ok());
    }
}
