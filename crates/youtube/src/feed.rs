//! The channel RSS feed (`/feeds/videos.xml?channel_id=UC…`): an Atom document with YouTube's
//! `yt:` and Media RSS `media:` extensions. This module owns its parsing and its quirks:
//! the feed-level channel id lacks the `UC` prefix (or is empty), there is no feed-level
//! `<updated>`, Shorts are only recognisable by their `/shorts/` link, and an unknown channel
//! gets an HTML error page instead of a feed.

use chrono::{DateTime, Utc};
use quick_xml::NsReader;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use serde::Serialize;
use tubewatch_core::{ChannelId, VideoId};

use crate::YoutubeError;
use crate::sniff;

const ATOM_NS: &[u8] = b"http://www.w3.org/2005/Atom";
const YT_NS: &[u8] = b"http://www.youtube.com/xml/schemas/2015";
const MEDIA_NS: &[u8] = b"http://search.yahoo.com/mrss/";

/// A parsed channel feed: the channel's newest uploads (YouTube sends 15), newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feed {
    /// The channel, with the `UC` prefix restored; `None` only for a feed with no channel
    /// id anywhere (e.g. a playlist feed with no entries).
    pub channel_id: Option<ChannelId>,
    pub title: Option<String>,
    /// When the channel was created (the feed-level `<published>`).
    pub published: Option<DateTime<Utc>>,
    pub entries: Vec<FeedEntry>,
}

/// One video in a channel feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedEntry {
    pub video_id: VideoId,
    pub channel_id: ChannelId,
    pub title: String,
    pub published: DateTime<Utc>,
    /// Last metadata change; may be later than `published`.
    pub updated: Option<DateTime<Utc>>,
    pub thumbnail_url: Option<String>,
    /// `media:statistics/@views`: a cheap extra view-count source.
    pub views: Option<u64>,
    /// True when the entry links to `/shorts/ID` rather than `/watch?v=ID`.
    pub is_short: bool,
    pub link: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Atom,
    Yt,
    Media,
    Other,
}

fn ns_of(res: &ResolveResult<'_>) -> Ns {
    match res {
        ResolveResult::Bound(ns) if ns.0 == ATOM_NS => Ns::Atom,
        ResolveResult::Bound(ns) if ns.0 == YT_NS => Ns::Yt,
        ResolveResult::Bound(ns) if ns.0 == MEDIA_NS => Ns::Media,
        _ => Ns::Other,
    }
}

#[derive(Default)]
struct EntryDraft {
    atom_id: Option<String>,
    video_id: Option<String>,
    channel_id: Option<String>,
    title: Option<String>,
    published: Option<String>,
    updated: Option<String>,
    thumbnail_url: Option<String>,
    views: Option<String>,
    link: Option<String>,
}

#[derive(Default)]
struct FeedDraft {
    atom_id: Option<String>,
    channel_id: Option<String>,
    title: Option<String>,
    published: Option<String>,
    alternate_link: Option<String>,
    author_uri: Option<String>,
}

impl EntryDraft {
    /// Keeps the text of an element of the entry that the feed entry is made from.
    fn fill(&mut self, ns: Ns, local: &[u8], value: impl FnOnce() -> String) {
        match (ns, local) {
            (Ns::Atom, b"id") => self.atom_id = Some(value()),
            (Ns::Yt, b"videoId") => self.video_id = Some(value()),
            (Ns::Yt, b"channelId") => self.channel_id = Some(value()),
            (Ns::Atom, b"title") => self.title = Some(value()),
            (Ns::Atom, b"published") => self.published = Some(value()),
            (Ns::Atom, b"updated") => self.updated = Some(value()),
            _ => {}
        }
    }
}

impl FeedDraft {
    /// Keeps the text of a feed-level element that the feed is made from.
    fn fill(&mut self, ns: Ns, local: &[u8], value: impl FnOnce() -> String) {
        match (ns, local) {
            (Ns::Atom, b"id") => self.atom_id = Some(value()),
            (Ns::Yt, b"channelId") => self.channel_id = Some(value()),
            (Ns::Atom, b"title") => self.title = Some(value()),
            (Ns::Atom, b"published") => self.published = Some(value()),
            _ => {}
        }
    }
}

