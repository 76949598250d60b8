//! AccountStore, written once for both backends (see `crate::sql`). Limited adds start with
//! `Backend::begin_for_user`, which serialises a user's adds (SQLite's write lock, PostgreSQL's
//! row lock on the user), so the second of two concurrent adds sees the first's row.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::{Row, Transaction};
use tracing::instrument;
use tubewatch_core::{ChannelId, UserId, VideoId};

use super::tracking::user_from_row;
use super::{Backend, Db, DbRow, at, at_opt, ts};
use crate::{
    AccountStore, ApiToken, AuditEntry, BillingAccount, BillingEvent, LimitOutcome, NewApiToken, Plan, Result, Session,
    StoreError, TokenScope, User,
};

/// A token's `last_used_at` is refreshed at most this often, so that bearer reads do not all
/// write.
const LAST_USED_GRANULARITY: Duration = Duration::seconds(60);

fn token_from_row(row: &DbRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        user_id: UserId::new(row.try_get("user_id")?),
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        scope: {
            let scope: String = row.try_get("scope")?;
            TokenScope::parse(&scope).ok_or_else(|| StoreError::Corrupt(format!("token scope {scope:?}")))?
        },
        created_at: at(row, "created_at")?,
        expires_at: at_opt(row, "expires_at")?,
        last_used_at: at_opt(row, "last_used_at")?,
        revoked_at: at_opt(row, "revoked_at")?,
    })
}

/// Replaces a user's password hash and revokes their sessions (but `keep_session`) and every
/// API token: a stolen session or token dies with the old password.
async fn set_password(
    tx: &mut Transaction<'_, Db>,
    user: UserId,
    password_hash: &str,
    keep_session: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(user.get())
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("user {user}")));
    }
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND token_hash <> $3")
        .bind(ts(now))
        .bind(user.get())
        .bind(keep_session.unwrap_or(""))
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(ts(now))
        .bind(user.get())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Marks a user's email confirmed at `now`, unless it already was (the first time is kept).
