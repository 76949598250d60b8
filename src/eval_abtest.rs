//! `tubewatch eval abtest`: runs simulated A/B tests with known true multipliers through the
//! real path — OAuth connection, test creation with uploaded images, the leased job's swaps
//! over HTTP against the simulator on a stepped virtual clock, the wrap-up's analysis — and
//! scores the verdicts against the truth, per true effect size, for our method (balanced
//! rotation, decay-adjusted analysis) and for the naive one common tools use (one variant a
//! day, more raw views wins), run on separate, equally drawn videos side by side.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::Context;
use chrono::Duration;
use clap::Args;
use serde::Serialize;
use tubewatch_core::abtest::{Verdict, detection_probability, naive_analysis};
use tubewatch_core::outliers::ViewsPoint;
use tubewatch_core::{Clock, Email, Slot, UserId, VideoId};
use tubewatch_sim::{SimConfig, Simulator, VariantKind, thumbnail_variant_id};
use tubewatch_store::{AbTestState, NewUser, Plan, Store, StoreOptions};
use tubewatch_worker::abtest::{AbTestServices, AbTests, CreateAbTest, RotationDesign};
use tubewatch_worker::abtest_job::analysis_periods;
use tubewatch_worker::token_crypto::TokenKeyring;
use tubewatch_worker::{Blobs, Mailer, Metrics, Pipeline, PipelineConfig};
use tubewatch_youtube::{OAuthConfig, RetryPolicy, SCOPE_YOUTUBE_FORCE_SSL, YoutubeClient, YoutubeConfig};

use crate::settings::Settings;

/// True lifts of the better variant's click-through rate (its views gain less: only their
/// impression-driven share moves); 0 is an A/A test (both variants truly equal).
const EFFECTS: [f64; 4] = [0.0, 0.05, 0.10, 0.20];

#[derive(Debug, Args)]
pub struct AbtestArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated tests in all, split evenly over the effect sizes and the two methods.
    #[arg(long, default_value_t = 80)]
    pub tests: usize,
    /// Length of each test in days.
    #[arg(long, default_value_t = 14)]
    pub days: i64,
    /// Rotation period of our method, in hours.
    #[arg(long, default_value_t = 12)]
    pub rotation_hours: i64,
    /// Each test is on a channel's latest long-form video published between this many days…
    #[arg(long, default_value_t = 2)]
    pub min_age_days: i64,
    /// …and this many days before the test is created.
    #[arg(long, default_value_t = 10)]
    pub max_age_days: i64,
    /// Hours of the video's views tracked before the test is created (as when the creator
    /// tracks their channel with tubewatch), from which the power estimate takes the current
    /// rate and its decay; 0 leaves the estimate to the lifetime average.
    #[arg(long, default_value_t = 48)]
    pub tracked_hours: i64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Method {
    Ours,
    Naive,
}

#[derive(Debug, Default, Clone, Serialize)]
struct Cell {
    tests: usize,
    correct: usize,
    false_winner: usize,
    performed_same: usize,
    inconclusive: usize,
    /// Tests whose analysis failed (counted as inconclusive too).
    errors: usize,
    correct_share: f64,
    false_winner_share: f64,
}

#[derive(Debug, Serialize)]
struct EffectRow {
    true_lift: f64,
    ours: Cell,
    naive: Cell,
    /// Raw views compared on our balanced schedule's data (the naive decision rule alone).
    raw_views_on_balanced: Cell,
    /// Median of the power estimates' minimum detectable lift shown at creation (our tests).
    median_min_detectable_lift: f64,
    /// The power estimates' own forecast of `ours.correct_share` for this lift (their mean
    /// probability of naming the right winner), to set beside what happened; none for A/A.
    mean_predicted_power: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    seed: u64,
    tests: usize,
    days: i64,
    rotation_hours: i64,
    median_views_per_hour_at_start: f64,
    median_extra_noise_cv: f64,
    /// The analyses' count-noise φ (1 = Poisson).
    median_count_dispersion: f64,
    /// Median views per hour the videos actually drew during the tests.
    median_views_per_hour_during: f64,
    swaps_failed: usize,
    wall_seconds: f64,
    by_effect: Vec<EffectRow>,
    /// The same, split by the views per hour the video drew during its test.
    by_traffic: Vec<TrafficRow>,
}

/// Views per hour during the test: quiet, typical, busy.
const TRAFFIC_BUCKETS: [(f64, f64, &str); 3] =
    [(0.0, 1.0, "under 1"), (1.0, 10.0, "1 to 10"), (10.0, f64::INFINITY, "10 or more")];

