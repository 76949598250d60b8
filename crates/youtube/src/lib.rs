//! tubewatch's YouTube client: parsers for every public surface tubewatch reads (channel RSS
//! feeds, watch pages and InnerTube player JSON, thumbnails, channel resolution, Data API v3,
//! Google OAuth, Reporting API reach reports) and one HTTP client that fetches them with per-host limits and retries.
//!
//! Parsers are plain functions over bytes (usable on recorded samples and fuzzed); the client
//! adds transport. Every failure is a classified [`YoutubeError`], so nothing that is not data
//! (a consent page, a bot check, another video's response, a grey placeholder) is ever returned
//! as data.
#![forbid(unsafe_code)]

mod batch;
pub mod bench;
mod client;
pub mod data_api;
mod data_api_calls;
mod error;
pub mod feed;
mod google_error;
pub mod oauth;
pub mod player;
pub mod recorded;
pub mod reporting;
pub mod resolve;
mod sniff;
pub mod thumbnail;

pub use client::{
    CONSENT_COOKIE, PLAYER_CHECK_FIELDS, RawResponse, RetryPolicy, Thumbnail, ThumbnailCheck, ViewsEndpoint,
    YoutubeClient, YoutubeConfig,
};
pub use data_api::{ApiAuth, ApiChannel, ApiVideo, VIDEOS_LIST_MAX_IDS};
pub use error::{ErrorKind, YoutubeError};
pub use feed::{Feed, FeedEntry, parse_feed};
pub use google_error::parse_google_error;
pub use oauth::{
    AB_TEST_SCOPES, AuthorizationRequest, OAuthClient, OAuthConfig, SCOPE_YOUTUBE_FORCE_SSL,
    SCOPE_YT_ANALYTICS_READONLY, TokenSet,
};
pub use player::{VideoInfo, ViewsSource, parse_player_response, parse_watch_page};
pub use reporting::{
    REACH_COLUMNS, REACH_REPORT_TYPE, ReachCsvError, ReachRow, Report, ReportFilter, ReportType, ReportingJob,
    parse_reach_csv,
};
pub use resolve::parse_resolve_response;
pub use thumbnail::{
    PerceptualHash, SAME_PICTURE_MAX_DISTANCE, ThumbnailHashes, ThumbnailSize, check_thumbnail_bytes,
    classify_thumbnail_response, hash_image_bytes, sha256_hex,
};
