//! The harness every conformance test file shares: one store per test, on SQLite always and on
//! PostgreSQL (a schema of its own) when `TUBEWATCH_TEST_POSTGRES_URL` is set. `conformance!`
//! turns a list of `async fn name(store: Arc<dyn Store>)` into a test per backend.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use sqlx::Connection;
use tubewatch_core::{ChannelId, VideoId};
use tubewatch_store::*;

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("test time")
}

pub fn channel_id(n: u32) -> ChannelId {
    ChannelId::parse(&format!("UC{n:022}")).expect("channel id")
}

pub fn video_id(n: u32) -> VideoId {
    VideoId::parse(&format!("v{n:010}")).expect("video id")
}

pub fn new_video(n: u32, channel: &ChannelId, published: DateTime<Utc>) -> NewVideo {
    NewVideo {
        id: video_id(n),
        channel_id: channel.clone(),
        published_at: published,
        is_short: n.is_multiple_of(2),
        title: format!("Video {n}"),
    }
}

pub async fn with_channel(store: &dyn Store, n: u32) -> ChannelId {
    let id = channel_id(n);
    store
        .upsert_channel(
            &NewChannel { id: id.clone(), title: format!("Channel {n}"), handle: None },
            t("2026-01-01T00:00:00Z"),
        )
        .await
        .expect("channel");
    id
}

const SQLITE_FILE: &str = "nested/tubewatch.db";

#[derive(Debug)]
pub struct Backend {
    pub store: Arc<dyn Store>,
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join(SQLITE_FILE).display());
        let store = connect(&url, &StoreOptions::default()).await.expect("open sqlite");
        store.migrate().await.expect("migrate sqlite");
        Self { store, cleanup: None, _dir: Some(dir) }
    }

    pub async fn postgres() -> Option<Self> {
        let url = std::env::var("TUBEWATCH_TEST_POSTGRES_URL").ok()?;
        static N: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "tw_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            Utc::now().timestamp_micros()
        );
        let store = PgStore::connect_in_schema(&url, &StoreOptions { max_connections: 12 }, Some(&schema))
            .await
            .expect("connect postgres");
        store.migrate().await.expect("migrate postgres");
        Some(Self { store: Arc::new(store), cleanup: Some((url, schema)), _dir: None })
    }

    /// The database URL of a SQLite backend.
    pub fn sqlite_url(&self) -> Option<String> {
        self._dir.as_ref().map(|dir| format!("sqlite://{}", dir.path().join(SQLITE_FILE).display()))
    }

    /// The server URL and schema of a PostgreSQL backend.
    pub fn postgres_location(&self) -> Option<(&str, &str)> {
        self.cleanup.as_ref().map(|(url, schema)| (url.as_str(), schema.as_str()))
    }

    pub async fn finish(self) {
        if let Some((url, schema)) = self.cleanup {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect for cleanup");
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut conn)
                .await
                .expect("drop schema");
        }
    }
}

#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let backend = $crate::common::Backend::sqlite().await;
                    super::$name(backend.store.clone()).await;
                    backend.finish().await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(backend) = $crate::common::Backend::postgres().await else {
                        eprintln!("skipped: set TUBEWATCH_TEST_POSTGRES_URL to run the PostgreSQL conformance suite");
                        return;
                    };
                    super::$name(backend.store.clone()).await;
                    backend.finish().await;
                }
            )*
        }
    };
}
