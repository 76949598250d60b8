//! A video's true views at any instant, and what follows from them: the views of a span
//! without the noise, and the reach report's impressions and click-through rate of a day.

use chrono::{DateTime, Utc};

use super::model::{CTR_DAY_SIGMA, DAILY_NOISE_SIGMA, HOURLY_DAYS, HourlyNoise, hour_of_week, poisson_quantile};
use super::{Event, Mutations, ReachDay, Video, World, pacific_day, pacific_midnight};
use crate::rng::{self, hash, tag};

impl World {
    /// Share of a video's expected total that arrives between `from` and `to` (Unix seconds)
    /// under its power-law decay: `F(age) = 1 − (1 + age/τ)^−θ`.
    pub(super) fn decay_share(video: &Video, from: i64, to: i64) -> f64 {
        let p = video.published.timestamp();
        let tau_secs = video.tau_hours * 3600.0;
        let cumulative = |x: i64| 1.0 - (1.0 + (x - p).max(0) as f64 / tau_secs).powf(-video.theta);
        (cumulative(to) - cumulative(from)).max(0.0)
    }

    /// The video's click-through rate on the Pacific day of `t` ÷ its base rate: its
    /// day-to-day variation, log-normal with mean 1.
    fn ctr_day_factor(&self, video: &Video, t: i64) -> f64 {
        let day = pacific_day(t);
        let h = hash(video.key.h(self.params.seed, "ctr-day"), &[day as u64]);
        (CTR_DAY_SIGMA * rng::normal(h) - CTR_DAY_SIGMA * CTR_DAY_SIGMA / 2.0).exp()
    }

    /// The video's click-through rate with its original presentation on the Pacific day of `at`.
    pub fn ctr_of_day(&self, video: &Video, at: DateTime<Utc>) -> f64 {
        video.base_ctr * self.ctr_day_factor(video, at.timestamp())
    }

    /// The video's view rate at `t` relative to its original presentation on an average day:
    /// the impression-driven share moves with the click-through rate (the presentation's
    /// multiplier and the day's variation), the rest does not.
    fn response(&self, video: &Video, muts: &Mutations, events: &[Event], t: i64) -> f64 {
        let at = DateTime::from_timestamp(t, 0).unwrap_or(video.published);
        let multiplier = self.combined_multiplier(video, muts, events, at);
        video.impression_share * multiplier * self.ctr_day_factor(video, t) + 1.0 - video.impression_share
    }

