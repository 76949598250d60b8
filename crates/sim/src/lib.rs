//! tubewatch's YouTube simulator.
#![forbid(unsafe_code)]

pub mod rng;
pub mod world;
