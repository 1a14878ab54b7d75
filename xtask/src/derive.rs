//! Deriving a profile that does without some extensions, and proving it on PostgreSQL:
//! `cargo xtask migrations derive` (any folder of migrations) and `cargo xtask profiles derive`
//! (this repository's profiles, from `migrations/profiles.toml`).
//!
//! Each canonical version is classified: it needs nothing forbidden → include; its rewrite
//! (migration_deps::derive, on the parse tree) removes something and a version the profile keeps
//! depends on what is left → replace, with a generated replacement and bridge; otherwise → leave
//! out. A version that depends on one left out is left out too, as the static analysis finds.
//! The proof applies the result on a server that does not have the forbidden extensions at all,
//! upgrades it (bridges, then the versions left out) and compares its schema with a fresh
//! canonical install, rows kept, and lists what the derived profile lacks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use migration_deps::derive::{Forbid, Refusal, Removal, Removed, header_end, rewrite};
use migration_deps::{
    Analyzed, Member, Membership, Migration, MigrationSet, Severity, analyze_migration,
    check_profile, dependency_edges,
};
use pg_schema::Fingerprint;
use pg_schema::Kind;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};

use crate::verify::apply;

/// What happens to one canonical version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Include,
    Replace,
    Exclude,
    /// Needs a replacement the rewrite will not write.
    Refused,
}

impl Class {
    fn word(self) -> &'static str {
        match self {
            Class::Include => "include",
            Class::Replace => "replace",
            Class::Exclude => "leave out",
            Class::Refused => "refused",
        }
    }
}

/// A generated (or hand-written) replacement of one version.
#[derive(Debug, Clone)]
pub struct Replacement {
    /// Files of the migration folder (relative) and their new text.
    pub files: Vec<(String, String)>,
    /// The bridge's SQL (without a header).
    pub bridge: String,
    pub hand_written: bool,
}

/// One canonical version's classification.
#[derive(Debug, Clone)]
pub struct Entry {
    pub file: String,
    pub class: Class,
    pub reason: String,
    /// Set when the rewrite changes the version (whatever the final class).
    pub replacement: Option<Replacement>,
    pub refusals: Vec<Refusal>,
    /// Left out by a decision given as input (`exclude` in profiles.toml, `--exclude`).
    pub pinned: bool,
}

/// A whole proposal.
#[derive(Debug)]
pub struct Proposal {
    pub set: MigrationSet,
    pub forbid: Forbid,
    pub entries: Vec<Entry>,
    /// The analysis of each canonical version.
    canonical: Vec<Analyzed>,
    /// A copy of the folder with every replacement written in, read back by its layout.
    candidates: tempfile::TempDir,
    candidate_set: MigrationSet,
}

/// A version's own replacement, given as input (a hand-written file wins over the rewrite).
#[derive(Debug, Clone)]
pub struct HandWritten {
    pub files: Vec<(String, String)>,
    pub bridge: String,
}

impl Proposal {
    /// Classifies every version of `set`.
    pub fn derive(
        set: MigrationSet,
        forbid: Forbid,
        pinned: &BTreeMap<usize, String>,
        hand: &BTreeMap<usize, HandWritten>,
        generated_by: &str,
    ) -> Result<Self> {
        let canonical: Vec<Analyzed> = set
            .migrations
            .iter()
            .map(|m| analyze_migration(m).map_err(|e| anyhow!("{}/{e}", set.dir.display())))
            .collect::<Result<_>>()?;
        let used: BTreeSet<String> = canonical
            .iter()
            .flat_map(|a| {
                a.analysis
                    .facts
                    .extension_uses
                    .iter()
                    .map(|u| u.extension.clone())
            })
            .collect();
        for name in forbid.names() {
            if !used.contains(name) {
                bail!(
                    "--forbid {name}: no migration of {} uses extension `{name}`, so there is nothing to derive",
                    set.dir.display()
                );
            }
        }

        let mut removed = Removed::default();
        let mut entries = Vec::new();
        for (i, m) in set.migrations.iter().enumerate() {
            let up = rewrite(&m.up, &forbid, &mut removed)
                .map_err(|e| anyhow!("{}/{e}", set.dir.display()))?;
            // A down part that does not parse is left as it is (`migrations deps --check-down`
            // reports it); the up part decides.
            let mut notes = Vec::new();
            let down = match &m.down {
                Some(d) => match rewrite(d, &forbid, &mut removed.clone()) {
                    Ok(rw) => Some(rw),
                    Err(e) => {
                        notes.push(format!("down part not rewritten: {e}"));
                        None
                    }
                },
                None => None,
            };
            let file = m.file_name().to_owned();
            let mut entry = Entry {
                file: file.clone(),
                class: Class::Include,
                reason: "needs nothing forbidden".to_owned(),
                replacement: None,
                refusals: up.refusals.clone(),
                pinned: false,
            };
            if let Some(d) = &down {
                entry.refusals.extend(d.refusals.iter().map(|r| Refusal {
                    line: r.line,
                    why: format!("(down part) {}", r.why),
                }));
            }
            if up.changed() || down.as_ref().is_some_and(|d| d.changed()) {
                let summary = up
                    .removed
                    .iter()
                    .map(|r| r.what.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                let note = |name: &str, removed: &[&Removal]| {
                    let mut note = format!(
                        "-- Generated by `{generated_by}` from {name}, without {}:\n",
                        forbid.names().join(", "),
                    );
                    for r in removed {
                        let _ = writeln!(note, "--   line {}: {}", r.line, r.what);
                    }
                    note.push_str(
                        "-- Do not edit: change the canonical migration and run the command again.\n",
                    );
                    note
                };
                // Edits of each file (the up and down parts may share one).
                type Edits<'s> = (
                    &'s str,
                    Vec<(std::ops::Range<usize>, String)>,
                    Vec<&'s Removal>,
                );
                let mut per_file: BTreeMap<&str, Edits<'_>> = BTreeMap::new();
                let e = per_file.entry(m.up.file_name.as_str()).or_insert((
                    m.up.source.as_str(),
                    Vec::new(),
                    Vec::new(),
                ));
                e.1.extend(up.edits.clone());
                e.2.extend(&up.removed);
                if let (Some(d), Some(rw)) = (&m.down, &down) {
                    let e = per_file.entry(d.file_name.as_str()).or_insert((
                        d.source.as_str(),
                        Vec::new(),
                        Vec::new(),
                    ));
                    e.1.extend(rw.edits.clone());
                    e.2.extend(&rw.removed);
                }
                let files = per_file
                    .into_iter()
                    .map(|(name, (source, mut edits, removed))| {
                        if !edits.is_empty() {
                            let at = header_end(source);
                            edits.push((at..at, note(name, &removed)));
                        }
                        (
                            name.to_owned(),
                            migration_deps::derive::apply_edits(source, &edits),
                        )
                    })
                    .collect();
                let mut bridge = String::new();
                let needs_extension = !up.creates_extension;
                if needs_extension && !up.bridge.is_empty() {
                    for name in forbid.names() {
                        let _ = writeln!(bridge, "CREATE EXTENSION IF NOT EXISTS {name};\n");
                    }
                }
                for s in &up.bridge {
                    let _ = writeln!(bridge, "{s};\n");
                }
                entry.replacement = Some(Replacement {
                    files,
                    bridge: bridge.trim_end().to_owned() + "\n",
                    hand_written: false,
                });
                if up.kept == 0 {
                    entry.class = Class::Exclude;
                    entry.reason = format!(
                        "everything it does needs {}: {summary}",
                        forbid.names().join(", ")
                    );
                } else {
                    entry.class = Class::Replace;
                    entry.reason = format!(
                        "uses {}: {summary}; keeps {} statement{}",
                        forbid.names().join(", "),
                        up.kept,
                        if up.kept == 1 { "" } else { "s" }
                    );
                }
                for n in &notes {
                    entry.reason.push_str(&format!(" ({n})"));
                }
            }
            if !entry.refusals.is_empty() {
                entry.class = Class::Refused;
                entry.reason = "the rewrite cannot remove what it uses safely".to_owned();
            }
            if let Some(h) = hand.get(&i) {
                entry.class = Class::Replace;
                entry.refusals.clear();
                entry.reason = "hand-written replacement".to_owned();
                entry.replacement = Some(Replacement {
                    files: h.files.clone(),
                    bridge: h.bridge.clone(),
                    hand_written: true,
                });
            }
            if let Some(why) = pinned.get(&i) {
                entry.class = Class::Exclude;
                entry.pinned = true;
                entry.reason = if why.is_empty() {
                    "left out by decision".to_owned()
                } else {
                    format!("left out by decision: {why}")
                };
            }
            entries.push(entry);
        }

        // Every replacement written into a copy of the folder, read back as its tool reads it.
        let candidates = tempfile::Builder::new()
            .prefix("derive-")
            .tempdir()
            .context("cannot create a temporary folder")?;
        copy_tree(&set.dir, candidates.path())?;
        for e in &entries {
            if let Some(r) = &e.replacement {
                for (name, text) in &r.files {
                    std::fs::write(candidates.path().join(name), text)?;
                }
            }
        }
        let candidate_set = MigrationSet::read_as(candidates.path(), set.layout).map_err(|e| {
            anyhow!(
                "the rewritten migrations do not read back as {}: {e}",
                set.layout
            )
        })?;
        if candidate_set.migrations.len() != set.migrations.len() {
            bail!("the rewritten migrations do not read back as the same versions");
        }
        let replaced: Vec<Option<Analyzed>> = candidate_set
            .migrations
            .iter()
            .zip(&entries)
            .map(|(m, e)| {
                e.replacement
                    .as_ref()
                    .map(|_| analyze_migration(m).map_err(|e| anyhow!("generated replacement {e}")))
                    .transpose()
            })
            .collect::<Result<_>>()?;

        let mut proposal = Proposal {
            set,
            forbid,
            entries,
            canonical: Vec::new(),
            candidates,
            candidate_set,
        };
        proposal.settle(&canonical, &replaced);
        proposal.canonical = canonical;
        Ok(proposal)
    }

