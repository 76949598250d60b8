//! OutlierStore conformance: band snapshots, idempotent outlier results, a user's weekly
//! outliers through the mapping tables, digests recorded once, webhooks and their deliveries. On SQLite always, on PostgreSQL
//! when `TUBEWATCH_TEST_POSTGRES_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::*;
use tubewatch_core::{ChannelId, Email, Slot, UserId, VideoId};
use tubewatch_store::*;

conformance!(
    series_and_snapshots_round_trip,
    outlier_runs_are_idempotent_and_lease_bound,
    users_see_their_outliers_once,
    digest_settings_and_unsubscribe_tokens,
    webhooks_and_their_deliveries
);

fn outlier(video: &VideoId, channel: &ChannelId, kind: OutlierKind, week: &str, score: f64) -> NewOutlier {
    NewOutlier {
        video_id: video.clone(),
        channel_id: channel.clone(),
        kind,
        week: week.into(),
        score,
        lift: (kind != OutlierKind::Channel).then_some(score - 1.0),
        ci_low: (kind != OutlierKind::Channel).then_some(0.3),
        ci_high: (kind != OutlierKind::Channel).then_some(1.1),
        age_hours: (kind == OutlierKind::Channel).then_some(72.0),
        views: 12_345,
        changed_at: (kind != OutlierKind::Channel).then(|| t("2026-03-03T10:17:00Z")),
        thumb_key: Some(format!("thumbnails/{video}/abc/default.jpg")),
        explanation: format!("{score:.1}× this channel's typical views at 3 days"),
        found_at: t("2026-03-09T02:00:00Z"),
    }
}

async fn leased(store: &dyn Store, kind: TargetKind, subject: &str, now: DateTime<Utc>) -> Lease {
    store.ensure_target(kind, subject, now, now).await.unwrap();
    let claimed = store.claim_due("w", now, Duration::minutes(5), 10).await.unwrap();
    let target = claimed.into_iter().find(|t| t.kind == kind && t.subject == subject).expect("claimed");
    target.lease().unwrap()
}

async fn user(store: &dyn Store, name: &str) -> UserId {
    let user = NewUser {
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        plan: Plan::Free,
        is_admin: false,
        email_verified: true,
    };
    store.create_user(&user, t("2026-03-01T00:00:00Z")).await.unwrap().id
}

async fn series_and_snapshots_round_trip(store: Arc<dyn Store>) {
    let now = t("2026-03-09T02:00:00Z");
    let ch = with_channel(&*store, 1).await;
    let other = with_channel(&*store, 2).await;
    for (n, c, published) in
        [(1, &ch, "2026-02-01T00:00:00Z"), (2, &ch, "2026-03-01T00:00:00Z"), (3, &other, "2026-03-02T00:00:00Z")]
    {
        store.insert_video(&new_video(n, c, t(published)), now).await.unwrap();
    }
    let published = t("2026-03-01T00:00:00Z");
    for h in 1..=3 {
        let slot = Slot::hour_of(published + Duration::hours(h));
        let record = ViewsRecord {
            video_id: video_id(2),
            slot,
            measured_at: slot.start() + Duration::seconds(30),
            views: h * 10,
        };
        store.record_views(&record).await.unwrap();
    }
    store
        .record_change(&NewChange {
            video_id: video_id(2),
            kind: ChangeKind::Thumbnail,
            slot: Slot::hour_of(published + Duration::hours(2)),
            detected_at: published + Duration::hours(2),
            before_title: None,
            after_title: None,
            before_thumb_key: Some("a".into()),
            after_thumb_key: Some("b".into()),
        })
        .await
        .unwrap();
    let series = store.channel_series(&ch, t("2026-01-01T00:00:00Z")).await.unwrap();
    let ids: Vec<_> = series.iter().map(|s| s.video.id.clone()).collect();
    assert_eq!(ids, vec![video_id(2), video_id(1)], "newest first, this channel only");
    assert_eq!(series[0].views.iter().map(|r| r.views).collect::<Vec<_>>(), vec![10, 20, 30]);
    assert_eq!(series[0].changes.len(), 1);
    assert!(series[1].views.is_empty() && series[1].changes.is_empty());
    let recent = store.channel_series(&ch, t("2026-02-15T00:00:00Z")).await.unwrap();
    assert_eq!(recent.len(), 1, "published_since bounds the videos");

    assert_eq!(store.band_snapshot(&ch).await.unwrap(), None);
    let snapshot = BandSnapshotRecord {
        channel_id: ch.clone(),
        snapshot_json: r#"{"config":{},"long":[],"shorts":[]}"#.into(),
        applied_through: now,
        updated_at: now,
    };
    let lease = leased(&*store, TargetKind::Outliers, ch.as_str(), now).await;
    store.complete_outlier_run(&lease, &snapshot, &[], now + Duration::weeks(1)).await.unwrap();
    assert_eq!(store.band_snapshot(&ch).await.unwrap(), Some(snapshot.clone()));
    // The next week's snapshot replaces it.
    let later = now + Duration::weeks(1);
    let lease = leased(&*store, TargetKind::Outliers, ch.as_str(), later).await;
    let next = BandSnapshotRecord { snapshot_json: "{}".into(), applied_through: later, updated_at: later, ..snapshot };
    store.complete_outlier_run(&lease, &next, &[], later + Duration::weeks(1)).await.unwrap();
    assert_eq!(store.band_snapshot(&ch).await.unwrap(), Some(next));
    assert_eq!(store.band_snapshot(&other).await.unwrap(), None);
}

