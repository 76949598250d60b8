//! What users start tracking with: a channel or a video, written any way a user writes it,
//! resolved and validated against YouTube, turned into one shared target plus the user's mapping.
//! The use cases the web pages, the JSON API and the CLI share: a user's request checked against
//! their plan's limits, then tracked and mapped (`track_channel_for`, `track_video_for`).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Datelike, TimeZone, Utc};

use tubewatch_core::{ChannelId, ChannelRef, Clock, RefError, Slot, UserId, VideoId, YoutubeRef};
use tubewatch_store::{
    LimitOutcome, NewChannel, NewVideo, Store, StoreError, TargetKind, TargetState, Video, ViewsRecord,
};
use tubewatch_youtube::data_api::PLAYLIST_ITEMS_MAX;
use tubewatch_youtube::{ApiAuth, ErrorKind, Feed, YoutubeClient, YoutubeError};

use crate::pipeline::PipelineConfig;

/// A video seen in a channel's history: id, published, title, views then.
type Sighting = (VideoId, DateTime<Utc>, String, u64);

#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error(transparent)]
    BadInput(#[from] RefError),
    #[error("no such channel: {0}")]
    NoSuchChannel(String),
    #[error("video {0} is not available: {1}")]
    VideoUnavailable(VideoId, String),
    #[error("video {0} was published more than {1} days ago; tracking covers the first {1} days")]
    TrackingOver(VideoId, i64),
    #[error("YouTube could not be read just now ({0}); try again")]
    Youtube(YoutubeError),
    #[error("your plan allows {limit} {what}; {used} are used")]
    LimitReached { what: Limited, limit: u32, used: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a plan limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Monitored channels.
    Channels,
    /// Individually tracked videos, counted per calendar month.
    Videos,
}

impl std::fmt::Display for Limited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Channels => "channels",
            Self::Videos => "individual videos a month",
        })
    }
}

/// Something a user asked to track, once their mapping is in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked<Id> {
    pub id: Id,
    /// `false`: the user tracked it already.
    pub added: bool,
    /// It used one of the plan's channel slots or the month's video credits.
    pub charged: bool,
}

/// A mapping's outcome as the user sees it: tracked (newly or already), or refused at the limit.
fn tracked<Id>(id: Id, what: Limited, outcome: LimitOutcome) -> Result<Tracked<Id>, TrackError> {
    match outcome {
        LimitOutcome::Added { charged } => Ok(Tracked { id, added: true, charged }),
        LimitOutcome::AlreadyTracked => Ok(Tracked { id, added: false, charged: false }),
        LimitOutcome::LimitReached { limit, used } => Err(TrackError::LimitReached { what, limit, used }),
    }
}

/// The first instant of `now`'s calendar month (UTC): monthly video credits count from here.
pub fn month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single().unwrap_or(now)
}

impl TrackError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput(_) => "bad_input",
            Self::NoSuchChannel(_) => "no_such_channel",
            Self::VideoUnavailable(..) => "video_unavailable",
            Self::TrackingOver(..) => "tracking_over",
            Self::Youtube(_) => "youtube_unavailable",
            Self::LimitReached { what: Limited::Channels, .. } => "channel_limit_reached",
            Self::LimitReached { what: Limited::Videos, .. } => "video_limit_reached",
            Self::Store(_) => "internal",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tracker {
    pub store: Arc<dyn Store>,
    pub youtube: YoutubeClient,
    pub clock: Arc<dyn Clock>,
    pub config: PipelineConfig,
}

impl Tracker {
    /// A user starts monitoring a channel, on a plan allowing `limit` channels (`None`: no
    /// limit). At the limit, a channel the user does not monitor yet is refused before anything
    /// is fetched from YouTube or created; under it, the mapping is reserved within the limit
    /// before the channel's target goes live, so racing requests cannot pass it.
    pub async fn track_channel_for(
        &self,
        user: UserId,
        input: &str,
        limit: Option<u32>,
    ) -> Result<Tracked<ChannelId>, TrackError> {
        let wanted = YoutubeRef::parse_channel(input)?;
        if let Some(limit) = limit {
            let tracked = self.store.user_channels(user).await?;
            let used = tracked.len() as u64;
            if used >= u64::from(limit) && !self.is_among(&wanted, &tracked).await? {
                return Err(TrackError::LimitReached { what: Limited::Channels, limit, used });
            }
        }
        let (id, outcome) = self.track_channel_within(Some(user), input, limit).await?;
        let tracked = tracked(id, Limited::Channels, outcome)?;
        tracing::info!(user_id = %user, channel_id = %tracked.id, "user {user} monitors channel {}", tracked.id);
        Ok(tracked)
    }

