//! The JSON API end to end: the real server on 127.0.0.1:0, a real SQLite store, the real
//! simulator over HTTP. Accounts, CSRF, throttling, tokens, secrets at rest, plan limits (also
//! under concurrency), the authorization matrix over every documented route, the chart series'
//! revalidation and cache, the OpenAPI document against the router, and Stripe (a local stand-in API and signed webhooks).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tubewatch_core::{ChannelId, Clock, Email, VideoId};
use tubewatch_store::{Plan, TargetKind, TargetState};
use tubewatch_web::config::{AccountsConfig, HttpConfig, StripeConfig};

/// `n` distinct channels and, from other channels, recent videos the simulator publishes.
fn sim_channels(app: &TestApp) -> Vec<String> {
    app.sim.sim.channels().iter().map(|c| c.id.to_string()).collect()
}

fn recent_videos(app: &TestApp, channel: &str) -> Vec<VideoId> {
    let now = app.clock.now();
    let channel = ChannelId::parse(channel).unwrap();
    app.sim.sim.channel_videos(&channel, now - Duration::days(50), now).unwrap().into_iter().map(|v| v.id).collect()
}

#[tokio::test]
async fn signup_login_logout_without_user_enumeration() {
    let app = spawn_app(Options::default()).await;
    let anon = Client::anonymous(&app);
    let alice = Client::signup(&app, "Alice@Example.com").await;
    let me = alice.get("/api/v1/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(
        (me.body["user"]["email"].as_str(), me.body["usage"]["plan"].as_str()),
        (Some("Alice@example.com"), Some("free"))
    );
    assert_eq!(me.body["usage"]["channels"], json!({ "used": 0, "limit": 3 }));

    // The domain is case-folded, the local part is not: `alice@` is a new account, `Alice@` is
    // taken; both get the same answer.
    let again = anon.post("/api/v1/auth/signup", json!({ "email": "alice@example.com", "password": PASSWORD })).await;
    let taken = anon.post("/api/v1/auth/signup", json!({ "email": "Alice@example.com", "password": PASSWORD })).await;
    assert_eq!((again.status.as_u16(), &again.bytes), (202, &taken.bytes));
    mailed_verification_tokens(&app, "alice@example.com", 1).await;
    let weak = anon.post("/api/v1/auth/signup", json!({ "email": "b@example.com", "password": "short" })).await;
    assert_eq!((weak.status.as_u16(), weak.code()), (400, "weak_password"));
    let bad = anon.post("/api/v1/auth/signup", json!({ "email": "nope", "password": PASSWORD })).await;
    assert_eq!((bad.status.as_u16(), bad.code()), (400, "bad_email"));
    let malformed = anon.send(Method::POST, "/api/v1/auth/login", None).await;
    assert_eq!(malformed.status.as_u16(), 415);
    assert!(malformed.code() == "unsupported_media_type", "{}", malformed.body);

    // A wrong password and an unknown account get the same answer.
    let wrong =
        anon.post("/api/v1/auth/login", json!({ "email": "Alice@example.com", "password": "wrong password!" })).await;
    let unknown = anon.post("/api/v1/auth/login", json!({ "email": "ghost@example.com", "password": PASSWORD })).await;
    assert_eq!(wrong.status, 401);
    assert_eq!((wrong.status, &wrong.body), (unknown.status, &unknown.body));

    let login = anon.post("/api/v1/auth/login", json!({ "email": "Alice@example.com", "password": PASSWORD })).await;
    assert_eq!(login.status, 200);
    let cookie = login
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("tw_session="))
        .unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "not Secure unless configured: {cookie}");
    let second = Client::from_session_reply(&app, &login);
    assert_eq!(second.post("/api/v1/auth/logout", json!({})).await.status, 204);
    let after = second.get("/api/v1/me").await;
    assert_eq!(
        (after.status.as_u16(), after.code()),
        (401, "session_expired"),
        "logged-out sessions are revoked server-side"
    );
    assert_eq!(alice.get("/api/v1/me").await.status, 200, "other sessions live on");
}

