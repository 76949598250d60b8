//! Time slots: the aligned instants a measurement belongs to (UTC).

use std::fmt;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

/// The aligned start of a measurement period. A views record belongs to exactly one slot, and
/// `(video, slot)` is unique, so a retried measurement never duplicates a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slot(DateTime<Utc>);

impl Slot {
    /// The slot of `step` length containing `t` (steps are aligned to the Unix epoch, so any step
    /// dividing an hour is also hour-aligned, and a day step is midnight-aligned).
    pub fn containing(t: DateTime<Utc>, step: Duration) -> Self {
        Self(t.duration_trunc(step).unwrap_or(t))
    }

    pub fn hour_of(t: DateTime<Utc>) -> Self {
        Self::containing(t, Duration::hours(1))
    }

    pub fn day_of(t: DateTime<Utc>) -> Self {
        Self::containing(t, Duration::days(1))
    }

    /// A slot from an instant already known to be aligned (e.g. read back from the store).
    pub fn from_aligned(t: DateTime<Utc>) -> Self {
        Self(t)
    }

    pub fn start(self) -> DateTime<Utc> {
        self.0
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%SZ"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn alignment() {
        assert_eq!(Slot::hour_of(t("2026-11-27T05:59:59.9Z")).start(), t("2026-11-27T05:00:00Z"));
        assert_eq!(Slot::hour_of(t("2026-11-27T05:00:00Z")).start(), t("2026-11-27T05:00:00Z"));
        assert_eq!(Slot::day_of(t("2026-11-27T23:10:00Z")).start(), t("2026-11-27T00:00:00Z"));
        let ten = Duration::minutes(10);
        assert_eq!(Slot::containing(t("2026-11-27T05:29:00Z"), ten).start(), t("2026-11-27T05:20:00Z"));
        assert_eq!(Slot::hour_of(t("2026-11-27T05:10:00Z")).to_string(), "2026-11-27T05:00:00Z");
    }
}
