//! The real server on port 0 against a real SQLite database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tubewatch_core::SystemClock;
use tubewatch_store::{StoreOptions, connect};
use tubewatch_web::{AppState, router};
use tubewatch_worker::Metrics;

#[tokio::test]
async fn healthz_answers_when_the_store_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = connect(&format!("sqlite://{}/tw.db", dir.path().display()), &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(AppState { store, clock: Arc::new(SystemClock), metrics: Arc::new(Metrics::default()) });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let resp = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(reqwest::get(format!("http://{addr}/nope")).await.unwrap().status(), 404);
    let metrics = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tubewatch_queue_due 0"), "{metrics}");
}
