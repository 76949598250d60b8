//! tubewatch's YouTube simulator: a deterministic world (channels, videos, views, thumbnails,
//! titles, reach reports) served over YouTube's and Google's real HTTP formats on one base URL, with ground
//! truth, an injectable clock and fault injection.
//!
//! In-process use (tests, demo):
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let (config, clock) = tubewatch_sim::SimConfig::for_tests(7, 50);
//! let running = tubewatch_sim::Simulator::start(config, "127.0.0.1:0".parse()?).await?;
//! let feed = format!("{}/feeds/videos.xml?channel_id={}", running.base_url, running.sim.channels()[0].id);
//! clock.advance(chrono::Duration::hours(1));
//! # let _ = feed; Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod api;
mod books;
pub mod calibration;
mod control;
pub mod faults;
pub mod fields;
pub mod gzip;
pub mod pages;
mod reporting;
mod respond;
pub mod rng;
mod routes;
mod server;
mod sim;
pub mod thumbs;
pub mod world;

pub use faults::{Endpoint, Fault, FaultConfig, FaultSpec};
pub use server::RunningSim;
pub use sim::{OAuthConfig, SimClock, SimConfig, SimError, Simulator};
pub use world::{
    ChangeSource, ChangeTruth, Channel, Disturbances, HOURLY_NOISE_SIGMA, MultiplierOverride, NoiseJump, ReachDay,
    VariantKind, VideoTruth, WorldParams, pacific_date, pacific_day, pacific_midnight, thumbnail_variant_id,
    title_variant_id,
};
