//! The weekly outlier run of one channel: update the channel's typical-band snapshot with the
//! measurements since the last run (incrementally, as the seed asks), judge channel outliers and
//! thumbnail/title outliers with core's rules, write the findings and reschedule a week later,
//! all in one transaction under the lease; then make sure every user who watches the channel has
//! a digest target due after the runs.
//!
//! A run is identified by its scheduled time `R` (the target's `next_due_at`), not by when it
//! happens to execute, so a retried or late run judges the same week with the same data cut-off
//! and the `(video, kind, week)` uniqueness makes it idempotent.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use tubewatch_core::change_reach::{ReachDayAt, reach_around, with_owner_reach};
use tubewatch_core::outliers::{
    ChangeEvent as CoreChange, ChangeJudgement, ChangeKind as CoreKind, ChangeOutlierConfig, ChannelBandSnapshot,
    ChannelDecay, ChannelJudgement, DecayShape, HourProfile, VideoViews, ViewsPoint, judge_change,
    judge_channel_outlier,
};
use tubewatch_core::{ChannelId, VideoId};
use tubewatch_store::{
    BandSnapshotRecord, ChangeKind, Lease, NewOutlier, OutlierKind, ReachDay, Store, StoreError, Target, TargetKind,
    VideoSeries,
};

use crate::outliers_config::OutliersConfig;
use crate::pipeline::{JobError, Pipeline};

/// A stored video as core's outlier rules see it, with measurements up to `until`.
pub fn video_views(series: &VideoSeries, until: DateTime<Utc>) -> VideoViews {
    VideoViews {
        video_id: series.video.id.clone(),
        published: series.video.published_at,
        is_short: series.video.is_short,
        points: series
            .views
            .iter()
            .filter(|r| r.measured_at <= until)
            .map(|r| ViewsPoint { at: r.measured_at, views: r.views })
            .collect(),
    }
}

/// The video's detected changes as core events. A change is seen at a measurement but was made
/// since the one before; when those are close, the pair is given as a quick flip-flop so the
/// interval holding the change counts neither as "before" nor as "after".
pub fn change_events(series: &VideoSeries, config: &ChangeOutlierConfig) -> Vec<CoreChange> {
    let mut out = Vec::new();
    for change in &series.changes {
        let kind = match change.change.kind {
            ChangeKind::Thumbnail => CoreKind::Thumbnail,
            ChangeKind::Title => CoreKind::Title,
        };
        let seen = change.change.detected_at;
        let previous = series.views.iter().map(|r| r.measured_at).filter(|&at| at < seen).max();
        match previous {
            Some(prev) if (seen - prev).num_minutes() <= config.flip_flop_minutes => {
                out.push(CoreChange { at: prev, kind });
                out.push(CoreChange { at: seen, kind });
            }
            Some(prev) => out.push(CoreChange { at: prev, kind }),
            None => out.push(CoreChange { at: seen, kind }),
        }
    }
    out
}

/// How far back a run measures the channel's rhythm of the day.
const PROFILE_SPAN: Duration = Duration::weeks(4);

/// Every video's measurements after `t` (videos with none left out).
fn measured_since(all: &[VideoViews], t: DateTime<Utc>) -> Vec<VideoViews> {
    all.iter()
        .map(|v| VideoViews { points: v.points.iter().filter(|p| p.at > t).copied().collect(), ..v.clone() })
        .filter(|v| !v.points.is_empty())
        .collect()
}

/// The channel's rhythm of the day at `run`, from its videos' hourly measurements of the last
/// four weeks (`all`: every video's measurements up to the run).
pub fn channel_profile(all: &[VideoViews], run: DateTime<Utc>) -> Option<HourProfile> {
    HourProfile::measure(&measured_since(all, run - PROFILE_SPAN))
}

