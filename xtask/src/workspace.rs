//! The migrations of every profile, read and analysed once for the commands that need them.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use migration_deps::{
    Analyzed, Finding, Member, Membership, MigrationSet, analyze_migration, check_profile,
    dependency_edges,
};

use crate::profiles::{PROFILE_FILE, Profile, Profiles, Resolved, resolve, unclassified};

/// A derived profile with its resolved and analysed members.
#[derive(Debug)]
pub struct Derived {
    pub profile: Profile,
    pub members: Vec<Resolved>,
    pub analyzed: Vec<Analyzed>,
    /// Canonical versions the profile lists in none of `include`, `replace` and `exclude`.
    pub unclassified: Vec<i64>,
}

/// Everything `sync-migrations` and `migrations graph` work from.
#[derive(Debug)]
pub struct Workspace {
    pub root: PathBuf,
    pub profiles: Profiles,
    pub canonical: Vec<Analyzed>,
    pub derived: Vec<Derived>,
}

impl Workspace {
    /// Reads the profile file, the canonical migrations and the replacements, and parses them all.
    pub fn load(root: &Path) -> Result<Self> {
        let profiles = Profiles::load(root)?;
        let canonical_profile = profiles.canonical().clone();
        let canonical_set = MigrationSet::read(&root.join(&canonical_profile.dir))
            .map_err(|e| anyhow!("{}", relative(root, &e.to_string())))?;
        let canonical = canonical_set
            .migrations
            .iter()
            .map(|m| {
                analyze_migration(m).map_err(|e| anyhow!("{}/{e}", canonical_profile.dir.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut derived = Vec::new();
        for profile in profiles.derived() {
            let members = resolve(root, profile, &canonical_set, &canonical_profile.dir)?;
            let analyzed = members
                .iter()
                .map(|r| {
                    if r.replaced {
                        analyze_migration(&r.migration).map_err(|e| {
                            anyhow!(
                                "{}/{e}",
                                r.source.parent().unwrap_or(Path::new("")).display()
                            )
                        })
                    } else {
                        let i = canonical
                            .iter()
                            .position(|a| a.migration.int_version() == r.migration.int_version())
                            .expect("resolved from the canonical set");
                        Ok(canonical[i].clone())
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            derived.push(Derived {
                profile: profile.clone(),
                unclassified: unclassified(profile, &canonical_set),
                members,
                analyzed,
            });
        }
        Ok(Self {
            root: root.to_path_buf(),
            profiles,
            canonical,
            derived,
        })
    }

    /// Every dependency and transaction problem, of every profile, each reported once.
    pub fn findings(&self) -> Vec<(String, Finding)> {
        let mut out: Vec<(String, Finding)> = Vec::new();
        let canonical = self.profiles.canonical();
        let members: Vec<Member<'_>> = self
            .canonical
            .iter()
            .map(|a| Member {
                analyzed: a,
                membership: Membership::Included,
            })
            .collect();
        let dir = canonical.dir.display().to_string();
        for a in &self.canonical {
            out.extend(
                migration_deps::transaction_findings(a)
                    .into_iter()
                    .chain(migration_deps::hazard_findings(a))
                    .map(|f| (canonical.name.clone(), prefixed(&dir, f))),
            );
        }
        out.extend(
            check_profile(&self.canonical, &members, &canonical.forbidden_extensions)
                .into_iter()
                .map(|f| (canonical.name.clone(), prefixed(&dir, f))),
        );
        for d in &self.derived {
            let members: Vec<Member<'_>> = d
                .analyzed
                .iter()
                .zip(&d.members)
                .map(|(a, r)| Member {
                    analyzed: a,
                    membership: if r.replaced {
                        Membership::Replaced
                    } else {
                        Membership::Included
                    },
                })
                .collect();
            for (a, r) in d.analyzed.iter().zip(&d.members) {
                if r.replaced {
                    let dir = r
                        .source
                        .parent()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    out.extend(
                        migration_deps::transaction_findings(a)
                            .into_iter()
                            .chain(migration_deps::hazard_findings(a))
                            .map(|f| (d.profile.name.clone(), prefixed(&dir, f))),
                    );
                }
            }
            let sources: std::collections::HashMap<String, String> = d
                .members
                .iter()
                .map(|r| {
                    (
                        r.migration.file_name().to_owned(),
                        r.source
                            .parent()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            out.extend(
                check_profile(&self.canonical, &members, &d.profile.forbidden_extensions)
                    .into_iter()
                    .map(|f| {
                        let dir = sources.get(&f.file).cloned().unwrap_or_default();
                        (d.profile.name.clone(), prefixed(&dir, f))
                    }),
            );
        }
        out
    }
}

impl Workspace {
    /// One message per canonical version that a derived profile does not classify, saying the
    /// three ways to classify it and which one the analysis suggests.
    pub fn classification_problems(&self) -> Vec<String> {
        let edges = dependency_edges(&self.canonical);
        let dir = self.profiles.canonical().dir.display().to_string();
        let mut out = Vec::new();
        for d in &self.derived {
            let name = &d.profile.name;
            let has = |i: usize| {
                let v = self.canonical[i].migration.int_version();
                d.members.iter().any(|m| m.migration.int_version() == v)
            };
            for &v in &d.unclassified {
                let Some(i) = self
                    .canonical
                    .iter()
                    .position(|a| a.migration.int_version() == v)
                else {
                    continue;
                };
                let a = &self.canonical[i];
                let file = &a.migration.file_name();
                let forbidden = a
                    .analysis
                    .facts
                    .extension_uses
                    .iter()
                    .find(|u| d.profile.forbidden_extensions.contains(&u.extension));
                let needed_by: Vec<String> = edges
                    .iter()
                    .filter(|e| e.from == i && has(e.to))
                    .map(|e| uses(self.canonical[e.to].migration.file_name(), &e.objects))
                    .collect();
                let missing: Vec<String> = edges
                    .iter()
                    .filter(|e| e.to == i && !has(e.from))
                    .map(|e| {
                        let from = self.canonical[e.from].migration.int_version();
                        let status = if d.unclassified.contains(&from) {
                            "not classified either"
                        } else {
                            "excluded"
                        };
                        format!(
                            "{}, which is {status}",
                            uses(self.canonical[e.from].migration.file_name(), &e.objects)
                        )
                    })
                    .collect();
                let suggestion = if let Some(u) = forbidden {
                    let why = format!(
                        "it needs extension {} (line {}: {}), which this profile forbids",
                        u.extension, u.line, u.what
                    );
                    if needed_by.is_empty() {
                        format!("exclude it: {why}, and no version of the profile depends on it")
                    } else {
                        format!(
                            "replace it with a variant without {}: {why}, and the profile needs it: {}",
                            u.extension,
                            needed_by.join("; ")
                        )
                    }
                } else if !missing.is_empty() {
                    format!(
                        "exclude it too, or include or replace what it depends on: it depends on {}",
                        missing.join("; ")
                    )
                } else {
                    "include it: it uses nothing this profile forbids and depends only on versions the profile has"
                        .to_owned()
                };
                out.push(format!(
                    "{dir}/{file}: version {v} is not classified for profile \"{name}\": list it in {PROFILE_FILE} \
                     under [profiles.\"{name}\"] in `include` (copied as it is), `replace` (a variant for this profile) \
                     or `exclude` (left out)\n  the analysis suggests: {suggestion}"
                ));
            }
        }
        out
    }
}

/// `022_x.sql (table t, column t.c)`: a migration and some of the objects of a dependency.
fn uses(file: &str, objects: &[migration_deps::Object]) -> String {
    let mut names: Vec<String> = objects.iter().take(3).map(ToString::to_string).collect();
    if objects.len() > 3 {
        names.push(format!("{} more", objects.len() - 3));
    }
    format!("{file} ({})", names.join(", "))
}

/// Names the file by its path in the repository (`migrations/011_….sql:7: …`).
fn prefixed(dir: &str, mut f: Finding) -> Finding {
    if !dir.is_empty() {
        f.file = format!("{dir}/{}", f.file);
    }
    f
}

/// Shows paths under the root relative to it.
pub fn relative(root: &Path, text: &str) -> String {
    let prefix = format!("{}/", root.display());
    text.replace(&prefix, "")
}
