//! UiStore, written once for both backends (see `crate::sql`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use tracing::instrument;
use tubewatch_core::{UserId, VideoId};

use super::outliers::{OUTLIER_SELECT, outlier_from_row};
use super::tracking::change_from_row;
use super::{Backend, at, at_opt, ts};
use crate::{DashboardVisit, Outlier, Result, SeriesStamp, UiStore, VisibleChange, decode};

/// Videos a user sees: tracked directly or through a monitored channel.
const VISIBLE_VIDEOS: &str = "SELECT video_id FROM user_videos WHERE user_id = $1 UNION \
     SELECT v.id FROM videos v JOIN user_channels uc ON uc.channel_id = v.channel_id WHERE uc.user_id = $1";

#[async_trait]
impl UiStore for Backend {
    #[instrument(skip_all, fields(user_id = user.get(), video_id = %video))]
    async fn visible_series_stamp(&self, user: UserId, video: &VideoId) -> Result<Option<SeriesStamp>> {
        let row = sqlx::query(
            "SELECT v.title, v.thumb_blob_key, \
               (SELECT state FROM targets WHERE kind = 'video' AND subject = v.id) AS tracking, \
               (SELECT COUNT(*) FROM views WHERE video_id = v.id) AS records, \
               (SELECT MAX(slot) FROM views WHERE video_id = v.id) AS last_slot, \
               (SELECT COUNT(*) FROM changes WHERE video_id = v.id) AS changes, \
               (SELECT MAX(id) FROM changes WHERE video_id = v.id) AS last_change_id \
             FROM videos v WHERE v.id = $1 \
               AND (EXISTS (SELECT 1 FROM user_videos WHERE user_id = $2 AND video_id = v.id) \
                 OR EXISTS (SELECT 1 FROM user_channels WHERE user_id = $2 AND channel_id = v.channel_id))",
        )
        .bind(video.as_str())
        .bind(user.get())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let count = |c: &str| -> Result<u64> { Ok(u64::try_from(row.try_get::<i64, _>(c)?).unwrap_or(0)) };
        Ok(Some(SeriesStamp {
            records: count("records")?,
            last_slot: at_opt(&row, "last_slot")?,
            changes: count("changes")?,
            last_change_id: row.try_get("last_change_id")?,
            title: row.try_get("title")?,
            thumb_blob_key: row.try_get("thumb_blob_key")?,
            tracking: row
                .try_get::<Option<String>, _>("tracking")?
                .map(|s| decode("targets.state", s.parse()))
                .transpose()?,
        }))
    }

    #[instrument(skip_all, fields(user_id = user.get()))]
    async fn dashboard_visit(&self, user: UserId) -> Result<Option<DashboardVisit>> {
        let row = sqlx::query("SELECT seen_at, since FROM dashboard_visits WHERE user_id = $1")
            .bind(user.get())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(DashboardVisit { seen_at: at(&r, "seen_at")?, since: at(&r, "since")? })).transpose()
    }

    #[instrument(skip_all, fields(user_id = user.get()))]
    async fn set_dashboard_visit(&self, user: UserId, visit: &DashboardVisit) -> Result<()> {
        sqlx::query(
            "INSERT INTO dashboard_visits (user_id, seen_at, since) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET seen_at = excluded.seen_at, since = excluded.since",
        )
        .bind(user.get())
        .bind(ts(visit.seen_at))
        .bind(ts(visit.since))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[instrument(skip_all, fields(user_id = user.get()))]
    async fn user_changes_since(&self, user: UserId, since: DateTime<Utc>, limit: u32) -> Result<Vec<VisibleChange>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT c.*, v.title AS video_title FROM changes c JOIN videos v ON v.id = c.video_id \
             WHERE c.detected_at > $2 AND c.video_id IN ({VISIBLE_VIDEOS}) \
             ORDER BY c.detected_at DESC, c.id DESC LIMIT $3"
        )))
        .bind(user.get())
        .bind(ts(since))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(VisibleChange { event: change_from_row(r)?, video_title: r.try_get("video_title")? }))
            .collect()
    }

    #[instrument(skip_all, fields(user_id = user.get()))]
    async fn user_outliers_since(&self, user: UserId, since: DateTime<Utc>, limit: u32) -> Result<Vec<Outlier>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{OUTLIER_SELECT} WHERE o.found_at > $2 AND (o.channel_id IN (SELECT channel_id FROM user_channels \
             WHERE user_id = $1) OR o.video_id IN (SELECT video_id FROM user_videos WHERE user_id = $1)) \
             ORDER BY o.found_at DESC, o.id DESC LIMIT $3"
        )))
        .bind(user.get())
        .bind(ts(since))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outlier_from_row).collect()
    }

    #[instrument(skip_all, fields(user_id = user.get()))]
    async fn user_outlier_weeks(&self, user: UserId, limit: u32) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT week FROM outliers WHERE channel_id IN (SELECT channel_id FROM user_channels \
             WHERE user_id = $1) OR video_id IN (SELECT video_id FROM user_videos WHERE user_id = $1) \
             ORDER BY week DESC LIMIT $2",
        )
        .bind(user.get())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}
