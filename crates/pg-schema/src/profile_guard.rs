//! Keeps a migration profile off a database that was migrated with another profile.
//!
//! The project has migration profiles (`migrations/profiles.toml`, named in [`crate::profiles`]):
//! the canonical history, with pgvector, and profiles derived from it by an allowlist plus
//! vector-free replacements of some versions. A database remembers,
//! in `_sqlx_migrations`, which files were applied. Left alone, sqlx would handle a mix badly:
//! the full profile's migrator on a v1.0 database applies the versions v1.0 left out (005, 007,
//! …) one by one and only then stops at the first replaced version with a checksum mismatch,
//! leaving a half-upgraded database; the v1.0 migrator on a full database stops with
//! "migration 5 was previously applied but is missing". [`check`] looks before anything runs and
//! says what to do instead.
//!
//! ```no_run
//! # async fn demo(conn: &mut sqlx::PgConnection) -> Result<(), Box<dyn std::error::Error>> {
//! static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");
//! pg_schema::profile_guard::check(conn, pg_schema::profiles::CANONICAL, &MIGRATOR).await?;
//! MIGRATOR.run(conn).await?;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use sqlx::PgConnection;
use sqlx::migrate::Migrator;

use crate::applied;
pub use crate::profiles::UPGRADE_COMMAND;
use crate::profiles::{CANONICAL, DERIVED};

/// What [`check`] found on a database the migrator may run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compatible {
    /// No `_sqlx_migrations` table: a database never migrated with sqlx.
    Fresh,
    /// Every applied version is one of the migrator's, with the same checksum. `pending` are the
    /// versions the migrator will apply.
    Migrated { applied: usize, pending: Vec<i64> },
}

/// Why the migrator must not run on this database.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    OtherProfile(#[from] OtherProfile),
    #[error("cannot read _sqlx_migrations of the database: {0}")]
    Database(#[from] sqlx::Error),
}

/// The database was migrated with another profile than the migrator's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherProfile {
    /// The profile the caller is about to run (e.g. `v1.0`).
    pub profile: String,
    /// The database's name.
    pub database: String,
    /// Applied versions the migrator does not have.
    pub unknown: Vec<i64>,
    /// Versions both have, applied from a file with another checksum than the migrator's.
    pub different: Vec<i64>,
}

impl std::error::Error for OtherProfile {}

impl fmt::Display for OtherProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            profile,
            database,
            unknown,
            different,
        } = self;
        if !unknown.is_empty() {
            write!(
                f,
                "database `{database}` was migrated with another migration profile than `{profile}`: \
                 it records migration versions {} that profile `{profile}` does not have",
                list(unknown)
            )?;
            if !different.is_empty() {
                write!(
                    f,
                    ", and versions {} were applied from other files than `{profile}`'s",
                    list(different)
                )?;
            }
            write!(
                f,
                ". A `{profile}` service cannot run on a database of the {CANONICAL} profile (for example one \
                 upgraded with `{UPGRADE_COMMAND}`): run a release built on the database's profile, \
                 or restore the backup taken before the upgrade. Nothing was changed."
            )
        } else {
            write!(
                f,
                "database `{database}` was migrated with another migration profile than `{profile}`: \
                 versions {} were applied from other files than `{profile}`'s (checksum mismatch). \
                 A database of the {derived} profile must be upgraded before the {CANONICAL} profile runs on it: \
                 `{UPGRADE_COMMAND} --database-url <URL>` (try `--dry-run` first; see the README, \
                 \"Upgrading a {derived} database to the {CANONICAL} profile\"). Nothing was changed.",
                list(different),
                derived = DERIVED.join(" or ")
            )
        }
    }
}

fn list(versions: &[i64]) -> String {
    versions
        .iter()
        .map(|v| format!("{v:03}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that `migrator` (the migrations of profile `profile`) may run on the database `conn`
/// is connected to: every version recorded in `_sqlx_migrations` must be one of the migrator's,
/// with the same checksum. Only reads; call it on the connection that runs the migrator, right
/// before `Migrator::run`.
///
/// Errors with [`OtherProfile`] when the database records versions the migrator does not have
/// (e.g. a v1.0 service on a full database) or versions applied from other files (e.g. the full
/// profile on a v1.0 database; the message names [`UPGRADE_COMMAND`]).
pub async fn check(
    conn: &mut PgConnection,
    profile: &str,
    migrator: &Migrator,
) -> Result<Compatible, GuardError> {
    let Some(rows) = applied::read(conn).await? else {
        return Ok(Compatible::Fresh);
    };
    let known: BTreeMap<i64, &[u8]> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, &*m.checksum))
        .collect();
    let mut unknown = Vec::new();
    let mut different = Vec::new();
    for row in &rows {
        match known.get(&row.version) {
            None => unknown.push(row.version),
            Some(sum) if *sum != row.checksum.as_slice() => different.push(row.version),
            Some(_) => {}
        }
    }
    if unknown.is_empty() && different.is_empty() {
        let pending = known
            .keys()
            .filter(|v| !rows.iter().any(|r| r.version == **v))
            .copied()
            .collect();
        return Ok(Compatible::Migrated {
            applied: rows.len(),
            pending,
        });
    }
    Err(OtherProfile {
        profile: profile.to_owned(),
        database: applied::current_database(conn).await?,
        unknown,
        different,
    }
    .into())
}
