//! The calibrated model: every figure the world is drawn with (each measured back by
//! `tubewatch eval world` beside the published value it is drawn from, see `crate::calibration`),
//! and the random processes built on them: a channel's weekly rhythm, Poisson counts, a video's
//! hour-to-hour noise, a variant's multiplier.

use tubewatch_core::normal_quantile;

use crate::rng::{self, hash, tag};

/// A channel's long-form reach: a typical video's total views ÷ subscribers, log-uniform.
pub(super) const REACH: (f64, f64) = (0.0003, 0.06);
/// The same for Shorts.
pub(super) const SHORTS_REACH: (f64, f64) = (0.003, 0.12);
/// Log-space deviation of video quality (the spread of videos within a channel).
pub(super) const QUALITY_SIGMA: f64 = 1.25;
/// Views decay as a power law, rate ∝ (1 + age/τ)^−(1+θ): median τ in hours (long, Short)…
pub const DECAY_TAU_HOURS: (f64, f64) = (6.0, 4.0);
/// …the log-space deviation of a video's τ around it…
pub const DECAY_TAU_SIGMA: f64 = 0.3;
/// …and the range of θ.
pub const DECAY_THETA: (f64, f64) = (0.3, 0.5);
/// Range of the day/night amplitude `a` (peak ÷ trough = (1+a)/(1−a), about 2).
pub(super) const DAY_AMPLITUDE: (f64, f64) = (0.28, 0.42);
/// Range of the weekday amplitude.
pub(super) const WEEK_AMPLITUDE: (f64, f64) = (0.03, 0.12);
/// Days after publish during which every hour is its own piece, with its own noise and count
/// (later, a day is one piece unless a change falls inside it).
pub(super) const HOURLY_DAYS: i64 = 28;
/// The hour-to-hour noise: the marginal deviation of an AR(1) process in log space…
pub const HOURLY_NOISE_SIGMA: f64 = 0.3;
/// …whose lag-one autocorrelation is drawn per video from this range.
pub(super) const NOISE_RHO: (f64, f64) = (0.5, 0.7);
/// Rare jumps: the chance an hour starts one, how many hours it lasts, its log-space deviation.
pub(super) const JUMP_START_PER_HOUR: f64 = 0.003;
pub(super) const JUMP_HOURS: (u64, u64) = (3, 12);
pub(super) const JUMP_SIGMA: f64 = 0.5;
/// Day-to-day noise of videos past [`HOURLY_DAYS`].
pub(super) const DAILY_NOISE_SIGMA: f64 = 0.15;
/// Share of a video's views that come from impressions (browse, search, suggested), the share a
/// thumbnail or title can move; the rest (notifications, external, end screens) it cannot.
pub(super) const IMPRESSION_SHARE_LONG: (f64, f64) = (0.6, 0.85);
pub(super) const IMPRESSION_SHARE_SHORT: (f64, f64) = (0.3, 0.5);
/// Click-through rate: median and log-space deviation of a video's base CTR, and the deviation
/// of its day-to-day variation (per Pacific day, as reach reports count days).
pub(super) const CTR_MEDIAN: f64 = 0.045;
pub(super) const CTR_SIGMA: f64 = 0.4;
pub const CTR_DAY_SIGMA: f64 = 0.07;
/// A presentation variant's multiplier on CTR: log-normal with this deviation, with a share of
/// strong variants (±40–60 %), clamped.
pub(super) const VARIANT_SIGMA: f64 = 0.12;
pub(super) const VARIANT_STRONG_SHARE: f64 = 0.05;
pub(super) const VARIANT_CLAMP: (f64, f64) = (0.6, 1.6);
/// The public counter: it shows the count of its last refresh, refreshed every few minutes…
pub(super) const COUNTER_REFRESH_MINUTES: (f64, f64) = (5.0, 20.0);
/// …freezes early for hours on some videos once past 300 views…
pub(super) const EARLY_FREEZE_SHARE: f64 = 0.3;
pub(super) const EARLY_FREEZE_HOURS: (f64, f64) = (1.0, 6.0);
/// …freezes now and then later…
pub(super) const FREEZE_PER_DAY: f64 = 0.03;
pub(super) const FREEZE_HOURS: (f64, f64) = (1.0, 4.0);
/// …and is corrected downwards once on some videos (views found invalid and removed).
pub(super) const CORRECTION_SHARE: f64 = 0.08;
pub(super) const CORRECTION_REMOVED: (f64, f64) = (0.005, 0.03);
/// A Short's counter of plays (every start and replay) over its engaged views.
pub(super) const SHORT_PLAYS_PER_VIEW: (f64, f64) = (1.5, 3.0);

pub(super) const HOURS_PER_WEEK: usize = 168;

/// The hour of the week (Monday 00:00 = 0) of a UTC hour counted from the Unix epoch (a Thursday).
pub(super) fn hour_of_week(unix_hour: i64) -> usize {
    (unix_hour + 3 * 24).rem_euclid(HOURS_PER_WEEK as i64) as usize
}

