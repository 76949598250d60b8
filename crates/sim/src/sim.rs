//! The simulator as a value: its configuration, its shared state (world, mutations, clock,
//! faults, OAuth, quota and reporting-job books, caches) behind every handler, and the
//! in-process truth accessors. Serving it over HTTP is `server`'s.

use std::sync::{Arc, Mutex, OnceLock, RwLock};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_core::{ChannelId, Clock, ManualClock, VideoId};

use crate::books::{AuthBook, QuotaBook, ReportingBook};
use crate::faults::{FaultConfig, FaultDice};
use crate::pages::Padding;
use crate::thumbs::{self, ThumbCache};
use crate::world::{
    ChangeTruth, Channel, Disturbances, Mutations, ReachDay, VariantKind, Video, VideoTruth, World, WorldParams,
};

/// Where the simulator's "now" comes from.
#[derive(Debug, Clone)]
pub enum SimClock {
    /// Moves only when told (tests); the control API can set or advance it.
    Manual(Arc<ManualClock>),
    /// Any other clock: `AcceleratedClock` shared with the service, `SystemClock`, …
    Shared(Arc<dyn Clock>),
}

impl SimClock {
    pub fn as_clock(&self) -> Arc<dyn Clock> {
        match self {
            SimClock::Manual(c) => c.clone(),
            SimClock::Shared(c) => c.clone(),
        }
    }
}

/// The simulated Google account that OAuth consents for, and which channels it may edit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OAuthConfig {
    pub user_email: String,
    /// Channels the user owns (may change thumbnails/titles of); empty means every channel.
    pub user_channels: Vec<ChannelId>,
    /// If set, the only accepted OAuth client id; otherwise any non-empty client id is accepted.
    pub client_id: Option<String>,
    /// If set, `/token` requires this client secret.
    pub client_secret: Option<String>,
    /// Accepted Data API keys; empty means any non-empty key.
    pub api_keys: Vec<String>,
    /// Lifetime of an access token, in virtual seconds.
    pub access_token_secs: i64,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            user_email: "creator@sim.tubewatch.test".to_owned(),
            user_channels: Vec::new(),
            client_id: None,
            client_secret: None,
            api_keys: Vec::new(),
            access_token_secs: 3599,
        }
    }
}

/// Everything a simulator is built from.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub world: WorldParams,
    pub clock: SimClock,
    /// Target size of a watch page in bytes (YouTube's are around 1 MB).
    pub page_bytes: usize,
    pub faults: FaultConfig,
    pub oauth: OAuthConfig,
    /// Data API quota per project (API key or OAuth client) per Pacific day.
    pub quota_per_day: u64,
    /// Largest accepted `thumbnails.set` upload.
    pub thumbnail_max_bytes: usize,
    /// Memory bound of the encoded-thumbnail cache.
    pub thumb_cache_bytes: usize,
    /// Base URL written into links (feeds, player JSON); default: the bound address.
    pub public_base: Option<String>,
}

impl SimConfig {
    /// A simulator of `channels` channels from `seed`, on `clock`, with defaults for the rest.
    pub fn new(seed: u64, channels: u32, clock: SimClock) -> Self {
        Self {
            world: WorldParams { seed, channels, ..WorldParams::default() },
            clock,
            page_bytes: 1_000_000,
            faults: FaultConfig::default(),
            oauth: OAuthConfig::default(),
            quota_per_day: 10_000,
            thumbnail_max_bytes: 2 * 1024 * 1024,
            thumb_cache_bytes: 256 * 1024 * 1024,
            public_base: None,
        }
    }

    /// For tests: a manual clock at the world's epoch, small pages.
    pub fn for_tests(seed: u64, channels: u32) -> (Self, Arc<ManualClock>) {
        let epoch = WorldParams::default().epoch;
        let clock = Arc::new(ManualClock::new(epoch));
        let mut config = Self::new(seed, channels, SimClock::Manual(clock.clone()));
        config.page_bytes = 64 * 1024;
        (config, clock)
    }
}

