//! `tubewatch eval abtest`: runs simulated A/B tests with known true multipliers through the
//! real path — OAuth connection, test creation with uploaded images, the leased job's swaps
//! over HTTP against the simulator on a stepped virtual clock, the wrap-up's analysis — and
//! scores the verdicts against the truth, per true effect size and per traffic band, for our
//! method (balanced rotation, decay-adjusted analysis) and for the naive one common tools use
//! (one variant a day, more raw views wins), run on separate, equally drawn videos side by side,
//! and for an oracle on our tests' data: an analysis that knows every hour's expected views (the
//! simulator's noise-free trajectory and rhythm) but not the variants' effect, and so faces only
//! the noise. Its right share is the ceiling for that band.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::Context;
use chrono::Duration;
use clap::Args;
use serde::Serialize;
use tubewatch_core::abtest::{Verdict, detection_probability, naive_analysis, oracle_verdict};
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
    /// Simulated tests in all, split evenly over the traffic bands, the effect sizes and the two
    /// methods (a multiple of 32).
    #[arg(long, default_value_t = 128)]
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
    /// Tests that ended without a verdict (their analysis failed; counted as inconclusive too).
    no_verdict: usize,
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
    /// An analysis knowing each hour's expected views but the variants' effect, on our tests'
    /// data: the ceiling for `ours`.
    oracle: Cell,
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
    /// The same per traffic band: the views per hour the video drew over the day before its test.
    by_band: Vec<BandRow>,
}

/// Traffic bands, in views per hour over the day before the test; each gets an equal share of
/// the tests (videos drawing under one view an hour are left out: no method can judge them).
const BANDS: [(f64, f64, &str); 4] =
    [(1.0, 10.0, "1-10"), (10.0, 100.0, "10-100"), (100.0, 1_000.0, "100-1,000"), (1_000.0, f64::INFINITY, "1,000+")];

#[derive(Debug, Serialize)]
struct BandRow {
    views_per_hour: &'static str,
    true_lift: f64,
    ours: Cell,
    naive: Cell,
    oracle: Cell,
    /// Ours' correct share ÷ the oracle's (the measure; none when the oracle is never right).
    ours_over_oracle: Option<f64>,
    mean_predicted_power: Option<f64>,
}

struct Planned {
    test_id: i64,
    video: VideoId,
    band: usize,
    effect: f64,
    best: usize,
    method: Method,
}

/// Where a row's cells and forecasts are gathered.
#[derive(Debug, Default)]
struct Tally {
    ours: Cell,
    naive: Cell,
    oracle: Cell,
    raw_on_balanced: Cell,
    min_detectable: Vec<f64>,
    forecasts: Vec<f64>,
}

impl Tally {
    fn mean_forecast(&self, lift: f64) -> Option<f64> {
        let f: Vec<f64> = self.forecasts.iter().copied().filter(|x| x.is_finite()).collect();
        (lift > 0.0 && !f.is_empty()).then(|| f.iter().sum::<f64>() / f.len() as f64)
    }
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
                cell.no_verdict += 1;
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
    let per_round = BANDS.len() * EFFECTS.len() * 2;
    anyhow::ensure!(
        args.tests > 0 && args.tests.is_multiple_of(per_round),
        "--tests must be a multiple of {per_round}"
    );
    // Busy videos are rare in a calibrated world: a big one finds enough for every band.
    let (mut config, clock) = SimConfig::for_tests(args.seed, u32::try_from(args.tests * 80).unwrap_or(u32::MAX));
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

    let now = clock.now();
    let videos = pick_videos(&sim.sim, &store, &args, now).await?;
    let mut planned = Vec::with_capacity(args.tests);
    let mut in_band = [0usize; BANDS.len()];
    for (i, (channel, video, band)) in videos.iter().enumerate() {
        // Within a band: every effect, then both methods, then which variant is truly better.
        let j = in_band[*band];
        in_band[*band] += 1;
        let effect = EFFECTS[j % EFFECTS.len()];
        let method = if (j / EFFECTS.len()).is_multiple_of(2) { Method::Ours } else { Method::Naive };
        let best = (j / (EFFECTS.len() * 2)) % 2;
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
        planned.push(Planned { test_id: created.test.id, video: video.clone(), band: *band, effect, best, method });
    }

    // Hour by hour, 30 s past the hour, until every test has ended.
    let hours = args.days * 24 + 3;
    for _ in 0..hours {
        let at = Slot::hour_of(clock.now()).start() + Duration::hours(1) + Duration::seconds(30);
        clock.set(at);
        pipeline.drain("eval", StdDuration::from_secs(60), 32).await?;
    }

