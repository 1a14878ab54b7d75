//! `cargo xtask bench sync`: how fast the sync check is, beside the shell recipe it replaces,
//! in the same run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::workspace::Workspace;

#[derive(Debug, clap::Args)]
pub struct Bench {
    /// Timed runs per command (after warm-up runs).
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
    /// Timed full runs (both profiles on a cold embedded PostgreSQL).
    #[arg(long, default_value_t = 3)]
    pub db_runs: usize,
}

struct Stats {
    min: Duration,
    median: Duration,
    p95: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Stats {
        min: samples[0],
        median: at(0.5),
        p95: at(0.95),
    }
}

fn time(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!(
            "{:?} failed:\n{}",
            cmd,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The recipe the sync tool replaces: copy the allowlist, `sed` the test path, compare.
fn shell_recipe(ws: &Workspace, dir: &Path) -> Result<String> {
    let d = ws.derived.first().context("no derived profile")?;
    let mut s = String::from("set -eu\ncd \"$1\"\nout=$(mktemp -d)\ntrap 'rm -rf \"$out\"' EXIT\n");
    for m in &d.members {
        s.push_str(&format!(
            "cp '{}' \"$out/{}\"\n",
            m.source.display(),
            m.migration.file_name()
        ));
    }
    let test_file = ws
        .profiles
        .test_references
        .first()
        .context("no test reference")?;
    s.push_str(&format!(
        "sed -e 's|\"../../migrations\"|\"../../{}\"|' '{}' > \"$out/test_reference.rs\"\n",
        d.profile.dir.display(),
        test_file.display()
    ));
    s.push_str(&format!(
        "cmp -s \"$out/test_reference.rs\" '{}'\n",
        test_file.display()
    ));
    s.push_str(&format!(
        "diff -rq --exclude=manifest.toml --exclude=test_reference.rs \"$out\" '{}' >/dev/null\n",
        d.profile.dir.display()
    ));
    let path = dir.join("recipe.sh");
    std::fs::write(&path, s)?;
    Ok(path.display().to_string())
}

impl Bench {
    pub fn run(self) -> Result<()> {
        let root = crate::project_root();
        let ws = Workspace::load(&root)?;
        let exe = std::env::current_exe()?;
        let tmp = tempfile::tempdir()?;
        let script = shell_recipe(&ws, tmp.path())?;

        let sync = || {
            let mut c = Command::new(&exe);
            c.arg("--root")
                .arg(&root)
                .args(["sync-migrations", "--check", "--no-db", "-q"]);
            c
        };
        let recipe = || {
            let mut c = Command::new("bash");
            c.arg(&script).arg(&root);
            c
        };
        for _ in 0..3 {
            time(&mut sync())?;
            time(&mut recipe())?;
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            a.push(time(&mut sync())?);
            b.push(time(&mut recipe())?);
        }
        let mut full = Vec::new();
        for _ in 0..self.db_runs {
            let mut c = Command::new(&exe);
            c.arg("--root")
                .arg(&root)
                .args(["sync-migrations", "--check", "-q"]);
            full.push(time(&mut c)?);
        }
        let (sa, sb, sf) = (stats(a), stats(b), stats(full));
        println!("| command | runs | min | median | p95 | goal |");
        println!("|---|---|---|---|---|---|");
        println!(
            "| `sync-migrations --check --no-db` (warm) | {} | {} | {} | {} | ≤ 15 ms and ≤ 2× the script |",
            self.runs,
            ms(sa.min),
            ms(sa.median),
            ms(sa.p95)
        );
        println!(
            "| cp + sed + diff shell recipe (same files) | {} | {} | {} | {} | baseline |",
            self.runs,
            ms(sb.min),
            ms(sb.median),
            ms(sb.p95)
        );
        println!(
            "| `sync-migrations --check` (both profiles, cold embedded PostgreSQL) | {} | {} | {} | {} | ≤ 3 s |",
            self.db_runs,
            ms(sf.min),
            ms(sf.median),
            ms(sf.p95)
        );
        println!(
            "\nratio sync/script (median): {:.2}×",
            sa.median.as_secs_f64() / sb.median.as_secs_f64()
        );
        Ok(())
    }
}

/// `cargo xtask bench test-db`: what a test pays for its database (test-db's own bench,
/// `crates/test-db/benches/test_db.rs`, on the server `DATASTORAGE_TEST_DB` selects).
#[derive(Debug, clap::Args)]
pub struct BenchTestDb {
    /// Timed runs of each way (after one warm-up run each), interleaved.
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
}

impl BenchTestDb {
    pub fn run(self, sh: &xshell::Shell) -> Result<()> {
        let runs = self.runs.to_string();
        crate::cargo(xshell::cmd!(
            sh,
            "cargo bench -p test-db --bench test_db -- --runs {runs}"
        ))
        .run()
        .context("the test-db bench failed")
    }
}
