//! The simulated world and its ground truth: channels, their videos, and every video's views at
//! any instant. Nothing here is precomputed per hour: a video is a pure function of
//! (seed, channel, stream, index), and its views at `t` are the integral of a non-negative rate
//! from its publish time to `t`, so views never decrease and 10,000 channels fit in memory.
//!
//! The only mutable part is [`Mutations`]: thumbnail/title changes made through the Data API and
//! multiplier overrides set through the control API, each stamped with the virtual time it took
//! effect, so the past is never rewritten.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tubewatch_core::{ChannelId, Handle, VideoId};

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
    #[serde(skip)]
    phase_hours: [f64; 2],
    /// View-rate factor per UTC hour of day (mean 1).
    #[serde(skip)]
    diurnal: [f64; 24],
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
    /// Total views this video would reach under multiplier 1 (ignoring the slow long tail).
    pub expected_total: f64,
    /// Time constant of the decaying view rate, in hours.
    pub tau_hours: f64,
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
    /// Total views at multiplier 1 (before the slow long tail).
    pub expected_total_views: f64,
    pub tau_hours: f64,
    pub has_maxres: bool,
    /// The instant the live fields below describe.
    pub at: DateTime<Utc>,
    pub views: u64,
    pub likes: u64,
    pub title: String,
    pub thumbnail_variant: String,
    pub title_variant: String,
    pub thumbnail_multiplier: f64,
    pub title_multiplier: f64,
    pub changes: Vec<ChangeTruth>,
    pub overrides: Vec<MultiplierOverride>,
}

/// The live state of a video at an instant, as the endpoints serve it.
#[derive(Debug, Clone)]
pub struct LiveState {
    pub views: u64,
    pub likes: u64,
    pub title: String,
    pub thumbnail_variant: String,
    pub title_variant: String,
    pub thumbnail_multiplier: f64,
    pub title_multiplier: f64,
    /// The last change of title or thumbnail at or before the instant (feed `<updated>`).
    pub updated: DateTime<Utc>,
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

/// Views per hour of the slow long tail, as a share of a video's expected total.
const LONG_TAIL_PER_HOUR: f64 = 0.0015 / 24.0;
/// Days after publish during which every hour has its own noise (later, every day).
const HOURLY_NOISE_DAYS: i64 = 14;
/// The hour-to-hour noise: a log-normal factor with this deviation on each hour's views.
pub const HOURLY_NOISE_SIGMA: f64 = 0.3;

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
            let mut diurnal = [0.0; 24];
            for (utc_hour, d) in diurnal.iter_mut().enumerate() {
                // Peak around 20:00 local, trough around 08:00; the cosine averages to 1 over a day.
                let local = (utc_hour as f64 + 0.5 + f64::from(utc_offset_hours)).rem_euclid(24.0);
                *d = 1.0 + 0.55 * (std::f64::consts::TAU * (local - 20.0) / 24.0).cos();
            }
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
                typical_long_views: subscribers as f64 * rng::log_uniform(ch("reach-long"), 0.01, 0.15),
                typical_short_views: subscribers as f64 * rng::log_uniform(ch("reach-short"), 0.03, 0.6),
                like_ratio: rng::uniform(ch("likes"), 0.015, 0.06),
                phase_hours: [rng::unit(ch("phase-long")) * long_every, rng::unit(ch("phase-short")) * shorts_every],
                diurnal,
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
        let quality = rng::log_normal(key.h(seed, "quality"), 0.5);
        let breakout = (rng::unit(key.h(seed, "breakout")) < self.params.breakout_rate)
            .then(|| rng::log_uniform(key.h(seed, "breakout-factor"), 5.0, 20.0));
        let typical = if is_short { channel.typical_short_views } else { channel.typical_long_views };
        let expected_total = typical * quality * breakout.unwrap_or(1.0);
        let tau_hours = if is_short { 20.0 } else { 40.0 } * rng::log_normal(key.h(seed, "tau"), 0.3);
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
        let h = match variant {
            "c0" => return 1.0,
            v if v.starts_with('c') => hash(
                self.params.seed,
                &[kind_tag, u64::from(key.channel), key.stream.bit(), u64::from(key.index), tag(v)],
            ),
            v => hash(self.params.seed, &[kind_tag, tag(v)]),
        };
        rng::log_normal(h, 0.3).clamp(0.4, 2.5)
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

