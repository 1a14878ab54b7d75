//! `cargo xtask sync-migrations`: derive the profile directories, check every dependency
//! statically, keep the test suite pointed at the test profile, and prove each profile on a
//! real PostgreSQL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use sha2::{Digest, Sha384};
use xshell::Shell;

use crate::fsx;
use crate::graph;
use crate::profiles::PROFILE_FILE;
use crate::workspace::{Derived, Workspace};

/// The manifest written beside the generated migrations (sqlx reads only `*.sql`).
pub const MANIFEST: &str = "manifest.toml";
const FIX: &str = "run `cargo xtask sync-migrations` and commit the result";

#[derive(Debug, clap::Args)]
pub struct SyncMigrations {
    /// Write nothing; exit 1 listing every drift (generated files, manifest, test paths, docs)
    /// and every dependency error.
    #[arg(long)]
    pub check: bool,
    /// Skip proving the profiles on PostgreSQL.
    #[arg(long)]
    pub no_db: bool,
    /// Prove the profiles on this server (a fresh database per profile is created and dropped)
    /// instead of a throwaway embedded PostgreSQL.
    #[arg(long, env = "SYNC_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Overwrite generated files that were edited by hand.
    #[arg(long)]
    pub force: bool,
    /// Print only problems and the final summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// How dependency findings are printed: human (`FILE:LINE: error: …`) or github
    /// (workflow-command annotations as well, so a pull request shows each on its line).
    #[arg(long, default_value = "human")]
    pub format: SyncFormat,
}

/// The output formats of `sync-migrations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncFormat {
    Human,
    Github,
}

impl SyncMigrations {
    /// Prints one finding of one profile, as the chosen format asks.
    fn show(&self, profile: &str, f: &migration_deps::Finding) {
        eprintln!("{f}  [profile {profile}]");
        self.annotate(profile, f);
    }

    /// With `--format github`, a workflow-command annotation of the finding as well.
    fn annotate(&self, profile: &str, f: &migration_deps::Finding) {
        if self.format == SyncFormat::Github {
            let mut annotated = f.clone();
            annotated.message = format!("{} [profile {profile}]", f.message);
            println!("{}", crate::report::github(&annotated, &f.file));
        }
    }
}

impl SyncMigrations {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let root = crate::project_root();
        let ws = Workspace::load(&root)?;
        let say = |msg: &str| {
            if !self.quiet {
                println!("{msg}");
            }
        };

        let (findings, warnings): (Vec<_>, Vec<_>) = ws
            .findings()
            .into_iter()
            .partition(|(_, f)| f.severity == migration_deps::Severity::Error);
        for (profile, f) in &warnings {
            self.show(profile, f);
        }
        let plans = ws
            .derived
            .iter()
            .map(|d| plan_dir(&root, d))
            .collect::<Result<Vec<_>>>()?;
        let refs = plan_test_references(&ws)?;
        let docs = graph::render(&ws);
        let docs_current = std::fs::read_to_string(root.join(graph::DOC)).ok();

        let unclassified = ws.classification_problems();
        let stale = stale_generated(&root, &ws)?;
        if self.check {
            let mut problems: Vec<String> = unclassified.clone();
            problems.extend(stale.iter().cloned());
            for (profile, f) in &findings {
                problems.push(format!("{f}  [profile {profile}]"));
                self.annotate(profile, f);
            }
            for p in &plans {
                problems.extend(p.drift.iter().map(|d| d.describe(&p.dir)));
            }
            for r in &refs {
                if r.current != r.desired {
                    problems.push(format!(
                        "{}:{}: migration path {:?} should be {:?} (test profile {})",
                        r.path.display(),
                        r.line,
                        r.found,
                        r.wanted,
                        ws.profiles.test_profile
                    ));
                }
            }
            if docs_current.as_deref() != Some(docs.as_str()) {
                problems.push(format!("{} is out of date", graph::DOC));
            }
            if problems.is_empty() {
                say(&format!(
                    "sync-migrations --check: {} up to date; {} migrations analysed, no dependency problems",
                    plans
                        .iter()
                        .map(|p| format!("{}/", p.dir.display()))
                        .collect::<Vec<_>>()
                        .join(", "),
                    ws.canonical.len()
                        + ws.derived
                            .iter()
                            .map(|d| d.members.iter().filter(|m| m.replaced).count())
                            .sum::<usize>()
                ));
                if self.no_db {
                    return Ok(());
                }
                return crate::db::prove_profiles(
                    sh,
                    &ws,
                    self.database_url.as_deref(),
                    self.quiet,
                );
            }
            for p in &problems {
                eprintln!("{p}");
            }
            bail!("{} problem(s) found; {FIX}", problems.len());
        }

