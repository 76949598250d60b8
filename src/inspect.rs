//! `tubewatch inspect`: runs the YouTube parsers on one saved body, recorded exchange or URL and
//! shows what tubewatch would read from it, or why it would refuse it. For users debugging a
//! scrape, and for us. Exit status: 0 usable, 2 unusable (the classification is printed),
//! 1 when the input cannot be read at all.

use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use tubewatch_core::VideoId;
use tubewatch_youtube::recorded::parse_recorded;
use tubewatch_youtube::{
    ThumbnailHashes, YoutubeClient, YoutubeConfig, YoutubeError, classify_thumbnail_response, parse_feed,
    parse_player_response, parse_watch_page,
};

/// Arguments of `tubewatch inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    #[command(subcommand)]
    pub what: InspectWhat,
    /// Print the result as JSON instead of a readable summary.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What the input is.
#[derive(Debug, clap::Subcommand)]
pub enum InspectWhat {
    /// A channel RSS feed (`/feeds/videos.xml?channel_id=UC…`).
    Feed {
        /// A file (raw body or recorded request/response JSON) or an http(s) URL.
        source: String,
    },
    /// A watch page (`/watch?v=ID`).
    Watch {
        source: String,
        /// The video id that was asked for; a response for another video is then rejected.
        #[arg(long)]
        video: Option<String>,
    },
    /// An InnerTube player response (`/youtubei/v1/player`).
    Player {
        source: String,
        #[arg(long)]
        video: Option<String>,
    },
    /// A thumbnail image (`/vi/ID/default.jpg` etc.).
    Thumbnail {
        source: String,
        /// Another thumbnail to compare with: says whether it is the same picture.
        #[arg(long)]
        compare: Option<String>,
    },
}

struct Loaded {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
    url: Option<String>,
}

async fn load(source: &str) -> anyhow::Result<Loaded> {
    if source.starts_with("http://") || source.starts_with("https://") {
        // A URL the user typed for debugging their own scrape; service code never does this.
        let client = YoutubeClient::new(YoutubeConfig::default())?;
        let raw = client.fetch_for_inspection(source).await.with_context(|| format!("fetching {source}"))?;
        return Ok(Loaded {
            status: raw.status,
            content_type: raw.content_type,
            body: raw.body,
            url: Some(source.into()),
        });
    }
    let bytes = std::fs::read(source).with_context(|| format!("reading {source}"))?;
    Ok(match parse_recorded(&bytes) {
        Some(rec) => Loaded { status: rec.status, content_type: rec.content_type, body: rec.body, url: rec.url },
        None => Loaded { status: 200, content_type: None, body: bytes, url: None },
    })
}

/// The status code's own verdict, before looking at the body (as the client does).
fn status_error(status: u16, what: &str) -> Option<YoutubeError> {
    match status {
        200..=299 => None,
        404 | 410 => Some(YoutubeError::NotFound { what: what.into() }),
        429 => Some(YoutubeError::RateLimited { detail: "HTTP 429".into(), retry_after: None }),
        s => Some(YoutubeError::Http { status: Some(s), message: format!("HTTP {s} for {what}") }),
    }
}

fn video_from(flag: Option<&str>, url: Option<&str>) -> anyhow::Result<Option<VideoId>> {
    if let Some(v) = flag {
        return Ok(Some(VideoId::parse(v)?));
    }
    // `v=` (watch URLs) or `id=` (recorded InnerTube URLs); ids need no percent-decoding.
    let query = url.and_then(|u| u.split_once('?')).map_or("", |(_, q)| q);
    let from_url = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "v" || *k == "id")
        .and_then(|(_, v)| VideoId::parse(v).ok());
    Ok(from_url)
}

#[derive(Serialize)]
struct Failure<'a> {
    ok: bool,
    error: &'a str,
    message: String,
    permanent: bool,
    retryable: bool,
}

fn report_failure(err: &YoutubeError, json: bool) -> anyhow::Result<ExitCode> {
    let kind = err.kind();
    if json {
        let failure = Failure {
            ok: false,
            error: kind.as_str(),
            message: err.to_string(),
            permanent: err.is_permanent(),
            retryable: err.is_retryable(),
        };
        println!("{}", serde_json::to_string_pretty(&failure)?);
    } else {
        let nature = if err.is_permanent() {
            "permanent"
        } else if err.is_retryable() {
            "transient (would be retried)"
        } else {
            "not retried"
        };
        println!("unusable: {kind}\n  {err}\n  {nature}");
    }
    Ok(ExitCode::from(2))
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({"ok": true, "result": value}))?);
    Ok(())
}

