//! golang-migrate v4 (`source/file` → `source/iofs/iofs.go:PartialDriver.Init`,
//! `source/parse.go`, `source/migration.go`, `database/postgres/postgres.go:Run`), with the
//! PostgreSQL driver in its default mode.
//!
//! - Only the top level of the folder counts. A migration file's name matches
//!   `^([0-9]+)_(.*)\.(down|up)\.(.*)$`: the version, then an identifier, then the direction. The
//!   `.*` is greedy, so the last `.up.`/`.down.` is the direction. golang-migrate does not check
//!   the extension, so `1_x.up.txt` counts too. The version is a `uint64`, ordered numerically.
//!   Two files for one version and direction are refused ("duplicate migration file"), naming
//!   the later one in name order.
//! - Each file goes to PostgreSQL whole, as one `Exec`, and the driver opens no transaction
//!   (`no_transaction`, and `Part::statements` is `None`). PostgreSQL still runs a multi-statement
//!   query as one implicit transaction. The `x-multi-statement` mode is not modelled: it splits
//!   at every `;`, quotes and `$$` bodies included.
//! - The down file is optional. golang-migrate records only the version. The description here
//!   is the identifier of the up file.
//!
//! golang-migrate silently skips some files, and this reader refuses them instead:
//! - a non-hidden `.sql` file whose name does not match (`1_x.sql`, `1.up.sql`, `1_x.UP.sql`),
//!   which is never run;
//! - a version that overflows `uint64`, which golang-migrate skips as not a migration;
//! - a version above `i64::MAX`, which does not fit the `bigint` column golang-migrate stores
//!   versions in.
//!
//! It also refuses a version that has only a down file. For such a version golang-migrate's
//! `up` runs an empty migration that only records the version, so the down file would undo
//! something no up did. A symbolic link is refused too, because golang-migrate follows it.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Layout, LayoutKind, Migration, Part, SetError, Version, entries, read_text};

#[derive(Debug)]
pub(super) struct GolangMigrate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// A name that golang-migrate's `Regex` matches: `(version digits, identifier, direction)`.
fn parse_name(name: &str) -> Option<(&str, &str, Direction)> {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || name.as_bytes().get(digits) != Some(&b'_') || name.contains('\n') {
        return None;
    }
    let rest = &name[digits + 1..];
    // Greedy `(.*)`: the direction is the last `.up.` or `.down.`.
    let (at, direction) = rest.char_indices().rev().find_map(|(i, _)| {
        let tail = &rest[i..];
        if tail.starts_with(".up.") {
            Some((i, Direction::Up))
        } else if tail.starts_with(".down.") {
            Some((i, Direction::Down))
        } else {
            None
        }
    })?;
    Some((&name[..digits], &rest[..at], direction))
}

/// The files of one version.
#[derive(Debug, Default)]
struct Files {
    up: Option<(String, String, std::path::PathBuf)>,
    down: Option<(String, std::path::PathBuf)>,
}

impl Layout for GolangMigrate {
    fn kind(&self) -> LayoutKind {
        LayoutKind::GolangMigrate
    }

    fn evidence(&self, dir: &Path) -> Result<Vec<String>, SetError> {
        let mut out = Vec::new();
        for (name, path) in entries(dir)? {
            if (name.ends_with(".up.sql") || name.ends_with(".down.sql"))
                && parse_name(&name).is_some()
                && path.is_file()
            {
                out.push(name);
            }
        }
        Ok(out)
    }

