//! Billing with Stripe: a Checkout Session for the premium plan, and the webhook that applies
//! subscription events to plans.
//!
//! The webhook trusts nothing unsigned: `Stripe-Signature` (`t=TIMESTAMP,v1=HEX[,v1=…]`) must
//! carry an HMAC-SHA256, under the endpoint's signing secret, of `TIMESTAMP.` followed by the raw
//! body, compared in constant time, with a timestamp within the tolerance of the wall clock (Stripe
//! signs with real time, so the service's possibly accelerated clock is not used here). Events are
//! applied at most once, by event id, in the same transaction as their effect.

use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use tubewatch_core::UserId;
use tubewatch_store::{BillingEvent, Plan};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::config::StripeConfig;
use crate::error::{ApiError, ErrorBody};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(checkout)).routes(routes!(stripe_webhook))
}

fn stripe(state: &AppState) -> Result<&StripeConfig, ApiError> {
    state.config.stripe.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "billing_disabled", "billing is not configured on this server")
    })
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(StdDuration::from_secs(20))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutView {
    /// Where to send the user to pay.
    pub url: String,
    pub session_id: String,
}

#[derive(Debug, Deserialize)]
struct StripeSession {
    id: String,
    url: Option<String>,
}

/// Starts a Stripe Checkout for the premium subscription.
#[utoipa::path(post, path = "/api/v1/billing/checkout", tag = "billing",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, body = CheckoutView),
        (status = 401, body = ErrorBody),
        (status = 404, description = "`billing_disabled`: Stripe is not configured", body = ErrorBody),
        (status = 409, description = "`already_premium`", body = ErrorBody),
        (status = 502, description = "`stripe_unavailable`", body = ErrorBody)))]
pub async fn checkout(State(state): State<AppState>, caller: CurrentUser) -> Result<Json<CheckoutView>, ApiError> {
    start_checkout(&state, &caller).await.map(Json)
}

/// A Stripe Checkout Session for the caller's premium subscription (the API's answer and the
/// account page's upgrade button).
pub(crate) async fn start_checkout(state: &AppState, caller: &CurrentUser) -> Result<CheckoutView, ApiError> {
    let stripe = stripe(state)?;
    if caller.user.plan == Plan::Premium {
        return Err(ApiError::new(StatusCode::CONFLICT, "already_premium", "you are on the premium plan already"));
    }
    let account = state.service().billing_account(caller.user.id).await?;
    let user_id = caller.user.id.to_string();
    let public = stripe.public_url.trim_end_matches('/');
    let mut form: Vec<(&str, String)> = vec![
        ("mode", "subscription".into()),
        ("line_items[0][price]", stripe.premium_price_id.clone()),
        ("line_items[0][quantity]", "1".into()),
        ("success_url", format!("{public}/billing/success?session_id={{CHECKOUT_SESSION_ID}}")),
        ("cancel_url", format!("{public}/billing/cancelled")),
        ("client_reference_id", user_id.clone()),
        ("metadata[user_id]", user_id),
        // Read back by the webhook: a completed checkout grants the plan only for this price.
        ("metadata[price_id]", stripe.premium_price_id.clone()),
    ];
    match account.customer_id {
        Some(customer) => form.push(("customer", customer)),
        None => form.push(("customer_email", caller.user.email.to_string())),
    }
    let url = format!("{}/v1/checkout/sessions", stripe.base_url.trim_end_matches('/'));
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "stripe checkout failed: {e}");
        ApiError::new(StatusCode::BAD_GATEWAY, "stripe_unavailable", "the payment provider could not be reached")
    };
    let response = http()
        .post(&url)
        .bearer_auth(&stripe.secret_key)
        // One Checkout Session per user and minute even if the button is pressed twice.
        .header("Idempotency-Key", format!("checkout-{}-{}", caller.user.id, state.clock.now().timestamp() / 60))
        .form(&form)
        .send()
        .await
        .map_err(|e| unavailable(&e))?;
    if !response.status().is_success() {
        let status = response.status();
        return Err(unavailable(&format!("HTTP {status}")));
    }
    let session: StripeSession = response.json().await.map_err(|e| unavailable(&e))?;
    let url = session.url.ok_or_else(|| unavailable(&"no url in the checkout session"))?;
    tracing::info!(user_id = %caller.user.id, session = %session.id, "checkout session created");
    Ok(CheckoutView { url, session_id: session.id })
}

/// Why a `Stripe-Signature` was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing or malformed Stripe-Signature header")]
    Malformed,
    #[error("timestamp outside the tolerance")]
    Stale,
    #[error("no matching v1 signature")]
    Mismatch,
}

/// Verifies a `Stripe-Signature` header over `payload` as Stripe documents it.
pub fn verify_signature(
    header: &str,
    payload: &[u8],
    secret: &str,
    now: DateTime<Utc>,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now.timestamp() - timestamp).abs() > tolerance_seconds {
        return Err(SignatureError::Stale);
    }
    let matches = signatures.iter().any(|sig| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return false };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        // `verify_slice` compares in constant time.
        mac.verify_slice(sig).is_ok()
    });
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// Signs `payload` as Stripe does (for tests and local tooling).
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(payload);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    pub received: bool,
    /// False for an event already applied, an event type tubewatch ignores, or one naming no
    /// known user.
    pub applied: bool,
}