async fn mark_email_verified(tx: &mut Transaction<'_, Db>, user: UserId, now: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE users SET email_verified_at = $1 WHERE id = $2 AND email_verified_at IS NULL")
        .bind(ts(now))
        .bind(user.get())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The two kinds of single-use link mailed to a user; each keeps its tokens' hashes (SHA-256) in
/// a table of the same shape.
#[derive(Debug, Clone, Copy)]
enum MailedToken {
    PasswordReset,
    EmailVerification,
}

impl MailedToken {
    /// Its statements: insert a token, use a live one (returning its user), and use up the
    /// user's other live ones.
    fn statements(self) -> [&'static str; 3] {
        match self {
            Self::PasswordReset => [
                "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                "UPDATE password_resets SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
                 RETURNING user_id",
                "UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
            ],
            Self::EmailVerification => [
                "INSERT INTO email_verifications (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                "UPDATE email_verifications SET used_at = $1 \
                 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
                "UPDATE email_verifications SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
            ],
        }
    }

    async fn insert(
        self,
        pool: &sqlx::Pool<Db>,
        user: UserId,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let [insert, ..] = self.statements();
        sqlx::query(insert).bind(token_hash).bind(user.get()).bind(ts(now)).bind(ts(expires_at)).execute(pool).await?;
        Ok(())
    }

    /// Uses a live token: its user, with every other link of that user used up too; `None` for
    /// an unknown, used or expired token.
    async fn take(self, tx: &mut Transaction<'_, Db>, token_hash: &str, now: DateTime<Utc>) -> Result<Option<UserId>> {
        let [_, take, expire_others] = self.statements();
        let user: Option<i64> =
            sqlx::query_scalar(take).bind(ts(now)).bind(token_hash).fetch_optional(&mut **tx).await?;
        let Some(user) = user.map(UserId::new) else { return Ok(None) };
        sqlx::query(expire_others).bind(ts(now)).bind(user.get()).execute(&mut **tx).await?;
        Ok(Some(user))
    }
}

async fn audit(
    tx: &mut Transaction<'_, Db>,
    user: UserId,
    actor: Option<UserId>,
    action: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("INSERT INTO audit_log (user_id, actor_id, action, detail, at) VALUES ($1, $2, $3, $4, $5)")
        .bind(user.get())
        .bind(actor.map(|a| a.get()))
        .bind(action)
        .bind(detail)
        .bind(ts(now))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn count(
    tx: &mut Transaction<'_, Db>,
    sql: &'static str,
    user: UserId,
    since: Option<DateTime<Utc>>,
) -> Result<u64> {
    let mut query = sqlx::query_scalar::<_, i64>(sql).bind(user.get());
    if let Some(since) = since {
        query = query.bind(ts(since));
    }
    Ok(u64::try_from(query.fetch_one(&mut **tx).await?).unwrap_or(0))
}

#[async_trait]
impl AccountStore for Backend {
    async fn create_session(
        &self,
        user: UserId,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(user.get())
            .bind(ts(now))
            .bind(ts(expires_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<(Session, User)>> {
        let row = sqlx::query(
            "SELECT u.*, s.created_at AS session_created_at, s.expires_at AS session_expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let user = user_from_row(&row)?;
            let session = Session {
                user_id: user.id,
                created_at: at(&row, "session_created_at")?,
                expires_at: at(&row, "session_expires_at")?,
            };
            Ok((session, user))
        })
        .transpose()
    }

    async fn revoke_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
            .bind(ts(now))
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    #[instrument(skip_all, fields(user_id = %user))]
    async fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep_session: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        set_password(&mut tx, user, password_hash, keep_session, now).await?;
        audit(&mut tx, user, Some(user), "password_changed", "other sessions and every API token revoked", now).await?;
        tx.commit().await?;
        Ok(())
    }

    #[instrument(skip_all, fields(user_id = %user))]
    async fn create_password_reset(
        &self,
        user: UserId,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        MailedToken::PasswordReset.insert(&self.pool, user, token_hash, now, expires_at).await
    }

    async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>> {
        let mut tx = self.begin().await?;
        let Some(user) = MailedToken::PasswordReset.take(&mut tx, token_hash, now).await? else {
            return Ok(None);
        };
        set_password(&mut tx, user, password_hash, None, now).await?;
        mark_email_verified(&mut tx, user, now).await?;
        audit(&mut tx, user, Some(user), "password_reset", "by mail; every session and API token revoked", now).await?;
        tx.commit().await?;
        Ok(Some(user))
    }

    #[instrument(skip_all, fields(user_id = %user))]
    async fn create_email_verification(
        &self,
        user: UserId,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        MailedToken::EmailVerification.insert(&self.pool, user, token_hash, now, expires_at).await
    }

    async fn verify_email(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        let mut tx = self.begin().await?;
        let Some(user) = MailedToken::EmailVerification.take(&mut tx, token_hash, now).await? else {
            return Ok(None);
        };
        mark_email_verified(&mut tx, user, now).await?;
        audit(&mut tx, user, Some(user), "email_verified", "by the mailed link", now).await?;
        let row = sqlx::query("SELECT * FROM users WHERE id = $1").bind(user.get()).fetch_one(&mut *tx).await?;
        let verified = user_from_row(&row)?;
        tx.commit().await?;
        Ok(Some(verified))
    }

    #[instrument(skip_all, fields(user_id = %user))]
    async fn create_api_token(&self, user: UserId, new: &NewApiToken<'_>, now: DateTime<Utc>) -> Result<ApiToken> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "INSERT INTO api_tokens (user_id, name, token_hash, prefix, scope, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        )
        .bind(user.get())
        .bind(new.name)
        .bind(new.token_hash)
        .bind(new.prefix)
        .bind(new.scope.as_str())
        .bind(ts(now))
        .bind(ts(new.expires_at))
        .fetch_one(&mut *tx)
        .await?;
        let token = token_from_row(&row)?;
        let detail = format!("token {} ({}, {})", token.id, new.name, new.scope.as_str());
        audit(&mut tx, user, Some(user), "token_created", &detail, now).await?;
        tx.commit().await?;
        Ok(token)
    }

    async fn api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query("SELECT * FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC, id DESC")
            .bind(user.get())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    #[instrument(skip_all, fields(user_id = %user, token_id))]
    async fn revoke_api_token(&self, user: UserId, token_id: i64, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done =
            sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
                .bind(ts(now))
                .bind(token_id)
                .bind(user.get())
                .execute(&mut *tx)
                .await?;
        let revoked = done.rows_affected() == 1;
        if revoked {
            audit(&mut tx, user, Some(user), "token_revoked", &format!("token {token_id}"), now).await?;
        }
        tx.commit().await?;
        Ok(revoked)
    }

    async fn api_token_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<(ApiToken, User)>> {
        let Some(row) = sqlx::query(
            "SELECT * FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(token_hash)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let mut token = token_from_row(&row)?;
        if token.last_used_at.is_none_or(|t| now - t >= LAST_USED_GRANULARITY) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(ts(now))
                .bind(token.id)
                .execute(&self.pool)
                .await?;
            token.last_used_at = Some(now);
        }
        let user = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(token.user_id.get())
            .fetch_optional(&self.pool)
            .await?;
        user.map(|row| Ok((token, user_from_row(&row)?))).transpose()
    }

    async fn record_login_failure(&self, keys: &[&str], now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin().await?;
        for key in keys {
            sqlx::query("INSERT INTO login_failures (key, failed_at) VALUES ($1, $2)")
                .bind(key)
                .bind(ts(now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn login_failures_since(&self, key: &str, since: DateTime<Utc>) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_failures WHERE key = $1 AND failed_at >= $2")
            .bind(key)
            .bind(ts(since))
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn clear_login_failures(&self, key: &str, forget_before: DateTime<Utc>) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1 OR failed_at < $2")
            .bind(key)
            .bind(ts(forget_before))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[instrument(skip_all, fields(user_id = %user, channel_id = %channel))]
    async fn add_user_channel_within_limit(
        &self,
        user: UserId,
        channel: &ChannelId,
        limit: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<LimitOutcome> {
        let mut tx = self.begin_for_user(user).await?;
        let present = sqlx::query("SELECT 1 FROM user_channels WHERE user_id = $1 AND channel_id = $2")
            .bind(user.get())
            .bind(channel.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if present.is_some() {
            return Ok(LimitOutcome::AlreadyTracked);
        }
        if let Some(limit) = limit {
            let used = count(&mut tx, "SELECT COUNT(*) FROM user_channels WHERE user_id = $1", user, None).await?;
            if used >= u64::from(limit) {
                return Ok(LimitOutcome::LimitReached { limit, used });
            }
        }
        sqlx::query("INSERT INTO user_channels (user_id, channel_id, added_at) VALUES ($1, $2, $3)")
            .bind(user.get())
            .bind(channel.as_str())
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(LimitOutcome::Added { charged: true })
    }

    #[instrument(skip_all, fields(user_id = %user, video_id = %video))]
    async fn add_user_video_within_limit(
        &self,
        user: UserId,
        video: &VideoId,
        monthly_limit: Option<u32>,
        month_start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<LimitOutcome> {
        let mut tx = self.begin_for_user(user).await?;
        let present = sqlx::query("SELECT 1 FROM user_videos WHERE user_id = $1 AND video_id = $2")
            .bind(user.get())
            .bind(video.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if present.is_some() {
            return Ok(LimitOutcome::AlreadyTracked);
        }
        let free = sqlx::query(
            "SELECT 1 FROM videos v JOIN user_channels uc ON uc.channel_id = v.channel_id AND uc.user_id = $1 \
             WHERE v.id = $2 \
             UNION ALL SELECT 1 FROM video_credits WHERE user_id = $3 AND video_id = $4 AND charged_at >= $5",
        )
        .bind(user.get())
        .bind(video.as_str())
        .bind(user.get())
        .bind(video.as_str())
        .bind(ts(month_start))
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if !free {
            if let Some(limit) = monthly_limit {
                let used = count(
                    &mut tx,
                    "SELECT COUNT(*) FROM video_credits WHERE user_id = $1 AND charged_at >= $2",
                    user,
                    Some(month_start),
                )
                .await?;
                if used >= u64::from(limit) {
                    return Ok(LimitOutcome::LimitReached { limit, used });
                }
            }
            sqlx::query("INSERT INTO video_credits (user_id, video_id, charged_at) VALUES ($1, $2, $3)")
                .bind(user.get())
                .bind(video.as_str())
                .bind(ts(now))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO user_videos (user_id, video_id, added_at) VALUES ($1, $2, $3)")
            .bind(user.get())
            .bind(video.as_str())
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(LimitOutcome::Added { charged: !free })
    }

    async fn video_credits_used(&self, user: UserId, since: DateTime<Utc>) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM video_credits WHERE user_id = $1 AND charged_at >= $2")
            .bind(user.get())
            .bind(ts(since))
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn user_can_see_video(&self, user: UserId, video: &VideoId) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM user_videos WHERE user_id = $1 AND video_id = $2 \
             UNION ALL SELECT 1 FROM videos v JOIN user_channels uc ON uc.channel_id = v.channel_id \
             WHERE uc.user_id = $3 AND v.id = $4",
        )
        .bind(user.get())
        .bind(video.as_str())
        .bind(user.get())
        .bind(video.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn user_tracks_channel(&self, user: UserId, channel: &ChannelId) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM user_channels WHERE user_id = $1 AND channel_id = $2")
            .bind(user.get())
            .bind(channel.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    #[instrument(skip_all, fields(user_id = %user, plan = plan.as_str()))]
    async fn change_plan(
        &self,
        user: UserId,
        plan: Plan,
        actor: Option<UserId>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let before: Option<String> = sqlx::query_scalar("SELECT plan FROM users WHERE id = $1")
            .bind(user.get())
            .fetch_optional(&mut *tx)
            .await?;
        let before = before.ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
        sqlx::query("UPDATE users SET plan = $1 WHERE id = $2")
            .bind(plan.as_str())
            .bind(user.get())
            .execute(&mut *tx)
            .await?;
        let detail = format!("{before} -> {}: {reason}", plan.as_str());
        audit(&mut tx, user, actor, "plan_changed", &detail, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn billing_account(&self, user: UserId) -> Result<BillingAccount> {
        let row = sqlx::query("SELECT stripe_customer_id, stripe_subscription_id FROM users WHERE id = $1")
            .bind(user.get())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
        Ok(BillingAccount {
            customer_id: row.try_get("stripe_customer_id")?,
            subscription_id: row.try_get("stripe_subscription_id")?,
        })
    }

    async fn user_by_stripe_customer(&self, customer_id: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE stripe_customer_id = $1")
            .bind(customer_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    #[instrument(skip_all, fields(event_id = %event.event_id, user_id = %event.user_id))]
    async fn apply_billing_event(&self, event: &BillingEvent, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let fresh = sqlx::query(
            "INSERT INTO stripe_events (id, kind, received_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&event.event_id)
        .bind(&event.kind)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        if fresh.rows_affected() == 0 {
            return Ok(false);
        }
        let row = sqlx::query("SELECT plan, stripe_subscription_id, billing_state_at FROM users WHERE id = $1")
            .bind(event.user_id.get())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {}", event.user_id)))?;
        let before: String = row.try_get("plan")?;
        let current_subscription: Option<String> = row.try_get("stripe_subscription_id")?;
        let state_at = at_opt(&row, "billing_state_at")?;
        let in_order = state_at.is_none_or(|t| t <= event.occurred_at);
        let about_current =
            event.opens_subscription || current_subscription.is_none() || current_subscription == event.subscription_id;
        if !(in_order && about_current) {
            sqlx::query("UPDATE users SET stripe_customer_id = COALESCE(stripe_customer_id, $1) WHERE id = $2")
                .bind(&event.customer_id)
                .bind(event.user_id.get())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE users SET stripe_customer_id = COALESCE($1, stripe_customer_id), \
             stripe_subscription_id = COALESCE($2, stripe_subscription_id), plan = COALESCE($3, plan), \
             billing_state_at = $4 WHERE id = $5",
        )
        .bind(&event.customer_id)
        .bind(&event.subscription_id)
        .bind(event.plan.map(Plan::as_str))
        .bind(ts(event.occurred_at))
        .bind(event.user_id.get())
        .execute(&mut *tx)
        .await?;
        if let Some(plan) = event.plan.filter(|p| p.as_str() != before) {
            let detail = format!("{before} -> {}: stripe {} {}", plan.as_str(), event.kind, event.event_id);
            audit(&mut tx, event.user_id, None, "plan_changed", &detail, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn audit_log(&self, user: UserId, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query("SELECT * FROM audit_log WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2")
            .bind(user.get())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    user_id: UserId::new(r.try_get("user_id")?),
                    actor_id: r.try_get::<Option<i64>, _>("actor_id")?.map(UserId::new),
                    action: r.try_get("action")?,
                    detail: r.try_get("detail")?,
                    at: at(r, "at")?,
                })
            })
            .collect()
    }
}