    fn read(&self, dir: &Path) -> Result<Vec<Migration>, SetError> {
        let mut by_version: BTreeMap<i64, Files> = BTreeMap::new();
        for (name, path) in entries(dir)? {
            let meta = std::fs::symlink_metadata(&path).map_err(SetError::io(&path))?;
            if meta.is_dir() {
                continue;
            }
            let Some((digits, identifier, direction)) =
                parse_name(&name).map(|(d, i, dir)| (d.to_owned(), i.to_owned(), dir))
            else {
                if name.to_ascii_lowercase().ends_with(".sql") && !name.starts_with('.') {
                    return Err(SetError::invalid(
                        &path,
                        None,
                        "not a valid migration name: golang-migrate silently skips a file not named `<version>_<description>.up.sql` or `.down.sql` (lowercase), so this one would never run; rename it (e.g. `000021_add_index.up.sql`), or move it out of the folder",
                    ));
                }
                continue;
            };
            let Ok(version) = digits.parse::<u64>() else {
                return Err(SetError::invalid(
                    &path,
                    None,
                    format!(
                        "version {digits} does not fit golang-migrate's unsigned 64-bit versions: it silently skips the file, which would never run; use a smaller version"
                    ),
                ));
            };
            let Ok(version) = i64::try_from(version) else {
                return Err(SetError::invalid(
                    &path,
                    None,
                    format!(
                        "version {version} is above {}: golang-migrate reads it, but it records versions as signed 64-bit integers (`schema_migrations.version` is a bigint), so it cannot record this one correctly; use a smaller version",
                        i64::MAX
                    ),
                ));
            };
            if meta.file_type().is_symlink() {
                return Err(SetError::Symlink {
                    path,
                    followed: true,
                });
            }
            let files = by_version.entry(version).or_default();
            let taken = match direction {
                Direction::Up => files.up.as_ref().map(|(n, _, _)| n.clone()),
                Direction::Down => files.down.as_ref().map(|(n, _)| n.clone()),
            };
            if let Some(other) = taken {
                return Err(SetError::invalid(
                    &path,
                    None,
                    format!(
                        "duplicate version {version}: {other}, {name} both have it; golang-migrate refuses the folder (\"duplicate migration file: {name}\"); give each migration its own version"
                    ),
                ));
            }
            match direction {
                Direction::Up => files.up = Some((name, identifier, path)),
                Direction::Down => files.down = Some((name, path)),
            }
        }
        let mut out = Vec::with_capacity(by_version.len());
        for (version, files) in by_version {
            let Some((up_name, identifier, up_path)) = files.up else {
                let (down_name, down_path) = files.down.expect("a version has a file");
                return Err(SetError::invalid(
                    &down_path,
                    None,
                    format!(
                        "a down migration without its up: golang-migrate still counts version {version}, and `migrate up` runs an empty migration for it that only records the version, so this down file would undo something no up did; add the up file ({}, empty if that is what you mean) or remove this one",
                        down_name
                            .rsplit_once(".down.")
                            .map_or_else(|| down_name.clone(), |(a, b)| format!("{a}.up.{b}"))
                    ),
                ));
            };
            let up = Part::whole(up_name, up_path.clone(), read_text(&up_path)?, true);
            let down = match files.down {
                Some((name, path)) => {
                    Some(Part::whole(name, path.clone(), read_text(&path)?, true))
                }
                None => None,
            };
            out.push(Migration::new(Version::Int(version), identifier, up, down));
        }
        Ok(out)
    }

