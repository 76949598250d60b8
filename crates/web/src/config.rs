//! What the web edge is configured with: plans and their limits, session and cookie policy, login
//! throttling, and Stripe. The binary builds this from its `Settings`; tests build it directly.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tubewatch_store::{Plan, User};

/// A count limit: a number, or `"unlimited"` in configuration files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LimitRepr", into = "LimitRepr")]
pub enum Limit {
    Unlimited,
    AtMost(u32),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum LimitRepr {
    Count(u32),
    Word(String),
}

impl TryFrom<LimitRepr> for Limit {
    type Error = String;
    fn try_from(r: LimitRepr) -> Result<Self, String> {
        match r {
            LimitRepr::Count(n) => Ok(Self::AtMost(n)),
            LimitRepr::Word(w) if w == "unlimited" => Ok(Self::Unlimited),
            LimitRepr::Word(w) => Err(format!("{w:?} is not a limit (a number or \"unlimited\")")),
        }
    }
}

impl From<Limit> for LimitRepr {
    fn from(l: Limit) -> Self {
        match l {
            Limit::Unlimited => Self::Word("unlimited".into()),
            Limit::AtMost(n) => Self::Count(n),
        }
    }
}

impl Limit {
    /// `None` for unlimited, as the store takes it.
    pub fn get(self) -> Option<u32> {
        match self {
            Self::Unlimited => None,
            Self::AtMost(n) => Some(n),
        }
    }
}

/// What one plan allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    /// Channels monitored at once.
    pub channels: Limit,
    /// Individually tracked videos added per calendar month (UTC). Videos of monitored channels
    /// cost nothing.
    pub videos_per_month: Limit,
    /// Whether A/B tests may be created.
    pub ab_tests: bool,
}

impl PlanLimits {
    pub const UNLIMITED: Self = Self { channels: Limit::Unlimited, videos_per_month: Limit::Unlimited, ab_tests: true };
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Plans {
    pub free: PlanLimits,
    pub premium: PlanLimits,
}

impl Default for Plans {
    fn default() -> Self {
        Self {
            free: PlanLimits { channels: Limit::AtMost(3), videos_per_month: Limit::AtMost(10), ab_tests: false },
            premium: PlanLimits { channels: Limit::AtMost(100), videos_per_month: Limit::Unlimited, ab_tests: true },
        }
    }
}

impl Plans {
    /// The limits that apply to `user`: admins are unlimited whatever their plan.
    pub fn for_user(&self, user: &User) -> &PlanLimits {
        if user.is_admin {
            return &PlanLimits::UNLIMITED;
        }
        match user.plan {
            Plan::Free => &self.free,
            Plan::Premium => &self.premium,
        }
    }
}

/// Account policy.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountsConfig {
    pub plans: Plans,
    /// Mark cookies `Secure` (set when the service is reached over HTTPS).
    pub cookie_secure: bool,
    pub session_days: u32,
    /// Failed log-ins per account within the window before log-in is refused.
    pub login_max_failures_per_account: u32,
    /// Failed log-ins per client address within the window before log-in is refused.
    pub login_max_failures_per_ip: u32,
    pub login_window_minutes: u32,
    /// Sign-ups per client address within the window.
    pub signups_per_ip: u32,
    /// A new account must follow a mailed link before it can log in. Off: sign-ups can log in at
    /// once (the binary turns it off by default when mail only goes to the outbox folder).
    pub verify_email: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

/// The HTTP edge's own limits and trust.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// A request not answered within this (its body included) is answered 408: a client that
    /// sends slowly cannot hold a connection and its handler for ever.
    pub request_timeout: std::time::Duration,
    /// Requests handled at once; any beyond are answered 503 at once.
    pub max_concurrent_requests: usize,
    /// Reverse proxies in front of the service. Only a request from one of these is believed
    /// about its client (`Forwarded` / `X-Forwarded-For`); from anyone else those headers are
    /// ignored, so a client cannot choose the address it is throttled under.
    pub trusted_proxies: Vec<IpRange>,
    /// The origin users reach the service at (`https://tw.example`), accepted in a state-changing
    /// request's `Origin` besides the request's own `Host`.
    pub public_origin: Option<String>,
    /// `/metrics` answers a request with `Authorization: Bearer <this>`; `None`: only clients on
    /// the loopback interface (a scraper on the same machine).
    pub metrics_token: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout: std::time::Duration::from_secs(60),
            max_concurrent_requests: 1024,
            trusted_proxies: Vec::new(),
            public_origin: None,
            metrics_token: None,
        }
    }
}

