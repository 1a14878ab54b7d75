//! goose v3 (pressly/goose), as `goose up` reads a folder: the legacy collector
//! (`migrate.go:collectMigrationsFS`, `migration.go:NumericComponent`) and the SQL parser
//! (`internal/sqlparser/parser.go:ParseSQLMigration`).
//!
//! - Only the top level of the folder counts. Every `*.sql` entry must be named
//!   `<version>_<anything>.sql`, or goose refuses the whole folder. That includes hidden entries
//!   (the glob matches a leading `.`), and the match is case-sensitive. `<version>` is an `int64`
//!   of at least 1; a sign and leading zeros are allowed. `*.go` files named the same way are Go
//!   migrations; other `.go` files and `*_test.go` are skipped. Two files with the same version
//!   make goose panic ("duplicate version"). The order is numeric across SQL and Go.
//! - A SQL file is one migration: a `-- +goose Up` section and, optionally, a `-- +goose Down`
//!   section. Annotations are checked the way goose checks them. Any line that starts with `--`
//!   and contains `+goose` is an annotation. It may not have leading whitespace, must be one
//!   supported annotation, and is matched case-insensitively. Only blank lines and comments may
//!   come before `-- +goose Up`.
//! - goose sends one statement at a time (`Part::statements`). Outside a
//!   `StatementBegin`/`StatementEnd` block, a statement ends at a line whose last word before any
//!   word starting with `--` ends in `;`. goose does not know about quotes, `$$` or `/* */`.
//!   A `StatementBegin`/`StatementEnd` block is one statement. Comment lines and empty lines before a
//!   statement are not sent, and neither are annotation lines: `text` has them blanked.
//! - `-- +goose NO TRANSACTION` anywhere in the file runs both directions outside a transaction,
//!   statement by statement. Without it, each direction is one transaction.
//! - `goose up` parses only the Up direction. A Down section whose last statement has no
//!   semicolon therefore does not stop it, and it does not stop this reader either: the
//!   unfinished text becomes the Down part's last statement. Checking the down part is left to
//!   the analysis. Every other error in the file, in either section, stops `goose up`, and this
//!   reader refuses the file too.
//!
//! goose records only the version (`goose_db_version`). The description here is the file name
//! after the version, without the extension, which is how `goose status` lists migrations.
//!
//! Go migrations (`<version>_<name>.go`, registered with `goose.AddMigration…` in a custom
//! binary) are Go code. They cannot be read or applied from the folder. They are kept, so that
//! versions and order stay right. Each one is a migration whose up part sends nothing: its text
//! is blanked and it has no statements. Its description ends in ` (Go migration: not analysed)`,
//! and `no_transaction` is set when the file registers with `…NoTx…`. The analysis cannot see
//! what a Go migration does to the schema.
//!
//! Not modelled: `-- +goose ENVSUB ON` substitutes `${VAR}` from the environment of `goose up`.
//! The text here is the file as written, without substitution. CRLF files parse like LF files,
//! and the `\r` stays in `text`.
//!
//! Refused where goose would silently do something unexpected: a symbolic link (goose follows
//! it), a `.SQL`-cased file (goose never lists it), and a SQL line goose drops without running
//! it (the line right after an empty `StatementBegin`/`StatementEnd` block).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{
    Layout, LayoutKind, Migration, Part, SetError, Version, blank_outside, entries, read_text,
};

#[derive(Debug)]
pub(super) struct Goose;

/// What goose appends to its parse errors.
const SEE: &str = "see https://github.com/pressly/goose#sql-migrations";

/// `bufio.Scanner`'s token limit as goose sets it (`scanBufSize`).
const MAX_LINE: usize = 4 * 1024 * 1024;

/// The version in a file name (`migration.go:NumericComponent`): the text before the first `_`
/// as an `int64` of at least 1.
fn numeric_component(name: &str) -> Result<i64, String> {
    let Some((before, _)) = name.split_once('_') else {
        return Err("no filename separator '_' found".to_owned());
    };
    let n: i64 = before.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!(
            "failed to parse version from migration file: {name}: strconv.ParseInt: parsing {before:?}: {why}"
        )
    })?;
    if n < 1 {
        return Err("migration version must be greater than zero".to_owned());
    }
    Ok(n)
}

