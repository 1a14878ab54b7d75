//! `cargo xtask migrations deps`: the dependency analysis on any folder of migrations, in any
//! layout the migration tools keep.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use migration_deps::{
    Finding, Member, Membership, Severity, analyze_lenient, check_profile, down_findings,
    hazard_findings, transaction_findings, version_findings,
};
use serde::Serialize;

use crate::report::{Format, JsonFinding};

#[derive(Debug, clap::Args)]
pub struct Deps {
    /// The folder of migrations.
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// How the folder is laid out: auto, sqlx, goose, diesel, golang-migrate, dbmate, flyway.
    #[arg(long, default_value = "auto")]
    pub layout: String,
    /// Versions left out of the walk, comma-separated, as the layout writes them (`5,10` =
    /// `005,010` for sqlx).
    #[arg(long, value_name = "V,V,...", value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Extensions the walked migrations must not use (e.g. `vector`).
    #[arg(long, value_name = "EXT,...", value_delimiter = ',')]
    pub forbid: Vec<String>,
    /// The oldest PostgreSQL major version the migrations must run on (newer syntax is an error).
    #[arg(long, default_value_t = DEFAULT_PG_MAJOR, value_name = "N")]
    pub pg_major: u32,
    /// Also check the down parts (they must parse, and run where the tool runs them).
    #[arg(long)]
    pub check_down: bool,
    /// `--deny warnings`: fail on warnings too.
    #[arg(long, value_name = "warnings")]
    pub deny: Option<Deny>,
    /// Output: human (`FILE:LINE: error: …`), json, github (workflow-command annotations).
    #[arg(long, default_value = "human")]
    pub format: Format,
}

/// The PostgreSQL major version this project's embedded server runs, and the default target.
pub const DEFAULT_PG_MAJOR: u32 = 15;

/// The major version in a server's `--version` text (`postgres (PostgreSQL) 15.20 …` → 15).
pub fn server_major(version: &str) -> u32 {
    version
        .split_whitespace()
        .find_map(|w| w.split('.').next().and_then(|m| m.parse().ok()))
        .unwrap_or(DEFAULT_PG_MAJOR)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Deny {
    Warnings,
}

#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    source: String,
    layout: &'a str,
    migrations: usize,
    excluded: &'a [String],
    findings: Vec<JsonFinding<'a>>,
    errors: usize,
    warnings: usize,
}

impl Deps {
    pub fn run(self) -> Result<()> {
        let (set, how) = crate::verify::read(&self.source, &self.layout)?;
        let mut excluded = Vec::new();
        for v in &self.exclude {
            let m = set.lookup(v).map_err(|e| anyhow!("--exclude {v}: {e}"))?;
            excluded.push(m.version.clone());
        }
        let analyzed: Vec<_> = set.migrations.iter().map(analyze_lenient).collect();
        let members: Vec<Member<'_>> = analyzed
            .iter()
            .filter(|a| !excluded.contains(&a.migration.version))
            .map(|a| Member {
                analyzed: a,
                membership: Membership::Included,
            })
            .collect();
        let mut findings = check_profile(&analyzed, &members, &self.forbid);
        for m in &members {
            findings.extend(transaction_findings(m.analyzed));
            findings.extend(version_findings(m.analyzed, self.pg_major));
            findings.extend(hazard_findings(m.analyzed));
            if self.check_down {
                findings.extend(down_findings(&m.analyzed.migration));
            }
        }
        let order = |f: &Finding| {
            (
                set.migrations.iter().position(|m| {
                    m.file_name() == f.file
                        || m.down.as_ref().is_some_and(|d| d.file_name == f.file)
                }),
                f.line,
            )
        };
        findings.sort_by_key(order);
        let errors = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        let warnings = findings.len() - errors;
        match self.format {
            Format::Human => {
                eprintln!("{}: {how}", self.source.display());
                for f in &findings {
                    println!("{f}");
                }
                eprintln!(
                    "{} migrations walked ({} excluded): {}",
                    members.len(),
                    excluded.len(),
                    if findings.is_empty() {
                        "no problems".to_owned()
                    } else {
                        format!("{errors} error(s), {warnings} warning(s)")
                    }
                );
            }
            Format::Json => {
                let exclude: Vec<String> = excluded.iter().map(ToString::to_string).collect();
                let report = JsonReport {
                    source: self.source.display().to_string(),
                    layout: set.layout.name(),
                    migrations: set.migrations.len(),
                    excluded: &exclude,
                    findings: findings.iter().map(JsonFinding::from).collect(),
                    errors,
                    warnings,
                };
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            Format::Github => {
                for f in &findings {
                    let path = self.source.join(&f.file);
                    println!("{}", crate::report::github(f, &path.display().to_string()));
                }
            }
        }
        if errors > 0 || (warnings > 0 && self.deny == Some(Deny::Warnings)) {
            std::process::exit(1);
        }
        Ok(())
    }
}
