//! The web UI in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven over
//! WebDriver by fantoccini) against the real server on loopback, the simulator and the tracking
//! pipeline on a stepped virtual clock: sign up, add a channel, let tracking run until the
//! simulator's creator changes a tracked video's thumbnail, open that video's page, check the
//! chart and its change marker with before/after thumbnails, download the CSV. Screenshots of
//! the dashboard and the video page are saved under `target/screenshots/`. Then, after a weekly
//! run is stored, the channel page (typical band chart), the outliers page and the account page
//! (a token created through the form). A second test connects a premium user's YouTube account
//! through the simulator's Google consent, previews and starts an A/B test with two uploaded
//! thumbnails, and opens its page and the video's chart with the rotation periods shaded.
//! Screenshots: dashboard.png, video.png, video-phone.png, channel.png, outliers.png,
//! account.png, abtest-new.png, abtest.png, video-abtest.png.
//!
//! Without Chromium the tests are skipped, saying why and how to install it, except under CI (`CI`
//! set, as `.ci/run` does after installing it), where a missing browser fails them.
//! `TUBEWATCH_SKIP_BROWSER_TESTS=1` skips them anywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ui_common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration as StdDuration;

use chrono::Duration;
use common::*;
use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::{Client as WebDriver, ClientBuilder, Locator};
use serde_json::json;
use tubewatch_core::{Clock, Slot};
use tubewatch_sim::VariantKind;
use tubewatch_worker::{Metrics, Pipeline, PipelineConfig};
use tubewatch_youtube::{RetryPolicy, YoutubeClient, YoutubeConfig};
use ui_common::*;

/// Signs up through the form, opens the verification link mailed to the outbox and presses its
/// button, which lands on the (empty) dashboard.
async fn sign_up(browser: &WebDriver, app: &TestApp, email: &str) {
    browser.goto(&format!("{}/signup", app.base)).await.unwrap();
    browser.find(Locator::Css("#email")).await.unwrap().send_keys(email).await.unwrap();
    browser.find(Locator::Css("#password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("p.notice")).await.unwrap();
    let text = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(text.contains("Check your mail"), "{text}");
    let tokens = mailed_verification_tokens(app, email, 1).await;
    browser.goto(&format!("{}/verify-email?token={}", app.base, tokens[0])).await.unwrap();
    browser.find(Locator::Css("main button[type=submit]")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css(".empty")).await.unwrap();
}

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    _child: tokio::process::Child,
    url: String,
}

async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{url}/status")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Driver { _child: child, url };
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on {url}");
}

async fn open_browser(driver: &Driver) -> WebDriver {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--no-first-run",
                     "--disable-sync", "--window-size=1200,1000"],
        }),
    );
    ClientBuilder::rustls().unwrap().capabilities(caps).connect(&driver.url).await.expect("a Chromium session")
}

/// Steps the virtual clock hour by hour until `until`, running every due check (as the worker
/// would, at :55 for channel feeds and just after the hour for videos).
async fn run_until(app: &TestApp, until: chrono::DateTime<chrono::Utc>) {
    let mut yt = YoutubeConfig::single_base(&app.sim.base_url).unwrap();
    yt.retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    let clock: Arc<dyn Clock> = app.clock.clone();
    let pipeline = Pipeline {
        store: app.store.clone(),
        youtube: YoutubeClient::new(yt).unwrap(),
        blobs: app.blobs.clone(),
        clock,
        metrics: Arc::new(Metrics::default()),
        writer: Default::default(),
        config: PipelineConfig::default(),
    };
    while app.clock.now() < until {
        let next_hour = Slot::hour_of(app.clock.now()).start() + Duration::hours(1);
        for at in [next_hour - Duration::minutes(5), next_hour + Duration::seconds(30)] {
            if at > app.clock.now() {
                app.clock.set(at);
            }
            pipeline.drain("ui-browser-test", StdDuration::from_secs(60), 32).await.unwrap();
        }
    }
}

