//! OutlierStore, written once for both backends (see `crate::sql`).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use tracing::instrument;
use tubewatch_core::{ChannelId, UserId, VideoId};

use super::tracking::{change_from_row, hold, reschedule, video_from_row, views_from_row};
use super::{Backend, DbRow, at, at_opt, ts};
use crate::{
    BandSnapshotRecord, DigestSent, Lease, NewOutlier, Outlier, OutlierStore, Result, SealedToken, UserWebhook,
    VideoSeries, WebhookDelivery, decode,
};

pub(super) const OUTLIER_SELECT: &str =
    "SELECT o.*, v.title AS video_title FROM outliers o JOIN videos v ON v.id = o.video_id";

pub(super) fn outlier_from_row(row: &DbRow) -> Result<Outlier> {
    Ok(Outlier {
        id: row.try_get("id")?,
        outlier: NewOutlier {
            video_id: decode("outliers.video_id", VideoId::parse(row.try_get("video_id")?))?,
            channel_id: decode("outliers.channel_id", ChannelId::parse(row.try_get("channel_id")?))?,
            kind: decode("outliers.kind", row.try_get::<String, _>("kind")?.parse())?,
            week: row.try_get("week")?,
            score: row.try_get("score")?,
            lift: row.try_get("lift")?,
            ci_low: row.try_get("ci_low")?,
            ci_high: row.try_get("ci_high")?,
            age_hours: row.try_get("age_hours")?,
            views: row.try_get("views")?,
            changed_at: at_opt(row, "changed_at")?,
            thumb_key: row.try_get("thumb_key")?,
            explanation: row.try_get("explanation")?,
            found_at: at(row, "found_at")?,
        },
        video_title: row.try_get("video_title")?,
    })
}

fn digest_from_row(row: &DbRow) -> Result<DigestSent> {
    Ok(DigestSent {
        user_id: UserId::new(row.try_get("user_id")?),
        week: row.try_get("week")?,
        outliers: row.try_get("outliers")?,
        delivery: row.try_get("delivery")?,
        sent_at: at(row, "sent_at")?,
    })
}

fn webhook_delivery_from_row(row: &DbRow) -> Result<WebhookDelivery> {
    Ok(WebhookDelivery {
        user_id: UserId::new(row.try_get("user_id")?),
        week: row.try_get("week")?,
        url: row.try_get("url")?,
        outliers: row.try_get("outliers")?,
        attempts: row.try_get("attempts")?,
        status_code: row.try_get("status_code")?,
        error: row.try_get("error")?,
        last_attempt_at: at(row, "last_attempt_at")?,
        delivered_at: at_opt(row, "delivered_at")?,
    })
}

