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
    exclude: Option<RawExclude>,
    #[serde(default)]
    replace: BTreeMap<String, String>,
    #[serde(default)]
    bridge: BTreeMap<String, String>,
}

/// `exclude = [5, 7]`, or a table of versions with the reason each is left out.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawExclude {
    List(Vec<i64>),
    Reasons(BTreeMap<String, String>),
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
    /// version → why it is left out (empty when no reason is given). A derived profile lists
    /// every canonical version in exactly one of `include`, `replace` and `exclude`.
    pub exclude: BTreeMap<i64, String>,
    /// version → replacement file, relative to the repository root.
    pub replace: BTreeMap<i64, PathBuf>,
    /// version → bridge file, relative to the repository root: the SQL that turns what the
    /// replacement of that version created into what the canonical migration creates, run by
    /// `cargo xtask upgrade` (never by sqlx).
    pub bridge: BTreeMap<i64, PathBuf>,
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
            let replace = version_paths(&name, "replace", &p.replace, base)?;
            let bridge = version_paths(&name, "bridge", &p.bridge, base)?;
            if p.include.is_none() && !replace.is_empty() {
                bail!(
                    "{PROFILE_FILE}: profile \"{name}\" has replacements but no `include` list: only derived profiles can replace versions"
                );
            }
            if p.include.is_none() && !bridge.is_empty() {
                bail!(
                    "{PROFILE_FILE}: profile \"{name}\" has bridges but no `include` list: a bridge upgrades a derived profile's replacement to the canonical migration, so only derived profiles have bridges"
                );
            }
            let exclude = excluded_versions(&name, p.exclude)?;
            if p.include.is_none() && !exclude.is_empty() {
                bail!(
                    "{PROFILE_FILE}: profile \"{name}\" has an `exclude` list but no `include` list: the canonical profile has every migration"
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
                    if exclude.contains_key(v) {
                        bail!(
                            "{PROFILE_FILE}: profiles.\"{name}\": version {v} is both included and excluded; list it in one place only"
                        );
                    }
                }
                if let Some(v) = replace.keys().find(|v| exclude.contains_key(v)) {
                    bail!(
                        "{PROFILE_FILE}: profiles.\"{name}\": version {v} is both replaced and excluded; list it in one place only"
                    );
                }
            }
            profiles.push(Profile {
                name,
                dir,
                requires_extensions: p.requires_extensions,
                forbidden_extensions: p.forbidden_extensions,
                include: p.include,
                exclude,
                replace,
                bridge,
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
        for p in &profiles {
            for (v, file) in &p.bridge {
                let parent = file.parent().unwrap_or(Path::new(""));
                if let Some(other) = profiles.iter().find(|o| o.dir == parent) {
                    bail!(
                        "{PROFILE_FILE}: profiles.\"{}\".bridge.{v} = {:?} lies in {}/, where sqlx would read it as a migration of profile \"{}\"; keep bridges in a subfolder (e.g. {}/{}-bridges/)",
                        p.name,
                        file.strip_prefix(base).unwrap_or(file).display(),
                        parent.display(),
                        other.name,
                        canonical_dir.display(),
                        p.name
                    );
                }
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

/// The `version = "file"` entries of a `replace` or `bridge` table, as paths from the repository
/// root.
fn version_paths(
    profile: &str,
    table: &str,
    raw: &BTreeMap<String, String>,
    base: &Path,
) -> Result<BTreeMap<i64, PathBuf>> {
    let mut out = BTreeMap::new();
    for (version, file) in raw {
        let v: i64 = version.parse().map_err(|_| {
            anyhow::anyhow!(
                "{PROFILE_FILE}: profiles.\"{profile}\".{table}: key {version:?} is not a migration version (a number such as 10)"
            )
        })?;
        let rel = safe_relative(file).with_context(|| {
            format!("{PROFILE_FILE}: profiles.\"{profile}\".{table}.{version} = {file:?}")
        })?;
        out.insert(v, base.join(rel));
    }
    Ok(out)
}

/// The `exclude` entry of a profile: version → reason (empty when none is given).
fn excluded_versions(profile: &str, raw: Option<RawExclude>) -> Result<BTreeMap<i64, String>> {
    let mut out = BTreeMap::new();
    match raw {
        None => {}
        Some(RawExclude::List(list)) => {
            for v in list {
                if out.insert(v, String::new()).is_some() {
                    bail!("{PROFILE_FILE}: profiles.\"{profile}\".exclude lists version {v} twice");
                }
            }
        }
        Some(RawExclude::Reasons(table)) => {
            let mut keys: BTreeMap<i64, String> = BTreeMap::new();
            for (key, reason) in table {
                let v: i64 = key.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "{PROFILE_FILE}: profiles.\"{profile}\".exclude: key {key:?} is not a migration version (a number such as 5)"
                    )
                })?;
                if let Some(first) = keys.insert(v, key.clone()) {
                    bail!(
                        "{PROFILE_FILE}: profiles.\"{profile}\".exclude lists version {v} twice ({first:?} and {key:?})"
                    );
                }
                out.insert(v, reason.trim().to_owned());
            }
        }
    }
    Ok(out)
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
            source: canonical_dir.join(m.file_name()),
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
        if m.file_name() != canon.file_name() {
            bail!(
                "{}: a replacement must keep the canonical file name {} (same version and description, so that sqlx sees the same migration)",
                rel.display(),
                canon.file_name()
            );
        }
        out.push(Resolved {
            migration: m,
            source: rel.clone(),
            replaced: true,
        });
    }
    for &v in profile.exclude.keys() {
        if canonical.get(v).is_none() {
            bail!(
                "{PROFILE_FILE}: profile \"{}\" excludes version {v}, but {} has no migration with that version; remove it from `exclude`",
                profile.name,
                canonical_dir.display()
            );
        }
    }
    // The bridges of replaced versions are checked here too, so that `sync-migrations` notices
    // a broken one; whether every replacement has a bridge matters only to `upgrade`
    // (`resolve_bridges`).
    for (&v, rel) in &profile.bridge {
        if let Some(canon) = canonical.get(v)
            && profile.replace.contains_key(&v)
        {
            read_bridge(root, profile, v, rel, canon)?;
        }
    }
    out.sort_by_key(|r| r.migration.int_version());
    Ok(out)
}