        // Nothing is written unless everything is sound.
        if !stale.is_empty() {
            for s in &stale {
                eprintln!("{s}");
            }
            bail!(
                "{} generated file(s) out of date; nothing was written",
                stale.len()
            );
        }
        for u in &unclassified {
            eprintln!("{u}");
        }
        if !findings.is_empty() {
            for (profile, f) in &findings {
                self.show(profile, f);
            }
            bail!(
                "{} dependency problem(s){}; nothing was written. Fix the migrations or {PROFILE_FILE} (include or replace the version that creates the object)",
                findings.len(),
                if unclassified.is_empty() {
                    String::new()
                } else {
                    format!(" and {} unclassified version(s)", unclassified.len())
                }
            );
        }
        if !unclassified.is_empty() {
            bail!(
                "{} canonical version(s) not classified in {PROFILE_FILE}; nothing was written. Decide for each whether the profile includes, replaces or excludes it",
                unclassified.len()
            );
        }
        let mut refused = Vec::new();
        for p in &plans {
            for d in &p.drift {
                match d {
                    Drift::Stray(_) | Drift::Unmanaged(_) => refused.push(d.describe(&p.dir)),
                    Drift::HandEdited(_) if !self.force => refused.push(format!(
                        "{} (pass --force to overwrite it; put lasting changes in {} or a replacement)",
                        d.describe(&p.dir),
                        ws.profiles.canonical().dir.display()
                    )),
                    _ => {}
                }
            }
        }
        if !refused.is_empty() {
            for r in &refused {
                eprintln!("{r}");
            }
            bail!("nothing was written");
        }

        for (p, d) in plans.iter().zip(&ws.derived) {
            let summary = format!(
                "{}/: {} migrations ({} copied, {} replaced)",
                p.dir.display(),
                d.members.len(),
                d.members.iter().filter(|m| !m.replaced).count(),
                d.members.iter().filter(|m| m.replaced).count()
            );
            if p.drift.is_empty() {
                say(&format!("{summary}, up to date"));
            } else {
                write_dir(&root, p)?;
                say(&format!("{summary}, updated:"));
                for d in &p.drift {
                    say(&format!("  {}", d.describe(&p.dir)));
                }
            }
        }
        for r in &refs {
            if r.current != r.desired {
                fsx::write_atomic(&root.join(&r.path), r.desired.as_bytes())?;
                say(&format!(
                    "{}:{}: migration path now {:?}",
                    r.path.display(),
                    r.line,
                    r.wanted
                ));
            }
        }
        if docs_current.as_deref() != Some(docs.as_str()) {
            fsx::write_atomic(&root.join(graph::DOC), docs.as_bytes())?;
            say(&format!("{}: updated", graph::DOC));
        }
        say(&format!(
            "dependencies: {} profiles checked, no problems",
            ws.profiles.profiles.len()
        ));

        if self.no_db {
            return Ok(());
        }
        crate::db::prove_profiles(sh, &ws, self.database_url.as_deref(), self.quiet)
    }
}

