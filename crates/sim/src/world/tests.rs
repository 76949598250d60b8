#![allow(clippy::unwrap_used)]

use super::*;
use crate::rng;
use chrono::DurationRound;

fn world(channels: u32) -> World {
    World::new(WorldParams { seed: 42, channels, ..WorldParams::default() })
}

#[test]
fn video_ids_decode_to_their_keys() {
    let w = world(50);
    let now = w.params.epoch;
    for ch in w.channels() {
        for v in w.newest_videos(ch, now, 15) {
            assert_eq!(w.video_key(v.id.as_str()), Some(v.key));
            assert!(v.published <= now);
        }
    }
    assert_eq!(w.video_key("dQw4w9WgXcQ"), None);
}

#[test]
fn views_never_decrease_and_follow_multipliers() {
    let w = world(15);
    let muts = Mutations::default();
    let now = w.params.epoch;
    let mut checked = 0;
    for ch in w.channels() {
        for v in w.newest_videos(ch, now, 3) {
            let mut prev = 0;
            let mut t = v.published;
            while t < v.published + Duration::days(32) {
                let views = w.true_views(&v, &muts, t);
                assert!(views >= prev, "{} at {t}: {views} < {prev}", v.id);
                prev = views;
                t += Duration::minutes(71);
                checked += 1;
            }
        }
    }
    assert!(checked > 1000);
}

#[test]
fn the_disturbances_listed_are_the_counters_freezes_and_the_noises_jumps() {
    let w = world(80);
    let muts = Mutations::default();
    let (mut freezes, mut jumps) = (0, 0);
    for ch in w.channels() {
        for v in w.newest_videos(ch, w.params.epoch, 2) {
            let until = v.published + Duration::days(12);
            let d = w.disturbances(&v, v.published, until);
            for &(from, to) in &d.freezes {
                // Past the last refresh before it (every 5–20 minutes).
                let (a, b) = (from + Duration::minutes(21), to - Duration::minutes(1));
                if b > a && b < until {
                    let (shown_a, shown_b) = (w.live_state(&v, &muts, a).views, w.live_state(&v, &muts, b).views);
                    assert_eq!(shown_a, shown_b, "{}: the counter moved during the freeze {from}–{to}", v.id);
                    freezes += 1;
                }
            }
            for j in &d.jumps {
                assert!((3..=12).contains(&j.hours) && j.log_size != 0.0, "{}: {j:?}", v.id);
                assert!(j.at >= v.published.duration_trunc(Duration::hours(1)).unwrap() && j.at <= until);
                jumps += 1;
            }
        }
    }
    // 0.3 % of hours start a jump; 3 % of days and 30 % of videos early have a freeze.
    assert!(jumps > 10 && freezes > 10, "{jumps} jumps, {freezes} freezes");
}

#[test]
fn the_public_counter_lags_the_true_count_and_goes_down_only_when_corrected() {
    let w = world(80);
    let muts = Mutations::default();
    let (mut behind, mut went_down, mut checked) = (0, 0, 0);
    for ch in w.channels() {
        for v in w.newest_videos(ch, w.params.epoch, 2) {
            let mut prev = 0;
            for step in 0..(12 * 24 * 4) {
                let t = v.published + Duration::minutes(15 * step);
                let (public, truth) = (w.live_state(&v, &muts, t).views, w.true_views(&v, &muts, t));
                assert!(public <= truth, "{} at {t}: shows {public} of {truth}", v.id);
                behind += usize::from(public < truth);
                went_down += usize::from(public < prev);
                prev = public;
                checked += 1;
            }
        }
    }
    assert!(behind > checked / 4, "the counter is behind at {behind} of {checked} instants");
    // Corrections are rare: one in twenty videos, once each.
    assert!((1..checked / 1000).contains(&went_down), "{went_down} decreases in {checked} instants");
}

#[test]
fn reach_days_move_with_the_thumbnail_and_days_not_over_have_none() {
    let w = world(300);
    let mut muts = Mutations::default();
    let v = w
        .channels()
        .iter()
        .flat_map(|c| w.newest_videos(c, w.params.epoch - Duration::days(20), 3))
        .filter(|v| !v.is_short && v.creator_changes.is_empty())
        .max_by(|a, b| a.expected_total.total_cmp(&b.expected_total))
        .unwrap();
    let day0 = pacific_day(v.published.timestamp()) + 3;
    let days = |muts: &Mutations| -> Vec<ReachDay> {
        (day0..day0 + 8).map(|d| w.reach_day(&v, muts, d, w.params.epoch).unwrap()).collect()
    };
    let before = days(&muts);
    assert!(before.iter().all(|r| r.impressions > 1000), "{before:?}");
    let mean_ctr = before.iter().map(|r| r.ctr).sum::<f64>() / 8.0;
    assert!((mean_ctr / v.base_ctr - 1.0).abs() < 0.1, "{mean_ctr} vs {}", v.base_ctr);
    // The original thumbnail's CTR 1.5× from before the first day on: clicks move, impressions do not.
    w.set_multiplier(&mut muts, &v, VariantKind::Thumbnail, "c0", 1.5, v.published + Duration::hours(1));
    let after = days(&muts);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.impressions, b.impressions);
        assert!((a.ctr / b.ctr - 1.5).abs() < 0.1, "{b:?} → {a:?}");
    }
    assert_eq!(w.reach_day(&v, &muts, pacific_day(w.params.epoch.timestamp()), w.params.epoch), None);
    assert_eq!(w.reach_day(&v, &muts, pacific_day(v.published.timestamp()) - 1, w.params.epoch), None);
}

