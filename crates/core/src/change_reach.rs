//! The owner's reach as a second signal on a thumbnail or title change.
//!
//! Where the user owns the channel and granted its reach report, each Pacific day of a video has
//! its thumbnail impressions and their click-through rate. A new thumbnail or title acts on the
//! click-through rate, not on the impressions, so the days before the change against the days
//! after it measure the change's effect without the views' decay to model: the same day-level
//! model as an A/B test's reach ([`analyse_reach`]), "before" and "after" as its two variants.
//! The views' estimate and the reach's are then combined as an A/B test combines them (they
//! share the CTR's day-to-day movement), and the change is flagged on the combined lift.
//!
//! The click-through rate of a real video also drifts with age (its impressions reach wider
//! audiences); the days compared are therefore the last week before the change and at most a
//! week after it (the caller's `until`), and the drift left in them is part of what the interval
//! does not cover.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::abtest::{IMPRESSION_SHARE_OF_VIEWS, combine_two};
use crate::outliers::{ChangeLift, ChangeOutlierConfig};
use crate::reach::{ReachObs, analyse_reach};
use crate::stats;

/// Reach days before the change compared at most (the latest ones).
pub const MAX_DAYS_BEFORE: usize = 7;

/// One Pacific day of a video's reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReachDayAt {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub impressions: f64,
    pub ctr: f64,
}

/// The click-through rate after a change against before it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChangeReach {
    pub days_before: usize,
    pub days_after: usize,
    /// CTR after ÷ CTR before, and its interval (Student's t on the days, at the rule's
    /// confidence).
    pub ctr_ratio: f64,
    pub ctr_ci_low: f64,
    pub ctr_ci_high: f64,
    /// The log ratio and its standard error widened by `t/z` for the days' few degrees of
    /// freedom (a normal estimate's, to be combined with the views').
    pub log_ratio: f64,
    pub standard_error: f64,
    /// The share of its variance that is the CTR's own day-to-day movement.
    pub day_shock_share: f64,
}

/// The video's reach before `changed_at` (whole days ending by then, the latest
/// [`MAX_DAYS_BEFORE`]) against after `settled_at` (whole days starting then or later and ending
/// by `until`). An error says why there is nothing to compare (too few days on a side).
pub fn reach_around(
    days: &[ReachDayAt],
    changed_at: DateTime<Utc>,
    settled_at: DateTime<Utc>,
    until: DateTime<Utc>,
    confidence: f64,
) -> Result<ChangeReach, String> {
    let mut before: Vec<&ReachDayAt> = days.iter().filter(|d| d.end <= changed_at).collect();
    before.sort_by_key(|d| d.start);
    let before = &before[before.len().saturating_sub(MAX_DAYS_BEFORE)..];
    let after: Vec<&ReachDayAt> = days.iter().filter(|d| d.start >= settled_at && d.end <= until).collect();
    if before.is_empty() || after.is_empty() {
        return Err(format!("{} reach days before the change and {} after it", before.len(), after.len()));
    }
    let obs = |d: &ReachDayAt, side: usize| {
        let mut shares = vec![0.0; 2];
        shares[side] = 1.0;
        ReachObs { impressions: d.impressions, ctr: d.ctr, shares }
    };
    let all: Vec<ReachObs> = before.iter().map(|d| obs(d, 0)).chain(after.iter().map(|d| obs(d, 1))).collect();
    let alpha = 1.0 - confidence;
    let analysis = analyse_reach(&all, 2, alpha).map_err(|e| e.to_string())?;
    let pair = &analysis.comparisons[0];
    // The comparison is before ÷ after: turned around.
    let t = stats::t_quantile(1.0 - alpha / 2.0, analysis.degrees_of_freedom as f64);
    let z = stats::normal_quantile(1.0 - alpha / 2.0);
    Ok(ChangeReach {
        days_before: before.len(),
        days_after: after.len(),
        ctr_ratio: (-pair.log_ratio).exp(),
        ctr_ci_low: pair.ci_high.recip(),
        ctr_ci_high: pair.ci_low.recip(),
        log_ratio: -pair.log_ratio,
        standard_error: pair.standard_error * t / z,
        day_shock_share: analysis.day_shock_share,
    })
}