/// Parses a channel feed body. An HTML page (YouTube's 404 page for an unknown channel, or a
/// consent page) is classified rather than reported as a parse error.
pub fn parse_feed(body: &[u8]) -> Result<Feed, YoutubeError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(YoutubeError::truncated("empty feed body"));
    }
    if sniff::looks_like_html(body) {
        return Err(sniff::classify_html(body, "channel feed"));
    }

    let mut reader = NsReader::from_reader(body);
    // Element names are checked so that a body cut in the middle is not silently accepted.
    reader.config_mut().check_end_names = true;

    let mut stack: Vec<(Ns, Vec<u8>)> = Vec::new();
    let mut text = String::new();
    let mut feed = FeedDraft::default();
    let mut entry: Option<EntryDraft> = None;
    let mut entries = Vec::new();
    let mut saw_root = false;

    loop {
        let position_before = reader.buffer_position();
        let (res, event) = match reader.read_resolved_event() {
            Ok(pair) => pair,
            Err(e) => {
                // An error right at the end of the input means the body was cut off.
                let at_end = reader.buffer_position() as usize >= body.len();
                let detail = format!("feed XML error at byte {position_before}: {e}");
                return Err(if at_end { YoutubeError::truncated(detail) } else { YoutubeError::malformed(detail) });
            }
        };
        let ns = ns_of(&res);
        match event {
            Event::Start(start) => {
                let local = start.local_name().as_ref().to_vec();
                if !saw_root {
                    check_root(ns, &local)?;
                    saw_root = true;
                }
                if stack.len() == 1 && ns == Ns::Atom && local == b"entry" {
                    entry = Some(EntryDraft::default());
                }
                on_attributes(ns, &local, &start, &mut feed, entry.as_mut(), stack.len())?;
                stack.push((ns, local));
                text.clear();
            }
            Event::Empty(start) => {
                let local = start.local_name().as_ref().to_vec();
                if !saw_root {
                    check_root(ns, &local)?;
                    saw_root = true;
                }
                on_attributes(ns, &local, &start, &mut feed, entry.as_mut(), stack.len())?;
                text.clear();
            }
            Event::Text(t) => {
                let decoded = t.xml10_content().map_err(|e| YoutubeError::malformed(format!("feed text: {e}")))?;
                text.push_str(&decoded);
            }
            Event::CData(c) => {
                let decoded = c.decode().map_err(|e| YoutubeError::malformed(format!("feed CDATA: {e}")))?;
                text.push_str(&decoded);
            }
            Event::GeneralRef(r) => push_reference(&r, &mut text)?,
            Event::End(_) => {
                let Some((ns, local)) = stack.pop() else {
                    return Err(YoutubeError::malformed("feed XML closes an element that was never opened"));
                };
                let parent = stack.last().map(|(n, l)| (*n, l.as_slice()));
                let closed = Closed { ns, local: &local, depth: stack.len(), parent, text: &text };
                closed.keep(&mut feed, &mut entry, &mut entries);
                text.clear();
            }
            Event::Eof => {
                if !saw_root {
                    return Err(YoutubeError::truncated("feed body has no XML element"));
                }
                if !stack.is_empty() {
                    return Err(YoutubeError::truncated("feed XML ends before its elements are closed"));
                }
                break;
            }
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) | Event::Comment(_) => {}
        }
    }

    finish_feed(feed, entries)
}

/// An element just closed, with the text it held.
struct Closed<'a> {
    ns: Ns,
    local: &'a [u8],
    /// Elements still open around it (1: a child of the root).
    depth: usize,
    parent: Option<(Ns, &'a [u8])>,
    text: &'a str,
}

impl Closed<'_> {
    /// Keeps the element's text where the feed is made from it: in the open entry, in the feed
    /// (its own elements and its author's URI), or closes the entry itself.
    fn keep(&self, feed: &mut FeedDraft, entry: &mut Option<EntryDraft>, entries: &mut Vec<EntryDraft>) {
        let (ns, local) = (self.ns, self.local);
        // Copied out only for the elements kept: most (descriptions above all) are not.
        let value = || self.text.trim().to_owned();
        match (entry.as_mut(), self.depth) {
            (Some(_), 1) if ns == Ns::Atom && local == b"entry" => {
                if let Some(draft) = entry.take() {
                    entries.push(draft);
                }
            }
            (Some(e), 2) => e.fill(ns, local, value),
            (None, 1) => feed.fill(ns, local, value),
            (None, 2) if self.parent == Some((Ns::Atom, b"author")) && ns == Ns::Atom && local == b"uri" => {
                feed.author_uri = Some(value());
            }
            _ => {}
        }
    }
}

/// The feed from its drafts, each entry checked and completed.
fn finish_feed(feed: FeedDraft, entries: Vec<EntryDraft>) -> Result<Feed, YoutubeError> {
    let feed_channel = feed_channel_id(&feed);
    let mut out = Vec::with_capacity(entries.len());
    for (index, draft) in entries.into_iter().enumerate() {
        out.push(finish_entry(draft, feed_channel.as_ref(), index)?);
    }
    let channel_id = feed_channel.or_else(|| out.first().map(|e| e.channel_id.clone()));
    Ok(Feed {
        channel_id,
        title: feed.title.filter(|t| !t.is_empty()),
        published: feed.published.as_deref().and_then(|p| parse_time(p).ok()),
        entries: out,
    })
}

/// Appends what a character or entity reference stands for (`&#233;`, `&amp;`) to `text`.
fn push_reference(r: &BytesRef<'_>, text: &mut String) -> Result<(), YoutubeError> {
    if let Some(ch) = r.resolve_char_ref().map_err(|e| YoutubeError::malformed(format!("feed entity: {e}")))? {
        text.push(ch);
    } else {
        let name = r.decode().map_err(|e| YoutubeError::malformed(format!("feed entity: {e}")))?;
        let value = quick_xml::escape::resolve_predefined_entity(&name)
            .ok_or_else(|| YoutubeError::malformed(format!("unknown XML entity &{name};")))?;
        text.push_str(value);
    }
    Ok(())
}