/// What `video`'s change borrows from its channel: the decay shape and speeds pooled over its
/// other videos of the same kind (the latest `max_videos` with hourly measurements up to `run`),
/// each cut at its first change so that no change's step bends them.
pub fn channel_decay(
    config: &OutliersConfig,
    video: &VideoSeries,
    channel: &[VideoSeries],
    profile: Option<&HourProfile>,
    run: DateTime<Utc>,
) -> ChannelDecay {
    if config.change.decay != DecayShape::Pooled {
        return ChannelDecay::default();
    }
    let mut others: Vec<&VideoSeries> = channel
        .iter()
        .filter(|s| s.video.id != video.video.id && s.video.is_short == video.video.is_short)
        .filter(|s| s.video.published_at < run)
        .collect();
    others.sort_by_key(|s| std::cmp::Reverse(s.video.published_at));
    let videos: Vec<VideoViews> = others
        .into_iter()
        .map(|s| {
            let cut = s.changes.iter().map(|c| c.change.detected_at).min().unwrap_or(run).min(run);
            let mut v = video_views(s, cut);
            // The measurement that saw the change holds part of it: the cut is before it.
            v.points.retain(|p| p.at < cut || cut == run);
            v
        })
        .filter(|v| v.points.len() >= 13)
        .take(config.band.max_videos)
        .collect();
    ChannelDecay::measure(&videos, profile)
}

/// How a run judges the video's thumbnail/title change in its window (`channel`: the series of
/// the channel's videos, whose decay shape is pooled; `reach`: the owner's reach days of the
/// video, empty where the owner did not grant them).
pub fn judge_video_change(
    config: &OutliersConfig,
    series: &VideoSeries,
    views: &VideoViews,
    profile: Option<&HourProfile>,
    channel: &[VideoSeries],
    reach: &[ReachDayAt],
    run: DateTime<Utc>,
) -> ChangeJudgement {
    let (from, to) = config.change_window(run);
    let events = change_events(series, &config.change);
    if !events.iter().any(|e| e.at >= from && e.at < to) {
        return ChangeJudgement::NoChange;
    }
    let decay = channel_decay(config, series, channel, profile, run);
    let judged = judge_change(views, &events, from, to, profile, &decay, &config.change);
    add_owner_reach(judged, reach, &events, &config.change)
}

/// Reach days after a change compared at most: the click-through rate does not decay as views
/// do, so days after the views' own window still speak for the change.
const REACH_DAYS_AFTER_CHANGE: i64 = 7;

/// A judged change with the owner's reach around it added ([`with_owner_reach`]) where there
/// are reach days on both sides (after it: up to [`REACH_DAYS_AFTER_CHANGE`] days, and not past
/// the video's next change in `events`, its [`change_events`]); otherwise the views' judgement
/// as it is.
pub fn add_owner_reach(
    judged: ChangeJudgement,
    reach: &[ReachDayAt],
    events: &[CoreChange],
    config: &ChangeOutlierConfig,
) -> ChangeJudgement {
    let ChangeJudgement::Judged(lift) = judged else { return judged };
    if reach.is_empty() {
        return ChangeJudgement::Judged(lift);
    }
    let cap = lift.settled_at + Duration::days(REACH_DAYS_AFTER_CHANGE);
    let until = events.iter().map(|e| e.at).filter(|&at| at > lift.settled_at).fold(cap, DateTime::min);
    match reach_around(reach, lift.changed_at, lift.settled_at, until, config.confidence) {
        Ok(around) => ChangeJudgement::Judged(with_owner_reach(lift, &around, config)),
        Err(why) => {
            tracing::debug!(changed_at = %lift.changed_at, %why, "owner's reach not used: {why}");
            ChangeJudgement::Judged(lift)
        }
    }
}

/// How far around the changes' window their reach days are read: a week before it, and the
/// days a change's reach is compared over after it, with a day to spare for the Pacific day each
/// ends in.
const REACH_DAYS_BEFORE: i64 = 8;
const REACH_DAYS_AFTER: i64 = REACH_DAYS_AFTER_CHANGE + 1;

