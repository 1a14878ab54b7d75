//! sqlx 0.9 (`sqlx-core/src/migrate/source.rs`, `migration_type.rs`): the top level of the
//! folder; a name is split at its first `_`; a name whose rest does not end in `.sql` is not a
//! migration; the part before the `_` must parse as an `i64` (sign and leading zeros allowed);
//! `.up.sql`/`.down.sql` make a reversible pair; the description is the rest without the suffix,
//! `_` → space; `-- no-transaction` counts only as the very first bytes; the checksum is the
//! SHA-384 of the up file's bytes.
//!
//! Where sqlx silently does something a person would not expect, this reader refuses, saying
//! what sqlx would do: two files with one version (sqlx applies both and fails on the second's
//! `_sqlx_migrations` row), a down file without its up (never run), a `.sql` file without a
//! version (never run), a symbolic link (followed).

use std::collections::BTreeMap;
use std::path::Path;

use super::{Layout, LayoutKind, Migration, Part, SetError, Version, entries, read_text};

/// The line sqlx looks for, at the very start of a file, to run a migration outside a
/// transaction.
pub const NO_TX_DIRECTIVE: &str = "-- no-transaction";

#[derive(Debug)]
pub(super) struct Sqlx;

/// The kinds of file sqlx tells apart by suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Simple,
    Up,
    Down,
}

/// A file name sqlx reads as a migration: `(version, description, kind)`. `Ok(None)`: sqlx
/// skips the name. `Err`: sqlx refuses the whole folder.
fn parse_name(name: &str) -> Result<Option<(i64, String, Kind)>, String> {
    let Some((prefix, rest)) = name.split_once('_') else {
        return Ok(None);
    };
    if !rest.ends_with(".sql") {
        return Ok(None);
    }
    let version: i64 = prefix.parse().map_err(|_| {
        format!(
            "not a valid migration name: sqlx refuses the folder (\"error parsing migration filename {name:?}; expected integer version prefix\"); name it `<version>_<description>.sql` with a numeric version (e.g. `021_add_index.sql`)"
        )
    })?;
    let (kind, suffix) = if rest.ends_with(".up.sql") {
        (Kind::Up, ".up.sql")
    } else if rest.ends_with(".down.sql") {
        (Kind::Down, ".down.sql")
    } else {
        (Kind::Simple, ".sql")
    };
    let description = rest.trim_end_matches(suffix).replace('_', " ");
    Ok(Some((version, description, kind)))
}

/// Reads one sqlx migration file on its own (a replacement or bridge kept outside a migration
/// folder), named like a migration of the folder it stands in for. The up file of a
/// reversible pair (`<version>_<desc>.up.sql`) brings its `.down.sql` beside it, when there
/// is one.
pub fn read_file(path: &Path, name: &str) -> Result<Migration, SetError> {
    let source = read_text(path)?;
    match parse_name(name) {
        Ok(Some((version, description, Kind::Simple))) => Ok(Migration::new(
            Version::Int(version),
            description,
            part(name, path, source),
            None,
        )),
        Ok(Some((version, description, Kind::Up))) => {
            let down_name = format!("{}.down.sql", name.trim_end_matches(".up.sql"));
            let down_path = path.with_file_name(&down_name);
            let down = match std::fs::symlink_metadata(&down_path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(SetError::invalid(
                        &down_path,
                        None,
                        "is a symbolic link: migration files must be regular files",
                    ));
                }
                Ok(_) => Some(part(&down_name, &down_path, read_text(&down_path)?)),
                Err(_) => None,
            };
            Ok(Migration::new(
                Version::Int(version),
                description,
                part(name, path, source),
                down,
            ))
        }
        Ok(Some((_, _, Kind::Down))) => Err(SetError::invalid(
            path,
            None,
            "is a down migration: name the file of the up direction",
        )),
        Ok(None) => Err(SetError::invalid(
            path,
            None,
            "not a valid migration name: expected `<version>_<description>.sql` with a numeric version (e.g. `021_add_index.sql`)",
        )),
        Err(message) => Err(SetError::invalid(path, None, message)),
    }
}

