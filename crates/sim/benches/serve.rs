//! Requests per second the simulator serves at the design's scale (10,000 channels), over real
//! HTTP on loopback: watch pages (~1 MB each), channel feeds, InnerTube player responses and
//! thumbnails. Prints figures; asserts nothing about speed.
//!
//! `cargo bench -p tubewatch-sim --bench serve` (env: SIM_BENCH_SECS, SIM_BENCH_CONCURRENCY).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tubewatch_sim::{SimConfig, Simulator};

async fn hammer<F>(name: &str, secs: u64, concurrency: usize, make_request: F)
where
    F: Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
    let make_request = Arc::new(make_request);
    let (count, bytes, errors) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency as u64 {
        let (client, make_request) = (client.clone(), make_request.clone());
        let (count, bytes, errors) = (count.clone(), bytes.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = worker * 1_000_003;
            while Instant::now() < deadline {
                i += 1;
                match make_request(&client, i).send().await {
                    Ok(r) if r.status().is_success() => {
                        let body = r.bytes().await.map(|b| b.len()).unwrap_or(0);
                        bytes.fetch_add(body as u64, Ordering::Relaxed);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = count.load(Ordering::Relaxed);
    println!(
        "{name:<28} {:>9.0} req/s  {:>8.1} MB/s  ({n} requests, {} errors, {concurrency} connections, {elapsed:.1} s)",
        n as f64 / elapsed,
        bytes.load(Ordering::Relaxed) as f64 / elapsed / 1e6,
        errors.load(Ordering::Relaxed),
    );
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("SIM_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let concurrency: usize = std::env::var("SIM_BENCH_CONCURRENCY").ok().and_then(|s| s.parse().ok()).unwrap_or(16);
    let (mut config, _clock) = SimConfig::for_tests(1, 10_000);
    config.page_bytes = 1_000_000;
    let built = Instant::now();
    let running = Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    println!("world of 10,000 channels built and listening in {:.2} s", built.elapsed().as_secs_f64());

    let sim = running.sim.clone();
    let now = sim.now();
    let counted = Instant::now();
    let mut live = Vec::new();
    for c in sim.channels() {
        live.extend(
            sim.world().videos_between(c, now - chrono::Duration::days(60), now).into_iter().map(|v| v.id.to_string()),
        );
    }
    println!(
        "{} videos published in the last 60 days (the tracked set), enumerated in {:.2} s",
        live.len(),
        counted.elapsed().as_secs_f64()
    );
    let channels: Arc<Vec<String>> = Arc::new(sim.channels().iter().map(|c| c.id.to_string()).collect());
    let videos = Arc::new(live);
    let base = running.base_url.clone();

    let (b, v) = (base.clone(), videos.clone());
    hammer("watch pages (1 MB)", secs, concurrency, move |c, i| {
        c.get(format!("{b}/watch?v={}", v[(i as usize * 7919) % v.len()]))
    })
    .await;
    let (b, ch) = (base.clone(), channels.clone());
    hammer("feeds (15 entries)", secs, concurrency, move |c, i| {
        c.get(format!("{b}/feeds/videos.xml?channel_id={}", ch[(i as usize * 7919) % ch.len()]))
    })
    .await;
    let (b, v) = (base.clone(), videos.clone());
    hammer("player (InnerTube JSON)", secs, concurrency, move |c, i| {
        c.post(format!("{b}/youtubei/v1/player"))
            .json(&serde_json::json!({"videoId": v[(i as usize * 7919) % v.len()]}))
    })
    .await;
    let (b, v) = (base.clone(), videos.clone());
    hammer("videos.list (50 ids)", secs, concurrency, move |c, i| {
        let start = (i as usize * 50) % v.len().saturating_sub(50).max(1);
        c.get(format!("{b}/youtube/v3/videos?part=snippet,statistics&key=bench&id={}", v[start..start + 50].join(",")))
    })
    .await;
    let (b, v) = (base.clone(), videos.clone());
    // 200 distinct videos, so after the first round every thumbnail comes from the cache.
    hammer("thumbnails default.jpg", secs, concurrency, move |c, i| {
        c.get(format!("{b}/vi/{}/default.jpg", v[(i as usize) % 200.min(v.len())]))
    })
    .await;
    running.shutdown().await;
}
