//! The documents YouTube serves, rendered from the world's state at an instant: the channel
//! Atom feed, the InnerTube player response, the watch page around it, and Google's error and
//! consent pages. Shapes follow the real recordings in `shared/fixtures/youtube/`.

use axum::body::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::escape::escape;
use serde_json::{Value, json};

use crate::rng;
use crate::thumbs::ThumbSize;
use crate::world::{Channel, LiveState, Video, World, pacific_offset};

/// Everything a page about one video needs.
#[derive(Debug)]
pub struct VideoView<'a> {
    pub video: &'a Video,
    pub channel: &'a Channel,
    pub live: LiveState,
}

fn atom_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

fn pacific_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&pacific_offset(t)).to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// The description a creator wrote (deterministic per video).
pub fn description(world: &World, v: &VideoView<'_>) -> String {
    let h = rng::hash(world.seed(), &[rng::tag("description"), rng::mix64(v.video.published.timestamp() as u64)]);
    let topic = v.video.keywords.first().map_or("this", String::as_str);
    let mut text = format!(
        "Everything about {topic}, the way {} does it.\n\nChapters:\n0:00 Intro\n1:{:02} The idea\n\n",
        v.channel.title,
        h % 60
    );
    if v.video.is_short {
        text.push_str("#shorts ");
    }
    text.push_str(&format!("#{} & more: https://example.org/{}", topic.replace(' ', ""), h % 10_000));
    text
}

/// `GET /feeds/videos.xml?channel_id=…`: the 15 newest entries, as the real feed writes them.
/// A playlist's feed (`playlist` given) names the playlist and links to itself by it.
pub fn feed(world: &World, base: &str, channel: &Channel, playlist: Option<&str>, entries: &[VideoView<'_>]) -> String {
    let ucid = channel.id.as_str();
    let bare = &ucid[2..];
    let title = escape(&channel.title);
    let mut out = String::with_capacity(2048 + entries.len() * 1200);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns:yt=\"http://www.youtube.com/xml/schemas/2015\" xmlns:media=\"http://search.yahoo.com/mrss/\" xmlns=\"http://www.w3.org/2005/Atom\">\n");
    match playlist {
        None => {
            out.push_str(&format!(" <link rel=\"self\" href=\"{base}/feeds/videos.xml?channel_id={ucid}\"/>\n"));
            out.push_str(&format!(" <id>yt:channel:{bare}</id>\n"));
        }
        Some(list) => {
            let list = escape(list);
            out.push_str(&format!(" <link rel=\"self\" href=\"{base}/feeds/videos.xml?playlist_id={list}\"/>\n"));
            out.push_str(&format!(" <id>yt:playlist:{list}</id>\n <yt:playlistId>{list}</yt:playlistId>\n"));
        }
    }
    out.push_str(&format!(" <yt:channelId>{bare}</yt:channelId>\n <title>{title}</title>\n"));
    out.push_str(&format!(" <link rel=\"alternate\" href=\"{base}/channel/{ucid}\"/>\n"));
    out.push_str(&format!(" <author>\n  <name>{title}</name>\n  <uri>{base}/channel/{ucid}</uri>\n </author>\n"));
    out.push_str(&format!(" <published>{}</published>\n", atom_time(channel.created)));
    for e in entries {
        let id = e.video.id.as_str();
        let vt = escape(&e.live.title);
        let link = if e.video.is_short { format!("{base}/shorts/{id}") } else { format!("{base}/watch?v={id}") };
        out.push_str(&format!(
            " <entry>\n  <id>yt:video:{id}</id>\n  <yt:videoId>{id}</yt:videoId>\n  <yt:channelId>{ucid}</yt:channelId>\n  <title>{vt}</title>\n  <link rel=\"alternate\" href=\"{link}\"/>\n  <author>\n   <name>{title}</name>\n   <uri>{base}/channel/{ucid}</uri>\n  </author>\n  <published>{}</published>\n  <updated>{}</updated>\n",
            atom_time(e.video.published),
            atom_time(e.live.updated),
        ));
        out.push_str(&format!(
            "  <media:group>\n   <media:title>{vt}</media:title>\n   <media:content url=\"{base}/v/{id}?version=3\" type=\"application/x-shockwave-flash\" width=\"640\" height=\"390\"/>\n   <media:thumbnail url=\"{base}/vi/{id}/hqdefault.jpg\" width=\"480\" height=\"360\"/>\n   <media:description>{}</media:description>\n   <media:community>\n    <media:starRating count=\"{}\" average=\"5.00\" min=\"1\" max=\"5\"/>\n    <media:statistics views=\"{}\"/>\n   </media:community>\n  </media:group>\n </entry>\n",
            escape(description(world, e)),
            e.live.likes,
            e.live.views,
        ));
    }
    out.push_str("</feed>\n");
    out
}

