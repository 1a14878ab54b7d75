//! `cargo xtask ci`: README's test command. Installs the pinned cargo-make when it is missing,
//! then runs `cargo make ci` (every check and test suite; see Makefile.toml).

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

/// The cargo-make version the project is pinned to (keep in step with Makefile.toml).
pub const CARGO_MAKE_VERSION: &str = "0.37.24";

#[derive(Debug, clap::Args)]
pub struct Ci {
    /// The cargo-make task to run.
    #[arg(default_value = "ci")]
    task: String,
}

impl Ci {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let current = cmd!(sh, "cargo make --version")
            .quiet()
            .ignore_stderr()
            .read()
            .unwrap_or_default();
        if !current.split_whitespace().any(|w| w == CARGO_MAKE_VERSION) {
            let found = if current.is_empty() {
                "not installed".to_owned()
            } else {
                current
            };
            eprintln!(
                "note: cargo-make {CARGO_MAKE_VERSION} is needed ({found}); installing it with cargo (a few minutes, once)"
            );
            cmd!(sh, "cargo install cargo-make --version ={CARGO_MAKE_VERSION} --locked")
                .run()
                .context("cannot install cargo-make; install it by hand: cargo install cargo-make --version =0.37.24 --locked")?;
        }
        let task = self.task;
        cmd!(sh, "cargo make {task}")
            .run()
            .with_context(|| format!("`cargo make {task}` failed"))
    }
}
