//! `cargo xtask ci`: README's test command. Installs what the suites need and is missing
//! (PostgreSQL's server binaries, pgvector, the pinned cargo-make, cargo-nextest and sqlx-cli;
//! `crate::system`, `crate::tools`), then runs `cargo make ci` (every check and test suite; see
//! Makefile.toml).

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

#[derive(Debug, clap::Args)]
pub struct Ci {
    /// The cargo-make task to run.
    #[arg(default_value = "ci")]
    task: String,
    /// Install nothing: fail naming the install command of whatever is missing.
    #[arg(long)]
    no_install: bool,
}

impl Ci {
    pub fn run(self, sh: &Shell) -> Result<()> {
        if self.no_install {
            crate::system::refuse_installs();
        }
        let installs = crate::system::installs();
        for prerequisite in ["postgresql", "pgvector"] {
            crate::system::ensure(sh, prerequisite, installs)?;
        }
        for tool in ["cargo-make", "cargo-nextest", "sqlx-cli"] {
            crate::tools::ensure(sh, tool)?;
        }
        let task = self.task;
        let refused = if installs == crate::system::Installs::Refused {
            "1"
        } else {
            "0"
        };
        // --time-summary: a table of how long each task took, at the end.
        crate::cargo(cmd!(sh, "cargo make --time-summary {task}"))
            .env(crate::system::NO_INSTALL_ENV, refused)
            .run()
            .with_context(|| format!("`cargo make {task}` failed"))
    }
}
