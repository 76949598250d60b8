//! The simulated world measured against published YouTube figures: each statistic of a sampled
//! world beside the published value it is calibrated to, its source and the tolerance it must
//! stay within (`tubewatch eval world`, and a test that fails when a default drifts).
//!
//! Sources (collected in the project's calibration notes):
//! - Pew Research Center, "A Week in the Life of Popular YouTube Channels" (2019): videos of
//!   channels with at least 250,000 subscribers; first-week views median 3,860, mean 58,358;
//!   64 % of first-week views on the day of posting; the top 10 % of videos took 79 % of views.
//! - Miotto, Kantz and Altmann, Phys. Rev. E 95 (2017), arXiv:1609.06399: heavy-tailed,
//!   correlated fluctuations of view counts (AR(1) in log space, ρ 0.5–0.7, σ about 0.3).
//! - Consumer traffic peaks at about twice its trough over the day (Arbor), with a weekday effect.
//! - Thumbnail tests (YouTube Test & Compare reports, testers' published splits): best ÷ worst
//!   1.05–1.35; variant multipliers on CTR with σ 0.10–0.15, about 5 % at ±40–60 %; CTR
//!   typically 2–10 %; impression-driven share of long-form views 60–85 %.
//! - YouTube Help: counts "update less frequently and might occasionally freeze above 300
//!   views"; downward corrections happen (YouTube.js #1125); Shorts show two counts, plays and
//!   engaged views (yt-dlp #13122).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::world::{Mutations, Stream, VariantKind, Video, World, WorldParams};

/// One calibrated statistic.
#[derive(Debug, Clone, Serialize)]
pub struct Statistic {
    pub name: &'static str,
    /// The published figure, in words.
    pub published: &'static str,
    pub source: &'static str,
    pub measured: f64,
    /// The tolerance: `measured` must lie in `[low, high]`.
    pub low: f64,
    pub high: f64,
    /// How many observations the measurement rests on.
    pub sample: usize,
    pub within: bool,
}

/// A sampled world's statistics.
#[derive(Debug, Clone, Serialize)]
pub struct WorldReport {
    pub seed: u64,
    pub channels: u32,
    pub statistics: Vec<Statistic>,
}

impl WorldReport {
    pub fn all_within(&self) -> bool {
        self.statistics.iter().all(|s| s.within)
    }
}

/// How big a sample `measure` draws.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub channels: u32,
    /// Busy long-form videos whose hourly views are measured for the noise statistics.
    pub busy_videos: usize,
    /// Quiet videos whose hourly counts are measured for the count noise.
    pub quiet_videos: usize,
    /// Videos whose public counter is followed for a week.
    pub counter_videos: usize,
}

impl Default for Sample {
    fn default() -> Self {
        Self { channels: 2_000, busy_videos: 40, quiet_videos: 40, counter_videos: 150 }
    }
}

struct Builder {
    statistics: Vec<Statistic>,
}

impl Builder {
    fn add(
        &mut self,
        name: &'static str,
        published: &'static str,
        source: &'static str,
        measured: f64,
        (low, high): (f64, f64),
        sample: usize,
    ) {
        let within = sample > 0 && measured.is_finite() && (low..=high).contains(&measured);
        self.statistics.push(Statistic { name, published, source, measured, low, high, sample, within });
    }
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn sd(values: &[f64]) -> f64 {
    let m = mean(values);
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len().max(2) - 1) as f64).sqrt()
}