    /// Views (as a real number) at `t`: the integral from publish to `t` of
    /// `total × (e^(−age/τ)/τ + λ) × diurnal × noise × multiplier`. Hourly pieces during the
    /// first two weeks; after that a whole day at one multiplier is one piece with a daily noise
    /// factor (cheap for old videos), while the day in progress and any day with a multiplier
    /// change are spread over their hours with the same day/night rhythm and hour-to-hour noise
    /// as before, normalised to the same daily total — an older video's audience keeps its
    /// rhythm, and an A/B test on it sees realistic hourly views. Every piece is non-negative
    /// and the pieces before `t` do not depend on `t`, so the result never decreases as `t`
    /// grows.
    fn views_real(&self, video: &Video, muts: &Mutations, t: DateTime<Utc>) -> f64 {
        let p = video.published.timestamp();
        let end = t.timestamp();
        if end <= p {
            return 0.0;
        }
        let channel = match self.channel(video.key.channel) {
            Some(c) => c,
            None => return 0.0,
        };
        let events = self.change_events(video, muts);
        // Multiplier breakpoints: every change and override that took effect in (p, end).
        let mut breaks: Vec<i64> = events.iter().map(|e| e.0.timestamp()).collect();
        if let Some(list) = muts.overrides.get(&video.key) {
            breaks.extend(list.iter().map(|o| o.at.timestamp()));
        }
        breaks.retain(|&b| b > p && b < end);
        breaks.sort_unstable();
        breaks.dedup();
        let mult_at = |s: i64| {
            let at = DateTime::from_timestamp(s, 0).unwrap_or(video.published);
            self.combined_multiplier(video, muts, &events, at)
        };
        let tau_secs = video.tau_hours * 3600.0;
        let hourly_until = p + HOURLY_NOISE_DAYS * 86_400;
        let noise_key = video.key.h(self.params.seed, "noise");
        /// What the integration has reached: views so far, `e^(−(a−p)/τ)` at the current
        /// instant, the multiplier in force and the next multiplier change.
        struct Acc {
            total: f64,
            decay_a: f64,
            multiplier: f64,
            next_break: usize,
        }
        let mut acc = Acc { total: 0.0, decay_a: 1.0, multiplier: mult_at(p), next_break: 0 };
        let mut a = p;
        let decay_at = |x: i64| (-((x - p) as f64) / tau_secs).exp();
        let hour_weight = |hour: i64| {
            channel.diurnal[hour.rem_euclid(24) as usize]
                * rng::log_normal(rng::hash(noise_key, &[hour as u64]), HOURLY_NOISE_SIGMA)
        };
        // Integrates `[from, to)` at `factor`, split where the multiplier changes.
        let integrate = |acc: &mut Acc, from: i64, to: i64, factor: f64| {
            let mut s = from;
            while s < to {
                let mut e = to;
                if acc.next_break < breaks.len() && breaks[acc.next_break] <= s {
                    acc.multiplier = mult_at(breaks[acc.next_break]);
                    acc.next_break += 1;
                    continue;
                }
                if acc.next_break < breaks.len() && breaks[acc.next_break] < e {
                    e = breaks[acc.next_break];
                }
                let decay_e = decay_at(e);
                let shape = (acc.decay_a - decay_e) + LONG_TAIL_PER_HOUR * (e - s) as f64 / 3600.0;
                acc.total += video.expected_total * factor * acc.multiplier * shape.max(0.0);
                acc.decay_a = decay_e;
                s = e;
            }
        };
        while a < end {
            let hourly = a < hourly_until;
            let grid = if hourly { 3600 } else { 86_400 };
            let grid_end = (a.div_euclid(grid) + 1) * grid;
            let seg_end = grid_end.min(end);
            if hourly {
                let hour = a.div_euclid(3600);
                integrate(&mut acc, a, seg_end, hour_weight(hour));
                a = seg_end;
                continue;
            }
            let day_factor = rng::log_normal(rng::hash(noise_key, &[tag("day"), a.div_euclid(86_400) as u64]), 0.15);
            let split_inside = breaks.iter().any(|&b| b > a && b < grid_end);
            if seg_end == grid_end && !split_inside {
                // A whole day at one multiplier: its total is all that can be seen of it.
                integrate(&mut acc, a, seg_end, day_factor);
                a = seg_end;
                continue;
            }
            // Inside a day (or across a multiplier change) views keep the day/night rhythm and
            // hour-to-hour noise of younger videos: the day's total is spread over its hours by
            // weights normalised so that the whole day adds up exactly as above.
            let (mut weighted, mut plain) = (0.0, 0.0);
            let mut hs = a;
            while hs < grid_end {
                let he = (hs.div_euclid(3600) + 1) * 3600;
                let shape = (decay_at(hs) - decay_at(he)) + LONG_TAIL_PER_HOUR * (he - hs) as f64 / 3600.0;
                weighted += shape * hour_weight(hs.div_euclid(3600));
                plain += shape;
                hs = he;
            }
            let mean_weight = if weighted > 0.0 && plain > 0.0 { weighted / plain } else { 1.0 };
            let mut hs = a;
            while hs < seg_end {
                let he = ((hs.div_euclid(3600) + 1) * 3600).min(seg_end);
                let factor = day_factor * hour_weight(hs.div_euclid(3600)) / mean_weight;
                integrate(&mut acc, hs, he, factor);
                hs = he;
            }
            a = seg_end;
        }
        acc.total
    }

