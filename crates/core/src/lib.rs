//! tubewatch's domain core: validated identifiers, the ways users write YouTube references,
//! time slots, the tracking schedule policy and clocks; a video's views as a series
//! ([`series`]); the A/B tests' schedules and analysis ([`abtest`], with the owner's reach data
//! in [`reach`], and what both share in `variants`, re-exported by [`abtest`]); and the weekly
//! outlier rules ([`outliers`]). Pure logic: no I/O, no crate of ours.
#![forbid(unsafe_code)]

pub mod abtest;
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
