//! The web tests' harness: the real server on 127.0.0.1:0 with connect info, a real SQLite store
//! in a temporary folder, the real YouTube simulator over HTTP on a manual clock, and small
//! clients that log in by cookie (with the CSRF header) or by bearer token.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tubewatch_core::{Clock, ManualClock};
use tubewatch_sim::{RunningSim, SimConfig, Simulator};
use tubewatch_store::{Store, StoreOptions, connect};
use tubewatch_web::config::{AccountsConfig, HttpConfig, StripeConfig};
use tubewatch_web::{AppState, WebConfig, router};
use tubewatch_worker::token_crypto::TokenKeyring;
use tubewatch_worker::{Blobs, Mailer, Metrics, PipelineConfig, Tracker, Webhooks};
use tubewatch_youtube::{RetryPolicy, YoutubeClient, YoutubeConfig};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub sim: RunningSim,
    pub blobs: Blobs,
    pub dir: tempfile::TempDir,
}

pub struct Options {
    pub accounts: AccountsConfig,
    pub http: HttpConfig,
    pub stripe: Option<StripeConfig>,
    pub channels: u32,
    /// Hosts webhooks may use (none: webhooks are off).
    pub webhook_hosts: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            accounts: AccountsConfig::default(),
            http: HttpConfig::default(),
            stripe: None,
            channels: 8,
            webhook_hosts: Vec::new(),
        }
    }
}