/// The owner's reach days of `video` around `[from, to)` as core reads them (none where the
/// owner did not grant the reach report).
pub async fn reach_days_around(
    store: &dyn Store,
    video: &VideoId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ReachDayAt>, StoreError> {
    let days = store
        .reach_days(video, from - Duration::days(REACH_DAYS_BEFORE), to + Duration::days(REACH_DAYS_AFTER))
        .await?;
    Ok(days.iter().map(reach_day_at).collect())
}

fn reach_day_at(d: &ReachDay) -> ReachDayAt {
    ReachDayAt { start: d.day_start, end: d.day_end, impressions: d.impressions as f64, ctr: d.ctr }
}

/// Each of the video's stored changes judged with what is measured up to `now`, as the video
/// page shows them: its lift with the counterfactual, or why it is not judged (yet). A change
/// that is part of a quick flip-flop gets its group's judgement. In the order of
/// `series.changes`.
pub fn judge_changes_now(
    config: &OutliersConfig,
    series: &VideoSeries,
    channel: &[VideoSeries],
    reach: &[ReachDayAt],
    now: DateTime<Utc>,
) -> Vec<ChangeJudgement> {
    let views = video_views(series, now);
    let all: Vec<VideoViews> = channel.iter().map(|s| video_views(s, now)).collect();
    let profile = channel_profile(&all, now);
    let events = change_events(series, &config.change);
    let decay = channel_decay(config, series, channel, profile.as_ref(), now);
    let mut out: Vec<ChangeJudgement> = Vec::with_capacity(series.changes.len());
    for change in &series.changes {
        // Where the change starts as a core event: the measurement before it was seen.
        let seen = change.change.detected_at;
        let at = series.views.iter().map(|r| r.measured_at).filter(|&at| at < seen).max().unwrap_or(seen);
        let judged =
            judge_change(&views, &events, at, at + Duration::seconds(1), profile.as_ref(), &decay, &config.change);
        let judged = match (add_owner_reach(judged, reach, &events, &config.change), out.last()) {
            // Inside a flip-flop started by an earlier change: that group's judgement.
            (ChangeJudgement::NoChange, Some(previous)) => previous.clone(),
            (judged, _) => judged,
        };
        out.push(judged);
    }
    out
}

/// Everything one run decides, before it is written (also what `eval outliers` inspects).
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub snapshot: ChannelBandSnapshot,
    pub outliers: Vec<NewOutlier>,
}

/// Judges one channel's week, given its stored snapshot (if any) and the series of its videos of
/// the last 60 days and more. Pure apart from the inputs: the same inputs give the same outcome.
pub fn judge_week(
    config: &OutliersConfig,
    channel: &ChannelId,
    previous: Option<(ChannelBandSnapshot, DateTime<Utc>)>,
    series: &[VideoSeries],
    reach: &HashMap<VideoId, Vec<ReachDayAt>>,
    run: DateTime<Utc>,
) -> Result<RunOutcome, tubewatch_core::outliers::OutlierError> {
    let week = OutliersConfig::week_label(run);
    // Every video's measurements up to the run, read once.
    let all: Vec<VideoViews> = series.iter().map(|s| video_views(s, run)).collect();
    let snapshot = match previous {
        // The week's delivery: every point measured since the last applied one.
        Some((mut snapshot, through)) => {
            snapshot.update(&measured_since(&all, through));
            snapshot
        }
        None => ChannelBandSnapshot::from_history(config.band, &all)?,
    };
    let profile = channel_profile(&all, run);
    let mut outliers = Vec::new();
    let judge_age = Duration::hours(config.judge_at_hours);
    for (s, views) in series.iter().zip(&all) {
        let age = run - s.video.published_at;
        let thumb_key = s.video.thumb.as_ref().and_then(|t| t.blob_key.clone());
        if age >= judge_age
            && age < judge_age + Duration::weeks(1)
            && let ChannelJudgement::Judged(score) = judge_channel_outlier(&snapshot, views, &config.channel)
            && score.outlier
        {
            outliers.push(NewOutlier {
                video_id: s.video.id.clone(),
                channel_id: channel.clone(),
                kind: OutlierKind::Channel,
                week: week.clone(),
                score: score.score,
                lift: None,
                ci_low: None,
                ci_high: None,
                age_hours: Some(score.age_hours),
                views: score.views,
                changed_at: None,
                thumb_key: thumb_key.clone(),
                explanation: score.explanation,
                found_at: run,
            });
        }
        if s.changes.is_empty() {
            continue;
        }
        let video_reach = reach.get(&s.video.id).map_or(&[][..], Vec::as_slice);
        if let ChangeJudgement::Judged(lift) =
            judge_video_change(config, s, views, profile.as_ref(), series, video_reach, run)
            && lift.flagged
        {
            let kind =
                if lift.kinds.contains(&CoreKind::Thumbnail) { OutlierKind::Thumbnail } else { OutlierKind::Title };
            // The thumbnail the change put up, where it was one.
            let changed_thumb = s
                .changes
                .iter()
                .filter(|c| c.change.kind == ChangeKind::Thumbnail && c.change.detected_at >= lift.changed_at)
                .find_map(|c| c.change.after_thumb_key.clone());
            outliers.push(NewOutlier {
                video_id: s.video.id.clone(),
                channel_id: channel.clone(),
                kind,
                week: week.clone(),
                score: 1.0 + lift.lift,
                lift: Some(lift.lift),
                ci_low: Some(lift.ci_low),
                ci_high: Some(lift.ci_high),
                age_hours: None,
                views: views.points.last().map_or(0, |p| p.views),
                changed_at: Some(lift.changed_at),
                thumb_key: changed_thumb.or(thumb_key),
                explanation: lift.explanation,
                found_at: run,
            });
        }
    }
    Ok(RunOutcome { snapshot, outliers })
}

