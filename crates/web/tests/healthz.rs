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

#[tokio::test]
async fn readyz_names_the_check_that_failed() {
    let app = spawn_app(Options::default()).await;
    let client = Client::anonymous(&app);
    let ready = client.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["checks"], serde_json::json!({ "database": "ok", "blobs": "ok" }));

    // The blob folder turned into a file: nothing can be written under it, even by root.
    let blobs = app.dir.path().join("blobs");
    std::fs::remove_dir_all(&blobs).unwrap();
    std::fs::write(&blobs, b"not a folder").unwrap();
    let no_blobs = client.get("/readyz").await;
    assert_eq!(no_blobs.status, 503);
    assert_eq!(no_blobs.body["status"], "unavailable");
    assert_eq!(no_blobs.body["failed"], serde_json::json!(["blobs"]));
    assert_eq!(no_blobs.body["checks"]["database"], "ok");
    assert!(!no_blobs.body.to_string().contains(app.dir.path().to_str().unwrap()), "no paths leak: {}", no_blobs.body);

    app.store.close().await;
    let neither = client.get("/readyz").await;
    assert_eq!(neither.status, 503);
    assert_eq!(neither.body["failed"], serde_json::json!(["database", "blobs"]));
    assert_eq!(client.get("/healthz").await.status, 503, "liveness follows the database as before");
}

#[tokio::test]
async fn requests_carry_an_id_back() {
    let app = spawn_app(Options::default()).await;
    let http = reqwest::Client::new();
    let id_of = |reply: &reqwest::Response| {
        reply.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    };
    // A proxy's (or the client's) id is kept and echoed, on errors too.
    for path in ["/healthz", "/nope"] {
        let reply =
            http.get(format!("{}{path}", app.base)).header("x-request-id", "edge-42.a_b:c").send().await.unwrap();
        assert_eq!(id_of(&reply), "edge-42.a_b:c", "{path}");
    }
    // None given: one is made, a different one per request.
    let first = id_of(&http.get(format!("{}/healthz", app.base)).send().await.unwrap());
    let second = id_of(&http.get(format!("{}/healthz", app.base)).send().await.unwrap());
    assert_eq!(first.len(), 36, "a UUID: {first:?}");
    assert_ne!(first, second);
    // An unusable one (too long, or with spaces) is replaced.
    for bad in ["x".repeat(65), "two words".to_owned()] {
        let reply = http.get(format!("{}/healthz", app.base)).header("x-request-id", &bad).send().await.unwrap();
        let id = id_of(&reply);
        assert!(id != bad && id.len() == 36, "{bad:?} -> {id:?}");
    }
}
