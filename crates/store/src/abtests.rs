//! A/B tests: YouTube account connections (tokens encrypted by the caller), tests, variants, schedule, swaps.

use async_trait::async_trait;

#[async_trait]
pub trait AbTestStore: Send + Sync {}
