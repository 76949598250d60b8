//! The channel owner's daily reach: thumbnail impressions and their click-through rate per video
//! and Pacific day, from the YouTube Reporting API on a grant with `yt-analytics.readonly`, for
//! A/B tests and for judging the owner's own thumbnail and title changes (`change_reach` in
//! core). One leased target per connected user (subject: the user id) runs hourly while the
//! grant includes reach, or, without it, while a test of theirs can still use data (until three
//! days after its end, as a day's report comes about a day after the day) to record why it gets
//! none: it ensures the channel's reporting job, reads the reports created since the last one
//! read, stores every row of the channel, and records each test's reach state. Reach never holds
//! up a test: without it the test runs on public views.
//!
//! Nothing is lost: the read position (`reports_through`) only moves past a creation time once
//! every report made then is stored, so a report that fails (a cut download, a bad CSV) is
//! read again at the next run, and a day read twice replaces itself.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_core::UserId;
use tubewatch_core::abtest::{AbPeriod, live_shares};
use tubewatch_store::{
    AbTest, AbTestDetail, AbTestId, AbTestPeriod, AbTestState, ConnectionState, Lease, ReachDay, ReachJob, ReachReport,
    ReachState, Store, StoreError, Target, TargetKind, YoutubeConnection,
};
use tubewatch_youtube::{ErrorKind, REACH_REPORT_TYPE, ReportFilter, SCOPE_YT_ANALYTICS_READONLY, YoutubeError};

use crate::abtest::{AbTestError, AbTests};
use crate::pipeline::{JobError, Pipeline};

/// The reporting job's name at YouTube.
const JOB_NAME: &str = "tubewatch reach";
/// A job's first reports come this long after it is created.
const FIRST_REPORTS_AFTER_HOURS: i64 = 48;
/// A test keeps collecting reach this long after it ends: a day's report comes about a day later.
const COLLECT_AFTER_END_DAYS: i64 = 3;

const NOT_GRANTED: &str = "the YouTube connection does not include reach data (yt-analytics.readonly): \
                           connect the account again to add it";

/// Whether the grant covers the reach report.
pub fn has_reach_scope(connection: &YoutubeConnection) -> bool {
    connection.scopes.split_whitespace().any(|s| s == SCOPE_YT_ANALYTICS_READONLY)
}

/// One day of reach during a test: the video's thumbnail impressions and click-through rate
/// that Pacific day, and the share of the day each variant was live (by variant index; the rest
/// of the day no variant was: before the first swap, after the end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReachDay {
    pub date: NaiveDate,
    pub impressions: i64,
    pub ctr: f64,
    pub variant_share: Vec<f64>,
}

/// A test's reach as its page and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestReach {
    pub state: ReachState,
    pub reason: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    /// When the channel's reporting job was created, and so when its first report is due.
    pub job_created_at: Option<DateTime<Utc>>,
    pub first_report_expected_at: Option<DateTime<Utc>>,
    /// The newest day any report of the channel was received for.
    pub last_day_received: Option<NaiveDate>,
    /// The video's days overlapping the test, oldest first.
    pub days: Vec<TestReachDay>,
}

/// The span of a test that reach days are read for: its start to its end (or its early stop).
fn test_window(test: &AbTest) -> (DateTime<Utc>, DateTime<Utc>) {
    (test.starts_at, test.finished_at.map_or(test.ends_at, |f| f.min(test.ends_at)))
}

/// Which variant was live when: each successful swap until the next one (the last until `end`).
pub fn live_spans(periods: &[AbTestPeriod], end: DateTime<Utc>) -> Vec<AbPeriod> {
    let swaps: Vec<(DateTime<Utc>, usize)> =
        periods.iter().filter_map(|p| p.swapped_at.map(|at| (at, usize::try_from(p.variant).unwrap_or(0)))).collect();
    swaps
        .iter()
        .enumerate()
        .map(|(i, &(start, variant))| AbPeriod {
            start,
            end: swaps.get(i + 1).map_or(end, |next| next.0).max(start),
            variant,
            excluded: false,
        })
        .collect()
}

