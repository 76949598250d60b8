//! The schema, written once in `migrations/` for both backends and rendered per dialect here.
//!
//! A migration names its column types by meaning (`{time}`, `{id}`, …); `render` turns each into
//! the dialect's type. Databases created before the schema had one source recorded the checksums
//! of the two per-dialect files; `LEGACY_CHECKSUMS` lets those migrations be recognised and their
//! recorded checksums moved to the rendered text's, so that upgrading changes nothing else.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

/// The SQL dialects the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// Every migration, in order: version, description (as sqlx derives it from a file name), text.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "foundation", include_str!("../migrations/0001_foundation.sql")),
    (2, "accounts", include_str!("../migrations/0002_accounts.sql")),
    (3, "outliers", include_str!("../migrations/0003_outliers.sql")),
    (4, "abtests", include_str!("../migrations/0004_abtests.sql")),
    (5, "ui", include_str!("../migrations/0005_ui.sql")),
    (6, "digest settings", include_str!("../migrations/0006_digest_settings.sql")),
    (7, "webhooks", include_str!("../migrations/0007_webhooks.sql")),
    (8, "operator targets", include_str!("../migrations/0008_operator_targets.sql")),
    (9, "security", include_str!("../migrations/0009_security.sql")),
    (10, "password resets", include_str!("../migrations/0010_password_resets.sql")),
    (11, "email verification", include_str!("../migrations/0011_email_verification.sql")),
    (12, "reach", include_str!("../migrations/0012_reach.sql")),
    (13, "abtest design", include_str!("../migrations/0013_abtest_design.sql")),
];

/// The first 8 bytes (hex) of the SHA-384 that databases created from the former per-dialect files
/// recorded, per version: (version, SQLite's, PostgreSQL's).
const LEGACY_CHECKSUMS: &[(i64, &str, &str)] = &[
    (1, "9b1b545cf26e6c0b", "5b7c9440c83312f8"),
    (2, "5f2cd658ffcaed7f", "8a0daa6b6486f5c7"),
    (3, "89ae9045189b674c", "9ec6b3e99d793c82"),
    (4, "f732b6ff99ed5c21", "ff786efe51d3e953"),
    (5, "84596797b5d4f018", "8d3e4085833972d0"),
    (6, "e51b661791d0ad7e", "f3afd839ba924aa7"),
    (7, "2eb18e96c63369a8", "7ddf3d8adbeb96c7"),
    (8, "5784a1092e62ab19", "983259cee9f9b109"),
];

/// The dialect's words for the schema's types.
fn words(dialect: Dialect) -> [(&'static str, &'static str); 7] {
    match dialect {
        Dialect::Sqlite => [
            ("{time}", "INTEGER"),
            ("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT"),
            ("{int}", "INTEGER"),
            ("{bool}", "INTEGER"),
            ("{bytes}", "BLOB"),
            ("{real}", "REAL"),
            ("{without_rowid}", " WITHOUT ROWID"),
        ],
        Dialect::Postgres => [
            ("{time}", "TIMESTAMPTZ"),
            ("{id}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
            ("{int}", "BIGINT"),
            ("{bool}", "BOOLEAN"),
            ("{bytes}", "BYTEA"),
            ("{real}", "DOUBLE PRECISION"),
            ("{without_rowid}", ""),
        ],
    }
}

/// A migration's text in `dialect`.
pub(crate) fn render(sql: &str, dialect: Dialect) -> String {
    words(dialect).iter().fold(sql.to_owned(), |sql, (word, ty)| sql.replace(word, ty))
}

/// The migrator for `dialect`: every migration rendered, checksummed over the rendered text.
pub(crate) fn migrator(dialect: Dialect) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            let sql = AssertSqlSafe(render(sql, dialect)).into_sql_str();
            Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, sql, false)
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// The checksum to record instead of `applied` for migration `version`, when `applied` is the
/// former per-dialect file's.
pub(crate) fn adopted_checksum<'m>(
    migrator: &'m Migrator,
    dialect: Dialect,
    version: i64,
    applied: &[u8],
) -> Option<&'m [u8]> {
    let &(_, sqlite, postgres) = LEGACY_CHECKSUMS.iter().find(|(v, _, _)| *v == version)?;
    let legacy = match dialect {
        Dialect::Sqlite => sqlite,
        Dialect::Postgres => postgres,
    };
    let prefix = u64::from_be_bytes(applied.get(..8)?.try_into().ok()?);
    let current = &migrator.iter().find(|m| m.version == version)?.checksum;
    (u64::from_str_radix(legacy, 16).ok()? == prefix && applied != current.as_ref()).then_some(current.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_rendered_in_both_dialects() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            for (version, _, sql) in MIGRATIONS {
                let sql = render(sql, dialect);
                assert!(!sql.contains('{'), "migration {version} keeps a word unrendered in {dialect:?}");
            }
        }
    }

    #[test]
    fn versions_are_dense_and_match_the_legacy_table() {
        for (i, (version, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1);
        }
        for (version, sqlite, postgres) in LEGACY_CHECKSUMS {
            assert!(MIGRATIONS.iter().any(|(v, _, _)| v == version));
            for legacy in [sqlite, postgres] {
                assert!(legacy.len() == 16 && legacy.bytes().all(|b| b.is_ascii_hexdigit()), "{legacy}");
            }
        }
    }

    #[test]
    fn a_legacy_checksum_is_adopted_once_and_nothing_else_is() {
        let migrator = migrator(Dialect::Sqlite);
        let mut legacy = vec![0x9b, 0x1b, 0x54, 0x5c, 0xf2, 0x6e, 0x6c, 0x0b];
        legacy.resize(48, 0);
        let current = adopted_checksum(&migrator, Dialect::Sqlite, 1, &legacy).expect("legacy v1 is adopted");
        assert_eq!(current, migrator.iter().next().unwrap().checksum.as_ref());
        assert_eq!(adopted_checksum(&migrator, Dialect::Sqlite, 1, current), None, "already adopted");
        assert_eq!(adopted_checksum(&migrator, Dialect::Postgres, 1, &legacy), None, "another dialect's");
        assert_eq!(adopted_checksum(&migrator, Dialect::Sqlite, 2, &legacy), None, "another version's");
    }
}
