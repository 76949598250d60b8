//! The schema is one source rendered per dialect (`src/schema.rs`): both backends end with the
//! same tables, columns and indexes, and a database made from the former per-dialect migration
//! files upgrades without a change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use sqlx::{Connection, Row};

/// SHA-384 of the former `migrations/sqlite/0001_foundation.sql`, as such databases recorded it.
const FORMER_SQLITE_0001: &str = "9b1b545cf26e6c0b76080bf733cf12311531d358e317b2c9c8f93f45841b641d\
                                  8869b3a712655fa7d004b6ee10a9793a";

async fn checksum(conn: &mut sqlx::SqliteConnection, version: i64) -> String {
    sqlx::query_scalar("SELECT lower(hex(checksum)) FROM _sqlx_migrations WHERE version = $1")
        .bind(version)
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_database_from_the_former_migration_files_upgrades_and_a_modified_one_is_refused() {
    let backend = common::Backend::sqlite().await;
    let url = backend.sqlite_url().unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rendered = checksum(&mut conn, 1).await;
    assert_ne!(rendered, FORMER_SQLITE_0001);

    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE _sqlx_migrations SET checksum = X'{FORMER_SQLITE_0001}' WHERE version = 1"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    backend.store.migrate().await.expect("a former database is adopted");
    assert_eq!(checksum(&mut conn, 1).await, rendered);
    backend.store.migrate().await.expect("and stays adopted");

    sqlx::query("UPDATE _sqlx_migrations SET checksum = zeroblob(48) WHERE version = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = backend.store.migrate().await.expect_err("a modified migration is still refused");
    assert!(err.to_string().contains('2'), "{err}");
    backend.finish().await;
}

#[tokio::test]
async fn accounts_from_before_email_verification_count_as_verified() {
    let backend = common::Backend::sqlite().await;
    let url = backend.sqlite_url().unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    // Take the database back to migration 10, with an account in it.
    for sql in [
        "DROP TABLE email_verifications",
        "ALTER TABLE users DROP COLUMN email_verified_at",
        "DELETE FROM _sqlx_migrations WHERE version = 11",
        "INSERT INTO users (email, password_hash, plan, is_admin, created_at) \
         VALUES ('old@example.com', '$argon2id$x', 'free', 0, 1767225600000)",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    drop(conn);
    // A store opened on the database as it now is (the test's own pool has seen the newer shape).
    let store = tubewatch_store::connect(&url, &tubewatch_store::StoreOptions::default()).await.unwrap();
    store.migrate().await.expect("migration 11 applies");
    let store = tubewatch_store::connect(&url, &tubewatch_store::StoreOptions::default()).await.unwrap();
    let email = tubewatch_core::Email::parse("old@example.com").unwrap();
    let user = store.user_by_email(&email).await.unwrap().expect("the account is kept");
    assert_eq!(user.email_verified_at, Some(user.created_at), "verified since it was created");
    backend.finish().await;
}

/// (table, column, not null) and index names of a migrated SQLite database.
async fn sqlite_shape(url: &str) -> (BTreeSet<(String, String, bool)>, BTreeSet<String>) {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let columns = sqlx::query(
        "SELECT m.name AS t, c.name AS c, c.\"notnull\" OR c.pk AS nn FROM sqlite_master m, pragma_table_info(m.name) c \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("t"), r.get("c"), r.get("nn")))
    .collect();
    let indexes =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .collect();
    (columns, indexes)
}

async fn postgres_shape(url: &str, schema: &str) -> (BTreeSet<(String, String, bool)>, BTreeSet<String>) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let columns = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c, is_nullable = 'NO' AS nn FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name <> '_sqlx_migrations'",
    )
    .bind(schema)
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("t"), r.get("c"), r.get("nn")))
    .collect();
    let indexes = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = indexname)",
    )
    .bind(schema)
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .collect();
    (columns, indexes)
}

#[tokio::test]
async fn both_backends_have_the_same_tables_columns_and_indexes() {
    let sqlite = common::Backend::sqlite().await;
    let Some(postgres) = common::Backend::postgres().await else {
        eprintln!("skipped: set TUBEWATCH_TEST_POSTGRES_URL to compare the PostgreSQL schema");
        return;
    };
    let (url, schema) = postgres.postgres_location().unwrap();
    let (sqlite_columns, sqlite_indexes) = sqlite_shape(&sqlite.sqlite_url().unwrap()).await;
    let (pg_columns, pg_indexes) = postgres_shape(url, schema).await;
    assert!(sqlite_columns.len() > 50, "{sqlite_columns:?}");
    assert_eq!(sqlite_columns, pg_columns);
    assert_eq!(sqlite_indexes, pg_indexes);
    sqlite.finish().await;
    postgres.finish().await;
}