/// Shared state behind every handler.
#[derive(Debug)]
pub(crate) struct SimInner {
    pub world: World,
    pub muts: RwLock<Mutations>,
    pub clock: Arc<dyn Clock>,
    pub manual: Option<Arc<ManualClock>>,
    pub config: SimConfig,
    pub faults: RwLock<FaultConfig>,
    pub dice: FaultDice,
    pub thumbs: ThumbCache,
    pub placeholder: Bytes,
    pub padding: Padding,
    pub auth: Mutex<AuthBook>,
    pub quota: Mutex<QuotaBook>,
    pub reporting: Mutex<ReportingBook>,
    pub base: OnceLock<String>,
}

/// What every handler is given: the simulator's shared state.
pub(crate) type Shared = Arc<SimInner>;

impl SimInner {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn base(&self) -> &str {
        self.base.get().map_or("http://127.0.0.1", String::as_str)
    }

    pub fn read_muts(&self) -> std::sync::RwLockReadGuard<'_, Mutations> {
        self.muts.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write_muts(&self) -> std::sync::RwLockWriteGuard<'_, Mutations> {
        self.muts.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a truth-side operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("no published video {0:?} in this world")]
    UnknownVideo(String),
    #[error("no channel {0:?} in this world")]
    UnknownChannel(String),
    #[error("multiplier must be a finite positive number, got {0}")]
    BadMultiplier(f64),
    #[error("the simulator's clock is not a manual clock")]
    ClockNotManual,
}

/// The simulator: world + state. Cheap to clone (shared). Use it in-process for truth, and
/// [`Simulator::serve`] / [`Simulator::start`] to serve it over HTTP.
#[derive(Debug, Clone)]
pub struct Simulator {
    pub(crate) inner: Arc<SimInner>,
}