/// What a client sees of an answer: status, header names and values but `date`, and the body.
fn visible(reply: &Reply) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut headers: Vec<(String, String)> = reply
        .headers
        .iter()
        // The date and the request's own id differ between any two answers.
        .filter(|(name, _)| *name != "date" && *name != "x-request-id")
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    (reply.status.as_u16(), headers, reply.bytes.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_answers_a_new_and_a_taken_email_alike_and_tells_by_mail() {
    let http = HttpConfig { public_origin: Some("https://tw.example".into()), ..HttpConfig::default() };
    let app = spawn_app(Options { http, ..Options::default() }).await;
    let anon = Client::anonymous(&app);
    let signup =
        |email: &str, password: &str| anon.post("/api/v1/auth/signup", json!({ "email": email, "password": password }));
    let new = signup("ann@example.com", PASSWORD).await;
    let taken = signup("ann@example.com", "the intruder's password").await;
    assert_eq!(new.status, 202, "{}", new.body);
    assert_eq!(visible(&new), visible(&taken), "byte for byte the same answer");
    assert_eq!(new.body["next"], "verify_email");
    assert!(new.headers.get("set-cookie").is_none(), "no session before the email is confirmed");

    // The new address got one verification link on the configured origin; the second sign-up got
    // its owner a "you already have an account" mail and no new link.
    let links = mails_to(&app, "ann@example.com", "Confirm your email", 1).await;
    assert_eq!(links.len(), 1);
    assert!(links[0].contains("https://tw.example/verify-email?token="), "{}", links[0]);
    let again = mails_to(&app, "ann@example.com", "You already have a tubewatch account", 1).await;
    assert!(again[0].contains("https://tw.example/forgot-password"), "{}", again[0]);
    assert_eq!(mailed_verification_tokens(&app, "ann@example.com", 1).await.len(), 1);
    // Nothing else changed: the intruder's password opens nothing.
    let token = &mailed_verification_tokens(&app, "ann@example.com", 1).await[0];
    assert_eq!(anon.post("/api/v1/auth/verify-email", json!({ "token": token })).await.status, 200);
    let login =
        |password: &str| anon.post("/api/v1/auth/login", json!({ "email": "ann@example.com", "password": password }));
    assert_eq!(login(PASSWORD).await.status, 200);
    assert_eq!(login("the intruder's password").await.status, 401);

    // A taken email's owner gets at most three such mails an hour; the answer never changes.
    for _ in 0..4 {
        assert_eq!(visible(&signup("ann@example.com", PASSWORD).await), visible(&new));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(mails_to(&app, "ann@example.com", "You already have a tubewatch account", 1).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_links_work_once_expire_and_open_a_session() {
    let app = spawn_app(Options::default()).await;
    let anon = Client::anonymous(&app);
    let signup = anon.post("/api/v1/auth/signup", json!({ "email": "bea@example.com", "password": PASSWORD })).await;
    assert_eq!(signup.status, 202);
    let verify = |token: &str| anon.post("/api/v1/auth/verify-email", json!({ "token": token }));
    let login = || anon.post("/api/v1/auth/login", json!({ "email": "bea@example.com", "password": PASSWORD }));

    // Before the link: the right password is told the email is not confirmed; a wrong one learns
    // nothing more than for an unknown email.
    let unverified = login().await;
    assert_eq!((unverified.status.as_u16(), unverified.code()), (403, "email_unverified"));
    assert!(unverified.headers.get("set-cookie").is_none());
    let wrong =
        anon.post("/api/v1/auth/login", json!({ "email": "bea@example.com", "password": "wrong password!" })).await;
    let unknown =
        anon.post("/api/v1/auth/login", json!({ "email": "ghost@example.com", "password": "wrong password!" })).await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (401, "invalid_credentials"));
    assert_eq!(visible(&wrong), visible(&unknown));

    // Wrong and malformed tokens.
    for bad in ["0".repeat(64), "short".to_owned(), "z".repeat(64)] {
        let reply = verify(&bad).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (400, "invalid_verification_token"), "{bad}");
    }
    // A link expires after 24 hours; asking again mails a new one.
    let first = mailed_verification_tokens(&app, "bea@example.com", 1).await.remove(0);
    app.clock.advance(Duration::hours(24));
    assert_eq!(verify(&first).await.code(), "invalid_verification_token", "expired");
    let resend = |email: &str| anon.post("/api/v1/auth/verify-email/resend", json!({ "email": email }));
    let known = resend("bea@example.com").await;
    let unknown = resend("ghost@example.com").await;
    assert_eq!(known.status, 202);
    assert_eq!(visible(&known), visible(&unknown), "the same answer whatever the email");
    assert_eq!(resend("not an email").await.code(), "bad_email");
    let tokens = mailed_verification_tokens(&app, "bea@example.com", 2).await;
    let second = tokens.into_iter().find(|t| *t != first).expect("a new link");

    // The link confirms, logs in, and works once.
    let confirmed = verify(&second).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let bea = Client::from_session_reply(&app, &confirmed);
    assert_eq!(bea.get("/api/v1/me").await.body["user"]["email"], "bea@example.com");
    assert_eq!(verify(&second).await.code(), "invalid_verification_token", "used once");
    assert_eq!(login().await.status, 200, "a confirmed account logs in");
    // A confirmed account is mailed no more links.
    resend("bea@example.com").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(mailed_verification_tokens(&app, "bea@example.com", 2).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_verification_a_signup_logs_in_and_still_tells_nothing() {
    let accounts = AccountsConfig { verify_email: false, ..AccountsConfig::default() };
    let app = spawn_app(Options { accounts, ..Options::default() }).await;
    let anon = Client::anonymous(&app);
    let signup = |email: &str| anon.post("/api/v1/auth/signup", json!({ "email": email, "password": PASSWORD }));
    let new = signup("cy@example.com").await;
    let taken = signup("cy@example.com").await;
    assert_eq!(visible(&new), visible(&taken));
    assert_eq!((new.status.as_u16(), new.body["next"].as_str()), (202, Some("log_in")));
    let login = anon.post("/api/v1/auth/login", json!({ "email": "cy@example.com", "password": PASSWORD })).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(anon.post("/api/v1/auth/verify-email/resend", json!({ "email": "cy@example.com" })).await.status, 202);
}

#[tokio::test]
async fn secure_cookies_when_configured_and_sessions_expire() {
    let accounts = AccountsConfig { cookie_secure: true, session_days: 1, ..AccountsConfig::default() };
    let app = spawn_app(Options { accounts, ..Options::default() }).await;
    let reply = Client::signup_reply(&app, "s@example.com").await;
    let cookies: Vec<String> =
        reply.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(cookies.iter().all(|c| c.contains("Secure")), "{cookies:?}");
    assert!(reply.headers.get("strict-transport-security").is_some());
    let session = cookies.iter().find_map(|c| c.strip_prefix("__Host-tw_session=")).unwrap();
    let session = session.split(';').next().unwrap().to_owned();
    let me = || {
        reqwest::Client::new()
            .get(format!("{}/api/v1/me", app.base))
            .header("cookie", format!("__Host-tw_session={session}"))
            .send()
    };
    assert_eq!(me().await.unwrap().status(), 200);
    app.clock.advance(Duration::days(1) + Duration::seconds(1));
    let expired: Value = me().await.unwrap().json().await.unwrap();
    assert_eq!(expired["error"]["code"], "session_expired");
}

#[tokio::test]
async fn cookie_state_changes_need_the_csrf_token_and_bearer_ones_do_not() {
    let app = spawn_app(Options::default()).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let Auth::Cookie { session, .. } = alice.auth.clone() else { unreachable!() };
    for csrf in ["", "forged"] {
        let forged = Client { auth: Auth::Cookie { session: session.clone(), csrf: csrf.into() }, ..alice.clone() };
        let reply = forged.post("/api/v1/tokens", json!({ "name": "x" })).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (403, "csrf_failed"));
        // Reads need no CSRF token.
        assert_eq!(forged.get("/api/v1/tokens").await.status, 200);
    }
    assert!(
        alice.get("/api/v1/tokens").await.body["items"].as_array().unwrap().is_empty(),
        "forged requests changed nothing"
    );
    let bearer = alice.bearer().await;
    assert_eq!(bearer.post("/api/v1/tokens", json!({ "name": "from a script" })).await.status, 201);
    let bad_bearer = Client { auth: Auth::Bearer("tw_0000".into()), ..alice.clone() };
    assert_eq!(bad_bearer.get("/api/v1/me").await.code(), "invalid_token");
}

#[tokio::test]
async fn login_is_throttled_per_account_and_per_address() {
    let accounts = AccountsConfig {
        login_max_failures_per_account: 3,
        login_max_failures_per_ip: 5,
        login_window_minutes: 15,
        ..AccountsConfig::default()
    };
    let app = spawn_app(Options { accounts, ..Options::default() }).await;
    Client::signup(&app, "alice@example.com").await;
    Client::signup(&app, "bob@example.com").await;
    let anon = Client::anonymous(&app);
    let login =
        |email: &str, password: &str| anon.post("/api/v1/auth/login", json!({ "email": email, "password": password }));
    for _ in 0..3 {
        assert_eq!(login("alice@example.com", "not the password").await.code(), "invalid_credentials");
    }
    // The account is locked even for the right password…
    let locked = login("alice@example.com", PASSWORD).await;
    assert_eq!((locked.status.as_u16(), locked.code()), (429, "too_many_attempts"));
    assert_eq!(locked.headers.get("retry-after").unwrap(), "900");
    // …while another account still logs in from the same address, until the address's limit.
    assert_eq!(login("bob@example.com", PASSWORD).await.status, 200);
    for _ in 0..2 {
        assert_eq!(login("bob@example.com", "not the password").await.code(), "invalid_credentials");
    }
    assert_eq!(login("bob@example.com", PASSWORD).await.code(), "too_many_attempts");
    assert_eq!(login("carol@example.com", PASSWORD).await.code(), "too_many_attempts");
    // After the window both log in again.
    app.clock.advance(Duration::minutes(16));
    assert_eq!(login("alice@example.com", PASSWORD).await.status, 200);
    assert_eq!(login("bob@example.com", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn tokens_are_shown_once_revocable_and_scoped() {
    let app = spawn_app(Options::default()).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let bob = Client::signup(&app, "bob@example.com").await;
    let created = alice.post("/api/v1/tokens", json!({ "name": "ci" })).await;
    assert_eq!(created.status, 201);
    let token = created.body["token"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_i64().unwrap();
    let bearer = Client { auth: Auth::Bearer(token.clone()), ..alice.clone() };
    assert_eq!(bearer.get("/api/v1/me").await.body["user"]["email"], "alice@example.com");
    let listed = alice.get("/api/v1/tokens").await;
    assert_eq!(listed.body["items"][0]["id"], id);
    assert!(!listed.body.to_string().contains(&token[4..]), "the token is never shown again");
    assert_eq!(bob.delete(&format!("/api/v1/tokens/{id}")).await.status, 404, "not Bob's to revoke");
    assert_eq!(bearer.get("/api/v1/me").await.status, 200);
    assert_eq!(alice.delete(&format!("/api/v1/tokens/{id}")).await.status, 204);
    let revoked = bearer.get("/api/v1/me").await;
    assert_eq!((revoked.status.as_u16(), revoked.code()), (401, "invalid_token"));
    assert_eq!(alice.delete(&format!("/api/v1/tokens/{id}")).await.status, 404);
    let user = app.store.user_by_email(&Email::parse("alice@example.com").unwrap()).await.unwrap().unwrap();
    let actions: Vec<String> = app.store.audit_log(user.id, 10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["token_revoked", "token_created", "email_verified"]);
}

#[tokio::test]
async fn password_change_revokes_other_sessions() {
    let app = spawn_app(Options::default()).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let anon = Client::anonymous(&app);
    let other = Client::from_session_reply(
        &app,
        &anon.post("/api/v1/auth/login", json!({ "email": "alice@example.com", "password": PASSWORD })).await,
    );
    let new = "a much better passphrase";
    let wrong =
        alice.post("/api/v1/me/password", json!({ "current_password": "nope nope nope", "new_password": new })).await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (403, "wrong_password"));
    let weak =
        alice.post("/api/v1/me/password", json!({ "current_password": PASSWORD, "new_password": "short" })).await;
    assert_eq!(weak.code(), "weak_password");
    assert_eq!(
        alice.post("/api/v1/me/password", json!({ "current_password": PASSWORD, "new_password": new })).await.status,
        204
    );
    assert_eq!(alice.get("/api/v1/me").await.status, 200, "the session that changed it stays");
    assert_eq!(other.get("/api/v1/me").await.code(), "session_expired");
    let old = anon.post("/api/v1/auth/login", json!({ "email": "alice@example.com", "password": PASSWORD })).await;
    assert_eq!(old.status, 401);
    assert_eq!(
        anon.post("/api/v1/auth/login", json!({ "email": "alice@example.com", "password": new })).await.status,
        200
    );
}

#[tokio::test]
async fn no_password_or_token_is_stored_in_clear() {
    let app = spawn_app(Options::default()).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let token = alice.post("/api/v1/tokens", json!({ "name": "ci" })).await.body["token"].as_str().unwrap().to_owned();
    let Auth::Cookie { session, csrf } = alice.auth.clone() else { unreachable!() };
    // Every byte the database wrote (main file and WAL).
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("alice@example.com"), "the scan reads the database");
    for secret in [PASSWORD, token.as_str(), &token[3..], session.as_str(), csrf.as_str()] {
        assert!(!text.contains(secret), "found a secret in clear: {secret}");
    }
    assert!(text.contains("$argon2id$"), "passwords are argon2id hashes");
}

#[tokio::test]
async fn free_plan_limits_and_free_videos_of_monitored_channels() {
    let app = spawn_app(Options::default()).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let channels = sim_channels(&app);
    for (i, c) in channels.iter().take(3).enumerate() {
        let url = format!("https://www.youtube.com/channel/{c}");
        let reply = alice.post("/api/v1/channels", json!({ "url": url })).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(reply.body["usage"]["channels"]["used"], i + 1);
    }
    assert_eq!(
        alice.post("/api/v1/channels", json!({ "url": channels[0] })).await.status,
        200,
        "already tracked is free"
    );
    let fourth = alice.post("/api/v1/channels", json!({ "url": channels[3] })).await;
    assert_eq!((fourth.status.as_u16(), fourth.code()), (402, "channel_limit_reached"));
    assert_eq!((fourth.body["error"]["limit"].as_u64(), fourth.body["error"]["used"].as_u64()), (Some(3), Some(3)));
    assert_eq!(fourth.body["error"]["plan"], "free");

    // A video of a monitored channel costs nothing.
    let covered = recent_videos(&app, &channels[0]);
    let reply = alice.post("/api/v1/videos", json!({ "url": format!("https://youtu.be/{}", covered[0]) })).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        (reply.body["charged"].as_bool(), reply.body["usage"]["videos_this_month"]["used"].as_u64()),
        (Some(false), Some(0))
    );

    let loose: Vec<VideoId> = channels[3..].iter().flat_map(|c| recent_videos(&app, c)).take(11).collect();
    assert_eq!(loose.len(), 11, "the simulated world has enough recent videos");
    for v in &loose[..10] {
        let reply =
            alice.post("/api/v1/videos", json!({ "url": format!("https://www.youtube.com/watch?v={v}") })).await;
        assert_eq!((reply.status.as_u16(), reply.body["charged"].as_bool()), (201, Some(true)), "{}", reply.body);
    }
    let eleventh = alice.post("/api/v1/videos", json!({ "url": loose[10].to_string() })).await;
    assert_eq!((eleventh.status.as_u16(), eleventh.code()), (402, "video_limit_reached"));
    assert_eq!(eleventh.body["error"]["limit"], 10);
    assert!(
        app.store.target(tubewatch_store::TargetKind::Video, loose[10].as_str()).await.unwrap().is_none(),
        "no target for a refused video"
    );
    let listed = alice.get("/api/v1/videos?limit=5").await;
    assert_eq!((listed.body["items"].as_array().unwrap().len(), listed.body["next_offset"].as_u64()), (5, Some(5)));
    assert_eq!(alice.get("/api/v1/videos?limit=5&offset=10").await.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(alice.get("/api/v1/videos?limit=0").await.code(), "bad_input");
    assert_eq!(alice.get("/api/v1/videos?limit=x").await.code(), "bad_input");
    assert_eq!(alice.post("/api/v1/videos", json!({ "url": "https://vimeo.com/1" })).await.code(), "bad_input");

    // Untracking refunds nothing; a new month brings new credits.
    assert_eq!(alice.delete(&format!("/api/v1/videos/{}", loose[0])).await.status, 204);
    assert_eq!(
        alice.post("/api/v1/videos", json!({ "url": loose[10].to_string() })).await.code(),
        "video_limit_reached"
    );

    // Premium (an admin's plan change, as without Stripe): the fourth channel is accepted.
    let user = app.store.user_by_email(&Email::parse("alice@example.com").unwrap()).await.unwrap().unwrap();
    app.store.change_plan(user.id, Plan::Premium, None, "test", app.clock.now()).await.unwrap();
    assert_eq!(alice.post("/api/v1/channels", json!({ "url": channels[3] })).await.status, 201);
    assert_eq!(alice.post("/api/v1/videos", json!({ "url": loose[10].to_string() })).await.status, 201);
    let me = alice.get("/api/v1/me").await;
    assert_eq!(me.body["usage"]["videos_this_month"], json!({ "used": 11, "limit": null }));
}

#[tokio::test]
async fn concurrent_requests_cannot_exceed_a_limit() {
    let app = spawn_app(Options { channels: 12, ..Options::default() }).await;
    let alice = Client::signup(&app, "alice@example.com").await.bearer().await;
    let channels = sim_channels(&app);
    let replies = futures::future::join_all(
        channels.iter().take(7).map(|c| alice.post("/api/v1/channels", json!({ "url": c.clone() }))),
    )
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 3, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 402), "{statuses:?}");
    assert_eq!(alice.get("/api/v1/channels").await.body["items"].as_array().unwrap().len(), 3);
    // A refused request leaves nothing running: exactly the three admitted channels are checked.
    let mut live = 0;
    for c in channels.iter().take(7) {
        let target = app.store.target(TargetKind::Channel, c).await.unwrap();
        live += usize::from(target.is_some_and(|t| t.state == TargetState::Active));
    }
    assert_eq!(live, 3);
    // At the limit, a handle is refused before it is looked up on YouTube: one that does not
    // exist gets the limit's answer, not YouTube's "no such channel".
    let handle = alice.post("/api/v1/channels", json!({ "url": "@no-such-handle-anywhere" })).await;
    assert_eq!((handle.status.as_u16(), handle.code()), (402, "channel_limit_reached"), "{}", handle.body);
    // A channel already monitored is still answered as such.
    let admitted = replies.iter().find(|r| r.status == 201).unwrap().body["channel"]["id"].as_str().unwrap().to_owned();
    assert_eq!(alice.post("/api/v1/channels", json!({ "url": admitted })).await.status, 200);

    // The same for videos: ten credits a month, twelve at once.
    let bob = Client::signup(&app, "bob@example.com").await.bearer().await;
    let videos: Vec<VideoId> = channels.iter().skip(7).flat_map(|c| recent_videos(&app, c)).take(12).collect();
    assert_eq!(videos.len(), 12);
    let replies =
        futures::future::join_all(videos.iter().map(|v| bob.post("/api/v1/videos", json!({ "url": v.to_string() }))))
            .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "{statuses:?}");
    let mut live = 0;
    for v in &videos {
        let target = app.store.target(TargetKind::Video, v.as_str()).await.unwrap();
        live += usize::from(target.is_some_and(|t| t.state == TargetState::Active));
    }
    assert_eq!(live, 10, "refused videos are not checked");
}

/// One documented operation with the first user's resources filled in.
struct Case {
    method: Method,
    template: &'static str,
    path: String,
    body: Option<Value>,
}

#[tokio::test]
async fn authorization_matrix_covers_every_route() {
    let app = spawn_app(Options { webhook_hosts: vec!["hooks.example.com".into()], ..Options::default() }).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let bob = Client::signup(&app, "bob@example.com").await;
    let bob_bearer = bob.bearer().await;
    let anon = Client::anonymous(&app);
    let channels = sim_channels(&app);
    let channel = &channels[0];
    assert_eq!(alice.post("/api/v1/channels", json!({ "url": channel })).await.status, 201);
    let video = recent_videos(&app, &channels[1])[0].clone();
    assert_eq!(alice.post("/api/v1/videos", json!({ "url": video.to_string() })).await.status, 201);
    let channel_video = recent_videos(&app, channel)[0].clone();
    // What the worker's first channel check would record (no worker runs in this test).
    let known = tubewatch_store::NewVideo {
        id: channel_video.clone(),
        channel_id: tubewatch_core::ChannelId::parse(channel).unwrap(),
        published_at: app.clock.now() - Duration::days(1),
        is_short: false,
        title: "from the feed".into(),
    };
    app.store.insert_video(&known, app.clock.now()).await.unwrap();
    let token_id = alice.post("/api/v1/tokens", json!({ "name": "a" })).await.body["id"].as_i64().unwrap();
    let alice_hook = "https://hooks.example.com/alice-private-path";
    assert_eq!(alice.send(Method::PUT, "/api/v1/webhook", Some(json!({ "url": alice_hook }))).await.status, 200);
    let sha = "ab".repeat(32);
    app.blobs.put(&tubewatch_worker::thumbnail_key(&video, &sha, "default"), b"\xff\xd8jpeg".to_vec()).await.unwrap();

    let case = |method: Method, template: &'static str, path: String, body: Option<Value>| Case {
        method,
        template,
        path,
        body,
    };
    let cases = vec![
        case(Method::GET, "/api/v1/me", "/api/v1/me".into(), None),
        case(
            Method::POST,
            "/api/v1/me/password",
            "/api/v1/me/password".into(),
            // A wrong current password: a change would revoke Bob's bearer token mid-matrix.
            Some(json!({ "current_password": "not the password", "new_password": "x".repeat(12) })),
        ),
        case(Method::GET, "/api/v1/tokens", "/api/v1/tokens".into(), None),
        case(Method::POST, "/api/v1/tokens", "/api/v1/tokens".into(), Some(json!({ "name": "n" }))),
        case(Method::DELETE, "/api/v1/tokens/{token_id}", format!("/api/v1/tokens/{token_id}"), None),
        case(Method::GET, "/api/v1/channels", "/api/v1/channels".into(), None),
        case(Method::POST, "/api/v1/channels", "/api/v1/channels".into(), Some(json!({ "url": "@nobody-here" }))),
        case(Method::DELETE, "/api/v1/channels/{channel_id}", format!("/api/v1/channels/{channel}"), None),
        case(Method::GET, "/api/v1/channels/{channel_id}/videos", format!("/api/v1/channels/{channel}/videos"), None),
        case(Method::GET, "/api/v1/videos", "/api/v1/videos".into(), None),
        case(Method::POST, "/api/v1/videos", "/api/v1/videos".into(), Some(json!({ "url": "not a video" }))),
        case(Method::DELETE, "/api/v1/videos/{video_id}", format!("/api/v1/videos/{video}"), None),
        case(Method::GET, "/api/v1/videos/{video_id}/series", format!("/api/v1/videos/{video}/series"), None),
        case(Method::GET, "/api/v1/videos/{video_id}/series", format!("/api/v1/videos/{channel_video}/series"), None),
        case(
            Method::GET,
            "/api/v1/videos/{video_id}/thumbnails/{sha}/{size}",
            format!("/api/v1/videos/{video}/thumbnails/{sha}/default"),
            None,
        ),
        case(Method::GET, "/api/v1/outliers", "/api/v1/outliers".into(), None),
        // Bob's own webhook: he sets and removes his, never sees Alice's.
        case(Method::GET, "/api/v1/webhook", "/api/v1/webhook".into(), None),
        case(
            Method::PUT,
            "/api/v1/webhook",
            "/api/v1/webhook".into(),
            Some(json!({ "url": "https://hooks.example.com/b" })),
        ),
        case(Method::DELETE, "/api/v1/webhook", "/api/v1/webhook".into(), None),
        // After the delete: Bob has none to test (a test of Alice's is never sent for him).
        case(Method::POST, "/api/v1/webhook/test", "/api/v1/webhook/test".into(), Some(json!({}))),
        // A/B tests (not configured here, and Bob is on the free plan: 402 before anything is
        // read; owners-only access to a test is tested in tests/abtests_api.rs).
        case(Method::GET, "/oauth/google/start", "/oauth/google/start?channel=UC0000000000000000000000".into(), None),
        case(Method::GET, "/oauth/google/callback", "/oauth/google/callback?code=c&state=s".into(), None),
        case(Method::GET, "/api/v1/youtube/connection", "/api/v1/youtube/connection".into(), None),
        case(Method::DELETE, "/api/v1/youtube/connection", "/api/v1/youtube/connection".into(), None),
        case(Method::GET, "/api/v1/abtests", "/api/v1/abtests".into(), None),
        case(Method::POST, "/api/v1/abtests", "/api/v1/abtests".into(), Some(json!({}))),
        case(Method::GET, "/api/v1/abtests/{test_id}", "/api/v1/abtests/1".into(), None),
        case(Method::POST, "/api/v1/abtests/{test_id}/stop", "/api/v1/abtests/1/stop".into(), Some(json!({}))),
        case(Method::POST, "/api/v1/billing/checkout", "/api/v1/billing/checkout".into(), Some(json!({}))),
        // Last: it ends Bob's cookie session.
        case(Method::POST, "/api/v1/auth/logout", "/api/v1/auth/logout".into(), Some(json!({}))),
    ];
    // Public by design: they hold no user's data.
    let public: BTreeSet<(String, String)> = [
        ("post", "/api/v1/auth/signup"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/verify-email"),
        ("post", "/api/v1/auth/verify-email/resend"),
        ("post", "/api/v1/auth/password-reset"),
        ("post", "/api/v1/auth/password-reset/confirm"),
        ("post", "/webhooks/stripe"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/api/v1/openapi.json"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();

    // The matrix and the public list together are exactly the documented operations.
    let documented = documented_operations(&anon).await;
    let covered: BTreeSet<(String, String)> = cases
        .iter()
        .map(|c| (c.method.as_str().to_lowercase(), c.template.to_owned()))
        .chain(public.iter().cloned())
        .collect();
    assert_eq!(covered, documented, "every documented route is in the matrix");

    let alice_secrets = [
        channel.to_string(),
        video.to_string(),
        channel_video.to_string(),
        "alice@example.com".into(),
        alice_hook.into(),
    ];
    for c in &cases {
        for (who, client) in [("anonymous", &anon), ("bob (cookie)", &bob), ("bob (bearer)", &bob_bearer)] {
            let reply = client.send(c.method.clone(), &c.path, c.body.clone()).await;
            let status = reply.status.as_u16();
            let text = String::from_utf8_lossy(&reply.bytes).into_owned();
            assert!(
                !alice_secrets.iter().any(|s| text.contains(s.as_str())),
                "{who} {} {}: leaked {text}",
                c.method,
                c.path
            );
            if who == "anonymous" {
                assert_eq!((status, reply.code()), (401, "unauthenticated"), "{who} {} {}", c.method, c.path);
            } else if c.path.contains(&**channel)
                || c.path.contains(video.as_str())
                || c.path.contains(channel_video.as_str())
                || c.path.contains("/tokens/")
            {
                assert_eq!((status, reply.code()), (404, "not_found"), "{who} {} {}: {text}", c.method, c.path);
            } else {
                // Bob's own collections: allowed, and they must not contain Alice's data (checked above).
                assert!(status < 500, "{who} {} {}: {status} {text}", c.method, c.path);
            }
        }
    }
    // The same requests succeed for Alice: the 404s above are authorisation, not absence.
    assert_eq!(alice.get(&format!("/api/v1/videos/{video}/series")).await.status, 200);
    assert_eq!(
        alice.get(&format!("/api/v1/videos/{channel_video}/series")).await.status,
        200,
        "visible through her channel"
    );
    let thumb = alice.get(&format!("/api/v1/videos/{video}/thumbnails/{sha}/default")).await;
    assert_eq!(
        (thumb.status.as_u16(), thumb.headers.get("content-type").unwrap().to_str().unwrap()),
        (200, "image/jpeg")
    );
    assert_eq!(alice.get(&format!("/api/v1/videos/{video}/thumbnails/{sha}/..")).await.status, 404);
    let videos = alice.get(&format!("/api/v1/channels/{channel}/videos")).await;
    assert!(videos.body["items"].as_array().unwrap().iter().any(|v| v["id"] == channel_video.as_str()));
    assert_eq!(alice.get("/api/v1/webhook").await.body["url"], alice_hook, "Bob's requests left Alice's webhook");
    assert_eq!(alice.delete(&format!("/api/v1/tokens/{token_id}")).await.status, 204);
    assert_eq!(alice.delete(&format!("/api/v1/channels/{channel}")).await.status, 204);
    assert_eq!(alice.get(&format!("/api/v1/videos/{channel_video}/series")).await.status, 404, "gone with the channel");
}

#[tokio::test]
async fn the_series_is_revalidated_by_its_etag_and_never_stale_or_shared() {
    let app = spawn_app(Options::default()).await;
    let alice = Client::signup(&app, "alice@example.com").await.bearer().await;
    let bob = Client::signup(&app, "bob@example.com").await.bearer().await;
    let video = recent_videos(&app, &sim_channels(&app)[1])[0].clone();
    assert_eq!(alice.post("/api/v1/videos", json!({ "url": video.to_string() })).await.status, 201);
    let path = format!("/api/v1/videos/{video}/series");
    let Auth::Bearer(token) = &alice.auth else { unreachable!("a bearer client") };
    let get_if_none_match = |etag: String| {
        let request = alice.http.get(format!("{}{path}", alice.base)).bearer_auth(token);
        async move { request.header("if-none-match", etag).send().await.unwrap() }
    };
    let points = |r: &Reply| r.body["points"].as_array().unwrap().len();

    let first = alice.get(&path).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let etag = first.headers.get("etag").unwrap().to_str().unwrap().to_owned();
    assert_eq!(first.headers.get("cache-control").unwrap(), "private, no-cache");
    // Kept for Alice now, and still not Bob's to read.
    assert_eq!(bob.get(&path).await.status, 404);
    let again = alice.get(&path).await;
    assert_eq!((again.bytes == first.bytes, again.headers.get("etag")), (true, first.headers.get("etag")));
    let unchanged = get_if_none_match(etag.clone()).await;
    assert_eq!(unchanged.status(), 304);
    assert!(unchanged.bytes().await.unwrap().is_empty());

    // A new measurement: the old tag no longer matches and the answer has it.
    let slot = tubewatch_core::Slot::hour_of(app.clock.now());
    let record =
        tubewatch_store::ViewsRecord { video_id: video.clone(), slot, measured_at: app.clock.now(), views: 4321 };
    assert!(app.store.record_views(&record).await.unwrap());
    let changed = get_if_none_match(etag.clone()).await;
    assert_eq!(changed.status(), 200);
    let new_etag = changed.headers().get("etag").unwrap().to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    let body: Value = changed.json().await.unwrap();
    assert_eq!(body["points"].as_array().unwrap().len(), points(&first) + 1);
    assert_eq!(body["points"].as_array().unwrap().last().unwrap()["views"], 4321);
    assert_eq!(get_if_none_match(format!("W/{new_etag}")).await.status(), 304, "weak comparison");

    // Once Alice stops tracking it, the kept answer is hers no more either.
    assert_eq!(alice.delete(&format!("/api/v1/videos/{video}")).await.status, 204);
    assert_eq!(alice.get(&path).await.status, 404);
    assert_eq!(get_if_none_match(new_etag).await.status(), 404);
}

/// Every (method, path template) of the served OpenAPI document.
async fn documented_operations(client: &Client) -> BTreeSet<(String, String)> {
    let doc = client.get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    let mut ops = BTreeSet::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} documents responses");
            ops.insert((method.clone(), path.clone()));
        }
    }
    ops
}

#[tokio::test]
async fn the_openapi_document_lists_every_served_route() {
    let app = spawn_app(Options::default()).await;
    let anon = Client::anonymous(&app);
    let ops = documented_operations(&anon).await;
    assert!(ops.len() >= 20, "{ops:?}");
    // Every documented operation is served (never the router's fallback, never 405)…
    for (method, path) in &ops {
        let concrete = path
            .replace("{token_id}", "1")
            .replace("{channel_id}", "UC0000000000000000000000")
            .replace("{video_id}", "AAAAAAAAAAA")
            .replace("{sha}", "ab")
            .replace("{size}", "default");
        let reply = anon.send(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), &concrete, None).await;
        assert_ne!(reply.status.as_u16(), 405, "{method} {path}");
        assert_ne!(reply.body["error"]["message"], "no such route", "{method} {path} is documented but not served");
    }
    // …and a route outside the document is not served.
    let reply = anon.get("/api/v1/undocumented").await;
    assert_eq!(reply.body["error"]["message"], "no such route");
}