    fn parse_version(&self, text: &str) -> Result<Version, String> {
        let t = text.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{text:?} is not a golang-migrate version (digits only, e.g. 21 or 000021)"
            ));
        }
        t.parse::<i64>()
            .map(Version::Int)
            .map_err(|e| format!("{text:?}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn read(files: &[(&str, &str)]) -> Result<Vec<Migration>, SetError> {
        GolangMigrate.read(folder(files).path())
    }

    fn error(files: &[(&str, &str)]) -> String {
        read(files).unwrap_err().to_string()
    }

    #[test]
    fn names_as_golang_migrate_matches_them() {
        assert_eq!(
            parse_name("000001_init.up.sql"),
            Some(("000001", "init", Direction::Up))
        );
        assert_eq!(
            parse_name("1_a.up.down.sql"),
            Some(("1", "a.up", Direction::Down))
        );
        assert_eq!(parse_name("1_.up.sql"), Some(("1", "", Direction::Up)));
        assert_eq!(parse_name("1_x.up.txt"), Some(("1", "x", Direction::Up)));
        assert_eq!(parse_name("1_x.sql"), None);
        assert_eq!(parse_name("1.up.sql"), None);
        assert_eq!(parse_name("1_x.UP.sql"), None);
        assert_eq!(parse_name("v1_x.up.sql"), None);
    }

    #[test]
    fn reads_pairs_in_numeric_order() {
        let set = read(&[
            (
                "000010_b.up.sql",
                "CREATE TABLE b ();\nCREATE INDEX CONCURRENTLY i ON b ((1));\n",
            ),
            ("000010_b.down.sql", "DROP TABLE b;\n"),
            ("2_a.up.sql", "CREATE TABLE a ();\n"),
            ("0_zero.up.sql", "SELECT 0;\n"),
            ("3_c.up.sql", "SELECT 3;\n"),
            ("3_other_name.down.sql", "SELECT -3;\n"),
            ("README.md", "x"),
        ])
        .unwrap();
        let v: Vec<String> = set.iter().map(|m| m.version.to_string()).collect();
        assert_eq!(v, ["0", "2", "3", "10"]);
        let m = &set[3];
        assert_eq!(
            (m.description.as_str(), m.up.file_name.as_str()),
            ("b", "000010_b.up.sql")
        );
        assert!(
            m.up.no_transaction,
            "the postgres driver opens no transaction"
        );
        assert_eq!(m.up.statements, None, "the whole file in one Exec");
        assert_eq!(m.up.line_of(m.up.text.find("CONCURRENTLY").unwrap()), 2);
        let down = m.down.as_ref().unwrap();
        assert_eq!(
            (down.file_name.as_str(), down.no_transaction),
            ("000010_b.down.sql", true)
        );
        assert!(set[1].down.is_none(), "the down file is optional");
        assert_eq!(
            set[2].down.as_ref().unwrap().file_name,
            "3_other_name.down.sql"
        );
    }

    #[test]
    fn refuses_what_golang_migrate_refuses_or_skips() {
        let e = error(&[("01_a.up.sql", ""), ("1_b.up.sql", "")]);
        assert!(e.contains("1_b.up.sql: duplicate version 1: 01_a.up.sql, 1_b.up.sql both have it; golang-migrate refuses the folder (\"duplicate migration file: 1_b.up.sql\")"), "{e}");
        let e = error(&[("1_a.up.sql", ""), ("2_b.down.sql", "")]);
        assert!(e.contains("2_b.down.sql: a down migration without its up: golang-migrate still counts version 2"), "{e}");
        assert!(e.contains("add the up file (2_b.up.sql"), "{e}");
        for name in ["1_x.sql", "1.up.sql", "1_x.UP.sql", "V1_x.up.sql"] {
            let e = error(&[(name, "")]);
            assert!(
                e.contains(&format!(
                    "{name}: not a valid migration name: golang-migrate silently skips"
                )),
                "{e}"
            );
        }
        let e = error(&[("18446744073709551616_x.up.sql", "")]);
        assert!(
            e.contains(
                "does not fit golang-migrate's unsigned 64-bit versions: it silently skips the file"
            ),
            "{e}"
        );
        let e = error(&[("9223372036854775808_x.up.sql", "")]);
        assert!(
            e.contains("version 9223372036854775808 is above 9223372036854775807"),
            "{e}"
        );
        assert!(
            read(&[(".1_x.sql", ""), ("1_a.up.sql", "")]).is_ok(),
            "hidden files are not refused"
        );
    }

    #[test]
    fn evidence_and_versions() {
        let dir = folder(&[
            ("1_a.up.sql", ""),
            ("1_a.down.sql", ""),
            ("1_b.up.txt", ""),
            ("2_c.sql", ""),
        ]);
        assert_eq!(
            GolangMigrate.evidence(dir.path()).unwrap(),
            ["1_a.down.sql", "1_a.up.sql"]
        );
        assert_eq!(
            GolangMigrate.parse_version("000021").unwrap(),
            Version::Int(21)
        );
        assert!(GolangMigrate.parse_version("-1").is_err());
        assert!(GolangMigrate.parse_version("9223372036854775808").is_err());
    }
}