    /// Leaves out what the static analysis finds broken, and replacements nothing kept needs,
    /// until neither changes.
    fn settle(&mut self, canonical: &[Analyzed], replaced: &[Option<Analyzed>]) {
        let forbidden: Vec<String> = self.forbid.names().iter().map(|s| s.to_string()).collect();
        let file_index: BTreeMap<String, usize> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.file.clone(), i))
            .collect();
        for _ in 0..=self.entries.len() {
            let kept: Vec<usize> = (0..self.entries.len())
                .filter(|&i| matches!(self.entries[i].class, Class::Include | Class::Replace))
                .collect();
            let members: Vec<Member<'_>> = kept
                .iter()
                .map(|&i| match self.entries[i].class {
                    Class::Replace => Member {
                        analyzed: replaced[i]
                            .as_ref()
                            .expect("a replaced version has a rewrite"),
                        membership: Membership::Replaced,
                    },
                    _ => Member {
                        analyzed: &canonical[i],
                        membership: Membership::Included,
                    },
                })
                .collect();
            let findings = check_profile(canonical, &members, &forbidden);
            let mut changed = false;
            for f in findings.iter().filter(|f| f.severity == Severity::Error) {
                let Some(&i) = file_index.get(&f.file) else {
                    continue;
                };
                let e = &mut self.entries[i];
                if matches!(e.class, Class::Include | Class::Replace)
                    && f.message.contains("forbids")
                {
                    e.class = Class::Refused;
                    e.refusals.push(Refusal {
                        line: f.line,
                        why: format!(
                            "the analysis finds a use the rewrite did not remove: {}",
                            f.message
                        ),
                    });
                    changed = true;
                } else if matches!(e.class, Class::Include | Class::Replace) {
                    e.class = Class::Exclude;
                    e.reason = format!("line {}: {}", f.line, f.message);
                    changed = true;
                }
            }
            if changed {
                continue;
            }
            if !changed {
                break;
            }
        }
        // Why each replacement is needed.
        let kept: Vec<usize> = (0..self.entries.len())
            .filter(|&i| matches!(self.entries[i].class, Class::Include | Class::Replace))
            .collect();
        let dependents = self.dependents(&kept, canonical, replaced);
        for (&i, deps) in kept.iter().zip(dependents) {
            let e = &mut self.entries[i];
            if e.class == Class::Replace && !deps.is_empty() {
                e.reason = format!("{}; {}", e.reason, deps.join("; "));
            }
        }
    }

    /// For each kept version (indexes into the entries), what later kept versions need of it.
    fn dependents(
        &self,
        kept: &[usize],
        canonical: &[Analyzed],
        replaced: &[Option<Analyzed>],
    ) -> Vec<Vec<String>> {
        let profile: Vec<Analyzed> = kept
            .iter()
            .map(|&i| match self.entries[i].class {
                Class::Replace => replaced[i].clone().unwrap_or_else(|| canonical[i].clone()),
                _ => canonical[i].clone(),
            })
            .collect();
        let edges = dependency_edges(&profile);
        (0..kept.len())
            .map(|k| {
                edges
                    .iter()
                    .filter(|e| e.from == k)
                    .map(|e| {
                        let what = e
                            .objects
                            .iter()
                            .take(2)
                            .map(|o| o.to_string())
                            .collect::<Vec<_>>()
                            .join(", ");
                        format!("{} depends on {what}", self.entries[kept[e.to]].file)
                    })
                    .collect()
            })
            .collect()
    }

    pub fn count(&self, class: Class) -> usize {
        self.entries.iter().filter(|e| e.class == class).count()
    }

    pub fn refused(&self) -> bool {
        self.count(Class::Refused) > 0
    }

    /// The proposal for people: one line per version, then refusals with `file:line`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let w = self.entries.iter().map(|e| e.file.len()).max().unwrap_or(0);
        for e in &self.entries {
            let _ = writeln!(out, "  {:<9}  {:<w$}  {}", e.class.word(), e.file, e.reason);
        }
        for e in &self.entries {
            for r in &e.refusals {
                let _ = writeln!(
                    out,
                    "{}/{}:{}: error: {}",
                    self.set.dir.display(),
                    e.file,
                    r.line,
                    r.why
                );
            }
        }
        let _ = writeln!(
            out,
            "{} versions: {} included, {} replaced, {} left out, {} refused",
            self.entries.len(),
            self.count(Class::Include),
            self.count(Class::Replace),
            self.count(Class::Exclude),
            self.count(Class::Refused)
        );
        out
    }

    /// The derived profile as its tool reads it (replacements in place of their versions).
    pub fn profile_migrations(&self) -> Vec<&Migration> {
        self.candidate_set
            .migrations
            .iter()
            .zip(&self.entries)
            .filter(|(_, e)| matches!(e.class, Class::Include | Class::Replace))
            .map(|(m, _)| m)
            .collect()
    }

    /// Writes the derived migration folder (the same layout, included files byte for byte)
    /// into `dir`.
    pub fn write_folder(&self, dir: &Path) -> Result<()> {
        for m in self.profile_migrations() {
            for part in std::iter::once(&m.up).chain(m.down.as_ref()) {
                let from = self.candidates.path().join(&part.file_name);
                let to = dir.join(&part.file_name);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::copy(&from, &to)
                    .with_context(|| format!("cannot write {}", to.display()))?;
            }
        }
        Ok(())
    }

    /// Each replaced version's bridge, in version order: `(file name, SQL)`.
    pub fn bridges(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter(|e| e.class == Class::Replace)
            .filter_map(|e| {
                e.replacement
                    .as_ref()
                    .map(|r| (e.file.clone(), r.bridge.clone()))
            })
            .collect()
    }

    /// The canonical versions the profile leaves out, in order.
    pub fn left_out(&self) -> Vec<&Migration> {
        self.set
            .migrations
            .iter()
            .zip(&self.entries)
            .filter(|(_, e)| e.class == Class::Exclude)
            .map(|(m, _)| m)
            .collect()
    }
}