/// A stand-in for Stripe's API that records Checkout Session requests.
async fn fake_stripe() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/v1/checkout/sessions",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                record.lock().unwrap().push((auth, body));
                axum::Json(json!({ "id": "cs_test_1", "url": "https://checkout.stripe.test/c/pay/cs_test_1" }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

const WEBHOOK_SECRET: &str = "whsec_test_secret";

fn stripe_config(base_url: String) -> StripeConfig {
    StripeConfig {
        base_url,
        secret_key: "sk_test_abc".into(),
        webhook_secret: WEBHOOK_SECRET.into(),
        premium_price_id: "price_premium".into(),
        public_url: "https://tubewatch.test".into(),
        tolerance_seconds: 300,
    }
}

/// Posts an event signed as Stripe documents it: `t=TS,v1=HMAC_SHA256(secret, "TS.payload")`.
async fn deliver(app: &TestApp, event: &Value, secret: &str, timestamp: i64) -> Reply {
    let payload = event.to_string();
    let signature = tubewatch_web::billing::sign(payload.as_bytes(), secret, timestamp);
    let resp = reqwest::Client::new()
        .post(format!("{}/webhooks/stripe", app.base))
        .header("stripe-signature", signature)
        .header("content-type", "application/json")
        .body(payload)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap().to_vec();
    Reply { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), bytes }
}

#[tokio::test]
async fn stripe_checkout_and_signed_idempotent_webhooks() {
    let (stripe_base, seen) = fake_stripe().await;
    let app = spawn_app(Options { stripe: Some(stripe_config(stripe_base)), ..Options::default() }).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let user = app.store.user_by_email(&Email::parse("alice@example.com").unwrap()).await.unwrap().unwrap();

    let checkout = alice.post("/api/v1/billing/checkout", json!({})).await;
    assert_eq!(checkout.status, 200, "{}", checkout.body);
    assert_eq!(checkout.body["url"], "https://checkout.stripe.test/c/pay/cs_test_1");
    let (auth, form) = seen.lock().unwrap()[0].clone();
    assert_eq!(auth, "Bearer sk_test_abc");
    assert!(form.contains("mode=subscription") && form.contains("price_premium"), "{form}");
    assert!(form.contains(&format!("client_reference_id={}", user.id)), "{form}");

    let now = Utc::now().timestamp();
    let checkout_event = |id: &str, kind: &str, payment_status: &str, created: i64| {
        json!({ "id": id, "type": kind, "created": created, "data": { "object": {
            "id": "cs_test_1", "mode": "subscription", "client_reference_id": user.id.to_string(),
            "customer": "cus_1", "subscription": "sub_1", "payment_status": payment_status,
            "metadata": { "user_id": user.id.to_string(), "price_id": "price_premium" } } } })
    };
    let completed = checkout_event("evt_1", "checkout.session.completed", "paid", now - 100);
    // Wrong secret and stale timestamp are refused and change nothing.
    let wrong = deliver(&app, &completed, "whsec_wrong", now).await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (400, "bad_signature"));
    let stale = deliver(&app, &completed, WEBHOOK_SECRET, now - 301).await;
    assert_eq!((stale.status.as_u16(), stale.code()), (400, "bad_signature"));
    let unsigned = reqwest::Client::new()
        .post(format!("{}/webhooks/stripe", app.base))
        .body(completed.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 400);
    assert_eq!(app.store.user(user.id).await.unwrap().unwrap().plan, Plan::Free);

    let ok = deliver(&app, &completed, WEBHOOK_SECRET, now).await;
    assert_eq!((ok.status.as_u16(), ok.body["applied"].as_bool()), (200, Some(true)), "{}", ok.body);
    assert_eq!(alice.get("/api/v1/me").await.body["user"]["plan"], "premium");
    assert_eq!(alice.post("/api/v1/billing/checkout", json!({})).await.code(), "already_premium");

    // An admin downgrade, then a replay of the same event: ignored.
    app.store.change_plan(user.id, Plan::Free, None, "test", app.clock.now()).await.unwrap();
    let replay = deliver(&app, &completed, WEBHOOK_SECRET, now).await;
    assert_eq!((replay.status.as_u16(), replay.body["applied"].as_bool()), (200, Some(false)));
    assert_eq!(app.store.user(user.id).await.unwrap().unwrap().plan, Plan::Free);

    let subscription = |id: &str, kind: &str, status: &str, created: i64| {
        json!({ "id": id, "type": kind, "created": created, "data": { "object": {
            "id": "sub_1", "customer": "cus_1", "status": status,
            "items": { "data": [ { "price": { "id": "price_premium" } } ] } } } })
    };
    let updated =
        |id: &str, status: &str, created: i64| subscription(id, "customer.subscription.updated", status, created);
    let plan = || async { app.store.user(user.id).await.unwrap().unwrap().plan };
    assert_eq!(deliver(&app, &updated("evt_2", "active", now - 90), WEBHOOK_SECRET, now).await.body["applied"], true);
    assert_eq!(plan().await, Plan::Premium);
    assert_eq!(deliver(&app, &updated("evt_3", "unpaid", now - 80), WEBHOOK_SECRET, now).await.body["applied"], true);
    assert_eq!(plan().await, Plan::Free);
    // Out of order: an `active` from before the `unpaid` arrives late and changes nothing.
    let late = deliver(&app, &updated("evt_late", "active", now - 85), WEBHOOK_SECRET, now).await;
    assert_eq!((late.status.as_u16(), late.body["applied"].as_bool()), (200, Some(false)));
    assert_eq!(plan().await, Plan::Free);
    deliver(&app, &updated("evt_4", "active", now - 70), WEBHOOK_SECRET, now).await;
    let deleted = subscription("evt_5", "customer.subscription.deleted", "canceled", now - 60);
    assert_eq!(deliver(&app, &deleted, WEBHOOK_SECRET, now).await.body["applied"], true);
    assert_eq!(plan().await, Plan::Free);
    // The first checkout's event replayed after the cancellation: already applied, ignored.
    assert_eq!(deliver(&app, &completed, WEBHOOK_SECRET, now).await.body["applied"], false);
    assert_eq!(plan().await, Plan::Free);
    let other = json!({ "id": "evt_6", "type": "invoice.paid", "created": now, "data": { "object": {} } });
    let other = deliver(&app, &other, WEBHOOK_SECRET, now).await;
    assert_eq!((other.status.as_u16(), other.body["applied"].as_bool()), (200, Some(false)));
    let stranger = subscription("evt_7", "customer.subscription.deleted", "canceled", now - 50)
        .to_string()
        .replace("cus_1", "cus_unknown");
    let stranger: Value = serde_json::from_str(&stranger).unwrap();
    assert_eq!(deliver(&app, &stranger, WEBHOOK_SECRET, now).await.body["applied"], false);
    // A subscription for another price (another product on the same Stripe account) is not ours.
    let foreign = updated("evt_8", "active", now - 40).to_string().replace("price_premium", "price_other");
    let foreign: Value = serde_json::from_str(&foreign).unwrap();
    assert_eq!(deliver(&app, &foreign, WEBHOOK_SECRET, now).await.body["applied"], false);
    assert_eq!(plan().await, Plan::Free);
    // A checkout completed but not paid (an asynchronous payment) links the customer only; the
    // plan starts when the payment succeeds.
    let unpaid = checkout_event("evt_9", "checkout.session.completed", "unpaid", now - 30);
    assert_eq!(deliver(&app, &unpaid, WEBHOOK_SECRET, now).await.body["applied"], true);
    assert_eq!(plan().await, Plan::Free);
    let paid = checkout_event("evt_10", "checkout.session.async_payment_succeeded", "paid", now - 20);
    assert_eq!(deliver(&app, &paid, WEBHOOK_SECRET, now).await.body["applied"], true);
    assert_eq!(plan().await, Plan::Premium);
    let undated = json!({ "id": "evt_11", "type": "invoice.paid", "data": { "object": {} } });
    assert_eq!(deliver(&app, &undated, WEBHOOK_SECRET, now).await.code(), "bad_event");
    let plan_changes =
        app.store.audit_log(user.id, 20).await.unwrap().into_iter().filter(|e| e.action == "plan_changed").count();
    assert_eq!(plan_changes, 7, "each plan change is audited");
}

#[tokio::test]
async fn billing_is_off_without_stripe() {
    let app = spawn_app(Options::default()).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    assert_eq!(alice.post("/api/v1/billing/checkout", json!({})).await.code(), "billing_disabled");
    let event = json!({ "id": "evt_1", "type": "checkout.session.completed", "created": 1, "data": { "object": {} } });
    assert_eq!(deliver(&app, &event, WEBHOOK_SECRET, Utc::now().timestamp()).await.code(), "billing_disabled");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let accounts = AccountsConfig { max_body_bytes: 1024, ..AccountsConfig::default() };
    let app = spawn_app(Options { accounts, ..Options::default() }).await;
    let anon = Client::anonymous(&app);
    let big = anon.post("/api/v1/auth/signup", json!({ "email": "a@example.com", "password": "x".repeat(4096) })).await;
    assert_eq!((big.status.as_u16(), big.code()), (413, "body_too_large"));
}
