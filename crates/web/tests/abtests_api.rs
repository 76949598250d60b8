//! A/B tests over the HTTP API, end to end: the real server with the A/B test engine configured,
//! a real SQLite store and the YouTube simulator (OAuth consent, Data API) over HTTP. A premium
//! user connects an account through `/oauth/google/start` and the callback (state checked,
//! bound to the user), creates a test from two uploaded images and reads it back; other users
//! get 404, free users 402, an unconfigured server 503; bad uploads are refused with a code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ui_common;

use chrono::Duration;
use common::*;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use tubewatch_core::{ChannelId, Clock, Email, VideoId};
use tubewatch_youtube::SCOPE_YOUTUBE_FORCE_SSL;
use ui_common::{make_premium, picture, spawn_ab_app};

async fn premium(app: &TestApp, email: &str) -> Client {
    let client = Client::signup(app, email).await;
    make_premium(app, email).await;
    // Redirects are followed by hand: reqwest drops the cookie across hosts.
    Client { http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(), ..client }
}

fn location(reply: &Reply) -> String {
    reply.headers.get("location").expect("a redirect").to_str().unwrap().to_owned()
}

/// Posts a multipart form with the client's credentials.
async fn send_form(client: &Client, path: &str, form: Form) -> Reply {
    let mut req = client.http.request(Method::POST, format!("{}{path}", client.base)).multipart(form);
    match &client.auth {
        Auth::Anonymous => {}
        Auth::Cookie { session, csrf } => {
            req = req.header("cookie", format!("tw_session={session}")).header("x-csrf-token", csrf);
        }
        Auth::Bearer(token) => req = req.bearer_auth(token),
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap().to_vec();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Reply { status, headers, body, bytes }
}

fn form(video: &VideoId, files: Vec<(&'static str, Vec<u8>)>) -> Form {
    let mut form =
        Form::new().text("video", video.to_string()).text("duration_days", "14").text("rotation_hours", "12");
    for (name, bytes) in files {
        form = form.part("thumbnail", Part::bytes(bytes).file_name(name));
    }
    form.text("final_action", "apply_winner")
}

#[tokio::test]
async fn connect_create_read_stop_and_disconnect_over_http() {
    let (app, owned) = spawn_ab_app(6).await;
    let alice = premium(&app, "alice@example.com").await;
    let bob = premium(&app, "bob@example.com").await;

    // Connect: start → Google (the simulator consents at once) → callback → dashboard.
    let start = alice.get(&format!("/oauth/google/start?channel={owned}")).await;
    assert_eq!(start.status.as_u16(), 303, "{}", start.body);
    let consent_url = location(&start);
    assert!(consent_url.contains("code_challenge_method=S256"), "PKCE is used: {consent_url}");
    let consent = alice.http.get(&consent_url).send().await.unwrap();
    let back = url::Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(back.path(), "/oauth/google/callback");
    let callback = format!("{}?{}", back.path(), back.query().unwrap());
    // Another user cannot complete Alice's connection with her `state`.
    let stolen = bob.get(&callback).await;
    assert_eq!((stolen.status.as_u16(), stolen.code()), (400, "bad_state"));
    let done = alice.get(&callback).await;
    assert_eq!(done.status.as_u16(), 303, "{}", done.body);
    assert_eq!(location(&done), "/dashboard");
    let replay = alice.get(&callback).await;
    assert_eq!((replay.status.as_u16(), replay.code()), (400, "bad_state"), "a state is used once");
    let forged = alice.get("/oauth/google/callback?code=x&state=forged").await;
    assert_eq!(forged.code(), "bad_state");

    // Create a test from a PNG and a JPEG.
    let now = app.clock.now();
    let mut videos =
        app.sim.sim.channel_videos(owned.as_str(), now - Duration::days(60), now - Duration::days(2)).unwrap();
    videos.sort_by_key(|v| (v.is_short, std::cmp::Reverse(v.views)));
    let video = videos.first().expect("a video").id.clone();
    let files = vec![("a.png", picture(1, image::ImageFormat::Png)), ("b.jpg", picture(2, image::ImageFormat::Jpeg))];
    let created = send_form(&alice, "/api/v1/abtests", form(&video, files)).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(created.body["video_id"], video.as_str());
    assert_eq!((created.body["kind"].as_str(), created.body["state"].as_str()), (Some("thumbnail"), Some("running")));
    assert_eq!(created.body["variants"].as_array().unwrap().len(), 2);
    assert_eq!(created.body["rotation_hours"], 12);
    assert!(!created.body["schedule"].as_array().unwrap().is_empty());

    let read = alice.get(&format!("/api/v1/abtests/{id}")).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["schedule"], created.body["schedule"]);
    assert!(read.body["power"].is_object(), "{}", read.body);
    let list = alice.get("/api/v1/abtests").await;
    assert_eq!(list.body["items"][0]["id"], id);

    // Nobody else sees or stops it.
    for reply in [
        bob.get(&format!("/api/v1/abtests/{id}")).await,
        bob.post(&format!("/api/v1/abtests/{id}/stop"), serde_json::json!({})).await,
        alice.get("/api/v1/abtests/999999").await,
    ] {
        assert_eq!((reply.status.as_u16(), reply.code()), (404, "not_found"), "{}", reply.body);
    }
    assert!(bob.get("/api/v1/abtests").await.body["items"].as_array().unwrap().is_empty());
    let anon = Client::anonymous(&app);
    assert_eq!(anon.get("/api/v1/abtests").await.status, 401);

    // Bad uploads.
    let not_image = send_form(
        &alice,
        "/api/v1/abtests",
        form(&video, vec![("a.png", picture(1, image::ImageFormat::Png)), ("b.gif", b"GIF89a not really".to_vec())]),
    )
    .await;
    assert_eq!((not_image.status.as_u16(), not_image.code()), (422, "bad_image"), "{}", not_image.body);
    let one =
        send_form(&alice, "/api/v1/abtests", form(&video, vec![("a.png", picture(1, image::ImageFormat::Png))])).await;
    assert_eq!((one.status.as_u16(), one.code()), (422, "bad_input"), "{}", one.body);
    let huge = send_form(
        &alice,
        "/api/v1/abtests",
        form(&video, vec![("a.png", vec![0u8; 5 << 20]), ("b.png", vec![0u8; 5 << 20])]),
    )
    .await;
    assert_eq!((huge.status.as_u16(), huge.code()), (413, "body_too_large"), "{}", huge.body);
    let unknown = send_form(&alice, "/api/v1/abtests", Form::new().text("colour", "red")).await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (400, "bad_input"));
    let not_connected = send_form(
        &bob,
        "/api/v1/abtests",
        form(
            &video,
            vec![("a.png", picture(1, image::ImageFormat::Png)), ("b.png", picture(2, image::ImageFormat::Png))],
        ),
    )
    .await;
    assert_eq!((not_connected.status.as_u16(), not_connected.code()), (409, "not_connected"));

    // Stop, then disconnect.
    assert_eq!(alice.post(&format!("/api/v1/abtests/{id}/stop"), serde_json::json!({})).await.status, 204);
    assert_eq!(alice.get(&format!("/api/v1/abtests/{id}")).await.body["state"], "stopped");
    let again = alice.post(&format!("/api/v1/abtests/{id}/stop"), serde_json::json!({})).await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "already_ended"));
    assert_eq!(alice.delete("/api/v1/youtube/connection").await.status, 204);
    assert_eq!(alice.delete("/api/v1/youtube/connection").await.status, 404);
}

