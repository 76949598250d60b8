//! AbTestStore on PostgreSQL.

use async_trait::async_trait;

use super::PgStore;
use crate::AbTestStore;

#[async_trait]
impl AbTestStore for PgStore {}
