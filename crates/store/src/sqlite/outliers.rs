//! OutlierStore on SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use crate::OutlierStore;

#[async_trait]
impl OutlierStore for SqliteStore {}