#[derive(Debug, Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    /// When the event happened (Unix seconds): events are applied by this, not by arrival.
    created: i64,
    data: StripeEventData,
}

#[derive(Debug, Deserialize)]
struct StripeEventData {
    object: Value,
}

fn text(object: &Value, field: &str) -> Option<String> {
    object.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// Receives Stripe events (signed). `checkout.session.completed` (paid, or needing no payment) and
/// `checkout.session.async_payment_succeeded` start the premium plan when the checkout was for the
/// premium price; `customer.subscription.created|updated|deleted` set the plan from the
/// subscription's status and price. Events are applied by their creation time, whatever the order
/// they arrive in, and each at most once; others are acknowledged and ignored.
#[utoipa::path(post, path = "/webhooks/stripe", tag = "billing", request_body(content = String, content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "t=…,v1=…")),
    responses(
        (status = 200, body = WebhookAck),
        (status = 400, description = "`bad_signature` or `bad_event`", body = ErrorBody),
        (status = 404, description = "`billing_disabled`", body = ErrorBody)))]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>, ApiError> {
    let stripe = stripe(&state)?;
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Err(e) = verify_signature(signature, &body, &stripe.webhook_secret, Utc::now(), stripe.tolerance_seconds) {
        tracing::warn!(reason = %e, "stripe webhook refused: {e}");
        return Err(ApiError::bad_request("bad_signature", "the Stripe signature does not verify"));
    }
    let event: StripeEvent =
        serde_json::from_slice(&body).map_err(|_| ApiError::bad_request("bad_event", "not a Stripe event"))?;
    let occurred_at = DateTime::from_timestamp(event.created, 0)
        .ok_or_else(|| ApiError::bad_request("bad_event", "the event's creation time is out of range"))?;
    let ignored = |why: &str| {
        tracing::info!(event_id = %event.id, kind = %event.kind, "stripe event {} not applied: {why}", event.id);
        Ok(Json(WebhookAck { received: true, applied: false }))
    };
    let Some(effect) = effect_of(&event.kind, &event.data.object, &stripe.premium_price_id) else {
        return ignored("not an event tubewatch acts on, or not for the premium price");
    };
    let user = match &effect.user {
        UserRef::Id(id) => state.service().user(*id).await?,
        UserRef::Customer(customer) => state.service().user_by_stripe_customer(customer).await?,
    };
    let Some(user) = user else {
        return ignored("it names no known user");
    };
    let billing = BillingEvent {
        event_id: event.id.clone(),
        kind: event.kind.clone(),
        user_id: user.id,
        customer_id: effect.customer,
        subscription_id: effect.subscription,
        plan: effect.plan,
        occurred_at,
        opens_subscription: effect.opens_subscription,
    };
    let applied = state.service().apply_billing_event(&billing).await?;
    tracing::info!(event_id = %event.id, user_id = %user.id, applied, "stripe event {} ({})", event.id, event.kind);
    Ok(Json(WebhookAck { received: true, applied }))
}

/// Whom an event is about.
#[derive(Debug, PartialEq, Eq)]
enum UserRef {
    /// Our own user id, which checkout carries as `client_reference_id`.
    Id(UserId),
    /// A Stripe customer linked to a user by an earlier checkout.
    Customer(String),
}

/// What an event does, read from its object alone.
#[derive(Debug, PartialEq, Eq)]
struct Effect {
    user: UserRef,
    customer: Option<String>,
    subscription: Option<String>,
    /// `None`: the event links ids but leaves the plan (an unpaid checkout, another price).
    plan: Option<Plan>,
    opens_subscription: bool,
}

