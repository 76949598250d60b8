//! Accounts: opening one, sessions opened and ended, emails confirmed and passwords reset by
//! mailed single-use tokens, a user's API tokens (listed, created within the rules — a printable
//! name, a scope, a bounded lifetime — and revoked), a password changed with every other session
//! and every token revoked, and the attempt book that throttles log-ins and mails. Minting
//! secrets and hashing passwords stay with the edge that hands them out and checks them; here
//! they arrive as hashes.

use chrono::{DateTime, Duration, Utc};
use tubewatch_core::{Email, UserId};
use tubewatch_store::{ApiToken, NewApiToken, NewUser, Plan, Session, StoreError, TokenScope, User};

use super::Service;

/// How long a token lives when its creator does not say, and at most.
pub const TOKEN_DEFAULT_DAYS: u32 = 90;
pub const TOKEN_MAX_DAYS: u32 = 365;
/// The longest token name, in characters.
pub const TOKEN_NAME_MAX_CHARS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The request breaks a rule; the message says which.
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a user asks for when creating an API token.
#[derive(Debug, Clone, Copy)]
pub struct TokenRequest<'a> {
    /// A label, 1–100 printable characters (surrounding spaces are dropped).
    pub name: &'a str,
    /// `read` (the default) or `write`.
    pub scope: Option<&'a str>,
    /// Days until it expires: 1 to 365, 90 when not given.
    pub expires_in_days: Option<u32>,
}

/// A freshly minted token as the store keeps it: its hash and its first characters.
#[derive(Debug, Clone, Copy)]
pub struct MintedToken<'a> {
    pub hash: &'a str,
    pub prefix: &'a str,
}

