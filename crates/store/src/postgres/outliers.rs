//! OutlierStore on PostgreSQL.

use async_trait::async_trait;

use super::PgStore;
use crate::OutlierStore;

#[async_trait]
impl OutlierStore for PgStore {}
