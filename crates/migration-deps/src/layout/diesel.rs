//! diesel 2.3 (`diesel_migrations`: `migrations_internals/src/lib.rs`, `file_based_migrations.rs`,
//! `migration_harness.rs`), as `diesel migration run` and `FileBasedMigrations` read a folder.
//!
//! - Each migration is a folder at the top level, holding an `up.sql`. Files are skipped, and so
//!   are names starting with `.` and empty folders. A folder that is not skipped but has no
//!   `up.sql` makes diesel refuse the whole folder ("Invalid migration directory").
//! - The version is the folder name before its first `_`, with every `-` removed:
//!   `2019-02-26-002946_create_user` has version `20190226002946`. diesel never checks that it is
//!   a number, and a name without `_` is a version in full. Versions are ordered as strings
//!   (`10_x` before `9_x`).
//! - `up.sql` goes to PostgreSQL whole, as one `batch_execute` (`Part::statements` is `None`).
//!   An empty (0-byte) `up.sql` is refused ("Attempted to run an empty migration."). `down.sql`
//!   is optional and is the down part.
//! - `metadata.toml` controls the transaction through `run_in_transaction`:
//!   - no file, or a file diesel cannot read or parse (toml crate, serde): in a transaction;
//!   - a parsed file without the key, including an empty file: **not** in a transaction (serde's
//!     default for the `bool`);
//!   - otherwise the key's value.
//!
//!   A value that is not a boolean is a parse error, so the migration runs in a transaction.
//!   This reader has no TOML library. It understands comments, `[table]` headers and `key = value`
//!   lines whose values are booleans, single-line strings or decimal integers. It refuses
//!   anything else, so that it never guesses diesel's answer.
//!
//! `file_name` is `<folder>/up.sql` (`<folder>/down.sql`). diesel records only the version. The
//! description here is the folder name after its first `_`.
//!
//! Two folders with one version (`2024_a` and `2024_b`, or `2024-01_a` and `202401_b`) are
//! refused. diesel does not refuse them: it keeps one, whichever `read_dir` lists last, and never
//! runs the other. A symbolic link is refused too, because diesel follows it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::{Layout, LayoutKind, Migration, Part, SetError, Version, entries, read_text};

#[derive(Debug)]
pub(super) struct Diesel;

const INVALID_DIR: &str = "Invalid migration directory: the directory's name should be <timestamp>_<name_of_migration>, and it should contain up.sql and optionally down.sql.";

/// diesel's version of a folder name (`version_from_string`).
fn version_of(name: &str) -> String {
    name.split('_').next().unwrap_or("").replace('-', "")
}

impl Layout for Diesel {
    fn kind(&self) -> LayoutKind {
        LayoutKind::Diesel
    }

    fn evidence(&self, dir: &Path) -> Result<Vec<String>, SetError> {
        let mut out = Vec::new();
        for (name, path) in entries(dir)? {
            let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            if is_dir && !name.starts_with('.') && path.join("up.sql").is_file() {
                out.push(name);
            }
        }
        Ok(out)
    }

