//! A/B tests over the HTTP API, end to end: the real server with the A/B test engine configured,
//! a real SQLite store and the YouTube simulator (OAuth consent, Data API) over HTTP. A premium
//! user connects an account through `/oauth/google/start` and the callback (state checked,
//! bound to the user), creates a test from two uploaded images and reads it back; other users
//! get 404, free users 402, an unconfigured server 503; bad uploads are refused with a code; a
//! test shows the signals it reads and the owner's daily reach (waiting, receiving with the
//! variants live each day, failed, revoked, not granted with the offer to connect again).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ui_common;

use chrono::Duration;
use common::*;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use tubewatch_core::{ChannelId, Clock, Email, VideoId};
use tubewatch_store::{AbTestId, AbTestState, ReachReport, ReachState, SwapRecord};
use tubewatch_worker::abtest_result::AbResult;
use tubewatch_youtube::{SCOPE_YOUTUBE_FORCE_SSL, SCOPE_YT_ANALYTICS_READONLY};
use ui_common::{make_premium, picture, spawn_ab_app, spawn_ab_app_asking};

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
    let mut videos = app.sim.sim.channel_videos(&owned, now - Duration::days(60), now - Duration::days(2)).unwrap();
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
    let mut videos = app.sim.sim.channel_videos(&owned, now - Duration::days(60), now - Duration::days(2)).unwrap();
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

/// The owned channel's busiest video published 2–60 days ago.
fn busiest_video(app: &TestApp, owned: &ChannelId) -> VideoId {
    let now = app.clock.now();
    let mut videos = app.sim.sim.channel_videos(owned, now - Duration::days(60), now - Duration::days(2)).unwrap();
    videos.sort_by_key(|v| (v.is_short, std::cmp::Reverse(v.views)));
    videos.first().expect("a video").id.clone()
}

fn two_pictures(video: &VideoId) -> Form {
    form(video, vec![("a.png", picture(1, image::ImageFormat::Png)), ("b.png", picture(2, image::ImageFormat::Png))])
}