async fn outlier_runs_are_idempotent_and_lease_bound(store: Arc<dyn Store>) {
    let now = t("2026-03-09T02:00:00Z");
    let ch = with_channel(&*store, 1).await;
    for n in 1..=2 {
        store.insert_video(&new_video(n, &ch, t("2026-03-02T00:00:00Z")), now).await.unwrap();
    }
    let snapshot = BandSnapshotRecord {
        channel_id: ch.clone(),
        snapshot_json: "{}".into(),
        applied_through: now,
        updated_at: now,
    };
    let found = vec![
        outlier(&video_id(1), &ch, OutlierKind::Channel, "2026-W10", 4.2),
        outlier(&video_id(2), &ch, OutlierKind::Thumbnail, "2026-W10", 1.6),
        outlier(&video_id(2), &ch, OutlierKind::Title, "2026-W10", 1.4),
    ];
    let lease = leased(&*store, TargetKind::Outliers, ch.as_str(), now).await;
    let next = now + Duration::weeks(1);
    assert_eq!(store.complete_outlier_run(&lease, &snapshot, &found, next).await.unwrap(), 3);
    let target = store.target(TargetKind::Outliers, ch.as_str()).await.unwrap().unwrap();
    assert_eq!((target.next_due_at, target.lease_owner), (next, None));
    // The old lease is refused and writes nothing.
    let extra = outlier(&video_id(1), &ch, OutlierKind::Thumbnail, "2026-W10", 2.0);
    let err = store.complete_outlier_run(&lease, &snapshot, &[extra], next).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost(_)), "{err}");
    // Re-running the week (same findings, one of them with another figure) adds nothing and
    // keeps the first figures.
    let lease = leased(&*store, TargetKind::Outliers, ch.as_str(), next).await;
    let mut again = found.clone();
    again[0].score = 9.9;
    assert_eq!(store.complete_outlier_run(&lease, &snapshot, &again, next + Duration::weeks(1)).await.unwrap(), 0);
    let stored = store.week_outliers("2026-W10").await.unwrap();
    assert_eq!(stored.len(), 3);
    let back: Vec<NewOutlier> = stored.iter().map(|o| o.outlier.clone()).collect();
    assert_eq!(back, found, "stored exactly as given, ordered by channel, kind, video");
    assert_eq!(stored[0].video_title, "Video 1");
    assert!(store.week_outliers("2026-W11").await.unwrap().is_empty());
}

