//! One migrated template database per profile and migration content, shared by every test
//! process using the server.

use pg_server::{Migrations, Server};
use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Connection};

use crate::{Error, Profile};

/// How long a process waits for another one that is building the same template.
const LOCK_TIMEOUT: &str = "300s";

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
    let migrations = profile.migrations().await?;
    let name = template_name(profile, &migrations.hash());
    if server.database_exists(&name).await? {
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
        Ok(_) => build(server, profile, &migrations, &name).await,
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
    migrations: &Migrations,
    name: &str,
) -> Result<(), Error> {
    if server.database_exists(name).await? {
        return Ok(()); // built by another process while this one waited
    }
    let building = format!("tplb_{}", &name[4..]);
    server.drop_database(&building).await?;
    server.migrated_database(&building, migrations).await?;
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

    let pattern = format!("tpl\\_{}\\_%", profile.ident());
    let keep = name.to_owned();
    let admin = server.clone();
    let outdated: Vec<String> = pg_server::runtime::run(async move {
        sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname <> $2",
        )
        .bind(pattern)
        .bind(keep)
        .fetch_all(admin.admin())
        .await
    })
    .await
    .map_err(|e| Error::sql("listing older templates", e))?;
    for old in outdated {
        let _ = server
            .execute(format!("ALTER DATABASE \"{old}\" IS_TEMPLATE false"))
            .await;
        let _ = server.drop_database(&old).await;
    }
    Ok(())
}

async fn check_vector(server: &Server, profile: Profile) -> Result<(), Error> {
    if server.has_extension("vector").await? {
        return Ok(());
    }
    Err(Error::Unavailable(format!(
        "profile {} needs the pgvector extension, which the {} ({}) does not have.\n  \
         local: `cargo xtask tools install pgvector` builds it for Debian's PostgreSQL;\n  \
         docker: `cargo xtask pg-image`, then DATASTORAGE_TEST_DB=docker \
         DATASTORAGE_TEST_IMAGE={};\n  \
         url: point TEST_DATABASE_URL at a server with pgvector",
        profile.name(),
        server.backend().as_str(),
        server.description(),
        pg_server::LOCAL_IMAGE,
    )))
}

/// The advisory-lock key of a template name (first 8 bytes of its SHA-256).
fn lock_key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("test-db template {name}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}
