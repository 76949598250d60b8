//! The simulated world and its ground truth: channels, their videos, and every video's views at
//! any instant. Nothing here is precomputed per hour: a video is a pure function of
//! (seed, channel, stream, index), and its views at `t` are the integral of a non-negative rate
//! from its publish time to `t`, so views never decrease and 10,000 channels fit in memory.
//!
//! The only mutable part is [`Mutations`]: thumbnail/title changes made through the Data API and
//! multiplier overrides set through the control API, each stamped with the virtual time it took
//! effect, so the past is never rewritten.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tubewatch_core::{ChannelId, Handle, VideoId};

use tubewatch_core::normal_quantile;

use crate::rng::{self, hash, tag};

/// What the world is made of; everything else follows from the seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WorldParams {
    pub seed: u64,
    pub channels: u32,
    /// The world's "day zero": videos exist from `epoch - history_days` on, and continue forever.
    pub epoch: DateTime<Utc>,
    pub history_days: u32,
    /// Share of videos whose creator swaps the thumbnail once, a few hours to a week after publish.
    pub creator_thumbnail_change_rate: f64,
    /// Share of videos whose creator edits the title once.
    pub creator_title_change_rate: f64,
    /// Share of videos that are true breakouts (5–20× the views the video would otherwise get).
    pub breakout_rate: f64,
    /// Share of creator variants (a creator's own new thumbnail or title) that are strong (±40–60 %
    /// on click-through rate) rather than drawn from the usual small spread. The calibrated value
    /// is the published one; an evaluation of change detection may raise it to see enough large
    /// lifts (uploaded variants keep the calibrated share).
    pub creator_strong_variant_share: f64,
    /// Share of videos without a `maxresdefault` thumbnail (served as the grey 404 placeholder).
    pub maxres_missing_rate: f64,
}

impl Default for WorldParams {
    fn default() -> Self {
        Self {
            seed: 1,
            channels: 10_000,
            epoch: Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).single().expect("a valid date"),
            history_days: 400,
            creator_thumbnail_change_rate: 0.06,
            creator_title_change_rate: 0.04,
            breakout_rate: 0.015,
            creator_strong_variant_share: VARIANT_STRONG_SHARE,
            maxres_missing_rate: 0.15,
        }
    }
}

/// Long-form uploads and Shorts are two independent upload streams per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Long,
    Short,
}

impl Stream {
    fn bit(self) -> u64 {
        match self {
            Stream::Long => 0,
            Stream::Short => 1,
        }
    }
}

/// Which of a video's two variable presentations a variant belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantKind {
    Thumbnail,
    Title,
}

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// Part of the world model: the creator changed it in YouTube Studio.
    Creator,
    /// Made through the simulated Data API (`thumbnails.set`, `videos.update`).
    Api,
}

/// Identifies one video inside the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VideoKey {
    pub channel: u32,
    pub stream: Stream,
    pub index: u32,
}

impl PartialOrd for Stream {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Stream {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bit().cmp(&other.bit())
    }
}

impl VideoKey {
    fn h(&self, seed: u64, purpose: &str) -> u64 {
        hash(seed, &[tag(purpose), u64::from(self.channel), self.stream.bit(), u64::from(self.index)])
    }
}

/// One channel of the world (its truth).
#[derive(Debug, Clone, Serialize)]
pub struct Channel {
    #[serde(skip)]
    pub index: u32,
    pub id: ChannelId,
    pub handle: Handle,
    pub title: String,
    pub created: DateTime<Utc>,
    pub subscribers: u64,
    /// The audience's time zone, which sets the day/night rhythm of views.
    pub utc_offset_hours: i32,
    /// Mean hours between long-form uploads (`None`: this channel only posts Shorts).
    pub long_every_hours: Option<f64>,
    /// Mean hours between Shorts (`None`: no Shorts).
    pub shorts_every_hours: Option<f64>,
    /// Median total views of a long-form video (before breakouts and multipliers).
    pub typical_long_views: f64,
    pub typical_short_views: f64,
    pub like_ratio: f64,
    /// Peak ÷ trough of the day/night rhythm (about 2: consumer traffic).
    pub day_night_ratio: f64,
    /// Busiest ÷ quietest day of the week.
    pub weekday_ratio: f64,
    #[serde(skip)]
    phase_hours: [f64; 2],
    /// View-rate factor per UTC hour of the week, Monday 00:00 first (mean 1): the day/night
    /// rhythm in the audience's time zone times the weekday effect.
    #[serde(skip)]
    rhythm: Box<[f64; HOURS_PER_WEEK]>,
}

impl Channel {
    fn every(&self, stream: Stream) -> Option<f64> {
        match stream {
            Stream::Long => self.long_every_hours,
            Stream::Short => self.shorts_every_hours,
        }
    }
}

/// A creator's own change, part of the deterministic world.
#[derive(Debug, Clone, Serialize)]
pub struct CreatorChange {
    pub at: DateTime<Utc>,
    pub kind: VariantKind,
    pub variant: String,
}

/// One video's fixed properties (its truth), derived from the seed.
#[derive(Debug, Clone)]
pub struct Video {
    pub key: VideoKey,
    pub id: VideoId,
    pub is_short: bool,
    pub published: DateTime<Utc>,
    pub length_seconds: u32,
    /// Log-normal quality factor (median 1).
    pub quality: f64,
    /// `Some(factor)` for a true breakout: 5–20× the views the video would otherwise get.
    pub breakout: Option<f64>,
    /// Total views this video would reach, in the end, under multiplier 1.
    pub expected_total: f64,
    /// The view rate decays as `(1 + age/τ)^−(1+θ)`: τ in hours…
    pub tau_hours: f64,
    /// …and θ.
    pub theta: f64,
    /// Share of views that come from impressions, the share a thumbnail or title moves.
    pub impression_share: f64,
    /// Click-through rate of the original presentation (before its day-to-day variation).
    pub base_ctr: f64,
    /// Lag-one autocorrelation of the hour-to-hour noise.
    pub noise_rho: f64,
    /// A Short's plays per engaged view (1 for long-form videos).
    pub plays_per_view: f64,
    pub has_maxres: bool,
    pub creator_changes: Vec<CreatorChange>,
    pub category: &'static str,
    pub keywords: Vec<String>,
}