/// Generated replacements and bridges that no longer match what `profiles derive` makes of the
/// canonical migrations (each with the command that regenerates it).
fn stale_generated(root: &Path, ws: &Workspace) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for d in &ws.derived {
        let generated = d.profile.replace.values().any(|p| {
            std::fs::read_to_string(root.join(p))
                .is_ok_and(|t| t.contains(crate::derive::GENERATED))
        });
        if !generated {
            continue;
        }
        // Only files profiles.toml already names: classifying new versions is `profiles derive`'s.
        let named: std::collections::BTreeSet<PathBuf> = d
            .profile
            .replace
            .values()
            .chain(d.profile.bridge.values())
            .cloned()
            .collect();
        let derived = crate::derive::derive_profile(root, &d.profile.name)?;
        for (path, text) in derived.files.iter().filter(|(p, _)| named.contains(p)) {
            if std::fs::read_to_string(root.join(path)).ok().as_deref() != Some(text.as_str()) {
                out.push(format!(
                    "{}: not what `cargo xtask profiles derive {}` generates from the canonical migrations; run `cargo xtask profiles derive {} --write`",
                    path.display(),
                    d.profile.name,
                    d.profile.name
                ));
            }
        }
    }
    Ok(out)
}

/// What differs between a generated directory and what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    Missing(String),
    Changed(String),
    Stale(String),
    Manifest,
    /// A generated file whose bytes no longer match the manifest.
    HandEdited(String),
    /// A file the manifest does not list.
    Stray(String),
    /// A symlink or folder.
    Unmanaged(String),
}

impl Drift {
    fn describe(&self, dir: &Path) -> String {
        let d = dir.display();
        match self {
            Drift::Missing(f) => format!("{d}/{f}: missing"),
            Drift::Changed(f) => format!("{d}/{f}: differs from its source"),
            Drift::Stale(f) => format!("{d}/{f}: stale (no longer in the profile)"),
            Drift::Manifest => format!("{d}/{MANIFEST}: out of date"),
            Drift::HandEdited(f) => format!(
                "{d}/{f}: edited by hand (its checksum no longer matches {MANIFEST}); {d}/ is generated"
            ),
            Drift::Stray(f) => format!(
                "{d}/{f}: stray file not managed by sync-migrations (remove it, or add the migration to the canonical set and {PROFILE_FILE})"
            ),
            Drift::Unmanaged(f) => {
                format!("{d}/{f}: a link or folder in a generated directory (remove it)")
            }
        }
    }
}

/// The desired contents of one generated directory and how it differs from the disk.
#[derive(Debug)]
pub struct DirPlan {
    pub dir: PathBuf,
    pub files: Vec<(String, Vec<u8>)>,
    pub manifest: String,
    pub drift: Vec<Drift>,
}

#[derive(Debug, Deserialize)]
struct ManifestFile {
    #[serde(default)]
    migration: Vec<ManifestEntry>,
}

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    file: String,
    sha384: String,
}

fn sha384_hex(bytes: &[u8]) -> String {
    hex::encode(Sha384::digest(bytes))
}

fn manifest_text(d: &Derived) -> String {
    let mut s = format!(
        "# GENERATED by `cargo xtask sync-migrations` from {PROFILE_FILE}; do not edit.\n\
         # Profile \"{}\": each file, where it comes from, and its SHA-384 (for an up file, the\n\
         # checksum sqlx records; a down file of a reversible pair is listed after its up file).\n\
         profile = \"{}\"\n",
        d.profile.name, d.profile.name
    );
    for r in &d.members {
        let kind = if r.replaced { "replacement" } else { "copy" };
        s.push_str(&format!(
            "\n[[migration]]\nfile = \"{}\"\nsource = \"{}\"\nkind = \"{kind}\"\nsha384 = \"{}\"\n",
            r.migration.file_name(),
            r.source.display(),
            r.migration.checksum_hex()
        ));
        if let Some(down) = &r.migration.down {
            s.push_str(&format!(
                "\n[[migration]]\nfile = \"{}\"\nsource = \"{}\"\nkind = \"{kind}\"\ndirection = \"down\"\nsha384 = \"{}\"\n",
                down.file_name,
                r.source.with_file_name(&down.file_name).display(),
                sha384_hex(down.source.as_bytes())
            ));
        }
    }
    s
}

