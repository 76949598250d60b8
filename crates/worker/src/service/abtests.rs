//! A user's A/B tests as they read them: their tests, one of them with its reach, the tests of a
//! video, their YouTube connection and the videos they may test on its channel. Creating,
//! stopping and connecting are the [`AbTests`](crate::abtest::AbTests) engine's, which needs the
//! server's `[abtests]` configuration; reading does not.

use chrono::{DateTime, Utc};
use tubewatch_core::abtest::ExpectedTraffic;
use tubewatch_core::reach::ReachPlan;
use tubewatch_core::{ChannelId, UserId, VideoId};
use tubewatch_store::{AbTest, AbTestDetail, AbTestId, StoreError, Video, YoutubeConnection};

use super::Service;
use crate::abtest::reach_plan;
use crate::reach::{TestReach, reach_of};

impl Service<'_> {
    /// `user`'s tests, newest first.
    pub async fn abtests(&self, user: UserId) -> Result<Vec<AbTest>, StoreError> {
        self.store.user_abtests(user).await
    }

    /// One of `user`'s tests; `None` for someone else's, as for one that does not exist.
    pub async fn own_abtest(&self, user: UserId, id: AbTestId) -> Result<Option<AbTestDetail>, StoreError> {
        Ok(self.store.abtest(id).await?.filter(|d| d.test.user_id == user))
    }

    /// `user`'s tests of `video`, newest first.
    pub async fn video_abtests(&self, user: UserId, video: &VideoId) -> Result<Vec<AbTestDetail>, StoreError> {
        let mut tests = Vec::new();
        for test in self.store.user_abtests(user).await? {
            if &test.video_id != video {
                continue;
            }
            if let Some(detail) = self.store.abtest(test.id).await? {
                tests.push(detail);
            }
        }
        Ok(tests)
    }

    /// The owner's daily reach for a test: its state and the days that overlap the test.
    pub async fn abtest_reach(&self, detail: &AbTestDetail) -> Result<TestReach, StoreError> {
        reach_of(self.store, detail).await
    }

    /// The owner's expected daily reach of `video` for a test starting now (`now`): the median of
    /// its last week's reported days, or estimated from `traffic` without them.
    pub async fn reach_plan(
        &self,
        video: &VideoId,
        traffic: &ExpectedTraffic,
        now: DateTime<Utc>,
    ) -> Result<ReachPlan, StoreError> {
        reach_plan(self.store, video, traffic, now).await
    }

    /// `user`'s connected YouTube account (never shown with its tokens).
    pub async fn youtube_connection(&self, user: UserId) -> Result<Option<YoutubeConnection>, StoreError> {
        self.store.youtube_connection(user).await
    }

    /// The videos of `channel` that `user` tracks, through the channel (newest first) or one by
    /// one: what they may test on their connected channel.
    pub async fn testable_videos(&self, user: UserId, channel: &ChannelId) -> Result<Vec<Video>, StoreError> {
        let mut videos = Vec::new();
        if self.store.user_tracks_channel(user, channel).await? {
            videos.extend(self.store.channel_videos(channel).await?);
        }
        for mapped in self.store.user_videos(user).await? {
            if let Some(v) = self.store.video(&mapped.video_id).await?
                && &v.channel_id == channel
                && !videos.iter().any(|known| known.id == v.id)
            {
                videos.push(v);
            }
        }
        Ok(videos)
    }
}
