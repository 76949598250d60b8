//! When the weekly outlier runs happen and what they judge: the settings the pipeline holds and
//! the outlier and digest jobs read.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc, Weekday};
use tubewatch_core::outliers::{BandConfig, ChangeOutlierConfig, ChannelOutlierConfig};

/// When the weekly runs happen and what they judge.
#[derive(Debug, Clone, PartialEq)]
pub struct OutliersConfig {
    /// Day and hour (UTC) of the weekly run.
    pub weekday: Weekday,
    pub hour: u32,
    /// Digests are due this long after the runs.
    pub digest_delay: Duration,
    /// A video is judged against its channel once, at the first run where it is at least this old
    /// (early counts mostly measure how fast a video starts, not how far it goes).
    pub judge_at_hours: i64,
    pub band: BandConfig,
    pub channel: ChannelOutlierConfig,
    pub change: ChangeOutlierConfig,
    /// The service's public base URL, for links in mail (unsubscribe).
    pub public_url: String,
}

impl Default for OutliersConfig {
    fn default() -> Self {
        Self {
            weekday: Weekday::Mon,
            hour: 2,
            digest_delay: Duration::hours(3),
            judge_at_hours: 72,
            band: BandConfig::default(),
            channel: ChannelOutlierConfig::default(),
            change: ChangeOutlierConfig::default(),
            public_url: "http://127.0.0.1:8080".into(),
        }
    }
}

impl OutliersConfig {
    /// The first weekly run time strictly after `t`.
    pub fn next_run_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let run = self.run_at_or_before(t) + Duration::weeks(1);
        if run > t { run } else { run + Duration::weeks(1) }
    }

    /// The latest weekly run time at or before `t`.
    pub fn run_at_or_before(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let hour = NaiveTime::from_hms_opt(self.hour.min(23), 0, 0).unwrap_or_default();
        let back = (7 + t.weekday().num_days_from_monday() - self.weekday.num_days_from_monday()) % 7;
        let candidate = (t.date_naive() - Duration::days(i64::from(back))).and_time(hour).and_utc();
        if candidate <= t { candidate } else { candidate - Duration::weeks(1) }
    }

    /// The label of the week a run at `run` reports: the ISO week of the day before it, e.g.
    /// `2026-W10` for a Monday run reporting the week that just ended.
    pub fn week_label(run: DateTime<Utc>) -> String {
        let week = (run - Duration::days(1)).iso_week();
        format!("{}-W{:02}", week.year(), week.week())
    }

    /// The window whose changes a run at `run` judges: a week, ending `hours_after` before the
    /// run so that every judged change has its whole comparison window measured.
    pub fn change_window(&self, run: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let lag = Duration::seconds((self.change.hours_after * 3600.0) as i64);
        (run - Duration::weeks(1) - lag, run - lag)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn weekly_times_and_labels() {
        let c = OutliersConfig::default(); // Monday 02:00 UTC
        // 2026-03-09 is a Monday.
        assert_eq!(c.run_at_or_before(t("2026-03-09T02:00:00Z")), t("2026-03-09T02:00:00Z"));
        assert_eq!(c.run_at_or_before(t("2026-03-09T01:59:00Z")), t("2026-03-02T02:00:00Z"));
        assert_eq!(c.run_at_or_before(t("2026-03-12T15:00:00Z")), t("2026-03-09T02:00:00Z"));
        assert_eq!(c.next_run_after(t("2026-03-09T02:00:00Z")), t("2026-03-16T02:00:00Z"));
        assert_eq!(c.next_run_after(t("2026-03-08T23:00:00Z")), t("2026-03-09T02:00:00Z"));
        assert_eq!(OutliersConfig::week_label(t("2026-03-09T02:00:00Z")), "2026-W10");
        assert_eq!(OutliersConfig::week_label(t("2026-01-05T02:00:00Z")), "2026-W01");
        let friday = OutliersConfig { weekday: Weekday::Fri, hour: 18, ..c.clone() };
        assert_eq!(friday.next_run_after(t("2026-03-09T02:00:00Z")), t("2026-03-13T18:00:00Z"));
        let (from, to) = c.change_window(t("2026-03-09T02:00:00Z"));
        assert_eq!((from, to), (t("2026-02-27T02:00:00Z"), t("2026-03-06T02:00:00Z")));
    }
}