/// One presentation change: when, which kind, who made it, the new variant, and (for titles)
/// the new text.
type Event = (DateTime<Utc>, VariantKind, ChangeSource, String, Option<String>);

/// A change made through the Data API.
#[derive(Debug, Clone)]
struct ApiChange {
    at: DateTime<Utc>,
    kind: VariantKind,
    variant: String,
    title: Option<String>,
}

/// A multiplier set through the control API, effective from `at`.
#[derive(Debug, Clone, Serialize)]
pub struct MultiplierOverride {
    pub at: DateTime<Utc>,
    pub kind: VariantKind,
    pub variant: String,
    pub multiplier: f64,
}

/// The mutable part of the world, every entry stamped with the virtual time it took effect.
#[derive(Debug, Default)]
pub struct Mutations {
    changes: HashMap<VideoKey, Vec<ApiChange>>,
    overrides: HashMap<VideoKey, Vec<MultiplierOverride>>,
    /// Uploaded thumbnail images by variant id.
    images: HashMap<String, std::sync::Arc<Vec<u8>>>,
}

impl Mutations {
    pub fn image(&self, variant: &str) -> Option<std::sync::Arc<Vec<u8>>> {
        self.images.get(variant).cloned()
    }
}

/// A change as the truth API reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeTruth {
    pub video_id: VideoId,
    pub channel_id: ChannelId,
    pub at: DateTime<Utc>,
    pub kind: VariantKind,
    pub source: ChangeSource,
    pub variant: String,
    pub previous_variant: String,
    /// The new variant's multiplier in effect when the change happened.
    pub multiplier: f64,
    pub previous_multiplier: f64,
    /// The change's effect on the video's view rate: the multipliers act on click-through rate,
    /// so only on the impression-driven share of views.
    pub views_lift: f64,
    /// For title changes, the new title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A video's truth at an instant, as the control API and the in-process accessors report it.
#[derive(Debug, Clone, Serialize)]
pub struct VideoTruth {
    pub id: VideoId,
    pub channel_id: ChannelId,
    pub is_short: bool,
    pub published: DateTime<Utc>,
    pub length_seconds: u32,
    /// Log-normal quality factor (median 1).
    pub quality: f64,
    /// `Some(factor)` when the video is a true breakout (5–20× the views it would otherwise get).
    pub breakout: Option<f64>,
    /// Total views in the end at multiplier 1.
    pub expected_total_views: f64,
    pub tau_hours: f64,
    pub theta: f64,
    /// Lag-one autocorrelation of the hour-to-hour noise.
    pub noise_rho: f64,
    pub impression_share: f64,
    pub base_ctr: f64,
    pub has_maxres: bool,
    /// The instant the live fields below describe.
    pub at: DateTime<Utc>,
    /// What the public counter shows.
    pub views: u64,
    /// The true count, which the public counter follows with refreshes, freezes and corrections.
    pub true_views: u64,
    /// A Short's counter of plays (`views` for long-form).
    pub plays: u64,
    pub likes: u64,
    pub title: String,
    pub thumbnail_variant: String,
    pub title_variant: String,
    pub thumbnail_multiplier: f64,
    pub title_multiplier: f64,
    pub changes: Vec<ChangeTruth>,
    pub overrides: Vec<MultiplierOverride>,
}

/// A multi-hour jump of a video's hour-to-hour noise.
#[derive(Debug, Clone, Serialize)]
pub struct NoiseJump {
    pub at: DateTime<Utc>,
    pub hours: u64,
    /// Its deviation in log views.
    pub log_size: f64,
}

/// What disturbed a video's views and its public counter in a span (see [`World::disturbances`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Disturbances {
    pub jumps: Vec<NoiseJump>,
    /// The counter's freezes: it showed the count of their start until their end.
    pub freezes: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The live state of a video at an instant, as the endpoints serve it.
#[derive(Debug, Clone)]
pub struct LiveState {
    /// What the public counter shows (engaged views for a Short).
    pub views: u64,
    /// A Short's second counter, of plays (every start and replay); `views` for long-form.
    pub plays: u64,
    pub likes: u64,
    pub title: String,
    pub thumbnail_variant: String,
    pub title_variant: String,
    pub thumbnail_multiplier: f64,
    pub title_multiplier: f64,
    /// The last change of title or thumbnail at or before the instant (feed `<updated>`).
    pub updated: DateTime<Utc>,
}

/// One row of a reach report: a video's thumbnail impressions on one Pacific day and the
/// share of them that became views.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReachDay {
    /// Days since 1970-01-01 in US Pacific time.
    pub day: i64,
    pub impressions: u64,
    pub ctr: f64,
}

/// The variant id of an uploaded thumbnail: `u` + SHA-256 of the bytes, so a caller can compute
/// it before uploading (e.g. to set its multiplier first).
pub fn thumbnail_variant_id(image_bytes: &[u8]) -> String {
    format!("u{}", hex(&Sha256::digest(image_bytes)))
}

