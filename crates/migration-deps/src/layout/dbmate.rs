//! dbmate v2 (amacneil/dbmate, `pkg/dbmate/db.go:FindMigrations` and `Migrate`,
//! `pkg/dbmate/migration.go:parseMigrationContents`).
//!
//! - Only the top level of the folder counts. A migration is a file whose name matches
//!   `^(\d+).*\.sql$`; no `_` is needed, and the match is case-sensitive. Its version is the
//!   leading run of digits, taken as a string (`001` and `1` are different versions). dbmate
//!   applies pending files in file-name order, so `10_a.sql` comes before `9_b.sql`.
//! - A file has a `-- migrate:up` marker and a `-- migrate:down` marker. The marker must start
//!   its line, dbmate's `(?m)^--\s*migrate:up(\s*$|\s+\S+)`. Before the first up marker only
//!   blank lines and `--` comments are allowed. The up part runs from the up marker line up to
//!   the down marker; the down part runs from the down marker to the end of the file. Each part
//!   keeps its marker line, which is a comment. Everything else in `text` is blanked.
//! - dbmate sends each part as one `Exec` (`Part::statements` is `None`), inside a transaction
//!   unless that part's marker line says `transaction:false`. Only that exact lowercase pair
//!   counts, and up and down are independent.
//!
//! dbmate refuses these files when it reaches them, after applying the ones before. This reader
//! refuses them up front, naming the file and line: no up marker, statements before it, no down
//! marker, two down markers in one section.
//!
//! dbmate silently mishandles some things, and this reader refuses them too. A file with
//! several up/down sections (dbmate ≥ 2.29): dbmate records the version once per section, so on
//! PostgreSQL the second section fails with a duplicate key, rolls back, and the file still
//! counts as applied (dbmate issue #820). Two files with one version: both are applied, and the
//! second fails on its `schema_migrations` row. A `.sql` file whose name does not start with
//! digits: never run. A symbolic link: followed.
//!
//! dbmate records only the version. The description here is the rest of the file name, without
//! `.sql` and without a leading `_` or `-`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use super::{
    Layout, LayoutKind, Migration, Part, SetError, Version, blank_outside, entries, line_of,
    read_text,
};

#[derive(Debug)]
pub(super) struct Dbmate;

/// RE2's `\s`: `[\t\n\f\r ]`.
fn is_re2_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// The start of every match of dbmate's `(?m)^--\s*migrate:<word>(\s*$|\s+\S+)`.
fn markers(text: &str, word: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let needle = format!("migrate:{word}");
    let mut out = Vec::new();
    let mut p = 0;
    loop {
        if b[p..].starts_with(b"--") {
            let mut q = p + 2;
            while q < b.len() && is_re2_space(b[q]) {
                q += 1;
            }
            if b[q..].starts_with(needle.as_bytes()) {
                let r = q + needle.len();
                // `(\s*$|\s+\S+)`: the end of the text, or whitespace after the word.
                if r == b.len() || is_re2_space(b[r]) {
                    out.push(p);
                }
            }
        }
        match b[p..].iter().position(|&c| c == b'\n') {
            Some(i) => p += i + 1,
            None => break,
        }
    }
    out
}

/// Whether a file is a dbmate migration (it has a `-- migrate:up` marker).
pub(super) fn is_annotated(text: &str) -> bool {
    !markers(text, "up").is_empty()
}

/// The version of a file name dbmate reads (`^(\d+).*\.sql$`), and the description after it.
fn parse_name(name: &str) -> Option<(String, String)> {
    if !name.ends_with(".sql") || name.contains('\n') {
        return None;
    }
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    // The name ends in `.sql`, whose `.` is not a digit.
    let rest = &name[digits..name.len() - ".sql".len()];
    Some((
        name[..digits].to_owned(),
        rest.trim_start_matches(['_', '-']).to_owned(),
    ))
}