    /// A user starts tracking one video, on a plan allowing `monthly_limit` individual videos a
    /// calendar month (`None`: no limit; videos of monitored channels are free). A video unknown
    /// to the store can be neither free nor already charged: when the month's credits are gone
    /// it is refused before its target is created; otherwise the mapping is reserved within the
    /// limit before the video's target goes live.
    pub async fn track_video_for(
        &self,
        user: UserId,
        input: &str,
        monthly_limit: Option<u32>,
    ) -> Result<Tracked<VideoId>, TrackError> {
        let month = month_start(self.clock.now());
        let id = YoutubeRef::parse_video(input)?;
        if let Some(limit) = monthly_limit
            && self.store.video(&id).await?.is_none()
        {
            let used = self.store.video_credits_used(user, month).await?;
            if used >= u64::from(limit) {
                return Err(TrackError::LimitReached { what: Limited::Videos, limit, used });
            }
        }
        let (id, outcome) = self.track_video_within(user, id.as_str(), monthly_limit, month).await?;
        let tracked = tracked(id, Limited::Videos, outcome)?;
        let (id, charged) = (&tracked.id, tracked.charged);
        tracing::info!(user_id = %user, video_id = %id, charged, "user {user} tracks video {id}");
        Ok(tracked)
    }

    /// A user stops monitoring a channel; others who monitor it are unaffected. When nobody
    /// monitors it any more, its checks stop, with those of its videos nobody tracks on their
    /// own. Returns whether the user monitored it.
    pub async fn untrack_channel_for(&self, user: UserId, channel: &ChannelId) -> Result<bool, TrackError> {
        Ok(self.store.remove_user_channel(user, channel).await?)
    }

    /// A user stops tracking a video individually (the month's credit is not refunded). Returns
    /// whether the user tracked it.
    pub async fn untrack_video_for(&self, user: UserId, video: &VideoId) -> Result<bool, TrackError> {
        Ok(self.store.remove_user_video(user, video).await?)
    }