/// The variant id of a title set through the API: `u` + SHA-256 of its UTF-8 text.
pub fn title_variant_id(title: &str) -> String {
    format!("u{}", hex(&Sha256::digest(title.as_bytes())))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The world: immutable channels plus on-demand videos.
#[derive(Debug)]
pub struct World {
    pub params: WorldParams,
    channels: Vec<Channel>,
    by_id: HashMap<String, u32>,
    by_handle: HashMap<String, u32>,
    history_start: DateTime<Utc>,
    id_key: u64,
}

// The calibrated model. Each figure is measured back by `tubewatch eval world` beside the
// published value it is drawn from (`crate::calibration`, which cites the sources).

/// A channel's long-form reach: a typical video's total views ÷ subscribers, log-uniform.
const REACH: (f64, f64) = (0.0003, 0.06);
/// The same for Shorts.
const SHORTS_REACH: (f64, f64) = (0.003, 0.12);
/// Log-space deviation of video quality (the spread of videos within a channel).
const QUALITY_SIGMA: f64 = 1.25;
/// Views decay as a power law, rate ∝ (1 + age/τ)^−(1+θ): median τ in hours (long, Short)…
pub const DECAY_TAU_HOURS: (f64, f64) = (6.0, 4.0);
/// …the log-space deviation of a video's τ around it…
pub const DECAY_TAU_SIGMA: f64 = 0.3;
/// …and the range of θ.
pub const DECAY_THETA: (f64, f64) = (0.3, 0.5);
/// Range of the day/night amplitude `a` (peak ÷ trough = (1+a)/(1−a), about 2).
const DAY_AMPLITUDE: (f64, f64) = (0.28, 0.42);
/// Range of the weekday amplitude.
const WEEK_AMPLITUDE: (f64, f64) = (0.03, 0.12);
/// Days after publish during which every hour is its own piece, with its own noise and count
/// (later, a day is one piece unless a change falls inside it).
const HOURLY_DAYS: i64 = 28;
/// The hour-to-hour noise: the marginal deviation of an AR(1) process in log space…
pub const HOURLY_NOISE_SIGMA: f64 = 0.3;
/// …whose lag-one autocorrelation is drawn per video from this range.
const NOISE_RHO: (f64, f64) = (0.5, 0.7);
/// Rare jumps: the chance an hour starts one, how many hours it lasts, its log-space deviation.
const JUMP_START_PER_HOUR: f64 = 0.003;
const JUMP_HOURS: (u64, u64) = (3, 12);
const JUMP_SIGMA: f64 = 0.5;
/// Day-to-day noise of videos past [`HOURLY_DAYS`].
const DAILY_NOISE_SIGMA: f64 = 0.15;
/// Share of a video's views that come from impressions (browse, search, suggested), the share a
/// thumbnail or title can move; the rest (notifications, external, end screens) it cannot.
const IMPRESSION_SHARE_LONG: (f64, f64) = (0.6, 0.85);
const IMPRESSION_SHARE_SHORT: (f64, f64) = (0.3, 0.5);
/// Click-through rate: median and log-space deviation of a video's base CTR, and the deviation
/// of its day-to-day variation (per Pacific day, as reach reports count days).
const CTR_MEDIAN: f64 = 0.045;
const CTR_SIGMA: f64 = 0.4;
pub const CTR_DAY_SIGMA: f64 = 0.07;
/// A presentation variant's multiplier on CTR: log-normal with this deviation, with a share of
/// strong variants (±40–60 %), clamped.
const VARIANT_SIGMA: f64 = 0.12;
const VARIANT_STRONG_SHARE: f64 = 0.05;
const VARIANT_CLAMP: (f64, f64) = (0.6, 1.6);
/// The public counter: it shows the count of its last refresh, refreshed every few minutes…
const COUNTER_REFRESH_MINUTES: (f64, f64) = (5.0, 20.0);
/// …freezes early for hours on some videos once past 300 views…
const EARLY_FREEZE_SHARE: f64 = 0.3;
const EARLY_FREEZE_HOURS: (f64, f64) = (1.0, 6.0);
/// …freezes now and then later…
const FREEZE_PER_DAY: f64 = 0.03;
const FREEZE_HOURS: (f64, f64) = (1.0, 4.0);
/// …and is corrected downwards once on some videos (views found invalid and removed).
const CORRECTION_SHARE: f64 = 0.08;
const CORRECTION_REMOVED: (f64, f64) = (0.005, 0.03);
/// A Short's counter of plays (every start and replay) over its engaged views.
const SHORT_PLAYS_PER_VIEW: (f64, f64) = (1.5, 3.0);

const HOURS_PER_WEEK: usize = 168;

/// The hour of the week (Monday 00:00 = 0) of a UTC hour counted from the Unix epoch (a Thursday).
fn hour_of_week(unix_hour: i64) -> usize {
    (unix_hour + 3 * 24).rem_euclid(HOURS_PER_WEEK as i64) as usize
}

/// A channel's view-rate factor per UTC hour of the week, mean 1: a day/night cosine peaking at
/// `peak_hour` local time times a weekday cosine peaking on local weekday `peak_day` (Monday 0).
fn weekly_rhythm(
    utc_offset_hours: i32,
    day_amplitude: f64,
    peak_hour: f64,
    week_amplitude: f64,
    peak_day: f64,
) -> Box<[f64; HOURS_PER_WEEK]> {
    use std::f64::consts::TAU;
    let mut rhythm = Box::new([0.0; HOURS_PER_WEEK]);
    for (utc, r) in rhythm.iter_mut().enumerate() {
        let local = (utc as f64 + 0.5 + f64::from(utc_offset_hours)).rem_euclid(HOURS_PER_WEEK as f64);
        let day = 1.0 + day_amplitude * (TAU * (local.rem_euclid(24.0) - peak_hour) / 24.0).cos();
        let week = 1.0 + week_amplitude * (TAU * (local / 24.0 - 0.5 - peak_day) / 7.0).cos();
        *r = day * week;
    }
    let mean = rhythm.iter().sum::<f64>() / HOURS_PER_WEEK as f64;
    rhythm.iter_mut().for_each(|r| *r /= mean);
    rhythm
}

/// Peak ÷ trough of the average day, and busiest ÷ quietest UTC day, of a weekly rhythm.
fn rhythm_ratios(rhythm: &[f64; HOURS_PER_WEEK]) -> (f64, f64) {
    let by_hour: Vec<f64> = (0..24).map(|h| (0..7).map(|d| rhythm[d * 24 + h]).sum::<f64>()).collect();
    let by_day: Vec<f64> = (0..7).map(|d| rhythm[d * 24..d * 24 + 24].iter().sum::<f64>()).collect();
    let ratio =
        |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max) / v.iter().copied().fold(f64::MAX, f64::min).max(1e-9);
    (ratio(&by_hour), ratio(&by_day))
}