/// Long-form videos of the world published in `[from, to]`, with their channel's subscribers.
fn long_videos(world: &World, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(u64, Video)> {
    let mut out = Vec::new();
    for channel in world.channels() {
        for video in world.videos_between(channel, from, to) {
            if video.key.stream == Stream::Long {
                out.push((channel.subscribers, video));
            }
        }
    }
    out
}

/// Samples a world with `params` and measures every calibrated statistic.
pub fn measure(params: WorldParams, sample: Sample) -> WorldReport {
    let seed = params.seed;
    let world = World::new(WorldParams { channels: sample.channels, ..params });
    let muts = Mutations::default();
    let end = world.params.epoch;
    let mut b = Builder { statistics: Vec::new() };
    let videos = long_videos(&world, end - Duration::days(60), end - Duration::days(7));
    let all: Vec<&Video> = videos.iter().map(|(_, v)| v).collect();
    first_week_views(&mut b, &world, &muts, &videos);
    hourly_noise(&mut b, &world, &muts, &all, sample.busy_videos);
    quiet_hour_counts(&mut b, &world, &muts, &all, sample.quiet_videos);
    channel_rhythm(&mut b, &world);
    presentation(&mut b, &world, &all, end);
    public_counter(&mut b, &world, &muts, &all, sample.counter_videos);
    shorts_plays(&mut b, &world, &muts, end);
    WorldReport { seed, channels: sample.channels, statistics: b.statistics }
}

/// First-week views of popular channels' videos (Pew).
fn first_week_views(b: &mut Builder, world: &World, muts: &Mutations, videos: &[(u64, Video)]) {
    let pew = "Pew Research Center 2019, channels with >= 250k subscribers";
    let popular: Vec<&Video> = videos.iter().filter(|(subs, _)| *subs >= 250_000).map(|(_, v)| v).collect();
    let week = |v: &Video| world.true_views(v, muts, v.published + Duration::days(7)) as f64;
    let day = |v: &Video| world.true_views(v, muts, v.published + Duration::days(1)) as f64;
    let mut first_week: Vec<f64> = popular.iter().map(|v| week(v)).collect();
    let first_day_total: f64 = popular.iter().map(|v| day(v)).sum();
    let week_total: f64 = first_week.iter().sum();
    let n = first_week.len();
    let med = median(&mut first_week);
    b.add("first_week_views_median", "3,860", pew, med, (2_500.0, 6_000.0), n);
    b.add(
        "first_week_views_mean_over_median",
        "15.1 (58,358 / 3,860)",
        pew,
        week_total / n.max(1) as f64 / med,
        (8.0, 30.0),
        n,
    );
    let top: f64 = first_week.iter().rev().take(n / 10).sum();
    b.add("first_week_views_top_decile_share", "0.79", pew, top / week_total, (0.70, 0.88), n);
    b.add(
        "first_day_share_of_first_week",
        "0.64 (on the day of posting)",
        pew,
        first_day_total / week_total,
        (0.55, 0.72),
        n,
    );
}

/// Hour-to-hour noise of busy videos: log(hourly views ÷ the noise-free expectation) from
/// day 1 to day 8, where the count noise is negligible.
fn hourly_noise(b: &mut Builder, world: &World, muts: &Mutations, videos: &[&Video], count: usize) {
    let mut busy: Vec<&Video> = videos
        .iter()
        .copied()
        .filter(|v| v.creator_changes.is_empty() && v.expected_total * 0.05 / 24.0 > 300.0)
        .collect();
    busy.truncate(count);
    let (mut sigmas, mut lags) = (Vec::new(), Vec::new());
    for v in &busy {
        let logs = hourly_log_ratios(world, muts, v, 24, 8 * 24);
        let m = mean(&logs);
        let centred: Vec<f64> = logs.iter().map(|x| x - m).collect();
        sigmas.push(sd(&centred));
        let var: f64 = centred.iter().map(|x| x * x).sum();
        lags.push(centred.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / var);
    }
    let miotto = "Miotto et al., Phys. Rev. E 2017 (AR(1) in log space)";
    b.add("hourly_noise_sigma", "about 0.3", miotto, median(&mut sigmas), (0.25, 0.37), busy.len());
    b.add("hourly_noise_lag1_autocorrelation", "0.5-0.7", miotto, median(&mut lags), (0.45, 0.75), busy.len());
}

/// Quiet videos: whole counts, at least Poisson-dispersed around the expectation.
fn quiet_hour_counts(b: &mut Builder, world: &World, muts: &Mutations, videos: &[&Video], count: usize) {
    let quiet: Vec<&Video> = videos
        .iter()
        .copied()
        .filter(|v| v.creator_changes.is_empty() && (20.0..200.0).contains(&(v.expected_total * 0.05 / 24.0)))
        .take(count)
        .collect();
    let mut pearson = Vec::new();
    for v in &quiet {
        let start = hour_after(v.published);
        let expected = world.noise_free_views(v, start + Duration::hours(48), start + Duration::hours(14 * 24));
        let mut prev = world.true_views(v, muts, start + Duration::hours(48));
        for (h, lambda) in expected.iter().enumerate() {
            let now = world.true_views(v, muts, start + Duration::hours(49 + h as i64));
            if (1.0..8.0).contains(lambda) {
                pearson.push((now as f64 - prev as f64 - lambda).powi(2) / lambda);
            }
            prev = now;
        }
    }
    b.add(
        "quiet_hour_dispersion",
        "Poisson counts: 1, plus the hour-to-hour noise",
        "counts arrive whole (Poisson on the rate)",
        mean(&pearson),
        (1.0, 2.5),
        pearson.len(),
    );
}

/// The channel's rhythm.
fn channel_rhythm(b: &mut Builder, world: &World) {
    let mut day_night: Vec<f64> = world.channels().iter().map(|c| c.day_night_ratio).collect();
    let mut weekday: Vec<f64> = world.channels().iter().map(|c| c.weekday_ratio).collect();
    let channels = day_night.len();
    b.add(
        "day_night_peak_over_trough",
        "about 2",
        "consumer traffic (Arbor)",
        median(&mut day_night),
        (1.6, 2.6),
        channels,
    );
    b.add(
        "weekday_busiest_over_quietest",
        "a weekday effect",
        "consumer traffic",
        median(&mut weekday),
        (1.04, 1.4),
        channels,
    );
}

/// Impressions, click-through rate and presentation variants.
fn presentation(b: &mut Builder, world: &World, all: &[&Video], end: DateTime<Utc>) {
    let shares: Vec<f64> = all.iter().map(|v| v.impression_share).collect();
    let tests = "published thumbnail tests (Test & Compare, testers' splits)";
    b.add("impression_share_long_form", "0.6-0.85", tests, mean(&shares), (0.6, 0.85), all.len());
    let mut ctrs: Vec<f64> = all.iter().map(|v| v.base_ctr).collect();
    b.add("ctr_median", "typically 2-10 %", tests, median(&mut ctrs), (0.02, 0.10), all.len());
    let mut ctr_day = Vec::new();
    for v in all.iter().take(200) {
        let days: Vec<f64> = (0..30).map(|d| world.ctr_of_day(v, v.published + Duration::days(d)).ln()).collect();
        ctr_day.push(sd(&days));
    }
    b.add(
        "ctr_day_to_day_sd",
        "no published figure: at least 5 %",
        "issue requirement",
        median(&mut ctr_day),
        (0.05, 0.15),
        ctr_day.len(),
    );
    let probe = long_videos(world, end - Duration::days(30), end);
    let multipliers: Vec<f64> = probe
        .iter()
        .take(20_000)
        .enumerate()
        .map(|(i, (_, v))| world.default_multiplier(&v.key, VariantKind::Thumbnail, &format!("u{i:x}")))
        .collect();
    let logs: Vec<f64> = multipliers.iter().map(|m| m.ln()).filter(|l| l.abs() < 0.3).collect();
    b.add("variant_multiplier_sigma", "0.10-0.15 (log space)", tests, sd(&logs), (0.10, 0.15), logs.len());
    let strong = multipliers.iter().filter(|m| (*m - 1.0).abs() >= 0.4).count();
    b.add(
        "variant_multiplier_strong_share",
        "about 5 % at +-40-60 %",
        tests,
        strong as f64 / multipliers.len().max(1) as f64,
        (0.03, 0.07),
        multipliers.len(),
    );
    let outside = multipliers.iter().filter(|m| !(0.6..=1.6).contains(*m)).count();
    b.add("variant_multiplier_outside_0.6_1.6", "0 (clamped)", tests, outside as f64, (0.0, 0.0), multipliers.len());
}

/// The public counter over a week, read every 10 minutes.
fn public_counter(b: &mut Builder, world: &World, muts: &Mutations, all: &[&Video], count: usize) {
    let help = "YouTube Help; YouTube.js #1125";
    let (mut frozen, mut corrected, mut refresh) = (0usize, 0usize, Vec::new());
    let followed: Vec<&Video> = all.iter().copied().filter(|v| v.expected_total * 0.2 > 300.0).take(count).collect();
    for v in &followed {
        // A freeze: the counter past 300 stands still for an hour while the true count grows.
        let (mut still_since, mut was_frozen, mut changes, mut went_down) = (None, false, 0, false);
        let mut prev = world.live_state(v, muts, v.published).views;
        for step in 1..=(7 * 24 * 6) {
            let at = v.published + Duration::minutes(10 * step);
            let now = world.live_state(v, muts, at).views;
            went_down |= now < prev;
            if now != prev {
                still_since = None;
                changes += 1;
            } else if now >= 300 {
                let since = *still_since.get_or_insert(at - Duration::minutes(10));
                if at - since >= Duration::hours(1) && !was_frozen {
                    was_frozen = world.true_views(v, muts, at) >= world.true_views(v, muts, since) + 20;
                }
            }
            prev = now;
        }
        frozen += usize::from(was_frozen);
        corrected += usize::from(went_down);
        refresh.push(7.0 * 24.0 * 60.0 / f64::from(changes.max(1)));
    }
    let f = followed.len();
    b.add(
        "counter_frozen_an_hour_or_more_share",
        "occasionally freezes above 300 views",
        help,
        frozen as f64 / f.max(1) as f64,
        (0.1, 0.6),
        f,
    );
    b.add(
        "counter_corrected_down_share",
        "downward corrections happen",
        help,
        corrected as f64 / f.max(1) as f64,
        (0.01, 0.12),
        f,
    );
    b.add("counter_refresh_minutes_median", "updates in steps", help, median(&mut refresh), (10.0, 30.0), f);
}

/// Shorts: a second counter of plays.
fn shorts_plays(b: &mut Builder, world: &World, muts: &Mutations, end: DateTime<Utc>) {
    let mut ratios: Vec<f64> = world
        .channels()
        .iter()
        .flat_map(|c| world.videos_between(c, end - Duration::days(30), end - Duration::days(3)))
        .filter(|v| v.key.stream == Stream::Short)
        .filter_map(|v| {
            let live = world.live_state(&v, muts, v.published + Duration::days(3));
            (live.views >= 1_000).then(|| live.plays as f64 / live.views as f64)
        })
        .take(500)
        .collect();
    let shorts = ratios.len();
    b.add(
        "shorts_plays_over_engaged_views",
        "plays (every start and replay) exceed engaged views",
        "yt-dlp #13122",
        median(&mut ratios),
        (1.2, 3.5),
        shorts,
    );
}

fn hour_after(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp((t.timestamp().div_euclid(3600) + 1) * 3600, 0).unwrap_or(t)
}

/// `log(true hourly views ÷ noise-free views)` over whole UTC hours `[from_hour, to_hour)`
/// after the first whole hour after publish.
fn hourly_log_ratios(world: &World, muts: &Mutations, v: &Video, from_hour: i64, to_hour: i64) -> Vec<f64> {
    let start = hour_after(v.published);
    let at = |h: i64| start + Duration::hours(h);
    let expected = world.noise_free_views(v, at(from_hour), at(to_hour));
    let mut prev = world.true_views(v, muts, at(from_hour));
    let mut out = Vec::new();
    for (i, e) in expected.iter().enumerate() {
        let now = world.true_views(v, muts, at(from_hour + 1 + i as i64));
        if now > prev && *e > 0.0 {
            out.push(((now - prev) as f64 / e).ln());
        }
        prev = now;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when a default of the world drifts outside a published figure's tolerance.
    #[test]
    fn the_default_world_matches_published_figures() {
        for seed in [3] {
            let report = measure(
                WorldParams { seed, ..WorldParams::default() },
                Sample { channels: 1_000, busy_videos: 12, quiet_videos: 12, counter_videos: 100 },
            );
            for s in &report.statistics {
                println!("seed {seed} {:40} {:>10.4} [{}, {}] n {}", s.name, s.measured, s.low, s.high, s.sample);
            }
            let outside: Vec<String> = report
                .statistics
                .iter()
                .filter(|s| !s.within)
                .map(|s| format!("{} = {:.4} (tolerance {}..{}, n {})", s.name, s.measured, s.low, s.high, s.sample))
                .collect();
            assert!(outside.is_empty(), "seed {seed}: {outside:#?}");
        }
    }
}
