//! `tubewatch eval abtest`: runs simulated A/B tests with known true multipliers through the
//! real path — OAuth connection, test creation with uploaded images, the leased job's swaps
//! over HTTP against the simulator on a stepped virtual clock, the wrap-up's analysis — and
//! scores the verdicts against the truth, per true effect size and per traffic band, for our
//! method (balanced rotation, decay-adjusted analysis) and for the naive one common tools use
//! (one variant a day, more raw views wins), run on separate, equally drawn videos side by side,
//! and for an oracle on our tests' data: an analysis that knows every hour's expected views (the
//! simulator's noise-free trajectory and rhythm) and the video's click-through rate, but not the
//! variants' effect, and so faces only the noise. Its right share is the ceiling for that band.
//!
//! Our tests run on both schedules (balanced hourly rotation; one variant per Pacific day), on a
//! grant that includes the owner's reach report, so each is scored twice: on the hourly views
//! alone and on views + reach (what the product decides with the grant). Each is also replayed
//! hour by hour as a sequential test (always-valid looks every hour from the first look on), which
//! gives its early verdict and length beside the fixed-horizon one, on the same data.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::Context;
use chrono::Duration;
use clap::Args;
use serde::Serialize;
use tubewatch_core::abtest::{
    AbPeriod, AnalysisConfig, Signal, Verdict, analyse_with_fallback, ctr_standard_error, detection_probability,
    naive_analysis, oracle_verdict, sequential_verdict,
};
use tubewatch_core::outliers::ViewsPoint;
use tubewatch_core::reach::ReachObs;
use tubewatch_core::{Clock, Email, Slot, UserId, VideoId};
use tubewatch_sim::{SimConfig, Simulator, VariantKind, thumbnail_variant_id};
use tubewatch_store::{AbDesign, AbTestId, AbTestState, NewUser, Plan, Store, StoreOptions};
use tubewatch_worker::abtest::{
    AbTestServices, AbTests, CreateAbTest, StoredPower, reach_plan_from_views, reach_precision_over,
};
use tubewatch_worker::abtest_job::{analysis_periods, first_look};
use tubewatch_worker::abtest_result::AbResult;
use tubewatch_worker::token_crypto::TokenKeyring;
use tubewatch_worker::{Blobs, Mailer, Metrics, Pipeline, PipelineConfig};
use tubewatch_youtube::{
    OAuthConfig, RetryPolicy, SCOPE_YOUTUBE_FORCE_SSL, SCOPE_YT_ANALYTICS_READONLY, YoutubeClient, YoutubeConfig,
};

use crate::progress::Progress;
use crate::settings::Settings;

/// True lifts of the better variant's click-through rate (its views gain less: only their
/// impression-driven share moves); 0 is an A/A test (both variants truly equal).
const EFFECTS: [f64; 4] = [0.0, 0.05, 0.10, 0.20];

#[derive(Debug, Args)]
pub struct AbtestArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated tests in all, split evenly over the traffic bands, the effect sizes and the three
    /// methods (a multiple of 48).
    #[arg(long, default_value_t = 192)]
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

/// How a test's variants take turns: our two schedules and the naive one common tools use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Method {
    Balanced,
    PacificDays,
    Naive,
}

const METHODS: [Method; 3] = [Method::Balanced, Method::PacificDays, Method::Naive];

impl Method {
    fn design(self) -> AbDesign {
        match self {
            Self::Balanced => AbDesign::Balanced,
            Self::PacificDays => AbDesign::PacificDays,
            Self::Naive => AbDesign::DailyAlternation,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Balanced => "balanced",
            Self::PacificDays => "pacific days",
            Self::Naive => "naive",
        }
    }
}

/// What our verdict is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum SignalUsed {
    Views,
    ViewsAndReach,
}

impl SignalUsed {
    fn label(self) -> &'static str {
        match self {
            Self::Views => "views",
            Self::ViewsAndReach => "views + reach",
        }
    }
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