/// The `u`-quantile of a Poisson distribution with mean `lambda`: exact below 30, the
/// Cornish–Fisher normal approximation above (never below the exact quantile at 30). For a fixed
/// `u` it never decreases as `lambda` grows, which is what keeps counts from going backwards as
/// a piece of time fills up.
pub fn poisson_quantile(lambda: f64, u: f64) -> u64 {
    const EXACT_BELOW: f64 = 30.0;
    let exact = |lambda: f64| {
        let mut p = (-lambda).exp();
        let (mut cdf, mut k) = (p, 0u64);
        while cdf < u && k < 400 {
            k += 1;
            p *= lambda / k as f64;
            cdf += p;
        }
        k
    };
    if lambda.is_nan() || lambda <= 0.0 {
        return 0;
    }
    if lambda < EXACT_BELOW {
        return exact(lambda);
    }
    let z = normal_quantile(u.clamp(1e-12, 1.0 - 1e-12));
    let approx = (lambda + z * lambda.sqrt() + (z * z - 1.0) / 6.0 + 0.5).floor().max(0.0) as u64;
    // The exact quantile at 30 is below 80 for any `u` this sees: only a low approximation needs it.
    if approx >= 80 { approx } else { approx.max(exact(EXACT_BELOW)) }
}

/// The multiplicative hour-to-hour noise of a video, an AR(1) process in log space with rare
/// jumps lasting several hours, generated hour by hour from a starting hour. Its factor has
/// mean 1.
struct HourlyNoise {
    key: u64,
    rho: f64,
    hour: i64,
    level: f64,
    jump: f64,
    jump_hours_left: u64,
}

impl HourlyNoise {
    fn start(key: u64, rho: f64, hour: i64) -> Self {
        let level = HOURLY_NOISE_SIGMA * rng::normal(hash(key, &[hour as u64]));
        let mut noise = Self { key, rho, hour, level, jump: 0.0, jump_hours_left: 0 };
        noise.maybe_jump();
        noise
    }

    fn maybe_jump(&mut self) {
        let h = hash(self.key, &[tag("jump"), self.hour as u64]);
        if self.jump_hours_left > 0 {
            self.jump_hours_left -= 1;
        } else if rng::unit(h) < JUMP_START_PER_HOUR {
            self.jump = JUMP_SIGMA * rng::normal(rng::mix64(h));
            self.jump_hours_left = JUMP_HOURS.0 + rng::mix64(h ^ 7) % (JUMP_HOURS.1 - JUMP_HOURS.0 + 1);
        }
        if self.jump_hours_left == 0 {
            self.jump = 0.0;
        }
    }

    /// The factor of `hour` (at or after the last one asked for).
    fn factor(&mut self, hour: i64) -> f64 {
        let innovation = HOURLY_NOISE_SIGMA * (1.0 - self.rho * self.rho).sqrt();
        while self.hour < hour {
            self.hour += 1;
            self.level = self.rho * self.level + innovation * rng::normal(hash(self.key, &[self.hour as u64]));
            self.maybe_jump();
        }
        let jump_mean = if self.jump_hours_left > 0 { JUMP_SIGMA * JUMP_SIGMA / 2.0 } else { 0.0 };
        (self.level - HOURLY_NOISE_SIGMA * HOURLY_NOISE_SIGMA / 2.0 + self.jump - jump_mean).exp()
    }
}

const ADJECTIVES: &[&str] = &[
    "Curious", "Atomic", "Quiet", "Golden", "Rusty", "Hidden", "Electric", "Lazy", "Brave", "Tiny", "Cosmic", "Urban",
    "Wild", "Honest", "Broken", "Sunny", "Midnight", "Clever", "Analog", "Daily",
];
const NOUNS: &[&str] = &[
    "Kitchen", "Garage", "Science", "Garden", "Pixel", "Workshop", "Travels", "Gaming", "Money", "History", "Fitness",
    "Robots", "Cats", "Music", "Coffee", "Engines", "Physics", "Drawing", "Bikes", "Finance",
];
const TOPICS: &[&str] = &[
    "sourdough",
    "black holes",
    "a 1987 pickup",
    "tiny houses",
    "budget PCs",
    "octopuses",
    "the stock market",
    "Roman roads",
    "espresso",
    "solar panels",
    "chess openings",
    "vintage synths",
    "marathons",
    "bonsai",
    "quantum computers",
    "street food",
    "3D printers",
    "volcanoes",
    "retro consoles",
    "knife sharpening",
];
const CATEGORIES: &[&str] =
    &["Education", "Entertainment", "Science & Technology", "Gaming", "Howto & Style", "People & Blogs"];

fn pick<'a>(h: u64, list: &[&'a str]) -> &'a str {
    list[(h % list.len() as u64) as usize]
}

/// A title in one of several styles; some carry the characters that break naive parsers
/// (`&`, quotes, `};`, `<`, emoji) because real titles do.
fn make_title(h: u64) -> String {
    let topic = pick(rng::mix64(h ^ 1), TOPICS);
    let n = 2 + rng::mix64(h ^ 2) % 98;
    let adj = pick(rng::mix64(h ^ 3), ADJECTIVES).to_lowercase();
    let base = match h % 9 {
        0 => format!("I tried {topic} for {n} days"),
        1 => format!("Why {topic} are {adj} (and why it matters)"),
        2 => format!("{n} things nobody tells you about {topic}"),
        3 => format!("The truth about {topic}"),
        4 => format!("{topic}: a {adj} guide"),
        5 => format!("We built {topic} & it worked?!"),
        6 => format!("\"{topic}\" is not what you think"),
        7 => format!("{topic} in {n} seconds 🔥"),
        _ => format!("Rating {topic} <{n}/100> {{}};"),
    };
    let mut chars = base.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => base,
    }
}

