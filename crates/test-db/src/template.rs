//! One migrated template database per profile and migration content, shared by every test
//! process using the server.

use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, Connection};

use crate::provider::Server;
use crate::{Error, Profile};

/// How long a process waits for another one that is building the same template.
const LOCK_TIMEOUT: &str = "300s";

/// A short hash of the migrations as sqlx sees them (version, checksum, transaction mode):
/// any change to a migration file gives another template.
pub(crate) fn migrations_hash(migrator: &Migrator) -> String {
    let mut h = Sha256::new();
    for m in migrator.iter() {
        h.update(format!(
            "{}:{}:{}\n",
            m.version,
            hex::encode(&*m.checksum),
            m.no_tx
        ));
    }
    hex::encode(h.finalize())[..12].to_owned()
}

/// `migrator.run(conn)`. `Migrator::run` is generic over `Acquire<'a>`, and the compiler cannot
/// show its future is `Send` for every lifetime, which spawning on the shared runtime needs.
/// `run_direct` takes the connection itself; it is public but hidden from sqlx's docs (its
/// source says it exists to get around this error), so it is used here only, with sqlx
/// pinned (`=0.9.0`) in the workspace.
pub(crate) async fn migrate(
    migrator: &Migrator,
    conn: &mut sqlx::PgConnection,
) -> Result<(), sqlx::migrate::MigrateError> {
    migrator.run_direct(None, conn, false).await
}

/// The template's name: `tpl_<profile>_<hash>`.
pub(crate) fn template_name(profile: Profile, hash: &str) -> String {
    format!("tpl_{}_{hash}", profile.ident())
}

/// Returns the name of `profile`'s template on `server`, creating it when missing.
///
/// A template is built under a temporary name, migrated, closed to connections, then renamed,
/// so its name exists only when it is complete. Building happens under a PostgreSQL advisory
/// lock keyed by the name, so parallel tests and processes build it once; the lock is a
/// session lock on a connection of its own, released when that connection closes, even
/// after an error. Older templates of the same profile are dropped afterwards.
pub(crate) async fn ensure(server: &Server, profile: Profile) -> Result<String, Error> {
    let migrator = profile.migrator().await?;
    let name = template_name(profile, &migrations_hash(&migrator));
    if exists(server, &name).await? {
        return Ok(name);
    }
    if profile.needs_vector() {
        check_vector(server, profile).await?;
    }

    let mut lock = server.connect("postgres").await?;
    let key = lock_key(&name);
    let locked = async {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "SET lock_timeout = '{LOCK_TIMEOUT}'"
        )))
        .execute(&mut lock)
        .await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut lock)
            .await
    }
    .await;
    let result = match locked {
        Ok(_) => build(server, profile, &migrator, &name).await,
        Err(e) => Err(Error::sql(
            format!("waiting for the lock on template {name} (another process builds it)"),
            e,
        )),
    };
    let _ = lock.close().await;
    result.map(|()| name)
}

async fn build(
    server: &Server,
    profile: Profile,
    migrator: &Migrator,
    name: &str,
) -> Result<(), Error> {
    if exists(server, name).await? {
        return Ok(()); // built by another process while this one waited
    }
    let building = format!("tplb_{}", &name[4..]);
    server
        .execute(format!(
            "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
        ))
        .await?;
    server
        .execute(format!("CREATE DATABASE \"{building}\""))
        .await?;
    let migrated = async {
        let mut conn = server.connect(&building).await?;
        let run = migrate(migrator, &mut conn).await;
        let _ = conn.close().await;
        run.map_err(|e| Error::Migrate {
            profile: profile.name(),
            dir: profile.dir(),
            source: e,
        })
    }
    .await;
    if let Err(e) = migrated {
        let _ = server
            .execute(format!(
                "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
            ))
            .await;
        return Err(e);
    }
    server
        .execute(format!(
            "ALTER DATABASE \"{building}\" RENAME TO \"{name}\""
        ))
        .await?;
    // Nobody may connect to a template: one open session would make every clone fail.
    server
        .execute(format!(
            "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"
        ))
        .await?;

    let outdated: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname <> $2",
    )
    .bind(format!("tpl\\_{}\\_%", profile.ident()))
    .bind(name)
    .fetch_all(&server.admin)
    .await
    .map_err(|e| Error::sql("listing older templates", e))?;
    for old in outdated {
        let _ = server
            .execute(format!("ALTER DATABASE \"{old}\" IS_TEMPLATE false"))
            .await;
        let _ = server
            .execute(format!("DROP DATABASE IF EXISTS \"{old}\" WITH (FORCE)"))
            .await;
    }
    Ok(())
}

async fn exists(server: &Server, name: &str) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&server.admin)
        .await
        .map_err(|e| Error::sql(format!("looking up database {name}"), e))
}

async fn check_vector(server: &Server, profile: Profile) -> Result<(), Error> {
    let available: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')",
    )
    .fetch_one(&server.admin)
    .await
    .map_err(|e| Error::sql("looking up the vector extension", e))?;
    if available {
        return Ok(());
    }
    Err(Error::Unavailable(format!(
        "profile {} needs the pgvector extension, which the {} ({}) does not have.\n  \
         local: `cargo xtask tools install pgvector` builds it for Debian's PostgreSQL;\n  \
         docker: `cargo xtask pg-image`, then DATASTORAGE_TEST_DB=docker \
         DATASTORAGE_TEST_IMAGE={};\n  \
         url: point TEST_DATABASE_URL at a server with pgvector",
        profile.name(),
        server.backend.as_str(),
        server.description,
        crate::docker::LOCAL_IMAGE,
    )))
}

/// The advisory-lock key of a template name (first 8 bytes of its SHA-256).
fn lock_key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("test-db template {name}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}
