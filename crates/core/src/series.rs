//! A video's measured views as a series in time, shared by the A/B analysis and the outlier
//! rules: the measurements, the increments between them (with the public counter's stalls
//! joined to their catch-up), and the day's rhythm as Fourier terms.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

/// One measurement of a video's cumulative views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewsPoint {
    pub at: DateTime<Utc>,
    pub views: i64,
}

/// Views gained between two consecutive measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub views: f64,
}

/// Consecutive increments of a cumulative series (sorted by time; repeated instants keep the
/// first). YouTube sometimes corrects counts downwards; an increment is measured from the highest
/// count seen so far, so a correction is never counted twice.
pub(crate) fn increments(points: &[ViewsPoint]) -> Vec<Interval> {
    let mut sorted: Vec<ViewsPoint> = points.to_vec();
    sorted.sort_by_key(|p| p.at);
    sorted.dedup_by_key(|p| p.at);
    let mut out = Vec::with_capacity(sorted.len());
    let Some(first) = sorted.first() else { return out };
    let mut high = first.views;
    for w in sorted.windows(2) {
        let gained = (w[1].views - high).max(0);
        high = high.max(w[1].views);
        out.push(Interval { start: w[0].at, end: w[1].at, views: gained as f64 });
    }
    out
}

/// Below this many views an hour (the median over the intervals), an interval without views is
/// plausible; above it, one is YouTube's public counter standing still.
pub(crate) const STALL_MIN_RATE: f64 = 20.0;

/// Joins the intervals where the public counter of a busy video stood still (it freezes for
/// hours now and then, and after a downward correction stays below its old high for a while)
/// with the interval that catches up: the views of the whole span are right, its hours are not.
/// A stall still running at the end is left out.
pub(crate) fn merge_counter_stalls(intervals: Vec<Interval>) -> Vec<Interval> {
    let mut rates: Vec<f64> = intervals.iter().map(|iv| iv.views / hours_between(iv.start, iv.end).max(1e-9)).collect();
    rates.sort_by(f64::total_cmp);
    if rates.get(rates.len() / 2).is_none_or(|median| *median < STALL_MIN_RATE) {
        return intervals;
    }
    let mut out = Vec::with_capacity(intervals.len());
    let mut stall_start: Option<DateTime<Utc>> = None;
    for iv in intervals {
        match (iv.views <= 0.0, stall_start) {
            (true, None) => stall_start = Some(iv.start),
            (true, Some(_)) => {}
            (false, Some(start)) => {
                out.push(Interval { start, ..iv });
                stall_start = None;
            }
            (false, None) => out.push(iv),
        }
    }
    out
}

/// Hours from `a` to `b` (negative when `b` is earlier).
pub fn hours_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 3_600_000.0
}

/// The mean of `cos`/`sin(2πk·hour/24)` over an interval, for harmonics `1..=harmonics`.
pub(crate) fn diurnal_terms(start: DateTime<Utc>, end: DateTime<Utc>, harmonics: usize, out: &mut Vec<f64>) {
    let day_start = start.duration_trunc(Duration::days(1)).unwrap_or(start);
    let s = hours_between(day_start, start);
    let e = hours_between(day_start, end);
    for k in 1..=harmonics {
        let w = std::f64::consts::TAU * k as f64 / 24.0;
        if e - s < 1e-9 {
            out.push((w * s).cos());
            out.push((w * s).sin());
        } else {
            out.push(((w * e).sin() - (w * s).sin()) / (w * (e - s)));
            out.push(((w * s).cos() - (w * e).cos()) / (w * (e - s)));
        }
    }
}