/// Whether the real-browser tests can run: `false` (with the reason printed) when skipped on
/// purpose or when Chromium is not installed outside CI; under CI a missing browser fails.
fn browser_available() -> bool {
    if std::env::var("TUBEWATCH_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("skipped: TUBEWATCH_SKIP_BROWSER_TESTS=1");
        return false;
    }
    let missing: Vec<&str> =
        [CHROMIUM, CHROMEDRIVER].into_iter().filter(|b| !std::path::Path::new(b).exists()).collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!(
        "{} missing: install Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver; \
         .ci/run does it)",
        missing.join(" and ")
    );
    assert!(std::env::var_os("CI").is_none(), "{reason}");
    eprintln!("skipped: {reason}");
    false
}

async fn js(browser: &WebDriver, script: &str) -> serde_json::Value {
    browser.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sees_the_chart_with_a_thumbnail_change_in_chromium() {
    if !browser_available() {
        return;
    }
    let app = spawn_app(Options { channels: 8, ..Options::default() }).await;
    // The simulator's truth: the first creator thumbnail change a few hours ahead, on a video
    // published long enough before it to be found by an hourly feed read and measured first, in
    // its hourly week, and watched enough for its effect to be judged.
    let now = app.clock.now();
    let change = app
        .sim
        .sim
        .changes(now + Duration::hours(3), now + Duration::days(8), None)
        .unwrap()
        .into_iter()
        .find(|c| {
            c.kind == VariantKind::Thumbnail
                && app.sim.sim.video_at(&c.video_id, c.at).is_ok_and(|v| {
                    v.published < c.at - Duration::hours(4)
                        && v.published > c.at - Duration::days(5)
                        && v.expected_total_views > 5_000.0
                })
        })
        .expect("the simulated world has such a thumbnail change within 8 days");
    let channel = app.sim.sim.channels().iter().find(|c| c.id == change.channel_id).unwrap().clone();

    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    let base = &app.base;

    // Sign up through the form.
    sign_up(&browser, &app, "carol@example.com").await;
    let text = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(text.contains("No videos yet — add a channel"), "empty dashboard: {text}");

    // Add the channel by its URL.
    browser.find(Locator::LinkText("Add a channel")).await.unwrap().click().await.unwrap();
    let url = format!("https://www.youtube.com/channel/{}", channel.id);
    browser.wait().for_element(Locator::Css("#url")).await.unwrap().send_keys(&url).await.unwrap();
    browser.find(Locator::Css("main button[type=submit]")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("section.channel")).await.unwrap();
    assert_eq!(browser.current_url().await.unwrap().path(), "/dashboard");

    // Let tracking run past the change.
    run_until(&app, change.at + Duration::hours(3)).await;
    let detected = app.store.changes(&change.video_id).await.unwrap();
    assert!(!detected.is_empty(), "the pipeline detected the thumbnail change of {}", change.video_id);
    let points = app.store.views(&change.video_id).await.unwrap().len();
    eprintln!("{} change(s) detected on {} at {}; {points} measurements", detected.len(), change.video_id, change.at);

    browser.refresh().await.unwrap();
    let dashboard = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(dashboard.contains(&channel.title), "dashboard lists the channel: {dashboard}");
    assert!(dashboard.contains("1 of 3"), "channel usage against the plan: {dashboard}");
    std::fs::write(screenshots_dir().join("dashboard.png"), browser.screenshot().await.unwrap()).unwrap();

    // The video page: chart, marker, before/after thumbnails.
    browser.find(Locator::Css(&format!("a[href='/videos/{}']", change.video_id))).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("#chart[data-ready=true] canvas")).await.unwrap();
    let chart = js(
        &browser,
        "const c = document.querySelector('#chart canvas');
         return { width: c.width, height: c.height, markers: document.querySelectorAll('#chart .change-marker').length,
                  legend: document.querySelector('#chart .u-legend').textContent };",
    )
    .await;
    assert!(chart["width"].as_u64().unwrap() > 200 && chart["height"].as_u64().unwrap() > 100, "{chart}");
    assert_eq!(chart["markers"].as_u64().unwrap() as usize, detected.len(), "one marker per detected change");
    assert!(chart["legend"].as_str().unwrap().contains("Views"), "{chart}");
    // The axes' short labels tell the ticks of a narrow range apart, and stay short on a wide one.
    let narrow = js(&browser, "return window.tubewatchTickLabels(null, [3400, 3410, 3420, 3430]);").await;
    assert_eq!(narrow, serde_json::json!(["3.4K", "3.41K", "3.42K", "3.43K"]));
    let wide = js(&browser, "return window.tubewatchTickLabels(null, [0, 1000000, 2500000]);").await;
    assert_eq!(wide, serde_json::json!(["0", "1M", "2.5M"]));

    // Hovering the marker (a real pointer move) shows the change's before and after thumbnails.
    let marker = browser.find(Locator::Css("#chart .change-thumbnail")).await.unwrap();
    let hover = PointerAction::MoveToElement { element: marker, duration: None, x: 0.0, y: 0.0 };
    browser.perform_actions(MouseActions::new("mouse".into()).then(hover)).await.unwrap();
    let tip = js(
        &browser,
        "const tip = document.getElementById('change-tip');
         return { hidden: tip.hidden, text: tip.textContent,
                  images: [...tip.querySelectorAll('img')].map(i => i.getAttribute('src')) };",
    )
    .await;
    assert_eq!(tip["hidden"], false, "{tip}");
    assert!(tip["text"].as_str().unwrap().contains("Thumbnail changed"), "{tip}");
    let images = tip["images"].as_array().unwrap();
    assert_eq!(images.len(), 2, "before and after thumbnails: {tip}");
    for src in images {
        assert!(src.as_str().unwrap().starts_with(&format!("/api/v1/videos/{}/thumbnails/", change.video_id)));
    }
    // The archived thumbnails really load (the authorised route answers the browser's session).
    let loaded = js(
        &browser,
        "return [...document.querySelectorAll('.changes img')].map(i => i.complete && i.naturalWidth > 0);",
    )
    .await;
    assert!(!loaded.as_array().unwrap().is_empty() && loaded.as_array().unwrap().iter().all(|l| l == true), "{loaded}");
    std::fs::write(screenshots_dir().join("video.png"), browser.screenshot().await.unwrap()).unwrap();

    // On a phone-sized window the page and its chart fit the width (no sideways scrolling).
    let video_url = browser.current_url().await.unwrap();
    browser.set_window_size(390, 844).await.unwrap();
    browser.goto(video_url.as_str()).await.unwrap();
    browser.wait().for_element(Locator::Css("#chart[data-ready=true] canvas")).await.unwrap();
    let fit = js(
        &browser,
        "return { page: document.documentElement.scrollWidth, viewport: window.innerWidth,
                  chart: document.querySelector('#chart .u-wrap').getBoundingClientRect().right,
                  markers: document.querySelectorAll('#chart .change-marker').length };",
    )
    .await;
    let viewport = fit["viewport"].as_f64().unwrap();
    assert!(fit["page"].as_f64().unwrap() <= viewport && fit["chart"].as_f64().unwrap() <= viewport, "{fit}");
    assert_eq!(fit["markers"].as_u64().unwrap() as usize, detected.len(), "{fit}");
    std::fs::write(screenshots_dir().join("video-phone.png"), browser.screenshot().await.unwrap()).unwrap();
    browser.set_window_size(1200, 1000).await.unwrap();
    browser.goto(video_url.as_str()).await.unwrap();

    // The CSV download, fetched as the browser would (same session).
    let csv = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const link = [...document.querySelectorAll('a[download]')].find(a => a.textContent === 'CSV');
             fetch(link.href).then(r => r.text().then(t => done({ status: r.status,
                 disposition: r.headers.get('content-disposition'), text: t })));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(csv["status"], 200, "{csv}");
    assert!(csv["disposition"].as_str().unwrap().contains(".csv"), "{csv}");
    let text = csv["text"].as_str().unwrap();
    assert!(text.starts_with("slot,measured_at,views\n"), "{text}");
    assert_eq!(text.lines().count(), points + 1, "one row per measurement");

    // Three hours after the change its effect is not judged yet, and the page says why; three
    // days after, it is: the verdict with its interval, and the chart draws the views expected
    // without the change.
    let verdict = js(&browser, "return document.querySelector('.changes .verdict').textContent;").await;
    assert!(verdict.as_str().unwrap().contains("not judged: only"), "{verdict}");
    run_until(&app, change.at + Duration::hours(75)).await;
    browser.goto(video_url.as_str()).await.unwrap();
    browser.wait().for_element(Locator::Css("#chart[data-ready=true] canvas")).await.unwrap();
    let judged = js(
        &browser,
        "return { verdict: document.querySelector('.changes .verdict').textContent,
                  counterfactual: JSON.parse(document.getElementById('overlay-data').textContent).counterfactual.length,
                  legend: document.querySelector('#chart .u-legend').textContent };",
    )
    .await;
    assert!(judged["verdict"].as_str().unwrap().contains("what its own trend predicted"), "{judged}");
    assert!(judged["counterfactual"].as_u64().unwrap() > 24, "{judged}");
    assert!(judged["legend"].as_str().unwrap().contains("Without the change (expected)"), "{judged}");
    std::fs::write(screenshots_dir().join("video-judged.png"), browser.screenshot().await.unwrap()).unwrap();

    // After a weekly run: the channel page's band chart, the outliers page, the account page.
    let run = store_weekly_run(&app, &channel.id, "2026-W10", 2).await;
    browser.goto(&format!("{base}/channels/{}", channel.id)).await.unwrap();
    let text = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(text.contains(&channel.title) && text.contains("Videos"), "{text}");
    if run.band_points > 0 {
        browser.wait().for_element(Locator::Css("#band-chart-0[data-ready=true] canvas")).await.unwrap();
        let legend = js(&browser, "return document.querySelector('#band-chart-0 .u-legend').textContent;").await;
        assert!(legend.as_str().unwrap().contains("Median"), "{legend}");
    } else {
        assert!(text.contains("The typical band appears after the first weekly run"), "{text}");
    }
    std::fs::write(screenshots_dir().join("channel.png"), browser.screenshot().await.unwrap()).unwrap();

    browser.find(Locator::LinkText("Outliers")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("li.outlier")).await.unwrap();
    let text = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(text.contains(&run.explanation) && text.contains("3.4×") && text.contains("week 2026-W10"), "{text}");
    let link = browser.find(Locator::Css("li.outlier h2 a")).await.unwrap().attr("href").await.unwrap();
    assert_eq!(link.as_deref(), Some(format!("/videos/{}", run.outlier_video).as_str()));
    std::fs::write(screenshots_dir().join("outliers.png"), browser.screenshot().await.unwrap()).unwrap();

    browser.find(Locator::LinkText("Account")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("#token-name")).await.unwrap().send_keys("my laptop").await.unwrap();
    browser.find(Locator::Css("#tokens button[type=submit]:not(.small)")).await.unwrap().click().await.unwrap();
    let token = browser.wait().for_element(Locator::Css("#new-token")).await.unwrap().text().await.unwrap();
    assert!(token.starts_with("tw_"), "{token}");
    let text = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(text.contains("Plan: free") && text.contains("my laptop") && text.contains("shown this once"), "{text}");
    std::fs::write(screenshots_dir().join("account.png"), browser.screenshot().await.unwrap()).unwrap();

    // Another user gets a 404 for the same page.
    browser.find(Locator::Css("button.link")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("#email")).await.unwrap();
    assert_eq!(browser.current_url().await.unwrap().path(), "/login");
    sign_up(&browser, &app, "dave@example.com").await;
    browser.goto(&format!("{base}/videos/{}", change.video_id)).await.unwrap();
    let text = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(text.contains("Not Found") && text.contains("not yours"), "{text}");
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_premium_user_connects_youtube_and_starts_an_ab_test_in_chromium() {
    if !browser_available() {
        return;
    }
    // A webhook receiver on loopback, the one host webhooks may use here.
    let pings = Arc::new(AtomicUsize::new(0));
    let counter = pings.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { axum::http::StatusCode::NO_CONTENT }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let (app, owned) = spawn_ab_app_with_webhooks(3, std::slice::from_ref(&hook_host)).await;
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    let base = &app.base;
    sign_up(&browser, &app, "erin@example.com").await;
    make_premium(&app, "erin@example.com").await;
    browser.goto(&format!("{base}/track")).await.unwrap();
    browser.wait().for_element(Locator::Css("#url")).await.unwrap().send_keys(owned.as_str()).await.unwrap();
    browser.find(Locator::Css("main button[type=submit]")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("section.channel")).await.unwrap();
    run_until(&app, app.clock.now() + Duration::hours(8)).await;

    // Connect: the account page's form → Google's consent (simulated) → back to the dashboard.
    browser.goto(&format!("{base}/account")).await.unwrap();
    browser.find(Locator::Css("#youtube .connect-list a")).await.unwrap().click().await.unwrap();
    if browser.wait().for_element(Locator::Css("section.usage")).await.is_err() {
        let url = browser.current_url().await.unwrap();
        let source = browser.source().await.unwrap();
        panic!("connecting did not come back to the dashboard: {url}\n{}", &source[..source.len().min(2000)]);
    }
    assert_eq!(browser.current_url().await.unwrap().path(), "/dashboard");

    // Plan, preview, upload, start.
    browser.goto(&format!("{base}/abtests")).await.unwrap();
    browser.find(Locator::LinkText("New A/B test")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("#plan-video")).await.unwrap();
    browser.find(Locator::Css("form[method=get][action='/abtests/new'] button")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("#preview")).await.unwrap();
    let preview = browser.find(Locator::Css("#preview")).await.unwrap().text().await.unwrap();
    assert!(preview.contains("Hours live") && preview.contains("168"), "{preview}");
    std::fs::write(screenshots_dir().join("abtest-new.png"), browser.screenshot().await.unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for n in 0..2u8 {
        let path = dir.path().join(format!("variant-{n}.png"));
        std::fs::write(&path, picture(n + 1, image::ImageFormat::Png)).unwrap();
        let input = browser.find(Locator::Css(&format!("#thumb-{n}"))).await.unwrap();
        input.send_keys(path.to_str().unwrap()).await.unwrap();
    }
    browser.find(Locator::Css("form[enctype] button[type=submit]")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("table.schedule")).await.unwrap();
    let path = browser.current_url().await.unwrap().path().to_owned();
    assert!(path.starts_with("/abtests/"), "{path}");
    let text = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(
        text.contains("Status: running") && text.contains("Schedule") && text.contains("Stop the test now"),
        "{text}"
    );
    let images = js(
        &browser,
        "return [...document.querySelectorAll('.variants img')].map(i => i.complete && i.naturalWidth > 0);",
    )
    .await;
    assert_eq!(images, json!([true, true]), "both uploaded thumbnails are shown");
    std::fs::write(screenshots_dir().join("abtest.png"), browser.screenshot().await.unwrap()).unwrap();

    // The video's chart shades the test's rotation periods once they begin.
    let video = browser.find(Locator::Css("h1 a")).await.unwrap().attr("href").await.unwrap().unwrap();
    run_until(&app, app.clock.now() + Duration::hours(30)).await;
    browser.goto(&format!("{base}{video}")).await.unwrap();
    browser.wait().for_element(Locator::Css("#chart[data-ready=true] canvas")).await.unwrap();
    let key = browser.find(Locator::Css(".chart-key")).await.unwrap().text().await.unwrap();
    assert!(key.contains("A/B test #") && key.contains("A") && key.contains("B"), "{key}");
    let periods =
        js(&browser, "return JSON.parse(document.getElementById('overlay-data').textContent).periods.length;").await;
    assert_eq!(periods, json!(28));
    std::fs::write(screenshots_dir().join("video-abtest.png"), browser.screenshot().await.unwrap()).unwrap();

    // The webhook: set it in the settings form, see its secret once, send a test delivery.
    browser.goto(&format!("{base}/settings/digest")).await.unwrap();
    let input = browser.find(Locator::Css("#webhook-url-input")).await.unwrap();
    input.send_keys(&format!("http://{hook_host}/hook")).await.unwrap();
    browser.find(Locator::Css("form[action='/settings/webhook'] button")).await.unwrap().click().await.unwrap();
    let secret = browser.wait().for_element(Locator::Css("#webhook-secret")).await.unwrap().text().await.unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    browser.find(Locator::Css("form[action='/settings/webhook/test'] button")).await.unwrap().click().await.unwrap();
    let notice = browser.wait().for_element(Locator::Css("#webhook-notice")).await.unwrap().text().await.unwrap();
    assert!(notice.contains("the receiver answered 204"), "{notice}");
    assert_eq!(pings.load(Ordering::SeqCst), 1);
    let text = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(!text.contains(&secret), "the secret is shown once");
    std::fs::write(screenshots_dir().join("settings-webhook.png"), browser.screenshot().await.unwrap()).unwrap();
    browser.close().await.unwrap();
}