fn thumbnail_list(base: &str, id: &str, sizes: &[ThumbSize]) -> Value {
    Value::Array(
        sizes
            .iter()
            .map(|s| {
                let (w, h) = s.dimensions();
                json!({"url": format!("{base}/vi/{id}/{}", s.file_name()), "width": w, "height": h})
            })
            .collect(),
    )
}

fn response_context(world: &World, label: &str) -> Value {
    json!({
        "visitorData": rng::encode_id11(rng::hash(world.seed(), &[rng::tag(label)])),
        "serviceTrackingParams": [
            {"service": "CSI", "params": [{"key": "c", "value": "WEB"}, {"key": "cver", "value": "2.20260123.01.00"}]},
            {"service": "GFEEDBACK", "params": [{"key": "logged_in", "value": "0"}]}
        ]
    })
}

/// The InnerTube player response for a playable video.
pub fn player_response(world: &World, base: &str, v: &VideoView<'_>) -> Value {
    let id = v.video.id.as_str();
    let views = v.live.views.to_string();
    let length = v.video.length_seconds.to_string();
    let desc = description(world, v);
    let sizes: Vec<ThumbSize> =
        ThumbSize::ALL.into_iter().filter(|s| *s != ThumbSize::Maxres || v.video.has_maxres).collect();
    json!({
        "responseContext": response_context(world, id),
        "playabilityStatus": {"status": "OK", "playableInEmbed": true, "contextParams": "Q0FFU0FnZ0M="},
        "videoDetails": {
            "videoId": id,
            "title": v.live.title,
            "lengthSeconds": length,
            "keywords": v.video.keywords,
            "channelId": v.channel.id.as_str(),
            "isOwnerViewing": false,
            "shortDescription": desc,
            "isCrawlable": true,
            "thumbnail": {"thumbnails": thumbnail_list(base, id, &sizes)},
            "allowRatings": true,
            "viewCount": views,
            "author": v.channel.title,
            "isPrivate": false,
            "isUnpluggedCorpus": false,
            "isLiveContent": false,
            "isTvfilmVideo": false
        },
        "microformat": {"playerMicroformatRenderer": {
            "thumbnail": {"thumbnails": thumbnail_list(base, id, &[ThumbSize::High])},
            "embed": {"iframeUrl": format!("{base}/embed/{id}"), "width": 1280, "height": 720},
            "title": {"simpleText": v.live.title},
            "description": {"simpleText": desc},
            "lengthSeconds": length,
            "ownerProfileUrl": format!("{base}/{}", v.channel.handle),
            "externalChannelId": v.channel.id.as_str(),
            "isFamilySafe": true,
            "availableCountries": ["CA", "DE", "FR", "GB", "IN", "JP", "US"],
            "isUnlisted": false,
            "hasYpcMetadata": false,
            "viewCount": views,
            "category": v.video.category,
            "publishDate": pacific_time(v.video.published),
            "ownerChannelName": v.channel.title,
            "uploadDate": pacific_time(v.video.published),
            "isShortsEligible": v.video.is_short,
            "externalVideoId": id,
            "likeCount": v.live.likes.to_string(),
            "canonicalUrl": format!("{base}/watch?v={id}")
        }},
        "trackingParams": rng::encode_id11(rng::hash(world.seed(), &[rng::tag("tracking"), v.live.views]))
    })
}