/// The views' judgement of a change with the owner's reach added: both estimates on the
/// click-through rate's scale (the views' log lift ÷ [`IMPRESSION_SHARE_OF_VIEWS`]) combined,
/// and the lift, its interval, whether it is significant and flagged made again from the
/// combination on the views' scale. The explanation says what the reach showed.
pub fn with_owner_reach(mut lift: ChangeLift, reach: &ChangeReach, config: &ChangeOutlierConfig) -> ChangeLift {
    let z = stats::normal_quantile(1.0 - (1.0 - config.confidence) / 2.0);
    let share = IMPRESSION_SHARE_OF_VIEWS;
    let views = if lift.ci_low > -1.0 && lift.ci_high.is_finite() {
        let (low, high) = ((1.0 + lift.ci_low).ln(), (1.0 + lift.ci_high).ln());
        Some(((1.0 + lift.lift).ln() / share, (high - low) / (2.0 * z) / share))
    } else {
        None
    };
    let ctr = (reach.log_ratio, reach.standard_error);
    let (d, se) = match views {
        Some(v) if v.1.is_finite() && v.1 > 0.0 => combine_two(v, ctr, reach.day_shock_share),
        _ => ctr,
    };
    let views_lift = |x: f64| (x * share).exp() - 1.0;
    lift.lift = views_lift(d);
    lift.ci_low = views_lift(d - z * se);
    lift.ci_high = views_lift(d + z * se);
    lift.significant = lift.ci_low > 0.0 || lift.ci_high < 0.0;
    lift.flagged = lift.ci_low > 0.0 && lift.lift >= config.min_lift;
    lift.explanation = format!(
        "{}; with the owner's reach, its click-through rate was {:+.0}% after the change ({} days before, {} after; {:.0}% CI {:+.0}% to {:+.0}%), so views {:+.0}% ({:+.0}% to {:+.0}%) from both",
        lift.explanation,
        (reach.ctr_ratio - 1.0) * 100.0,
        reach.days_before,
        reach.days_after,
        config.confidence * 100.0,
        (reach.ctr_ci_low - 1.0) * 100.0,
        (reach.ctr_ci_high - 1.0) * 100.0,
        lift.lift * 100.0,
        lift.ci_low * 100.0,
        lift.ci_high * 100.0,
    );
    lift
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::stats::SplitMix;
    use chrono::Duration;

    fn t0() -> DateTime<Utc> {
        "2026-03-02T08:00:00Z".parse().unwrap()
    }

    /// `n` Pacific-like days from day 0, CTR 5 % × `lift` from day `change` on, day-to-day noise
    /// of 7 % and binomial clicks (normal approximation).
    fn days(n: i64, change: i64, lift: f64, impressions: f64, seed: u64) -> Vec<ReachDayAt> {
        let mut rng = SplitMix::new(seed);
        (0..n)
            .map(|d| {
                let rate = 0.05 * if d >= change { lift } else { 1.0 } * (0.07 * rng.normal()).exp();
                let clicks = (impressions * rate + (impressions * rate).sqrt() * rng.normal()).round().max(1.0);
                let start = t0() + Duration::days(d);
                ReachDayAt { start, end: start + Duration::days(1), impressions, ctr: clicks / impressions }
            })
            .collect()
    }

    fn judged(lift: f64, ci_low: f64, ci_high: f64) -> ChangeLift {
        ChangeLift {
            changed_at: t0() + Duration::hours(7 * 24 + 10),
            settled_at: t0() + Duration::hours(7 * 24 + 10),
            kinds: vec![crate::outliers::ChangeKind::Thumbnail],
            observed_views: 1000.0,
            predicted_views: 1000.0 / (1.0 + lift),
            hours_compared: 72.0,
            lift,
            ci_low,
            ci_high,
            significant: ci_low > 0.0,
            flagged: false,
            explanation: "views".into(),
            counterfactual: Vec::new(),
        }
    }

    #[test]
    fn the_ctr_after_a_change_is_measured_against_the_week_before() {
        let all = days(12, 8, 1.5, 20_000.0, 1);
        let change = t0() + Duration::hours(7 * 24 + 10);
        let r = reach_around(&all, change, change, change + Duration::hours(96), 0.98).unwrap();
        // Day 7 holds the change: neither side. Days 0–6 before, 8–10 after (day 11 ends too late).
        assert_eq!((r.days_before, r.days_after), (7, 3));
        assert!((r.ctr_ratio / 1.5 - 1.0).abs() < 0.15 && r.ctr_ci_low > 1.1 && r.ctr_ci_high > 1.5, "{r:?}");
        assert!(r.day_shock_share > 0.5, "{r:?}");
        // An unclear views judgement becomes a flag with the reach.
        let config = ChangeOutlierConfig::default();
        let lift = with_owner_reach(judged(0.25, -0.1, 0.7), &r, &config);
        assert!(lift.flagged && lift.ci_low > 0.0 && lift.lift > 0.2, "{lift:?}");
        assert!(lift.explanation.contains("owner's reach"), "{}", lift.explanation);
    }

    #[test]
    fn equal_ctrs_rarely_make_a_flag_and_too_few_days_are_an_error() {
        let config = ChangeOutlierConfig::default();
        let change = t0() + Duration::hours(7 * 24 + 10);
        let mut flags = 0;
        for seed in 0..200 {
            let r = reach_around(&days(12, 8, 1.0, 5_000.0, seed), change, change, change + Duration::hours(96), 0.98)
                .unwrap();
            flags += usize::from(with_owner_reach(judged(0.0, -0.3, 0.4), &r, &config).flagged);
        }
        assert!(flags <= 4, "{flags} of 200 flagged");
        let only_before = days(7, 8, 1.0, 5_000.0, 3);
        let e = reach_around(&only_before, change, change, change + Duration::hours(96), 0.98).unwrap_err();
        assert!(e.contains("0 after"), "{e}");
    }
}
