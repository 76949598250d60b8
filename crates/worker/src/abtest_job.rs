//! The A/B test job: one leased target per test (subject: the test id), run at every whole hour
//! of the test. Each run measures the video's views for the hour (the analysis needs hourly
//! data, finer than tracking after day 7), checks that what is live is what tubewatch put there
//! (flagging changes made outside it), then makes the swap that starts a period
//! (`thumbnails.set` and/or a read-modify-write `videos.update`) and records its actual time and
//! outcome; a failed or late swap leaves its period out of the analysis. At the end it analyses,
//! restores the original or applies the winner as the user chose, verifies that by reading it
//! back, stores the result and emails it.
//!
//! Within a run the measurement comes before the swap, and the analysis cuts periods at the
//! recorded swap times: the hour that just ended counts for the variant live during it.

use chrono::{DateTime, Utc};
use tubewatch_core::abtest::{
    AbAnalysis, AbPeriod, AnalysisConfig, Verdict, analyse_with_fallback, first_sequential_look, sequential_verdict,
    variant_label,
};
use tubewatch_core::outliers::ViewsPoint;
use tubewatch_core::reach::ReachObs;
use tubewatch_core::{Slot, VideoId};
use tubewatch_store::{
    AbTestDetail, AbTestId, AbTestKind, AbTestPeriod, AbTestState, AbViews, ConnectionState, FinalAction, Lease,
    SwapRecord, Target,
};
use tubewatch_youtube::{PerceptualHash, ThumbnailSize, YoutubeError};

use crate::abtest::{AbTestError, AbTests, READ_UNITS, WRITE_UNITS, next_hour};
use crate::abtest_result::AbResult;
use crate::mail::Mail;
use crate::pipeline::{JobError, Pipeline};
use crate::reach::TestReachDay;

/// Why a test wraps up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Its schedule ran out.
    Scheduled,
    /// Its owner stopped it.
    StoppedByUser,
    /// Its sequential verdict was decided at an hourly look.
    Decided,
}

/// What a test has measured so far (see [`Pipeline::data`]).
struct TestData {
    points: Vec<ViewsPoint>,
    periods: Vec<AbPeriod>,
    reach_days: Vec<TestReachDay>,
}

impl TestData {
    /// The analysis of everything measured: the hourly views and the reach days received.
    fn analyse(&self, detail: &AbTestDetail, config: &AnalysisConfig) -> (AbAnalysis, Option<String>) {
        let reach: Vec<ReachObs> = self
            .reach_days
            .iter()
            .map(|d| ReachObs { impressions: d.impressions as f64, ctr: d.ctr, shares: d.variant_share.clone() })
            .collect();
        let published = detail.test.video_published_at;
        analyse_with_fallback(&self.points, published, &self.periods, detail.variants.len(), &reach, config)
    }
}

/// What should be live: a thumbnail (blob and perceptual hash) and/or a title.
#[derive(Debug, Clone, PartialEq)]
struct Look {
    thumb_key: Option<String>,
    thumb_phash: Option<String>,
    title: Option<String>,
}

impl Look {
    fn of_variant(detail: &AbTestDetail, variant: usize) -> Self {
        let v = &detail.variants[variant.min(detail.variants.len().saturating_sub(1))];
        Self { thumb_key: v.thumb_blob_key.clone(), thumb_phash: v.thumb_phash.clone(), title: v.title.clone() }
    }

    /// The original as far as the test touches it.
    fn original(detail: &AbTestDetail) -> Self {
        let t = &detail.test;
        let thumbs = matches!(t.kind, AbTestKind::Thumbnail | AbTestKind::Both);
        let titles = matches!(t.kind, AbTestKind::Title | AbTestKind::Both);
        Self {
            thumb_key: t.original_thumb_key.clone().filter(|_| thumbs),
            thumb_phash: t.original_thumb_phash.clone().filter(|_| thumbs),
            title: t.original_title.clone().filter(|_| titles),
        }
    }
}