/// The name after the version, without the extension.
fn description(name: &str, ext: &str) -> String {
    let rest = name.split_once('_').map_or("", |(_, rest)| rest);
    rest.strip_suffix(ext).unwrap_or(rest).to_owned()
}

/// Whether a file is a goose migration: it has a `-- +goose …` annotation line.
pub(super) fn is_annotated(text: &str) -> bool {
    text.lines().any(|line| {
        let t = line.trim();
        t.starts_with("--") && t.trim_start_matches('-').trim_start().starts_with("+goose")
    })
}

/// The file kinds goose lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sql,
    Go,
}

impl Layout for Goose {
    fn kind(&self) -> LayoutKind {
        LayoutKind::Goose
    }

    fn evidence(&self, dir: &Path) -> Result<Vec<String>, SetError> {
        let mut out = Vec::new();
        for (name, path) in entries(dir)? {
            if !name.ends_with(".sql") || !path.is_file() {
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
        let mut by_version: BTreeMap<i64, (String, PathBuf, Kind)> = BTreeMap::new();
        for (name, path) in entries(dir)? {
            let kind = if name.ends_with(".sql") {
                Kind::Sql
            } else if name.ends_with(".go") {
                Kind::Go
            } else {
                if name.to_ascii_lowercase().ends_with(".sql") && !name.starts_with('.') {
                    return Err(SetError::invalid(
                        &path,
                        None,
                        "goose lists only `*.sql` files, and its match is case-sensitive, so it never runs this one; rename it to end in `.sql`, or move it out of the folder",
                    ));
                }
                continue;
            };
            let version = match (kind, numeric_component(&name)) {
                (_, Ok(v)) => v,
                (Kind::Go, Err(_)) => continue,
                (Kind::Sql, Err(reason)) => {
                    return Err(SetError::invalid(
                        &path,
                        None,
                        format!(
                            "not a valid migration name: goose refuses the folder (\"could not parse SQL migration file {name:?}: {reason}\"); name it `<version>_<description>.sql` with a version of at least 1 (e.g. `20240101120000_add_index.sql`), or move it out of the folder"
                        ),
                    ));
                }
            };
            if kind == Kind::Go && name.ends_with("_test.go") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).map_err(SetError::io(&path))?;
            if meta.file_type().is_symlink() {
                return Err(SetError::Symlink {
                    path,
                    followed: true,
                });
            }
            if meta.is_dir() {
                return Err(SetError::invalid(
                    &path,
                    None,
                    "a directory named like a migration: goose lists it as one and fails when it runs it; rename or move it",
                ));
            }
            if let Some((other, _, _)) = by_version.get(&version) {
                return Err(SetError::invalid(
                    &path,
                    None,
                    format!(
                        "duplicate version {version}: {other}, {name} both have it; goose refuses the folder (it panics: \"goose: duplicate version {version} detected\"); give each migration its own version"
                    ),
                ));
            }
            by_version.insert(version, (name, path, kind));
        }
        if by_version.is_empty() {
            return Err(SetError::Empty {
                dir: dir.to_path_buf(),
                layout: LayoutKind::Goose,
                hint: "; goose refuses such a folder (\"no migration files found\"): it reads `<version>_<description>.sql` and `.go` files at the top level".to_owned(),
            });
        }
        let mut out = Vec::with_capacity(by_version.len());
        for (version, (name, path, kind)) in by_version {
            let source = read_text(&path)?;
            out.push(match kind {
                Kind::Sql => read_sql(version, name, path, source)?,
                Kind::Go => go_migration(version, name, path, source),
            });
        }
        Ok(out)
    }

    fn parse_version(&self, text: &str) -> Result<Version, String> {
        let v = super::sqlx::parse_int_version(text)?;
        match v {
            Version::Int(n) if n < 1 => Err(format!(
                "{text:?} is not a goose version: goose versions are at least 1"
            )),
            v => Ok(v),
        }
    }
}

/// A Go migration: kept in its place, sending nothing (see the module documentation).
fn go_migration(version: i64, name: String, path: PathBuf, source: String) -> Migration {
    let no_transaction =
        source.contains("AddMigrationNoTx") || source.contains("AddNamedMigrationNoTx");
    let description = format!("{} (Go migration: not analysed)", description(&name, ".go"));
    let up = Part {
        text: blank_outside(&source, &[]),
        file_name: name,
        path,
        source,
        no_transaction,
        statements: Some(Vec::new()),
    };
    Migration::new(Version::Int(version), description, up, None)
}

fn read_sql(
    version: i64,
    name: String,
    path: PathBuf,
    source: String,
) -> Result<Migration, SetError> {
    let up =
        parse(&source, Direction::Up).map_err(|e| SetError::invalid(&path, e.line, e.message))?;
    if let Some((line, lines)) = &up.unfinished {
        let text = &source[lines[0].start..lines[lines.len() - 1].end];
        return Err(SetError::invalid(
            &path,
            Some(*line),
            missing_semicolon(up.unfinished_state, Direction::Up, text),
        ));
    }
    let no_transaction = !up.use_tx;
    let has_down = up.has_down;
    let make = |parsed: Parsed| {
        let mut keep = parsed.kept;
        let mut statements = parsed.statements;
        if let Some((_, mut lines)) = parsed.unfinished {
            statements.push(lines[0].start..lines[lines.len() - 1].end);
            keep.append(&mut lines);
        }
        let text = blank_outside(&source, &keep);
        let statements = statements
            .into_iter()
            .filter_map(|r| trim_range(&text, r))
            .collect();
        Part {
            file_name: name.clone(),
            path: path.clone(),
            source: source.clone(),
            text,
            no_transaction,
            statements: Some(statements),
        }
    };
    // The down direction parses as far as `goose up` does; only its unfinished last statement
    // can differ, and it is kept (see the module documentation).
    let down = if has_down {
        let parsed = parse(&source, Direction::Down)
            .map_err(|e| SetError::invalid(&path, e.line, e.message))?;
        Some(make(parsed))
    } else {
        None
    };
    let up = make(up);
    Ok(Migration::new(
        Version::Int(version),
        description(&name, ".sql"),
        up,
        down,
    ))
}

/// `range` of `text` without surrounding whitespace (`strings.TrimSpace`); `None` when nothing
/// is left.
fn trim_range(text: &str, range: Range<usize>) -> Option<Range<usize>> {
    let s = &text[range.clone()];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    let r = range.start + lead..range.end - trail;
    (r.start < r.end).then_some(r)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// goose's parser states, numbered as goose prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start = 0,
    Up = 1,
    BeginUp = 2,
    EndUp = 3,
    Down = 4,
    BeginDown = 5,
    EndDown = 6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Annotation {
    Up,
    Down,
    StatementBegin,
    StatementEnd,
    NoTransaction,
    EnvsubOn,
    EnvsubOff,
}

const ANNOTATIONS: [(&str, Annotation); 7] = [
    ("Up", Annotation::Up),
    ("Down", Annotation::Down),
    ("StatementBegin", Annotation::StatementBegin),
    ("StatementEnd", Annotation::StatementEnd),
    ("NO TRANSACTION", Annotation::NoTransaction),
    ("ENVSUB ON", Annotation::EnvsubOn),
    ("ENVSUB OFF", Annotation::EnvsubOff),
];

/// Go's `strings.EqualFold` for the annotation names: ASCII case, plus the two non-ASCII
/// letters that fold to ASCII ones (`ſ` → `s`, the Kelvin sign → `k`).
fn equal_fold(a: &str, b: &str) -> bool {
    let fold = |c: char| match c {
        '\u{17f}' => 's',
        '\u{212a}' => 'k',
        c => c.to_ascii_lowercase(),
    };
    a.chars().map(fold).eq(b.chars().map(fold))
}

/// `extractAnnotation`: the annotation on a line goose treats as one.
fn extract_annotation(line: &str) -> Result<Annotation, String> {
    if line.starts_with([' ', '\t']) {
        return Err(format!(
            "{line:?} contains leading whitespace: invalid annotation"
        ));
    }
    let cmd = line.replace("--", "").replacen("+goose", "", 1);
    if cmd.contains("+goose") {
        return Err(format!(
            "{cmd:?} contains multiple '+goose' annotations: invalid annotation"
        ));
    }
    let cmd = cmd.trim();
    if cmd.is_empty() {
        return Err("empty annotation".to_owned());
    }
    ANNOTATIONS
        .iter()
        .find(|(text, _)| equal_fold(text, cmd))
        .map(|&(_, a)| a)
        .ok_or_else(|| format!("{cmd:?} not supported: invalid annotation"))
}

/// `endsWithSemicolon`: the last word before any word starting with `--` ends in `;`.
fn ends_with_semicolon(line: &str) -> bool {
    let mut prev = "";
    for word in line.split_whitespace() {
        if word.starts_with("--") {
            break;
        }
        prev = word;
    }
    prev.ends_with(';')
}

/// The lines as goose's `bufio.Scanner` yields them: `(start, end)` of each line's content,
/// without its `\n` and one trailing `\r`, and no empty line after a final `\n`.
fn scan_lines(source: &str) -> Vec<(usize, usize)> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let nl = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |p| start + p);
        let end = if nl > start && bytes[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        out.push((start, end));
        start = nl + 1;
    }
    out
}

