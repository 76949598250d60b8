//! Benchmarks that print figures: `bench parse` (parsers) and `bench burst` (one hourly slot at
//! the design's scale against the simulator).

use clap::Subcommand;

use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Watch-page extraction on a 1 MB page and feed parsing.
    Parse,
}

pub fn parse() -> anyhow::Result<()> {
    let report = tubewatch_youtube::bench::bench_parse();
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

pub async fn run(cmd: BenchCommand, _settings: Settings) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Parse => parse(),
    }
}
