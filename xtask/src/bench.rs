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

/// `cargo xtask bench test-db`: what a test pays for its database, cloned from the profile's
/// template (`test_db::database`, which usually finds a copy made ahead; and
/// `test_db::database_copied_now`, the `CREATE DATABASE … TEMPLATE` alone) beside migrating a
/// fresh one (`test_db::fresh_database`), on the server `DATASTORAGE_TEST_DB` selects.
#[derive(Debug, clap::Args)]
pub struct BenchTestDb {
    /// Timed runs of each way (after one warm-up run each), interleaved.
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
}

impl BenchTestDb {
    pub fn run(self) -> Result<()> {
        use sqlx::Connection as _;
        use test_db::Profile;

        if self.runs == 0 {
            bail!("--runs must be at least 1");
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let start = Instant::now();
            let (backend, description) = test_db::backend().await?;
            println!(
                "server: {description} ({}={}), started in {:.2} s",
                test_db::PROVIDER_ENV,
                backend.as_str(),
                start.elapsed().as_secs_f64()
            );
            let start = Instant::now();
            drop(test_db::database(Profile::TEST).await?);
            println!(
                "first database of profile {} (builds the template): {:.2} s",
                Profile::TEST.name(),
                start.elapsed().as_secs_f64()
            );
            drop(test_db::fresh_database(Profile::TEST).await?);

            drop(test_db::database_copied_now(Profile::TEST).await?);

            let (mut clone, mut fresh, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
            let mut copied_now = Vec::new();
            for _ in 0..self.runs {
                // Ready = created and a first connection open, as a test needs it.
                let t = Instant::now();
                let db = test_db::database(Profile::TEST).await?;
                let conn = db.connect().await?;
                clone.push(t.elapsed());
                conn.close().await?;
                let t = Instant::now();
                drop(db);
                dropped.push(t.elapsed());

                let t = Instant::now();
                let db = test_db::database_copied_now(Profile::TEST).await?;
                let conn = db.connect().await?;
                copied_now.push(t.elapsed());
                conn.close().await?;
                drop(db);

                let t = Instant::now();
                let db = test_db::fresh_database(Profile::TEST).await?;
                let conn = db.connect().await?;
                fresh.push(t.elapsed());
                conn.close().await?;
                drop(db);
            }
            let (c, n, f, d) = (
                stats(clone),
                stats(copied_now),
                stats(fresh),
                stats(dropped),
            );
            println!();
            println!(
                "| {} database ready for a test | runs | min | median | p95 | goal |",
                Profile::TEST.name()
            );
            println!("|---|---|---|---|---|---|");
            println!(
                "| clone of the template (`test_db::database`, copies made ahead) | {} | {} | {} | {} | ≤ 50 ms, ≥ 5× faster |",
                self.runs,
                ms(c.min),
                ms(c.median),
                ms(c.p95)
            );
            println!(
                "| clone made on demand (`test_db::database_copied_now`) | {} | {} | {} | {} | |",
                self.runs,
                ms(n.min),
                ms(n.median),
                ms(n.p95)
            );
            println!(
                "| fresh database + all migrations (`test_db::fresh_database`) | {} | {} | {} | {} | baseline |",
                self.runs,
                ms(f.min),
                ms(f.median),
                ms(f.p95)
            );
            println!(
                "| dropping a clone (when the handle drops) | {} | {} | {} | {} | |",
                self.runs,
                ms(d.min),
                ms(d.median),
                ms(d.p95)
            );
            println!(
                "\nspeed-up over a fresh migration (median): {:.1}× with copies made ahead, {:.1}× on demand",
                f.median.as_secs_f64() / c.median.as_secs_f64(),
                f.median.as_secs_f64() / n.median.as_secs_f64()
            );
            Ok(())
        })
    }
}
