//! `cargo xtask schema-diff A B`: compare the schemas of two databases (or of two profiles, each
//! migrated on a fresh database of a throwaway PostgreSQL).

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use pg_schema::Fingerprint;
use pg_server::{Migrations, Server};
use sqlx::{Connection, PgConnection};

use crate::db::redact;
use crate::profiles::{PROFILE_FILE, Profile, Profiles};

#[derive(Debug, clap::Args)]
pub struct SchemaDiff {
    /// Side A: a PostgreSQL URL (`postgres://…`), or a profile name (`v1.0`, `full`) for a fresh
    /// database on a throwaway local PostgreSQL, migrated with that profile's directory.
    #[arg(value_name = "A")]
    pub a: String,
    /// Side B, like A.
    #[arg(value_name = "B")]
    pub b: String,
}

enum Source {
    Url(String),
    Profile(Profile),
}

impl SchemaDiff {
    pub fn run(self, sh: &xshell::Shell) -> Result<()> {
        let root = crate::project_root();
        let mut profiles: Option<Profiles> = None;
        let mut source = |arg: &str| -> Result<Source> {
            if arg.contains("://") {
                return Ok(Source::Url(arg.to_owned()));
            }
            if profiles.is_none() {
                profiles = Some(Profiles::load(&root)?);
            }
            let all = profiles.as_ref().expect("loaded");
            all.get(arg).cloned().map(Source::Profile).ok_or_else(|| {
                anyhow!(
                    "{arg:?} is neither a PostgreSQL URL (postgres://user:password@host:port/database) nor a profile of {PROFILE_FILE} ({})",
                    all.profiles
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        };
        let sources = [source(&self.a)?, source(&self.b)?];
        let server = if sources.iter().any(|s| matches!(s, Source::Profile(_))) {
            Some(
                crate::db::server(sh, None, "migrating a profile")
                    .context("compare database URLs instead")?,
            )
        } else {
            None
        };
        let rt = crate::db::runtime()?;
        let mut read = Vec::new();
        for (side, s) in ["a", "b"].into_iter().zip(&sources) {
            read.push(rt.block_on(fingerprint(&root, server.as_ref(), side, s))?);
        }
        let [(label_a, fa), (label_b, fb)]: [(String, Fingerprint); 2] =
            read.try_into().expect("two sides");
        let diff = fa.diff(&fb);
        if diff.is_empty() {
            println!(
                "identical: {label_a} and {label_b} have the same schema ({} objects)",
                fa.len()
            );
            return Ok(());
        }
        print!("{}", diff.render(&label_a, &label_b));
        bail!("the schemas differ: {}", diff.summary())
    }
}

/// Reads one side's schema; returns its label and fingerprint.
async fn fingerprint(
    root: &Path,
    server: Option<&Server>,
    side: &str,
    source: &Source,
) -> Result<(String, Fingerprint)> {
    match source {
        Source::Url(url) => {
            let mut conn = PgConnection::connect(url)
                .await
                .with_context(|| format!("cannot connect to {}", redact(url)))?;
            let fp = Fingerprint::read(&mut conn)
                .await
                .with_context(|| format!("cannot read the schema of {}", redact(url)))?;
            let _ = conn.close().await;
            Ok((redact(url), fp))
        }
        Source::Profile(profile) => {
            let server = server.expect("started for profiles");
            for ext in &profile.requires_extensions {
                if !server.has_extension(ext).await? {
                    bail!(
                        "profile {} needs the PostgreSQL extension `{ext}`, which the local PostgreSQL ({}) does not have: \
                         install it (`cargo xtask tools install pgvector` builds pgvector for Debian's PostgreSQL), \
                         or compare against a database URL on a server that has it",
                        profile.name,
                        server.description()
                    );
                }
            }
            let migrations = Migrations::read(&profile.name, &root.join(&profile.dir)).await?;
            let url = server
                .migrated_database(&format!("schema_diff_{side}"), &migrations)
                .await
                .with_context(|| {
                    format!(
                        "migrating a fresh database with profile {} ({}/) failed",
                        profile.name,
                        profile.dir.display()
                    )
                })?;
            let mut conn = PgConnection::connect(&url).await?;
            let fp = Fingerprint::read(&mut conn).await?;
            let _ = conn.close().await;
            Ok((
                format!(
                    "{} (a fresh database migrated with {}/)",
                    profile.name,
                    profile.dir.display()
                ),
                fp,
            ))
        }
    }
}