    fn read(&self, dir: &Path) -> Result<Vec<Migration>, SetError> {
        let mut by_version: BTreeMap<String, Migration> = BTreeMap::new();
        for (name, path) in entries(dir)? {
            let meta = std::fs::symlink_metadata(&path).map_err(SetError::io(&path))?;
            if meta.is_file() || name.starts_with('.') {
                continue;
            }
            if meta.file_type().is_symlink() {
                if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                    return Err(SetError::Symlink {
                        path,
                        followed: true,
                    });
                }
                return Err(SetError::invalid(
                    &path,
                    None,
                    format!(
                        "a symbolic link to something that is not a folder: diesel refuses the whole folder (\"{INVALID_DIR}\")"
                    ),
                ));
            }
            if !meta.is_dir() {
                return Err(SetError::invalid(
                    &path,
                    None,
                    format!(
                        "neither a file nor a folder: diesel refuses the whole folder (\"{INVALID_DIR}\")"
                    ),
                ));
            }
            let inner = entries(&path)?;
            if inner.is_empty() {
                continue;
            }
            if !inner.iter().any(|(n, _)| n == "up.sql") {
                return Err(SetError::invalid(
                    &path,
                    None,
                    format!(
                        "no up.sql: diesel refuses the whole folder before running anything (\"{INVALID_DIR}\"); add the migration's up.sql, or move this folder out"
                    ),
                ));
            }
            let version = version_of(&name);
            if let Some(other) = by_version.get(&version) {
                let other = other.up.file_name.trim_end_matches("/up.sql");
                return Err(SetError::invalid(
                    &path,
                    None,
                    format!(
                        "duplicate version {version}: {other}, {name} both have it. diesel does not refuse this: it keys migrations by version, keeps whichever folder `read_dir` lists last and never runs the other, without a word; give each migration its own version"
                    ),
                ));
            }
            let no_transaction = !run_in_transaction(&path.join("metadata.toml"))?;
            let up_path = path.join("up.sql");
            let up_source = read_file(&up_path)?.ok_or_else(|| {
                SetError::invalid(&up_path, None, "cannot read up.sql (not found)")
            })?;
            if up_source.is_empty() {
                return Err(SetError::invalid(
                    &up_path,
                    None,
                    format!(
                        "an empty file: diesel refuses to run it (\"Failed to run {name} with: Attempted to run an empty migration.\"); write the migration's SQL (a comment such as `-- nothing to do` is enough)"
                    ),
                ));
            }
            let up = Part::whole(format!("{name}/up.sql"), up_path, up_source, no_transaction);
            let down_path = path.join("down.sql");
            let down = read_file(&down_path)?.map(|source| {
                Part::whole(
                    format!("{name}/down.sql"),
                    down_path,
                    source,
                    no_transaction,
                )
            });
            let description = name.split_once('_').map_or("", |(_, d)| d).to_owned();
            by_version.insert(
                version.clone(),
                Migration::new(Version::Text(version), description, up, down),
            );
        }
        Ok(by_version.into_values().collect())
    }

    fn parse_version(&self, text: &str) -> Result<Version, String> {
        let t = text.trim();
        let v = version_of(t);
        if v.is_empty() || v.contains(char::is_whitespace) {
            return Err(format!(
                "{text:?} is not a diesel version (e.g. 2019-02-26-002946 or 20190226002946)"
            ));
        }
        Ok(Version::Text(v))
    }
}

/// A migration's `up.sql` or `down.sql`: `None` when absent; symbolic links and folders refused.
fn read_file(path: &Path) -> Result<Option<String>, SetError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SetError::io(path)(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(SetError::Symlink {
            path: path.to_path_buf(),
            followed: true,
        });
    }
    if meta.is_dir() {
        return Err(SetError::invalid(
            path,
            None,
            "a folder, not a file: diesel fails when it reads it",
        ));
    }
    read_text(path).map(Some)
}

/// Whether diesel runs the migration in a transaction, from its `metadata.toml` (see the module
/// documentation).
fn run_in_transaction(path: &Path) -> Result<bool, SetError> {
    // diesel: `TomlMetadata::read_from_file(..).unwrap_or_default()`; any failure is "true".
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(true);
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok(true);
    };
    match read_toml(&text, "run_in_transaction") {
        Toml::Invalid => Ok(true),
        Toml::Valid(None) => Ok(false),
        Toml::Valid(Some(TomlValue::Bool(b))) => Ok(b),
        Toml::Valid(Some(TomlValue::Other)) => Ok(true),
        Toml::Unsupported { line, what } => Err(SetError::invalid(
            path,
            line,
            format!(
                "{what}: this reader cannot tell how diesel reads this metadata.toml (it understands comments, `[table]` headers and `key = value` lines with booleans, one-line strings and integers); diesel runs the migration in a transaction unless the file parses and its top-level `run_in_transaction` is false or missing; write it as `run_in_transaction = false` (or `true`)"
            ),
        )),
    }
}

/// A top-level value, as far as serde's `bool` cares.
#[derive(Debug, PartialEq, Eq)]
enum TomlValue {
    Bool(bool),
    Other,
}

/// What the toml crate would make of a file, for one top-level key.
#[derive(Debug, PartialEq, Eq)]
enum Toml {
    /// It parses; the key's value when it is there.
    Valid(Option<TomlValue>),
    /// It does not parse.
    Invalid,
    /// Outside what this reader understands.
    Unsupported {
        line: Option<u32>,
        what: &'static str,
    },
}

