//! A set of migrations as sqlx reads it, with a name for messages and a content hash.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Connection as _, PgConnection};

use crate::Error;

/// The migrations of one profile (or any sqlx migration folder), read once.
#[derive(Debug, Clone)]
pub struct Migrations {
    profile: String,
    dir: PathBuf,
    migrator: Arc<Migrator>,
}

impl Migrations {
    /// Reads `dir` as sqlx does (`sqlx::migrate::Migrator::new`); `profile` names it in
    /// messages.
    pub async fn read(profile: &str, dir: &Path) -> Result<Migrations, Error> {
        let migrator = Migrator::new(dir.to_path_buf())
            .await
            .map_err(|source| Error::Migrate {
                profile: profile.to_owned(),
                dir: dir.to_path_buf(),
                source,
            })?;
        Ok(Migrations {
            profile: profile.to_owned(),
            dir: dir.to_path_buf(),
            migrator: Arc::new(migrator),
        })
    }

    /// The profile's name.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// The folder read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many migrations the folder holds.
    pub fn len(&self) -> usize {
        self.migrator.iter().count()
    }

    /// Whether the folder holds no migration.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// sqlx's view of them.
    pub fn migrator(&self) -> &Migrator {
        &self.migrator
    }

    /// A short hash of the migrations as sqlx sees them (version, checksum, transaction mode):
    /// any change to a migration file gives another hash.
    pub fn hash(&self) -> String {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        for m in self.migrator.iter() {
            h.update(format!(
                "{}:{}:{}\n",
                m.version,
                hex::encode(&*m.checksum),
                m.no_tx
            ));
        }
        hex::encode(h.finalize())[..12].to_owned()
    }

    /// Applies every pending migration on `conn`, as `sqlx migrate run` does.
    pub async fn apply(&self, conn: &mut PgConnection) -> Result<(), Error> {
        migrate(&self.migrator, conn)
            .await
            .map_err(|source| Error::Migrate {
                profile: self.profile.clone(),
                dir: self.dir.clone(),
                source,
            })
    }

    /// Connects to `url` and applies every pending migration there.
    pub async fn apply_to(&self, url: &str) -> Result<(), Error> {
        let mut conn = crate::server::connect(url).await?;
        let result = self.apply(&mut conn).await;
        let _ = conn.close().await;
        result
    }
}

/// `migrator.run(conn)`. `Migrator::run` is generic over `Acquire<'a>`, and the compiler cannot
/// show its future is `Send` for every lifetime, which spawning on the shared runtime needs.
/// `run_direct` takes the connection itself; it is public but hidden from sqlx's docs (its
/// source says it exists to get around this error), so it is used here only, with sqlx
/// pinned (`=0.9.0`) in the workspace.
async fn migrate(migrator: &Migrator, conn: &mut PgConnection) -> Result<(), MigrateError> {
    migrator.run_direct(None, conn, false).await
}