async fn users_see_their_outliers_once(store: Arc<dyn Store>) {
    let now = t("2026-03-09T02:00:00Z");
    let (a, b, c) = (with_channel(&*store, 1).await, with_channel(&*store, 2).await, with_channel(&*store, 3).await);
    for (n, ch) in [(1, &a), (2, &b), (3, &c), (4, &c)] {
        store.insert_video(&new_video(n, ch, t("2026-03-02T00:00:00Z")), now).await.unwrap();
    }
    let ada = user(&*store, "ada").await;
    let bob = user(&*store, "bob").await;
    let eve = user(&*store, "eve").await;
    // Ada: channels a and b. Bob: channel b, video 3 of channel c, and video 2 (also via b).
    store.add_user_channel(ada, &a, now).await.unwrap();
    store.add_user_channel(ada, &b, now).await.unwrap();
    store.add_user_channel(bob, &b, now).await.unwrap();
    store.add_user_video(bob, &video_id(3), now).await.unwrap();
    store.add_user_video(bob, &video_id(2), now).await.unwrap();
    let week = "2026-W10";
    for (videos, ch) in [(&[1][..], &a), (&[2][..], &b), (&[3, 4][..], &c)] {
        let lease = leased(&*store, TargetKind::Outliers, ch.as_str(), now).await;
        let snapshot = BandSnapshotRecord {
            channel_id: ch.clone(),
            snapshot_json: "{}".into(),
            applied_through: now,
            updated_at: now,
        };
        let found: Vec<NewOutlier> =
            videos.iter().map(|&n| outlier(&video_id(n), ch, OutlierKind::Channel, week, 3.0 + f64::from(n))).collect();
        store.complete_outlier_run(&lease, &snapshot, &found, now + Duration::weeks(1)).await.unwrap();
    }
    let seen = |list: Vec<Outlier>| list.into_iter().map(|o| o.outlier.video_id).collect::<Vec<_>>();
    assert_eq!(seen(store.user_week_outliers(ada, week).await.unwrap()), vec![video_id(1), video_id(2)]);
    assert_eq!(store.user_outlier_weeks(ada, 10).await.unwrap(), vec![week.to_owned()]);
    assert!(store.user_outlier_weeks(eve, 10).await.unwrap().is_empty());
    // Bob sees video 2 once although he reaches it two ways, and video 3 but not video 4.
    assert_eq!(seen(store.user_week_outliers(bob, week).await.unwrap()), vec![video_id(2), video_id(3)]);
    assert!(store.user_week_outliers(eve, week).await.unwrap().is_empty());
    assert!(store.user_week_outliers(ada, "2026-W09").await.unwrap().is_empty());

    assert_eq!(store.channel_watchers(&b).await.unwrap(), vec![ada, bob]);
    assert_eq!(store.channel_watchers(&c).await.unwrap(), vec![bob]);
    let mut bobs = vec![b.clone(), c.clone()];
    bobs.sort();
    assert_eq!(store.user_outlier_channels(bob).await.unwrap(), bobs);
    assert!(store.user_outlier_channels(eve).await.unwrap().is_empty());

    // A digest is recorded once per user and week.
    assert_eq!(store.digest_sent(ada, week).await.unwrap(), None);
    let sent = DigestSent { user_id: ada, week: week.into(), outliers: 2, delivery: "outbox".into(), sent_at: now };
    let lease = leased(&*store, TargetKind::Digest, &ada.get().to_string(), now).await;
    assert!(store.complete_digest(&lease, &sent, now + Duration::weeks(1)).await.unwrap());
    assert_eq!(store.digest_sent(ada, week).await.unwrap(), Some(sent.clone()));
    let lease = leased(&*store, TargetKind::Digest, &ada.get().to_string(), now + Duration::weeks(1)).await;
    let again = DigestSent { outliers: 5, ..sent.clone() };
    assert!(!store.complete_digest(&lease, &again, now + Duration::weeks(2)).await.unwrap());
    assert_eq!(store.digest_sent(ada, week).await.unwrap(), Some(sent), "the first record stays");
    let err = store.complete_digest(&lease, &again, now).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost(_)), "{err}");
}