impl World {
    pub fn new(params: WorldParams) -> Self {
        let seed = params.seed;
        let history_start = params.epoch - Duration::days(i64::from(params.history_days));
        let mut channels = Vec::with_capacity(params.channels as usize);
        let mut by_id = HashMap::new();
        let mut by_handle = HashMap::new();
        let mut used_handles = HashSet::new();
        for index in 0..params.channels.min((1 << 20) - 1) {
            let ch = |purpose: &str| hash(seed, &[tag(purpose), u64::from(index)]);
            let mut id = String::from("UC");
            let (a, b) = (ch("id-a"), ch("id-b"));
            id.push_str(&rng::encode_id11(a));
            id.push_str(&rng::encode_id11(b));
            let id = match ChannelId::parse(&id[..24]) {
                Ok(id) => id,
                Err(_) => continue, // cannot happen: the alphabet is the id alphabet
            };
            let title = format!("{} {}", pick(ch("adj"), ADJECTIVES), pick(ch("noun"), NOUNS));
            let slug: String = title.to_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            let mut handle_text = slug.clone();
            let mut n = 1;
            while used_handles.contains(&handle_text) {
                n += 1;
                handle_text = format!("{slug}{n}");
            }
            used_handles.insert(handle_text.clone());
            let Ok(handle) = Handle::parse(&handle_text) else { continue };
            let subscribers = rng::log_uniform(ch("subs"), 1e3, 1e7).round() as u64;
            let kind = rng::weighted(ch("streams"), &[0.7, 0.22, 0.08]);
            // Weights chosen so that ~10 videos per channel are live (≤ 60 days old) at any time:
            // 10,000 channels give the design's ~90,000–100,000 tracked videos.
            let long_every = [24.0, 60.0, 168.0, 336.0, 720.0]
                [rng::weighted(ch("long-cadence"), &[1.0, 7.0, 40.0, 32.0, 20.0])]
                * rng::uniform(ch("long-cadence-j"), 0.85, 1.15);
            let shorts_every = [72.0, 168.0, 336.0][rng::weighted(ch("short-cadence"), &[3.0, 4.0, 3.0])]
                * rng::uniform(ch("short-cadence-j"), 0.85, 1.15);
            let (long_every_hours, shorts_every_hours) = match kind {
                0 => (Some(long_every), None),
                1 => (Some(long_every), Some(shorts_every)),
                _ => (None, Some(shorts_every)),
            };
            let utc_offset_hours = [-8, -7, -6, -5, -3, 0, 1, 2, 3, 5, 8, 9][(ch("tz") % 12) as usize];
            let rhythm = weekly_rhythm(
                utc_offset_hours,
                rng::uniform(ch("day-amplitude"), DAY_AMPLITUDE.0, DAY_AMPLITUDE.1),
                rng::uniform(ch("day-peak"), 18.5, 21.5),
                rng::uniform(ch("week-amplitude"), WEEK_AMPLITUDE.0, WEEK_AMPLITUDE.1),
                // The busiest day is Saturday or Sunday (local).
                5.0 + (ch("week-peak") % 2) as f64,
            );
            let (day_night_ratio, weekday_ratio) = rhythm_ratios(&rhythm);
            let created = history_start - Duration::days(30 + (ch("created") % 3000) as i64);
            channels.push(Channel {
                index,
                id: id.clone(),
                handle: handle.clone(),
                title,
                created,
                subscribers,
                utc_offset_hours,
                long_every_hours,
                shorts_every_hours,
                typical_long_views: subscribers as f64 * rng::log_uniform(ch("reach-long"), REACH.0, REACH.1),
                typical_short_views: subscribers as f64
                    * rng::log_uniform(ch("reach-short"), SHORTS_REACH.0, SHORTS_REACH.1),
                like_ratio: rng::uniform(ch("likes"), 0.015, 0.06),
                day_night_ratio,
                weekday_ratio,
                phase_hours: [rng::unit(ch("phase-long")) * long_every, rng::unit(ch("phase-short")) * shorts_every],
                rhythm,
            });
            by_id.insert(id.to_string(), index);
            by_handle.insert(handle.to_string(), index);
        }
        let id_key = hash(seed, &[tag("video-id-key")]);
        Self { params, channels, by_id, by_handle, history_start, id_key }
    }

    pub fn seed(&self) -> u64 {
        self.params.seed
    }

    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    pub fn channel(&self, index: u32) -> Option<&Channel> {
        self.channels.get(index as usize)
    }

    pub fn channel_by_id(&self, id: &str) -> Option<&Channel> {
        self.by_id.get(id).and_then(|&i| self.channel(i))
    }

    pub fn channel_by_handle(&self, handle: &str) -> Option<&Channel> {
        let handle = Handle::parse(handle).ok()?;
        self.by_handle.get(handle.as_str()).and_then(|&i| self.channel(i))
    }

    fn check_bits(&self, key: &VideoKey) -> u64 {
        key.h(self.params.seed, "id-check") & ((1 << 27) - 1)
    }

    pub fn video_id(&self, key: &VideoKey) -> VideoId {
        let packed = (u64::from(key.channel) << 44)
            | (key.stream.bit() << 43)
            | ((u64::from(key.index) & 0xffff) << 27)
            | self.check_bits(key);
        let text = rng::encode_id11(rng::permute(self.id_key, packed));
        VideoId::parse(&text).expect("11 characters of the video-id alphabet always parse")
    }

    /// Decodes a video id into its key if it names a video of this world (published or not).
    pub fn video_key(&self, id: &str) -> Option<VideoKey> {
        let packed = rng::unpermute(self.id_key, rng::decode_id11(id)?);
        let key = VideoKey {
            channel: (packed >> 44) as u32,
            stream: if (packed >> 43) & 1 == 1 { Stream::Short } else { Stream::Long },
            index: ((packed >> 27) & 0xffff) as u32,
        };
        let channel = self.channel(key.channel)?;
        channel.every(key.stream)?;
        (self.check_bits(&key) == packed & ((1 << 27) - 1)).then_some(key)
    }

