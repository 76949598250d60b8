//! One conformance suite for every backend: each test runs on SQLite always, and on PostgreSQL
//! when `TUBEWATCH_TEST_POSTGRES_URL` is set (CI sets it), each in its own database or schema.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use common::*;
use tubewatch_core::{ChannelId, Email, Slot, UserId};
use tubewatch_store::*;

conformance!(
    channels_and_videos,
    targets_are_shared_and_leased,
    expired_leases_are_reclaimed_and_old_leases_refused,
    failures_retry_or_end,
    views_are_idempotent,
    video_check_is_atomic_and_lease_bound,
    video_checks_are_written_in_batches_bound_to_their_leases,
    a_failed_batch_writes_nothing_and_its_slots_are_retried,
    channel_check_adds_videos_and_targets,
    channel_checks_are_written_in_batches_bound_to_their_leases,
    users_and_mappings,
    a_channel_nobody_monitors_stops_with_what_only_it_tracked,
    concurrent_claimers_process_every_target_once,
    scripted_scenario_matches_the_reference,
);

async fn channels_and_videos(store: Arc<dyn Store>) {
    let now = t("2026-03-01T12:00:00Z");
    let ch = channel_id(1);
    store
        .upsert_channel(&NewChannel { id: ch.clone(), title: "First".into(), handle: Some("@first".into()) }, now)
        .await
        .unwrap();
    // An upsert with less information keeps what was known.
    store.upsert_channel(&NewChannel { id: ch.clone(), title: String::new(), handle: None }, now).await.unwrap();
    let got = store.channel(&ch).await.unwrap().unwrap();
    assert_eq!((got.title.as_str(), got.handle.as_deref(), got.created_at), ("First", Some("@first"), now));
    assert_eq!(got.latest_video_id, None);
    assert!(store.channel(&channel_id(2)).await.unwrap().is_none());
    let read = store.channels(&[channel_id(2), ch.clone()]).await.unwrap();
    assert_eq!(read, vec![got.clone()], "the stored ones among the asked");
    assert!(store.channels(&[]).await.unwrap().is_empty());

    assert!(store.insert_video(&new_video(1, &ch, t("2026-02-01T00:00:00Z")), now).await.unwrap());
    assert!(store.insert_video(&new_video(2, &ch, t("2026-02-03T00:00:00Z")), now).await.unwrap());
    let mut changed = new_video(1, &ch, t("2026-02-01T00:00:00Z"));
    changed.title = "Other".into();
    assert!(!store.insert_video(&changed, now).await.unwrap(), "second insert is a no-op");
    let v1 = store.video(&video_id(1)).await.unwrap().unwrap();
    assert_eq!(v1.title, "Video 1");
    assert_eq!(v1.thumb, None);
    assert!(!v1.is_short);
    let listed: Vec<_> = store.channel_videos(&ch).await.unwrap().into_iter().map(|v| v.id).collect();
    assert_eq!(listed, vec![video_id(2), video_id(1)], "newest first");
    assert!(store.video(&video_id(9)).await.unwrap().is_none());
    let known = store.existing_videos(&[video_id(9), video_id(2), video_id(1)]).await.unwrap();
    assert_eq!(known, vec![video_id(1), video_id(2)]);
    assert!(store.existing_videos(&[]).await.unwrap().is_empty());
    // A video cannot reference an unknown channel.
    assert!(store.insert_video(&new_video(3, &channel_id(77), now), now).await.is_err());
}