#[tokio::test]
async fn a_test_shows_its_signals_and_the_reach_state_with_the_days_received() {
    let (app, owned) = spawn_ab_app(6).await;
    let alice = premium(&app, "alice@example.com").await;
    connect_account(&alice, &owned).await;
    let status = alice.get("/api/v1/youtube/connection").await;
    assert!(status.body["scopes"].as_array().unwrap().iter().any(|s| s == SCOPE_YT_ANALYTICS_READONLY));
    let video = busiest_video(&app, &owned);
    let created = send_form(&alice, "/api/v1/abtests", two_pictures(&video)).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    let id = AbTestId::new(created.body["id"].as_i64().unwrap());

    // The channel's reporting job was created with the test: its first report is 48 h away.
    let reach = &created.body["reach"];
    assert_eq!(created.body["signals"], serde_json::json!(["public_hourly_views", "daily_reach"]));
    assert_eq!(reach["state"], "waiting_for_first_report", "{reach}");
    assert!(reach["reason"].as_str().unwrap().contains("first report is expected"), "{reach}");
    let job_created: chrono::DateTime<chrono::Utc> = serde_json::from_value(reach["job_created_at"].clone()).unwrap();
    let expected: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(reach["first_report_expected_at"].clone()).unwrap();
    assert_eq!(expected - job_created, Duration::hours(48));
    assert_eq!(reach["days"], serde_json::json!([]));

    // Reports arrive (as the worker stores them): the test's first day, then a day missing, then
    // the third. The first two periods' swaps were made on time.
    let test = app.store.abtest(id).await.unwrap().unwrap();
    let start = test.test.starts_at;
    for period in [0, 1] {
        let swap = SwapRecord {
            period,
            swapped_at: Some(test.periods[period as usize].start),
            outcome: "ok".into(),
            excluded: false,
            quota_units: 50,
        };
        app.store.record_abtest_swap(id, &swap).await.unwrap();
    }
    // Pacific days (standard time: from 08:00 UTC), the first one holding the test's start.
    let first_day = (start - Duration::hours(8)).date_naive().and_hms_opt(8, 0, 0).unwrap().and_utc();
    let day_start = |days: i64| first_day + Duration::days(days);
    for (days, impressions, ctr) in [(0, 1200, 0.051), (2, 900, 0.047)] {
        let report = ReachReport {
            channel_id: owned.clone(),
            date: day_start(days).date_naive(),
            day_start: day_start(days),
            day_end: day_start(days + 1),
            rows: vec![(video.clone(), impressions, ctr)],
        };
        app.store.record_reach_report(&report, Some(app.clock.now()), app.clock.now()).await.unwrap();
    }
    let now = app.clock.now();
    app.store.set_abtest_reach(id, ReachState::Receiving, Some("last day received: x"), now).await.unwrap();
    let read = alice.get(&format!("/api/v1/abtests/{id}")).await;
    let reach = &read.body["reach"];
    assert_eq!(reach["state"], "receiving", "{reach}");
    let days = reach["days"].as_array().unwrap();
    assert_eq!(days.len(), 2, "a missing day is simply not there: {reach}");
    assert_eq!((days[0]["impressions"].as_i64(), days[0]["ctr"].as_f64()), (Some(1200), Some(0.051)));
    assert_eq!(days[0]["date"], day_start(0).date_naive().to_string());
    // The first day saw the first period's variant, and the second's if it began that day; the
    // second period's variant stays live after it (no later swap was made).
    let variant = |i: usize| test.periods[i].variant;
    let label = |v: i32| ["A", "B"][v as usize];
    let mut first = std::collections::BTreeSet::from([variant(0)]);
    if test.periods[1].start < day_start(1) {
        first.insert(variant(1));
    }
    let first: Vec<&str> = first.into_iter().map(label).collect();
    assert_eq!(days[0]["live_variants"], serde_json::json!(first), "{reach}");
    assert_eq!(days[1]["live_variants"], serde_json::json!([label(variant(1))]), "{reach}");
    assert_eq!(reach["last_day_received"], day_start(2).date_naive().to_string());

    // The page shows the same.
    let page = alice.get(&format!("/abtests/{id}")).await;
    let html = String::from_utf8_lossy(&page.bytes);
    assert_eq!(page.status, 200);
    assert!(html.contains("and the channel's daily reach from YouTube"), "{html}");
    assert!(html.contains("state-receiving") && html.contains("1,200") && html.contains("5.10 %"), "{html}");

    // A failed read says why; a revoked grant says so and keeps the days.
    let why = "malformed response: reach report: line 3 has 4 fields where the header has 5; retried next hour";
    app.store.set_abtest_reach(id, ReachState::Failed, Some(why), now).await.unwrap();
    let read = alice.get(&format!("/api/v1/abtests/{id}")).await;
    assert_eq!(
        (read.body["reach"]["state"].as_str(), read.body["reach"]["reason"].as_str()),
        (Some("failed"), Some(why))
    );
    let user = app.store.user_by_email(&Email::parse("alice@example.com").unwrap()).await.unwrap().unwrap();
    app.store.revoke_youtube_connection(user.id, "Google answered invalid_grant", now).await.unwrap();
    app.store.set_abtest_reach(id, ReachState::Revoked, Some("Google answered invalid_grant"), now).await.unwrap();
    let read = alice.get(&format!("/api/v1/abtests/{id}")).await;
    assert_eq!(read.body["reach"]["state"], "revoked");
    assert_eq!(read.body["reach"]["days"].as_array().unwrap().len(), 2);
    let page = alice.get(&format!("/abtests/{id}")).await;
    assert!(String::from_utf8_lossy(&page.bytes).contains("Connect YouTube again to add reach data"));
}

#[tokio::test]
async fn without_the_reach_scope_a_test_reads_public_views_and_offers_to_reconnect() {
    let (app, owned) = spawn_ab_app_asking(6, &[], &[SCOPE_YOUTUBE_FORCE_SSL]).await;
    let alice = premium(&app, "alice@example.com").await;
    connect_account(&alice, &owned).await;
    let video = busiest_video(&app, &owned);
    let created = send_form(&alice, "/api/v1/abtests", two_pictures(&video)).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    assert_eq!(created.body["signals"], serde_json::json!(["public_hourly_views"]));
    assert_eq!(created.body["reach"]["state"], "not_granted", "{}", created.body);
    assert!(created.body["reach"]["job_created_at"].is_null());
    let id = AbTestId::new(created.body["id"].as_i64().unwrap());
    let page = alice.get(&format!("/abtests/{id}")).await;
    let html = String::from_utf8_lossy(&page.bytes);
    assert!(html.contains("state-not_granted"), "{html}");
    assert!(html.contains(&format!("/oauth/google/start?channel={owned}")), "{html}");
    assert!(!html.contains("and the channel's daily reach"), "{html}");
}