fn is_bare_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A subset of TOML, enough for `metadata.toml` files; anything outside it is `Unsupported`.
fn read_toml(text: &str, key: &str) -> Toml {
    let unsupported = |line: usize, what| Toml::Unsupported {
        line: Some(u32::try_from(line + 1).unwrap_or(u32::MAX)),
        what,
    };
    let mut root: HashSet<&str> = HashSet::new();
    let mut tables: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut table: Option<&str> = None;
    let mut found = None;
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.starts_with('\u{feff}') {
            return unsupported(i, "a byte order mark");
        }
        if raw.chars().any(|c| c.is_control() && c != '\t') {
            return unsupported(i, "a control character");
        }
        let line = raw.trim_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("[[") {
            return unsupported(i, "an array of tables");
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(close) = rest.find(']') else {
                return Toml::Invalid;
            };
            let name = rest[..close].trim_matches([' ', '\t']);
            let after = rest[close + 1..].trim_start_matches([' ', '\t']);
            if !is_bare_key(name) {
                return if name.contains(['.', '"', '\'']) || !name.is_ascii() {
                    unsupported(i, "a dotted or quoted table name")
                } else {
                    Toml::Invalid
                };
            }
            if !(after.is_empty() || after.starts_with('#'))
                || root.contains(name)
                || tables.contains_key(name)
            {
                return Toml::Invalid;
            }
            tables.insert(name, HashSet::new());
            table = Some(name);
            continue;
        }
        let key_len = line
            .bytes()
            .take_while(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            .count();
        if key_len == 0 {
            return if line.starts_with(['"', '\'']) || !line.is_ascii() {
                unsupported(i, "a quoted key")
            } else {
                Toml::Invalid
            };
        }
        let name = &line[..key_len];
        let rest = line[key_len..].trim_start_matches([' ', '\t']);
        if rest.starts_with('.') {
            return unsupported(i, "a dotted key");
        }
        let Some(rest) = rest.strip_prefix('=') else {
            return Toml::Invalid;
        };
        let (value, after) = match toml_value(rest.trim_start_matches([' ', '\t'])) {
            Ok(v) => v,
            Err(Some(what)) => return unsupported(i, what),
            Err(None) => return Toml::Invalid,
        };
        let after = after.trim_start_matches([' ', '\t']);
        if !(after.is_empty() || after.starts_with('#')) {
            return Toml::Invalid;
        }
        let keys = match table {
            None => &mut root,
            Some(t) => tables.entry(t).or_default(),
        };
        if !keys.insert(name) {
            return Toml::Invalid;
        }
        if table.is_none() && name == key {
            found = Some(value);
        }
    }
    Toml::Valid(found)
}

