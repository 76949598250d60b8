//! Weekly outliers and digests end to end through the leased queue: three channels, two users
//! monitoring overlapping channels (and one individually tracked video), a week's outlier runs,
//! then ONE digest per user listing exactly their outliers — read back from a real SMTP server
//! started here (a small sink speaking SMTP over TCP) and from the outbox. Re-running the week
//! (outlier runs and digests) adds nothing and sends nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tubewatch_core::{ChannelId, Clock, Email, ManualClock, Slot, UserId, VideoId};
use tubewatch_store::{
    ChangeKind, NewChange, NewChannel, NewUser, NewVideo, OutlierKind, Plan, ReachReport, Store, StoreOptions,
    TargetKind, ThumbState, VideoCheck, ViewsRecord, connect,
};
use tubewatch_worker::{Blobs, Mailer, Metrics, Pipeline, PipelineConfig, SmtpConfig, SmtpServer, SmtpTls};
use tubewatch_youtube::{YoutubeClient, YoutubeConfig};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The Monday 02:00 UTC run of week 2026-W10.
fn run_time() -> DateTime<Utc> {
    t("2026-03-09T02:00:00Z")
}

fn channel(n: u32) -> ChannelId {
    ChannelId::parse(&format!("UC{n:022}")).unwrap()
}

fn video(c: u32, i: u32) -> VideoId {
    VideoId::parse(&format!("v{c:03}x{i:06}")).unwrap()
}

/// A small SMTP server: accepts every message and keeps its DATA.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read);
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut line = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let command = line.trim_end().to_ascii_uppercase();
                    let reply: &[u8] = if command.starts_with("EHLO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if command == "DATA" {
                        write.write_all(b"354 go on\r\n").await.unwrap();
                        let mut data = String::new();
                        loop {
                            line.clear();
                            lines.read_line(&mut line).await.unwrap();
                            if line == ".\r\n" {
                                break;
                            }
                            data.push_str(&line);
                        }
                        sink.lock().unwrap().push(data);
                        b"250 queued\r\n"
                    } else if command == "QUIT" {
                        write.write_all(b"221 bye\r\n").await.unwrap();
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, got)
}

