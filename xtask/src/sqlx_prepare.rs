//! `cargo xtask sqlx-prepare [--check]`: regenerate (or verify) the offline query data in `.sqlx/`.
//!
//! The service's queries are checked by sqlx at build time against the schema of the test
//! profile. This command migrates a fresh database of the embedded PostgreSQL (or the server at
//! `--database-url`) with that profile and runs `cargo sqlx prepare --workspace` against it, so
//! `.sqlx/` always matches the committed migrations and no developer needs a database of their
//! own.

use anyhow::{Context, Result};
use pg_server::Migrations;
use xshell::{Shell, cmd};

use crate::db::{ensure_sqlx_cli, redact};
use crate::profiles::Profiles;

#[derive(Debug, clap::Args)]
pub struct SqlxPrepare {
    /// Verify that `.sqlx/` is up to date instead of writing it.
    #[arg(long)]
    check: bool,
    /// Use this server's database (it must be empty or already on the test profile) instead of
    /// the embedded PostgreSQL.
    #[arg(long, env = "SQLX_PREPARE_DATABASE_URL")]
    database_url: Option<String>,
}

impl SqlxPrepare {
    pub fn run(self, sh: &Shell) -> Result<()> {
        ensure_sqlx_cli(sh)?; // `cargo sqlx prepare`
        let root = crate::project_root();
        let profiles = Profiles::load(&root)?;
        let profile = profiles
            .get(&profiles.test_profile)
            .context("the test profile named in migrations/profiles.toml does not exist")?;
        let source = root.join(&profile.dir);
        let rt = crate::db::runtime()?;
        let migrations = rt.block_on(Migrations::read(&profile.name, &source))?;
        // A database of its own on the embedded server, or the given one, migrated the same way.
        let (_server, url) = match self.database_url {
            Some(url) => {
                eprintln!(
                    "migrating {} with profile {} ({})",
                    redact(&url),
                    profile.name,
                    profile.dir.display()
                );
                rt.block_on(migrations.apply_to(&url))
                    .context("migrating the query-check database failed")?;
                (None, url)
            }
            None => {
                let server = crate::db::server(sh, None, "checking the queries")?;
                eprintln!(
                    "migrating a fresh database of {} with profile {} ({})",
                    server.description(),
                    profile.name,
                    profile.dir.display()
                );
                let url = rt
                    .block_on(server.migrated_database("sqlx_prepare", &migrations))
                    .context("migrating the query-check database failed")?;
                (Some(server), url)
            }
        };
        let check = self.check.then_some("--check");
        let result = crate::cargo(cmd!(sh, "cargo sqlx prepare --workspace {check...}"))
            .env("DATABASE_URL", &url)
            .env("SQLX_OFFLINE", "false")
            .run();
        match (result, self.check) {
            (Ok(()), true) => {
                eprintln!(".sqlx/ is up to date");
                Ok(())
            }
            (Ok(()), false) => {
                eprintln!(".sqlx/ written; commit it");
                Ok(())
            }
            (Err(e), true) => Err(e).context(
                ".sqlx/ is out of date with the queries or the schema; run `cargo xtask sqlx-prepare` and commit the result",
            ),
            (Err(e), false) => Err(e).context("cargo sqlx prepare failed"),
        }
    }
}
