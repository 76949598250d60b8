//! The tracking schedule policy (the seed's TTLs): a video is measured every `step` (an hour by
//! default) until `fine_for` after publish (7 days), then once a day at midnight UTC until
//! `track_for` after publish (60 days), then no more.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::slot::Slot;

/// How often a video is measured in its first week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Resolution(u32);

impl Resolution {
    pub const HOURLY: Self = Self(60);

    /// A step in minutes: at least 2 (the finest the design supports) and dividing an hour.
    pub fn minutes(m: u32) -> Result<Self, PolicyError> {
        if m >= 2 && 60 % m == 0 { Ok(Self(m)) } else { Err(PolicyError::Resolution(m)) }
    }

    pub fn as_minutes(self) -> u32 {
        self.0
    }

    pub fn step(self) -> Duration {
        Duration::minutes(i64::from(self.0))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("tracking resolution must be at least 2 minutes and divide 60, got {0}")]
    Resolution(u32),
    #[error(
        "the fine-tracking period ({fine_days} days) must be at least 1 day and shorter than the tracking period ({track_days} days)"
    )]
    Periods { fine_days: u32, track_days: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulePolicy {
    resolution: Resolution,
    fine_for: Duration,
    track_for: Duration,
}

impl Default for SchedulePolicy {
    fn default() -> Self {
        Self { resolution: Resolution::HOURLY, fine_for: Duration::days(7), track_for: Duration::days(60) }
    }
}

impl SchedulePolicy {
    pub fn new(resolution: Resolution, fine_days: u32, track_days: u32) -> Result<Self, PolicyError> {
        if fine_days == 0 || fine_days >= track_days {
            return Err(PolicyError::Periods { fine_days, track_days });
        }
        Ok(Self {
            resolution,
            fine_for: Duration::days(i64::from(fine_days)),
            track_for: Duration::days(i64::from(track_days)),
        })
    }

    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// Days after publish when tracking stops.
    pub fn track_days(&self) -> i64 {
        self.track_for.num_days()
    }

    fn step(&self) -> Duration {
        self.resolution.step()
    }

    /// The last fine slot: the fine grid's last point before `published + fine_for`.
    fn last_fine_slot(&self, published: DateTime<Utc>) -> Slot {
        Slot::containing(published + self.fine_for - Duration::nanoseconds(1), self.step())
    }

    /// The slot `now` falls in, or `None` once tracking has ended. Before publish, the first slot.
    pub fn slot_at(&self, published: DateTime<Utc>, now: DateTime<Utc>) -> Option<Slot> {
        let now = now.max(published);
        if now - published < self.fine_for {
            return Some(Slot::containing(now, self.step()));
        }
        let day = Slot::day_of(now);
        if day.start() - published >= self.track_for {
            return None;
        }
        if day.start() >= published + self.fine_for { Some(day) } else { Some(self.last_fine_slot(published)) }
    }

    /// The slot after `slot`, or `None` when `slot` was the last one.
    pub fn next_slot(&self, published: DateTime<Utc>, slot: Slot) -> Option<Slot> {
        let candidate = slot.start() + self.step();
        if candidate < published + self.fine_for {
            return Some(Slot::from_aligned(candidate));
        }
        let next_day = Slot::day_of(slot.start()).start() + Duration::days(1);
        (next_day - published < self.track_for).then(|| Slot::from_aligned(next_day))
    }

    /// Every slot of a video's life, in order (168 hourly + ~53 daily with the defaults).
    pub fn all_slots(&self, published: DateTime<Utc>) -> Vec<Slot> {
        let mut out = Vec::new();
        let mut next = self.slot_at(published, published);
        while let Some(slot) = next {
            out.push(slot);
            next = self.next_slot(published, slot);
        }
        out
    }
}

/// When the next hourly channel check is due: `offset` before the next hour strictly after `now`,
/// so a video published since is measured within the same hour.
pub fn next_channel_check(now: DateTime<Utc>, offset: Duration) -> DateTime<Utc> {
    let mut at = Slot::hour_of(now + offset).start() + Duration::hours(1) - offset;
    while at <= now {
        at += Duration::hours(1);
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn default_life_has_the_seed_counts() {
        let p = SchedulePolicy::default();
        let published = t("2026-11-01T10:00:00Z");
        let slots = p.all_slots(published);
        let hourly = slots.iter().filter(|s| s.start() < published + Duration::days(7)).count();
        assert_eq!(hourly, 168);
        assert_eq!(slots.len(), 168 + 53);
        assert_eq!(slots[0].start(), published);
        assert!(slots.windows(2).all(|w| w[0] < w[1]));
        assert!(slots.iter().all(|s| s.start() - published < Duration::days(60)));
        // Daily slots are at midnight.
        assert!(slots[168..].iter().all(|s| s.start() == Slot::day_of(s.start()).start()));
    }

    #[test]
    fn slot_at_matches_the_sequence() {
        let p = SchedulePolicy::default();
        let published = t("2026-11-01T10:23:11Z");
        let slots = p.all_slots(published);
        assert_eq!(slots[0].start(), t("2026-11-01T10:00:00Z"));
        // Every instant maps to the last slot at or before it.
        let mut now = published;
        while now < published + Duration::days(61) {
            let want = slots.iter().rev().find(|s| s.start() <= now).copied();
            let got = p.slot_at(published, now);
            if now - published < Duration::days(60) || got.is_some() {
                assert_eq!(got, want, "at {now}");
            }
            now += Duration::minutes(37);
        }
        assert_eq!(p.slot_at(published, published + Duration::days(61)), None);
        assert_eq!(p.next_slot(published, *slots.last().unwrap()), None);
    }

    #[test]
    fn video_added_late_starts_at_the_current_slot() {
        let p = SchedulePolicy::default();
        let published = t("2026-11-01T10:00:00Z");
        assert_eq!(p.slot_at(published, t("2026-11-03T07:45:00Z")).unwrap().start(), t("2026-11-03T07:00:00Z"));
        assert_eq!(p.slot_at(published, t("2026-11-20T07:45:00Z")).unwrap().start(), t("2026-11-20T00:00:00Z"));
        // Between the last hourly slot and the first midnight after day 7.
        assert_eq!(p.slot_at(published, t("2026-11-08T13:00:00Z")).unwrap().start(), t("2026-11-08T09:00:00Z"));
    }

    #[test]
    fn finer_resolution_and_bad_policies() {
        let p = SchedulePolicy::new(Resolution::minutes(10).unwrap(), 7, 60).unwrap();
        let published = t("2026-11-01T10:00:00Z");
        assert_eq!(
            p.all_slots(published).iter().filter(|s| s.start() < published + Duration::days(7)).count(),
            7 * 24 * 6
        );
        assert!(Resolution::minutes(1).is_err());
        assert!(Resolution::minutes(7).is_err());
        assert!(SchedulePolicy::new(Resolution::HOURLY, 0, 60).is_err());
        assert!(SchedulePolicy::new(Resolution::HOURLY, 60, 60).is_err());
    }

    #[test]
    fn channel_checks_run_before_the_hour() {
        let off = Duration::minutes(5);
        assert_eq!(next_channel_check(t("2026-11-27T05:10:00Z"), off), t("2026-11-27T05:55:00Z"));
        assert_eq!(next_channel_check(t("2026-11-27T05:55:00Z"), off), t("2026-11-27T06:55:00Z"));
        assert_eq!(next_channel_check(t("2026-11-27T05:57:00Z"), off), t("2026-11-27T06:55:00Z"));
    }
}
