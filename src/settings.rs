//! One typed `Settings`: defaults → optional TOML file (`--config`) → `TUBEWATCH_*` environment →
//! command-line flags. Passed down explicitly, never global. Secrets are redacted in `Debug`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use clap::Args;
use serde::{Deserialize, Serialize};
use tubewatch_core::{AcceleratedClock, Clock, Resolution, SchedulePolicy, SystemClock};
use url::Url;

/// A secret value: deserialised like a string, never printed.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://PATH` (embedded default) or `postgres://…`.
    pub database_url: String,
    pub database_max_connections: u32,
    /// Where the web UI, API and `/healthz` listen.
    pub listen: SocketAddr,
    /// Local folder for archived thumbnails (the embedded default blob store; unused with `[s3]`).
    pub blob_dir: PathBuf,
    /// An S3-compatible bucket for the blobs instead of `blob_dir` (scaled out on several machines).
    pub s3: S3Settings,
    pub youtube: YoutubeSettings,
    /// `system`, or an accelerated clock `VIRT0@WALL0xSPEED` shared with the simulator.
    pub clock: String,
    pub tracking: TrackingSettings,
    pub worker: WorkerSettings,
    pub abtests: AbTestSettings,
    pub accounts: AccountsSettings,
    pub billing: BillingSettings,
    pub outliers: OutlierSettings,
    pub mail: MailSettings,
    pub webhooks: WebhookSettings,
    pub http: HttpSettings,
}

/// The blob store in an S3-compatible bucket (`[s3]`): thumbnails and A/B variant images, shared
/// by every web and worker process on every machine. Off (the local `blob_dir`) until `bucket` is
/// set. Credentials: `access_key_id` and `secret_access_key` here, or else the standard AWS
/// environment chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, a web
/// identity token, an ECS or EKS container role, the EC2 instance metadata service); AWS profile
/// files are not read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Settings {
    pub bucket: Option<String>,
    /// The bucket's AWS region; required unless `endpoint` is set.
    pub region: Option<String>,
    /// An S3-compatible store's URL (MinIO, Ceph, Cloudflare R2, …); unset: AWS S3.
    pub endpoint: Option<String>,
    /// Address the bucket as `BUCKET.host` (virtual-hosted style) rather than `host/BUCKET`.
    pub virtual_hosted_style: bool,
    /// Allow a plain `http://` endpoint.
    pub allow_http: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
}

/// The HTTP edge's limits and trust (`[http]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// A request not answered within this, its body included, is answered 408.
    pub request_timeout_seconds: u64,
    /// Requests handled at once; any beyond are answered 503.
    pub max_concurrent_requests: usize,
    /// Reverse proxies (addresses or CIDR ranges) whose `Forwarded` / `X-Forwarded-For` headers
    /// are believed about the client's address; from anyone else they are ignored.
    pub trusted_proxies: Vec<tubewatch_web::config::IpRange>,
    /// `/metrics` needs `Authorization: Bearer <this>`. Unset: only scrapers on this machine
    /// (loopback) are answered.
    pub metrics_token: Option<Secret>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        let web = tubewatch_web::config::HttpConfig::default();
        Self {
            request_timeout_seconds: web.request_timeout.as_secs(),
            max_concurrent_requests: web.max_concurrent_requests,
            trusted_proxies: web.trusted_proxies,
            metrics_token: None,
        }
    }
}

/// Outgoing webhooks: each week's outliers POSTed to a URL each user may set. Users choose only
/// among the hosts allowed here (none: webhooks are off). The signing secrets are sealed with
/// the token keys of `[abtests]` (`current_key_id`, `token_keys`), which must then be set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// `host` (default ports) or `host:port`, e.g. `["hooks.slack.com", "n8n.internal:5678"]`.
    pub allowed_hosts: Vec<String>,
    /// A receiver must answer within this time (1–120).
    pub timeout_seconds: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self { allowed_hosts: Vec::new(), timeout_seconds: 10 }
    }
}

/// The weekly outlier runs (per channel) and the digests sent after them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutlierSettings {
    /// Day of the weekly run (UTC): mon, tue, …, sun.
    pub weekday: String,
    /// Hour of the weekly run (UTC, 0–23).
    pub hour: u32,
    /// Digests go out this many hours after the runs.
    pub digest_delay_hours: u32,
    /// A video is judged against its channel once, at the first run where it is this many hours old.
    pub judge_at_hours: u32,
    /// A channel outlier's views are at least the band's median × (1 + margin).
    pub margin: f64,
    /// Smallest thumbnail/title lift flagged (0.2 = 20 %).
    pub min_lift: f64,
    /// A thumbnail/title lift is flagged when its interval at this confidence excludes 0
    /// (lower: more findings, more of them overstated).
    pub change_confidence: f64,
}

/// Outgoing mail. Without `smtp_url` or `smtp_host`, mail is written to `outbox_dir` as `.eml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// `smtp://host:25`, `smtp://host:587?tls=required` or `smtps://user:pass@host:465`.
    pub smtp_url: Option<Secret>,
    /// Or the server spelled out: host, port and TLS (`none`, `starttls`, `implicit`).
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_tls: String,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    /// `Name <address>` the mail comes from.
    pub from: String,
    pub outbox_dir: PathBuf,
    /// The service's address as users reach it, for links in mail (unsubscribe, email
    /// verification, password reset).
    pub public_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct YoutubeSettings {
    /// One base URL standing in for every YouTube and Google host (how the service is pointed at
    /// the simulator). Unset: the real hosts.
    pub base_url: Option<String>,
    /// A Data API key: when set, views are read with `videos.list` in batches of 50.
    pub api_key: Option<Secret>,
    /// Concurrent requests per host.
    pub concurrency_per_host: usize,
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackingSettings {
    /// Minutes between measurements in a video's first days (60 = hourly; down to 2).
    pub resolution_minutes: u32,
    /// Days of fine (hourly) tracking after publish.
    pub fine_days: u32,
    /// Days after publish when tracking stops (daily after `fine_days`).
    pub track_days: u32,
    /// Channel feeds are read this many minutes before each hour.
    pub channel_check_offset_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Targets claimed per batch.
    pub batch_size: u32,
    /// Checks in flight at once per worker.
    pub concurrency: usize,
    /// How long a claim is held before another worker may take it over.
    pub lease_seconds: u32,
    /// Attempts within a slot before the slot is given up (and the error recorded).
    pub max_attempts: u32,
    /// Threads of the process's async runtime (`None`: one per CPU core, tokio's default, or
    /// `TOKIO_WORKER_THREADS`). A dedicated worker on a small machine spends less CPU per check on
    /// one: its tasks no longer wake a second thread.
    pub runtime_threads: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://./tubewatch-data/tubewatch.db".into(),
            database_max_connections: 10,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            blob_dir: PathBuf::from("./tubewatch-data/blobs"),
            s3: S3Settings::default(),
            youtube: YoutubeSettings::default(),
            clock: "system".into(),
            tracking: TrackingSettings::default(),
            worker: WorkerSettings::default(),
            abtests: AbTestSettings::default(),
            accounts: AccountsSettings::default(),
            billing: BillingSettings::default(),
            outliers: OutlierSettings::default(),
            mail: MailSettings::default(),
            webhooks: WebhookSettings::default(),
            http: HttpSettings::default(),
        }
    }
}

