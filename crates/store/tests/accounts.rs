//! AccountStore conformance, on SQLite and (with `TUBEWATCH_TEST_POSTGRES_URL`) PostgreSQL:
//! sessions, API tokens, login throttling state, limits checked in the adding transaction (also
//! under concurrency), visibility through the mapping tables, idempotent billing events, audit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use chrono::Duration;
use common::*;
use tubewatch_core::{Email, UserId};
use tubewatch_store::*;

async fn user(store: &dyn Store, n: u32) -> UserId {
    let email = Email::parse(&format!("user{n}@example.com")).unwrap();
    let new = NewUser {
        email,
        password_hash: "$argon2id$v=19$stub".into(),
        plan: Plan::Free,
        is_admin: false,
        email_verified: true,
    };
    store.create_user(&new, t("2026-01-01T00:00:00Z")).await.unwrap().id
}

async fn sessions_live_until_revoked_or_expired(store: Arc<dyn Store>) {
    let alice = user(&*store, 1).await;
    let now = t("2026-02-01T10:00:00Z");
    store.create_session(alice, "hash-a", now, now + Duration::days(30)).await.unwrap();
    store.create_session(alice, "hash-b", now, now + Duration::hours(1)).await.unwrap();
    let (session, found) = store.session_user("hash-a", now).await.unwrap().unwrap();
    assert_eq!((found.id, session.expires_at), (alice, now + Duration::days(30)));
    assert!(store.session_user("unknown", now).await.unwrap().is_none());
    // Expiry is exclusive and decided by the caller's clock.
    assert!(store.session_user("hash-b", now + Duration::hours(1)).await.unwrap().is_none());
    assert!(store.revoke_session("hash-a", now).await.unwrap());
    assert!(!store.revoke_session("hash-a", now).await.unwrap());
    assert!(store.session_user("hash-a", now).await.unwrap().is_none());
}

async fn password_change_revokes_other_sessions(store: Arc<dyn Store>) {
    let alice = user(&*store, 1).await;
    let bob = user(&*store, 2).await;
    let now = t("2026-02-01T10:00:00Z");
    let later = now + Duration::days(1);
    for (u, h) in [(alice, "keep"), (alice, "other"), (bob, "bobs")] {
        store.create_session(u, h, now, later).await.unwrap();
    }
    let token = NewApiToken {
        name: "ci",
        token_hash: "tokhash",
        prefix: "tw_abcd",
        scope: TokenScope::Write,
        expires_at: later,
    };
    store.create_api_token(alice, &token, now).await.unwrap();
    store.create_api_token(bob, &NewApiToken { token_hash: "bobtok", ..token }, now).await.unwrap();
    store.change_password(alice, "$argon2id$new", Some("keep"), now).await.unwrap();
    assert!(store.api_token_user("tokhash", now).await.unwrap().is_none(), "tokens die with the old password");
    assert!(store.api_token_user("bobtok", now).await.unwrap().is_some());
    assert!(store.session_user("keep", now).await.unwrap().is_some());
    assert!(store.session_user("other", now).await.unwrap().is_none());
    assert!(store.session_user("bobs", now).await.unwrap().is_some(), "other users' sessions untouched");
    assert_eq!(store.user(alice).await.unwrap().unwrap().password_hash, "$argon2id$new");
    let log = store.audit_log(alice, 10).await.unwrap();
    assert_eq!(log[0].action, "password_changed");
}

