//! The Reporting API of the simulator through the real client over loopback HTTP, on a manual
//! clock: the owner connects with the analytics scope, creates the reach job once, sees no
//! report for 48 hours, then the 30 backfilled days and one report per new day, each matching
//! the world's truth; wrong scopes, revoked grants and cut downloads fail with typed errors.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tubewatch_core::{ChannelId, ManualClock};
use tubewatch_sim::{
    Endpoint, FaultConfig, FaultSpec, RunningSim, SimConfig, Simulator, pacific_date, pacific_day, pacific_midnight,
};
use tubewatch_youtube::{
    ErrorKind, OAuthClient, OAuthConfig, REACH_REPORT_TYPE, ReachRow, Report, ReportFilter, SCOPE_YOUTUBE_FORCE_SSL,
    SCOPE_YT_ANALYTICS_READONLY, TokenSet, YoutubeClient, YoutubeConfig,
};

struct World {
    running: RunningSim,
    clock: Arc<ManualClock>,
    yt: YoutubeClient,
    channel: ChannelId,
}

/// A simulator whose user owns a channel with long-form uploads, and a client without retries.
async fn world(seed: u64) -> World {
    let (mut config, clock) = SimConfig::for_tests(seed, 12);
    let probe = Simulator::new(config.clone());
    let channel = probe.channels().iter().find(|c| c.long_every_hours.is_some()).unwrap().id.clone();
    config.oauth.user_channels = vec![channel.clone()];
    let running = Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut yt_config = YoutubeConfig::single_base(&running.base_url).unwrap();
    yt_config.retry.max_attempts = 1;
    World { yt: YoutubeClient::new(yt_config).unwrap(), running, clock, channel }
}

/// The consent dance: the simulated user agrees at once; the code is exchanged with PKCE.
async fn connect(yt: &YoutubeClient, scope: &str) -> (OAuthClient, TokenSet) {
    let oauth = yt
        .oauth(&OAuthConfig {
            client_id: "tubewatch-test".to_owned(),
            client_secret: None,
            redirect_uri: "http://127.0.0.1:9/oauth/callback".to_owned(),
            scopes: vec![scope.to_owned()],
        })
        .unwrap();
    let request = oauth.authorize_url();
    let consent = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&request.url)
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: HashMap<_, _> = location.query_pairs().into_owned().collect();
    let tokens = oauth.exchange_code(&pairs["code"], &request.pkce_verifier).await.unwrap();
    (oauth, tokens)
}

/// The rows the report of Pacific day `day` must hold: every video of the channel with
/// impressions that day, from the truth.
fn truth(sim: &Simulator, channel: &ChannelId, day: i64) -> Vec<ReachRow> {
    let day_end = DateTime::from_timestamp(pacific_midnight(day + 1), 0).unwrap();
    let mut rows: Vec<ReachRow> = sim
        .channel_videos(channel, DateTime::<Utc>::MIN_UTC, sim.now().min(day_end))
        .unwrap()
        .into_iter()
        .filter_map(|v| {
            let reach = sim.reach_day(&v.id, day).unwrap()?;
            (reach.impressions > 0).then(|| ReachRow {
                date: pacific_date(day),
                channel_id: channel.clone(),
                video_id: v.id.clone(),
                impressions: reach.impressions,
                ctr: reach.ctr,
            })
        })
        .collect();
    rows.sort_by(|a, b| a.video_id.cmp(&b.video_id));
    rows
}

fn day_of(report: &Report) -> i64 {
    pacific_day(report.start_time.timestamp())
}

async fn sorted_rows(yt: &YoutubeClient, token: &str, report: &Report) -> Vec<ReachRow> {
    let mut rows = yt.reach_rows(token, report).await.unwrap();
    rows.sort_by(|a, b| a.video_id.cmp(&b.video_id));
    rows
}

