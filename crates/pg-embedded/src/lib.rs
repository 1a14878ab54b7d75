//! Throwaway PostgreSQL clusters started from the machine's own server binaries.
//!
//! A [`Cluster`] is a fresh cluster in a private directory (by default under the workspace's
//! `target/pg-embedded/`): a copy of one `initdb` made once per set of server binaries and kept
//! beside the clusters (`initdb-<key>/`, a new key when the binaries change; [`NO_CACHE_ENV`]
//! runs `initdb` every time), with its own superuser password, listening on a unix socket in that directory and on a free loopback
//! port, with durability switched off (`fsync=off`) because nothing in it is meant to survive.
//! When the process runs as root, the server runs as an unprivileged user (`postgres`, else
//! `nobody`; PostgreSQL refuses to run as root). Dropping the cluster stops the server and
//! removes the directory; so does Ctrl-C (SIGINT/SIGTERM) while any cluster is alive, and a
//! later start sweeps away clusters whose owning process died without cleaning up.
//!
//! ```
//! let cluster = pg_embedded::Cluster::start()?;
//! let url = cluster.create_database("app")?;
//! println!("DATABASE_URL={url}");
//! # Ok::<(), pg_embedded::Error>(())
//! ```
//!
//! For manual use, a *named* cluster outlives the process that started it
//! ([`Builder::persistent`]) and is stopped later with [`Cluster::stop_persistent`].

mod binaries;
mod cleanup;
mod cluster;

pub use binaries::{PgBinaries, REQUIRED, Search};
pub use cluster::{Builder, Cluster, NO_CACHE_ENV, PersistentInfo};

use std::path::PathBuf;

/// Everything that can go wrong starting, using or stopping a cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable PostgreSQL server binaries.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) not found.\n  searched: {searched}\n  \
         install them (Debian/Ubuntu: `apt-get install postgresql`; Fedora: `dnf install postgresql-server`; \
         macOS: `brew install postgresql`) or point PG_BINDIR at the server's bin directory"
    )]
    BinariesNotFound { searched: String },

    /// Running as root, but no unprivileged account exists to run the server as.
    #[error(
        "running as root, and PostgreSQL refuses to run as root; no unprivileged user `{0}` exists \
         (create one, e.g. `useradd --system postgres`, or set PG_EMBEDDED_USER to an existing user)"
    )]
    NoUnprivilegedUser(String),

    /// A program of the server failed.
    #[error("`{program}` failed ({status}):\n{output}")]
    Command {
        program: String,
        status: String,
        output: String,
    },

    /// A file-system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The named persistent cluster does not exist or is not running.
    #[error("no cluster `{name}` in {} (start one with `cargo xtask pg start`)", dir.display())]
    NotRunning { name: String, dir: PathBuf },

    /// A database name that is not a plain identifier.
    #[error(
        "invalid database name {0:?}: use lowercase letters, digits and `_`, starting with a letter or `_`"
    )]
    InvalidName(String),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}
