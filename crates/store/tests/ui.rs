//! UiStore conformance: dashboard visits round-trip per user; the changes, outliers and outlier
//! weeks a user sees are exactly those of the videos and channels they track, filtered by time.
//! On SQLite always, on PostgreSQL when `TUBEWATCH_TEST_POSTGRES_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::*;
use tubewatch_core::{ChannelId, Email, Slot, UserId, VideoId};
use tubewatch_store::*;

conformance!(dashboard_visits_are_kept_per_user, users_see_their_changes_and_outliers_since_a_time);

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

async fn dashboard_visits_are_kept_per_user(store: Arc<dyn Store>) {
    let ada = user(&*store, "ada").await;
    let bob = user(&*store, "bob").await;
    assert_eq!(store.dashboard_visit(ada).await.unwrap(), None);
    let first = DashboardVisit { seen_at: t("2026-03-02T10:00:00Z"), since: t("2026-03-02T10:00:00Z") };
    store.set_dashboard_visit(ada, &first).await.unwrap();
    assert_eq!(store.dashboard_visit(ada).await.unwrap(), Some(first));
    let next = DashboardVisit { seen_at: t("2026-03-03T09:30:00Z"), since: first.seen_at };
    store.set_dashboard_visit(ada, &next).await.unwrap();
    assert_eq!(store.dashboard_visit(ada).await.unwrap(), Some(next));
    assert_eq!(store.dashboard_visit(bob).await.unwrap(), None);
}

fn change(video: &VideoId, slot: &str, detected: DateTime<Utc>) -> NewChange {
    NewChange {
        video_id: video.clone(),
        kind: ChangeKind::Title,
        slot: Slot::hour_of(t(slot)),
        detected_at: detected,
        before_title: Some("Before".into()),
        after_title: Some("After".into()),
        before_thumb_key: None,
        after_thumb_key: None,
    }
}

fn outlier(video: &VideoId, channel: &ChannelId, week: &str, found_at: DateTime<Utc>) -> NewOutlier {
    NewOutlier {
        video_id: video.clone(),
        channel_id: channel.clone(),
        kind: OutlierKind::Channel,
        week: week.into(),
        score: 4.0,
        lift: None,
        ci_low: None,
        ci_high: None,
        age_hours: Some(72.0),
        views: 12_345,
        changed_at: None,
        thumb_key: None,
        explanation: "4.0× this channel's typical views at 3 days".into(),
        found_at,
    }
}

async fn users_see_their_changes_and_outliers_since_a_time(store: Arc<dyn Store>) {
    let now = t("2026-03-16T02:00:00Z");
    let (a, b) = (with_channel(&*store, 1).await, with_channel(&*store, 2).await);
    for (n, ch) in [(1, &a), (2, &b), (3, &b)] {
        store.insert_video(&new_video(n, ch, t("2026-03-02T00:00:00Z")), now).await.unwrap();
    }
    let ada = user(&*store, "ada").await;
    let bob = user(&*store, "bob").await;
    // Ada monitors channel a and tracks video 2 of channel b; Bob monitors channel b.
    store.add_user_channel(ada, &a, now).await.unwrap();
    store.add_user_video(ada, &video_id(2), now).await.unwrap();
    store.add_user_channel(bob, &b, now).await.unwrap();

    let day = |d: u32| t(&format!("2026-03-{d:02}T12:00:00Z"));
    for (n, d) in [(1, 3), (1, 10), (2, 11), (3, 12)] {
        store.record_change(&change(&video_id(n), &format!("2026-03-{d:02}T11:00:00Z"), day(d))).await.unwrap();
    }
    let videos = |list: Vec<VisibleChange>| {
        list.into_iter().map(|c| (c.event.change.video_id, c.video_title)).collect::<Vec<_>>()
    };
    assert_eq!(
        videos(store.user_changes_since(ada, day(5), 10).await.unwrap()),
        vec![(video_id(2), "Video 2".to_owned()), (video_id(1), "Video 1".to_owned())],
        "newest first, only after the time, only what Ada sees"
    );
    assert_eq!(store.user_changes_since(ada, day(1), 10).await.unwrap().len(), 3);
    assert_eq!(store.user_changes_since(ada, day(1), 1).await.unwrap().len(), 1, "the limit holds");
    assert_eq!(videos(store.user_changes_since(bob, day(1), 10).await.unwrap()).len(), 2);
    assert!(store.user_changes_since(bob, day(12), 10).await.unwrap().is_empty(), "strictly after");

    for (ch, videos, week, found) in [
        (&a, &[1][..], "2026-W10", t("2026-03-09T02:00:00Z")),
        (&b, &[2, 3][..], "2026-W11", t("2026-03-16T02:00:00Z")),
    ] {
        store.ensure_target(TargetKind::Outliers, ch.as_str(), found, found).await.unwrap();
        let claimed = store.claim_due("w", found, Duration::minutes(5), 10).await.unwrap();
        let lease = claimed.into_iter().find(|t| t.subject == ch.as_str()).unwrap().lease().unwrap();
        let snapshot = BandSnapshotRecord {
            channel_id: ch.clone(),
            snapshot_json: "{}".into(),
            applied_through: found,
            updated_at: found,
        };
        let found_list: Vec<NewOutlier> = videos.iter().map(|&n| outlier(&video_id(n), ch, week, found)).collect();
        store.complete_outlier_run(&lease, &snapshot, &found_list, found + Duration::weeks(1)).await.unwrap();
    }
    let ids = |list: Vec<Outlier>| list.into_iter().map(|o| o.outlier.video_id).collect::<Vec<_>>();
    assert_eq!(ids(store.user_outliers_since(ada, day(1), 10).await.unwrap()), vec![video_id(2), video_id(1)]);
    assert_eq!(ids(store.user_outliers_since(ada, day(10), 10).await.unwrap()), vec![video_id(2)]);
    assert_eq!(store.user_outliers_since(bob, day(1), 10).await.unwrap().len(), 2);
    assert_eq!(store.user_outlier_weeks(ada, 10).await.unwrap(), vec!["2026-W11".to_owned(), "2026-W10".to_owned()]);
    assert_eq!(store.user_outlier_weeks(ada, 1).await.unwrap(), vec!["2026-W11".to_owned()]);
    assert_eq!(store.user_outlier_weeks(bob, 10).await.unwrap(), vec!["2026-W11".to_owned()]);
    let eve = user(&*store, "eve").await;
    assert!(store.user_outlier_weeks(eve, 10).await.unwrap().is_empty());
    assert!(store.user_outliers_since(eve, day(1), 10).await.unwrap().is_empty());
}