#[async_trait]
impl OutlierStore for Backend {
    async fn band_snapshot(&self, channel: &ChannelId) -> Result<Option<BandSnapshotRecord>> {
        let row = sqlx::query("SELECT * FROM channel_bands WHERE channel_id = $1")
            .bind(channel.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(BandSnapshotRecord {
                channel_id: channel.clone(),
                snapshot_json: r.try_get("snapshot")?,
                applied_through: at(&r, "applied_through")?,
                updated_at: at(&r, "updated_at")?,
            })
        })
        .transpose()
    }

    #[instrument(skip_all, fields(channel_id = %channel))]
    async fn channel_series(&self, channel: &ChannelId, published_since: DateTime<Utc>) -> Result<Vec<VideoSeries>> {
        let videos = sqlx::query(
            "SELECT * FROM videos WHERE channel_id = $1 AND published_at >= $2 ORDER BY published_at DESC, id",
        )
        .bind(channel.as_str())
        .bind(ts(published_since))
        .fetch_all(&self.pool)
        .await?;
        let views = sqlx::query(
            "SELECT r.* FROM views r JOIN videos v ON v.id = r.video_id \
             WHERE v.channel_id = $1 AND v.published_at >= $2 ORDER BY r.video_id, r.slot",
        )
        .bind(channel.as_str())
        .bind(ts(published_since))
        .fetch_all(&self.pool)
        .await?;
        let changes = sqlx::query(
            "SELECT c.* FROM changes c JOIN videos v ON v.id = c.video_id \
             WHERE v.channel_id = $1 AND v.published_at >= $2 ORDER BY c.video_id, c.slot, c.id",
        )
        .bind(channel.as_str())
        .bind(ts(published_since))
        .fetch_all(&self.pool)
        .await?;
        let mut series: Vec<VideoSeries> = videos
            .iter()
            .map(|r| Ok(VideoSeries { video: video_from_row(r)?, views: Vec::new(), changes: Vec::new() }))
            .collect::<Result<_>>()?;
        let index: HashMap<VideoId, usize> = series.iter().enumerate().map(|(i, s)| (s.video.id.clone(), i)).collect();
        for row in &views {
            let record = views_from_row(row)?;
            if let Some(&i) = index.get(&record.video_id) {
                series[i].views.push(record);
            }
        }
        for row in &changes {
            let change = change_from_row(row)?;
            if let Some(&i) = index.get(&change.change.video_id) {
                series[i].changes.push(change);
            }
        }
        Ok(series)
    }

    #[instrument(skip_all, fields(channel_id = %snapshot.channel_id, outliers = outliers.len()))]
    async fn complete_outlier_run(
        &self,
        lease: &Lease,
        snapshot: &BandSnapshotRecord,
        outliers: &[NewOutlier],
        next_due_at: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        hold(&mut tx, lease).await?;
        sqlx::query(
            "INSERT INTO channel_bands (channel_id, snapshot, applied_through, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (channel_id) DO UPDATE SET snapshot = excluded.snapshot, \
             applied_through = excluded.applied_through, updated_at = excluded.updated_at",
        )
        .bind(snapshot.channel_id.as_str())
        .bind(&snapshot.snapshot_json)
        .bind(ts(snapshot.applied_through))
        .bind(ts(snapshot.updated_at))
        .execute(&mut *tx)
        .await?;
        let mut inserted = 0;
        for o in outliers {
            let done = sqlx::query(
                "INSERT INTO outliers (video_id, channel_id, kind, week, score, lift, ci_low, ci_high, age_hours, \
                 views, changed_at, thumb_key, explanation, found_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (video_id, kind, week) DO NOTHING",
            )
            .bind(o.video_id.as_str())
            .bind(o.channel_id.as_str())
            .bind(o.kind.as_str())
            .bind(&o.week)
            .bind(o.score)
            .bind(o.lift)
            .bind(o.ci_low)
            .bind(o.ci_high)
            .bind(o.age_hours)
            .bind(o.views)
            .bind(o.changed_at.map(ts))
            .bind(&o.thumb_key)
            .bind(&o.explanation)
            .bind(ts(o.found_at))
            .execute(&mut *tx)
            .await?;
            inserted += done.rows_affected();
        }
        reschedule(&mut tx, lease, Some(next_due_at)).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn week_outliers(&self, week: &str) -> Result<Vec<Outlier>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{OUTLIER_SELECT} WHERE o.week = $1 ORDER BY o.channel_id, o.kind, o.video_id"
        )))
        .bind(week)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outlier_from_row).collect()
    }

    async fn user_week_outliers(&self, user: UserId, week: &str) -> Result<Vec<Outlier>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{OUTLIER_SELECT} WHERE o.week = $1 AND (o.channel_id IN (SELECT channel_id FROM user_channels \
             WHERE user_id = $2) OR o.video_id IN (SELECT video_id FROM user_videos WHERE user_id = $3)) \
             ORDER BY o.channel_id, o.kind, o.video_id"
        )))
        .bind(week)
        .bind(user.get())
        .bind(user.get())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outlier_from_row).collect()
    }

    async fn channel_watchers(&self, channel: &ChannelId) -> Result<Vec<UserId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM user_channels WHERE channel_id = $1 UNION \
             SELECT uv.user_id FROM user_videos uv JOIN videos v ON v.id = uv.video_id WHERE v.channel_id = $2 \
             ORDER BY 1",
        )
        .bind(channel.as_str())
        .bind(channel.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(UserId::new).collect())
    }

    async fn user_outlier_channels(&self, user: UserId) -> Result<Vec<ChannelId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT channel_id FROM user_channels WHERE user_id = $1 UNION \
             SELECT v.channel_id FROM user_videos uv JOIN videos v ON v.id = uv.video_id WHERE uv.user_id = $2 \
             ORDER BY 1",
        )
        .bind(user.get())
        .bind(user.get())
        .fetch_all(&self.pool)
        .await?;
        ids.iter().map(|id| decode("channel_id", ChannelId::parse(id))).collect()
    }

    async fn digest_sent(&self, user: UserId, week: &str) -> Result<Option<DigestSent>> {
        let row = sqlx::query("SELECT * FROM digests_sent WHERE user_id = $1 AND week = $2")
            .bind(user.get())
            .bind(week)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(digest_from_row).transpose()
    }

    #[instrument(skip_all, fields(user_id = sent.user_id.get(), week = %sent.week))]
    async fn complete_digest(&self, lease: &Lease, sent: &DigestSent, next_due_at: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.begin().await?;
        hold(&mut tx, lease).await?;
        let done = sqlx::query(
            "INSERT INTO digests_sent (user_id, week, outliers, delivery, sent_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, week) DO NOTHING",
        )
        .bind(sent.user_id.get())
        .bind(&sent.week)
        .bind(sent.outliers)
        .bind(&sent.delivery)
        .bind(ts(sent.sent_at))
        .execute(&mut *tx)
        .await?;
        reschedule(&mut tx, lease, Some(next_due_at)).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn digest_enabled(&self, user: UserId) -> Result<Option<bool>> {
        let row: Option<bool> = sqlx::query_scalar("SELECT digest_enabled FROM users WHERE id = $1")
            .bind(user.get())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    async fn set_digest_enabled(&self, user: UserId, enabled: bool) -> Result<bool> {
        let done = sqlx::query("UPDATE users SET digest_enabled = $1 WHERE id = $2")
            .bind(enabled)
            .bind(user.get())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_unsubscribe_token(&self, user: UserId, token_hash: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("INSERT INTO digest_unsubscribe_tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(user.get())
            .bind(ts(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn unsubscribe_by_token(&self, token_hash: &str) -> Result<Option<UserId>> {
        let mut tx = self.begin().await?;
        let user: Option<i64> =
            sqlx::query_scalar("SELECT user_id FROM digest_unsubscribe_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(user) = user {
            sqlx::query("UPDATE users SET digest_enabled = FALSE WHERE id = $1").bind(user).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(user.map(UserId::new))
    }

    async fn webhook(&self, user: UserId) -> Result<Option<UserWebhook>> {
        let row = sqlx::query("SELECT * FROM user_webhooks WHERE user_id = $1")
            .bind(user.get())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(UserWebhook {
                user_id: user,
                url: row.try_get("url")?,
                secret: SealedToken { key_id: row.try_get("secret_key_id")?, sealed: row.try_get("secret_sealed")? },
                created_at: at(&row, "created_at")?,
            })
        })
        .transpose()
    }

    async fn set_webhook(&self, webhook: &UserWebhook) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_webhooks (user_id, url, secret_key_id, secret_sealed, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id) DO UPDATE SET url = excluded.url, secret_key_id = excluded.secret_key_id, \
             secret_sealed = excluded.secret_sealed, created_at = excluded.created_at",
        )
        .bind(webhook.user_id.get())
        .bind(&webhook.url)
        .bind(&webhook.secret.key_id)
        .bind(&webhook.secret.sealed)
        .bind(ts(webhook.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_webhook(&self, user: UserId) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM user_webhooks WHERE user_id = $1").bind(user.get()).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn webhook_delivery(&self, user: UserId, week: &str) -> Result<Option<WebhookDelivery>> {
        let row = sqlx::query("SELECT * FROM webhook_deliveries WHERE user_id = $1 AND week = $2")
            .bind(user.get())
            .bind(week)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(webhook_delivery_from_row).transpose()
    }

    async fn record_webhook_attempt(&self, d: &WebhookDelivery) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (user_id, week, url, outliers, attempts, status_code, error, \
             last_attempt_at, delivered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (user_id, week) DO UPDATE SET url = excluded.url, outliers = excluded.outliers, \
             attempts = excluded.attempts, status_code = excluded.status_code, error = excluded.error, \
             last_attempt_at = excluded.last_attempt_at, delivered_at = excluded.delivered_at",
        )
        .bind(d.user_id.get())
        .bind(&d.week)
        .bind(&d.url)
        .bind(d.outliers)
        .bind(d.attempts)
        .bind(d.status_code)
        .bind(&d.error)
        .bind(ts(d.last_attempt_at))
        .bind(d.delivered_at.map(ts))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn webhook_deliveries(&self, user: UserId, limit: u32) -> Result<Vec<WebhookDelivery>> {
        let rows = sqlx::query(
            "SELECT * FROM webhook_deliveries WHERE user_id = $1 ORDER BY last_attempt_at DESC, week DESC LIMIT $2",
        )
        .bind(user.get())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(webhook_delivery_from_row).collect()
    }
}
