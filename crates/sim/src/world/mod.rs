//! The simulated world and its ground truth: channels, their videos, and every video's views at
//! any instant. Nothing here is precomputed per hour: a video is a pure function of
//! (seed, channel, stream, index), and its views at `t` are the integral of a non-negative rate
//! from its publish time to `t`, so views never decrease and 10,000 channels fit in memory.
//!
//! The only mutable part is [`Mutations`]: thumbnail/title changes made through the Data API and
//! multiplier overrides set through the control API, each stamped with the virtual time it took
//! effect, so the past is never rewritten.
//!
//! This module holds the world's vocabulary (its types) and what it says of a video at an
//! instant; the rest is by concern: `model` (the calibrated figures and random processes),
//! `catalog` (channels, video ids, publishing, a video's fixed properties), `presentation`
//! (titles, thumbnails, their multipliers and changes), `views` (true views, reach) and `counter`
//! (the public counter and what disturbs it).

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tubewatch_core::{ChannelId, Handle, VideoId};

use crate::rng::{hash, tag};

mod catalog;
mod counter;
mod model;
mod presentation;
mod views;

pub use model::{CTR_DAY_SIGMA, DECAY_TAU_HOURS, DECAY_TAU_SIGMA, DECAY_THETA, HOURLY_NOISE_SIGMA, poisson_quantile};
use model::{HOURS_PER_WEEK, VARIANT_STRONG_SHARE};

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

impl World {
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

    pub fn channel_id_of(&self, video: &Video) -> ChannelId {
        self.channels[video.key.channel as usize].id.clone()
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
}

pub use tubewatch_core::pacific::{day as pacific_day, midnight as pacific_midnight, offset as pacific_offset};

/// The calendar date of Pacific day `day`, as reach reports write it.
pub fn pacific_date(day: i64) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    epoch.checked_add_signed(Duration::days(day)).unwrap_or(epoch)
}

#[cfg(test)]
mod tests;
