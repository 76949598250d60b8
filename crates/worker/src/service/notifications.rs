//! How a user hears of their outliers besides the pages: the weekly digest (on or off, and the
//! unsubscribe link each digest carries) and the outgoing webhook (set with a signing secret
//! shown once, removed, listed with its deliveries, tried with a signed ping).

use chrono::{DateTime, Duration, Utc};
use tubewatch_core::UserId;
use tubewatch_store::{StoreError, UserWebhook, WebhookDelivery};

use super::Service;
use crate::token_crypto::TokenCryptoError;
use crate::webhook::{SendError, WebhookUrlError, Webhooks};

/// Test pings a user may send within [`PING_WINDOW_MINUTES`]: each is an outgoing request the
/// service makes on the user's say-so.
pub const PINGS_PER_WINDOW: u32 = 5;
pub const PING_WINDOW_MINUTES: i64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not one a webhook may use on this server.
    #[error(transparent)]
    InvalidUrl(#[from] WebhookUrlError),
    /// The user has no webhook.
    #[error("no webhook is set")]
    NotSet,
    /// Too many test pings within the window.
    #[error("too many test pings")]
    TooManyPings { window: Duration },
    #[error(transparent)]
    Crypto(#[from] TokenCryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A user's webhook (without its secret) and its latest deliveries, newest first.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub webhook: Option<UserWebhook>,
    pub deliveries: Vec<WebhookDelivery>,
}

/// A webhook just set, with its signing secret (shown this once).
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

impl Service<'_> {
    /// Whether `user` receives the weekly digest (off until they turn it on).
    pub async fn digest_enabled(&self, user: UserId) -> Result<bool, StoreError> {
        Ok(self.store.digest_enabled(user).await?.unwrap_or(false))
    }

    pub async fn set_digest_enabled(&self, user: UserId, enabled: bool) -> Result<(), StoreError> {
        self.store.set_digest_enabled(user, enabled).await.map(drop)
    }

    /// Turns the digest off for the user whose unsubscribe link carries the token hashed to
    /// `token_hash`; `None` for an unknown token.
    pub async fn unsubscribe_digest(&self, token_hash: &str) -> Result<Option<UserId>, StoreError> {
        let user = self.store.unsubscribe_by_token(token_hash).await?;
        if let Some(user) = user {
            tracing::info!(user_id = %user, "user {user} unsubscribed from the digest");
        }
        Ok(user)
    }

    /// `user`'s webhook and its `deliveries_listed` latest deliveries.
    pub async fn webhook_settings(&self, user: UserId, deliveries_listed: u32) -> Result<WebhookSettings, StoreError> {
        let webhook = self.store.webhook(user).await?;
        let deliveries = self.store.webhook_deliveries(user, deliveries_listed).await?;
        Ok(WebhookSettings { webhook, deliveries })
    }

    /// Sets (or replaces) `user`'s webhook on a URL the server allows, with a new signing secret.
    pub async fn set_webhook(&self, webhooks: &Webhooks, user: UserId, url: &str) -> Result<NewWebhook, WebhookError> {
        let url = webhooks.check_url(url)?;
        let secret = Webhooks::new_secret();
        let sealed = webhooks.seal_secret(user, &secret)?;
        let created_at = self.clock.now();
        let hook = UserWebhook { user_id: user, url: url.to_string(), secret: sealed, created_at };
        self.store.set_webhook(&hook).await?;
        tracing::info!(user_id = %user, host = url.host_str().unwrap_or_default(), "user {user} set a webhook");
        Ok(NewWebhook { url: hook.url, secret, created_at })
    }

    /// Removes `user`'s webhook; `false` when none was set.
    pub async fn delete_webhook(&self, user: UserId) -> Result<bool, StoreError> {
        self.store.delete_webhook(user).await
    }

    /// Sends a signed `{"event": "ping"}` to `user`'s webhook now (not recorded with the weekly
    /// deliveries): `Ok(Ok(status))` when the receiver answered 2xx, `Ok(Err(why))` otherwise.
    pub async fn ping_webhook(
        &self,
        webhooks: &Webhooks,
        user: UserId,
    ) -> Result<Result<u16, SendError>, WebhookError> {
        let hook = self.store.webhook(user).await?.ok_or(WebhookError::NotSet)?;
        let window = Duration::minutes(PING_WINDOW_MINUTES);
        let key = format!("webhook-test:user:{user}");
        if !self.note_attempt(&key, PINGS_PER_WINDOW, window).await? {
            tracing::warn!(key, "throttled: {key}");
            return Err(WebhookError::TooManyPings { window });
        }
        let now = self.clock.now();
        let id = format!("ping-{}-{}", user.get(), now.timestamp());
        let body = serde_json::json!({ "id": id, "event": "ping", "created_at": now }).to_string().into_bytes();
        let secret = webhooks.open_secret(user, &hook.secret)?;
        Ok(webhooks.deliver(&hook.url, &secret, &id, body, now).await)
    }
}
