//! Isolated, migrated PostgreSQL databases for integration tests.
//!
//! ```
//! use test_db::Profile;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let db = test_db::database(Profile::V1_0).await?; // a private copy of the migrated schema
//! let pool = db.pool().await?;
//! let events: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
//!     .fetch_one(&pool)
//!     .await?;
//! assert_eq!(events, 0);
//! # Ok(()) }
//! // `db` dropped: the database is dropped too (kept, with its URL printed, if the test panicked)
//! ```
//!
//! # Where the server comes from
//!
//! One PostgreSQL server is shared by every test of the process, started on first use and
//! chosen by `DATASTORAGE_TEST_DB` ([`pg_server::Server::from_env`]: `url`, `docker`, `local`
//! or `auto`, the default). A provider that cannot work fails within seconds with one message
//! saying what to do; the failure is remembered, so every test of the process reports it at
//! once. The container or cluster is removed when the process exits (an `atexit` hook, also
//! reached on Ctrl-C); a process killed outright leaves them to the next run's sweep.
//!
//! # Isolation
//!
//! Each [`Profile`] is migrated once per server into a template database named after a hash
//! of its migration files (a changed migration gives a new template; building is serialised
//! across processes by an advisory lock). [`database`] then gives each test its own
//! `CREATE DATABASE … TEMPLATE` copy, which is dropped when the handle drops. A few copies per
//! profile (`DATASTORAGE_TEST_SPARES`, default 2) are made ahead in the background, so a test
//! rarely waits for the copy; copies left unused are dropped at exit.
//!
//! Every administrative statement runs on a runtime owned by this crate, so the handles work
//! from any runtime (each `#[tokio::test]` has its own); pools returned by
//! [`TestDatabase::pool`] belong to the caller's runtime.

mod profile;
mod provider;
mod template;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pg_server::{Migrations, runtime};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};

pub use pg_server::{Backend, Choice, Error, PROVIDER_ENV, URL_ENV};
pub use profile::Profile;
pub use provider::SPARES_ENV;

use provider::Server;

/// The repository root, from this crate's location (`crates/test-db`).
const WORKSPACE_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const DROP_LIMIT: Duration = Duration::from_secs(30);

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Profile {
    /// The profile's migration directory.
    pub fn dir(self) -> PathBuf {
        let path = PathBuf::from(WORKSPACE_ROOT).join(self.dir_name());
        path.canonicalize().unwrap_or(path)
    }

    /// Whether the profile needs the pgvector extension.
    pub fn needs_vector(self) -> bool {
        self.required_extensions().contains(&"vector")
    }

    /// The profile's migrations, read from [`Profile::dir`] now.
    pub async fn migrations(self) -> Result<Migrations, Error> {
        Migrations::read(self.name(), &self.dir()).await
    }

    /// sqlx's view of the profile's migrations, read from [`Profile::dir`] now.
    pub async fn migrator(self) -> Result<sqlx::migrate::Migrator, Error> {
        let dir = self.dir();
        sqlx::migrate::Migrator::new(dir.clone())
            .await
            .map_err(|source| Error::Migrate {
                profile: self.name().to_owned(),
                dir,
                source,
            })
    }
}

/// A database of its own for one test; dropped with the handle unless the test panicked.
pub struct TestDatabase {
    server: Arc<Server>,
    name: String,
    url: String,
    profile: Option<Profile>,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .field("profile", &self.profile)
            .field("backend", &self.server.pg.backend())
            .finish()
    }
}

/// A fresh copy of `profile`'s migrated template: the way tests get a database.
///
/// Up to `DATASTORAGE_TEST_SPARES` (default 2) copies per profile are made ahead, in the
/// background, so a test usually finds its copy ready.
pub async fn database(profile: Profile) -> Result<TestDatabase, Error> {
    let server = provider::server().await?;
    let s = server.clone();
    let name = runtime::run(async move { s.copy(profile).await }).await?;
    Ok(TestDatabase::new(server, name, Some(profile)))
}

