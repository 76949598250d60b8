//! The outliers' side a user reads: the weekly outliers among what they track, week by week, and
//! a channel's typical band (the weekly snapshot the channel page and the video chart draw).

use chrono::{DateTime, Duration, Utc};
use tubewatch_core::outliers::{ChangeJudgement, ChannelBandSnapshot};
use tubewatch_core::{ChannelId, UserId};
use tubewatch_store::{Outlier, StoreError, Video};

use super::Service;
use crate::OutliersConfig;
use crate::outliers_job::{judge_changes_now, reach_days_around};

/// A user's weekly outliers: the weeks that have some and one week's.
#[derive(Debug, Clone)]
pub struct WeeklyOutliers {
    /// Weeks with outliers of what the user tracks, newest first.
    pub weeks: Vec<String>,
    /// The week shown: the one asked for, else the newest; `None` when there is none.
    pub week: Option<String>,
    pub outliers: Vec<Outlier>,
}

impl Service<'_> {
    /// The outliers of what `user` tracks in `week` (`2026-W10`, checked by the caller), or in
    /// the newest week that has some, with the `weeks_listed` newest such weeks.
    pub async fn weekly_outliers(
        &self,
        user: UserId,
        week: Option<String>,
        weeks_listed: u32,
    ) -> Result<WeeklyOutliers, StoreError> {
        let weeks = self.store.user_outlier_weeks(user, weeks_listed).await?;
        let week = week.or_else(|| weeks.first().cloned());
        let outliers = match &week {
            Some(week) => self.store.user_week_outliers(user, week).await?,
            None => Vec::new(),
        };
        Ok(WeeklyOutliers { weeks, week, outliers })
    }

    /// Each of `video`'s changes judged with what is measured now, keyed by when it was detected:
    /// against its channel's decay where the channel's videos (of the last 120 days at least)
    /// teach it, else the published decay.
    pub async fn judge_changes(
        &self,
        config: &OutliersConfig,
        video: &Video,
    ) -> Result<Vec<(DateTime<Utc>, ChangeJudgement)>, StoreError> {
        let now = self.clock.now();
        let since = video.published_at.min(now - Duration::days(120));
        let series = self.store.channel_series(&video.channel_id, since).await?;
        let Some(mine) = series.iter().find(|s| s.video.id == video.id) else { return Ok(Vec::new()) };
        let reach = reach_days_around(self.store, &video.id, video.published_at, now).await?;
        let judged = judge_changes_now(config, mine, &series, &reach, now);
        Ok(mine.changes.iter().map(|c| c.change.detected_at).zip(judged).collect())
    }

    /// A channel's typical band as last computed, with when; `None` before the first weekly run.
    /// A snapshot that cannot be read is logged and treated as none: the pages draw without it.
    pub async fn typical_band(
        &self,
        channel: &ChannelId,
    ) -> Result<Option<(ChannelBandSnapshot, DateTime<Utc>)>, StoreError> {
        let Some(record) = self.store.band_snapshot(channel).await? else { return Ok(None) };
        match serde_json::from_str::<ChannelBandSnapshot>(&record.snapshot_json) {
            Ok(snapshot) => Ok(Some((snapshot, record.updated_at))),
            Err(e) => {
                tracing::warn!(channel_id = %channel, error = %e, "unreadable band snapshot of channel {channel}");
                Ok(None)
            }
        }
    }
}
