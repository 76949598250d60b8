//! A user's visits to their dashboard and what is new since the last one: the detected changes
//! and the outliers of what they track. A load soon after the previous one belongs to the same
//! visit, so reloading does not make the news disappear.

use chrono::{DateTime, Duration, Utc};
use tubewatch_core::UserId;
use tubewatch_store::{DashboardVisit, Outlier, StoreError, VisibleChange};

use super::Service;

/// A dashboard load this long after the previous one starts a new visit: "since your last
/// visit" then moves on to the previous load; reloads within a visit keep showing the same news.
pub const NEW_VISIT_AFTER_MINUTES: i64 = 30;

/// What happened since a visit's start, newest first.
#[derive(Debug, Clone)]
pub struct News {
    pub changes: Vec<VisibleChange>,
    pub outliers: Vec<Outlier>,
}

/// The visit a dashboard load at `now` belongs to: a new one after a pause, otherwise the current
/// one (whose window stays put).
pub fn next_visit(previous: Option<DashboardVisit>, now: DateTime<Utc>) -> DashboardVisit {
    match previous {
        None => DashboardVisit { seen_at: now, since: now },
        Some(v) if now - v.seen_at >= Duration::minutes(NEW_VISIT_AFTER_MINUTES) => {
            DashboardVisit { seen_at: now, since: v.seen_at }
        }
        Some(v) => DashboardVisit { seen_at: now, since: v.since },
    }
}

impl Service<'_> {
    /// Records a dashboard load of `user`'s now and says since when its news run: `None` on their
    /// first visit, which has no news.
    pub async fn visit_dashboard(&self, user: UserId) -> Result<Option<DateTime<Utc>>, StoreError> {
        let previous = self.store.dashboard_visit(user).await?;
        let visit = next_visit(previous, self.clock.now());
        self.store.set_dashboard_visit(user, &visit).await?;
        Ok(previous.map(|_| visit.since))
    }

    /// The changes and outliers of what `user` tracks since `since`, at most `limit` of each.
    pub async fn news_since(&self, user: UserId, since: DateTime<Utc>, limit: u32) -> Result<News, StoreError> {
        let changes = self.store.user_changes_since(user, since, limit).await?;
        let outliers = self.store.user_outliers_since(user, since, limit).await?;
        Ok(News { changes, outliers })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reloads_within_a_visit_keep_its_window_and_a_pause_starts_a_new_one() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let first = next_visit(None, t("2026-03-01T10:00:00Z"));
        assert_eq!(first, DashboardVisit { seen_at: t("2026-03-01T10:00:00Z"), since: t("2026-03-01T10:00:00Z") });
        let later = next_visit(Some(first), t("2026-03-02T09:00:00Z"));
        assert_eq!(later.since, t("2026-03-01T10:00:00Z"), "news since the previous load");
        let reload = next_visit(Some(later), t("2026-03-02T09:10:00Z"));
        assert_eq!(reload.since, later.since, "a reload keeps the visit's window");
        assert_eq!(reload.seen_at, t("2026-03-02T09:10:00Z"));
    }
}