impl Simulator {
    pub fn new(config: SimConfig) -> Self {
        let manual = match &config.clock {
            SimClock::Manual(c) => Some(c.clone()),
            SimClock::Shared(_) => None,
        };
        let inner = SimInner {
            world: World::new(config.world.clone()),
            muts: RwLock::new(Mutations::default()),
            clock: config.clock.as_clock(),
            manual,
            faults: RwLock::new(config.faults.clone()),
            dice: FaultDice::default(),
            thumbs: ThumbCache::new(config.thumb_cache_bytes),
            placeholder: Bytes::from(thumbs::placeholder()),
            padding: Padding::new(config.world.seed, config.page_bytes),
            auth: Mutex::new(AuthBook::default()),
            quota: Mutex::new(QuotaBook::default()),
            reporting: Mutex::new(ReportingBook::default()),
            base: OnceLock::new(),
            config,
        };
        Self { inner: Arc::new(inner) }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    /// The manual clock, if the simulator runs on one.
    pub fn manual_clock(&self) -> Option<Arc<ManualClock>> {
        self.inner.manual.clone()
    }

    pub fn world(&self) -> &World {
        &self.inner.world
    }

    pub fn channels(&self) -> &[Channel] {
        self.inner.world.channels()
    }

    fn video_or_err(&self, id: &str, at: DateTime<Utc>) -> Result<Video, SimError> {
        self.inner.world.published_video(id, at).ok_or_else(|| SimError::UnknownVideo(id.to_owned()))
    }

    /// A published video's truth at `at`.
    pub fn video_at(&self, id: &VideoId, at: DateTime<Utc>) -> Result<VideoTruth, SimError> {
        let video = self.video_or_err(id.as_str(), at)?;
        Ok(self.inner.world.video_truth(&video, &self.inner.read_muts(), at))
    }

    /// A published video's truth now.
    pub fn video(&self, id: &VideoId) -> Result<VideoTruth, SimError> {
        self.video_at(id, self.now())
    }

    /// What disturbed a video's views and its counter between `from` and `to` (for evals).
    pub fn disturbances(&self, id: &VideoId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Disturbances, SimError> {
        let video = self.video_or_err(id.as_str(), to)?;
        Ok(self.inner.world.disturbances(&video, from, to))
    }

    /// True views of a video at `at` (what the endpoints serve at that virtual time).
    pub fn views_at(&self, id: &VideoId, at: DateTime<Utc>) -> Result<u64, SimError> {
        let video = self.video_or_err(id.as_str(), at)?;
        Ok(self.inner.world.live_state(&video, &self.inner.read_muts(), at).views)
    }

    /// What the reach report says of a published video for Pacific day `day` (see
    /// [`crate::pacific_day`]), as known now: `None` for a day not over yet or before publish.
    pub fn reach_day(&self, id: &VideoId, day: i64) -> Result<Option<ReachDay>, SimError> {
        let now = self.now();
        let video = self.video_or_err(id.as_str(), now)?;
        Ok(self.inner.world.reach_day(&video, &self.inner.read_muts(), day, now))
    }

    /// A video's views from `from` to `to` at multiplier 1 without hour-to-hour noise, one piece
    /// per UTC hour (see [`World::noise_free_views`]).
    pub fn noise_free_views(&self, id: &VideoId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<f64>, SimError> {
        let video = self.video_or_err(id.as_str(), to)?;
        Ok(self.inner.world.noise_free_views(&video, from, to))
    }

    /// A channel's videos published in `[since, until]`, newest first, with their truth at `until`.
    pub fn channel_videos(
        &self,
        channel_id: &ChannelId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<VideoTruth>, SimError> {
        let world = &self.inner.world;
        let channel =
            world.channel_by_id(channel_id.as_str()).ok_or_else(|| SimError::UnknownChannel(channel_id.to_string()))?;
        let muts = self.inner.read_muts();
        Ok(world.videos_between(channel, since, until).iter().map(|v| world.video_truth(v, &muts, until)).collect())
    }

    /// Every thumbnail/title change in `[since, until]` (creator-made and API-made), in time
    /// order; all channels, or one.
    pub fn changes(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        channel_id: Option<&str>,
    ) -> Result<Vec<ChangeTruth>, SimError> {
        let world = &self.inner.world;
        let channels: Vec<&Channel> = match channel_id {
            Some(id) => vec![world.channel_by_id(id).ok_or_else(|| SimError::UnknownChannel(id.to_owned()))?],
            None => world.channels().iter().collect(),
        };
        let muts = self.inner.read_muts();
        // A change happens at most a week after publish for creators, but API changes can come
        // any time: scan every video published before `until` that could carry one.
        let mut out = Vec::new();
        for channel in channels {
            for video in world.videos_between(
                channel,
                world.params.epoch - chrono::Duration::days(i64::from(world.params.history_days)),
                until,
            ) {
                out.extend(world.changes_of(&video, &muts, until).into_iter().filter(|c| c.at >= since));
            }
        }
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.video_id.cmp(&b.video_id)));
        Ok(out)
    }

    /// True breakouts published in `[since, until]`, with their truth at `until`.
    pub fn breakouts(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<VideoTruth> {
        let world = &self.inner.world;
        let muts = self.inner.read_muts();
        let mut out: Vec<VideoTruth> = world
            .channels()
            .iter()
            .flat_map(|c| world.videos_between(c, since, until))
            .filter(|v| v.breakout.is_some())
            .map(|v| world.video_truth(&v, &muts, until))
            .collect();
        out.sort_by(|a, b| a.published.cmp(&b.published).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// Sets a variant's true multiplier from now on (the past keeps the old one, so views
    /// already served stay true). The variant need not be live yet.
    pub fn set_multiplier(
        &self,
        video_id: &str,
        kind: VariantKind,
        variant: &str,
        multiplier: f64,
    ) -> Result<(), SimError> {
        if !multiplier.is_finite() || multiplier <= 0.0 {
            return Err(SimError::BadMultiplier(multiplier));
        }
        let now = self.now();
        let video = self.video_or_err(video_id, now)?;
        let mut muts = self.inner.write_muts();
        self.inner.world.set_multiplier(&mut muts, &video, kind, variant, multiplier, now);
        Ok(())
    }

    pub fn faults(&self) -> FaultConfig {
        self.inner.faults.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_faults(&self, faults: FaultConfig) {
        *self.inner.faults.write().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// Data API quota units used today (Pacific) by a project (API key, or `oauth:CLIENT_ID`).
    pub fn quota_used(&self, project: &str) -> u64 {
        self.inner.quota.lock().unwrap_or_else(|e| e.into_inner()).used(project, self.now())
    }
}
