//! Which PostgreSQL server, and a fresh database migrated with a profile on it.
//!
//! Every tool of the workspace and the test harness get their databases here: `cargo xtask
//! sync-migrations` proves each profile on a [`Server`], `schema-diff` and `sqlx-prepare`
//! migrate a fresh database with [`Server::migrated_database`], and `test-db` builds its
//! templates the same way.
//!
//! ```no_run
//! # async fn example() -> Result<(), pg_server::Error> {
//! use pg_server::{Migrations, Server};
//!
//! let server = Server::local().await?; // a throwaway cluster of the machine's binaries
//! let migrations = Migrations::read("example", "path/to/migrations".as_ref()).await?;
//! let url = server.migrated_database("example", &migrations).await?;
//! println!("{} migrations applied in {url}", migrations.len());
//! # Ok(()) }
//! ```
//!
//! # Choosing the server
//!
//! [`Server::from_env`] reads `DATASTORAGE_TEST_DB` ([`PROVIDER_ENV`]):
//!
//! | value | server |
//! |---|---|
//! | `url` | the server at `TEST_DATABASE_URL` (its user must be allowed to create databases) |
//! | `docker` | a container of `DATASTORAGE_TEST_IMAGE` (default `pgvector/pgvector:pg16`, pulled if missing) via testcontainers |
//! | `local` | a throwaway cluster of the machine's server binaries ([`pg_embedded`]) |
//! | `auto` (default) | `url` if `TEST_DATABASE_URL` is set, else `docker` if Docker answers and has the image locally (never pulls), else `local` |
//!
//! A server that cannot work fails within seconds with one message saying what to do.
//! Containers and clusters are removed when their [`Server`] drops, or when the process exits
//! (an `atexit` hook, also reached on Ctrl-C) if it never does; a process killed outright
//! leaves them to the next start's sweep.
//!
//! Every statement runs on a runtime owned by this crate ([`runtime`]), so a [`Server`] works
//! from any runtime (each `#[tokio::test]` has its own) and from synchronous code.

pub mod cleanup;
mod docker;
mod migrations;
pub mod runtime;
mod server;
mod urls;

use std::path::PathBuf;

pub use docker::{
    DEFAULT_IMAGE, DockerServer, DockerStatus, IMAGE_ENV, LOCAL_IMAGE, configured_image,
    docker_status, force_remove, split_image,
};
pub use migrations::Migrations;
pub use server::{Backend, Choice, PROVIDER_ENV, Server, URL_ENV};
/// The Docker client every Docker call of the workspace goes through (testcontainers' own).
pub use testcontainers::bollard;
pub use urls::{redact, with_database};

/// Everything that can go wrong getting a server or a database on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable server: the message says what to do.
    #[error("{0}")]
    Unavailable(String),
    /// A statement or connection failed.
    #[error("{context}: {source}")]
    Sql {
        context: String,
        #[source]
        source: sqlx::Error,
    },
    /// Reading or applying a set of migrations failed.
    #[error("profile {profile} ({}): {source}", dir.display())]
    Migrate {
        profile: String,
        dir: PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A database URL that cannot be parsed.
    #[error("{0}")]
    Url(String),
}

impl Error {
    /// An [`Error::Sql`] with what was being done.
    pub fn sql(context: impl Into<String>, source: sqlx::Error) -> Error {
        Error::Sql {
            context: context.into(),
            source,
        }
    }
}