impl Service<'_> {
    /// Opens an account; `StoreError::Conflict` when the email has one already.
    pub async fn create_user(&self, new: &NewUser) -> Result<User, StoreError> {
        self.store.create_user(new, self.clock.now()).await
    }

    pub async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.store.user_by_email(email).await
    }

    /// Sets `user`'s plan and writes the audit entry; `actor`: who did it (`None`: the system or
    /// the operator), `reason`: why.
    pub async fn change_plan(
        &self,
        user: UserId,
        plan: Plan,
        actor: Option<UserId>,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.store.change_plan(user, plan, actor, reason, self.clock.now()).await
    }

    /// The live session (not revoked, not expired) whose token hashes to `token_hash`, with its
    /// user.
    pub async fn session_user(&self, token_hash: &str) -> Result<Option<(Session, User)>, StoreError> {
        self.store.session_user(token_hash, self.clock.now()).await
    }

    /// The live API token (not revoked, not expired) that hashes to `token_hash`, with its owner;
    /// its use is noted.
    pub async fn api_token_user(&self, token_hash: &str) -> Result<Option<(ApiToken, User)>, StoreError> {
        self.store.api_token_user(token_hash, self.clock.now()).await
    }

    /// Opens a session for `user`, known by its token's hash, for `days`; returns when it expires.
    pub async fn open_session(&self, user: UserId, token_hash: &str, days: u32) -> Result<DateTime<Utc>, StoreError> {
        let now = self.clock.now();
        let expires_at = now + Duration::days(i64::from(days));
        self.store.create_session(user, token_hash, now, expires_at).await?;
        Ok(expires_at)
    }

    /// Ends the session known by its token's hash.
    pub async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.store.revoke_session(token_hash, self.clock.now()).await.map(drop)
    }

    /// Stores an email verification for `user` by its mailed token's hash, usable once within
    /// `valid`.
    pub async fn start_email_verification(
        &self,
        user: UserId,
        token_hash: &str,
        valid: Duration,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.store.create_email_verification(user, token_hash, now, now + valid).await
    }

    /// Confirms the email whose live verification token hashes to `token_hash`; `None` for an
    /// unknown, used or expired one.
    pub async fn confirm_email(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        self.store.verify_email(token_hash, self.clock.now()).await
    }

    /// Stores a password reset for `user` by its mailed token's hash, usable once within `valid`.
    pub async fn start_password_reset(
        &self,
        user: UserId,
        token_hash: &str,
        valid: Duration,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.store.create_password_reset(user, token_hash, now, now + valid).await
    }

    /// Sets a new password with the live reset whose token hashes to `token_hash` (every session
    /// and API token of the account revoked); `None` for an unknown, used or expired one.
    pub async fn reset_password(&self, token_hash: &str, password_hash: &str) -> Result<Option<UserId>, StoreError> {
        self.store.reset_password(token_hash, password_hash, self.clock.now()).await
    }

    /// Failed attempts recorded under `key` at or after `since`.
    pub async fn failed_attempts_since(&self, key: &str, since: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store.login_failures_since(key, since).await
    }

    /// Records one failed attempt under `key` at `at`.
    pub async fn record_failed_attempt(&self, key: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.store.record_login_failure(&[key], at).await
    }

    /// Forgets `key`'s attempts (after a successful log-in), and any attempt older than
    /// `forget_before`.
    pub async fn forget_attempts(&self, key: &str, forget_before: DateTime<Utc>) -> Result<(), StoreError> {
        self.store.clear_login_failures(key, forget_before).await
    }

    /// `user`'s API tokens, newest first, revoked ones included (never their values).
    pub async fn api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>, StoreError> {
        self.store.api_tokens(user).await
    }

    /// Creates an API token for `user` from a secret minted by the caller, once the request
    /// passes the rules.
    pub async fn create_api_token(
        &self,
        user: UserId,
        request: TokenRequest<'_>,
        minted: MintedToken<'_>,
    ) -> Result<ApiToken, AccountError> {
        let name = request.name.trim();
        if name.is_empty() || name.chars().count() > TOKEN_NAME_MAX_CHARS || name.chars().any(char::is_control) {
            return Err(AccountError::BadInput(format!(
                "name must be 1 to {TOKEN_NAME_MAX_CHARS} printable characters"
            )));
        }
        let scope = match request.scope {
            None => TokenScope::Read,
            Some(s) => TokenScope::parse(s).ok_or_else(|| AccountError::BadInput("scope is read or write".into()))?,
        };
        let days = request.expires_in_days.unwrap_or(TOKEN_DEFAULT_DAYS);
        if !(1..=TOKEN_MAX_DAYS).contains(&days) {
            return Err(AccountError::BadInput(format!("expires_in_days is 1 to {TOKEN_MAX_DAYS}")));
        }
        let now = self.clock.now();
        let new = NewApiToken {
            name,
            token_hash: minted.hash,
            prefix: minted.prefix,
            scope,
            expires_at: now + Duration::days(i64::from(days)),
        };
        let stored = self.store.create_api_token(user, &new, now).await?;
        tracing::info!(user_id = %user, token_id = stored.id, "API token {} created", stored.id);
        Ok(stored)
    }

    /// Revokes one of `user`'s tokens at once; `false` when they have no such live token.
    pub async fn revoke_api_token(&self, user: UserId, token_id: i64) -> Result<bool, StoreError> {
        self.store.revoke_api_token(user, token_id, self.clock.now()).await
    }

    /// Counts one attempt under `key` in the store's attempt book (shared by every process) and
    /// says whether it is allowed: not when more than `limit` were made within `window`. The
    /// attempt is recorded before it is counted, so parallel attempts cannot all pass: whatever
    /// their interleaving, at most `limit` of them do.
    pub async fn note_attempt(&self, key: &str, limit: u32, window: Duration) -> Result<bool, StoreError> {
        let now = self.clock.now();
        self.store.record_login_failure(&[key], now).await?;
        Ok(self.store.login_failures_since(key, now - window).await? <= u64::from(limit))
    }

    /// Sets `user`'s password (already checked and hashed by the caller); every session but
    /// `keep_session` (a session's token hash) and every API token is revoked.
    pub async fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        self.store.change_password(user, password_hash, keep_session, self.clock.now()).await
    }
}
