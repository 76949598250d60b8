//! Reads and the one piece of state the web UI needs beyond the other traits: when a user last
//! looked at the dashboard (for "what changed since your last visit"), the changes and outliers
//! a user can see since a given time, and the weeks that have outliers for a user.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_core::UserId;

use crate::{ChangeEvent, Outlier, Result};

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

#[async_trait]
pub trait UiStore: Send + Sync {
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