fn check_root(ns: Ns, local: &[u8]) -> Result<(), YoutubeError> {
    if ns == Ns::Atom && local == b"feed" {
        Ok(())
    } else {
        Err(YoutubeError::malformed(format!(
            "not an Atom feed: the root element is <{}>",
            String::from_utf8_lossy(local)
        )))
    }
}

fn on_attributes(
    ns: Ns,
    local: &[u8],
    start: &BytesStart<'_>,
    feed: &mut FeedDraft,
    entry: Option<&mut EntryDraft>,
    depth: usize,
) -> Result<(), YoutubeError> {
    let interesting =
        matches!((ns, local), (Ns::Atom, b"link") | (Ns::Media, b"thumbnail") | (Ns::Media, b"statistics"));
    if !interesting {
        return Ok(());
    }
    let attr = |name: &[u8]| -> Result<Option<String>, YoutubeError> {
        for a in start.attributes() {
            let a = a.map_err(|e| YoutubeError::malformed(format!("feed attribute: {e}")))?;
            if a.key.local_name().as_ref() == name {
                let v = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|e| YoutubeError::malformed(format!("feed attribute value: {e}")))?;
                return Ok(Some(v.into_owned()));
            }
        }
        Ok(None)
    };
    // Only `rel="alternate"` links matter (an entry link without `rel` is alternate by Atom's rules).
    let rel = if local == b"link" { attr(b"rel")? } else { None };
    let alternate = rel.as_deref() == Some("alternate");
    match (ns, local, entry) {
        (Ns::Atom, b"link", Some(e)) if depth == 2 && (alternate || rel.is_none()) => e.link = attr(b"href")?,
        (Ns::Atom, b"link", None) if depth == 1 && alternate => feed.alternate_link = attr(b"href")?,
        (Ns::Media, b"thumbnail", Some(e)) => e.thumbnail_url = attr(b"url")?,
        (Ns::Media, b"statistics", Some(e)) => e.views = attr(b"views")?,
        _ => {}
    }
    Ok(())
}

/// The feed-level channel id, with YouTube's missing `UC` prefix restored; falls back to the
/// channel URL in the alternate link or the author URI when the id element is empty.
fn feed_channel_id(feed: &FeedDraft) -> Option<ChannelId> {
    let from_bare = |raw: &str| {
        let raw = raw.trim();
        let raw = raw.strip_prefix("yt:channel:").unwrap_or(raw);
        ChannelId::parse(raw).ok().or_else(|| ChannelId::parse(&format!("UC{raw}")).ok())
    };
    let from_url = |url: &str| url.rsplit_once("/channel/").and_then(|(_, id)| ChannelId::parse(id).ok());
    feed.channel_id
        .as_deref()
        .and_then(from_bare)
        .or_else(|| feed.atom_id.as_deref().and_then(from_bare))
        .or_else(|| feed.alternate_link.as_deref().and_then(from_url))
        .or_else(|| feed.author_uri.as_deref().and_then(from_url))
}

fn finish_entry(draft: EntryDraft, feed_channel: Option<&ChannelId>, index: usize) -> Result<FeedEntry, YoutubeError> {
    let bad = |what: String| YoutubeError::malformed(format!("feed entry {index}: {what}"));
    let raw_video = draft
        .video_id
        .or_else(|| draft.atom_id.as_deref().and_then(|id| id.strip_prefix("yt:video:")).map(str::to_owned));
    let video_id = match raw_video {
        Some(v) => VideoId::parse(&v).map_err(|e| bad(e.to_string()))?,
        None => return Err(bad("no video id".into())),
    };
    let channel_id = match draft.channel_id.filter(|c| !c.is_empty()) {
        Some(c) => ChannelId::parse(&c).map_err(|e| bad(e.to_string()))?,
        None => feed_channel.cloned().ok_or_else(|| bad("no channel id".into()))?,
    };
    let published = match draft.published {
        Some(p) => parse_time(&p).map_err(|e| bad(format!("published {p:?}: {e}")))?,
        None => return Err(bad("no published time".into())),
    };
    let updated = match draft.updated {
        Some(u) => Some(parse_time(&u).map_err(|e| bad(format!("updated {u:?}: {e}")))?),
        None => None,
    };
    let views = match draft.views {
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| bad(format!("views {v:?} is not a count")))?),
        None => None,
    };
    let is_short = draft.link.as_deref().is_some_and(|l| l.contains("/shorts/"));
    Ok(FeedEntry {
        video_id,
        channel_id,
        title: draft.title.unwrap_or_default(),
        published,
        updated,
        thumbnail_url: draft.thumbnail_url,
        views,
        is_short,
        link: draft.link,
    })
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s.trim()).map(|t| t.with_timezone(&Utc))
}