/// Copies a folder tree (files and folders; symbolic links are followed).
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_tree(&path, &target)?;
        } else {
            std::fs::copy(&path, &target)
                .with_context(|| format!("cannot copy {}", path.display()))?;
        }
    }
    Ok(())
}

/// The three proofs' results.
#[derive(Debug, Default)]
pub struct ProofReport {
    pub lines: Vec<String>,
    pub failures: Vec<String>,
    pub seconds: f64,
}

/// Proves a proposal on PostgreSQL: the derived profile applies on a server without the
/// forbidden extensions; upgraded (bridges, then the versions left out) it equals a fresh
/// canonical install, with the rows it had; and it lacks only what needs the extensions.
pub fn prove(p: &Proposal, prelude: Option<&str>) -> Result<ProofReport> {
    let started = Instant::now();
    let names: Vec<String> = p.forbid.names().iter().map(|s| s.to_string()).collect();
    let binaries = pg_embedded::PgBinaries::discover()?;
    let shadow = Shadow::without(&binaries, &names)?;
    // Proof 1 on its own server, proofs 2 and 3 on another, at the same time.
    let (first, rest) = std::thread::scope(|s| {
        let first = s.spawn(|| prove_without(p, prelude, &names, &shadow));
        let rest = (|| {
            let cluster =
                pg_embedded::Cluster::start().context("cannot start the embedded PostgreSQL")?;
            for n in &names {
                if !cluster.has_extension(n)? {
                    bail!(
                        "the proof needs a PostgreSQL that has extension `{n}` for the canonical side, and the local one ({}) does not (pgvector: `cargo xtask tools install pgvector`)",
                        cluster.binaries().version()
                    );
                }
            }
            let r = prove_upgrade(p, prelude, &names, &cluster);
            cluster.stop();
            r
        })();
        (first.join(), rest)
    });
    let mut report = first.map_err(|_| anyhow!("the proof without the extension panicked"))??;
    let rest = rest?;
    report.lines.extend(rest.lines);
    report.failures.extend(rest.failures);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Proof 1: the derived profile on a copy of the server without the extensions.
fn prove_without(
    p: &Proposal,
    prelude: Option<&str>,
    names: &[String],
    shadow: &Shadow,
) -> Result<ProofReport> {
    let mut report = ProofReport::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let bare = pg_embedded::Cluster::builder()
        .search(pg_embedded::Search {
            explicit: Some(shadow.bindir.clone()),
            path: None,
            versioned_roots: Vec::new(),
        })
        .start()
        .context("cannot start PostgreSQL from a copy without the forbidden extensions")?;
    let profile = p.profile_migrations();
    rt.block_on(async {
        let url = bare.create_database("derived")?;
        let mut conn = PgConnection::connect(&url).await?;
        let available: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_available_extensions WHERE name = ANY($1)",
        )
        .bind(names)
        .fetch_one(&mut conn)
        .await?;
        if available != 0 {
            bail!("the server copy still offers {}", names.join(", "));
        }
        run_prelude(&mut conn, prelude).await?;
        for m in &profile {
            if let Some(e) = apply(&mut conn, &m.up).await {
                report.failures.push(format!(
                    "{}:{}: on a server without {}: {}",
                    m.up.file_name,
                    e.line.unwrap_or(1),
                    names.join(", "),
                    e.message
                ));
                break;
            }
        }
        if report.failures.is_empty() {
            report.lines.push(format!(
                "applies without {}: {} migrations on a PostgreSQL that does not have {} installed (pg_available_extensions has none of them)",
                names.join(", "),
                profile.len(),
                if names.len() == 1 { "it" } else { "them" }
            ));
        }
        conn.close().await?;
        anyhow::Ok(())
    })?;
    bare.stop();
    Ok(report)
}

