//! Accounts: sessions, API tokens, plans and limits, billing events, audit log (issue: accounts and API).

use async_trait::async_trait;

#[async_trait]
pub trait AccountStore: Send + Sync {}