/// The canonical versions a derived profile lists in none of `include`, `replace` and
/// `exclude`: a decision nobody has written down yet.
pub fn unclassified(profile: &Profile, canonical: &MigrationSet) -> Vec<i64> {
    let include = profile.include.as_deref().unwrap_or_default();
    canonical
        .migrations
        .iter()
        .map(|m| m.int_version())
        .filter(|v| {
            !include.contains(v)
                && !profile.replace.contains_key(v)
                && !profile.exclude.contains_key(v)
        })
        .collect()
}

/// The SQL that turns what a replacement created into what the canonical migration of the same
/// version creates.
#[derive(Debug, Clone)]
pub struct Bridge {
    pub version: i64,
    /// The file, relative to the repository root.
    pub source: PathBuf,
    pub migration: Migration,
}

/// The bridges of a derived profile, in version order: exactly one for each replaced version.
pub fn resolve_bridges(
    root: &Path,
    profile: &Profile,
    canonical: &MigrationSet,
    canonical_dir: &Path,
) -> Result<Vec<Bridge>> {
    let name = &profile.name;
    for (&v, rel) in &profile.bridge {
        if !profile.replace.contains_key(&v) {
            bail!(
                "{PROFILE_FILE}: profiles.\"{name}\".bridge.{v} = {:?}: profile \"{name}\" does not replace version {v}{}, so there is nothing to bridge; remove the entry (a bridge turns a replacement's result into the canonical migration's)",
                rel.file_name().unwrap_or_default(),
                if profile.include.as_deref().unwrap_or_default().contains(&v) {
                    " (it copies it unchanged)"
                } else {
                    ""
                }
            );
        }
    }
    let mut out = Vec::new();
    for (&v, replacement) in &profile.replace {
        let canon = canonical.get(v).with_context(|| {
            format!(
                "{PROFILE_FILE}: profile \"{name}\" replaces version {v}, but {} has no migration with that version",
                canonical_dir.display()
            )
        })?;
        let Some(rel) = profile.bridge.get(&v) else {
            let folder = replacement
                .parent()
                .and_then(|p| p.file_name())
                .map(|f| f.to_string_lossy().replace("-replacements", "-bridges"))
                .unwrap_or_else(|| format!("{name}-bridges"));
            bail!(
                "{PROFILE_FILE}: profile \"{name}\" replaces version {v} but has no bridge for it, so its databases cannot be upgraded to the canonical profile.\n  \
                 Write the SQL that turns what {} creates into what {}/{} creates, and declare it under [profiles.\"{name}\".bridge]: {v} = \"{folder}/{}\"",
                replacement.display(),
                canonical_dir.display(),
                canon.file_name(),
                canon.file_name()
            );
        };
        out.push(read_bridge(root, profile, v, rel, canon)?);
    }
    Ok(out)
}

