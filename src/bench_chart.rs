//! `tubewatch bench chart-api`: the chart's API (`GET /api/v1/videos/{id}/series`, a video's
//! whole views series with its changes) under a steady request rate on loopback. The web edge
//! runs as in `tubewatch serve` (every layer, bearer-token auth, SQLite); requests are sent on a
//! fixed schedule (open loop), and each latency is counted from when the request was due, so a
//! stall shows up in the percentiles instead of slowing the load down.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, bail};
use chrono::{Duration, Utc};
use clap::Args;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tubewatch_core::{ChannelId, Email, Resolution, SchedulePolicy, VideoId};
use tubewatch_store::{NewApiToken, NewChannel, NewUser, NewVideo, Plan, TokenScope, ViewsRecord};

use crate::app::App;
use crate::settings::Settings;

#[derive(Debug, Args)]
pub struct ChartArgs {
    /// Requests per second, sent on a fixed schedule.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u32,
    /// How long the load runs.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Videos the requests go round (each with a full 60-day series: 168 hourly + 53 daily points).
    #[arg(long, default_value_t = 200)]
    pub videos: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct ChartReport {
    rate: u32,
    seconds: u64,
    videos: u32,
    points_per_series: usize,
    requests: u64,
    failed: u64,
    achieved_per_second: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    cpu_seconds: f64,
}

pub async fn run(args: ChartArgs, mut settings: Settings) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    if settings.database_url == Settings::default().database_url {
        settings.database_url = format!("sqlite://{}", dir.path().join("chart.db").display());
    }
    settings.blob_dir = dir.path().join("blobs");
    let app = App::open(&settings).await?;
    let (token, ids, points) = populate(&app, args.videos).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let server = tokio::spawn(crate::app::serve_web(app.web_state()?, listener, async move { stop.cancelled().await }));

    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let auth = format!("Bearer {token}");
    // One request first, so that a wrong set-up fails loudly instead of as 100 % errors.
    let first =
        client.get(format!("{base}/api/v1/videos/{}/series", ids[0])).header("authorization", &auth).send().await?;
    if !first.status().is_success() {
        bail!("the series request answered {}: {}", first.status(), first.text().await.unwrap_or_default());
    }

    let total = u64::from(args.rate) * args.seconds;
    let interval = StdDuration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total as usize)));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cpu = crate::bench_support::cpu_seconds();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let url = format!("{base}/api/v1/videos/{}/series", ids[i as usize % ids.len()]);
        let (client, auth, latencies, failed) = (client.clone(), auth.clone(), latencies.clone(), failed.clone());
        tasks.spawn(async move {
            let ok = match client.get(url).header("authorization", auth).send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            };
            let took = due.elapsed();
            if ok {
                latencies.lock().unwrap_or_else(|e| e.into_inner()).push(took);
            } else {
                failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = crate::bench_support::cpu_seconds() - cpu;
    shutdown.cancel();
    server.await??;

    let mut lat = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    let report = ChartReport {
        rate: args.rate,
        seconds: args.seconds,
        videos: args.videos,
        points_per_series: points,
        requests: total,
        failed: failed.load(std::sync::atomic::Ordering::Relaxed),
        achieved_per_second: total as f64 / elapsed,
        p50_ms: pct(0.50),
        p90_ms: pct(0.90),
        p99_ms: pct(0.99),
        max_ms: lat.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        cpu_seconds: cpu,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "chart API: {} requests at {}/s ({:.0}/s achieved) over {} videos of {} points: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} failed, {:.1} CPU s (server and load generator)",
            report.requests,
            report.rate,
            report.achieved_per_second,
            report.videos,
            report.points_per_series,
            report.p50_ms,
            report.p90_ms,
            report.p99_ms,
            report.max_ms,
            report.failed,
            report.cpu_seconds
        );
    }
    Ok(())
}

/// A user with a read token, tracking `videos` videos that each have a full 60-day series.
/// Returns the token, the video ids and the points per series.
async fn populate(app: &App, videos: u32) -> anyhow::Result<(String, Vec<VideoId>, usize)> {
    let store = &app.store;
    let now = Utc::now();
    let user = store
        .create_user(
            &NewUser {
                email: Email::parse("bench@example.org").context("email")?,
                // Never used to log in: the bench authenticates with the API token.
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$YmVuY2g$YmVuY2g".into(),
                plan: Plan::Premium,
                is_admin: true,
                email_verified: true,
            },
            now,
        )
        .await?;
    let token = tubewatch_web::auth::new_api_token();
    let hash = tubewatch_web::auth::hash_token(&token);
    let prefix: String = token.chars().take(9).collect();
    let new_token = NewApiToken {
        name: "bench",
        token_hash: &hash,
        prefix: &prefix,
        scope: TokenScope::Read,
        expires_at: now + Duration::days(1),
    };
    store.create_api_token(user.id, &new_token, now).await?;
    let channel = ChannelId::parse("UCbenchbenchbenchbench00").context("channel id")?;
    store.upsert_channel(&NewChannel { id: channel.clone(), title: "Bench".into(), handle: None }, now).await?;
    let policy = SchedulePolicy::new(Resolution::HOURLY, 7, 60)?;
    let published = now - Duration::days(61);
    let mut ids = Vec::new();
    let mut points = 0;
    for i in 0..videos {
        let id = VideoId::parse(&format!("bench{i:06}")).context("video id")?;
        let video = NewVideo {
            id: id.clone(),
            channel_id: channel.clone(),
            published_at: published,
            is_short: false,
            title: format!("Bench video {i}"),
        };
        store.insert_video(&video, now).await?;
        store.add_user_video(user.id, &id, now).await?;
        let mut slot = policy.slot_at(published, published);
        let mut n = 0;
        while let Some(s) = slot {
            let record = ViewsRecord {
                video_id: id.clone(),
                slot: s,
                measured_at: s.start() + Duration::seconds(20),
                views: 100 * n,
            };
            store.record_views(&record).await?;
            n += 1;
            slot = policy.next_slot(published, s);
        }
        points = usize::try_from(n).unwrap_or(0);
        ids.push(id);
    }
    Ok((token, ids, points))
}