impl From<AbTestError> for JobError {
    fn from(e: AbTestError) -> Self {
        match e {
            AbTestError::Youtube(y) => JobError::Youtube(y),
            AbTestError::Store(s) => JobError::Store(s),
            other => JobError::Other(anyhow::anyhow!("{other}")),
        }
    }
}

/// YouTube refused the request itself (permanent errors, or a 4xx other than timeouts and rate
/// limits, such as a title it no longer accepts): repeating it cannot help.
fn refused(e: &YoutubeError) -> bool {
    e.is_permanent()
        || matches!(e, YoutubeError::Http { status: Some(s), .. } if (400..500).contains(s) && *s != 408 && *s != 429)
}

fn as_usize(v: i32) -> usize {
    usize::try_from(v).unwrap_or(0)
}

/// The schedule as planned at creation.
pub fn planned_periods(detail: &AbTestDetail) -> Vec<AbPeriod> {
    detail
        .periods
        .iter()
        .map(|p| AbPeriod { start: p.start, end: p.end, variant: as_usize(p.variant), excluded: false })
        .collect()
}

/// When a sequential test's hourly looks begin (see [`first_sequential_look`]).
pub fn first_look(detail: &AbTestDetail) -> Option<DateTime<Utc>> {
    first_sequential_look(&planned_periods(detail), detail.variants.len())
}

/// The periods as the analysis sees them: each one starts when its swap was actually made and
/// ends when the next one's was (the last one at `end`); periods whose swap failed, came late,
/// or that collapse to nothing are excluded.
pub fn analysis_periods(periods: &[AbTestPeriod], end: DateTime<Utc>) -> Vec<AbPeriod> {
    let starts: Vec<DateTime<Utc>> = periods.iter().map(|p| p.swapped_at.unwrap_or(p.start).max(p.start)).collect();
    let mut out = Vec::new();
    for (i, p) in periods.iter().enumerate() {
        let start = starts[i];
        let stop = starts.get(i + 1).copied().unwrap_or(end).min(end);
        if start >= stop || start >= end {
            continue;
        }
        let start = out.last().map_or(start, |prev: &AbPeriod| start.max(prev.end));
        if start >= stop {
            continue;
        }
        out.push(AbPeriod {
            start,
            end: stop,
            variant: as_usize(p.variant),
            excluded: p.excluded || p.swapped_at.is_none(),
        });
    }
    out
}

impl Pipeline {
    pub(crate) fn abtests(&self) -> Result<AbTests, JobError> {
        let services = self
            .config
            .abtests
            .clone()
            .ok_or_else(|| JobError::Permanent("A/B tests are not configured (no [oauth] settings)".into()))?;
        Ok(AbTests {
            store: self.store.clone(),
            youtube: self.youtube.clone(),
            blobs: self.blobs.clone(),
            clock: self.clock.clone(),
            services,
        })
    }