    fn publish_time(&self, channel: &Channel, stream: Stream, index: u32) -> Option<DateTime<Utc>> {
        let every = channel.every(stream)?;
        let phase = channel.phase_hours[stream.bit() as usize];
        let jitter = rng::unit(hash(
            self.params.seed,
            &[tag("publish-jitter"), u64::from(channel.index), stream.bit(), u64::from(index)],
        )) * 0.5
            * every;
        let hours = phase + f64::from(index) * every + jitter;
        Some(self.history_start + Duration::seconds((hours * 3600.0) as i64))
    }

    /// The index of the newest video of a stream published at or before `t`.
    fn last_index_at(&self, channel: &Channel, stream: Stream, t: DateTime<Utc>) -> Option<u32> {
        let every = channel.every(stream)?;
        let phase = channel.phase_hours[stream.bit() as usize];
        let hours = (t - self.history_start).num_seconds() as f64 / 3600.0 - phase;
        if hours < 0.0 {
            return None;
        }
        let mut k = ((hours / every).floor() as i64).min(0xffff);
        while k >= 0 {
            if self.publish_time(channel, stream, k as u32)? <= t {
                return Some(k as u32);
            }
            k -= 1;
        }
        None
    }

    /// Builds a video's fixed properties (cheap: a few hashes).
    pub fn video(&self, key: VideoKey) -> Option<Video> {
        let channel = self.channel(key.channel)?;
        let published = self.publish_time(channel, key.stream, key.index)?;
        let seed = self.params.seed;
        let is_short = key.stream == Stream::Short;
        let quality = rng::log_normal(key.h(seed, "quality"), QUALITY_SIGMA);
        let breakout = (rng::unit(key.h(seed, "breakout")) < self.params.breakout_rate)
            .then(|| rng::log_uniform(key.h(seed, "breakout-factor"), 5.0, 20.0));
        let typical = if is_short { channel.typical_short_views } else { channel.typical_long_views };
        let expected_total = typical * quality * breakout.unwrap_or(1.0);
        let tau_median = if is_short { DECAY_TAU_HOURS.1 } else { DECAY_TAU_HOURS.0 };
        let tau_hours = tau_median * rng::log_normal(key.h(seed, "tau"), DECAY_TAU_SIGMA);
        let impression_share = if is_short { IMPRESSION_SHARE_SHORT } else { IMPRESSION_SHARE_LONG };
        let length_seconds = if is_short {
            15 + (key.h(seed, "length") % 46) as u32
        } else {
            240 + (key.h(seed, "length") % 2400) as u32
        };
        let mut creator_changes = Vec::new();
        for (kind, rate, purpose) in [
            (VariantKind::Thumbnail, self.params.creator_thumbnail_change_rate, "creator-thumb"),
            (VariantKind::Title, self.params.creator_title_change_rate, "creator-title"),
        ] {
            if rng::unit(key.h(seed, purpose)) < rate {
                let after_hours = rng::log_uniform(key.h(seed, &format!("{purpose}-at")), 3.0, 168.0);
                creator_changes.push(CreatorChange {
                    at: published + Duration::seconds((after_hours * 3600.0) as i64),
                    kind,
                    variant: "c1".to_owned(),
                });
            }
        }
        creator_changes.sort_by_key(|c| c.at);
        let keywords = vec![
            pick(key.h(seed, "kw1"), TOPICS).to_owned(),
            pick(key.h(seed, "kw2"), NOUNS).to_lowercase(),
            channel.title.to_lowercase(),
        ];
        Some(Video {
            key,
            id: self.video_id(&key),
            is_short,
            published,
            length_seconds,
            quality,
            breakout,
            expected_total,
            tau_hours,
            theta: rng::uniform(key.h(seed, "theta"), DECAY_THETA.0, DECAY_THETA.1),
            impression_share: rng::uniform(key.h(seed, "impression-share"), impression_share.0, impression_share.1),
            base_ctr: (CTR_MEDIAN * rng::log_normal(key.h(seed, "ctr"), CTR_SIGMA)).clamp(0.005, 0.3),
            noise_rho: rng::uniform(key.h(seed, "noise-rho"), NOISE_RHO.0, NOISE_RHO.1),
            plays_per_view: if is_short {
                rng::uniform(key.h(seed, "plays"), SHORT_PLAYS_PER_VIEW.0, SHORT_PLAYS_PER_VIEW.1)
            } else {
                1.0
            },
            has_maxres: rng::unit(key.h(seed, "maxres")) >= self.params.maxres_missing_rate,
            creator_changes,
            category: pick(hash(seed, &[tag("category"), u64::from(key.channel)]), CATEGORIES),
            keywords,
        })
    }

    /// A video by id, if it exists at `now` (published at or before it).
    pub fn published_video(&self, id: &str, now: DateTime<Utc>) -> Option<Video> {
        let video = self.video(self.video_key(id)?)?;
        (video.published <= now).then_some(video)
    }

