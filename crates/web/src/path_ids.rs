//! Identifiers taken from request paths, for pages and API alike: a malformed one names nothing
//! the caller may see, so it is answered like an unknown one (404), never as bad input.

use tubewatch_core::{ChannelId, VideoId};

use crate::error::ApiError;

pub(crate) fn channel_param(raw: &str) -> Result<ChannelId, ApiError> {
    ChannelId::parse(raw).map_err(|_| ApiError::not_found("channel"))
}

pub(crate) fn video_param(raw: &str) -> Result<VideoId, ApiError> {
    VideoId::parse(raw).map_err(|_| ApiError::not_found("video"))
}
