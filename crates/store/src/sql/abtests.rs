//! AbTestStore, written once for both backends (see `crate::sql`).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;
use tracing::instrument;
use tubewatch_core::{ChannelId, UserId, VideoId};

use super::{Backend, DbRow, at, at_opt, ts};
use crate::{
    AbTest, AbTestDetail, AbTestId, AbTestPeriod, AbTestState, AbTestStore, AbVariant, AbViews, NewAbTest,
    NewYoutubeConnection, ReachDay, ReachJob, ReachReport, ReachState, Result, SealedToken, StoreError, SwapRecord,
    YoutubeConnection, decode,
};

/// A Pacific day as stored: `YYYY-MM-DD`, which sorts as the days do.
fn day_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn day_of(column: &str, text: &str) -> Result<NaiveDate> {
    decode(column, NaiveDate::parse_from_str(text, "%Y-%m-%d"))
}

fn reach_job_from_row(row: &DbRow) -> Result<ReachJob> {
    let last_day: Option<String> = row.try_get("last_day")?;
    Ok(ReachJob {
        channel_id: decode("reach_jobs.channel_id", ChannelId::parse(row.try_get("channel_id")?))?,
        job_id: row.try_get("job_id")?,
        job_created_at: at(row, "job_created_at")?,
        reports_through: at_opt(row, "reports_through")?,
        last_day: last_day.map(|d| day_of("reach_jobs.last_day", &d)).transpose()?,
        updated_at: at(row, "updated_at")?,
    })
}

fn connection_from_row(row: &DbRow) -> Result<YoutubeConnection> {
    let access_key: Option<String> = row.try_get("access_key_id")?;
    let access_sealed: Option<Vec<u8>> = row.try_get("access_sealed")?;
    Ok(YoutubeConnection {
        user_id: UserId::new(row.try_get("user_id")?),
        channel_id: decode("youtube_connections.channel_id", ChannelId::parse(row.try_get("channel_id")?))?,
        scopes: row.try_get("scopes")?,
        refresh: SealedToken { key_id: row.try_get("refresh_key_id")?, sealed: row.try_get("refresh_sealed")? },
        access: access_key.zip(access_sealed).map(|(key_id, sealed)| SealedToken { key_id, sealed }),
        access_expires_at: at_opt(row, "access_expires_at")?,
        state: decode("youtube_connections.state", row.try_get::<String, _>("state")?.parse())?,
        state_reason: row.try_get("state_reason")?,
        connected_at: at(row, "connected_at")?,
        updated_at: at(row, "updated_at")?,
    })
}

fn test_from_row(row: &DbRow) -> Result<AbTest> {
    Ok(AbTest {
        id: row.try_get("id")?,
        user_id: UserId::new(row.try_get("user_id")?),
        video_id: decode("abtests.video_id", VideoId::parse(row.try_get("video_id")?))?,
        video_published_at: at(row, "video_published_at")?,
        kind: decode("abtests.kind", row.try_get::<String, _>("kind")?.parse())?,
        state: decode("abtests.state", row.try_get::<String, _>("state")?.parse())?,
        state_reason: row.try_get("state_reason")?,
        starts_at: at(row, "starts_at")?,
        ends_at: at(row, "ends_at")?,
        rotation_minutes: row.try_get("rotation_minutes")?,
        design: decode("abtests.design", row.try_get::<String, _>("design")?.parse())?,
        sequential: row.try_get("sequential")?,
        final_action: decode("abtests.final_action", row.try_get::<String, _>("final_action")?.parse())?,
        original_title: row.try_get("original_title")?,
        original_thumb_key: row.try_get("original_thumb_key")?,
        original_thumb_phash: row.try_get("original_thumb_phash")?,
        power_json: row.try_get("power_json")?,
        result_json: row.try_get("result_json")?,
        quota_used: row.try_get("quota_used")?,
        outside_change: row.try_get("outside_change")?,
        outside_change_at: at_opt(row, "outside_change_at")?,
        created_at: at(row, "created_at")?,
        finished_at: at_opt(row, "finished_at")?,
        notified_at: at_opt(row, "notified_at")?,
        reach_state: decode("abtests.reach_state", row.try_get::<String, _>("reach_state")?.parse())?,
        reach_reason: row.try_get("reach_reason")?,
        reach_updated_at: at_opt(row, "reach_updated_at")?,
    })
}

fn period_from_row(row: &DbRow) -> Result<AbTestPeriod> {
    Ok(AbTestPeriod {
        index: row.try_get("idx")?,
        start: at(row, "starts_at")?,
        end: at(row, "ends_at")?,
        variant: row.try_get("variant")?,
        swapped_at: at_opt(row, "swapped_at")?,
        outcome: row.try_get("outcome")?,
        excluded: row.try_get("excluded")?,
    })
}

