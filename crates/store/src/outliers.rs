//! Weekly outliers: channel band snapshots, outlier results, digests sent.

use async_trait::async_trait;

#[async_trait]
pub trait OutlierStore: Send + Sync {}
