//! Reads and the one piece of state the web UI needs beyond the other traits: when a user last
//! looked at the dashboard (for "what changed since your last visit"), the changes and outliers
//! a user can see since a given time, the weeks that have outliers for a user, and the stamp that
//! tells whether a video's chart series changed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_core::{UserId, VideoId};

use crate::{ChangeEvent, Outlier, Result, TargetState};

/// A user's dashboard visits: `seen_at` is the latest load of the dashboard, `since` the start of
/// the window it shows as "since your last visit" (the web decides when a visit is a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardVisit {
    pub seen_at: DateTime<Utc>,
    pub since: DateTime<Utc>,
}

/// A change event with its video's current title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisibleChange {
    pub event: ChangeEvent,
    pub video_title: String,
}

/// What a video's series (its record, its changes and the video's own fields as a chart shows
/// them) depends on. Records and change events are only ever added, never rewritten, so their
/// counts and latest keys tell whether any was added; two equal stamps mean equal series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SeriesStamp {
    pub records: u64,
    pub last_slot: Option<DateTime<Utc>>,
    pub changes: u64,
    pub last_change_id: Option<i64>,
    pub title: String,
    pub thumb_blob_key: Option<String>,
    /// The video target's state (`None`: never tracked).
    pub tracking: Option<TargetState>,
}

#[async_trait]
pub trait UiStore: Send + Sync {
    /// The stamp of a video's series when `user` sees the video (tracked directly or through a
    /// monitored channel); `None` otherwise or when there is no such video. One query answered
    /// from indexes, whatever the series' length.
    async fn visible_series_stamp(&self, user: UserId, video: &VideoId) -> Result<Option<SeriesStamp>>;

    async fn dashboard_visit(&self, user: UserId) -> Result<Option<DashboardVisit>>;
    async fn set_dashboard_visit(&self, user: UserId, visit: &DashboardVisit) -> Result<()>;

    /// Thumbnail and title changes detected after `since` on videos the user sees (tracked
    /// directly or through a monitored channel), newest first, at most `limit`.
    async fn user_changes_since(&self, user: UserId, since: DateTime<Utc>, limit: u32) -> Result<Vec<VisibleChange>>;

    /// Outliers found after `since` that the user sees (as `user_week_outliers` decides),
    /// newest first, at most `limit`.
    async fn user_outliers_since(&self, user: UserId, since: DateTime<Utc>, limit: u32) -> Result<Vec<Outlier>>;

    /// The ISO weeks that have outliers the user sees, newest first, at most `limit`.
    async fn user_outlier_weeks(&self, user: UserId, limit: u32) -> Result<Vec<String>>;
}