/// Like [`database`], but always runs `CREATE DATABASE … TEMPLATE` now instead of taking a
/// copy made ahead (what `cargo xtask bench test-db` measures beside [`database`]).
pub async fn database_copied_now(profile: Profile) -> Result<TestDatabase, Error> {
    let server = provider::server().await?;
    let s = server.clone();
    let name = runtime::run(async move {
        let template = s.template(profile).await?;
        s.copy_now(profile, &template).await
    })
    .await?;
    Ok(TestDatabase::new(server, name, Some(profile)))
}

/// Waits until no copy of `profile`'s template is being made ahead in the background: the
/// benchmark times its baselines on a server with nothing else to do.
pub async fn background_settled(profile: Profile) -> Result<(), Error> {
    let server = provider::server().await?;
    runtime::run(async move {
        server.settled(profile).await;
        Ok(())
    })
    .await
}

/// A new database with `profile` migrated into it directly, without the template: for tests
/// of the migrations themselves, and as the baseline `cargo xtask bench test-db` compares to.
pub async fn fresh_database(profile: Profile) -> Result<TestDatabase, Error> {
    let server = provider::server().await?;
    let migrations = profile.migrations().await?;
    let name = unique_name(&format!("fresh_{}", profile.ident()));
    server.pg.migrated_database(&name, &migrations).await?;
    Ok(TestDatabase::new(server, name, Some(profile)))
}

/// A new empty database.
pub async fn empty_database() -> Result<TestDatabase, Error> {
    let server = provider::server().await?;
    let name = unique_name("empty");
    server.pg.create_database(&name).await?;
    Ok(TestDatabase::new(server, name, None))
}

/// The provider serving this process, starting it if needed, and a description of the
/// server (for logs and benchmarks).
pub async fn backend() -> Result<(Backend, String), Error> {
    let server = provider::server().await?;
    Ok((server.pg.backend(), server.pg.description().to_owned()))
}

impl TestDatabase {
    fn new(server: Arc<Server>, name: String, profile: Option<Profile>) -> Self {
        let url = server.pg.url(&name);
        Self {
            server,
            name,
            url,
            profile,
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for the database, usable by sqlx, `psql` and libpq.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The profile migrated into it (`None` for [`empty_database`]).
    pub fn profile(&self) -> Option<Profile> {
        self.profile
    }

    /// The provider serving it.
    pub fn backend(&self) -> Backend {
        self.server.pg.backend()
    }

    /// A connection pool on the caller's runtime (up to 5 connections).
    pub async fn pool(&self) -> Result<PgPool, Error> {
        PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&self.url)
            .await
            .map_err(|e| Error::sql(format!("connecting to test database {}", self.name), e))
    }

    /// A single connection on the caller's runtime.
    pub async fn connect(&self) -> Result<PgConnection, Error> {
        self.server.pg.connect(&self.name).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let lifetime = match self.server.pg.backend() {
                Backend::Url => "it stays on that server until you drop it",
                Backend::Docker | Backend::Local => {
                    "the server is removed when the test process exits; to inspect such a \
                     database later, run the tests against a server of your own \
                     (`export $(cargo xtask pg start)`, then TEST_DATABASE_URL=$DATABASE_URL)"
                }
            };
            eprintln!(
                "test-db: the test panicked; keeping its database {} for inspection: {} ({lifetime})",
                self.name, self.url
            );
            return;
        }
        let server = self.server.clone();
        let name = self.name.clone();
        match runtime::block_on(
            async move { server.pg.drop_database(&name).await },
            DROP_LIMIT,
        ) {
            Some(Ok(())) | None => {}
            Some(Err(e)) => eprintln!("test-db: could not drop {}: {e}", self.name),
        }
    }
}

/// `test_<what>_<pid>_<n>_<random>`: unique across threads, processes and hosts sharing a server.
pub(crate) fn unique_name(what: &str) -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(n);
    format!(
        "test_{what}_{}_{n}_{:04x}",
        std::process::id(),
        h.finish() & 0xffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_identifiers() {
        let a = unique_name("v1_0");
        let b = unique_name("v1_0");
        assert_ne!(a, b);
        assert!(
            a.len() <= 63
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }

    #[test]
    fn profiles_point_at_the_repository_folders() {
        assert!(Profile::V1_0.dir().join("001_initial_schema.sql").is_file());
        assert!(
            Profile::Full
                .dir()
                .join("015_create_workflow_catalog_table.sql")
                .is_file()
        );
    }
}
