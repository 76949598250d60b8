//! Parse-speed measurement for `tubewatch bench parse` and `cargo bench`: builds a realistic
//! ~1 MB watch page and a 15-entry channel feed in memory, parses each repeatedly and reports
//! the mean time. Figures are printed, never asserted (speed depends on the machine).

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;
use tubewatch_core::VideoId;

use crate::{parse_feed, parse_watch_page};

/// One measured parser.
#[derive(Debug, Clone, Serialize)]
pub struct BenchFigure {
    pub name: String,
    pub input_bytes: usize,
    pub iterations: u32,
    pub mean: Duration,
    pub mb_per_second: f64,
}

/// The figures `bench_parse` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub figures: Vec<BenchFigure>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.figures {
            writeln!(
                f,
                "{:<28} {:>9} bytes  {:>6} runs  mean {:>10.1} µs  {:>8.1} MB/s",
                b.name,
                b.input_bytes,
                b.iterations,
                b.mean.as_secs_f64() * 1e6,
                b.mb_per_second
            )?;
        }
        Ok(())
    }
}

/// The id used in the generated page.
pub const BENCH_VIDEO_ID: &str = "bEnChVid3o0";

/// A watch page of about `target_bytes`, shaped like YouTube's: large scripts before the player
/// response, a player response with bulky `streamingData`, a title containing `};`, and a large
/// `ytInitialData` after it.
pub fn synthetic_watch_page(target_bytes: usize) -> String {
    let mut formats = Vec::new();
    let mut i = 0u32;
    // Roughly a third of the page is the player response, as on real pages.
    while serde_json::to_string(&formats).map_or(0, |s| s.len()) < target_bytes / 3 {
        for _ in 0..20 {
            formats.push(serde_json::json!({
                "itag": 130 + i, "mimeType": "video/mp4; codecs=\"avc1.4d401e\"", "bitrate": 1_000_000 + i,
                "width": 1280, "height": 720, "contentLength": format!("{}", 10_000_000 + i),
                "signatureCipher": format!("s={}&sp=sig&url=https://rr1---sn.example/videoplayback?id={i}", "x".repeat(120)),
            }));
            i += 1;
        }
    }
    let player = serde_json::json!({
        "responseContext": {"serviceTrackingParams": []},
        "playabilityStatus": {"status": "OK", "playableInEmbed": true},
        "streamingData": {"expiresInSeconds": "21540", "adaptiveFormats": formats},
        "videoDetails": {
            "videoId": BENCH_VIDEO_ID, "title": "Benchmarks {are}; fun};", "lengthSeconds": "612",
            "channelId": "UCsXVk37bltHxD1rDPwtNM8Q", "viewCount": "1234567", "author": "Bench",
            "isLiveContent": false
        },
        "microformat": {"playerMicroformatRenderer": {
            "title": {"simpleText": "Benchmarks {are}; fun};"}, "viewCount": "1234567",
            "publishDate": "2026-01-22T07:01:42-08:00", "uploadDate": "2026-01-22T07:01:42-08:00",
            "externalChannelId": "UCsXVk37bltHxD1rDPwtNM8Q"
        }},
    });
    let filler_script = |n: usize| {
        let mut s = String::with_capacity(n + 64);
        s.push_str("<script nonce=\"abc\">var ytcfg={\"d\":[");
        let mut k = 0u64;
        while s.len() < n {
            s.push_str(&format!("{{\"k\":{k},\"v\":\"ytInitialPlayerResponse mention {k}\"}},"));
            k += 1;
        }
        s.push_str("0]};</script>\n");
        s
    };
    let before = filler_script(target_bytes / 3);
    let after = filler_script(target_bytes / 3);
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta itemprop=\"interactionCount\" content=\"1234000\">\
         <title>Bench - YouTube</title></head><body>{before}<script nonce=\"abc\">var ytInitialPlayerResponse = \
         {player};var meta = document.createElement('meta');</script>{after}\
         <script>var ytInitialData = {{\"contents\":{{}}}};</script></body></html>"
    )
}