    /// A channel's videos published in `[since, until]`, newest first, both streams merged.
    pub fn videos_between(&self, channel: &Channel, since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Video> {
        let mut out = Vec::new();
        for stream in [Stream::Long, Stream::Short] {
            let Some(last) = self.last_index_at(channel, stream, until) else { continue };
            for index in (0..=last).rev() {
                let Some(video) = self.video(VideoKey { channel: channel.index, stream, index }) else { break };
                if video.published < since {
                    break;
                }
                out.push(video);
            }
        }
        out.sort_by(|a, b| b.published.cmp(&a.published).then(a.key.cmp(&b.key)));
        out
    }

    /// The `n` newest videos of a channel at `now` (the feed's entries).
    pub fn newest_videos(&self, channel: &Channel, now: DateTime<Utc>, n: usize) -> Vec<Video> {
        let mut out = Vec::new();
        for stream in [Stream::Long, Stream::Short] {
            let Some(last) = self.last_index_at(channel, stream, now) else { continue };
            for index in (0..=last).rev().take(n) {
                out.extend(self.video(VideoKey { channel: channel.index, stream, index }));
            }
        }
        out.sort_by(|a, b| b.published.cmp(&a.published).then(a.key.cmp(&b.key)));
        out.truncate(n);
        out
    }

    /// How many videos a channel has published at `now`.
    pub fn video_count(&self, channel: &Channel, now: DateTime<Utc>) -> u64 {
        [Stream::Long, Stream::Short]
            .iter()
            .filter_map(|&s| self.last_index_at(channel, s, now))
            .map(|last| u64::from(last) + 1)
            .sum()
    }

    /// The title of a creator variant (`c0` is the original).
    fn creator_title(&self, key: &VideoKey, variant: &str) -> String {
        let n: u64 = variant.strip_prefix('c').and_then(|n| n.parse().ok()).unwrap_or(0);
        make_title(hash(
            self.params.seed,
            &[tag("title"), u64::from(key.channel), key.stream.bit(), u64::from(key.index), n],
        ))
    }

    /// A variant's multiplier when no override applies: the original is the reference (1.0);
    /// creator variants and uploaded ones draw theirs from the seed and, for uploads, the
    /// content hash, so the same image always has the same effect.
    pub fn default_multiplier(&self, key: &VideoKey, kind: VariantKind, variant: &str) -> f64 {
        let kind_tag = match kind {
            VariantKind::Thumbnail => tag("mult-thumb"),
            VariantKind::Title => tag("mult-title"),
        };
        match variant {
            "c0" => 1.0,
            v if v.starts_with('c') => variant_multiplier(
                hash(
                    self.params.seed,
                    &[kind_tag, u64::from(key.channel), key.stream.bit(), u64::from(key.index), tag(v)],
                ),
                self.params.creator_strong_variant_share,
            ),
            v => variant_multiplier(hash(self.params.seed, &[kind_tag, tag(v)]), VARIANT_STRONG_SHARE),
        }
    }

    /// Every presentation change of a video, creator-made and API-made, in time order (ties:
    /// creator first), each with the variant it replaced.
    fn change_events(&self, video: &Video, muts: &Mutations) -> Vec<Event> {
        let mut events: Vec<_> = video
            .creator_changes
            .iter()
            .map(|c| {
                let title = (c.kind == VariantKind::Title).then(|| self.creator_title(&video.key, &c.variant));
                (c.at, c.kind, ChangeSource::Creator, c.variant.clone(), title)
            })
            .collect();
        if let Some(api) = muts.changes.get(&video.key) {
            events.extend(api.iter().map(|c| (c.at, c.kind, ChangeSource::Api, c.variant.clone(), c.title.clone())));
        }
        // Stable sort keeps creator changes before API changes at the same instant.
        events.sort_by_key(|e| e.0);
        events
    }

    fn live_variant(events: &[Event], kind: VariantKind, t: DateTime<Utc>) -> (String, Option<String>) {
        events
            .iter()
            .rev()
            .find(|e| e.1 == kind && e.0 <= t)
            .map(|e| (e.3.clone(), e.4.clone()))
            .unwrap_or_else(|| ("c0".to_owned(), None))
    }

    fn multiplier_at(
        &self,
        video: &Video,
        muts: &Mutations,
        kind: VariantKind,
        variant: &str,
        t: DateTime<Utc>,
    ) -> f64 {
        muts.overrides
            .get(&video.key)
            .and_then(|list| list.iter().rev().find(|o| o.kind == kind && o.variant == variant && o.at <= t))
            .map(|o| o.multiplier)
            .unwrap_or_else(|| self.default_multiplier(&video.key, kind, variant))
    }

    fn combined_multiplier(&self, video: &Video, muts: &Mutations, events: &[Event], t: DateTime<Utc>) -> f64 {
        let (thumb, _) = Self::live_variant(events, VariantKind::Thumbnail, t);
        let (title, _) = Self::live_variant(events, VariantKind::Title, t);
        self.multiplier_at(video, muts, VariantKind::Thumbnail, &thumb, t)
            * self.multiplier_at(video, muts, VariantKind::Title, &title, t)
    }

    /// Share of a video's expected total that arrives between `from` and `to` (Unix seconds)
    /// under its power-law decay: `F(age) = 1 − (1 + age/τ)^−θ`.
    fn decay_share(video: &Video, from: i64, to: i64) -> f64 {
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

    /// The video's live state at `t`, as the endpoints serve it.
    pub fn live_state(&self, video: &Video, muts: &Mutations, t: DateTime<Utc>) -> LiveState {
        let views = self.public_views(video, muts, t);
        let channel_like_ratio = self.channel(video.key.channel).map_or(0.03, |c| c.like_ratio);
        let events = self.change_events(video, muts);
        let (thumb, _) = Self::live_variant(&events, VariantKind::Thumbnail, t);
        let (title_variant, title_text) = Self::live_variant(&events, VariantKind::Title, t);
        let title = title_text.unwrap_or_else(|| self.creator_title(&video.key, &title_variant));
        let updated = events.iter().rev().find(|e| e.0 <= t).map_or(video.published, |e| e.0);
        LiveState {
            views,
            plays: (views as f64 * video.plays_per_view).round() as u64,
            likes: (views as f64 * channel_like_ratio).floor() as u64,
            thumbnail_multiplier: self.multiplier_at(video, muts, VariantKind::Thumbnail, &thumb, t),
            title_multiplier: self.multiplier_at(video, muts, VariantKind::Title, &title_variant, t),
            title,
            thumbnail_variant: thumb,
            title_variant,
            updated: updated.max(video.published),
        }
    }

    /// Every title/thumbnail change of a video at or before `until`, with before/after truth.
    pub fn changes_of(&self, video: &Video, muts: &Mutations, until: DateTime<Utc>) -> Vec<ChangeTruth> {
        let events = self.change_events(video, muts);
        let mut out = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if e.0 > until {
                break;
            }
            let (previous, _) = Self::live_variant(&events[..i], e.1, e.0);
            let multiplier = self.multiplier_at(video, muts, e.1, &e.3, e.0);
            let previous_multiplier = self.multiplier_at(video, muts, e.1, &previous, e.0);
            let share = video.impression_share;
            out.push(ChangeTruth {
                video_id: video.id.clone(),
                channel_id: self.channel_id_of(video),
                at: e.0,
                kind: e.1,
                source: e.2,
                multiplier,
                previous_multiplier,
                views_lift: (share * multiplier + 1.0 - share) / (share * previous_multiplier + 1.0 - share),
                previous_variant: previous,
                variant: e.3.clone(),
                title: e
                    .4
                    .clone()
                    .or_else(|| (e.1 == VariantKind::Title).then(|| self.creator_title(&video.key, &e.3))),
            });
        }
        out
    }

    pub fn channel_id_of(&self, video: &Video) -> ChannelId {
        self.channels[video.key.channel as usize].id.clone()
    }

    /// Multiplier overrides recorded for a video.
    pub fn overrides_of(&self, video: &Video, muts: &Mutations) -> Vec<MultiplierOverride> {
        muts.overrides.get(&video.key).cloned().unwrap_or_default()
    }

    /// Records a thumbnail upload made through the Data API at `at`.
    pub fn set_thumbnail(&self, muts: &mut Mutations, video: &Video, image: Vec<u8>, at: DateTime<Utc>) -> String {
        let variant = thumbnail_variant_id(&image);
        muts.images.entry(variant.clone()).or_insert_with(|| std::sync::Arc::new(image));
        muts.changes.entry(video.key).or_default().push(ApiChange {
            at,
            kind: VariantKind::Thumbnail,
            variant: variant.clone(),
            title: None,
        });
        variant
    }

    /// Records a title edit made through the Data API at `at`; `None` if the title is unchanged.
    pub fn set_title(&self, muts: &mut Mutations, video: &Video, title: &str, at: DateTime<Utc>) -> Option<String> {
        if self.live_state(video, muts, at).title == title {
            return None;
        }
        // Setting a title back to a creator variant's text restores that variant, so reverting
        // an A/B test brings back the original multiplier.
        let creator = ["c0", "c1"].into_iter().find(|v| self.creator_title(&video.key, v) == title);
        let variant = creator.map_or_else(|| title_variant_id(title), str::to_owned);
        muts.changes.entry(video.key).or_default().push(ApiChange {
            at,
            kind: VariantKind::Title,
            variant: variant.clone(),
            title: Some(title.to_owned()),
        });
        Some(variant)
    }

    /// Sets a variant's multiplier from `at` on (the past keeps the old one).
    pub fn set_multiplier(
        &self,
        muts: &mut Mutations,
        video: &Video,
        kind: VariantKind,
        variant: &str,
        multiplier: f64,
        at: DateTime<Utc>,
    ) {
        muts.overrides.entry(video.key).or_default().push(MultiplierOverride {
            at,
            kind,
            variant: variant.to_owned(),
            multiplier,
        });
    }

    /// The look of a generated (creator) thumbnail variant: one picture per video and variant.
    pub fn thumbnail_look(&self, video: &Video, variant: &str) -> u64 {
        video.key.h(self.params.seed, &format!("look-{variant}"))
    }

    /// Everything the truth API says about a video at `at`.
    pub fn video_truth(&self, video: &Video, muts: &Mutations, at: DateTime<Utc>) -> VideoTruth {
        let live = self.live_state(video, muts, at);
        VideoTruth {
            id: video.id.clone(),
            channel_id: self.channel_id_of(video),
            is_short: video.is_short,
            published: video.published,
            length_seconds: video.length_seconds,
            quality: video.quality,
            breakout: video.breakout,
            expected_total_views: video.expected_total,
            tau_hours: video.tau_hours,
            theta: video.theta,
            noise_rho: video.noise_rho,
            impression_share: video.impression_share,
            base_ctr: video.base_ctr,
            has_maxres: video.has_maxres,
            at,
            views: live.views,
            true_views: self.true_views(video, muts, at),
            plays: live.plays,
            likes: live.likes,
            title: live.title,
            thumbnail_variant: live.thumbnail_variant,
            title_variant: live.title_variant,
            thumbnail_multiplier: live.thumbnail_multiplier,
            title_multiplier: live.title_multiplier,
            changes: self.changes_of(video, muts, at),
            overrides: self.overrides_of(video, muts),
        }
    }

    /// Text of the live title variant, for the truth of creator titles.
    pub fn title_of_variant(&self, video: &Video, variant: &str) -> String {
        self.creator_title(&video.key, variant)
    }
}

pub use tubewatch_core::pacific::{day as pacific_day, midnight as pacific_midnight, offset as pacific_offset};

/// The calendar date of Pacific day `day`, as reach reports write it.
pub fn pacific_date(day: i64) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    epoch.checked_add_signed(Duration::days(day)).unwrap_or(epoch)
}

