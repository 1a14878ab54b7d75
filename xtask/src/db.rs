//! Proving each profile on a real PostgreSQL with the pinned sqlx-cli.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use migration_deps::extensions;
use pg_embedded::Cluster;
use sqlx::{Connection, PgConnection};
use test_db::{DockerServer, DockerStatus};
use xshell::Shell;

use crate::profiles::Profile;
use crate::workspace::Workspace;

/// Makes sure `sqlx` (sqlx-cli) of the pinned version is on PATH, installing it if needed.
pub fn ensure_sqlx_cli(sh: &Shell) -> Result<()> {
    crate::tools::ensure(sh, "sqlx-cli")
}

/// Where the profiles are proven.
enum Server {
    Embedded(Cluster),
    Url(String),
    /// A testcontainers PostgreSQL with pgvector, for profiles the embedded server cannot run.
    Docker(Box<DockerServer>),
}

impl Server {
    /// The URL of the server's `postgres` database, where databases are created and dropped
    /// with SQL (the embedded cluster uses its own helpers instead).
    fn admin_url(&self) -> Option<String> {
        match self {
            Server::Embedded(_) => None,
            Server::Url(u) => Some(u.clone()),
            Server::Docker(d) => Some(d.url("postgres")),
        }
    }

    fn describe(&self) -> String {
        match self {
            Server::Embedded(c) => format!("embedded {}", c.binaries().version()),
            Server::Url(u) => redact(u),
            Server::Docker(d) => format!("Docker image {} (testcontainers)", d.image()),
        }
    }
}