/// How far back a run reads: the band's videos are at most 60 days old when they leave the
/// tracking window, and a few more weeks keep the latest `max_videos` of slow channels.
const SERIES_LOOKBACK_DAYS: i64 = 120;

/// How far back a channel's first run reads, to start its band from the videos seen in the
/// channel's history when tracking began (a slow channel's latest `max_videos` span months).
pub const FIRST_RUN_LOOKBACK_DAYS: i64 = 3 * 365;

impl Pipeline {
    #[tracing::instrument(skip_all, fields(channel_id = %target.subject))]
    pub(crate) async fn run_outliers(&self, target: &Target, lease: &Lease) -> Result<(), JobError> {
        let channel = ChannelId::parse(&target.subject).map_err(|e| JobError::Permanent(e.to_string()))?;
        let config = &self.config.outliers;
        let run = target.next_due_at;
        let stored = self.store.band_snapshot(&channel).await?;
        let previous = match &stored {
            Some(record) => {
                let snapshot: ChannelBandSnapshot = serde_json::from_str(&record.snapshot_json)
                    .map_err(|e| anyhow::anyhow!("band snapshot of channel {channel} is unreadable: {e}"))?;
                // A snapshot already past this run (a retried run after it was written) is used
                // as it is: the update ignores measurements it has already applied.
                Some((snapshot, record.applied_through))
            }
            None => None,
        };
        let lookback = if previous.is_some() { SERIES_LOOKBACK_DAYS } else { FIRST_RUN_LOOKBACK_DAYS };
        let series = self.store.channel_series(&channel, run - Duration::days(lookback)).await?;
        // The owner's reach of the videos with a change in the window (none without a grant).
        let (from, to) = config.change_window(run);
        let mut reach = HashMap::new();
        for s in series.iter().filter(|s| s.changes.iter().any(|c| c.change.detected_at >= from)) {
            let days = reach_days_around(&*self.store, &s.video.id, from, to).await?;
            if !days.is_empty() {
                reach.insert(s.video.id.clone(), days);
            }
        }
        let outcome = judge_week(config, &channel, previous, &series, &reach, run)
            .map_err(|e| JobError::Permanent(format!("outlier settings: {e}")))?;
        let through = stored.as_ref().map_or(run, |r| r.applied_through.max(run));
        let record = BandSnapshotRecord {
            channel_id: channel.clone(),
            snapshot_json: serde_json::to_string(&outcome.snapshot)
                .map_err(|e| anyhow::anyhow!("serialising the band snapshot of {channel}: {e}"))?,
            applied_through: through,
            updated_at: self.clock.now(),
        };
        let now = self.clock.now();
        let mut next = run + Duration::weeks(1);
        while next <= now {
            next += Duration::weeks(1);
        }
        let new = self.store.complete_outlier_run(lease, &record, &outcome.outliers, next).await?;
        tracing::info!(
            channel_id = %channel,
            week = %OutliersConfig::week_label(run),
            found = outcome.outliers.len(),
            new,
            "weekly outliers of channel {channel}"
        );
        // Everyone who sees this channel's outliers gets a digest after the runs.
        let digest_due = run + config.digest_delay;
        for user in self.store.channel_watchers(&channel).await? {
            self.store.ensure_target(TargetKind::Digest, &user.get().to_string(), digest_due, now).await?;
        }
        Ok(())
    }
}