/// A channel's view-rate factor per UTC hour of the week, mean 1: a day/night cosine peaking at
/// `peak_hour` local time times a weekday cosine peaking on local weekday `peak_day` (Monday 0).
pub(super) fn weekly_rhythm(
    utc_offset_hours: i32,
    day_amplitude: f64,
    peak_hour: f64,
    week_amplitude: f64,
    peak_day: f64,
) -> Box<[f64; HOURS_PER_WEEK]> {
    use std::f64::consts::TAU;
    let mut rhythm = Box::new([0.0; HOURS_PER_WEEK]);
    for (utc, r) in rhythm.iter_mut().enumerate() {
        let local = (utc as f64 + 0.5 + f64::from(utc_offset_hours)).rem_euclid(HOURS_PER_WEEK as f64);
        let day = 1.0 + day_amplitude * (TAU * (local.rem_euclid(24.0) - peak_hour) / 24.0).cos();
        let week = 1.0 + week_amplitude * (TAU * (local / 24.0 - 0.5 - peak_day) / 7.0).cos();
        *r = day * week;
    }
    let mean = rhythm.iter().sum::<f64>() / HOURS_PER_WEEK as f64;
    rhythm.iter_mut().for_each(|r| *r /= mean);
    rhythm
}

/// Peak ÷ trough of the average day, and busiest ÷ quietest UTC day, of a weekly rhythm.
pub(super) fn rhythm_ratios(rhythm: &[f64; HOURS_PER_WEEK]) -> (f64, f64) {
    let by_hour: Vec<f64> = (0..24).map(|h| (0..7).map(|d| rhythm[d * 24 + h]).sum::<f64>()).collect();
    let by_day: Vec<f64> = (0..7).map(|d| rhythm[d * 24..d * 24 + 24].iter().sum::<f64>()).collect();
    let ratio =
        |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max) / v.iter().copied().fold(f64::MAX, f64::min).max(1e-9);
    (ratio(&by_hour), ratio(&by_day))
}

/// The `u`-quantile of a Poisson distribution with mean `lambda`: exact below 30, the
/// Cornish–Fisher normal approximation above (never below the exact quantile at 30). For a fixed
/// `u` it never decreases as `lambda` grows, which is what keeps counts from going backwards as
/// a piece of time fills up.
pub fn poisson_quantile(lambda: f64, u: f64) -> u64 {
    const EXACT_BELOW: f64 = 30.0;
    let exact = |lambda: f64| {
        let mut p = (-lambda).exp();
        let (mut cdf, mut k) = (p, 0u64);
        while cdf < u && k < 400 {
            k += 1;
            p *= lambda / k as f64;
            cdf += p;
        }
        k
    };
    if lambda.is_nan() || lambda <= 0.0 {
        return 0;
    }
    if lambda < EXACT_BELOW {
        return exact(lambda);
    }
    let z = normal_quantile(u.clamp(1e-12, 1.0 - 1e-12));
    let approx = (lambda + z * lambda.sqrt() + (z * z - 1.0) / 6.0 + 0.5).floor().max(0.0) as u64;
    // The exact quantile at 30 is below 80 for any `u` this sees: only a low approximation needs it.
    if approx >= 80 { approx } else { approx.max(exact(EXACT_BELOW)) }
}

/// The multiplicative hour-to-hour noise of a video, an AR(1) process in log space with rare
/// jumps lasting several hours, generated hour by hour from a starting hour. Its factor has
/// mean 1.
pub(super) struct HourlyNoise {
    key: u64,
    rho: f64,
    hour: i64,
    level: f64,
    pub(super) jump: f64,
    pub(super) jump_hours_left: u64,
}

impl HourlyNoise {
    pub(super) fn start(key: u64, rho: f64, hour: i64) -> Self {
        let level = HOURLY_NOISE_SIGMA * rng::normal(hash(key, &[hour as u64]));
        let mut noise = Self { key, rho, hour, level, jump: 0.0, jump_hours_left: 0 };
        noise.maybe_jump();
        noise
    }

    fn maybe_jump(&mut self) {
        let h = hash(self.key, &[tag("jump"), self.hour as u64]);
        if self.jump_hours_left > 0 {
            self.jump_hours_left -= 1;
        } else if rng::unit(h) < JUMP_START_PER_HOUR {
            self.jump = JUMP_SIGMA * rng::normal(rng::mix64(h));
            self.jump_hours_left = JUMP_HOURS.0 + rng::mix64(h ^ 7) % (JUMP_HOURS.1 - JUMP_HOURS.0 + 1);
        }
        if self.jump_hours_left == 0 {
            self.jump = 0.0;
        }
    }

    /// The factor of `hour` (at or after the last one asked for).
    pub(super) fn factor(&mut self, hour: i64) -> f64 {
        let innovation = HOURLY_NOISE_SIGMA * (1.0 - self.rho * self.rho).sqrt();
        while self.hour < hour {
            self.hour += 1;
            self.level = self.rho * self.level + innovation * rng::normal(hash(self.key, &[self.hour as u64]));
            self.maybe_jump();
        }
        let jump_mean = if self.jump_hours_left > 0 { JUMP_SIGMA * JUMP_SIGMA / 2.0 } else { 0.0 };
        (self.level - HOURLY_NOISE_SIGMA * HOURLY_NOISE_SIGMA / 2.0 + self.jump - jump_mean).exp()
    }
}

/// A presentation variant's multiplier on click-through rate from a hash: most are within a
/// few percent to a few tens of percent of the original (log-normal), a few are strong (±40–60 %).
pub(super) fn variant_multiplier(h: u64, strong_share: f64) -> f64 {
    let m = if rng::unit(rng::mix64(h ^ 0x57)) < strong_share {
        let size = rng::uniform(rng::mix64(h ^ 0x58), 0.4, 0.6);
        if rng::mix64(h ^ 0x59).is_multiple_of(2) { 1.0 + size } else { 1.0 - size }
    } else {
        rng::log_normal(h, VARIANT_SIGMA)
    };
    m.clamp(VARIANT_CLAMP.0, VARIANT_CLAMP.1)
}