async fn targets_are_shared_and_leased(store: Arc<dyn Store>) {
    let due = t("2026-03-01T10:00:00Z");
    let a = store.ensure_target(TargetKind::Video, "abc", due, due).await.unwrap();
    let b = store.ensure_target(TargetKind::Video, "abc", due + Duration::hours(5), due).await.unwrap();
    assert_eq!(a, b, "one target per subject, first schedule kept");
    assert_eq!(a.state, TargetState::Active);
    let other_kind = store.ensure_target(TargetKind::Channel, "abc", due, due).await.unwrap();
    assert_ne!(other_kind.id, a.id);

    assert!(
        store.claim_due("w1", due - Duration::seconds(1), Duration::minutes(5), 10).await.unwrap().is_empty(),
        "not due yet"
    );
    let claimed = store.claim_due("w1", due, Duration::minutes(5), 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].lease_owner.as_deref(), Some("w1"));
    assert_eq!(claimed[0].attempts, 0, "a claim is not a failure");
    let rest = store.claim_due("w2", due, Duration::minutes(5), 10).await.unwrap();
    assert_eq!(rest.len(), 1, "the leased one is skipped");
    assert_ne!(rest[0].id, claimed[0].id);

    let stats = store.queue_stats(due).await.unwrap();
    assert_eq!((stats.active, stats.due, stats.leased), (2, 0, 2));
    assert!(store.queue_busy(due).await.unwrap(), "leased targets keep the queue busy");
    assert!(!store.queue_busy(due - Duration::seconds(1)).await.unwrap(), "nothing due before the due time");

    let lease = claimed[0].lease().unwrap();
    store.complete(&lease, Some(due + Duration::hours(1))).await.unwrap();
    let after = store.target(claimed[0].kind, &claimed[0].subject).await.unwrap().unwrap();
    assert_eq!((after.next_due_at, after.attempts, after.lease_owner), (due + Duration::hours(1), 0, None));
    // Completing twice is refused: the lease is gone.
    assert!(matches!(store.complete(&lease, None).await, Err(StoreError::LeaseLost(_))));

    // Finishing ends the schedule.
    store.complete(&rest[0].lease().unwrap(), None).await.unwrap();
    let finished = store.target(rest[0].kind, &rest[0].subject).await.unwrap().unwrap();
    assert_eq!(finished.state, TargetState::Finished);
    assert!(
        store
            .claim_due("w3", due + Duration::days(9), Duration::minutes(5), 10)
            .await
            .unwrap()
            .iter()
            .all(|t| t.id != finished.id)
    );
    let stats = store.queue_stats(due + Duration::days(9)).await.unwrap();
    assert_eq!((stats.finished, stats.active), (1, 1));
    assert!(store.queue_busy(due + Duration::days(9)).await.unwrap(), "the rescheduled one is due again");
    assert!(!store.queue_busy(due + Duration::minutes(30)).await.unwrap(), "one due next hour, one finished");

    // Listing pages through one kind; stopping ends a target for everyone.
    store.ensure_target(TargetKind::Video, "abd", due, due).await.unwrap();
    let page: Vec<_> =
        store.list_targets(TargetKind::Video, 0, 1).await.unwrap().into_iter().map(|t| t.subject).collect();
    assert_eq!(page, vec!["abc"]);
    let page: Vec<_> =
        store.list_targets(TargetKind::Video, 1, 5).await.unwrap().into_iter().map(|t| t.subject).collect();
    assert_eq!(page, vec!["abd"]);
    assert!(store.stop_target(TargetKind::Video, "abd").await.unwrap());
    assert!(!store.stop_target(TargetKind::Video, "abd").await.unwrap());
    assert_eq!(store.target(TargetKind::Video, "abd").await.unwrap().unwrap().state, TargetState::Finished);
    // Tracking it again resumes it, due when asked and with its failures forgotten; an active
    // target is left alone.
    let again = due + Duration::days(2);
    assert!(store.resume_target(TargetKind::Video, "abd", again).await.unwrap());
    let resumed = store.target(TargetKind::Video, "abd").await.unwrap().unwrap();
    assert_eq!((resumed.state, resumed.next_due_at, resumed.attempts), (TargetState::Active, again, 0));
    assert!(!store.resume_target(TargetKind::Video, "abd", again + Duration::days(1)).await.unwrap());
    assert_eq!(store.target(TargetKind::Video, "abd").await.unwrap().unwrap().next_due_at, again);
    let claimed = store.claim_due("w4", again, Duration::minutes(5), 10).await.unwrap();
    assert!(claimed.iter().any(|t| t.subject == "abd"), "{claimed:?}");
}

async fn expired_leases_are_reclaimed_and_old_leases_refused(store: Arc<dyn Store>) {
    let due = t("2026-03-01T10:00:00Z");
    store.ensure_target(TargetKind::Video, "dead-worker", due, due).await.unwrap();
    let first = store.claim_due("dies", due, Duration::minutes(5), 10).await.unwrap();
    assert_eq!(first.len(), 1);
    // Before expiry nobody else gets it; after, another worker does.
    assert!(store.claim_due("w2", due + Duration::minutes(4), Duration::minutes(5), 10).await.unwrap().is_empty());
    let stats = store.queue_stats(due + Duration::minutes(6)).await.unwrap();
    assert_eq!((stats.due, stats.oldest_due_at), (1, Some(due)));
    let second = store.claim_due("w2", due + Duration::minutes(6), Duration::minutes(5), 10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, 0, "a lease lost to a dead worker is not a failure");
    let stale = first[0].lease().unwrap();
    assert!(matches!(store.complete(&stale, Some(due + Duration::hours(1))).await, Err(StoreError::LeaseLost(_))));
    assert!(matches!(store.fail(&stale, "late", due, None).await, Err(StoreError::LeaseLost(_))));
    assert!(matches!(store.release(&stale).await, Err(StoreError::LeaseLost(_))));
    store.complete(&second[0].lease().unwrap(), Some(due + Duration::hours(1))).await.unwrap();
    assert_eq!(
        store.target(TargetKind::Video, "dead-worker").await.unwrap().unwrap().next_due_at,
        due + Duration::hours(1)
    );
}

