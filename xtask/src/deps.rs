//! `cargo xtask migrations deps`: the dependency analysis on any folder of sqlx-style migrations.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use migration_deps::{
    Member, Membership, MigrationSet, analyze_set, check_profile, transaction_findings,
};

#[derive(Debug, clap::Args)]
pub struct Deps {
    /// The folder of migrations (`<version>_<description>.sql`).
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// Versions left out of the walk, comma-separated (`5,10` = `005,010`).
    #[arg(long, value_name = "V,V,...", value_delimiter = ',', value_parser = parse_version)]
    pub exclude: Vec<i64>,
    /// Extensions the walked migrations must not use (e.g. `vector`).
    #[arg(long, value_name = "EXT,...", value_delimiter = ',')]
    pub forbid: Vec<String>,
}

fn parse_version(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{s:?} is not a migration version (digits only, e.g. 5 or 005)"
        ));
    }
    t.parse().map_err(|e| format!("{s:?}: {e}"))
}

impl Deps {
    pub fn run(self) -> Result<()> {
        let set = MigrationSet::read(&self.source).map_err(|e| anyhow!("{e}"))?;
        if set.migrations.is_empty() {
            bail!(
                "{}: no migrations (`<version>_<description>.sql`) found",
                self.source.display()
            );
        }
        for v in &self.exclude {
            if set.get(*v).is_none() {
                bail!(
                    "--exclude {v}: {} has no migration with version {v}",
                    self.source.display()
                );
            }
        }
        let analyzed = analyze_set(&set).map_err(|e| anyhow!("{}/{e}", self.source.display()))?;
        let members: Vec<Member<'_>> = analyzed
            .iter()
            .filter(|a| !self.exclude.contains(&a.migration.int_version()))
            .map(|a| Member {
                analyzed: a,
                membership: Membership::Included,
            })
            .collect();
        let mut findings = check_profile(&analyzed, &members, &self.forbid);
        for m in &members {
            findings.extend(transaction_findings(m.analyzed));
        }
        findings.sort_by(|a, b| {
            let va = set.migrations.iter().position(|m| m.file_name() == a.file);
            let vb = set.migrations.iter().position(|m| m.file_name() == b.file);
            (va, a.line).cmp(&(vb, b.line))
        });
        for f in &findings {
            println!("{f}");
        }
        if findings.is_empty() {
            eprintln!(
                "{} migrations walked ({} excluded): no broken dependencies",
                members.len(),
                self.exclude.len()
            );
            Ok(())
        } else {
            eprintln!(
                "{} problem(s) in {} migrations walked",
                findings.len(),
                members.len()
            );
            std::process::exit(1);
        }
    }
}
