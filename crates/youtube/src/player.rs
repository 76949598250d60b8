//! The watch page (`/watch?v=ID`, which embeds `var ytInitialPlayerResponse = {…};`) and the
//! InnerTube player JSON (`POST /youtubei/v1/player`). This module owns finding the embedded
//! object, extracting views/title/channel/dates with their fallbacks, and classifying every
//! response that must not be stored as data (bot checks, consent, rate limits, another video's
//! response, unavailable videos).

use chrono::{DateTime, NaiveDate, Utc};
use memchr::memmem;
use serde::{Deserialize, Serialize};
use tubewatch_core::{ChannelId, VideoId};

use crate::YoutubeError;
use crate::sniff;

/// What tubewatch reads about a video on each check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoInfo {
    pub video_id: VideoId,
    pub title: String,
    pub channel_id: Option<ChannelId>,
    pub author: Option<String>,
    pub views: u64,
    /// Which field the view count came from.
    pub views_source: ViewsSource,
    pub published: Option<DateTime<Utc>>,
    pub uploaded: Option<DateTime<Utc>>,
    pub length_seconds: Option<u64>,
    pub like_count: Option<u64>,
    pub is_live_content: bool,
    pub is_unlisted: Option<bool>,
    pub category: Option<String>,
    /// `playabilityStatus.status` (e.g. `OK`, `LIVE_STREAM_OFFLINE`); `None` when absent
    /// (InnerTube responses filtered with `$fields`).
    pub playability: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewsSource {
    VideoDetails,
    Microformat,
    MetaInteractionCount,
}