/// The OAuth dance for `client`: start → Google (the simulator consents at once) → callback.
async fn connect_account(client: &Client, channel: &ChannelId) {
    let start = client.get(&format!("/oauth/google/start?channel={channel}")).await;
    assert_eq!(start.status.as_u16(), 303, "{}", start.body);
    let consent = client.http.get(location(&start)).send().await.unwrap();
    let back = url::Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
    let done = client.get(&format!("{}?{}", back.path(), back.query().unwrap())).await;
    assert_eq!(done.status.as_u16(), 303, "{}", done.body);
}

#[tokio::test]
async fn connection_status_shows_the_channel_and_a_revoked_grant_without_tokens() {
    let (app, owned) = spawn_ab_app(6).await;
    let alice = premium(&app, "alice@example.com").await;
    let none = alice.get("/api/v1/youtube/connection").await;
    assert_eq!((none.status.as_u16(), none.code()), (404, "not_found"));

    connect_account(&alice, &owned).await;
    let status = alice.get("/api/v1/youtube/connection").await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.body["channel_id"], owned.as_str());
    assert_eq!(status.body["state"], "active");
    assert!(status.body["state_reason"].is_null());
    assert_eq!(status.body["connected_at"], serde_json::json!(app.clock.now()));
    assert!(status.body["scopes"].as_array().unwrap().iter().any(|s| s == SCOPE_YOUTUBE_FORCE_SSL));
    assert_eq!(status.body["paused_tests"], serde_json::json!([]));

    // A test, then Google refuses the grant: the status says so and lists the paused test.
    let now = app.clock.now();
    let mut videos =
        app.sim.sim.channel_videos(owned.as_str(), now - Duration::days(60), now - Duration::days(2)).unwrap();
    videos.sort_by_key(|v| (v.is_short, std::cmp::Reverse(v.views)));
    let video = videos.first().expect("a video").id.clone();
    let files = vec![("a.png", picture(1, image::ImageFormat::Png)), ("b.png", picture(2, image::ImageFormat::Png))];
    let created = send_form(&alice, "/api/v1/abtests", form(&video, files)).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    let user = app.store.user_by_email(&Email::parse("alice@example.com").unwrap()).await.unwrap().unwrap();
    let paused = app.store.revoke_youtube_connection(user.id, "Google answered invalid_grant", now).await.unwrap();
    assert_eq!(paused, 1);
    let status = alice.get("/api/v1/youtube/connection").await;
    assert_eq!(status.body["state"], "revoked", "{}", status.body);
    assert_eq!(status.body["state_reason"], "Google answered invalid_grant");
    assert_eq!(status.body["paused_tests"][0]["id"], created.body["id"]);
    assert_eq!(status.body["paused_tests"][0]["video_id"], video.as_str());
    // Never a token, sealed or not: exactly these fields.
    let fields: Vec<&str> = status.body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields.iter().copied().collect::<std::collections::BTreeSet<_>>(),
        ["channel_id", "connected_at", "paused_tests", "scopes", "state", "state_reason", "updated_at"].into(),
        "{}",
        status.body
    );
    assert!(!String::from_utf8_lossy(&status.bytes).contains("token"));

    // Someone else sees only their own (absent) connection.
    let bob = premium(&app, "bob@example.com").await;
    assert_eq!(bob.get("/api/v1/youtube/connection").await.status, 404);
}

