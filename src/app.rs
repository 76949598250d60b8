//! Builds the service's parts from the settings: the store (backend chosen here, once, from the
//! URL), the clock, the YouTube client, the blob store, the pipeline and its metrics.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tubewatch_core::Clock;
use tubewatch_store::{Store, StoreOptions};
use tubewatch_worker::{Blobs, Metrics, Pipeline, PipelineConfig, RunnerConfig, Service, Tracker};
use tubewatch_youtube::{RetryPolicy, YoutubeClient, YoutubeConfig};

use crate::settings::Settings;

#[derive(Debug, Clone)]
pub struct App {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub youtube: YoutubeClient,
    pub blobs: Blobs,
    pub metrics: Arc<Metrics>,
}

impl App {
    /// The use cases the web pages and the API share, over this app's store and clock.
    pub fn service(&self) -> Service<'_> {
        Service::new(&*self.store, &*self.clock)
    }

    /// Opens everything and applies the migrations.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let store = open_store(settings).await?;
        let clock = settings.clock()?;
        let youtube = YoutubeClient::new(youtube_config(settings)?).context("building the YouTube client")?;
        let blobs = open_blobs(settings)?;
        Ok(Self { settings: settings.clone(), store, clock, youtube, blobs, metrics: Arc::new(Metrics::default()) })
    }

    /// At the start of `serve` and `worker`: a blob store that refuses the credentials or has no
    /// such bucket is a configuration error and stops the process; one that does not answer only
    /// gets a warning (it may be starting too; `/readyz` keeps reporting it).
    pub async fn check_blob_store(&self) -> anyhow::Result<()> {
        use tubewatch_worker::BlobError;
        match self.blobs.check_writable().await {
            Ok(()) => Ok(()),
            Err(e) => match e.downcast_ref::<BlobError>() {
                Some(BlobError::NoBucket { .. } | BlobError::Credentials { .. } | BlobError::Denied { .. }) => Err(e),
                _ => {
                    tracing::warn!(error = %format!("{e:#}"), "the blob store does not take a write yet: {e:#}");
                    Ok(())
                }
            },
        }
    }

    pub fn pipeline_config(&self) -> anyhow::Result<PipelineConfig> {
        let t = &self.settings.tracking;
        Ok(PipelineConfig {
            policy: self.settings.schedule_policy()?,
            channel_check_offset: chrono::Duration::minutes(i64::from(t.channel_check_offset_minutes)),
            max_attempts: self.settings.worker.max_attempts,
            abtests: self.abtest_services()?,
            outliers: self.settings.outliers_config(),
            mailer: tubewatch_worker::Mailer::new(&self.settings.mail_config()?)?,
            webhooks: self.settings.webhooks()?,
            ..PipelineConfig::default()
        })
    }

    /// The A/B test services when an OAuth app is configured (`None`: A/B tests are off).
    pub fn abtest_services(&self) -> anyhow::Result<Option<tubewatch_worker::abtest::AbTestServices>> {
        let s = &self.settings.abtests;
        let Some(client_id) = &s.google_client_id else { return Ok(None) };
        let oauth = self
            .youtube
            .oauth(&tubewatch_youtube::OAuthConfig {
                client_id: client_id.clone(),
                client_secret: s.google_client_secret.as_ref().map(|x| x.expose().to_owned()),
                redirect_uri: s.redirect_url.clone().unwrap_or_default(),
                scopes: tubewatch_youtube::AB_TEST_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            })
            .context("configuring the Google OAuth client")?;
        let mut services = tubewatch_worker::abtest::AbTestServices::new(oauth, s.keyring()?);
        // On an accelerated clock (the demo) a real second, the worker's reaction time on a busy
        // machine, is virtual hours: a swap that late still counts (its period starts at the swap,
        // so the analysis loses only those hours of the variant before).
        services.swap_tolerance = services.swap_tolerance.max(self.clock.virtual_span(StdDuration::from_secs(1)));
        Ok(Some(services))
    }

    pub fn pipeline(&self) -> anyhow::Result<Pipeline> {
        Ok(Pipeline {
            store: self.store.clone(),
            youtube: self.youtube.clone(),
            blobs: self.blobs.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
            writer: Default::default(),
            config: self.pipeline_config()?,
        })
    }

    pub fn tracker(&self) -> anyhow::Result<Tracker> {
        Ok(Tracker {
            store: self.store.clone(),
            youtube: self.youtube.clone(),
            clock: self.clock.clone(),
            config: self.pipeline_config()?,
        })
    }

    /// The web edge's state: store, clock, metrics, tracker, blobs, the web configuration and the
    /// A/B test engine (when `[abtests]` is configured).
    pub fn web_state(&self) -> anyhow::Result<tubewatch_web::AppState> {
        Ok(tubewatch_web::AppState {
            store: self.store.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
            tracker: self.tracker()?,
            blobs: self.blobs.clone(),
            config: Arc::new(self.settings.web_config()?),
            abtests: self.abtest_services()?.map(|services| {
                tubewatch_web::api::abtests::AbTestsWeb::new(tubewatch_worker::abtest::AbTests {
                    store: self.store.clone(),
                    youtube: self.youtube.clone(),
                    blobs: self.blobs.clone(),
                    clock: self.clock.clone(),
                    services,
                })
            }),
            webhooks: self.settings.webhooks()?,
            series_cache: Default::default(),
        })
    }

    pub fn runner_config(&self) -> RunnerConfig {
        let w = &self.settings.worker;
        let owner = format!("{}-{}", hostname(), std::process::id());
        RunnerConfig {
            batch_size: w.batch_size,
            concurrency: w.concurrency,
            lease: StdDuration::from_secs(u64::from(w.lease_seconds)),
            ..RunnerConfig::new(owner)
        }
    }

    /// Runs the claim loop until `shutdown`.
    pub async fn run_worker(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tubewatch_worker::run_worker(self.pipeline()?, self.runner_config(), shutdown).await;
        Ok(())
    }
}

