//! US Pacific time, which YouTube counts its days in: reach reports are per Pacific day, the
//! Data API's quota resets at Pacific midnight, and watch pages write `publishDate` in it.

use chrono::{DateTime, Datelike, Duration, FixedOffset, TimeZone, Utc};

/// Pacific time's offset at `t`: PST −8, PDT −7 from the second Sunday of March 02:00 to the
/// first Sunday of November 02:00 (local).
pub fn offset(t: DateTime<Utc>) -> FixedOffset {
    let year = t.year();
    let nth_sunday = |month: u32, n: u32| -> Option<DateTime<Utc>> {
        let first = Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single()?;
        let to_sunday = (7 - first.weekday().num_days_from_sunday()) % 7;
        Some(first + Duration::days(i64::from(to_sunday + 7 * (n - 1))))
    };
    let dst = match (nth_sunday(3, 2), nth_sunday(11, 1)) {
        (Some(start), Some(end)) => t >= start + Duration::hours(10) && t < end + Duration::hours(9),
        _ => false,
    };
    let hours = if dst { -7 } else { -8 };
    FixedOffset::east_opt(hours * 3600).expect("-7 and -8 hours are valid offsets")
}

/// The index of `t`'s day in Pacific time (Unix seconds in, days since 1970-01-01 there out).
pub fn day(t: i64) -> i64 {
    let offset = DateTime::from_timestamp(t, 0).map_or(-8 * 3600, |at| offset(at).local_minus_utc());
    (t + i64::from(offset)).div_euclid(86_400)
}

/// The instant (Unix seconds) Pacific day `day` begins: its local midnight.
pub fn midnight(day: i64) -> i64 {
    let utc_guess = day * 86_400 + 8 * 3600;
    let offset = DateTime::from_timestamp(utc_guess, 0).map_or(-8 * 3600, |t| offset(t).local_minus_utc());
    day * 86_400 - i64::from(offset)
}

/// The first Pacific midnight at or after `t`.
pub fn next_midnight(t: DateTime<Utc>) -> DateTime<Utc> {
    let today = day(t.timestamp());
    let start = if midnight(today) >= t.timestamp() { midnight(today) } else { midnight(today + 1) };
    DateTime::from_timestamp(start, 0).unwrap_or(t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn offsets_follow_daylight_saving_time() {
        assert_eq!(offset(t("2026-01-15T12:00:00Z")).local_minus_utc(), -8 * 3600);
        assert_eq!(offset(t("2026-07-15T12:00:00Z")).local_minus_utc(), -7 * 3600);
        // 2026-03-08 is the second Sunday of March: DST starts at 10:00 UTC.
        assert_eq!(offset(t("2026-03-08T09:59:00Z")).local_minus_utc(), -8 * 3600);
        assert_eq!(offset(t("2026-03-08T10:00:00Z")).local_minus_utc(), -7 * 3600);
    }

    #[test]
    fn midnights_are_08_00_or_07_00_utc() {
        assert_eq!(next_midnight(t("2026-01-15T12:00:00Z")), t("2026-01-16T08:00:00Z"));
        assert_eq!(next_midnight(t("2026-01-16T08:00:00Z")), t("2026-01-16T08:00:00Z"));
        assert_eq!(next_midnight(t("2026-07-15T06:59:00Z")), t("2026-07-15T07:00:00Z"));
        // Across the change to summer time the day is 23 hours long.
        let d = day(t("2026-03-08T12:00:00Z").timestamp());
        assert_eq!(midnight(d + 1) - midnight(d), 23 * 3600);
    }
}
