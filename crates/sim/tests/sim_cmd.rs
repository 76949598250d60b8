//! Compiles the binary's `tubewatch sim` command (`src/sim_cmd.rs`) against this crate and
//! checks its arguments parse, so the command cannot rot while the binary is wired elsewhere.
#![allow(clippy::unwrap_used)]

#[path = "../../../src/sim_cmd.rs"]
#[allow(dead_code)]
mod sim_cmd;

use clap::Parser;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    sim: sim_cmd::SimArgs,
}

#[test]
fn sim_args_parse() {
    let cli = Cli::try_parse_from([
        "sim",
        "--seed",
        "9",
        "--channels",
        "100",
        "--listen",
        "127.0.0.1:0",
        "--speed",
        "60",
        "--fault-429",
        "0.1",
        "--latency-ms",
        "5-50",
    ])
    .unwrap();
    assert_eq!(cli.sim.seed, 9);
    assert_eq!(cli.sim.channels, 100);
    assert_eq!(cli.sim.speed, 60.0);
    assert!(Cli::try_parse_from(["sim", "--listen", "not an address"]).is_err());
}
