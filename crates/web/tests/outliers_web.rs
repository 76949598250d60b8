//! The weekly outliers over HTTP: `GET /api/v1/outliers` shows each user exactly the findings of
//! what they track; the digest settings page; the unsubscribe link every digest carries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::Duration;
use common::{Auth, Client, Options, TestApp, spawn_app};
use serde_json::json;
use tubewatch_core::{ChannelId, Clock, UserId, VideoId};
use tubewatch_store::{BandSnapshotRecord, NewOutlier, NewVideo, OutlierKind, TargetKind};

/// A video of `channel` as the worker's channel check would have recorded it.
async fn video_of(app: &TestApp, channel: &str) -> VideoId {
    let now = app.clock.now();
    let channel_id = ChannelId::parse(channel).unwrap();
    let truth = app.sim.sim.channel_videos(&channel_id, now - Duration::days(30), now).unwrap();
    let id = truth[0].id.clone();
    let video = NewVideo {
        id: id.clone(),
        channel_id,
        published_at: truth[0].published,
        is_short: truth[0].is_short,
        title: format!("video of {channel}"),
    };
    app.store.insert_video(&video, now).await.unwrap();
    id
}

/// Ends the channel's weekly outlier run as a worker would (claiming its target), with findings.
async fn weekly_run(app: &TestApp, channel: &str, findings: &[(VideoId, OutlierKind, &str)]) {
    let target = app.store.target(TargetKind::Outliers, channel).await.unwrap().expect("weekly target");
    let claimed = app.store.claim_due("test-worker", target.next_due_at, Duration::minutes(5), 1000).await.unwrap();
    // Everything else claimed on the way is given back at once.
    for other in claimed.iter().filter(|t| t.id != target.id) {
        app.store.release(&other.lease().unwrap()).await.unwrap();
    }
    let lease = claimed.iter().find(|t| t.id == target.id).and_then(|t| t.lease()).expect("claimed");
    let channel_id = ChannelId::parse(channel).unwrap();
    let outliers: Vec<NewOutlier> = findings
        .iter()
        .map(|(video, kind, week)| NewOutlier {
            video_id: video.clone(),
            channel_id: channel_id.clone(),
            kind: *kind,
            week: (*week).to_owned(),
            score: 4.2,
            lift: None,
            ci_low: None,
            ci_high: None,
            age_hours: Some(72.0),
            views: 123_456,
            changed_at: None,
            thumb_key: None,
            explanation: format!("4.2× this channel's typical views at 3 days ({week})"),
            found_at: target.next_due_at,
        })
        .collect();
    let snapshot = BandSnapshotRecord {
        channel_id,
        snapshot_json: "{}".into(),
        applied_through: target.next_due_at,
        updated_at: target.next_due_at,
    };
    app.store
        .complete_outlier_run(&lease, &snapshot, &outliers, target.next_due_at + Duration::weeks(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn each_user_sees_exactly_the_outliers_of_what_they_track() {
    let app = spawn_app(Options::default()).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let bob = Client::signup(&app, "bob@example.com").await.bearer().await;
    let channels: Vec<String> = app.sim.sim.channels().iter().map(|c| c.id.to_string()).collect();
    assert_eq!(alice.post("/api/v1/channels", json!({ "url": channels[0] })).await.status, 201);
    assert_eq!(bob.post("/api/v1/channels", json!({ "url": channels[1] })).await.status, 201);
    let (va, vb) = (video_of(&app, &channels[0]).await, video_of(&app, &channels[1]).await);
    assert_eq!(bob.get("/api/v1/outliers").await.body, json!({ "week": null, "weeks": [], "items": [] }));

    weekly_run(&app, &channels[0], &[(va.clone(), OutlierKind::Channel, "2026-W10")]).await;
    weekly_run(&app, &channels[0], &[(va.clone(), OutlierKind::Thumbnail, "2026-W11")]).await;
    weekly_run(&app, &channels[1], &[(vb.clone(), OutlierKind::Channel, "2026-W10")]).await;

    let latest = alice.get("/api/v1/outliers").await;
    assert_eq!(latest.status, 200, "{}", latest.body);
    assert_eq!(latest.body["week"], "2026-W11");
    assert_eq!(latest.body["weeks"], json!(["2026-W11", "2026-W10"]));
    let items = latest.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!((items[0]["video_id"].as_str(), items[0]["kind"].as_str()), (Some(va.as_str()), Some("thumbnail")));
    assert_eq!(items[0]["video_title"], format!("video of {}", channels[0]));
    assert!(items[0]["explanation"].as_str().unwrap().contains("4.2×"));

    let w10 = alice.get("/api/v1/outliers?week=2026-W10").await;
    let ids: Vec<&str> =
        w10.body["items"].as_array().unwrap().iter().map(|o| o["video_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [va.as_str()], "only Alice's channel");

    let of_bob = bob.get("/api/v1/outliers").await;
    assert_eq!(of_bob.body["weeks"], json!(["2026-W10"]));
    let ids: Vec<&str> =
        of_bob.body["items"].as_array().unwrap().iter().map(|o| o["video_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [vb.as_str()]);
    assert!(!String::from_utf8_lossy(&of_bob.bytes).contains(va.as_str()), "nothing of Alice's");
    assert!(bob.get("/api/v1/outliers?week=2026-W11").await.body["items"].as_array().unwrap().is_empty());

    for bad in ["2026-W54", "W10", "2026-10", "x"] {
        let reply = alice.get(&format!("/api/v1/outliers?week={bad}")).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (400, "bad_input"), "{bad}");
    }
    assert_eq!(Client::anonymous(&app).get("/api/v1/outliers").await.status, 401);
}

fn cookie_of(client: &Client) -> (String, String) {
    match &client.auth {
        Auth::Cookie { session, csrf } => (format!("tw_session={session}"), csrf.clone()),
        other => panic!("not a cookie client: {other:?}"),
    }
}

/// A page as the signed-in browser of `client` gets it (redirects not followed).
async fn page(app: &TestApp, client: &Client, path: &str) -> String {
    let (cookie, _) = cookie_of(client);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    http.get(format!("{}{path}", app.base)).header("cookie", cookie).send().await.unwrap().text().await.unwrap()
}

/// A form posted by the signed-in browser of `client` (redirects not followed).
async fn post_form(app: &TestApp, client: &Client, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let (cookie, _) = cookie_of(client);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    http.post(format!("{}{path}", app.base)).header("cookie", cookie).form(form).send().await.unwrap()
}

async fn user_id(client: &Client) -> UserId {
    UserId::new(client.get("/api/v1/me").await.body["user"]["id"].as_i64().unwrap())
}

#[tokio::test]
async fn the_digest_can_be_turned_off_in_settings_and_by_its_unsubscribe_link() {
    let app = spawn_app(Options::default()).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let bob = Client::signup(&app, "bob@example.com").await;
    let (alice_id, bob_id) = (user_id(&alice).await, user_id(&bob).await);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let (cookie, csrf) = cookie_of(&alice);
    let page = |http: &reqwest::Client, cookie: &str| {
        http.get(format!("{}/settings/digest", app.base)).header("cookie", cookie.to_owned()).send()
    };

    // Settings: visitors go to the log-in; a user sees and changes their own setting only.
    let anon = http.get(format!("{}/settings/digest", app.base)).send().await.unwrap();
    assert_eq!((anon.status().as_u16(), anon.headers()["location"].to_str().unwrap()), (303, "/login"));
    let on = page(&http, &cookie).await.unwrap().text().await.unwrap();
    assert!(on.contains("The weekly digest is <strong>on</strong>"), "{on}");
    let no_csrf = http
        .post(format!("{}/settings/digest", app.base))
        .header("cookie", &cookie)
        .form(&[("digest", "off")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403, "CSRF token required");
    assert_eq!(app.store.digest_enabled(alice_id).await.unwrap(), Some(true));
    let off = http
        .post(format!("{}/settings/digest", app.base))
        .header("cookie", &cookie)
        .form(&[("csrf_token", csrf.as_str()), ("digest", "off")])
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 303);
    assert!(page(&http, &cookie).await.unwrap().text().await.unwrap().contains("is <strong>off</strong>"));
    assert_eq!(app.store.digest_enabled(alice_id).await.unwrap(), Some(false));
    assert_eq!(app.store.digest_enabled(bob_id).await.unwrap(), Some(true), "Bob's is his own");
    let bad = http
        .post(format!("{}/settings/digest", app.base))
        .header("cookie", &cookie)
        .form(&[("csrf_token", csrf.as_str()), ("digest", "maybe")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(app.store.digest_enabled(alice_id).await.unwrap(), Some(false), "unchanged");

    // The unsubscribe link: opening it only asks; the one-click POST unsubscribes without a session.
    let token = "0123456789abcdef".repeat(4);
    app.store
        .add_unsubscribe_token(bob_id, &tubewatch_youtube::sha256_hex(token.as_bytes()), app.clock.now())
        .await
        .unwrap();
    let url = format!("{}/unsubscribe/digest?token={token}", app.base);
    let confirm = http.get(&url).send().await.unwrap();
    assert_eq!(confirm.status(), 200);
    assert!(confirm.text().await.unwrap().contains("Unsubscribe from the weekly digest?"));
    assert_eq!(app.store.digest_enabled(bob_id).await.unwrap(), Some(true), "a GET changes nothing");
    for wrong in ["f".repeat(64), "0123".into(), "G".repeat(64)] {
        let reply = http.post(format!("{}/unsubscribe/digest?token={wrong}", app.base)).send().await.unwrap();
        assert_eq!(reply.status(), 400, "{wrong}");
        assert!(reply.text().await.unwrap().contains("This unsubscribe link is not valid."));
    }
    assert_eq!(app.store.digest_enabled(bob_id).await.unwrap(), Some(true), "a wrong token changes nothing");
    let done = http.post(&url).form(&[("List-Unsubscribe", "One-Click")]).send().await.unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("You will no longer receive the weekly digest"));
    assert_eq!(app.store.digest_enabled(bob_id).await.unwrap(), Some(false));
}

#[tokio::test]
async fn users_set_their_webhook_on_allowed_hosts_only_and_see_its_secret_once() {
    let app = spawn_app(Options { webhook_hosts: vec!["hooks.example.com".into()], ..Options::default() }).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let bob = Client::signup(&app, "bob@example.com").await.bearer().await;
    let alice_id = user_id(&alice).await;
    let put = |client: &Client, url: &str| {
        let body = json!({ "url": url });
        let client = client.clone();
        async move { client.send(reqwest::Method::PUT, "/api/v1/webhook", Some(body)).await }
    };

    let none = alice.get("/api/v1/webhook").await;
    assert_eq!(none.status, 200);
    assert_eq!(
        none.body,
        json!({ "url": null, "created_at": null, "allowed_hosts": ["hooks.example.com"], "deliveries": [] })
    );
    // Bad URLs: a clear error and nothing stored.
    for bad in [
        "https://evil.example.com/x",
        "http://127.0.0.1:8080/",
        "https://hooks.example.com:8443/x",
        "ftp://hooks.example.com/x",
        "https://me:pw@hooks.example.com/x",
        "hooks.example.com/x",
        "",
    ] {
        let reply = put(&alice, bad).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (400, "invalid_webhook_url"), "{bad}: {}", reply.body);
    }
    let unknown = alice
        .send(reqwest::Method::PUT, "/api/v1/webhook", Some(json!({ "url": "https://hooks.example.com/", "x": 1 })))
        .await;
    assert_eq!(unknown.status, 422, "unknown fields are refused");
    assert!(app.store.webhook(alice_id).await.unwrap().is_none());

    let created = put(&alice, "https://hooks.example.com/tw/alice").await;
    assert_eq!(created.status, 200, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() == 70, "{secret}");
    let shown = alice.get("/api/v1/webhook").await;
    assert_eq!(shown.body["url"], "https://hooks.example.com/tw/alice");
    assert!(!String::from_utf8_lossy(&shown.bytes).contains(&secret), "the secret is shown once");
    let stored = app.store.webhook(alice_id).await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&stored.secret.sealed).contains(&secret[6..]), "sealed at rest");
    assert_eq!(bob.get("/api/v1/webhook").await.body["url"], serde_json::Value::Null, "Alice's is hers");
    let again = put(&alice, "https://hooks.example.com/tw/alice").await;
    assert_ne!(again.body["secret"], secret.as_str(), "setting it again makes a new secret");

    // Deliveries are listed with the webhook, newest first.
    let delivery = tubewatch_store::WebhookDelivery {
        user_id: alice_id,
        week: "2026-W10".into(),
        url: "https://hooks.example.com/tw/alice".into(),
        outliers: 3,
        attempts: 2,
        status_code: Some(204),
        error: None,
        last_attempt_at: app.clock.now(),
        delivered_at: Some(app.clock.now()),
    };
    app.store.record_webhook_attempt(&delivery).await.unwrap();
    let listed = alice.get("/api/v1/webhook").await;
    assert_eq!(listed.body["deliveries"][0]["week"], "2026-W10");
    assert_eq!(listed.body["deliveries"][0]["attempts"], 2);
    assert!(bob.get("/api/v1/webhook").await.body["deliveries"].as_array().unwrap().is_empty());

    // The settings page: the form, a refused URL, the secret once, the deliveries.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let (cookie, csrf) = cookie_of(&alice);
    let submit = |url: &'static str, csrf: String| {
        http.post(format!("{}/settings/webhook", app.base))
            .header("cookie", cookie.clone())
            .form(&[("csrf_token", csrf), ("url", url.to_owned())])
            .send()
    };
    assert_eq!(
        submit("https://hooks.example.com/p", String::new()).await.unwrap().status(),
        403,
        "CSRF token required"
    );
    let refused = submit("https://evil.example.com/p", csrf.clone()).await.unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("is not a webhook host this service allows"));
    let set = submit("https://hooks.example.com/p", csrf.clone()).await.unwrap().text().await.unwrap();
    let page_secret = set.split("id=\"webhook-secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(page_secret.starts_with("whsec_"), "{set}");
    let settings = page(&app, &alice, "/settings/digest").await;
    assert!(settings.contains("https://hooks.example.com/p") && !settings.contains(&page_secret), "{settings}");
    assert!(settings.contains("2026-W10") && settings.contains("delivered"), "{settings}");
    let removed = post_form(&app, &alice, "/settings/webhook/delete", &[("csrf_token", csrf.as_str())]).await;
    assert_eq!(removed.status(), 303);
    assert!(app.store.webhook(alice_id).await.unwrap().is_none());
    assert_eq!(alice.delete("/api/v1/webhook").await.status, 404, "already removed");
    assert_eq!(Client::anonymous(&app).get("/api/v1/webhook").await.status, 401);
}

#[tokio::test]
async fn webhooks_are_off_without_allowed_hosts() {
    let app = spawn_app(Options::default()).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let reply = alice.get("/api/v1/webhook").await;
    assert_eq!((reply.status.as_u16(), reply.code()), (503, "webhooks_not_configured"));
    let put = alice.send(reqwest::Method::PUT, "/api/v1/webhook", Some(json!({ "url": "https://a.example/" }))).await;
    assert_eq!(put.code(), "webhooks_not_configured");
    let settings = page(&app, &alice, "/settings/digest").await;
    assert!(settings.contains("Webhooks are off on this server"), "{settings}");
}

/// A webhook receiver on loopback: keeps each request's signature header and body, answers `status`.
async fn receiver(status: u16) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>) {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let signature = headers.get("tubewatch-signature").unwrap().to_str().unwrap().to_owned();
                sink.lock().unwrap().push((signature, body.to_vec()));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, got)
}

#[tokio::test]
async fn a_test_delivery_sends_a_signed_ping_and_says_how_the_receiver_answered() {
    let (ok_port, got) = receiver(204).await;
    let (bad_port, _) = receiver(500).await;
    let hosts = vec![format!("127.0.0.1:{ok_port}"), format!("127.0.0.1:{bad_port}")];
    let app = spawn_app(Options { webhook_hosts: hosts, ..Options::default() }).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    assert_eq!(alice.post("/api/v1/webhook/test", json!({})).await.status, 404, "no webhook yet");
    let url = format!("http://127.0.0.1:{ok_port}/hook");
    let set = alice.send(reqwest::Method::PUT, "/api/v1/webhook", Some(json!({ "url": url }))).await;
    let secret = set.body["secret"].as_str().unwrap().to_owned();

    let ping = alice.post("/api/v1/webhook/test", json!({})).await;
    assert_eq!(ping.body, json!({ "delivered": true, "status_code": 204, "error": null }), "{}", ping.body);
    let (signature, body) = got.lock().unwrap()[0].clone();
    let t: i64 = signature.strip_prefix("t=").unwrap().split(',').next().unwrap().parse().unwrap();
    assert_eq!(signature, tubewatch_worker::webhook::signature(&secret, t, &body));
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["event"], "ping");

    let url = format!("http://127.0.0.1:{bad_port}/hook");
    alice.send(reqwest::Method::PUT, "/api/v1/webhook", Some(json!({ "url": url }))).await;
    let failed = alice.post("/api/v1/webhook/test", json!({})).await;
    assert_eq!((failed.body["delivered"].as_bool(), failed.body["status_code"].as_u64()), (Some(false), Some(500)));
    // The page's button says the same.
    let (_, csrf) = cookie_of(&alice);
    let answer = post_form(&app, &alice, "/settings/webhook/test", &[("csrf_token", csrf.as_str())]).await;
    let answer = answer.text().await.unwrap();
    assert!(answer.contains("Test delivery failed: the receiver answered 500"), "{answer}");
    assert!(
        app.store.webhook_deliveries(user_id(&alice).await, 10).await.unwrap().is_empty(),
        "tests are not weekly deliveries"
    );
}
