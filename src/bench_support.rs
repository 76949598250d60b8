//! What the benches share: the simulator as a process of its own, a store filled with a world's
//! channels and videos, and processes' CPU seconds.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use tubewatch_core::{AcceleratedClock, SchedulePolicy, Slot};
use tubewatch_sim::world::World;
use tubewatch_store::{NewChannel, NewVideo, Store, TargetKind};

/// CPU seconds (user + system) of this process so far.
pub(crate) fn cpu_seconds() -> f64 {
    proc_cpu(std::process::id()).map_or(f64::NAN, |(own, _)| own)
}

/// CPU seconds of process `pid` from `/proc/PID/stat`: its own and its reaped children's.
pub(crate) fn proc_cpu(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    Some(((ticks(11)? + ticks(12)?) / 100.0, (ticks(13)? + ticks(14)?) / 100.0))
}

pub(crate) struct SimProcess(pub(crate) Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tubewatch sim` as its own process on `port` (a world of `channels` channels on `clock`,
/// pages of `page_bytes`, latency uniform on 0..2×`latency_ms`) and waits until it answers.
pub(crate) async fn start_sim(
    channels: u32,
    clock: &AcceleratedClock,
    port: u16,
    page_bytes: usize,
    latency_ms: u64,
) -> anyhow::Result<SimProcess> {
    let sim = SimProcess(
        Command::new(std::env::current_exe()?)
            .args(["sim", "--channels", &channels.to_string(), "--clock", &clock.to_string()])
            .args(["--bind", &format!("127.0.0.1:{port}"), "--page-bytes", &page_bytes.to_string()])
            .args(["--latency-ms", &format!("0-{}", latency_ms * 2)])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting the simulator process")?,
    );
    let deadline = Instant::now() + StdDuration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("the simulator did not start on port {port}");
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    Ok(sim)
}

/// Stores every channel with a target and up to `videos` recent videos (round-robin over the
/// channels, newest first), all due at `hour`. Returns the stored videos' ids in that order.
pub(crate) async fn populate(
    store: &dyn Store,
    world: &World,
    policy: &SchedulePolicy,
    videos: u32,
    hour: DateTime<Utc>,
) -> anyhow::Result<Vec<tubewatch_core::VideoId>> {
    let now = hour - Duration::hours(1);
    let mut per_channel: Vec<Vec<tubewatch_sim::world::Video>> =
        world.channels().iter().map(|c| world.videos_between(c, hour - Duration::days(59), now)).collect();
    for (channel, _) in world.channels().iter().zip(&per_channel) {
        let new = NewChannel { id: channel.id.clone(), title: channel.title.clone(), handle: None };
        store.upsert_channel(&new, now).await?;
        store.ensure_target(TargetKind::Channel, channel.id.as_str(), hour, now).await?;
    }
    let mut stored = Vec::new();
    let mut round = 0;
    while (stored.len() as u64) < u64::from(videos) && per_channel.iter().any(|v| v.len() > round) {
        for (channel, list) in world.channels().iter().zip(per_channel.iter_mut()) {
            let Some(video) = list.get(round) else { continue };
            if stored.len() as u64 >= u64::from(videos) || policy.slot_at(video.published, hour).is_none() {
                continue;
            }
            let new = NewVideo {
                id: video.id.clone(),
                channel_id: channel.id.clone(),
                published_at: video.published,
                is_short: video.is_short,
                title: format!("video {}", video.id),
            };
            store.insert_video(&new, now).await?;
            let due = policy.slot_at(video.published, hour).map_or(hour, Slot::start);
            store.ensure_target(TargetKind::Video, video.id.as_str(), due.max(hour), now).await?;
            stored.push(video.id.clone());
        }
        round += 1;
    }
    per_channel.clear();
    Ok(stored)
}
