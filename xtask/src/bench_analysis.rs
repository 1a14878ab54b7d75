//! `cargo xtask bench analysis` and `cargo xtask bench verify`: how fast the dependency analysis
//! is beside libpg_query parsing the same files, and how long `migrations verify
//! --exclude-each` takes, in one run each, printed as tables.
//!
//! Without `--source`, both measure a history generated here (tables, serial keys, foreign
//! keys, indexes, views, enums, partitions, triggers with PL/pgSQL functions, renames, data
//! migrations, `DO` blocks), the same on every run; `--source DIR` measures any folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use migration_deps::{Member, Membership, analyze_lenient, check_profile, transaction_findings};

#[derive(Debug, clap::Args)]
pub struct BenchAnalysis {
    /// The folder of migrations to measure (default: a generated history of `--migrations`).
    #[arg(long, value_name = "DIR")]
    pub source: Option<PathBuf>,
    /// The size of the generated history.
    #[arg(long, default_value_t = 342)]
    pub migrations: usize,
    /// Timed runs of each (the median is reported).
    #[arg(long, default_value_t = 15)]
    pub runs: usize,
}

#[derive(Debug, clap::Args)]
pub struct BenchVerify {
    /// The folder of migrations to verify (default: a generated history of `--migrations`).
    #[arg(long, value_name = "DIR")]
    pub source: Option<PathBuf>,
    /// The size of the generated history.
    #[arg(long, default_value_t = 250)]
    pub migrations: usize,
}

