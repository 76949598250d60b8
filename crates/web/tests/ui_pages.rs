//! The web pages over real HTTP (no browser): the real server on 127.0.0.1:0, SQLite, the
//! simulator, and the tracking pipeline stepped on the virtual clock. Every page redirects a
//! visitor without a session to `/login`; another user's video is a 404 that reveals nothing;
//! forms post to the same logic as the API, respect CSRF and show errors inline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::Duration;
use common::*;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use tubewatch_core::{Clock, Slot};
use tubewatch_sim::{Endpoint, FaultConfig, FaultSpec};
use tubewatch_worker::{Metrics, Pipeline, PipelineConfig};
use tubewatch_youtube::{RetryPolicy, YoutubeClient, YoutubeConfig};

/// A browser-like client: keeps the cookies it is given, never follows redirects (so they can be
/// asserted).
struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { base: app.base.clone(), http, cookies: Mutex::default() }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self.cookies.lock().unwrap().iter().map(|(k, v)| format!("{k}={v}")).collect();
        let resp = request.header("cookie", cookie.join("; ")).send().await.unwrap();
        for set in resp.headers().get_all(SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let mut jar = self.cookies.lock().unwrap();
            if value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
        Page { status: resp.status(), headers: resp.headers().clone(), body: resp.text().await.unwrap() }
    }

    async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(self.http.post(format!("{}{path}", self.base)).form(form)).await
    }

    /// The CSRF token the page's forms carry.
    fn csrf(page: &Page) -> String {
        let at = page.body.find("name=\"csrf_token\" value=\"").expect("a CSRF field") + 25;
        page.body[at..at + 64].to_owned()
    }

    async fn signup(app: &TestApp, email: &str) -> Self {
        let browser = Self::new(app);
        let page = browser.post("/signup", &[("email", email), ("password", PASSWORD)]).await;
        assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/dashboard"), "{}", page.body);
        browser
    }
}