/// A channel feed with `entries` entries in YouTube's exact shape.
pub fn synthetic_feed(entries: usize) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns:yt=\"http://www.youtube.com/xml/schemas/2015\" \
         xmlns:media=\"http://search.yahoo.com/mrss/\" xmlns=\"http://www.w3.org/2005/Atom\">\n \
         <link rel=\"self\" href=\"http://www.youtube.com/feeds/videos.xml?channel_id=UCsXVk37bltHxD1rDPwtNM8Q\"/>\n \
         <id>yt:channel:sXVk37bltHxD1rDPwtNM8Q</id>\n <yt:channelId>sXVk37bltHxD1rDPwtNM8Q</yt:channelId>\n \
         <title>Bench Channel</title>\n <published>2013-07-09T20:17:20+00:00</published>\n",
    );
    for n in 0..entries {
        let id = format!("bench{n:06}");
        let kind = if n % 2 == 0 { "shorts/" } else { "watch?v=" };
        let description = "A long description line with links https://example.com &amp; more.\n".repeat(30);
        xml.push_str(&format!(
            " <entry>\n  <id>yt:video:{id}</id>\n  <yt:videoId>{id}</yt:videoId>\n  \
             <yt:channelId>UCsXVk37bltHxD1rDPwtNM8Q</yt:channelId>\n  <title>Video number {n} &amp; friends</title>\n  \
             <link rel=\"alternate\" href=\"https://www.youtube.com/{kind}{id}\"/>\n  \
             <author>\n   <name>Bench Channel</name>\n   <uri>https://www.youtube.com/channel/UCsXVk37bltHxD1rDPwtNM8Q</uri>\n  </author>\n  \
             <published>2026-01-{day:02}T15:01:42+00:00</published>\n  <updated>2026-01-{day:02}T16:00:00+00:00</updated>\n  \
             <media:group>\n   <media:title>Video number {n}</media:title>\n   \
             <media:content url=\"https://www.youtube.com/v/{id}?version=3\" type=\"application/x-shockwave-flash\" width=\"640\" height=\"390\"/>\n   \
             <media:thumbnail url=\"https://i1.ytimg.com/vi/{id}/hqdefault.jpg\" width=\"480\" height=\"360\"/>\n   \
             <media:description>{description}</media:description>\n   \
             <media:community>\n    <media:starRating count=\"100\" average=\"5.00\" min=\"1\" max=\"5\"/>\n    \
             <media:statistics views=\"{views}\"/>\n   </media:community>\n  </media:group>\n </entry>\n",
            day = 28 - (n % 27),
            views = 1000 + n * 17,
        ));
    }
    xml.push_str("</feed>\n");
    xml
}

fn measure(name: &str, input_bytes: usize, iterations: u32, mut f: impl FnMut()) -> BenchFigure {
    f(); // warm caches
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let mean = start.elapsed() / iterations.max(1);
    let mb_per_second = input_bytes as f64 / 1e6 / mean.as_secs_f64().max(1e-12);
    BenchFigure { name: name.into(), input_bytes, iterations, mean, mb_per_second }
}

/// Measures watch-page extraction on a ~1 MB page and feed parsing on a 15-entry feed.
pub fn bench_parse() -> BenchReport {
    let page = synthetic_watch_page(1_000_000);
    let feed = synthetic_feed(15);
    let id = VideoId::parse(BENCH_VIDEO_ID).ok();
    let mut figures = Vec::new();
    figures.push(measure("watch page (1 MB)", page.len(), 200, || {
        let info = parse_watch_page(page.as_bytes(), id.as_ref());
        debug_assert!(info.is_ok());
        std::hint::black_box(info.ok());
    }));
    figures.push(measure("locate player JSON only", page.len(), 200, || {
        std::hint::black_box(crate::player::find_player_response(page.as_bytes()));
    }));
    figures.push(measure("channel feed (15 entries)", feed.len(), 500, || {
        let parsed = parse_feed(feed.as_bytes());
        debug_assert!(parsed.is_ok());
        std::hint::black_box(parsed.ok());
    }));
    BenchReport { figures }
}