    let mut report = score_tests(&store, &sim.sim, &planned, &args).await?;
    report.wall_seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// The most recent long-form video of channels published `--min-age-days` to `--max-age-days`
/// ago (the typical "test my latest upload" case), an equal number per traffic band, each with
/// its history tracked before the test.
async fn pick_videos(
    sim: &Simulator,
    store: &Arc<dyn Store>,
    args: &AbtestArgs,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<(tubewatch_core::ChannelId, VideoId, usize)>> {
    let quota = args.tests / BANDS.len();
    let mut per_band = [0usize; BANDS.len()];
    let mut videos = Vec::with_capacity(args.tests);
    for channel in sim.channels() {
        let recent = sim.channel_videos(
            channel.id.as_str(),
            now - Duration::days(args.max_age_days),
            now - Duration::days(args.min_age_days),
        )?;
        let Some(v) = recent.iter().filter(|v| !v.is_short).max_by_key(|v| v.published) else { continue };
        let rate = (sim.views_at(v.id.as_str(), now)? as f64
            - sim.views_at(v.id.as_str(), now - Duration::hours(24))? as f64)
            / 24.0;
        let Some(band) = BANDS.iter().position(|&(lo, hi, _)| rate >= lo && rate < hi) else { continue };
        if per_band[band] == quota {
            continue;
        }
        per_band[band] += 1;
        track_history(store, sim, channel, v, now, args.tracked_hours).await?;
        videos.push((channel.id.clone(), v.id.clone(), band));
        if videos.len() == args.tests {
            break;
        }
    }
    anyhow::ensure!(
        videos.len() == args.tests,
        "too few suitable videos in the world: per band {per_band:?} of {quota}"
    );
    Ok(videos)
}

/// Scores every finished test: ours, the naive method, raw views on our schedule and the oracle
/// on our data, per true lift and per traffic band.
async fn score_tests(
    store: &Arc<dyn Store>,
    sim: &Simulator,
    planned: &[Planned],
    args: &AbtestArgs,
) -> anyhow::Result<Report> {
    let mut by_effect: BTreeMap<u64, Tally> = BTreeMap::new();
    let mut by_band: BTreeMap<(usize, u64), Tally> = BTreeMap::new();
    let (mut rates, mut noise, mut swaps_failed) = (Vec::new(), Vec::new(), 0);
    let (mut dispersion, mut during) = (Vec::new(), Vec::new());
    for p in planned {
        let detail = store.abtest(p.test_id).await?.context("test")?;
        anyhow::ensure!(
            matches!(detail.test.state, AbTestState::Finished),
            "test {} did not finish: {:?} {:?}",
            p.test_id,
            detail.test.state,
            detail.test.state_reason
        );
        swaps_failed += detail.periods.iter().filter(|x| x.swapped_at.is_none()).count();
        let lift_key = p.effect.mul_add(1000.0, 0.5) as u64;
        let power: serde_json::Value = serde_json::from_str(&detail.test.power_json)?;
        let result: serde_json::Value = serde_json::from_str(detail.test.result_json.as_deref().unwrap_or("{}"))?;
        let points: Vec<ViewsPoint> = store
            .abtest_views(p.test_id)
            .await?
            .into_iter()
            .map(|v| ViewsPoint { at: v.measured_at, views: v.views })
            .collect();
        let published = detail.test.video_published_at;
        let periods = analysis_periods(&detail.periods, points.last().map_or(detail.test.ends_at, |x| x.at));
        let naive = naive_analysis(&points, published, &periods, detail.variants.len())?;
        let naive_verdict = Some(naive.winner.map_or(Verdict::Inconclusive, |variant| Verdict::Winner { variant }));
        if let (Some(first), Some(last)) = (points.first(), points.last())
            && last.at > first.at
        {
            during.push((last.views - first.views) as f64 / ((last.at - first.at).num_seconds() as f64 / 3600.0));
        }
        rates.push(power["traffic"]["views_per_hour"].as_f64().unwrap_or(f64::NAN));
        for tally in [by_effect.entry(lift_key).or_default(), by_band.entry((p.band, lift_key)).or_default()] {
            match p.method {
                Method::Ours => {
                    let verdict: Option<Verdict> = serde_json::from_value(result["analysis"]["verdict"].clone()).ok();
                    score(&mut tally.ours, p.effect, p.best, verdict);
                    score(&mut tally.raw_on_balanced, p.effect, p.best, naive_verdict);
                    let expected = |a, b| sim.noise_free_views(p.video.as_str(), a, b).map_or(0.0, |v| v.iter().sum());
                    let oracle = oracle_verdict(&points, published, &periods, detail.variants.len(), 0.05, expected)?;
                    score(&mut tally.oracle, p.effect, p.best, Some(oracle));
                    tally.min_detectable.push(power["estimate"]["min_detectable_lift"].as_f64().unwrap_or(f64::NAN));
                    let se = power["estimate"]["standard_error"].as_f64().unwrap_or(f64::NAN);
                    tally.forecasts.push(detection_probability(p.effect, se));
                }
                Method::Naive => score(&mut tally.naive, p.effect, p.best, naive_verdict),
            }
        }
        if p.method == Method::Ours {
            noise.push(result["analysis"]["extra_noise_cv"].as_f64().unwrap_or(f64::NAN));
            dispersion.push(result["analysis"]["count_dispersion"].as_f64().unwrap_or(f64::NAN));
        }
    }
    let by_band = by_band
        .into_iter()
        .map(|((band, k), mut t)| {
            for c in [&mut t.ours, &mut t.naive, &mut t.oracle] {
                finish(c);
            }
            let lift = k as f64 / 1000.0;
            BandRow {
                views_per_hour: BANDS[band].2,
                true_lift: lift,
                ours_over_oracle: (t.oracle.correct > 0).then(|| t.ours.correct_share / t.oracle.correct_share),
                mean_predicted_power: t.mean_forecast(lift),
                ours: t.ours,
                naive: t.naive,
                oracle: t.oracle,
            }
        })
        .collect();
    let by_effect = by_effect
        .into_iter()
        .map(|(k, mut t)| {
            for c in [&mut t.ours, &mut t.naive, &mut t.raw_on_balanced, &mut t.oracle] {
                finish(c);
            }
            let lift = k as f64 / 1000.0;
            EffectRow {
                true_lift: lift,
                median_min_detectable_lift: median(t.min_detectable.clone()),
                mean_predicted_power: t.mean_forecast(lift),
                ours: t.ours,
                naive: t.naive,
                raw_views_on_balanced: t.raw_on_balanced,
                oracle: t.oracle,
            }
        })
        .collect();
    Ok(Report {
        seed: args.seed,
        tests: args.tests,
        days: args.days,
        rotation_hours: args.rotation_hours,
        median_views_per_hour_at_start: median(rates),
        median_extra_noise_cv: median(noise),
        median_count_dispersion: median(dispersion),
        median_views_per_hour_during: median(during),
        swaps_failed,
        wall_seconds: 0.0,
        by_effect,
        by_band,
    })
}

fn print_report(report: &Report) {
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
    let forecast = |p: Option<f64>| p.map_or_else(|| "-".to_owned(), |p| format!("{:.0}%", p * 100.0));
    let cell = |c: &Cell| {
        format!("{:>4.0}% / {:>3.0}% ({:>2})", c.correct_share * 100.0, c.false_winner_share * 100.0, c.tests)
    };
    println!("Right / wrong winner (n); for a 0 % lift, right means no winner named. The oracle knows every");
    println!("hour's expected views but the variants' effect and faces only the noise, on our tests' data.");
    println!(
        "true lift | ours             | oracle           | naive daily      | raw views, our schedule | no verdict | median MDE | predicted power"
    );
    for r in &report.by_effect {
        println!(
            "{:>8.0}% | {} | {} | {} | {}        | {:>10} | {:>9.0}% | {}",
            r.true_lift * 100.0,
            cell(&r.ours),
            cell(&r.oracle),
            cell(&r.naive),
            cell(&r.raw_views_on_balanced),
            r.ours.no_verdict,
            r.median_min_detectable_lift * 100.0,
            forecast(r.mean_predicted_power)
        );
    }
    println!(
        "views/h   | true lift | ours             | oracle           | ours ÷ oracle | naive daily      | predicted power"
    );
    for r in &report.by_band {
        println!(
            "{:>9} | {:>8.0}% | {} | {} | {:>13} | {} | {}",
            r.views_per_hour,
            r.true_lift * 100.0,
            cell(&r.ours),
            cell(&r.oracle),
            r.ours_over_oracle.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}")),
            cell(&r.naive),
            forecast(r.mean_predicted_power)
        );
    }
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
