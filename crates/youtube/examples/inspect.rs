//! Runs the binary's `tubewatch inspect` module standalone, so it is compiled and exercised from
//! this crate until the binary wires it in: `cargo run -p tubewatch-youtube --example inspect --
//! feed FILE`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../src/inspect.rs"]
mod inspect;

#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: inspect::InspectArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = <Cli as clap::Parser>::parse();
    inspect::run(cli.args).await
}
