//! The owner's daily reach (thumbnail impressions and their click-through rate, per Pacific day,
//! from YouTube's reach report) as evidence in an A/B test.
//!
//! A thumbnail or title acts on the click-through rate; impressions do not depend on it. So each
//! day's CTR is modelled, on the log scale, as the video's level plus the effects of the variants
//! live that day, weighted by the share of the day each was live:
//!
//! `log CTR_d = α + Σ_v s_{d,v} β_v + ε_d`, `Var ε_d = v_d + τ²`
//!
//! * `v_d ≈ 1/clicks − 1/impressions` is the binomial noise of the day's rate (delta method);
//! * `τ²` is the video's CTR moving from day to day for reasons of its own (what YouTube shows it
//!   beside, who is browsing): a day is one observation, not its impressions — treating a day's
//!   10,000 impressions as 10,000 independent trials would claim a precision the days do not
//!   have. `τ²` is estimated by Paule–Mandel (the value at which the weighted residual sum of
//!   squares equals its degrees of freedom), and the intervals use Student's t on those degrees.
//!
//! Only days that belong to one variant (see [`ONE_VARIANT_SHARE`]) are used, so reach speaks for
//! a daily schedule (`pacific_days`); under an hourly rotation it cannot attribute a day, and the
//! views decide. Within a kept day `Σ s β` is the first-order term of `log Σ s e^β`, exact when
//! one variant had the whole day.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::variants::{AbError, AbPeriod, PairComparison, live_shares};
use crate::{pacific, stats};

/// A day counts when variants were live for at least this share of it, and one variant for at
/// least [`ONE_VARIANT_SHARE`] of that: a daily figure attributes only to the variant that had
/// the day. (Days mixing variants by the hour tell little, and what they tell is biased: a
/// variant live in the evening has more than its share of the day's impressions.)
pub const MIN_DAY_SHARE: f64 = 0.75;
pub const ONE_VARIANT_SHARE: f64 = 0.9;

/// Whether a day's shares make it one variant's day within the test.
fn attributable(shares: &[f64]) -> bool {
    let total: f64 = shares.iter().sum();
    total >= MIN_DAY_SHARE && shares.iter().copied().fold(0.0, f64::max) >= ONE_VARIANT_SHARE * total
}

/// One Pacific day of the reach report during a test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReachObs {
    pub impressions: f64,
    pub ctr: f64,
    /// The share of the day each variant was live (summing to at most 1).
    pub shares: Vec<f64>,
}

/// The variants' effects on the click-through rate, from the days' reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReachAnalysis {
    pub days_used: usize,
    pub days_dropped: usize,
    /// Median impressions per day used.
    pub impressions_per_day: f64,
    /// The CTR's own day-to-day variation found beyond the binomial noise (τ, log scale).
    pub day_to_day_cv: f64,
    /// Degrees of freedom of the intervals (days used − parameters).
    pub degrees_of_freedom: usize,
    /// The share of the comparisons' variance that is the CTR's own day-to-day movement (`τ²`,
    /// the rest being the days' binomial noise). A day's views move with its CTR, so this part
    /// is shared with the views' estimate on the same days (see `abtest::combine_evidence`).
    #[serde(default)]
    pub day_shock_share: f64,
    /// Each variant's CTR ÷ variant A's, with its interval (t, 1 − α).
    pub ctr_ratio_to_a: Vec<f64>,
    /// Pairwise CTR ratios: `log_ratio` and `standard_error` on the log scale; the interval and
    /// p-value use Student's t.
    pub comparisons: Vec<PairComparison>,
}