// Only the fields we read are declared; serde skips the rest (streamingData etc. are large).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawPlayer {
    playability_status: Option<RawPlayability>,
    video_details: Option<RawVideoDetails>,
    microformat: Option<RawMicroformat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawPlayability {
    status: Option<String>,
    reason: Option<String>,
    error_screen: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawVideoDetails {
    video_id: Option<String>,
    title: Option<String>,
    channel_id: Option<String>,
    author: Option<String>,
    view_count: Option<String>,
    length_seconds: Option<String>,
    is_live_content: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawMicroformat {
    player_microformat_renderer: Option<RawPmr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawPmr {
    title: Option<RawText>,
    view_count: Option<String>,
    publish_date: Option<String>,
    upload_date: Option<String>,
    external_channel_id: Option<String>,
    external_video_id: Option<String>,
    owner_channel_name: Option<String>,
    like_count: Option<String>,
    category: Option<String>,
    is_unlisted: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawText {
    simple_text: Option<String>,
    runs: Option<Vec<RawRun>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawRun {
    text: String,
}

impl RawText {
    fn text(&self) -> Option<String> {
        self.simple_text
            .clone()
            .or_else(|| self.runs.as_ref().map(|runs| runs.iter().map(|r| r.text.as_str()).collect()))
    }
}

/// Parses a watch page. `requested` is the id asked for; pass it whenever it is known so that a
/// response for a different video is rejected (`None` only for debugging tools).
pub fn parse_watch_page(body: &[u8], requested: Option<&VideoId>) -> Result<VideoInfo, YoutubeError> {
    let Some(start) = find_player_response(body) else {
        return Err(classify_page_without_player(body));
    };
    let raw = parse_one_object(&body[start..])?;
    let meta_views = || meta_interaction_count(body);
    extract(raw, requested, &meta_views)
}

/// Parses an InnerTube `/youtubei/v1/player` JSON response.
pub fn parse_player_response(body: &[u8], requested: Option<&VideoId>) -> Result<VideoInfo, YoutubeError> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    match start {
        None => Err(YoutubeError::truncated("empty player response")),
        Some(i) if body[i] == b'{' => extract(parse_one_object(&body[i..])?, requested, &|| None),
        Some(_) if sniff::looks_like_html(body) => Err(sniff::classify_html(body, "player JSON")),
        Some(_) => Err(YoutubeError::malformed("player response is not a JSON object")),
    }
}

/// Byte offset of the `{` that opens the embedded player response, if any. The name occurs in
/// other places too (`window["ytInitialPlayerResponse"] = null`, references in scripts), so
/// every occurrence is tried until one is followed by `= {`.
pub fn find_player_response(body: &[u8]) -> Option<usize> {
    const NAME: &[u8] = b"ytInitialPlayerResponse";
    for hit in memmem::find_iter(body, NAME) {
        let mut i = hit + NAME.len();
        // Allow `ytInitialPlayerResponse"] = {` (bracket-notation assignment) as well.
        while i < body.len() && matches!(body[i], b'"' | b'\'' | b']') {
            i += 1;
        }
        while i < body.len() && body[i].is_ascii_whitespace() {
            i += 1;
        }
        if body.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < body.len() && body[i].is_ascii_whitespace() {
            i += 1;
        }
        if body.get(i) == Some(&b'{') {
            return Some(i);
        }
    }
    None
}

/// Follows a watch page as it arrives and says when the embedded player response is complete, so
/// that the rest of the page (most of it: `ytInitialData`, scripts) need not be read. Each byte is
/// looked at once: the name is searched only in what is new, and the object's end is found by
/// tracking strings, escapes and brace depth (a `}` inside a title does not end it).
#[derive(Debug, Default, Clone)]
pub struct PlayerResponseScan {
    /// Where the next search for the name starts.
    searched: usize,
    /// Offset of the object's `{`, once found.
    start: Option<usize>,
    /// How far the object has been scanned.
    scanned: usize,
    depth: u32,
    in_string: bool,
    escaped: bool,
    done: bool,
}

impl PlayerResponseScan {
    /// Takes the whole body read so far (it only grows); true once the player response's closing
    /// brace is in it.
    pub fn complete(&mut self, body: &[u8]) -> bool {
        if self.done {
            return true;
        }
        if self.start.is_none() {
            // The name and `= {` may straddle two chunks: search again from a little before.
            let from = self.searched.saturating_sub(64);
            match find_player_response(&body[from..]) {
                Some(i) => {
                    self.start = Some(from + i);
                    self.scanned = from + i;
                }
                None => {
                    self.searched = body.len();
                    return false;
                }
            }
        }
        for (i, &b) in body.iter().enumerate().skip(self.scanned) {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.done = true;
                        self.scanned = i + 1;
                        return true;
                    }
                }
                _ => {}
            }
        }
        self.scanned = body.len();
        false
    }
}

/// Deserialises exactly one JSON value from the start of `slice` and ignores what follows
/// (`;var meta = …`). Unlike a lazy `\{.*?\};` regex, a title containing `};` cannot end it early.
fn parse_one_object(slice: &[u8]) -> Result<RawPlayer, YoutubeError> {
    let mut stream = serde_json::Deserializer::from_slice(slice).into_iter::<RawPlayer>();
    match stream.next() {
        Some(Ok(raw)) => Ok(raw),
        Some(Err(e)) if e.is_eof() => Err(YoutubeError::truncated(format!("player response JSON cut off: {e}"))),
        Some(Err(e)) => Err(YoutubeError::malformed(format!("player response JSON: {e}"))),
        None => Err(YoutubeError::truncated("player response JSON missing")),
    }
}

fn classify_page_without_player(body: &[u8]) -> YoutubeError {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return YoutubeError::truncated("empty watch page");
    }
    if sniff::is_consent_page(body) {
        return YoutubeError::Consent;
    }
    if sniff::is_captcha_page(body) {
        return YoutubeError::BotCheck { reason: "Google's unusual-traffic captcha page".into() };
    }
    if sniff::looks_like_html(body) && !sniff::contains(body, b"</html>") {
        return YoutubeError::truncated("watch page ends before ytInitialPlayerResponse");
    }
    YoutubeError::malformed("no ytInitialPlayerResponse in the watch page")
}

