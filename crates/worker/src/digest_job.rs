//! The weekly digest of one user: ONE email with every outlier of the week from the channels and
//! videos the user monitors (never one per channel), each with its archived thumbnail, its figure
//! and a one-line reason; HTML and plain text; an unsubscribe link.
//!
//! The digest waits (up to `DIGEST_WAIT`) until the week's outlier run of each of the user's
//! channels is done, so a backlog does not send a partial digest. Sending is recorded per
//! (user, week): a retry after the record never sends again. The one gap left is a crash between
//! the SMTP hand-off and the record, which sends that digest twice (at least once, never lost);
//! the outbox is immune, as its file is named by user and week.
//!
//! The same job delivers the week's outliers to the user's webhook, if they set one (before the
//! mail, so a receiver that is down delays nothing): each attempt is recorded per (user, week),
//! a failed one is retried with growing delays up to `WEBHOOK_ATTEMPTS`, a delivered week is
//! never delivered again. The payload's `id` is the same on every attempt, for receivers that
//! see a delivery twice (the same crash gap as the mail's).

use askama::Template;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tubewatch_core::UserId;
use tubewatch_store::{
    DigestSent, Lease, Outlier, OutlierKind, Target, TargetKind, TargetState, UserWebhook, WebhookDelivery,
};
use tubewatch_youtube::sha256_hex;

use crate::mail::{InlineImage, Mail};
use crate::metrics::OutcomeLabel;
use crate::outliers_config::OutliersConfig;
use crate::pipeline::{JobError, Pipeline};
use crate::webhook::{SendError, Webhooks};

/// How long a digest waits for late outlier runs before it goes out with what there is.
const DIGEST_WAIT: Duration = Duration::hours(24);
/// How often a waiting digest looks again.
const DIGEST_RECHECK: Duration = Duration::minutes(30);
/// Attempts at one week's webhook delivery, the first retry after `WEBHOOK_RETRY`, then twice
/// as long each time (5, 10, 20, 40, 80 minutes).
const WEBHOOK_ATTEMPTS: i32 = 6;
const WEBHOOK_RETRY: Duration = Duration::minutes(5);

/// What a webhook receives: the week's outliers of everything the user tracks, as in the digest.
#[derive(Debug, Serialize)]
struct WebhookPayload<'a> {
    /// `digest-USER-WEEK`, the same on every retry.
    id: &'a str,
    event: &'static str,
    week: &'a str,
    created_at: DateTime<Utc>,
    outliers: Vec<WebhookOutlier<'a>>,
}

#[derive(Debug, Serialize)]
struct WebhookOutlier<'a> {
    video_id: &'a str,
    channel_id: &'a str,
    video_title: &'a str,
    url: String,
    kind: OutlierKind,
    /// Channel outliers: views ÷ the channel's typical views at that age. Changes: 1 + lift.
    score: f64,
    lift: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
    age_hours: Option<f64>,
    views: i64,
    changed_at: Option<DateTime<Utc>>,
    explanation: &'a str,
}

impl<'a> From<&'a Outlier> for WebhookOutlier<'a> {
    fn from(o: &'a Outlier) -> Self {
        let n = &o.outlier;
        Self {
            video_id: n.video_id.as_str(),
            channel_id: n.channel_id.as_str(),
            video_title: &o.video_title,
            url: format!("https://www.youtube.com/watch?v={}", n.video_id),
            kind: n.kind,
            score: n.score,
            lift: n.lift,
            ci_low: n.ci_low,
            ci_high: n.ci_high,
            age_hours: n.age_hours,
            views: n.views,
            changed_at: n.changed_at,
            explanation: &n.explanation,
        }
    }
}

#[derive(Debug)]
struct DigestItem {
    title: String,
    url: String,
    /// "4.2×" or "+63% (+20% to +110%)".
    figure: String,
    kind: &'static str,
    reason: String,
    image_cid: Option<String>,
}

#[derive(Template)]
#[template(path = "digest.html")]
struct DigestHtml<'a> {
    subject: &'a str,
    heading: &'a str,
    items: &'a [DigestItem],
    unsubscribe_url: &'a str,
}

#[derive(Template)]
#[template(path = "digest.txt")]
struct DigestText<'a> {
    heading: &'a str,
    items: &'a [DigestItem],
    unsubscribe_url: &'a str,
}

/// The headline figure: "4.2×" for a channel outlier; a change's lift with its interval,
/// "+63% (+20% to +110%)".
fn figure(outlier: &Outlier) -> String {
    let o = &outlier.outlier;
    match (o.kind, o.lift) {
        (OutlierKind::Channel, _) | (_, None) => format!("{:.1}×", o.score),
        (_, Some(lift)) => match (o.ci_low, o.ci_high) {
            (Some(low), Some(high)) => {
                format!("{:+.0}% ({:+.0}% to {:+.0}%)", lift * 100.0, low * 100.0, high * 100.0)
            }
            _ => format!("{:+.0}%", lift * 100.0),
        },
    }
}

