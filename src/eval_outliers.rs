//! `tubewatch eval outliers`: tracks simulated channels for some weeks with the real pipeline
//! (in process, over the simulator's HTTP, on a stepped manual clock), lets the weekly outlier
//! runs happen, and compares their findings with the simulator's truth, side by side with the
//! naive baseline "views ÷ channel median of all videos ≥ 2×" on the same data.
//!
//! Truth of channel outliers, among the videos a weekly run judged (those reaching the judging
//! age during the run): a video whose true expected views at the age it is judged at (the
//! simulator's, before hourly noise and counter quirks, with its presentation's effect) are at
//! least `--channel-level` (5) times the median of the same figure over the channel's 20 latest
//! other videos of its kind at the same age: "far above this channel's typical band at the same
//! age", what the rule is meant to see, free of noise. The simulator's breakout videos (5–20×
//! the views the video would otherwise get) are scored too, for information: with the world's
//! spread of video quality a breakout on a weak video often ends below a strong plain one, so no
//! rule separates them, and the best any rule seeing true levels could do is printed beside.
//!
//! Truth of thumbnail/title outliers: creator changes, in a run's change window, on videos tracked
//! before the change, whose true effect on views (the simulator's `views_lift`: the new ÷ old
//! multiplier acts on click-through rate, so only on the impression-driven share of views) is at
//! least `--true-lift` (+20 %: a change a creator would act on, and the rule's own smallest
//! flagged lift). The calibrated world makes most variants move click-through rate by about
//! ±12 %, so views by ±8 %, and only 5 % of variants are strong (±40–60 %); at that share a run of
//! 100 channels has one or two true outliers. So by default the eval's world has more creator
//! changes (`--thumbnail-change-rate`, `--title-change-rate`) and a larger share of strong creator
//! variants (`--strong-share`); uploaded (A/B) variants keep the calibrated share. The report
//! prints the values used.
//!
//! Reference. For thumbnail/title outliers, what a rule knowing each changed video's noise-free
//! trajectory could flag from the same measurements; for channel outliers against breakouts, the
//! best threshold on each candidate's true level. Neither is reachable by a rule that sees only
//! views; both say how much of a miss no rule could avoid.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use serde::Serialize;
use tubewatch_core::change_reach::ReachDayAt;
use tubewatch_core::outliers::{
    ChangeJudgement, ChangeOutlierConfig, ChannelBandSnapshot, ChannelJudgement, HourProfile, SkipReason, VideoViews,
    judge_channel_outlier, naive_outlier_score,
};
use tubewatch_core::series::hours_between;
use tubewatch_core::{ChannelId, Clock, ManualClock, Slot, VideoId};
use tubewatch_sim::world::{DECAY_TAU_HOURS, DECAY_TAU_SIGMA, DECAY_THETA};
use tubewatch_sim::world::{Stream, Video, World};
use tubewatch_sim::{ChangeSource, HOURLY_NOISE_SIGMA, RunningSim, SimConfig, Simulator, VariantKind};
use tubewatch_store::{OutlierKind, Store, StoreOptions, VideoSeries};
use tubewatch_worker::outliers_job::{
    FIRST_RUN_LOOKBACK_DAYS, add_owner_reach, change_events, channel_profile, judge_video_change, video_views,
};
use tubewatch_worker::{Blobs, Mailer, Metrics, OutliersConfig, Pipeline, PipelineConfig, Tracker};
use tubewatch_youtube::{RetryPolicy, YoutubeClient, YoutubeConfig};

use crate::progress::Progress;
use crate::settings::Settings;