/// A test's days of reach with the share of each day each variant was live: the data the
/// analysis can weigh daily impressions and click-through by.
pub fn test_reach_days(detail: &AbTestDetail, days: &[ReachDay]) -> Vec<TestReachDay> {
    let (_, end) = test_window(&detail.test);
    let spans = live_spans(&detail.periods, end);
    days.iter()
        .map(|d| TestReachDay {
            date: d.date,
            impressions: d.impressions,
            ctr: d.ctr,
            variant_share: live_shares(&spans, d.day_start, d.day_end, detail.variants.len()),
        })
        .collect()
}

/// The state a job's progress gives, with its reason.
fn job_state(job: &ReachJob) -> (ReachState, String) {
    match job.last_day {
        None => (
            ReachState::WaitingForFirstReport,
            format!(
                "reporting job created {}; its first report is expected around {}",
                job.job_created_at.format("%Y-%m-%d %H:%M UTC"),
                (job.job_created_at + Duration::hours(FIRST_REPORTS_AFTER_HOURS)).format("%Y-%m-%d %H:%M UTC")
            ),
        ),
        Some(day) => (ReachState::Receiving, format!("last day received: {day}")),
    }
}

/// How a poll ended: the state and its reason, and for a transient failure the error to retry
/// with the pipeline's back-off.
struct Polled {
    state: ReachState,
    reason: String,
    retry: Option<YoutubeError>,
}

impl Polled {
    fn settled(state: ReachState, reason: impl Into<String>) -> Self {
        Self { state, reason: reason.into(), retry: None }
    }

    /// A failure becomes a state; only store failures stop the run.
    fn from_error(e: AbTestError) -> Result<Self, JobError> {
        Ok(match e {
            AbTestError::Revoked(reason) => Self::settled(ReachState::Revoked, reason),
            AbTestError::NotConnected => Self::settled(ReachState::Revoked, "no YouTube account is connected"),
            AbTestError::Youtube(e) if e.is_insufficient_scope() => Self::settled(ReachState::NotGranted, NOT_GRANTED),
            AbTestError::Youtube(e) => {
                let transient = e.is_retryable() || e.kind() == ErrorKind::QuotaExceeded;
                let reason = format!("{e}; retried {}", if transient { "shortly" } else { "next hour" });
                Self { state: ReachState::Failed, reason, retry: transient.then_some(e) }
            }
            AbTestError::QuotaExceeded => Self {
                state: ReachState::Failed,
                reason: "quota exceeded; retried shortly".to_owned(),
                retry: Some(YoutubeError::QuotaExceeded("Reporting API".to_owned())),
            },
            AbTestError::Store(e) => return Err(JobError::Store(e)),
            other => Self::settled(ReachState::Failed, format!("{other}; retried next hour")),
        })
    }
}