#[test]
fn poisson_quantiles_grow_with_the_mean_and_have_its_spread() {
    for u in [0.001, 0.1, 0.5, 0.9, 0.999] {
        let mut prev = 0;
        for i in 0..4000 {
            let q = poisson_quantile(f64::from(i) * 0.05, u);
            assert!(q >= prev, "u {u}, mean {}: {q} < {prev}", f64::from(i) * 0.05);
            prev = q;
        }
    }
    for lambda in [0.5, 4.0, 29.0, 31.0, 500.0] {
        let draws: Vec<f64> = (0..20_000).map(|i| poisson_quantile(lambda, rng::unit(rng::mix64(i))) as f64).collect();
        let m = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|d| (d - m).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!((m - lambda).abs() < 0.05 * lambda.max(1.0), "mean {m} for {lambda}");
        assert!((var / lambda - 1.0).abs() < 0.08, "variance {var} for {lambda}");
    }
}

#[test]
fn older_videos_keep_their_hourly_rhythm_and_noise() {
    // Past day 28 a whole day is one cheap piece, but within the day views still follow the
    // day/night rhythm with hour-to-hour noise, and the day adds up to the same total.
    let w = world(300);
    let muts = Mutations::default();
    let now = w.params.epoch;
    let mut checked = 0;
    for ch in w.channels() {
        for v in w.newest_videos(ch, now, 3).into_iter().filter(|v| !v.is_short) {
            let day = (v.published + Duration::days(32)).duration_trunc(Duration::days(1)).unwrap();
            let at = |h: i64| w.true_views(&v, &muts, day + Duration::hours(h)) as f64;
            if at(24) - at(0) < 24.0 * 20.0 {
                continue;
            }
            let hourly: Vec<f64> = (0..24).map(|h| at(h + 1) - at(h)).collect();
            let mean = hourly.iter().sum::<f64>() / 24.0;
            let cv = (hourly.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 23.0).sqrt() / mean;
            assert!(cv > 0.2, "{}: hourly views of day 32 too smooth (cv {cv:.3})", v.id);
            assert!(hourly.iter().all(|x| *x > 0.0));
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} busy videos");
}

#[test]
fn noise_free_views_are_what_hourly_views_vary_around() {
    // Unchanged videos: each hour's views ÷ the noise-free ones is the hourly noise
    // (log-normal, σ = 0.3).
    let w = world(300);
    let muts = Mutations::default();
    let (mut means, mut sds) = (Vec::new(), Vec::new());
    for ch in w.channels() {
        for v in w.newest_videos(ch, w.params.epoch, 5).into_iter().filter(|v| v.creator_changes.is_empty()) {
            // Whole UTC hours, each with its own noise.
            let first_hour = v.published.duration_trunc(Duration::hours(1)).unwrap() + Duration::hours(1);
            let at = |h: i64| first_hour + Duration::hours(h);
            let expected = w.noise_free_views(&v, at(24), at(7 * 24));
            if expected.iter().copied().fold(f64::MAX, f64::min) < 300.0 {
                continue;
            }
            let logs: Vec<f64> = (24..7 * 24)
                .map(|h| ((w.true_views(&v, &muts, at(h + 1)) - w.true_views(&v, &muts, at(h))) as f64).ln())
                .zip(expected.iter().map(|e| e.ln()))
                .map(|(real, free)| real - free)
                .collect();
            let mean = logs.iter().sum::<f64>() / logs.len() as f64;
            let sd = (logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (logs.len() - 1) as f64).sqrt();
            means.push(mean);
            sds.push(sd);
        }
    }
    assert!(means.len() >= 5, "only {} busy videos", means.len());
    // One video's mean wanders with its correlated noise and jumps; across videos it is the
    // log-normal's −σ²/2, and the deviation σ.
    means.sort_by(f64::total_cmp);
    sds.sort_by(f64::total_cmp);
    let (mean, sd) = (means[means.len() / 2], sds[sds.len() / 2]);
    assert!((-0.12..0.03).contains(&mean) && (0.26..0.36).contains(&sd), "log ratio {mean:.3} ± {sd:.3}");
    // Time past four weeks is left out.
    let v = w.newest_videos(&w.channels()[0], w.params.epoch, 1).remove(0);
    assert!(w.noise_free_views(&v, v.published + Duration::days(29), v.published + Duration::days(30)).is_empty());
}

#[test]
fn the_world_has_the_design_scale() {
    let w = world(2000);
    let now = w.params.epoch;
    let live: u64 = w.channels().iter().map(|c| w.videos_between(c, now - Duration::days(60), now).len() as u64).sum();
    // ~9 live videos per channel → ~90,000 at 10,000 channels.
    let per_channel = live as f64 / 2000.0;
    assert!((5.0..20.0).contains(&per_channel), "{per_channel} live videos per channel");
    let shorts = w.channels().iter().filter(|c| c.shorts_every_hours.is_some()).count();
    assert!(shorts > 200 && shorts < 1200, "{shorts}");
}
