//! `tubewatch eval outliers`: tracks simulated channels for some weeks with the real pipeline
//! (in process, over the simulator's HTTP, on a stepped manual clock), lets the weekly outlier
//! runs happen, and compares their findings with the simulator's truth, side by side with the
//! naive baseline "views ÷ channel median of all videos ≥ 2×" on the same data.
//!
//! Truth. Channel outliers, among the videos a weekly run judged (those reaching the judging age
//! during the run), two ways: the simulator's breakout videos (5–20× the views the video would
//! otherwise get; a breakout on a weak video can end up below a strong plain one, so no rule
//! separates them fully), and the videos whose true expected views are at least 5× the channel's
//! typical video (what "far above this channel's typical" means, before noise). Thumbnail and
//! title outliers: creator changes, in a run's change window, on videos tracked before the
//! change, whose effect on the view rate (the simulator's `views_lift`: the new ÷ old multiplier
//! acts on click-through rate, so on the impression-driven share of views) is at least 1 + the
//! lift threshold. The naive baseline
//! flags the same candidates when, at the run, the video's views ÷ the median current views of
//! all the channel's tracked videos is ≥ 2.
//!
//! References. For channel outliers, the best threshold on each candidate's true level; for
//! thumbnail/title outliers, what a rule knowing each changed video's noise-free trajectory could
//! flag from the same measurements. Neither is reachable by a rule that sees only views; both say
//! how much of a miss no rule could avoid.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use serde::Serialize;
use tubewatch_core::outliers::{
    ChangeJudgement, ChangeOutlierConfig, ChannelBandSnapshot, ChannelJudgement, SkipReason, VideoViews,
    judge_channel_outlier, naive_outlier_score,
};
use tubewatch_core::{Clock, Slot, VideoId};
use tubewatch_sim::{ChangeSource, HOURLY_NOISE_SIGMA, SimConfig, Simulator, VariantKind};
use tubewatch_store::{OutlierKind, Store, StoreOptions, VideoSeries};
use tubewatch_worker::outliers_job::{channel_profile, judge_video_change, video_views};
use tubewatch_worker::{Blobs, Mailer, Metrics, OutliersConfig, Pipeline, PipelineConfig, Tracker};
use tubewatch_youtube::{RetryPolicy, YoutubeClient, YoutubeConfig};

use crate::settings::Settings;

