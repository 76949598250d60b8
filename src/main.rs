//! The `tubewatch` command: wires settings, store, workers, the web edge and the simulator.
#![forbid(unsafe_code)]

mod settings;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use settings::{Settings, SettingsArgs};
use tubewatch_store::{Store, StoreOptions};

#[derive(Debug, Parser)]
#[command(
    name = "tubewatch",
    version,
    about = "Self-hostable YouTube intelligence: hourly views, thumbnail and title changes, outliers, A/B tests"
)]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "TUBEWATCH_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the database migrations and exit.
    Migrate,
    /// Run the service: web UI, JSON API, health and metrics.
    Serve,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(&cli.settings)?;
    match cli.command {
        Command::Migrate => {
            open_store(&settings).await?;
            println!("migrations applied to {}", redact_url(&settings.database_url));
        }
        Command::Serve => serve(&settings).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the store named by the settings and applies its migrations.
async fn open_store(settings: &Settings) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    let options = StoreOptions { max_connections: settings.database_max_connections };
    let store = tubewatch_store::connect(&settings.database_url, &options)
        .await
        .with_context(|| format!("opening database {}", redact_url(&settings.database_url)))?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let clock = settings.clock()?;
    let app = tubewatch_web::router(tubewatch_web::AppState { store, clock });
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "tubewatch serving");
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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

/// A database URL without its password, for messages.
fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_owned(),
    }
}