/// A refusal of the file, at a line when there is one.
#[derive(Debug)]
struct ParseError {
    line: Option<u32>,
    message: String,
}

fn refuse(line: Option<u32>, goose: impl std::fmt::Display, hint: &str) -> ParseError {
    ParseError {
        line,
        message: format!("goose refuses the file (\"{goose}\"){hint}"),
    }
}

fn missing_semicolon(state: State, direction: Direction, unfinished: &str) -> String {
    let text = unfinished.trim();
    let shown: String = text.chars().take(120).collect();
    let shown = if shown.len() < text.len() {
        format!("{shown}…")
    } else {
        shown
    };
    format!(
        "goose refuses the file (\"failed to parse migration: state {}, direction: {}: unexpected unfinished SQL query: {shown:?}: missing semicolon?\"): goose ends a statement only at a line whose last word (before any `--` comment) ends with `;`; end the statement's last line with `;`, or wrap the statement in `-- +goose StatementBegin` / `-- +goose StatementEnd`",
        state as u8,
        direction.name()
    )
}

/// What goose sends for one direction.
#[derive(Debug)]
struct Parsed {
    /// Lines of the statements sent.
    kept: Vec<Range<usize>>,
    /// Each statement: from its first line's start to its last line's end.
    statements: Vec<Range<usize>>,
    /// Lines left without their semicolon at the end of the file: `(first line, lines)`.
    unfinished: Option<(u32, Vec<Range<usize>>)>,
    /// The state at the end of the file (for the missing-semicolon message).
    unfinished_state: State,
    use_tx: bool,
    has_down: bool,
}

