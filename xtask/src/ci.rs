//! `cargo xtask ci`: README's test command. Installs the pinned cargo-make when it is missing
//! (`crate::tools`), then runs `cargo make ci` (every check and test suite; see Makefile.toml).

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

#[derive(Debug, clap::Args)]
pub struct Ci {
    /// The cargo-make task to run.
    #[arg(default_value = "ci")]
    task: String,
}

impl Ci {
    pub fn run(self, sh: &Shell) -> Result<()> {
        crate::tools::ensure(sh, "cargo-make")?;
        let task = self.task;
        cmd!(sh, "cargo make {task}")
            .run()
            .with_context(|| format!("`cargo make {task}` failed"))
    }
}