    /// The true (engaged) views of a video at `t`, a whole count. Time is cut into pieces: during
    /// the first four weeks every UTC hour, later every UTC day, and either again where the
    /// presentation changes inside it. A piece's expected views are the video's expected total ×
    /// its decay share × the channel's rhythm of the hour (a day: of the day) × the noise (an
    /// AR(1) process with jumps, hour by hour; a day's own factor later) × the response to the
    /// presentation and the day's click-through rate. Its views are the Poisson quantile, at a
    /// uniform drawn for the piece, of the expected views elapsed in it, which never decreases
    /// as time passes and is exactly Poisson over a whole piece. Inside a day past the first four
    /// weeks, the day's count is spread over its hours by the rhythm and hour-to-hour noise.
    pub fn true_views(&self, video: &Video, muts: &Mutations, t: DateTime<Utc>) -> u64 {
        let p = video.published.timestamp();
        let end = t.timestamp();
        let Some(channel) = self.channel(video.key.channel).filter(|_| end > p) else { return 0 };
        let events = self.change_events(video, muts);
        let breaks = Self::breaks(video, muts, &events, end);
        let seed = self.params.seed;
        let count_key = video.key.h(seed, "count");
        let noise_key = video.key.h(seed, "noise");
        let expected = |s: i64, e: i64, factor: f64| {
            video.expected_total * Self::decay_share(video, s, e) * factor * self.response(video, muts, &events, s)
        };
        // The count of `[from, piece_end)` elapsed by `until`, cut at the breakpoints.
        let count = |from: i64, until: i64, piece_end: i64, factor: f64| {
            let mut n = 0;
            let mut s = from;
            while s < until {
                let e = breaks.iter().copied().find(|&b| b > s && b < piece_end).unwrap_or(piece_end);
                n += poisson_quantile(expected(s, e.min(until), factor), rng::unit(hash(count_key, &[s as u64])));
                s = e;
            }
            n
        };
        let hourly_until = p + HOURLY_DAYS * 86_400;
        let mut noise = HourlyNoise::start(noise_key, video.noise_rho, p.div_euclid(3600));
        let mut views = 0;
        let mut a = p;
        while a < end.min(hourly_until) {
            let hour = a.div_euclid(3600);
            let hour_end = ((hour + 1) * 3600).min(hourly_until);
            let factor = channel.rhythm[hour_of_week(hour)] * noise.factor(hour);
            views += count(a, hour_end.min(end), hour_end, factor);
            a = hour_end;
        }
        while a < end {
            let day = a.div_euclid(86_400);
            let day_end = (day + 1) * 86_400;
            let day_factor = self.day_factor(video, day);
            let hours: Vec<(i64, i64)> =
                (a.div_euclid(3600)..day_end / 3600).map(|h| ((h * 3600).max(a), (h + 1) * 3600)).collect();
            let rhythm_of_day =
                hours.iter().map(|(s, _)| channel.rhythm[hour_of_week(s.div_euclid(3600))]).sum::<f64>()
                    / hours.len().max(1) as f64;
            let split_inside = breaks.iter().any(|&b| b > a && b < day_end);
            if end >= day_end && !split_inside {
                views += count(a, day_end, day_end, day_factor * rhythm_of_day);
                a = day_end;
                continue;
            }
            // Inside the day, its hours keep the rhythm and the hour-to-hour noise of younger
            // videos, weighted so that the day adds up as a whole day would.
            let mut in_day = HourlyNoise::start(noise_key ^ tag("in-day"), video.noise_rho, a.div_euclid(3600));
            let weights: Vec<f64> = hours
                .iter()
                .map(|(s, e)| {
                    let hour = s.div_euclid(3600);
                    (e - s) as f64 * channel.rhythm[hour_of_week(hour)] * in_day.factor(hour)
                })
                .collect();
            let weight_sum: f64 = weights.iter().sum();
            if split_inside {
                let norm = rhythm_of_day * (day_end - a) as f64 / weight_sum.max(1e-12);
                for ((s, e), w) in hours.iter().zip(&weights) {
                    if *s >= end {
                        break;
                    }
                    let factor = day_factor * norm * w / (e - s) as f64;
                    views += count(*s, (*e).min(end), *e, factor);
                }
            } else {
                let day_count = count(a, day_end, day_end, day_factor * rhythm_of_day);
                let elapsed: f64 = hours
                    .iter()
                    .zip(&weights)
                    .map(|((s, e), w)| w * ((end.min(*e) - s).max(0) as f64 / (e - s) as f64))
                    .sum();
                views += (day_count as f64 * elapsed / weight_sum.max(1e-12)).floor() as u64;
            }
            a = day_end;
        }
        views
    }

    /// Presentation breakpoints: every change and override that took effect after publish and
    /// before `end`, in order.
    fn breaks(video: &Video, muts: &Mutations, events: &[Event], end: i64) -> Vec<i64> {
        let p = video.published.timestamp();
        let mut breaks: Vec<i64> = events.iter().map(|e| e.0.timestamp()).collect();
        if let Some(list) = muts.overrides.get(&video.key) {
            breaks.extend(list.iter().map(|o| o.at.timestamp()));
        }
        breaks.retain(|&b| b > p && b < end);
        breaks.sort_unstable();
        breaks.dedup();
        breaks
    }

