//! The world's catalogue, all of it drawn from the seed: the channels (made once, with the
//! world), each video's id, when each of a channel's uploads is published, each video's fixed
//! properties, and the names and titles they carry.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use tubewatch_core::{ChannelId, Handle, VideoId};

use super::model::{
    CTR_MEDIAN, CTR_SIGMA, DAY_AMPLITUDE, DECAY_TAU_HOURS, DECAY_TAU_SIGMA, DECAY_THETA, IMPRESSION_SHARE_LONG,
    IMPRESSION_SHARE_SHORT, NOISE_RHO, QUALITY_SIGMA, REACH, SHORT_PLAYS_PER_VIEW, SHORTS_REACH, WEEK_AMPLITUDE,
    rhythm_ratios, weekly_rhythm,
};
use super::{Channel, CreatorChange, Stream, VariantKind, Video, VideoKey, World, WorldParams};
use crate::rng::{self, hash, tag};

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
pub(super) fn make_title(h: u64) -> String {
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
}
