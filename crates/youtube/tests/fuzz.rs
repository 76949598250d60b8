//! Property tests: every parser of outside data gets arbitrary bytes and mutated real-shaped
//! samples and must return (Ok or a classified error) without panicking. Deterministic (a fixed
//! seed) so a failure reproduces; raise `TUBEWATCH_FUZZ_ROUNDS` for a longer run.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::PathBuf;

use tubewatch_core::VideoId;
use tubewatch_youtube::recorded::parse_recorded;
use tubewatch_youtube::{
    classify_thumbnail_response, parse_feed, parse_google_error, parse_player_response, parse_reach_csv,
    parse_resolve_response, parse_watch_page,
};

/// xorshift64*: a tiny deterministic generator, enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn rounds() -> usize {
    std::env::var("TUBEWATCH_FUZZ_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

const INTERESTING: &[&[u8]] = &[
    b"{",
    b"}",
    b"\"",
    b"<",
    b">",
    b"</entry>",
    b"<entry>",
    b"&amp;",
    b"&#0;",
    b"&bogus;",
    b"};",
    b"\\u",
    b"\xff\xfe",
    b"ytInitialPlayerResponse = {",
    b"]]>",
    b"<![CDATA[",
    b"\0",
    b"\"viewCount\":\"-1\"",
    b"99999999999999999999999",
    b",",
    b"\n",
    b"\r\n",
    b"1e308",
    b"NaN",
    b"-0.5",
    b"20260230",
    b"video_thumbnail_impressions",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(8) {
        match rng.below(5) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            1 if !out.is_empty() => {
                let cut = rng.below(out.len());
                out.truncate(cut);
            }
            2 => {
                let i = rng.below(out.len() + 1);
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                out.splice(i..i, piece.iter().copied());
            }
            3 if out.len() > 2 => {
                let a = rng.below(out.len());
                let b = (a + rng.below(64)).min(out.len());
                out.drain(a..b);
            }
            _ => {
                let i = rng.below(out.len() + 1);
                let len = rng.below(32);
                let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                out.splice(i..i, junk);
            }
        }
    }
    out
}

fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(2048);
    (0..len).map(|_| rng.next() as u8).collect()
}

fn run(seeds: &[&str], mut parse: impl FnMut(&[u8])) {
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| fixture(s)).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..rounds() {
        parse(&random_bytes(&mut rng));
        for seed in &seeds {
            parse(&mutate(&mut rng, seed));
        }
    }
}

#[test]
fn feed_parser_never_panics() {
    run(&["feed_small.xml", "feed_empty_channel_id.xml", "feed_404.html"], |b| {
        let _ = parse_feed(b);
    });
}

#[test]
fn watch_page_parser_never_panics() {
    let id = VideoId::parse("AAAAAAAAAA1").unwrap();
    run(&["watch_ok.html", "watch_meta_views.html", "watch_consent.html"], |b| {
        let _ = parse_watch_page(b, Some(&id));
        let _ = parse_watch_page(b, None);
    });
}

#[test]
fn player_parser_never_panics() {
    let id = VideoId::parse("AAAAAAAAAA1").unwrap();
    run(
        &["player_ok.json", "player_bot_check.json", "player_unavailable.json", "player_microformat_views.json"],
        |b| {
            let _ = parse_player_response(b, Some(&id));
        },
    );
}

#[test]
fn resolve_and_api_parsers_never_panic() {
    run(
        &["resolve_ok.json", "resolve_404.json", "api_videos.json", "api_playlist_items.json", "google_quota.json"],
        |b| {
            let _ = parse_resolve_response(200, b, "x");
            let _ = parse_resolve_response(404, b, "x");
            let _ = tubewatch_youtube::data_api::parse_videos_list(b);
            let _ = tubewatch_youtube::data_api::parse_channels_list(b);
            let _ = tubewatch_youtube::data_api::parse_playlist_items(b);
            let _ = parse_google_error(403, b);
            let _ = parse_recorded(b);
        },
    );
}

#[test]
fn reach_csv_parser_never_panics() {
    run(&["reach_basic_a1.csv"], |b| {
        // Whatever it accepts is valid: a CTR in [0, 1].
        if let Ok(rows) = parse_reach_csv(b) {
            assert!(rows.iter().all(|r| (0.0..=1.0).contains(&r.ctr)));
        }
    });
}

#[test]
fn newer_google_error_bodies_never_panic() {
    run(&["reporting_quota_daily.json", "reporting_insufficient_scope.json"], |b| {
        let _ = parse_google_error(429, b);
        let _ = parse_google_error(403, b);
    });
}

#[test]
fn image_hashing_never_panics() {
    // A small real JPEG and PNG as seeds.
    let img = image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([(x * 8) as u8, (y * 10) as u8, 77]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&image::DynamicImage::ImageRgb8(img.clone()))
        .unwrap();
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut png, image::ImageFormat::Png).unwrap();
    let seeds = [jpeg, png.into_inner()];
    let mut rng = Rng(42);
    for _ in 0..rounds() {
        let _ = classify_thumbnail_response(200, None, &random_bytes(&mut rng));
        for seed in &seeds {
            let _ = classify_thumbnail_response(200, Some("image/jpeg"), &mutate(&mut rng, seed));
        }
    }
}