/// Runs `sqlx migrate run` for every profile on a fresh database: derived profiles first, then
/// the canonical one; then checks each result.
pub fn prove_profiles(sh: &Shell, ws: &Workspace, url: Option<&str>, quiet: bool) -> Result<()> {
    ensure_sqlx_cli(sh)?;
    let started = Instant::now();
    let server = match url {
        Some(u) => Server::Url(u.to_owned()),
        None => {
            crate::system::ensure(sh, "postgresql", crate::system::installs())?;
            let c = Cluster::start()
                .context("cannot start the embedded PostgreSQL (or pass --database-url)")?;
            if !quiet {
                println!(
                    "embedded PostgreSQL ({}) on 127.0.0.1:{} started in {:.2} s",
                    c.binaries().version(),
                    c.port(),
                    started.elapsed().as_secs_f64()
                );
            }
            Server::Embedded(c)
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut order: Vec<&Profile> = ws.profiles.derived().collect();
    order.push(ws.profiles.canonical());
    let mut summaries = Vec::new();
    let mut docker: Option<Server> = None;
    for profile in order {
        let expected = match ws.derived.iter().find(|d| d.profile.name == profile.name) {
            Some(d) => d.members.len(),
            None => ws.canonical.len(),
        };
        // The embedded server lacks an extension this profile needs (no --database-url was
        // given): prove the profile in a container that has it, if Docker can give one.
        let target = match &server {
            Server::Embedded(c) => match missing_extension(sh, c, profile)? {
                Some(ext) => {
                    if docker.is_none() {
                        docker = Some(docker_fallback(&rt, profile, &ext, quiet)?);
                    }
                    docker.as_ref().expect("just set")
                }
                None => &server,
            },
            other => other,
        };
        summaries.push(rt.block_on(prove_one(ws, target, profile, expected, quiet))?);
    }
    drop(docker); // removes the container now
    for s in &summaries {
        println!("{s}");
    }
    Ok(())
}

/// The first extension `profile` needs that the embedded cluster cannot create (pgvector is
/// installed first when installs are allowed).
fn missing_extension(sh: &Shell, cluster: &Cluster, profile: &Profile) -> Result<Option<String>> {
    for ext in &profile.requires_extensions {
        if cluster.has_extension(ext)? {
            continue;
        }
        if ext == "vector" && crate::system::installs() == crate::system::Installs::Allowed {
            match crate::system::ensure(sh, "pgvector", crate::system::Installs::Allowed) {
                Ok(()) if cluster.has_extension(ext)? => continue,
                Ok(()) => {}
                Err(e) => eprintln!("note: {e:#}"),
            }
        }
        return Ok(Some(ext.clone()));
    }
    Ok(None)
}

/// Images that may hold pgvector, in order: `DATASTORAGE_TEST_IMAGE` when set, the image
/// `cargo xtask pg-image` builds, `pgvector/pgvector:pg16`.
fn fallback_images() -> Vec<String> {
    let mut images: Vec<String> = std::env::var(test_db::IMAGE_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .into_iter()
        .collect();
    for image in [test_db::LOCAL_IMAGE, test_db::DEFAULT_IMAGE] {
        if !images.iter().any(|i| i == image) {
            images.push(image.to_owned());
        }
    }
    images
}

/// A container of the first local image of [`fallback_images`] (never pulled); else the
/// error naming every way out.
fn docker_fallback(
    rt: &tokio::runtime::Runtime,
    profile: &Profile,
    ext: &str,
    quiet: bool,
) -> Result<Server> {
    let mut tried = Vec::new();
    for image in fallback_images() {
        let status = rt.block_on(test_db::docker_status(&image));
        match status {
            DockerStatus::Ready => {
                let start = Instant::now();
                let d = rt.block_on(DockerServer::start(&image)).with_context(|| {
                    format!("profile {}: starting a container of {image}", profile.name)
                })?;
                if !quiet {
                    println!(
                        "profile {}: the embedded PostgreSQL has no `{ext}`; using Docker image {image} \
                         (testcontainers) on 127.0.0.1:{}, started in {:.2} s",
                        profile.name,
                        d.port(),
                        start.elapsed().as_secs_f64()
                    );
                }
                return Ok(Server::Docker(Box::new(d)));
            }
            DockerStatus::Unreachable(_) => {
                tried.push(status.describe(&image));
                break; // no other image can help
            }
            DockerStatus::ImageMissing => tried.push(status.describe(&image)),
        }
    }
    bail!(
        "profile {} needs the PostgreSQL extension `{ext}`, which the embedded server does not have, \
         and Docker cannot stand in: {}.\n  \
         Either install it for the local server (`cargo xtask tools install pgvector` builds pgvector for Debian's PostgreSQL), \
         or build a local PostgreSQL + pgvector image with `cargo xtask pg-image` (Docker), \
         or pass --database-url pointing at a server that has it",
        profile.name,
        tried.join("; ")
    )
}

async fn prove_one(
    ws: &Workspace,
    server: &Server,
    profile: &Profile,
    expected: usize,
    quiet: bool,
) -> Result<String> {
    let db = format!(
        "sync_{}_{}",
        profile
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id()
    );
    let admin_url = server.admin_url();
    let url = match (server, &admin_url) {
        (Server::Embedded(c), _) => c.create_database(&db)?,
        (_, Some(u)) => {
            let mut conn = PgConnection::connect(u)
                .await
                .with_context(|| format!("cannot connect to {}", redact(u)))?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            with_database(u, &db)?
        }
        (_, None) => unreachable!("only the embedded server has no admin URL"),
    };
    let result = async {
        let mut conn = PgConnection::connect(&url).await?;
        for ext in &profile.requires_extensions {
            let available: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_available_extensions WHERE name = $1")
                    .bind(ext)
                    .fetch_one(&mut conn)
                    .await?;
            if available == 0 {
                bail!(
                    "profile {} needs the PostgreSQL extension `{ext}`, which this server does not have.\n  \
                     Either install it for the local server (`cargo xtask tools install pgvector` builds pgvector for Debian's PostgreSQL), \
                     or pass --database-url pointing at a server that has it (e.g. a container of `cargo xtask pg-image`'s image \
                     or of `pgvector/pgvector:pg16`)",
                    profile.name
                );
            }
        }
        if !quiet {
            println!("==> profile {}: sqlx migrate run --source {}", profile.name, profile.dir.display());
        }
        let start = Instant::now();
        let source = ws.root.join(&profile.dir);
        let mut child = Command::new("sqlx")
            .args(["migrate", "run", "--source"])
            .arg(&source)
            .arg("--database-url")
            .arg(&url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run sqlx")?;
        let stdout = child.stdout.take().expect("piped");
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if !quiet {
                println!("    {line}");
            }
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "profile {}: `sqlx migrate run --source {}` failed:\n{}",
                profile.name,
                profile.dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let elapsed = start.elapsed();
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await?;
        if applied as usize != expected {
            bail!("profile {}: {applied} migrations recorded, expected {expected}", profile.name);
        }
        let mut notes = Vec::new();
        for ext in &profile.forbidden_extensions {
            let present: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_extension WHERE extname = $1")
                .bind(ext)
                .fetch_one(&mut conn)
                .await?;
            if present > 0 {
                bail!("profile {}: extension `{ext}` is installed, but the profile forbids it", profile.name);
            }
            let types: Vec<String> = extensions::known(ext)
                .map(|k| k.types.iter().map(|t| (*t).to_owned()).collect())
                .unwrap_or_default();
            let columns: Vec<String> = sqlx::query_scalar(
                "SELECT table_name || '.' || column_name FROM information_schema.columns \
                 WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND udt_name = ANY($1) ORDER BY 1",
            )
            .bind(&types)
            .fetch_all(&mut conn)
            .await?;
            if !columns.is_empty() {
                bail!(
                    "profile {}: columns of `{ext}` types exist: {}",
                    profile.name,
                    columns.join(", ")
                );
            }
            notes.push(format!("no {ext} extension, no {ext}-typed column"));
        }
        for ext in &profile.requires_extensions {
            let present: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_extension WHERE extname = $1")
                .bind(ext)
                .fetch_one(&mut conn)
                .await?;
            if present == 0 {
                bail!("profile {}: extension `{ext}` was not created by the migrations", profile.name);
            }
            notes.push(format!("extension {ext} installed"));
        }
        conn.close().await?;
        Ok(format!(
            "profile {}: {applied} migrations applied in {:.2} s on a fresh database of {}{}{}",
            profile.name,
            elapsed.as_secs_f64(),
            server.describe(),
            if notes.is_empty() { "" } else { "; " },
            notes.join("; ")
        ))
    }
    .await;
    if let Some(u) = &admin_url
        && let Ok(mut conn) = PgConnection::connect(u).await
    {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
    result
}

/// The same URL with another database name.
fn with_database(url: &str, db: &str) -> Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").context("database URL without `://`")? + 3;
    let path_start = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

pub use test_db::redact;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_database_in_url() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/app?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h", "x").unwrap(),
            "postgres://h/x"
        );
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }
}