/// The readable text of a MIME message: every base64 part decoded, quoted-printable soft breaks
/// joined and `=3D` read as `=` (enough to find ids, links and sentences).
fn readable(message: &str) -> String {
    let mut out = message.replace("=\r\n", "").replace("=3D", "=");
    for part in message.split("Content-Transfer-Encoding: base64\r\n").skip(1) {
        let body: String =
            part.split("\r\n\r\n").nth(1).unwrap_or("").lines().take_while(|l| !l.starts_with("--")).collect();
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(body.trim()) {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    out
}

/// Deterministic hourly noise in [0.8, 1.25].
fn noise(seed: u64, hour: i64) -> f64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (hour as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    0.8 * (1.25f64 / 0.8).powf((x % 10_000) as f64 / 10_000.0)
}

struct World {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    blobs: Blobs,
    ada: UserId,
    bob: UserId,
    _dir: tempfile::TempDir,
}

/// Channel c has 14 videos, one every 2 days; video 2 of every channel is a breakout (×8, judged
/// at 4 days), and video 3 of channel 3 doubled its view rate after a thumbnail change at 60 h.
async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        connect(&format!("sqlite://{}/tw.db", dir.path().display()), &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let blobs = Blobs::local(&dir.path().join("blobs")).unwrap();
    let run = run_time();
    let setup = run - Duration::days(40);
    for c in 1..=3 {
        let ch = channel(c);
        store
            .upsert_channel(&NewChannel { id: ch.clone(), title: format!("Channel {c}"), handle: None }, setup)
            .await
            .unwrap();
        store.ensure_target(TargetKind::Outliers, ch.as_str(), run, setup).await.unwrap();
        for i in 0..14u32 {
            let id = video(c, i);
            let published =
                if i == 2 { run - Duration::hours(96) } else { run - Duration::hours(30 + 48 * i64::from(i)) };
            store
                .insert_video(
                    &NewVideo {
                        id: id.clone(),
                        channel_id: ch.clone(),
                        published_at: published,
                        is_short: false,
                        title: format!("Video {c}-{i}"),
                    },
                    setup,
                )
                .await
                .unwrap();
            let key = format!("thumbnails/{id}/first/default.jpg");
            blobs.put(&key, format!("jpeg-of-{id}").into_bytes()).await.unwrap();
            let total = 10_000.0 * (0.85 + 0.3 * f64::from(i % 5) / 4.0) * if i == 2 { 8.0 } else { 1.0 };
            let change_at = (c == 3 && i == 3).then(|| published + Duration::hours(60) + Duration::minutes(17));
            let mut views = 0.0;
            let mut first = true;
            let mut h = 1;
            while published + Duration::hours(h) <= run && h <= 24 * 30 {
                let at = published + Duration::hours(h);
                let rate = (-(h as f64 - 0.5) / 40.0).exp() / 40.0;
                let diurnal = 1.0 + 0.4 * (std::f64::consts::TAU * f64::from(chrono::Timelike::hour(&at)) / 24.0).cos();
                let lift = if change_at.is_some_and(|c| at > c) { 2.0 } else { 1.0 };
                views += total * rate * diurnal * noise(u64::from(c * 100 + i), h) * lift;
                let on_schedule = h <= 24 * 7 || h % 24 == 0;
                if on_schedule {
                    let slot = Slot::hour_of(at);
                    let record = ViewsRecord {
                        video_id: id.clone(),
                        slot,
                        measured_at: at + Duration::seconds(30),
                        views: views as i64,
                    };
                    let mut changes = Vec::new();
                    if let Some(change) = change_at
                        && at > change
                        && at - Duration::hours(1) <= change
                    {
                        let after = format!("thumbnails/{id}/second/default.jpg");
                        blobs.put(&after, b"jpeg-of-the-new-thumbnail".to_vec()).await.unwrap();
                        changes.push(NewChange {
                            video_id: id.clone(),
                            kind: ChangeKind::Thumbnail,
                            slot,
                            detected_at: at + Duration::seconds(30),
                            before_title: None,
                            after_title: None,
                            before_thumb_key: Some(key.clone()),
                            after_thumb_key: Some(after),
                        });
                    }
                    if first {
                        // The first measurement sets the archived thumbnail, as a video check does.
                        first = false;
                        store.ensure_target(TargetKind::Video, id.as_str(), at, setup).await.unwrap();
                        let claimed = store.claim_due("setup", at, Duration::minutes(5), 10).await.unwrap();
                        let lease = claimed.iter().find(|t| t.subject == id.as_str()).unwrap().lease().unwrap();
                        let thumb =
                            ThumbState { sha256: "first".into(), phash: "00".into(), blob_key: Some(key.clone()) };
                        let check =
                            VideoCheck { record, title: format!("Video {c}-{i}"), thumb: Some(thumb), changes: vec![] };
                        store.complete_video_check(&lease, &check, None).await.unwrap();
                    } else {
                        store.record_views(&record).await.unwrap();
                    }
                    for change in &changes {
                        store.record_change(change).await.unwrap();
                    }
                }
                h += 1;
            }
        }
    }
    let user = |name: &str| NewUser {
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        plan: Plan::Free,
        is_admin: false,
        email_verified: true,
    };
    let ada = store.create_user(&user("ada"), setup).await.unwrap().id;
    let bob = store.create_user(&user("bob"), setup).await.unwrap().id;
    // Ada: channels 1 and 2. Bob: channels 2 and 3, and video 2 of channel 1 on its own.
    store.add_user_channel(ada, &channel(1), setup).await.unwrap();
    store.add_user_channel(ada, &channel(2), setup).await.unwrap();
    store.add_user_channel(bob, &channel(2), setup).await.unwrap();
    store.add_user_channel(bob, &channel(3), setup).await.unwrap();
    store.add_user_video(bob, &video(1, 2), setup).await.unwrap();
    let clock = Arc::new(ManualClock::new(run - Duration::minutes(1)));
    World { store, clock, blobs, ada, bob, _dir: dir }
}

fn pipeline(w: &World, mailer: Mailer) -> Pipeline {
    let clock: Arc<dyn Clock> = w.clock.clone();
    Pipeline {
        store: w.store.clone(),
        // No job here reads YouTube.
        youtube: YoutubeClient::new(YoutubeConfig::single_base("http://127.0.0.1:9").unwrap()).unwrap(),
        blobs: w.blobs.clone(),
        clock,
        metrics: Arc::new(Metrics::default()),
        writer: Default::default(),
        config: PipelineConfig { mailer, ..PipelineConfig::default() },
    }
}

/// Video ids named in a digest's text, in the order listed.
fn listed(text: &str) -> BTreeSet<String> {
    text.split("watch?v=").skip(1).map(|s| s.chars().take(11).collect()).collect()
}

async fn run_week(w: &World, p: &Pipeline) {
    // The outlier runs, then (3 h later) the digests.
    w.clock.set(run_time());
    p.drain("test", StdDuration::from_secs(60), 4).await.unwrap();
    w.clock.set(run_time() + Duration::hours(3));
    p.drain("test", StdDuration::from_secs(60), 4).await.unwrap();
}

/// Sets every outlier and digest target back to this week, as a retry after a lost lease would.
async fn rerun_week(w: &World, p: &Pipeline) {
    w.clock.set(run_time() + Duration::weeks(1) + Duration::hours(3));
    let claimed = w.store.claim_due("rerun", w.clock.now(), Duration::minutes(5), 100).await.unwrap();
    for target in claimed {
        let back = match target.kind {
            TargetKind::Outliers => run_time(),
            TargetKind::Digest => run_time() + Duration::hours(3),
            _ => continue,
        };
        w.store.fail(&target.lease().unwrap(), "simulated crash", w.clock.now(), Some(back)).await.unwrap();
    }
    w.clock.set(run_time() + Duration::hours(3));
    p.drain("test", StdDuration::from_secs(60), 4).await.unwrap();
}

fn expected() -> (BTreeSet<String>, BTreeSet<String>) {
    let ada = [video(1, 2), video(2, 2)].iter().map(ToString::to_string).collect();
    let bob = [video(1, 2), video(2, 2), video(3, 2), video(3, 3)].iter().map(ToString::to_string).collect();
    (ada, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_digest_per_user_over_smtp_with_exactly_their_outliers() {
    let w = world().await;
    let (port, got) = smtp_sink().await;
    let smtp = SmtpConfig {
        server: SmtpServer::Host { host: "127.0.0.1".into(), port, tls: SmtpTls::None },
        username: None,
        password: None,
    };
    let mailer = Mailer::new(&tubewatch_worker::MailConfig {
        from: "tubewatch <digest@tubewatch.test>".into(),
        smtp: Some(smtp),
        outbox_dir: w._dir.path().join("unused-outbox"),
    })
    .unwrap();
    let p = pipeline(&w, mailer);
    run_week(&w, &p).await;

    let found = w.store.week_outliers("2026-W10").await.unwrap();
    let kinds: BTreeSet<(String, OutlierKind)> =
        found.iter().map(|o| (o.outlier.video_id.to_string(), o.outlier.kind)).collect();
    let want: BTreeSet<(String, OutlierKind)> = [
        (video(1, 2), OutlierKind::Channel),
        (video(2, 2), OutlierKind::Channel),
        (video(3, 2), OutlierKind::Channel),
        (video(3, 3), OutlierKind::Thumbnail),
    ]
    .into_iter()
    .map(|(v, k)| (v.to_string(), k))
    .collect();
    assert_eq!(kinds, want, "{found:#?}");
    let thumb = found.iter().find(|o| o.outlier.kind == OutlierKind::Thumbnail).unwrap();
    assert!(thumb.outlier.lift.unwrap() > 0.5, "{thumb:?}");
    assert_eq!(
        thumb.outlier.thumb_key.as_deref(),
        Some(format!("thumbnails/{}/second/default.jpg", video(3, 3)).as_str())
    );

    let messages = got.lock().unwrap().clone();
    assert_eq!(messages.len(), 2, "one digest per user");
    let (ada, bob) = expected();
    for message in &messages {
        let text = readable(message);
        assert!(text.contains("List-Unsubscribe: <") && text.contains("Unsubscribe"), "{text}");
        assert!(text.contains("multipart/alternative") && text.contains("image/jpeg"), "{text}");
        // Every listed outlier appears in both the plain text and the HTML part.
        let ids = listed(&text);
        if text.contains("To: ada@example.com") {
            assert_eq!(ids, ada, "{text}");
            assert!(text.contains("this channel's typical views at 4 days"), "{text}");
        } else {
            assert!(text.contains("To: bob@example.com"), "{text}");
            assert_eq!(ids, bob, "{text}");
            assert!(text.contains("after the thumbnail change"), "{text}");
        }
    }
    assert!(w.store.digest_sent(w.ada, "2026-W10").await.unwrap().is_some());
    assert_eq!(w.store.digest_sent(w.bob, "2026-W10").await.unwrap().unwrap().outliers, 4);

    // Re-running the week finds the same outliers and sends nothing more.
    rerun_week(&w, &p).await;
    assert_eq!(w.store.week_outliers("2026-W10").await.unwrap().len(), found.len());
    assert_eq!(got.lock().unwrap().len(), 2, "a retried digest never sends twice");
}

/// Where the owner's reach report has the video's days, the thumbnail outlier is judged with them
/// too: its explanation says what the click-through rate did around the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_reach_joins_the_views_on_a_changed_thumbnail() {
    let w = world().await;
    let changed = video(3, 3);
    let published = run_time() - Duration::hours(30 + 48 * 3);
    let change_at = published + Duration::hours(60);
    w.store.set_reach_job(&channel(3), "job-3", published, published).await.unwrap();
    let first = tubewatch_core::pacific::day(published.timestamp());
    let last = tubewatch_core::pacific::day(run_time().timestamp());
    for day in first..last {
        let at = |d: i64| DateTime::from_timestamp(tubewatch_core::pacific::midnight(d), 0).unwrap();
        let (day_start, day_end) = (at(day), at(day + 1));
        // 4 % before the change, 7 % on the days after it (the day of the change in between).
        let ctr = if day_end <= change_at { 0.04 } else { 0.07 } * (1.0 + 0.02 * ((day % 3) as f64 - 1.0));
        let report = ReachReport {
            channel_id: channel(3),
            date: day_start.date_naive(),
            day_start,
            day_end,
            rows: vec![(changed.clone(), 20_000, ctr)],
        };
        w.store.record_reach_report(&report, None, run_time()).await.unwrap();
    }
    let p = pipeline(&w, Mailer::outbox("digest@tubewatch.test", &w._dir.path().join("outbox")).unwrap());
    run_week(&w, &p).await;
    let found = w.store.week_outliers("2026-W10").await.unwrap();
    let thumb = found.iter().find(|o| o.outlier.kind == OutlierKind::Thumbnail).expect("the thumbnail outlier");
    assert_eq!(thumb.outlier.video_id, changed);
    let explanation = &thumb.outlier.explanation;
    assert!(explanation.contains("with the owner's reach, its click-through rate was +"), "{explanation}");
    assert!(thumb.outlier.lift.unwrap() > 0.3 && thumb.outlier.ci_low.unwrap() > 0.0, "{thumb:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_land_in_the_outbox_without_smtp() {
    let w = world().await;
    let outbox = w._dir.path().join("outbox");
    let p = pipeline(&w, Mailer::outbox("digest@tubewatch.test", &outbox).unwrap());
    run_week(&w, &p).await;
    let mut files: Vec<String> =
        std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(
        files,
        vec![format!("digest-{}-2026-W10.eml", w.ada.get()), format!("digest-{}-2026-W10.eml", w.bob.get())]
    );
    let (ada, bob) = expected();
    let read = |user: UserId| {
        readable(&std::fs::read_to_string(outbox.join(format!("digest-{}-2026-W10.eml", user.get()))).unwrap())
    };
    assert_eq!(listed(&read(w.ada)), ada);
    assert_eq!(listed(&read(w.bob)), bob);
    // The thumbnail of each outlier is embedded.
    assert!(read(w.bob).contains(&format!("Content-ID: <thumb-0-{}>", video(1, 2))));
    rerun_week(&w, &p).await;
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 2);

    // Each digest's unsubscribe link carries a token that turns off its reader's digest only.
    let ada_mail = read(w.ada);
    assert!(ada_mail.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{ada_mail}");
    let token: String =
        ada_mail.split("/unsubscribe/digest?token=").nth(1).expect("unsubscribe link").chars().take(64).collect();
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
    let hash = tubewatch_youtube::sha256_hex(token.as_bytes());
    assert_eq!(w.store.unsubscribe_by_token(&hash).await.unwrap(), Some(w.ada));
    assert_eq!(w.store.digest_enabled(w.ada).await.unwrap(), Some(false));
    assert_eq!(w.store.digest_enabled(w.bob).await.unwrap(), Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsubscribed_user_gets_no_digest() {
    let w = world().await;
    let outbox = w._dir.path().join("outbox");
    let p = pipeline(&w, Mailer::outbox("digest@tubewatch.test", &outbox).unwrap());
    assert!(w.store.set_digest_enabled(w.ada, false).await.unwrap());
    run_week(&w, &p).await;
    let files: Vec<String> =
        std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(files, vec![format!("digest-{}-2026-W10.eml", w.bob.get())]);
    assert!(w.store.digest_sent(w.ada, "2026-W10").await.unwrap().is_none());
}

/// One request a webhook receiver got.
#[derive(Debug, Clone)]
struct Received {
    signature: String,
    delivery: String,
    body: Vec<u8>,
}

/// A webhook receiver on loopback (a real HTTP server): keeps every request and answers the
/// statuses of `script` in turn, then `then`.
async fn receiver(script: Vec<u16>, then: u16) -> (u16, Arc<Mutex<Vec<Received>>>) {
    use axum::http::{HeaderMap, StatusCode};
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let script = Arc::new(Mutex::new(script.into_iter()));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (sink, script) = (sink.clone(), script.clone());
            async move {
                let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                sink.lock().unwrap().push(Received {
                    signature: header("tubewatch-signature"),
                    delivery: header("tubewatch-delivery"),
                    body: body.to_vec(),
                });
                let status = script.lock().unwrap().next().unwrap_or(then);
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, got)
}

fn webhooks(port: u16) -> tubewatch_worker::Webhooks {
    let keyring =
        tubewatch_worker::token_crypto::TokenKeyring::from_hex("k1", &[("k1".into(), "5a".repeat(32))]).unwrap();
    tubewatch_worker::Webhooks::new(&[format!("127.0.0.1:{port}")], keyring, StdDuration::from_secs(5)).unwrap()
}

/// Sets a user's webhook as the API does; returns its secret.
async fn set_webhook(w: &World, hooks: &tubewatch_worker::Webhooks, user: UserId, url: &str) -> String {
    let secret = tubewatch_worker::Webhooks::new_secret();
    let hook = tubewatch_store::UserWebhook {
        user_id: user,
        url: url.to_owned(),
        secret: hooks.seal_secret(user, &secret).unwrap(),
        created_at: w.clock.now(),
    };
    w.store.set_webhook(&hook).await.unwrap();
    secret
}

/// Checks a request's signature the way a receiver would.
fn signed_by(r: &Received, secret: &str) -> bool {
    let t: i64 = r.signature.strip_prefix("t=").and_then(|s| s.split(',').next()).unwrap().parse().unwrap();
    r.signature == tubewatch_worker::webhook::signature(secret, t, &r.body)
}

fn outbox_files(outbox: &std::path::Path) -> usize {
    std::fs::read_dir(outbox).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_gets_the_users_outliers_signed_and_is_retried_until_delivered() {
    let w = world().await;
    let (port, got) = receiver(vec![500], 204).await;
    let hooks = webhooks(port);
    let secret = set_webhook(&w, &hooks, w.ada, &format!("http://127.0.0.1:{port}/hook")).await;
    // Bob's URL was on a host the operator has since withdrawn: never requested, and recorded.
    set_webhook(&w, &hooks, w.bob, "http://127.0.0.1:1/hook").await;
    let outbox = w._dir.path().join("outbox");
    let mut p = pipeline(&w, Mailer::outbox("digest@tubewatch.test", &outbox).unwrap());
    p.config.webhooks = Some(hooks);
    run_week(&w, &p).await;

    // The receiver failed the first attempt; the digests went out all the same.
    assert_eq!(got.lock().unwrap().len(), 1);
    assert_eq!(outbox_files(&outbox), 2);
    let first = w.store.webhook_delivery(w.ada, "2026-W10").await.unwrap().unwrap();
    assert_eq!((first.attempts, first.status_code, first.delivered_at), (1, Some(500), None));
    assert!(first.error.as_deref().unwrap().contains("500"), "{first:?}");
    let bob = w.store.webhook_delivery(w.bob, "2026-W10").await.unwrap().unwrap();
    assert!(bob.error.as_deref().unwrap().contains("is not a webhook host this service allows"), "{bob:?}");

    // Five minutes later the retry is delivered, and the mail is not sent again.
    w.clock.set(run_time() + Duration::hours(3) + Duration::minutes(5));
    p.drain("test", StdDuration::from_secs(60), 4).await.unwrap();
    let requests = got.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(outbox_files(&outbox), 2);
    let delivered = w.store.webhook_delivery(w.ada, "2026-W10").await.unwrap().unwrap();
    assert_eq!((delivered.attempts, delivered.status_code, delivered.error), (2, Some(204), None));
    assert!(delivered.delivered_at.is_some());
    for r in &requests {
        assert!(signed_by(r, &secret), "{r:?}");
        assert!(!signed_by(r, &tubewatch_worker::Webhooks::new_secret()));
        assert_eq!(r.delivery, format!("digest-{}-2026-W10", w.ada.get()), "the same id on every attempt");
    }
    let payload: serde_json::Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!((payload["event"].as_str(), payload["week"].as_str()), (Some("outliers.weekly"), Some("2026-W10")));
    let ids: BTreeSet<String> =
        payload["outliers"].as_array().unwrap().iter().map(|o| o["video_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, expected().0, "exactly Ada's outliers");
    let metrics = p.metrics.render();
    assert!(metrics.contains("tubewatch_webhook_attempts_total{outcome=\"delivered\"} 1"), "{metrics}");
    assert!(
        metrics.contains("tubewatch_webhook_attempts_total{outcome=\"failed\"} 3"),
        "Ada's first, Bob's two: {metrics}"
    );
    let first = &payload["outliers"][0];
    assert!(first["explanation"].as_str().unwrap().contains("typical views"), "{first}");
    assert!(first.get("thumb_key").is_none(), "nothing internal");

    // Re-running the week delivers nothing again.
    rerun_week(&w, &p).await;
    assert_eq!(got.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_keeps_failing_is_given_up_after_six_attempts() {
    let w = world().await;
    let (port, got) = receiver(Vec::new(), 503).await;
    let hooks = webhooks(port);
    set_webhook(&w, &hooks, w.ada, &format!("http://127.0.0.1:{port}/hook")).await;
    let mut p = pipeline(&w, Mailer::outbox("digest@tubewatch.test", &w._dir.path().join("outbox")).unwrap());
    p.config.webhooks = Some(hooks);
    run_week(&w, &p).await;
    for hour in 1..=8 {
        w.clock.set(run_time() + Duration::hours(3 + hour));
        p.drain("test", StdDuration::from_secs(60), 4).await.unwrap();
    }
    assert_eq!(got.lock().unwrap().len(), 6);
    let d = w.store.webhook_delivery(w.ada, "2026-W10").await.unwrap().unwrap();
    assert_eq!((d.attempts, d.status_code, d.delivered_at), (6, Some(503), None));
    // The digest target went back to its weekly rhythm.
    let target = w.store.target(TargetKind::Digest, &w.ada.get().to_string()).await.unwrap().unwrap();
    assert!(target.next_due_at > run_time() + Duration::days(6), "{target:?}");
}
