//! AbTestStore conformance: YouTube connections (sealed tokens, revocation pausing tests), tests
//! with their variants and schedule, swaps with quota, hourly views, outside-change flags and the
//! result hand-off to the mailer, the owner's reach (reporting job, days, each test's reach state)
//! — the same behaviour on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use chrono::Duration;
use common::*;
use tubewatch_core::{Email, UserId};
use tubewatch_store::*;

conformance!(
    connections_are_sealed_refreshed_and_revoked,
    tests_keep_schedule_swaps_views_and_results,
    reach_reports_are_stored_once_per_day_and_read_in_order,
);

async fn user(store: &dyn Store, name: &str) -> UserId {
    let email = Email::parse(&format!("{name}@example.com")).unwrap();
    let new = NewUser {
        email,
        password_hash: "$argon2id$x".into(),
        plan: Plan::Premium,
        is_admin: false,
        email_verified: true,
    };
    store.create_user(&new, t("2026-03-01T00:00:00Z")).await.unwrap().id
}

fn sealed(key: &str, bytes: &[u8]) -> SealedToken {
    SealedToken { key_id: key.into(), sealed: bytes.to_vec() }
}

fn new_test(user: UserId, n: u32, start: chrono::DateTime<chrono::Utc>) -> NewAbTest {
    let periods = (0..4)
        .map(|i| AbTestPeriod {
            index: i,
            start: start + Duration::hours(12 * i64::from(i)),
            end: start + Duration::hours(12 * i64::from(i + 1)),
            variant: [0, 1, 1, 0][i as usize],
            swapped_at: None,
            outcome: None,
            excluded: false,
        })
        .collect();
    NewAbTest {
        user_id: user,
        video_id: video_id(n),
        video_published_at: start - Duration::days(3),
        kind: AbTestKind::Both,
        starts_at: start,
        ends_at: start + Duration::hours(48),
        rotation_minutes: 720,
        design: AbDesign::PacificDays,
        sequential: n % 2 == 1,
        final_action: FinalAction::ApplyWinner,
        original_title: Some("Original".into()),
        original_thumb_key: Some("abtests/orig.jpg".into()),
        original_thumb_phash: Some("00ff".into()),
        power_json: r#"{"min_detectable_lift":0.12}"#.into(),
        variants: vec![
            AbVariant {
                thumb_blob_key: Some("abtests/a.jpg".into()),
                thumb_phash: Some("aa".into()),
                title: Some("A".into()),
            },
            AbVariant {
                thumb_blob_key: Some("abtests/b.jpg".into()),
                thumb_phash: Some("bb".into()),
                title: Some("B".into()),
            },
        ],
        periods,
    }
}

