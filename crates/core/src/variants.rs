//! What the A/B analyses of views and of reach share: the variants' labels, the periods each
//! was live, their shares of a span, pairwise comparisons and the errors of a test.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::stats;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbError {
    #[error("an A/B test needs 2 to 4 variants, got {0}")]
    Variants(usize),
    #[error("the rotation period must be a whole number of minutes, at least one hour, got {0} minutes")]
    Rotation(i64),
    #[error("the test must last at least one rotation per variant ({min_hours} h) and at most 90 days, got {hours} h")]
    Duration { hours: i64, min_hours: i64 },
    #[error("the schedule's periods must be in order, non-overlapping and name variants below {variants}")]
    Periods { variants: usize },
    #[error("no usable measurements for variant {}: every period was excluded or had no data", variant_label(*.0))]
    NoDataForVariant(usize),
    #[error("expected traffic must be a positive views-per-hour figure with a floor below it: {0}")]
    Traffic(String),
    #[error("the views cannot be analysed: {0}")]
    Model(String),
}

/// Variant letters as users see them: A, B, C, D.
pub fn variant_label(variant: usize) -> String {
    u8::try_from(variant)
        .ok()
        .filter(|v| *v < 26)
        .map_or_else(|| format!("#{variant}"), |v| char::from(b'A' + v).to_string())
}

/// One rotation period: `variant` is live from `start` to `end`. `excluded` marks a period whose
/// swap failed or came late, so the analysis leaves it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbPeriod {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub variant: usize,
    #[serde(default)]
    pub excluded: bool,
}

/// The share of `[from, to)` during which each variant was live, given the spans variants were
/// actually live (excluded spans count: what matters here is what viewers saw). Time outside
/// every span (before the first swap, after the end) is no variant's, so the shares may sum to
/// less than 1. A daily reach figure mixes its variants in these proportions.
pub fn live_shares(spans: &[AbPeriod], from: DateTime<Utc>, to: DateTime<Utc>, variants: usize) -> Vec<f64> {
    let mut shares = vec![0.0; variants];
    let whole = (to - from).num_milliseconds() as f64;
    if whole <= 0.0 {
        return shares;
    }
    for span in spans.iter().filter(|s| s.variant < variants) {
        let overlap = (span.end.min(to) - span.start.max(from)).num_milliseconds();
        if overlap > 0 {
            shares[span.variant] += overlap as f64 / whole;
        }
    }
    shares
}

/// A pairwise comparison: `ratio` = variant `a`'s view rate (or click-through rate) ÷ variant `b`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairComparison {
    pub a: usize,
    pub b: usize,
    pub ratio: f64,
    /// 95 % (1 − α) interval, not adjusted for multiplicity.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Two-sided, not adjusted.
    pub p_value: f64,
    /// `ln ratio` and its standard error, which the verdicts are made from.
    #[serde(default)]
    pub log_ratio: f64,
    #[serde(default)]
    pub standard_error: f64,
}

impl PairComparison {
    /// From a log ratio, its standard error and the interval's critical value.
    pub fn from_log(a: usize, b: usize, log_ratio: f64, standard_error: f64, critical: f64) -> Self {
        let z = log_ratio / standard_error;
        Self {
            a,
            b,
            ratio: log_ratio.exp(),
            ci_low: (log_ratio - critical * standard_error).exp(),
            ci_high: (log_ratio + critical * standard_error).exp(),
            p_value: if z.is_finite() { 2.0 * (1.0 - stats::normal_cdf(z.abs())) } else { f64::NAN },
            log_ratio,
            standard_error,
        }
    }

    /// `ln(rate a ÷ rate b)` and its standard error for any ordered pair, read from the pairs
    /// (each stored once, `a < b`).
    pub(crate) fn between(pairs: &[Self], a: usize, b: usize) -> Option<(f64, f64)> {
        pairs.iter().find_map(|c| {
            if (c.a, c.b) == (a, b) {
                Some((c.log_ratio, c.standard_error))
            } else if (c.a, c.b) == (b, a) {
                Some((-c.log_ratio, c.standard_error))
            } else {
                None
            }
        })
    }
}
