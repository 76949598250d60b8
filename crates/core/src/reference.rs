//! Every way a user writes a YouTube channel or video, parsed into a typed reference.
//!
//! Only identifiers come out of here: tubewatch never fetches a URL a user typed, it builds
//! its own requests to the configured YouTube hosts from these ids.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::ids::{ChannelId, Handle, VideoId};

/// A channel as a user may name it. Only `Id` is final; the others need resolving.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum ChannelRef {
    Id(ChannelId),
    Handle(Handle),
    /// A legacy custom URL, `/c/NAME`.
    Custom(String),
    /// A legacy user URL, `/user/NAME`.
    User(String),
}

/// A video or a channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum YoutubeRef {
    Video { id: VideoId },
    Channel { channel: ChannelRef },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("empty input: paste a YouTube video or channel URL, a video id, a channel id (UC…) or a @handle")]
    Empty,
    #[error("{0:?} is not a YouTube address (expected youtube.com or youtu.be)")]
    NotYoutube(String),
    #[error(
        "cannot tell which video or channel {0:?} points to; paste a /watch?v=, youtu.be/, /shorts/, /channel/UC…, /@handle URL, a video id, a channel id or a @handle"
    )]
    Unrecognised(String),
    #[error("expected a video but {0:?} names a channel")]
    NotAVideo(String),
    #[error("expected a channel but {0:?} names a video")]
    NotAChannel(String),
}

const YOUTUBE_HOSTS: &[&str] = &[
    "youtube.com",
    "www.youtube.com",
    "m.youtube.com",
    "music.youtube.com",
    "youtube-nocookie.com",
    "www.youtube-nocookie.com",
];

impl YoutubeRef {
    /// Parses a URL (with or without scheme), a bare video id, a bare channel id or a `@handle`.
    pub fn parse(input: &str) -> Result<Self, RefError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(RefError::Empty);
        }
        if let Ok(id) = VideoId::parse(s) {
            return Ok(Self::Video { id });
        }
        if let Ok(id) = ChannelId::parse(s) {
            return Ok(Self::Channel { channel: ChannelRef::Id(id) });
        }
        if s.starts_with('@') {
            let handle = Handle::parse(s).map_err(|_| RefError::Unrecognised(s.to_owned()))?;
            return Ok(Self::Channel { channel: ChannelRef::Handle(handle) });
        }
        let with_scheme = if s.contains("://") { s.to_owned() } else { format!("https://{s}") };
        let url = Url::parse(&with_scheme).map_err(|_| RefError::Unrecognised(s.to_owned()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RefError::NotYoutube(s.to_owned()));
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let segments: Vec<&str> =
            url.path_segments().map(|p| p.filter(|x| !x.is_empty()).collect()).unwrap_or_default();
        let unrecognised = || RefError::Unrecognised(s.to_owned());
        if host == "youtu.be" || host == "www.youtu.be" {
            let id = segments.first().and_then(|x| VideoId::parse(x).ok()).ok_or_else(unrecognised)?;
            return Ok(Self::Video { id });
        }
        if !YOUTUBE_HOSTS.contains(&host.as_str()) {
            return Err(RefError::NotYoutube(s.to_owned()));
        }
        let video = |x: &str| VideoId::parse(x).map(|id| Self::Video { id }).map_err(|_| unrecognised());
        let channel = |c: ChannelRef| Ok(Self::Channel { channel: c });
        match segments.as_slice() {
            ["watch", ..] => {
                let v = url.query_pairs().find(|(k, _)| k == "v").map(|(_, v)| v.into_owned());
                video(&v.ok_or_else(unrecognised)?)
            }
            ["shorts" | "live" | "embed" | "v", id, ..] => video(id),
            ["channel", id, ..] => channel(ChannelRef::Id(ChannelId::parse(id).map_err(|_| unrecognised())?)),
            ["c", name, ..] => channel(ChannelRef::Custom(legacy_name(name).ok_or_else(unrecognised)?)),
            ["user", name, ..] => channel(ChannelRef::User(legacy_name(name).ok_or_else(unrecognised)?)),
            [first, ..] if first.starts_with('@') => {
                let decoded = percent_decode(first);
                channel(ChannelRef::Handle(Handle::parse(&decoded).map_err(|_| unrecognised())?))
            }
            _ => Err(unrecognised()),
        }
    }

    /// Parses input that must name a video.
    pub fn parse_video(input: &str) -> Result<VideoId, RefError> {
        match Self::parse(input)? {
            Self::Video { id } => Ok(id),
            Self::Channel { .. } => Err(RefError::NotAVideo(input.trim().to_owned())),
        }
    }

    /// Parses input that must name a channel.
    pub fn parse_channel(input: &str) -> Result<ChannelRef, RefError> {
        match Self::parse(input)? {
            Self::Channel { channel } => Ok(channel),
            Self::Video { .. } => Err(RefError::NotAChannel(input.trim().to_owned())),
        }
    }
}