/// An address range in CIDR notation (`10.0.0.0/8`, `fd00::/8`), or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u128::from(net.to_bits()), u128::from(ip.to_bits()), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask(net.to_bits(), ip.to_bits(), self.prefix, 128),
            _ => false,
        }
    }
}

/// Whether `a` and `b` agree on their first `prefix` of `width` bits.
fn mask(a: u128, b: u128, prefix: u8, width: u32) -> bool {
    let shift = width - u32::from(prefix);
    shift >= width || (a >> shift) == (b >> shift)
}

impl FromStr for IpRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let network: IpAddr = addr.trim().parse().map_err(|_| format!("{s:?} is not an address or CIDR range"))?;
        let network = network.to_canonical();
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("{s:?}: bad prefix length"))?,
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Serialize for IpRange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            plans: Plans::default(),
            cookie_secure: false,
            session_days: 30,
            login_max_failures_per_account: 5,
            login_max_failures_per_ip: 50,
            login_window_minutes: 15,
            signups_per_ip: 20,
            verify_email: true,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Stripe, when billing is on.
#[derive(Clone, PartialEq)]
pub struct StripeConfig {
    /// `https://api.stripe.com` in production; a local stand-in in tests.
    pub base_url: String,
    pub secret_key: String,
    pub webhook_secret: String,
    /// The recurring price of the premium plan (`price_…`).
    pub premium_price_id: String,
    /// Where Checkout sends the user back (`{public_url}/billing/success` …).
    pub public_url: String,
    /// How old a webhook signature's timestamp may be.
    pub tolerance_seconds: i64,
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("base_url", &self.base_url)
            .field("secret_key", &"[redacted]")
            .field("webhook_secret", &"[redacted]")
            .field("premium_price_id", &self.premium_price_id)
            .field("public_url", &self.public_url)
            .field("tolerance_seconds", &self.tolerance_seconds)
            .finish()
    }
}

/// Everything the web edge is configured with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebConfig {
    pub accounts: AccountsConfig,
    pub http: HttpConfig,
    /// `None`: billing is off and plans are changed by an admin (`tubewatch user plan`).
    pub stripe: Option<StripeConfig>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn limits_read_numbers_and_unlimited() {
        let plans: Plans = serde_json::from_str(
            r#"{"free":{"channels":1,"videos_per_month":"unlimited","ab_tests":false},
                "premium":{"channels":"unlimited","videos_per_month":5,"ab_tests":true}}"#,
        )
        .unwrap();
        assert_eq!(plans.free.channels, Limit::AtMost(1));
        assert_eq!(plans.free.videos_per_month.get(), None);
        assert_eq!(plans.premium.videos_per_month.get(), Some(5));
        assert!(serde_json::from_str::<Limit>(r#""lots""#).is_err());
        assert_eq!(serde_json::to_string(&Limit::Unlimited).unwrap(), r#""unlimited""#);
    }

    #[test]
    fn ranges_contain_what_they_say() {
        let range = |s: &str| s.parse::<IpRange>().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(range("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!range("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(range("127.0.0.1").contains(ip("127.0.0.1")) && !range("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(range("127.0.0.1").contains(ip("::ffff:127.0.0.1")), "IPv4-mapped addresses are IPv4");
        assert!(range("0.0.0.0/0").contains(ip("8.8.8.8")) && !range("0.0.0.0/0").contains(ip("::1")));
        assert!(range("fd00::/8").contains(ip("fd12::1")) && !range("fd00::/8").contains(ip("fe80::1")));
        assert!(range("::/0").contains(ip("2001:db8::1")));
        for bad in ["", "10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x"] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
        assert_eq!(range("10.1.0.0/16").to_string(), "10.1.0.0/16");
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let stripe = StripeConfig {
            base_url: "http://x".into(),
            secret_key: "sk_test_123".into(),
            webhook_secret: "whsec_456".into(),
            premium_price_id: "price_1".into(),
            public_url: "http://x".into(),
            tolerance_seconds: 300,
        };
        let debug = format!("{stripe:?}");
        assert!(!debug.contains("sk_test_123") && !debug.contains("whsec_456"), "{debug}");
    }
}