impl AbTests {
    /// The user's tests that can still use reach data, not failed.
    async fn collecting_tests(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<AbTest>, AbTestError> {
        let tests = self.store.user_abtests(user).await?;
        Ok(tests
            .into_iter()
            .filter(|t| t.state != AbTestState::Failed)
            .filter(|t| test_window(t).1 + Duration::days(COLLECT_AFTER_END_DAYS) > now)
            .collect())
    }

    /// Puts the user's reach target to work at `now` (created, or resumed after it finished).
    async fn schedule_reach(&self, user: UserId, now: DateTime<Utc>) -> Result<(), AbTestError> {
        let subject = user.get().to_string();
        self.store.ensure_target(TargetKind::Reach, &subject, now, now).await?;
        self.store.resume_target(TargetKind::Reach, &subject, now).await?;
        Ok(())
    }

    /// After a (re)connection: a grant with reach is read from now on (for the owner's changes
    /// and tests); tests that can still use reach data get it (or are told why not).
    pub(crate) async fn resume_reach(&self, user: UserId) -> Result<(), AbTestError> {
        let now = self.clock.now();
        if self.wants_reach(user, now).await? {
            self.schedule_reach(user, now).await?;
        }
        Ok(())
    }

    /// Whether the user's reach target has work: a connection whose grant includes reach, or a
    /// test that can still use reach data (to record its state).
    async fn wants_reach(&self, user: UserId, now: DateTime<Utc>) -> Result<bool, AbTestError> {
        let granted = self
            .store
            .youtube_connection(user)
            .await?
            .is_some_and(|c| c.state == ConnectionState::Active && has_reach_scope(&c));
        Ok(granted || !self.collecting_tests(user, now).await?.is_empty())
    }

    /// A new test's reach: on a grant with the scope, the channel's reporting job is ensured at
    /// once (so the test can say when its first data is due) and the user's reach target goes to
    /// work; without it, the test is marked `not_granted`. A failure here never fails the
    /// creation: the target retries.
    pub(crate) async fn start_reach(
        &self,
        test: AbTestId,
        connection: &YoutubeConnection,
        now: DateTime<Utc>,
    ) -> Result<(), AbTestError> {
        if !has_reach_scope(connection) {
            self.store.set_abtest_reach(test, ReachState::NotGranted, Some(NOT_GRANTED), now).await?;
            return Ok(());
        }
        let (state, reason) = match self.reach_job(connection, now).await {
            Ok(job) => job_state(&job),
            Err(AbTestError::Store(e)) => return Err(e.into()),
            Err(e) => (ReachState::Failed, format!("the reporting job could not be set up yet ({e}); retried")),
        };
        self.store.set_abtest_reach(test, state, Some(&reason), now).await?;
        self.schedule_reach(connection.user_id, now).await
    }

    /// The channel's reporting job: the one recorded, or found or created at YouTube (once per
    /// channel and report type) and recorded.
    async fn reach_job(&self, connection: &YoutubeConnection, now: DateTime<Utc>) -> Result<ReachJob, AbTestError> {
        if let Some(job) = self.store.reach_job(&connection.channel_id).await? {
            return Ok(job);
        }
        let job = self
            .with_token(connection.user_id, |token| async move {
                self.youtube.ensure_reporting_job(&token, REACH_REPORT_TYPE, JOB_NAME).await
            })
            .await?;
        Ok(self.store.set_reach_job(&connection.channel_id, &job.id, job.create_time, now).await?)
    }

    /// Reads the reports created since the last one read, oldest first, each stored in one
    /// transaction; returns the job as it stands after.
    async fn read_reports(&self, connection: &YoutubeConnection, now: DateTime<Utc>) -> Result<ReachJob, AbTestError> {
        let user = connection.user_id;
        let job = self.reach_job(connection, now).await?;
        let filter = ReportFilter { created_after: job.reports_through, ..ReportFilter::default() };
        let job_id = job.job_id.as_str();
        let filter = &filter;
        let mut reports =
            self.with_token(user, |token| async move { self.youtube.reports(&token, job_id, filter).await }).await?;
        reports.sort_by_key(|r| (r.create_time, r.start_time));
        for (i, report) in reports.iter().enumerate() {
            let rows =
                self.with_token(user, |token| async move { self.youtube.reach_rows(&token, report).await }).await?;
            // The position moves past a creation time once every report made then is stored.
            let through = reports
                .get(i + 1)
                .is_none_or(|next| next.create_time > report.create_time)
                .then_some(report.create_time);
            let stored = ReachReport {
                channel_id: connection.channel_id.clone(),
                // A Pacific day starts at 07:00 or 08:00 UTC of the same calendar date.
                date: report.start_time.date_naive(),
                day_start: report.start_time,
                day_end: report.end_time,
                rows: rows
                    .into_iter()
                    .map(|r| (r.video_id, i64::try_from(r.impressions).unwrap_or(i64::MAX), r.ctr))
                    .collect(),
            };
            self.store.record_reach_report(&stored, through, now).await?;
        }
        if !reports.is_empty() {
            tracing::info!(
                channel_id = %connection.channel_id, reports = reports.len(),
                "read {} reach reports of channel {}", reports.len(), connection.channel_id
            );
        }
        Ok(self.store.reach_job(&connection.channel_id).await?.unwrap_or(job))
    }

    /// One poll of the user's reach, as a state.
    async fn poll_reach(&self, user: UserId, now: DateTime<Utc>) -> Result<Polled, JobError> {
        let Some(connection) = self.store.youtube_connection(user).await? else {
            return Ok(Polled::settled(ReachState::Revoked, "no YouTube account is connected"));
        };
        if connection.state == ConnectionState::Revoked {
            let reason = connection.state_reason.unwrap_or_else(|| "the YouTube grant was revoked".into());
            return Ok(Polled::settled(ReachState::Revoked, reason));
        }
        if !has_reach_scope(&connection) {
            return Ok(Polled::settled(ReachState::NotGranted, NOT_GRANTED));
        }
        match self.read_reports(&connection, now).await {
            Ok(job) => {
                let (state, reason) = job_state(&job);
                Ok(Polled::settled(state, reason))
            }
            Err(e) => Polled::from_error(e),
        }
    }
}

/// A test's reach days with the share of each day each variant was live.
pub async fn reach_days_of(store: &dyn Store, detail: &AbTestDetail) -> Result<Vec<TestReachDay>, StoreError> {
    let (start, end) = test_window(&detail.test);
    let days = store.reach_days(&detail.test.video_id, start, end).await?;
    Ok(test_reach_days(detail, &days))
}

/// A test's reach: its state and reason, the channel's job, the days received.
pub async fn reach_of(store: &dyn Store, detail: &AbTestDetail) -> Result<TestReach, StoreError> {
    let test = &detail.test;
    let job = match store.youtube_connection(test.user_id).await? {
        Some(connection) => store.reach_job(&connection.channel_id).await?,
        None => None,
    };
    Ok(TestReach {
        state: test.reach_state,
        reason: test.reach_reason.clone(),
        updated_at: test.reach_updated_at,
        job_created_at: job.as_ref().map(|j| j.job_created_at),
        first_report_expected_at: job.as_ref().map(|j| j.job_created_at + Duration::hours(FIRST_REPORTS_AFTER_HOURS)),
        last_day_received: job.as_ref().and_then(|j| j.last_day),
        days: reach_days_of(store, detail).await?,
    })
}

impl Pipeline {
    /// The user's hourly reach poll; each collecting test gets the state it ends in. A transient
    /// failure (5xx, 429, a cut download, quota) is retried with the pipeline's back-off; any
    /// other is retried at the next hour.
    #[tracing::instrument(skip_all, fields(user_id = %target.subject))]
    pub(crate) async fn run_reach(&self, target: &Target, lease: &Lease) -> Result<(), JobError> {
        let user = UserId::new(
            target.subject.parse().map_err(|_| JobError::Permanent(format!("bad user id {:?}", target.subject)))?,
        );
        let ab = self.abtests()?;
        let now = self.clock.now();
        if !ab.wants_reach(user, now).await? {
            self.store.complete(lease, None).await?;
            return Ok(());
        }
        let tests = ab.collecting_tests(user, now).await?;
        let polled = ab.poll_reach(user, now).await?;
        for test in &tests {
            self.store.set_abtest_reach(test.id, polled.state, Some(&polled.reason), now).await?;
        }
        if let Some(e) = polled.retry {
            tracing::warn!(user_id = user.get(), error = %e, "reach of user {} not read: {e}", user.get());
            return Err(JobError::Youtube(e));
        }
        if polled.state == ReachState::Failed {
            tracing::warn!(user_id = user.get(), reason = %polled.reason, "reach of user {} not read", user.get());
        }
        self.store.complete(lease, Some(crate::abtest::next_hour(now))).await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        "2026-03-02T08:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::hours(h)
    }

    fn period(index: i32, variant: i32, swapped_at: Option<DateTime<Utc>>) -> AbTestPeriod {
        let start = t(12 * i64::from(index));
        AbTestPeriod {
            index,
            start,
            end: start + Duration::hours(12),
            variant,
            swapped_at,
            outcome: None,
            excluded: false,
        }
    }

    #[test]
    fn a_failed_swap_leaves_the_previous_variant_live() {
        let periods = [period(0, 0, Some(t(0))), period(1, 1, None), period(2, 1, Some(t(25)))];
        let spans = live_spans(&periods, t(36));
        let bounds: Vec<_> = spans.iter().map(|s| (s.start, s.end, s.variant)).collect();
        assert_eq!(bounds, vec![(t(0), t(25), 0), (t(25), t(36), 1)]);
        // The first Pacific day was all A; the second 1 h A, 11 h B, then the test had ended.
        assert_eq!(live_shares(&spans, t(0), t(24), 2), vec![1.0, 0.0]);
        let second = live_shares(&spans, t(24), t(48), 2);
        assert!((second[0] - 1.0 / 24.0).abs() < 1e-12 && (second[1] - 11.0 / 24.0).abs() < 1e-12, "{second:?}");
    }
}
