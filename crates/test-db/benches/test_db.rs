//! `cargo bench -p test-db --bench test_db [-- --runs N]` (also `cargo xtask bench test-db`):
//! what a test pays for its database, cloned from the profile's template (`test_db::database`,
//! which usually finds a copy made ahead; and `test_db::database_copied_now`, the
//! `CREATE DATABASE … TEMPLATE` alone) beside migrating a fresh one
//! (`test_db::fresh_database`), on the server `DATASTORAGE_TEST_DB` selects. Every measurement
//! starts on an idle server (`test_db::background_settled`). Prints a table.

use std::time::{Duration, Instant};

use sqlx::Connection as _;
use test_db::Profile;

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

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// `--runs N` (default 30); `cargo bench` also passes `--bench`, which is ignored.
fn runs() -> Result<usize, String> {
    let mut args = std::env::args().skip(1);
    let mut runs = 30;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                let v = args.next().ok_or("--runs needs a number")?;
                runs = v
                    .parse()
                    .map_err(|_| format!("--runs {v:?}: not a number"))?;
            }
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?} (use --runs N)")),
        }
    }
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(runs)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs = runs()?;
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
            for _ in 0..runs {
                // Each measurement starts with the server idle: the copies made ahead for the
                // next test (started by `test_db::database`) are finished first.
                test_db::background_settled(Profile::TEST).await?;
                // Ready = created and a first connection open, as a test needs it.
                let t = Instant::now();
                let db = test_db::database(Profile::TEST).await?;
                let conn = db.connect().await?;
                clone.push(t.elapsed());
                conn.close().await?;
                let t = Instant::now();
                drop(db);
                dropped.push(t.elapsed());

                test_db::background_settled(Profile::TEST).await?;
                let t = Instant::now();
                let db = test_db::database_copied_now(Profile::TEST).await?;
                let conn = db.connect().await?;
                copied_now.push(t.elapsed());
                conn.close().await?;
                drop(db);

                test_db::background_settled(Profile::TEST).await?;
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
                runs,
                ms(c.min),
                ms(c.median),
                ms(c.p95)
            );
            println!(
                "| clone made on demand (`test_db::database_copied_now`) | {} | {} | {} | {} | |",
                runs,
                ms(n.min),
                ms(n.median),
                ms(n.p95)
            );
            println!(
                "| fresh database + all migrations (`test_db::fresh_database`) | {} | {} | {} | {} | baseline |",
                runs,
                ms(f.min),
                ms(f.median),
                ms(f.p95)
            );
            println!(
                "| dropping a clone (when the handle drops) | {} | {} | {} | {} | |",
                runs,
                ms(d.min),
                ms(d.median),
                ms(d.p95)
            );
            println!(
                "\nspeed-up over a fresh migration (median): {:.1}× with copies made ahead, {:.1}× on demand",
                f.median.as_secs_f64() / c.median.as_secs_f64(),
                f.median.as_secs_f64() / n.median.as_secs_f64()
            );
            Ok::<(), Box<dyn std::error::Error>>(())
        })
}