#[derive(Debug, Args)]
pub struct OutliersArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Channels tracked (the first N of the simulated world; fewer run faster).
    #[arg(long, default_value_t = 100)]
    pub channels: u32,
    /// Weeks of tracking (one weekly run per week).
    #[arg(long, default_value_t = 8)]
    pub weeks: u32,
    /// Override the channel-outlier margin of the settings.
    #[arg(long)]
    pub margin: Option<f64>,
    /// Override the smallest thumbnail/title lift the rule flags.
    #[arg(long)]
    pub min_lift: Option<f64>,
    /// Override the confidence of the thumbnail/title rule's interval.
    #[arg(long)]
    pub confidence: Option<f64>,
    /// Override the decay shape of the thumbnail/title rule (pooled, power_law, auto, exponential, gamma,
    /// quadratic).
    #[arg(long)]
    pub decay: Option<String>,
    /// Override the prior deviation of a video's tilt from its channel's decay shape (default 0: the
    /// channel's measured spread, for a change with less than a day of hours before it; 100: free).
    #[arg(long)]
    pub tilt_sd: Option<f64>,
    /// Override the least videos of the channel at an age for a channel judgement.
    #[arg(long)]
    pub band_min_videos: Option<usize>,
    /// Override the hours per block of the rule's block-robust variance (0: none).
    #[arg(long)]
    pub block_hours: Option<f64>,
    /// A channel outlier is truly one at this many times its channel's typical views at its age.
    #[arg(long, default_value_t = 5.0)]
    pub channel_level: f64,
    /// A thumbnail/title change is truly an outlier when it lifts views by at least this much.
    #[arg(long, default_value_t = 0.2)]
    pub true_lift: f64,
    /// Share of videos whose creator changes the thumbnail (the calibrated world: 0.06).
    #[arg(long, default_value_t = 0.2)]
    pub thumbnail_change_rate: f64,
    /// Share of videos whose creator changes the title (the calibrated world: 0.04).
    #[arg(long, default_value_t = 0.12)]
    pub title_change_rate: f64,
    /// Share of creator variants that are strong, ±40–60 % on click-through rate (the calibrated
    /// world: 0.05).
    #[arg(long, default_value_t = 0.4)]
    pub strong_share: f64,
    /// Track without a Data API key, as a service without `youtube.api_key` does (a channel's
    /// history then comes from its streams' feeds, 15 videos each, instead of 50 through the API).
    #[arg(long)]
    pub no_api_key: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also print every candidate (ours, the truth, the reference) to standard error.
    #[arg(long)]
    pub details: bool,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Score {
    pub flagged: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl Score {
    fn of(flagged: &BTreeSet<String>, truth: &BTreeSet<String>) -> Self {
        let tp = flagged.intersection(truth).count();
        Self {
            flagged: flagged.len(),
            true_positives: tp,
            false_positives: flagged.len() - tp,
            false_negatives: truth.len() - tp,
            precision: ratio(tp, flagged.len()),
            recall: ratio(tp, truth.len()),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    /// Candidates the weekly runs judged.
    pub candidates: usize,
    /// Of which truly outliers.
    pub truth: usize,
    pub ours: Score,
    pub naive: Score,
    /// The known-trajectory reference on our rule's hours (thumbnail/title outliers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<Score>,
    /// The same taking the hours as independent (the earlier, overconfident reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_independent_hours: Option<Score>,
    /// The reference that knows all but the video's own decay speed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape_unknown_reference: Option<Score>,
    /// Ours with the owner's reach report added, as if every channel's owner had granted it
    /// (thumbnail/title outliers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ours_with_reach: Option<Score>,
}

/// Thumbnail/title outliers among changes made at `[from_hours, to_hours)` after publish.
#[derive(Debug, Serialize)]
pub struct AgeBand {
    pub from_hours: f64,
    pub to_hours: Option<f64>,
    #[serde(flatten)]
    pub comparison: Comparison,
}

/// One operating point of a rule: flag when its margin reaches `at`.
#[derive(Debug, Serialize)]
pub struct CurvePoint {
    pub at: f64,
    #[serde(flatten)]
    pub score: Score,
}

#[derive(Debug, Serialize)]
pub struct OutliersReport {
    pub seed: u64,
    pub channels: u32,
    pub weeks: u32,
    pub margin: f64,
    pub min_lift: f64,
    pub confidence: f64,
    pub channel_level: f64,
    pub true_lift: f64,
    pub thumbnail_change_rate: f64,
    pub title_change_rate: f64,
    pub strong_share: f64,
    pub videos_tracked: usize,
    pub wall_seconds: f64,
    #[serde(flatten)]
    pub channel: ChannelFindings,
    #[serde(flatten)]
    pub change: ChangeFindings,
}

/// Channel outliers against each truth.
#[derive(Debug, Serialize)]
pub struct ChannelFindings {
    /// Against "true expected views ≥ `channel_level`× the channel's typical at the same age".
    pub channel_outliers: Comparison,
    /// Precision and recall if the rule flagged at other multiples of the band's median.
    pub channel_curve: Vec<CurvePoint>,
    /// Against the same level measured over the videos our band holds (tracked, old enough),
    /// free of noise: how much of the miss is the rule's measurement rather than the few videos
    /// a newly tracked channel shows.
    pub channel_outliers_band_videos: Comparison,
    /// The best a band can do: flagging by each candidate's true level over the channel's latest
    /// videos that had reached its age by the run (noise-free; the truth also counts the latest
    /// videos that had not).
    pub channel_reached_ceiling: Score,
    /// The same findings against the simulator's breakouts.
    pub channel_outliers_breakouts: Comparison,
    /// The best any rule could do against the breakout truth if it saw each candidate's true
    /// level: the threshold on that level with the highest min(precision, recall).
    pub channel_breakout_ceiling: Option<Ceiling>,
    /// Channel candidates the rule could not judge (too few of the channel's videos at that
    /// age), and the true outliers among them (counted as missed).
    pub channel_not_judged: usize,
    pub channel_truth_not_judged: usize,
}

/// Thumbnail/title outliers against the truth.
#[derive(Debug, Serialize)]
pub struct ChangeFindings {
    pub change_outliers: Comparison,
    pub change_outliers_long: Comparison,
    pub change_outliers_shorts: Comparison,
    /// By the change's age: early changes leave the video's own decay speed to be guessed.
    pub change_outliers_by_age: Vec<AgeBand>,
    /// On the changes with no noise jump (≥ ±28 %) nor counter freeze around them: what the
    /// rules find where the simulated world's rare disturbances do not mimic (or hide) a lift.
    pub change_outliers_undisturbed: Comparison,
    /// What a rule that knew each changed video's trajectory and rhythm exactly (the simulator's
    /// noise-free views) could flag from the same measurements, at the rule's confidence and
    /// minimum lift, with every measurement the run has (from publish or the previous change to
    /// the next change or the run, over the first two weeks). The same-hours reference is in
    /// `change_outliers.reference`.
    pub change_known_trajectory_all_hours: Score,
    /// Precision and recall of ours at other smallest lifts (the margin over no change), at the
    /// rule's confidence; and of the reference at the same margins.
    pub change_curve: Vec<CurvePoint>,
    pub change_reference_curve: Vec<CurvePoint>,
    /// The same over the interval's confidence (the margin below the estimate), at the rule's
    /// smallest lift: the interval at another confidence is recovered from the one at the rule's
    /// (a normal approximation).
    pub change_confidence_curve: Vec<CurvePoint>,
    pub change_reference_confidence_curve: Vec<CurvePoint>,
    pub change_recall_by_true_lift: Vec<LiftBucket>,
    /// How honest each rule's intervals are, over the changes it estimated.
    pub change_interval_calibration: Vec<Calibration>,
    /// Changes the rule does not judge, by reason ("several_changes": another change in the
    /// week; "too_few_hours_before" / "too_few_hours_after": too close to upload, to another
    /// change or to the end of hourly tracking; "no_channel_decay": no other video of the channel's to
    /// learn its decay from; "change_not_detected": tracking missed it), all
    /// and the true outliers among them (counted as missed).
    pub change_not_judged: BTreeMap<&'static str, NotJudged>,
    /// The true ones the rules judge, and among them those on quiet videos.
    pub change_truth_judged: Found,
    pub change_truth_judged_quiet: Found,
}

#[derive(Debug, Default, Serialize)]
pub struct NotJudged {
    pub all: usize,
    pub truth: usize,
}

/// A threshold on the true level and the precision and recall it gives.
#[derive(Debug, Serialize)]
pub struct Ceiling {
    pub level: f64,
    pub precision: f64,
    pub recall: f64,
}

impl Ceiling {
    /// The threshold on `level` that maximises min(precision, recall) of `(level, is_true)`.
    fn best(mut candidates: Vec<(f64, bool)>) -> Option<Self> {
        let truth = candidates.iter().filter(|c| c.1).count();
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut tp = 0;
        let mut best: Option<Self> = None;
        for (k, (level, is_true)) in candidates.iter().enumerate() {
            tp += usize::from(*is_true);
            let (precision, recall) = (tp as f64 / (k + 1) as f64, tp as f64 / truth as f64);
            if best.as_ref().is_none_or(|b| precision.min(recall) > b.precision.min(b.recall)) {
                best = Some(Self { level: *level, precision, recall });
            }
        }
        best.filter(|_| truth > 0)
    }
}

/// How many true outliers, and how many of them we (and the reference) found.
#[derive(Debug, Serialize)]
pub struct Found {
    pub truth: usize,
    pub found: usize,
    pub reference_found: usize,
}

impl Found {
    /// The `truth`, and how many of it `ours` and `reference` flag.
    fn of(truth: &BTreeSet<String>, ours: &BTreeSet<String>, reference: &BTreeSet<String>) -> Self {
        Self {
            truth: truth.len(),
            found: truth.intersection(ours).count(),
            reference_found: truth.intersection(reference).count(),
        }
    }
}

/// A video a run judges against its channel.
#[derive(Debug)]
struct ChannelCandidate {
    /// Videos in our band at the judged age, and how many of them estimated.
    band_videos: usize,
    band_estimated: usize,
    /// The video's views and the band's median at the judged age, when judged.
    measured: Option<(i64, f64)>,
    /// The video's true expected views at the judged age.
    expected: f64,
    /// Our score (views ÷ the band's median at its age), `None` when not judged.
    score: Option<f64>,
    naive: bool,
    /// True expected views at the judged age ÷ the channel's typical at that age.
    true_level: f64,
    /// The same ÷ the typical of the videos our band holds (tracked, old enough), free of noise.
    band_level: f64,
    /// The same ÷ the typical of the channel's latest videos that had reached the age by the run.
    reached_level: f64,
    breakout: bool,
    /// The breakout truth's level: expected total views ÷ the channel's typical video.
    total_level: Option<f64>,
}

/// A creator change a run judges: its true lift, how the rule judged it (or why not), and
/// whether its video is quiet (fewer than `QUIET_VIEWS_PER_HOUR` views an hour in the day after).
#[derive(Debug)]
struct ChangeCandidate {
    lift: f64,
    judgement: &'static str,
    /// Our estimated lift and its interval's lower end, when judged.
    estimate: Option<(f64, f64)>,
    /// The same with the owner's reach report added (the simulator's, as the Reporting API
    /// serves it, the days whose report has come by the run).
    with_reach: Option<(f64, f64)>,
    /// What the rule said when it did not judge.
    why: String,
    is_short: bool,
    /// Hours after publish the change was made.
    age_hours: f64,
    quiet: bool,
    naive: bool,
    /// What rules that know more than ours find.
    references: References,
    /// The simulator's noise jumps (of at least [`DISTURBING_JUMP`] in log views) and counter
    /// freezes around the change (from the rule's earliest hour before it to its last after),
    /// described; empty when none.
    disturbed: String,
}

/// A jump of the hour-to-hour noise this large (in log views, ±28 %) counts as a disturbance.
const DISTURBING_JUMP: f64 = 0.25;

const QUIET_VIEWS_PER_HOUR: f64 = 5.0;

/// A rule's intervals against the truth: the deviation of `(estimate − true step) ÷ standard
/// error` in log views (1 when the intervals are honest, above 1 when too narrow) and the median
/// standard error (how much a change must lift views to be seen).
#[derive(Debug, Serialize)]
pub struct Calibration {
    pub rule: &'static str,
    pub changes: usize,
    pub z_sd: Option<f64>,
    pub median_standard_error: Option<f64>,
}

impl Calibration {
    /// From `(true lift, estimated lift and interval low end at `confidence`)` per change.
    fn of(rule: &'static str, estimates: &[(f64, (f64, f64))], confidence: f64) -> Self {
        let z = tubewatch_core::normal_quantile(1.0 - (1.0 - confidence) / 2.0);
        let mut ses = Vec::new();
        let mut zs = Vec::new();
        for &(truth, (lift, low)) in estimates {
            if lift <= -1.0 || truth <= -1.0 {
                continue;
            }
            let step = (1.0 + lift).ln();
            let se = (step - (1.0 + low).max(1e-9).ln()) / z;
            if se > 0.0 && se.is_finite() {
                ses.push(se);
                zs.push((step - (1.0 + truth).ln()) / se);
            }
        }
        ses.sort_by(f64::total_cmp);
        let n = zs.len() as f64;
        let mean = zs.iter().sum::<f64>() / n;
        Self {
            rule,
            changes: zs.len(),
            z_sd: (zs.len() > 1).then(|| (zs.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()),
            median_standard_error: ses.get(ses.len() / 2).copied(),
        }
    }
}

/// True thumbnail/title outliers with a true lift in `[from, to)`, and how many we found.
#[derive(Debug, Serialize)]
pub struct LiftBucket {
    pub from: f64,
    pub to: Option<f64>,
    #[serde(flatten)]
    pub found: Found,
}

pub async fn run(args: OutliersArgs, settings: Settings) -> anyhow::Result<ExitCode> {
    let wall = std::time::Instant::now();
    let outliers = outliers_config(&args, &settings)?;
    let (mut sim_config, clock) = SimConfig::for_tests(args.seed, args.channels.max(1));
    sim_config.page_bytes = 8 * 1024;
    sim_config.world.creator_thumbnail_change_rate = args.thumbnail_change_rate;
    sim_config.world.creator_title_change_rate = args.title_change_rate;
    sim_config.world.creator_strong_variant_share = args.strong_share;
    let sim = Simulator::start(sim_config, "127.0.0.1:0".parse()?).await?;
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> =
        tubewatch_store::connect(&format!("sqlite://{}", dir.path().join("tw.db").display()), &StoreOptions::default())
            .await?;
    store.migrate().await?;
    let channels: Vec<_> = sim.sim.channels().iter().take(args.channels as usize).map(|c| c.id.clone()).collect();
    let seen = track_and_run(&args, &settings, &outliers, &sim, &clock, &store, dir.path(), &channels).await?;
    let (ours_channel, ours_change) = our_findings(&store, &seen).await?;
    let mut videos_tracked = 0;
    for id in &channels {
        videos_tracked += store.channel_videos(id).await?.len();
    }
    let report = OutliersReport {
        seed: args.seed,
        channels: args.channels,
        weeks: args.weeks,
        margin: outliers.channel.margin,
        min_lift: outliers.change.min_lift,
        confidence: outliers.change.confidence,
        channel_level: args.channel_level,
        true_lift: args.true_lift,
        thumbnail_change_rate: args.thumbnail_change_rate,
        title_change_rate: args.title_change_rate,
        strong_share: args.strong_share,
        videos_tracked,
        wall_seconds: wall.elapsed().as_secs_f64(),
        channel: channel_findings(&seen.channel, &ours_channel, args.channel_level),
        change: change_findings(&seen.change, &ours_change, &outliers, args.true_lift),
    };
    if args.details {
        print_details(&seen, &ours_channel);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// The settings' outlier rules with the command line's overrides.
fn outliers_config(args: &OutliersArgs, settings: &Settings) -> anyhow::Result<OutliersConfig> {
    let mut outliers = settings.outliers_config();
    if let Some(margin) = args.margin {
        outliers.channel.margin = margin;
    }
    if let Some(min_lift) = args.min_lift {
        outliers.change.min_lift = min_lift;
    }
    if let Some(confidence) = args.confidence {
        outliers.change.confidence = confidence;
    }
    if let Some(decay) = &args.decay {
        outliers.change.decay =
            serde_json::from_value(serde_json::Value::String(decay.clone())).context("--decay: an unknown shape")?;
    }
    if let Some(sd) = args.tilt_sd {
        outliers.change.tilt_sd = sd;
    }
    if let Some(min) = args.band_min_videos {
        outliers.band.min_videos = min;
    }
    if let Some(hours) = args.block_hours {
        outliers.change.noise_block_hours = hours;
    }
    Ok(outliers)
}

/// What the weekly runs of the period judged, each candidate with its truth, and when they ran.
struct Seen {
    runs: Vec<DateTime<Utc>>,
    channel: BTreeMap<String, ChannelCandidate>,
    change: BTreeMap<(String, &'static str), ChangeCandidate>,
}

/// Tracks `channels` for the period through the real pipeline, hour by hour of virtual time,
/// and gathers every weekly run's candidates from the data that run sees, just before it.
#[allow(clippy::too_many_arguments)]
async fn track_and_run(
    args: &OutliersArgs,
    settings: &Settings,
    outliers: &OutliersConfig,
    sim: &RunningSim,
    clock: &Arc<ManualClock>,
    store: &Arc<dyn Store>,
    dir: &std::path::Path,
    channels: &[ChannelId],
) -> anyhow::Result<Seen> {
    let mut yt = YoutubeConfig::single_base(&sim.base_url)?;
    yt.retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    yt.api_key = (!args.no_api_key).then(|| "eval-outliers".to_owned());
    let youtube = YoutubeClient::new(yt)?;
    let config = PipelineConfig {
        policy: settings.schedule_policy()?,
        outliers: outliers.clone(),
        mailer: Mailer::outbox("eval@tubewatch.test", &dir.join("outbox"))?,
        ..PipelineConfig::default()
    };
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let pipeline = Pipeline {
        store: store.clone(),
        youtube: youtube.clone(),
        blobs: Blobs::local(&dir.join("blobs"))?,
        clock: clock_dyn.clone(),
        metrics: Arc::new(Metrics::default()),
        writer: Default::default(),
        config: config.clone(),
    };
    let tracker = Tracker { store: store.clone(), youtube, clock: clock_dyn, config };
    let start = clock.now();
    for id in channels {
        tracker.track_channel(None, id.as_str()).await.with_context(|| format!("tracking {id}"))?;
    }
    // Every weekly run in the period, and the series as each run saw them (for the baseline).
    let end =
        start + Duration::weeks(i64::from(args.weeks)) + Duration::hours(outliers.hour.into()) + Duration::hours(1);
    let mut seen = Seen { runs: Vec::new(), channel: BTreeMap::new(), change: BTreeMap::new() };
    let mut next_run = outliers.next_run_after(start - Duration::seconds(1));
    let progress =
        Progress::new("eval outliers", u64::try_from((end - start).num_hours()).unwrap_or(0), "virtual hours");
    while clock.now() < end {
        progress.set(u64::try_from((clock.now() - start).num_hours()).unwrap_or(0));
        let next_hour = Slot::hour_of(clock.now()).start() + Duration::hours(1);
        for at in [next_hour - Duration::minutes(5), next_hour + Duration::seconds(30)] {
            if at > clock.now() {
                clock.set(at);
            }
            if clock.now() >= next_run {
                // The baseline sees the same data the run does, just before it.
                for id in channels {
                    let series = store.channel_series(id, next_run - Duration::days(FIRST_RUN_LOOKBACK_DAYS)).await?;
                    channel_candidates_for_run(&sim.sim, outliers, &series, next_run, &mut seen.channel)?;
                    changes_for_run(&sim.sim, outliers, &series, next_run, &mut seen.change)?;
                }
                seen.runs.push(next_run);
                next_run += Duration::weeks(1);
            }
            pipeline.drain("eval", StdDuration::from_secs(60), 32).await?;
        }
    }
    progress.finish();
    Ok(seen)
}

/// Our findings over all runs: channel outliers by video id, change outliers as `id/kind`, each
/// among the candidates (findings outside them cannot happen with the same rule; intersected to
/// be safe).
async fn our_findings(store: &Arc<dyn Store>, seen: &Seen) -> anyhow::Result<(BTreeSet<String>, BTreeSet<String>)> {
    let mut ours_channel = BTreeSet::new();
    let mut ours_change = BTreeSet::new();
    for run in &seen.runs {
        for o in store.week_outliers(&OutliersConfig::week_label(*run)).await? {
            let id = o.outlier.video_id.to_string();
            match o.outlier.kind {
                OutlierKind::Channel => {
                    ours_channel.insert(id);
                }
                OutlierKind::Thumbnail => {
                    ours_change.insert(format!("{id}/thumbnail"));
                }
                OutlierKind::Title => {
                    ours_change.insert(format!("{id}/title"));
                }
            }
        }
    }
    let channel_ids: BTreeSet<String> = seen.channel.keys().cloned().collect();
    Ok((ours_channel.intersection(&channel_ids).cloned().collect(), ours_change))
}

/// Channel outliers scored against each truth, with the curve over the multiple and the ceilings.
fn channel_findings(
    candidates: &BTreeMap<String, ChannelCandidate>,
    ours_channel: &BTreeSet<String>,
    channel_level: f64,
) -> ChannelFindings {
    let channel_set = |keep: &dyn Fn(&ChannelCandidate) -> bool| -> BTreeSet<String> {
        candidates.iter().filter(|(_, c)| keep(c)).map(|(id, _)| id.clone()).collect()
    };
    let truth_level = channel_set(&|c| c.true_level >= channel_level);
    let truth_breakout = channel_set(&|c| c.breakout);
    let truth_band = channel_set(&|c| c.band_level >= channel_level);
    let naive_channel = channel_set(&|c| c.naive);
    let channel_not_judged = channel_set(&|c| c.score.is_none());
    let channel_curve = [3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0]
        .into_iter()
        .map(|at| CurvePoint {
            at,
            score: Score::of(&channel_set(&|c| c.score.is_some_and(|s| s >= at)), &truth_level),
        })
        .collect();
    let true_levels: Vec<(f64, bool)> =
        candidates.values().filter_map(|c| c.total_level.map(|l| (l, c.breakout))).collect();
    let against = |truth: &BTreeSet<String>| Comparison {
        candidates: candidates.len(),
        truth: truth.len(),
        ours: Score::of(ours_channel, truth),
        naive: Score::of(&naive_channel, truth),
        reference: None,
        reference_independent_hours: None,
        shape_unknown_reference: None,
        ours_with_reach: None,
    };
    ChannelFindings {
        channel_outliers: against(&truth_level),
        channel_curve,
        channel_outliers_band_videos: against(&truth_band),
        channel_reached_ceiling: Score::of(&channel_set(&|c| c.reached_level >= channel_level), &truth_level),
        channel_outliers_breakouts: against(&truth_breakout),
        channel_breakout_ceiling: Ceiling::best(true_levels),
        channel_not_judged: channel_not_judged.len(),
        channel_truth_not_judged: channel_not_judged.intersection(&truth_level).count(),
    }
}

/// Thumbnail/title outliers scored against the truth, beside the naive rule and the references,
/// by stream, age and true lift, with the curves, the intervals' calibration and what was not judged.
fn change_findings(
    candidates: &BTreeMap<(String, &'static str), ChangeCandidate>,
    ours_change: &BTreeSet<String>,
    outliers: &OutliersConfig,
    true_lift: f64,
) -> ChangeFindings {
    let change_set = |keep: &dyn Fn(&ChangeCandidate) -> bool| change_set(candidates, keep);
    let (min_lift, confidence) = (outliers.change.min_lift, outliers.change.confidence);
    let comparison = |stream: &dyn Fn(&ChangeCandidate) -> bool| {
        change_comparison(candidates, ours_change, stream, true_lift, min_lift)
    };
    let change_outliers_by_age = [(0.0, 24.0), (24.0, 72.0), (72.0, f64::INFINITY)]
        .into_iter()
        .map(|(from, to)| AgeBand {
            from_hours: from,
            to_hours: to.is_finite().then_some(to),
            comparison: comparison(&|c| (from..to).contains(&c.age_hours)),
        })
        .collect();
    let truth_change = change_set(&|c| c.lift >= true_lift);
    let reference_same_hours = change_set(&|c| reference_flags(&c.references.known[0], min_lift));
    let found = |truth: &BTreeSet<String>| Found::of(truth, ours_change, &reference_same_hours);
    let curves = change_curves(candidates, &truth_change, min_lift, confidence);
    ChangeFindings {
        change_outliers: comparison(&|_| true),
        change_outliers_long: comparison(&|c| !c.is_short),
        change_outliers_shorts: comparison(&|c| c.is_short),
        change_outliers_by_age,
        change_outliers_undisturbed: comparison(&|c| c.disturbed.is_empty()),
        change_known_trajectory_all_hours: Score::of(
            &change_set(&|c| reference_flags(&c.references.known[1], min_lift)),
            &truth_change,
        ),
        change_curve: curves.margin,
        change_reference_curve: curves.reference_margin,
        change_confidence_curve: curves.confidence,
        change_reference_confidence_curve: curves.reference_confidence,
        change_recall_by_true_lift: recall_by_true_lift(candidates, true_lift, &found),
        change_interval_calibration: interval_calibration(candidates, confidence),
        change_not_judged: not_judged(candidates, true_lift),
        change_truth_judged: found(&change_set(&|c| c.lift >= true_lift && c.judgement == "judged")),
        change_truth_judged_quiet: found(&change_set(&|c| c.lift >= true_lift && c.judgement == "judged" && c.quiet)),
    }
}

/// Ours, the naive rule's and the references' scores over the changes `stream` keeps, against
/// those of them whose true lift reaches `true_lift`.
fn change_comparison(
    candidates: &BTreeMap<(String, &'static str), ChangeCandidate>,
    ours_change: &BTreeSet<String>,
    stream: &dyn Fn(&ChangeCandidate) -> bool,
    true_lift: f64,
    min_lift: f64,
) -> Comparison {
    let change_set = |keep: &dyn Fn(&ChangeCandidate) -> bool| change_set(candidates, keep);
    let candidates_in = change_set(stream);
    let truth = change_set(&|c| stream(c) && c.lift >= true_lift);
    let ours: BTreeSet<String> = ours_change.intersection(&candidates_in).cloned().collect();
    let reference = |pick: &dyn Fn(&References) -> &Option<(f64, f64)>| {
        Some(Score::of(&change_set(&|c| stream(c) && reference_flags(pick(&c.references), min_lift)), &truth))
    };
    Comparison {
        candidates: candidates_in.len(),
        truth: truth.len(),
        ours: Score::of(&ours, &truth),
        naive: Score::of(&change_set(&|c| stream(c) && c.naive), &truth),
        reference: reference(&|r| &r.known[0]),
        reference_independent_hours: reference(&|r| &r.known_independent),
        shape_unknown_reference: reference(&|r| &r.shape_unknown),
        ours_with_reach: Some(Score::of(
            &change_set(&|c| stream(c) && reference_flags(&c.with_reach, min_lift)),
            &truth,
        )),
    }
}

/// How many of the true changes we found, by bands of their true lift from `true_lift` on.
fn recall_by_true_lift(
    candidates: &BTreeMap<(String, &'static str), ChangeCandidate>,
    true_lift: f64,
    found: &dyn Fn(&BTreeSet<String>) -> Found,
) -> Vec<LiftBucket> {
    [(true_lift, 0.3), (0.3, 0.4), (0.4, f64::INFINITY)]
        .into_iter()
        .filter(|(from, to)| from < to)
        .map(|(from, to)| LiftBucket {
            from,
            to: to.is_finite().then_some(to),
            found: found(&change_set(candidates, &|c| (from.max(true_lift)..to).contains(&c.lift))),
        })
        .collect()
}

/// How often each rule's interval at `confidence` holds the true lift.
fn interval_calibration(
    candidates: &BTreeMap<(String, &'static str), ChangeCandidate>,
    confidence: f64,
) -> Vec<Calibration> {
    let calibration = |rule, pick: &dyn Fn(&ChangeCandidate) -> Option<(f64, f64)>| {
        let estimates: Vec<(f64, (f64, f64))> =
            candidates.values().filter_map(|c| pick(c).map(|e| (c.lift, e))).collect();
        Calibration::of(rule, &estimates, confidence)
    };
    vec![
        calibration("ours", &|c| c.estimate),
        calibration("ours with the owner's reach", &|c| c.with_reach),
        calibration("known trajectory", &|c| c.references.known[0]),
        calibration("the same, hours independent", &|c| c.references.known_independent),
        calibration("decay speed unknown", &|c| c.references.shape_unknown),
    ]
}

/// The changes our rule did not judge, by why, and the true ones among them.
fn not_judged(
    candidates: &BTreeMap<(String, &'static str), ChangeCandidate>,
    true_lift: f64,
) -> BTreeMap<&'static str, NotJudged> {
    let mut out: BTreeMap<&'static str, NotJudged> = BTreeMap::new();
    for c in candidates.values().filter(|c| c.judgement != "judged") {
        let entry = out.entry(c.judgement).or_default();
        entry.all += 1;
        entry.truth += usize::from(c.lift >= true_lift);
    }
    out
}

/// The candidates a filter keeps, as `id/kind`.
fn change_set(
    candidates: &BTreeMap<(String, &'static str), ChangeCandidate>,
    keep: &dyn Fn(&ChangeCandidate) -> bool,
) -> BTreeSet<String> {
    candidates.iter().filter(|(_, c)| keep(c)).map(|((id, kind), _)| format!("{id}/{kind}")).collect()
}

/// Whether an estimate `(lift, interval's low end)` is flagged at `margin`.
fn reference_flags(k: &Option<(f64, f64)>, margin: f64) -> bool {
    k.is_some_and(|(lift, low)| low > 0.0 && lift >= margin)
}

/// Precision and recall over the margin and over the interval's confidence, ours and the
/// known-trajectory reference's.
struct ChangeCurves {
    margin: Vec<CurvePoint>,
    reference_margin: Vec<CurvePoint>,
    confidence: Vec<CurvePoint>,
    reference_confidence: Vec<CurvePoint>,
}

fn change_curves(
    candidates: &BTreeMap<(String, &'static str), ChangeCandidate>,
    truth: &BTreeSet<String>,
    min_lift: f64,
    confidence: f64,
) -> ChangeCurves {
    let margins = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4];
    let margin = margins
        .iter()
        .map(|&at| CurvePoint {
            at,
            score: Score::of(
                &change_set(candidates, &|c| c.estimate.is_some_and(|(l, low)| low > 0.0 && l >= at)),
                truth,
            ),
        })
        .collect();
    let reference_margin = margins
        .iter()
        .map(|&at| CurvePoint {
            at,
            score: Score::of(&change_set(candidates, &|c| reference_flags(&c.references.known[0], at)), truth),
        })
        .collect();
    // Flagged at confidence `at`: the interval's lower end, moved from the rule's confidence.
    let z_rule = tubewatch_core::normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let flags_at = |e: &Option<(f64, f64)>, at: f64| {
        e.is_some_and(|(lift, low)| {
            let (step, low) = ((1.0 + lift).ln(), (1.0 + low).max(1e-9).ln());
            let se = (step - low) / z_rule;
            lift >= min_lift && step - tubewatch_core::normal_quantile(1.0 - (1.0 - at) / 2.0) * se > 0.0
        })
    };
    let confidences = [0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99];
    let confidence_curve = confidences
        .iter()
        .map(|&at| CurvePoint { at, score: Score::of(&change_set(candidates, &|c| flags_at(&c.estimate, at)), truth) })
        .collect();
    let reference_confidence = confidences
        .iter()
        .map(|&at| CurvePoint {
            at,
            score: Score::of(&change_set(candidates, &|c| flags_at(&c.references.known[0], at)), truth),
        })
        .collect();
    ChangeCurves { margin, reference_margin, confidence: confidence_curve, reference_confidence }
}

/// Every candidate on stderr: what the rule measured and the truth, for reading a seed's flags.
fn print_details(seen: &Seen, ours_channel: &BTreeSet<String>) {
    for (id, c) in &seen.channel {
        eprintln!(
            "channel {id}: score {} true level {:.2} band level {:.2} reached level {:.2} band videos {} ({} estimated) views {} median {} expected {:.0} typical {:.0} breakout {} flagged {}",
            c.score.map_or("-".to_owned(), |s| format!("{s:.2}")),
            c.true_level,
            c.band_level,
            c.reached_level,
            c.band_videos,
            c.band_estimated,
            c.measured.map_or("-".to_owned(), |m| m.0.to_string()),
            c.measured.map_or("-".to_owned(), |m| format!("{:.0}", m.1)),
            c.expected,
            if c.true_level > 0.0 { c.expected / c.true_level } else { 0.0 },
            c.breakout,
            ours_channel.contains(id)
        );
    }
    let pair = |v: &Option<(f64, f64)>| v.map_or("-".to_owned(), |(l, low)| format!("{l:+.2} (low {low:+.2})"));
    for ((id, kind), c) in &seen.change {
        eprintln!(
            "change {id}/{kind}: short {} at {:.0} h true lift {:+.2} | {} ours {} {} | known {} | independent {} | shape unknown {} | quiet {} | disturbed: {}",
            c.is_short,
            c.age_hours,
            c.lift,
            c.judgement,
            pair(&c.estimate),
            c.why,
            pair(&c.references.known[0]),
            pair(&c.references.known_independent),
            pair(&c.references.shape_unknown),
            c.quiet,
            if c.disturbed.is_empty() { "no" } else { &c.disturbed }
        );
    }
}

fn f3(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.3}"))
}

fn print_report(report: &OutliersReport) {
    println!(
        "seed {}, {} channels, {} weeks, {} videos tracked ({:.0} s); creator changes: thumbnails {:.0} %, titles {:.0} % of videos, strong variants {:.0} %",
        report.seed,
        report.channels,
        report.weeks,
        report.videos_tracked,
        report.wall_seconds,
        report.thumbnail_change_rate * 100.0,
        report.title_change_rate * 100.0,
        report.strong_share * 100.0
    );
    print_channel_report(report);
    print_change_report(report);
}

/// One candidate group's scores: ours, the naive rule's and the references', where measured.
fn show(name: &str, c: &Comparison) {
    let reference = |label: &str, r: &Option<Score>| {
        r.as_ref().map_or(String::new(), |r| {
            let share = match (c.ours.recall, r.recall) {
                (Some(o), Some(r)) if r > 0.0 => format!(", ours ÷ its recall {:.2}", o / r),
                _ => String::new(),
            };
            format!(
                "\n    {label}: precision {} recall {} ({} flagged{share})",
                f3(r.precision),
                f3(r.recall),
                r.flagged
            )
        })
    };
    let reference = [
        reference("ours with the owner's reach (every owner granting it)", &c.ours_with_reach),
        reference("known-trajectory reference, our hours", &c.reference),
        reference("the same, hours taken as independent", &c.reference_independent_hours),
        reference("decay speed unknown (the world's spread), our hours", &c.shape_unknown_reference),
    ]
    .concat();
    println!(
        "{name}: {} candidates, {} true | ours precision {} recall {} ({} flagged) | naive precision {} recall {} ({} flagged){reference}",
        c.candidates,
        c.truth,
        f3(c.ours.precision),
        f3(c.ours.recall),
        c.ours.flagged,
        f3(c.naive.precision),
        f3(c.naive.recall),
        c.naive.flagged
    );
}

/// Precision and recall at each point of a curve.
fn curve(name: &str, points: &[CurvePoint], unit: &dyn Fn(f64) -> String) {
    let row: Vec<String> =
        points.iter().map(|p| format!("{}: {} / {}", unit(p.at), f3(p.score.precision), f3(p.score.recall))).collect();
    println!("  {name} (precision / recall): {}", row.join(" · "));
}

fn print_channel_report(report: &OutliersReport) {
    show(
        &format!("channel outliers (truth: ≥ {}× the channel's typical at the same age)", report.channel_level),
        &report.channel.channel_outliers,
    );
    curve("flagged at views ≥ k × the band's median", &report.channel.channel_curve, &|k| format!("{k}×"));
    println!(
        "  not judged (too little history): {} candidates, {} of them true",
        report.channel.channel_not_judged, report.channel.channel_truth_not_judged
    );
    show("  the same level over the videos our band holds", &report.channel.channel_outliers_band_videos);
    println!(
        "  best a band could do (true levels over the channel's latest videos that had reached the age): precision {} recall {}",
        f3(report.channel.channel_reached_ceiling.precision),
        f3(report.channel.channel_reached_ceiling.recall)
    );
    show("channel outliers (truth: the simulator's breakouts)", &report.channel.channel_outliers_breakouts);
    if let Some(c) = &report.channel.channel_breakout_ceiling {
        println!(
            "  best any rule could do seeing true levels: precision {:.3} recall {:.3} (level ≥ {:.1}× typical)",
            c.precision, c.recall, c.level
        );
    }
}

fn print_change_report(report: &OutliersReport) {
    let truth = format!("true lift ≥ {:.0} %", report.true_lift * 100.0);
    show(&format!("thumbnail/title outliers ({truth})"), &report.change.change_outliers);
    show("  long videos", &report.change.change_outliers_long);
    show("  Shorts", &report.change.change_outliers_shorts);
    for band in &report.change.change_outliers_by_age {
        let to = band.to_hours.map_or("on".to_owned(), |to| format!("{to:.0} h"));
        show(&format!("  changed {:.0} h–{to} after publish", band.from_hours), &band.comparison);
    }
    show("  no noise jump nor counter freeze around the change", &report.change.change_outliers_undisturbed);
    let k = &report.change.change_known_trajectory_all_hours;
    println!(
        "  known-trajectory reference, all hours: precision {} recall {} ({} flagged)",
        f3(k.precision),
        f3(k.recall),
        k.flagged
    );
    let pct = |m: f64| format!("≥ {:.0} %", m * 100.0);
    curve(
        &format!("ours flagged at estimated lift (interval at {:.0} % above 0)", report.confidence * 100.0),
        &report.change.change_curve,
        &pct,
    );
    curve("reference flagged at estimated lift", &report.change.change_reference_curve, &pct);
    let conf = |c: f64| format!("{:.0} %", c * 100.0);
    curve(
        &format!("ours flagged at interval confidence (lift ≥ {:.0} %)", report.min_lift * 100.0),
        &report.change.change_confidence_curve,
        &conf,
    );
    curve("reference flagged at interval confidence", &report.change.change_reference_confidence_curve, &conf);
    for b in &report.change.change_recall_by_true_lift {
        let to = b.to.map_or("∞".to_owned(), |to| format!("{:.0} %", to * 100.0));
        println!(
            "  true lift {:.0} %–{to}: ours found {} of {}, reference {}",
            b.from * 100.0,
            b.found.found,
            b.found.truth,
            b.found.reference_found
        );
    }
    let calibration: Vec<String> = report
        .change
        .change_interval_calibration
        .iter()
        .map(|c| format!("{} {} ({}, {} changes)", c.rule, f3(c.z_sd), f3(c.median_standard_error), c.changes))
        .collect();
    println!(
        "  intervals: deviation of (estimate − truth) ÷ standard error, 1 when honest (median standard error in log views): {}",
        calibration.join(" · ")
    );
    let skipped: Vec<String> =
        report.change.change_not_judged.iter().map(|(why, n)| format!("{why} {} ({} true)", n.all, n.truth)).collect();
    println!("  not judged: {}", if skipped.is_empty() { "none".into() } else { skipped.join(", ") });
    let (j, q) = (&report.change.change_truth_judged, &report.change.change_truth_judged_quiet);
    println!(
        "  true ones judged: found {} of {} (reference {}); on quiet videos (< {QUIET_VIEWS_PER_HOUR} views an hour after the change): found {} of {} (reference {})",
        j.found, j.truth, j.reference_found, q.found, q.truth, q.reference_found
    );
}

/// Whether the naive rule (latest views ÷ the channel's median) flags the video at `run`.
fn naive_flags(s: &VideoSeries, run: DateTime<Utc>, channel_views: &[i64]) -> bool {
    latest_views(s, run)
        .and_then(|v| naive_outlier_score(v, channel_views))
        .is_some_and(|x| x >= tubewatch_core::outliers::NAIVE_OUTLIER_THRESHOLD)
}

fn latest_views(s: &VideoSeries, until: DateTime<Utc>) -> Option<i64> {
    s.views.iter().filter(|r| r.measured_at <= until).map(|r| r.views).max()
}

fn channel_views(series: &[VideoSeries], run: DateTime<Utc>) -> Vec<i64> {
    series.iter().filter_map(|s| latest_views(s, run)).collect()
}

/// A video's expected views from publish to `until`, free of noise: its decay times its
/// channel's rhythm (the simulator's noise-free views) times its presentation's effect on the
/// view rate (`share × multiplier + 1 − share`) between its creator changes.
fn expected_views(world: &World, video: &Video, until: DateTime<Utc>) -> f64 {
    let share = video.impression_share;
    let mut multipliers = [1.0, 1.0];
    let mut from = video.published;
    let mut total = 0.0;
    let mut changes: Vec<_> = video.creator_changes.iter().filter(|c| c.at < until).collect();
    changes.sort_by_key(|c| c.at);
    for c in changes {
        let response = share * multipliers[0] * multipliers[1] + 1.0 - share;
        total += response * world.noise_free_views(video, from, c.at).iter().sum::<f64>();
        multipliers[usize::from(c.kind == VariantKind::Title)] =
            world.default_multiplier(&video.key, c.kind, &c.variant);
        from = c.at;
    }
    let response = share * multipliers[0] * multipliers[1] + 1.0 - share;
    total + response * world.noise_free_views(video, from, until).iter().sum::<f64>()
}

/// The videos a run judges against their channel, with our verdict (its band computed in one
/// go, which equals the job's incremental one), the naive one, and the truth.
fn channel_candidates_for_run(
    sim: &Simulator,
    config: &OutliersConfig,
    series: &[VideoSeries],
    run: DateTime<Utc>,
    candidates: &mut BTreeMap<String, ChannelCandidate>,
) -> anyhow::Result<()> {
    let all = channel_views(series, run);
    let videos: Vec<VideoViews> = series.iter().map(|s| video_views(s, run)).collect();
    let band = ChannelBandSnapshot::from_history(config.band, &videos)?;
    let judge = Duration::hours(config.judge_at_hours);
    let world = sim.world();
    for (s, views) in series.iter().zip(&videos) {
        let age = run - s.video.published_at;
        // Only videos measured from their first hours can be judged at an age.
        let first = s.views.first().map(|r| r.measured_at - s.video.published_at);
        if age < judge || age >= judge + Duration::weeks(1) || first.is_none_or(|f| f > Duration::hours(2)) {
            continue;
        }
        let id = s.video.id.to_string();
        let (judged, judged_age) = match judge_channel_outlier(&band, views, &config.channel) {
            ChannelJudgement::Judged(score) => {
                let age = Duration::seconds((score.age_hours * 3600.0) as i64);
                (Some(score), age)
            }
            _ => (None, Duration::hours(age.num_hours())),
        };
        let score = judged.as_ref().map(|j| j.score);
        let (band_videos, band_estimated) = band
            .band(s.video.is_short)
            .points
            .iter()
            .find(|p| (p.age_hours * 3600.0) as i64 == judged_age.num_seconds())
            .map_or((0, 0), |p| (p.videos, p.estimated));
        let naive = naive_flags(s, run, &all);
        let Some(video) = world.video_key(&id).and_then(|k| world.video(k)) else { continue };
        let Some(channel) = world.channel(video.key.channel) else { continue };
        // The channel's typical at the judged age: the median over its latest other videos of
        // the same kind (as many as the band keeps), each at the same age; the same over those
        // that had reached that age by the run (the most a band can hold); and over the videos
        // the band holds (tracked or seen, of the same kind, old enough, the latest `max_videos`).
        let stream = if video.is_short { Stream::Short } else { Stream::Long };
        let mine = expected_views(world, &video, video.published + judged_age);
        let level = |others: &mut dyn Iterator<Item = Video>| {
            let mut views: Vec<f64> = others
                .take(config.band.max_videos)
                .map(|v| expected_views(world, &v, v.published + judged_age))
                .collect();
            views.sort_by(f64::total_cmp);
            let n = views.len();
            let typical = if n == 0 { 0.0 } else { (views[(n - 1) / 2] + views[n / 2]) / 2.0 };
            if typical > 0.0 { mine / typical } else { 0.0 }
        };
        let latest = world.videos_between(channel, run - Duration::days(400), run);
        let others = || latest.iter().filter(|v| v.key.stream == stream && v.id != video.id).cloned();
        let true_level = level(&mut others());
        let reached_level = level(&mut others().filter(|v| v.published + judged_age <= run));
        let mut held: Vec<&VideoSeries> = series
            .iter()
            .filter(|o| o.video.is_short == video.is_short && o.video.id != s.video.id)
            .filter(|o| o.video.published_at + judged_age <= run)
            .collect();
        held.sort_by_key(|o| std::cmp::Reverse(o.video.published_at));
        let band_level =
            level(&mut held.iter().filter_map(|o| world.video_key(o.video.id.as_str()).and_then(|k| world.video(k))));
        let typical_total = if video.is_short { channel.typical_short_views } else { channel.typical_long_views };
        candidates.insert(
            id,
            ChannelCandidate {
                band_videos,
                band_estimated,
                measured: judged.map(|j| (j.views, j.median)),
                expected: mine,
                score,
                naive,
                true_level,
                band_level,
                reached_level,
                breakout: video.breakout.is_some(),
                total_level: (typical_total > 0.0).then(|| video.expected_total / typical_total),
            },
        );
    }
    Ok(())
}

/// The creator changes a run judges (tracked before the change, in its window), the true lift of
/// each (its effect on the view rate − 1), our verdict, the reference's and the naive one.
fn changes_for_run(
    sim: &Simulator,
    config: &OutliersConfig,
    series: &[VideoSeries],
    run: DateTime<Utc>,
    candidates: &mut BTreeMap<(String, &'static str), ChangeCandidate>,
) -> anyhow::Result<()> {
    let all = channel_views(series, run);
    let (from, to) = config.change_window(run);
    let views_all: Vec<VideoViews> = series.iter().map(|s| video_views(s, run)).collect();
    // Measured only for a channel with a change to judge.
    let profile = std::cell::OnceCell::new();
    let Some(first) = series.first() else { return Ok(()) };
    let by_id: BTreeMap<VideoId, (&VideoSeries, &VideoViews)> =
        series.iter().zip(&views_all).map(|(s, v)| (s.video.id.clone(), (s, v))).collect();
    for change in sim.changes(from, to, Some(first.video.channel_id.as_str()))? {
        if change.source != ChangeSource::Creator || change.at >= to {
            continue;
        }
        let Some(&(s, views)) = by_id.get(&change.video_id) else { continue };
        if s.views.first().is_none_or(|r| r.measured_at >= change.at) {
            continue;
        }
        let kind = if change.kind == VariantKind::Thumbnail { "thumbnail" } else { "title" };
        let profile = profile.get_or_init(|| channel_profile(&views_all, run));
        let verdict = OurVerdict::of(config, s, views, profile.as_ref(), series, &owner_reach(sim, s, run)?, run);
        let quiet = quiet_day_after(views, change.at);
        let references = References::measure(sim, &config.change, s, change.at, run)?;
        let disturbed = disturbances_around(sim, &config.change, &change.video_id, change.at, run)?;
        candidates.insert(
            (change.video_id.to_string(), kind),
            ChangeCandidate {
                lift: change.views_lift - 1.0,
                judgement: verdict.judgement,
                estimate: verdict.estimate,
                with_reach: verdict.with_reach,
                why: verdict.why,
                is_short: s.video.is_short,
                age_hours: hours_between(s.video.published_at, change.at),
                quiet,
                naive: naive_flags(s, run, &all),
                references,
                disturbed,
            },
        );
    }
    Ok(())
}

/// A day's reach report comes about a day after the Pacific day ends.
const REACH_REPORT_AFTER_HOURS: i64 = 24;

/// The video's reach days as its owner's reporting job has them at `run`: the simulator's (what
/// its Reporting API serves) from publish to the last day whose report has come.
fn owner_reach(sim: &Simulator, s: &VideoSeries, run: DateTime<Utc>) -> anyhow::Result<Vec<ReachDayAt>> {
    let at = |d: i64| DateTime::from_timestamp(tubewatch_core::pacific::midnight(d), 0).unwrap_or(run);
    let first = tubewatch_core::pacific::day(s.video.published_at.timestamp());
    let last = tubewatch_core::pacific::day(run.timestamp());
    let mut days = Vec::new();
    for day in first..=last {
        let (start, end) = (at(day), at(day + 1));
        if end + Duration::hours(REACH_REPORT_AFTER_HOURS) > run {
            break;
        }
        if let Some(r) = sim.reach_day(&s.video.id, day)?.filter(|r| r.impressions > 0) {
            days.push(ReachDayAt { start, end, impressions: r.impressions as f64, ctr: r.ctr });
        }
    }
    Ok(days)
}

/// How our rule judged a change: the name the report counts it under, its estimate when judged,
/// and what it said (why it did not judge, or what decay it borrowed from the channel).
struct OurVerdict {
    judgement: &'static str,
    /// The estimated lift and its interval's lower end, when judged.
    estimate: Option<(f64, f64)>,
    why: String,
    /// The same estimate with the owner's reach days added.
    with_reach: Option<(f64, f64)>,
}

impl OurVerdict {
    fn of(
        config: &OutliersConfig,
        s: &VideoSeries,
        views: &VideoViews,
        profile: Option<&HourProfile>,
        series: &[VideoSeries],
        reach: &[ReachDayAt],
        run: DateTime<Utc>,
    ) -> Self {
        let judged = judge_video_change(config, s, views, profile, series, &[], run);
        let estimate_of = |judged: &ChangeJudgement| match judged {
            ChangeJudgement::Judged(l) => Some((l.lift, l.ci_low)),
            _ => None,
        };
        let estimate = estimate_of(&judged);
        let events = change_events(s, &config.change);
        let with_reach = estimate_of(&add_owner_reach(judged.clone(), reach, &events, &config.change));
        let why = match &judged {
            ChangeJudgement::Skipped(reason) => reason.explanation(),
            ChangeJudgement::Judged(_) => {
                let decay = tubewatch_worker::outliers_job::channel_decay(config, s, series, profile, run);
                match (decay.template, decay.speeds) {
                    (Some(t), _) => format!("shape of {} videos, {} hours: {:?}", t.videos, t.hours, t.values),
                    (None, Some(p)) => format!("published decay, speeds from {} videos", p.videos),
                    (None, None) => "published decay, equal speeds".to_owned(),
                }
            }
            ChangeJudgement::NoChange => String::new(),
        };
        Self { judgement: judgement_name(&judged), estimate, why, with_reach }
    }
}

/// The name the report counts a judgement under.
fn judgement_name(judged: &ChangeJudgement) -> &'static str {
    match judged {
        ChangeJudgement::Judged(_) => "judged",
        // The tracker recorded no change in the window: a detection miss, not a judgement.
        ChangeJudgement::NoChange => "change_not_detected",
        ChangeJudgement::Skipped(SkipReason::SeveralChanges { .. }) => "several_changes",
        ChangeJudgement::Skipped(SkipReason::NotEnoughDataBefore { .. }) => "too_few_hours_before",
        ChangeJudgement::Skipped(SkipReason::NotEnoughDataAfter { .. }) => "too_few_hours_after",
        ChangeJudgement::Skipped(SkipReason::NoTrend { .. }) => "no_trend",
        ChangeJudgement::Skipped(SkipReason::NoChannelDecay) => "no_channel_decay",
    }
}

/// Whether the video gained fewer than [`QUIET_VIEWS_PER_HOUR`] views an hour over its
/// measurements in the day after `at` (quiet too when there are fewer than two of them).
fn quiet_day_after(views: &VideoViews, at: DateTime<Utc>) -> bool {
    let day_after = views.points.iter().filter(|p| p.at >= at && p.at <= at + Duration::days(1));
    let (first, last) = (day_after.clone().min_by_key(|p| p.at), day_after.max_by_key(|p| p.at));
    match (first, last) {
        (Some(a), Some(b)) if b.at > a.at => {
            ((b.views - a.views) as f64) < QUIET_VIEWS_PER_HOUR * hours_between(a.at, b.at)
        }
        _ => true,
    }
}

/// The simulator's noise jumps of at least [`DISTURBING_JUMP`] and counter freezes from the
/// rule's earliest hour before the change at `at` to its last after it (or the run), described.
fn disturbances_around(
    sim: &Simulator,
    config: &ChangeOutlierConfig,
    video_id: &VideoId,
    at: DateTime<Utc>,
    run: DateTime<Utc>,
) -> anyhow::Result<String> {
    let span = |h: f64| Duration::seconds((h * 3600.0) as i64);
    let around =
        sim.disturbances(video_id, at - span(config.max_hours_before), (at + span(config.hours_after)).min(run))?;
    Ok(around
        .jumps
        .iter()
        .filter(|j| j.log_size.abs() >= DISTURBING_JUMP)
        .map(|j| format!("jump {:+.2} for {} h at {:+.0} h", j.log_size, j.hours, hours_between(at, j.at)))
        .chain(
            around.freezes.iter().map(|(a, b)| {
                format!("counter frozen {:+.0} h to {:+.0} h", hours_between(at, *a), hours_between(at, *b))
            }),
        )
        .collect::<Vec<_>>()
        .join(", "))
}

/// The references a change is judged against, each an estimated lift and the lower end of its
/// interval at the rule's confidence (`None` when a side has no views).
#[derive(Debug, Default)]
struct References {
    /// Knowing the video's trajectory, its rhythm and its noise process (the correlated
    /// hour-to-hour noise), on our rule's hours and on every hour the run has: the best possible.
    known: [Option<(f64, f64)>; 2],
    /// The same on our hours, with the hours taken as independent (the earlier reference, whose
    /// intervals are too narrow: kept to show what the correlation does).
    known_independent: Option<(f64, f64)>,
    /// On our hours, knowing all of that but the video's own decay speed: its τ and θ drawn from
    /// the world's spread of them, averaged over by their evidence. The best a rule can do that
    /// learns the shape of decay from other videos, as ours must.
    shape_unknown: Option<(f64, f64)>,
}

/// One increment of the measurements a run has: its views, whether it is after the change, and
/// its UTC-hour pieces (start and end in Unix seconds, the noise-free views of each).
struct Increment {
    views: f64,
    after: bool,
    pieces: Vec<(i64, i64, f64)>,
}

/// A power-law decay `F(age) = 1 − (1 + age/τ)^−θ` (the world's), as the share of a video's
/// views between two instants (Unix seconds) after publish at `published`.
fn decay_share(tau_hours: f64, theta: f64, published: i64, from: i64, to: i64) -> f64 {
    let f = |x: i64| 1.0 - (1.0 + (x - published).max(0) as f64 / (tau_hours * 3600.0)).powf(-theta);
    (f(to) - f(from)).max(0.0)
}

impl References {
    /// What rules that know more than ours find for the change at `changed_at` from the
    /// measurements a run at `run` has. Each fits the video's level on each side of the change
    /// (back to the previous change and on to the next one or the run) by generalised least
    /// squares with the noise's own covariance: a lognormal AR(1) factor on each hour (σ, the
    /// video's ρ) times the expected views, plus Poisson counts. Only increments in the first two
    /// weeks after publish count (hourly noise); "our hours" are those the rule looks at (hourly
    /// ones from an hour after publish, up to `max_hours_before` before the change and
    /// `hours_after` after it).
    fn measure(
        sim: &Simulator,
        config: &ChangeOutlierConfig,
        s: &VideoSeries,
        changed_at: DateTime<Utc>,
        run: DateTime<Utc>,
    ) -> anyhow::Result<Self> {
        let id = &s.video.id;
        let truth = sim.video_at(id, run)?;
        let changes: Vec<DateTime<Utc>> = truth.changes.iter().map(|c| c.at).collect();
        let hours = |h: f64| Duration::seconds((h * 3600.0) as i64);
        let published = s.video.published_at;
        let all_from = changes.iter().filter(|&&t| t < changed_at).max().copied().unwrap_or(published);
        let all_to = changes.iter().filter(|&&t| t > changed_at).min().copied().unwrap_or(run).min(run);
        let ours_from = all_from.max(published + Duration::hours(1)).max(changed_at - hours(config.max_hours_before));
        let ours_to = all_to.min(changed_at + hours(config.hours_after));
        let increments = |from: DateTime<Utc>, to: DateTime<Utc>, rule_hours: bool| -> anyhow::Result<Vec<Increment>> {
            let mut out = Vec::new();
            for pair in s.views.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                let too_long = rule_hours && b.measured_at - a.measured_at > Duration::hours(2);
                if a.measured_at < from
                    || b.measured_at > to
                    || b.measured_at > published + Duration::days(14)
                    || too_long
                    || (a.measured_at < changed_at && b.measured_at > changed_at)
                {
                    continue;
                }
                let (start, end) = (a.measured_at.timestamp(), b.measured_at.timestamp());
                let views = sim.noise_free_views(id, a.measured_at, b.measured_at)?;
                let mut pieces = Vec::with_capacity(views.len());
                let mut at = start.max(published.timestamp());
                for v in views {
                    let piece_end = ((at.div_euclid(3600) + 1) * 3600).min(end);
                    pieces.push((at, piece_end, v));
                    at = piece_end;
                }
                if pieces.iter().any(|p| p.2 > 0.0) {
                    out.push(Increment {
                        views: (b.views - a.views) as f64,
                        after: a.measured_at >= changed_at,
                        pieces,
                    });
                }
            }
            Ok(out)
        };
        let z = tubewatch_core::normal_quantile(1.0 - (1.0 - config.confidence) / 2.0);
        let flag = |fit: Option<(f64, f64)>| fit.map(|(step, sd)| (step.exp() - 1.0, (step - z * sd).exp() - 1.0));
        let known_shape = [(truth.tau_hours, truth.theta)];
        let ours = increments(ours_from, ours_to, true)?;
        let all = increments(all_from, all_to, false)?;
        let p = published.timestamp();
        let (tau_median, theta_range) =
            (if truth.is_short { DECAY_TAU_HOURS.1 } else { DECAY_TAU_HOURS.0 }, DECAY_THETA);
        // Equal-probability strata of the world's spread of τ (log-normal) and θ (uniform).
        let (taus, thetas) = (7, 5);
        let mut shapes = Vec::new();
        for i in 0..taus {
            let q = tubewatch_core::normal_quantile((f64::from(i) + 0.5) / f64::from(taus));
            for j in 0..thetas {
                let theta = theta_range.0 + (theta_range.1 - theta_range.0) * (f64::from(j) + 0.5) / f64::from(thetas);
                shapes.push((tau_median * (DECAY_TAU_SIGMA * q).exp(), theta));
            }
        }
        let step = |incs: &[Increment], shapes: &[(f64, f64)], rho: f64| {
            step_by_evidence(incs, shapes, (truth.tau_hours, truth.theta), p, rho)
        };
        Ok(Self {
            known: [flag(step(&ours, &known_shape, truth.noise_rho)), flag(step(&all, &known_shape, truth.noise_rho))],
            known_independent: flag(step(&ours, &known_shape, 0.0)),
            shape_unknown: flag(step(&ours, &shapes, truth.noise_rho)),
        })
    }
}

/// The change's step in log views and its deviation: for each candidate decay `(τ, θ)`, equally
/// likely beforehand (strata of equal probability), the increments' expected views are the noise-free ones rescaled from the video's
/// true decay `truth` to the candidate; a level before and one after are fitted by GLS with the
/// noise's covariance at the fitted means (three rounds); the candidates are averaged by their
/// evidence (a mixture: its mean and deviation). `rho` 0 takes the hours as independent.
fn step_by_evidence(
    incs: &[Increment],
    shapes: &[(f64, f64)],
    truth: (f64, f64),
    published: i64,
    rho: f64,
) -> Option<(f64, f64)> {
    if !incs.iter().any(|i| i.after) || incs.iter().all(|i| i.after) {
        return None;
    }
    let sigma2 = HOURLY_NOISE_SIGMA * HOURLY_NOISE_SIGMA;
    let n = incs.len();
    let mut fits: Vec<(f64, f64, f64)> = Vec::new();
    for &(tau, theta) in shapes {
        // Each piece's expected views under this shape, before the level.
        let expected: Vec<Vec<(i64, f64)>> = incs
            .iter()
            .map(|inc| {
                inc.pieces
                    .iter()
                    .map(|&(a, b, v)| {
                        let true_share = decay_share(truth.0, truth.1, published, a, b);
                        let share = decay_share(tau, theta, published, a, b);
                        (a.div_euclid(3600), if true_share > 0.0 { v * share / true_share } else { 0.0 })
                    })
                    .collect()
            })
            .collect();
        let totals: Vec<f64> = expected.iter().map(|e| e.iter().map(|p| p.1).sum()).collect();
        let rows: Vec<Vec<f64>> =
            incs.iter().zip(&totals).map(|(inc, &e)| if inc.after { vec![0.0, e] } else { vec![e, 0.0] }).collect();
        let y: Vec<f64> = incs.iter().map(|i| i.views).collect();
        let side_ratio = |after: bool| {
            let (y, e) = incs
                .iter()
                .zip(&totals)
                .filter(|(i, _)| i.after == after)
                .fold((0.0, 0.0), |acc, (i, e)| (acc.0 + i.views, acc.1 + e));
            (e > 0.0).then(|| y / e)
        };
        let (Some(mut before), Some(mut after)) = (side_ratio(false), side_ratio(true)) else { continue };
        let mut fit = None;
        for _ in 0..3 {
            let level = |k: usize| if incs[k].after { after } else { before }.max(1e-9);
            let mut v = vec![0.0; n * n];
            for k in 0..n {
                for l in k..n {
                    let mut c = 0.0;
                    for &(hk, ek) in &expected[k] {
                        for &(hl, el) in &expected[l] {
                            let d = (hk - hl).unsigned_abs();
                            let corr = if d == 0 { 1.0 } else { rho.powi(d.min(64) as i32) };
                            c += ek * el * ((sigma2 * corr).exp() - 1.0);
                        }
                    }
                    c *= level(k) * level(l);
                    if k == l {
                        c += level(k) * totals[k] + 1.0 / 6.0;
                    }
                    v[k * n + l] = c;
                    v[l * n + k] = c;
                }
            }
            let Some(f) = tubewatch_core::gls(&rows, &y, &v) else { break };
            (before, after) = (f.coef[0], f.coef[1]);
            fit = Some(f);
        }
        let Some(f) = fit else { continue };
        if before <= 0.0 || after <= 0.0 {
            continue;
        }
        let var = f.cov[3] / (after * after) + f.cov[0] / (before * before) - 2.0 * f.cov[1] / (after * before);
        fits.push(((after / before).ln(), var.max(0.0), f.log_evidence));
    }
    let top = fits.iter().map(|f| f.2).fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = fits.iter().map(|f| (f.2 - top).exp()).collect();
    let total: f64 = weights.iter().sum();
    if fits.is_empty() || total <= 0.0 {
        return None;
    }
    let mean = fits.iter().zip(&weights).map(|(f, w)| w * f.0).sum::<f64>() / total;
    let second = fits.iter().zip(&weights).map(|(f, w)| w * (f.1 + f.0 * f.0)).sum::<f64>() / total;
    Some((mean, (second - mean * mean).max(0.0).sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_is_the_best_balanced_threshold() {
        // Levels 9 (true), 7 (false), 6 (true), 5 (true), 2 (false): flagging ≥ 5 gives 3 of 4
        // right and all 3 true ones; ≥ 9 gives precision 1 but recall 1/3.
        let c = Ceiling::best(vec![(2.0, false), (6.0, true), (9.0, true), (7.0, false), (5.0, true)]);
        let c = c.expect("a truth");
        assert_eq!(c.level, 5.0);
        assert_eq!((c.precision, c.recall), (0.75, 1.0));
        assert!(Ceiling::best(vec![(3.0, false)]).is_none());
    }
}