/// Runs `tubewatch inspect`.
pub async fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    match args.what {
        InspectWhat::Feed { source } => inspect_feed(&source, json).await,
        InspectWhat::Watch { source, video } | InspectWhat::Player { source, video } => {
            inspect_video(&source, video.as_deref(), json).await
        }
        InspectWhat::Thumbnail { source, compare } => inspect_thumbnail(&source, compare.as_deref(), json).await,
    }
}

/// A channel feed: its channel and entries.
async fn inspect_feed(source: &str, json: bool) -> anyhow::Result<ExitCode> {
    let input = load(source).await?;
    let feed = match status_error(input.status, "channel feed").map_or_else(|| parse_feed(&input.body), Err) {
        Ok(feed) => feed,
        Err(e) => return report_failure(&e, json),
    };
    if json {
        print_json(&feed)?;
    } else {
        let shorts = feed.entries.iter().filter(|e| e.is_short).count();
        println!(
            "channel {}  {}\n{} entries ({shorts} Shorts)",
            feed.channel_id.as_ref().map_or("?", |c| c.as_str()),
            feed.title.as_deref().unwrap_or(""),
            feed.entries.len()
        );
        for e in &feed.entries {
            let views = e.views.map_or_else(|| "-".to_owned(), |v| v.to_string());
            let kind = if e.is_short { "short" } else { "video" };
            println!(
                "  {}  {}  {views:>12} views  {kind:<5}  {}",
                e.published.format("%Y-%m-%d %H:%M"),
                e.video_id,
                e.title
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A watch page or player response: the video's title, views, channel and publication time.
async fn inspect_video(source: &str, video: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let input = load(source).await?;
    let requested = video_from(video, input.url.as_deref())?;
    // A watch page embeds the player response; given bare player JSON, `watch` reads it as
    // such rather than failing, so the subcommands differ only in what they expect.
    let looks_json = input.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let parsed = status_error(input.status, "video").map_or_else(
        || {
            if looks_json {
                parse_player_response(&input.body, requested.as_ref())
            } else {
                parse_watch_page(&input.body, requested.as_ref())
            }
        },
        Err,
    );
    let info = match parsed {
        Ok(info) => info,
        Err(e) => return report_failure(&e, json),
    };
    if json {
        print_json(&info)?;
    } else {
        println!("video    {}\ntitle    {}", info.video_id, info.title);
        println!("views    {} (from {:?})", info.views, info.views_source);
        println!("channel  {}", info.channel_id.as_ref().map_or("?", |c| c.as_str()));
        if let Some(p) = info.published {
            println!("published {}", p.to_rfc3339());
        }
        if requested.is_none() {
            println!("(no --video given: not checked against the id asked for)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A thumbnail: its format, size and hashes, and whether it shows the same picture as `compare`.
async fn inspect_thumbnail(source: &str, compare: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let input = load(source).await?;
    let hashes = match classify_thumbnail_response(input.status, input.content_type.as_deref(), &input.body) {
        Ok(h) => h,
        Err(e) => return report_failure(&e, json),
    };
    let other: Option<ThumbnailHashes> = match compare {
        Some(path) => {
            let o = load(path).await?;
            match classify_thumbnail_response(o.status, o.content_type.as_deref(), &o.body) {
                Ok(h) => Some(h),
                Err(e) => return report_failure(&e, json),
            }
        }
        None => None,
    };
    let comparison = other.as_ref().map(|o| {
        serde_json::json!({
            "identical_bytes": o.sha256 == hashes.sha256,
            "perceptual_distance": o.phash.distance(&hashes.phash),
            "same_picture": o.phash.same_picture(&hashes.phash),
        })
    });
    if json {
        print_json(&serde_json::json!({"thumbnail": hashes, "comparison": comparison}))?;
    } else {
        println!(
            "{} {}x{}\nsha256 {}\nphash  {}",
            hashes.format, hashes.width, hashes.height, hashes.sha256, hashes.phash
        );
        if let (Some(o), Some(c)) = (other, comparison) {
            println!(
                "compared with {}: distance {} → {}",
                o.sha256,
                c["perceptual_distance"],
                if c["same_picture"] == true { "same picture" } else { "different picture" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
