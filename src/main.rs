//! The `tubewatch` command: wires settings, store, workers, the web edge and the simulator.
#![forbid(unsafe_code)]

mod app;
mod bench;
mod commands;
mod demo;
mod eval;
mod eval_abtest;
mod eval_outliers;
mod inspect;
mod settings;
mod sim_cmd;
mod user_cmd;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use settings::{Settings, SettingsArgs};
use tokio_util::sync::CancellationToken;

use crate::app::{App, redact_url, shutdown_signal};

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

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
enum Role {
    /// Web edge and workers in one process (the all-in-one set-up).
    #[default]
    All,
    /// Web edge only; run `tubewatch worker` processes beside it.
    Web,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the database migrations and exit.
    Migrate,
    /// Run the service: web edge (/healthz, /metrics) and, with --role all, the workers.
    Serve {
        #[arg(long, value_enum, default_value_t = Role::All)]
        role: Role,
    },
    /// Run a worker: claim due targets and check them, until Ctrl-C or SIGTERM.
    Worker,
    /// Start tracking a channel or a video.
    Track(commands::TrackArgs),
    /// Stop tracking a channel or a video (for one user with --user, else for everyone).
    Untrack(commands::TrackArgs),
    /// List what is tracked (for one user with --user).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// A video's views series with its thumbnail and title changes.
    Views(commands::ViewsArgs),
    /// The work queue in words: due, late, failing targets.
    Status,
    /// See tubewatch work: the simulator and the full service on an accelerated clock.
    Demo(demo::DemoArgs),
    /// Run the YouTube simulator as its own process.
    Sim(sim_cmd::SimArgs),
    /// Parse a feed, watch page, player response or thumbnail and say what it holds.
    Inspect(inspect::InspectArgs),
    /// Measure the pipeline against the simulator's ground truth.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Accounts: create users (`user add EMAIL --admin`), change plans (`user plan EMAIL premium`).
    #[command(subcommand)]
    User(user_cmd::UserCommand),
}

fn init_logging(format: LogFormat, command: &Command) {
    // Commands that print their own progress only log warnings unless RUST_LOG says otherwise.
    let default = match command {
        Command::Demo(_) | Command::Eval(_) | Command::Bench(_) => "warn",
        _ => "info,sqlx=warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.command);
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands that do not use the service's state need no valid settings.
    match cli.command {
        Command::Sim(args) => return sim_cmd::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Inspect(args) => return inspect::run(args).await,
        Command::Bench(bench::BenchCommand::Parse) => return bench::parse().map(|()| ExitCode::SUCCESS),
        _ => {}
    }
    let settings = Settings::load(&cli.settings)?;
    match cli.command {
        Command::Migrate => {
            app::open_store(&settings).await?;
            println!("migrations applied to {}", redact_url(&settings.database_url));
        }
        Command::Serve { role } => serve(&settings, role).await?,
        Command::Worker => {
            let app = App::open(&settings).await?;
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            app.run_worker(shutdown).await?;
        }
        Command::Track(args) => commands::track(&App::open(&settings).await?, args).await?,
        Command::Untrack(args) => commands::untrack(&App::open(&settings).await?, args).await?,
        Command::List { user } => commands::list(&App::open(&settings).await?, user).await?,
        Command::Views(args) => commands::views(&App::open(&settings).await?, args).await?,
        Command::Status => commands::status(&App::open(&settings).await?).await?,
        Command::Demo(args) => demo::run(args, settings).await?,
        Command::Eval(cmd) => return eval::run(cmd, settings).await,
        Command::Bench(cmd) => bench::run(cmd, settings).await?,
        Command::User(cmd) => user_cmd::run(cmd, &App::open(&settings).await?).await?,
        Command::Sim(_) | Command::Inspect(_) => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn stop_on_signal(token: CancellationToken) {
    shutdown_signal().await;
    token.cancel();
}

async fn serve(settings: &Settings, role: Role) -> anyhow::Result<()> {
    let app = App::open(settings).await?;
    let shutdown = CancellationToken::new();
    let worker = match role {
        Role::All => {
            let app = app.clone();
            let token = shutdown.clone();
            Some(tokio::spawn(async move { app.run_worker(token).await }))
        }
        Role::Web => None,
    };
    if let Some(warning) = settings.signup_warning() {
        tracing::warn!("{warning}");
    }
    let web = tubewatch_web::router(app.web_state()?);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "tubewatch serving on http://{}", listener.local_addr()?);
    let token = shutdown.clone();
    // Connect info gives log-in throttling the client's address.
    axum::serve(listener, web.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            token.cancel();
        })
        .await?;
    if let Some(worker) = worker {
        worker.await??;
    }
    Ok(())
}
