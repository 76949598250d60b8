//! User commands over the store: track, untrack, list, views, status.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use tubewatch_core::{Email, UserId, YoutubeRef};
use tubewatch_store::{ChangeEvent, Store, TargetKind, ViewsRecord};

use crate::app::App;

#[derive(Debug, Subcommand)]
pub enum TrackWhat {
    /// A channel: URL, /@handle, /c/NAME, /user/NAME or UC… id. Its feed is read hourly.
    Channel { input: String },
    /// A video: URL (watch, youtu.be, shorts) or id. Measured hourly, then daily.
    Video { input: String },
}

#[derive(Debug, Args)]
pub struct TrackArgs {
    #[command(subcommand)]
    pub what: TrackWhat,
    /// The user this is tracked for (their mapping); without it, tracked for the installation.
    #[arg(long, global = true)]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct ViewsArgs {
    /// The video: URL or id.
    pub video: String,
    /// CSV instead of a table.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// JSON (records and changes).
    #[arg(long)]
    pub json: bool,
}

async fn user_id(store: &dyn Store, email: Option<&str>) -> anyhow::Result<Option<UserId>> {
    let Some(email) = email else { return Ok(None) };
    let email = Email::parse(email)?;
    let user = store.user_by_email(&email).await?.with_context(|| format!("no user with email {email}"))?;
    Ok(Some(user.id))
}

pub async fn track(app: &App, args: TrackArgs) -> anyhow::Result<()> {
    let user = user_id(&*app.store, args.user.as_deref()).await?;
    let tracker = app.tracker()?;
    match args.what {
        TrackWhat::Channel { input } => {
            let id = tracker.track_channel(user, &input).await?;
            if user.is_none() {
                // The operator's: kept when the last user who monitors it lets it go.
                app.store.keep_target(TargetKind::Channel, id.as_str()).await?;
            }
            println!("tracking channel {id}; its feed is checked every hour");
        }
        TrackWhat::Video { input } => {
            let id = tracker.track_video(user, &input).await?;
            if user.is_none() {
                app.store.keep_target(TargetKind::Video, id.as_str()).await?;
            }
            let target = app.store.target(TargetKind::Video, id.as_str()).await?;
            let due = target.map(|t| t.next_due_at.to_rfc3339()).unwrap_or_default();
            println!("tracking video {id}; first measurement due {due}");
        }
    }
    Ok(())
}

/// With `--user`, removes that user's mapping; without, stops the target for everyone.
pub async fn untrack(app: &App, args: TrackArgs) -> anyhow::Result<()> {
    let user = user_id(&*app.store, args.user.as_deref()).await?;
    let (kind, subject, changed) = match &args.what {
        TrackWhat::Channel { input } => {
            let id = app.tracker()?.resolve_channel(input).await?;
            let changed = match user {
                Some(user) => app.tracker()?.untrack_channel_for(user, &id).await?,
                None => app.store.stop_target(TargetKind::Channel, id.as_str()).await?,
            };
            (TargetKind::Channel, id.to_string(), changed)
        }
        TrackWhat::Video { input } => {
            let id = YoutubeRef::parse_video(input)?;
            let changed = match user {
                Some(user) => app.tracker()?.untrack_video_for(user, &id).await?,
                None => app.store.stop_target(TargetKind::Video, id.as_str()).await?,
            };
            (TargetKind::Video, id.to_string(), changed)
        }
    };
    if !changed {
        bail!("{kind} {subject} was not being tracked");
    }
    println!("stopped tracking {kind} {subject}");
    Ok(())
}

pub async fn list(app: &App, user: Option<String>) -> anyhow::Result<()> {
    let store = &*app.store;
    if let Some(user) = user_id(store, user.as_deref()).await? {
        let service = app.service();
        for channel in service.monitored_channels(user).await? {
            println!("channel {channel}");
        }
        for video in service.videos_tracked_alone(user).await? {
            println!("video   {} (added {})", video.video_id, video.added_at.format("%Y-%m-%d %H:%M"));
        }
        return Ok(());
    }
    println!("{:<8} {:<26} {:<9} {:<22} last error", "kind", "subject", "state", "next due");
    for kind in [TargetKind::Channel, TargetKind::Video] {
        let mut offset = 0;
        loop {
            let page = store.list_targets(kind, offset, 500).await?;
            for t in &page {
                println!(
                    "{:<8} {:<26} {:<9} {:<22} {}",
                    kind.as_str(),
                    t.subject,
                    t.state.as_str(),
                    t.next_due_at.format("%Y-%m-%d %H:%M:%S"),
                    t.last_error.as_deref().unwrap_or("")
                );
            }
            if page.len() < 500 {
                break;
            }
            offset += 500;
        }
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct Series {
    video_id: String,
    title: String,
    published_at: chrono::DateTime<chrono::Utc>,
    records: Vec<ViewsRecord>,
    changes: Vec<ChangeEvent>,
}

pub async fn views(app: &App, args: ViewsArgs) -> anyhow::Result<()> {
    let id = YoutubeRef::parse_video(&args.video)?;
    let service = app.service();
    let video = service.video(&id).await?.with_context(|| format!("video {id} is not tracked"))?;
    let history = service.history(&id).await?;
    let series = Series {
        video_id: id.to_string(),
        title: video.title,
        published_at: video.published_at,
        records: history.views,
        changes: history.changes,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&series)?);
        return Ok(());
    }
    print!("{}", render_series(&series, args.csv));
    Ok(())
}