/// The player response for an id that names no (published) video.
pub fn unavailable_response(world: &World) -> Value {
    json!({
        "responseContext": response_context(world, "unavailable"),
        "playabilityStatus": {
            "status": "ERROR",
            "reason": "This video is unavailable",
            "errorScreen": {"playerErrorMessageRenderer": {
                "reason": {"simpleText": "This video is unavailable"},
                "subreason": {"runs": [{"text": "Sorry about that."}]}
            }}
        },
        "trackingParams": "CAAQu2kiEwj"
    })
}

/// The player response YouTube gives a client it suspects of being a bot.
pub fn bot_check_response(world: &World) -> Value {
    json!({
        "responseContext": response_context(world, "bot-check"),
        "playabilityStatus": {
            "status": "LOGIN_REQUIRED",
            "reason": "Sign in to confirm you’re not a bot",
            "errorScreen": {"playerErrorMessageRenderer": {
                "reason": {"runs": [{"text": "Sign in to confirm you’re not a bot"}]},
                "subreason": {"runs": [{"text": "This helps protect our community. Learn more"}]},
                "proceedButton": {"buttonRenderer": {"text": {"simpleText": "Sign in"}}}
            }},
            "skip": {"playabilityErrorSkipConfig": {"skipOnPlayabilityError": false}}
        },
        "trackingParams": "CAAQu2kiEwjbot"
    })
}

/// JSON made safe inside `<script>`, escaped the way YouTube does (`<` → `\u003c`, …).
pub fn script_json(value: &Value) -> String {
    value.to_string().replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

/// Static filler that brings watch pages to a realistic size. It imitates what surrounds the
/// player response on a real page (configuration blobs, related-video renderers with their own
/// `videoId` and view counts), so a client that does not parse precisely gets it wrong here too.
pub struct Padding {
    pub head: Bytes,
    pub tail: Bytes,
    /// The same padding compressed once, for gzip responses.
    pub head_gz: crate::gzip::DeflatePiece,
    pub tail_gz: crate::gzip::DeflatePiece,
    pub end_gz: crate::gzip::DeflatePiece,
}

impl std::fmt::Debug for Padding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Padding({} + {} bytes)", self.head.len(), self.tail.len())
    }
}

impl Padding {
    pub fn new(seed: u64, total: usize) -> Self {
        let head_target = total * 2 / 5;
        let mut head = String::from(
            "<script nonce=\"sim\">var ytcfg={d:function(){return window.ytcfg.data_||{}}};ytcfg.set({\"EXPERIMENT_FLAGS\":{",
        );
        let mut i = 0u64;
        while head.len() < head_target {
            head.push_str(&format!("\"flag_{}\":{},", rng::encode_id11(rng::hash(seed, &[1, i])), i.is_multiple_of(7)));
            i += 1;
        }
        head.push_str("\"end\":true}});</script>\n");
        let tail_target = total.saturating_sub(head.len());
        let mut tail = String::from(
            "<script nonce=\"sim\">var ytInitialData = {\"contents\":{\"twoColumnWatchNextResults\":{\"secondaryResults\":{\"secondaryResults\":{\"results\":[",
        );
        let mut j = 0u64;
        while tail.len() < tail_target {
            let h = rng::hash(seed, &[2, j]);
            tail.push_str(&format!(
                "{{\"compactVideoRenderer\":{{\"videoId\":\"{}\",\"title\":{{\"simpleText\":\"Related video {j} }};\"}},\"viewCount\":\"{}\",\"viewCountText\":{{\"simpleText\":\"{} views\"}}}}}},",
                rng::encode_id11(h),
                h % 10_000_000,
                h % 10_000_000
            ));
            j += 1;
        }
        tail.push_str("{}]}}}}};</script>\n");
        let piece = |text: &[u8]| crate::gzip::DeflatePiece::compress(text, GZIP_LEVEL);
        Self {
            head_gz: piece(head.as_bytes()),
            tail_gz: piece(tail.as_bytes()),
            end_gz: piece(PAGE_END),
            head: Bytes::from(head),
            tail: Bytes::from(tail),
        }
    }
}

/// The compression level of the simulator's gzip responses (zlib's default, as front ends use).
pub const GZIP_LEVEL: u32 = 6;

const PAGE_END: &[u8] = b"</body></html>\n";

