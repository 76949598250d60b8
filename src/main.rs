//! The `tubewatch` command: wires settings, store, workers, the web edge and the simulator.
#![forbid(unsafe_code)]

mod app;
mod bench;
mod bench_chart;
mod bench_scaleout;
mod bench_support;
mod commands;
mod demo;
mod eval;
mod eval_abtest;
mod eval_outliers;
mod inspect;
mod progress;
mod settings;
mod sim_cmd;
mod user_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use settings::{DatabaseFlags, DemoFlags, ServeFlags, ServiceFlags, Settings, SettingsArgs, SettingsFlags};
use tokio_util::sync::CancellationToken;

use crate::app::{App, redact_url, shutdown_signal};

/// mimalloc instead of the system allocator: the hourly burst allocates and frees small buffers
/// (requests, bodies, rows, JSON) on several threads, where glibc's malloc took about a sixth of
/// the CPU (`bench burst`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "tubewatch",
    version,
    about = "Self-hostable YouTube intelligence: hourly views, thumbnail and title changes, outliers, A/B tests"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "TUBEWATCH_LOG_FORMAT")]
    log_format: LogFormat,
    /// Settings flags before the subcommand (`tubewatch --database-url URL migrate`): hidden from
    /// the help (each subcommand lists the ones it uses) but still accepted.
    #[command(flatten)]
    settings: ServeFlags,
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
    Migrate {
        #[command(flatten)]
        settings: DatabaseFlags,
    },
    /// Run the service: web edge (/healthz, /readyz, /metrics) and, with --role all, the workers.
    Serve {
        #[arg(long, value_enum, default_value_t = Role::All)]
        role: Role,
        #[command(flatten)]
        settings: ServeFlags,
    },
    /// Run a worker: claim due targets and check them, until Ctrl-C or SIGTERM.
    Worker {
        #[command(flatten)]
        settings: ServiceFlags,
    },
    /// Start tracking a channel or a video.
    Track {
        #[command(flatten)]
        target: commands::TrackArgs,
        #[command(flatten)]
        settings: ServiceFlags,
    },
    /// Stop tracking a channel or a video (for one user with --user, else for everyone).
    Untrack {
        #[command(flatten)]
        target: commands::TrackArgs,
        #[command(flatten)]
        settings: ServiceFlags,
    },
    /// List what is tracked (for one user with --user).
    List {
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        settings: ServiceFlags,
    },
    /// A video's views series with its thumbnail and title changes.
    Views {
        #[command(flatten)]
        args: commands::ViewsArgs,
        #[command(flatten)]
        settings: ServiceFlags,
    },
    /// The work queue in words: due, late, failing targets.
    Status {
        #[command(flatten)]
        settings: ServiceFlags,
    },
    /// See tubewatch work: the simulator and the full service on an accelerated clock.
    Demo {
        #[command(flatten)]
        args: demo::DemoArgs,
        #[command(flatten)]
        settings: DemoFlags,
    },
    /// Run the YouTube simulator as its own process.
    Sim(sim_cmd::SimArgs),
    /// Parse a feed, watch page, player response or thumbnail and say what it holds.
    Inspect(inspect::InspectArgs),
    /// Measure the pipeline against the simulator's ground truth.
    Eval {
        #[command(subcommand)]
        command: eval::EvalCommand,
        #[command(flatten)]
        settings: DatabaseFlags,
    },
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
        #[command(flatten)]
        settings: DatabaseFlags,
    },
    /// Accounts: create users (`user add EMAIL --admin`), change plans (`user plan EMAIL premium`).
    User {
        #[command(subcommand)]
        command: user_cmd::UserCommand,
        #[command(flatten)]
        settings: ServiceFlags,
    },
    /// The settings: check them and show the effective values, or print the example file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into --dir.
    Man {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Exit 0 when URL answers 2xx within 5 s (a container health check: no curl needed).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the settings (defaults, --config file, TUBEWATCH_* variables, flags) and print the
    /// effective values, secrets redacted; exit code 2 on an invalid value.
    Check {
        #[command(flatten)]
        settings: Box<ServeFlags>,
    },
    /// Print the example configuration: every setting with its default and what it does.
    Example,
}

