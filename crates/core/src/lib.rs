//! tubewatch's domain core. Pure logic: no I/O, no crate of ours. One concern a module:
//!
//! - [`ids`]: validated identifiers (`VideoId`, `ChannelId`, `Handle`, `Email`, `UserId`), each
//!   built by `parse`, so an invalid one cannot be represented.
//! - [`reference`](mod@reference): every way a user writes a YouTube channel or video, parsed into a typed
//!   reference (ids only: a URL a user typed is never fetched).
//! - [`clock`]: the clocks (system, manual, accelerated) every time-dependent decision takes
//!   `now` from.
//! - [`slot`]: time slots, the aligned instants a measurement belongs to.
//! - [`schedule`]: the tracking schedule policy (hourly to 7 days after publish, daily to 60)
//!   and when the next channel check is due.
//! - [`pacific`]: US Pacific time, in which YouTube counts its days.
//! - [`series`]: a video's measured views as a series: the increments between measurements (the
//!   public counter's stalls joined to their catch-up) and the day's rhythm as Fourier terms;
//!   what the A/B analysis and the outlier rules share.
//! - [`abtest`]: A/B tests of thumbnails and titles: the balanced rotation schedule, the power
//!   estimate shown before a test, and the decay-adjusted analysis of hourly views with its
//!   verdict, beside the naive "more views wins" figures. What it shares with [`reach`] (variant
//!   labels, live periods, pairwise comparisons, errors) lives in `variants`, which it re-exports.
//! - [`reach`]: the owner's daily reach (impressions and click-through rate per Pacific day) as
//!   evidence in an A/B test, and the precision it is expected to have on a planned schedule.
//! - [`outliers`]: the weekly outlier rules: a channel's typical band of views by age and the
//!   videos far above it, thumbnail/title changes judged against the video's own trend, and the
//!   naive "views ÷ channel median" baseline they are compared with.
//! - [`change_reach`]: the owner's reach as a second signal on a thumbnail or title change (the
//!   click-through rate's days before against after it, combined with the views' lift).
//! - `stats`: the numerical routines these need (normal and t quantiles, Cholesky, count
//!   regressions fitted by IRLS with robust variances, GLS, empirical quantiles) and splitmix64,
//!   whose finaliser [`mix64`] is also the simulator's hash. [`gls`], [`normal_quantile`] and
//!   [`mix64`] are re-exported for the evaluations and the simulator.
#![forbid(unsafe_code)]

pub mod abtest;
pub mod change_reach;
pub mod clock;
pub mod ids;
pub mod outliers;
pub mod pacific;
pub mod reach;
pub mod reference;
pub mod schedule;
pub mod series;
pub mod slot;
mod stats;
mod variants;

pub use clock::{AcceleratedClock, Clock, ClockError, ManualClock, SystemClock};
pub use ids::{ChannelId, Email, Handle, IdError, UserId, VideoId};
pub use reference::{ChannelRef, RefError, YoutubeRef};
pub use schedule::{PolicyError, Resolution, SchedulePolicy, next_channel_check};
pub use slot::Slot;
pub use stats::{GlsFit, gls, mix64, normal_quantile};