/// `ParseSQLMigration` for one direction, line by line as goose does it.
fn parse(source: &str, direction: Direction) -> Result<Parsed, ParseError> {
    let lines = scan_lines(source);
    let mut state = State::Start;
    let mut use_tx = true;
    let mut has_down = false;
    // The lines in goose's buffer: `buf.Len() == 0` is `buf.is_empty()`.
    let mut buf: Vec<Range<usize>> = Vec::new();
    let mut kept = Vec::new();
    let mut statements = Vec::new();
    let mut begin_line = 0u32;
    let mut end_line = 0u32;
    let buffered =
        |buf: &[Range<usize>]| -> bool { buf.iter().any(|r| !source[r.clone()].trim().is_empty()) };
    for (i, &(start, end)) in lines.iter().enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let raw_end = source[end..].find('\n').map_or(source.len(), |p| end + p);
        if raw_end - start >= MAX_LINE {
            return Err(refuse(
                Some(n),
                "failed to scan migration: bufio.Scanner: token too long",
                ": goose reads lines of at most 4 MiB",
            ));
        }
        let line = &source[start..end];
        let trimmed = line.trim();
        if state == State::Start && trimmed.is_empty() {
            continue;
        }
        let mut is_end_annotation = false;
        if trimmed.starts_with("--") && line.contains("+goose") {
            let annotation = extract_annotation(line).map_err(|reason| ParseError {
                line: Some(n),
                message: format!(
                    "goose refuses this annotation (\"failed to parse annotation line {line:?}: {reason}\"): goose treats every comment line containing `+goose` as an annotation; write one of `-- +goose Up`, `Down`, `StatementBegin`, `StatementEnd`, `NO TRANSACTION`, `ENVSUB ON`, `ENVSUB OFF`, alone on its line and at its start"
                ),
            })?;
            match annotation {
                Annotation::Up => {
                    if state != State::Start {
                        return Err(refuse(
                            Some(n),
                            format_args!(
                                "duplicate '-- +goose Up' annotations; stateMachine={}, {SEE}",
                                state as u8
                            ),
                            ": a goose migration has one `-- +goose Up`",
                        ));
                    }
                    state = State::Up;
                    continue;
                }
                Annotation::Down => {
                    if !matches!(state, State::Up | State::EndUp) {
                        return Err(refuse(
                            Some(n),
                            format_args!(
                                "must start with '-- +goose Up' annotation, stateMachine={}, {SEE}",
                                state as u8
                            ),
                            ": `-- +goose Down` comes once, after the Up section and outside a StatementBegin/StatementEnd block",
                        ));
                    }
                    if buffered(&buf) {
                        let first = buf[0].start;
                        return Err(ParseError {
                            line: Some(super::line_of(source, first)),
                            message: missing_semicolon(
                                state,
                                direction,
                                &source[first..buf[buf.len() - 1].end],
                            ),
                        });
                    }
                    state = State::Down;
                    has_down = true;
                    continue;
                }
                Annotation::StatementBegin => {
                    state = match state {
                        State::Up | State::EndUp => State::BeginUp,
                        State::Down | State::EndDown => State::BeginDown,
                        _ => {
                            return Err(refuse(
                                Some(n),
                                format_args!(
                                    "'-- +goose StatementBegin' must be defined after '-- +goose Up' or '-- +goose Down' annotation, stateMachine={}, {SEE}",
                                    state as u8
                                ),
                                ": a StatementBegin must follow `-- +goose Up` or `Down` and cannot open inside another block",
                            ));
                        }
                    };
                    begin_line = n;
                    continue;
                }
                Annotation::StatementEnd => {
                    state = match state {
                        State::BeginUp => State::EndUp,
                        State::BeginDown => State::EndDown,
                        _ => {
                            return Err(refuse(
                                Some(n),
                                format_args!(
                                    "'-- +goose StatementEnd' must be defined after '-- +goose StatementBegin', {SEE}"
                                ),
                                "",
                            ));
                        }
                    };
                    end_line = n;
                    is_end_annotation = true;
                }
                Annotation::NoTransaction => {
                    use_tx = false;
                    continue;
                }
                Annotation::EnvsubOn | Annotation::EnvsubOff => continue,
            }
        }
        // Comments and empty lines before a statement are dropped.
        if buf.is_empty() && (trimmed.starts_with("--") || line.is_empty()) {
            continue;
        }
        if !matches!(state, State::EndUp | State::EndDown) {
            buf.push(start..end);
        }
        match state {
            State::Up | State::BeginUp | State::EndUp if direction == Direction::Down => {
                buf.clear();
                continue;
            }
            State::Down | State::BeginDown | State::EndDown if direction == Direction::Up => {
                buf.clear();
                continue;
            }
            State::Start => {
                let bom = if line.starts_with('\u{feff}') {
                    " (the line starts with a byte order mark, which goose does not skip)"
                } else {
                    ""
                };
                return Err(refuse(
                    Some(n),
                    format_args!(
                        "failed to parse migration: unexpected state 0 on line {line:?}, {SEE}"
                    ),
                    &format!(": only blank lines and comments may come before `-- +goose Up`{bom}"),
                ));
            }
            _ => {}
        }
        let store = |buf: &mut Vec<Range<usize>>,
                     kept: &mut Vec<Range<usize>>,
                     statements: &mut Vec<Range<usize>>| {
            if let (Some(first), Some(last)) = (buf.first(), buf.last()) {
                statements.push(first.start..last.end);
                kept.append(buf);
            }
        };
        match state {
            State::Up | State::Down if ends_with_semicolon(line) => {
                store(&mut buf, &mut kept, &mut statements);
            }
            State::EndUp | State::EndDown => {
                if !is_end_annotation && !trimmed.is_empty() {
                    // goose reached here with an empty buffer at the StatementEnd: it stores an
                    // empty statement now instead, and this line is lost.
                    if direction == Direction::Up {
                        return Err(ParseError {
                            line: Some(n),
                            message: format!(
                                "goose silently skips this line: the `-- +goose StatementBegin`/`StatementEnd` block ending on line {end_line} is empty, which leaves goose's parser in a state where it drops the next SQL line without running it; remove the empty block"
                            ),
                        });
                    }
                }
                store(&mut buf, &mut kept, &mut statements);
                state = if state == State::EndUp {
                    State::Up
                } else {
                    State::Down
                };
            }
            _ => {}
        }
    }
    match state {
        State::Start => {
            return Err(refuse(
                None,
                format_args!(
                    "failed to parse migration: must start with '-- +goose Up' annotation, {SEE}"
                ),
                ": a goose SQL migration needs a `-- +goose Up` line",
            ));
        }
        State::BeginUp | State::BeginDown => {
            return Err(refuse(
                Some(begin_line),
                "failed to parse migration: missing '-- +goose StatementEnd' annotation",
                ": this `-- +goose StatementBegin` is never closed",
            ));
        }
        _ => {}
    }
    let unfinished = buffered(&buf).then(|| (super::line_of(source, buf[0].start), buf));
    Ok(Parsed {
        kept,
        statements,
        unfinished,
        unfinished_state: state,
        use_tx,
        has_down,
    })
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
        Goose.read(folder(files).path())
    }

    fn error(files: &[(&str, &str)]) -> String {
        read(files).unwrap_err().to_string()
    }

    fn one(text: &str) -> Migration {
        read(&[("1_a.sql", text)]).unwrap().remove(0)
    }

    fn queries(part: &Part) -> Vec<&str> {
        part.queries().into_iter().map(|(_, q)| q).collect()
    }

    const FUNCTION: &str = "\
-- +goose Up
-- a comment before the first statement
CREATE TABLE t (id int);