    /// The noise factor of a whole UTC day past the first four weeks (mean 1).
    fn day_factor(&self, video: &Video, day: i64) -> f64 {
        let h = hash(video.key.h(self.params.seed, "day"), &[day as u64]);
        (DAILY_NOISE_SIGMA * rng::normal(h) - DAILY_NOISE_SIGMA.powi(2) / 2.0).exp()
    }

    /// What YouTube's reach report says of a video for one Pacific day (days since 1970-01-01
    /// there, see [`pacific_day`]): its thumbnail impressions and their click-through rate. Both
    /// follow the views' own noise; impressions do not depend on the presentation, clicks do.
    /// `None` for a day before the video was published or not yet over at `now`.
    pub fn reach_day(&self, video: &Video, muts: &Mutations, day: i64, now: DateTime<Utc>) -> Option<ReachDay> {
        let channel = self.channel(video.key.channel)?;
        let p = video.published.timestamp();
        let (day_start, day_end) = (pacific_midnight(day), pacific_midnight(day + 1));
        if day_end <= p || day_end > now.timestamp() {
            return None;
        }
        let events = self.change_events(video, muts);
        let breaks = Self::breaks(video, muts, &events, day_end);
        let seed = self.params.seed;
        let hourly_until = p + HOURLY_DAYS * 86_400;
        let mut noise = HourlyNoise::start(video.key.h(seed, "noise"), video.noise_rho, p.div_euclid(3600));
        let (mut impressions, mut clicks) = (0.0, 0.0);
        for hour in day_start.div_euclid(3600)..day_end.div_euclid(3600) {
            let (from, to) = ((hour * 3600).max(p), (hour + 1) * 3600);
            if to <= p {
                continue;
            }
            let rhythm = channel.rhythm[hour_of_week(hour)];
            let factor = if from < hourly_until {
                rhythm * noise.factor(hour)
            } else {
                rhythm * self.day_factor(video, from.div_euclid(86_400))
            };
            let mut s = from;
            while s < to {
                let e = breaks.iter().copied().find(|&b| b > s && b < to).unwrap_or(to);
                let driven = video.expected_total * Self::decay_share(video, s, e) * factor * video.impression_share;
                impressions += driven / video.base_ctr;
                let at = DateTime::from_timestamp(s, 0).unwrap_or(video.published);
                clicks += driven * self.combined_multiplier(video, muts, &events, at) * self.ctr_day_factor(video, s);
                s = e;
            }
        }
        let key = hash(video.key.h(seed, "reach"), &[day as u64]);
        let impressions = poisson_quantile(impressions, rng::unit(key));
        let clicks = poisson_quantile(clicks, rng::unit(rng::mix64(key))).min(impressions);
        let ctr = if impressions == 0 { 0.0 } else { clicks as f64 / impressions as f64 };
        Some(ReachDay { day, impressions, ctr })
    }

    /// The views `[from, to)` would get with the original presentation on an average day and
    /// without the hour-to-hour noise, split at UTC hours: the video's decay times its channel's
    /// rhythm, the mean its hourly views vary around. Only the first four weeks after publish,
    /// where every hour has its own noise; later time is left out. What a rule that knew the
    /// video's trajectory exactly would expect, for judging estimators against the best possible.
    pub fn noise_free_views(&self, video: &Video, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<f64> {
        let Some(channel) = self.channel(video.key.channel) else { return Vec::new() };
        let p = video.published.timestamp();
        let (from, to) = (from.timestamp().max(p), to.timestamp().min(p + HOURLY_DAYS * 86_400));
        let mut pieces = Vec::new();
        let mut s = from;
        while s < to {
            let hour = s.div_euclid(3600);
            let e = ((hour + 1) * 3600).min(to);
            pieces.push(video.expected_total * Self::decay_share(video, s, e) * channel.rhythm[hour_of_week(hour)]);
            s = e;
        }
        pieces
    }
}