async fn connections_are_sealed_refreshed_and_revoked(store: Arc<dyn Store>) {
    let now = t("2026-03-02T10:00:00Z");
    let ann = user(&*store, "ann").await;
    assert!(store.youtube_connection(ann).await.unwrap().is_none());
    let conn = NewYoutubeConnection {
        user_id: ann,
        channel_id: channel_id(1),
        scopes: "https://www.googleapis.com/auth/youtube.force-ssl".into(),
        refresh: sealed("k1", &[1, 2, 3, 0, 255]),
        access: Some(sealed("k1", &[9, 9])),
        access_expires_at: Some(now + Duration::hours(1)),
    };
    store.upsert_youtube_connection(&conn, now).await.unwrap();
    let got = store.youtube_connection(ann).await.unwrap().unwrap();
    assert_eq!((got.refresh.clone(), got.access.clone()), (conn.refresh.clone(), conn.access.clone()));
    assert_eq!(
        (got.state, got.connected_at, got.access_expires_at),
        (ConnectionState::Active, now, Some(now + Duration::hours(1)))
    );

    // A refresh replaces the access token; a reseal replaces the refresh token too.
    let later = now + Duration::hours(2);
    store
        .update_youtube_tokens(ann, None, Some((&sealed("k1", &[7]), later + Duration::hours(1))), later)
        .await
        .unwrap();
    let got = store.youtube_connection(ann).await.unwrap().unwrap();
    assert_eq!((got.refresh.sealed.clone(), got.access.unwrap().sealed), (vec![1, 2, 3, 0, 255], vec![7]));
    store.update_youtube_tokens(ann, Some(&sealed("k2", &[4])), None, later).await.unwrap();
    let got = store.youtube_connection(ann).await.unwrap().unwrap();
    assert_eq!((got.refresh, got.access, got.updated_at), (sealed("k2", &[4]), None, later));
    assert!(matches!(
        store.update_youtube_tokens(UserId::new(4242), None, None, later).await,
        Err(StoreError::NotFound(_))
    ));

    // Revocation pauses running tests only, and says why.
    let running = store.create_abtest(&new_test(ann, 1, now), now).await.unwrap();
    let stopped = store.create_abtest(&new_test(ann, 2, now), now).await.unwrap();
    store.set_abtest_state(stopped.id, AbTestState::Stopped, Some("stopped early"), now).await.unwrap();
    let paused =
        store.revoke_youtube_connection(ann, "invalid_grant: Token has been expired or revoked.", later).await.unwrap();
    assert_eq!(paused, 1);
    let got = store.youtube_connection(ann).await.unwrap().unwrap();
    assert_eq!(got.state, ConnectionState::Revoked);
    assert!(got.state_reason.unwrap().contains("invalid_grant"));
    assert_eq!(got.access, None);
    let test = store.abtest(running.id).await.unwrap().unwrap().test;
    assert_eq!(test.state, AbTestState::Paused);
    assert!(test.state_reason.unwrap().contains("revoked"));
    assert_eq!(store.abtest(stopped.id).await.unwrap().unwrap().test.state, AbTestState::Stopped);

    // Reconnecting makes the connection active again; disconnecting forgets it.
    store.upsert_youtube_connection(&conn, later).await.unwrap();
    let got = store.youtube_connection(ann).await.unwrap().unwrap();
    assert_eq!((got.state, got.state_reason, got.connected_at), (ConnectionState::Active, None, later));
    assert!(store.remove_youtube_connection(ann).await.unwrap());
    assert!(!store.remove_youtube_connection(ann).await.unwrap());
    assert!(store.youtube_connection(ann).await.unwrap().is_none());
}

