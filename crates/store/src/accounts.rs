//! Accounts: server-side sessions, API tokens, login throttling, plan limits checked where the
//! mapping is added, Stripe billing state with idempotent event application, and the audit log.
//!
//! Secrets never reach the store: sessions and API tokens are identified by the SHA-256 hash of a
//! high-entropy random value the web edge generated (hashing is the caller's job, so the store
//! cannot be handed a clear token by mistake and keep it), and passwords arrive as PHC strings.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_core::{ChannelId, UserId, VideoId};

use crate::{Plan, Result, User};

/// What a limited add did. The count and the insert happen in one transaction, so concurrent adds
/// cannot pass the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum LimitOutcome {
    /// The mapping was added. `charged` is false when it cost no credit (a video of a channel the
    /// user monitors, or one already charged this month).
    Added { charged: bool },
    /// The user already tracked it; nothing changed and nothing was charged.
    AlreadyTracked,
    /// Refused: `used` of `limit` are taken.
    LimitReached { limit: u32, used: u64 },
}

/// A log-in session as the store keeps it (by the hash of its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An API token's public description; the token itself is shown once at creation and never kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: UserId,
    pub name: String,
    /// The token's first characters, to tell tokens apart.
    pub prefix: String,
    pub scope: TokenScope,
    pub created_at: DateTime<Utc>,
    /// `None`: a token made before tokens expired; it lives until revoked.
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Reads only: any state-changing request made with it is refused.
    Read,
    /// Everything its owner may do.
    Write,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }
}

/// A token to store: its hash, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken<'a> {
    pub name: &'a str,
    pub token_hash: &'a str,
    pub prefix: &'a str,
    pub scope: TokenScope,
    pub expires_at: DateTime<Utc>,
}

/// A user's Stripe ids, set by billing webhooks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingAccount {
    pub customer_id: Option<String>,
    pub subscription_id: Option<String>,
}

