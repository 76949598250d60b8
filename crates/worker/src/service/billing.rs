//! Billing as the application keeps it: a user's Stripe ids, and the payment provider's events
//! applied once each (the plan they grant or end, with the audit entry). Talking to Stripe and
//! verifying its signatures are the web edge's.

use tubewatch_core::UserId;
use tubewatch_store::{BillingAccount, BillingEvent, StoreError, User};

use super::Service;

impl Service<'_> {
    /// `user`'s Stripe ids, empty before their first checkout.
    pub async fn billing_account(&self, user: UserId) -> Result<BillingAccount, StoreError> {
        self.store.billing_account(user).await
    }

    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.store.user(id).await
    }

    /// The user a Stripe customer id belongs to.
    pub async fn user_by_stripe_customer(&self, customer_id: &str) -> Result<Option<User>, StoreError> {
        self.store.user_by_stripe_customer(customer_id).await
    }

    /// Applies a billing event once; `false` for one already received or stale (recorded, and
    /// nothing else changes).
    pub async fn apply_billing_event(&self, event: &BillingEvent) -> Result<bool, StoreError> {
        self.store.apply_billing_event(event, self.clock.now()).await
    }
}