/// The days' CTR model (see the module docs); an error when too few usable days remain or the
/// days do not separate the variants.
pub fn analyse_reach(days: &[ReachObs], variants: usize, alpha: f64) -> Result<ReachAnalysis, AbError> {
    let usable: Vec<&ReachObs> = days
        .iter()
        .filter(|d| {
            d.shares.len() == variants
                && attributable(&d.shares)
                && d.impressions.is_finite()
                && d.impressions >= 1.0
                && d.ctr.is_finite()
                && d.ctr > 0.0
                && d.ctr <= 1.0
        })
        .collect();
    // Columns: the level, then variants B, C, … by their share of the day.
    let p = variants;
    if usable.len() < p + 2 {
        return Err(AbError::Model(format!(
            "reach: {} usable days, at least {} are needed for {variants} variants",
            usable.len(),
            p + 2
        )));
    }
    let model = DayModel::new(&usable, p);
    let n = model.rows.len();
    let df = n - p;
    let separated = || AbError::Model("reach: the days do not separate the variants".into());
    let tau2 = model.paule_mandel(df).ok_or_else(separated)?;
    let (coef, cov, _) = model.fit_at(tau2).ok_or_else(separated)?;
    let shock = model.day_shock_covariance(&cov, tau2);
    let beta = |v: usize| if v == 0 { 0.0 } else { coef[v] };
    let t = stats::t_quantile(1.0 - alpha / 2.0, df as f64);
    let mut comparisons = Vec::new();
    let mut shock_shares = Vec::new();
    for a in 0..variants {
        for b in a + 1..variants {
            let d = beta(a) - beta(b);
            let var = pair_variance(&cov, p, a, b);
            comparisons.push(PairComparison::from_log(a, b, d, var.sqrt(), t));
            if var > 0.0 {
                shock_shares.push((pair_variance(&shock, p, a, b) / var).clamp(0.0, 1.0));
            }
        }
    }
    let mut impressions: Vec<f64> = usable.iter().map(|d| d.impressions).collect();
    impressions.sort_by(f64::total_cmp);
    Ok(ReachAnalysis {
        days_used: n,
        days_dropped: days.len() - n,
        impressions_per_day: impressions[n / 2],
        day_to_day_cv: tau2.sqrt(),
        degrees_of_freedom: df,
        day_shock_share: shock_shares.iter().copied().fold(0.0, f64::max),
        ctr_ratio_to_a: (0..variants).map(|v| beta(v).exp()).collect(),
        comparisons,
    })
}

/// The usable days as a weighted regression's data: each day's design row, log CTR and the
/// binomial noise of that rate (`v_d`).
struct DayModel {
    rows: Vec<Vec<f64>>,
    y: Vec<f64>,
    noise: Vec<f64>,
    /// Columns: the level, then variants B, C, ….
    p: usize,
}

impl DayModel {
    fn new(usable: &[&ReachObs], p: usize) -> Self {
        let mut rows = Vec::with_capacity(usable.len());
        let mut y = Vec::with_capacity(usable.len());
        let mut noise = Vec::with_capacity(usable.len());
        for d in usable {
            let total: f64 = d.shares.iter().sum();
            rows.push(design_row(&d.shares, total));
            let clicks = d.ctr * d.impressions;
            y.push(((clicks + 0.5) / (d.impressions + 0.5)).ln());
            noise.push(1.0 / (clicks + 0.5) - 1.0 / (d.impressions + 0.5));
        }
        Self { rows, y, noise, p }
    }

    /// The weighted least-squares fit with each day's variance `v_d + τ²`: the coefficients,
    /// their covariance and the weighted residual sum of squares `Q(τ²)`; `None` when the days do
    /// not separate the variants.
    fn fit_at(&self, tau2: f64) -> Option<(Vec<f64>, Vec<f64>, f64)> {
        let p = self.p;
        let mut xtwx = vec![0.0; p * p];
        let mut xtwy = vec![0.0; p];
        for ((row, yi), vi) in self.rows.iter().zip(&self.y).zip(&self.noise) {
            let w = 1.0 / (vi + tau2);
            for a in 0..p {
                xtwy[a] += w * row[a] * yi;
                for b in 0..p {
                    xtwx[a * p + b] += w * row[a] * row[b];
                }
            }
        }
        let l = stats::cholesky(&xtwx, p)?;
        let coef = stats::cholesky_solve(&l, p, &xtwy);
        let q: f64 = self
            .rows
            .iter()
            .zip(&self.y)
            .zip(&self.noise)
            .map(|((row, yi), vi)| {
                let fitted: f64 = row.iter().zip(&coef).map(|(x, c)| x * c).sum();
                (yi - fitted).powi(2) / (vi + tau2)
            })
            .sum();
        Some((coef, stats::cholesky_inverse(&l, p), q))
    }