/// Reads one bridge: a regular UTF-8 file named like the canonical migration, that can run in a
/// transaction.
fn read_bridge(
    root: &Path,
    profile: &Profile,
    v: i64,
    rel: &Path,
    canon: &Migration,
) -> Result<Bridge> {
    let path = root.join(rel);
    let meta = std::fs::symlink_metadata(&path).with_context(|| {
        format!(
            "{PROFILE_FILE}: profile \"{}\" declares {} as the bridge of version {v}, but it does not exist",
            profile.name,
            rel.display()
        )
    })?;
    if !meta.file_type().is_file() {
        bail!(
            "{}: is not a regular file: a bridge must be one (not a link or folder)",
            rel.display()
        );
    }
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let m = migration_deps::read_file(&path, name).map_err(|e| anyhow::anyhow!("{e}"))?;
    if m.file_name() != canon.file_name() {
        bail!(
            "{}: a bridge must be named like the migration it bridges: {}",
            rel.display(),
            canon.file_name()
        );
    }
    if m.up.no_transaction {
        bail!(
            "{}:1: a bridge runs in the upgrade's transaction; `-- no-transaction` is not possible here",
            rel.display()
        );
    }
    let analyzed = migration_deps::analyze_migration(&m)
        .map_err(|e| anyhow::anyhow!("{}/{e}", rel.parent().unwrap_or(Path::new("")).display()))?;
    if let Some(f) = migration_deps::transaction_findings(&analyzed)
        .into_iter()
        .next()
    {
        bail!(
            "{}:{}: {} (a bridge runs in the upgrade's transaction)",
            rel.display(),
            f.line,
            f.message
        );
    }
    Ok(Bridge {
        version: v,
        source: rel.to_path_buf(),
        migration: m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANONICAL: &[(&str, &str)] = &[
        (
            "010_notes.sql",
            "CREATE TABLE notes (id int, embedding vector(3));\n",
        ),
        ("011_more.sql", "ALTER TABLE notes ADD COLUMN body text;\n"),
        ("015_tags.sql", "CREATE TABLE tags (id int);\n"),
    ];

    /// A repository with three canonical migrations, a replacement of 10 and its bridge.
    fn repo(profile: &str) -> (tempfile::TempDir, Profiles, MigrationSet) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["migrations/v1.0-replacements", "migrations/v1.0-bridges"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        for (name, sql) in CANONICAL {
            std::fs::write(root.join("migrations").join(name), sql).unwrap();
        }
        std::fs::write(
            root.join("migrations/v1.0-replacements/010_notes.sql"),
            "CREATE TABLE notes (id int);\n",
        )
        .unwrap();
        std::fs::write(
            root.join("migrations/v1.0-bridges/010_notes.sql"),
            "CREATE EXTENSION IF NOT EXISTS vector;\nALTER TABLE notes ADD COLUMN embedding vector(3);\n",
        )
        .unwrap();
        std::fs::write(root.join(PROFILE_FILE), profile).unwrap();
        let profiles = Profiles::load(root).unwrap();
        let set = MigrationSet::read(&root.join("migrations")).unwrap();
        (dir, profiles, set)
    }

    fn text(bridge: &str) -> String {
        format!(
            r#"
[profiles.full]
dir = "migrations"

[profiles."v1.0"]
dir = "migrations-v1.0"
include = [11, 15]

[profiles."v1.0".replace]
10 = "v1.0-replacements/010_notes.sql"

[profiles."v1.0".bridge]
{bridge}

[test_suite]
profile = "v1.0"
references = []
"#
        )
    }

    /// Resolves the bridges of a profile file whose bridge table holds `entries`.
    fn bridges(entries: &str) -> Result<Vec<Bridge>> {
        let (dir, profiles, set) = repo(&text(entries));
        let v1 = profiles.get("v1.0").unwrap();
        resolve_bridges(dir.path(), v1, &set, Path::new("migrations"))
    }

    fn bridge_error(entries: &str) -> String {
        format!("{:#}", bridges(entries).unwrap_err())
    }

    #[test]
    fn resolves_one_bridge_per_replacement() {
        let found = bridges(r#"10 = "v1.0-bridges/010_notes.sql""#).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].version, 10);
        assert_eq!(
            found[0].source,
            Path::new("migrations/v1.0-bridges/010_notes.sql")
        );
        assert!(
            found[0]
                .migration
                .up
                .source
                .contains("ADD COLUMN embedding")
        );
    }

    #[test]
    fn refuses_a_bridge_for_a_version_that_is_not_replaced() {
        let err = bridge_error(
            "10 = \"v1.0-bridges/010_notes.sql\"\n15 = \"v1.0-bridges/010_notes.sql\"",
        );
        assert!(
            err.contains("profiles.\"v1.0\".bridge.15 = \"010_notes.sql\": profile \"v1.0\" does not replace version 15 (it copies it unchanged), so there is nothing to bridge"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_replacement_without_a_bridge() {
        let err = bridge_error("");
        assert!(
            err.contains("profile \"v1.0\" replaces version 10 but has no bridge for it"),
            "{err}"
        );
        assert!(
            err.contains("10 = \"v1.0-bridges/010_notes.sql\""),
            "names the entry to add: {err}"
        );
    }

    #[test]
    fn refuses_missing_misnamed_or_non_transactional_bridges() {
        let err = bridge_error(r#"10 = "v1.0-bridges/010_gone.sql""#);
        assert!(err.contains("migrations/v1.0-bridges/010_gone.sql as the bridge of version 10, but it does not exist"), "{err}");

        let (dir, profiles, set) = repo(&text(r#"10 = "v1.0-bridges/010_other.sql""#));
        std::fs::write(
            dir.path().join("migrations/v1.0-bridges/010_other.sql"),
            "SELECT 1;\n",
        )
        .unwrap();
        let v1 = profiles.get("v1.0").unwrap();
        let err = format!(
            "{:#}",
            resolve_bridges(dir.path(), v1, &set, Path::new("migrations")).unwrap_err()
        );
        assert!(
            err.contains("a bridge must be named like the migration it bridges: 010_notes.sql"),
            "{err}"
        );
        // `sync-migrations` notices a broken bridge too (through `resolve`).
        let err = format!(
            "{:#}",
            resolve(dir.path(), v1, &set, Path::new("migrations")).unwrap_err()
        );
        assert!(
            err.contains("must be named like the migration it bridges"),
            "{err}"
        );

        let (dir, profiles, set) = repo(&text(r#"10 = "v1.0-bridges/010_notes.sql""#));
        let v1 = profiles.get("v1.0").unwrap();
        let path = dir.path().join("migrations/v1.0-bridges/010_notes.sql");
        std::fs::write(&path, "CREATE INDEX CONCURRENTLY i ON notes (id);\n").unwrap();
        let err = format!(
            "{:#}",
            resolve_bridges(dir.path(), v1, &set, Path::new("migrations")).unwrap_err()
        );
        assert!(
            err.starts_with("migrations/v1.0-bridges/010_notes.sql:1: "),
            "{err}"
        );
        assert!(
            err.ends_with("(a bridge runs in the upgrade's transaction)"),
            "{err}"
        );
        std::fs::write(&path, "-- no-transaction\nSELECT 1;\n").unwrap();
        let err = format!(
            "{:#}",
            resolve_bridges(dir.path(), v1, &set, Path::new("migrations")).unwrap_err()
        );
        assert!(
            err.contains("`-- no-transaction` is not possible here"),
            "{err}"
        );
    }

    #[test]
    fn refuses_bridges_sqlx_would_read_or_on_the_canonical_profile() {
        let err = format!(
            "{:#}",
            Profiles::parse(&text(r#"10 = "010_notes.sql""#)).unwrap_err()
        );
        assert!(
            err.contains("profiles.\"v1.0\".bridge.10 = \"010_notes.sql\" lies in migrations/, where sqlx would read it as a migration of profile \"full\""),
            "{err}"
        );
        let err = format!(
            "{:#}",
            Profiles::parse(&text(r#"10 = "../migrations-v1.0/010_notes.sql""#)).unwrap_err()
        );
        assert!(err.contains("path leaves its folder"), "{err}");
        let err = format!(
            "{:#}",
            Profiles::parse(&text(r#"ten = "v1.0-bridges/010_notes.sql""#)).unwrap_err()
        );
        assert!(
            err.contains("bridge: key \"ten\" is not a migration version"),
            "{err}"
        );
        let canonical_bridge = text(r#"10 = "v1.0-bridges/010_notes.sql""#).replace(
            "dir = \"migrations\"\n",
            "dir = \"migrations\"\nbridge = { 10 = \"v1.0-bridges/010_notes.sql\" }\n",
        );
        let err = format!("{:#}", Profiles::parse(&canonical_bridge).unwrap_err());
        assert!(
            err.contains("profile \"full\" has bridges but no `include` list"),
            "{err}"
        );
    }

    #[test]
    fn the_repository_declares_a_bridge_for_every_replacement() {
        let root = crate::project_root();
        let profiles = Profiles::load(&root).unwrap();
        let canonical = profiles.canonical();
        let set = MigrationSet::read(&root.join(&canonical.dir)).unwrap();
        for p in profiles.derived() {
            let bridges = resolve_bridges(&root, p, &set, &canonical.dir).unwrap();
            assert_eq!(
                bridges.iter().map(|b| b.version).collect::<Vec<_>>(),
                p.replace.keys().copied().collect::<Vec<_>>()
            );
        }
    }
}
