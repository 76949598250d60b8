//! The attacks a review found, each replayed against the real server on 127.0.0.1: parallel
//! log-in guessing, spoofed and IPv6 client addresses, cross-site posts, uploads before the
//! session, slow and piled-up requests, cookie names, token scopes and expiry, the metrics
//! endpoint and the webhook test button.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use common::*;
use futures::StreamExt;
use reqwest::Method;
use serde_json::json;
use tubewatch_core::Clock;
use tubewatch_web::config::{AccountsConfig, HttpConfig};

/// A request whose body starts and then stalls for ever, as a slow or malicious client sends it.
fn stalled_body(first: Vec<u8>) -> reqwest::Body {
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(futures::stream::pending());
    reqwest::Body::wrap_stream(stream)
}

fn wrong_login(email: &str) -> serde_json::Value {
    json!({ "email": email, "password": "not the password at all" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_get_no_more_tries_than_sequential_ones() {
    let accounts = AccountsConfig { login_max_failures_per_ip: 1000, ..AccountsConfig::default() };
    let app = spawn_app(Options { accounts, ..Options::default() }).await;
    Client::signup(&app, "alice@example.com").await;
    let anon = Client::anonymous(&app);
    let attempts = (0..60).map(|_| {
        let anon = anon.clone();
        async move { anon.post("/api/v1/auth/login", wrong_login("alice@example.com")).await }
    });
    let replies = futures::future::join_all(attempts).await;
    let checked = replies.iter().filter(|r| r.status == 401).count();
    let refused = replies.iter().filter(|r| matches!(r.status.as_u16(), 429 | 503)).count();
    assert_eq!(checked + refused, 60, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(checked <= 5, "{checked} parallel guesses were checked; the limit is 5");
    let throttled = replies.iter().find(|r| r.status == 429).unwrap();
    assert_eq!(throttled.code(), "too_many_attempts");
    assert_eq!(throttled.headers["retry-after"], "900");
    // The right password is refused too while the account is locked.
    let right = anon.post("/api/v1/auth/login", json!({ "email": "alice@example.com", "password": PASSWORD })).await;
    assert_eq!(right.status, 429);
}

/// Three wrong log-ins (each for a fresh account key) from `from`, then whether a fourth is still
/// checked (401) or refused (429).
async fn fourth_attempt(anon: &Client, forwarded_for: &str, then_from: &str) -> u16 {
    for i in 0..3 {
        let reply = anon
            .http
            .post(format!("{}/api/v1/auth/login", anon.base))
            .header("x-forwarded-for", forwarded_for)
            .json(&wrong_login(&format!("u{i}-{forwarded_for}@example.com").replace(':', "")))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 401);
    }
    let reply = anon
        .http
        .post(format!("{}/api/v1/auth/login", anon.base))
        .header("x-forwarded-for", then_from)
        .json(&wrong_login("someone-else@example.com"))
        .send()
        .await
        .unwrap();
    reply.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_addresses_come_from_trusted_proxies_only_and_ipv6_counts_per_64() {
    let accounts = AccountsConfig { login_max_failures_per_ip: 3, ..AccountsConfig::default() };
    // Behind a proxy on 127.0.0.1: each client is throttled on its own address.
    let http = HttpConfig { trusted_proxies: vec!["127.0.0.1".parse().unwrap()], ..HttpConfig::default() };
    let proxied = spawn_app(Options { accounts: accounts.clone(), http, ..Options::default() }).await;
    let anon = Client::anonymous(&proxied);
    assert_eq!(fourth_attempt(&anon, "203.0.113.1", "203.0.113.1").await, 429);
    assert_eq!(fourth_attempt(&anon, "203.0.113.2", "203.0.113.3").await, 401, "one bad actor locks only itself out");
    assert_eq!(fourth_attempt(&anon, "2001:db8:0:1::1", "2001:db8:0:1::ffff").await, 429, "the same /64");
    assert_eq!(fourth_attempt(&anon, "2001:db8:0:2::1", "2001:db8:0:3::1").await, 401, "another /64");

    // Without a trusted proxy the header is the client's own claim: ignored.
    let direct = spawn_app(Options { accounts, ..Options::default() }).await;
    let anon = Client::anonymous(&direct);
    assert_eq!(fourth_attempt(&anon, "203.0.113.1", "198.51.100.1").await, 429, "a spoofed address does not help");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_from_another_site_are_refused() {
    let app = spawn_app(Options::default()).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let post = |path: &str, header: (&'static str, String)| {
        reqwest::Client::new()
            .post(format!("{}{path}", app.base))
            .header(header.0, header.1)
            .json(&wrong_login("alice@example.com"))
            .send()
    };
    for header in [("origin", "https://evil.example".to_owned()), ("referer", "https://evil.example/x".to_owned())] {
        let reply = post("/api/v1/auth/login", header.clone()).await.unwrap();
        assert_eq!(reply.status(), 403, "{header:?}");
        let body: serde_json::Value = reply.json().await.unwrap();
        assert_eq!(body["error"]["code"], "cross_origin");
        let form = reqwest::Client::new()
            .post(format!("{}/signup", app.base))
            .header(header.0, header.1)
            .form(&[("email", "mallory@example.com"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 403);
    }
    assert_eq!(post("/api/v1/auth/login", ("origin", "null".into())).await.unwrap().status(), 403);
    // The service's own pages pass.
    let own = post("/api/v1/auth/login", ("origin", app.base.clone())).await.unwrap();
    assert_eq!(own.status(), 401);
    // A signed-in user's state change from another site, CSRF header or not.
    let Auth::Cookie { session, csrf } = &alice.auth else { panic!("a cookie client") };
    let forged = reqwest::Client::new()
        .post(format!("{}/api/v1/tokens", app.base))
        .header("cookie", format!("tw_session={session}"))
        .header("x-csrf-token", csrf)
        .header("origin", "https://evil.example")
        .json(&json!({ "name": "stolen", "scope": "write" }))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(alice.get("/api/v1/tokens").await.body["items"].as_array().unwrap().is_empty());
    // Reads are not refused for their origin (links from mail, other tabs).
    let read = reqwest::Client::new().get(format!("{}/healthz", app.base)).header("origin", "https://evil.example");
    assert_eq!(read.send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_refused_before_their_body_is_read() {
    let app = spawn_app(Options::default()).await;
    let boundary = "XBOUNDARYX";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nnothing\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"thumbnail\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
    );
    for path in ["/abtests/new", "/api/v1/abtests"] {
        let started = Instant::now();
        let request = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(StdDuration::from_secs(10))
            .build()
            .unwrap()
            .post(format!("{}{path}", app.base))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .header("content-length", (8 * 1024 * 1024).to_string())
            .body(stalled_body(head.clone().into_bytes()));
        let reply = request.send().await.expect("answered without waiting for the body");
        assert!(started.elapsed() < StdDuration::from_secs(5), "{path}: {:?}", started.elapsed());
        let status = reply.status().as_u16();
        assert!(matches!(status, 303 | 401), "{path}: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out_and_a_full_server_sheds_load() {
    let http =
        HttpConfig { request_timeout: StdDuration::from_secs(1), max_concurrent_requests: 2, ..HttpConfig::default() };
    let app = spawn_app(Options { http, ..Options::default() }).await;
    let slow = |client: reqwest::Client| {
        client
            .post(format!("{}/api/v1/auth/login", app.base))
            .header("content-type", "application/json")
            .header("content-length", "100")
            .body(stalled_body(b"{\"email\":".to_vec()))
            .send()
    };
    // Bounded on the client too, so that a server without deadlines fails here rather than hangs.
    let client = || reqwest::Client::builder().timeout(StdDuration::from_secs(10)).build().unwrap();
    let started = Instant::now();
    let reply = slow(client()).await.expect("answered before the client gave up");
    assert_eq!(reply.status(), 408);
    assert!(started.elapsed() < StdDuration::from_secs(5), "{:?}", started.elapsed());
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["code"], "request_timeout");

    // Two slow requests occupy both slots: a third is answered 503 at once.
    let held = [tokio::spawn(slow(client())), tokio::spawn(slow(client()))];
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    let shed = reqwest::Client::new().get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!((shed.status().as_u16(), shed.headers()["retry-after"].to_str().unwrap()), (503, "1"));
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status(), 408);
    }
    assert_eq!(reqwest::get(format!("{}/healthz", app.base)).await.unwrap().status(), 200, "slots are given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_cookies_carry_the_host_prefix() {
    let accounts = AccountsConfig { cookie_secure: true, ..AccountsConfig::default() };
    let app = spawn_app(Options { accounts, ..Options::default() }).await;
    let reply = Client::signup_reply(&app, "alice@example.com").await;
    let cookies: Vec<&str> = reply.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let session = cookies.iter().find(|c| c.starts_with("__Host-tw_session=")).expect("a __Host- session cookie");
    for part in ["Secure", "HttpOnly", "Path=/", "SameSite=Lax"] {
        assert!(session.contains(part), "{session}");
    }
    assert!(!session.contains("Domain"), "{session}");
    assert!(cookies.iter().any(|c| c.starts_with("__Host-tw_csrf=") && c.contains("Secure")), "{cookies:?}");
    let value = session.split(';').next().unwrap().trim_start_matches("__Host-tw_session=");
    let me =
        |cookie: String| reqwest::Client::new().get(format!("{}/api/v1/me", app.base)).header("cookie", cookie).send();
    assert_eq!(me(format!("__Host-tw_session={value}")).await.unwrap().status(), 200);
    assert_eq!(me(format!("tw_session={value}")).await.unwrap().status(), 401, "only the prefixed name counts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_are_scoped_expire_and_die_with_the_password() {
    let app = spawn_app(Options::default()).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let created = alice.post("/api/v1/tokens", json!({ "name": "report" })).await;
    assert_eq!((created.status.as_u16(), created.body["scope"].as_str()), (201, Some("read")), "read is the default");
    let expires: chrono::DateTime<chrono::Utc> = serde_json::from_value(created.body["expires_at"].clone()).unwrap();
    assert_eq!(expires, app.clock.now() + Duration::days(90));
    let reader = Client { auth: Auth::Bearer(created.body["token"].as_str().unwrap().into()), ..alice.clone() };
    assert_eq!(reader.get("/api/v1/me").await.status, 200);
    let refused = reader.post("/api/v1/channels", json!({ "url": "@someone" })).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "insufficient_scope"));
    for bad in [
        json!({ "name": "x", "scope": "admin" }),
        json!({ "name": "x", "expires_in_days": 0 }),
        json!({ "name": "x", "expires_in_days": 366 }),
    ] {
        let reply = alice.post("/api/v1/tokens", bad.clone()).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (400, "bad_input"), "{bad}");
    }
    let short = alice.post("/api/v1/tokens", json!({ "name": "short", "scope": "write", "expires_in_days": 1 })).await;
    let short = Client { auth: Auth::Bearer(short.body["token"].as_str().unwrap().into()), ..alice.clone() };
    assert_eq!(short.get("/api/v1/me").await.status, 200);
    app.clock.advance(Duration::days(1));
    let expired = short.get("/api/v1/me").await;
    assert_eq!((expired.status.as_u16(), expired.code()), (401, "invalid_token"));
    assert_eq!(reader.get("/api/v1/me").await.status, 200);
    // A password change revokes every token.
    let change = alice
        .post("/api/v1/me/password", json!({ "current_password": PASSWORD, "new_password": "a new long password" }))
        .await;
    assert_eq!(change.status, 204);
    assert_eq!(reader.get("/api/v1/me").await.code(), "invalid_token");
    let listed = alice.get("/api/v1/tokens").await;
    assert!(listed.body["items"].as_array().unwrap().iter().all(|t| !t["revoked_at"].is_null()), "{}", listed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_this_machine_or_the_token_holder() {
    let local = spawn_app(Options::default()).await;
    assert_eq!(reqwest::get(format!("{}/metrics", local.base)).await.unwrap().status(), 200, "a scraper on loopback");

    // Through a proxy, the client is whoever the proxy names.
    let http = HttpConfig { trusted_proxies: vec!["127.0.0.1".parse().unwrap()], ..HttpConfig::default() };
    let proxied = spawn_app(Options { http, ..Options::default() }).await;
    let outside = reqwest::Client::new()
        .get(format!("{}/metrics", proxied.base))
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 403);

    let http = HttpConfig { metrics_token: Some("a-long-scrape-token".into()), ..HttpConfig::default() };
    let guarded = spawn_app(Options { http, ..Options::default() }).await;
    let scrape = |token: Option<&str>| {
        let mut request = reqwest::Client::new().get(format!("{}/metrics", guarded.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(scrape(None).await.unwrap().status(), 401);
    assert_eq!(scrape(Some("a-long-scrape-tokem")).await.unwrap().status(), 401);
    let ok = scrape(Some("a-long-scrape-token")).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("# EOF"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_test_button_is_throttled() {
    let app = spawn_app(Options { webhook_hosts: vec!["hooks.example.com".into()], ..Options::default() }).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let set = alice.send(Method::PUT, "/api/v1/webhook", Some(json!({ "url": "https://hooks.example.com/in" }))).await;
    assert!(set.status.is_success(), "{}", set.body);
    for _ in 0..5 {
        assert_eq!(alice.post("/api/v1/webhook/test", json!({})).await.status, 200);
    }
    let sixth = alice.post("/api/v1/webhook/test", json!({})).await;
    assert_eq!((sixth.status.as_u16(), sixth.code()), (429, "too_many_attempts"));
    app.clock.advance(Duration::minutes(11));
    assert_eq!(alice.post("/api/v1/webhook/test", json!({})).await.status, 200, "the window passes");
}

/// The reset code in a mail: the one run of 64 hex digits.
fn reset_code(mail: &str) -> String {
    let bytes = mail.as_bytes();
    (0..bytes.len().saturating_sub(64))
        .find(|&i| {
            bytes[i..i + 64].iter().all(u8::is_ascii_hexdigit)
                && bytes.get(i + 64).is_none_or(|b| !b.is_ascii_hexdigit())
                && (i == 0 || !bytes[i - 1].is_ascii_hexdigit())
        })
        .map(|i| mail[i..i + 64].to_owned())
        .expect("a reset code in the mail")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_resets_go_by_mail_work_once_and_tell_nothing() {
    let http = HttpConfig { public_origin: Some("https://tw.example".into()), ..HttpConfig::default() };
    let app = spawn_app(Options { http, ..Options::default() }).await;
    let alice = Client::signup(&app, "alice@example.com").await;
    let anon = Client::anonymous(&app);
    let known = anon.post("/api/v1/auth/password-reset", json!({ "email": "alice@example.com" })).await;
    let unknown = anon.post("/api/v1/auth/password-reset", json!({ "email": "ghost@example.com" })).await;
    assert_eq!(known.status, 202);
    assert_eq!((known.status, &known.bytes), (unknown.status, &unknown.bytes), "the same answer for both");
    // The outbox already holds Alice's verification mail.
    let mails = outbox_mails(&app, 2).await;
    assert_eq!(mails.len(), 2, "no mail for an email without an account");
    let mails = mails_to(&app, "alice@example.com", "Reset your tubewatch password", 1).await;
    let mail = &mails[0];
    assert!(mail.contains("To: alice@example.com") && mail.contains("Reset your tubewatch password"), "{mail}");
    assert!(mail.contains("https://tw.example/reset-password"), "links use the configured origin: {mail}");
    let code = reset_code(mail);

    let confirm = |token: &str, password: &str| {
        anon.post("/api/v1/auth/password-reset/confirm", json!({ "token": token, "new_password": password }))
    };
    let wrong = confirm(&"0".repeat(64), "a brand new password").await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (400, "invalid_reset_token"));
    assert_eq!(confirm("short", "a brand new password").await.code(), "invalid_reset_token");
    assert_eq!(confirm(&code, "short").await.code(), "weak_password");
    assert_eq!(confirm(&code, "a brand new password").await.status, 204);
    assert_eq!(alice.get("/api/v1/me").await.code(), "session_expired", "sessions end with the reset");
    let login =
        |password: &str| anon.post("/api/v1/auth/login", json!({ "email": "alice@example.com", "password": password }));
    assert_eq!(login(PASSWORD).await.status, 401);
    assert_eq!(login("a brand new password").await.status, 200);
    assert_eq!(confirm(&code, "another new password").await.code(), "invalid_reset_token", "used once");

    // A link expires after an hour.
    anon.post("/api/v1/auth/password-reset", json!({ "email": "alice@example.com" })).await;
    let mails = mails_to(&app, "alice@example.com", "Reset your tubewatch password", 2).await;
    let code = mails.iter().map(|m| reset_code(m)).find(|c| *c != code).unwrap();
    app.clock.advance(Duration::minutes(61));
    assert_eq!(confirm(&code, "another new password").await.code(), "invalid_reset_token");
    // And an address gets at most three reset mails an hour.
    for _ in 0..3 {
        assert_eq!(anon.post("/api/v1/auth/password-reset", json!({ "email": "alice@example.com" })).await.status, 202);
    }
    let fourth = anon.post("/api/v1/auth/password-reset", json!({ "email": "alice@example.com" })).await;
    assert_eq!(fourth.status, 429);
}