#[tokio::test]
async fn reach_reports_arrive_after_48_hours_with_30_days_of_backfill_then_daily_and_match_the_truth() {
    let World { running, clock, yt, channel } = world(61).await;
    let sim = running.sim.clone();
    let (oauth, tokens) = connect(&yt, SCOPE_YT_ANALYTICS_READONLY).await;
    let refresh = tokens.refresh_token.clone().unwrap();
    let token = tokens.access_token;

    let types = yt.report_types(&token).await.unwrap();
    assert!(types.iter().any(|t| t.id == REACH_REPORT_TYPE));
    let created = sim.now();
    let job = yt.ensure_reporting_job(&token, REACH_REPORT_TYPE, "tubewatch reach").await.unwrap();
    assert_eq!(job.create_time, created);
    assert!(yt.reports(&token, &job.id, &ReportFilter::default()).await.unwrap().is_empty());
    // A second connection finds the job rather than making another; YouTube refuses a duplicate.
    let again = yt.ensure_reporting_job(&token, REACH_REPORT_TYPE, "another name").await.unwrap();
    assert_eq!(again.id, job.id);
    assert_eq!(yt.reporting_jobs(&token).await.unwrap().len(), 1);
    let duplicate = yt.create_reporting_job(&token, REACH_REPORT_TYPE, "x").await.unwrap_err();
    assert_eq!(duplicate.kind(), ErrorKind::Http);

    // Nothing for 48 hours (access tokens last an hour: refresh as a worker would).
    clock.advance(Duration::hours(47));
    let token = oauth.refresh(&refresh).await.unwrap().access_token;
    assert!(yt.reports(&token, &job.id, &ReportFilter::default()).await.unwrap().is_empty());

    clock.advance(Duration::hours(1));
    let token = oauth.refresh(&refresh).await.unwrap().access_token;
    let reports = yt.reports(&token, &job.id, &ReportFilter::default()).await.unwrap();
    let creation_day = pacific_day(created.timestamp());
    let days: Vec<i64> = reports.iter().map(day_of).collect();
    // The for_tests epoch is 16:00 Pacific, so the creation day had ended 24 h before now.
    assert_eq!(days, (creation_day - 30..=creation_day).collect::<Vec<_>>(), "more than one page, in order");
    for report in &reports {
        assert_eq!(report.job_id, job.id);
        assert_eq!(report.end_time.timestamp(), pacific_midnight(day_of(report) + 1));
        assert_eq!(report.create_time, created + Duration::hours(48));
    }
    let mut nonempty = 0;
    for report in &reports {
        let rows = sorted_rows(&yt, &token, report).await;
        assert_eq!(rows, truth(&sim, &channel, day_of(report)), "day {}", day_of(report));
        nonempty += usize::from(!rows.is_empty());
    }
    assert!(nonempty >= 25, "a channel with long-form uploads has impressions most days ({nonempty} of 31)");

    // Each further day brings exactly one new report, a day after that day ends.
    let mut seen = reports.iter().map(|r| r.create_time).max().unwrap();
    for next_day in creation_day + 1..creation_day + 4 {
        let ready = DateTime::from_timestamp(pacific_midnight(next_day + 1), 0).unwrap() + Duration::hours(24);
        clock.set(ready - Duration::minutes(1));
        let token = oauth.refresh(&refresh).await.unwrap().access_token;
        let filter = ReportFilter { created_after: Some(seen), ..ReportFilter::default() };
        assert!(yt.reports(&token, &job.id, &filter).await.unwrap().is_empty(), "day {next_day} too early");
        clock.set(ready);
        let new = yt.reports(&token, &job.id, &filter).await.unwrap();
        assert_eq!(new.iter().map(day_of).collect::<Vec<_>>(), [next_day]);
        assert_eq!(sorted_rows(&yt, &token, &new[0]).await, truth(&sim, &channel, next_day));
        seen = new[0].create_time;
    }
    let recent = ReportFilter {
        start_time_at_or_after: DateTime::from_timestamp(pacific_midnight(creation_day + 2), 0),
        ..ReportFilter::default()
    };
    let token = oauth.refresh(&refresh).await.unwrap().access_token;
    let listed = yt.reports(&token, &job.id, &recent).await.unwrap();
    assert_eq!(listed.iter().map(day_of).collect::<Vec<_>>(), [creation_day + 2, creation_day + 3]);
}

#[tokio::test]
async fn a_token_without_the_analytics_scope_or_a_revoked_grant_gets_typed_errors() {
    let World { running: _running, yt, .. } = world(62).await;
    let (_, write_only) = connect(&yt, SCOPE_YOUTUBE_FORCE_SSL).await;
    let err = yt.ensure_reporting_job(&write_only.access_token, REACH_REPORT_TYPE, "tw").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert!(err.is_insufficient_scope(), "{err}");

    let (oauth, tokens) = connect(&yt, SCOPE_YT_ANALYTICS_READONLY).await;
    let job = yt.ensure_reporting_job(&tokens.access_token, REACH_REPORT_TYPE, "tw").await.unwrap();
    let refresh = tokens.refresh_token.unwrap();
    oauth.revoke(&refresh).await.unwrap();
    let err = yt.reports(&tokens.access_token, &job.id, &ReportFilter::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(oauth.refresh(&refresh).await.unwrap_err().kind(), ErrorKind::Unauthorized);
    let err = yt.reports("not-a-token", &job.id, &ReportFilter::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn a_cut_download_is_a_retryable_truncation_and_unknown_jobs_are_not_found() {
    let World { running, clock, yt, .. } = world(63).await;
    let sim = running.sim.clone();
    let (_, tokens) = connect(&yt, SCOPE_YT_ANALYTICS_READONLY).await;
    let token = tokens.access_token;
    let job = yt.ensure_reporting_job(&token, REACH_REPORT_TYPE, "tw").await.unwrap();
    let err = yt.reports(&token, "00000000-0000-4000-8000-000000000000", &ReportFilter::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(yt.reports(&token, &job.id, &ReportFilter::default()).await.unwrap().is_empty());

    clock.advance(Duration::hours(48));
    let (_, later) = connect(&yt, SCOPE_YT_ANALYTICS_READONLY).await;
    let reports = yt.reports(&later.access_token, &job.id, &ReportFilter::default()).await.unwrap();
    let report = reports.last().unwrap();
    sim.set_faults(FaultConfig {
        endpoints: [(Endpoint::Reporting, FaultSpec { rate_truncate: 1.0, ..FaultSpec::default() })].into(),
        ..FaultConfig::default()
    });
    let err = yt.reach_rows(&later.access_token, report).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
    assert!(err.is_retryable(), "{err}");
}