async fn api_tokens_are_scoped_and_revocable(store: Arc<dyn Store>) {
    let alice = user(&*store, 1).await;
    let bob = user(&*store, 2).await;
    let now = t("2026-02-01T10:00:00Z");
    let new = NewApiToken {
        name: "ci",
        token_hash: "tokhash",
        prefix: "tw_abcd",
        scope: TokenScope::Read,
        expires_at: now + Duration::days(30),
    };
    let token = store.create_api_token(alice, &new, now).await.unwrap();
    assert_eq!((token.user_id, token.name.as_str(), token.revoked_at), (alice, "ci", None));
    assert_eq!((token.scope, token.expires_at), (TokenScope::Read, Some(now + Duration::days(30))));
    // Expired at its expiry instant.
    assert!(store.api_token_user("tokhash", now + Duration::days(30)).await.unwrap().is_none());
    let (used, owner) = store.api_token_user("tokhash", now + Duration::minutes(5)).await.unwrap().unwrap();
    assert_eq!((used.id, owner.id), (token.id, alice));
    assert_eq!(used.last_used_at, Some(now + Duration::minutes(5)));
    assert_eq!(store.api_tokens(alice).await.unwrap()[0].last_used_at, Some(now + Duration::minutes(5)));
    assert!(store.api_tokens(bob).await.unwrap().is_empty());
    // Bob cannot revoke Alice's token by its id.
    assert!(!store.revoke_api_token(bob, token.id, now).await.unwrap());
    assert!(store.api_token_user("tokhash", now).await.unwrap().is_some());
    assert!(store.revoke_api_token(alice, token.id, now).await.unwrap());
    assert!(!store.revoke_api_token(alice, token.id, now).await.unwrap());
    assert!(store.api_token_user("tokhash", now).await.unwrap().is_none());
    assert_eq!(store.api_tokens(alice).await.unwrap()[0].revoked_at, Some(now));
    let actions: Vec<String> = store.audit_log(alice, 10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["token_revoked", "token_created"]);
    assert!(store.audit_log(bob, 10).await.unwrap().is_empty());
}

async fn login_failures_are_counted_per_key(store: Arc<dyn Store>) {
    let now = t("2026-02-01T10:00:00Z");
    for i in 0..3 {
        store.record_login_failure(&["acct:a@x.io", "ip:10.0.0.1"], now + Duration::minutes(i)).await.unwrap();
    }
    store.record_login_failure(&["ip:10.0.0.1"], now + Duration::minutes(3)).await.unwrap();
    assert_eq!(store.login_failures_since("acct:a@x.io", now).await.unwrap(), 3);
    assert_eq!(store.login_failures_since("ip:10.0.0.1", now).await.unwrap(), 4);
    assert_eq!(store.login_failures_since("ip:10.0.0.1", now + Duration::minutes(2)).await.unwrap(), 2);
    store.clear_login_failures("acct:a@x.io", now).await.unwrap();
    assert_eq!(store.login_failures_since("acct:a@x.io", now).await.unwrap(), 0);
    assert_eq!(store.login_failures_since("ip:10.0.0.1", now).await.unwrap(), 4);
    // Housekeeping drops old failures of every key.
    store.clear_login_failures("none", now + Duration::minutes(2)).await.unwrap();
    assert_eq!(store.login_failures_since("ip:10.0.0.1", now).await.unwrap(), 2);
}

async fn channel_limit_is_enforced(store: Arc<dyn Store>) {
    let alice = user(&*store, 1).await;
    let now = t("2026-02-01T10:00:00Z");
    for n in 0..3 {
        let c = with_channel(&*store, n).await;
        let outcome = store.add_user_channel_within_limit(alice, &c, Some(3), now).await.unwrap();
        assert_eq!(outcome, LimitOutcome::Added { charged: true });
    }
    let again = store.add_user_channel_within_limit(alice, &channel_id(0), Some(3), now).await.unwrap();
    assert_eq!(again, LimitOutcome::AlreadyTracked);
    let fourth = with_channel(&*store, 3).await;
    let refused = store.add_user_channel_within_limit(alice, &fourth, Some(3), now).await.unwrap();
    assert_eq!(refused, LimitOutcome::LimitReached { limit: 3, used: 3 });
    assert_eq!(store.user_channels(alice).await.unwrap().len(), 3);
    assert!(!store.user_tracks_channel(alice, &fourth).await.unwrap());
    assert_eq!(
        store.add_user_channel_within_limit(alice, &fourth, None, now).await.unwrap(),
        LimitOutcome::Added { charged: true }
    );
    assert!(store.user_tracks_channel(alice, &fourth).await.unwrap());
}