/// The effect of one event; `None` for events tubewatch does not act on.
fn effect_of(kind: &str, object: &Value, premium_price: &str) -> Option<Effect> {
    match kind {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            let user = text(object, "client_reference_id")?.parse::<i64>().ok().map(UserId::new)?;
            // An asynchronous payment (bank debit) completes the session `unpaid`; the plan starts
            // with `async_payment_succeeded`.
            let paid = matches!(text(object, "payment_status").as_deref(), Some("paid" | "no_payment_required"));
            let ours = object.pointer("/metadata/price_id").and_then(Value::as_str) == Some(premium_price);
            Some(Effect {
                user: UserRef::Id(user),
                customer: text(object, "customer"),
                subscription: text(object, "subscription"),
                plan: (paid && ours && text(object, "mode").as_deref() == Some("subscription"))
                    .then_some(Plan::Premium),
                opens_subscription: true,
            })
        }
        "customer.subscription.created" | "customer.subscription.updated" | "customer.subscription.deleted" => {
            let customer = text(object, "customer")?;
            let prices: Vec<&str> = object
                .pointer("/items/data")
                .and_then(Value::as_array)
                .map(|items| items.iter().filter_map(|i| i.pointer("/price/id").and_then(Value::as_str)).collect())
                .unwrap_or_default();
            if !prices.contains(&premium_price) {
                return None;
            }
            let status = text(object, "status").unwrap_or_default();
            // `past_due` keeps premium while Stripe retries the payment; Stripe ends the
            // subscription (a `deleted` event) when it gives up.
            let active = matches!(status.as_str(), "active" | "trialing" | "past_due");
            let plan = if kind.ends_with("deleted") || !active { Plan::Free } else { Plan::Premium };
            Some(Effect {
                user: UserRef::Customer(customer.clone()),
                customer: Some(customer),
                subscription: text(object, "id"),
                plan: Some(plan),
                opens_subscription: false,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_stripes_scheme() {
        let now = Utc::now();
        let t = now.timestamp();
        let payload = br#"{"id":"evt_1"}"#;
        let header = sign(payload, "whsec_test", t);
        assert_eq!(verify_signature(&header, payload, "whsec_test", now, 300), Ok(()));
        assert_eq!(verify_signature(&header, payload, "whsec_other", now, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(&header, b"{}", "whsec_test", now, 300), Err(SignatureError::Mismatch));
        let old = sign(payload, "whsec_test", t - 301);
        assert_eq!(verify_signature(&old, payload, "whsec_test", now, 300), Err(SignatureError::Stale));
        assert_eq!(verify_signature("", payload, "whsec_test", now, 300), Err(SignatureError::Malformed));
        assert_eq!(
            verify_signature(&format!("t={t}"), payload, "whsec_test", now, 300),
            Err(SignatureError::Malformed)
        );
        // Several v1 signatures (secret rotation): one match is enough; v0 and unknown keys ignored.
        let good = header.split_once("v1=").map(|(_, s)| s).unwrap_or_default();
        let rotated = format!("t={t},v1={},v0=abc,v1={good},x=1", "00".repeat(32));
        assert_eq!(verify_signature(&rotated, payload, "whsec_test", now, 300), Ok(()));
    }

    fn checkout(payment_status: &str, price: &str) -> Value {
        serde_json::json!({ "id": "cs_1", "mode": "subscription", "client_reference_id": "7", "customer": "cus_1",
            "subscription": "sub_1", "payment_status": payment_status, "metadata": { "price_id": price } })
    }

    #[test]
    fn only_a_paid_checkout_for_the_premium_price_grants_premium() {
        let effect = |kind, object: &Value| effect_of(kind, object, "price_premium").map(|e| e.plan);
        let completed = "checkout.session.completed";
        assert_eq!(effect(completed, &checkout("paid", "price_premium")), Some(Some(Plan::Premium)));
        assert_eq!(effect(completed, &checkout("no_payment_required", "price_premium")), Some(Some(Plan::Premium)));
        // Unpaid (an asynchronous payment still pending) or another price: ids linked, plan kept.
        assert_eq!(effect(completed, &checkout("unpaid", "price_premium")), Some(None));
        assert_eq!(effect(completed, &checkout("paid", "price_other")), Some(None));
        let succeeded = "checkout.session.async_payment_succeeded";
        assert_eq!(effect(succeeded, &checkout("paid", "price_premium")), Some(Some(Plan::Premium)));
        let mut payment = checkout("paid", "price_premium");
        payment["mode"] = "payment".into();
        assert_eq!(effect(completed, &payment), Some(None), "a one-off payment is not the subscription");
        let no_user = serde_json::json!({ "payment_status": "paid" });
        assert_eq!(effect(completed, &no_user), None);
    }

    #[test]
    fn subscriptions_count_only_for_the_premium_price() {
        let subscription = |price: &str, status: &str| {
            serde_json::json!({ "id": "sub_1", "customer": "cus_1", "status": status,
                "items": { "data": [ { "price": { "id": price } } ] } })
        };
        let effect = |kind, object: &Value| effect_of(kind, object, "price_premium");
        let updated = "customer.subscription.updated";
        let active = effect(updated, &subscription("price_premium", "active")).unwrap();
        assert_eq!((active.plan, active.user), (Some(Plan::Premium), UserRef::Customer("cus_1".into())));
        assert_eq!(effect(updated, &subscription("price_premium", "unpaid")).unwrap().plan, Some(Plan::Free));
        assert_eq!(
            effect("customer.subscription.deleted", &subscription("price_premium", "active")).unwrap().plan,
            Some(Plan::Free)
        );
        assert_eq!(effect(updated, &subscription("price_other", "active")), None);
        assert_eq!(
            effect(updated, &serde_json::json!({ "id": "sub_1", "customer": "cus_1", "status": "active" })),
            None
        );
        assert_eq!(effect("invoice.paid", &subscription("price_premium", "active")), None);
    }

    #[test]
    fn signatures_match_an_independent_hmac() {
        // HMAC-SHA256("whsec_test_secret", "1700000000.{}") computed independently with openssl:
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test_secret
        let expected = "t=1700000000,v1=ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3";
        let header = sign(b"{}", "whsec_test_secret", 1_700_000_000);
        assert_eq!(header, expected);
        let now = DateTime::from_timestamp(1_700_000_100, 0).unwrap_or_default();
        assert_eq!(verify_signature(&header, b"{}", "whsec_test_secret", now, 300), Ok(()));
    }
}
