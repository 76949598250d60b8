//! AbTestStore on SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use crate::AbTestStore;

#[async_trait]
impl AbTestStore for SqliteStore {}