/// The blob store the settings name: the `[s3]` bucket, or else the local `blob_dir`.
pub fn open_blobs(settings: &Settings) -> anyhow::Result<Blobs> {
    match settings.s3_config()? {
        Some(s3) => {
            if let Some(warning) = s3.credential_warning(|var| std::env::var(var).ok()) {
                tracing::warn!("{warning}");
            }
            Blobs::s3(&s3)
        }
        None => Blobs::local(&settings.blob_dir),
    }
}

/// Opens the store named by the settings and applies its migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let options = StoreOptions { max_connections: settings.database_max_connections };
    let store = tubewatch_store::connect(&settings.database_url, &options)
        .await
        .with_context(|| format!("opening database {}", redact_url(&settings.database_url)))?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

fn youtube_config(settings: &Settings) -> anyhow::Result<YoutubeConfig> {
    let y = &settings.youtube;
    let mut config = match &y.base_url {
        Some(base) => YoutubeConfig::single_base(base).with_context(|| format!("youtube base URL {base:?}"))?,
        None => YoutubeConfig::default(),
    };
    config.api_key = y.api_key.as_ref().map(|k| k.expose().to_owned());
    config.max_concurrent_per_host = y.concurrency_per_host;
    config.request_timeout = StdDuration::from_secs(y.timeout_seconds);
    if settings.clock.trim() != "system" {
        // On an accelerated clock a wall-clock back-off would make slots late; the queue retries
        // on the clock instead.
        config.retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    }
    Ok(config)
}

fn hostname() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "worker".into())
}

/// A database URL without its password, for messages.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_owned(),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// Serves the web edge with `state` on `listener` until `shutdown` completes (in-flight requests
/// finish). Connect info gives log-in throttling the client's address.
pub async fn serve_web(
    state: tubewatch_web::AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let web = tubewatch_web::router(state);
    axum::serve(listener, web.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