#[tokio::test]
async fn connection_starts_are_rate_limited_per_user() {
    let (app, owned) = spawn_ab_app(6).await;
    let alice = premium(&app, "alice@example.com").await;
    let bob = premium(&app, "bob@example.com").await;
    let start = format!("/oauth/google/start?channel={owned}");
    for i in 0..5 {
        assert_eq!(alice.get(&start).await.status.as_u16(), 303, "start {i}");
    }
    let refused = alice.get(&start).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (429, "too_many_attempts"), "{}", refused.body);
    assert_eq!(refused.headers["retry-after"].to_str().unwrap(), "600");
    assert!(refused.headers.get("location").is_none(), "no consent URL minted");
    // Per user: Bob is not held back by Alice.
    assert_eq!(bob.get(&start).await.status.as_u16(), 303);
    // The window slides: ten minutes later Alice may start again.
    app.clock.advance(Duration::minutes(10) + Duration::seconds(1));
    assert_eq!(alice.get(&start).await.status.as_u16(), 303);
}

#[tokio::test]
async fn free_users_get_402_and_an_unconfigured_server_503() {
    let (app, owned) = spawn_ab_app(6).await;
    let free = Client::signup(&app, "free@example.com").await;
    for reply in [
        free.get("/api/v1/abtests").await,
        free.get(&format!("/oauth/google/start?channel={owned}")).await,
        free.get("/api/v1/abtests/1").await,
        free.delete("/api/v1/youtube/connection").await,
        free.get("/api/v1/youtube/connection").await,
    ] {
        assert_eq!((reply.status.as_u16(), reply.code()), (402, "plan_feature_unavailable"), "{}", reply.body);
    }

    let plain = spawn_app(Options::default()).await;
    let alice = premium(&plain, "alice@example.com").await;
    for reply in [alice.get("/api/v1/abtests").await, alice.get("/oauth/google/start?channel=x").await] {
        assert_eq!((reply.status.as_u16(), reply.code()), (503, "abtests_not_configured"), "{}", reply.body);
    }
}