impl Command {
    /// The settings flags this command takes; `None`: it does not use the service's settings.
    fn settings_flags(&self) -> Option<&dyn SettingsFlags> {
        match self {
            Self::Migrate { settings } | Self::Eval { settings, .. } | Self::Bench { settings, .. } => Some(settings),
            Self::Serve { settings, .. } => Some(settings),
            Self::Config(ConfigCommand::Check { settings }) => Some(settings.as_ref()),
            Self::Worker { settings }
            | Self::Track { settings, .. }
            | Self::Untrack { settings, .. }
            | Self::List { settings, .. }
            | Self::Views { settings, .. }
            | Self::Status { settings }
            | Self::User { settings, .. } => Some(settings),
            Self::Demo { settings, .. } => Some(settings),
            Self::Sim(_)
            | Self::Inspect(_)
            | Self::Config(ConfigCommand::Example)
            | Self::Completions { .. }
            | Self::Man { .. }
            | Self::Healthcheck { .. } => None,
        }
    }
}

/// The command line as parsed, completed and documented: the derive's, with the settings flags
/// before the subcommand hidden, and the settings flags of commands that have subcommands of
/// their own (`eval`, `bench`, `user`) also accepted after those (`user add EMAIL --config F`).
fn cli_command() -> clap::Command {
    let settings: Vec<clap::Id> =
        ServeFlags::augment_args(clap::Command::new("settings")).get_arguments().map(|a| a.get_id().clone()).collect();
    let is_setting = move |arg: &clap::Arg| settings.contains(arg.get_id());
    let hide = is_setting.clone();
    Cli::command().mut_args(move |arg| if hide(&arg) { arg.hide(true) } else { arg }).mut_subcommands(move |sub| {
        if sub.has_subcommands() {
            let is_setting = is_setting.clone();
            sub.mut_args(move |arg| if is_setting(&arg) { arg.global(true) } else { arg })
        } else {
            sub
        }
    })
}