/// Proofs 2 and 3 on a server that has the extensions.
fn prove_upgrade(
    p: &Proposal,
    prelude: Option<&str>,
    names: &[String],
    cluster: &pg_embedded::Cluster,
) -> Result<ProofReport> {
    let mut report = ProofReport::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let profile = p.profile_migrations();
    rt.block_on(async {
        let derived_url = cluster.create_database("derived")?;
        let canonical_url = cluster.create_database("canonical")?;
        let mut d = PgConnection::connect(&derived_url).await?;
        run_prelude(&mut d, prelude).await?;
        for m in &profile {
            if let Some(e) = apply(&mut d, &m.up).await {
                bail!("{}: {}", m.up.file_name, e.message);
            }
        }
        let derived_fp = Fingerprint::read(&mut d).await?;
        let seeded = seed(&mut d).await?;
        let before = table_digests(&mut d, &seeded).await?;
        let mut upgrade_failed = false;
        for (file, sql) in p.bridges() {
            let wrapped = format!("BEGIN;\n{sql}\nCOMMIT;");
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(wrapped)).execute(&mut d).await {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut d).await;
                report.failures.push(format!(
                    "bridge of {file} fails at the end of the derived history: {e}"
                ));
                upgrade_failed = true;
                break;
            }
        }
        if !upgrade_failed {
            for m in p.left_out() {
                if let Some(e) = apply(&mut d, &m.up).await {
                    report.failures.push(format!(
                        "{}: left out of the derived profile, it fails after the bridges: {}",
                        m.up.file_name, e.message
                    ));
                    upgrade_failed = true;
                    break;
                }
            }
        }
        let mut c = PgConnection::connect(&canonical_url).await?;
        run_prelude(&mut c, prelude).await?;
        for m in &p.set.migrations {
            if let Some(e) = apply(&mut c, &m.up).await {
                bail!("the canonical history itself fails: {}: {}", m.up.file_name, e.message);
            }
        }
        let canonical_fp = Fingerprint::read(&mut c).await?;
        if !upgrade_failed {
            let upgraded_fp = Fingerprint::read(&mut d).await?;
            let diff = upgraded_fp.diff(&canonical_fp);
            if diff.is_empty() {
                report.lines.push(format!(
                    "upgrade equality: derived + {} bridge{} + {} left-out version{} == a fresh canonical install ({} objects)",
                    p.bridges().len(),
                    if p.bridges().len() == 1 { "" } else { "s" },
                    p.left_out().len(),
                    if p.left_out().len() == 1 { "" } else { "s" },
                    canonical_fp.len()
                ));
            } else {
                report.failures.push(format!(
                    "upgrade equality: the upgraded schema differs from a fresh canonical install:\n{}",
                    diff.render("upgraded", "canonical")
                ));
            }
            let after = table_digests(&mut d, &seeded).await?;
            let lost: Vec<&String> = before
                .iter()
                .filter(|(t, (_, sum))| after.get(*t).map(|a| &a.1) != Some(sum))
                .map(|(t, _)| t)
                .collect();
            let rows: i64 = before.values().map(|(n, _)| n).sum();
            if lost.is_empty() {
                report.lines.push(format!(
                    "rows kept: {rows} row{} in {} of {} tables, the same after the upgrade{}",
                    if rows == 1 { "" } else { "s" },
                    seeded.seeded.len(),
                    seeded.seeded.len() + seeded.skipped.len(),
                    if seeded.skipped.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (not seeded: {})",
                            seeded
                                .skipped
                                .iter()
                                .map(|(t, why)| format!("{t}: {why}"))
                                .collect::<Vec<_>>()
                                .join("; ")
                        )
                    }
                ));
            } else {
                report.failures.push(format!(
                    "rows changed by the upgrade in {}",
                    lost.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }

        let lacks = derived_fp.diff(&canonical_fp);
        let mut needs = Vec::new();
        let mut decided = Vec::new();
        let mut unexplained = Vec::new();
        let left_out_names = left_out_relations(p);
        for change in &lacks.changes {
            let label = format!("{} {}", change.id.kind, change.id.name);
            if needs_forbidden(&p.forbid, change.id.kind, &change.id.name, change.b.as_deref().unwrap_or(""), &lacks) {
                needs.push(label);
            } else if let Some(file) = left_out_names.iter().find_map(|(rel, file)| {
                name_mentions(&change.id.name, rel).then_some(file)
            }) {
                decided.push((file.clone(), change.id.kind.as_str().to_owned()));
            } else {
                unexplained.push(label);
            }
        }
        report.lines.push(format!(
            "lacks only what needs {}: {} object{}{}",
            names.join(", "),
            needs.len(),
            if needs.len() == 1 { "" } else { "s" },
            if needs.is_empty() { String::new() } else { format!(" ({})", needs.join(", ")) }
        ));
        if !decided.is_empty() {
            let mut by_file: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
            for (file, kind) in &decided {
                *by_file.entry(file.as_str()).or_default().entry(kind.as_str()).or_default() += 1;
            }
            report.lines.push(format!(
                "also lacks what versions left out create: {}",
                by_file
                    .iter()
                    .map(|(file, kinds)| format!(
                        "{file}: {}",
                        kinds
                            .iter()
                            .map(|(k, n)| match (*k, *n) {
                                (k, 1) => format!("1 {k}"),
                                ("index", n) => format!("{n} indexes"),
                                (k, n) => format!("{n} {k}s"),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        if !unexplained.is_empty() {
            report.failures.push(format!(
                "the derived profile lacks objects that do not need {}: {}",
                names.join(", "),
                unexplained.join(", ")
            ));
        }
        d.close().await?;
        c.close().await?;
        anyhow::Ok(())
    })?;
    Ok(report)
}

async fn run_prelude(conn: &mut PgConnection, prelude: Option<&str>) -> Result<()> {
    if let Some(sql) = prelude {
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut *conn)
            .await
            .context("the prelude failed")?;
    }
    Ok(())
}

/// Whether an object the derived profile lacks needs a forbidden extension, by PostgreSQL's
/// own definition of it in the canonical database.
fn needs_forbidden(
    forbid: &Forbid,
    kind: Kind,
    name: &str,
    definition: &str,
    all: &pg_schema::Diff,
) -> bool {
    let words: Vec<&str> = definition
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let uses = |w: &&str| {
        forbid.is_type(w)
            || forbid.is_function(w)
            || forbid.is_access_method(w)
            || forbid.is_operator_class(w)
    };
    match kind {
        Kind::Extension => forbid.names().contains(&name),
        Kind::Column => words.first().is_some_and(|t| forbid.is_type(t)),
        _ => {
            if words.iter().any(uses) {
                return true;
            }
            // An index, constraint or trigger over a column that needs the extension.
            all.changes.iter().any(|c| {
                c.id.kind == Kind::Column
                    && c.b.as_deref().is_some_and(|d| {
                        d.split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                            .next()
                            .is_some_and(|t| forbid.is_type(t))
                    })
                    && c.id
                        .name
                        .rsplit('.')
                        .next()
                        .is_some_and(|col| words.contains(&col))
            })
        }
    }
}

/// Relations and functions the versions left out create: `(name, file)`.
fn left_out_relations(p: &Proposal) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (a, e) in p.canonical.iter().zip(&p.entries) {
        if e.class != Class::Exclude && e.class != Class::Refused {
            continue;
        }
        {
            for ev in &a.analysis.facts.events {
                if matches!(ev.action, migration_deps::Action::Create { .. }) {
                    let name = match &ev.object {
                        migration_deps::Object::Relation(n)
                        | migration_deps::Object::Function(n) => n.clone(),
                        migration_deps::Object::Column { table, column } => {
                            format!("{table}.{column}")
                        }
                        _ => continue,
                    };
                    out.push((name, e.file.clone()));
                }
            }
        }
    }
    out
}

/// `public.action_patterns.context` mentions `action_patterns` (and `action_patterns.context`).
fn name_mentions(full: &str, rel: &str) -> bool {
    let parts: Vec<&str> = full.split(['.', '(']).collect();
    let rel_parts: Vec<&str> = rel.split('.').collect();
    parts
        .windows(rel_parts.len())
        .any(|w| w == rel_parts.as_slice())
}

/// What `seed` inserted.
#[derive(Debug, Default)]
struct Seeded {
    /// `(qualified table, columns present before the upgrade)`.
    seeded: Vec<(String, Vec<String>)>,
    skipped: Vec<(String, String)>,
}

/// A column as `seed` sees it: name, type, NOT NULL, filled by the server (default, identity,
/// generated), the first literal of a CHECK on it, a subquery for a row it references, and its
/// type category.
type SeedColumn = (
    String,
    String,
    bool,
    bool,
    Option<String>,
    Option<String>,
    String,
);

/// Inserts one row into every table it can (values chosen from each column's type, the first
/// literal of a CHECK on it, or a row of the table a foreign key references), so that the
/// upgrade proof can show rows survive.
async fn seed(conn: &mut PgConnection) -> Result<Seeded> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT format('%I.%I', n.nspname, c.relname), c.oid::text
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_%'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
         ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut pending: Vec<(String, String)> = tables;
    let mut out = Seeded::default();
    let mut last_error: BTreeMap<String, String> = BTreeMap::new();
    // Tables that reference others succeed once those have a row: a few rounds.
    for _ in 0..4 {
        let mut next = Vec::new();
        for (table, oid) in pending {
            let cols: Vec<SeedColumn> = sqlx::query_as(
                "SELECT quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
                        a.attnotnull, (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''),
                        (SELECT substring(pg_get_constraintdef(k.oid) from '''([^'']*)''')
                         FROM pg_constraint k WHERE k.conrelid = a.attrelid AND k.contype = 'c'
                           AND a.attnum = ANY(k.conkey) LIMIT 1),
                        (SELECT format('(SELECT %I FROM %s LIMIT 1)', fa.attname, k.confrelid::regclass)
                         FROM pg_constraint k
                         JOIN pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = k.confkey[array_position(k.conkey, a.attnum)]
                         WHERE k.conrelid = a.attrelid AND k.contype = 'f' AND a.attnum = ANY(k.conkey) LIMIT 1),
                        (SELECT CASE WHEN t.typtype = 'e' THEN 'E' ELSE coalesce(b.typcategory, t.typcategory)::text END
                         FROM pg_type t LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
                         WHERE t.oid = a.atttypid)
                 FROM pg_attribute a
                 WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum",
            )
            .bind(&oid)
            .fetch_all(&mut *conn)
            .await?;
            let mut names = Vec::new();
            let mut values = Vec::new();
            for (name, ty, not_null, has_default, check_literal, fk, category) in &cols {
                if *has_default || !*not_null {
                    if let Some(fk) = fk.as_ref().filter(|_| !*has_default) {
                        names.push(name.clone());
                        values.push(fk.clone());
                    }
                    continue;
                }
                names.push(name.clone());
                values.push(match (fk, check_literal) {
                    (Some(fk), _) => fk.clone(),
                    (None, Some(lit)) if category == "S" || category == "E" => {
                        format!("'{}'::{ty}", lit.replace('\'', "''"))
                    }
                    (None, _) if category == "U" && ty == "jsonb" || ty == "json" => "'{}'".into(),
                    (None, _) => value_for(ty, category),
                });
            }
            let sql = if names.is_empty() {
                format!("INSERT INTO {table} DEFAULT VALUES")
            } else {
                format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    names.join(", "),
                    values.join(", ")
                )
            };
            let attempt = format!("SAVEPOINT seed; {sql}; RELEASE SAVEPOINT seed");
            sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
            match sqlx::raw_sql(AssertSqlSafe(attempt))
                .execute(&mut *conn)
                .await
            {
                Ok(_) => {
                    sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
                    let present = cols.iter().map(|c| c.0.clone()).collect();
                    out.seeded.push((table, present));
                }
                Err(e) => {
                    sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
                    last_error.insert(table.clone(), short_error(&e));
                    next.push((table, oid));
                }
            }
        }
        if next.is_empty() {
            break;
        }
        pending = next;
        if out.seeded.is_empty() && pending.len() == last_error.len() {
            continue;
        }
    }
    let seeded: BTreeSet<&String> = out.seeded.iter().map(|(t, _)| t).collect();
    for (t, why) in &last_error {
        if !seeded.contains(t) {
            out.skipped.push((t.clone(), why.clone()));
        }
    }
    Ok(out)
}

fn short_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        other => other.to_string(),
    }
}

