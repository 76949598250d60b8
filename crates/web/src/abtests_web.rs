//! The A/B test engine as the HTTP edge holds it, for the API and the pages alike: the worker's
//! `AbTests` with the YouTube connections started but not yet completed, who may use it (a plan
//! with A/B tests, a server with `[abtests]`), and what its refusals answer.
//!
//! The OAuth `state` and PKCE verifier are kept server-side, in memory, bound to the user and to
//! the channel being connected, for ten minutes: the callback must come back to the same process
//! (a single web process, or sticky sessions), otherwise the user simply starts again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use tubewatch_core::{ChannelId, UserId};
use tubewatch_worker::abtest::{AbTestError, AbTests};

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::ApiError;

/// How long a started connection may take to come back through the callback.
const CONNECT_TTL_MINUTES: i64 = 10;

/// The A/B test engine and the connections started but not yet completed.
#[derive(Debug, Clone)]
pub struct AbTestsWeb {
    pub engine: AbTests,
    pending: Arc<Mutex<HashMap<String, PendingConnect>>>,
}

/// A connection started by `user` for `channel`, waiting for Google's callback.
#[derive(Debug)]
pub(crate) struct PendingConnect {
    pub(crate) user: UserId,
    pub(crate) channel: ChannelId,
    pub(crate) verifier: String,
    pub(crate) started: DateTime<Utc>,
}

impl AbTestsWeb {
    pub fn new(engine: AbTests) -> Self {
        Self { engine, pending: Arc::default() }
    }

    /// Remembers a started connection; a user has at most one pending (the newest), and expired
    /// ones are dropped, so the map stays small.
    pub(crate) fn remember(&self, state: String, pending: PendingConnect) {
        let mut map = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = pending.started;
        map.retain(|_, p| p.user != pending.user && now - p.started < Duration::minutes(CONNECT_TTL_MINUTES));
        map.insert(state, pending);
    }

    /// Takes the pending connection for `state` if it is the caller's and still fresh.
    pub(crate) fn take(&self, state: &str, user: UserId, now: DateTime<Utc>) -> Option<PendingConnect> {
        let mut map = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.get(state).is_some_and(|p| p.user == user) {
            map.remove(state).filter(|p| now - p.started < Duration::minutes(CONNECT_TTL_MINUTES))
        } else {
            None
        }
    }
}

/// The A/B test engine for a caller whose plan has A/B tests: 402 `plan_feature_unavailable`
/// otherwise, 503 `abtests_not_configured` on a server without `[abtests]`.
pub(crate) fn engine<'a>(state: &'a AppState, caller: &CurrentUser) -> Result<&'a AbTestsWeb, ApiError> {
    caller.require_ab_tests(state)?;
    state.abtests.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "abtests_not_configured",
            "A/B tests are not configured on this server",
        )
    })
}

impl From<AbTestError> for ApiError {
    fn from(e: AbTestError) -> Self {
        let code = e.code();
        match e {
            AbTestError::BadInput(_) | AbTestError::BadImage { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
            }
            AbTestError::NotConnected | AbTestError::Revoked(_) | AbTestError::AlreadyEnded => {
                Self::new(StatusCode::CONFLICT, code, e.to_string())
            }
            AbTestError::NotOwner(..) => Self::new(StatusCode::FORBIDDEN, code, e.to_string()),
            AbTestError::NoSuchVideo(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string()),
            AbTestError::NoSuchTest(_) => Self::not_found("A/B test"),
            AbTestError::QuotaExceeded => Self::new(StatusCode::TOO_MANY_REQUESTS, code, e.to_string()),
            AbTestError::Youtube(_) => {
                tracing::warn!(error = %e, "A/B tests: YouTube unavailable");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, code, "YouTube could not be reached just now; try again")
            }
            AbTestError::Store(inner) => inner.into(),
            AbTestError::Crypto(_) | AbTestError::Other(_) => Self::internal(e),
        }
    }
}