async fn tests_keep_schedule_swaps_views_and_results(store: Arc<dyn Store>) {
    let start = t("2026-03-03T00:00:00Z");
    let ann = user(&*store, "ann").await;
    let bob = user(&*store, "bob").await;
    let new = new_test(ann, 1, start);
    let created = store.create_abtest(&new, start - Duration::hours(1)).await.unwrap();
    let other = store.create_abtest(&new_test(bob, 1, start), start).await.unwrap();
    assert_ne!(created.id, other.id);
    assert_eq!((created.state, created.quota_used, created.result_json.clone()), (AbTestState::Running, 0, None));
    assert_eq!((created.design, created.sequential), (new.design, new.sequential));
    assert_eq!((other.design, other.sequential), (AbDesign::PacificDays, true));
    let detail = store.abtest(created.id).await.unwrap().unwrap();
    assert_eq!(detail.variants, new.variants);
    assert_eq!(detail.periods, new.periods);
    assert_eq!(detail.test.original_title.as_deref(), Some("Original"));
    assert_eq!(detail.test.video_published_at, start - Duration::days(3));
    assert_eq!(detail.test.power_json, new.power_json);
    assert!(store.abtest(AbTestId::new(created.id.get() + 1000)).await.unwrap().is_none());
    let listed: Vec<_> = store.user_abtests(ann).await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(listed, vec![created.id], "a user sees only their own tests");

    let swap = SwapRecord {
        period: 1,
        swapped_at: Some(start + Duration::hours(12)),
        outcome: "ok".into(),
        excluded: false,
        quota_units: 100,
    };
    store.record_abtest_swap(created.id, &swap).await.unwrap();
    let failed =
        SwapRecord { period: 2, swapped_at: None, outcome: "quota_exceeded".into(), excluded: true, quota_units: 0 };
    store.record_abtest_swap(created.id, &failed).await.unwrap();
    store.add_abtest_quota(created.id, 50).await.unwrap();
    let bad = SwapRecord { period: 9, ..swap.clone() };
    assert!(matches!(store.record_abtest_swap(created.id, &bad).await, Err(StoreError::NotFound(_))));
    let detail = store.abtest(created.id).await.unwrap().unwrap();
    assert_eq!(detail.test.quota_used, 150);
    assert_eq!(
        (detail.periods[1].swapped_at, detail.periods[1].outcome.as_deref(), detail.periods[1].excluded),
        (swap.swapped_at, Some("ok"), false)
    );
    assert_eq!((detail.periods[2].swapped_at, detail.periods[2].excluded), (None, true));
    assert_eq!(store.abtest(other.id).await.unwrap().unwrap().test.quota_used, 0);

    // Hourly views are idempotent per slot and come back in slot order.
    for h in [2i64, 0, 1] {
        let v = AbViews {
            slot: start + Duration::hours(h),
            measured_at: start + Duration::hours(h) + Duration::seconds(30),
            views: 100 + h,
        };
        assert!(store.record_abtest_views(created.id, &v).await.unwrap());
    }
    let again = AbViews { slot: start, measured_at: start + Duration::minutes(5), views: 999 };
    assert!(!store.record_abtest_views(created.id, &again).await.unwrap());
    let views = store.abtest_views(created.id).await.unwrap();
    assert_eq!(views.iter().map(|v| v.views).collect::<Vec<_>>(), vec![100, 101, 102]);
    assert_eq!(views[0].measured_at, start + Duration::seconds(30));
    assert!(store.abtest_views(other.id).await.unwrap().is_empty());

    // A re-estimated power estimate replaces the stored one, of this test only.
    store.set_abtest_power(created.id, r#"{"basis":"re-estimated"}"#).await.unwrap();
    assert_eq!(store.abtest(created.id).await.unwrap().unwrap().test.power_json, r#"{"basis":"re-estimated"}"#);
    assert_ne!(store.abtest(other.id).await.unwrap().unwrap().test.power_json, r#"{"basis":"re-estimated"}"#);

    // The first outside change is kept.
    assert!(
        store.flag_abtest_outside_change(created.id, "thumbnail changed", start + Duration::hours(3)).await.unwrap()
    );
    assert!(!store.flag_abtest_outside_change(created.id, "title changed", start + Duration::hours(4)).await.unwrap());
    let test = store.abtest(created.id).await.unwrap().unwrap().test;
    assert_eq!(
        (test.outside_change.as_deref(), test.outside_change_at),
        (Some("thumbnail changed"), Some(start + Duration::hours(3)))
    );

    // Finishing stores the result; the mailer then sees it once.
    assert!(store.abtests_to_notify(10).await.unwrap().is_empty());
    let end = start + Duration::hours(48);
    store.finish_abtest(created.id, AbTestState::Finished, r#"{"verdict":"winner"}"#, end).await.unwrap();
    let test = store.abtest(created.id).await.unwrap().unwrap().test;
    assert_eq!(
        (test.state, test.finished_at, test.result_json.as_deref()),
        (AbTestState::Finished, Some(end), Some(r#"{"verdict":"winner"}"#))
    );
    let due: Vec<_> = store.abtests_to_notify(10).await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(due, vec![created.id]);
    store.mark_abtest_notified(created.id, end).await.unwrap();
    assert!(store.abtests_to_notify(10).await.unwrap().is_empty());
    store.set_abtest_state(other.id, AbTestState::Failed, Some("forbidden"), end).await.unwrap();
    let other = store.abtest(other.id).await.unwrap().unwrap().test;
    assert_eq!(
        (other.state, other.finished_at, other.state_reason.as_deref()),
        (AbTestState::Failed, Some(end), Some("forbidden"))
    );
    assert!(matches!(
        store.set_abtest_state(AbTestId::new(4242), AbTestState::Running, None, end).await,
        Err(StoreError::NotFound(_))
    ));
}

fn report(channel: u32, day: &str, rows: &[(u32, i64, f64)]) -> ReachReport {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    // Pacific standard time: the day starts at 08:00 UTC.
    let day_start = t(&format!("{day}T08:00:00Z"));
    ReachReport {
        channel_id: channel_id(channel),
        date,
        day_start,
        day_end: day_start + Duration::days(1),
        rows: rows.iter().map(|&(v, impressions, ctr)| (video_id(v), impressions, ctr)).collect(),
    }
}

async fn reach_reports_are_stored_once_per_day_and_read_in_order(store: Arc<dyn Store>) {
    let now = t("2026-03-02T10:00:00Z");
    let ch = channel_id(1);
    assert!(store.reach_job(&ch).await.unwrap().is_none());
    // No job, no report: a report is only read for a job.
    let first = report(1, "2026-02-28", &[(1, 400, 0.05)]);
    assert!(matches!(store.record_reach_report(&first, Some(now), now).await, Err(StoreError::NotFound(_))));

    let job = store.set_reach_job(&ch, "job-1", now - Duration::hours(50), now).await.unwrap();
    assert_eq!((job.job_id.as_str(), job.reports_through, job.last_day), ("job-1", None, None));
    // Setting the same job again (an idempotent ensure) changes nothing.
    assert_eq!(store.set_reach_job(&ch, "job-1", now - Duration::hours(50), now).await.unwrap(), job);

    // Two reports made at the same time: the position moves only with the last of them.
    let made = now - Duration::hours(2);
    let second = report(1, "2026-03-01", &[(1, 380, 0.043), (2, 90, 0.1)]);
    store.record_reach_report(&second, None, now).await.unwrap();
    let job = store.reach_job(&ch).await.unwrap().unwrap();
    assert_eq!(job.reports_through, None, "not every report of that time is read yet");
    assert_eq!(job.last_day, Some(second.date));
    store.record_reach_report(&first, Some(made), now).await.unwrap();
    let job = store.reach_job(&ch).await.unwrap().unwrap();
    assert_eq!((job.reports_through, job.last_day), (Some(made), Some(second.date)), "never backwards");

    // The same report read again, or a backfill of a day, replaces the day.
    store.record_reach_report(&first, Some(made - Duration::hours(1)), now).await.unwrap();
    let replaced = report(1, "2026-02-28", &[(1, 410, 0.048)]);
    store.record_reach_report(&replaced, Some(made + Duration::hours(1)), now).await.unwrap();
    let days = store.reach_days(&video_id(1), t("2026-02-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).await.unwrap();
    assert_eq!(
        days.iter().map(|d| (d.date.to_string(), d.impressions)).collect::<Vec<_>>(),
        vec![("2026-02-28".to_owned(), 410), ("2026-03-01".to_owned(), 380)]
    );
    assert_eq!((days[0].ctr, days[0].day_start), (0.048, t("2026-02-28T08:00:00Z")));
    assert_eq!(store.reach_job(&ch).await.unwrap().unwrap().reports_through, Some(made + Duration::hours(1)));
    // Only the days overlapping the window, of that video.
    let days = store.reach_days(&video_id(1), t("2026-03-01T07:00:00Z"), t("2026-03-01T09:00:00Z")).await.unwrap();
    assert_eq!(days.len(), 2, "both days overlap the window around the Pacific midnight");
    let days = store.reach_days(&video_id(1), t("2026-03-01T09:00:00Z"), t("2026-03-03T00:00:00Z")).await.unwrap();
    assert_eq!(days.iter().map(|d| d.impressions).collect::<Vec<_>>(), vec![380]);
    assert!(store.reach_days(&video_id(3), t("2026-01-01T00:00:00Z"), now).await.unwrap().is_empty());

    // A new job (the old one expired) reads its reports from the start.
    let job = store.set_reach_job(&ch, "job-2", now, now).await.unwrap();
    assert_eq!((job.job_id.as_str(), job.reports_through, job.last_day), ("job-2", None, None));

    // Each test has its reach state, not_granted until told otherwise.
    let ann = user(&*store, "ann").await;
    let test = store.create_abtest(&new_test(ann, 1, now), now).await.unwrap();
    assert_eq!((test.reach_state, test.reach_reason, test.reach_updated_at), (ReachState::NotGranted, None, None));
    let later = now + Duration::hours(1);
    store.set_abtest_reach(test.id, ReachState::Failed, Some("reach report: cut off"), later).await.unwrap();
    let got = store.abtest(test.id).await.unwrap().unwrap().test;
    assert_eq!(
        (got.reach_state, got.reach_reason.as_deref(), got.reach_updated_at),
        (ReachState::Failed, Some("reach report: cut off"), Some(later))
    );
    assert!(matches!(
        store.set_abtest_reach(AbTestId::new(4242), ReachState::Receiving, None, later).await,
        Err(StoreError::NotFound(_))
    ));
}