#[derive(Debug, Serialize)]
struct TrafficRow {
    views_per_hour: &'static str,
    true_lift: f64,
    ours: Cell,
    naive: Cell,
    mean_predicted_power: Option<f64>,
}

struct Planned {
    test_id: i64,
    effect: f64,
    best: usize,
    method: Method,
}

/// Scores one verdict: `correct` means the truly better variant won (or, in an A/A test, no
/// winner was named).
fn score(cell: &mut Cell, effect: f64, best: usize, verdict: Option<Verdict>) {
    cell.tests += 1;
    match verdict {
        Some(Verdict::Winner { variant }) if effect > 0.0 && variant == best => cell.correct += 1,
        Some(Verdict::Winner { .. }) => cell.false_winner += 1,
        Some(Verdict::PerformedSame) => {
            cell.performed_same += 1;
            if effect == 0.0 {
                cell.correct += 1;
            }
        }
        Some(Verdict::Inconclusive) | None => {
            cell.inconclusive += 1;
            if verdict.is_none() {
                cell.errors += 1;
            }
            if effect == 0.0 {
                cell.correct += 1;
            }
        }
    }
}

fn finish(cell: &mut Cell) {
    let n = cell.tests.max(1) as f64;
    cell.correct_share = cell.correct as f64 / n;
    cell.false_winner_share = cell.false_winner as f64 / n;
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A distinct small picture per `look` (scaled to 1280×720 on upload; only its identity matters).
fn picture(look: u64) -> anyhow::Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(320, 180, |x, y| {
        let band = ((u64::from(x / 40) + u64::from(y / 45) + look) % 5) as u8;
        image::Rgb([(look.wrapping_mul(37) as u8).wrapping_add(band * 45), (x / 2) as u8, (255 - (y / 2) as u8) ^ band])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

pub async fn run(args: AbtestArgs, _settings: Settings) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    anyhow::ensure!(args.tests >= EFFECTS.len() * 2, "--tests must be at least {}", EFFECTS.len() * 2);
    let (mut config, clock) = SimConfig::for_tests(args.seed, u32::try_from(args.tests * 3).unwrap_or(u32::MAX));
    // Creators leave their videos alone during the eval: any change is a swap of ours.
    config.world.creator_thumbnail_change_rate = 0.0;
    config.world.creator_title_change_rate = 0.0;
    config.quota_per_day = u64::MAX / 4;
    config.page_bytes = 16 * 1024;
    let sim = Simulator::start(config, "127.0.0.1:0".parse()?).await?;
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> =
        tubewatch_store::connect(&format!("sqlite://{}/tw.db", dir.path().display()), &StoreOptions::default()).await?;
    store.migrate().await?;
    let mut yt = YoutubeConfig::single_base(&sim.base_url)?;
    yt.retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    let youtube = YoutubeClient::new(yt)?;
    let oauth = youtube.oauth(&OAuthConfig {
        client_id: "tubewatch-eval".into(),
        client_secret: None,
        redirect_uri: "http://127.0.0.1:9/oauth/google/callback".into(),
        scopes: vec![SCOPE_YOUTUBE_FORCE_SSL.into()],
    })?;
    let key = format!("{:064x}", u128::from(args.seed) | (1 << 100));
    let keyring = TokenKeyring::from_hex("eval", &[("eval".into(), key)])?;
    let services = AbTestServices::new(oauth, keyring);
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let blobs = Blobs::local(&dir.path().join("blobs"))?;
    let pipeline = Pipeline {
        store: store.clone(),
        youtube: youtube.clone(),
        blobs: blobs.clone(),
        clock: clock_dyn.clone(),
        metrics: Arc::new(Metrics::default()),
        config: PipelineConfig {
            abtests: Some(services.clone()),
            mailer: Mailer::outbox("tubewatch <eval@localhost>", &dir.path().join("outbox"))?,
            ..PipelineConfig::default()
        },
    };
    let ab = AbTests { store: store.clone(), youtube, blobs, clock: clock_dyn, services };
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;

    // The most recent long-form video of each channel published 2–10 days ago: the typical
    // "test my latest upload" case, at the simulator's typical traffic.
    let now = clock.now();
    let mut videos: Vec<(tubewatch_core::ChannelId, VideoId)> = Vec::new();
    for channel in sim.sim.channels() {
        let recent = sim.sim.channel_videos(
            channel.id.as_str(),
            now - Duration::days(args.max_age_days),
            now - Duration::days(args.min_age_days),
        )?;
        if let Some(v) = recent.iter().filter(|v| !v.is_short).max_by_key(|v| v.published) {
            track_history(&store, &sim.sim, channel, v, now, args.tracked_hours).await?;
            videos.push((channel.id.clone(), v.id.clone()));
        }
        if videos.len() == args.tests {
            break;
        }
    }
    anyhow::ensure!(videos.len() == args.tests, "only {} suitable videos in the world", videos.len());

    let mut planned = Vec::with_capacity(args.tests);
    for (i, (channel, video)) in videos.iter().enumerate() {
        let effect = EFFECTS[i % EFFECTS.len()];
        let method = if (i / EFFECTS.len()).is_multiple_of(2) { Method::Ours } else { Method::Naive };
        let best = (i / (EFFECTS.len() * 2)) % 2;
        let user = store
            .create_user(
                &NewUser {
                    email: Email::parse(&format!("creator{i}@eval.test"))?,
                    password_hash: "-".into(),
                    plan: Plan::Premium,
                    is_admin: false,
                    email_verified: true,
                },
                now,
            )
            .await?
            .id;
        connect(&ab, &http, user, channel).await?;
        let mut request = CreateAbTest::new(video.clone());
        request.thumbnails = vec![picture(2 * i as u64)?, picture(2 * i as u64 + 1)?];
        request.duration = Duration::days(args.days);
        request.rotation = Duration::hours(args.rotation_hours);
        request.seed = Some(args.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        request.design = match method {
            Method::Ours => RotationDesign::Balanced,
            Method::Naive => RotationDesign::DailyAlternation,
        };
        let created = ab.create(user, request).await.with_context(|| format!("creating test {i} on {video}"))?;
        for (v, variant) in created.variants.iter().enumerate() {
            let key = variant.thumb_blob_key.as_deref().context("thumbnail variant")?;
            let bytes = ab.blobs.get(key).await?.context("variant blob")?;
            let multiplier = if v == best { 1.0 + effect } else { 1.0 };
            sim.sim.set_multiplier(
                video.as_str(),
                VariantKind::Thumbnail,
                &thumbnail_variant_id(&bytes),
                multiplier,
            )?;
        }
        planned.push(Planned { test_id: created.test.id, effect, best, method });
    }

    // Hour by hour, 30 s past the hour, until every test has ended.
    let hours = args.days * 24 + 3;
    for _ in 0..hours {
        let at = Slot::hour_of(clock.now()).start() + Duration::hours(1) + Duration::seconds(30);
        clock.set(at);
        pipeline.drain("eval", StdDuration::from_secs(60), 32).await?;
    }

    let mut cells: BTreeMap<(u64, Method), Cell> = BTreeMap::new();
    let mut raw_on_balanced: HashMap<u64, Cell> = HashMap::new();
    let mut mde: HashMap<u64, Vec<f64>> = HashMap::new();
    let mut predicted: HashMap<u64, Vec<f64>> = HashMap::new();
    let (mut rates, mut noise, mut swaps_failed) = (Vec::new(), Vec::new(), 0);
    let (mut dispersion, mut during) = (Vec::new(), Vec::new());
    let mut by_traffic: BTreeMap<(usize, u64), (Cell, Cell, Vec<f64>)> = BTreeMap::new();
    for p in &planned {
        let detail = store.abtest(p.test_id).await?.context("test")?;
        anyhow::ensure!(
            matches!(detail.test.state, AbTestState::Finished),
            "test {} did not finish: {:?} {:?}",
            p.test_id,
            detail.test.state,
            detail.test.state_reason
        );
        swaps_failed += detail.periods.iter().filter(|x| x.swapped_at.is_none()).count();
        let key = (p.effect.mul_add(1000.0, 0.5) as u64, p.method);
        let power: serde_json::Value = serde_json::from_str(&detail.test.power_json)?;
        let result: serde_json::Value = serde_json::from_str(detail.test.result_json.as_deref().unwrap_or("{}"))?;
        let points: Vec<ViewsPoint> = store
            .abtest_views(p.test_id)
            .await?
            .into_iter()
            .map(|v| ViewsPoint { at: v.measured_at, views: v.views })
            .collect();
        let periods = analysis_periods(&detail.periods, points.last().map_or(detail.test.ends_at, |x| x.at));
        let naive = naive_analysis(&points, detail.test.video_published_at, &periods, detail.variants.len())?;
        let naive_verdict = Some(naive.winner.map_or(Verdict::Inconclusive, |variant| Verdict::Winner { variant }));
        let rate_during = match (points.first(), points.last()) {
            (Some(first), Some(last)) if last.at > first.at => {
                (last.views - first.views) as f64 / ((last.at - first.at).num_seconds() as f64 / 3600.0)
            }
            _ => f64::NAN,
        };
        during.push(rate_during);
        let bucket = TRAFFIC_BUCKETS.iter().position(|&(lo, hi, _)| rate_during >= lo && rate_during < hi);
        match p.method {
            Method::Ours => {
                let verdict: Option<Verdict> = serde_json::from_value(result["analysis"]["verdict"].clone()).ok();
                score(cells.entry(key).or_default(), p.effect, p.best, verdict);
                score(raw_on_balanced.entry(key.0).or_default(), p.effect, p.best, naive_verdict);
                mde.entry(key.0)
                    .or_default()
                    .push(power["estimate"]["min_detectable_lift"].as_f64().unwrap_or(f64::NAN));
                noise.push(result["analysis"]["extra_noise_cv"].as_f64().unwrap_or(f64::NAN));
                dispersion.push(result["analysis"]["count_dispersion"].as_f64().unwrap_or(f64::NAN));
                let se = power["estimate"]["standard_error"].as_f64().unwrap_or(f64::NAN);
                predicted.entry(key.0).or_default().push(detection_probability(p.effect, se));
            }
            Method::Naive => score(cells.entry(key).or_default(), p.effect, p.best, naive_verdict),
        }
        rates.push(power["traffic"]["views_per_hour"].as_f64().unwrap_or(f64::NAN));
        if let Some(b) = bucket {
            let entry = by_traffic.entry((b, key.0)).or_default();
            match p.method {
                Method::Ours => {
                    let verdict: Option<Verdict> = serde_json::from_value(result["analysis"]["verdict"].clone()).ok();
                    score(&mut entry.0, p.effect, p.best, verdict);
                    let se = power["estimate"]["standard_error"].as_f64().unwrap_or(f64::NAN);
                    entry.2.push(detection_probability(p.effect, se));
                }
                Method::Naive => score(&mut entry.1, p.effect, p.best, naive_verdict),
            }
        }
    }
    let by_traffic: Vec<TrafficRow> = by_traffic
        .into_iter()
        .map(|((b, k), (mut ours, mut naive, forecasts))| {
            finish(&mut ours);
            finish(&mut naive);
            let lift = k as f64 / 1000.0;
            TrafficRow {
                views_per_hour: TRAFFIC_BUCKETS[b].2,
                true_lift: lift,
                ours,
                naive,
                mean_predicted_power: (lift > 0.0 && !forecasts.is_empty())
                    .then(|| forecasts.iter().filter(|x| x.is_finite()).sum::<f64>() / forecasts.len() as f64),
            }
        })
        .collect();
    let by_effect = EFFECTS
        .iter()
        .map(|&e| {
            let k = e.mul_add(1000.0, 0.5) as u64;
            let mut ours = cells.get(&(k, Method::Ours)).cloned().unwrap_or_default();
            let mut naive = cells.get(&(k, Method::Naive)).cloned().unwrap_or_default();
            let mut raw = raw_on_balanced.get(&k).cloned().unwrap_or_default();
            for c in [&mut ours, &mut naive, &mut raw] {
                finish(c);
            }
            EffectRow {
                true_lift: e,
                ours,
                naive,
                raw_views_on_balanced: raw,
                median_min_detectable_lift: median(mde.get(&k).cloned().unwrap_or_default()),
                mean_predicted_power: predicted
                    .get(&k)
                    .filter(|_| e > 0.0)
                    .map(|v| v.iter().filter(|x| x.is_finite()).sum::<f64>() / v.len().max(1) as f64),
            }
        })
        .collect();
    let report = Report {
        seed: args.seed,
        tests: args.tests,
        days: args.days,
        rotation_hours: args.rotation_hours,
        median_views_per_hour_at_start: median(rates),
        median_extra_noise_cv: median(noise),
        median_count_dispersion: median(dispersion),
        median_views_per_hour_during: median(during),
        swaps_failed,
        wall_seconds: started.elapsed().as_secs_f64(),
        by_effect,
        by_traffic,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "A/B eval: seed {}, {} tests of {} days, median {:.1} views/h at start (as estimated), {:.1} during; noise cv {:.2}, count φ {:.2}; {} failed swaps; {:.0} s",
            report.seed,
            report.tests,
            report.days,
            report.median_views_per_hour_at_start,
            report.median_views_per_hour_during,
            report.median_extra_noise_cv,
            report.median_count_dispersion,
            report.swaps_failed,
            report.wall_seconds
        );
        println!(
            "true lift | ours: correct / false winner (n) | naive daily + raw views: correct / false winner (n) | raw views on our schedule | median MDE | predicted power"
        );
        for r in &report.by_effect {
            let forecast = r.mean_predicted_power.map_or_else(|| "-".to_owned(), |p| format!("{:.1}%", p * 100.0));
            println!(
                "{:>8.0}% | {:>5.1}% / {:>5.1}% ({:>3}) | {:>5.1}% / {:>5.1}% ({:>3}) | {:>5.1}% / {:>5.1}% | {:>5.1}% | {forecast}",
                r.true_lift * 100.0,
                r.ours.correct_share * 100.0,
                r.ours.false_winner_share * 100.0,
                r.ours.tests,
                r.naive.correct_share * 100.0,
                r.naive.false_winner_share * 100.0,
                r.naive.tests,
                r.raw_views_on_balanced.correct_share * 100.0,
                r.raw_views_on_balanced.false_winner_share * 100.0,
                r.median_min_detectable_lift * 100.0
            );
        }
        println!(
            "views/h during | true lift | ours: correct / false winner (n) | naive: correct / false winner (n) | predicted power"
        );
        for r in &report.by_traffic {
            let forecast = r.mean_predicted_power.map_or_else(|| "-".to_owned(), |p| format!("{:.1}%", p * 100.0));
            println!(
                "{:>14} | {:>8.0}% | {:>5.1}% / {:>5.1}% ({:>3}) | {:>5.1}% / {:>5.1}% ({:>3}) | {forecast}",
                r.views_per_hour,
                r.true_lift * 100.0,
                r.ours.correct_share * 100.0,
                r.ours.false_winner_share * 100.0,
                r.ours.tests,
                r.naive.correct_share * 100.0,
                r.naive.false_winner_share * 100.0,
                r.naive.tests
            );
        }
    }
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Records the video's hourly views over the `hours` before `now` from the simulator's truth,
/// as tubewatch's tracker would have when the creator tracks their channel.
async fn track_history(
    store: &Arc<dyn Store>,
    sim: &Simulator,
    channel: &tubewatch_sim::Channel,
    video: &tubewatch_sim::VideoTruth,
    now: chrono::DateTime<chrono::Utc>,
    hours: i64,
) -> anyhow::Result<()> {
    if hours <= 0 {
        return Ok(());
    }
    store
        .upsert_channel(
            &tubewatch_store::NewChannel {
                id: channel.id.clone(),
                title: channel.title.clone(),
                handle: Some(channel.handle.to_string()),
            },
            now,
        )
        .await?;
    store
        .insert_video(
            &tubewatch_store::NewVideo {
                id: video.id.clone(),
                channel_id: channel.id.clone(),
                published_at: video.published,
                is_short: video.is_short,
                title: video.title.clone(),
            },
            now,
        )
        .await?;
    for h in (0..=hours).rev() {
        let at = now - Duration::hours(h) + Duration::seconds(30);
        if at <= video.published || at > now {
            continue;
        }
        let views = i64::try_from(sim.views_at(video.id.as_str(), at)?).unwrap_or(i64::MAX);
        let record = tubewatch_store::ViewsRecord {
            video_id: video.id.clone(),
            slot: Slot::hour_of(at),
            measured_at: at,
            views,
        };
        store.record_views(&record).await?;
    }
    Ok(())
}

/// The OAuth dance a browser makes: the simulated user consents at once.
async fn connect(
    ab: &AbTests,
    http: &reqwest::Client,
    user: UserId,
    channel: &tubewatch_core::ChannelId,
) -> anyhow::Result<()> {
    let request = ab.start_connect();
    let consent = http.get(&request.url).send().await?;
    let location = consent.headers().get("location").context("no redirect from consent")?.to_str()?.to_owned();
    let location = url::Url::parse(&location)?;
    let pairs: HashMap<String, String> = location.query_pairs().into_owned().collect();
    anyhow::ensure!(pairs.get("state") == Some(&request.state), "state mismatch");
    let code = pairs.get("code").context("no code")?;
    ab.finish_connect(user, channel, code, &request.pkce_verifier).await?;
    Ok(())
}