    /// The part of the coefficients' covariance `cov` that comes from the days' own movement
    /// `τ²`: `C Xᵀ W τ² W X C` with `C = cov = (Xᵀ W X)⁻¹` and `W` the days' weights at `τ²`.
    fn day_shock_covariance(&self, cov: &[f64], tau2: f64) -> Vec<f64> {
        let p = self.p;
        // G = Xᵀ W² X τ², then C G C.
        let mut g = vec![0.0; p * p];
        for (row, vi) in self.rows.iter().zip(&self.noise) {
            let w = 1.0 / (vi + tau2);
            for a in 0..p {
                for b in 0..p {
                    g[a * p + b] += w * w * tau2 * row[a] * row[b];
                }
            }
        }
        let product = |x: &[f64], y: &[f64]| -> Vec<f64> {
            (0..p * p).map(|ij| (0..p).map(|k| x[ij / p * p + k] * y[k * p + ij % p]).sum()).collect()
        };
        product(&product(cov, &g), cov)
    }

    /// Paule–Mandel's `τ²`: `Q(τ²)` falls as `τ²` grows; it is where `Q` meets its `df` degrees
    /// of freedom (0 when it is below them already). `None` when the days do not separate the
    /// variants.
    fn paule_mandel(&self, df: usize) -> Option<f64> {
        let (_, _, q0) = self.fit_at(0.0)?;
        if q0 <= df as f64 {
            return Some(0.0);
        }
        let (mut lo, mut hi) = (0.0, 1.0);
        while self.fit_at(hi).is_some_and(|(_, _, q)| q > df as f64) && hi < 1e6 {
            hi *= 4.0;
        }
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if self.fit_at(mid).is_some_and(|(_, _, q)| q > df as f64) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(hi)
    }
}

/// A day's row of the model: the level, then each variant after A by its share of the test's
/// part of the day (column `v` is variant `v`).
fn design_row(shares: &[f64], total: f64) -> Vec<f64> {
    let mut row = vec![1.0];
    row.extend(shares[1..].iter().map(|s| s / total));
    row
}

/// The variance of `β_a − β_b` from the coefficients' covariance (`β_A` is 0 by definition).
fn pair_variance(cov: &[f64], p: usize, a: usize, b: usize) -> f64 {
    let entry = |i: usize, j: usize| if i == 0 || j == 0 { 0.0 } else { cov[i * p + j] };
    (entry(a, a) + entry(b, b) - 2.0 * entry(a, b)).max(0.0)
}

/// A video's click-through rate moving from day to day for reasons of its own, as assumed when
/// planning a test before any of its reach is known (log scale; no published figure exists, and
/// the simulator's world draws 7 %). The analysis estimates it from the days themselves.
pub const TYPICAL_DAY_TO_DAY_CV: f64 = 0.07;

/// The reach a planned test expects per day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReachPlan {
    pub impressions_per_day: f64,
    pub ctr: f64,
}

/// How precise a planned test's reach is expected to be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReachPrecision {
    /// The worst pair's CTR log ratio's standard error, widened by `t/z` for its degrees of freedom.
    pub standard_error: f64,
    /// The share of its variance that is the CTR's day-to-day movement (see
    /// [`ReachAnalysis::day_shock_share`]).
    pub day_shock_share: f64,
}