/// A presentation variant's multiplier on click-through rate from a hash: most are within a
/// few percent to a few tens of percent of the original (log-normal), a few are strong (±40–60 %).
fn variant_multiplier(h: u64, strong_share: f64) -> f64 {
    let m = if rng::unit(rng::mix64(h ^ 0x57)) < strong_share {
        let size = rng::uniform(rng::mix64(h ^ 0x58), 0.4, 0.6);
        if rng::mix64(h ^ 0x59).is_multiple_of(2) { 1.0 + size } else { 1.0 - size }
    } else {
        rng::log_normal(h, VARIANT_SIGMA)
    };
    m.clamp(VARIANT_CLAMP.0, VARIANT_CLAMP.1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
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
            let draws: Vec<f64> =
                (0..20_000).map(|i| poisson_quantile(lambda, rng::unit(rng::mix64(i))) as f64).collect();
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
        let live: u64 =
            w.channels().iter().map(|c| w.videos_between(c, now - Duration::days(60), now).len() as u64).sum();
        // ~9 live videos per channel → ~90,000 at 10,000 channels.
        let per_channel = live as f64 / 2000.0;
        assert!((5.0..20.0).contains(&per_channel), "{per_channel} live videos per channel");
        let shorts = w.channels().iter().filter(|c| c.shorts_every_hours.is_some()).count();
        assert!(shorts > 200 && shorts < 1200, "{shorts}");
    }
}