/// Compares a generated directory with what the profile says it should hold.
pub fn plan_dir(root: &Path, d: &Derived) -> Result<DirPlan> {
    let dir = d.profile.dir.clone();
    let abs = root.join(&dir);
    // Both files of a reversible pair, byte for byte.
    let files: Vec<(String, Vec<u8>)> = d
        .members
        .iter()
        .flat_map(|r| {
            std::iter::once(&r.migration.up)
                .chain(r.migration.down.as_ref())
                .map(|p| (p.file_name.clone(), p.source.clone().into_bytes()))
        })
        .collect();
    let manifest = manifest_text(d);
    let mut drift = Vec::new();

    let mut existing: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut old_manifest: Option<String> = None;
    if abs.exists() {
        for entry in
            std::fs::read_dir(&abs).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ft = entry.file_type()?;
            if !ft.is_file() {
                drift.push(Drift::Unmanaged(name));
                continue;
            }
            let bytes = std::fs::read(entry.path())?;
            if name == MANIFEST {
                old_manifest = Some(String::from_utf8_lossy(&bytes).into_owned());
            } else {
                existing.insert(name, bytes);
            }
        }
    }
    let recorded: BTreeMap<String, String> = old_manifest
        .as_deref()
        .and_then(|t| toml::from_str::<ManifestFile>(t).ok())
        .map(|m| {
            m.migration
                .into_iter()
                .map(|e| (e.file, e.sha384))
                .collect()
        })
        .unwrap_or_default();

    let desired: BTreeMap<&str, &[u8]> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    for (name, bytes) in &existing {
        match recorded.get(name) {
            Some(sum) if *sum != sha384_hex(bytes) => drift.push(Drift::HandEdited(name.clone())),
            Some(_) => {}
            None if desired.get(name.as_str()) == Some(&bytes.as_slice()) => {}
            None => drift.push(Drift::Stray(name.clone())),
        }
        if recorded.contains_key(name) && !desired.contains_key(name.as_str()) {
            drift.push(Drift::Stale(name.clone()));
        }
    }
    for (name, bytes) in &files {
        match existing.get(name) {
            None => drift.push(Drift::Missing(name.clone())),
            Some(b) if b != bytes && !drift.contains(&Drift::HandEdited(name.clone())) => {
                drift.push(Drift::Changed(name.clone()))
            }
            _ => {}
        }
    }
    if old_manifest.as_deref() != Some(manifest.as_str()) {
        drift.push(Drift::Manifest);
    }
    Ok(DirPlan {
        dir,
        files,
        manifest,
        drift,
    })
}

