//! `migrations/profiles.toml`: the one definition of the migration profiles.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use migration_deps::{Migration, MigrationSet};
use serde::Deserialize;

/// Where the profile file lives, relative to the repository root.
pub const PROFILE_FILE: &str = "migrations/profiles.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    profiles: BTreeMap<String, RawProfile>,
    test_suite: RawTestSuite,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    dir: String,
    #[serde(default)]
    requires_extensions: Vec<String>,
    #[serde(default)]
    forbidden_extensions: Vec<String>,
    include: Option<Vec<i64>>,
    #[serde(default)]
    replace: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTestSuite {
    profile: String,
    references: Vec<String>,
}

/// One profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    /// Relative to the repository root.
    pub dir: PathBuf,
    pub requires_extensions: Vec<String>,
    pub forbidden_extensions: Vec<String>,
    /// `None`: the canonical profile (every migration of its directory).
    pub include: Option<Vec<i64>>,
    /// version → replacement file, relative to the repository root.
    pub replace: BTreeMap<i64, PathBuf>,
}

impl Profile {
    pub fn is_canonical(&self) -> bool {
        self.include.is_none()
    }
}

/// The whole profile file, validated.
#[derive(Debug, Clone)]
pub struct Profiles {
    pub profiles: Vec<Profile>,
    pub test_profile: String,
    pub test_references: Vec<PathBuf>,
}

impl Profiles {
    /// Reads and validates `migrations/profiles.toml` under `root`.
    pub fn load(root: &Path) -> Result<Self> {
        let path = root.join(PROFILE_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {PROFILE_FILE}"))?;
        Self::parse(&text)
    }

    /// Parses and validates the text of a profile file.
    pub fn parse(text: &str) -> Result<Self> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{PROFILE_FILE}: {e}"))?;
        let base = Path::new(PROFILE_FILE).parent().expect("has a parent");
        let mut profiles = Vec::new();
        for (name, p) in raw.profiles {
            let dir = safe_relative(&p.dir).with_context(|| {
                format!("{PROFILE_FILE}: profiles.\"{name}\".dir = {:?}", p.dir)
            })?;
            let mut replace = BTreeMap::new();
            for (version, file) in &p.replace {
                let v: i64 = version.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "{PROFILE_FILE}: profiles.\"{name}\".replace: key {version:?} is not a migration version (a number such as 10)"
                    )
                })?;
                let rel = safe_relative(file).with_context(|| {
                    format!("{PROFILE_FILE}: profiles.\"{name}\".replace.{version} = {file:?}")
                })?;
                replace.insert(v, base.join(rel));
            }
            if p.include.is_none() && !replace.is_empty() {
                bail!(
                    "{PROFILE_FILE}: profile \"{name}\" has replacements but no `include` list: only derived profiles can replace versions"
                );
            }
            if let Some(include) = &p.include {
                let mut seen = std::collections::BTreeSet::new();
                for v in include {
                    if !seen.insert(v) {
                        bail!(
                            "{PROFILE_FILE}: profiles.\"{name}\".include lists version {v} twice"
                        );
                    }
                    if replace.contains_key(v) {
                        bail!(
                            "{PROFILE_FILE}: profiles.\"{name}\": version {v} is both included and replaced; list it in one place only"
                        );
                    }
                }
            }
            profiles.push(Profile {
                name,
                dir,
                requires_extensions: p.requires_extensions,
                forbidden_extensions: p.forbidden_extensions,
                include: p.include,
                replace,
            });
        }
        let canonical: Vec<&Profile> = profiles.iter().filter(|p| p.is_canonical()).collect();
        if canonical.len() != 1 {
            bail!(
                "{PROFILE_FILE}: exactly one profile must be canonical (no `include` list); found {}",
                canonical.len()
            );
        }
        let canonical_dir = canonical[0].dir.clone();
        let mut dirs = std::collections::BTreeSet::new();
        for p in &profiles {
            if !dirs.insert(p.dir.clone()) {
                bail!(
                    "{PROFILE_FILE}: two profiles use directory {}",
                    p.dir.display()
                );
            }
            if !p.is_canonical() && p.dir.starts_with(&canonical_dir) {
                bail!(
                    "{PROFILE_FILE}: profile \"{}\" would be generated inside the canonical directory {}",
                    p.name,
                    canonical_dir.display()
                );
            }
        }
        if !profiles.iter().any(|p| p.name == raw.test_suite.profile) {
            bail!(
                "{PROFILE_FILE}: test_suite.profile = {:?} names no profile (known: {})",
                raw.test_suite.profile,
                profiles
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let test_references = raw
            .test_suite
            .references
            .iter()
            .map(|r| {
                safe_relative(r)
                    .with_context(|| format!("{PROFILE_FILE}: test_suite.references entry {r:?}"))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            profiles,
            test_profile: raw.test_suite.profile,
            test_references,
        })
    }

    pub fn canonical(&self) -> &Profile {
        self.profiles
            .iter()
            .find(|p| p.is_canonical())
            .expect("validated")
    }

    pub fn derived(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter().filter(|p| !p.is_canonical())
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }
}

/// A relative path that stays inside the repository: no absolute paths, no `..`.
fn safe_relative(p: &str) -> Result<PathBuf> {
    let path = Path::new(p);
    if p.is_empty() {
        bail!("empty path");
    }
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                bail!("path leaves its folder (`..`): use a path inside the repository")
            }
            Component::RootDir | Component::Prefix(_) => {
                bail!("absolute path: use a path relative to the repository")
            }
        }
    }
    Ok(path.components().collect())
}

/// A profile's migrations as they should be, in version order.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub migration: Migration,
    /// The file it comes from, relative to the repository root.
    pub source: PathBuf,
    pub replaced: bool,
}

/// Resolves a derived profile against the canonical set: allowlisted files as they are,
/// replacements read and checked.
pub fn resolve(
    root: &Path,
    profile: &Profile,
    canonical: &MigrationSet,
    canonical_dir: &Path,
) -> Result<Vec<Resolved>> {
    let include = profile.include.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    for &v in include {
        let m = canonical.get(v).with_context(|| {
            format!(
                "{PROFILE_FILE}: profile \"{}\" includes version {v}, but {} has no migration with that version",
                profile.name,
                canonical_dir.display()
            )
        })?;
        out.push(Resolved {
            migration: m.clone(),
            source: canonical_dir.join(&m.file_name),
            replaced: false,
        });
    }
    for (&v, rel) in &profile.replace {
        let Some(canon) = canonical.get(v) else {
            bail!(
                "{PROFILE_FILE}: profile \"{}\" replaces version {v}, but {} has no migration with that version",
                profile.name,
                canonical_dir.display()
            );
        };
        let path = root.join(rel);
        let meta = std::fs::symlink_metadata(&path).with_context(|| {
            format!(
                "{PROFILE_FILE}: profile \"{}\" replaces version {v} with {}, which does not exist",
                profile.name,
                rel.display()
            )
        })?;
        if meta.file_type().is_symlink() {
            bail!(
                "{}: is a symbolic link: replacements must be regular files",
                rel.display()
            );
        }
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let m = migration_deps::read_file(&path, name).map_err(|e| anyhow::anyhow!("{e}"))?;
        if m.file_name != canon.file_name {
            bail!(
                "{}: a replacement must keep the canonical file name {} (same version and description, so that sqlx sees the same migration)",
                rel.display(),
                canon.file_name
            );
        }
        out.push(Resolved {
            migration: m,
            source: rel.clone(),
            replaced: true,
        });
    }
    out.sort_by_key(|r| r.migration.version);
    Ok(out)
}