fn legacy_name(name: &str) -> Option<String> {
    let ok = (1..=100).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    ok.then(|| name.to_owned())
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(s.as_bytes()).next().map(|(k, _)| k.into_owned()).unwrap_or_default()
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{id}"),
            Self::Handle(h) => write!(f, "{h}"),
            Self::Custom(n) => write!(f, "/c/{n}"),
            Self::User(n) => write!(f, "/user/{n}"),
        }
    }
}

impl ChannelRef {
    /// The path of this channel on youtube.com, as YouTube's URL resolver expects it.
    pub fn path(&self) -> String {
        match self {
            Self::Id(id) => format!("/channel/{id}"),
            Self::Handle(h) => format!("/{h}"),
            Self::Custom(n) => format!("/c/{n}"),
            Self::User(n) => format!("/user/{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(s: &str) -> String {
        YoutubeRef::parse_video(s).unwrap().to_string()
    }

    #[test]
    fn video_forms() {
        for input in [
            "dQw4w9WgXcQ",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://www.youtube.com/watch?feature=share&v=dQw4w9WgXcQ&t=42s",
            "http://youtube.com/watch?v=dQw4w9WgXcQ",
            "www.youtube.com/watch?v=dQw4w9WgXcQ",
            "m.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://youtu.be/dQw4w9WgXcQ",
            "youtu.be/dQw4w9WgXcQ?si=abc",
            "https://www.youtube.com/shorts/dQw4w9WgXcQ",
            "https://www.youtube.com/live/dQw4w9WgXcQ",
            "https://www.youtube.com/embed/dQw4w9WgXcQ",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
            "  https://music.youtube.com/watch?v=dQw4w9WgXcQ  ",
        ] {
            assert_eq!(video(input), "dQw4w9WgXcQ", "{input}");
        }
    }

    #[test]
    fn channel_forms() {
        let id = ChannelRef::Id(ChannelId::parse("UCsXVk37bltHxD1rDPwtNM8Q").unwrap());
        let handle = ChannelRef::Handle(Handle::parse("@kurzgesagt").unwrap());
        let cases = [
            ("UCsXVk37bltHxD1rDPwtNM8Q", id.clone()),
            ("https://www.youtube.com/channel/UCsXVk37bltHxD1rDPwtNM8Q", id.clone()),
            ("youtube.com/channel/UCsXVk37bltHxD1rDPwtNM8Q/videos", id),
            ("@kurzgesagt", handle.clone()),
            ("@Kurzgesagt", handle.clone()),
            ("https://www.youtube.com/@kurzgesagt", handle.clone()),
            ("https://www.youtube.com/@kurzgesagt/shorts", handle),
            ("https://www.youtube.com/c/inanutshell", ChannelRef::Custom("inanutshell".into())),
            ("https://www.youtube.com/user/Kurzgesagt", ChannelRef::User("Kurzgesagt".into())),
        ];
        for (input, want) in cases {
            assert_eq!(YoutubeRef::parse_channel(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn rejections_are_clear() {
        assert_eq!(YoutubeRef::parse("   "), Err(RefError::Empty));
        assert!(matches!(YoutubeRef::parse("https://vimeo.com/123"), Err(RefError::NotYoutube(_))));
        assert!(matches!(YoutubeRef::parse("https://evil.example/watch?v=dQw4w9WgXcQ"), Err(RefError::NotYoutube(_))));
        assert!(matches!(YoutubeRef::parse("https://youtube.com.evil.example/@abc"), Err(RefError::NotYoutube(_))));
        assert!(matches!(YoutubeRef::parse("ftp://youtube.com/watch?v=dQw4w9WgXcQ"), Err(RefError::NotYoutube(_))));
        for bad in [
            "https://www.youtube.com/watch?v=short",
            "https://www.youtube.com/watch",
            "https://www.youtube.com/",
            "https://www.youtube.com/channel/notachannel",
            "https://youtu.be/",
            "@x",
            "hello world",
            "https://www.youtube.com/feed/subscriptions",
        ] {
            let err = YoutubeRef::parse(bad).unwrap_err();
            assert!(matches!(err, RefError::Unrecognised(_)), "{bad}: {err:?}");
        }
        assert!(matches!(YoutubeRef::parse_video("@kurzgesagt"), Err(RefError::NotAVideo(_))));
        assert!(matches!(YoutubeRef::parse_channel("dQw4w9WgXcQ"), Err(RefError::NotAChannel(_))));
    }
}
