//! Fault injection: which failure, if any, a request meets. Rates are configured per endpoint
//! (with a default for all), and the draw is a pure function of (seed, endpoint, that endpoint's
//! request counter), so a test that sends the same requests meets the same faults.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::rng::{self, tag};

/// The endpoint families faults are configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `GET /feeds/videos.xml`
    Feed,
    /// `GET /watch`
    Watch,
    /// `POST /youtubei/v1/player`
    Player,
    /// `POST /youtubei/v1/navigation/resolve_url`
    ResolveUrl,
    /// `GET /vi/ID/NAME.jpg`
    Thumbnail,
    /// `/youtube/v3/…` and `/upload/youtube/v3/…`
    DataApi,
    /// `/o/oauth2/v2/auth`, `/token`, `/revoke`
    OAuth,
    /// The Reporting API: `/v1/reportTypes`, `/v1/jobs…` and report downloads under `/v1/media/…`
    Reporting,
}

impl Endpoint {
    pub const ALL: [Endpoint; 8] = [
        Endpoint::Feed,
        Endpoint::Watch,
        Endpoint::Player,
        Endpoint::ResolveUrl,
        Endpoint::Thumbnail,
        Endpoint::DataApi,
        Endpoint::OAuth,
        Endpoint::Reporting,
    ];

    /// Which endpoint a request path belongs to (`None`: the control API, never faulted).
    pub fn classify(path: &str) -> Option<Endpoint> {
        Some(match path {
            "/feeds/videos.xml" => Endpoint::Feed,
            "/watch" => Endpoint::Watch,
            "/youtubei/v1/player" => Endpoint::Player,
            "/youtubei/v1/navigation/resolve_url" => Endpoint::ResolveUrl,
            "/o/oauth2/v2/auth" | "/token" | "/revoke" => Endpoint::OAuth,
            p if p.starts_with("/vi/") => Endpoint::Thumbnail,
            p if p.starts_with("/youtube/v3/") || p.starts_with("/upload/youtube/v3/") => Endpoint::DataApi,
            p if p.starts_with("/v1/") => Endpoint::Reporting,
            _ => return None,
        })
    }

    fn index(self) -> usize {
        Endpoint::ALL.iter().position(|e| *e == self).unwrap_or(0)
    }

    /// Whether a fault kind means anything for this endpoint.
    fn applies(self, fault: Fault) -> bool {
        match fault {
            Fault::BotCheck | Fault::Consent | Fault::WrongVideo => matches!(self, Endpoint::Watch | Endpoint::Player),
            Fault::Outage => self == Endpoint::Feed,
            _ => true,
        }
    }
}

/// Failure rates (each in [0, 1]; their sum should not exceed 1) and added latency for one
/// endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultSpec {
    /// Added wall-clock latency, drawn uniformly from `[latency_min_ms, latency_max_ms]`.
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    pub rate_429: f64,
    pub rate_500: f64,
    pub rate_503: f64,
    /// The request hangs for `FaultConfig::hang_secs` (a client timeout should fire first).
    pub rate_hang: f64,
    /// The body is cut in half (the connection ends cleanly, the document is incomplete).
    pub rate_truncate: f64,
    /// Watch/player: `playabilityStatus.status = "LOGIN_REQUIRED"`, "Sign in to confirm you’re not a bot".
    pub rate_bot_check: f64,
    /// Watch/player: a redirect to the cookie-consent interstitial.
    pub rate_consent: f64,
    /// Watch/player: the player response of another video.
    pub rate_wrong_video: f64,
    /// Feed: a valid channel's feed answers 404 (YouTube's feeds do this now and then).
    pub rate_outage: f64,
}

/// Every endpoint's faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// Applies to endpoints without their own entry.
    pub default: FaultSpec,
    pub endpoints: BTreeMap<Endpoint, FaultSpec>,
    /// How long a hanging request waits before it finally answers 504 (wall seconds).
    pub hang_secs: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self { default: FaultSpec::default(), endpoints: BTreeMap::new(), hang_secs: 300 }
    }
}

impl FaultConfig {
    pub fn spec(&self, endpoint: Endpoint) -> &FaultSpec {
        self.endpoints.get(&endpoint).unwrap_or(&self.default)
    }
}

/// The failure a request meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    TooManyRequests,
    InternalError,
    Unavailable,
    Hang,
    Truncate,
    BotCheck,
    Consent,
    WrongVideo,
    Outage,
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub latency_ms: u64,
    pub fault: Option<Fault>,
}

/// Per-endpoint request counters and the draw.
#[derive(Debug, Default)]
pub struct FaultDice {
    counters: [AtomicU64; Endpoint::ALL.len()],
    injected: [AtomicU64; Endpoint::ALL.len()],
}

impl FaultDice {
    pub fn roll(&self, seed: u64, endpoint: Endpoint, spec: &FaultSpec) -> Decision {
        let n = self.counters[endpoint.index()].fetch_add(1, Ordering::Relaxed);
        let h = rng::hash(seed, &[tag("fault"), endpoint.index() as u64, n]);
        let latency_ms = if spec.latency_max_ms > spec.latency_min_ms {
            spec.latency_min_ms + rng::hash(h, &[1]) % (spec.latency_max_ms - spec.latency_min_ms + 1)
        } else {
            spec.latency_min_ms
        };
        let table = [
            (Fault::TooManyRequests, spec.rate_429),
            (Fault::InternalError, spec.rate_500),
            (Fault::Unavailable, spec.rate_503),
            (Fault::Hang, spec.rate_hang),
            (Fault::Truncate, spec.rate_truncate),
            (Fault::BotCheck, spec.rate_bot_check),
            (Fault::Consent, spec.rate_consent),
            (Fault::WrongVideo, spec.rate_wrong_video),
            (Fault::Outage, spec.rate_outage),
        ];
        let mut x = rng::unit(rng::hash(h, &[2]));
        let mut fault = None;
        for (kind, rate) in table {
            let rate = if endpoint.applies(kind) { rate.clamp(0.0, 1.0) } else { 0.0 };
            if x < rate {
                fault = Some(kind);
                break;
            }
            x -= rate;
        }
        if fault.is_some() {
            self.injected[endpoint.index()].fetch_add(1, Ordering::Relaxed);
        }
        Decision { latency_ms, fault }
    }

    /// (requests seen, faults injected) per endpoint.
    pub fn counts(&self) -> BTreeMap<Endpoint, (u64, u64)> {
        Endpoint::ALL
            .iter()
            .map(|e| {
                (
                    *e,
                    (
                        self.counters[e.index()].load(Ordering::Relaxed),
                        self.injected[e.index()].load(Ordering::Relaxed),
                    ),
                )
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_honoured_and_inapplicable_faults_skipped() {
        let dice = FaultDice::default();
        let spec = FaultSpec { rate_429: 0.25, rate_bot_check: 0.5, ..FaultSpec::default() };
        let mut n429 = 0;
        for _ in 0..4000 {
            let d = dice.roll(1, Endpoint::Feed, &spec);
            assert_ne!(d.fault, Some(Fault::BotCheck), "bot checks only hit watch pages and the player");
            n429 += usize::from(d.fault == Some(Fault::TooManyRequests));
        }
        assert!((800..1200).contains(&n429), "{n429}");
        let again = FaultDice::default();
        let first: Vec<_> = (0..50).map(|_| again.roll(1, Endpoint::Watch, &spec)).collect();
        let other = FaultDice::default();
        let second: Vec<_> = (0..50).map(|_| other.roll(1, Endpoint::Watch, &spec)).collect();
        assert_eq!(first, second);
    }
}