/// A value of a column type (and its `pg_type.typcategory`, `E` for enums) for a seeded row.
fn value_for(ty: &str, category: &str) -> String {
    let base = ty.split('(').next().unwrap_or(ty).trim();
    match category {
        "A" => format!("'{{}}'::{ty}"),
        "E" => format!("(enum_range(NULL::{ty}))[1]"),
        "B" => "false".into(),
        "N" => "1".into(),
        "D" => format!("now()::{ty}"),
        "T" => "'1 day'".into(),
        "I" => "'127.0.0.1'".into(),
        "S" if base == "character" => {
            let n: usize = ty
                .split(['(', ')'])
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            format!("repeat('a', {n})")
        }
        "S" => format!("'x'::{ty}"),
        _ => match base {
            "uuid" => "'00000000-0000-4000-8000-000000000001'".into(),
            "json" | "jsonb" => "'{}'".into(),
            "bytea" => "'\\x00'".into(),
            _ => format!("'x'::{ty}"),
        },
    }
}

/// Row count and a digest of each seeded table's rows, over the columns it had before.
async fn table_digests(
    conn: &mut PgConnection,
    seeded: &Seeded,
) -> Result<BTreeMap<String, (i64, String)>> {
    let mut out = BTreeMap::new();
    for (table, cols) in &seeded.seeded {
        let sql = format!(
            "SELECT count(*), coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') FROM (SELECT {} FROM {table}) r",
            cols.join(", ")
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await?;
        out.insert(
            table.clone(),
            (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?),
        );
    }
    Ok(out)
}

/// A copy of the server's installation without some extensions, laid out like the original so
/// that PostgreSQL finds its files relative to its programs.
struct Shadow {
    _root: tempfile::TempDir,
    bindir: PathBuf,
}

impl Shadow {
    fn without(binaries: &pg_embedded::PgBinaries, extensions: &[String]) -> Result<Self> {
        let bindir = binaries.bindir().to_path_buf();
        let pg_config = bindir.join("pg_config");
        let out = std::process::Command::new(&pg_config)
            .args(["--sharedir", "--pkglibdir"])
            .output()
            .with_context(|| {
                format!(
                    "cannot run {} (the server's own pg_config says where its extension files are)",
                    pg_config.display()
                )
            })?;
        if !out.status.success() {
            bail!(
                "{} failed: {}",
                pg_config.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines().map(|l| PathBuf::from(l.trim()));
        let (sharedir, pkglibdir) = match (lines.next(), lines.next()) {
            (Some(a), Some(b)) => (a, b),
            _ => bail!("{} printed no folders", pg_config.display()),
        };

        let root = tempfile::Builder::new().prefix("pg-without-").tempdir()?;
        let inside = |p: &Path| root.path().join(p.strip_prefix("/").unwrap_or(p));
        let new_bin = inside(&bindir);
        std::fs::create_dir_all(&new_bin)?;
        for prog in pg_embedded::REQUIRED {
            std::fs::copy(bindir.join(prog), new_bin.join(prog))
                .with_context(|| format!("cannot copy {}", bindir.join(prog).display()))?;
        }
        let drop_file = |name: &str| {
            extensions.iter().any(|e| {
                name == format!("{e}.control")
                    || name.starts_with(&format!("{e}--"))
                    || name == format!("{e}.so")
                    || name == *e
            })
        };
        link_tree(&sharedir, &inside(&sharedir), &drop_file)?;
        link_tree(&pkglibdir, &inside(&pkglibdir), &drop_file)?;
        // The server runs as an unprivileged account: everything must be readable.
        make_readable(root.path())?;
        Ok(Shadow {
            bindir: new_bin,
            _root: root,
        })
    }
}

/// Mirrors a folder with symbolic links, leaving out the files `skip` names: files are linked
/// one by one only in `extension/` (where the control and script files are) and at the top;
/// other folders are linked whole.
fn link_tree(from: &Path, to: &Path, skip: &dyn Fn(&str) -> bool) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if skip(&name) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() && name == "extension" {
            link_tree(&path, &to.join(&name), skip)?;
        } else {
            std::os::unix::fs::symlink(&path, to.join(&name))?;
        }
    }
    Ok(())
}

fn make_readable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in walk_dirs(dir)? {
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn walk_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            out.extend(walk_dirs(&entry.path())?);
        } else if ft.is_file() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Versions given on the command line (`5,7` or file names), as indexes of `set`.
pub fn indexes_of(set: &MigrationSet, list: &[String]) -> Result<Vec<usize>> {
    list.iter()
        .map(|v| {
            let m = set.lookup(v).map_err(|e| anyhow!("--exclude {v}: {e}"))?;
            Ok(set
                .migrations
                .iter()
                .position(|x| x.version == m.version)
                .expect("found"))
        })
        .collect()
}

/// `cargo xtask migrations derive`.
#[derive(Debug, clap::Args)]
pub struct MigrationsDerive {
    /// The canonical migration folder.
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// Extensions the derived profile must do without (comma-separated).
    #[arg(long, value_name = "EXT", value_delimiter = ',', required = true)]
    pub forbid: Vec<String>,
    /// How the folder is laid out: auto, or one of the layouts `migrations deps` reads.
    #[arg(long, default_value = "auto")]
    pub layout: String,
    /// Versions to leave out whatever the rewrite could do (a decision), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Where to write the derived folder (`OUT/migrations`, same layout) and its bridges
    /// (`OUT/bridges`); must not exist or be empty.
    #[arg(long, value_name = "OUT")]
    pub out: Option<PathBuf>,
    /// A SQL file run first on every database of the proof (roles, schemas the history expects).
    #[arg(long, value_name = "FILE")]
    pub prelude: Option<PathBuf>,
    /// Print the proposal only; do not prove it on PostgreSQL.
    #[arg(long)]
    pub no_proof: bool,
}

impl MigrationsDerive {
    pub fn run(self) -> Result<()> {
        let forbid = Forbid::new(&self.forbid).map_err(|e| anyhow!("--forbid: {e}"))?;
        let (set, how) = crate::verify::read(&self.source, &self.layout)?;
        let prelude = self
            .prelude
            .as_ref()
            .map(|p| {
                std::fs::read_to_string(p).with_context(|| format!("--prelude {}", p.display()))
            })
            .transpose()?;
        if let Some(out) = &self.out
            && out.exists()
            && std::fs::read_dir(out)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            bail!(
                "--out {}: exists and is not empty; nothing was written",
                out.display()
            );
        }
        let pinned: BTreeMap<usize, String> = indexes_of(&set, &self.exclude)?
            .into_iter()
            .map(|i| (i, "--exclude".to_owned()))
            .collect();
        println!(
            "derive {} without {}: {how}",
            self.source.display(),
            self.forbid.join(", ")
        );
        let started = Instant::now();
        let generated_by = format!(
            "cargo xtask migrations derive --forbid {}",
            self.forbid.join(",")
        );
        let p = Proposal::derive(set, forbid, &pinned, &BTreeMap::new(), &generated_by)?;
        print!("{}", p.render());
        println!("proposal in {:.2} s", started.elapsed().as_secs_f64());
        let mut failed = p.refused();
        if failed {
            println!("no proof: the refused versions above need a hand-written replacement first");
        } else if !self.no_proof {
            let r = prove(&p, prelude.as_deref())?;
            for l in &r.lines {
                println!("  proof: {l}");
            }
            for f in &r.failures {
                println!("  proof FAILED: {f}");
            }
            println!("proof in {:.2} s", r.seconds);
            failed |= !r.failures.is_empty();
        }
        if let Some(out) = &self.out {
            if failed {
                bail!(
                    "the derived profile is refused or its proof failed; nothing was written to {}",
                    out.display()
                );
            }
            let parent = out
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            std::fs::create_dir_all(parent)?;
            let tmp = tempfile::Builder::new()
                .prefix(".derive-")
                .tempdir_in(parent)?;
            p.write_folder(&tmp.path().join("migrations"))?;
            let bridges = tmp.path().join("bridges");
            std::fs::create_dir_all(&bridges)?;
            for (file, sql) in p.bridges() {
                let name = file.replace('/', "_");
                std::fs::write(bridges.join(&name), bridge_text(&file, &generated_by, &sql))?;
            }
            if out.exists() {
                std::fs::remove_dir(out)?;
            }
            std::fs::rename(tmp.keep(), out)?;
            println!(
                "wrote {}/migrations ({} migrations) and {}/bridges ({} bridges)",
                out.display(),
                p.profile_migrations().len(),
                out.display(),
                p.bridges().len()
            );
        }
        if failed {
            bail!("the derived profile is refused or its proof failed");
        }
        Ok(())
    }
}