/// One value at the start of `s`, and what follows it. `Err(None)`: not TOML; `Err(Some(what))`:
/// outside the subset.
fn toml_value(s: &str) -> Result<(TomlValue, &str), Option<&'static str>> {
    let word_end = s.find([' ', '\t', '#']).unwrap_or(s.len());
    let word = &s[..word_end];
    match s.chars().next() {
        None => Err(None),
        Some('"') => {
            if s.starts_with("\"\"\"") {
                return Err(Some("a multi-line string"));
            }
            let mut chars = s.char_indices().skip(1);
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => return Ok((TomlValue::Other, &s[i + 1..])),
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('b' | 't' | 'n' | 'f' | 'r' | '"' | '\\') => {}
                        Some(u @ ('u' | 'U')) => {
                            let n = if u == 'u' { 4 } else { 8 };
                            for _ in 0..n {
                                if !chars.next().is_some_and(|(_, c)| c.is_ascii_hexdigit()) {
                                    return Err(Some("a string escape"));
                                }
                            }
                        }
                        _ => return Err(Some("a string escape")),
                    },
                    _ => {}
                }
            }
            Err(None)
        }
        Some('\'') => {
            if s.starts_with("'''") {
                return Err(Some("a multi-line string"));
            }
            match s[1..].find('\'') {
                Some(end) => Ok((TomlValue::Other, &s[end + 2..])),
                None => Err(None),
            }
        }
        Some('[' | '{') => Err(Some("an array or inline table")),
        Some(_) if word == "true" => Ok((TomlValue::Bool(true), &s[4..])),
        Some(_) if word == "false" => Ok((TomlValue::Bool(false), &s[5..])),
        Some(c) if c.is_ascii_digit() || c == '+' || c == '-' => {
            let digits = word.strip_prefix(['+', '-']).unwrap_or(word);
            let decimal = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
                && !digits.starts_with('_')
                && !digits.ends_with('_')
                && !digits.contains("__")
                && (digits == "0" || !digits.starts_with('0'));
            if decimal {
                Ok((TomlValue::Other, &s[word_end..]))
            } else {
                Err(Some("a number that is not a decimal integer, or a date"))
            }
        }
        Some(_) if matches!(word, "inf" | "nan") => Err(Some("a special float")),
        Some(_) => Err(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder of `(path, text)` files; parents are created.
    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn read(files: &[(&str, &str)]) -> Result<Vec<Migration>, SetError> {
        Diesel.read(folder(files).path())
    }

    fn error(files: &[(&str, &str)]) -> String {
        read(files).unwrap_err().to_string()
    }

    #[test]
    fn reads_folders_in_string_order() {
        let dir = folder(&[
            ("9_a/up.sql", "SELECT 9;\n"),
            ("10_b/up.sql", "SELECT 10;\n"),
            ("10_b/down.sql", "SELECT -10;\n"),
            (
                "2019-02-26-002946_create_user/up.sql",
                "CREATE TABLE u ();\n\nCREATE INDEX i ON u ((1));\n",
            ),
            ("init/up.sql", "SELECT 0;\n"),
            ("README.md", "not a migration"),
            (".git/config", ""),
        ]);
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let set = Diesel.read(dir.path()).unwrap();
        let v: Vec<String> = set.iter().map(|m| m.version.to_string()).collect();
        assert_eq!(
            v,
            ["10", "20190226002946", "9", "init"],
            "string order: 10 < 9"
        );
        let m = &set[1];
        assert_eq!(m.up.file_name, "2019-02-26-002946_create_user/up.sql");
        assert_eq!(m.description, "create_user");
        assert_eq!(
            (m.up.statements.clone(), m.up.no_transaction),
            (None, false)
        );
        assert_eq!(m.up.text, m.up.source);
        assert_eq!(m.up.line_of(m.up.text.find("CREATE INDEX").unwrap()), 3);
        assert!(m.down.is_none(), "down.sql is optional");
        assert_eq!(set[0].down.as_ref().unwrap().file_name, "10_b/down.sql");
        assert_eq!(set[3].description, "", "a name without `_` is all version");
    }

    #[test]
    fn metadata_toml_as_diesel_reads_it() {
        let cases = [
            (None, false),
            (Some("run_in_transaction = false\n"), true),
            (
                Some("# CONCURRENTLY below\nrun_in_transaction=false # no tx\r\n"),
                true,
            ),
            (Some("run_in_transaction = true\n"), false),
            (Some(""), true),
            (Some("other = 'x'\n"), true),
            (Some("[section]\nrun_in_transaction = true\n"), true),
            (Some("run_in_transaction = \"false\"\n"), false),
            (Some("run_in_transaction: false\n"), false),
            (Some("run_in_transaction = False\n"), false),
            (
                Some("run_in_transaction = false\nrun_in_transaction = false\n"),
                false,
            ),
            (Some("run_in_transaction = false\n[t]\n[t]\n"), false),
        ];
        for (metadata, no_transaction) in cases {
            let mut files = vec![("1_a/up.sql", "SELECT 1;"), ("1_a/down.sql", "SELECT 2;")];
            if let Some(m) = metadata {
                files.push(("1_a/metadata.toml", m));
            }
            let m = &read(&files).unwrap()[0];
            assert_eq!(m.up.no_transaction, no_transaction, "{metadata:?}");
            assert_eq!(m.down.as_ref().unwrap().no_transaction, no_transaction);
        }
        let e = error(&[
            ("1_a/up.sql", "SELECT 1;"),
            ("1_a/metadata.toml", "# x\nrun_in_transaction = [false]\n"),
        ]);
        assert!(e.contains("metadata.toml:2: an array or inline table: this reader cannot tell how diesel reads"), "{e}");
    }

    #[test]
    fn toml_subset() {
        let key = "run_in_transaction";
        assert_eq!(
            read_toml("a = 1\nb = -2_000\nc = 'x'\nd = \"y\\\"\\u00e9\"\n", key),
            Toml::Valid(None)
        );
        assert_eq!(read_toml("a = 01\n", key).to_string_lossy(), "unsupported");
        assert_eq!(read_toml("a = 1.5\n", key).to_string_lossy(), "unsupported");
        assert_eq!(read_toml("a.b = 1\n", key).to_string_lossy(), "unsupported");
        assert_eq!(
            read_toml("\"a\" = 1\n", key).to_string_lossy(),
            "unsupported"
        );
        assert_eq!(
            read_toml("a = \"\"\"x\"\"\"\n", key).to_string_lossy(),
            "unsupported"
        );
        assert_eq!(read_toml("a = \"x\n", key), Toml::Invalid);
        assert_eq!(read_toml("a = true false\n", key), Toml::Invalid);
        assert_eq!(read_toml("= 1\n", key), Toml::Invalid);
        assert_eq!(read_toml("[a\n", key), Toml::Invalid);
        assert_eq!(read_toml("a = 1\n[a]\n", key), Toml::Invalid);
        assert_eq!(
            read_toml("  run_in_transaction\t=\tfalse#c\n", key),
            Toml::Valid(Some(TomlValue::Bool(false)))
        );
        assert_eq!(
            read_toml("run_in_transaction = 0\n", key),
            Toml::Valid(Some(TomlValue::Other))
        );
    }

    impl Toml {
        fn to_string_lossy(&self) -> &'static str {
            match self {
                Toml::Valid(_) => "valid",
                Toml::Invalid => "invalid",
                Toml::Unsupported { .. } => "unsupported",
            }
        }
    }

    #[test]
    fn refuses_what_diesel_refuses_or_misreads() {
        let e = error(&[("1_a/up.sql", "SELECT 1;"), ("2_b/down.sql", "SELECT 2;")]);
        assert!(
            e.contains("2_b: no up.sql: diesel refuses the whole folder"),
            "{e}"
        );
        assert!(e.contains("Invalid migration directory"), "{e}");
        let e = error(&[("2_b/.keep", ""), ("2_b/.up.sql", "")]);
        assert!(
            e.contains("2_b: no up.sql"),
            "hidden entries make it non-empty: {e}"
        );
        let e = error(&[("1_a/up.sql", "")]);
        assert!(e.contains("up.sql: an empty file: diesel refuses to run it (\"Failed to run 1_a with: Attempted to run an empty migration.\")"), "{e}");
        assert!(
            read(&[("1_a/up.sql", "\n")]).is_ok(),
            "only 0 bytes is empty"
        );
        let e = error(&[
            ("2024-01_a/up.sql", "SELECT 1;"),
            ("202401_b/up.sql", "SELECT 2;"),
        ]);
        assert!(e.contains("duplicate version 202401: 2024-01_a, 202401_b both have it. diesel does not refuse this"), "{e}");
        let e = error(&[("1_A/up.SQL", "SELECT 1;")]);
        assert!(e.contains("1_A: no up.sql"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_links() {
        let dir = folder(&[("real/1_a/up.sql", "SELECT 1;")]);
        let migrations = dir.path().join("migrations");
        std::fs::create_dir(&migrations).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real/1_a"), migrations.join("1_a")).unwrap();
        let e = Diesel.read(&migrations).unwrap_err().to_string();
        assert!(
            e.contains("is a symbolic link") && e.contains("would follow it"),
            "{e}"
        );
    }

    #[test]
    fn evidence_and_versions() {
        let dir = folder(&[
            ("1_a/up.sql", "SELECT 1;"),
            ("2_b/other.sql", ""),
            ("3_c.sql", ""),
        ]);
        assert_eq!(Diesel.evidence(dir.path()).unwrap(), ["1_a"]);
        let t = |s: &str| Version::Text(s.to_owned());
        assert_eq!(
            Diesel.parse_version("2019-02-26-002946").unwrap(),
            t("20190226002946")
        );
        assert_eq!(
            Diesel.parse_version("20190226002946").unwrap(),
            t("20190226002946")
        );
        assert_eq!(
            Diesel
                .parse_version("2019-02-26-002946_create_user")
                .unwrap(),
            t("20190226002946")
        );
        assert!(Diesel.parse_version("").is_err() && Diesel.parse_version("-").is_err());
    }
}