/// `<meta itemprop="interactionCount" content="123">`, the last-resort view count.
fn meta_interaction_count(body: &[u8]) -> Option<u64> {
    let hit = memmem::find(body, b"itemprop=\"interactionCount\"")?;
    let tag_start = memchr::memrchr(b'<', &body[..hit])?;
    let tag_end = hit + memchr::memchr(b'>', &body[hit..])?;
    let tag = &body[tag_start..tag_end];
    let c = memmem::find(tag, b"content=\"")? + b"content=\"".len();
    let len = memchr::memchr(b'"', &tag[c..])?;
    std::str::from_utf8(&tag[c..c + len]).ok()?.trim().parse().ok()
}

fn error_screen_text(screen: &serde_json::Value, already: &str) -> String {
    // The error screen nests text in several renderer shapes; collect every string under
    // `reason`/`subreason` keys, whatever the renderer.
    fn walk(v: &serde_json::Value, inside: bool, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key_is_text = matches!(k.as_str(), "reason" | "subreason" | "simpleText" | "text" | "content");
                    walk(v, inside || matches!(k.as_str(), "reason" | "subreason"), out);
                    if inside
                        && key_is_text
                        && let serde_json::Value::String(s) = v
                    {
                        out.push(s.clone());
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|x| walk(x, inside, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(screen, false, &mut out);
    // The screen usually repeats `playabilityStatus.reason`; keep only what it adds.
    out.retain(|s| !s.trim().is_empty() && !already.contains(s.trim()));
    out.join(" ")
}

fn parse_count(s: Option<&str>) -> Option<u64> {
    s.and_then(|s| s.trim().replace(',', "").parse().ok())
}

fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|t| t.and_utc()))
}

fn extract(
    raw: RawPlayer,
    requested: Option<&VideoId>,
    meta_views: &dyn Fn() -> Option<u64>,
) -> Result<VideoInfo, YoutubeError> {
    let details = raw.video_details.unwrap_or_default();
    let pmr = raw.microformat.and_then(|m| m.player_microformat_renderer).unwrap_or_default();
    let playability = raw.playability_status.unwrap_or_default();
    let got_id = details.video_id.clone().or_else(|| pmr.external_video_id.clone());

    // Another video's response is a rate-limiting symptom: check it before anything that would
    // declare the requested video gone.
    if let (Some(want), Some(got)) = (requested, got_id.as_deref())
        && want.as_str() != got
    {
        return Err(YoutubeError::WrongVideo { requested: want.to_string(), got: got.to_owned() });
    }
    refuse_unplayable(&playability)?;

    let status = playability.status;
    let Some(got_id) = got_id else {
        return Err(YoutubeError::malformed(format!(
            "player response has no video id (playability {})",
            status.as_deref().unwrap_or("absent")
        )));
    };
    let video_id = VideoId::parse(&got_id).map_err(|e| YoutubeError::malformed(e.to_string()))?;
    let title = details
        .title
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| pmr.title.as_ref().and_then(RawText::text))
        .ok_or_else(|| YoutubeError::malformed(format!("no title for {video_id}")))?;
    let (views, views_source) = views_of(&details, &pmr, meta_views, &video_id)?;
    let channel_id = details
        .channel_id
        .as_deref()
        .or(pmr.external_channel_id.as_deref())
        .map(|c| ChannelId::parse(c).map_err(|e| YoutubeError::malformed(e.to_string())))
        .transpose()?;
    Ok(VideoInfo {
        video_id,
        title,
        channel_id,
        author: details.author.or(pmr.owner_channel_name),
        views,
        views_source,
        published: pmr.publish_date.as_deref().and_then(parse_date),
        uploaded: pmr.upload_date.as_deref().and_then(parse_date),
        length_seconds: parse_count(details.length_seconds.as_deref()),
        like_count: parse_count(pmr.like_count.as_deref()),
        is_live_content: details.is_live_content.unwrap_or(false),
        is_unlisted: pmr.is_unlisted,
        category: pmr.category,
        playability: status,
    })
}

