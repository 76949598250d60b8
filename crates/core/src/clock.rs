//! Clocks. Every time-dependent decision takes `now` from a `Clock`, so 60 days can be simulated
//! in seconds and two processes given the same accelerated-clock parameters agree on "now".

use std::fmt::Debug;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> DateTime<Utc>;

    /// How long to really wait for `virtual_span` of this clock's time to pass.
    fn wall_span(&self, virtual_span: Duration) -> std::time::Duration {
        virtual_span.to_std().unwrap_or_default()
    }

    /// How much of this clock's time passes in `wall` of real time (leases are wall-time
    /// guarantees, so they are converted with this).
    fn virtual_span(&self, wall: std::time::Duration) -> Duration {
        Duration::from_std(wall).unwrap_or(Duration::MAX)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told: fixed, set or stepped (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Time stands still unless someone moves it: poll briefly instead of sleeping for the span.
    fn wall_span(&self, _virtual_span: Duration) -> std::time::Duration {
        std::time::Duration::from_millis(5)
    }
}

/// `virtual = virt0 + (wall - wall0) * speed`. Deterministic in its parameters, so a simulator
/// and a service started with the same `virt0`, `wall0` and `speed` share one "now".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AcceleratedClock {
    pub virt0: DateTime<Utc>,
    pub wall0: DateTime<Utc>,
    pub speed: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("clock speed must be a finite number between 1 and 1000000, got {0}")]
    Speed(String),
    #[error(
        "accelerated clock must look like 'VIRT0@WALL0x SPEED' with RFC 3339 times, e.g. 2026-01-01T00:00:00Z@2026-11-27T06:00:00Zx3600; got {0:?}"
    )]
    Format(String),
}

impl AcceleratedClock {
    pub fn new(virt0: DateTime<Utc>, wall0: DateTime<Utc>, speed: f64) -> Result<Self, ClockError> {
        if !speed.is_finite() || !(1.0..=1_000_000.0).contains(&speed) {
            return Err(ClockError::Speed(speed.to_string()));
        }
        Ok(Self { virt0, wall0, speed })
    }

    /// Starts now: virtual time `virt0` at this wall instant.
    pub fn starting_now(virt0: DateTime<Utc>, speed: f64) -> Result<Self, ClockError> {
        Self::new(virt0, Utc::now(), speed)
    }

    pub fn at_wall(&self, wall: DateTime<Utc>) -> DateTime<Utc> {
        let elapsed = (wall - self.wall0).num_microseconds().unwrap_or(i64::MAX) as f64;
        self.virt0 + Duration::microseconds((elapsed * self.speed) as i64)
    }

    /// Parses `VIRT0@WALL0xSPEED`, the form passed between processes.
    pub fn parse(s: &str) -> Result<Self, ClockError> {
        let err = || ClockError::Format(s.to_owned());
        let (virt0, rest) = s.split_once('@').ok_or_else(err)?;
        let (wall0, speed) = rest.rsplit_once('x').ok_or_else(err)?;
        let virt0 = DateTime::parse_from_rfc3339(virt0.trim()).map_err(|_| err())?.to_utc();
        let wall0 = DateTime::parse_from_rfc3339(wall0.trim()).map_err(|_| err())?.to_utc();
        let speed: f64 = speed.trim().parse().map_err(|_| ClockError::Speed(speed.to_owned()))?;
        Self::new(virt0, wall0, speed)
    }
}

impl std::fmt::Display for AcceleratedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}x{}", self.virt0.to_rfc3339(), self.wall0.to_rfc3339(), self.speed)
    }
}

impl Clock for AcceleratedClock {
    fn now(&self) -> DateTime<Utc> {
        self.at_wall(Utc::now())
    }

    fn wall_span(&self, virtual_span: Duration) -> std::time::Duration {
        virtual_span.to_std().unwrap_or_default().div_f64(self.speed)
    }

    fn virtual_span(&self, wall: std::time::Duration) -> Duration {
        Duration::from_std(wall.mul_f64(self.speed)).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn accelerated_clocks_with_the_same_parameters_agree() {
        let a = AcceleratedClock::new(t("2026-01-01T00:00:00Z"), t("2026-11-27T06:00:00Z"), 3600.0).unwrap();
        let b = AcceleratedClock::parse(&a.to_string()).unwrap();
        assert_eq!(a, b);
        // One wall second is one virtual hour.
        assert_eq!(a.at_wall(t("2026-11-27T06:00:01Z")), t("2026-01-01T01:00:00Z"));
        assert_eq!(b.at_wall(t("2026-11-27T06:00:10Z")), t("2026-01-01T10:00:00Z"));
        assert_eq!(a.wall_span(Duration::hours(2)), std::time::Duration::from_secs(2));
        assert_eq!(a.virtual_span(std::time::Duration::from_secs(3)), Duration::hours(3));
    }

    #[test]
    fn bad_accelerated_clocks() {
        assert!(matches!(AcceleratedClock::starting_now(Utc::now(), 0.0), Err(ClockError::Speed(_))));
        assert!(matches!(AcceleratedClock::starting_now(Utc::now(), f64::NAN), Err(ClockError::Speed(_))));
        assert!(matches!(AcceleratedClock::parse("yesterday"), Err(ClockError::Format(_))));
        assert!(AcceleratedClock::parse("2026-01-01T00:00:00Z@2026-11-27T06:00:00Zxfast").is_err());
    }

    #[test]
    fn manual_clock_steps() {
        let c = ManualClock::new(t("2026-01-01T00:00:00Z"));
        c.advance(Duration::minutes(90));
        assert_eq!(c.now(), t("2026-01-01T01:30:00Z"));
        c.set(t("2026-02-01T00:00:00Z"));
        assert_eq!(c.now(), t("2026-02-01T00:00:00Z"));
    }
}