fn part(name: &str, path: &Path, source: String) -> Part {
    let no_transaction = source.starts_with(NO_TX_DIRECTIVE);
    Part::whole(name.to_owned(), path.to_path_buf(), source, no_transaction)
}

/// The files of one version.
#[derive(Default)]
struct Files {
    simple: Vec<(String, Part)>,
    up: Vec<(String, Part)>,
    down: Vec<(String, Part)>,
}

impl Layout for Sqlx {
    fn kind(&self) -> LayoutKind {
        LayoutKind::Sqlx
    }

    fn evidence(&self, dir: &Path) -> Result<Vec<String>, SetError> {
        let mut out = Vec::new();
        for (name, path) in entries(dir)? {
            if !matches!(parse_name(&name), Ok(Some(_))) || !path.is_file() {
                continue;
            }
            // goose and dbmate files are named like sqlx's; their annotations tell them apart.
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if !super::goose::is_annotated(&text) && !super::dbmate::is_annotated(&text) {
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
            let parsed = match parse_name(&name) {
                Ok(Some(p)) => p,
                Ok(None) if name.ends_with(".sql") && !name.starts_with('.') => {
                    return Err(SetError::invalid(
                        &path,
                        None,
                        "not a valid migration name: sqlx ignores a file without `<version>_` in its name, so this one would never run; name it `<version>_<description>.sql` with a numeric version (e.g. `021_add_index.sql`), or move it out of the folder",
                    ));
                }
                Ok(None) => continue,
                Err(message) => return Err(SetError::invalid(&path, None, message)),
            };
            if meta.file_type().is_symlink() {
                if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                    continue;
                }
                return Err(SetError::Symlink {
                    path,
                    followed: true,
                });
            }
            let (version, description, kind) = parsed;
            let p = part(&name, &path, read_text(&path)?);
            let files = by_version.entry(version).or_default();
            match kind {
                Kind::Simple => files.simple.push((description, p)),
                Kind::Up => files.up.push((description, p)),
                Kind::Down => files.down.push((description, p)),
            }
        }
        let mut out = Vec::new();
        for (version, files) in by_version {
            let ups: Vec<&Part> = files
                .simple
                .iter()
                .chain(&files.up)
                .map(|(_, p)| p)
                .collect();
            if ups.len() > 1
                || files.down.len() > 1
                || (!files.simple.is_empty() && !files.down.is_empty())
            {
                let all: Vec<&Part> = ups
                    .iter()
                    .copied()
                    .chain(files.down.iter().map(|(_, p)| p))
                    .collect();
                return Err(SetError::invalid(
                    &all[1].path,
                    None,
                    format!(
                        "duplicate version {version}: {} all have it. sqlx does not refuse this: it applies both and then fails on the second's `_sqlx_migrations` row; give each migration its own version",
                        all.iter()
                            .map(|p| p.file_name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            // A down file without its up is never run by sqlx (`run` skips downs, `revert`
            // reverts applied versions only): there is nothing to read.
            let Some((description, up)) = files.simple.into_iter().chain(files.up).next() else {
                continue;
            };
            let down = files.down.into_iter().next().map(|(_, p)| p);
            out.push(Migration::new(Version::Int(version), description, up, down));
        }
        Ok(out)
    }

    fn parse_version(&self, text: &str) -> Result<Version, String> {
        parse_int_version(text)
    }
}

/// An integer version as a person writes it (`5`, `005`).
pub(super) fn parse_int_version(text: &str) -> Result<Version, String> {
    let t = text.trim();
    if t.is_empty()
        || !t
            .trim_start_matches(['+', '-'])
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return Err(format!(
            "{text:?} is not a migration version (digits only, e.g. 5 or 005)"
        ));
    }
    t.parse()
        .map(Version::Int)
        .map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn read(files: &[(&str, &str)]) -> Result<Vec<Migration>, SetError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Sqlx.read(dir.path())
    }

    fn error(files: &[(&str, &str)]) -> String {
        read(files).unwrap_err().to_string()
    }

    #[test]
    fn names_as_sqlx_reads_them() {
        assert_eq!(
            parse_name("001_initial_schema.sql").unwrap(),
            Some((1, "initial schema".to_owned(), Kind::Simple))
        );
        assert_eq!(
            parse_name("20240101000000_add-users_table.up.sql").unwrap(),
            Some((20240101000000, "add-users table".to_owned(), Kind::Up))
        );
        assert_eq!(
            parse_name("+7_x.down.sql").unwrap(),
            Some((7, "x".to_owned(), Kind::Down))
        );
        assert_eq!(parse_name("1_a b.sql").unwrap().unwrap().1, "a b");
        assert_eq!(parse_name("README.md").unwrap(), None);
        assert_eq!(parse_name("1_x.txt").unwrap(), None);
        assert_eq!(parse_name("1_x.SQL").unwrap(), None);
        assert_eq!(parse_name("1.sql").unwrap(), None);
        assert!(
            parse_name("v2_add.sql")
                .unwrap_err()
                .contains("expected integer version prefix")
        );
    }

    #[test]
    fn reads_reversible_pairs_mixed_with_simple_files() {
        let set = read(&[
            ("1_a.sql", "CREATE TABLE a (id int);\n"),
            (
                "2_b.up.sql",
                "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON a (id);\n",
            ),
            ("2_b.down.sql", "DROP INDEX i;\n"),
            ("3_c.up.sql", "ALTER TABLE a ADD c int;\n"),
            ("notes.txt", "not a migration"),
        ])
        .unwrap();
        let v: Vec<String> = set.iter().map(|m| m.version.to_string()).collect();
        assert_eq!(v, ["1", "2", "3"]);
        assert!(set[0].down.is_none() && !set[0].up.no_transaction);
        assert!(set[1].up.no_transaction);
        assert_eq!(set[1].down.as_ref().unwrap().file_name, "2_b.down.sql");
        assert!(set[2].down.is_none(), "an up without a down is fine");
        assert_eq!(
            set[1].checksum_hex(),
            hex::encode(sha2::Sha384::digest(
                b"-- no-transaction\nCREATE INDEX CONCURRENTLY i ON a (id);\n"
            ))
        );
    }

    #[test]
    fn the_directive_counts_only_at_the_first_byte() {
        let set = read(&[
            ("1_a.sql", "\n-- no-transaction\nSELECT 1;\n"),
            ("2_b.sql", "\u{feff}-- no-transaction\nSELECT 1;\n"),
        ])
        .unwrap();
        assert!(!set[0].up.no_transaction && !set[1].up.no_transaction);
    }

    #[test]
    fn refuses_what_sqlx_would_misread() {
        let e = error(&[("1_a.sql", ""), ("001_b.sql", "")]);
        assert!(
            e.contains(
                "duplicate version 1: 001_b.sql, 1_a.sql all have it. sqlx does not refuse this"
            ),
            "{e}"
        );
        let e = error(&[("1_a.sql", ""), ("1_a.up.sql", "")]);
        assert!(e.contains("duplicate version 1"), "{e}");
        let e = error(&[("1_a.sql", ""), ("1_a.down.sql", "")]);
        assert!(e.contains("duplicate version 1"), "{e}");
        assert!(
            read(&[("2_b.down.sql", "")]).unwrap().is_empty(),
            "sqlx never runs a lone down"
        );
        let e = error(&[("add-index.sql", "")]);
        assert!(
            e.contains("sqlx ignores a file without `<version>_`"),
            "{e}"
        );
        let e = error(&[("v2_add.sql", "")]);
        assert!(
            e.contains("v2_add.sql: not a valid migration name: sqlx refuses the folder"),
            "{e}"
        );
    }
}