pub async fn spawn_app(options: Options) -> TestApp {
    let (config, clock) = SimConfig::for_tests(7, options.channels);
    let sim = Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = connect(&format!("sqlite://{}/tw.db", dir.path().display()), &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let mut yt = YoutubeConfig::single_base(&sim.base_url).unwrap();
    yt.retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    let youtube = YoutubeClient::new(yt).unwrap();
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let blobs = Blobs::local(&dir.path().join("blobs")).unwrap();
    // Mail (password resets) goes to the outbox folder, read back by `outbox_mails`.
    let mailer = Mailer::outbox("tubewatch <tubewatch@localhost>", &dir.path().join("outbox")).unwrap();
    let config = PipelineConfig { mailer, ..PipelineConfig::default() };
    let tracker = Tracker { store: store.clone(), youtube, clock: clock_dyn.clone(), config };
    let state = AppState {
        store: store.clone(),
        clock: clock_dyn,
        metrics: Arc::new(Metrics::default()),
        tracker,
        blobs: blobs.clone(),
        config: Arc::new(WebConfig { accounts: options.accounts, http: options.http, stripe: options.stripe }),
        abtests: None,
        webhooks: (!options.webhook_hosts.is_empty()).then(|| {
            let keyring = TokenKeyring::from_hex("test", &[("test".into(), "7e".repeat(32))]).unwrap();
            Webhooks::new(&options.webhook_hosts, keyring, std::time::Duration::from_secs(5)).unwrap()
        }),
        series_cache: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestApp { base: format!("http://{addr}"), store, clock, sim, blobs, dir }
}

/// The mails in the app's outbox folder, as raw messages, waiting up to five seconds for at
/// least `at_least` (mail is sent after the answer).
pub async fn outbox_mails(app: &TestApp, at_least: usize) -> Vec<String> {
    for _ in 0..50 {
        let mails: Vec<String> = std::fs::read_dir(app.dir.path().join("outbox"))
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        if mails.len() >= at_least {
            return mails;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("fewer than {at_least} mails in the outbox");
}

/// The mails in the outbox addressed to `email` (its domain in any case, as accounts take it)
/// that contain `needle`, waiting up to five seconds for at least `at_least` of them (mail is sent
/// after the answer).
pub async fn mails_to(app: &TestApp, email: &str, needle: &str, at_least: usize) -> Vec<String> {
    let (local, domain) = email.rsplit_once('@').expect("an email");
    let to = format!("To: {local}@{}", domain.to_lowercase());
    for _ in 0..50 {
        let mails: Vec<String> = std::fs::read_dir(app.dir.path().join("outbox"))
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .filter_map(|e| std::fs::read(e.path()).ok())
                    .map(|raw| decoded(&raw))
                    .filter(|m| m.lines().any(|l| l == to) && m.contains(needle))
                    .collect()
            })
            .unwrap_or_default();
        if mails.len() >= at_least {
            return mails;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("fewer than {at_least} mails to {email} with {needle:?} in the outbox");
}

/// A raw mail as its reader sees it: quoted-printable decoded (soft line breaks joined, `=3D`
/// read as `=`), so that a link is one piece of text.
fn decoded(raw: &[u8]) -> String {
    let text = quoted_printable::decode(raw, quoted_printable::ParseMode::Robust).unwrap_or_else(|_| raw.to_vec());
    String::from_utf8_lossy(&text).into_owned()
}

/// The token of every verification link in `mail` (as `mails_to` returns it).
pub fn verification_tokens(mail: &str) -> Vec<String> {
    const LINK: &str = "/verify-email?token=";
    mail.match_indices(LINK)
        .filter_map(|(at, _)| {
            let rest = &mail[at + LINK.len()..];
            let token: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            (token.len() == 64).then_some(token)
        })
        .collect()
}

/// The verification tokens mailed to `email`, waiting for at least `at_least` mails with one.
pub async fn mailed_verification_tokens(app: &TestApp, email: &str, at_least: usize) -> Vec<String> {
    let mut tokens: Vec<String> = mails_to(app, email, "/verify-email?token=", at_least)
        .await
        .iter()
        .flat_map(|m| verification_tokens(m))
        .collect();
    tokens.sort();
    tokens.dedup();
    tokens
}

/// How a client authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    Anonymous,
    /// Session cookie with the CSRF header.
    Cookie {
        session: String,
        csrf: String,
    },
    Bearer(String),
}

#[derive(Debug, Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub auth: Auth,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Client {
    pub fn anonymous(app: &TestApp) -> Self {
        Self { base: app.base.clone(), http: reqwest::Client::new(), auth: Auth::Anonymous }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        match &self.auth {
            Auth::Anonymous => {}
            Auth::Cookie { session, csrf } => {
                req = req.header("cookie", format!("tw_session={session}")).header("x-csrf-token", csrf);
            }
            Auth::Bearer(token) => req = req.bearer_auth(token),
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap().to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, body, bytes }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// Signs up the way a user does: posts the sign-up, follows the verification link mailed to
    /// the outbox, and returns the cookie-authenticated client of the session it opens.
    pub async fn signup(app: &TestApp, email: &str) -> Self {
        let reply = Self::signup_reply(app, email).await;
        Self::from_session_reply(app, &reply)
    }

    /// Signs up and follows the mailed link; the answer to the link (a new session).
    pub async fn signup_reply(app: &TestApp, email: &str) -> Reply {
        let anon = Self::anonymous(app);
        let reply = anon.post("/api/v1/auth/signup", json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        let tokens = mailed_verification_tokens(app, email, 1).await;
        assert_eq!(tokens.len(), 1, "one verification link for {email}");
        let verified = anon.post("/api/v1/auth/verify-email", json!({ "token": tokens[0] })).await;
        assert_eq!(verified.status, 200, "{}", verified.body);
        verified
    }

    pub fn from_session_reply(app: &TestApp, reply: &Reply) -> Self {
        let session = reply
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("tw_session="))
            .and_then(|c| c.split(';').next())
            .expect("session cookie")
            .to_owned();
        let csrf = reply.body["csrf_token"].as_str().expect("csrf token").to_owned();
        Self { base: app.base.clone(), http: reqwest::Client::new(), auth: Auth::Cookie { session, csrf } }
    }

    /// A bearer client for the same user, from a new API token.
    pub async fn bearer(&self) -> Self {
        let reply = self.post("/api/v1/tokens", json!({ "name": "test", "scope": "write" })).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let token = reply.body["token"].as_str().unwrap().to_owned();
        Self { base: self.base.clone(), http: reqwest::Client::new(), auth: Auth::Bearer(token) }
    }
}