/// One row of the report: ours on one schedule and signal, beside the oracle on the same tests'
/// data and the naive method on its own tests, for one group of tests.
#[derive(Debug, Serialize)]
struct Row {
    /// `all`, `views_per_hour` (the video's rate over the day before the test) or
    /// `impressions_per_day` (the median day of reach received during the test).
    grouping: &'static str,
    band: &'static str,
    design: Method,
    signal: SignalUsed,
    true_lift: f64,
    ours: Cell,
    /// Knows every hour's expected views and the CTR level, but not the variants' effect: the
    /// ceiling for `ours`.
    oracle: Cell,
    /// Ours' right share ÷ the oracle's (none when the oracle is never right).
    ours_over_oracle: Option<f64>,
    /// The same tests as sequential tests: looked at every hour, stopped once decided.
    sequential: Cell,
    /// Mean length of the sequential tests in days (the full length when never decided).
    sequential_mean_days: f64,
    /// The forecast shown at creation of `ours.correct_share` (mean chance of naming the right
    /// winner); none for A/A.
    predicted_power: Option<f64>,
    /// The naive method (one variant a day, most raw views wins) on its own tests of the group.
    naive: Cell,
}

#[derive(Debug, Serialize)]
struct Report {
    seed: u64,
    tests: usize,
    days: i64,
    rotation_hours: i64,
    median_views_per_hour_at_start: f64,
    median_views_per_hour_during: f64,
    median_extra_noise_cv: f64,
    /// Median impressions per day of the reach received (ours' tests).
    median_impressions_per_day: f64,
    /// Tests whose reach gave too few days to use.
    tests_without_usable_reach: usize,
    swaps_failed: usize,
    wall_seconds: f64,
    rows: Vec<Row>,
}

/// Traffic bands, in views per hour over the day before the test; each gets an equal share of
/// the tests (videos drawing under one view an hour are left out: no method can judge them).
const BANDS: [(f64, f64, &str); 4] =
    [(1.0, 10.0, "1-10"), (10.0, 100.0, "10-100"), (100.0, 1_000.0, "100-1,000"), (1_000.0, f64::INFINITY, "1,000+")];

/// Bands of the reach received, in impressions per day.
const IMPRESSION_BANDS: [(f64, f64, &str); 3] =
    [(0.0, 1_000.0, "<1,000"), (1_000.0, 10_000.0, "1,000-10,000"), (10_000.0, f64::INFINITY, "10,000+")];

struct Planned {
    test_id: AbTestId,
    video: VideoId,
    band: usize,
    effect: f64,
    best: usize,
    method: Method,
}

/// What one of our tests ended with, under one signal.
#[derive(Debug, Clone, Copy)]
struct Judged {
    ours: Option<Verdict>,
    oracle: Verdict,
    sequential: Verdict,
    sequential_days: f64,
    forecast: f64,
}

/// One test's scores.
struct Scored {
    method: Method,
    band: usize,
    impression_band: Option<usize>,
    effect: f64,
    best: usize,
    naive: Option<Verdict>,
    /// Views only, then views + reach (ours only).
    judged: Vec<(SignalUsed, Judged)>,
}

/// Where a row's cells and forecasts are gathered.
#[derive(Debug, Default)]
struct Tally {
    ours: Cell,
    oracle: Cell,
    sequential: Cell,
    sequential_days: Vec<f64>,
    naive: Cell,
    forecasts: Vec<f64>,
}

impl Tally {
    fn add(&mut self, effect: f64, best: usize, j: &Judged) {
        score(&mut self.ours, effect, best, j.ours);
        score(&mut self.oracle, effect, best, Some(j.oracle));
        score(&mut self.sequential, effect, best, Some(j.sequential));
        self.sequential_days.push(j.sequential_days);
        self.forecasts.push(j.forecast);
    }