/// Whether a marker line turns the transaction off (`parseMigrationOptions`, `Transaction()`).
fn no_transaction(block: &str) -> bool {
    let first = block.split('\n').next().unwrap_or("");
    // `^--\s*migrate:(up|down)` is removed, then the rest is `key:value` pairs.
    let options = first
        .strip_prefix("--")
        .map(|r| r.trim_start_matches(|c: char| c.is_ascii() && is_re2_space(c as u8)))
        .and_then(|r| {
            r.strip_prefix("migrate:up")
                .or_else(|| r.strip_prefix("migrate:down"))
        })
        .unwrap_or(first)
        .trim();
    let mut transaction = None;
    for pair in options.split(|c: char| c.is_ascii() && is_re2_space(c as u8)) {
        let kv: Vec<&str> = pair.split(':').collect();
        if let [key, value] = kv.as_slice()
            && *key == "transaction"
        {
            transaction = Some(*value);
        }
    }
    transaction == Some("false")
}

/// The up and down ranges of one file, as dbmate cuts it.
#[derive(Debug)]
struct Sections {
    up: Range<usize>,
    down: Range<usize>,
}

fn parse(source: &str) -> Result<Sections, (Option<u32>, String)> {
    let ups = markers(source, "up");
    let Some(&first) = ups.first() else {
        return Err((
            None,
            "dbmate refuses it when it reaches this file (\"dbmate requires each migration to define an up block with '-- migrate:up'\"): write `-- migrate:up` at the start of a line, before the migration's statements".to_owned(),
        ));
    };
    let mut offset = 0;
    for line in source[..first].split('\n') {
        let blank = line.bytes().all(is_re2_space);
        let comment = line
            .trim_start_matches([' ', '\t', '\r', '\x0c'])
            .starts_with("--");
        if !blank && !comment {
            return Err((
                Some(line_of(source, offset)),
                "dbmate refuses it when it reaches this file (\"dbmate does not support statements preceding the '-- migrate:up' block\"): only blank lines and `--` comments may come before `-- migrate:up`".to_owned(),
            ));
        }
        offset += line.len() + 1;
    }
    let sections: Vec<Range<usize>> = ups
        .iter()
        .enumerate()
        .map(|(i, &start)| start..ups.get(i + 1).copied().unwrap_or(source.len()))
        .collect();
    let mut downs = Vec::with_capacity(sections.len());
    for section in &sections {
        let found: Vec<usize> = markers(&source[section.clone()], "down")
            .into_iter()
            .map(|d| section.start + d)
            .collect();
        if found.len() > 1 {
            return Err((
                Some(line_of(source, found[1])),
                "dbmate refuses it when it reaches this file (\"dbmate requires every '-- migrate:down' to be preceded by a '-- migrate:up'\"): a migration has one `-- migrate:down`".to_owned(),
            ));
        }
        downs.push(found.first().copied());
    }
    for (section, down) in sections.iter().zip(&downs) {
        if down.is_none() {
            return Err((
                Some(line_of(source, section.start)),
                "dbmate refuses it when it reaches this file, after applying the migrations before it (\"dbmate requires each migration to define a down block with '-- migrate:down'\"): add a `-- migrate:down` line after the up statements (the down section may be empty)".to_owned(),
            ));
        }
    }
    if sections.len() > 1 {
        return Err((
            Some(line_of(source, sections[1].start)),
            format!(
                "{} `-- migrate:up` sections in one file: dbmate runs each section in its own transaction but records the version after each one, so on PostgreSQL the second section fails (\"duplicate key value violates unique constraint \\\"schema_migrations_pkey\\\"\"), is rolled back, and the file still counts as applied (dbmate issue #820); put each section in a migration file of its own",
                sections.len()
            ),
        ));
    }
    let down = downs[0].unwrap_or(source.len());
    Ok(Sections {
        up: first..down,
        down: down..source.len(),
    })
}

impl Layout for Dbmate {
    fn kind(&self) -> LayoutKind {
        LayoutKind::Dbmate
    }

    fn evidence(&self, dir: &Path) -> Result<Vec<String>, SetError> {
        let mut out = Vec::new();
        for (name, path) in entries(dir)? {
            if parse_name(&name).is_none() || !path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if is_annotated(&text) {
                out.push(name);
            }
        }
        Ok(out)
    }