impl Default for OutlierSettings {
    fn default() -> Self {
        let c = tubewatch_worker::OutliersConfig::default();
        Self {
            weekday: "mon".into(),
            hour: c.hour,
            digest_delay_hours: u32::try_from(c.digest_delay.num_hours()).unwrap_or(3),
            judge_at_hours: u32::try_from(c.judge_at_hours).unwrap_or(72),
            margin: c.channel.margin,
            min_lift: c.change.min_lift,
            change_confidence: c.change.confidence,
        }
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            smtp_host: None,
            smtp_port: 587,
            smtp_tls: "starttls".into(),
            smtp_username: None,
            smtp_password: None,
            from: "tubewatch <tubewatch@localhost>".into(),
            outbox_dir: PathBuf::from("./tubewatch-data/outbox"),
            public_url: "http://127.0.0.1:8080".into(),
        }
    }
}

impl Default for YoutubeSettings {
    fn default() -> Self {
        Self { base_url: None, api_key: None, concurrency_per_host: 64, timeout_seconds: 20 }
    }
}

impl Default for TrackingSettings {
    fn default() -> Self {
        Self { resolution_minutes: 60, fine_days: 7, track_days: 60, channel_check_offset_minutes: 5 }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self { batch_size: 200, concurrency: 128, lease_seconds: 300, max_attempts: 8, runtime_threads: None }
    }
}

/// The settings given as flags, the last layer. Filled from the flag groups below, in the order
/// the command line gives them (a flag after the subcommand beats the same flag before it).
#[derive(Debug, Clone, Default)]
pub struct SettingsArgs {
    pub config: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub blob_dir: Option<PathBuf>,
    pub youtube_base_url: Option<String>,
    pub youtube_api_key: Option<String>,
    pub clock: Option<String>,
    pub stripe_secret_key: Option<String>,
    pub stripe_webhook_secret: Option<String>,
}

/// A group of settings flags, as a subcommand declares the ones it uses.
pub trait SettingsFlags {
    /// Copies the flags given into `args`.
    fn apply(&self, args: &mut SettingsArgs);
}

fn set<T: Clone>(target: &mut Option<T>, flag: &Option<T>) {
    if flag.is_some() {
        target.clone_from(flag);
    }
}

/// The configuration file and the database: what every command that opens the store uses.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Settings (also in the --config file and TUBEWATCH_* variables)")]
pub struct DatabaseFlags {
    /// TOML configuration file (see tubewatch.example.toml, or `tubewatch config example`).
    #[arg(long, env = "TUBEWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, env = "TUBEWATCH_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl SettingsFlags for DatabaseFlags {
    fn apply(&self, args: &mut SettingsArgs) {
        set(&mut args.config, &self.config);
        set(&mut args.database_url, &self.database_url);
    }
}

/// The service's parts beyond the database: blob folder, clock and YouTube.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Settings (also in the --config file and TUBEWATCH_* variables)")]
pub struct ServiceFlags {
    #[command(flatten)]
    pub database: DatabaseFlags,
    /// Folder for archived thumbnails.
    #[arg(long, env = "TUBEWATCH_BLOB_DIR")]
    pub blob_dir: Option<PathBuf>,
    /// `system` or an accelerated clock `VIRT0@WALL0xSPEED`.
    #[arg(long, env = "TUBEWATCH_CLOCK")]
    pub clock: Option<String>,
    /// One base URL for every YouTube/Google host (e.g. the simulator's).
    #[arg(long, env = "TUBEWATCH_YOUTUBE_BASE_URL")]
    pub youtube_base_url: Option<String>,
    /// YouTube Data API key.
    #[arg(long, env = "TUBEWATCH_YOUTUBE_API_KEY", hide_env_values = true)]
    pub youtube_api_key: Option<String>,
}

impl SettingsFlags for ServiceFlags {
    fn apply(&self, args: &mut SettingsArgs) {
        self.database.apply(args);
        set(&mut args.blob_dir, &self.blob_dir);
        set(&mut args.clock, &self.clock);
        set(&mut args.youtube_base_url, &self.youtube_base_url);
        set(&mut args.youtube_api_key, &self.youtube_api_key);
    }
}

/// Where the web edge listens.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Settings (also in the --config file and TUBEWATCH_* variables)")]
pub struct ListenFlag {
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, env = "TUBEWATCH_LISTEN")]
    pub listen: Option<String>,
}

impl SettingsFlags for ListenFlag {
    fn apply(&self, args: &mut SettingsArgs) {
        set(&mut args.listen, &self.listen);
    }
}

/// Every settings flag: what `serve` and `config check` take.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Settings (also in the --config file and TUBEWATCH_* variables)")]
pub struct ServeFlags {
    #[command(flatten)]
    pub service: ServiceFlags,
    #[command(flatten)]
    pub listen: ListenFlag,
    /// Stripe secret API key (enables billing with the `[billing]` settings).
    #[arg(long, env = "TUBEWATCH_STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// Stripe webhook signing secret (`whsec_…`).
    #[arg(long, env = "TUBEWATCH_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<String>,
}

impl SettingsFlags for ServeFlags {
    fn apply(&self, args: &mut SettingsArgs) {
        self.service.apply(args);
        self.listen.apply(args);
        set(&mut args.stripe_secret_key, &self.stripe_secret_key);
        set(&mut args.stripe_webhook_secret, &self.stripe_webhook_secret);
    }
}

/// What `demo` takes: the database (it keeps a non-default one) and where to listen.
#[derive(Debug, Clone, Default, Args)]
pub struct DemoFlags {
    #[command(flatten)]
    pub database: DatabaseFlags,
    #[command(flatten)]
    pub listen: ListenFlag,
}

impl SettingsFlags for DemoFlags {
    fn apply(&self, args: &mut SettingsArgs) {
        self.database.apply(args);
        self.listen.apply(args);
    }
}

/// The example configuration: every setting, commented out, with its default (or, for one unset
/// by default, an example value) and a line of documentation. It is the list of settings the
/// environment can set, and `tubewatch config example` prints it; tests keep it true to
/// `Settings`.
pub const EXAMPLE_CONFIG: &str = include_str!("../tubewatch.example.toml");

/// Settings whose value is a table of the operator's own keys: set whole, never walked into.
const MAP_SETTINGS: &[&str] = &["abtests.token_keys"];

/// One setting as the environment sets it.
#[derive(Debug)]
pub struct EnvSetting {
    /// Its path in the TOML file, e.g. `worker.batch_size`.
    pub key: String,
    /// Its variable, e.g. `TUBEWATCH_WORKER_BATCH_SIZE`.
    pub var: String,
    /// The example's value, whose type says how the variable is read.
    example: toml::Value,
}

impl EnvSetting {
    /// The variable's text as a TOML value: as it is for text settings, a TOML value otherwise
    /// (text when it is not one, so `unlimited` reaches a plan limit), and a list of text may be
    /// written `a,b,c`.
    fn value(&self, text: &str) -> toml::Value {
        use toml::Value;
        match &self.example {
            Value::String(_) => Value::String(text.to_owned()),
            Value::Array(_) if !text.trim_start().starts_with('[') => Value::Array(
                text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.to_owned())).collect(),
            ),
            _ => toml::from_str::<toml::Table>(&format!("v = {text}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| Value::String(text.to_owned())),
        }
    }
}