async fn failures_retry_or_end(store: Arc<dyn Store>) {
    let due = t("2026-03-01T10:00:00Z");
    store.ensure_target(TargetKind::Video, "flaky", due, due).await.unwrap();
    store.ensure_target(TargetKind::Video, "deleted", due, due).await.unwrap();
    store.ensure_target(TargetKind::Video, "shutdown", due, due).await.unwrap();
    let claimed = store.claim_due("w", due, Duration::minutes(5), 10).await.unwrap();
    let by = |s: &str| claimed.iter().find(|t| t.subject == s).unwrap().lease().unwrap();

    store.fail(&by("flaky"), "http 503", due + Duration::seconds(3), Some(due + Duration::seconds(30))).await.unwrap();
    store.fail(&by("deleted"), "video unavailable", due + Duration::seconds(3), None).await.unwrap();
    store.release(&by("shutdown")).await.unwrap();
    store.ensure_target(TargetKind::Video, "gave-up", due - Duration::minutes(1), due).await.unwrap();
    let gave_up = store.claim_due("w", due, Duration::minutes(5), 1).await.unwrap();
    assert_eq!(gave_up[0].subject, "gave-up", "oldest due first");
    store.skip_slot(&gave_up[0].lease().unwrap(), "bot check", due, Some(due + Duration::hours(1))).await.unwrap();
    let skipped = store.target(TargetKind::Video, "gave-up").await.unwrap().unwrap();
    assert_eq!(
        (skipped.attempts, skipped.next_due_at, skipped.state),
        (0, due + Duration::hours(1), TargetState::Active)
    );
    assert_eq!(skipped.last_error.as_deref(), Some("bot check"));
    assert!(matches!(
        store.skip_slot(&gave_up[0].lease().unwrap(), "x", due, None).await,
        Err(StoreError::LeaseLost(_))
    ));

    let flaky = store.target(TargetKind::Video, "flaky").await.unwrap().unwrap();
    assert_eq!((flaky.state, flaky.next_due_at, flaky.attempts), (TargetState::Active, due, 1));
    assert_eq!((flaky.lease_owner, flaky.lease_until), (None, Some(due + Duration::seconds(30))));
    let early = store.claim_due("w", due + Duration::seconds(29), Duration::minutes(5), 10).await.unwrap();
    assert!(early.iter().all(|t| t.subject != "flaky"), "no retry before its time");
    for target in early {
        store.release(&target.lease().unwrap()).await.unwrap();
    }
    assert_eq!(flaky.last_error.as_deref(), Some("http 503"));
    assert_eq!(flaky.last_error_at, Some(due + Duration::seconds(3)));
    let deleted = store.target(TargetKind::Video, "deleted").await.unwrap().unwrap();
    assert_eq!(deleted.state, TargetState::Failed);
    let released = store.target(TargetKind::Video, "shutdown").await.unwrap().unwrap();
    assert_eq!((released.attempts, released.lease_owner, released.next_due_at), (0, None, due));

    let failing = store.failing_targets(10).await.unwrap();
    let names: HashSet<_> = failing.iter().map(|t| t.subject.as_str()).collect();
    assert_eq!(names, HashSet::from(["flaky", "deleted", "gave-up"]));
    let stats = store.queue_stats(due + Duration::minutes(1)).await.unwrap();
    assert_eq!((stats.active, stats.due, stats.failed, stats.erroring), (3, 2, 1, 2));
    assert!(store.queue_busy(due + Duration::seconds(10)).await.unwrap(), "the released one is due");

    // The retry succeeds: the error is cleared.
    let again = store.claim_due("w", due + Duration::minutes(1), Duration::minutes(5), 10).await.unwrap();
    assert_eq!(again.len(), 2);
    let flaky = again.iter().find(|t| t.subject == "flaky").unwrap();
    assert_eq!(flaky.attempts, 1);
    store.complete(&flaky.lease().unwrap(), Some(due + Duration::hours(1))).await.unwrap();
    let flaky = store.target(TargetKind::Video, "flaky").await.unwrap().unwrap();
    assert_eq!((flaky.last_error, flaky.attempts), (None, 0));
}

async fn views_are_idempotent(store: Arc<dyn Store>) {
    let ch = with_channel(&*store, 1).await;
    let published = t("2026-03-01T10:00:00Z");
    store.insert_video(&new_video(1, &ch, published), published).await.unwrap();
    let record = |h: i64, views: i64| ViewsRecord {
        video_id: video_id(1),
        slot: Slot::hour_of(published + Duration::hours(h)),
        measured_at: published + Duration::hours(h) + Duration::seconds(42),
        views,
    };
    assert!(store.record_views(&record(1, 100)).await.unwrap());
    assert!(store.record_views(&record(0, 10)).await.unwrap());
    assert!(!store.record_views(&record(1, 999)).await.unwrap(), "a retry of a slot is a no-op");
    let series = store.views(&video_id(1)).await.unwrap();
    assert_eq!(series, vec![record(0, 10), record(1, 100)]);
    assert!(store.views(&video_id(2)).await.unwrap().is_empty());
}

