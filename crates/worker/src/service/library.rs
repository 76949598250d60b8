//! What a user tracks, as they may see it: the channels they monitor and those channels' videos,
//! the videos they track on their own, each with its checks' state, and a visible video's
//! measured history (views and detected changes). A user sees a video they track directly or
//! through a monitored channel, and nothing else: what they may not see is answered as absent,
//! exactly like what does not exist.

use tubewatch_core::{ChannelId, UserId, VideoId};
use tubewatch_store::{
    ChangeEvent, Channel, SeriesStamp, StoreError, Target, TargetKind, UserVideo, Video, ViewsRecord,
};

use super::Service;
use crate::month_start;

/// A monitored channel with the state of its checks.
#[derive(Debug, Clone)]
pub struct ChannelEntry {
    pub id: ChannelId,
    /// `None`: not known to the store (yet).
    pub channel: Option<Channel>,
    /// `None`: no checks scheduled (yet).
    pub target: Option<Target>,
}

/// A video's measurements and detected changes, in slot order.
#[derive(Debug, Clone)]
pub struct VideoHistory {
    pub views: Vec<ViewsRecord>,
    pub changes: Vec<ChangeEvent>,
}

/// A video the user may see, with the state of its checks and its history.
#[derive(Debug, Clone)]
pub struct VisibleVideo {
    pub video: Video,
    pub target: Option<Target>,
    pub history: VideoHistory,
}

/// How much of the plan's limits a user uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanUse {
    /// Monitored channels.
    pub channels: u64,
    /// Individually tracked videos charged this calendar month.
    pub videos_this_month: u64,
}

impl Service<'_> {
    /// The channels `user` monitors.
    pub async fn monitored_channels(&self, user: UserId) -> Result<Vec<ChannelId>, StoreError> {
        self.store.user_channels(user).await
    }

    /// A channel as listed: what the store knows of it and of its checks.
    pub async fn channel_entry(&self, id: &ChannelId) -> Result<ChannelEntry, StoreError> {
        let channel = self.store.channel(id).await?;
        let target = self.store.target(TargetKind::Channel, id.as_str()).await?;
        Ok(ChannelEntry { id: id.clone(), channel, target })
    }

    /// A channel's title, or its id while the store does not know it.
    pub async fn channel_title(&self, id: &ChannelId) -> Result<String, StoreError> {
        Ok(self.store.channel(id).await?.map_or_else(|| id.to_string(), |c| c.title))
    }

    /// A video's title, or its id while the store does not know it.
    pub async fn video_title(&self, id: &VideoId) -> Result<String, StoreError> {
        Ok(self.store.video(id).await?.map_or_else(|| id.to_string(), |v| v.title))
    }

    /// A channel's known videos, newest first (for a channel the caller already knows is visible).
    pub async fn channel_videos(&self, id: &ChannelId) -> Result<Vec<Video>, StoreError> {
        self.store.channel_videos(id).await
    }

    /// The known videos of a channel `user` monitors, newest first; `None` when they do not
    /// monitor it.
    pub async fn monitored_channel_videos(
        &self,
        user: UserId,
        id: &ChannelId,
    ) -> Result<Option<Vec<Video>>, StoreError> {
        if !self.store.user_tracks_channel(user, id).await? {
            return Ok(None);
        }
        self.store.channel_videos(id).await.map(Some)
    }

    /// The videos `user` tracks on their own (not only through a monitored channel).
    pub async fn videos_tracked_alone(&self, user: UserId) -> Result<Vec<UserVideo>, StoreError> {
        self.store.user_videos(user).await
    }

    /// Whether `user` tracks `video` on its own.
    pub async fn tracks_video_alone(&self, user: UserId, video: &VideoId) -> Result<bool, StoreError> {
        Ok(self.store.user_videos(user).await?.iter().any(|m| &m.video_id == video))
    }

    /// A video as the store knows it (for a video the caller already knows is visible).
    pub async fn video(&self, id: &VideoId) -> Result<Option<Video>, StoreError> {
        self.store.video(id).await
    }

    /// The state of a video's checks; `None`: none scheduled.
    pub async fn video_target(&self, id: &VideoId) -> Result<Option<Target>, StoreError> {
        self.store.target(TargetKind::Video, id.as_str()).await
    }

    /// The video, if `user` may see it.
    pub async fn visible_video(&self, user: UserId, id: &VideoId) -> Result<Option<Video>, StoreError> {
        if !self.store.user_can_see_video(user, id).await? {
            return Ok(None);
        }
        self.store.video(id).await
    }

    /// The version of a video's series, if `user` may see it: the access check and the version
    /// in one index-only query, for answering "unchanged" without reading the series.
    pub async fn visible_series_stamp(&self, user: UserId, id: &VideoId) -> Result<Option<SeriesStamp>, StoreError> {
        self.store.visible_series_stamp(user, id).await
    }

    /// A video's views measured so far, in slot order.
    pub async fn views(&self, id: &VideoId) -> Result<Vec<ViewsRecord>, StoreError> {
        self.store.views(id).await
    }

    /// A video's measurements and detected changes.
    pub async fn history(&self, id: &VideoId) -> Result<VideoHistory, StoreError> {
        let views = self.store.views(id).await?;
        let changes = self.store.changes(id).await?;
        Ok(VideoHistory { views, changes })
    }

    /// A video `user` may see, with its checks' state and its history; `None` when they may not
    /// see it.
    pub async fn visible_history(&self, user: UserId, id: &VideoId) -> Result<Option<VisibleVideo>, StoreError> {
        match self.visible_video(user, id).await? {
            Some(video) => self.history_of(video).await.map(Some),
            None => Ok(None),
        }
    }

    /// `video`'s checks' state and history.
    pub async fn history_of(&self, video: Video) -> Result<VisibleVideo, StoreError> {
        let history = self.history(&video.id).await?;
        let target = self.video_target(&video.id).await?;
        Ok(VisibleVideo { video, target, history })
    }

    /// What `user` uses of their plan's limits now.
    pub async fn plan_use(&self, user: UserId) -> Result<PlanUse, StoreError> {
        let channels = self.store.user_channels(user).await?.len() as u64;
        let videos_this_month = self.store.video_credits_used(user, month_start(self.clock.now())).await?;
        Ok(PlanUse { channels, videos_this_month })
    }
}