/// A folder to measure: the given one, or a generated history in a temporary folder.
fn history(
    source: &Option<PathBuf>,
    n: usize,
) -> Result<(PathBuf, Option<tempfile::TempDir>, String)> {
    match source {
        Some(dir) => Ok((dir.clone(), None, dir.display().to_string())),
        None => {
            let tmp = tempfile::tempdir()?;
            write_history(tmp.path(), n)?;
            Ok((
                tmp.path().to_path_buf(),
                Some(tmp),
                format!("generated, {n} migrations"),
            ))
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

impl BenchAnalysis {
    pub fn run(self) -> Result<()> {
        let (dir, _keep, what) = history(&self.source, self.migrations)?;
        let (set, how) = crate::verify::read(&dir, "auto")?;
        let bytes: usize = set.migrations.iter().map(|m| m.up.text.len()).sum();
        eprintln!("{what}: {how}");
        let runs = self.runs.max(1);
        let mut raw = Vec::new();
        let mut parse = Vec::new();
        let mut analysis = Vec::new();
        let mut reading = Vec::new();
        let mut checking = Vec::new();
        for round in 0..runs + 1 {
            // libpg_query's parser alone: the grammar runs, no tree is handed over.
            let t = Instant::now();
            for m in &set.migrations {
                let _ = std::hint::black_box(pg_query::split_with_parser(&m.up.text));
            }
            let rp = t.elapsed();
            // libpg_query through its Rust binding, as the analysis calls it, file by file.
            let t = Instant::now();
            for m in &set.migrations {
                let _ = std::hint::black_box(pg_query::parse(&m.up.text, 0));
            }
            let p = t.elapsed();
            // The whole analysis: parse and read every file (on every core), walk the history.
            let t = Instant::now();
            let analyzed = migration_deps::parallel(&set.migrations, analyze_lenient);
            let read = t.elapsed();
            let members: Vec<Member<'_>> = analyzed
                .iter()
                .map(|a| Member {
                    analyzed: a,
                    membership: Membership::Included,
                })
                .collect();
            let mut findings = check_profile(&analyzed, &members, &[]);
            for a in &analyzed {
                findings.extend(transaction_findings(a));
            }
            std::hint::black_box(&findings);
            let a = t.elapsed();
            if round > 0 {
                raw.push(rp);
                parse.push(p);
                analysis.push(a);
                reading.push(read);
                checking.push(a - read);
            }
        }
        let (p, a) = (median(parse), median(analysis));
        let (r, c) = (median(reading), median(checking));
        let rp = median(raw);
        let ratio = a.as_secs_f64() / p.as_secs_f64();
        println!(
            "| work, on {} files ({} KB) | runs | median | × parse | goal |",
            set.migrations.len(),
            bytes / 1024
        );
        println!("|---|---|---|---|---|");
        println!(
            "| libpg_query's parser alone (pg_query::split_with_parser: no tree handed over, one core) | {runs} | {} | {:.2} | |",
            ms(rp),
            rp.as_secs_f64() / p.as_secs_f64()
        );
        println!(
            "| libpg_query parse of every file into its tree (pg_query::parse, one core) | {runs} | {} | 1.00 | |",
            ms(p)
        );
        println!(
            "| whole analysis: parse + read every file (both cores) + check the history | {runs} | {} | {ratio:.2} | ≤ 3.00 {} |",
            ms(a),
            if ratio <= 3.0 { "✔" } else { "✘" }
        );
        let of = |d: Duration| d.as_secs_f64() / p.as_secs_f64();
        println!(
            "| of which: parse + read every file into facts (both cores) | {runs} | {} | {:.2} | |",
            ms(r),
            of(r)
        );
        println!(
            "| of which: check the history (one core) | {runs} | {} | {:.2} | |",
            ms(c),
            of(c)
        );
        println!(
            "\nbuild: {}; both sides call the same libpg_query (through pg_query, whose parse also decodes the tree into Rust types)",
            if cfg!(debug_assertions) {
                "dev profile (migration-deps at opt-level 3, dependencies at 1); `cargo run --release -p xtask -- bench analysis` for release figures"
            } else {
                "release"
            }
        );
        Ok(())
    }
}

impl BenchVerify {
    pub fn run(self) -> Result<()> {
        let (dir, _keep, what) = history(&self.source, self.migrations)?;
        let exe = std::env::current_exe()?;
        let t = Instant::now();
        let out = Command::new(exe)
            .args([
                "migrations",
                "verify",
                "--exclude-each",
                "--format",
                "json",
                "--source",
            ])
            .arg(&dir)
            .output()
            .context("cannot run migrations verify")?;
        let took = t.elapsed();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "migrations verify printed no report:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        let s = &report["summary"];
        let n = report["migrations"].as_u64().unwrap_or(0);
        println!(
            "| verify --exclude-each on | migrations | exclusions | migrations applied and compared | agree | time | goal (250 migrations) |"
        );
        println!("|---|---|---|---|---|---|---|");
        let per_250 = took.as_secs_f64() * (250.0 / n.max(1) as f64).powi(2);
        println!(
            "| {what} | {n} | {} | {} | {} | {:.1} s | ≤ 120 s {} (≈ {:.0} s scaled to 250 by n²) |",
            s["exclusions"],
            s["files"],
            s["agree"],
            took.as_secs_f64(),
            if per_250 <= 120.0 { "✔" } else { "✘" },
            per_250
        );
        if !out.status.success() && s["database_only"] == 0 && s["false_errors"] == 0 {
            bail!(
                "migrations verify failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

/// Writes a history of `n` migrations in sqlx's layout.
pub fn write_history(dir: &Path, n: usize) -> Result<()> {
    for i in 1..=n {
        let t = format!("t{}", i / 10);
        let prev = format!("t{}", (i / 10).saturating_sub(1));
        let sql = match i % 10 {
            0 | 1 if i < 10 => format!(
                "CREATE TABLE {t} (id bigserial PRIMARY KEY, parent_id bigint, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());\n"
            ),
            0 => format!(
                "-- A table and its key.\nCREATE TABLE {t} (\n    id bigserial PRIMARY KEY,\n    parent_id bigint REFERENCES {prev} (id) ON DELETE CASCADE,\n    name text NOT NULL,\n    created_at timestamptz NOT NULL DEFAULT now()\n);\nCREATE INDEX {t}_parent_idx ON {t} (parent_id);\n"
            ),
            1 => format!(
                "ALTER TABLE {t} ADD COLUMN note_{i} text;\nCREATE INDEX {t}_note_{i}_idx ON {t} (lower(note_{i})) WHERE note_{i} IS NOT NULL;\n"
            ),
            2 => format!(
                "CREATE VIEW {t}_named AS\nSELECT a.id, a.name, p.id AS parent\nFROM {t} a\nLEFT JOIN {prev} p ON p.id = a.parent_id\nUNION ALL\nSELECT id, name, NULL::bigint FROM {t} WHERE parent_id IS NULL;\n"
            ),
            3 => format!(
                "CREATE FUNCTION {t}_touch() RETURNS trigger LANGUAGE plpgsql AS $$\nDECLARE\n    n bigint;\nBEGIN\n    SELECT count(*) INTO n FROM {prev} WHERE id = NEW.parent_id;\n    NEW.created_at := coalesce(NEW.created_at, now());\n    RETURN NEW;\nEND\n$$;\nCREATE TRIGGER {t}_touch BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {t}_touch();\n"
            ),
            4 => format!(
                "CREATE TYPE {t}_state AS ENUM ('new', 'open');\nALTER TYPE {t}_state ADD VALUE 'closed';\nALTER TABLE {t} ADD COLUMN state {t}_state NOT NULL DEFAULT 'new';\n"
            ),
            5 => format!(
                "WITH stale AS (\n    SELECT id FROM {t} WHERE created_at < now() - interval '1 year'\n)\nUPDATE {t} SET state = 'closed' FROM stale WHERE stale.id = {t}.id AND {t}.state IN ('new', 'open');\n"
            ),
            6 => format!(
                "CREATE TABLE {t}_log (id bigint NOT NULL, at date NOT NULL, body jsonb) PARTITION BY RANGE (at);\nCREATE TABLE {t}_log_default PARTITION OF {t}_log DEFAULT;\nCREATE TABLE {t}_log_2026 PARTITION OF {t}_log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');\n"
            ),
            7 => format!(
                "DROP VIEW {t}_named;\nALTER TABLE {t} RENAME COLUMN name TO title;\nCREATE VIEW {t}_titles AS SELECT id, title FROM {t};\n"
            ),
            8 => format!(
                "DO $$\nBEGIN\n    IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = '{t}_title_idx') THEN\n        CREATE INDEX {t}_title_idx ON {t} (title);\n    END IF;\nEND\n$$;\nCOMMENT ON COLUMN {t}.title IS 'what it is called';\n"
            ),
            _ => format!(
                "INSERT INTO {t}_log (id, at, body)\nSELECT id, created_at::date, jsonb_build_object('title', title) FROM {t};\nANALYZE {t};\n"
            ),
        };
        std::fs::write(dir.join(format!("{i:04}_step.sql")), sql)?;
    }
    Ok(())
}