fn init_logging(format: LogFormat, command: &Command) {
    // Commands that print their own progress only log warnings unless RUST_LOG says otherwise.
    let default = match command {
        Command::Demo { .. } | Command::Eval { .. } | Command::Bench { .. } => "warn",
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

fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&cli_command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging(cli.log_format, &cli.command);
    let runtime = match runtime(&cli) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The multi-threaded runtime, with `worker.runtime_threads` threads when set (`bench burst
/// --runtime-threads` for the bench), else tokio's default (one per core, or
/// `TOKIO_WORKER_THREADS`). Built after the command line is read, since the setting decides it.
fn runtime(cli: &Cli) -> std::io::Result<tokio::runtime::Runtime> {
    let from_bench = match &cli.command {
        Command::Bench { command: bench::BenchCommand::Burst(args), .. } => args.runtime_threads,
        _ => None,
    };
    let threads = from_bench.or_else(|| settings_args(cli).as_ref().and_then(Settings::runtime_threads));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        builder.worker_threads(threads.max(1));
    }
    builder.enable_all().build()
}

/// The settings flags as the command line gives them; `None` for a command without settings.
fn settings_args(cli: &Cli) -> Option<SettingsArgs> {
    let flags = cli.command.settings_flags()?;
    let mut args = SettingsArgs::default();
    cli.settings.apply(&mut args);
    flags.apply(&mut args);
    Some(args)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands that do not use the service's state need no valid settings.
    let Some(args) = settings_args(&cli) else { return run_without_settings(cli.command).await };
    if let Command::Config(ConfigCommand::Check { .. }) = cli.command {
        return Ok(config_check(&args));
    }
    if let Command::Bench { command: bench::BenchCommand::Parse, .. } = cli.command {
        return bench::parse().map(|()| ExitCode::SUCCESS);
    }
    let settings = Settings::load(&args)?;
    match cli.command {
        Command::Migrate { .. } => {
            app::open_store(&settings).await?;
            println!("migrations applied to {}", redact_url(&settings.database_url));
        }
        Command::Serve { role, .. } => serve(&settings, role).await?,
        Command::Worker { .. } => {
            let app = App::open(&settings).await?;
            app.check_blob_store().await?;
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            app.run_worker(shutdown).await?;
        }
        Command::Track { target, .. } => commands::track(&App::open(&settings).await?, target).await?,
        Command::Untrack { target, .. } => commands::untrack(&App::open(&settings).await?, target).await?,
        Command::List { user, .. } => commands::list(&App::open(&settings).await?, user).await?,
        Command::Views { args, .. } => commands::views(&App::open(&settings).await?, args).await?,
        Command::Status { .. } => commands::status(&App::open(&settings).await?).await?,
        Command::Demo { args, .. } => demo::run(args, settings).await?,
        Command::Eval { command, .. } => return eval::run(command, settings).await,
        Command::Bench { command, .. } => bench::run(command, settings).await?,
        Command::User { command, .. } => user_cmd::run(command, &App::open(&settings).await?).await?,
        Command::Sim(_)
        | Command::Inspect(_)
        | Command::Config(_)
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Healthcheck { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_without_settings(command: Command) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout();
    match command {
        Command::Sim(args) => sim_cmd::run(args).await?,
        Command::Inspect(args) => return inspect::run(args).await,
        Command::Config(ConfigCommand::Example) => print!("{}", settings::EXAMPLE_CONFIG),
        Command::Completions { shell } => clap_complete::generate(shell, &mut cli_command(), "tubewatch", &mut stdout),
        Command::Man { dir: None } => clap_mangen::Man::new(cli_command()).render(&mut stdout)?,
        Command::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cli_command(), &dir)
                .with_context(|| format!("writing pages to {}", dir.display()))?;
        }
        Command::Healthcheck { url } => return healthcheck(&url).await,
        other => unreachable!("{other:?} uses the settings"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `config check`: the effective settings, secrets redacted (their `Debug`), or exit code 2 with
/// the one message that names the invalid setting.
fn config_check(args: &SettingsArgs) -> ExitCode {
    match Settings::load(args) {
        Ok(mut settings) => {
            // The database URL is not a `Secret` (it is mostly not one), but its password is.
            settings.database_url = redact_url(&settings.database_url);
            for var in unread_variables() {
                eprintln!("warning: {var} is ignored: no setting or flag has this variable");
            }
            let (blobs, warning) = settings.blob_store_summary(|var| std::env::var(var).ok());
            if let Some(warning) = warning {
                eprintln!("warning: {warning}");
            }
            println!("# The settings are valid. Blobs: {blobs}.");
            println!("# Effective values (secrets redacted):");
            println!("{settings:#?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The `TUBEWATCH_*` variables in the environment that nothing reads: a misspelt setting, most
/// likely.
fn unread_variables() -> Vec<String> {
    fn flag_variables(command: &clap::Command, known: &mut std::collections::HashSet<String>) {
        known.extend(command.get_arguments().filter_map(|a| a.get_env()).map(|v| v.to_string_lossy().into_owned()));
        for sub in command.get_subcommands() {
            flag_variables(sub, known);
        }
    }
    let mut known: std::collections::HashSet<String> = settings::env_settings().iter().map(|s| s.var.clone()).collect();
    flag_variables(&cli_command(), &mut known);
    let mut unread: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("TUBEWATCH_") && !known.contains(name))
        .collect();
    unread.sort();
    unread
}

async fn healthcheck(url: &str) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build()?;
    let status = client.get(url).send().await.with_context(|| format!("GET {url}"))?.status();
    if status.is_success() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{url}: {status}");
    Ok(ExitCode::FAILURE)
}

async fn stop_on_signal(token: CancellationToken) {
    shutdown_signal().await;
    token.cancel();
}

async fn serve(settings: &Settings, role: Role) -> anyhow::Result<()> {
    let app = App::open(settings).await?;
    app.check_blob_store().await?;
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
    let web = app.web_state()?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "tubewatch serving on http://{}", listener.local_addr()?);
    let token = shutdown.clone();
    app::serve_web(web, listener, async move {
        shutdown_signal().await;
        token.cancel();
    })
    .await?;
    if let Some(worker) = worker {
        worker.await??;
    }
    Ok(())
}
