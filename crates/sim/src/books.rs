//! What the simulator writes down about its callers as they call, kept in its shared state and
//! read and written by the handlers: the OAuth codes and tokens it issued, the Data API quota
//! units each project spent per Pacific day, and the reporting jobs owners created.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tubewatch_core::ChannelId;

use crate::rng::{self, tag};
use crate::world::pacific_offset;

#[derive(Debug, Clone)]
pub(crate) struct PendingCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: Option<(String, String)>,
    pub(crate) scope: String,
    /// The channel picked on the account chooser (`None`: the simulated user's default).
    pub(crate) channel: Option<ChannelId>,
}

#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) channel: Option<ChannelId>,
    pub(crate) expires: DateTime<Utc>,
    pub(crate) refresh: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct RefreshToken {
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) channel: Option<ChannelId>,
}

/// Issued codes and tokens.
#[derive(Debug, Default)]
pub(crate) struct AuthBook {
    pub(crate) codes: HashMap<String, PendingCode>,
    pub(crate) access: HashMap<String, AccessToken>,
    pub(crate) refresh: HashMap<String, RefreshToken>,
    counter: u64,
}

impl AuthBook {
    pub(crate) fn mint(&mut self, seed: u64, prefix: &str) -> String {
        self.counter += 1;
        let a = rng::hash(seed, &[tag(prefix), self.counter, 1]);
        let b = rng::hash(seed, &[tag(prefix), self.counter, 2]);
        format!("{prefix}{}{}", rng::encode_id11(a), rng::encode_id11(b))
    }
}

/// Units used per project per Pacific day.
#[derive(Debug, Default)]
pub(crate) struct QuotaBook {
    used: HashMap<(String, String), u64>,
}

fn pacific_day(t: DateTime<Utc>) -> String {
    t.with_timezone(&pacific_offset(t)).format("%Y-%m-%d").to_string()
}

impl QuotaBook {
    pub(crate) fn used(&self, project: &str, now: DateTime<Utc>) -> u64 {
        self.used.get(&(project.to_owned(), pacific_day(now))).copied().unwrap_or(0)
    }

    /// Charges `cost` units if they fit in today's `limit`.
    pub(crate) fn charge(&mut self, project: &str, cost: u64, limit: u64, now: DateTime<Utc>) -> bool {
        let used = self.used.entry((project.to_owned(), pacific_day(now))).or_insert(0);
        if *used + cost > limit {
            return false;
        }
        *used += cost;
        true
    }
}

/// A reporting job as the simulator keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) owner: ChannelId,
    pub(crate) report_type_id: String,
    pub(crate) name: String,
    pub(crate) created: DateTime<Utc>,
}

/// Every reporting job, all owners.
#[derive(Debug, Default)]
pub(crate) struct ReportingBook {
    pub(crate) jobs: Vec<Job>,
}