    /// The views `[from, to)` would get at multiplier 1 without the hour-to-hour noise, split at
    /// UTC hours (one piece per hour, each with its own noise in the real views): the video's
    /// decay and long tail times its channel's day/night rhythm, the level the noisy views vary
    /// around (up to the noise's mean, `e^0.045`). Only the first two weeks after publish, where
    /// the noise is hourly; later time is left out. What a rule that knew the video's trajectory
    /// exactly would expect, for judging estimators against the best possible.
    pub fn noise_free_views(&self, video: &Video, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<f64> {
        let Some(channel) = self.channel(video.key.channel) else { return Vec::new() };
        let p = video.published.timestamp();
        let tau_secs = video.tau_hours * 3600.0;
        let decay_at = |x: i64| (-((x - p) as f64) / tau_secs).exp();
        let (from, to) = (from.timestamp().max(p), to.timestamp().min(p + HOURLY_NOISE_DAYS * 86_400));
        let mut pieces = Vec::new();
        let mut s = from;
        while s < to {
            let hour = s.div_euclid(3600);
            let e = ((hour + 1) * 3600).min(to);
            let shape = (decay_at(s) - decay_at(e)) + LONG_TAIL_PER_HOUR * (e - s) as f64 / 3600.0;
            pieces.push(video.expected_total * shape * channel.diurnal[hour.rem_euclid(24) as usize]);
            s = e;
        }
        pieces
    }

    /// The video's live state at `t`: integer views, title and variants.
    pub fn live_state(&self, video: &Video, muts: &Mutations, t: DateTime<Utc>) -> LiveState {
        let views = self.views_real(video, muts, t).floor() as u64;
        let channel_like_ratio = self.channel(video.key.channel).map_or(0.03, |c| c.like_ratio);
        let events = self.change_events(video, muts);
        let (thumb, _) = Self::live_variant(&events, VariantKind::Thumbnail, t);
        let (title_variant, title_text) = Self::live_variant(&events, VariantKind::Title, t);
        let title = title_text.unwrap_or_else(|| self.creator_title(&video.key, &title_variant));
        let updated = events.iter().rev().find(|e| e.0 <= t).map_or(video.published, |e| e.0);
        LiveState {
            views,
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
            out.push(ChangeTruth {
                video_id: video.id.clone(),
                channel_id: self.channel_id_of(video),
                at: e.0,
                kind: e.1,
                source: e.2,
                multiplier: self.multiplier_at(video, muts, e.1, &e.3, e.0),
                previous_multiplier: self.multiplier_at(video, muts, e.1, &previous, e.0),
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
            has_maxres: video.has_maxres,
            at,
            views: live.views,
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

/// US Pacific time's offset at `t` (PST −8, PDT −7 from the second Sunday of March 02:00 to the
/// first Sunday of November 02:00), as YouTube writes `publishDate` and resets quota in it.
pub fn pacific_offset(t: DateTime<Utc>) -> FixedOffset {
    use chrono::Datelike;
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
        let w = world(30);
        let muts = Mutations::default();
        let now = w.params.epoch;
        let mut checked = 0;
        for ch in w.channels() {
            for v in w.newest_videos(ch, now, 3) {
                let mut prev = 0;
                let mut t = v.published;
                while t < v.published + Duration::days(20) {
                    let views = w.live_state(&v, &muts, t).views;
                    assert!(views >= prev, "{} at {t}: {views} < {prev}", v.id);
                    prev = views;
                    t += Duration::minutes(37);
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn older_videos_keep_their_hourly_rhythm_and_noise() {
        // Past day 14 a whole day is one cheap piece, but within the day views still follow the
        // day/night rhythm with hour-to-hour noise, and the day adds up to the same total.
        let w = world(300);
        let muts = Mutations::default();
        let now = w.params.epoch;
        let mut checked = 0;
        for ch in w.channels() {
            for v in w.newest_videos(ch, now, 3).into_iter().filter(|v| !v.is_short) {
                let day = (v.published + Duration::days(20)).duration_trunc(Duration::days(1)).unwrap();
                let at = |h: i64| w.views_real(&v, &muts, day + Duration::hours(h));
                if at(24) - at(0) < 24.0 * 20.0 {
                    continue;
                }
                let hourly: Vec<f64> = (0..24).map(|h| at(h + 1) - at(h)).collect();
                let mean = hourly.iter().sum::<f64>() / 24.0;
                let cv = (hourly.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 23.0).sqrt() / mean;
                assert!(cv > 0.2, "{}: hourly views of day 20 too smooth (cv {cv:.3})", v.id);
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
        let mut checked = 0;
        for ch in w.channels() {
            for v in w.newest_videos(ch, w.params.epoch, 5).into_iter().filter(|v| v.creator_changes.is_empty()) {
                // Whole UTC hours, each with its own noise.
                let first_hour = v.published.duration_trunc(Duration::hours(1)).unwrap() + Duration::hours(1);
                let at = |h: i64| first_hour + Duration::hours(h);
                let expected = w.noise_free_views(&v, at(0), at(13 * 24));
                if w.views_real(&v, &muts, at(48)) < 2000.0 {
                    continue;
                }
                let logs: Vec<f64> = (0..13 * 24)
                    .map(|h| (w.views_real(&v, &muts, at(h + 1)) - w.views_real(&v, &muts, at(h))).ln())
                    .zip(expected.iter().map(|e| e.ln()))
                    .map(|(real, free)| real - free)
                    .collect();
                let mean = logs.iter().sum::<f64>() / logs.len() as f64;
                let sd = (logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (logs.len() - 1) as f64).sqrt();
                assert!(mean.abs() < 0.06 && (0.25..0.35).contains(&sd), "{}: log ratio {mean:.3} ± {sd:.3}", v.id);
                checked += 1;
            }
        }
        assert!(checked >= 3, "only {checked} busy videos");
        // Time past two weeks is left out.
        let v = w.newest_videos(&w.channels()[0], w.params.epoch, 1).remove(0);
        assert!(w.noise_free_views(&v, v.published + Duration::days(15), v.published + Duration::days(16)).is_empty());
    }

    #[test]
    fn pacific_offsets() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap_or_default();
        assert_eq!(pacific_offset(t("2026-01-15T12:00:00Z")).local_minus_utc(), -8 * 3600);
        assert_eq!(pacific_offset(t("2026-07-15T12:00:00Z")).local_minus_utc(), -7 * 3600);
        // 2026-03-08 is the second Sunday of March: DST starts at 10:00 UTC.
        assert_eq!(pacific_offset(t("2026-03-08T09:59:00Z")).local_minus_utc(), -8 * 3600);
        assert_eq!(pacific_offset(t("2026-03-08T10:00:00Z")).local_minus_utc(), -7 * 3600);
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
