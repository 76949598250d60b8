//! The real server on port 0 against a real SQLite database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, Options, spawn_app};

#[tokio::test]
async fn healthz_answers_when_the_store_does() {
    let app = spawn_app(Options::default()).await;
    let client = Client::anonymous(&app);
    let reply = client.get("/healthz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["status"], "ok");
    let missing = client.get("/nope").await;
    assert_eq!((missing.status.as_u16(), missing.code()), (404, "not_found"));
    let metrics = String::from_utf8(client.get("/metrics").await.bytes).unwrap();
    assert!(metrics.contains("tubewatch_queue_due 0"), "{metrics}");
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = spawn_app(Options::default()).await;
    let reply = Client::anonymous(&app).get("/api/v1/me").await;
    assert_eq!((reply.status.as_u16(), reply.code()), (401, "unauthenticated"));
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
    ] {
        assert_eq!(reply.headers.get(name).and_then(|v| v.to_str().ok()), Some(value), "{name}");
    }
    assert!(reply.headers.get("content-security-policy").is_some());
    // HSTS only when cookies are marked Secure (served over HTTPS).
    assert!(reply.headers.get("strict-transport-security").is_none());
}