#[tokio::test]
async fn a_finished_test_shows_its_result_and_an_unreadable_one_says_so() {
    let (app, owned) = spawn_ab_app(6).await;
    let alice = premium(&app, "alice@example.com").await;
    connect_account(&alice, &owned).await;
    let video = busiest_video(&app, &owned);
    let created = send_form(&alice, "/api/v1/abtests", two_pictures(&video)).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    assert!(created.body["result"].is_null() && created.body["result_error"].is_null(), "{}", created.body);
    let id = AbTestId::new(created.body["id"].as_i64().unwrap());

    // The wrap-up's result, as the job writes it.
    let result = AbResult {
        analysis: None,
        analysis_error: Some("the test ended before its first swap".into()),
        stopped_early: true,
        decided_early: false,
        applied_variant: None,
        applied: "the original is live".into(),
        verified: true,
        verification: "thumbnail matches".into(),
        periods_excluded: 0,
        quota_used: 151,
        outside_change: None,
        reach_state: ReachState::NotGranted,
        reach_days: Vec::new(),
    };
    let now = app.clock.now();
    app.store.finish_abtest(id, AbTestState::Stopped, &result.to_json().unwrap(), now).await.unwrap();
    let read = alice.get(&format!("/api/v1/abtests/{id}")).await;
    assert_eq!(read.body["result"]["applied"], "the original is live", "{}", read.body);
    assert_eq!(read.body["result"]["stopped_early"], true);
    assert!(read.body["result_error"].is_null());
    let back: AbResult = serde_json::from_value(read.body["result"].clone()).unwrap();
    assert_eq!(back, result, "the API serves the stored result as the job wrote it");
    let page = String::from_utf8_lossy(&alice.get(&format!("/abtests/{id}")).await.bytes).into_owned();
    assert!(page.contains("Result: No analysis") && page.contains("the original is live"), "{page}");

    // A result that cannot be read is said to be so, on the page and in the API.
    app.store.finish_abtest(id, AbTestState::Stopped, "{\"analysis\": 3", now).await.unwrap();
    let read = alice.get(&format!("/api/v1/abtests/{id}")).await;
    assert_eq!(read.status, 200);
    assert!(read.body["result"].is_null(), "{}", read.body);
    assert!(read.body["result_error"].as_str().unwrap().contains("cannot be read"), "{}", read.body);
    let page = String::from_utf8_lossy(&alice.get(&format!("/abtests/{id}")).await.bytes).into_owned();
    assert!(page.contains("id=\"result-error\"") && page.contains("cannot be read"), "{page}");
}

#[tokio::test]
async fn the_create_page_and_the_api_read_the_same_form() {
    let (app, owned) = spawn_ab_app(6).await;
    let alice = premium(&app, "alice@example.com").await;
    connect_account(&alice, &owned).await;
    let video = busiest_video(&app, &owned);
    let Auth::Cookie { csrf, .. } = &alice.auth else { panic!("a session") };
    // The page's form: its CSRF token first, the preview's variant count, and a file input and
    // a title left empty, which are left out.
    let page_form = Form::new()
        .text("csrf_token", csrf.clone())
        .text("video", video.to_string())
        .text("variants", "2")
        .part("thumbnail", Part::bytes(picture(1, image::ImageFormat::Png)).file_name("a.png"))
        .part("thumbnail", Part::bytes(picture(2, image::ImageFormat::Jpeg)).file_name("b.jpg"))
        .part("thumbnail", Part::bytes(Vec::new()).file_name(""))
        .text("title", " ")
        .text("sequential", "on");
    let page = send_form(&alice, "/abtests/new", page_form).await;
    assert_eq!(page.status.as_u16(), 303, "{}", String::from_utf8_lossy(&page.bytes));
    let id: i64 = location(&page).strip_prefix("/abtests/").unwrap().parse().unwrap();
    let read = alice.get(&format!("/api/v1/abtests/{id}")).await;
    assert_eq!((read.body["kind"].as_str(), read.body["sequential"].as_bool()), (Some("thumbnail"), Some(true)));
    assert_eq!(read.body["variants"].as_array().unwrap().len(), 2);

    // The API takes only its documented fields, and an empty part is a variant it refuses.
    let extra = send_form(&alice, "/api/v1/abtests", two_pictures(&video).text("variants", "2")).await;
    assert_eq!((extra.status.as_u16(), extra.code()), (400, "bad_input"), "{}", extra.body);
    let empty =
        send_form(&alice, "/api/v1/abtests", two_pictures(&video).part("thumbnail", Part::bytes(Vec::new()))).await;
    assert_eq!((empty.status.as_u16(), empty.code()), (422, "bad_image"), "{}", empty.body);
}
