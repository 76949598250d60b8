//! Parser tests: hand-made samples in `tests/fixtures/` (every classification), and the real
//! recorded YouTube responses in `shared/fixtures/youtube/` with their exact values (skipped
//! with a note when that folder is absent).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::PathBuf;

use tubewatch_core::{ChannelId, VideoId};
use tubewatch_youtube::recorded::parse_recorded;
use tubewatch_youtube::{
    ErrorKind, ReachCsvError, ViewsSource, YoutubeError, parse_feed, parse_google_error, parse_player_response,
    parse_reach_csv, parse_resolve_response, parse_watch_page,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn shared(name: &str) -> Option<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/youtube");
    if !dir.exists() {
        eprintln!("note: {} absent, skipping the real-sample test for {name}", dir.display());
        return None;
    }
    Some(std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn vid(s: &str) -> VideoId {
    VideoId::parse(s).unwrap()
}

fn kind<T: std::fmt::Debug>(r: Result<T, YoutubeError>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

// ---------- feed ----------

#[test]
fn feed_small_sample_parses_every_field() {
    let feed = parse_feed(&fixture("feed_small.xml")).unwrap();
    // Feed-level id lacks "UC": restored.
    assert_eq!(feed.channel_id.unwrap().as_str(), "UCabcdefghijklmnopqrstuv");
    assert_eq!(feed.title.as_deref(), Some("Tiny & Test Channel"));
    assert_eq!(feed.published.unwrap().to_rfc3339(), "2015-03-01T10:00:00+00:00");
    assert_eq!(feed.entries.len(), 3);

    let first = &feed.entries[0];
    assert_eq!(first.video_id.as_str(), "AAAAAAAAAA1");
    assert_eq!(first.channel_id.as_str(), "UCabcdefghijklmnopqrstuv");
    assert_eq!(first.title, "Why <XML> is \"fun\" \u{2013} part 2");
    assert_eq!(first.published.to_rfc3339(), "2026-02-03T12:00:00+00:00");
    assert_eq!(first.updated.unwrap().to_rfc3339(), "2026-02-04T08:30:00+00:00");
    assert_eq!(first.thumbnail_url.as_deref(), Some("https://i2.ytimg.com/vi/AAAAAAAAAA1/hqdefault.jpg"));
    assert_eq!(first.views, Some(4321));
    assert!(first.is_short);

    let second = &feed.entries[1];
    assert_eq!(second.title, "A CDATA title");
    // -08:00 converted to UTC.
    assert_eq!(second.published.to_rfc3339(), "2026-02-01T17:15:00+00:00");
    assert_eq!(second.views, Some(0));
    assert!(!second.is_short);

    let third = &feed.entries[2];
    assert_eq!(third.views, None);
    assert_eq!(third.thumbnail_url, None);
}

#[test]
fn feed_with_empty_channel_id_uses_the_channel_link() {
    let feed = parse_feed(&fixture("feed_empty_channel_id.xml")).unwrap();
    assert_eq!(feed.channel_id.unwrap().as_str(), "UCzzzzzzzzzzzzzzzzzzzzz1");
    assert!(feed.entries.is_empty());
}

#[test]
fn feed_404_page_is_not_found() {
    let err = parse_feed(&fixture("feed_404.html")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.is_permanent());
}

#[test]
fn feed_consent_page_and_garbage_are_classified() {
    assert_eq!(kind(parse_feed(&fixture("watch_consent.html"))), ErrorKind::Consent);
    assert_eq!(kind(parse_feed(b"<rss><channel></channel></rss>")), ErrorKind::Malformed);
    assert_eq!(kind(parse_feed(b"")), ErrorKind::Malformed);
    assert_eq!(kind(parse_feed(b"not xml at all")), ErrorKind::Malformed);
}

#[test]
fn feed_cut_short_is_truncated_and_retryable() {
    let body = fixture("feed_small.xml");
    for cut in [body.len() / 3, body.len() / 2, body.len() - 10] {
        let err = parse_feed(&body[..cut]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Malformed, "cut at {cut}: {err}");
        assert!(err.is_retryable(), "cut at {cut} should be retryable: {err}");
    }
}

#[test]
fn feed_entry_with_a_bad_video_id_is_rejected_not_stored() {
    let body = String::from_utf8(fixture("feed_small.xml")).unwrap().replace("BBBBBBBBB-2", "BAD ID");
    assert_eq!(kind(parse_feed(body.as_bytes())), ErrorKind::Malformed);
}

#[test]
fn real_kurzgesagt_feed() {
    let Some(body) = shared("kurz.xml") else { return };
    let feed = parse_feed(&body).unwrap();
    assert_eq!(feed.channel_id.as_ref().unwrap().as_str(), "UCsXVk37bltHxD1rDPwtNM8Q");
    assert_eq!(feed.title.as_deref(), Some("Kurzgesagt \u{2013} In a Nutshell"));
    assert_eq!(feed.entries.len(), 15);
    assert_eq!(feed.entries.iter().filter(|e| e.is_short).count(), 8);
    let first = &feed.entries[0];
    assert_eq!(first.video_id.as_str(), "zg40FHOAqC0");
    assert_eq!(first.views, Some(1_086_938));
    assert_eq!(first.title, "Jupiter Made Earth Possible");
    assert_eq!(first.published.to_rfc3339(), "2026-01-22T15:01:42+00:00");
    assert_eq!(first.thumbnail_url.as_deref(), Some("https://i3.ytimg.com/vi/zg40FHOAqC0/hqdefault.jpg"));
    assert!(first.is_short);
    assert!(feed.entries.iter().all(|e| e.channel_id.as_str() == "UCsXVk37bltHxD1rDPwtNM8Q"));
    assert!(feed.entries.iter().all(|e| e.views.is_some() && e.updated.is_some()));
    // Newest first.
    assert!(feed.entries.windows(2).all(|w| w[0].published >= w[1].published));
}

#[test]
fn real_kurzgesagt_feed_recording() {
    let Some(bytes) = shared("feed_user_kurzgesagt_mock.json") else { return };
    let rec = parse_recorded(&bytes).unwrap();
    assert_eq!(rec.status, 200);
    assert_eq!(rec.content_type.as_deref(), Some("text/xml; charset=UTF-8"));
    let feed = parse_feed(&rec.body).unwrap();
    assert_eq!(feed.entries.len(), 15);
    assert_eq!(feed.entries.iter().filter(|e| e.is_short).count(), 8);
    assert_eq!(feed.entries[0].video_id.as_str(), "zg40FHOAqC0");
    assert_eq!(feed.entries[0].views, Some(1_086_938));
    // The recording and the raw file are the same feed.
    if let Some(raw) = shared("kurz.xml") {
        assert_eq!(parse_feed(&raw).unwrap(), feed);
    }
}

// ---------- watch page / player ----------

#[test]
fn watch_page_with_braces_in_the_title() {
    let info = parse_watch_page(&fixture("watch_ok.html"), Some(&vid("AAAAAAAAAA1"))).unwrap();
    assert_eq!(info.title, "Curly }; braces {}; everywhere };");
    assert_eq!(info.views, 1_234_567);
    assert_eq!(info.views_source, ViewsSource::VideoDetails);
    assert_eq!(info.channel_id.unwrap().as_str(), "UCabcdefghijklmnopqrstuv");
    assert_eq!(info.published.unwrap().to_rfc3339(), "2026-02-03T12:00:00+00:00");
    assert_eq!(info.uploaded.unwrap().to_rfc3339(), "2026-02-03T11:59:00+00:00");
    assert_eq!(info.length_seconds, Some(301));
    assert_eq!(info.like_count, Some(321));
    assert_eq!(info.playability.as_deref(), Some("OK"));
}

#[test]
fn watch_page_falls_back_to_meta_interaction_count() {
    let info = parse_watch_page(&fixture("watch_meta_views.html"), Some(&vid("AAAAAAAAAA1"))).unwrap();
    assert_eq!(info.views, 55_555);
    assert_eq!(info.views_source, ViewsSource::MetaInteractionCount);
}

#[test]
fn player_falls_back_to_microformat_views() {
    let info = parse_player_response(&fixture("player_microformat_views.json"), Some(&vid("AAAAAAAAAA1"))).unwrap();
    assert_eq!(info.views, 98_700);
    assert_eq!(info.views_source, ViewsSource::Microformat);
}

#[test]
fn player_ok_and_live_offline() {
    let ok = parse_player_response(&fixture("player_ok.json"), Some(&vid("AAAAAAAAAA1"))).unwrap();
    assert_eq!(ok.views, 98_765);
    assert_eq!(ok.title, "Normal title");
    let live = parse_player_response(&fixture("player_live_offline.json"), Some(&vid("AAAAAAAAAA1"))).unwrap();
    assert_eq!(live.views, 0);
    assert_eq!(live.playability.as_deref(), Some("LIVE_STREAM_OFFLINE"));
}

#[test]
fn every_player_failure_is_classified() {
    let want = vid("AAAAAAAAAA1");
    let cases = [
        ("player_bot_check.json", ErrorKind::BotCheck, false, true),
        ("player_captcha.json", ErrorKind::BotCheck, false, true),
        ("player_rate_limited.json", ErrorKind::RateLimited, false, true),
        ("player_wrong_video.json", ErrorKind::WrongVideo, false, true),
        ("player_private.json", ErrorKind::Unavailable, true, false),
        ("player_unavailable.json", ErrorKind::Unavailable, true, false),
        ("player_unplayable_terminated.json", ErrorKind::Unavailable, true, false),
        ("player_no_views.json", ErrorKind::Malformed, false, false),
    ];
    for (name, expected, permanent, retryable) in cases {
        let err = parse_player_response(&fixture(name), Some(&want)).unwrap_err();
        assert_eq!(err.kind(), expected, "{name}: {err}");
        assert_eq!(err.is_permanent(), permanent, "{name}: {err}");
        assert_eq!(err.is_retryable(), retryable, "{name}: {err}");
    }
    // The bot check's reason reaches the message (with its curly apostrophe).
    let err = parse_player_response(&fixture("player_bot_check.json"), Some(&want)).unwrap_err();
    assert!(err.to_string().contains("not a bot"), "{err}");
}

#[test]
fn every_watch_page_failure_is_classified() {
    let want = vid("AAAAAAAAAA1");
    assert_eq!(kind(parse_watch_page(&fixture("watch_consent.html"), Some(&want))), ErrorKind::Consent);
    assert_eq!(kind(parse_watch_page(&fixture("watch_captcha.html"), Some(&want))), ErrorKind::BotCheck);
    assert_eq!(kind(parse_watch_page(&fixture("watch_ok.html"), Some(&vid("ZZZZZZZZZZ9")))), ErrorKind::WrongVideo);
    assert_eq!(
        kind(parse_watch_page(b"<!DOCTYPE html><html><body>hi</body></html>", Some(&want))),
        ErrorKind::Malformed
    );
    // A player response embedded in a page, then wrapped in each failure body.
    for (name, expected) in [
        ("player_bot_check.json", ErrorKind::BotCheck),
        ("player_rate_limited.json", ErrorKind::RateLimited),
        ("player_private.json", ErrorKind::Unavailable),
        ("player_wrong_video.json", ErrorKind::WrongVideo),
    ] {
        let json = String::from_utf8(fixture(name)).unwrap();
        let page = format!("<html><script>var ytInitialPlayerResponse = {json};</script></html>");
        assert_eq!(kind(parse_watch_page(page.as_bytes(), Some(&want))), expected, "{name}");
    }
}

#[test]
fn truncated_watch_page_is_retryable() {
    let page = fixture("watch_ok.html");
    let start = tubewatch_youtube::player::find_player_response(&page).unwrap();
    for cut in [start + 10, start + 200, page.len() / 2] {
        let err = parse_watch_page(&page[..cut], Some(&vid("AAAAAAAAAA1"))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Malformed, "{err}");
        assert!(err.is_retryable(), "cut at {cut}: {err}");
    }
    let err = parse_watch_page(&page[..50], Some(&vid("AAAAAAAAAA1"))).unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[test]
fn real_visionos_player_response() {
    let Some(bytes) = shared("player_visionos_mock.json") else { return };
    let rec = parse_recorded(&bytes).unwrap();
    assert_eq!(rec.status, 200);
    let info = parse_player_response(&rec.body, Some(&vid("T4XJQO3qol8"))).unwrap();
    assert_eq!(info.video_id.as_str(), "T4XJQO3qol8");
    assert_eq!(info.views, 299_671);
    assert_eq!(info.views_source, ViewsSource::VideoDetails);
    assert_eq!(info.title, "Burning Everyone's Koran");
    assert_eq!(info.channel_id.unwrap().as_str(), "UCjNxszyFPasDdRoD9J6X-sw");
    assert_eq!(info.author.as_deref(), Some("INTO THE FRAY"));
    assert_eq!(info.length_seconds, Some(219));
    assert_eq!(info.playability.as_deref(), Some("OK"));
    // Asking for another id: the response is rejected, not stored.
    let err = parse_player_response(&rec.body, Some(&vid("dQw4w9WgXcQ"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongVideo);
    // The same JSON embedded in a watch page gives the same result.
    let page = format!(
        "<!DOCTYPE html><html><script>var ytInitialPlayerResponse = {};var meta = 1;</script></html>",
        String::from_utf8(rec.body).unwrap()
    );
    let from_page = parse_watch_page(page.as_bytes(), Some(&vid("T4XJQO3qol8"))).unwrap();
    assert_eq!(from_page.views, 299_671);
}

#[test]
fn real_web_fields_player_response_uses_microformat() {
    let Some(bytes) = shared("player_web_fields_mock.json") else { return };
    let rec = parse_recorded(&bytes).unwrap();
    let info = parse_player_response(&rec.body, Some(&vid("T4XJQO3qol8"))).unwrap();
    assert_eq!(info.views, 299_671);
    assert_eq!(info.views_source, ViewsSource::Microformat);
    assert_eq!(info.title, "Burning Everyone's Koran");
    assert_eq!(info.channel_id.unwrap().as_str(), "UCjNxszyFPasDdRoD9J6X-sw");
    assert_eq!(info.published.unwrap().to_rfc3339(), "2010-09-09T15:40:44+00:00");
    assert_eq!(info.like_count, Some(13_520));
    assert_eq!(info.category.as_deref(), Some("Entertainment"));
    assert_eq!(info.playability, None);
    // The request was sent as a byte array; the recording reader handles both shapes.
    let request: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert!(request["request"]["dataToSend"].is_array());
}

// ---------- resolve_url ----------

#[test]
fn resolve_own_samples() {
    let id = parse_resolve_response(200, &fixture("resolve_ok.json"), "@tinytest").unwrap();
    assert_eq!(id, ChannelId::parse("UCabcdefghijklmnopqrstuv").unwrap());
    let err = parse_resolve_response(404, &fixture("resolve_404.json"), "@nobody").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("@nobody"));
    // The error body alone (status lost) still says not found.
    assert_eq!(kind(parse_resolve_response(200, &fixture("resolve_404.json"), "x")), ErrorKind::NotFound);
    assert_eq!(kind(parse_resolve_response(200, &fixture("resolve_video.json"), "x")), ErrorKind::NotFound);
    assert_eq!(kind(parse_resolve_response(200, b"{}", "x")), ErrorKind::Malformed);
    assert_eq!(kind(parse_resolve_response(200, &fixture("watch_consent.html"), "x")), ErrorKind::Consent);
}

#[test]
fn real_resolve_url_samples() {
    let Some(ok) = shared("resolve_url_mock.json") else { return };
    let rec = parse_recorded(&ok).unwrap();
    let id = parse_resolve_response(rec.status, &rec.body, "/user/CaptainDisillusion").unwrap();
    assert_eq!(id.as_str(), "UCEOXxzW2vU0P-0THehuIIeg");

    let Some(missing) = shared("resolve_url_404_mock.json") else { return };
    let rec = parse_recorded(&missing).unwrap();
    assert_eq!(rec.status, 404);
    let err = parse_resolve_response(rec.status, &rec.body, "/user/nobody").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.is_permanent());
}

// ---------- Data API ----------

#[test]
fn data_api_lists_parse() {
    let videos = tubewatch_youtube::data_api::parse_videos_list(&fixture("api_videos.json")).unwrap();
    assert_eq!(videos.len(), 2);
    assert_eq!(videos[0].id.as_str(), "AAAAAAAAAA1");
    assert_eq!(videos[0].views, Some(98_765));
    assert_eq!(videos[0].comments, Some(12));
    assert_eq!(videos[0].tags, vec!["a", "b"]);
    assert_eq!(videos[0].thumbnails["default"], "https://i.ytimg.com/vi/AAAAAAAAAA1/default.jpg");
    assert_eq!(videos[1].views, Some(5));
    let channels = tubewatch_youtube::data_api::parse_channels_list(&fixture("api_channels.json")).unwrap();
    assert_eq!(channels[0].uploads_playlist.as_deref(), Some("UUabcdefghijklmnopqrstuv"));
    assert_eq!(channels[0].subscribers, Some(1234));
}

#[test]
fn google_errors_are_typed() {
    let cases = [
        (403, "google_quota.json", ErrorKind::QuotaExceeded),
        (403, "google_forbidden.json", ErrorKind::Forbidden),
        (400, "google_invalid_image.json", ErrorKind::InvalidImage),
        (401, "google_401.json", ErrorKind::Unauthorized),
        (404, "resolve_404.json", ErrorKind::NotFound),
    ];
    for (status, name, expected) in cases {
        assert_eq!(parse_google_error(status, &fixture(name)).kind(), expected, "{name}");
    }
    assert_eq!(parse_google_error(500, b"oops").kind(), ErrorKind::Http);
    assert_eq!(parse_google_error(429, b"{}").kind(), ErrorKind::RateLimited);
}

#[test]
fn recorded_reader_rejects_raw_bodies() {
    assert!(parse_recorded(&fixture("feed_small.xml")).is_none());
    assert!(parse_recorded(&fixture("player_ok.json")).is_none());
}

#[test]
fn benchmark_inputs_are_realistic_and_parse() {
    use tubewatch_youtube::bench::{BENCH_VIDEO_ID, synthetic_feed, synthetic_watch_page};
    let page = synthetic_watch_page(1_000_000);
    assert!((900_000..1_400_000).contains(&page.len()), "page is {} bytes", page.len());
    let info = parse_watch_page(page.as_bytes(), Some(&vid(BENCH_VIDEO_ID))).unwrap();
    assert_eq!(info.title, "Benchmarks {are}; fun};");
    assert_eq!(info.views, 1_234_567);
    let feed = parse_feed(synthetic_feed(15).as_bytes()).unwrap();
    assert_eq!(feed.entries.len(), 15);
    assert_eq!(feed.entries.iter().filter(|e| e.is_short).count(), 8);
}

// ---------- Reporting API ----------

#[test]
fn newer_google_error_bodies_are_typed() {
    let scope = parse_google_error(403, &fixture("reporting_insufficient_scope.json"));
    assert_eq!(scope.kind(), ErrorKind::Forbidden);
    assert!(scope.is_insufficient_scope(), "{scope}");
    let legacy = br#"{"error":{"code":403,"message":"Request had insufficient authentication scopes.","errors":[{"message":"Insufficient Permission","domain":"global","reason":"insufficientPermissions"}],"status":"PERMISSION_DENIED"}}"#;
    assert!(parse_google_error(403, legacy).is_insufficient_scope());
    assert!(!parse_google_error(403, &fixture("google_forbidden.json")).is_insufficient_scope());
    // The daily request quota is spent until tomorrow; the per-minute limit passes in seconds.
    let daily = parse_google_error(429, &fixture("reporting_quota_daily.json"));
    assert_eq!(daily.kind(), ErrorKind::QuotaExceeded);
    assert!(!daily.is_retryable());
    let minute = parse_google_error(429, &fixture("reporting_rate_limited.json"));
    assert_eq!(minute.kind(), ErrorKind::RateLimited);
    assert!(minute.is_retryable());
    assert!(matches!(
        parse_google_error(409, &fixture("reporting_job_exists.json")),
        YoutubeError::Http { status: Some(409), .. }
    ));
}

const REACH_HEADER: &str = "date,channel_id,video_id,video_thumbnail_impressions,video_thumbnail_impressions_ctr\n";

fn reach(rows: &str) -> Result<Vec<tubewatch_youtube::ReachRow>, ReachCsvError> {
    parse_reach_csv(format!("{REACH_HEADER}{rows}").as_bytes())
}

#[test]
fn reach_report_sample_parses_every_field() {
    let rows = parse_reach_csv(&fixture("reach_basic_a1.csv")).unwrap();
    assert_eq!(rows.len(), 4);
    let first = &rows[0];
    assert_eq!(first.date, chrono::NaiveDate::from_ymd_opt(2026, 1, 12).unwrap());
    assert_eq!(first.channel_id, ChannelId::parse("UCybpwL6sPt6SSzazIV400WQ").unwrap());
    assert_eq!(first.video_id, vid("dQw4w9WgXcQ"));
    assert_eq!((first.impressions, first.ctr), (15321, 0.0482));
    assert_eq!((rows[2].impressions, rows[2].ctr), (48, 0.0));
    assert_eq!((rows[3].impressions, rows[3].ctr), (1, 1.0));
}

#[test]
fn reach_report_with_only_a_header_has_no_rows_but_an_empty_body_is_an_error() {
    assert_eq!(reach("").unwrap(), vec![]);
    assert_eq!(parse_reach_csv(b"").unwrap_err(), ReachCsvError::Empty);
}

#[test]
fn reach_report_header_must_name_exactly_the_five_columns() {
    let missing = "date,channel_id,video_id,video_thumbnail_impressions\n";
    assert_eq!(
        parse_reach_csv(missing.as_bytes()).unwrap_err(),
        ReachCsvError::MissingColumn("video_thumbnail_impressions_ctr")
    );
    let unknown = REACH_HEADER.replace("\n", ",views\n");
    assert_eq!(parse_reach_csv(unknown.as_bytes()).unwrap_err(), ReachCsvError::UnknownColumn("views".into()));
    let twice = REACH_HEADER.replace("\n", ",date\n");
    assert_eq!(parse_reach_csv(twice.as_bytes()).unwrap_err(), ReachCsvError::DuplicateColumn("date"));
}

#[test]
fn every_bad_reach_value_is_a_typed_error_with_its_line() {
    let ok = "20260112,UCybpwL6sPt6SSzazIV400WQ,dQw4w9WgXcQ,10,0.5";
    assert!(reach(&format!("{ok}\n")).is_ok());
    let bad_value = |row: &str, column: &str| match reach(&format!("{ok}\n{row}\n")).unwrap_err() {
        ReachCsvError::BadValue { line, column: c, .. } => assert_eq!((line, c), (3, column), "{row}"),
        other => panic!("{row}: {other:?}"),
    };
    bad_value("2026-01-12,UCybpwL6sPt6SSzazIV400WQ,9bZkp7q19f0,10,0.5", "date");
    bad_value("20260230,UCybpwL6sPt6SSzazIV400WQ,9bZkp7q19f0,10,0.5", "date");
    bad_value("20260112,ybpwL6sPt6SSzazIV400WQ,9bZkp7q19f0,10,0.5", "channel_id");
    bad_value("20260112,UCybpwL6sPt6SSzazIV400WQ,short,10,0.5", "video_id");
    bad_value("20260112,UCybpwL6sPt6SSzazIV400WQ,9bZkp7q19f0,-3,0.5", "video_thumbnail_impressions");
    bad_value("20260112,UCybpwL6sPt6SSzazIV400WQ,9bZkp7q19f0,1.5,0.5", "video_thumbnail_impressions");
    bad_value("20260112,UCybpwL6sPt6SSzazIV400WQ,9bZkp7q19f0,,0.5", "video_thumbnail_impressions");
    bad_value("20260112,UCybpwL6sPt6SSzazIV400WQ,9bZkp7q19f0,10,abc", "video_thumbnail_impressions_ctr");
    bad_value("20260112,UCybpwL6sPt6SSzazIV400WQ,9bZkp7q19f0,10,NaN", "video_thumbnail_impressions_ctr");
    for ctr in ["1.2", "-0.01", "4.5"] {
        let row = format!("20260112,UCybpwL6sPt6SSzazIV400WQ,9bZkp7q19f0,10,{ctr}\n");
        assert!(matches!(reach(&row).unwrap_err(), ReachCsvError::CtrOutOfRange { line: 2, .. }), "{ctr}");
    }
    assert_eq!(
        reach(&format!("{ok}\n20260112,UCybpwL6sPt6SSzazIV400WQ,9bZkp7q19f0,10\n")).unwrap_err(),
        ReachCsvError::FieldCount { line: 3, expected: 5, got: 4 }
    );
    assert!(matches!(reach(&format!("{ok}\n{ok}\n")).unwrap_err(), ReachCsvError::DuplicateRow { line: 3, .. }));
}

#[test]
fn reach_report_cut_short_is_truncated_and_retryable() {
    let body = fixture("reach_basic_a1.csv");
    // Cut anywhere but after a line break: "0.0482" cut to "0.04" must not pass for data.
    for cut in [body.len() - 3, body.len() / 2, 10] {
        let err = parse_reach_csv(&body[..cut]).unwrap_err();
        assert!(matches!(err, ReachCsvError::Truncated { .. }), "cut at {cut}: {err:?}");
        let err = YoutubeError::from(err);
        assert_eq!(err.kind(), ErrorKind::Malformed);
        assert!(err.is_retryable());
    }
    // Any other refusal is a changed or broken format: not worth a retry.
    assert!(!YoutubeError::from(ReachCsvError::Empty).is_retryable());
}