async fn video_check_is_atomic_and_lease_bound(store: Arc<dyn Store>) {
    let ch = with_channel(&*store, 1).await;
    let published = t("2026-03-01T10:00:00Z");
    store.insert_video(&new_video(1, &ch, published), published).await.unwrap();
    store.ensure_target(TargetKind::Video, video_id(1).as_str(), published, published).await.unwrap();
    let now = published + Duration::hours(2) + Duration::seconds(5);
    let slot = Slot::hour_of(now);
    let claimed = store.claim_due("w", now, Duration::minutes(5), 10).await.unwrap();
    let lease = claimed[0].lease().unwrap();
    let check = VideoCheck {
        record: ViewsRecord { video_id: video_id(1), slot, measured_at: now, views: 1234 },
        title: "New title".into(),
        thumb: Some(ThumbState { sha256: "aa".into(), phash: "p1".into(), blob_key: Some("thumbs/v1/aa.jpg".into()) }),
        changes: vec![NewChange {
            video_id: video_id(1),
            kind: ChangeKind::Title,
            slot,
            detected_at: now,
            before_title: Some("Video 1".into()),
            after_title: Some("New title".into()),
            before_thumb_key: None,
            after_thumb_key: None,
        }],
    };
    let next = slot.start() + Duration::hours(1);

    // A stale lease writes nothing at all.
    let stale = Lease { until: lease.until - Duration::seconds(1), ..lease.clone() };
    assert!(matches!(store.complete_video_check(&stale, &check, Some(next)).await, Err(StoreError::LeaseLost(_))));
    assert!(store.views(&video_id(1)).await.unwrap().is_empty());
    assert!(store.changes(&video_id(1)).await.unwrap().is_empty());
    assert_eq!(store.video(&video_id(1)).await.unwrap().unwrap().title, "Video 1");

    store.complete_video_check(&lease, &check, Some(next)).await.unwrap();
    assert_eq!(store.views(&video_id(1)).await.unwrap(), vec![check.record.clone()]);
    let changes = store.changes(&video_id(1)).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].change, check.changes[0]);
    let video = store.video(&video_id(1)).await.unwrap().unwrap();
    assert_eq!((video.title.as_str(), video.thumb.as_ref()), ("New title", check.thumb.as_ref()));
    let target = store.target(TargetKind::Video, video_id(1).as_str()).await.unwrap().unwrap();
    assert_eq!((target.next_due_at, target.lease_owner), (next, None));

    // A retry of the same slot (say, the worker died after committing) duplicates nothing.
    let again = store.claim_due("w2", next, Duration::minutes(5), 10).await.unwrap();
    store.complete_video_check(&again[0].lease().unwrap(), &check, Some(next + Duration::hours(1))).await.unwrap();
    assert_eq!(store.views(&video_id(1)).await.unwrap().len(), 1);
    assert_eq!(store.changes(&video_id(1)).await.unwrap().len(), 1);

    // The last slot finishes the target; a check without a thumbnail keeps the stored one.
    let last = store.claim_due("w3", next + Duration::hours(1), Duration::minutes(5), 10).await.unwrap();
    let no_thumb = VideoCheck { thumb: None, changes: vec![], ..check.clone() };
    store.complete_video_check(&last[0].lease().unwrap(), &no_thumb, None).await.unwrap();
    assert_eq!(
        store.target(TargetKind::Video, video_id(1).as_str()).await.unwrap().unwrap().state,
        TargetState::Finished
    );
    assert_eq!(store.video(&video_id(1)).await.unwrap().unwrap().thumb, check.thumb);
}

/// A measurement of `video_id(n)` at `slot` under `lease`, titled `title`.
fn finished(
    lease: Lease,
    n: u32,
    slot: Slot,
    title: &str,
    next_due_at: Option<chrono::DateTime<chrono::Utc>>,
) -> FinishedVideoCheck {
    let measured_at = slot.start() + Duration::seconds(i64::from(n));
    FinishedVideoCheck {
        lease,
        check: VideoCheck {
            record: ViewsRecord { video_id: video_id(n), slot, measured_at, views: 1000 * i64::from(n) },
            title: title.into(),
            thumb: None,
            changes: vec![],
        },
        next_due_at,
    }
}