#[derive(Debug, Args)]
pub struct OutliersArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Channels tracked (the first N of the simulated world).
    #[arg(long, default_value_t = 100)]
    pub channels: u32,
    /// Weeks of tracking (one weekly run per week).
    #[arg(long, default_value_t = 8)]
    pub weeks: u32,
    /// Override the channel-outlier margin of the settings.
    #[arg(long)]
    pub margin: Option<f64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The second truth of channel outliers: a video whose true expected views (the simulator's,
/// before hourly noise) are at least this many times the channel's typical video of its kind.
const TRUE_LEVEL: f64 = 5.0;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Score {
    pub flagged: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

impl Score {
    fn of(flagged: &BTreeSet<String>, truth: &BTreeSet<String>) -> Self {
        let tp = flagged.intersection(truth).count();
        let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
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
}

#[derive(Debug, Serialize)]
pub struct OutliersReport {
    pub seed: u64,
    pub channels: u32,
    pub weeks: u32,
    pub margin: f64,
    pub videos_tracked: usize,
    pub wall_seconds: f64,
    pub channel_outliers: Comparison,
    /// The same findings against the second truth: true expected views ≥ 5× the channel's
    /// typical video.
    pub channel_outliers_5x_typical: Comparison,
    /// The best any rule could do against the breakout truth if it saw each candidate's true
    /// level (expected views ÷ the channel's typical, free of noise): the threshold on that level
    /// with the highest min(precision, recall). Breakouts on weak videos overlap strong plain
    /// videos, so this is below 1.
    pub channel_breakout_ceiling: Option<Ceiling>,
    /// Channel candidates the rule could not judge (too few of the channel's videos at that
    /// age), and the true outliers among them (counted as missed).
    pub channel_not_judged: usize,
    pub channel_truth_not_judged: usize,
    pub change_outliers: Comparison,
    /// What a rule that knew each changed video's trajectory and rhythm exactly (the simulator's
    /// noise-free views) could flag from the same measurements, at the rule's confidence and
    /// minimum lift: the reference for the thumbnail/title figures. With the hours our rule looks
    /// at (up to 72 before the change and 72 after, hourly measurements), and with every
    /// measurement the run has (from publish or the previous change to the next change or the
    /// run, over the first two weeks).
    pub change_known_trajectory_same_hours: Score,
    pub change_known_trajectory_all_hours: Score,
    pub change_recall_by_true_lift: Vec<LiftBucket>,
    /// True thumbnail/title outliers the rules do not judge, by reason (several changes in the
    /// week, too few hourly measurements before or after the change, the change not detected by
    /// tracking), counted as missed.
    pub change_truth_not_judged: BTreeMap<&'static str, usize>,
    /// The true ones the rules judge, and among them those on quiet videos.
    pub change_truth_judged: Found,
    pub change_truth_judged_quiet: Found,
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

/// How many true outliers, and how many of them we found.
#[derive(Debug, Serialize)]
pub struct Found {
    pub truth: usize,
    pub found: usize,
}

/// A creator change a run judges: its true lift, whether the rules judge it (or why not), and
/// whether its video is quiet (fewer than `QUIET_VIEWS_PER_HOUR` views an hour in the day after).
#[derive(Debug)]
struct ChangeCandidate {
    lift: f64,
    judgement: &'static str,
    quiet: bool,
    /// Flagged by the rule that knows the trajectory (`known_trajectory_flags`), on our rule's
    /// hours and on all of them.
    known_trajectory: [bool; 2],
}

const QUIET_VIEWS_PER_HOUR: f64 = 5.0;

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
    let (mut sim_config, clock) = SimConfig::for_tests(args.seed, args.channels.max(1));
    sim_config.page_bytes = 8 * 1024;
    let sim = Simulator::start(sim_config, "127.0.0.1:0".parse()?).await?;
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> =
        tubewatch_store::connect(&format!("sqlite://{}", dir.path().join("tw.db").display()), &StoreOptions::default())
            .await?;
    store.migrate().await?;
    let mut yt = YoutubeConfig::single_base(&sim.base_url)?;
    yt.retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    let youtube = YoutubeClient::new(yt)?;
    let mut outliers = settings.outliers_config();
    if let Some(margin) = args.margin {
        outliers.channel.margin = margin;
    }
    let config = PipelineConfig {
        policy: settings.schedule_policy()?,
        outliers: outliers.clone(),
        mailer: Mailer::outbox("eval@tubewatch.test", &dir.path().join("outbox"))?,
        ..PipelineConfig::default()
    };
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let pipeline = Pipeline {
        store: store.clone(),
        youtube: youtube.clone(),
        blobs: Blobs::local(&dir.path().join("blobs"))?,
        clock: clock_dyn.clone(),
        metrics: Arc::new(Metrics::default()),
        config: config.clone(),
    };
    let tracker = Tracker { store: store.clone(), youtube, clock: clock_dyn, config };
    let start = clock.now();
    let channels: Vec<_> = sim.sim.channels().iter().take(args.channels as usize).map(|c| c.id.clone()).collect();
    for id in &channels {
        tracker.track_channel(None, id.as_str()).await.with_context(|| format!("tracking {id}"))?;
    }
    // Every weekly run in the period, and the series as each run saw them (for the baseline).
    let end =
        start + Duration::weeks(i64::from(args.weeks)) + Duration::hours(outliers.hour.into()) + Duration::hours(1);
    let mut runs: Vec<DateTime<Utc>> = Vec::new();
    let mut next_run = outliers.next_run_after(start - Duration::seconds(1));
    let mut naive_channel = BTreeSet::new();
    let mut naive_change = BTreeSet::new();
    let mut channel_candidates = BTreeSet::new();
    let mut not_judged = BTreeSet::new();
    let mut change_candidates: BTreeMap<(String, &'static str), ChangeCandidate> = BTreeMap::new();
    while clock.now() < end {
        let next_hour = Slot::hour_of(clock.now()).start() + Duration::hours(1);
        for at in [next_hour - Duration::minutes(5), next_hour + Duration::seconds(30)] {
            if at > clock.now() {
                clock.set(at);
            }
            if clock.now() >= next_run {
                // The baseline sees the same data the run does, just before it.
                for id in &channels {
                    let series = store.channel_series(id, next_run - Duration::days(120)).await?;
                    channel_candidates_for_run(
                        &outliers,
                        &series,
                        next_run,
                        &mut channel_candidates,
                        &mut not_judged,
                        &mut naive_channel,
                    )?;
                    changes_for_run(&sim.sim, &outliers, &series, next_run, &mut change_candidates, &mut naive_change)?;
                }
                runs.push(next_run);
                next_run += Duration::weeks(1);
            }
            pipeline.drain("eval", StdDuration::from_secs(60), 32).await?;
        }
    }
    // Our findings over all runs.
    let mut ours_channel = BTreeSet::new();
    let mut ours_change = BTreeSet::new();
    for run in &runs {
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
    // Two truths for channel outliers: the simulator's breakouts, and the videos whose true
    // expected views are at least 5× the channel's typical video.
    let mut truth_channel = BTreeSet::new();
    let mut truth_level = BTreeSet::new();
    let mut true_levels = Vec::new();
    for id in &channel_candidates {
        let Ok(video) = sim.sim.video(id) else { continue };
        if video.breakout.is_some() {
            truth_channel.insert(id.clone());
        }
        let channel = sim.sim.channels().iter().find(|c| c.id == video.channel_id);
        let typical = channel.map(|c| if video.is_short { c.typical_short_views } else { c.typical_long_views });
        if let Some(typical) = typical {
            let level = video.expected_total_views / typical;
            if level >= TRUE_LEVEL {
                truth_level.insert(id.clone());
            }
            true_levels.push((level, video.breakout.is_some()));
        }
    }
    // True thumbnail/title outliers (true lift ≥ the threshold) that also meet `also`, and how
    // many of them we found.
    let min_lift = outliers.change.min_lift;
    let true_changes = |also: &dyn Fn(&ChangeCandidate) -> bool| -> BTreeSet<String> {
        change_candidates
            .iter()
            .filter(|(_, c)| c.lift >= min_lift && also(c))
            .map(|((id, kind), _)| format!("{id}/{kind}"))
            .collect()
    };
    let found =
        |truth: &BTreeSet<String>| Found { truth: truth.len(), found: truth.intersection(&ours_change).count() };
    let truth_change = true_changes(&|_| true);
    // Recall by true lift: how much of the miss is small lifts.
    let change_recall_by_true_lift = [(min_lift, 0.35), (0.35, 0.5), (0.5, f64::INFINITY)]
        .into_iter()
        .map(|(from, to)| LiftBucket {
            from,
            to: to.is_finite().then_some(to),
            found: found(&true_changes(&|c| (from..to).contains(&c.lift))),
        })
        .collect();
    // How much of the miss is changes the rules do not judge, and quiet videos.
    let mut change_truth_not_judged = BTreeMap::new();
    for c in change_candidates.values().filter(|c| c.lift >= min_lift && c.judgement != "judged") {
        *change_truth_not_judged.entry(c.judgement).or_insert(0) += 1;
    }
    let known_trajectory_score = |which: usize| {
        let flagged = change_candidates
            .iter()
            .filter(|(_, c)| c.known_trajectory[which])
            .map(|((id, kind), _)| format!("{id}/{kind}"))
            .collect();
        Score::of(&flagged, &truth_change)
    };
    let change_truth_judged = found(&true_changes(&|c| c.judgement == "judged"));
    let change_truth_judged_quiet = found(&true_changes(&|c| c.judgement == "judged" && c.quiet));
    // Findings outside the candidates cannot happen (same rule); intersect to be safe.
    let ours_channel: BTreeSet<String> = ours_channel.intersection(&channel_candidates).cloned().collect();
    let mut videos_tracked = 0;
    for id in &channels {
        videos_tracked += store.channel_videos(id).await?.len();
    }
    let report = OutliersReport {
        seed: args.seed,
        channels: args.channels,
        weeks: args.weeks,
        margin: outliers.channel.margin,
        videos_tracked,
        wall_seconds: wall.elapsed().as_secs_f64(),
        channel_outliers: Comparison {
            candidates: channel_candidates.len(),
            truth: truth_channel.len(),
            ours: Score::of(&ours_channel, &truth_channel),
            naive: Score::of(&naive_channel, &truth_channel),
        },
        channel_outliers_5x_typical: Comparison {
            candidates: channel_candidates.len(),
            truth: truth_level.len(),
            ours: Score::of(&ours_channel, &truth_level),
            naive: Score::of(&naive_channel, &truth_level),
        },
        channel_breakout_ceiling: Ceiling::best(true_levels),
        channel_not_judged: not_judged.len(),
        channel_truth_not_judged: not_judged.intersection(&truth_channel).count(),
        change_outliers: Comparison {
            candidates: change_candidates.len(),
            truth: truth_change.len(),
            ours: Score::of(&ours_change, &truth_change),
            naive: Score::of(&naive_change, &truth_change),
        },
        change_known_trajectory_same_hours: known_trajectory_score(0),
        change_known_trajectory_all_hours: known_trajectory_score(1),
        change_recall_by_true_lift,
        change_truth_not_judged,
        change_truth_judged,
        change_truth_judged_quiet,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let show = |name: &str, c: &Comparison| {
            let f = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
            println!(
                "{name}: {} candidates, {} true | ours precision {} recall {} ({} flagged) | naive precision {} recall {} ({} flagged)",
                c.candidates,
                c.truth,
                f(c.ours.precision),
                f(c.ours.recall),
                c.ours.flagged,
                f(c.naive.precision),
                f(c.naive.recall),
                c.naive.flagged
            );
        };
        println!(
            "seed {}, {} channels, {} weeks, {} videos tracked ({:.0} s)",
            report.seed, report.channels, report.weeks, report.videos_tracked, report.wall_seconds
        );
        show("channel outliers (truth: breakouts)", &report.channel_outliers);
        if let Some(c) = &report.channel_breakout_ceiling {
            println!(
                "  best any rule could do seeing true levels: precision {:.3} recall {:.3} (level ≥ {:.1}× typical)",
                c.precision, c.recall, c.level
            );
        }
        show("channel outliers (truth: ≥ 5× typical)", &report.channel_outliers_5x_typical);
        println!(
            "  not judged (too little history): {} candidates, {} of them true",
            report.channel_not_judged, report.channel_truth_not_judged
        );
        show("thumbnail/title outliers", &report.change_outliers);
        for (hours, k) in [
            ("our rule's hours", &report.change_known_trajectory_same_hours),
            ("all hours", &report.change_known_trajectory_all_hours),
        ] {
            println!(
                "  a rule knowing each video's trajectory, {hours}: precision {} recall {} ({} flagged)",
                k.precision.map_or("-".to_owned(), |v| format!("{v:.3}")),
                k.recall.map_or("-".to_owned(), |v| format!("{v:.3}")),
                k.flagged
            );
        }
        for b in &report.change_recall_by_true_lift {
            let to = b.to.map_or("∞".to_owned(), |to| format!("{:.0} %", to * 100.0));
            println!("  true lift {:.0} %–{to}: found {} of {}", b.from * 100.0, b.found.found, b.found.truth);
        }
        let skipped: Vec<String> = report.change_truth_not_judged.iter().map(|(why, n)| format!("{why} {n}")).collect();
        println!(
            "  true ones not judged by the rules: {}",
            if skipped.is_empty() { "none".into() } else { skipped.join(", ") }
        );
        let (j, q) = (&report.change_truth_judged, &report.change_truth_judged_quiet);
        println!(
            "  true ones judged: found {} of {}; on quiet videos (< {QUIET_VIEWS_PER_HOUR} views an hour after the change): found {} of {}",
            j.found, j.truth, q.found, q.truth
        );
    }
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn latest_views(s: &VideoSeries, until: DateTime<Utc>) -> Option<i64> {
    s.views.iter().filter(|r| r.measured_at <= until).map(|r| r.views).max()
}

fn channel_views(series: &[VideoSeries], run: DateTime<Utc>) -> Vec<i64> {
    series.iter().filter_map(|s| latest_views(s, run)).collect()
}

/// The videos a run judges against their channel, those the rule cannot judge (its band computed
/// in one go, which equals the job's incremental one), and the naive verdict on each.
fn channel_candidates_for_run(
    config: &OutliersConfig,
    series: &[VideoSeries],
    run: DateTime<Utc>,
    candidates: &mut BTreeSet<String>,
    not_judged: &mut BTreeSet<String>,
    naive: &mut BTreeSet<String>,
) -> anyhow::Result<()> {
    let all = channel_views(series, run);
    let videos: Vec<VideoViews> = series.iter().map(|s| video_views(s, run)).collect();
    let band = ChannelBandSnapshot::from_history(config.band, &videos)?;
    let judge = Duration::hours(config.judge_at_hours);
    for (s, views) in series.iter().zip(&videos) {
        let age = run - s.video.published_at;
        // Only videos measured from their first hours can be judged at an age.
        let first = s.views.first().map(|r| r.measured_at - s.video.published_at);
        if age < judge || age >= judge + Duration::weeks(1) || first.is_none_or(|f| f > Duration::hours(2)) {
            continue;
        }
        let id = s.video.id.to_string();
        candidates.insert(id.clone());
        if !matches!(judge_channel_outlier(&band, views, &config.channel), ChannelJudgement::Judged(_)) {
            not_judged.insert(id.clone());
        }
        if let Some(views) = latest_views(s, run)
            && naive_outlier_score(views, &all).is_some_and(|x| x >= tubewatch_core::outliers::NAIVE_OUTLIER_THRESHOLD)
        {
            naive.insert(id);
        }
    }
    Ok(())
}

/// The creator changes a run judges (tracked before the change, in its window), the true lift of
/// each (its effect on the view rate − 1), and the naive verdict on the changed video.
fn changes_for_run(
    sim: &Simulator,
    config: &OutliersConfig,
    series: &[VideoSeries],
    run: DateTime<Utc>,
    candidates: &mut BTreeMap<(String, &'static str), ChangeCandidate>,
    naive: &mut BTreeSet<String>,
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
        let lift = change.views_lift - 1.0;
        let id = change.video_id.to_string();
        let profile = profile.get_or_init(|| channel_profile(&views_all, run));
        let judgement = match judge_video_change(config, s, views, profile.as_ref(), run) {
            ChangeJudgement::Judged(_) => "judged",
            // The tracker recorded no change in the window: a detection miss, not a judgement.
            ChangeJudgement::NoChange => "change_not_detected",
            ChangeJudgement::Skipped(SkipReason::SeveralChanges { .. }) => "several_changes",
            ChangeJudgement::Skipped(SkipReason::NotEnoughDataBefore { .. }) => "too_few_hours_before",
            ChangeJudgement::Skipped(SkipReason::NotEnoughDataAfter { .. }) => "too_few_hours_after",
            ChangeJudgement::Skipped(SkipReason::NoTrend { .. }) => "no_trend",
        };
        let day_after = views.points.iter().filter(|p| p.at >= change.at && p.at <= change.at + Duration::days(1));
        let (first, last) = (day_after.clone().min_by_key(|p| p.at), day_after.max_by_key(|p| p.at));
        let quiet = match (first, last) {
            (Some(a), Some(b)) if b.at > a.at => {
                ((b.views - a.views) as f64) < QUIET_VIEWS_PER_HOUR * (b.at - a.at).num_seconds() as f64 / 3600.0
            }
            _ => true,
        };
        let known_trajectory = [
            known_trajectory_flags(sim, &config.change, s, change.at, run, true)?,
            known_trajectory_flags(sim, &config.change, s, change.at, run, false)?,
        ];
        candidates.insert((id.clone(), kind), ChangeCandidate { lift, judgement, quiet, known_trajectory });
        if let Some(views) = latest_views(s, run)
            && naive_outlier_score(views, &all).is_some_and(|x| x >= tubewatch_core::outliers::NAIVE_OUTLIER_THRESHOLD)
        {
            naive.insert(format!("{id}/{kind}"));
        }
    }
    Ok(())
}

/// Whether a rule that knew the video's trajectory and rhythm exactly could flag the change at
/// `changed_at` from the measurements a run at `run` has. The video's level (views ÷ the
/// simulator's noise-free views) is fitted on each side of the change, back to the previous change
/// and on to the next one or the run, by quasi-likelihood with the noise's own variance (κμ² with
/// κ = e^(σ²) − 1 summed over the UTC hours an increment spans, plus 1/6 for whole views; the
/// increments taken as independent); the change is flagged as our rule flags: lift ≥ `min_lift`
/// and its interval at the rule's confidence above 0. Only increments in the first two weeks
/// after publish count (hourly noise); with `rule_hours`, only those our rule looks at (hourly
/// ones from an hour after publish, up to `max_hours_before` before the change and `hours_after`
/// after it).
fn known_trajectory_flags(
    sim: &Simulator,
    config: &ChangeOutlierConfig,
    s: &VideoSeries,
    changed_at: DateTime<Utc>,
    run: DateTime<Utc>,
    rule_hours: bool,
) -> anyhow::Result<bool> {
    let kappa = (HOURLY_NOISE_SIGMA * HOURLY_NOISE_SIGMA).exp() - 1.0;
    let id = s.video.id.as_str();
    let changes: Vec<DateTime<Utc>> = sim.video_at(id, run)?.changes.iter().map(|c| c.at).collect();
    let hours = |h: f64| Duration::seconds((h * 3600.0) as i64);
    let published = s.video.published_at;
    let mut before_start = changes.iter().filter(|&&t| t < changed_at).max().copied().unwrap_or(published);
    let mut after_end = changes.iter().filter(|&&t| t > changed_at).min().copied().unwrap_or(run).min(run);
    if rule_hours {
        before_start =
            before_start.max(published + Duration::hours(1)).max(changed_at - hours(config.max_hours_before));
        after_end = after_end.min(changed_at + hours(config.hours_after));
    }
    // (views, noise-free views, Σ noise-free² over its hours) of each increment inside [from, to].
    let side = |from: DateTime<Utc>, to: DateTime<Utc>| -> anyhow::Result<Option<(f64, f64)>> {
        let mut increments = Vec::new();
        for pair in s.views.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let too_long = rule_hours && b.measured_at - a.measured_at > Duration::hours(2);
            if a.measured_at < from || b.measured_at > to || b.measured_at > published + Duration::days(14) || too_long
            {
                continue;
            }
            let pieces = sim.noise_free_views(id, a.measured_at, b.measured_at)?;
            let e: f64 = pieces.iter().sum();
            if e > 0.0 {
                increments.push(((b.views - a.views) as f64, e, pieces.iter().map(|p| p * p).sum::<f64>()));
            }
        }
        let (y, e): (f64, f64) = increments.iter().fold((0.0, 0.0), |acc, i| (acc.0 + i.0, acc.1 + i.1));
        if y <= 0.0 || e <= 0.0 {
            return Ok(None);
        }
        let mut level = y / e;
        let mut information = 0.0;
        for _ in 0..20 {
            let (mut num, mut den) = (0.0, 0.0);
            for (y, e, e2) in &increments {
                let var = kappa * level * level * e2 + 1.0 / 6.0;
                num += y * e / var;
                den += e * e / var;
            }
            level = num / den;
            information = den;
        }
        Ok((level > 0.0).then(|| (level.ln(), 1.0 / (level * level * information))))
    };
    let (Some((before, var_before)), Some((after, var_after))) =
        (side(before_start, changed_at)?, side(changed_at, after_end)?)
    else {
        return Ok(false);
    };
    let z = tubewatch_core::normal_quantile(1.0 - (1.0 - config.confidence) / 2.0);
    let step = after - before;
    Ok(step - z * (var_before + var_after).sqrt() > 0.0 && step.exp() - 1.0 >= config.min_lift)
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