/// One line per slot; a slot where a change was detected carries it in the last column.
fn render_series(series: &Series, csv: bool) -> String {
    let mut out = String::new();
    if csv {
        out.push_str("slot,measured_at,views,change\n");
    } else {
        let _ = writeln!(out, "{} — {}", series.video_id, series.title);
        let _ = writeln!(out, "{:<22} {:<22} {:>14}  change", "slot", "measured at", "views");
    }
    for r in &series.records {
        let change = series
            .changes
            .iter()
            .filter(|c| c.change.slot == r.slot)
            .map(|c| match c.change.kind {
                tubewatch_store::ChangeKind::Title => format!(
                    "title: {} -> {}",
                    c.change.before_title.as_deref().unwrap_or(""),
                    c.change.after_title.as_deref().unwrap_or("")
                ),
                tubewatch_store::ChangeKind::Thumbnail => {
                    format!("thumbnail: {}", c.change.after_thumb_key.as_deref().unwrap_or(""))
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        let slot = r.slot.start().format("%Y-%m-%dT%H:%M:%SZ");
        let measured = r.measured_at.format("%Y-%m-%dT%H:%M:%SZ");
        if csv {
            let _ = writeln!(out, "{slot},{measured},{},\"{}\"", r.views, change.replace('"', "\"\""));
        } else {
            let _ = writeln!(out, "{slot:<22} {measured:<22} {:>14}  {change}", r.views);
        }
    }
    out
}

pub async fn status(app: &App) -> anyhow::Result<()> {
    let now = app.clock.now();
    let stats = app.store.queue_stats(now).await?;
    println!("now (service clock): {}", now.to_rfc3339());
    println!("active targets: {}  due now: {}  leased: {}", stats.active, stats.due, stats.leased);
    match stats.oldest_due_at {
        Some(t) => println!("late: the oldest due target has waited {} s", (now - t).num_seconds()),
        None => println!("late: nothing is waiting"),
    }
    println!("stopped by a permanent error: {}  retrying after an error: {}", stats.failed, stats.erroring);
    let failing = app.store.failing_targets(20).await?;
    if !failing.is_empty() {
        println!("\nfailing targets (most recent first):");
        for t in failing {
            let at = t.last_error_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default();
            println!(
                "  {} {} [{}] {at}: {}",
                t.kind.as_str(),
                t.subject,
                t.state.as_str(),
                t.last_error.as_deref().unwrap_or("")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tubewatch_core::{Slot, VideoId};
    use tubewatch_store::{ChangeKind, NewChange};

    #[test]
    fn series_marks_changes_at_their_slot() {
        let id = VideoId::parse("dQw4w9WgXcQ").unwrap();
        let t0: chrono::DateTime<chrono::Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
        let rec = |h: i64, views| ViewsRecord {
            video_id: id.clone(),
            slot: Slot::hour_of(t0 + chrono::Duration::hours(h)),
            measured_at: t0 + chrono::Duration::hours(h) + chrono::Duration::seconds(20),
            views,
        };
        let change = ChangeEvent {
            id: 1,
            change: NewChange {
                video_id: id.clone(),
                kind: ChangeKind::Title,
                slot: Slot::hour_of(t0 + chrono::Duration::hours(1)),
                detected_at: t0,
                before_title: Some("Old".into()),
                after_title: Some("New \"quoted\"".into()),
                before_thumb_key: None,
                after_thumb_key: None,
            },
        };
        let series = Series {
            video_id: id.to_string(),
            title: "New".into(),
            published_at: t0,
            records: vec![rec(0, 5), rec(1, 50)],
            changes: vec![change],
        };
        let csv = render_series(&series, true);
        assert_eq!(
            csv,
            "slot,measured_at,views,change\n2026-03-01T10:00:00Z,2026-03-01T10:00:20Z,5,\"\"\n\
             2026-03-01T11:00:00Z,2026-03-01T11:00:20Z,50,\"title: Old -> New \"\"quoted\"\"\"\n"
        );
    }
}
