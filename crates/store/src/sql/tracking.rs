//! The `Store` trait (tracking, the queue, users), written once for both backends (see
//! `crate::sql`).

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::{Row, Transaction};
use tracing::instrument;
use tubewatch_core::{ChannelId, Email, Slot, UserId, VideoId};

use super::{
    Backend, CHANNELS_BY_IDS, CHECKPOINT, CLAIM_DUE, DIALECT, Db, DbRow, EXISTING_VIDEOS, INSERT_VIDEO_TARGETS_BATCH,
    INSERT_VIDEOS_BATCH, INSERT_VIEWS_BATCH, MIGRATIONS_TABLE_EXISTS, RESCHEDULE_HELD, UPDATE_CHANNELS_BATCH,
    UPDATE_VIDEOS_BATCH, VIDEOS_BY_IDS, at, at_opt, ts,
};
use crate::schema;
use crate::{
    ChangeEvent, Channel, ChannelCheck, FinishedChannelCheck, FinishedVideoCheck, Lease, NewChange, NewChannel,
    NewUser, NewVideo, Plan, QueueStats, Result, Store, StoreError, Target, TargetId, TargetKind, ThumbState, User,
    UserVideo, Video, VideoCheck, ViewsRecord, decode,
};

fn target_from_row(row: &DbRow) -> Result<Target> {
    Ok(Target {
        id: row.try_get("id")?,
        kind: decode("targets.kind", row.try_get::<String, _>("kind")?.parse())?,
        subject: row.try_get("subject")?,
        state: decode("targets.state", row.try_get::<String, _>("state")?.parse())?,
        next_due_at: at(row, "next_due_at")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_until: at_opt(row, "lease_until")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        last_error_at: at_opt(row, "last_error_at")?,
    })
}

pub(super) fn video_from_row(row: &DbRow) -> Result<Video> {
    let sha256: Option<String> = row.try_get("thumb_sha256")?;
    let phash: Option<String> = row.try_get("thumb_phash")?;
    let thumb = match (sha256, phash) {
        (Some(sha256), Some(phash)) => Some(ThumbState { sha256, phash, blob_key: row.try_get("thumb_blob_key")? }),
        _ => None,
    };
    Ok(Video {
        id: decode("videos.id", VideoId::parse(row.try_get("id")?))?,
        channel_id: decode("videos.channel_id", ChannelId::parse(row.try_get("channel_id")?))?,
        published_at: at(row, "published_at")?,
        is_short: row.try_get("is_short")?,
        title: row.try_get("title")?,
        thumb,
        created_at: at(row, "created_at")?,
    })
}

fn channel_from_row(row: &DbRow) -> Result<Channel> {
    Ok(Channel {
        id: decode("channels.id", ChannelId::parse(row.try_get("id")?))?,
        title: row.try_get("title")?,
        handle: row.try_get("handle")?,
        latest_video_id: row
            .try_get::<Option<String>, _>("latest_video_id")?
            .map(|v| decode("channels.latest_video_id", VideoId::parse(&v)))
            .transpose()?,
        checked_at: at_opt(row, "checked_at")?,
        created_at: at(row, "created_at")?,
    })
}

pub(super) fn user_from_row(row: &DbRow) -> Result<User> {
    Ok(User {
        id: UserId::new(row.try_get("id")?),
        email: decode("users.email", Email::parse(row.try_get("email")?))?,
        password_hash: row.try_get("password_hash")?,
        plan: decode("users.plan", row.try_get::<String, _>("plan")?.parse::<Plan>())?,
        is_admin: row.try_get("is_admin")?,
        created_at: at(row, "created_at")?,
        email_verified_at: at_opt(row, "email_verified_at")?,
    })
}

pub(super) fn views_from_row(row: &DbRow) -> Result<ViewsRecord> {
    Ok(ViewsRecord {
        video_id: decode("views.video_id", VideoId::parse(row.try_get("video_id")?))?,
        slot: Slot::from_aligned(at(row, "slot")?),
        measured_at: at(row, "measured_at")?,
        views: row.try_get("views")?,
    })
}