/// A bridge file: a header saying what it is, then its statements.
pub fn bridge_text(file: &str, generated_by: &str, sql: &str) -> String {
    format!(
        "-- Bridge of {file}, generated by `{generated_by}`.\n\
         -- Restores what the replacement of this version leaves out, on a database at the end of\n\
         -- the derived history; `cargo xtask upgrade` runs the bridges, then the versions left out.\n\
         -- Do not edit: change the canonical migration and run the command again.\n\n{sql}"
    )
}

/// The line that marks a generated replacement (a file without it is hand-written and wins).
pub const GENERATED: &str = "-- Generated by `cargo xtask profiles derive";
/// The same for a bridge.
pub const GENERATED_BRIDGE: &str = "generated by `cargo xtask profiles derive";

/// `cargo xtask profiles derive PROFILE`.
#[derive(Debug, clap::Args)]
pub struct ProfilesDerive {
    /// The derived profile of migrations/profiles.toml (e.g. `v1.0`).
    pub profile: String,
    /// Write the replacements, bridges and profiles.toml entries, then run `sync-migrations`.
    #[arg(long, conflicts_with = "check")]
    pub write: bool,
    /// Write nothing; exit 1 when the generated files or profiles.toml differ from the proposal.
    #[arg(long)]
    pub check: bool,
    /// Do not prove the proposal on PostgreSQL (nor run `sync-migrations`' proof after --write).
    #[arg(long)]
    pub no_proof: bool,
}

/// What `profiles derive` would write.
#[derive(Debug)]
pub struct ProfileOutput {
    pub name: String,
    /// Where the decisions in profiles.toml change what the rules alone would propose.
    pub decisions: Vec<String>,
    pub proposal: Proposal,
    /// `(path relative to the root, contents)` of every generated replacement and bridge.
    pub files: Vec<(PathBuf, String)>,
    pub include: Vec<i64>,
    pub exclude: BTreeMap<i64, String>,
    /// version → (replacement, bridge), relative to the profile file's folder.
    pub replace: BTreeMap<i64, (String, String)>,
    /// Generated files the proposal no longer uses.
    pub stale: Vec<PathBuf>,
}