/// `GET /watch?v=…`: the page's chunks (static padding is shared, not copied), as one gzip member
/// when `gzip` (the padding compressed once, only the parts about this video per request).
pub fn watch_page(
    base: &str,
    id: &str,
    player: &Value,
    live: Option<&LiveState>,
    padding: &Padding,
    gzip: bool,
) -> Vec<Bytes> {
    let title = live.map_or_else(|| "YouTube".to_owned(), |l| format!("{} - YouTube", l.title));
    let mut top = format!(
        "<!DOCTYPE html><html style=\"font-size: 10px;font-family: Roboto, Arial, sans-serif;\" lang=\"en\" system-icons typography><head><meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\"><title>{}</title><meta name=\"title\" content=\"{}\"><link rel=\"canonical\" href=\"{base}/watch?v={id}\"><meta property=\"og:title\" content=\"{}\">",
        escape(&title),
        escape(live.map_or("", |l| l.title.as_str())),
        escape(live.map_or("", |l| l.title.as_str())),
    );
    top.push('\n');
    let mut middle = String::from(
        "</head><body dir=\"ltr\"><div id=\"watch7-content\" class=\"watch-main-col\" itemscope itemid=\"\" itemtype=\"http://schema.org/VideoObject\">",
    );
    if let Some(live) = live {
        middle.push_str(&format!(
            "<meta itemprop=\"name\" content=\"{}\"><meta itemprop=\"videoId\" content=\"{id}\"><meta itemprop=\"interactionCount\" content=\"{}\">",
            escape(&live.title),
            live.views
        ));
    }
    middle.push_str("</div>\n<script nonce=\"sim\">var ytInitialPlayerResponse = ");
    middle.push_str(&script_json(player));
    middle.push_str(";var meta = document.createElement('meta'); meta.name = 'referrer'; meta.content = 'origin-when-cross-origin'; document.getElementsByTagName('head')[0].appendChild(meta);</script>\n");
    if gzip {
        let top = crate::gzip::DeflatePiece::compress(top.as_bytes(), GZIP_LEVEL);
        let middle = crate::gzip::DeflatePiece::compress(middle.as_bytes(), GZIP_LEVEL);
        return crate::gzip::member(&[&top, &padding.head_gz, &middle, &padding.tail_gz, &padding.end_gz]);
    }
    vec![
        Bytes::from(top),
        padding.head.clone(),
        Bytes::from(middle),
        padding.tail.clone(),
        Bytes::from_static(PAGE_END),
    ]
}

/// The cookie-consent interstitial a client without an accepted `SOCS` cookie is sent to.
pub fn consent_page(continue_url: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><title>Before you continue to YouTube</title></head><body><div class=\"consent\"><h1>Before you continue to YouTube</h1><p>We use cookies and data to deliver and maintain Google services.</p><form action=\"https://consent.youtube.com/save\" method=\"POST\"><input type=\"hidden\" name=\"continue\" value=\"{}\"><input type=\"hidden\" name=\"set_eom\" value=\"true\"><button>Accept all</button></form><form action=\"https://consent.youtube.com/save\" method=\"POST\"><input type=\"hidden\" name=\"set_eom\" value=\"false\"><button>Reject all</button></form></div></body></html>",
        escape(continue_url)
    )
}

/// Google's terse HTML error page.
pub fn google_error_page(code: u16, phrase: &str, message: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <meta name=viewport content=\"initial-scale=1, minimum-scale=1, width=device-width\">\n  <title>Error {code} ({phrase})!!1</title>\n  <style>*{{margin:0;padding:0}}html{{font:15px/22px arial,sans-serif;background:#fff;color:#222;padding:15px}}</style>\n  <a href=//www.google.com/><span id=logo aria-label=Google></span></a>\n  <p><b>{code}.</b> <ins>That’s an error.</ins>\n  <p>{message}  <ins>That’s all we know.</ins>\n"
    )
}

/// Google's JSON error body for the APIs (`{"error":{"code":…,"errors":[…],"status":…}}`).
pub fn google_json_error(code: u16, status: &str, domain: &str, reason: &str, message: &str) -> Value {
    json!({"error": {
        "code": code,
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason}],
        "status": status
    }})
}
