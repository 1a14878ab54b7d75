//! Proving each profile on a real PostgreSQL with the pinned sqlx-cli.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use migration_deps::extensions;
use pg_server::{DockerStatus, Server};
use sqlx::{Connection, PgConnection};
use xshell::Shell;

use crate::profiles::Profile;
use crate::workspace::Workspace;

pub use pg_server::redact;

/// Makes sure `sqlx` (sqlx-cli) of the pinned version is on PATH, installing it if needed.
pub fn ensure_sqlx_cli(sh: &Shell) -> Result<()> {
    crate::tools::ensure(sh, "sqlx-cli")
}

/// The server at `url`, else a throwaway embedded PostgreSQL (installing the server binaries
/// first when allowed); `why` says what it is for, in the error.
pub fn server(sh: &Shell, url: Option<&str>, why: &str) -> Result<Server> {
    let rt = runtime()?;
    match url {
        Some(u) => rt
            .block_on(Server::at_url(u))
            .with_context(|| format!("cannot use {} for {why}", redact(u))),
        None => {
            crate::system::ensure(sh, "postgresql", crate::system::installs())?;
            rt.block_on(Server::local()).with_context(|| {
                format!("cannot start the embedded PostgreSQL for {why} (or pass --database-url)")
            })
        }
    }
}

/// A runtime for one command's database work (the statements themselves run on pg-server's).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs `sqlx migrate run` for every profile on a fresh database: derived profiles first, then
/// the canonical one; then checks each result.
pub fn prove_profiles(sh: &Shell, ws: &Workspace, url: Option<&str>, quiet: bool) -> Result<()> {
    ensure_sqlx_cli(sh)?;
    let server = server(sh, url, "proving the profiles")?;
    if !quiet && url.is_none() {
        println!(
            "embedded PostgreSQL: {}, started in {:.2} s",
            server.description(),
            server.startup().as_secs_f64()
        );
    }
    let rt = runtime()?;
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
        let target = match url {
            None => match rt.block_on(missing_extension(sh, &server, profile))? {
                Some(ext) => {
                    if docker.is_none() {
                        docker = Some(docker_fallback(&rt, profile, &ext, quiet)?);
                    }
                    docker.as_ref().expect("just set")
                }
                None => &server,
            },
            Some(_) => &server,
        };
        summaries.push(rt.block_on(prove_one(ws, target, profile, expected, quiet))?);
    }
    drop(docker); // removes the container now
    for s in &summaries {
        println!("{s}");
    }
    Ok(())
}

/// The first extension `profile` needs that the embedded server cannot create (pgvector is
/// installed first when installs are allowed).
async fn missing_extension(
    sh: &Shell,
    server: &Server,
    profile: &Profile,
) -> Result<Option<String>> {
    for ext in &profile.requires_extensions {
        if server.has_extension(ext).await? {
            continue;
        }
        if ext == "vector" && crate::system::installs() == crate::system::Installs::Allowed {
            match crate::system::ensure(sh, "pgvector", crate::system::Installs::Allowed) {
                Ok(()) if server.has_extension(ext).await? => continue,
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
    let mut images: Vec<String> = std::env::var(pg_server::IMAGE_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .into_iter()
        .collect();
    for image in [pg_server::LOCAL_IMAGE, pg_server::DEFAULT_IMAGE] {
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
        let status = rt.block_on(pg_server::docker_status(&image));
        match status {
            DockerStatus::Ready => {
                let d = rt.block_on(Server::docker(&image)).with_context(|| {
                    format!("profile {}: starting a container of {image}", profile.name)
                })?;
                if !quiet {
                    println!(
                        "profile {}: the embedded PostgreSQL has no `{ext}`; using {}, started in {:.2} s",
                        profile.name,
                        d.description(),
                        d.startup().as_secs_f64()
                    );
                }
                return Ok(d);
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
    let url = server.create_database(&db).await?;
    let result = async {
        let mut conn = PgConnection::connect(&url).await?;
        for ext in &profile.requires_extensions {
            if !server.has_extension(ext).await? {
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
            server.description(),
            if notes.is_empty() { "" } else { "; " },
            notes.join("; ")
        ))
    }
    .await;
    let _ = server.drop_database(&db).await;
    result
}
