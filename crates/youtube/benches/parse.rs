//! `cargo bench -p tubewatch-youtube`: prints parse-speed figures (see `tubewatch_youtube::bench`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

fn main() {
    let report = tubewatch_youtube::bench::bench_parse();
    print!("{report}");
}
