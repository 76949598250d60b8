//! The chart API's answers (`GET /api/v1/videos/{id}/series`), kept per video with the stamp of
//! the series they were made from (`SeriesStamp`: what the series depends on, read in one
//! index-only query). A request whose stamp matches is answered with the kept bytes, without
//! reading the series or writing JSON; any new record, change event, title, thumbnail or tracking
//! state gives a new stamp, so a kept answer is never stale. The stamp also makes the `ETag`, so a
//! client that already has the series gets a 304 without a body. Access is checked by the stamp's
//! query on every request: the cache is shared by users, never consulted for one who cannot see
//! the video.
//!
//! Bounded by the bytes it holds (`CAPACITY_BYTES`), evicting the least useful answers first.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderValue;
use sha2::{Digest, Sha256};
use tubewatch_core::VideoId;
use tubewatch_store::SeriesStamp;

/// Bytes of answers kept at most: a 60-day hourly series is about 20 kB, so some 3,000 videos.
pub const CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

struct Kept {
    stamp: SeriesStamp,
    body: Bytes,
}

#[derive(Clone)]
struct BodyBytes;

impl quick_cache::Weighter<VideoId, Arc<Kept>> for BodyBytes {
    fn weight(&self, _video: &VideoId, kept: &Arc<Kept>) -> u64 {
        // The body plus roughly what the key and stamp hold.
        kept.body.len() as u64 + 128
    }
}

/// Shared by every clone of the web state.
#[derive(Clone)]
pub struct SeriesCache {
    kept: Arc<quick_cache::sync::Cache<VideoId, Arc<Kept>, BodyBytes>>,
}

impl Default for SeriesCache {
    fn default() -> Self {
        Self::with_capacity(CAPACITY_BYTES)
    }
}

impl std::fmt::Debug for SeriesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesCache").field("answers", &self.kept.len()).field("bytes", &self.kept.weight()).finish()
    }
}

impl SeriesCache {
    pub fn with_capacity(bytes: u64) -> Self {
        let items = usize::try_from(bytes / 20_000).unwrap_or(usize::MAX).max(16);
        Self { kept: Arc::new(quick_cache::sync::Cache::with_weighter(items, bytes, BodyBytes)) }
    }

    /// The answer kept for `video`, if it was made from a series with this `stamp`.
    pub fn get(&self, video: &VideoId, stamp: &SeriesStamp) -> Option<Bytes> {
        self.kept.get(video).filter(|kept| &kept.stamp == stamp).map(|kept| kept.body.clone())
    }

    pub fn insert(&self, video: VideoId, stamp: SeriesStamp, body: Bytes) {
        self.kept.insert(video, Arc::new(Kept { stamp, body }));
    }
}

/// The entity tag of a video's series at `stamp`: equal stamps, equal tags, across processes.
pub fn etag(video: &VideoId, stamp: &SeriesStamp) -> HeaderValue {
    let mut hash = Sha256::new();
    hash.update(video.as_str().as_bytes());
    // A stamp is plain data; serialising it cannot fail.
    hash.update(serde_json::to_vec(stamp).unwrap_or_default());
    let digest = hash.finalize();
    let tag = format!("\"s{}\"", hex::encode(&digest[..12]));
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"s\""))
}

/// Whether an `If-None-Match` value names `tag` (weak comparison, as RFC 9110 asks for it).
pub fn none_match(if_none_match: &HeaderValue, tag: &HeaderValue) -> bool {
    let Ok(listed) = if_none_match.to_str() else { return false };
    let Ok(tag) = tag.to_str() else { return false };
    listed.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(records: u64) -> SeriesStamp {
        SeriesStamp {
            records,
            last_slot: None,
            changes: 0,
            last_change_id: None,
            title: "A title".into(),
            thumb_blob_key: None,
            tracking: None,
        }
    }

    #[test]
    fn a_kept_answer_is_served_only_for_its_own_stamp() {
        let cache = SeriesCache::with_capacity(1 << 20);
        let video = VideoId::parse("dQw4w9WgXcQ").unwrap();
        cache.insert(video.clone(), stamp(3), Bytes::from_static(b"{\"points\":3}"));
        assert_eq!(cache.get(&video, &stamp(3)).as_deref(), Some(&b"{\"points\":3}"[..]));
        assert_eq!(cache.get(&video, &stamp(4)), None, "a new record makes a new series");
        let other = VideoId::parse("aaaaaaaaaaa").unwrap();
        assert_eq!(cache.get(&other, &stamp(3)), None);
    }

    #[test]
    fn etags_follow_the_stamp_and_match_as_clients_send_them() {
        let video = VideoId::parse("dQw4w9WgXcQ").unwrap();
        let tag = etag(&video, &stamp(3));
        assert_eq!(tag, etag(&video, &stamp(3)));
        assert_ne!(tag, etag(&video, &stamp(4)));
        let sent = |s: &str| HeaderValue::from_str(s).unwrap();
        let plain = tag.to_str().unwrap();
        assert!(none_match(&sent(plain), &tag));
        assert!(none_match(&sent(&format!("W/{plain}")), &tag));
        assert!(none_match(&sent(&format!("\"other\", {plain}")), &tag));
        assert!(none_match(&sent("*"), &tag));
        assert!(!none_match(&sent("\"other\""), &tag));
    }
}