    #[tracing::instrument(skip_all, fields(test_id = %target.subject))]
    pub(crate) async fn run_abtest_step(&self, target: &Target, lease: &Lease) -> Result<(), JobError> {
        let id: AbTestId =
            target.subject.parse().map_err(|_| JobError::Permanent(format!("bad test id {:?}", target.subject)))?;
        let ab = self.abtests()?;
        let mut detail =
            self.store.abtest(id).await?.ok_or_else(|| JobError::Permanent(format!("no A/B test {id}")))?;
        let now = self.clock.now();
        match detail.test.state {
            AbTestState::Finished | AbTestState::Failed => {
                self.store.complete(lease, None).await?;
                return Ok(());
            }
            AbTestState::Stopped if detail.test.result_json.is_some() => {
                self.store.complete(lease, None).await?;
                return Ok(());
            }
            AbTestState::Stopped => {
                self.measure(&ab, &detail, now).await?;
                return self.wrap_up(&ab, &detail, lease, Ending::StoppedByUser).await;
            }
            AbTestState::Paused => {
                // Paused for a revoked grant: resume once the user has connected again; the
                // periods missed meanwhile are excluded (their swaps come late).
                let active = self
                    .store
                    .youtube_connection(detail.test.user_id)
                    .await?
                    .is_some_and(|c| c.state == ConnectionState::Active);
                if !active {
                    self.store.complete(lease, Some(next_hour(now))).await?;
                    return Ok(());
                }
                self.store.set_abtest_state(id, AbTestState::Running, None, now).await?;
                detail.test.state = AbTestState::Running;
                tracing::info!(test_id = id.get(), "A/B test {id} resumed after reconnection");
            }
            AbTestState::Running => {}
        }
        self.measure(&ab, &detail, now).await?;
        // A better estimate is a nicety: failing to make one never holds up the test.
        match ab.reestimate_power(&detail, now).await {
            Ok(true) => {
                tracing::info!(
                    test_id = id.get(),
                    "A/B test {id}: power estimate made again from its first day's views"
                )
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(test_id = id.get(), error = %e, "A/B test {id}: power estimate not made again"),
        }
        if now >= detail.test.ends_at {
            return self.wrap_up(&ab, &detail, lease, Ending::Scheduled).await;
        }
        if self.decided(&ab, &detail, now).await? {
            tracing::info!(test_id = id.get(), "A/B test {id}: decided at an hourly look, ending early");
            return self.wrap_up(&ab, &detail, lease, Ending::Decided).await;
        }
        match self.swap_if_due(&ab, &detail, now).await {
            Ok(()) => {}
            Err(AbTestError::Revoked(reason)) => {
                // The store paused the test with the reason; look again every hour.
                tracing::warn!(test_id = id.get(), %reason, "A/B test {id} paused: grant revoked");
                self.store.complete(lease, Some(next_hour(now))).await?;
                return Ok(());
            }
            Err(AbTestError::NotConnected) => {
                self.store
                    .set_abtest_state(id, AbTestState::Paused, Some("no YouTube account is connected"), now)
                    .await?;
                self.store.complete(lease, Some(next_hour(now))).await?;
                return Ok(());
            }
            Err(AbTestError::Youtube(e)) if refused(&e) => {
                let reason = format!("YouTube refused the swap for good: {e}");
                tracing::warn!(test_id = id.get(), %reason, "A/B test {id} failed");
                self.store.set_abtest_state(id, AbTestState::Failed, Some(&reason), now).await?;
                self.store.complete(lease, None).await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        self.store.complete(lease, Some(next_hour(now).min(detail.test.ends_at))).await?;
        Ok(())
    }

    /// Records the hour's views (once per slot) and flags a thumbnail or title that is not what
    /// tubewatch last put live. A failed read only loses that hour: it never holds up a swap.
    async fn measure(&self, ab: &AbTests, detail: &AbTestDetail, now: DateTime<Utc>) -> Result<(), JobError> {
        let test = &detail.test;
        let slot = Slot::hour_of(now).start();
        if slot < test.starts_at || slot > test.ends_at {
            return Ok(());
        }
        let info = match self.youtube.watch_page(&test.video_id).await {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(test_id = test.id.get(), error = %e, "A/B test {}: views not measured this hour", test.id);
                return Ok(());
            }
        };
        let views = AbViews { slot, measured_at: now, views: i64::try_from(info.views).unwrap_or(i64::MAX) };
        self.store.record_abtest_views(test.id, &views).await?;

        if test.outside_change.is_some() {
            return Ok(());
        }
        // What should be live: the variant of the last successful swap, or the original.
        let expected = detail
            .periods
            .iter()
            .rev()
            .find(|p| p.start <= now && p.swapped_at.is_some())
            .map_or_else(|| Look::original(detail), |p| Look::of_variant(detail, as_usize(p.variant)));
        let mut changed = Vec::new();
        if let Some(title) = expected.title.as_ref().or(test.original_title.as_ref())
            && &info.title != title
        {
            changed.push(format!("title is {:?}, expected {:?}", info.title, title));
        }
        if let Some(phash) = expected.thumb_phash.as_deref().and_then(PerceptualHash::from_hex)
            && let Ok(live) = ab.youtube.thumbnail(&test.video_id, ThumbnailSize::Medium).await
            && !live.hashes.phash.same_picture(&phash)
        {
            changed.push("the thumbnail is not the one tubewatch set".to_owned());
        }
        if !changed.is_empty() {
            let detail_text = format!("changed outside tubewatch: {}", changed.join("; "));
            if self.store.flag_abtest_outside_change(test.id, &detail_text, now).await? {
                tracing::warn!(test_id = test.id.get(), video_id = %test.video_id, "A/B test {}: {detail_text}", test.id);
            }
        }
        Ok(())
    }

    /// Makes the swap that starts the current period, if not made yet.
    async fn swap_if_due(&self, ab: &AbTests, detail: &AbTestDetail, now: DateTime<Utc>) -> Result<(), AbTestError> {
        let test = &detail.test;
        let Some(period) = detail.periods.iter().find(|p| p.start <= now && now < p.end) else { return Ok(()) };
        let pending = period.swapped_at.is_none() && period.outcome.as_deref().is_none_or(|o| o.starts_with("retry"));
        if !pending {
            return Ok(());
        }
        let late = now - period.start > ab.services.swap_tolerance;
        let previous = period.index.checked_sub(1).and_then(|i| detail.periods.get(as_usize(i)));
        // The same variant again after a successful swap: nothing to change, no quota spent.
        if let Some(prev) = previous
            && prev.variant == period.variant
            && prev.swapped_at.is_some()
        {
            let record = SwapRecord {
                period: period.index,
                swapped_at: Some(now),
                outcome: "unchanged".into(),
                excluded: prev.excluded || late,
                quota_units: 0,
            };
            self.store.record_abtest_swap(test.id, &record).await?;
            return Ok(());
        }
        let look = Look::of_variant(detail, as_usize(period.variant));
        let (result, units) = self.put_live(ab, detail, &look).await;
        let record = match &result {
            Ok(()) => SwapRecord {
                period: period.index,
                swapped_at: Some(now),
                outcome: if late { "late".into() } else { "ok".into() },
                excluded: late,
                quota_units: units,
            },
            Err(AbTestError::QuotaExceeded) => SwapRecord {
                period: period.index,
                swapped_at: None,
                outcome: "quota_exceeded".into(),
                excluded: true,
                quota_units: units,
            },
            Err(AbTestError::Youtube(e)) if !refused(e) => SwapRecord {
                period: period.index,
                swapped_at: None,
                outcome: format!("retry: {e}"),
                excluded: true,
                quota_units: units,
            },
            Err(e) => SwapRecord {
                period: period.index,
                swapped_at: None,
                outcome: format!("failed: {e}"),
                excluded: true,
                quota_units: units,
            },
        };
        self.store.record_abtest_swap(test.id, &record).await?;
        tracing::info!(
            test_id = test.id.get(), period = period.index, variant = period.variant, outcome = %record.outcome,
            "A/B test {} period {}: variant {} {}", test.id, period.index, variant_label(as_usize(period.variant)), record.outcome
        );
        match result {
            // The quota resets at midnight Pacific: the period is lost, the test goes on.
            Err(AbTestError::QuotaExceeded) => Ok(()),
            other => other,
        }
    }

    /// Puts a look live through the Data API; returns the units spent even on failure.
    async fn put_live(&self, ab: &AbTests, detail: &AbTestDetail, look: &Look) -> (Result<(), AbTestError>, i64) {
        let mut units = 0;
        let result = async {
            let user = detail.test.user_id;
            let video = &detail.test.video_id;
            if let Some(key) = &look.thumb_key {
                let image = ab
                    .blobs
                    .get(key)
                    .await?
                    .ok_or_else(|| AbTestError::Other(anyhow::anyhow!("thumbnail blob {key} is missing")))?;
                ab.with_token(user, |token| {
                    let image = image.clone();
                    async move { ab.youtube.set_thumbnail(&token, video, &image).await }
                })
                .await?;
                // Counted once made: a call refused for quota costs nothing.
                units += WRITE_UNITS;
            }
            if let Some(title) = &look.title {
                ab.with_token(user, |token| async move {
                    ab.youtube.update_video_title(&token, video, title).await.map(|_| ())
                })
                .await?;
                units += WRITE_UNITS + READ_UNITS;
            }
            Ok(())
        }
        .await;
        (result, units)
    }

    /// The test's data so far: its hourly views, its periods as they were actually live (the
    /// last cut at the newest measurement) and the owner's reach days up to `until`.
    async fn data(&self, detail: &AbTestDetail, until: DateTime<Utc>) -> Result<TestData, JobError> {
        let points: Vec<ViewsPoint> = self
            .store
            .abtest_views(detail.test.id)
            .await?
            .into_iter()
            .map(|v| ViewsPoint { at: v.measured_at, views: v.views })
            .collect();
        let periods = analysis_periods(&detail.periods, points.last().map_or(until, |p| p.at));
        let mut ended = detail.clone();
        ended.test.finished_at = Some(until);
        let reach_days = crate::reach::reach_days_of(&*self.store, &ended).await?;
        Ok(TestData { points, periods, reach_days })
    }

    /// Whether a sequential test's always-valid verdict is decided at this hour's look (looks
    /// start once every variant has been live twice; see [`first_sequential_look`]).
    async fn decided(&self, ab: &AbTests, detail: &AbTestDetail, now: DateTime<Utc>) -> Result<bool, JobError> {
        let k = detail.variants.len();
        if !detail.test.sequential {
            return Ok(false);
        }
        if first_look(detail).is_none_or(|first| now < first) {
            return Ok(false);
        }
        let data = self.data(detail, now).await?;
        if data.periods.is_empty() {
            return Ok(false);
        }
        let (analysis, _) = data.analyse(detail, &ab.services.analysis);
        Ok(sequential_verdict(&analysis, k, &ab.services.analysis).is_some())
    }

    /// Analyses, puts the final look live, verifies it, stores the result and sends it.
    async fn wrap_up(
        &self,
        ab: &AbTests,
        detail: &AbTestDetail,
        lease: &Lease,
        ending: Ending,
    ) -> Result<(), JobError> {
        let test = &detail.test;
        let now = self.clock.now();
        // The last measurement (made just before this wrap-up) closes the last period.
        let data = self.data(detail, now).await?;
        let (analysis, analysis_error) = if data.periods.is_empty() {
            (None, Some("the test ended before its first swap".to_owned()))
        } else {
            let (a, fallback) = data.analyse(detail, &ab.services.analysis);
            (Some(a), fallback)
        };
        let winner = match analysis.as_ref().map(|a| a.verdict) {
            Some(Verdict::Winner { variant }) if test.final_action == FinalAction::ApplyWinner => Some(variant),
            _ => None,
        };
        let look = winner.map_or_else(|| Look::original(detail), |v| Look::of_variant(detail, v));
        let applied_name =
            winner.map_or_else(|| "the original".to_owned(), |v| format!("variant {}", variant_label(v)));
        let (put, units) = self.put_live(ab, detail, &look).await;
        self.store.add_abtest_quota(test.id, units).await?;
        let (applied, verified, verification) = match put {
            Ok(()) => {
                let (ok, how) = self.verify_live(ab, detail, &look).await;
                (format!("{applied_name} is live"), ok, how)
            }
            Err(AbTestError::Revoked(reason)) | Err(AbTestError::Youtube(YoutubeError::Unauthorized(reason))) => (
                format!("{applied_name} could not be put live: the YouTube grant is gone ({reason})"),
                false,
                "not checked".into(),
            ),
            Err(AbTestError::NotConnected) => (
                format!("{applied_name} could not be put live: no YouTube account connected"),
                false,
                "not checked".into(),
            ),
            Err(AbTestError::Youtube(e)) if refused(&e) => {
                (format!("{applied_name} could not be put live: {e}"), false, "not checked".into())
            }
            // Transient failure or quota: the pipeline retries the wrap-up later.
            Err(e) => return Err(e.into()),
        };
        let fresh = self.store.abtest(test.id).await?.map_or_else(|| test.clone(), |d| d.test);
        let result = AbResult {
            analysis,
            analysis_error,
            stopped_early: ending == Ending::StoppedByUser,
            decided_early: ending == Ending::Decided,
            applied_variant: winner,
            applied,
            verified,
            verification,
            periods_excluded: detail.periods.iter().filter(|p| p.excluded || p.swapped_at.is_none()).count(),
            quota_used: fresh.quota_used,
            outside_change: fresh.outside_change.clone(),
            reach_state: fresh.reach_state,
            reach_days: data.reach_days,
        };
        let json = result.to_json().map_err(anyhow::Error::from)?;
        let state = if ending == Ending::StoppedByUser { AbTestState::Stopped } else { AbTestState::Finished };
        self.store.finish_abtest(test.id, state, &json, now).await?;
        tracing::info!(test_id = test.id.get(), verified, "A/B test {} wrapped up: {}", test.id, result.applied);
        self.send_result(ab, detail, &result).await;
        self.store.complete(lease, None).await?;
        Ok(())
    }

    /// Reads the final state back: the thumbnail YouTube serves must be the same picture, the
    /// title the same text.
    async fn verify_live(&self, ab: &AbTests, detail: &AbTestDetail, look: &Look) -> (bool, String) {
        let video = &detail.test.video_id;
        let mut notes = Vec::new();
        let mut ok = true;
        if let Some(expected) = look.thumb_phash.as_deref().and_then(PerceptualHash::from_hex) {
            match ab.youtube.thumbnail(video, ThumbnailSize::Medium).await {
                Ok(live) if live.hashes.phash.same_picture(&expected) => notes.push("thumbnail matches".to_owned()),
                Ok(live) => {
                    ok = false;
                    notes.push(format!("thumbnail differs ({} bits)", live.hashes.phash.distance(&expected)));
                }
                Err(e) => {
                    ok = false;
                    notes.push(format!("thumbnail not read: {e}"));
                }
            }
        }
        if let Some(title) = &look.title {
            let read = ab
                .with_token(detail.test.user_id, |token| async move { ab.youtube.video_snippet(&token, video).await })
                .await;
            if self.store.add_abtest_quota(detail.test.id, READ_UNITS).await.is_err() {
                tracing::warn!(test_id = detail.test.id.get(), "quota not counted");
            }
            match read {
                Ok(snippet) if snippet.get("title").and_then(|t| t.as_str()) == Some(title.as_str()) => {
                    notes.push("title matches".to_owned())
                }
                Ok(snippet) => {
                    ok = false;
                    notes.push(format!("title is {:?}", snippet.get("title")));
                }
                Err(e) => {
                    ok = false;
                    notes.push(format!("title not read: {e}"));
                }
            }
        }
        (ok, notes.join("; "))
    }

    /// Emails the result through the pipeline's mailer (SMTP or the outbox, as for digests). A
    /// failed send leaves the test in `abtests_to_notify` for a later attempt.
    async fn send_result(&self, ab: &AbTests, detail: &AbTestDetail, result: &AbResult) {
        let mailer = &self.config.mailer;
        let test = &detail.test;
        let user = match self.store.user(test.user_id).await {
            Ok(Some(user)) => user,
            other => {
                tracing::warn!(test_id = test.id.get(), ?other, "A/B result not mailed: user not found");
                return;
            }
        };
        let mail = result_mail(
            test.id,
            &test.video_id,
            user.email.to_string(),
            detail,
            result,
            ab.services.public_url.as_deref(),
        );
        match mailer.send(&mail).await {
            Ok(_) => {
                if let Err(e) = self.store.mark_abtest_notified(test.id, self.clock.now()).await {
                    tracing::warn!(test_id = test.id.get(), error = %e, "A/B result mailed but not marked");
                }
            }
            Err(e) => {
                tracing::warn!(test_id = test.id.get(), error = %format!("{e:#}"), "A/B result mail failed; kept for later")
            }
        }
    }
}

fn result_mail(
    id: AbTestId,
    video: &VideoId,
    to: String,
    detail: &AbTestDetail,
    result: &AbResult,
    public_url: Option<&str>,
) -> Mail {
    let verdict = match result.analysis.as_ref().map(|a| a.verdict) {
        Some(Verdict::Winner { variant }) => format!("variant {} won", variant_label(variant)),
        Some(Verdict::PerformedSame) => "the variants performed the same".to_owned(),
        Some(Verdict::Inconclusive) => "inconclusive".to_owned(),
        None => "no result".to_owned(),
    };
    let mut lines = vec![format!("Your A/B test {id} on video {video} has ended: {verdict}."), String::new()];
    if let Some(a) = &result.analysis {
        lines.push(a.summary.clone());
        for e in &a.effects {
            let v = &detail.variants[e.variant.min(detail.variants.len().saturating_sub(1))];
            let what = v.title.clone().map_or_else(|| "thumbnail".to_owned(), |t| format!("{t:?}"));
            lines.push(format!(
                "  {} ({what}): ×{:.3} vs A (95% CI {:.3}–{:.3}), chance best {:.0}%; naive views {:.0}",
                variant_label(e.variant),
                e.ratio_to_a,
                e.ci_low,
                e.ci_high,
                e.prob_best * 100.0,
                a.naive.views.get(e.variant).copied().unwrap_or(0.0)
            ));
        }
    } else if let Some(err) = &result.analysis_error {
        lines.push(format!("No analysis: {err}"));
    }
    lines.push(String::new());
    lines.push(format!("{} ({}).", result.applied, if result.verified { "verified" } else { "not verified" }));
    if result.periods_excluded > 0 {
        lines.push(format!("{} rotation period(s) were left out (failed or late swaps).", result.periods_excluded));
    }
    if let Some(change) = &result.outside_change {
        lines.push(format!("Warning: the video was {change}; the result may be affected."));
    }
    lines.push(format!("Data API quota used: {} units.", result.quota_used));
    if let Some(url) = public_url {
        lines.push(format!("Details: {}/abtests/{id}", url.trim_end_matches('/')));
    }
    let text = lines.join("\n");
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let html = format!(
        "<html><body><h2>A/B test result: {}</h2><pre style=\"font-family:inherit\">{}</pre></body></html>",
        escape(&verdict),
        escape(&text)
    );
    Mail {
        key: format!("abtest-{id}-result"),
        to,
        subject: format!("A/B test result for {video}: {verdict}"),
        text,
        html,
        images: Vec::new(),
        unsubscribe_url: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        "2026-03-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::hours(h)
    }

    fn period(i: i32, variant: i32, swapped: Option<DateTime<Utc>>, excluded: bool) -> AbTestPeriod {
        AbTestPeriod {
            index: i,
            start: t(12 * i64::from(i)),
            end: t(12 * i64::from(i + 1)),
            variant,
            swapped_at: swapped,
            outcome: None,
            excluded,
        }
    }

    #[test]
    fn analysis_periods_follow_actual_swap_times() {
        let late = t(12) + Duration::minutes(30);
        let periods = vec![
            period(0, 0, Some(t(0) + Duration::seconds(31)), false),
            period(1, 1, Some(late), true),
            period(2, 1, None, true),
            period(3, 0, Some(t(36) + Duration::seconds(31)), false),
        ];
        let out = analysis_periods(&periods, t(48) + Duration::seconds(30));
        assert_eq!(out.len(), 4);
        assert_eq!((out[0].start, out[0].end, out[0].excluded), (t(0) + Duration::seconds(31), late, false));
        assert_eq!((out[1].variant, out[1].excluded), (1, true));
        assert!(out[2].excluded, "a failed swap's period is excluded");
        assert_eq!((out[3].end, out[3].excluded), (t(48) + Duration::seconds(30), false));
        assert!(out.windows(2).all(|w| w[0].end <= w[1].start));
        // A test stopped early ends its schedule at the stop.
        let stopped = analysis_periods(&periods, t(20));
        assert_eq!(stopped.len(), 2);
        assert_eq!(stopped[1].end, t(20));
    }
}