    fn row(mut self, grouping: &'static str, band: &'static str, design: Method, signal: SignalUsed, lift: f64) -> Row {
        for c in [&mut self.ours, &mut self.oracle, &mut self.sequential, &mut self.naive] {
            finish(c);
        }
        let f: Vec<f64> = self.forecasts.iter().copied().filter(|x| x.is_finite()).collect();
        Row {
            grouping,
            band,
            design,
            signal,
            true_lift: lift,
            ours_over_oracle: (self.oracle.correct > 0).then(|| self.ours.correct_share / self.oracle.correct_share),
            sequential_mean_days: self.sequential_days.iter().sum::<f64>() / self.sequential_days.len().max(1) as f64,
            predicted_power: (lift > 0.0 && !f.is_empty()).then(|| f.iter().sum::<f64>() / f.len() as f64),
            ours: self.ours,
            oracle: self.oracle,
            sequential: self.sequential,
            naive: self.naive,
        }
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
    let per_round = BANDS.len() * EFFECTS.len() * METHODS.len();
    anyhow::ensure!(
        args.tests > 0 && args.tests.is_multiple_of(per_round),
        "--tests must be a multiple of {per_round}"
    );
    let bench = Bench::start(&args).await?;
    let planned = create_tests(&bench, &args).await?;
    // Hour by hour, 30 s past the hour, until every test has ended (one a day on Pacific days
    // starts at the next Pacific midnight, up to a day later).
    let hours = args.days * 24 + 27;
    let running = Progress::new("eval abtest: running", u64::try_from(hours).unwrap_or(0), "virtual hours");
    for _ in 0..hours {
        running.inc(1);
        let at = Slot::hour_of(bench.clock.now()).start() + Duration::hours(1) + Duration::seconds(30);
        bench.clock.set(at);
        bench.pipeline.drain("eval", StdDuration::from_secs(60), 32).await?;
    }
    running.finish();
    let scoring = Progress::spinner("eval abtest: scoring the verdicts and their sequential replays");
    let mut report = score_tests(&bench.store, &bench.sim.sim, &planned, &args, &bench.ab.services.analysis).await?;
    scoring.finish();
    report.wall_seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    bench.sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// What the eval runs on: the simulator (its clock stepped by the eval), a fresh SQLite store in
/// a temporary folder, and the real A/B engine and job pipeline over HTTP against the simulator.
struct Bench {
    sim: tubewatch_sim::RunningSim,
    clock: Arc<tubewatch_core::ManualClock>,
    store: Arc<dyn Store>,
    pipeline: Pipeline,
    ab: AbTests,
    http: reqwest::Client,
    /// Holds the store, the blobs and the outbox until the eval ends.
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn start(args: &AbtestArgs) -> anyhow::Result<Self> {
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
            tubewatch_store::connect(&format!("sqlite://{}/tw.db", dir.path().display()), &StoreOptions::default())
                .await?;
        store.migrate().await?;
        let mut yt = YoutubeConfig::single_base(&sim.base_url)?;
        yt.retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
        let youtube = YoutubeClient::new(yt)?;
        let oauth = youtube.oauth(&OAuthConfig {
            client_id: "tubewatch-eval".into(),
            client_secret: None,
            redirect_uri: "http://127.0.0.1:9/oauth/google/callback".into(),
            scopes: vec![SCOPE_YOUTUBE_FORCE_SSL.into(), SCOPE_YT_ANALYTICS_READONLY.into()],
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
            writer: Default::default(),
            config: PipelineConfig {
                abtests: Some(services.clone()),
                mailer: Mailer::outbox("tubewatch <eval@localhost>", &dir.path().join("outbox"))?,
                ..PipelineConfig::default()
            },
        };
        let ab = AbTests { store: store.clone(), youtube, blobs, clock: clock_dyn, services };
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Self { sim, clock, store, pipeline, ab, http, _dir: dir })
    }
}

/// Creates every test: one creator per picked video, connected, with two thumbnails whose true
/// multipliers are set in the simulator. Within a band the tests take every effect, then every
/// method, then which variant is truly better.
async fn create_tests(bench: &Bench, args: &AbtestArgs) -> anyhow::Result<Vec<Planned>> {
    let (store, ab, sim) = (&bench.store, &bench.ab, &bench.sim.sim);
    let now = bench.clock.now();
    let videos = pick_videos(sim, store, args, now).await?;
    let mut planned = Vec::with_capacity(args.tests);
    let mut in_band = [0usize; BANDS.len()];
    let creating = Progress::new("eval abtest: creating tests", videos.len() as u64, "tests");
    for (i, (channel, video, band)) in videos.iter().enumerate() {
        creating.inc(1);
        let j = in_band[*band];
        in_band[*band] += 1;
        let effect = EFFECTS[j % EFFECTS.len()];
        let method = METHODS[(j / EFFECTS.len()) % METHODS.len()];
        let best = (j / (EFFECTS.len() * METHODS.len())) % 2;
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
        connect(ab, &bench.http, user, channel).await?;
        let mut request = CreateAbTest::new(video.clone());
        request.thumbnails = vec![picture(2 * i as u64)?, picture(2 * i as u64 + 1)?];
        request.duration = Duration::days(args.days);
        request.rotation = Duration::hours(args.rotation_hours);
        request.seed = Some(args.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        request.design = method.design();
        let created = ab.create(user, request).await.with_context(|| format!("creating test {i} on {video}"))?;
        for (v, variant) in created.variants.iter().enumerate() {
            let key = variant.thumb_blob_key.as_deref().context("thumbnail variant")?;
            let bytes = ab.blobs.get(key).await?.context("variant blob")?;
            let multiplier = if v == best { 1.0 + effect } else { 1.0 };
            sim.set_multiplier(video.as_str(), VariantKind::Thumbnail, &thumbnail_variant_id(&bytes), multiplier)?;
        }
        planned.push(Planned { test_id: created.test.id, video: video.clone(), band: *band, effect, best, method });
    }
    creating.finish();
    Ok(planned)
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
            &channel.id,
            now - Duration::days(args.max_age_days),
            now - Duration::days(args.min_age_days),
        )?;
        let Some(v) = recent.iter().filter(|v| !v.is_short).max_by_key(|v| v.published) else { continue };
        let rate = (sim.views_at(&v.id, now)? as f64 - sim.views_at(&v.id, now - Duration::hours(24))? as f64) / 24.0;
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

/// A finished test's data, read from the store.
struct TestData {
    points: Vec<ViewsPoint>,
    periods: Vec<AbPeriod>,
    published: chrono::DateTime<chrono::Utc>,
    reach: Vec<(chrono::DateTime<chrono::Utc>, ReachObs)>,
    first_look: Option<chrono::DateTime<chrono::Utc>>,
    power: StoredPower,
    /// The product's own verdict (with reach, when usable).
    stored: Option<Verdict>,
    used_reach: bool,
    extra_noise_cv: f64,
}

/// Scores every finished test: ours on both schedules and both signals, with the oracle and the
/// sequential replay on the same data, and the naive method, per true lift and per traffic band.
async fn score_tests(
    store: &Arc<dyn Store>,
    sim: &Simulator,
    planned: &[Planned],
    args: &AbtestArgs,
    config: &AnalysisConfig,
) -> anyhow::Result<Report> {
    let (mut rates, mut noise, mut during, mut impressions) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut swaps_failed, mut without_reach) = (0, 0);
    let mut loaded = Vec::with_capacity(planned.len());
    for p in planned {
        let (data, failed) = load(store, p).await?;
        swaps_failed += failed;
        if let (Some(first), Some(last)) = (data.points.first(), data.points.last())
            && last.at > first.at
        {
            during.push((last.views - first.views) as f64 / ((last.at - first.at).num_seconds() as f64 / 3600.0));
        }
        rates.push(data.power.traffic.views_per_hour);
        if p.method != Method::Naive {
            noise.push(data.extra_noise_cv);
            without_reach += usize::from(!data.used_reach);
            if let Some(m) = median_impressions(&data.reach) {
                impressions.push(m);
            }
        }
        loaded.push(data);
    }
    // The analyses (hourly replays above all) are CPU work: spread over the machine's cores.
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let chunk = planned.len().div_ceil(threads).max(1);
    let scored: Vec<Scored> = std::thread::scope(|scope| {
        let handles: Vec<_> = planned
            .chunks(chunk)
            .zip(loaded.chunks(chunk))
            .map(|(ps, ds)| {
                scope.spawn(move || ps.iter().zip(ds).map(|(p, d)| score_test(sim, p, d, config)).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    Ok(Report {
        seed: args.seed,
        tests: args.tests,
        days: args.days,
        rotation_hours: args.rotation_hours,
        median_views_per_hour_at_start: median(rates),
        median_views_per_hour_during: median(during),
        median_extra_noise_cv: median(noise),
        median_impressions_per_day: median(impressions),
        tests_without_usable_reach: without_reach,
        swaps_failed,
        wall_seconds: 0.0,
        rows: rows(&scored),
    })
}

/// A test's data and its failed swaps.
async fn load(store: &Arc<dyn Store>, p: &Planned) -> anyhow::Result<(TestData, usize)> {
    let detail = store.abtest(p.test_id).await?.context("test")?;
    anyhow::ensure!(
        matches!(detail.test.state, AbTestState::Finished),
        "test {} did not finish: {:?} {:?}",
        p.test_id,
        detail.test.state,
        detail.test.state_reason
    );
    let swaps_failed = detail.periods.iter().filter(|x| x.swapped_at.is_none()).count();
    let power: StoredPower = serde_json::from_str(&detail.test.power_json)?;
    let result = AbResult::stored(&detail.test)?.with_context(|| format!("test {} has no result", p.test_id))?;
    let points: Vec<ViewsPoint> = store
        .abtest_views(p.test_id)
        .await?
        .into_iter()
        .map(|v| ViewsPoint { at: v.measured_at, views: v.views })
        .collect();
    let periods = analysis_periods(&detail.periods, points.last().map_or(detail.test.ends_at, |x| x.at));
    let mut reach = Vec::new();
    for day in &result.reach_days {
        let index = (day.date - chrono::NaiveDate::default()).num_days();
        let ends = chrono::DateTime::from_timestamp(tubewatch_core::pacific::midnight(index + 1), 0).context("day")?;
        reach.push((
            ends,
            ReachObs { impressions: day.impressions as f64, ctr: day.ctr, shares: day.variant_share.clone() },
        ));
    }
    let analysis = result.analysis.as_ref();
    let data = TestData {
        points,
        periods,
        published: detail.test.video_published_at,
        reach,
        first_look: first_look(&detail),
        power,
        stored: analysis.map(|a| a.verdict),
        used_reach: analysis.is_some_and(|a| a.signal != Signal::Views),
        extra_noise_cv: analysis.map_or(f64::NAN, |a| a.extra_noise_cv),
    };
    Ok((data, swaps_failed))
}

fn median_impressions(reach: &[(chrono::DateTime<chrono::Utc>, ReachObs)]) -> Option<f64> {
    let m = median(reach.iter().map(|(_, r)| r.impressions).collect());
    m.is_finite().then_some(m)
}

/// A reach day is read about a day after it ends.
const REACH_DAY_AVAILABLE_AFTER_HOURS: i64 = 24;

/// Scores one test: the naive method's verdict, or ours under each signal with the oracle, the
/// sequential replay and the forecast.
fn score_test(sim: &Simulator, p: &Planned, d: &TestData, config: &AnalysisConfig) -> Scored {
    let band_of = |m: f64| IMPRESSION_BANDS.iter().position(|&(lo, hi, _)| m >= lo && m < hi);
    let mut scored = Scored {
        method: p.method,
        band: p.band,
        impression_band: median_impressions(&d.reach).and_then(band_of),
        effect: p.effect,
        best: p.best,
        naive: None,
        judged: Vec::new(),
    };
    if p.method == Method::Naive {
        scored.naive = naive_analysis(&d.points, d.published, &d.periods, 2)
            .ok()
            .map(|n| n.winner.map_or(Verdict::Inconclusive, |variant| Verdict::Winner { variant }));
        return scored;
    }
    let expected = |a, b| sim.noise_free_views(&p.video, a, b).map_or(0.0, |v| v.iter().sum());
    let all_reach: Vec<ReachObs> = d.reach.iter().map(|(_, r)| r.clone()).collect();
    let views_se = d.power.estimate.standard_error;
    let reach_precision = d.periods.first().and_then(|_| {
        let traffic = &d.power.traffic;
        reach_precision_over(&d.periods, 2, &reach_plan_from_views(traffic), traffic, config.alpha)
    });
    for signal in [SignalUsed::Views, SignalUsed::ViewsAndReach] {
        let reach: &[ReachObs] = if signal == SignalUsed::Views { &[] } else { &all_reach };
        let ours = match signal {
            SignalUsed::Views => {
                Some(analyse_with_fallback(&d.points, d.published, &d.periods, 2, &[], config).0.verdict)
            }
            SignalUsed::ViewsAndReach => d.stored,
        };
        let oracle = oracle_verdict(&d.points, d.published, &d.periods, 2, reach, config, expected)
            .unwrap_or(Verdict::Inconclusive);
        let (sequential, sequential_days) = replay(d, signal, ours, config);
        let se = ctr_standard_error(views_se, if signal == SignalUsed::Views { None } else { reach_precision });
        scored.judged.push((
            signal,
            Judged { ours, oracle, sequential, sequential_days, forecast: detection_probability(p.effect, se) },
        ));
    }
    scored
}

/// The test replayed as a sequential one: at every hour from its first look, the analysis of the
/// data seen by then (reach days a day after they end) and the always-valid rule; the first
/// decided look ends it, else the fixed-horizon verdict stands. Returns the verdict and the
/// length in days.
fn replay(d: &TestData, signal: SignalUsed, fixed: Option<Verdict>, config: &AnalysisConfig) -> (Verdict, f64) {
    let (Some(start), Some(end)) = (d.periods.first().map(|p| p.start), d.periods.last().map(|p| p.end)) else {
        return (fixed.unwrap_or(Verdict::Inconclusive), 0.0);
    };
    let days = |at: chrono::DateTime<chrono::Utc>| (at - start).num_seconds() as f64 / 86_400.0;
    let Some(first) = d.first_look else { return (fixed.unwrap_or(Verdict::Inconclusive), days(end)) };
    for (i, look) in d.points.iter().enumerate().filter(|(_, p)| p.at >= first && p.at < end) {
        let seen = &d.points[..=i];
        let periods: Vec<AbPeriod> = d
            .periods
            .iter()
            .filter(|p| p.start < look.at)
            .map(|p| AbPeriod { end: p.end.min(look.at), ..*p })
            .collect();
        let reach: Vec<ReachObs> = match signal {
            SignalUsed::Views => Vec::new(),
            SignalUsed::ViewsAndReach => d
                .reach
                .iter()
                .filter(|(ends, _)| *ends + Duration::hours(REACH_DAY_AVAILABLE_AFTER_HOURS) <= look.at)
                .map(|(_, r)| r.clone())
                .collect(),
        };
        let (analysis, _) = analyse_with_fallback(seen, d.published, &periods, 2, &reach, config);
        if let Some(verdict) = sequential_verdict(&analysis, 2, config) {
            return (verdict, days(look.at));
        }
    }
    (fixed.unwrap_or(Verdict::Inconclusive), days(end))
}

/// The report's rows: every lift, then per traffic band, then per band of reach received.
fn rows(scored: &[Scored]) -> Vec<Row> {
    let lift_key = |e: f64| e.mul_add(1000.0, 0.5) as u64;
    type Key = (u8, usize, Method, SignalUsed, u64);
    let mut tallies: BTreeMap<Key, Tally> = BTreeMap::new();
    let mut naive: BTreeMap<(u8, usize, u64), Cell> = BTreeMap::new();
    for t in scored {
        let lift = lift_key(t.effect);
        if let Some(v) = t.naive {
            score(naive.entry((0, 0, lift)).or_default(), t.effect, t.best, Some(v));
            score(naive.entry((1, t.band, lift)).or_default(), t.effect, t.best, Some(v));
            continue;
        }
        for (signal, j) in &t.judged {
            tallies.entry((0, 0, t.method, *signal, lift)).or_default().add(t.effect, t.best, j);
            tallies.entry((1, t.band, t.method, *signal, lift)).or_default().add(t.effect, t.best, j);
            if let (Some(band), SignalUsed::ViewsAndReach) = (t.impression_band, signal) {
                tallies.entry((2, band, t.method, *signal, lift)).or_default().add(t.effect, t.best, j);
            }
        }
    }
    tallies
        .into_iter()
        .map(|((grouping, band, method, signal, lift), mut tally)| {
            if grouping < 2 {
                tally.naive = naive.get(&(grouping, band, lift)).cloned().unwrap_or_default();
            }
            let (grouping, band) = match grouping {
                0 => ("all", "all"),
                1 => ("views_per_hour", BANDS[band].2),
                _ => ("impressions_per_day", IMPRESSION_BANDS[band].2),
            };
            tally.row(grouping, band, method, signal, lift as f64 / 1000.0)
        })
        .collect()
}

fn print_report(report: &Report) {
    println!(
        "A/B eval: seed {}, {} tests of {} days, median {:.1} views/h at start (as estimated), {:.1} during; noise cv {:.2}; reach median {:.0} impressions/day ({} of our tests without usable reach); {} failed swaps; {:.0} s",
        report.seed,
        report.tests,
        report.days,
        report.median_views_per_hour_at_start,
        report.median_views_per_hour_during,
        report.median_extra_noise_cv,
        report.median_impressions_per_day,
        report.tests_without_usable_reach,
        report.swaps_failed,
        report.wall_seconds
    );
    println!("Right / wrong winner (n); for a 0 % lift, right means no winner named. The oracle knows every");
    println!("hour's expected views and the CTR level but not the variants' effect, and faces only the noise,");
    println!("on our tests' data. Sequential: the same tests looked at every hour, stopped once decided.");
    let cell = |c: &Cell| {
        format!("{:>4.0}% / {:>3.0}% ({:>3})", c.correct_share * 100.0, c.false_winner_share * 100.0, c.tests)
    };
    let percent = |p: Option<f64>, scale: f64| p.map_or_else(|| "-".to_owned(), |p| format!("{:.0}%", p * scale));
    let mut grouping = "";
    for r in &report.rows {
        if r.grouping != grouping {
            grouping = r.grouping;
            println!(
                "\n{:<13} | lift | schedule     | signal        | ours              | oracle            | ours÷oracle | sequential        | days | predicted | naive daily       | no verdict",
                grouping
            );
        }
        println!(
            "{:<13} | {:>3.0}% | {:<12} | {:<13} | {} | {} | {:>11} | {} | {:>4.1} | {:>9} | {} | {:>3}",
            r.band,
            r.true_lift * 100.0,
            r.design.label(),
            r.signal.label(),
            cell(&r.ours),
            cell(&r.oracle),
            percent(r.ours_over_oracle, 100.0),
            cell(&r.sequential),
            r.sequential_mean_days,
            percent(r.predicted_power, 100.0),
            if r.naive.tests > 0 { cell(&r.naive) } else { "-".to_owned() },
            r.ours.no_verdict,
        );
    }
    print_forecast_calibration(&report.rows);
}

/// The forecast beside what happened, per group of tests with a real difference (the lifts
/// pooled), with the realised share's sampling error: a cell of 10 tests moves by ±15 points on
/// its own, so only a gap beyond about two errors says the forecast is off.
fn print_forecast_calibration(rows: &[Row]) {
    // (grouping, band, schedule, signal) → (Σ forecast × tests, right, tests)
    type Group<'a> = (&'a str, &'a str, &'a str, &'a str);
    let mut pooled: BTreeMap<Group, (f64, usize, usize)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.true_lift > 0.0) {
        let Some(predicted) = r.predicted_power else { continue };
        let e = pooled.entry((r.grouping, r.band, r.design.label(), r.signal.label())).or_default();
        e.0 += predicted * r.ours.tests as f64;
        e.1 += r.ours.correct;
        e.2 += r.ours.tests;
    }
    println!("\nforecast vs realised (lifts 5-20 % pooled): predicted / realised ± sampling error (tests)");
    for ((grouping, band, design, signal), (predicted, correct, tests)) in pooled {
        let n = tests.max(1) as f64;
        let realised = correct as f64 / n;
        println!(
            "{grouping:<19} | {band:<13} | {design:<12} | {signal:<13} | {:>3.0}% / {:>3.0}% ± {:>2.0} ({tests})",
            predicted / n * 100.0,
            realised * 100.0,
            (realised * (1.0 - realised) / n).sqrt().max(0.5 / n) * 100.0,
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
        let views = i64::try_from(sim.views_at(&video.id, at)?).unwrap_or(i64::MAX);
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
    // The simulated user picks this creator's channel on the account chooser.
    let mut url = url::Url::parse(&request.url)?;
    url.query_pairs_mut().append_pair("channel", channel.as_str());
    let consent = http.get(url).send().await?;
    let location = consent.headers().get("location").context("no redirect from consent")?.to_str()?.to_owned();
    let location = url::Url::parse(&location)?;
    let pairs: HashMap<String, String> = location.query_pairs().into_owned().collect();
    anyhow::ensure!(pairs.get("state") == Some(&request.state), "state mismatch");
    let code = pairs.get("code").context("no code")?;
    ab.finish_connect(user, channel, code, &request.pkce_verifier).await?;
    Ok(())
}
