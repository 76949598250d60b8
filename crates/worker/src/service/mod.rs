//! The application's use cases, one home for the web pages, the JSON API, the CLI and the jobs:
//! what a user tracks and its measured history (`library`), the weekly outliers and typical bands
//! they read (`outliers`), their dashboard visits and what is new since (`visits`), their A/B
//! tests as they read them (`abtests`), the digest and webhook they hear from (`notifications`),
//! accounts — users, sessions, mailed tokens, API tokens, password and throttled attempts
//! (`accounts`) — and billing's Stripe ids and events (`billing`). Tracking itself, checked
//! against the plan's limits then mapped, is the [`Tracker`](crate::Tracker)'s, which also
//! reaches YouTube; creating, stopping and connecting A/B tests is the
//! [`AbTests`](crate::abtest::AbTests) engine's.
//!
//! Each use case answers in domain types: its callers only present the answer (HTML, JSON, text)
//! and say at their edge what a refusal means (a 404 for what the user may not see, say). The
//! plans' limits are the caller's to pass: they are configuration of the edge that sells them.

pub mod abtests;
pub mod accounts;
pub mod billing;
pub mod library;
pub mod notifications;
pub mod outliers;
pub mod visits;

use tubewatch_core::Clock;
use tubewatch_store::Store;

pub use accounts::{AccountError, MintedToken, TokenRequest};
pub use library::{ChannelEntry, PlanUse, VideoHistory, VisibleVideo};
pub use notifications::{NewWebhook, WebhookError, WebhookSettings};
pub use outliers::WeeklyOutliers;

/// The use cases over one store and clock. Cheap: two references, made per request.
#[derive(Debug, Clone, Copy)]
pub struct Service<'a> {
    store: &'a dyn Store,
    clock: &'a dyn Clock,
}

impl<'a> Service<'a> {
    pub fn new(store: &'a dyn Store, clock: &'a dyn Clock) -> Self {
        Self { store, clock }
    }
}