async fn video_credits_are_monthly_and_free_for_monitored_channels(store: Arc<dyn Store>) {
    let alice = user(&*store, 1).await;
    let bob = user(&*store, 2).await;
    let feb = t("2026-02-01T00:00:00Z");
    let now = t("2026-02-10T10:00:00Z");
    let loose = with_channel(&*store, 1).await;
    let monitored = with_channel(&*store, 2).await;
    for n in 0..4 {
        store.insert_video(&new_video(n, &loose, feb), feb).await.unwrap();
    }
    store.insert_video(&new_video(9, &monitored, feb), feb).await.unwrap();
    store.add_user_channel_within_limit(alice, &monitored, None, now).await.unwrap();

    let add = |v: u32, at| {
        let store = store.clone();
        async move { store.add_user_video_within_limit(alice, &video_id(v), Some(2), feb, at).await.unwrap() }
    };
    assert_eq!(add(0, now).await, LimitOutcome::Added { charged: true });
    // A video of a monitored channel costs nothing.
    assert_eq!(add(9, now).await, LimitOutcome::Added { charged: false });
    assert_eq!(add(1, now).await, LimitOutcome::Added { charged: true });
    assert_eq!(add(1, now).await, LimitOutcome::AlreadyTracked);
    assert_eq!(add(2, now).await, LimitOutcome::LimitReached { limit: 2, used: 2 });
    assert_eq!(store.video_credits_used(alice, feb).await.unwrap(), 2);
    // Untracking does not refund the month's credit, and re-tracking the same video is not
    // charged twice.
    assert!(store.remove_user_video(alice, &video_id(1)).await.unwrap());
    assert_eq!(add(2, now).await, LimitOutcome::LimitReached { limit: 2, used: 2 });
    assert_eq!(add(1, now).await, LimitOutcome::Added { charged: false });
    // A new month brings new credits.
    let march = t("2026-03-01T00:00:00Z");
    let in_march = store.add_user_video_within_limit(alice, &video_id(2), Some(2), march, march).await.unwrap();
    assert_eq!(in_march, LimitOutcome::Added { charged: true });
    assert_eq!(store.video_credits_used(alice, march).await.unwrap(), 1);

    // Visibility follows the mappings: direct, or through a monitored channel; never another's.
    assert!(store.user_can_see_video(alice, &video_id(0)).await.unwrap());
    assert!(store.user_can_see_video(alice, &video_id(9)).await.unwrap());
    assert!(!store.user_can_see_video(alice, &video_id(3)).await.unwrap());
    assert!(!store.user_can_see_video(bob, &video_id(0)).await.unwrap());
    assert!(!store.user_can_see_video(bob, &video_id(9)).await.unwrap());
}

async fn concurrent_adds_cannot_pass_a_limit(store: Arc<dyn Store>) {
    let alice = user(&*store, 1).await;
    let now = t("2026-02-10T10:00:00Z");
    let feb = t("2026-02-01T00:00:00Z");
    let channel = with_channel(&*store, 100).await;
    let mut channels = Vec::new();
    for n in 0..12 {
        channels.push(with_channel(&*store, n).await);
        store.insert_video(&new_video(n, &channel, feb), feb).await.unwrap();
    }
    let channel_adds = channels.iter().map(|c| {
        let store = store.clone();
        let c = c.clone();
        tokio::spawn(async move { store.add_user_channel_within_limit(alice, &c, Some(3), now).await.unwrap() })
    });
    let video_adds = (0..12).map(|n| {
        let store = store.clone();
        tokio::spawn(
            async move { store.add_user_video_within_limit(alice, &video_id(n), Some(5), feb, now).await.unwrap() },
        )
    });
    let (channel_outcomes, video_outcomes) =
        futures::future::join(futures::future::join_all(channel_adds), futures::future::join_all(video_adds)).await;
    let added = |outcomes: Vec<Result<LimitOutcome, tokio::task::JoinError>>| {
        let outcomes: Vec<LimitOutcome> = outcomes.into_iter().map(|o| o.unwrap()).collect();
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, LimitOutcome::Added { charged: true } | LimitOutcome::LimitReached { .. }))
        );
        outcomes.iter().filter(|o| matches!(o, LimitOutcome::Added { .. })).count()
    };
    assert_eq!(added(channel_outcomes), 3);
    assert_eq!(added(video_outcomes), 5);
    assert_eq!(store.user_channels(alice).await.unwrap().len(), 3);
    assert_eq!(store.user_videos(alice).await.unwrap().len(), 5);
    assert_eq!(store.video_credits_used(alice, feb).await.unwrap(), 5);
}

