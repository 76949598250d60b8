//! YouTube's public view counter: the true count of its last refresh, now and then frozen
//! for hours, once corrected downwards on some videos; and what disturbed a video's views and
//! its counter in a span.

use chrono::{DateTime, Utc};

use super::model::{
    CORRECTION_REMOVED, CORRECTION_SHARE, COUNTER_REFRESH_MINUTES, EARLY_FREEZE_HOURS, EARLY_FREEZE_SHARE,
    FREEZE_HOURS, FREEZE_PER_DAY, HOURLY_DAYS, HourlyNoise,
};
use super::{Disturbances, Mutations, NoiseJump, Video, World};
use crate::rng::{self, hash};

impl World {
    /// The instant whose count YouTube's public counter shows at `t`: the counter refreshes
    /// every few minutes, and now and then freezes for hours (early in a video's life once it is
    /// past 300 views, and at random later), showing the count of the moment it froze.
    fn counter_instant(&self, video: &Video, t: i64) -> i64 {
        let seed = self.params.seed;
        let h = |purpose: &str| video.key.h(seed, purpose);
        let period =
            (60.0 * rng::uniform(h("counter-period"), COUNTER_REFRESH_MINUTES.0, COUNTER_REFRESH_MINUTES.1)) as i64;
        let phase = (h("counter-phase") % period as u64) as i64;
        let mut u = (t - phase).div_euclid(period) * period + phase;
        let day = u.div_euclid(86_400);
        for (from, to) in self.counter_freezes(video, day - 1, day) {
            if (from..to).contains(&u) {
                u = from;
            }
        }
        u.min(t)
    }

    /// The counter's freezes (start and end, Unix seconds) that start on UTC days `first` to
    /// `last`: the early one, and the random later ones.
    fn counter_freezes(&self, video: &Video, first: i64, last: i64) -> Vec<(i64, i64)> {
        let seed = self.params.seed;
        let h = |purpose: &str| video.key.h(seed, purpose);
        let p = video.published.timestamp();
        let hours = |h: u64, range: (f64, f64)| (rng::uniform(h, range.0, range.1) * 3600.0) as i64;
        let mut out = Vec::new();
        if rng::unit(h("early-freeze")) < EARLY_FREEZE_SHARE {
            let from = p + hours(h("early-freeze-at"), (2.0, 30.0));
            let to = from + hours(h("early-freeze-hours"), EARLY_FREEZE_HOURS);
            if video.expected_total * Self::decay_share(video, p, from) >= 300.0 {
                out.push((from, to));
            }
        }
        let freeze_key = h("freeze");
        for day in first..=last {
            let hd = hash(freeze_key, &[day as u64]);
            if rng::unit(hd) < FREEZE_PER_DAY {
                let from = day * 86_400 + (rng::unit(rng::mix64(hd)) * 86_400.0) as i64;
                if from > p {
                    out.push((from, from + hours(rng::mix64(hd ^ 1), FREEZE_HOURS)));
                }
            }
        }
        out
    }

    /// What disturbed a video's views or its public counter between `from` and `to`: the
    /// noise's multi-hour jumps and the counter's freezes overlapping it (for evals, to tell a
    /// rule's false findings by their cause).
    pub fn disturbances(&self, video: &Video, from: DateTime<Utc>, to: DateTime<Utc>) -> Disturbances {
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or(video.published);
        let (from_s, to_s) = (from.timestamp(), to.timestamp());
        let p = video.published.timestamp();
        let mut jumps = Vec::new();
        let mut noise = HourlyNoise::start(video.key.h(self.params.seed, "noise"), video.noise_rho, p.div_euclid(3600));
        let mut left = 0;
        for hour in p.div_euclid(3600)..=to_s.div_euclid(3600).min((p + HOURLY_DAYS * 86_400).div_euclid(3600)) {
            noise.factor(hour);
            if noise.jump_hours_left > left && (hour + noise.jump_hours_left as i64) * 3600 > from_s {
                jumps.push(NoiseJump { at: at(hour * 3600), hours: noise.jump_hours_left, log_size: noise.jump });
            }
            left = noise.jump_hours_left;
        }
        let freezes = self
            .counter_freezes(video, from_s.div_euclid(86_400) - 1, to_s.div_euclid(86_400))
            .into_iter()
            .filter(|&(a, b)| b > from_s && a < to_s)
            .map(|(a, b)| (at(a), at(b)))
            .collect();
        Disturbances { jumps, freezes }
    }

    /// The views YouTube's public counter shows at `t`: the true count at its last refresh,
    /// less the views removed by a downward correction once it has happened (some videos).
    pub fn public_views(&self, video: &Video, muts: &Mutations, t: DateTime<Utc>) -> u64 {
        let seed = self.params.seed;
        let shown_at = self.counter_instant(video, t.timestamp());
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or(video.published);
        let views = self.true_views(video, muts, at(shown_at));
        if rng::unit(video.key.h(seed, "correction")) >= CORRECTION_SHARE {
            return views;
        }
        let corrected_at = video.published.timestamp()
            + (rng::uniform(video.key.h(seed, "correction-at"), 12.0, 240.0) * 3600.0) as i64;
        if shown_at < corrected_at {
            return views;
        }
        let share = rng::uniform(video.key.h(seed, "correction-share"), CORRECTION_REMOVED.0, CORRECTION_REMOVED.1);
        views - (self.true_views(video, muts, at(corrected_at)) as f64 * share).round() as u64
    }
}