fn not_found(what: &str, id: impl std::fmt::Display) -> StoreError {
    StoreError::NotFound(format!("{what} {id}"))
}

#[async_trait]
impl AbTestStore for Backend {
    #[instrument(skip_all, fields(user_id = connection.user_id.get()))]
    async fn upsert_youtube_connection(&self, connection: &NewYoutubeConnection, now: DateTime<Utc>) -> Result<()> {
        let c = connection;
        sqlx::query(
            "INSERT INTO youtube_connections (user_id, channel_id, scopes, refresh_key_id, refresh_sealed, \
             access_key_id, access_sealed, access_expires_at, state, state_reason, connected_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', NULL, $9, $10) \
             ON CONFLICT (user_id) DO UPDATE SET channel_id = excluded.channel_id, scopes = excluded.scopes, \
             refresh_key_id = excluded.refresh_key_id, refresh_sealed = excluded.refresh_sealed, \
             access_key_id = excluded.access_key_id, access_sealed = excluded.access_sealed, \
             access_expires_at = excluded.access_expires_at, state = 'active', state_reason = NULL, \
             connected_at = excluded.connected_at, updated_at = excluded.updated_at",
        )
        .bind(c.user_id.get())
        .bind(c.channel_id.as_str())
        .bind(&c.scopes)
        .bind(&c.refresh.key_id)
        .bind(&c.refresh.sealed)
        .bind(c.access.as_ref().map(|a| a.key_id.clone()))
        .bind(c.access.as_ref().map(|a| a.sealed.clone()))
        .bind(c.access_expires_at.map(ts))
        .bind(ts(now))
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn youtube_connection(&self, user: UserId) -> Result<Option<YoutubeConnection>> {
        let row = sqlx::query("SELECT * FROM youtube_connections WHERE user_id = $1")
            .bind(user.get())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(connection_from_row).transpose()
    }

    #[instrument(skip_all, fields(user_id = user.get()))]
    async fn update_youtube_tokens(
        &self,
        user: UserId,
        refresh: Option<&SealedToken>,
        access: Option<(&SealedToken, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE youtube_connections SET refresh_key_id = COALESCE($1, refresh_key_id), \
             refresh_sealed = COALESCE($2, refresh_sealed), access_key_id = $3, access_sealed = $4, \
             access_expires_at = $5, updated_at = $6 WHERE user_id = $7",
        )
        .bind(refresh.map(|r| r.key_id.clone()))
        .bind(refresh.map(|r| r.sealed.clone()))
        .bind(access.map(|(a, _)| a.key_id.clone()))
        .bind(access.map(|(a, _)| a.sealed.clone()))
        .bind(access.map(|(_, e)| ts(e)))
        .bind(ts(now))
        .bind(user.get())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("YouTube connection of user", user.get()));
        }
        Ok(())
    }

    #[instrument(skip_all, fields(user_id = user.get()))]
    async fn revoke_youtube_connection(&self, user: UserId, reason: &str, now: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE youtube_connections SET state = 'revoked', state_reason = $1, access_key_id = NULL, \
             access_sealed = NULL, access_expires_at = NULL, updated_at = $2 WHERE user_id = $3",
        )
        .bind(reason)
        .bind(ts(now))
        .bind(user.get())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("YouTube connection of user", user.get()));
        }
        let paused = sqlx::query(
            "UPDATE abtests SET state = 'paused', state_reason = $1 WHERE user_id = $2 AND state = 'running'",
        )
        .bind(reason)
        .bind(user.get())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(paused)
    }

    async fn remove_youtube_connection(&self, user: UserId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM youtube_connections WHERE user_id = $1")
            .bind(user.get())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    #[instrument(skip_all, fields(video_id = %test.video_id))]
    async fn create_abtest(&self, test: &NewAbTest, now: DateTime<Utc>) -> Result<AbTest> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "INSERT INTO abtests (user_id, video_id, video_published_at, kind, state, starts_at, ends_at, rotation_minutes, \
             final_action, original_title, original_thumb_key, original_thumb_phash, power_json, created_at, design, \
             sequential) \
             VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING *",
        )
        .bind(test.user_id.get())
        .bind(test.video_id.as_str())
        .bind(ts(test.video_published_at))
        .bind(test.kind.as_str())
        .bind(ts(test.starts_at))
        .bind(ts(test.ends_at))
        .bind(test.rotation_minutes)
        .bind(test.final_action.as_str())
        .bind(&test.original_title)
        .bind(&test.original_thumb_key)
        .bind(&test.original_thumb_phash)
        .bind(&test.power_json)
        .bind(ts(now))
        .bind(test.design.as_str())
        .bind(test.sequential)
        .fetch_one(&mut *tx)
        .await?;
        let created = test_from_row(&row)?;
        for (i, v) in test.variants.iter().enumerate() {
            sqlx::query(
                "INSERT INTO abtest_variants (test_id, idx, thumb_blob_key, thumb_phash, title) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(created.id)
            .bind(i as i32)
            .bind(&v.thumb_blob_key)
            .bind(&v.thumb_phash)
            .bind(&v.title)
            .execute(&mut *tx)
            .await?;
        }
        for p in &test.periods {
            sqlx::query(
                "INSERT INTO abtest_periods (test_id, idx, starts_at, ends_at, variant, swapped_at, outcome, excluded) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(created.id)
            .bind(p.index)
            .bind(ts(p.start))
            .bind(ts(p.end))
            .bind(p.variant)
            .bind(p.swapped_at.map(ts))
            .bind(&p.outcome)
            .bind(p.excluded)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn abtest(&self, id: AbTestId) -> Result<Option<AbTestDetail>> {
        let Some(row) = sqlx::query("SELECT * FROM abtests WHERE id = $1").bind(id).fetch_optional(&self.pool).await?
        else {
            return Ok(None);
        };
        let test = test_from_row(&row)?;
        let variants = sqlx::query("SELECT * FROM abtest_variants WHERE test_id = $1 ORDER BY idx")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(AbVariant {
                    thumb_blob_key: r.try_get("thumb_blob_key")?,
                    thumb_phash: r.try_get("thumb_phash")?,
                    title: r.try_get("title")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let periods = sqlx::query("SELECT * FROM abtest_periods WHERE test_id = $1 ORDER BY idx")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(period_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(AbTestDetail { test, variants, periods }))
    }

    async fn user_abtests(&self, user: UserId) -> Result<Vec<AbTest>> {
        sqlx::query("SELECT * FROM abtests WHERE user_id = $1 ORDER BY created_at DESC, id DESC")
            .bind(user.get())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(test_from_row)
            .collect()
    }

    #[instrument(skip_all, fields(test_id = id.get(), period = swap.period))]
    async fn record_abtest_swap(&self, id: AbTestId, swap: &SwapRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE abtest_periods SET swapped_at = $1, outcome = $2, excluded = $3 WHERE test_id = $4 AND idx = $5",
        )
        .bind(swap.swapped_at.map(ts))
        .bind(&swap.outcome)
        .bind(swap.excluded)
        .bind(id)
        .bind(swap.period)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("period of A/B test", format!("{id}/{}", swap.period)));
        }
        sqlx::query("UPDATE abtests SET quota_used = quota_used + $1 WHERE id = $2")
            .bind(swap.quota_units)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_abtest_quota(&self, id: AbTestId, units: i64) -> Result<()> {
        let done = sqlx::query("UPDATE abtests SET quota_used = quota_used + $1 WHERE id = $2")
            .bind(units)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("A/B test", id));
        }
        Ok(())
    }

    async fn record_abtest_views(&self, id: AbTestId, views: &AbViews) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO abtest_views (test_id, slot, measured_at, views) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (test_id, slot) DO NOTHING",
        )
        .bind(id)
        .bind(ts(views.slot))
        .bind(ts(views.measured_at))
        .bind(views.views)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn abtest_views(&self, id: AbTestId) -> Result<Vec<AbViews>> {
        sqlx::query("SELECT slot, measured_at, views FROM abtest_views WHERE test_id = $1 ORDER BY slot")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(AbViews { slot: at(r, "slot")?, measured_at: at(r, "measured_at")?, views: r.try_get("views")? })
            })
            .collect()
    }

    #[instrument(skip_all, fields(test_id = id.get(), state = state.as_str()))]
    async fn set_abtest_state(
        &self,
        id: AbTestId,
        state: AbTestState,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let ended = matches!(state, AbTestState::Finished | AbTestState::Stopped | AbTestState::Failed);
        let done = sqlx::query(
            "UPDATE abtests SET state = $1, state_reason = $2, finished_at = CASE WHEN $3 THEN $4 ELSE finished_at END \
             WHERE id = $5",
        )
        .bind(state.as_str())
        .bind(reason)
        .bind(ended)
        .bind(ts(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("A/B test", id));
        }
        Ok(())
    }

    async fn flag_abtest_outside_change(&self, id: AbTestId, detail: &str, at: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE abtests SET outside_change = $1, outside_change_at = $2 WHERE id = $3 AND outside_change IS NULL",
        )
        .bind(detail)
        .bind(ts(at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    #[instrument(skip_all, fields(test_id = id.get()))]
    async fn set_abtest_power(&self, id: AbTestId, power_json: &str) -> Result<()> {
        sqlx::query("UPDATE abtests SET power_json = $1 WHERE id = $2")
            .bind(power_json)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[instrument(skip_all, fields(test_id = id.get()))]
    async fn finish_abtest(
        &self,
        id: AbTestId,
        state: AbTestState,
        result_json: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE abtests SET state = $1, state_reason = NULL, result_json = $2, finished_at = $3 WHERE id = $4",
        )
        .bind(state.as_str())
        .bind(result_json)
        .bind(ts(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("A/B test", id));
        }
        Ok(())
    }

    async fn abtests_to_notify(&self, limit: u32) -> Result<Vec<AbTest>> {
        sqlx::query(
            "SELECT * FROM abtests WHERE result_json IS NOT NULL AND notified_at IS NULL \
             ORDER BY finished_at, id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(test_from_row)
        .collect()
    }

    async fn mark_abtest_notified(&self, id: AbTestId, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE abtests SET notified_at = $1 WHERE id = $2")
            .bind(ts(now))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[instrument(skip_all, fields(test_id = id.get(), reach_state = state.as_str()))]
    async fn set_abtest_reach(
        &self,
        id: AbTestId,
        state: ReachState,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let done =
            sqlx::query("UPDATE abtests SET reach_state = $1, reach_reason = $2, reach_updated_at = $3 WHERE id = $4")
                .bind(state.as_str())
                .bind(reason)
                .bind(ts(now))
                .bind(id)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("A/B test", id));
        }
        Ok(())
    }

    #[instrument(skip_all, fields(channel_id = %channel, job_id))]
    async fn set_reach_job(
        &self,
        channel: &ChannelId,
        job_id: &str,
        job_created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ReachJob> {
        let row = sqlx::query(
            "INSERT INTO reach_jobs (channel_id, job_id, job_created_at, reports_through, last_day, updated_at) \
             VALUES ($1, $2, $3, NULL, NULL, $4) \
             ON CONFLICT (channel_id) DO UPDATE SET job_id = excluded.job_id, \
             job_created_at = excluded.job_created_at, updated_at = excluded.updated_at, \
             reports_through = CASE WHEN reach_jobs.job_id = excluded.job_id THEN reach_jobs.reports_through END, \
             last_day = CASE WHEN reach_jobs.job_id = excluded.job_id THEN reach_jobs.last_day END \
             RETURNING *",
        )
        .bind(channel.as_str())
        .bind(job_id)
        .bind(ts(job_created_at))
        .bind(ts(now))
        .fetch_one(&self.pool)
        .await?;
        reach_job_from_row(&row)
    }

    async fn reach_job(&self, channel: &ChannelId) -> Result<Option<ReachJob>> {
        let row = sqlx::query("SELECT * FROM reach_jobs WHERE channel_id = $1")
            .bind(channel.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(reach_job_from_row).transpose()
    }

    #[instrument(skip_all, fields(channel_id = %report.channel_id, day = %report.date, rows = report.rows.len()))]
    async fn record_reach_report(
        &self,
        report: &ReachReport,
        through: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let day = day_text(report.date);
        let done = sqlx::query(
            "UPDATE reach_jobs SET updated_at = $1, \
             last_day = CASE WHEN last_day IS NULL OR last_day < $2 THEN $3 ELSE last_day END, \
             reports_through = CASE WHEN reports_through IS NULL OR reports_through < $4 \
             THEN COALESCE($5, reports_through) ELSE reports_through END \
             WHERE channel_id = $6",
        )
        .bind(ts(now))
        .bind(&day)
        .bind(&day)
        .bind(through.map(ts))
        .bind(through.map(ts))
        .bind(report.channel_id.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("reporting job of channel", &report.channel_id));
        }
        for (video, impressions, ctr) in &report.rows {
            sqlx::query(
                "INSERT INTO reach_days (video_id, day, channel_id, day_start, day_end, impressions, ctr) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (video_id, day) DO UPDATE SET channel_id = excluded.channel_id, \
                 day_start = excluded.day_start, day_end = excluded.day_end, \
                 impressions = excluded.impressions, ctr = excluded.ctr",
            )
            .bind(video.as_str())
            .bind(&day)
            .bind(report.channel_id.as_str())
            .bind(ts(report.day_start))
            .bind(ts(report.day_end))
            .bind(impressions)
            .bind(ctr)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn reach_days(&self, video: &VideoId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<ReachDay>> {
        sqlx::query("SELECT * FROM reach_days WHERE video_id = $1 AND day_end > $2 AND day_start < $3 ORDER BY day")
            .bind(video.as_str())
            .bind(ts(from))
            .bind(ts(to))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(ReachDay {
                    video_id: decode("reach_days.video_id", VideoId::parse(r.try_get("video_id")?))?,
                    date: day_of("reach_days.day", &r.try_get::<String, _>("day")?)?,
                    day_start: at(r, "day_start")?,
                    day_end: at(r, "day_end")?,
                    impressions: r.try_get("impressions")?,
                    ctr: r.try_get("ctr")?,
                })
            })
            .collect()
    }
}