pub(super) fn change_from_row(row: &DbRow) -> Result<ChangeEvent> {
    Ok(ChangeEvent {
        id: row.try_get("id")?,
        change: NewChange {
            video_id: decode("changes.video_id", VideoId::parse(row.try_get("video_id")?))?,
            kind: decode("changes.kind", row.try_get::<String, _>("kind")?.parse())?,
            slot: Slot::from_aligned(at(row, "slot")?),
            detected_at: at(row, "detected_at")?,
            before_title: row.try_get("before_title")?,
            after_title: row.try_get("after_title")?,
            before_thumb_key: row.try_get("before_thumb_key")?,
            after_thumb_key: row.try_get("after_thumb_key")?,
        },
    })
}

/// Checks that `lease` is still the target's current lease, inside the caller's transaction.
pub(super) async fn hold(tx: &mut Transaction<'_, Db>, lease: &Lease) -> Result<()> {
    let held = sqlx::query("SELECT 1 FROM targets WHERE id = $1 AND lease_owner = $2 AND lease_until = $3")
        .bind(lease.target_id)
        .bind(&lease.owner)
        .bind(ts(lease.until))
        .fetch_optional(&mut **tx)
        .await?;
    held.map(|_| ()).ok_or(StoreError::LeaseLost(lease.target_id))
}

pub(super) async fn reschedule(tx: &mut Transaction<'_, Db>, lease: &Lease, next: Option<DateTime<Utc>>) -> Result<()> {
    sqlx::query(
        "UPDATE targets SET state = $1, next_due_at = COALESCE($2, next_due_at), lease_owner = NULL, \
         lease_until = NULL, attempts = 0, last_error = NULL, last_error_at = NULL WHERE id = $3",
    )
    .bind(if next.is_some() { "active" } else { "finished" })
    .bind(next.map(ts))
    .bind(lease.target_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_views(tx: &mut Transaction<'_, Db>, r: &ViewsRecord) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO views (video_id, slot, measured_at, views) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (video_id, slot) DO NOTHING",
    )
    .bind(r.video_id.as_str())
    .bind(ts(r.slot.start()))
    .bind(ts(r.measured_at))
    .bind(r.views)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn insert_change(tx: &mut Transaction<'_, Db>, c: &NewChange) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO changes (video_id, kind, slot, detected_at, before_title, after_title, before_thumb_key, \
         after_thumb_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (video_id, kind, slot) DO NOTHING",
    )
    .bind(c.video_id.as_str())
    .bind(c.kind.as_str())
    .bind(ts(c.slot.start()))
    .bind(ts(c.detected_at))
    .bind(&c.before_title)
    .bind(&c.after_title)
    .bind(&c.before_thumb_key)
    .bind(&c.after_thumb_key)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn insert_video(tx: &mut Transaction<'_, Db>, v: &NewVideo, now: DateTime<Utc>) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO videos (id, channel_id, published_at, is_short, title, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(v.id.as_str())
    .bind(v.channel_id.as_str())
    .bind(ts(v.published_at))
    .bind(v.is_short)
    .bind(&v.title)
    .bind(ts(now))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn ensure_target(
    tx: &mut Transaction<'_, Db>,
    kind: TargetKind,
    subject: &str,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Target> {
    sqlx::query(
        "INSERT INTO targets (kind, subject, next_due_at, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (kind, subject) DO NOTHING",
    )
    .bind(kind.as_str())
    .bind(subject)
    .bind(ts(due))
    .bind(ts(now))
    .execute(&mut **tx)
    .await?;
    let row = sqlx::query("SELECT * FROM targets WHERE kind = $1 AND subject = $2")
        .bind(kind.as_str())
        .bind(subject)
        .fetch_one(&mut **tx)
        .await?;
    target_from_row(&row)
}

/// A batch's lease and next due time, as `RESCHEDULE_HELD` reads it (`T`: a time as stored).
#[derive(Serialize)]
struct HeldLeaseRow<'a, T> {
    id: TargetId,
    owner: &'a str,
    until: T,
    next: Option<T>,
}

/// A batch's views record, as `INSERT_VIEWS_BATCH` reads it.
#[derive(Serialize)]
struct ViewsRow<'a, T> {
    video_id: &'a str,
    slot: T,
    measured_at: T,
    views: i64,
}

/// A batch's channel check, as `UPDATE_CHANNELS_BATCH` reads it.
#[derive(Serialize)]
struct ChannelStateRow<'a, T> {
    id: &'a str,
    checked_at: T,
    latest: Option<&'a str>,
}

/// A video a channel's feed shows, as `INSERT_VIDEOS_BATCH` and `INSERT_VIDEO_TARGETS_BATCH` read it.
#[derive(Serialize)]
struct FeedVideoRow<'a, T> {
    id: &'a str,
    channel_id: &'a str,
    published_at: T,
    is_short: bool,
    title: &'a str,
    /// Its first slot's start: its target's first due time, should it be new.
    due: T,
    created_at: T,
}