    fn read(&self, dir: &Path) -> Result<Vec<Migration>, SetError> {
        let mut out = Vec::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (name, path) in entries(dir)? {
            let meta = std::fs::symlink_metadata(&path).map_err(SetError::io(&path))?;
            if meta.is_dir() {
                continue;
            }
            let Some((version, description)) = parse_name(&name) else {
                if name.to_ascii_lowercase().ends_with(".sql") && !name.starts_with('.') {
                    return Err(SetError::invalid(
                        &path,
                        None,
                        "not a valid migration name: dbmate reads only files named `<digits>….sql` (lowercase `.sql`, the version first), so it would never run this one; name it `<version>_<description>.sql` (e.g. `20240101120000_add_index.sql`), or move it out of the folder",
                    ));
                }
                continue;
            };
            if meta.file_type().is_symlink() {
                return Err(SetError::Symlink {
                    path,
                    followed: true,
                });
            }
            if let Some(other) = seen.get(&version) {
                return Err(SetError::invalid(
                    &path,
                    None,
                    format!(
                        "duplicate version {version}: {other}, {name} both have it. dbmate does not refuse this: it applies both, and the second then fails on its `schema_migrations` row (\"duplicate key\"); give each migration its own version"
                    ),
                ));
            }
            seen.insert(version.clone(), name.clone());
            let source = read_text(&path)?;
            let sections = parse(&source)
                .map_err(|(line, message)| SetError::invalid(&path, line, message))?;
            let part = |range: Range<usize>| Part {
                file_name: name.clone(),
                path: path.clone(),
                source: source.clone(),
                text: blank_outside(&source, std::slice::from_ref(&range)),
                no_transaction: no_transaction(&source[range]),
                statements: None,
            };
            let up = part(sections.up);
            let down = part(sections.down);
            out.push(Migration::new(
                Version::Text(version),
                description,
                up,
                Some(down),
            ));
        }
        if out.is_empty() {
            return Err(SetError::Empty {
                dir: dir.to_path_buf(),
                layout: LayoutKind::Dbmate,
                hint: "; dbmate refuses such a folder (\"no migration files found\"): it reads `<version>_<description>.sql` files at the top level".to_owned(),
            });
        }
        Ok(out)
    }

    fn parse_version(&self, text: &str) -> Result<Version, String> {
        let t = text.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{text:?} is not a dbmate version (the digits a file name starts with, e.g. 20240101120000)"
            ));
        }
        Ok(Version::Text(t.to_owned()))
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
        Dbmate.read(folder(files).path())
    }

    fn error(files: &[(&str, &str)]) -> String {
        read(files).unwrap_err().to_string()
    }

    const FILE: &str = "\
-- a header comment

-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY i ON t (id);

