//! Shape tests: every element/attribute path of the real recorded feed, and every field path of
//! the real player and resolve_url responses (`shared/fixtures/youtube/`), exists in what the
//! simulator serves. Skipped with a note when the shared fixtures are not beside the repository.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use quick_xml::events::Event;
use serde_json::{Value, json};
use tubewatch_sim::{SimConfig, Simulator};

fn fixtures() -> Option<PathBuf> {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if !shared.exists() {
        println!("note: {} does not exist; skipping the shape tests against real recordings", shared.display());
        return None;
    }
    Some(shared.join("fixtures/youtube"))
}

/// `a/b/c` for every element and `a/b/c@attr` for every attribute.
fn xml_paths(xml: &str) -> BTreeSet<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut out = BTreeSet::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => {
                stack.push(String::from_utf8_lossy(e.name().as_ref()).into_owned());
                let path = stack.join("/");
                for a in e.attributes() {
                    out.insert(format!("{path}@{}", String::from_utf8_lossy(a.unwrap().key.as_ref())));
                }
                out.insert(path);
            }
            Event::Empty(e) => {
                let path = format!("{}/{}", stack.join("/"), String::from_utf8_lossy(e.name().as_ref()));
                for a in e.attributes() {
                    out.insert(format!("{path}@{}", String::from_utf8_lossy(a.unwrap().key.as_ref())));
                }
                out.insert(path);
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

fn json_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{prefix}.{k}");
                out.insert(p.clone());
                json_paths(v, &p, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                json_paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// The response body of a NewPipe mock (a string or a byte array).
fn mock_body(path: &PathBuf) -> (u16, String) {
    let mock: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let response = &mock["response"];
    let body = match &response["responseBody"] {
        Value::String(s) => s.clone(),
        Value::Array(bytes) => String::from_utf8(bytes.iter().map(|b| b.as_i64().unwrap() as u8).collect()).unwrap(),
        other => panic!("unexpected body {other}"),
    };
    (response["responseCode"].as_u64().unwrap() as u16, body)
}

async fn sim() -> tubewatch_sim::RunningSim {
    let (config, clock) = SimConfig::for_tests(77, 60);
    clock.advance(chrono::Duration::hours(3));
    Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

#[tokio::test]
async fn feed_has_every_path_of_the_real_feed() {
    let Some(dir) = fixtures() else { return };
    let real = xml_paths(&std::fs::read_to_string(dir.join("kurz.xml")).unwrap());
    let running = sim().await;
    // A channel with Shorts and long-form, as Kurzgesagt's.
    let channel = running
        .sim
        .channels()
        .iter()
        .find(|c| c.shorts_every_hours.is_some() && c.long_every_hours.is_some())
        .unwrap()
        .clone();
    let r = reqwest::get(format!("{}/feeds/videos.xml?channel_id={}", running.base_url, channel.id)).await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/xml; charset=UTF-8");
    let body = r.text().await.unwrap();
    let ours = xml_paths(&body);
    let missing: Vec<_> = real.difference(&ours).collect();
    assert!(missing.is_empty(), "paths of the real feed missing from the simulator's: {missing:?}");
    assert_eq!(body.matches("<entry>").count(), 15);
    assert!(body.contains(&format!("<yt:channelId>{}</yt:channelId>", &channel.id.as_str()[2..])));
    assert!(body.contains(&format!("<yt:channelId>{}</yt:channelId>", channel.id)));
}

#[tokio::test]
async fn player_has_every_field_of_the_real_player_responses() {
    let Some(dir) = fixtures() else { return };
    let mut real = BTreeSet::new();
    for name in ["player_visionos_mock.json", "player_web_fields_mock.json"] {
        let (_, body) = mock_body(&dir.join(name));
        let value: Value = serde_json::from_str(&body).unwrap();
        let mut paths = BTreeSet::new();
        json_paths(&value, "", &mut paths);
        real.extend(paths.into_iter().filter(|p| {
            p.starts_with(".videoDetails") || p.starts_with(".microformat") || p.starts_with(".playabilityStatus")
        }));
    }
    assert!(real.contains(".videoDetails.viewCount"));
    let running = sim().await;
    let now = running.sim.now();
    let c = &running.sim.channels()[0];
    let id = running.sim.channel_videos(&c.id, now - chrono::Duration::days(90), now).unwrap()[0].id.clone();
    let from_api: Value = reqwest::Client::new()
        .post(format!("{}/youtubei/v1/player", running.base_url))
        .json(&json!({"videoId": id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page = reqwest::get(format!("{}/watch?v={id}", running.base_url)).await.unwrap().text().await.unwrap();
    let marker = "var ytInitialPlayerResponse = ";
    let start = page.find(marker).unwrap() + marker.len();
    let from_page: Value = serde_json::Deserializer::from_str(&page[start..]).into_iter().next().unwrap().unwrap();
    assert_eq!(from_api, from_page, "the watch page embeds the same player response");
    let mut ours = BTreeSet::new();
    json_paths(&from_api, "", &mut ours);
    let missing: Vec<_> = real.difference(&ours).collect();
    assert!(missing.is_empty(), "fields of the real player response missing from the simulator's: {missing:?}");
}

#[tokio::test]
async fn resolve_url_has_the_real_shapes() {
    let Some(dir) = fixtures() else { return };
    let running = sim().await;
    let handle = running.sim.channels()[1].handle.to_string();
    for (fixture, url, status) in [
        ("resolve_url_mock.json", format!("https://www.youtube.com/{handle}"), 200),
        ("resolve_url_404_mock.json", "https://www.youtube.com/@no-such-channel-here".to_owned(), 404),
    ] {
        let (code, body) = mock_body(&dir.join(fixture));
        assert_eq!(code, status);
        let mut real = BTreeSet::new();
        json_paths(&serde_json::from_str(&body).unwrap(), "", &mut real);
        real.retain(|p| p.starts_with(".endpoint") || p.starts_with(".error"));
        let r = reqwest::Client::new()
            .post(format!("{}/youtubei/v1/navigation/resolve_url", running.base_url))
            .json(&json!({"context": {"client": {"clientName": "WEB"}}, "url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status);
        let mut ours = BTreeSet::new();
        json_paths(&r.json().await.unwrap(), "", &mut ours);
        let missing: Vec<_> = real.difference(&ours).collect();
        assert!(missing.is_empty(), "{fixture}: missing {missing:?}");
    }
}