/// The example with its commented-out keys and plan tables uncommented: every setting set.
fn uncommented_example() -> String {
    let ident = |s: &str, also: char| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == also)
    };
    let is_setting = |text: &str| match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(table) => ident(table, '.'),
        None => text.split_once(" = ").is_some_and(|(key, _)| ident(key, '_')),
    };
    EXAMPLE_CONFIG
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if is_setting(rest) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every setting with its environment variable, from the example (which a test holds to
/// `Settings`).
pub fn env_settings() -> &'static [EnvSetting] {
    static SETTINGS: OnceLock<Vec<EnvSetting>> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let table: toml::Table =
            toml::from_str(&uncommented_example()).expect("the example configuration parses (a test checks it)");
        let mut settings = Vec::new();
        collect_settings(&table, "", &mut settings);
        settings
    })
}

fn collect_settings(table: &toml::Table, prefix: &str, out: &mut Vec<EnvSetting>) {
    for (name, value) in table {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        match value {
            toml::Value::Table(inner) if !MAP_SETTINGS.contains(&key.as_str()) => collect_settings(inner, &key, out),
            _ => out.push(EnvSetting {
                var: format!("TUBEWATCH_{}", key.replace('.', "_").to_uppercase()),
                key,
                example: value.clone(),
            }),
        }
    }
}

/// Sets `key` (a dotted path) in `table`, making the tables on the way.
fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let slot = table.entry(head.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !slot.is_table() {
                *slot = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = slot {
                set_path(inner, rest, value);
            }
        }
    }
}

/// A setting that cannot be used, named so the user knows what to fix.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{setting}`: {message}")]
pub struct SettingsError {
    pub setting: &'static str,
    pub message: String,
}

/// A/B tests: the Google OAuth app users connect their YouTube accounts through, and the keys
/// that seal their tokens at rest. A/B tests are off until `google_client_id` is set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AbTestSettings {
    pub google_client_id: Option<String>,
    pub google_client_secret: Option<Secret>,
    /// Where Google sends users back: `https://HOST/oauth/google/callback`.
    pub redirect_url: Option<String>,
    /// Id of the key that seals new tokens; it must be one of `token_keys`.
    pub current_key_id: Option<String>,
    /// Token keys by id, each 32 random bytes as 64 hex digits. Keep a retired key until the
    /// tokens sealed with it have been resealed (each is, at its next refresh).
    pub token_keys: std::collections::BTreeMap<String, Secret>,
}