-- migrate:down
DROP INDEX i;
";

    #[test]
    fn reads_up_and_down_as_dbmate_cuts_them() {
        let set = read(&[("20240101120000_add_index.sql", FILE)]).unwrap();
        let m = &set[0];
        assert_eq!(m.version, Version::Text("20240101120000".to_owned()));
        assert_eq!(m.description, "add_index");
        let down = m.down.as_ref().unwrap();
        assert_eq!(
            m.up.text.trim(),
            "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (id);"
        );
        assert_eq!(down.text.trim(), "-- migrate:down\nDROP INDEX i;");
        assert!(
            m.up.no_transaction && !down.no_transaction,
            "options are per marker"
        );
        assert_eq!(m.up.statements, None);
        assert_eq!((m.up.source.as_str(), down.source.as_str()), (FILE, FILE));
        assert_eq!(m.up.file_name, down.file_name);
        for part in [&m.up, down] {
            assert_eq!(part.text.len(), part.source.len());
        }
        assert_eq!(m.up.line_of(m.up.text.find("CONCURRENTLY").unwrap()), 4);
        assert_eq!(down.line_of(down.text.find("DROP").unwrap()), 7);
    }

    #[test]
    fn orders_by_file_name_with_string_versions() {
        let f = "-- migrate:up\nSELECT 1;\n-- migrate:down\n";
        let set = read(&[
            ("9_b.sql", f),
            ("10_a.sql", f),
            ("001_c.sql", f),
            ("1foo.sql", f),
            ("20240101.sql", f),
            ("notes.txt", "x"),
        ])
        .unwrap();
        let names: Vec<&str> = set.iter().map(|m| m.file_name()).collect();
        assert_eq!(
            names,
            [
                "001_c.sql",
                "10_a.sql",
                "1foo.sql",
                "20240101.sql",
                "9_b.sql"
            ]
        );
        let v: Vec<String> = set.iter().map(|m| m.version.to_string()).collect();
        assert_eq!(
            v,
            ["001", "10", "1", "20240101", "9"],
            "001 and 1 are two versions"
        );
    }

    #[test]
    fn markers_and_options_as_dbmate_matches_them() {
        let set = read(&[
            ("1_a.sql", "--migrate:up transaction:False\nSELECT 1;\n--  migrate:down transaction:false\nSELECT 2;"),
            ("2_b.sql", "-- migrate:upgrade\n-- migrate:up\r\nSELECT 1;\r\n-- migrate:down"),
        ])
        .unwrap();
        assert!(
            !set[0].up.no_transaction,
            "only the exact `transaction:false`"
        );
        assert!(set[0].down.as_ref().unwrap().no_transaction);
        assert_eq!(set[1].up.text.trim(), "-- migrate:up\r\nSELECT 1;");
        assert!(is_annotated("-- migrate:up"));
        assert!(!is_annotated("-- migrate:upgrade\n -- migrate:up\n"));
    }

    #[test]
    fn refuses_what_dbmate_refuses() {
        for (text, at, want) in [
            (
                " -- migrate:up\nSELECT 1;\n-- migrate:down\n",
                ": ",
                "define an up block with '-- migrate:up'",
            ),
            (
                "-- c\n\nCREATE TYPE s AS ENUM ('a');\n-- migrate:up\n-- migrate:down\n",
                ":3:",
                "does not support statements preceding the '-- migrate:up' block",
            ),
            (
                "-- migrate:up\nSELECT 1;\n",
                ":1:",
                "define a down block with '-- migrate:down'",
            ),
            (
                "-- migrate:up\n-- migrate:down\n-- migrate:down\n",
                ":3:",
                "every '-- migrate:down' to be preceded by a '-- migrate:up'",
            ),
            (
                "-- migrate:up\nSELECT 1;\n-- migrate:down\n-- migrate:up\nSELECT 2;\n-- migrate:down\n",
                ":4:",
                "2 `-- migrate:up` sections in one file: dbmate runs each section",
            ),
        ] {
            let e = error(&[("1_a.sql", text)]);
            assert!(e.contains(&format!("1_a.sql{at}")), "{text:?}: {e}");
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let f = "-- migrate:up\n-- migrate:down\n";
        let e = error(&[("1_a.sql", f), ("1_b.sql", f)]);
        assert!(
            e.contains(
                "duplicate version 1: 1_a.sql, 1_b.sql both have it. dbmate does not refuse this"
            ),
            "{e}"
        );
        let e = error(&[("1_a.sql", f), ("v2_b.sql", f)]);
        assert!(
            e.contains("v2_b.sql: not a valid migration name: dbmate reads only files named"),
            "{e}"
        );
        let e = error(&[("1_a.SQL", f)]);
        assert!(e.contains("1_a.SQL: not a valid migration name"), "{e}");
        let e = error(&[]);
        assert!(
            e.contains("no dbmate migrations found; dbmate refuses such a folder"),
            "{e}"
        );
    }

    #[test]
    fn evidence_and_versions() {
        let dir = folder(&[
            ("1_a.sql", "-- migrate:up\n-- migrate:down\n"),
            ("2_b.sql", "SELECT 1;\n"),
            ("x.sql", "-- migrate:up\n"),
        ]);
        assert_eq!(Dbmate.evidence(dir.path()).unwrap(), ["1_a.sql"]);
        assert_eq!(
            Dbmate.parse_version("001").unwrap(),
            Version::Text("001".to_owned())
        );
        assert!(Dbmate.parse_version("1.2").is_err());
    }
}