-- +goose StatementBegin
CREATE FUNCTION f() RETURNS trigger AS $$
BEGIN
  NEW.id := 1;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE INDEX t_id ON t (id);

-- +goose Down
DROP FUNCTION f();
DROP TABLE t;
";

    #[test]
    fn splits_as_goose_does() {
        let m = one(FUNCTION);
        assert_eq!(m.version, Version::Int(1));
        assert_eq!(m.description, "a");
        assert_eq!(
            queries(&m.up),
            [
                "CREATE TABLE t (id int);",
                "CREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  NEW.id := 1;\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;",
                "CREATE INDEX t_id ON t (id);",
            ]
        );
        assert!(!m.up.no_transaction);
        let down = m.down.as_ref().unwrap();
        assert_eq!(queries(down), ["DROP FUNCTION f();", "DROP TABLE t;"]);
        assert_eq!(
            (down.file_name.as_str(), down.source.as_str()),
            ("1_a.sql", FUNCTION)
        );
        // Positions are the file's: the same length, and offsets map to the file's lines.
        for part in [&m.up, down] {
            assert_eq!(part.text.len(), part.source.len());
            assert_eq!(part.text.lines().count(), part.source.lines().count());
        }
        let at = m.up.text.find("CREATE INDEX").unwrap();
        assert_eq!(m.up.line_of(at), 13);
        assert_eq!(m.up.queries()[2].0, at);
        assert_eq!(down.line_of(down.text.find("DROP TABLE").unwrap()), 17);
        // Annotations, comments before statements and the other direction are blanked.
        assert!(!m.up.text.contains("+goose") && !m.up.text.contains("a comment"));
        assert!(!m.up.text.contains("DROP") && !down.text.contains("CREATE"));
    }

    #[test]
    fn semicolons_count_only_as_the_last_word() {
        let m = one(
            "-- +goose Up\nSELECT 1; -- done\nSELECT 'a;'\n, 2;-- not the end\nSELECT 3;\nSELECT 'x;\ny';\n",
        );
        assert_eq!(
            queries(&m.up),
            [
                "SELECT 1; -- done",
                "SELECT 'a;'\n, 2;-- not the end\nSELECT 3;",
                // No quote awareness: a literal's line ending in `;` ends the statement.
                "SELECT 'x;",
                "y';",
            ]
        );
        assert!(m.down.is_none(), "no Down section, no down part");
    }

    #[test]
    fn no_transaction_anywhere_covers_the_file() {
        let m = one(
            "-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (id);\n-- +goose Down\n-- +goose NO TRANSACTION\nDROP INDEX CONCURRENTLY i;\n",
        );
        assert!(m.up.no_transaction && m.down.unwrap().no_transaction);
        let m = one("-- +goose no transaction\n--+goose up\nSELECT 1;\n");
        assert!(m.up.no_transaction, "case-insensitive, `--+goose` too");
        assert_eq!(queries(&m.up), ["SELECT 1;"]);
    }

    #[test]
    fn crlf_files_parse_like_lf() {
        let m = one(
            "-- +goose Up\r\n-- +goose StatementBegin\r\nSELECT 1;\r\nSELECT 2;\r\n-- +goose StatementEnd\r\n-- +goose Down\r\nSELECT 3;\r\n",
        );
        assert_eq!(queries(&m.up), ["SELECT 1;\r\nSELECT 2;"]);
        assert_eq!(queries(m.down.as_ref().unwrap()), ["SELECT 3;"]);
        assert_eq!(m.up.text.len(), m.up.source.len());
    }

    #[test]
    fn orders_sql_and_go_numerically() {
        let go =
            "package migrations\n\nfunc init() {\n\tgoose.AddMigrationNoTxContext(up, down)\n}\n";
        let set = read(&[
            ("10_c.sql", "-- +goose Up\nSELECT 10;\n"),
            ("2_b.go", go),
            ("001_a.sql", "-- +goose Up\nSELECT 1;\n"),
            ("3_x_test.go", "package migrations\n"),
            ("helpers.go", "package migrations\n"),
            ("README.md", "not a migration"),
        ])
        .unwrap();
        let v: Vec<String> = set.iter().map(|m| m.version.to_string()).collect();
        assert_eq!(v, ["1", "2", "10"]);
        let go = &set[1];
        assert_eq!(go.description, "b (Go migration: not analysed)");
        assert_eq!(go.up.file_name, "2_b.go");
        assert_eq!(go.up.statements, Some(Vec::new()), "sends nothing");
        assert!(go.up.queries().is_empty());
        assert!(go.up.text.trim().is_empty() && go.up.text.len() == go.up.source.len());
        assert!(go.up.no_transaction && go.down.is_none());
    }

    #[test]
    fn a_broken_down_section_does_not_stop_reading() {
        let m = one("-- +goose Up\nSELECT 1;\n-- +goose Down\nDROP TABLE t;\nDROP TABLE u\n");
        assert_eq!(queries(&m.up), ["SELECT 1;"]);
        // `goose up` never sees it; the down part keeps the unfinished text for the analysis.
        assert_eq!(
            queries(m.down.as_ref().unwrap()),
            ["DROP TABLE t;", "DROP TABLE u"]
        );
    }

    #[test]
    fn refuses_bad_annotations() {
        for (text, line, want) in [
            (
                "  -- +goose Up\nSELECT 1;\n",
                1,
                "contains leading whitespace: invalid annotation",
            ),
            (
                "-- +goose Up -- note\nSELECT 1;\n",
                1,
                "\"Up  note\" not supported: invalid annotation",
            ),
            (
                "-- +goose Up\n-- see the +goose docs\nSELECT 1;\n",
                2,
                "\"see the  docs\" not supported",
            ),
            ("-- +goose Up\n-- +goose\n", 2, "empty annotation"),
            (
                "-- +goose Up\n-- +goose Up +goose Down\n",
                2,
                "multiple '+goose' annotations",
            ),
            (
                "-- +goose NO  TRANSACTION\n-- +goose Up\n",
                1,
                "not supported",
            ),
        ] {
            let e = error(&[("1_a.sql", text)]);
            assert!(
                e.contains(&format!("1_a.sql:{line}: goose refuses this annotation")),
                "{e}"
            );
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn refuses_what_goose_refuses() {
        for (text, at, want) in [
            (
                "-- +goose Down\nSELECT 1;\n",
                ":1:",
                "must start with '-- +goose Up' annotation, stateMachine=0",
            ),
            (
                "-- +goose Up\n-- +goose Down\n-- +goose Down\n",
                ":3:",
                "must start with '-- +goose Up' annotation, stateMachine=4",
            ),
            (
                "-- +goose Up\nSELECT 1;\n-- +goose Up\n",
                ":3:",
                "duplicate '-- +goose Up' annotations; stateMachine=1",
            ),
            (
                "-- +goose StatementBegin\n",
                ":1:",
                "'-- +goose StatementBegin' must be defined after",
            ),
            (
                "-- +goose Up\n-- +goose StatementEnd\n",
                ":2:",
                "'-- +goose StatementEnd' must be defined after '-- +goose StatementBegin'",
            ),
            (
                "-- +goose Up\nSELECT 1;\n-- +goose StatementBegin\nSELECT 2;\n",
                ":3:",
                "missing '-- +goose StatementEnd' annotation",
            ),
            (
                "-- +goose Up\nSELECT 1;\n-- +goose Down\n-- +goose StatementBegin\nSELECT 2;\n",
                ":4:",
                "missing '-- +goose StatementEnd' annotation",
            ),
            (
                "-- header\nCREATE TABLE t ();\n-- +goose Up\n",
                ":2:",
                "unexpected state 0 on line \"CREATE TABLE t ();\"",
            ),
            (
                "\u{feff}-- +goose Up\nSELECT 1;\n",
                ":1:",
                "byte order mark",
            ),
            (
                "-- only a comment\n",
                ": ",
                "must start with '-- +goose Up' annotation, see",
            ),
            ("", ": ", "must start with '-- +goose Up' annotation, see"),
            (
                "-- +goose Up\nSELECT 1;\nSELECT 2\n\n-- +goose Down\n",
                ":3:",
                "direction: up: unexpected unfinished SQL query: \"SELECT 2\": missing semicolon?",
            ),
            (
                "-- +goose Up\nSELECT 1;\nSELECT 2;-- no\n",
                ":3:",
                "unfinished SQL query: \"SELECT 2;-- no\"",
            ),
        ] {
            let e = error(&[("1_a.sql", text)]);
            assert!(e.contains(&format!("1_a.sql{at}")), "{text:?}: {e}");
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn refuses_a_line_goose_would_drop() {
        let e = error(&[(
            "1_a.sql",
            "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementEnd\nCREATE TABLE t ();\n",
        )]);
        assert!(
            e.contains("1_a.sql:4: goose silently skips this line"),
            "{e}"
        );
        assert!(e.contains("ending on line 3 is empty"), "{e}");
        // A blank line after the empty block is all goose drops: nothing lost.
        let m =
            one("-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementEnd\n \nSELECT 1;\n");
        assert_eq!(queries(&m.up), ["SELECT 1;"]);
    }

    #[test]
    fn refuses_names_goose_refuses_or_never_reads() {
        let up = "-- +goose Up\nSELECT 1;\n";
        let e = error(&[("1_a.sql", up), ("schema.sql", up)]);
        assert!(
            e.contains("schema.sql: not a valid migration name: goose refuses the folder"),
            "{e}"
        );
        assert!(e.contains("no filename separator '_' found"), "{e}");
        let e = error(&[("0_a.sql", up)]);
        assert!(
            e.contains("migration version must be greater than zero"),
            "{e}"
        );
        let e = error(&[(".1_a.sql", up)]);
        assert!(e.contains("parsing \".1\": invalid syntax"), "{e}");
        let e = error(&[("001_a.sql", up), ("1_b.go", "package m\n")]);
        assert!(
            e.contains(
                "duplicate version 1: 001_a.sql, 1_b.go both have it; goose refuses the folder"
            ),
            "{e}"
        );
        let e = error(&[("1_a.SQL", up)]);
        assert!(e.contains("goose lists only `*.sql` files"), "{e}");
        let e = error(&[("README.md", "")]);
        assert!(
            e.contains("no goose migrations found; goose refuses such a folder"),
            "{e}"
        );
        assert_eq!(
            read(&[("+3_a.sql", up)]).unwrap()[0].version,
            Version::Int(3)
        );
    }

    #[test]
    fn evidence_and_versions() {
        let dir = folder(&[
            ("1_a.sql", "-- +goose Up\nSELECT 1;\n"),
            ("2_b.sql", "SELECT 2;\n"),
            ("3_c.go", "package m\n"),
        ]);
        assert_eq!(Goose.evidence(dir.path()).unwrap(), ["1_a.sql"]);
        assert!(is_annotated("--+goose Up\n") && is_annotated("  -- +goose Down"));
        assert!(!is_annotated("-- see goose docs\nSELECT '+goose';\n"));
        assert_eq!(Goose.parse_version("005").unwrap(), Version::Int(5));
        assert!(Goose.parse_version("0").is_err() && Goose.parse_version("x").is_err());
    }
}
