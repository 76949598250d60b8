//! The web pages over real HTTP (no browser): the real server on 127.0.0.1:0, SQLite, the
//! simulator, and the tracking pipeline stepped on the virtual clock. Every page redirects a
//! visitor without a session to `/login`; another user's video, channel or A/B test is a 404
//! that reveals nothing; forms post to the same logic as the API, respect CSRF and show errors
//! inline. Covered: dashboard (with what changed since the last visit), channel page and its
//! typical band, outliers, A/B tests (plan, connection, preview, create, status, stop), account.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ui_common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::Duration;
use common::*;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use tubewatch_core::{Clock, Slot};
use tubewatch_sim::{Endpoint, FaultConfig, FaultSpec};
use tubewatch_store::{TargetKind, TargetState};
use tubewatch_worker::{Metrics, Pipeline, PipelineConfig};
use tubewatch_youtube::{RetryPolicy, YoutubeClient, YoutubeConfig};
use ui_common::*;

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

    /// Posts a form; the log-in and sign-up forms are fetched first for their form token, as a
    /// browser would have them.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut fields: Vec<(&str, String)> = form.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let pre_session = matches!(
            path,
            "/login" | "/signup" | "/forgot-password" | "/reset-password" | "/verify-email" | "/verify-email/resend"
        );
        if pre_session && !form.iter().any(|(k, _)| *k == "form_token") {
            fields.push(("form_token", Self::hidden(&self.get(path).await, "form_token")));
        }
        self.send(self.http.post(format!("{}{path}", self.base)).form(&fields)).await
    }

    /// The value of a form's hidden 64-character token field.
    fn hidden(page: &Page, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let at = page.body.find(&needle).unwrap_or_else(|| panic!("a {name} field")) + needle.len();
        page.body[at..at + 64].to_owned()
    }

    /// The CSRF token the page's forms carry.
    fn csrf(page: &Page) -> String {
        Self::hidden(page, "csrf_token")
    }

    /// Signs up as a user does: the sign-up form, then the link mailed to the outbox, whose page's
    /// button confirms the email and logs in.
    async fn signup(app: &TestApp, email: &str) -> Self {
        let browser = Self::new(app);
        let page = browser.post("/signup", &[("email", email), ("password", PASSWORD)]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("Check your mail"), "{}", page.body);
        let tokens = mailed_verification_tokens(app, email, 1).await;
        assert_eq!(tokens.len(), 1, "one verification link for {email}");
        browser.confirm_email(&tokens[0]).await
    }

    /// Opens a mailed verification link and presses its button.
    async fn confirm_email(self, token: &str) -> Self {
        let page = self.get(&format!("/verify-email?token={token}")).await;
        assert!(page.body.contains("Confirm my email"), "{}", page.body);
        let form_token = Self::hidden(&page, "form_token");
        let done = self.post("/verify-email", &[("form_token", &form_token), ("token", token)]).await;
        assert_eq!((done.status, done.location()), (StatusCode::SEE_OTHER, "/dashboard"), "{}", done.body);
        self
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
        writer: Default::default(),
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

    // A taken email gets the same page as a new one; its owner is told by mail.
    let taken = visitor.post("/signup", &[("email", "ann@example.com"), ("password", PASSWORD)]).await;
    let new = visitor.post("/signup", &[("email", "ned@example.com"), ("password", PASSWORD)]).await;
    assert_eq!((taken.status, new.status), (StatusCode::OK, StatusCode::OK));
    let say = |page: &Page, email: &str| page.body.replace(email, "EMAIL");
    assert_eq!(say(&taken, "ann@example.com"), say(&new, "ned@example.com"), "the same page for both");
    assert!(taken.body.contains("Check your mail"));
    mails_to(&app, "ann@example.com", "You already have a tubewatch account", 1).await;
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

    // Log-in CSRF: a form posted without the visitor's own form token (as another site would
    // post it) logs nobody in.
    let forged = Browser::new(&app);
    let fields = [("email", "ann@example.com"), ("password", PASSWORD), ("form_token", &"a".repeat(64))];
    let page = forged.post("/login", &fields).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("This form has expired"), "{}", page.body);
    assert!(!page.headers.get_all(SET_COOKIE).iter().any(|c| c.to_str().unwrap().starts_with("tw_session=")));
    let form_cookie = page
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("tw_form="));
    let form_cookie = form_cookie.expect("a fresh form token for the retry");
    assert!(form_cookie.contains("HttpOnly") && form_cookie.contains("SameSite=Strict"), "{form_cookie}");

    // A forgotten password: the log-in page links to the reset form, which answers the same for
    // any email and mails the link; the link's page sets the new password.
    assert!(visitor.get("/login").await.body.contains("href=\"/forgot-password\""));
    let asked = visitor.post("/forgot-password", &[("email", "ann@example.com")]).await;
    assert_eq!(asked.status, 200);
    let ghost = visitor.post("/forgot-password", &[("email", "ghost@example.com")]).await;
    let sent = "If this email has an account, a link to choose a new password is on its way.";
    assert!(asked.body.contains(sent) && ghost.body.contains(sent));
    let mail = mails_to(&app, "ann@example.com", "Reset your tubewatch password", 1).await.remove(0);
    let at = mail.find("code on the reset page:").expect("the code in the mail") + "code on the reset page:".len();
    let code: String = mail[at..].trim_start().chars().take(64).collect();
    let page = visitor.get(&format!("/reset-password?token={code}")).await;
    assert!(page.body.contains(&format!("value=\"{code}\"")), "the link fills the code in");
    let done =
        visitor.post("/reset-password", &[("token", code.as_str()), ("password", "the new long password")]).await;
    assert!(done.status == 200 && done.body.contains("Your password is changed"), "{}", done.body);
    let reused =
        visitor.post("/reset-password", &[("token", code.as_str()), ("password", "the new long password")]).await;
    assert_eq!(reused.status, 400);
    let new_login =
        visitor.post("/login", &[("email", "ann@example.com"), ("password", "the new long password")]).await;
    assert_eq!((new_login.status, new_login.location()), (StatusCode::SEE_OTHER, "/dashboard"));
    assert!(visitor.get("/dashboard").await.body.contains("Signed in as ann@example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailed_link_confirms_the_email_only_when_its_button_is_pressed() {
    let app = spawn_app(Options { channels: 2, ..Options::default() }).await;
    let visitor = Browser::new(&app);
    let signed_up = visitor.post("/signup", &[("email", "una@example.com"), ("password", PASSWORD)]).await;
    assert!(signed_up.body.contains("Check your mail") && signed_up.body.contains("href=\"/verify-email/resend\""));

    // Log-in before confirming: the right password is told why, with a button for a new link; a
    // wrong one gets the usual answer.
    let wrong = visitor.post("/login", &[("email", "una@example.com"), ("password", "wrong password!")]).await;
    assert_eq!(wrong.status, 401);
    assert!(!wrong.body.contains("action=\"/verify-email/resend\""));
    let refused = visitor.post("/login", &[("email", "una@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("confirm your email first"), "{}", refused.body);
    assert!(
        refused.body.contains("action=\"/verify-email/resend\"")
            && refused.body.contains("Mail me a new confirmation link")
    );
    let form_token = Browser::hidden(&refused, "form_token");
    let resent =
        visitor.post("/verify-email/resend", &[("form_token", &form_token), ("email", "una@example.com")]).await;
    assert_eq!(resent.status, 200);
    assert!(resent.body.contains("a new link is on its way"), "{}", resent.body);
    let ghost = visitor.post("/verify-email/resend", &[("email", "ghost@example.com")]).await;
    assert_eq!(ghost.body.replace("ghost@example.com", "EMAIL"), resent.body.replace("una@example.com", "EMAIL"));
    let forged = Browser::new(&app);
    let no_token =
        forged.post("/verify-email/resend", &[("form_token", &"a".repeat(64)), ("email", "una@example.com")]).await;
    assert_eq!(no_token.status, 403, "the resend form carries the visitor's form token");
    let tokens = mailed_verification_tokens(&app, "una@example.com", 2).await;
    assert_eq!(tokens.len(), 2);

    // Opening the link (as a mail scanner would, any number of times) uses nothing up.
    let link = format!("/verify-email?token={}", tokens[0]);
    for _ in 0..3 {
        let page = Browser::new(&app).get(&link).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains(&format!("name=\"token\" value=\"{}\"", tokens[0])));
    }
    let refused = visitor.post("/login", &[("email", "una@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(refused.status, 403, "still unconfirmed");
    // The button, without the visitor's form token, does nothing.
    let forged =
        Browser::new(&app).post("/verify-email", &[("form_token", &"a".repeat(64)), ("token", &tokens[0])]).await;
    assert_eq!(forged.status, 403);
    // With it, the email is confirmed and the visitor is logged in; the link is then used up, and
    // so is the other one.
    let una = Browser::new(&app).confirm_email(&tokens[0]).await;
    assert!(una.get("/dashboard").await.body.contains("Signed in as una@example.com"));
    for token in &tokens {
        let again = Browser::new(&app);
        let page = again.get(&format!("/verify-email?token={token}")).await;
        let used = again
            .post("/verify-email", &[("form_token", &Browser::hidden(&page, "form_token")), ("token", token)])
            .await;
        assert_eq!(used.status, 400);
        assert!(
            used.body.contains("unknown, used or expired") && used.body.contains("Mail me a new link"),
            "{}",
            used.body
        );
    }
    let login = visitor.post("/login", &[("email", "una@example.com"), ("password", PASSWORD)]).await;
    assert_eq!((login.status, login.location()), (StatusCode::SEE_OTHER, "/dashboard"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_verification_the_signup_page_sends_to_log_in() {
    let accounts = tubewatch_web::config::AccountsConfig { verify_email: false, ..Default::default() };
    let app = spawn_app(Options { channels: 2, accounts, ..Options::default() }).await;
    let visitor = Browser::new(&app);
    let page = visitor.post("/signup", &[("email", "vic@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("log in with the password you chose") && page.body.contains("action=\"/login\""));
    let login = visitor.post("/login", &[("email", "vic@example.com"), ("password", PASSWORD)]).await;
    assert_eq!((login.status, login.location()), (StatusCode::SEE_OTHER, "/dashboard"));
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

    // A video of the monitored channel has no "Stop tracking"; one tracked on its own has, and
    // stopping it (nobody else tracks it, its channel is not tracked) stops its checks.
    let remove = |id: &str| format!("action=\"/videos/{id}/remove\"");
    assert!(!alice.get(&format!("/videos/{}", video.id)).await.body.contains(&remove(video.id.as_str())));
    let other = app.sim.sim.channels()[1].id.clone();
    let alone = app.sim.sim.channel_videos(&other, app.clock.now() - Duration::days(20), app.clock.now()).unwrap()[0]
        .id
        .clone();
    let added = alice.post("/track", &[("csrf_token", &csrf), ("kind", "video"), ("url", alone.as_str())]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let path = format!("/videos/{alone}");
    assert!(alice.get(&path).await.body.contains(&remove(alone.as_str())));
    let bob_csrf = Browser::csrf(&bob.get("/dashboard").await);
    assert_eq!(bob.post(&format!("{path}/remove"), &[("csrf_token", &bob_csrf)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(alice.post(&format!("{path}/remove"), &[]).await.status, StatusCode::FORBIDDEN);
    let removed = alice.post(&format!("{path}/remove"), &[("csrf_token", &csrf)]).await;
    assert_eq!((removed.status, removed.location()), (StatusCode::SEE_OTHER, "/dashboard"));
    assert_eq!(alice.get(&path).await.status, StatusCode::NOT_FOUND);
    let target = app.store.target(TargetKind::Video, alone.as_str()).await.unwrap().unwrap();
    assert_eq!(target.state, TargetState::Finished);
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&#38;").replace('<', "&#60;").replace('>', "&#62;").replace('"', "&#34;").replace('\'', "&#39;")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_new_page_and_form_needs_a_session() {
    let app = spawn_app(Options { channels: 1, ..Options::default() }).await;
    let visitor = Browser::new(&app);
    let channel = format!("/channels/{}", app.sim.sim.channels()[0].id);
    for path in [
        channel.as_str(),
        "/outliers",
        "/outliers?week=2026-W10",
        "/abtests",
        "/abtests/new",
        "/abtests/1",
        "/abtests/1/variants/0",
        "/account",
    ] {
        let page = visitor.get(path).await;
        assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/login"), "GET {path}");
    }
    let remove = format!("{channel}/remove");
    for path in [
        remove.as_str(),
        "/videos/AAAAAAAAAAA/remove",
        "/account/tokens",
        "/account/tokens/1/revoke",
        "/account/password",
        "/account/upgrade",
        "/account/youtube/disconnect",
        "/abtests/1/stop",
    ] {
        let page = visitor.post(path, &[("csrf_token", "x"), ("name", "n")]).await;
        assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/login"), "POST {path}");
    }
    let form = reqwest::multipart::Form::new().text("csrf_token", "x").text("video", "AAAAAAAAAAA");
    let page = visitor.send(visitor.http.post(format!("{}/abtests/new", app.base)).multipart(form)).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/login"), "POST /abtests/new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_page_outliers_and_news_are_their_owners_only() {
    let app = spawn_app(Options { channels: 2, ..Options::default() }).await;
    let channel = app.sim.sim.channels()[0].clone();
    let alice = Browser::signup(&app, "alice@example.com").await;
    let bob = Browser::signup(&app, "bob@example.com").await;
    let first = alice.get("/dashboard").await;
    assert!(!first.body.contains("Since your last visit"), "nothing to compare on a first visit");
    let csrf = Browser::csrf(&first);
    let added = alice.post("/track", &[("csrf_token", &csrf), ("kind", "channel"), ("url", channel.id.as_str())]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let path = format!("/channels/{}", channel.id);

    // Before any weekly run: the band's empty state.
    let page = alice.get(&path).await;
    assert!(page.body.contains("The typical band appears after the first weekly run"));
    assert!(!page.body.contains("band-data"));

    // A day later: the videos; the first weekly run (two hours after tracking began) drew the
    // band from the channel's history.
    run_hours(&app, 26).await;
    let videos = app.store.channel_videos(&channel.id).await.unwrap();
    assert!(!videos.is_empty());
    let page = alice.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&format!("<h1>{}", html_escape(&channel.title))), "{}", page.body);
    for v in videos.iter().take(3) {
        assert!(page.body.contains(&format!("href=\"/videos/{}\"", v.id)), "video {} is listed", v.id);
    }
    let measured = videos.iter().find(|v| !v.is_short).unwrap();
    let latest = app.store.views(&measured.id).await.unwrap().last().unwrap().views;
    assert!(page.body.contains(&format!("title=\"{} views\"", tubewatch_web::pages::exact_number(latest))));
    assert!(page.body.contains("id=\"band-data\""), "{}", page.body);
    let dashboard = alice.get("/dashboard").await;
    assert!(dashboard.body.contains(&format!("href=\"{path}\"")), "the dashboard links the channel page");
    assert!(dashboard.body.contains("Since your last visit"), "a second visit a day later has news");
    let outliers = alice.get("/outliers").await;
    assert!(outliers.body.contains("No outliers yet") && outliers.body.contains("href=\"/settings/digest\""));

    // After a weekly run: the band chart and the outlier.
    app.clock.set(app.clock.now() + Duration::minutes(1));
    let run = store_weekly_run(&app, &channel.id, "2026-W10", 1).await;
    assert!(run.band_points > 0, "a day of hourly and daily measurements makes a band");
    let page = alice.get(&path).await;
    assert!(!page.body.contains("The typical band appears after"));
    assert!(page.body.contains("id=\"band-chart-0\"") && page.body.contains("id=\"band-data\""));
    assert!(page.body.contains("/assets/band_chart.js"));
    // Tracked for a day: the band's older videos were first measured past their first day.
    assert!(page.body.contains("published before tracking began, their early views estimated"), "{}", page.body);
    let outliers = alice.get("/outliers").await;
    assert_eq!(outliers.status, 200);
    assert!(outliers.body.contains("week 2026-W10"), "the latest week is shown");
    assert!(outliers.body.contains(&html_escape(&run.explanation)), "why it was flagged");
    assert!(
        outliers.body.contains("3.4×") && outliers.body.contains(&format!("href=\"/videos/{}\"", run.outlier_video))
    );
    assert!(outliers.body.contains("<option value=\"2026-W10\" selected>"));
    let other_week = alice.get("/outliers?week=2026-W01").await;
    assert!(other_week.body.contains("No outliers in this week"));
    let bad_week = alice.get("/outliers?week=last").await;
    assert!(bad_week.body.contains("role=\"alert\"") && bad_week.body.contains("That is not a week"));
    // The video page draws the band behind the views.
    let video_page = alice.get(&format!("/videos/{}", run.outlier_video)).await;
    assert!(
        video_page.body.contains("id=\"overlay-data\"") && video_page.body.contains("Typical views of the channel")
    );

    // A new visit after a pause lists what changed: the outlier found since.
    app.clock.set(app.clock.now() + Duration::hours(2));
    let news = alice.get("/dashboard").await;
    let section = news.body.split("Since your last visit").nth(1).unwrap().split("</section>").next().unwrap();
    assert!(section.contains("New outliers") && section.contains(&html_escape(&run.explanation)), "{section}");
    let reload = alice.get("/dashboard").await;
    assert!(reload.body.contains("New outliers"), "a reload within the visit keeps the news");

    // Bob sees none of it.
    let missing = bob.get("/channels/UC0000000000000000000000").await;
    assert_eq!(missing.status, 404);
    let hidden = bob.get(&path).await;
    assert_eq!((hidden.status, hidden.body.as_str()), (StatusCode::NOT_FOUND, missing.body.as_str()));
    assert_eq!(bob.get("/channels/not-a-channel").await.status, 404);
    let bobs = bob.get("/outliers").await;
    assert!(bobs.body.contains("No outliers yet") && !bobs.body.contains(&html_escape(&run.explanation)));
    let bobs = bob.get("/outliers?week=2026-W10").await;
    assert!(bobs.body.contains("No outliers yet") && !bobs.body.contains(&html_escape(&run.explanation)));
    assert!(!bob.get("/dashboard").await.body.contains(&html_escape(&run.explanation)));

    // Stop monitoring: Bob cannot for Alice, nor can a post without the token; Alice can, and
    // nobody else monitoring it, its checks stop.
    let remove = format!("{path}/remove");
    let bob_csrf = Browser::csrf(&bob.get("/dashboard").await);
    assert_eq!(bob.post(&remove, &[("csrf_token", &bob_csrf)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(alice.post(&remove, &[]).await.status, StatusCode::FORBIDDEN);
    assert!(alice.get(&path).await.body.contains(&format!("action=\"{remove}\"")));
    let removed = alice.post(&remove, &[("csrf_token", &csrf)]).await;
    assert_eq!((removed.status, removed.location()), (StatusCode::SEE_OTHER, "/dashboard"));
    assert_eq!(alice.get(&path).await.status, StatusCode::NOT_FOUND);
    let target = app.store.target(TargetKind::Channel, channel.id.as_str()).await.unwrap().unwrap();
    assert_eq!(target.state, TargetState::Finished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_page_tokens_password_and_plan() {
    let app = spawn_app(Options { channels: 1, ..Options::default() }).await;
    let alice = Browser::signup(&app, "alice@example.com").await;
    let bob = Browser::signup(&app, "bob@example.com").await;
    let page = alice.get("/account").await;
    assert_eq!(page.status, 200);
    for needle in [
        "Plan: free",
        "0 of 3",
        "premium plan only",
        "Billing is not set up on this server",
        "Connecting a YouTube account is part of the premium plan",
        "No tokens yet.",
        "href=\"/settings/digest\"",
        "<label for=\"current_password\">",
    ] {
        assert!(page.body.contains(needle), "account page has {needle}");
    }
    let csrf = Browser::csrf(&page);

    // Tokens: CSRF, inline errors, shown once, listed, revoked.
    let forged = alice.post("/account/tokens", &[("csrf_token", &"0".repeat(64)), ("name", "ci")]).await;
    assert_eq!(forged.status, 403);
    let empty = alice.post("/account/tokens", &[("csrf_token", &csrf), ("name", "  ")]).await;
    assert_eq!(empty.status, 400);
    assert!(empty.body.contains("id=\"token-error\"") && empty.body.contains("1 to 100 printable characters"));
    let created = alice.post("/account/tokens", &[("csrf_token", &csrf), ("name", "nightly export")]).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let at = created.body.find("id=\"new-token\">").expect("the new token is shown") + 15;
    let token = created.body[at..].split('<').next().unwrap().to_owned();
    assert!(token.starts_with("tw_") && token.len() > 20, "{token}");
    let api = reqwest::Client::new().get(format!("{}/api/v1/me", app.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(api.status(), 200, "the shown token works");
    let again = alice.get("/account").await;
    assert!(!again.body.contains(&token), "shown once only");
    assert!(again.body.contains("nightly export") && again.body.contains(&format!("{}…", &token[..9])));
    assert!(!bob.get("/account").await.body.contains("nightly export"), "bob does not see alice's tokens");
    let id = app
        .store
        .api_tokens(
            app.store
                .user_by_email(&tubewatch_core::Email::parse("alice@example.com").unwrap())
                .await
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap()[0]
        .id;
    let bob_csrf = Browser::csrf(&bob.get("/account").await);
    let stolen = bob.post(&format!("/account/tokens/{id}/revoke"), &[("csrf_token", &bob_csrf)]).await;
    assert_eq!(stolen.status, 404, "bob cannot revoke alice's token");
    let revoked = alice.post(&format!("/account/tokens/{id}/revoke"), &[("csrf_token", &csrf)]).await;
    assert_eq!((revoked.status, revoked.location()), (StatusCode::SEE_OTHER, "/account#tokens"));
    assert!(alice.get("/account").await.body.contains("revoked"));
    let api = reqwest::Client::new().get(format!("{}/api/v1/me", app.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(api.status(), 401, "a revoked token no longer works");

    // Password: errors inline, then changed (this session stays).
    let wrong = alice
        .post(
            "/account/password",
            &[
                ("csrf_token", &csrf),
                ("current_password", "nope nope nope"),
                ("new_password", "another long passphrase"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.body.contains("id=\"password-error\"") && wrong.body.contains("the current password is wrong"));
    let weak = alice
        .post("/account/password", &[("csrf_token", &csrf), ("current_password", PASSWORD), ("new_password", "short")])
        .await;
    assert_eq!(weak.status, 400);
    let changed = alice
        .post(
            "/account/password",
            &[("csrf_token", &csrf), ("current_password", PASSWORD), ("new_password", "another long passphrase")],
        )
        .await;
    assert_eq!(changed.status, 200);
    assert!(changed.body.contains("Password changed"));
    let visitor = Browser::new(&app);
    let login =
        visitor.post("/login", &[("email", "alice@example.com"), ("password", "another long passphrase")]).await;
    assert_eq!(login.location(), "/dashboard", "the new password logs in");

    // Billing without Stripe: the upgrade form is absent and posting it says why.
    let upgrade = alice.post("/account/upgrade", &[("csrf_token", &csrf)]).await;
    assert_eq!(upgrade.status, 404);
    assert!(upgrade.body.contains("billing is not configured on this server"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_tests_need_the_plan_and_a_configured_server() {
    let app = spawn_app(Options { channels: 1, ..Options::default() }).await;
    let free = Browser::signup(&app, "free@example.com").await;
    for path in ["/abtests", "/abtests/new"] {
        let page = free.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.body.contains("A/B tests are part of the premium plan")
                && page.body.contains("href=\"/account#billing\"")
        );
    }
    let csrf = Browser::csrf(&free.get("/abtests").await);
    let form = reqwest::multipart::Form::new().text("csrf_token", csrf).text("video", "AAAAAAAAAAA");
    let refused = free.send(free.http.post(format!("{}/abtests/new", app.base)).multipart(form)).await;
    assert_eq!(refused.status, 402);
    assert!(refused.body.contains("role=\"alert\"") && refused.body.contains("A/B tests need the premium plan"));

    let premium = Browser::signup(&app, "premium@example.com").await;
    make_premium(&app, "premium@example.com").await;
    let page = premium.get("/abtests").await;
    assert!(page.body.contains("A/B tests are not configured on this server"));
    assert!(premium.get("/account").await.body.contains("A/B tests are not configured on this server"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ab_test_is_planned_previewed_created_shown_and_stopped_by_its_owner() {
    let (app, owned) = spawn_ab_app(3).await;
    let alice = Browser::signup(&app, "alice@example.com").await;
    make_premium(&app, "alice@example.com").await;
    let bob = Browser::signup(&app, "bob@example.com").await;
    make_premium(&app, "bob@example.com").await;
    let csrf = Browser::csrf(&alice.get("/dashboard").await);
    let added = alice.post("/track", &[("csrf_token", &csrf), ("kind", "channel"), ("url", owned.as_str())]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    run_hours(&app, 2).await;

    let list = alice.get("/abtests").await;
    assert!(
        list.body.contains("Connect your YouTube account first") && list.body.contains("href=\"/account#youtube\"")
    );
    let account = alice.get("/account").await;
    assert!(account.body.contains(&format!("href=\"/oauth/google/start?channel={owned}\"")), "{}", account.body);

    // Connect through Google's consent (the simulator's), as the browser would follow it.
    let start = alice.get(&format!("/oauth/google/start?channel={owned}")).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER);
    let consent = alice.http.get(start.location()).send().await.unwrap();
    let back = url::Url::parse(consent.headers()[LOCATION].to_str().unwrap()).unwrap();
    let done = alice.get(&format!("{}?{}", back.path(), back.query().unwrap())).await;
    assert_eq!(done.location(), "/dashboard");
    assert!(alice.get("/account").await.body.contains("Connected to"));

    // Plan and preview.
    let form = alice.get("/abtests/new").await;
    assert_eq!(form.status, 200);
    let mut video = None;
    for v in app.store.channel_videos(&owned).await.unwrap() {
        if !v.is_short && !app.store.views(&v.id).await.unwrap().is_empty() {
            video = Some(v.id);
            break;
        }
    }
    let video = video.expect("a measured long-form video on the connected channel");
    assert!(form.body.contains(&format!("<option value=\"{video}\"")), "the channel's videos can be picked");
    let bad = alice.get(&format!("/abtests/new?video={video}&variants=9")).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Variants: a whole number from 2 to 4"));
    let preview = alice.get(&format!("/abtests/new?video={video}&variants=2&duration_days=14&rotation_hours=12")).await;
    assert_eq!(preview.status, 200);
    assert!(preview.body.contains("The 28 rotation periods"), "14 days of 12-hour periods");
    let hours_live: Vec<&str> = preview.body.split("<td class=\"num\">168</td>").collect();
    assert_eq!(hours_live.len(), 3, "each of the 2 variants is live 168 hours");
    assert!(preview.body.contains("enctype=\"multipart/form-data\"") && preview.body.contains("name=\"thumbnail\""));

    // Create: CSRF, inline errors with the plan kept, then the real thing.
    let form_with = |csrf: &str, files: usize| {
        let mut form = reqwest::multipart::Form::new()
            .text("csrf_token", csrf.to_owned())
            .text("video", video.to_string())
            .text("variants", "2")
            .text("duration_days", "14")
            .text("rotation_hours", "12");
        for look in 0..files {
            let bytes = picture(look as u8 + 1, image::ImageFormat::Png);
            form = form.part("thumbnail", reqwest::multipart::Part::bytes(bytes).file_name(format!("{look}.png")));
        }
        form.text("title", "").text("final_action", "apply_winner")
    };
    let post = |b: &Browser, form| b.http.post(format!("{}/abtests/new", app.base)).multipart(form);
    let forged = alice.send(post(&alice, form_with(&"0".repeat(64), 2))).await;
    assert_eq!(forged.status, 403);
    // A refused form's uploads are read and thrown away, so the browser still sending them
    // reads the refusal rather than a reset connection.
    let heavy = form_with(&"0".repeat(64), 0)
        .part("thumbnail", reqwest::multipart::Part::bytes(vec![7u8; 3 * 1024 * 1024]).file_name("big.png"));
    assert_eq!(alice.send(post(&alice, heavy)).await.status, 403);
    let one = alice.send(post(&alice, form_with(&csrf, 1))).await;
    assert_eq!(one.status, 422);
    assert!(one.body.contains("role=\"alert\"") && one.body.contains("a test compares 2 to 4"), "{}", one.body);
    assert!(one.body.contains(&format!("<option value=\"{video}\" selected>")), "the plan is kept");
    let created = alice.send(post(&alice, form_with(&csrf, 2))).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let test_path = created.location().to_owned();
    let id: i64 = test_path.strip_prefix("/abtests/").unwrap().parse().unwrap();

    let page = alice.get(&test_path).await;
    assert_eq!(page.status, 200);
    for needle in [
        "Status: <span class=\"state state-running\">running</span>",
        "Swaps made</dt><dd>0 of 28",
        "YouTube quota used",
        "Planned: ",
        "Estimated from the video's ",
        "action=\"/abtests/",
        "Stop the test now",
    ] {
        assert!(page.body.contains(needle), "test page has {needle}");
    }
    assert_eq!(page.body.matches("<tr class=\"phase-").count(), 28, "the whole schedule");
    let thumb = alice.get(&format!("{test_path}/variants/1")).await;
    assert_eq!((thumb.status, thumb.headers["content-type"].to_str().unwrap()), (StatusCode::OK, "image/jpeg"));
    let list = alice.get("/abtests").await;
    assert!(list.body.contains(&format!("href=\"/abtests/{id}\"")));
    let video_page = alice.get(&format!("/videos/{video}")).await;
    assert!(video_page.body.contains(&format!("A/B test #{id}</a>")), "the chart's key names the test");

    // Bob sees none of it.
    let missing = bob.get("/abtests/999999").await;
    assert_eq!(missing.status, 404);
    for path in [test_path.clone(), format!("{test_path}/variants/0"), "/abtests/x".to_owned()] {
        let page = bob.get(&path).await;
        assert_eq!((page.status, page.body.as_str()), (StatusCode::NOT_FOUND, missing.body.as_str()), "bob GET {path}");
    }
    assert!(!bob.get("/abtests").await.body.contains(&format!("/abtests/{id}")));
    let bob_csrf = Browser::csrf(&bob.get("/abtests").await);
    let stop = bob.post(&format!("{test_path}/stop"), &[("csrf_token", &bob_csrf)]).await;
    assert_eq!(stop.status, 404);

    // Alice stops it.
    let no_csrf = alice.post(&format!("{test_path}/stop"), &[]).await;
    assert_eq!(no_csrf.status, 403);
    let stopped = alice.post(&format!("{test_path}/stop"), &[("csrf_token", &csrf)]).await;
    assert_eq!((stopped.status, stopped.location()), (StatusCode::SEE_OTHER, test_path.as_str()));
    let page = alice.get(&test_path).await;
    assert!(page.body.contains("state-stopped") && page.body.contains("stopped early by the user"));
    assert!(!page.body.contains("Stop the test now"));
}