async fn video_checks_are_written_in_batches_bound_to_their_leases(store: Arc<dyn Store>) {
    let ch = with_channel(&*store, 1).await;
    let published = t("2026-03-01T10:00:00Z");
    for n in 1..=4 {
        store.insert_video(&new_video(n, &ch, published), published).await.unwrap();
        store.ensure_target(TargetKind::Video, video_id(n).as_str(), published, published).await.unwrap();
    }
    let stored = store.videos(&[video_id(4), video_id(9), video_id(1)]).await.unwrap();
    let mut ids: Vec<_> = stored.iter().map(|v| v.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, vec![video_id(1), video_id(4)], "the stored ones among those asked");
    assert_eq!(
        stored.iter().find(|v| v.id == video_id(1)).unwrap(),
        &store.video(&video_id(1)).await.unwrap().unwrap()
    );
    assert!(store.videos(&[]).await.unwrap().is_empty());

    let now = published + Duration::hours(2) + Duration::seconds(5);
    let slot = Slot::hour_of(now);
    let next = slot.start() + Duration::hours(1);
    let claimed = store.claim_due("w", now, Duration::minutes(5), 10).await.unwrap();
    let lease = |n: u32| claimed.iter().find(|t| t.subject == video_id(n).as_str()).unwrap().lease().unwrap();
    // Video 3's lease expired and another worker holds it now: the first worker's check of it
    // must write nothing, while the rest of its batch is written.
    let stale3 = lease(3);
    let later = now + Duration::minutes(6);
    let reclaimed = store.claim_due("w2", later, Duration::minutes(5), 10).await.unwrap();
    assert_eq!(reclaimed.len(), 4, "every lease has expired");
    let lease2 = |n: u32| reclaimed.iter().find(|t| t.subject == video_id(n).as_str()).unwrap().lease().unwrap();

    let mut thumbed = finished(lease2(2), 2, slot, "Video 2", Some(next));
    thumbed.check.thumb =
        Some(ThumbState { sha256: "bb".into(), phash: "p2".into(), blob_key: Some("thumbs/v2/bb.jpg".into()) });
    let mut retitled = finished(lease2(1), 1, slot, "Retitled", Some(next));
    retitled.check.changes.push(NewChange {
        video_id: video_id(1),
        kind: ChangeKind::Title,
        slot,
        detected_at: retitled.check.record.measured_at,
        before_title: Some("Video 1".into()),
        after_title: Some("Retitled".into()),
        before_thumb_key: None,
        after_thumb_key: None,
    });
    let batch = vec![
        retitled.clone(),
        thumbed.clone(),
        // The same target under its old and its current lease: only the current one writes.
        finished(stale3, 3, slot, "Stale title", Some(next)),
        finished(lease2(3), 3, slot, "Video 3", Some(next)),
        // Its last slot: the target finishes.
        finished(lease2(4), 4, slot, "Video 4", None),
    ];
    let held = store.complete_video_checks(&batch).await.unwrap();
    assert_eq!(held, vec![true, true, false, true, true]);

    for (n, check) in [(1, &batch[0]), (2, &batch[1]), (3, &batch[3]), (4, &batch[4])] {
        assert_eq!(store.views(&video_id(n)).await.unwrap(), vec![check.check.record.clone()], "video {n}");
    }
    let v1 = store.video(&video_id(1)).await.unwrap().unwrap();
    assert_eq!((v1.title.as_str(), v1.thumb.as_ref()), ("Retitled", None));
    assert_eq!(store.changes(&video_id(1)).await.unwrap().len(), 1);
    let v2 = store.video(&video_id(2)).await.unwrap().unwrap();
    assert_eq!((v2.title.as_str(), v2.thumb.as_ref()), ("Video 2", thumbed.check.thumb.as_ref()));
    assert_eq!(store.video(&video_id(3)).await.unwrap().unwrap().title, "Video 3", "the stale check wrote nothing");
    for n in 1..=3 {
        let target = store.target(TargetKind::Video, video_id(n).as_str()).await.unwrap().unwrap();
        assert_eq!(
            (target.state, target.next_due_at, target.lease_owner.as_deref()),
            (TargetState::Active, next, None),
            "video {n}"
        );
    }
    let last = store.target(TargetKind::Video, video_id(4).as_str()).await.unwrap().unwrap();
    assert_eq!((last.state, last.lease_owner), (TargetState::Finished, None));

    // The next slot's batch: a check without a thumbnail keeps the stored one, and a lease
    // already used is refused as a whole (every check of it is reported, none written).
    let slot2 = Slot::hour_of(next);
    let claimed = store.claim_due("w", next, Duration::minutes(5), 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let lease3 = |n: u32| claimed.iter().find(|t| t.subject == video_id(n).as_str()).unwrap().lease().unwrap();
    let again = vec![
        finished(lease3(2), 2, slot2, "Video 2", Some(next + Duration::hours(1))),
        finished(lease2(1), 1, slot2, "Old lease", Some(next + Duration::hours(1))),
    ];
    assert_eq!(store.complete_video_checks(&again).await.unwrap(), vec![true, false]);
    assert_eq!(store.video(&video_id(2)).await.unwrap().unwrap().thumb, thumbed.check.thumb);
    assert_eq!(store.views(&video_id(2)).await.unwrap().len(), 2);
    assert_eq!(store.views(&video_id(1)).await.unwrap().len(), 1);
    assert!(store.complete_video_checks(&[]).await.unwrap().is_empty());
}

async fn a_failed_batch_writes_nothing_and_its_slots_are_retried(store: Arc<dyn Store>) {
    let ch = with_channel(&*store, 1).await;
    let published = t("2026-03-01T10:00:00Z");
    store.insert_video(&new_video(1, &ch, published), published).await.unwrap();
    // A target whose video is not stored: its record cannot be written, so its batch fails.
    for n in [1, 2] {
        store.ensure_target(TargetKind::Video, video_id(n).as_str(), published, published).await.unwrap();
    }
    let now = published + Duration::hours(1) + Duration::seconds(5);
    let slot = Slot::hour_of(now);
    let next = slot.start() + Duration::hours(1);
    let claimed = store.claim_due("dies", now, Duration::minutes(5), 10).await.unwrap();
    let lease = |n: u32| claimed.iter().find(|t| t.subject == video_id(n).as_str()).unwrap().lease().unwrap();
    let batch =
        vec![finished(lease(1), 1, slot, "Retitled", Some(next)), finished(lease(2), 2, slot, "Video 2", Some(next))];
    assert!(store.complete_video_checks(&batch).await.is_err());

    // Nothing of the batch was written: no record, no title, the target still due in its slot
    // under the same lease.
    assert!(store.views(&video_id(1)).await.unwrap().is_empty());
    assert_eq!(store.video(&video_id(1)).await.unwrap().unwrap().title, "Video 1");
    let target = store.target(TargetKind::Video, video_id(1).as_str()).await.unwrap().unwrap();
    assert_eq!((target.next_due_at, target.lease_until), (published, Some(lease(1).until)));

    // The same worker can still write it alone under its lease...
    let alone = finished(lease(1), 1, slot, "Retitled", Some(next));
    assert_eq!(store.complete_video_checks(std::slice::from_ref(&alone)).await.unwrap(), vec![true]);
    assert_eq!(store.views(&video_id(1)).await.unwrap(), vec![alone.check.record.clone()]);
    // ...and a slot whose worker died with its batch is claimed again once the lease expires.
    assert!(store.claim_due("w2", now + Duration::minutes(4), Duration::minutes(5), 10).await.unwrap().is_empty());
    let retried = store.claim_due("w2", now + Duration::minutes(6), Duration::minutes(5), 10).await.unwrap();
    assert_eq!(retried.iter().map(|t| t.subject.as_str()).collect::<Vec<_>>(), vec![video_id(2).as_str()]);
    assert_eq!(retried[0].next_due_at, published, "still due in the slot it missed");
}

async fn channel_check_adds_videos_and_targets(store: Arc<dyn Store>) {
    let ch = with_channel(&*store, 1).await;
    let now = t("2026-03-01T09:55:00Z");
    // A video known before, measured until tomorrow, and one known without a target of its own.
    let earlier = t("2026-02-28T09:00:00Z");
    store.insert_video(&new_video(3, &ch, t("2026-02-27T09:30:00Z")), earlier).await.unwrap();
    store.ensure_target(TargetKind::Video, video_id(3).as_str(), now + Duration::days(1), earlier).await.unwrap();
    store.insert_video(&new_video(4, &ch, t("2026-02-26T09:30:00Z")), earlier).await.unwrap();
    store.ensure_target(TargetKind::Channel, ch.as_str(), now, now).await.unwrap();
    let claimed = store.claim_due("w", now, Duration::minutes(5), 10).await.unwrap();
    let mut retitled = new_video(3, &ch, t("2026-02-27T09:30:00Z"));
    retitled.title = "Retitled since".into();
    let check = ChannelCheck {
        channel_id: ch.clone(),
        checked_at: now,
        latest_video_id: Some(video_id(2)),
        feed_videos: vec![
            (new_video(2, &ch, t("2026-03-01T09:30:00Z")), t("2026-03-01T09:00:00Z")),
            (retitled, t("2026-03-01T09:00:00Z")),
            (new_video(1, &ch, t("2026-02-20T09:30:00Z")), t("2026-03-01T00:00:00Z")),
            (new_video(4, &ch, t("2026-02-26T09:30:00Z")), t("2026-03-01T00:00:00Z")),
        ],
    };
    store.complete_channel_check(&claimed[0].lease().unwrap(), &check, now + Duration::hours(1)).await.unwrap();
    let channel = store.channel(&ch).await.unwrap().unwrap();
    assert_eq!((channel.latest_video_id, channel.checked_at), (Some(video_id(2)), Some(now)));
    let target = store.target(TargetKind::Video, video_id(2).as_str()).await.unwrap().unwrap();
    assert_eq!(target.next_due_at, t("2026-03-01T09:00:00Z"));
    let new = store.video(&video_id(2)).await.unwrap().unwrap();
    assert_eq!((new.published_at, new.created_at, new.is_short), (t("2026-03-01T09:30:00Z"), now, true));
    assert!(!store.video(&video_id(1)).await.unwrap().unwrap().is_short);
    assert_eq!(store.channel_videos(&ch).await.unwrap().len(), 4);
    // The known videos are left as they were: row, target and schedule.
    let known = store.video(&video_id(3)).await.unwrap().unwrap();
    assert_eq!((known.title.as_str(), known.created_at), ("Video 3", earlier));
    let target = store.target(TargetKind::Video, video_id(3).as_str()).await.unwrap().unwrap();
    assert_eq!(target.next_due_at, now + Duration::days(1));
    assert!(store.target(TargetKind::Video, video_id(4).as_str()).await.unwrap().is_none());
    let due = store.claim_due("w", now, Duration::minutes(5), 10).await.unwrap();
    assert_eq!(
        due.iter().map(|t| t.subject.clone()).collect::<Vec<_>>(),
        vec![video_id(1).to_string(), video_id(2).to_string()]
    );
    let ch_target = store.target(TargetKind::Channel, ch.as_str()).await.unwrap().unwrap();
    assert_eq!(ch_target.next_due_at, now + Duration::hours(1));
}

async fn channel_checks_are_written_in_batches_bound_to_their_leases(store: Arc<dyn Store>) {
    let (one, two) = (with_channel(&*store, 1).await, with_channel(&*store, 2).await);
    let now = t("2026-03-01T09:55:00Z");
    for ch in [&one, &two] {
        store.ensure_target(TargetKind::Channel, ch.as_str(), now, now).await.unwrap();
    }
    let claimed = store.claim_due("w", now, Duration::minutes(5), 10).await.unwrap();
    let lease = |ch: &ChannelId| claimed.iter().find(|t| t.subject == ch.as_str()).unwrap().lease().unwrap();
    // Channel two's lease is not the one its target holds (it expired and was taken over).
    let stale = Lease { until: lease(&two).until - Duration::minutes(1), ..lease(&two) };
    let check = |ch: &ChannelId, video: u32| ChannelCheck {
        channel_id: ch.clone(),
        checked_at: now,
        latest_video_id: Some(video_id(video)),
        feed_videos: vec![(new_video(video, ch, t("2026-03-01T09:30:00Z")), t("2026-03-01T09:00:00Z"))],
    };
    let next = now + Duration::hours(1);
    let batch = vec![
        FinishedChannelCheck { lease: lease(&one), check: check(&one, 1), next_due_at: next },
        FinishedChannelCheck { lease: stale, check: check(&two, 2), next_due_at: next },
    ];
    assert_eq!(store.complete_channel_checks(&batch).await.unwrap(), vec![true, false]);

    // The held check wrote everything...
    let channel = store.channel(&one).await.unwrap().unwrap();
    assert_eq!((channel.latest_video_id, channel.checked_at), (Some(video_id(1)), Some(now)));
    let video = store.target(TargetKind::Video, video_id(1).as_str()).await.unwrap().unwrap();
    assert_eq!(video.next_due_at, t("2026-03-01T09:00:00Z"));
    let target = store.target(TargetKind::Channel, one.as_str()).await.unwrap().unwrap();
    assert_eq!((target.next_due_at, target.lease_owner), (next, None));
    // ...the other nothing: no video, no check time, its target still leased and due.
    let channel = store.channel(&two).await.unwrap().unwrap();
    assert_eq!((channel.latest_video_id, channel.checked_at), (None, None));
    assert!(store.video(&video_id(2)).await.unwrap().is_none());
    assert!(store.target(TargetKind::Video, video_id(2).as_str()).await.unwrap().is_none());
    let target = store.target(TargetKind::Channel, two.as_str()).await.unwrap().unwrap();
    assert_eq!((target.next_due_at, target.lease_owner.as_deref()), (now, Some("w")));
    assert_eq!(store.complete_channel_checks(&[]).await.unwrap(), Vec::<bool>::new());
}

async fn users_and_mappings(store: Arc<dyn Store>) {
    let now = t("2026-03-10T12:00:00Z");
    let email = Email::parse("ann@example.com").unwrap();
    let ann = store
        .create_user(
            &NewUser {
                email: email.clone(),
                password_hash: "$argon2id$v=19$…".into(),
                plan: Plan::Free,
                is_admin: false,
                email_verified: true,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!((ann.email.clone(), ann.plan, ann.is_admin, ann.created_at), (email.clone(), Plan::Free, false, now));
    let dup = NewUser {
        email: email.clone(),
        password_hash: "x".into(),
        plan: Plan::Premium,
        is_admin: true,
        email_verified: true,
    };
    assert!(matches!(store.create_user(&dup, now).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.user_by_email(&email).await.unwrap().unwrap().id, ann.id);
    assert_eq!(store.user(ann.id).await.unwrap().unwrap().email, email);
    assert!(store.user(UserId::new(424242)).await.unwrap().is_none());
    store.set_user_plan(ann.id, Plan::Premium).await.unwrap();
    assert_eq!(store.user(ann.id).await.unwrap().unwrap().plan, Plan::Premium);
    assert!(matches!(store.set_user_plan(UserId::new(424242), Plan::Free).await, Err(StoreError::NotFound(_))));

    let ch = with_channel(&*store, 1).await;
    assert!(store.add_user_channel(ann.id, &ch, now).await.unwrap());
    assert!(!store.add_user_channel(ann.id, &ch, now).await.unwrap());
    assert_eq!(store.user_channels(ann.id).await.unwrap(), vec![ch.clone()]);
    assert!(store.remove_user_channel(ann.id, &ch).await.unwrap());
    assert!(!store.remove_user_channel(ann.id, &ch).await.unwrap());
    assert!(store.user_channels(ann.id).await.unwrap().is_empty());

    for n in 1..=3 {
        store.insert_video(&new_video(n, &ch, now), now).await.unwrap();
    }
    let last_month = t("2026-02-27T00:00:00Z");
    assert!(store.add_user_video(ann.id, &video_id(1), last_month).await.unwrap());
    assert!(store.add_user_video(ann.id, &video_id(2), now).await.unwrap());
    assert!(store.add_user_video(ann.id, &video_id(3), now).await.unwrap());
    assert!(!store.add_user_video(ann.id, &video_id(3), now).await.unwrap());
    assert_eq!(store.count_user_videos_since(ann.id, t("2026-03-01T00:00:00Z")).await.unwrap(), 2);
    let listed: Vec<_> =
        store.user_videos(ann.id).await.unwrap().into_iter().map(|v| (v.video_id, v.added_at)).collect();
    assert_eq!(listed, vec![(video_id(1), last_month), (video_id(2), now), (video_id(3), now)]);
    assert!(store.remove_user_video(ann.id, &video_id(2)).await.unwrap());
    assert_eq!(store.count_user_videos_since(ann.id, t("2026-03-01T00:00:00Z")).await.unwrap(), 1);
    // Another user's mappings are their own.
    let bob = store
        .create_user(
            &NewUser {
                email: Email::parse("bob@example.com").unwrap(),
                password_hash: "h".into(),
                plan: Plan::Free,
                is_admin: false,
                email_verified: true,
            },
            now,
        )
        .await
        .unwrap();
    assert!(store.user_videos(bob.id).await.unwrap().is_empty());
}

/// When its last user lets a channel go, its target stops with those of its videos nobody tracks
/// on their own; the operator's (tracked without a user) stay.
async fn a_channel_nobody_monitors_stops_with_what_only_it_tracked(store: Arc<dyn Store>) {
    let now = t("2026-03-01T12:00:00Z");
    let user = |name: &str| NewUser {
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        password_hash: "h".into(),
        plan: Plan::Free,
        is_admin: false,
        email_verified: true,
    };
    let ann = store.create_user(&user("ann"), now).await.unwrap().id;
    let bob = store.create_user(&user("bob"), now).await.unwrap().id;
    let (ch, kept) = (with_channel(&*store, 1).await, with_channel(&*store, 2).await);
    for (n, channel) in [(1, &ch), (2, &ch), (3, &ch), (4, &kept)] {
        store.insert_video(&new_video(n, channel, now), now).await.unwrap();
        store.ensure_target(TargetKind::Video, video_id(n).as_str(), now, now).await.unwrap();
    }
    for channel in [&ch, &kept] {
        store.ensure_target(TargetKind::Channel, channel.as_str(), now, now).await.unwrap();
        store.add_user_channel(ann, channel, now).await.unwrap();
    }
    store.add_user_channel(bob, &ch, now).await.unwrap();
    store.add_user_video(bob, &video_id(2), now).await.unwrap();
    store.keep_target(TargetKind::Video, video_id(3).as_str()).await.unwrap();
    store.keep_target(TargetKind::Channel, kept.as_str()).await.unwrap();
    let state = |kind: TargetKind, subject: String| {
        let store = store.clone();
        async move { store.target(kind, &subject).await.unwrap().unwrap().state }
    };
    let video = |n: u32| state(TargetKind::Video, video_id(n).to_string());

    // Bob still monitors it: nothing stops.
    assert!(store.remove_user_channel(ann, &ch).await.unwrap());
    assert_eq!(state(TargetKind::Channel, ch.to_string()).await, TargetState::Active);
    // Its last user: the channel and the video only it tracked stop; Bob's own video and the
    // operator's stay.
    assert!(store.remove_user_channel(bob, &ch).await.unwrap());
    assert_eq!(state(TargetKind::Channel, ch.to_string()).await, TargetState::Finished);
    assert_eq!(
        (video(1).await, video(2).await, video(3).await),
        (TargetState::Finished, TargetState::Active, TargetState::Active)
    );
    // Bob lets his video go too: its channel is not tracked, so it stops.
    assert!(store.remove_user_video(bob, &video_id(2)).await.unwrap());
    assert_eq!(video(2).await, TargetState::Finished);
    // The operator's channel stays when its last user goes, and so do its videos; a video let
    // go on a tracked channel stays with the channel.
    store.add_user_video(ann, &video_id(4), now).await.unwrap();
    assert!(store.remove_user_video(ann, &video_id(4)).await.unwrap());
    assert!(store.remove_user_channel(ann, &kept).await.unwrap());
    assert_eq!(state(TargetKind::Channel, kept.to_string()).await, TargetState::Active);
    assert_eq!(video(4).await, TargetState::Active);
}

/// 8 claimers race over 10,000 due targets: each is processed exactly once, none is lost.
async fn concurrent_claimers_process_every_target_once(store: Arc<dyn Store>) {
    const TARGETS: u32 = 10_000;
    let due = t("2026-03-01T10:00:00Z");
    let mut creators = Vec::new();
    for part in 0..4u32 {
        let store = store.clone();
        creators.push(tokio::spawn(async move {
            for n in (part..TARGETS).step_by(4) {
                store.ensure_target(TargetKind::Video, &format!("t{n:05}"), due, due).await.unwrap();
            }
        }));
    }
    for c in creators {
        c.await.unwrap();
    }
    let mut workers = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let owner = format!("worker-{w}");
            let mut done = Vec::new();
            loop {
                let batch = store.claim_due(&owner, due, Duration::minutes(10), 50).await.unwrap();
                if batch.is_empty() {
                    return done;
                }
                for target in batch {
                    store.complete(&target.lease().unwrap(), Some(due + Duration::hours(1))).await.unwrap();
                    done.push(target.subject);
                }
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for w in workers {
        for subject in w.await.unwrap() {
            total += 1;
            assert!(seen.insert(subject.clone()), "{subject} processed twice");
        }
    }
    assert_eq!(total, TARGETS as usize);
    let stats = store.queue_stats(due).await.unwrap();
    assert_eq!((stats.active, stats.due, stats.leased), (u64::from(TARGETS), 0, 0));
}

/// A fixed script whose every read is compared with a reference rendering: both backends must
/// produce exactly these results.
async fn scripted_scenario_matches_the_reference(store: Arc<dyn Store>) {
    let ch = with_channel(&*store, 5).await;
    let published = t("2026-04-01T08:20:00Z");
    store.insert_video(&new_video(7, &ch, published), published).await.unwrap();
    for h in 0..3 {
        let slot = Slot::hour_of(published + Duration::hours(h));
        let rec = ViewsRecord {
            video_id: video_id(7),
            slot,
            measured_at: slot.start() + Duration::milliseconds(1500),
            views: 10 * h,
        };
        store.record_views(&rec).await.unwrap();
    }
    let rendered = format!("{:?}", store.views(&video_id(7)).await.unwrap());
    let reference = "[ViewsRecord { video_id: VideoId(\"v0000000007\"), slot: Slot(2026-04-01T08:00:00Z), measured_at: 2026-04-01T08:00:01.500Z, views: 0 }, \
ViewsRecord { video_id: VideoId(\"v0000000007\"), slot: Slot(2026-04-01T09:00:00Z), measured_at: 2026-04-01T09:00:01.500Z, views: 10 }, \
ViewsRecord { video_id: VideoId(\"v0000000007\"), slot: Slot(2026-04-01T10:00:00Z), measured_at: 2026-04-01T10:00:01.500Z, views: 20 }]";
    assert_eq!(rendered, reference);
    let target = store.ensure_target(TargetKind::Video, "v0000000007", published, published).await.unwrap();
    let rendered =
        format!("{:?}", (target.kind, target.state, target.next_due_at, target.attempts, target.lease_owner));
    assert_eq!(rendered, "(Video, Active, 2026-04-01T08:20:00Z, 0, None)");
}