fn kind_label(kind: OutlierKind) -> &'static str {
    match kind {
        OutlierKind::Channel => "channel outlier",
        OutlierKind::Thumbnail => "after a thumbnail change",
        OutlierKind::Title => "after a title change",
    }
}

impl Pipeline {
    #[tracing::instrument(skip_all, fields(user_id = %target.subject))]
    pub(crate) async fn run_digest(&self, target: &Target, lease: &Lease) -> Result<(), JobError> {
        let user_id = target
            .subject
            .parse::<i64>()
            .map(UserId::new)
            .map_err(|e| JobError::Permanent(format!("digest subject {:?}: {e}", target.subject)))?;
        let config = &self.config.outliers;
        let now = self.clock.now();
        let run = config.run_at_or_before(target.next_due_at);
        let week = OutliersConfig::week_label(run);
        let next = config.next_run_after(now) + config.digest_delay;
        let Some(user) = self.store.user(user_id).await? else {
            return Err(JobError::Permanent(format!("user {user_id} no longer exists")));
        };
        let mail_due = if self.store.digest_enabled(user_id).await? == Some(false) {
            tracing::info!(user_id = %user_id, %week, "user {user_id} has unsubscribed from the digest");
            false
        } else {
            self.store.digest_sent(user_id, &week).await?.is_none()
        };
        let hook = self.webhook_due(user_id, &week).await?;
        if !mail_due && hook.is_none() {
            self.store.complete(lease, Some(next)).await?;
            return Ok(());
        }
        // Wait for this week's run of every channel the user sees.
        if now < run + config.digest_delay + DIGEST_WAIT {
            for channel in self.store.user_outlier_channels(user_id).await? {
                let pending = self
                    .store
                    .target(TargetKind::Outliers, channel.as_str())
                    .await?
                    .is_some_and(|t| t.state == TargetState::Active && t.next_due_at <= run);
                if pending {
                    tracing::info!(user_id = %user_id, channel_id = %channel, "digest waits for channel {channel}");
                    self.store.complete(lease, Some(now + DIGEST_RECHECK)).await?;
                    return Ok(());
                }
            }
        }
        let outliers = self.store.user_week_outliers(user_id, &week).await?;
        if outliers.is_empty() {
            tracing::info!(user_id = %user_id, %week, "no outliers for user {user_id} in {week}");
            self.store.complete(lease, Some(next)).await?;
            return Ok(());
        }
        // The webhook first: a failed delivery comes back sooner than next week, without the mail.
        let retry_at = match hook {
            Some((webhooks, hook, attempts)) => {
                self.deliver_webhook(webhooks, &hook, &week, attempts, &outliers).await?
            }
            None => None,
        };
        let next_due = retry_at.unwrap_or(next);
        if !mail_due {
            self.store.complete(lease, Some(next_due)).await?;
            return Ok(());
        }
        let mail = self.digest_mail(&user.email.to_string(), user_id, &week, &outliers).await?;
        let delivery = self.config.mailer.send(&mail).await?;
        let sent = DigestSent {
            user_id,
            week: week.clone(),
            outliers: i32::try_from(outliers.len()).unwrap_or(i32::MAX),
            delivery: self.config.mailer.delivery_kind().to_owned(),
            sent_at: self.clock.now(),
        };
        self.store.complete_digest(lease, &sent, next_due).await?;
        tracing::info!(user_id = %user_id, %week, outliers = outliers.len(), ?delivery, "digest sent to user {user_id}");
        Ok(())
    }

    /// The user's webhook when this week's delivery is still to be tried: the service's
    /// webhooks, the user's, and the attempts made so far.
    async fn webhook_due(&self, user: UserId, week: &str) -> Result<Option<(&Webhooks, UserWebhook, i32)>, JobError> {
        let Some(webhooks) = &self.config.webhooks else { return Ok(None) };
        let Some(hook) = self.store.webhook(user).await? else { return Ok(None) };
        let attempts = match self.store.webhook_delivery(user, week).await? {
            Some(d) if d.delivered_at.is_some() || d.attempts >= WEBHOOK_ATTEMPTS => return Ok(None),
            Some(d) => d.attempts,
            None => 0,
        };
        Ok(Some((webhooks, hook, attempts)))
    }