/// A verified Stripe event reduced to what it does to one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingEvent {
    /// Stripe's event id (`evt_…`): applied at most once.
    pub event_id: String,
    /// Stripe's event type, for the audit log.
    pub kind: String,
    pub user_id: UserId,
    /// Ids to remember on the user (`None` keeps what is stored).
    pub customer_id: Option<String>,
    pub subscription_id: Option<String>,
    /// The plan the event puts the user on (`None`: plan unchanged).
    pub plan: Option<Plan>,
    /// When the event happened at Stripe. A plan from an event older than the last applied one
    /// is not applied: events arrive in any order.
    pub occurred_at: DateTime<Utc>,
    /// True for a completed checkout, which starts `subscription_id`. Other events are about one
    /// subscription and change the plan only while it is the user's (or the user has none yet).
    pub opens_subscription: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub user_id: UserId,
    /// Who acted: the user, an admin, or `None` for the system (billing, CLI).
    pub actor_id: Option<UserId>,
    pub action: String,
    pub detail: String,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Stores a session by its token hash.
    async fn create_session(
        &self,
        user: UserId,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// The user of a live session: known, not revoked, not expired at `now`.
    async fn session_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<(Session, User)>>;
    /// Revokes one session; returns whether it was live.
    async fn revoke_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<bool>;
    /// Replaces a user's password hash, revokes every other session of theirs and every API token
    /// (a stolen session or token dies with the old password) and writes the audit entry, in one
    /// transaction.
    async fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep_session: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Stores a password reset by the hash of its mailed token, usable once until `expires_at`.
    async fn create_password_reset(
        &self,
        user: UserId,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// Uses a live reset (known, unused, not expired at `now`): sets the password, marks every
    /// reset of the user used, revokes every session and API token of theirs and writes the audit
    /// entry, in one transaction. The mailed link proves the address, so an unconfirmed email
    /// counts as confirmed from then on. `None` (and nothing changes) when there is no live reset.
    async fn reset_password(&self, token_hash: &str, password_hash: &str, now: DateTime<Utc>)
    -> Result<Option<UserId>>;

    /// Stores an email verification by the hash of its mailed token, usable once until
    /// `expires_at`.
    async fn create_email_verification(
        &self,
        user: UserId,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// Uses a live verification (known, unused, not expired at `now`): marks the user's email
    /// confirmed (keeping an earlier confirmation time), marks every verification of the user used
    /// and writes the audit entry, in one transaction. Returns the user; `None` (and nothing
    /// changes) when there is no live verification.
    async fn verify_email(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>>;

    /// Stores a new API token by its hash and writes the audit entry.
    async fn create_api_token(&self, user: UserId, token: &NewApiToken<'_>, now: DateTime<Utc>) -> Result<ApiToken>;
    /// A user's tokens, newest first, revoked ones included.
    async fn api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>>;
    /// Revokes one of `user`'s tokens (another user's token id is not found); writes the audit
    /// entry. Returns whether a live token was revoked.
    async fn revoke_api_token(&self, user: UserId, token_id: i64, now: DateTime<Utc>) -> Result<bool>;
    /// The owner of a live token (not revoked, not expired at `now`), noting its use.
    async fn api_token_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<(ApiToken, User)>>;

    /// Records one failed log-in under each key (e.g. the account and the client address).
    async fn record_login_failure(&self, keys: &[&str], now: DateTime<Utc>) -> Result<()>;
    /// Failed log-ins under `key` at or after `since`.
    async fn login_failures_since(&self, key: &str, since: DateTime<Utc>) -> Result<u64>;
    /// Forgets `key`'s failures (after a successful log-in) and any failure older than
    /// `forget_before` (housekeeping).
    async fn clear_login_failures(&self, key: &str, forget_before: DateTime<Utc>) -> Result<()>;

    /// Adds the user↔channel mapping unless the user already monitors `limit` channels
    /// (`None`: unlimited); the count and the insert are one transaction.
    async fn add_user_channel_within_limit(
        &self,
        user: UserId,
        channel: &ChannelId,
        limit: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<LimitOutcome>;
    /// Adds the user↔video mapping, charging one of the month's credits unless the video belongs
    /// to a channel the user monitors or was already charged since `month_start`; refused when
    /// `monthly_limit` credits are used. One transaction.
    async fn add_user_video_within_limit(
        &self,
        user: UserId,
        video: &VideoId,
        monthly_limit: Option<u32>,
        month_start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<LimitOutcome>;
    /// Video credits charged at or after `since`.
    async fn video_credits_used(&self, user: UserId, since: DateTime<Utc>) -> Result<u64>;
    /// Whether the user tracks the video, directly or through a channel they monitor.
    async fn user_can_see_video(&self, user: UserId, video: &VideoId) -> Result<bool>;
    /// Whether the user monitors the channel.
    async fn user_tracks_channel(&self, user: UserId, channel: &ChannelId) -> Result<bool>;

    /// Sets the plan and writes the audit entry (`actor`: who did it; `None`: the system).
    async fn change_plan(
        &self,
        user: UserId,
        plan: Plan,
        actor: Option<UserId>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;
    async fn billing_account(&self, user: UserId) -> Result<BillingAccount>;
    async fn user_by_stripe_customer(&self, customer_id: &str) -> Result<Option<User>>;
    /// Applies a billing event once: records its id, the user's Stripe ids, the plan and the audit
    /// entry in one transaction. Returns `false` for an event already received (nothing changes)
    /// and for one that is stale (older than the last applied state, or about a subscription that
    /// is not the user's): it is recorded, and only a missing customer id is filled in.
    async fn apply_billing_event(&self, event: &BillingEvent, now: DateTime<Utc>) -> Result<bool>;

    /// A user's audit entries, newest first.
    async fn audit_log(&self, user: UserId, limit: u32) -> Result<Vec<AuditEntry>>;
}
