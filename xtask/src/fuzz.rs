//! `cargo xtask fuzz`: the service's libFuzzer target (`services/datastorage/fuzz`, inputs
//! decoded by `datastorage::fuzzing`) for a bounded time, then its corpus minimized. The corpus
//! is committed: the API suite replays every input on a real PostgreSQL (`fuzz_corpus` tests),
//! so what the fuzzer once found stays a regression test. Needs nightly Rust (libFuzzer's
//! instrumentation) and the pinned cargo-fuzz, which it installs when missing.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

/// The fuzz target, in `services/datastorage/fuzz/fuzz_targets/`.
const TARGET: &str = "requests";

#[derive(Debug, clap::Args)]
pub struct Fuzz {
    /// How long to fuzz, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Minimize the corpus afterwards (`cargo fuzz cmin`); `--no-cmin` keeps every new input.
    #[arg(long = "no-cmin", action = clap::ArgAction::SetFalse)]
    cmin: bool,
}

impl Fuzz {
    pub fn run(self, sh: &Shell) -> Result<()> {
        if cmd!(sh, "rustup run nightly rustc --version")
            .quiet()
            .ignore_stderr()
            .read()
            .is_err()
        {
            bail!(
                "fuzzing needs nightly Rust (libFuzzer's instrumentation): run `rustup toolchain install nightly`"
            );
        }
        crate::tools::ensure(sh, "cargo-fuzz")?;
        let service = crate::project_root().join("services/datastorage");
        let corpus = service.join("fuzz/corpus").join(TARGET);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("cannot create {}", corpus.display()))?;
        let before = count(&corpus)?;
        // Apart from the main build: other flags, and a build of its own workspace.
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::project_root().join("target"))
            .join("fuzz");
        let _dir = sh.push_dir(&service);
        let seconds = format!("-max_total_time={}", self.seconds);
        eprintln!(
            "fuzzing {TARGET} for {} s (corpus: {} inputs in {})",
            self.seconds,
            before,
            corpus.display()
        );
        crate::cargo(cmd!(
            sh,
            "cargo +nightly fuzz run {TARGET} --target-dir {target_dir} -- {seconds}"
        ))
        .env("SQLX_OFFLINE", "true")
        .run()
        .with_context(|| {
            format!(
                "the fuzzer found an input the service mishandles; it is in {}; fix the cause, then add the input to {} so that the API suite replays it",
                service.join("fuzz/artifacts").join(TARGET).display(),
                corpus.display()
            )
        })?;
        if self.cmin {
            crate::cargo(cmd!(
                sh,
                "cargo +nightly fuzz cmin {TARGET} --target-dir {target_dir}"
            ))
            .env("SQLX_OFFLINE", "true")
            .run()
            .context("`cargo fuzz cmin` failed")?;
        }
        let after = count(&corpus)?;
        println!(
            "fuzzed {TARGET} for {} s: no failure; corpus {before} → {after} inputs ({}); commit it, the API suite replays it",
            self.seconds,
            corpus.display()
        );
        Ok(())
    }
}

fn count(dir: &std::path::Path) -> Result<usize> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .count())
}