/// A batch's title and thumbnail, as `UPDATE_VIDEOS_BATCH` reads it.
#[derive(Serialize)]
struct VideoStateRow<'a> {
    id: &'a str,
    title: &'a str,
    sha256: Option<&'a str>,
    phash: Option<&'a str>,
    blob_key: Option<&'a str>,
}

fn json_param(what: &str, rows: &impl Serialize) -> Result<String> {
    serde_json::to_string(rows).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Splits a batch's indexes into groups in which no target appears twice (a target whose lease
/// expired while its check waited can be in a batch under its old and its new lease: which of the
/// two holds is decided per group). Almost always one group.
fn distinct_target_groups<'a>(leases: impl Iterator<Item = &'a Lease>) -> Vec<Vec<usize>> {
    let mut groups: Vec<(HashSet<TargetId>, Vec<usize>)> = Vec::new();
    for (i, lease) in leases.enumerate() {
        let target = lease.target_id;
        match groups.iter_mut().find(|(ids, _)| !ids.contains(&target)) {
            Some((ids, members)) => {
                ids.insert(target);
                members.push(i);
            }
            None => groups.push((HashSet::from([target]), vec![i])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// Reschedules each of a group of targets (no target twice) to its next due time, only where
/// its lease is still held; returns the ids of those rescheduled.
async fn reschedule_held<'a>(
    tx: &mut Transaction<'_, Db>,
    leases: impl Iterator<Item = (&'a Lease, Option<DateTime<Utc>>)>,
) -> Result<HashSet<TargetId>> {
    let leases: Vec<_> = leases
        .map(|(lease, next)| HeldLeaseRow {
            id: lease.target_id,
            owner: &lease.owner,
            until: ts(lease.until),
            next: next.map(ts),
        })
        .collect();
    Ok(sqlx::query_scalar::<_, TargetId>(RESCHEDULE_HELD)
        .bind(json_param("leases", &leases)?)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect())
}

/// Writes one group of `complete_video_checks` (no target twice) inside `tx`: the reschedule
/// that checks the leases first, then what the held ones measured. Marks the held ones in `held`.
async fn write_video_checks(
    tx: &mut Transaction<'_, Db>,
    checks: &[FinishedVideoCheck],
    group: &[usize],
    held: &mut [bool],
) -> Result<()> {
    let leases = group.iter().map(|&i| (&checks[i].lease, checks[i].next_due_at));
    let rescheduled = reschedule_held(tx, leases).await?;
    let mut written: Vec<&VideoCheck> = Vec::with_capacity(group.len());
    for &i in group {
        if rescheduled.contains(&checks[i].lease.target_id) {
            held[i] = true;
            written.push(&checks[i].check);
        }
    }
    if written.is_empty() {
        return Ok(());
    }
    // In the views table's key order: each insert lands next to the previous one's page.
    written.sort_unstable_by(|a, b| a.record.video_id.as_str().cmp(b.record.video_id.as_str()));
    let views: Vec<_> = written
        .iter()
        .map(|c| ViewsRow {
            video_id: c.record.video_id.as_str(),
            slot: ts(c.record.slot.start()),
            measured_at: ts(c.record.measured_at),
            views: c.record.views,
        })
        .collect();
    sqlx::query(INSERT_VIEWS_BATCH).bind(json_param("views", &views)?).execute(&mut **tx).await?;
    let states: Vec<_> = written
        .iter()
        .map(|c| {
            let thumb = c.thumb.as_ref();
            VideoStateRow {
                id: c.record.video_id.as_str(),
                title: &c.title,
                sha256: thumb.map(|t| t.sha256.as_str()),
                phash: thumb.map(|t| t.phash.as_str()),
                blob_key: thumb.and_then(|t| t.blob_key.as_deref()),
            }
        })
        .collect();
    sqlx::query(UPDATE_VIDEOS_BATCH).bind(json_param("videos", &states)?).execute(&mut **tx).await?;
    for change in written.iter().flat_map(|c| &c.changes) {
        insert_change(tx, change).await?;
    }
    Ok(())
}

/// Writes one group of `complete_channel_checks` (no target twice) inside `tx`: the reschedule
/// that checks the leases first, then the held ones' new videos and channel rows. Marks the held
/// ones in `held`.
async fn write_channel_checks(
    tx: &mut Transaction<'_, Db>,
    checks: &[FinishedChannelCheck],
    group: &[usize],
    held: &mut [bool],
) -> Result<()> {
    let leases = group.iter().map(|&i| (&checks[i].lease, Some(checks[i].next_due_at)));
    let rescheduled = reschedule_held(tx, leases).await?;
    let mut channels = Vec::with_capacity(group.len());
    let mut feed_videos = Vec::new();
    let mut seen = HashSet::new();
    for &i in group {
        if !rescheduled.contains(&checks[i].lease.target_id) {
            continue;
        }
        held[i] = true;
        let check = &checks[i].check;
        for (video, first_due) in &check.feed_videos {
            if seen.insert(video.id.as_str()) {
                feed_videos.push(FeedVideoRow {
                    id: video.id.as_str(),
                    channel_id: video.channel_id.as_str(),
                    published_at: ts(video.published_at),
                    is_short: video.is_short,
                    title: &video.title,
                    due: ts(*first_due),
                    created_at: ts(check.checked_at),
                });
            }
        }
        channels.push(ChannelStateRow {
            id: check.channel_id.as_str(),
            checked_at: ts(check.checked_at),
            latest: check.latest_video_id.as_ref().map(VideoId::as_str),
        });
    }
    if !feed_videos.is_empty() {
        // Which of the feeds' videos are new is decided here, by the insert itself: the known
        // ones are left as they are, and only the inserted ones get a target.
        let inserted: HashSet<String> = sqlx::query_scalar::<_, String>(INSERT_VIDEOS_BATCH)
            .bind(json_param("feed videos", &feed_videos)?)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
        feed_videos.retain(|v| inserted.contains(v.id));
        for video in &feed_videos {
            tracing::info!(
                video_id = video.id,
                channel_id = video.channel_id,
                "new video {} in channel {}",
                video.id,
                video.channel_id
            );
        }
        if !feed_videos.is_empty() {
            sqlx::query(INSERT_VIDEO_TARGETS_BATCH)
                .bind(json_param("new video targets", &feed_videos)?)
                .execute(&mut **tx)
                .await?;
        }
    }
    if !channels.is_empty() {
        sqlx::query(UPDATE_CHANNELS_BATCH).bind(json_param("channels", &channels)?).execute(&mut **tx).await?;
    }
    Ok(())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait]
impl Store for Backend {
    async fn migrate(&self) -> Result<()> {
        let migrator = schema::migrator(DIALECT);
        if sqlx::query_scalar::<_, i64>(MIGRATIONS_TABLE_EXISTS).fetch_one(&self.pool).await? > 0 {
            for row in sqlx::query("SELECT version, checksum FROM _sqlx_migrations").fetch_all(&self.pool).await? {
                let version: i64 = row.try_get("version")?;
                let checksum: Vec<u8> = row.try_get("checksum")?;
                if let Some(current) = schema::adopted_checksum(&migrator, DIALECT, version, &checksum) {
                    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2")
                        .bind(current)
                        .bind(version)
                        .execute(&self.pool)
                        .await?;
                }
            }
        }
        migrator.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn checkpoint(&self) -> Result<()> {
        if let Some(statement) = CHECKPOINT {
            sqlx::query(statement).execute(&self.pool).await?;
        }
        Ok(())
    }

    #[instrument(skip_all, fields(channel_id = %channel.id))]
    async fn upsert_channel(&self, channel: &NewChannel, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO channels (id, title, handle, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE \
             SET title = CASE WHEN excluded.title <> '' THEN excluded.title ELSE channels.title END, \
             handle = COALESCE(excluded.handle, channels.handle)",
        )
        .bind(channel.id.as_str())
        .bind(&channel.title)
        .bind(&channel.handle)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn channel(&self, id: &ChannelId) -> Result<Option<Channel>> {
        let row =
            sqlx::query("SELECT * FROM channels WHERE id = $1").bind(id.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(channel_from_row).transpose()
    }

    async fn channels(&self, ids: &[ChannelId]) -> Result<Vec<Channel>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = json_param("channel ids", &ids.iter().map(ChannelId::as_str).collect::<Vec<_>>())?;
        let rows = sqlx::query(CHANNELS_BY_IDS).bind(ids).fetch_all(&self.pool).await?;
        rows.iter().map(channel_from_row).collect()
    }

    #[instrument(skip_all, fields(video_id = %video.id))]
    async fn insert_video(&self, video: &NewVideo, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let inserted = insert_video(&mut tx, video, now).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn video(&self, id: &VideoId) -> Result<Option<Video>> {
        let row =
            sqlx::query("SELECT * FROM videos WHERE id = $1").bind(id.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(video_from_row).transpose()
    }

    async fn existing_videos(&self, ids: &[VideoId]) -> Result<Vec<VideoId>> {
        let ids = serde_json::to_string(&ids.iter().map(VideoId::as_str).collect::<Vec<_>>())
            .map_err(|e| StoreError::Corrupt(format!("video ids: {e}")))?;
        let found: Vec<String> = sqlx::query_scalar(EXISTING_VIDEOS).bind(ids).fetch_all(&self.pool).await?;
        found.iter().map(|id| decode("videos.id", VideoId::parse(id))).collect()
    }

    async fn channel_videos(&self, id: &ChannelId) -> Result<Vec<Video>> {
        let rows = sqlx::query("SELECT * FROM videos WHERE channel_id = $1 ORDER BY published_at DESC, id")
            .bind(id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(video_from_row).collect()
    }

    #[instrument(skip_all, fields(kind = %kind, subject))]
    async fn ensure_target(
        &self,
        kind: TargetKind,
        subject: &str,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Target> {
        let mut tx = self.begin().await?;
        let target = ensure_target(&mut tx, kind, subject, due, now).await?;
        tx.commit().await?;
        Ok(target)
    }

    async fn target(&self, kind: TargetKind, subject: &str) -> Result<Option<Target>> {
        let row = sqlx::query("SELECT * FROM targets WHERE kind = $1 AND subject = $2")
            .bind(kind.as_str())
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(target_from_row).transpose()
    }

    async fn list_targets(&self, kind: TargetKind, offset: u64, limit: u32) -> Result<Vec<Target>> {
        let rows = sqlx::query("SELECT * FROM targets WHERE kind = $1 ORDER BY subject LIMIT $2 OFFSET $3")
            .bind(kind.as_str())
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(target_from_row).collect()
    }

    async fn stop_target(&self, kind: TargetKind, subject: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE targets SET state = 'finished', lease_owner = NULL, lease_until = NULL \
             WHERE kind = $1 AND subject = $2 AND state = 'active'",
        )
        .bind(kind.as_str())
        .bind(subject)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn resume_target(&self, kind: TargetKind, subject: &str, due: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE targets SET state = 'active', next_due_at = $1, attempts = 0, last_error = NULL, \
             last_error_at = NULL, lease_owner = NULL, lease_until = NULL \
             WHERE kind = $2 AND subject = $3 AND state <> 'active'",
        )
        .bind(ts(due))
        .bind(kind.as_str())
        .bind(subject)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn keep_target(&self, kind: TargetKind, subject: &str) -> Result<()> {
        sqlx::query("UPDATE targets SET kept_by_operator = TRUE WHERE kind = $1 AND subject = $2")
            .bind(kind.as_str())
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[instrument(skip_all, fields(owner, limit))]
    async fn claim_due(&self, owner: &str, now: DateTime<Utc>, lease_for: Duration, limit: u32) -> Result<Vec<Target>> {
        let rows = sqlx::query(CLAIM_DUE)
            .bind(owner)
            .bind(ts(now + lease_for))
            .bind(ts(now))
            .bind(ts(now))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut targets = rows.iter().map(target_from_row).collect::<Result<Vec<_>>>()?;
        targets.sort_by_key(|t| (t.next_due_at, t.id));
        Ok(targets)
    }

    async fn complete(&self, lease: &Lease, next_due_at: Option<DateTime<Utc>>) -> Result<()> {
        let mut tx = self.begin().await?;
        hold(&mut tx, lease).await?;
        reschedule(&mut tx, lease, next_due_at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE targets SET state = $1, lease_owner = NULL, lease_until = $2, attempts = attempts + 1, \
             last_error = $3, last_error_at = $4 \
             WHERE id = $5 AND lease_owner = $6 AND lease_until = $7",
        )
        .bind(if retry_at.is_some() { "active" } else { "failed" })
        .bind(retry_at.map(ts))
        .bind(error)
        .bind(ts(now))
        .bind(lease.target_id)
        .bind(&lease.owner)
        .bind(ts(lease.until))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(lease.target_id));
        }
        Ok(())
    }

    async fn skip_slot(
        &self,
        lease: &Lease,
        error: &str,
        now: DateTime<Utc>,
        next_due_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE targets SET state = $1, next_due_at = COALESCE($2, next_due_at), lease_owner = NULL, \
             lease_until = NULL, attempts = 0, last_error = $3, last_error_at = $4 \
             WHERE id = $5 AND lease_owner = $6 AND lease_until = $7",
        )
        .bind(if next_due_at.is_some() { "active" } else { "finished" })
        .bind(next_due_at.map(ts))
        .bind(error)
        .bind(ts(now))
        .bind(lease.target_id)
        .bind(&lease.owner)
        .bind(ts(lease.until))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(lease.target_id));
        }
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let done = sqlx::query(
            "UPDATE targets SET lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2 AND lease_until = $3",
        )
        .bind(lease.target_id)
        .bind(&lease.owner)
        .bind(ts(lease.until))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(lease.target_id));
        }
        Ok(())
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats> {
        let row = sqlx::query(
            "SELECT \
               COUNT(*) FILTER (WHERE state = 'active') AS active, \
               COUNT(*) FILTER (WHERE state = 'active' AND next_due_at <= $1 AND (lease_until IS NULL OR lease_until < $1)) AS due, \
               COUNT(*) FILTER (WHERE state = 'active' AND lease_owner IS NOT NULL AND lease_until >= $1) AS leased, \
               COUNT(*) FILTER (WHERE state = 'failed') AS failed, \
               COUNT(*) FILTER (WHERE state = 'finished') AS finished, \
               COUNT(*) FILTER (WHERE state = 'active' AND last_error IS NOT NULL) AS erroring, \
               MIN(next_due_at) FILTER (WHERE state = 'active' AND next_due_at <= $1 AND (lease_until IS NULL OR lease_until < $1)) AS oldest \
             FROM targets",
        )
        .bind(ts(now))
        .fetch_one(&self.pool)
        .await?;
        let count = |c: &str| -> Result<u64> { Ok(u64::try_from(row.try_get::<i64, _>(c)?).unwrap_or(0)) };
        Ok(QueueStats {
            active: count("active")?,
            due: count("due")?,
            leased: count("leased")?,
            failed: count("failed")?,
            finished: count("finished")?,
            erroring: count("erroring")?,
            oldest_due_at: at_opt(&row, "oldest")?,
        })
    }

    async fn queue_busy(&self, now: DateTime<Utc>) -> Result<bool> {
        // A leased target was due when it was claimed, so due and leased targets are all among
        // those due by `now`; what is left out is waiting for a retry (no owner, lease in the
        // future), as in `queue_stats`.
        let row = sqlx::query(
            "SELECT 1 FROM targets WHERE state = 'active' AND next_due_at <= $1 \
             AND (lease_owner IS NOT NULL OR lease_until IS NULL OR lease_until < $1) LIMIT 1",
        )
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn failing_targets(&self, limit: u32) -> Result<Vec<Target>> {
        let rows = sqlx::query(
            "SELECT * FROM targets WHERE last_error IS NOT NULL AND state <> 'finished' \
             ORDER BY last_error_at DESC, id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(target_from_row).collect()
    }

    #[instrument(skip_all, fields(video_id = %check.record.video_id, slot = %check.record.slot))]
    async fn complete_video_check(
        &self,
        lease: &Lease,
        check: &VideoCheck,
        next_due_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let one = FinishedVideoCheck { lease: lease.clone(), check: check.clone(), next_due_at };
        match self.complete_video_checks(std::slice::from_ref(&one)).await?.first() {
            Some(true) => Ok(()),
            _ => Err(StoreError::LeaseLost(lease.target_id)),
        }
    }

    #[instrument(skip_all, fields(checks = checks.len()))]
    async fn complete_video_checks(&self, checks: &[FinishedVideoCheck]) -> Result<Vec<bool>> {
        let mut held = vec![false; checks.len()];
        if checks.is_empty() {
            return Ok(held);
        }
        let mut tx = self.begin().await?;
        for group in distinct_target_groups(checks.iter().map(|c| &c.lease)) {
            write_video_checks(&mut tx, checks, &group, &mut held).await?;
        }
        tx.commit().await?;
        Ok(held)
    }

    async fn videos(&self, ids: &[VideoId]) -> Result<Vec<Video>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = json_param("video ids", &ids.iter().map(VideoId::as_str).collect::<Vec<_>>())?;
        let rows = sqlx::query(VIDEOS_BY_IDS).bind(ids).fetch_all(&self.pool).await?;
        rows.iter().map(video_from_row).collect()
    }

    #[instrument(skip_all, fields(channel_id = %check.channel_id, feed_videos = check.feed_videos.len()))]
    async fn complete_channel_check(
        &self,
        lease: &Lease,
        check: &ChannelCheck,
        next_due_at: DateTime<Utc>,
    ) -> Result<()> {
        let one = FinishedChannelCheck { lease: lease.clone(), check: check.clone(), next_due_at };
        match self.complete_channel_checks(std::slice::from_ref(&one)).await?.first() {
            Some(true) => Ok(()),
            _ => Err(StoreError::LeaseLost(lease.target_id)),
        }
    }

    #[instrument(skip_all, fields(checks = checks.len()))]
    async fn complete_channel_checks(&self, checks: &[FinishedChannelCheck]) -> Result<Vec<bool>> {
        let mut held = vec![false; checks.len()];
        if checks.is_empty() {
            return Ok(held);
        }
        let mut tx = self.begin().await?;
        for group in distinct_target_groups(checks.iter().map(|c| &c.lease)) {
            write_channel_checks(&mut tx, checks, &group, &mut held).await?;
        }
        tx.commit().await?;
        Ok(held)
    }

    async fn record_views(&self, record: &ViewsRecord) -> Result<bool> {
        let mut tx = self.begin().await?;
        let inserted = insert_views(&mut tx, record).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn views(&self, video: &VideoId) -> Result<Vec<ViewsRecord>> {
        let rows = sqlx::query("SELECT * FROM views WHERE video_id = $1 ORDER BY slot")
            .bind(video.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(views_from_row).collect()
    }

    async fn record_change(&self, change: &NewChange) -> Result<bool> {
        let mut tx = self.begin().await?;
        let inserted = insert_change(&mut tx, change).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn changes(&self, video: &VideoId) -> Result<Vec<ChangeEvent>> {
        let rows = sqlx::query("SELECT * FROM changes WHERE video_id = $1 ORDER BY slot, id")
            .bind(video.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(change_from_row).collect()
    }

    async fn create_user(&self, user: &NewUser, now: DateTime<Utc>) -> Result<User> {
        let row = sqlx::query(
            "INSERT INTO users (email, password_hash, plan, is_admin, created_at, email_verified_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        )
        .bind(user.email.as_str())
        .bind(&user.password_hash)
        .bind(user.plan.as_str())
        .bind(user.is_admin)
        .bind(ts(now))
        .bind(user.email_verified.then(|| ts(now)))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("email {} is taken", user.email))
            } else {
                e.into()
            }
        })?;
        user_from_row(&row)
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1").bind(id.get()).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>> {
        let row =
            sqlx::query("SELECT * FROM users WHERE email = $1").bind(email.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn set_user_plan(&self, id: UserId, plan: Plan) -> Result<()> {
        let done = sqlx::query("UPDATE users SET plan = $1 WHERE id = $2")
            .bind(plan.as_str())
            .bind(id.get())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {id}")));
        }
        Ok(())
    }

    async fn add_user_channel(&self, user: UserId, channel: &ChannelId, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO user_channels (user_id, channel_id, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, channel_id) DO NOTHING",
        )
        .bind(user.get())
        .bind(channel.as_str())
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_user_channel(&self, user: UserId, channel: &ChannelId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM user_channels WHERE user_id = $1 AND channel_id = $2")
            .bind(user.get())
            .bind(channel.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // One statement, so a user adding the channel meanwhile either keeps it or resumes it.
        sqlx::query(
            "UPDATE targets SET state = 'finished', lease_owner = NULL, lease_until = NULL \
             WHERE state = 'active' \
               AND NOT EXISTS (SELECT 1 FROM user_channels WHERE channel_id = $1) \
               AND NOT EXISTS (SELECT 1 FROM targets k WHERE k.kind = 'channel' AND k.subject = $1 \
                               AND k.kept_by_operator) \
               AND ((kind = 'channel' AND subject = $1) \
                    OR (kind = 'video' AND NOT kept_by_operator \
                        AND subject IN (SELECT id FROM videos WHERE channel_id = $1) \
                        AND subject NOT IN (SELECT video_id FROM user_videos)))",
        )
        .bind(channel.as_str())
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    async fn user_channels(&self, user: UserId) -> Result<Vec<ChannelId>> {
        let rows = sqlx::query("SELECT channel_id FROM user_channels WHERE user_id = $1 ORDER BY added_at, channel_id")
            .bind(user.get())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| decode("user_channels.channel_id", ChannelId::parse(r.try_get("channel_id")?))).collect()
    }

    async fn add_user_video(&self, user: UserId, video: &VideoId, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO user_videos (user_id, video_id, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, video_id) DO NOTHING",
        )
        .bind(user.get())
        .bind(video.as_str())
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_user_video(&self, user: UserId, video: &VideoId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM user_videos WHERE user_id = $1 AND video_id = $2")
            .bind(user.get())
            .bind(video.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE targets SET state = 'finished', lease_owner = NULL, lease_until = NULL \
             WHERE kind = 'video' AND subject = $1 AND state = 'active' AND NOT kept_by_operator \
               AND NOT EXISTS (SELECT 1 FROM user_videos WHERE video_id = $1) \
               AND NOT EXISTS (SELECT 1 FROM videos v JOIN targets c ON c.kind = 'channel' \
                               AND c.subject = v.channel_id AND c.state = 'active' WHERE v.id = $1)",
        )
        .bind(video.as_str())
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    async fn user_videos(&self, user: UserId) -> Result<Vec<UserVideo>> {
        let rows =
            sqlx::query("SELECT video_id, added_at FROM user_videos WHERE user_id = $1 ORDER BY added_at, video_id")
                .bind(user.get())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(UserVideo {
                    video_id: decode("user_videos.video_id", VideoId::parse(r.try_get("video_id")?))?,
                    added_at: at(r, "added_at")?,
                })
            })
            .collect()
    }

    async fn count_user_videos_since(&self, user: UserId, since: DateTime<Utc>) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_videos WHERE user_id = $1 AND added_at >= $2")
            .bind(user.get())
            .bind(ts(since))
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