impl AbTestSettings {
    /// The keyring the configured keys make.
    pub fn keyring(&self) -> Result<tubewatch_worker::token_crypto::TokenKeyring, SettingsError> {
        let current = self.current_key_id.as_deref().ok_or_else(|| invalid("abtests.current_key_id", "is required"))?;
        let keys: Vec<(String, String)> =
            self.token_keys.iter().map(|(id, key)| (id.clone(), key.expose().to_owned())).collect();
        tubewatch_worker::token_crypto::TokenKeyring::from_hex(current, &keys)
            .map_err(|e| invalid("abtests.token_keys", e))
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let Some(client_id) = &self.google_client_id else { return Ok(()) };
        if client_id.trim().is_empty() {
            return Err(invalid("abtests.google_client_id", "must not be empty"));
        }
        let redirect = self.redirect_url.as_deref().ok_or_else(|| invalid("abtests.redirect_url", "is required"))?;
        let url = Url::parse(redirect).map_err(|e| invalid("abtests.redirect_url", format!("{redirect:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid("abtests.redirect_url", format!("{redirect:?} must be an http(s) URL with a host")));
        }
        self.keyring().map(|_| ())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod abtest_settings_tests {
    use super::*;

    #[test]
    fn webhooks_need_valid_hosts_and_the_token_keys() {
        let mut s = Settings::default();
        assert!(s.webhooks().unwrap().is_none(), "off by default");
        s.webhooks.allowed_hosts = vec!["hooks.example.com".into()];
        assert_eq!(s.validate().unwrap_err().setting, "webhooks.allowed_hosts", "no keys to seal secrets");
        s.abtests.current_key_id = Some("k".into());
        s.abtests.token_keys.insert("k".into(), Secret::new("cd".repeat(32)));
        assert_eq!(s.webhooks().unwrap().unwrap().allowed_hosts(), ["hooks.example.com"]);
        s.webhooks.allowed_hosts.push("https://x.example.com/path".into());
        assert_eq!(s.validate().unwrap_err().setting, "webhooks.allowed_hosts");
        s.webhooks.allowed_hosts.pop();
        s.webhooks.timeout_seconds = 0;
        assert_eq!(s.validate().unwrap_err().setting, "webhooks.timeout_seconds");
    }

    #[test]
    fn abtests_need_a_redirect_url_and_a_current_key_and_keep_secrets_out_of_debug() {
        let key = "ab".repeat(32);
        let mut s = Settings::default();
        assert!(s.validate().is_ok(), "off by default");
        s.abtests.google_client_id = Some("client.apps.googleusercontent.com".into());
        s.abtests.google_client_secret = Some(Secret::new("very-secret"));
        assert_eq!(s.validate().unwrap_err().setting, "abtests.redirect_url");
        s.abtests.redirect_url = Some("https://tubewatch.example/oauth/google/callback".into());
        assert_eq!(s.validate().unwrap_err().setting, "abtests.current_key_id");
        s.abtests.current_key_id = Some("2026".into());
        s.abtests.token_keys.insert("2026".into(), Secret::new("not hex"));
        assert_eq!(s.validate().unwrap_err().setting, "abtests.token_keys");
        s.abtests.token_keys.insert("2026".into(), Secret::new(key.clone()));
        s.validate().unwrap();
        assert_eq!(s.abtests.keyring().unwrap().current_key_id(), "2026");
        let shown = format!("{s:?}");
        assert!(!shown.contains(&key) && !shown.contains("very-secret"));
    }
}

fn invalid(setting: &'static str, message: impl fmt::Display) -> SettingsError {
    SettingsError { setting, message: message.to_string() }
}

impl Settings {
    /// Builds the settings from every layer (the process's environment) and validates them.
    pub fn load(args: &SettingsArgs) -> Result<Self, SettingsError> {
        Self::load_with_env(args, |var| std::env::var(var).ok())
    }

    /// `worker.runtime_threads` from every layer, read before the runtime is built (validating
    /// the settings may need a runtime); `None` also when the layers do not load, which
    /// [`Settings::load`] then reports.
    pub fn runtime_threads(args: &SettingsArgs) -> Option<usize> {
        Self::layered(args, |var| std::env::var(var).ok()).ok()?.worker.runtime_threads.filter(|&n| n > 0)
    }

    /// Builds the settings from every layer, the environment read through `env`, and validates them.
    pub fn load_with_env(args: &SettingsArgs, env: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let settings = Self::layered(args, env)?;
        settings.validate()?;
        Ok(settings)
    }

    fn layered(args: &SettingsArgs, env: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut settings = match &args.config {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        settings = settings.with_env(env)?;
        if let Some(v) = &args.database_url {
            settings.database_url = v.clone();
        }
        if let Some(v) = &args.listen {
            settings.listen = v.parse().map_err(|e| invalid("listen", format!("{v:?} is not an address: {e}")))?;
        }
        if let Some(v) = &args.blob_dir {
            settings.blob_dir = v.clone();
        }
        if let Some(v) = &args.youtube_base_url {
            settings.youtube.base_url = Some(v.clone());
        }
        if let Some(v) = &args.youtube_api_key {
            settings.youtube.api_key = Some(Secret::new(v.clone()));
        }
        if let Some(v) = &args.clock {
            settings.clock = v.clone();
        }
        if let Some(v) = &args.stripe_secret_key {
            settings.billing.stripe_secret_key = Some(Secret::new(v.clone()));
        }
        if let Some(v) = &args.stripe_webhook_secret {
            settings.billing.stripe_webhook_secret = Some(Secret::new(v.clone()));
        }
        Ok(settings)
    }

    /// These settings with the `TUBEWATCH_*` variables `env` gives applied.
    fn with_env(self, env: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let given: Vec<(&'static EnvSetting, String)> =
            env_settings().iter().filter_map(|s| env(&s.var).map(|text| (s, text))).collect();
        if given.is_empty() {
            return Ok(self);
        }
        let mut table =
            toml::Table::try_from(&self).map_err(|e| invalid("config", format!("settings as TOML: {e}")))?;
        let mut settings = self;
        for (setting, text) in given {
            set_path(&mut table, &setting.key, setting.value(&text));
            // Read after each variable, so that an error names the variable that caused it.
            settings = table
                .clone()
                .try_into()
                .map_err(|e| invalid(setting.key.as_str(), format!("{}: {}", setting.var, e.message())))?;
        }
        Ok(settings)
    }

    fn from_file(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|e| invalid("config", format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| invalid("config", format!("{}: {e}", path.display())))
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        let db = &self.database_url;
        let scheme_ok = db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://");
        if !scheme_ok {
            return Err(invalid("database_url", format!("{db:?} must start with sqlite:// or postgres://")));
        }
        if self.database_max_connections == 0 {
            return Err(invalid("database_max_connections", "must be at least 1"));
        }
        if let Some(base) = &self.youtube.base_url {
            let url = Url::parse(base).map_err(|e| invalid("youtube.base_url", format!("{base:?}: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid("youtube.base_url", format!("{base:?} must be an http(s) URL with a host")));
            }
        }
        if self.youtube.concurrency_per_host == 0 || self.youtube.timeout_seconds == 0 {
            return Err(invalid("youtube", "concurrency_per_host and timeout_seconds must be at least 1"));
        }
        self.clock()?;
        self.schedule_policy()?;
        if self.tracking.channel_check_offset_minutes >= 60 {
            return Err(invalid("tracking.channel_check_offset_minutes", "must be under 60"));
        }
        let w = &self.worker;
        if w.batch_size == 0 || w.concurrency == 0 || w.lease_seconds == 0 || w.max_attempts == 0 {
            return Err(invalid(
                "worker",
                "batch_size, concurrency, lease_seconds and max_attempts must be at least 1",
            ));
        }
        if w.runtime_threads == Some(0) {
            return Err(invalid("worker.runtime_threads", "must be at least 1 (or unset: one per CPU core)"));
        }
        self.web_config()?;
        self.abtests.validate()?;
        self.outliers_weekday()?;
        let o = &self.outliers;
        if o.hour > 23 {
            return Err(invalid("outliers.hour", "must be 0–23"));
        }
        if !(o.margin.is_finite() && o.margin >= 0.0) {
            return Err(invalid("outliers.margin", "must be a number ≥ 0"));
        }
        if !(o.min_lift.is_finite() && o.min_lift > 0.0) {
            return Err(invalid("outliers.min_lift", "must be a number > 0"));
        }
        if !(0.5..1.0).contains(&o.change_confidence) {
            return Err(invalid("outliers.change_confidence", "must be at least 0.5 and below 1"));
        }
        if o.judge_at_hours == 0 || o.judge_at_hours > 24 * 50 {
            return Err(invalid("outliers.judge_at_hours", "must be 1–1200"));
        }
        self.mail_config()?;
        self.webhooks()?;
        self.s3_config()?;
        Ok(())
    }

    /// The S3 bucket for the blobs, when `s3.bucket` is set (`None`: the local `blob_dir`).
    pub fn s3_config(&self) -> Result<Option<tubewatch_worker::S3Config>, SettingsError> {
        let s = &self.s3;
        let Some(bucket) = &s.bucket else {
            let stray = [
                ("s3.region", s.region.is_some()),
                ("s3.endpoint", s.endpoint.is_some()),
                ("s3.access_key_id", s.access_key_id.is_some()),
                ("s3.secret_access_key", s.secret_access_key.is_some()),
            ];
            if let Some((name, _)) = stray.iter().find(|(_, set)| *set) {
                return Err(invalid(
                    "s3.bucket",
                    format!("{name} is set but s3.bucket is not: set the bucket, or the blobs stay in blob_dir"),
                ));
            }
            return Ok(None);
        };
        let config = tubewatch_worker::S3Config {
            bucket: bucket.clone(),
            region: s.region.clone(),
            endpoint: s.endpoint.clone(),
            virtual_hosted_style: s.virtual_hosted_style,
            allow_http: s.allow_http,
            access_key_id: s.access_key_id.clone(),
            secret_access_key: s.secret_access_key.as_ref().map(|k| k.expose().to_owned()),
        };
        config.validate().map_err(|e| {
            let setting = match e.field {
                "bucket" => "s3.bucket",
                "region" => "s3.region",
                "endpoint" => "s3.endpoint",
                "allow_http" => "s3.allow_http",
                "access_key_id" => "s3.access_key_id",
                "secret_access_key" => "s3.secret_access_key",
                _ => "s3",
            };
            invalid(setting, e.message)
        })?;
        Ok(Some(config))
    }

    /// Where the blobs go and, for S3, where its credentials come from, with any warning about
    /// credentials the environment suggests but tubewatch will not read (for `config check`).
    pub fn blob_store_summary(&self, env: impl Fn(&str) -> Option<String>) -> (String, Option<String>) {
        match self.s3_config() {
            Ok(Some(config)) => {
                let blobs = tubewatch_worker::Blobs::s3_with_env(&config, &env)
                    .map_or_else(|e| format!("S3 bucket {} ({e:#})", config.bucket), |b| b.location().to_owned());
                (
                    format!("{blobs}; credentials from {}", config.credential_source(&env)),
                    config.credential_warning(&env),
                )
            }
            _ => (format!("blob folder {} (every web and worker process must see it)", self.blob_dir.display()), None),
        }
    }

    /// The outgoing webhooks, when the operator allows any host.
    pub fn webhooks(&self) -> Result<Option<tubewatch_worker::Webhooks>, SettingsError> {
        let w = &self.webhooks;
        if w.allowed_hosts.is_empty() {
            return Ok(None);
        }
        if !(1..=120).contains(&w.timeout_seconds) {
            return Err(invalid("webhooks.timeout_seconds", "must be 1–120"));
        }
        let timeout = std::time::Duration::from_secs(w.timeout_seconds);
        let keyring = self.abtests.keyring().map_err(|e| {
            invalid("webhooks.allowed_hosts", format!("webhook secrets are sealed with the [abtests] token keys: {e}"))
        })?;
        tubewatch_worker::Webhooks::new(&w.allowed_hosts, keyring, timeout)
            .map(Some)
            .map_err(|e| invalid("webhooks.allowed_hosts", e))
    }

    fn outliers_weekday(&self) -> Result<chrono::Weekday, SettingsError> {
        let day = &self.outliers.weekday;
        day.parse::<chrono::Weekday>().map_err(|_| invalid("outliers.weekday", format!("{day:?} is not a weekday")))
    }

    /// The weekly outlier runs' settings, as the pipeline takes them.
    pub fn outliers_config(&self) -> tubewatch_worker::OutliersConfig {
        let o = &self.outliers;
        let mut c = tubewatch_worker::OutliersConfig::default();
        c.weekday = self.outliers_weekday().unwrap_or(c.weekday);
        c.hour = o.hour.min(23);
        c.digest_delay = chrono::Duration::hours(i64::from(o.digest_delay_hours));
        c.judge_at_hours = i64::from(o.judge_at_hours);
        c.channel.margin = o.margin;
        c.change.min_lift = o.min_lift;
        c.change.confidence = o.change_confidence;
        c.public_url = self.mail.public_url.clone();
        c
    }

    /// Where mail goes: SMTP when a server is set, otherwise the outbox folder.
    pub fn mail_config(&self) -> Result<tubewatch_worker::MailConfig, SettingsError> {
        use tubewatch_worker::{SmtpConfig, SmtpServer, SmtpTls};
        let m = &self.mail;
        let server = match (&m.smtp_url, &m.smtp_host) {
            (Some(_), Some(_)) => return Err(invalid("mail", "set smtp_url or smtp_host, not both")),
            (Some(url), None) => {
                let parsed = Url::parse(url.expose()).map_err(|e| invalid("mail.smtp_url", e))?;
                if !matches!(parsed.scheme(), "smtp" | "smtps") || parsed.host_str().is_none() {
                    return Err(invalid("mail.smtp_url", "must be smtp://HOST… or smtps://HOST…"));
                }
                Some(SmtpServer::Url(url.expose().to_owned()))
            }
            (None, Some(host)) => {
                let tls = match m.smtp_tls.as_str() {
                    "none" => SmtpTls::None,
                    "starttls" => SmtpTls::Starttls,
                    "implicit" => SmtpTls::Implicit,
                    other => return Err(invalid("mail.smtp_tls", format!("{other:?}: none, starttls or implicit"))),
                };
                if host.is_empty() || m.smtp_port == 0 {
                    return Err(invalid("mail.smtp_host", "host and port must be set"));
                }
                Some(SmtpServer::Host { host: host.clone(), port: m.smtp_port, tls })
            }
            (None, None) => None,
        };
        let smtp = server.map(|server| SmtpConfig {
            server,
            username: m.smtp_username.clone(),
            password: m.smtp_password.as_ref().map(|p| p.expose().to_owned()),
        });
        let config = tubewatch_worker::MailConfig { from: m.from.clone(), smtp, outbox_dir: m.outbox_dir.clone() };
        tubewatch_worker::Mailer::new(&config).map_err(|e| invalid("mail.from", format!("{e:#}")))?;
        let public = Url::parse(&m.public_url).map_err(|e| invalid("mail.public_url", e))?;
        if !matches!(public.scheme(), "http" | "https") {
            return Err(invalid("mail.public_url", "must be an http(s) URL"));
        }
        Ok(config)
    }

    pub fn clock(&self) -> Result<Arc<dyn Clock>, SettingsError> {
        match self.clock.trim() {
            "system" => Ok(Arc::new(SystemClock)),
            other => Ok(Arc::new(AcceleratedClock::parse(other).map_err(|e| invalid("clock", e))?)),
        }
    }

    pub fn schedule_policy(&self) -> Result<SchedulePolicy, SettingsError> {
        let t = &self.tracking;
        let resolution =
            Resolution::minutes(t.resolution_minutes).map_err(|e| invalid("tracking.resolution_minutes", e))?;
        SchedulePolicy::new(resolution, t.fine_days, t.track_days).map_err(|e| invalid("tracking", e))
    }
}

/// Accounts, sessions, log-in throttling and plans (`[accounts]`, `[accounts.plans.free]`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsSettings {
    /// Mark cookies `Secure` (with the `__Host-` prefix) and send HSTS. Unset: on exactly when
    /// `mail.public_url`, the address users reach the service at, is `https://`.
    pub cookie_secure: Option<bool>,
    pub session_days: u32,
    pub login_max_failures_per_account: u32,
    pub login_max_failures_per_ip: u32,
    pub login_window_minutes: u32,
    pub signups_per_ip: u32,
    /// A new account must follow a link mailed to its address before it can log in. Unset: on
    /// exactly when mail leaves the machine (`mail.smtp_url` or `mail.smtp_host` is set); with
    /// mail going only to the outbox folder nobody could receive the link, so it is off (sign-ups
    /// log in at once) and `serve` says so at start.
    pub verify_email: Option<bool>,
    /// Largest request body accepted, in KiB.
    pub max_body_kib: u32,
    /// Limits per plan; a limit is a number or "unlimited". Admins are unlimited.
    pub plans: tubewatch_web::config::Plans,
}

/// Stripe billing (`[billing]`). Off unless `stripe_secret_key` is set; then the webhook secret,
/// the premium price and the public URL are required too. Without it, plans are changed with
/// `tubewatch user plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingSettings {
    pub stripe_secret_key: Option<Secret>,
    pub stripe_webhook_secret: Option<Secret>,
    /// The premium plan's recurring price (`price_…`).
    pub stripe_premium_price_id: Option<String>,
    pub stripe_base_url: String,
    /// The service's public base URL, where Checkout returns users.
    pub public_url: Option<String>,
    pub webhook_tolerance_seconds: u32,
}

impl Default for AccountsSettings {
    fn default() -> Self {
        let web = tubewatch_web::config::AccountsConfig::default();
        Self {
            cookie_secure: None,
            verify_email: None,
            session_days: web.session_days,
            login_max_failures_per_account: web.login_max_failures_per_account,
            login_max_failures_per_ip: web.login_max_failures_per_ip,
            login_window_minutes: web.login_window_minutes,
            signups_per_ip: web.signups_per_ip,
            max_body_kib: u32::try_from(web.max_body_bytes / 1024).unwrap_or(64),
            plans: web.plans,
        }
    }
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            stripe_premium_price_id: None,
            stripe_base_url: "https://api.stripe.com".into(),
            public_url: None,
            webhook_tolerance_seconds: 300,
        }
    }
}

impl Settings {
    /// Whether mail goes out through an SMTP server (otherwise only to the outbox folder).
    pub fn mail_leaves_the_machine(&self) -> bool {
        self.mail.smtp_url.is_some() || self.mail.smtp_host.is_some()
    }

    /// What the operator should know about sign-ups at start: `None` when email verification
    /// is on and its mail goes out by SMTP.
    pub fn signup_warning(&self) -> Option<&'static str> {
        match (
            self.accounts.verify_email.unwrap_or_else(|| self.mail_leaves_the_machine()),
            self.mail_leaves_the_machine(),
        ) {
            (true, true) => None,
            (true, false) => Some(
                "accounts.verify_email is on but no SMTP server is set: verification links only reach the \
                 outbox folder, so new accounts cannot log in until someone hands them their link",
            ),
            (false, _) => Some(
                "email verification is off (accounts.verify_email, on by default only with SMTP): new accounts \
                 log in without confirming their address",
            ),
        }
    }

    /// What the web edge needs: account policy, plans and (when configured) Stripe.
    pub fn web_config(&self) -> Result<tubewatch_web::WebConfig, SettingsError> {
        let a = &self.accounts;
        if a.session_days == 0 || a.login_window_minutes == 0 || a.max_body_kib == 0 {
            return Err(invalid("accounts", "session_days, login_window_minutes and max_body_kib must be at least 1"));
        }
        if a.login_max_failures_per_account == 0 || a.login_max_failures_per_ip == 0 || a.signups_per_ip == 0 {
            return Err(invalid("accounts", "login and sign-up limits must be at least 1"));
        }
        let accounts = tubewatch_web::config::AccountsConfig {
            plans: a.plans.clone(),
            cookie_secure: a.cookie_secure.unwrap_or_else(|| self.mail.public_url.starts_with("https://")),
            session_days: a.session_days,
            login_max_failures_per_account: a.login_max_failures_per_account,
            login_max_failures_per_ip: a.login_max_failures_per_ip,
            login_window_minutes: a.login_window_minutes,
            signups_per_ip: a.signups_per_ip,
            verify_email: a.verify_email.unwrap_or_else(|| self.mail_leaves_the_machine()),
            max_body_bytes: a.max_body_kib as usize * 1024,
        };
        let h = &self.http;
        if h.request_timeout_seconds == 0 || h.max_concurrent_requests == 0 {
            return Err(invalid("http", "request_timeout_seconds and max_concurrent_requests must be at least 1"));
        }
        if h.metrics_token.as_ref().is_some_and(|t| t.expose().len() < 16) {
            return Err(invalid("http.metrics_token", "use at least 16 characters"));
        }
        let public = Url::parse(&self.mail.public_url).map_err(|e| invalid("mail.public_url", e))?;
        let http = tubewatch_web::config::HttpConfig {
            request_timeout: std::time::Duration::from_secs(h.request_timeout_seconds),
            max_concurrent_requests: h.max_concurrent_requests,
            trusted_proxies: h.trusted_proxies.clone(),
            public_origin: Some(public.origin().ascii_serialization()),
            metrics_token: h.metrics_token.as_ref().map(|t| t.expose().to_owned()),
        };
        let b = &self.billing;
        let Some(key) = &b.stripe_secret_key else {
            return Ok(tubewatch_web::WebConfig { accounts, http, stripe: None });
        };
        let missing = |name: &str| invalid("billing", format!("{name} is required when stripe_secret_key is set"));
        let webhook_secret = b.stripe_webhook_secret.as_ref().ok_or_else(|| missing("stripe_webhook_secret"))?;
        let price = b.stripe_premium_price_id.clone().ok_or_else(|| missing("stripe_premium_price_id"))?;
        let public_url = b.public_url.clone().ok_or_else(|| missing("public_url"))?;
        for (name, value) in [("stripe_base_url", &b.stripe_base_url), ("public_url", &public_url)] {
            let url = Url::parse(value).map_err(|e| invalid("billing", format!("{name} {value:?}: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid("billing", format!("{name} {value:?} must be an http(s) URL")));
            }
        }
        let stripe = tubewatch_web::config::StripeConfig {
            base_url: b.stripe_base_url.clone(),
            secret_key: key.expose().to_owned(),
            webhook_secret: webhook_secret.expose().to_owned(),
            premium_price_id: price,
            public_url,
            tolerance_seconds: i64::from(b.webhook_tolerance_seconds.max(1)),
        };
        Ok(tubewatch_web::WebConfig { accounts, http, stripe: Some(stripe) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: SettingsArgs) -> Result<Settings, String> {
        Settings::load_with_env(&args, |_| None).map_err(|e| e.to_string())
    }

    fn example_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tubewatch.example.toml")
    }

    /// Every setting's path with its value, tables walked into except the map settings.
    fn leaves(table: &toml::Table) -> std::collections::BTreeMap<String, toml::Value> {
        let mut settings = Vec::new();
        collect_settings(table, "", &mut settings);
        settings.into_iter().map(|s| (s.key, s.example)).collect()
    }

    #[test]
    fn the_example_config_as_shipped_is_the_defaults() {
        let loaded = load(SettingsArgs { config: Some(example_path()), ..Default::default() }).unwrap();
        assert_eq!(loaded, Settings::default());
    }

    #[test]
    fn the_example_config_names_every_setting_with_its_default() {
        let text = uncommented_example();
        // Unknown keys are rejected, so every key the example names is a setting.
        let full: Settings = toml::from_str(&text).unwrap();
        // Every optional setting is shown (with an example value)…
        let shown = format!("{full:?}");
        assert!(!shown.contains("None"), "an optional setting is missing from the example: {shown}");
        // …and every other one with its default.
        let example = leaves(&toml::from_str(&text).unwrap());
        let defaults = leaves(&toml::Table::try_from(Settings::default()).unwrap());
        for (key, default) in &defaults {
            assert_eq!(example.get(key), Some(default), "{key}: the example must show the default");
        }
        assert_eq!(env_settings().len(), example.len());
    }

    #[test]
    fn every_setting_has_its_own_environment_variable() {
        let vars: std::collections::BTreeSet<&str> = env_settings().iter().map(|s| s.var.as_str()).collect();
        assert_eq!(vars.len(), env_settings().len(), "two settings share a variable");
        for taken in ["TUBEWATCH_CONFIG", "TUBEWATCH_LOG_FORMAT"] {
            assert!(!vars.contains(taken), "{taken} is a flag's variable, not a setting's");
        }
        for (key, var) in [
            ("database_url", "TUBEWATCH_DATABASE_URL"),
            ("youtube.base_url", "TUBEWATCH_YOUTUBE_BASE_URL"),
            ("accounts.plans.free.channels", "TUBEWATCH_ACCOUNTS_PLANS_FREE_CHANNELS"),
            ("abtests.token_keys", "TUBEWATCH_ABTESTS_TOKEN_KEYS"),
        ] {
            assert!(env_settings().iter().any(|s| s.key == key && s.var == var), "{key}");
        }
        // The environment alone, each variable set to the example's value, sets what the
        // uncommented example sets: every setting (optional ones included) is read from its variable.
        let env: std::collections::HashMap<String, String> = env_settings()
            .iter()
            .map(|s| {
                let text = match &s.example {
                    toml::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (s.var.clone(), text)
            })
            .collect();
        let from_env = Settings::layered(&SettingsArgs::default(), |var| env.get(var).cloned()).unwrap();
        let from_file: Settings = toml::from_str(&uncommented_example()).unwrap();
        assert_eq!(from_env, from_file);
    }

    #[test]
    fn the_environment_sits_between_the_file_and_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tubewatch.toml");
        std::fs::write(&file, "[worker]\nbatch_size = 7\nconcurrency = 3\n[mail]\nsmtp_port = 25\n").unwrap();
        let env = |var: &str| {
            match var {
                "TUBEWATCH_WORKER_BATCH_SIZE" => Some("9"),
                "TUBEWATCH_DATABASE_URL" => Some("postgres://env@db/tw"),
                "TUBEWATCH_ACCOUNTS_PLANS_FREE_CHANNELS" => Some("unlimited"),
                "TUBEWATCH_WEBHOOKS_ALLOWED_HOSTS" => Some("hooks.example.com, n8n.internal:5678"),
                "TUBEWATCH_HTTP_TRUSTED_PROXIES" => Some(r#"["10.0.0.0/8"]"#),
                "TUBEWATCH_ABTESTS_CURRENT_KEY_ID" => Some("2026"),
                "TUBEWATCH_ABTESTS_TOKEN_KEYS" => {
                    Some(r#"{ 2026 = "abababababababababababababababababababababababababababababababab" }"#)
                }
                "TUBEWATCH_MAIL_OUTBOX_DIR" => Some("/var/lib/tubewatch/outbox"),
                _ => None,
            }
            .map(str::to_owned)
        };
        let args =
            SettingsArgs { config: Some(file), database_url: Some("sqlite://flag.db".into()), ..Default::default() };
        let s = Settings::load_with_env(&args, env).unwrap();
        assert_eq!(
            (s.worker.batch_size, s.worker.concurrency),
            (9, 3),
            "the variable beats the file, the file the default"
        );
        assert_eq!(s.mail.smtp_port, 25);
        assert_eq!(s.database_url, "sqlite://flag.db", "the flag beats the variable");
        assert_eq!(s.accounts.plans.free.channels, tubewatch_web::config::Limit::Unlimited);
        assert!(!s.accounts.plans.free.ab_tests, "the rest of the plan is kept");
        assert_eq!(s.webhooks.allowed_hosts, ["hooks.example.com", "n8n.internal:5678"]);
        assert_eq!(s.http.trusted_proxies.len(), 1);
        assert_eq!(s.abtests.current_key_id.as_deref(), Some("2026"), "text, not the number 2026");
        assert_eq!(s.mail.outbox_dir, Path::new("/var/lib/tubewatch/outbox"));

        for (var, text, setting) in [
            ("TUBEWATCH_WORKER_BATCH_SIZE", "many", "worker.batch_size"),
            ("TUBEWATCH_ACCOUNTS_COOKIE_SECURE", "yes", "accounts.cookie_secure"),
            ("TUBEWATCH_LISTEN", "nowhere", "listen"),
        ] {
            let err = Settings::load_with_env(&SettingsArgs::default(), |v| (v == var).then(|| text.to_owned()))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("invalid setting `{setting}`: {var}")), "{err}");
        }
    }

    #[test]
    fn the_runtime_threads_come_from_the_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tubewatch.toml");
        std::fs::write(&file, "[worker]\nruntime_threads = 2\n").unwrap();
        let args = SettingsArgs { config: Some(file), ..Default::default() };
        assert_eq!(load(SettingsArgs::default()).unwrap().worker.runtime_threads, None, "tokio's default");
        assert_eq!(load(args.clone()).unwrap().worker.runtime_threads, Some(2));
        let env = |var: &str| (var == "TUBEWATCH_WORKER_RUNTIME_THREADS").then(|| "1".to_owned());
        assert_eq!(Settings::load_with_env(&args, env).unwrap().worker.runtime_threads, Some(1));
        // Read before the runtime is built, from the same layers.
        if std::env::var_os("TUBEWATCH_WORKER_RUNTIME_THREADS").is_none() {
            assert_eq!(Settings::runtime_threads(&args), Some(2));
        }
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let s = load(SettingsArgs::default()).unwrap();
        assert_eq!(s.database_url, "sqlite://./tubewatch-data/tubewatch.db");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.schedule_policy().unwrap(), SchedulePolicy::default());
        let web = s.web_config().unwrap();
        assert_eq!(web.accounts.plans.free.channels, tubewatch_web::config::Limit::AtMost(3));
        assert!(web.stripe.is_none());
    }

    #[test]
    fn cookies_are_secure_when_the_public_url_is_https() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tubewatch.toml");
        let web = |text: &str| {
            std::fs::write(&file, text).unwrap();
            load(SettingsArgs { config: Some(file.clone()), ..Default::default() }).map(|s| s.web_config().unwrap())
        };
        assert!(!web("").unwrap().accounts.cookie_secure, "the default public URL is http://127.0.0.1");
        let https = web("[mail]\npublic_url = \"https://tw.example\"\n").unwrap();
        assert!(https.accounts.cookie_secure);
        let forced = web("[mail]\npublic_url = \"https://tw.example\"\n[accounts]\ncookie_secure = false\n").unwrap();
        assert!(!forced.accounts.cookie_secure, "an explicit setting wins");

        assert_eq!(https.http.public_origin.as_deref(), Some("https://tw.example"));
        let proxies = web("[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n").unwrap();
        assert_eq!(proxies.http.trusted_proxies.len(), 2);
        let bad = web("[http]\ntrusted_proxies = [\"10.0.0.0/40\"]\n").unwrap_err();
        assert!(bad.contains("prefix"), "{bad}");
    }

    // A runtime: validating SMTP settings builds the SMTP transport, whose pool needs one.
    #[tokio::test]
    async fn sign_ups_confirm_their_email_when_mail_goes_out_by_smtp() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tubewatch.toml");
        let settings = |text: &str| {
            std::fs::write(&file, text).unwrap();
            load(SettingsArgs { config: Some(file.clone()), ..Default::default() })
        };
        let verify = |text: &str| settings(text).unwrap().web_config().unwrap().accounts.verify_email;
        let outbox = settings("").unwrap();
        assert!(!outbox.web_config().unwrap().accounts.verify_email, "no SMTP: nobody could receive the link");
        assert!(outbox.signup_warning().unwrap().contains("verification is off"));
        let smtp = settings("[mail]\nsmtp_url = \"smtp://127.0.0.1:25\"\n").unwrap();
        assert!(smtp.web_config().unwrap().accounts.verify_email, "with SMTP sign-ups confirm their email");
        assert_eq!(smtp.signup_warning(), None);
        assert!(
            !verify("[mail]\nsmtp_url = \"smtp://127.0.0.1:25\"\n[accounts]\nverify_email = false\n"),
            "explicit wins"
        );
        let forced = settings("[accounts]\nverify_email = true\n").unwrap();
        assert!(forced.web_config().unwrap().accounts.verify_email);
        assert!(forced.signup_warning().unwrap().contains("outbox folder"));
        let bad = settings("[accounts]\nverify_email = \"sometimes\"\n").unwrap_err();
        assert!(bad.contains("verify_email"), "{bad}");
    }

    #[test]
    fn plans_and_stripe_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tubewatch.toml");
        std::fs::write(
            &file,
            "[accounts]\ncookie_secure = true\n[accounts.plans.free]\nchannels = 1\nvideos_per_month = \"unlimited\"\n\
             ab_tests = false\n[billing]\nstripe_secret_key = \"sk_test_9\"\nstripe_webhook_secret = \"whsec_9\"\n\
             stripe_premium_price_id = \"price_9\"\npublic_url = \"https://tw.example\"\n",
        )
        .unwrap();
        let s = load(SettingsArgs { config: Some(file), ..Default::default() }).unwrap();
        let web = s.web_config().unwrap();
        assert!(web.accounts.cookie_secure);
        assert_eq!(web.accounts.plans.free.videos_per_month.get(), None);
        assert_eq!(web.accounts.plans.premium, tubewatch_web::config::Plans::default().premium);
        let stripe = web.stripe.unwrap();
        assert_eq!((stripe.secret_key.as_str(), stripe.base_url.as_str()), ("sk_test_9", "https://api.stripe.com"));
        let debug = format!("{s:?}");
        assert!(!debug.contains("sk_test_9") && !debug.contains("whsec_9"), "{debug}");
    }

    #[test]
    fn an_s3_bucket_replaces_the_blob_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tubewatch.toml");
        std::fs::write(&file, "[s3]\nbucket = \"tw-blobs\"\nendpoint = \"http://minio:9000\"\nallow_http = true\n")
            .unwrap();
        let env = |var: &str| match var {
            "TUBEWATCH_S3_ACCESS_KEY_ID" => Some("tubewatch".to_owned()),
            "TUBEWATCH_S3_SECRET_ACCESS_KEY" => Some("minio-very-secret".to_owned()),
            _ => None,
        };
        let s = Settings::load_with_env(&SettingsArgs { config: Some(file), ..Default::default() }, env).unwrap();
        let s3 = s.s3_config().unwrap().unwrap();
        assert_eq!((s3.bucket.as_str(), s3.endpoint.as_deref()), ("tw-blobs", Some("http://minio:9000")));
        assert_eq!(s3.secret_access_key.as_deref(), Some("minio-very-secret"));
        let (summary, warning) = s.blob_store_summary(|_| None);
        assert!(
            summary.starts_with(
                "S3 bucket tw-blobs at http://minio:9000; credentials from the access key in the settings"
            ),
            "{summary}"
        );
        assert_eq!(warning, None);
        assert!(!format!("{s:?}").contains("minio-very-secret"));
        // Without keys, the AWS environment's; a profile is named as unread.
        let mut keyless = s.clone();
        keyless.s3.access_key_id = None;
        keyless.s3.secret_access_key = None;
        let aws = |var: &str| (var == "AWS_PROFILE").then(|| "prod".to_owned());
        let (summary, warning) = keyless.blob_store_summary(aws);
        assert!(summary.contains("EC2 instance metadata"), "{summary}");
        assert!(warning.unwrap().contains("AWS_PROFILE=prod"));
        assert_eq!(Settings::default().s3_config().unwrap(), None, "the local folder by default");
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tubewatch.toml");
        std::fs::write(
            &file,
            "database_url = \"postgres://file@db/tw\"\nlisten = \"0.0.0.0:9000\"\n[youtube]\napi_key = \"k-123\"\n[worker]\nbatch_size = 7\n",
        )
        .unwrap();
        let from_file = load(SettingsArgs { config: Some(file.clone()), ..Default::default() }).unwrap();
        assert_eq!(from_file.database_url, "postgres://file@db/tw");
        assert_eq!(from_file.worker.batch_size, 7);
        assert_eq!(from_file.worker.concurrency, WorkerSettings::default().concurrency);
        let flag = load(SettingsArgs {
            config: Some(file),
            database_url: Some("sqlite://x.db".into()),
            youtube_base_url: Some("http://127.0.0.1:9999".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((flag.database_url.as_str(), flag.listen.port()), ("sqlite://x.db", 9000));
        assert_eq!(flag.youtube.base_url.as_deref(), Some("http://127.0.0.1:9999"));
        // Secrets never show in Debug output.
        let debug = format!("{flag:?}");
        assert!(!debug.contains("k-123") && debug.contains("[redacted]"), "{debug}");
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let cases = [
            (SettingsArgs { database_url: Some("mysql://x".into()), ..Default::default() }, "database_url"),
            (SettingsArgs { listen: Some("localhost".into()), ..Default::default() }, "listen"),
            (SettingsArgs { youtube_base_url: Some("ftp://x".into()), ..Default::default() }, "youtube.base_url"),
            (SettingsArgs { youtube_base_url: Some("not a url".into()), ..Default::default() }, "youtube.base_url"),
            (SettingsArgs { clock: Some("fast".into()), ..Default::default() }, "clock"),
            (SettingsArgs { config: Some("/nonexistent/tw.toml".into()), ..Default::default() }, "config"),
        ];
        for (args, setting) in cases {
            let err = load(args).unwrap_err();
            assert!(err.starts_with(&format!("invalid setting `{setting}`")), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        for (body, setting) in [
            ("unknown_key = 1", "config"),
            ("[tracking]\nresolution_minutes = 7", "tracking.resolution_minutes"),
            ("[tracking]\nfine_days = 90", "tracking"),
            ("[worker]\nlease_seconds = 0", "worker"),
            ("[worker]\nruntime_threads = 0", "worker.runtime_threads"),
            ("database_max_connections = 0", "database_max_connections"),
            ("[accounts]\nsession_days = 0", "accounts"),
            ("[accounts.plans.free]\nchannels = \"many\"", "config"),
            ("[billing]\nstripe_secret_key = \"sk_test_1\"", "billing"),
            ("[outliers]\nweekday = \"someday\"", "outliers.weekday"),
            ("[outliers]\nhour = 24", "outliers.hour"),
            ("[outliers]\nmargin = -1.0", "outliers.margin"),
            ("[outliers]\nchange_confidence = 1.0", "outliers.change_confidence"),
            ("[webhooks]\nallowed_hosts = [\"hooks.example.com\"]", "webhooks.allowed_hosts"),
            ("[mail]\nsmtp_url = \"http://mail\"", "mail.smtp_url"),
            ("[mail]\nsmtp_host = \"mail\"\nsmtp_tls = \"maybe\"", "mail.smtp_tls"),
            ("[mail]\nfrom = \"not an address\"", "mail.from"),
            ("[s3]\nbucket = \"tw-blobs\"", "s3.region"),
            ("[s3]\nendpoint = \"http://minio:9000\"", "s3.bucket"),
            ("[s3]\nbucket = \"TW\"\nregion = \"eu-west-1\"", "s3.bucket"),
            ("[s3]\nbucket = \"tw-blobs\"\nendpoint = \"http://minio:9000\"", "s3.allow_http"),
            ("[s3]\nbucket = \"tw-blobs\"\nendpoint = \"minio:9000\"", "s3.endpoint"),
            ("[s3]\nbucket = \"tw-blobs\"\nregion = \"eu-west-1\"\naccess_key_id = \"AKIA1\"", "s3.secret_access_key"),
        ] {
            let file = dir.path().join("bad.toml");
            std::fs::write(&file, body).unwrap();
            let err = load(SettingsArgs { config: Some(file), ..Default::default() }).unwrap_err();
            assert!(err.starts_with(&format!("invalid setting `{setting}`")), "{body}: {err}");
        }
    }
}
