//! The service's use cases on a real SQLite store: what one user may see of what another tracks,
//! the rules API tokens are created by, dashboard visits, and the attempt book that throttles.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tubewatch_core::{ChannelId, Clock, Email, ManualClock, UserId, VideoId};
use tubewatch_store::{NewChannel, NewUser, NewVideo, Plan, Store, StoreOptions, connect};
use tubewatch_worker::Service;
use tubewatch_worker::service::{AccountError, MintedToken, TokenRequest};

struct Fixture {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    ada: UserId,
    bob: UserId,
    channel: ChannelId,
    video: VideoId,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn service(&self) -> Service<'_> {
        Service::new(&*self.store, &*self.clock)
    }
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Ada monitors a channel with one video; Bob tracks nothing.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = connect(&format!("sqlite://{}/tw.db", dir.path().display()), &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let clock = Arc::new(ManualClock::new(t("2026-03-02T10:00:00Z")));
    let now = clock.now();
    let user = |name: &str| NewUser {
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        password_hash: "not a real hash".into(),
        plan: Plan::Free,
        is_admin: false,
        email_verified: true,
    };
    let ada = store.create_user(&user("ada"), now).await.unwrap().id;
    let bob = store.create_user(&user("bob"), now).await.unwrap().id;
    let channel = ChannelId::parse("UCaaaaaaaaaaaaaaaaaaaaaa").unwrap();
    let video = VideoId::parse("aaaaaaaaaaa").unwrap();
    store.upsert_channel(&NewChannel { id: channel.clone(), title: "Ada's".into(), handle: None }, now).await.unwrap();
    let new_video = NewVideo {
        id: video.clone(),
        channel_id: channel.clone(),
        published_at: now - Duration::days(1),
        is_short: false,
        title: "A video".into(),
    };
    store.insert_video(&new_video, now).await.unwrap();
    store.add_user_channel(ada, &channel, now).await.unwrap();
    Fixture { store, clock, ada, bob, channel, video, _dir: dir }
}

#[tokio::test]
async fn a_user_sees_what_they_track_and_nothing_of_what_others_do() {
    let f = fixture().await;
    let service = f.service();

    let videos = service.monitored_channel_videos(f.ada, &f.channel).await.unwrap().unwrap();
    assert_eq!(videos.iter().map(|v| &v.id).collect::<Vec<_>>(), [&f.video]);
    let visible = service.visible_history(f.ada, &f.video).await.unwrap().unwrap();
    assert_eq!(visible.video.title, "A video");
    assert!(visible.history.views.is_empty() && visible.history.changes.is_empty());
    assert_eq!(service.plan_use(f.ada).await.unwrap().channels, 1);
    assert!(!service.tracks_video_alone(f.ada, &f.video).await.unwrap(), "seen through the channel only");

    assert!(service.monitored_channel_videos(f.bob, &f.channel).await.unwrap().is_none());
    assert!(service.visible_video(f.bob, &f.video).await.unwrap().is_none());
    assert!(service.visible_history(f.bob, &f.video).await.unwrap().is_none());
    assert!(service.visible_series_stamp(f.bob, &f.video).await.unwrap().is_none());
    assert_eq!(service.plan_use(f.bob).await.unwrap().channels, 0);
}

#[tokio::test]
async fn api_tokens_are_created_within_the_rules_and_revoked_once() {
    let f = fixture().await;
    let service = f.service();
    let minted = MintedToken { hash: "0123456789abcdef", prefix: "tw_012345" };
    let request = |name, scope, expires_in_days| TokenRequest { name, scope, expires_in_days };

    for (refused, why) in [
        (request("   ", None, None), "a blank name"),
        (request("bad\u{7}name", None, None), "a control character"),
        (request("ci", Some("admin"), None), "an unknown scope"),
        (request("ci", None, Some(0)), "no lifetime"),
        (request("ci", None, Some(366)), "more than a year"),
    ] {
        let outcome = service.create_api_token(f.ada, refused, minted).await;
        assert!(matches!(outcome, Err(AccountError::BadInput(_))), "{why}: {outcome:?}");
    }
    assert!(service.api_tokens(f.ada).await.unwrap().is_empty(), "nothing refused is stored");

    let created = service.create_api_token(f.ada, request("  ci  ", None, None), minted).await.unwrap();
    assert_eq!(created.name, "ci");
    assert_eq!(created.scope.as_str(), "read");
    assert_eq!(created.expires_at, Some(f.clock.now() + Duration::days(90)));
    assert!(!service.revoke_api_token(f.bob, created.id).await.unwrap(), "not Bob's to revoke");
    assert!(service.revoke_api_token(f.ada, created.id).await.unwrap());
    assert!(!service.revoke_api_token(f.ada, created.id).await.unwrap(), "revoked already");
}

#[tokio::test]
async fn a_dashboard_visit_has_news_since_the_previous_one() {
    let f = fixture().await;
    let service = f.service();
    let first = f.clock.now();
    assert_eq!(service.visit_dashboard(f.ada).await.unwrap(), None, "a first visit has no news");
    f.clock.advance(Duration::minutes(10));
    assert_eq!(service.visit_dashboard(f.ada).await.unwrap(), Some(first), "a reload keeps the visit");
    f.clock.advance(Duration::hours(2));
    let third = f.clock.now();
    assert_eq!(service.visit_dashboard(f.ada).await.unwrap(), Some(first + Duration::minutes(10)));
    f.clock.advance(Duration::hours(2));
    assert_eq!(service.visit_dashboard(f.ada).await.unwrap(), Some(third));
}

#[tokio::test]
async fn the_attempt_book_refuses_beyond_the_limit_within_the_window() {
    let f = fixture().await;
    let service = f.service();
    let window = Duration::minutes(10);
    assert!(service.note_attempt("test:key", 2, window).await.unwrap());
    assert!(service.note_attempt("test:key", 2, window).await.unwrap());
    assert!(!service.note_attempt("test:key", 2, window).await.unwrap(), "a third within the window");
    assert!(service.note_attempt("other:key", 2, window).await.unwrap(), "keys count apart");
    f.clock.advance(window + Duration::seconds(1));
    assert!(service.note_attempt("test:key", 2, window).await.unwrap(), "the window has passed");
}