    /// Whether `wanted` is one of `tracked`, known without asking YouTube: by id, or by the
    /// handle a tracked channel was added with.
    async fn is_among(&self, wanted: &ChannelRef, tracked: &[ChannelId]) -> Result<bool, TrackError> {
        match wanted {
            ChannelRef::Id(id) => Ok(tracked.contains(id)),
            ChannelRef::Handle(handle) => {
                let handle = handle.to_string();
                for id in tracked {
                    if self
                        .store
                        .channel(id)
                        .await?
                        .and_then(|c| c.handle)
                        .is_some_and(|h| h.eq_ignore_ascii_case(&handle))
                    {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            ChannelRef::Custom(_) | ChannelRef::User(_) => Ok(false),
        }
    }

    /// Resolves a channel reference to its `UC…` id.
    pub async fn resolve_channel(&self, input: &str) -> Result<ChannelId, TrackError> {
        let channel = YoutubeRef::parse_channel(input)?;
        match channel {
            ChannelRef::Id(id) => Ok(id),
            other => self.youtube.resolve_channel(&other).await.map_err(|e| match e.kind() {
                ErrorKind::NotFound => TrackError::NoSuchChannel(other.to_string()),
                _ => TrackError::Youtube(e),
            }),
        }
    }

    /// Starts monitoring a channel (its feed checked hourly, new videos tracked). The check runs at
    /// once. Returns the channel id.
    pub async fn track_channel(&self, user: Option<UserId>, input: &str) -> Result<ChannelId, TrackError> {
        Ok(self.track_channel_within(user, input, None).await?.0)
    }

    /// `track_channel` for a user with a channel limit: the user's mapping is added within `limit`
    /// (counted and inserted in one store transaction) before the channel's target is made live,
    /// so a refused request (`LimitReached`) leaves nothing running, however many race.
    pub async fn track_channel_within(
        &self,
        user: Option<UserId>,
        input: &str,
        limit: Option<u32>,
    ) -> Result<(ChannelId, LimitOutcome), TrackError> {
        let id = self.resolve_channel(input).await?;
        let feed = self.youtube.channel_feed(&id).await.map_err(|e| match e.kind() {
            ErrorKind::NotFound => TrackError::NoSuchChannel(id.to_string()),
            _ => TrackError::Youtube(e),
        })?;
        let now = self.clock.now();
        let handle = match YoutubeRef::parse_channel(input) {
            Ok(ChannelRef::Handle(h)) => Some(h.to_string()),
            _ => None,
        };
        let title = feed.title.clone().unwrap_or_default();
        self.store.upsert_channel(&NewChannel { id: id.clone(), title, handle }, now).await?;
        // The mapping first: from then on, another user letting the channel go cannot stop it.
        let outcome = match user {
            Some(user) => self.store.add_user_channel_within_limit(user, &id, limit, now).await?,
            None => LimitOutcome::Added { charged: false },
        };
        if matches!(outcome, LimitOutcome::LimitReached { .. }) {
            return Ok((id, outcome));
        }
        if self.ensure_active(TargetKind::Channel, id.as_str(), now).await? {
            self.resume_channel_videos(&id).await?;
        }
        self.ensure_outliers_target(&id).await?;
        self.record_stream_history(&id, &feed).await;
        tracing::info!(channel_id = %id, "tracking channel {id}");
        Ok((id, outcome))
    }

    /// Reads the channel's two upload streams (long videos, Shorts) and keeps, for each video
    /// they list that tracking will not measure (all but the entries of the channel's own feed in
    /// their tracking window), its views now: one point each, from which the channel's typical
    /// band takes its older videos to their early ages. With a Data API key, each stream's 50
    /// newest (`playlistItems.list` and `videos.list`: 4 quota units a channel); without, the
    /// streams' feeds, 15 each. A channel whose own feed is mostly Shorts would otherwise start
    /// with two or three long videos. The history is a head start, not a condition: a stream
    /// that cannot be read is logged and left, and the band fills as new videos are tracked.
    async fn record_stream_history(&self, channel: &ChannelId, feed: &Feed) {
        // The channel check tracks the entries of the channel's feed that are in their tracking
        // window; every other video of the streams is history.
        let now = self.clock.now();
        let tracked: HashSet<&VideoId> = feed
            .entries
            .iter()
            .filter(|e| self.config.policy.slot_at(e.published, now).is_some())
            .map(|e| &e.video_id)
            .collect();
        for shorts in [false, true] {
            let sightings = match self.youtube.api_key_auth() {
                Some(auth) => self.api_stream(&auth, channel, shorts, &tracked).await,
                None => self.youtube.stream_feed(channel, shorts).await.map(|stream| {
                    let seen = stream.entries.into_iter().filter(|e| !tracked.contains(&e.video_id));
                    seen.filter_map(|e| Some((e.video_id, e.published, e.title, e.views?))).collect()
                }),
            };
            let kept = match sightings {
                Ok(seen) => self.keep_sightings(channel, shorts, seen).await,
                // A channel without videos of a kind may have no such playlist.
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
                Err(e) => Err(TrackError::Youtube(e)),
            };
            match kept {
                Ok(n) => tracing::debug!(channel_id = %channel, shorts, kept = n, "stream history of {channel}"),
                Err(e) => tracing::warn!(channel_id = %channel, shorts, "stream history of {channel} not read: {e}"),
            }
        }
    }

    /// One stream's newest uploads not in `tracked`, with their views, through the Data API.
    async fn api_stream(
        &self,
        auth: &ApiAuth,
        channel: &ChannelId,
        shorts: bool,
        tracked: &HashSet<&VideoId>,
    ) -> Result<Vec<Sighting>, YoutubeError> {
        let mut ids = self.youtube.stream_uploads(auth, channel, shorts, PLAYLIST_ITEMS_MAX).await?;
        ids.retain(|id| !tracked.contains(id));
        let videos = self.youtube.videos_list(auth, &ids).await?;
        Ok(videos
            .into_iter()
            // The playlist is the channel's; a video of another channel in it is not history.
            .filter(|v| v.channel_id.as_ref().is_none_or(|c| c == channel))
            .filter_map(|v| Some((v.id, v.published_at?, v.title, v.views?)))
            .collect())
    }

    /// Stores the sighted videos that are not known yet, each with its views now; returns how
    /// many.
    async fn keep_sightings(
        &self,
        channel: &ChannelId,
        shorts: bool,
        seen: Vec<Sighting>,
    ) -> Result<usize, TrackError> {
        let ids: Vec<VideoId> = seen.iter().map(|s| s.0.clone()).collect();
        let known: HashSet<VideoId> = self.store.existing_videos(&ids).await?.into_iter().collect();
        let now = self.clock.now();
        let mut kept = 0;
        for (id, published_at, title, views) in seen.into_iter().filter(|s| !known.contains(&s.0)) {
            let video = NewVideo { id, channel_id: channel.clone(), published_at, is_short: shorts, title };
            if self.store.insert_video(&video, now).await? {
                let views = i64::try_from(views).unwrap_or(i64::MAX);
                let record = ViewsRecord { video_id: video.id, slot: Slot::hour_of(now), measured_at: now, views };
                self.store.record_views(&record).await?;
                kept += 1;
            }
        }
        Ok(kept)
    }

    /// Starts tracking one video from its current slot. Returns the video id.
    pub async fn track_video(&self, user: Option<UserId>, input: &str) -> Result<VideoId, TrackError> {
        let (video, slot_start) = self.known_video(input).await?;
        if let Some(user) = user {
            self.store.add_user_video(user, &video.id, self.clock.now()).await?;
        }
        self.activate_video(&video, slot_start).await?;
        Ok(video.id)
    }

    /// `track_video` for a user with a monthly video limit (credits counted from `month_start`):
    /// the user's mapping is added within the limit in one store transaction before the video's
    /// target is made live, so a refused request (`LimitReached`) leaves nothing running.
    pub async fn track_video_within(
        &self,
        user: UserId,
        input: &str,
        monthly_limit: Option<u32>,
        month_start: DateTime<Utc>,
    ) -> Result<(VideoId, LimitOutcome), TrackError> {
        let (video, slot_start) = self.known_video(input).await?;
        let now = self.clock.now();
        let outcome = self.store.add_user_video_within_limit(user, &video.id, monthly_limit, month_start, now).await?;
        if !matches!(outcome, LimitOutcome::LimitReached { .. }) {
            self.activate_video(&video, slot_start).await?;
        }
        Ok((video.id, outcome))
    }

    /// The video (read from its watch page and stored when new) and the start of its current
    /// slot; past its tracking window this fails, before any mapping is added.
    async fn known_video(&self, input: &str) -> Result<(Video, DateTime<Utc>), TrackError> {
        let id = YoutubeRef::parse_video(input)?;
        if self.store.video(&id).await?.is_none() {
            let info = self.youtube.watch_page(&id).await.map_err(|e| {
                if e.is_permanent() {
                    TrackError::VideoUnavailable(id.clone(), e.to_string())
                } else {
                    TrackError::Youtube(e)
                }
            })?;
            let (Some(channel_id), Some(published)) = (info.channel_id.clone(), info.published.or(info.uploaded))
            else {
                return Err(TrackError::VideoUnavailable(id, "the page names no channel or publish date".into()));
            };
            let now = self.clock.now();
            let channel =
                NewChannel { id: channel_id.clone(), title: info.author.clone().unwrap_or_default(), handle: None };
            self.store.upsert_channel(&channel, now).await?;
            let video =
                NewVideo { id: id.clone(), channel_id, published_at: published, is_short: false, title: info.title };
            self.store.insert_video(&video, now).await?;
        }
        let video = self.store.video(&id).await?.ok_or_else(|| StoreError::NotFound(format!("video {id}")))?;
        let Some(slot) = self.config.policy.slot_at(video.published_at, self.clock.now()) else {
            return Err(TrackError::TrackingOver(id, self.config.policy.track_days()));
        };
        Ok((video, slot.start()))
    }

    /// Makes the video's target live from `slot_start`, with its channel's weekly outlier run
    /// (where the video's thumbnail/title outliers come from).
    async fn activate_video(&self, video: &Video, slot_start: DateTime<Utc>) -> Result<(), TrackError> {
        self.ensure_active(TargetKind::Video, video.id.as_str(), slot_start).await?;
        self.ensure_outliers_target(&video.channel_id).await?;
        tracing::info!(video_id = %video.id, "tracking video {}", video.id);
        Ok(())
    }

    /// Makes sure the channel has its weekly outlier run, due at the next weekly run time.
    async fn ensure_outliers_target(&self, channel: &ChannelId) -> Result<(), TrackError> {
        let now = self.clock.now();
        let due = self.config.outliers.next_run_after(now);
        self.ensure_active(TargetKind::Outliers, channel.as_str(), due).await?;
        Ok(())
    }

    /// Creates the target due at `due`, or resumes it there if it was stopped or had failed for
    /// good: asking to track something again means tracking it again. Returns whether it was
    /// resumed.
    async fn ensure_active(&self, kind: TargetKind, subject: &str, due: DateTime<Utc>) -> Result<bool, TrackError> {
        self.store.ensure_target(kind, subject, due, self.clock.now()).await?;
        let resumed = self.store.resume_target(kind, subject, due).await?;
        if resumed {
            tracing::info!(%kind, subject, "tracking {kind} {subject} again");
        }
        Ok(resumed)
    }

    /// After a stopped channel is resumed: its videos stopped with it (when its last user let it
    /// go) come back, those still in their tracking window, each at its current slot.
    async fn resume_channel_videos(&self, channel: &ChannelId) -> Result<(), TrackError> {
        let now = self.clock.now();
        for video in self.store.channel_videos(channel).await? {
            let stopped = self.store.target(TargetKind::Video, video.id.as_str()).await?;
            if let (Some(slot), Some(TargetState::Finished)) =
                (self.config.policy.slot_at(video.published_at, now), stopped.map(|t| t.state))
            {
                self.store.resume_target(TargetKind::Video, video.id.as_str(), slot.start()).await?;
            }
        }
        Ok(())
    }
}