/// Derives one profile of this repository from migrations/profiles.toml.
pub fn derive_profile(root: &Path, name: &str) -> Result<ProfileOutput> {
    use crate::profiles::{PROFILE_FILE, Profiles};
    let profiles = Profiles::load(root)?;
    let profile = profiles.get(name).cloned().with_context(|| {
        format!(
            "profile `{name}`: no such profile in {PROFILE_FILE} (known: {})",
            profiles
                .profiles
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    if profile.is_canonical() {
        bail!(
            "profile `{name}` is the canonical one: derive a profile that forbids an extension (e.g. {})",
            profiles
                .derived()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if profile.forbidden_extensions.is_empty() {
        bail!("profile `{name}` forbids no extension in {PROFILE_FILE}: nothing to derive");
    }
    let canonical = profiles.canonical();
    let set = MigrationSet::read(&root.join(&canonical.dir))
        .map_err(|e| anyhow!("{}", crate::workspace::relative(root, &e.to_string())))?;
    let index: BTreeMap<i64, usize> = set
        .migrations
        .iter()
        .enumerate()
        .map(|(i, m)| (m.int_version(), i))
        .collect();
    let pinned: BTreeMap<usize, String> = profile
        .exclude
        .iter()
        .filter_map(|(v, why)| index.get(v).map(|&i| (i, why.clone())))
        .collect();
    let profile_dir = Path::new(PROFILE_FILE).parent().unwrap_or(Path::new(""));
    let mut hand = BTreeMap::new();
    for (v, path) in &profile.replace {
        let Some(&i) = index.get(v) else { continue };
        // A missing file is generated now; one without the generated line is hand-written.
        let text = match std::fs::read_to_string(root.join(path)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => bail!("{PROFILE_FILE}: replace.{v} = {}: {e}", path.display()),
        };
        if text.contains(GENERATED) {
            continue;
        }
        let bridge_path = profile.bridge.get(v).with_context(|| {
            format!("{PROFILE_FILE}: the hand-written replacement of {v} has no bridge")
        })?;
        let bridge = std::fs::read_to_string(root.join(bridge_path))
            .with_context(|| format!("{}", bridge_path.display()))?;
        hand.insert(
            i,
            HandWritten {
                files: vec![(set.migrations[i].up.file_name.clone(), text)],
                bridge,
            },
        );
    }
    let forbid = Forbid::new(&profile.forbidden_extensions)
        .map_err(|e| anyhow!("{PROFILE_FILE}: profile {name}: {e}"))?;
    let generated_by = format!("cargo xtask profiles derive {name}");
    // What the rules alone would do, to explain each decision that changes it.
    let unpinned = Proposal::derive(
        set.clone(),
        forbid.clone(),
        &BTreeMap::new(),
        &hand,
        &generated_by,
    )?;
    let mut proposal = Proposal::derive(set, forbid, &pinned, &hand, &generated_by)?;
    // A hand-written bridge wins over the generated one, also beside a generated replacement.
    let mut hand_bridges = BTreeSet::new();
    for (i, m) in proposal.set.migrations.iter().enumerate() {
        let v = m.int_version();
        let Some(path) = profile.bridge.get(&v) else {
            continue;
        };
        if let Ok(text) = std::fs::read_to_string(root.join(path))
            && !text.contains(GENERATED_BRIDGE)
            && let Some(r) = proposal.entries[i].replacement.as_mut()
        {
            r.bridge = text;
            hand_bridges.insert(v);
        }
    }
    let decisions = proposal
        .entries
        .iter()
        .zip(&unpinned.entries)
        .filter(|(a, b)| a.class != b.class)
        .map(|(a, b)| {
            format!(
                "{}: {} (profiles.toml); the rules alone would {} it: {}",
                a.file,
                a.class.word(),
                b.class.word(),
                b.reason
            )
        })
        .collect();

    // Where generated files go: beside the existing ones, else `<profile>-replacements/`.
    let dir_of = |m: &BTreeMap<i64, PathBuf>, default: &str| {
        m.values()
            .next()
            .and_then(|p| p.parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| profile_dir.join(default))
    };
    let repl_dir = dir_of(&profile.replace, &format!("{name}-replacements"));
    let bridge_dir = dir_of(&profile.bridge, &format!("{name}-bridges"));
    let mut out = ProfileOutput {
        name: name.to_owned(),
        decisions,
        files: Vec::new(),
        include: Vec::new(),
        exclude: BTreeMap::new(),
        replace: BTreeMap::new(),
        stale: Vec::new(),
        proposal,
    };
    let rel = |p: &Path| {
        p.strip_prefix(profile_dir)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    for (m, e) in out
        .proposal
        .set
        .migrations
        .iter()
        .zip(&out.proposal.entries)
    {
        let v = m.int_version();
        match e.class {
            Class::Include => out.include.push(v),
            Class::Exclude | Class::Refused => {
                let reason = profile
                    .exclude
                    .get(&v)
                    .cloned()
                    .unwrap_or_else(|| e.reason.clone());
                out.exclude.insert(v, reason);
            }
            Class::Replace => {
                let r = e.replacement.as_ref().expect("replaced");
                if r.hand_written {
                    out.replace
                        .insert(v, (rel(&profile.replace[&v]), rel(&profile.bridge[&v])));
                    continue;
                }
                for (file, text) in &r.files {
                    out.files.push((repl_dir.join(file), text.clone()));
                }
                let bridge = if hand_bridges.contains(&v) {
                    profile.bridge[&v].clone()
                } else {
                    let bridge = bridge_dir.join(&e.file);
                    out.files.push((
                        bridge.clone(),
                        bridge_text(&e.file, &generated_by, &r.bridge),
                    ));
                    bridge
                };
                out.replace
                    .insert(v, (rel(&repl_dir.join(&e.file)), rel(&bridge)));
            }
        }
    }
    // Generated files of versions no longer replaced.
    for (v, path) in profile.replace.iter().chain(&profile.bridge) {
        if out.replace.contains_key(v) {
            continue;
        }
        if std::fs::read_to_string(root.join(path))
            .is_ok_and(|t| t.contains(GENERATED) || t.contains(GENERATED_BRIDGE))
        {
            out.stale.push(path.clone());
        }
    }
    Ok(out)
}

impl ProfileOutput {
    /// Differences between the proposal and the tree (empty: up to date).
    pub fn drift(&self, root: &Path) -> Result<Vec<String>> {
        use crate::profiles::{PROFILE_FILE, Profiles};
        let mut out = Vec::new();
        for (path, text) in &self.files {
            match std::fs::read_to_string(root.join(path)) {
                Ok(t) if &t == text => {}
                Ok(_) => out.push(format!(
                    "{} is not what derive generates from the canonical migration",
                    path.display()
                )),
                Err(_) => out.push(format!("{} is missing", path.display())),
            }
        }
        for p in &self.stale {
            out.push(format!(
                "{} is generated for a version the proposal no longer replaces",
                p.display()
            ));
        }
        let profiles = Profiles::load(root)?;
        let name = self.name.clone();
        if let Some(p) = profiles.get(&name) {
            let include: Vec<i64> = p.include.clone().unwrap_or_default();
            if include != self.include {
                out.push(format!(
                    "{PROFILE_FILE}: profile {name}: include = {:?}, derive proposes {:?}",
                    include, self.include
                ));
            }
            let have: Vec<&i64> = p.replace.keys().collect();
            let want: Vec<&i64> = self.replace.keys().collect();
            if have != want {
                out.push(format!(
                    "{PROFILE_FILE}: profile {name}: replace {:?}, derive proposes {:?}",
                    have, want
                ));
            }
            let have: Vec<&i64> = p.exclude.keys().collect();
            let want: Vec<&i64> = self.exclude.keys().collect();
            if have != want {
                out.push(format!(
                    "{PROFILE_FILE}: profile {name}: exclude {:?}, derive proposes {:?}",
                    have, want
                ));
            }
        }
        Ok(out)
    }

    /// Writes every generated file and the profile's entries in profiles.toml (comments kept).
    pub fn write(&self, root: &Path, name: &str) -> Result<()> {
        use crate::profiles::PROFILE_FILE;
        let path = root.join(PROFILE_FILE);
        let text = std::fs::read_to_string(&path)?;
        let mut doc: toml_edit::DocumentMut = text
            .parse()
            .with_context(|| format!("{PROFILE_FILE} is not valid TOML"))?;
        let p = doc["profiles"][name]
            .as_table_like_mut()
            .with_context(|| format!("{PROFILE_FILE}: no [profiles.\"{name}\"] table"))?;
        let mut include = toml_edit::Array::new();
        for v in &self.include {
            include.push(*v);
        }
        match p.get_mut("include").and_then(|i| i.as_value_mut()) {
            Some(v) => {
                let decor = v.decor().clone();
                *v = toml_edit::Value::Array(include);
                *v.decor_mut() = decor;
            }
            None => {
                p.insert("include", toml_edit::value(include));
            }
        }
        let table = |entries: Vec<(String, String)>, old: Option<&toml_edit::Item>| {
            let mut t = old
                .and_then(|i| i.as_table())
                .cloned()
                .unwrap_or_else(toml_edit::Table::new);
            let keep: BTreeSet<&String> = entries.iter().map(|(k, _)| k).collect();
            let gone: Vec<String> = t
                .iter()
                .map(|(k, _)| k.to_owned())
                .filter(|k| !keep.contains(k))
                .collect();
            for k in gone {
                t.remove(&k);
            }
            for (k, v) in &entries {
                t.insert(k, toml_edit::value(v.as_str()));
            }
            t.sort_values_by(|a, _, b, _| {
                a.get()
                    .parse::<i64>()
                    .unwrap_or(0)
                    .cmp(&b.get().parse::<i64>().unwrap_or(0))
            });
            t.set_implicit(false);
            toml_edit::Item::Table(t)
        };
        let exclude = table(
            self.exclude
                .iter()
                .map(|(v, r)| (v.to_string(), r.clone()))
                .collect(),
            p.get("exclude"),
        );
        let replace = table(
            self.replace
                .iter()
                .map(|(v, (r, _))| (v.to_string(), r.clone()))
                .collect(),
            p.get("replace"),
        );
        let bridge = table(
            self.replace
                .iter()
                .map(|(v, (_, b))| (v.to_string(), b.clone()))
                .collect(),
            p.get("bridge"),
        );
        p.insert("exclude", exclude);
        p.insert("replace", replace);
        p.insert("bridge", bridge);
        for (rel, contents) in &self.files {
            let file = root.join(rel);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            crate::fsx::write_atomic(&file, contents.as_bytes())?;
        }
        crate::fsx::write_atomic(&path, doc.to_string().as_bytes())?;
        for stale in &self.stale {
            let _ = std::fs::remove_file(root.join(stale));
        }
        Ok(())
    }
}

impl ProfilesDerive {
    pub fn run(self, sh: &xshell::Shell) -> Result<()> {
        let root = crate::project_root();
        let started = Instant::now();
        let out = derive_profile(&root, &self.profile)?;
        println!(
            "profiles derive {}: {} canonical migrations",
            self.profile,
            out.proposal.set.migrations.len()
        );
        print!("{}", out.proposal.render());
        for d in &out.decisions {
            println!("  decision: {d}");
        }
        let drift = out.drift(&root)?;
        if self.check {
            if drift.is_empty() {
                println!("up to date: the generated files and profiles.toml match the proposal");
                return Ok(());
            }
            for d in &drift {
                println!("  drift: {d}");
            }
            bail!(
                "{} difference{} from the proposal; run `cargo xtask profiles derive {} --write`",
                drift.len(),
                if drift.len() == 1 { "" } else { "s" },
                self.profile
            );
        }
        if out.proposal.refused() {
            bail!(
                "some versions need a hand-written replacement (above); write it, name it in profiles.toml's replace and bridge tables, and run again. Nothing was written."
            );
        }
        if !self.no_proof {
            let r = prove(&out.proposal, None)?;
            for l in &r.lines {
                println!("  proof: {l}");
            }
            for f in &r.failures {
                println!("  proof FAILED: {f}");
            }
            println!("proved in {:.2} s", r.seconds);
            if !r.failures.is_empty() {
                bail!("the proof failed; nothing was written");
            }
        }
        if !self.write {
            if drift.is_empty() {
                println!("up to date ({:.2} s)", started.elapsed().as_secs_f64());
            } else {
                for d in &drift {
                    println!("  would change: {d}");
                }
                println!("run with --write to write it");
            }
            return Ok(());
        }
        out.write(&root, &self.profile)?;
        println!(
            "wrote {} generated file{} and {}",
            out.files.len(),
            if out.files.len() == 1 { "" } else { "s" },
            crate::profiles::PROFILE_FILE
        );
        crate::sync::SyncMigrations {
            check: false,
            no_db: self.no_proof,
            database_url: None,
            force: false,
            no_install: false,
            quiet: false,
            format: crate::sync::SyncFormat::Human,
        }
        .run(sh)
    }
}

/// `cargo xtask bench derive`: `profiles derive` with its proof on this repository's history,
/// each phase timed, cold embedded PostgreSQL included (the proof starts its own servers).
#[derive(Debug, clap::Args)]
pub struct BenchDerive {
    /// The derived profile to derive (default: the test suite's profile).
    #[arg(long)]
    pub profile: Option<String>,
    /// Timed runs (the median and the slowest are reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
}

impl BenchDerive {
    pub fn run(self) -> Result<()> {
        let root = crate::project_root();
        let runs = self.runs.max(1);
        let profile = match self.profile {
            Some(p) => p,
            None => crate::profiles::Profiles::load(&root)?.test_profile,
        };
        let (mut propose, mut proof, mut total) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let t0 = Instant::now();
            let out = derive_profile(&root, &profile)?;
            let t1 = Instant::now();
            let r = prove(&out.proposal, None)?;
            if !r.failures.is_empty() {
                bail!("the proof failed: {}", r.failures.join("; "));
            }
            let t2 = Instant::now();
            propose.push(t1 - t0);
            proof.push(t2 - t1);
            total.push(t2 - t0);
        }
        let row = |name: &str, v: &mut Vec<std::time::Duration>| {
            v.sort();
            format!(
                "| {name:<52} | {:>9.3} | {:>9.3} |",
                v[v.len() / 2].as_secs_f64(),
                v[v.len() - 1].as_secs_f64()
            )
        };
        println!(
            "profiles derive {} with its proof, {runs} run{} ({} build)",
            profile,
            if runs == 1 { "" } else { "s" },
            if cfg!(debug_assertions) {
                "dev"
            } else {
                "release"
            }
        );
        println!("| {:<52} | {:>9} | {:>9} |", "phase", "median s", "max s");
        println!("|{:-<54}|{:-<11}|{:-<11}|", "", "", "");
        println!(
            "{}",
            row("proposal (read, rewrite, analyse, settle)", &mut propose)
        );
        println!("{}", row("proof (2 cold servers, 3 proofs)", &mut proof));
        println!("{}", row("total (goal: at most 5 s)", &mut total));
        Ok(())
    }
}