/// Rebuilds a generated directory beside it, then swaps it in: a failure leaves the previous
/// directory as it was. Unchanged files are hard-linked, so they keep their modification time.
fn write_dir(root: &Path, plan: &DirPlan) -> Result<()> {
    let target = root.join(&plan.dir);
    let name = plan
        .dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("generated");
    let staging = target.with_file_name(format!(".{name}.staging-{}", std::process::id()));
    let backup = target.with_file_name(format!(".{name}.previous-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let result = (|| -> Result<()> {
        let mut all: Vec<(&str, &[u8])> = plan
            .files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        all.push((MANIFEST, plan.manifest.as_bytes()));
        for (file, bytes) in all {
            let old = target.join(file);
            let new = staging.join(file);
            let unchanged = std::fs::read(&old).is_ok_and(|b| b == bytes);
            if !(unchanged && std::fs::hard_link(&old, &new).is_ok()) {
                std::fs::write(&new, bytes)
                    .with_context(|| format!("cannot write {}", new.display()))?;
            }
        }
        if target.exists() {
            std::fs::rename(&target, &backup)
                .with_context(|| format!("cannot move {} aside", target.display()))?;
            if let Err(e) = std::fs::rename(&staging, &target) {
                let _ = std::fs::rename(&backup, &target);
                return Err(e).with_context(|| {
                    format!("cannot move the new {} in place", plan.dir.display())
                });
            }
            let _ = std::fs::remove_dir_all(&backup);
        } else {
            std::fs::rename(&staging, &target)
                .with_context(|| format!("cannot move the new {} in place", plan.dir.display()))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// One test-suite file and its migration-directory reference.
#[derive(Debug)]
pub struct TestReference {
    pub path: PathBuf,
    pub line: u32,
    pub found: String,
    pub wanted: String,
    pub current: String,
    pub desired: String,
}

/// Finds, in each listed file, the one string literal naming a profile directory, and what it
/// should say so that it names the test profile.
pub fn plan_test_references(ws: &Workspace) -> Result<Vec<TestReference>> {
    let test_dir = ws
        .profiles
        .get(&ws.profiles.test_profile)
        .expect("validated")
        .dir
        .to_string_lossy()
        .into_owned();
    let dirs: Vec<String> = ws
        .profiles
        .profiles
        .iter()
        .map(|p| p.dir.to_string_lossy().into_owned())
        .collect();
    let mut out = Vec::new();
    for rel in &ws.profiles.test_references {
        let path = ws.root.join(rel);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{PROFILE_FILE}: test_suite.references lists {}, which cannot be read",
                rel.display()
            )
        })?;
        let hits = profile_literals(&text, &dirs);
        if hits.len() != 1 {
            let lines: Vec<String> = hits
                .iter()
                .map(|(start, _, lit)| {
                    format!("line {}: {lit:?}", migration_deps::line_of(&text, *start))
                })
                .collect();
            bail!(
                "{}: expected exactly one string literal naming a migration directory ({}), found {}{}",
                rel.display(),
                dirs.join(", "),
                hits.len(),
                if lines.is_empty() {
                    String::new()
                } else {
                    format!(": {}", lines.join("; "))
                }
            );
        }
        let (start, end, found) = hits.into_iter().next().expect("one");
        let prefix = &found[..found.len() - matching_dir(&found, &dirs).expect("matched").len()];
        let wanted = format!("{prefix}{test_dir}");
        let desired = format!("{}{}{}", &text[..start], wanted, &text[end..]);
        out.push(TestReference {
            path: rel.clone(),
            line: migration_deps::line_of(&text, start),
            found,
            wanted,
            current: text,
            desired,
        });
    }
    Ok(out)
}

/// The profile directory a literal ends with (the longest match).
fn matching_dir<'d>(literal: &str, dirs: &'d [String]) -> Option<&'d String> {
    dirs.iter()
        .filter(|d| literal == d.as_str() || literal.ends_with(&format!("/{d}")))
        .max_by_key(|d| d.len())
}

/// `(start, end, text)` of each `"…"` literal (contents only) that names a profile directory.
fn profile_literals(text: &str, dirs: &[String]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            while j < bytes.len() && bytes[j] != b'"' && bytes[j] != b'\n' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            if j < bytes.len() && bytes[j] == b'"' {
                let lit = &text[start..j];
                if matching_dir(lit, dirs).is_some() {
                    out.push((start, j, lit.to_owned()));
                }
                i = j + 1;
                continue;
            }
            i = j;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_profile_literals() {
        let dirs = vec!["migrations".to_owned(), "migrations-v1.0".to_owned()];
        let text = "static M: Migrator = sqlx::migrate!(\"../../migrations\");\nlet x = \"other\";";
        let hits = profile_literals(text, &dirs);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].2, "../../migrations");
        assert_eq!(
            matching_dir("../../migrations-v1.0", &dirs).unwrap(),
            "migrations-v1.0"
        );
        assert!(profile_literals("\"my-migrations\"", &dirs).is_empty());
    }
}