async fn billing_events_apply_once(store: Arc<dyn Store>) {
    let alice = user(&*store, 1).await;
    let now = t("2026-02-10T10:00:00Z");
    assert_eq!(store.billing_account(alice).await.unwrap(), BillingAccount::default());
    let event = BillingEvent {
        event_id: "evt_1".into(),
        kind: "checkout.session.completed".into(),
        user_id: alice,
        customer_id: Some("cus_1".into()),
        subscription_id: Some("sub_1".into()),
        plan: Some(Plan::Premium),
        occurred_at: now,
        opens_subscription: true,
    };
    assert!(store.apply_billing_event(&event, now).await.unwrap());
    assert_eq!(store.user(alice).await.unwrap().unwrap().plan, Plan::Premium);
    assert_eq!(store.user_by_stripe_customer("cus_1").await.unwrap().unwrap().id, alice);
    assert!(store.user_by_stripe_customer("cus_2").await.unwrap().is_none());
    // An admin downgrade, then the same event replayed: nothing changes.
    store.change_plan(alice, Plan::Free, None, "cli", now).await.unwrap();
    assert!(!store.apply_billing_event(&event, now).await.unwrap());
    assert_eq!(store.user(alice).await.unwrap().unwrap().plan, Plan::Free);
    let deleted = BillingEvent {
        event_id: "evt_2".into(),
        kind: "customer.subscription.deleted".into(),
        customer_id: None,
        subscription_id: Some("sub_1".into()),
        plan: Some(Plan::Free),
        occurred_at: now + Duration::minutes(2),
        opens_subscription: false,
        ..event.clone()
    };
    assert!(store.apply_billing_event(&deleted, now).await.unwrap());
    // A late event older than the applied state, and an event about another subscription, are
    // recorded but change nothing.
    let late = BillingEvent {
        event_id: "evt_late".into(),
        kind: "customer.subscription.updated".into(),
        subscription_id: Some("sub_1".into()),
        plan: Some(Plan::Premium),
        occurred_at: now + Duration::minutes(1),
        ..deleted.clone()
    };
    assert!(!store.apply_billing_event(&late, now).await.unwrap());
    let other = BillingEvent {
        event_id: "evt_other".into(),
        subscription_id: Some("sub_9".into()),
        occurred_at: now + Duration::minutes(3),
        ..late.clone()
    };
    assert!(!store.apply_billing_event(&other, now).await.unwrap());
    assert!(!store.apply_billing_event(&other, now).await.unwrap(), "recorded: a replay is not reconsidered");
    assert_eq!(store.user(alice).await.unwrap().unwrap().plan, Plan::Free);
    let account = store.billing_account(alice).await.unwrap();
    assert_eq!((account.customer_id.as_deref(), account.subscription_id.as_deref()), (Some("cus_1"), Some("sub_1")));
    let log = store.audit_log(alice, 10).await.unwrap();
    let details: Vec<(&str, &str)> = log.iter().map(|e| (e.action.as_str(), e.detail.as_str())).collect();
    // The no-op deletion (already free) writes no plan change.
    assert_eq!(
        details,
        [
            ("plan_changed", "premium -> free: cli"),
            ("plan_changed", "free -> premium: stripe checkout.session.completed evt_1")
        ]
    );
    assert!(log.iter().all(|e| e.actor_id.is_none()));
    let missing = BillingEvent { event_id: "evt_3".into(), user_id: UserId::new(999_999), ..event };
    assert!(matches!(store.apply_billing_event(&missing, now).await, Err(StoreError::NotFound(_))));
    assert!(matches!(
        store.change_plan(UserId::new(999_999), Plan::Free, None, "x", now).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn password_resets_are_single_use_and_expire(store: Arc<dyn Store>) {
    let alice = user(&*store, 1).await;
    let now = t("2026-02-01T10:00:00Z");
    let hour = now + Duration::hours(1);
    store.create_session(alice, "session", now, now + Duration::days(1)).await.unwrap();
    store.create_password_reset(alice, "reset-a", now, hour).await.unwrap();
    store.create_password_reset(alice, "reset-b", now, hour).await.unwrap();
    store.create_password_reset(alice, "reset-late", now, now + Duration::minutes(1)).await.unwrap();
    assert_eq!(store.reset_password("unknown", "$argon2id$x", now).await.unwrap(), None);
    assert_eq!(
        store.reset_password("reset-late", "$argon2id$x", now + Duration::minutes(1)).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(store.user(alice).await.unwrap().unwrap().password_hash, "$argon2id$v=19$stub");
    assert_eq!(store.reset_password("reset-a", "$argon2id$new", now).await.unwrap(), Some(alice));
    assert_eq!(store.user(alice).await.unwrap().unwrap().password_hash, "$argon2id$new");
    assert!(store.session_user("session", now).await.unwrap().is_none(), "sessions die with the old password");
    assert_eq!(store.reset_password("reset-a", "$argon2id$again", now).await.unwrap(), None, "used once");
    assert_eq!(store.reset_password("reset-b", "$argon2id$again", now).await.unwrap(), None, "siblings die too");
    assert_eq!(store.audit_log(alice, 1).await.unwrap()[0].action, "password_reset");
}

async fn email_verifications_are_single_use_and_expire(store: Arc<dyn Store>) {
    let signed_up = t("2026-02-01T09:00:00Z");
    let new = |n: &str| NewUser {
        email: Email::parse(&format!("{n}@example.com")).unwrap(),
        password_hash: "$argon2id$v=19$stub".into(),
        plan: Plan::Free,
        is_admin: false,
        email_verified: false,
    };
    let ann = store.create_user(&new("ann"), signed_up).await.unwrap();
    assert_eq!(ann.email_verified_at, None, "a sign-up starts unconfirmed");
    let operator_made = store.create_user(&NewUser { email_verified: true, ..new("op") }, signed_up).await.unwrap();
    assert_eq!(operator_made.email_verified_at, Some(signed_up));

    let now = t("2026-02-01T10:00:00Z");
    let day = now + Duration::hours(24);
    store.create_email_verification(ann.id, "verify-a", now, day).await.unwrap();
    store.create_email_verification(ann.id, "verify-b", now, day).await.unwrap();
    store.create_email_verification(ann.id, "verify-late", now, now + Duration::minutes(1)).await.unwrap();
    assert_eq!(store.verify_email("unknown", now).await.unwrap(), None);
    assert_eq!(store.verify_email("verify-late", now + Duration::minutes(1)).await.unwrap(), None, "expired");
    assert_eq!(store.user(ann.id).await.unwrap().unwrap().email_verified_at, None, "nothing changed");

    let later = now + Duration::hours(2);
    let verified = store.verify_email("verify-a", later).await.unwrap().expect("a live link verifies");
    assert_eq!((verified.id, verified.email_verified_at), (ann.id, Some(later)));
    assert_eq!(store.user_by_email(&ann.email).await.unwrap().unwrap().email_verified_at, Some(later));
    assert_eq!(store.verify_email("verify-a", later).await.unwrap(), None, "used once");
    assert_eq!(store.verify_email("verify-b", later).await.unwrap(), None, "siblings die too");
    assert_eq!(store.audit_log(ann.id, 1).await.unwrap()[0].action, "email_verified");

    // A later link (say, the owner asked again) keeps the first confirmation time.
    store.create_email_verification(ann.id, "verify-c", later, later + Duration::hours(24)).await.unwrap();
    let again = store.verify_email("verify-c", later + Duration::hours(1)).await.unwrap().unwrap();
    assert_eq!(again.email_verified_at, Some(later));

    // A password reset proves the address too.
    let bob = store.create_user(&new("bob"), signed_up).await.unwrap();
    store.create_password_reset(bob.id, "reset-bob", now, now + Duration::hours(1)).await.unwrap();
    store.reset_password("reset-bob", "$argon2id$new", now).await.unwrap().unwrap();
    assert_eq!(store.user(bob.id).await.unwrap().unwrap().email_verified_at, Some(now));
}

conformance!(
    email_verifications_are_single_use_and_expire,
    password_resets_are_single_use_and_expire,
    sessions_live_until_revoked_or_expired,
    password_change_revokes_other_sessions,
    api_tokens_are_scoped_and_revocable,
    login_failures_are_counted_per_key,
    channel_limit_is_enforced,
    video_credits_are_monthly_and_free_for_monitored_channels,
    concurrent_adds_cannot_pass_a_limit,
    billing_events_apply_once,
);