async fn digest_settings_and_unsubscribe_tokens(store: Arc<dyn Store>) {
    let now = t("2026-03-09T05:00:00Z");
    let ada = user(&*store, "ada").await;
    let bob = user(&*store, "bob").await;
    assert_eq!(store.digest_enabled(ada).await.unwrap(), Some(true), "on for a new user");
    assert_eq!(store.digest_enabled(UserId::new(999_999)).await.unwrap(), None);
    assert!(store.set_digest_enabled(ada, false).await.unwrap());
    assert_eq!(store.digest_enabled(ada).await.unwrap(), Some(false));
    assert!(store.set_digest_enabled(ada, true).await.unwrap());
    assert!(!store.set_digest_enabled(UserId::new(999_999), false).await.unwrap());

    store.add_unsubscribe_token(bob, "hash-of-bobs-token", now).await.unwrap();
    assert_eq!(store.unsubscribe_by_token("hash-of-another-token").await.unwrap(), None);
    assert_eq!(store.digest_enabled(bob).await.unwrap(), Some(true), "an unknown token changes nothing");
    assert_eq!(store.unsubscribe_by_token("hash-of-bobs-token").await.unwrap(), Some(bob));
    assert_eq!(store.digest_enabled(bob).await.unwrap(), Some(false));
    assert_eq!(store.digest_enabled(ada).await.unwrap(), Some(true), "only the token's user");
    // The link keeps working (a second click is harmless).
    assert_eq!(store.unsubscribe_by_token("hash-of-bobs-token").await.unwrap(), Some(bob));
}

async fn webhooks_and_their_deliveries(store: Arc<dyn Store>) {
    let now = t("2026-03-09T05:00:00Z");
    let ada = user(&*store, "ada").await;
    let bob = user(&*store, "bob").await;
    assert_eq!(store.webhook(ada).await.unwrap(), None);
    let hook = UserWebhook {
        user_id: ada,
        url: "https://hooks.example.com/a".into(),
        secret: SealedToken { key_id: "k1".into(), sealed: vec![1, 2, 3, 0, 255] },
        created_at: now,
    };
    store.set_webhook(&hook).await.unwrap();
    assert_eq!(store.webhook(ada).await.unwrap(), Some(hook.clone()));
    let replaced = UserWebhook {
        url: "https://hooks.example.com/b".into(),
        secret: SealedToken { key_id: "k2".into(), sealed: vec![9; 40] },
        created_at: now + Duration::hours(1),
        ..hook
    };
    store.set_webhook(&replaced).await.unwrap();
    assert_eq!(store.webhook(ada).await.unwrap(), Some(replaced.clone()));
    assert_eq!(store.webhook(bob).await.unwrap(), None);

    let failed = WebhookDelivery {
        user_id: ada,
        week: "2026-W10".into(),
        url: replaced.url.clone(),
        outliers: 3,
        attempts: 1,
        status_code: Some(500),
        error: Some("the receiver answered 500".into()),
        last_attempt_at: now,
        delivered_at: None,
    };
    store.record_webhook_attempt(&failed).await.unwrap();
    assert_eq!(store.webhook_delivery(ada, "2026-W10").await.unwrap(), Some(failed.clone()));
    let delivered = WebhookDelivery {
        attempts: 2,
        status_code: Some(204),
        error: None,
        last_attempt_at: now + Duration::minutes(5),
        delivered_at: Some(now + Duration::minutes(5)),
        ..failed
    };
    store.record_webhook_attempt(&delivered).await.unwrap();
    let later = WebhookDelivery {
        week: "2026-W11".into(),
        attempts: 1,
        last_attempt_at: now + Duration::weeks(1),
        ..delivered.clone()
    };
    store.record_webhook_attempt(&later).await.unwrap();
    assert_eq!(store.webhook_deliveries(ada, 10).await.unwrap(), vec![later.clone(), delivered]);
    assert_eq!(store.webhook_deliveries(ada, 1).await.unwrap(), vec![later]);
    assert!(store.webhook_deliveries(bob, 10).await.unwrap().is_empty());
    assert_eq!(store.webhook_delivery(bob, "2026-W10").await.unwrap(), None);

    assert!(store.delete_webhook(ada).await.unwrap());
    assert!(!store.delete_webhook(ada).await.unwrap());
    assert_eq!(store.webhook(ada).await.unwrap(), None);
}