/// Steps the virtual clock hour by hour, running every due check (as the worker would).
async fn run_hours(app: &TestApp, hours: i64) {
    let mut yt = YoutubeConfig::single_base(&app.sim.base_url).unwrap();
    yt.retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    let clock: Arc<dyn Clock> = app.clock.clone();
    let pipeline = Pipeline {
        store: app.store.clone(),
        youtube: YoutubeClient::new(yt).unwrap(),
        blobs: app.blobs.clone(),
        clock,
        metrics: Arc::new(Metrics::default()),
        config: PipelineConfig::default(),
    };
    for _ in 0..hours {
        let next_hour = Slot::hour_of(app.clock.now()).start() + Duration::hours(1);
        for at in [next_hour - Duration::minutes(5), next_hour + Duration::seconds(30)] {
            if at > app.clock.now() {
                app.clock.set(at);
            }
            pipeline.drain("ui-test", StdDuration::from_secs(60), 32).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_without_a_session_are_sent_to_log_in() {
    let app = spawn_app(Options { channels: 2, ..Options::default() }).await;
    let visitor = Browser::new(&app);
    for path in ["/", "/dashboard", "/track", "/videos/AAAAAAAAAAA", "/videos/AAAAAAAAAAA/series.csv"] {
        let page = visitor.get(path).await;
        let expected = if path == "/" { "/dashboard" } else { "/login" };
        assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, expected), "GET {path}");
    }
    let json = visitor.get("/videos/AAAAAAAAAAA/series.json").await;
    assert_eq!(json.location(), "/login");
    for path in ["/track", "/logout"] {
        let page = visitor.post(path, &[("csrf_token", "x"), ("url", "@someone")]).await;
        assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/login"), "POST {path}");
    }
    // An expired or forged session is no session.
    let forged = visitor.http.get(format!("{}/dashboard", app.base)).header("cookie", "tw_session=forged").send();
    assert_eq!(forged.await.unwrap().headers()[LOCATION], "/login");

    let login = visitor.get("/login").await;
    assert_eq!(login.status, 200);
    for needle in
        ["<label for=\"email\">Email</label>", "<label for=\"password\">Password</label>", "action=\"/login\""]
    {
        assert!(login.body.contains(needle), "log-in form has {needle}");
    }
    let signup = visitor.get("/signup").await;
    assert!(signup.body.contains("action=\"/signup\"") && signup.body.contains("At least 10 characters"));
    let css = visitor.get("/assets/uPlot.min.css").await;
    assert_eq!(
        (css.status, css.headers["content-type"].to_str().unwrap()),
        (StatusCode::OK, "text/css; charset=utf-8")
    );
    assert!(visitor.get("/assets/uPlot.iife.min.js").await.body.contains("uPlot"));
    assert_eq!(visitor.get("/assets/nope.js").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_log_in_and_log_out_with_errors_inline() {
    let app = spawn_app(Options { channels: 2, ..Options::default() }).await;
    let visitor = Browser::new(&app);
    let weak = visitor.post("/signup", &[("email", "ann@example.com"), ("password", "short")]).await;
    assert_eq!(weak.status, 400);
    assert!(weak.body.contains("role=\"alert\"") && weak.body.contains("at least 10 characters"), "{}", weak.body);
    assert!(weak.body.contains("value=\"ann@example.com\""), "the email is kept");
    let bad = visitor.post("/signup", &[("email", "not-an-email"), ("password", PASSWORD)]).await;
    assert!(bad.status == 400 && bad.body.contains("not a valid email address"));

    let ann = Browser::signup(&app, "ann@example.com").await;
    let dashboard = ann.get("/dashboard").await;
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.body.contains("No videos yet — add a channel"), "empty state: {}", dashboard.body);
    assert!(dashboard.body.contains("Signed in as ann@example.com") && dashboard.body.contains("Your plan: free"));
    assert!(dashboard.body.contains("0 of 3"), "channel usage against the free plan's limit");

    let taken = visitor.post("/signup", &[("email", "ann@example.com"), ("password", PASSWORD)]).await;
    assert!(taken.status == 409 && taken.body.contains("log in instead"));
    let wrong = visitor.post("/login", &[("email", "ann@example.com"), ("password", "wrong password!")]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("wrong email or password") && wrong.body.contains("value=\"ann@example.com\""));

    // Log-out needs the form's CSRF token, then ends the session for good.
    let csrf = Browser::csrf(&dashboard);
    let refused = ann.post("/logout", &[("csrf_token", "0".repeat(64).as_str())]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(ann.get("/dashboard").await.status, 200, "still logged in after a forged log-out");
    let out = ann.post("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, "/login"));
    assert!(out.headers.get_all(SET_COOKIE).iter().any(|c| c.to_str().unwrap().starts_with("tw_session=;")));
    assert_eq!(ann.get("/dashboard").await.location(), "/login");

    let again = visitor.post("/login", &[("email", "ann@example.com"), ("password", PASSWORD)]).await;
    assert_eq!((again.status, again.location()), (StatusCode::SEE_OTHER, "/dashboard"));
    assert!(visitor.get("/dashboard").await.body.contains("Signed in as ann@example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_videos_are_shown_to_their_owner_only() {
    let app = spawn_app(Options { channels: 2, ..Options::default() }).await;
    let channel = app.sim.sim.channels()[0].clone();
    let alice = Browser::signup(&app, "alice@example.com").await;
    let bob = Browser::signup(&app, "bob@example.com").await;

    let form = alice.get("/track").await;
    assert!(form.body.contains("<label for=\"url\">") && form.body.contains("<legend>What is it?</legend>"));
    let csrf = Browser::csrf(&form);
    let no_csrf = alice.post("/track", &[("kind", "channel"), ("url", channel.id.as_str())]).await;
    assert_eq!(no_csrf.status, 403, "a form post without the CSRF token is refused");
    let nonsense = alice.post("/track", &[("csrf_token", &csrf), ("kind", "video"), ("url", "not a video")]).await;
    assert_eq!(nonsense.status, 422);
    assert!(nonsense.body.contains("role=\"alert\"") && nonsense.body.contains("value=\"not a video\""));
    let url = format!("https://www.youtube.com/channel/{}", channel.id);
    let added = alice.post("/track", &[("csrf_token", &csrf), ("kind", "channel"), ("url", &url)]).await;
    assert_eq!((added.status, added.location()), (StatusCode::SEE_OTHER, "/dashboard"), "{}", added.body);

    run_hours(&app, 3).await;
    let videos = app.store.channel_videos(&channel.id).await.unwrap();
    let video = videos.first().expect("the channel's feed was read");
    let series = app.store.views(&video.id).await.unwrap();
    let latest = series.last().expect("the video was measured").views;

    let dashboard = alice.get("/dashboard").await;
    assert!(!dashboard.body.contains("No videos yet"));
    assert!(dashboard.body.contains(&channel.title), "the channel is listed");
    let link = format!("href=\"/videos/{}\"", video.id);
    assert!(dashboard.body.contains(&link), "its videos are listed");
    assert!(dashboard.body.contains("1 of 3"), "one channel slot used");
    let exact = format!("title=\"{}", tubewatch_web::pages::exact_number(latest));
    assert!(dashboard.body.contains(&exact), "current views shown (exact in the title): {exact}");
    assert!(dashboard.body.contains(&tubewatch_web::pages::compact_number(latest)));

    let page = alice.get(&format!("/videos/{}", video.id)).await;
    assert_eq!(page.status, 200);
    for needle in [
        format!("<h1>{}</h1>", html_escape(&video.title)),
        "id=\"chart\"".to_owned(),
        "id=\"series-data\"".to_owned(),
        "/assets/uPlot.iife.min.js".to_owned(),
        format!("href=\"/videos/{}/series.csv\"", video.id),
    ] {
        assert!(page.body.contains(&needle), "video page has {needle}");
    }
    let csv = alice.get(&format!("/videos/{}/series.csv", video.id)).await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "slot,measured_at,views");
    assert_eq!(lines.len(), series.len() + 1, "one row per measurement");
    assert!(lines.last().unwrap().ends_with(&format!(",{latest}")));
    let json = alice.get(&format!("/videos/{}/series.json", video.id)).await;
    let json: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(json["points"].as_array().unwrap().len(), series.len());

    // Bob sees none of it: the same 404 as for a video that does not exist.
    let missing = bob.get("/videos/AAAAAAAAAAA").await;
    assert_eq!(missing.status, 404);
    for path in [
        format!("/videos/{}", video.id),
        format!("/videos/{}/series.csv", video.id),
        format!("/videos/{}/series.json", video.id),
    ] {
        let page = bob.get(&path).await;
        assert_eq!(page.status, 404, "bob GET {path}");
        assert_eq!(page.body, missing.body, "bob GET {path} looks like a missing video");
        assert!(!page.body.contains(&video.title));
    }
    // A channel whose feed keeps failing is listed under "Needs attention" (for its owner only).
    assert!(!dashboard.body.contains("Needs attention"));
    let failing = FaultSpec { rate_500: 1.0, ..FaultSpec::default() };
    app.sim.sim.set_faults(FaultConfig { endpoints: [(Endpoint::Feed, failing)].into(), ..FaultConfig::default() });
    run_hours(&app, 2).await;
    let attention = alice.get("/dashboard").await;
    let section = attention.body.split("Needs attention").nth(1).expect("a Needs attention section");
    assert!(section.split("</section>").next().unwrap().contains(&format!("Channel {}", channel.title)), "{section}");
    app.sim.sim.set_faults(FaultConfig::default());

    let bob_dashboard = bob.get("/dashboard").await;
    assert!(bob_dashboard.body.contains("No videos yet — add a channel"));
    assert!(!bob_dashboard.body.contains(&channel.title) && !bob_dashboard.body.contains(video.id.as_str()));
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&#38;").replace('<', "&#60;").replace('>', "&#62;").replace('"', "&#34;").replace('\'', "&#39;")
}