/// The precision [`analyse_reach`] would have on a planned schedule's days (Pacific days mostly
/// under the test), at [`TYPICAL_DAY_TO_DAY_CV`]; `None` when the schedule's days could not
/// separate the variants.
pub fn planned_precision(
    periods: &[AbPeriod],
    variants: usize,
    plan: &ReachPlan,
    alpha: f64,
) -> Option<ReachPrecision> {
    let (first, last) = (periods.first()?.start, periods.last()?.end);
    let clicks = plan.impressions_per_day * plan.ctr;
    if !(clicks > 0.0 && plan.impressions_per_day > clicks) {
        return None;
    }
    let tau2 = TYPICAL_DAY_TO_DAY_CV * TYPICAL_DAY_TO_DAY_CV;
    let var_day = 1.0 / clicks - 1.0 / plan.impressions_per_day + tau2;
    let p = variants;
    let mut xtx = vec![0.0; p * p];
    let mut n = 0usize;
    let mut day = pacific::day(first.timestamp());
    loop {
        let at = |d: i64| DateTime::<Utc>::from_timestamp(pacific::midnight(d), 0);
        let (from, to) = (at(day)?, at(day + 1)?);
        if from >= last {
            break;
        }
        let shares = live_shares(periods, from, to, variants);
        let total: f64 = shares.iter().sum();
        if attributable(&shares) {
            let row = design_row(&shares, total);
            for a in 0..p {
                for b in 0..p {
                    xtx[a * p + b] += row[a] * row[b] / var_day;
                }
            }
            n += 1;
        }
        day += 1;
    }
    if n < p + 2 {
        return None;
    }
    let cov = stats::cholesky_inverse(&stats::cholesky(&xtx, p)?, p);
    let mut worst: f64 = 0.0;
    for a in 0..variants {
        for b in a + 1..variants {
            worst = worst.max(pair_variance(&cov, p, a, b));
        }
    }
    let widen = stats::t_quantile(1.0 - alpha / 2.0, (n - p) as f64) / stats::normal_quantile(1.0 - alpha / 2.0);
    // Every day has the same variance here, so the day-to-day share is the same for every pair.
    Some(ReachPrecision { standard_error: worst.sqrt() * widen, day_shock_share: tau2 / var_day })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::stats::SplitMix;

    /// Days alternating A, B, … with a CTR `base × lift^(variant is 1)`, day-to-day noise of
    /// `day_sd` and binomial clicks (normal approximation).
    fn days(n: usize, impressions: f64, lift: f64, day_sd: f64, seed: u64) -> Vec<ReachObs> {
        let mut rng = SplitMix::new(seed);
        (0..n)
            .map(|i| {
                let v = i % 2;
                let rate = 0.045 * if v == 1 { 1.0 + lift } else { 1.0 } * (day_sd * rng.normal()).exp();
                let clicks = (impressions * rate + (impressions * rate).sqrt() * rng.normal()).round().max(1.0);
                let mut shares = vec![0.0; 2];
                shares[v] = 1.0;
                ReachObs { impressions, ctr: clicks / impressions, shares }
            })
            .collect()
    }

    #[test]
    fn a_clear_ctr_lift_is_found_with_its_day_to_day_noise() {
        let a = analyse_reach(&days(14, 20_000.0, 0.3, 0.07, 1), 2, 0.05).unwrap();
        assert_eq!(a.days_used, 14);
        let b_over_a = a.ctr_ratio_to_a[1];
        assert!((b_over_a / 1.3 - 1.0).abs() < 0.1, "{b_over_a}");
        assert!(a.day_to_day_cv > 0.02 && a.day_to_day_cv < 0.15, "{}", a.day_to_day_cv);
        let c = &a.comparisons[0];
        assert!(c.ci_high < 1.0, "A ÷ B clearly below 1: {c:?}");
        // 900 clicks a day: binomial noise (0.0011) is small beside τ² (0.0049), so most of the
        // comparison's variance is the days' own movement, which the views share.
        assert!(a.day_shock_share > 0.6 && a.day_shock_share <= 1.0, "{}", a.day_shock_share);
        let steady = analyse_reach(&days(14, 20_000.0, 0.3, 0.0, 1), 2, 0.05).unwrap();
        assert!(steady.day_shock_share < 0.3, "{}", steady.day_shock_share);
    }

    #[test]
    fn equal_variants_are_called_different_about_alpha_of_the_time() {
        let mut false_calls = 0;
        for seed in 0..400 {
            let a = analyse_reach(&days(12, 5_000.0, 0.0, 0.07, seed), 2, 0.05).unwrap();
            if a.comparisons[0].p_value < 0.05 {
                false_calls += 1;
            }
        }
        // 5 % of 400 = 20; the t intervals keep it there, not at the 3× that ignoring τ² gives.
        assert!((8..=32).contains(&false_calls), "{false_calls} of 400");
    }

    #[test]
    fn too_few_days_or_days_without_contrast_are_errors() {
        assert!(analyse_reach(&days(3, 5_000.0, 0.0, 0.07, 1), 2, 0.05).is_err());
        let same: Vec<ReachObs> = (0..10)
            .map(|i| ReachObs { impressions: 1000.0, ctr: 0.04 + f64::from(i) * 0.001, shares: vec![0.5, 0.5] })
            .collect();
        assert!(analyse_reach(&same, 2, 0.05).is_err());
        let outside: Vec<ReachObs> =
            (0..10).map(|_| ReachObs { impressions: 1000.0, ctr: 0.04, shares: vec![0.2, 0.1] }).collect();
        assert!(analyse_reach(&outside, 2, 0.05).is_err());
    }
}