/// Refuses a response whose playability says it holds nothing for us: a bot check, a video
/// gone, private or age-gated, or rate limiting. Upcoming premieres and streams and
/// content-warning gates still carry videoDetails: they pass, and the extraction decides
/// whether there is data.
fn refuse_unplayable(playability: &RawPlayability) -> Result<(), YoutubeError> {
    let reason = {
        let mut r = playability.reason.clone().unwrap_or_default();
        if let Some(screen) = &playability.error_screen {
            let extra = error_screen_text(screen, &r);
            if !extra.is_empty() {
                r = if r.is_empty() { extra } else { format!("{r} {extra}") };
            }
        }
        r
    };
    let captcha = playability
        .error_screen
        .as_ref()
        .is_some_and(|s| s.get("playerCaptchaViewModel").is_some() || s.get("playerCaptchaRenderer").is_some());
    let normalised = sniff::normalise_reason(&reason);
    match playability.status.as_deref() {
        None | Some("OK") => Ok(()),
        _ if captcha => Err(YoutubeError::BotCheck { reason }),
        Some("LOGIN_REQUIRED") => {
            // LOGIN_REQUIRED also means "private video" or an age gate; those are about the
            // video, not about us, and are permanent.
            if normalised.contains("private") {
                return Err(YoutubeError::Unavailable { status: "LOGIN_REQUIRED".into(), reason });
            }
            if normalised.contains("confirm your age") || normalised.contains("age-restricted") {
                return Err(YoutubeError::Unavailable { status: "LOGIN_REQUIRED".into(), reason });
            }
            Err(YoutubeError::BotCheck { reason })
        }
        Some(s @ ("ERROR" | "UNPLAYABLE")) => {
            if sniff::is_rate_limit_text(&reason) {
                return Err(YoutubeError::RateLimited { detail: reason, retry_after: None });
            }
            Err(YoutubeError::Unavailable { status: s.to_owned(), reason })
        }
        Some(_) => Ok(()),
    }
}

/// The view count and where it was read: videoDetails, else the microformat, else the page's
/// `interactionCount` meta tag (`meta_views`, read only when needed).
fn views_of(
    details: &RawVideoDetails,
    pmr: &RawPmr,
    meta_views: &dyn Fn() -> Option<u64>,
    video_id: &VideoId,
) -> Result<(u64, ViewsSource), YoutubeError> {
    if let Some(v) = parse_count(details.view_count.as_deref()) {
        Ok((v, ViewsSource::VideoDetails))
    } else if let Some(v) = parse_count(pmr.view_count.as_deref()) {
        Ok((v, ViewsSource::Microformat))
    } else if let Some(v) = meta_views() {
        Ok((v, ViewsSource::MetaInteractionCount))
    } else {
        Err(YoutubeError::malformed(format!("no view count for {video_id}")))
    }
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[test]
    fn the_scan_ends_at_the_player_responses_closing_brace_whatever_the_chunking() {
        let page = br#"<script>var x = {"ytInitialPlayerResponse": null};</script><script>var ytInitialPlayerResponse = {"videoDetails":{"videoId":"abcdefghijk","title":"a } \" {{ title","viewCount":"5"},"list":[{"a":"]"}]};var meta = {};</script><p>rest of the page</p>"#;
        let real_end = memmem::find(page, b"]};var meta").expect("end") + 2;
        for chunk in [1, 2, 7, 64, page.len()] {
            let mut scan = PlayerResponseScan::default();
            let mut body = Vec::new();
            let mut stopped_at = None;
            for piece in page.chunks(chunk) {
                body.extend_from_slice(piece);
                if scan.complete(&body) {
                    stopped_at = Some(body.len());
                    break;
                }
            }
            let stopped_at = stopped_at.expect("the player response completes");
            assert!(stopped_at >= real_end && stopped_at < real_end + chunk, "chunk {chunk}: stopped at {stopped_at}");
            let info = parse_watch_page(&body, None).expect("the prefix parses");
            assert_eq!(info.views, 5);
        }
    }

    #[test]
    fn a_page_without_a_player_response_is_read_to_the_end() {
        let mut scan = PlayerResponseScan::default();
        assert!(!scan.complete(b"<html><body>consent</body></html>"));
    }
}