    /// One attempt to deliver the week's outliers to the user's webhook, recorded whatever the
    /// outcome. Returns when to try again after a failure (`None`: delivered, or given up).
    async fn deliver_webhook(
        &self,
        webhooks: &Webhooks,
        hook: &UserWebhook,
        week: &str,
        attempts: i32,
        outliers: &[Outlier],
    ) -> Result<Option<DateTime<Utc>>, JobError> {
        let user = hook.user_id;
        let id = format!("digest-{}-{week}", user.get());
        let now = self.clock.now();
        let payload = WebhookPayload {
            id: &id,
            event: "outliers.weekly",
            week,
            created_at: now,
            outliers: outliers.iter().map(WebhookOutlier::from).collect(),
        };
        let body = serde_json::to_vec(&payload).map_err(|e| anyhow::anyhow!("encoding the webhook payload: {e}"))?;
        let outcome = match webhooks.open_secret(user, &hook.secret) {
            Ok(secret) => webhooks.deliver(&hook.url, &secret, &id, body, now).await,
            Err(e) => Err(SendError { status: None, message: format!("the signing secret: {e}") }),
        };
        let attempts = attempts + 1;
        let mut delivery = WebhookDelivery {
            user_id: user,
            week: week.to_owned(),
            url: hook.url.clone(),
            outliers: i32::try_from(outliers.len()).unwrap_or(i32::MAX),
            attempts,
            status_code: None,
            error: None,
            last_attempt_at: now,
            delivered_at: None,
        };
        let label = OutcomeLabel { outcome: if outcome.is_ok() { "delivered" } else { "failed" }.to_owned() };
        self.metrics.webhook_attempts.get_or_create(&label).inc();
        let retry_at = match outcome {
            Ok(status) => {
                tracing::info!(user_id = %user, %week, status, "webhook delivered to user {user}");
                delivery.status_code = Some(i32::from(status));
                delivery.delivered_at = Some(self.clock.now());
                None
            }
            Err(e) => {
                tracing::warn!(user_id = %user, %week, attempts, error = %e.message, "webhook delivery failed");
                delivery.status_code = e.status.map(i32::from);
                delivery.error = Some(e.message);
                (attempts < WEBHOOK_ATTEMPTS).then(|| now + WEBHOOK_RETRY * 2i32.pow(attempts.unsigned_abs() - 1))
            }
        };
        self.store.record_webhook_attempt(&delivery).await?;
        Ok(retry_at)
    }

    async fn digest_mail(&self, to: &str, user: UserId, week: &str, outliers: &[Outlier]) -> Result<Mail, JobError> {
        let mut items = Vec::with_capacity(outliers.len());
        let mut images = Vec::new();
        for (i, o) in outliers.iter().enumerate() {
            let mut image_cid = None;
            if let Some(key) = &o.outlier.thumb_key {
                // A missing archive only loses the picture, not the digest.
                match self.blobs.get(key).await {
                    Ok(Some(bytes)) => {
                        let cid = format!("thumb-{i}-{}", o.outlier.video_id);
                        images.push(InlineImage {
                            content_id: cid.clone(),
                            content_type: "image/jpeg".into(),
                            bytes: bytes.to_vec(),
                        });
                        image_cid = Some(cid);
                    }
                    Ok(None) => tracing::warn!(key = %key, "archived thumbnail {key} is missing"),
                    Err(e) => tracing::warn!(key = %key, error = %e, "archived thumbnail {key} unreadable"),
                }
            }
            items.push(DigestItem {
                title: o.video_title.clone(),
                url: format!("https://www.youtube.com/watch?v={}", o.outlier.video_id),
                figure: figure(o),
                kind: kind_label(o.outlier.kind),
                reason: o.outlier.explanation.clone(),
                image_cid,
            });
        }
        let n = outliers.len();
        let subject = format!("tubewatch: {n} outlier{} in week {week}", if n == 1 { "" } else { "s" });
        let heading = format!("Your outliers of week {week}");
        // A fresh token per digest; the store keeps only its hash.
        let token: String = rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect();
        self.store.add_unsubscribe_token(user, &sha256_hex(token.as_bytes()), self.clock.now()).await?;
        let unsubscribe_url =
            format!("{}/unsubscribe/digest?token={token}", self.config.outliers.public_url.trim_end_matches('/'));
        let html =
            DigestHtml { subject: &subject, heading: &heading, items: &items, unsubscribe_url: &unsubscribe_url }
                .render()
                .map_err(|e| anyhow::anyhow!("rendering the digest: {e}"))?;
        let text = DigestText { heading: &heading, items: &items, unsubscribe_url: &unsubscribe_url }
            .render()
            .map_err(|e| anyhow::anyhow!("rendering the digest: {e}"))?;
        Ok(Mail {
            key: format!("digest-{}-{week}", user.get()),
            to: to.to_owned(),
            subject,
            text,
            html,
            images,
            unsubscribe_url: Some(unsubscribe_url),
        })
    }
}
