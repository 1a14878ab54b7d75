//! Flyway 13 OSS (`FileSystemScanner`, `ResourceNameParser`, `MigrationVersion`,
//! `SqlMigrationResolver`, `ResolvedMigrationComparator`, `ParserSqlScript`, `PostgreSQLParser`),
//! with Flyway's default configuration: prefixes `V` and `R`, separator `__`, suffix `.sql`,
//! `mixed=false`, `executeInTransaction=true`.
//!
//! - Flyway scans the whole tree below the folder, recursively, skipping hidden folders.
//!   `file_name` is the path relative to the folder (`sub/V1_2__x.sql`).
//! - `V<version>__<description>.sql` is a versioned migration. The prefix is case-sensitive, the
//!   suffix is not, and the name is cut at the first `__`. In the version, `_` means `.`. It is
//!   split at each dot followed by a digit, and each part is compared as a number, so
//!   `1.9 < 1.10`. Trailing zero parts are dropped, so `1`, `1.0` and `01` are one version, and
//!   two files with one version are refused ("Found more than one migration with version").
//!   In the description, `_` means a space.
//! - `R__<description>.sql` is a repeatable migration. All repeatables run after every
//!   versioned migration, in description order (`Version::Repeatable`). Two with one
//!   description are refused.
//! - Flyway sends one statement at a time (`Part::statements`). Here the statements are
//!   PostgreSQL's own split: libpg_query's parser, or, when the file does not parse, its
//!   scanner at top-level `;`, with `BEGIN ATOMIC … END` bodies kept whole as Flyway keeps them.
//!   A byte order mark is blanked, because Flyway strips it.
//! - Transactions (`PostgreSQLParser.detectCanExecuteInTransaction`, `ParserSqlScript.parse`):
//!   a statement is non-transactional when its leading words are one of
//!   - `CREATE`/`DROP` `DATABASE`/`TABLESPACE`/`SUBSCRIPTION`;
//!   - `ALTER SYSTEM`;
//!   - `CREATE`/`DROP` [`UNIQUE`] `INDEX CONCURRENTLY`;
//!   - `REINDEX` [`VERBOSE`] `SCHEMA`/`DATABASE`/`SYSTEM`;
//!   - `VACUUM`;
//!   - `DISCARD ALL`.
//!
//!   These are Flyway's exact patterns, not PostgreSQL's full list: `REINDEX TABLE CONCURRENTLY`
//!   is "transactional" to Flyway, so it fails at run time. `ALTER TYPE … ADD VALUE` counts only
//!   before PostgreSQL 12, and PostgreSQL 12 or later is assumed. A migration whose statements
//!   are all non-transactional runs outside a transaction (`no_transaction`). A migration that
//!   mixes both kinds is refused, as Flyway refuses it ("Detected both transactional and
//!   non-transactional statements within the same migration…"). A `<file>.conf` beside the
//!   migration can set `executeInTransaction`, which decides alone.
//!
//! Flyway records the description with `_` turned into spaces, and this reader does the same.
//!
//! Not migrations, and skipped: `U<version>__…` undo files, which only Flyway Teams runs (OSS has
//! no down direction, so `down` is always `None`); callbacks (`beforeMigrate.sql`,
//! `afterMigrate__x.sql`, …), which run at Flyway's events, not as migrations; hidden files;
//! files that do not end in `.sql`.
//!
//! Not modelled: placeholders. Flyway replaces `${name}` everywhere in a script, comments and
//! strings included, with values from its configuration, which this reader cannot see. The text
//! is kept as written. Also not modelled: `mixed=true`, `group=true`, and other prefixes or
//! separators.
//!
//! Flyway silently skips some files, and this reader refuses them instead: a `.sql` file that is
//! not a valid migration name (`V1.a__x.sql`, `V__x.sql`, `R1__x.sql`, `v1__x.sql`,
//! `schema.sql`), which Flyway only reports at info level and never runs. It also refuses
//! baseline migrations (`B<version>__…`), whose effect depends on the database's state, and
//! versions that do not fit (negative ones, the special `current`/`next`/`latest`, parts above
//! `u64`). A symbolic link is refused too, because Flyway follows it.

use std::ops::Range;
use std::path::{Path, PathBuf};

use pg_query::protobuf::{KeywordKind, Token};

use super::{
    Layout, LayoutKind, Migration, Part, SetError, Version, blank_outside, entries, line_of,
    read_text,
};

#[derive(Debug)]
pub(super) struct Flyway;

/// Flyway's callback events (`api/callback/Event.java`): a file named after one is a callback.
const CALLBACKS: [&str; 41] = [
    "beforeClean",
    "afterClean",
    "afterCleanError",
    "beforeMigrate",
    "beforeEachMigrate",
    "beforeEachMigrateStatement",
    "afterEachMigrateStatement",
    "afterEachMigrateStatementError",
    "afterEachMigrate",
    "afterEachMigrateError",
    "beforeRepeatables",
    "afterVersioned",
    "afterMigrateApplied",
    "afterMigrate",
    "afterMigrateError",
    "beforeUndo",
    "beforeEachUndo",
    "beforeEachUndoStatement",
    "afterEachUndoStatement",
    "afterEachUndoStatementError",
    "afterEachUndo",
    "afterEachUndoError",
    "afterUndo",
    "afterUndoError",
    "beforeValidate",
    "afterValidate",
    "afterValidateError",
    "beforeBaseline",
    "afterBaseline",
    "afterBaselineError",
    "beforeRepair",
    "afterRepair",
    "afterRepairError",
    "beforeInfo",
    "afterInfo",
    "afterInfoError",
    "afterMigrateOperationFinish",
    "afterInfoOperationFinish",
    "createSchema",
    "beforeCreateSchema",
    "beforeConnect",
];

/// What a file name is to Flyway.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    Versioned {
        version: Vec<u64>,
        description: String,
    },
    Repeatable {
        description: String,
    },
    /// `U…`: Flyway Teams only; OSS ignores it.
    Undo,
    /// `B<version>__…`: a baseline migration (refused).
    Baseline,
    /// `afterMigrate.sql` and the like.
    Callback,
    /// Not a `.sql` file, or a hidden one.
    Other,
    /// A `.sql` file Flyway never runs, and why.
    Invalid(String),
}

/// Flyway's `MigrationVersion.fromVersion`, for versions this reader can hold: the parts, with
/// trailing zeros dropped.
fn parse_dotted(version: &str) -> Result<Vec<u64>, String> {
    if ["current", "next", "latest"]
        .iter()
        .any(|s| version.eq_ignore_ascii_case(s))
        || version == i64::MAX.to_string()
    {
        return Err(format!(
            "{version} is one of Flyway's special versions (current, next, latest), not a migration version"
        ));
    }
    let normalized = version.replace('_', ".");
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, c) in normalized.char_indices() {
        if c == '.' && normalized[i + 1..].starts_with(|d: char| d.is_ascii_digit()) {
            parts.push(&normalized[start..i]);
            start = i + 1;
        }
    }
    parts.push(&normalized[start..]);
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let (negative, digits) = match part.as_bytes().first() {
            Some(b'-') => (true, &part[1..]),
            Some(b'+') => (false, &part[1..]),
            _ => (false, part),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "Version may only contain 0..9 and . (dot). Invalid version: {normalized}"
            ));
        }
        let value: u64 = digits.parse().map_err(|_| {
            format!("a part of version {normalized} is larger than this reader can hold (u64)")
        })?;
        if negative && value != 0 {
            return Err(format!(
                "version {normalized} is negative: Flyway accepts it, but it sorts before every other version and this reader does not represent it; use a positive version"
            ));
        }
        out.push(value);
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}

/// `ResourceNameParser.parse` with the default prefixes, separator and suffix.
fn classify(name: &str) -> Name {
    if name.starts_with('.') || !name.to_ascii_uppercase().ends_with(".SQL") {
        return Name::Other;
    }
    let base = &name[..name.len() - ".sql".len()];
    if CALLBACKS.iter().any(|c| base.starts_with(c)) {
        return Name::Callback;
    }
    let Some(prefix @ ('V' | 'R' | 'U' | 'B')) = base.chars().next() else {
        return Name::Invalid(format!("Unrecognised migration name format: {name}"));
    };
    if prefix == 'U' {
        return Name::Undo;
    }
    let rest = &base[1..];
    if rest.is_empty() {
        return Name::Invalid(format!("Unrecognised migration name format: {name}"));
    }
    let (version, description) = rest.split_once("__").unwrap_or((rest, ""));
    let example = if description.is_empty() {
        "description"
    } else {
        description
    };
    let suffix = &name[base.len()..];
    let description = description.replace('_', " ");
    if prefix == 'R' {
        if !version.is_empty() {
            return Name::Invalid(format!(
                "Invalid repeatable migration / callback name format: {name} (It cannot contain a version and should look like this: R__{example}{suffix})"
            ));
        }
        return Name::Repeatable { description };
    }
    if version.is_empty() {
        return Name::Invalid(format!(
            "Invalid versioned migration name format: {name} (It must contain a version and should look like this: {prefix}1.2__{example}{suffix})"
        ));
    }
    match parse_dotted(version) {
        Ok(_) if prefix == 'B' => Name::Baseline,
        Ok(version) => Name::Versioned {
            version,
            description,
        },
        Err(why) => Name::Invalid(format!(
            "Invalid versioned migration name format: {name} (could not recognise version number {version}: {why})"
        )),
    }
}

/// A file below the folder: its path relative to the folder, its path, whether it is a link.
#[derive(Debug)]
struct Found {
    rel: String,
    path: PathBuf,
    name: String,
    symlink: bool,
}

/// Every file below `dir`, recursively, without hidden folders; links are not followed.
fn walk(dir: &Path, rel: &str, out: &mut Vec<Found>) -> Result<(), SetError> {
    for (name, path) in entries(dir)? {
        let meta = std::fs::symlink_metadata(&path).map_err(SetError::io(&path))?;
        let rel_name = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if meta.is_dir() {
            if !name.starts_with('.') {
                walk(&path, &rel_name, out)?;
            }
            continue;
        }
        out.push(Found {
            rel: rel_name,
            path,
            name,
            symlink: meta.file_type().is_symlink(),
        });
    }
    Ok(())
}

impl Layout for Flyway {
    fn kind(&self) -> LayoutKind {
        LayoutKind::Flyway
    }

    fn evidence(&self, dir: &Path) -> Result<Vec<String>, SetError> {
        let mut found = Vec::new();
        walk(dir, "", &mut found)?;
        Ok(found
            .into_iter()
            .filter(|f| {
                let base = f.name.get(..f.name.len().saturating_sub(4)).unwrap_or("");
                match classify(&f.name) {
                    Name::Versioned { .. } => base.contains("__") && f.name.ends_with(".sql"),
                    Name::Repeatable { .. } => base.starts_with("R__") && f.name.ends_with(".sql"),
                    _ => false,
                }
            })
            .map(|f| f.rel)
            .collect())
    }

    fn read(&self, dir: &Path) -> Result<Vec<Migration>, SetError> {
        let mut found = Vec::new();
        walk(dir, "", &mut found)?;
        let mut versioned: Vec<(Vec<u64>, String, Found)> = Vec::new();
        let mut repeatable: Vec<(String, Found)> = Vec::new();
        for f in found {
            let name = classify(&f.name);
            if f.symlink {
                let is_dir = std::fs::metadata(&f.path).is_ok_and(|m| m.is_dir());
                if is_dir || !matches!(name, Name::Other) {
                    return Err(SetError::Symlink {
                        path: f.path,
                        followed: true,
                    });
                }
                continue;
            }
            match name {
                Name::Versioned {
                    version,
                    description,
                } => versioned.push((version, description, f)),
                Name::Repeatable { description } => repeatable.push((description, f)),
                Name::Undo | Name::Callback | Name::Other => {}
                Name::Baseline => {
                    return Err(SetError::invalid(
                        &f.path,
                        None,
                        "a baseline migration: Flyway runs it instead of the versioned migrations up to its version on an empty database, and ignores it on one with history, which this reader does not model; move it out of the location to read the versioned history",
                    ));
                }
                Name::Invalid(why) => {
                    return Err(SetError::invalid(
                        &f.path,
                        None,
                        format!(
                            "not a valid migration name ({why}): Flyway skips it without an error (it only logs that some files \"did not follow the filename convention\"), so it would never run; name it `V<version>__<description>.sql` (e.g. `V1_2__add_index.sql`) or `R__<description>.sql`, or move it out of the location"
                        ),
                    ));
                }
            }
        }
        versioned.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.rel.cmp(&b.2.rel)));
        for pair in versioned.windows(2) {
            if pair[0].0 == pair[1].0 {
                let v = Version::Dotted(pair[0].0.clone());
                return Err(SetError::invalid(
                    &pair[1].2.path,
                    None,
                    format!(
                        "duplicate version {v}: {}, {} both have it; Flyway refuses the location (\"Found more than one migration with version {v}\"); give each migration its own version",
                        pair[0].2.rel, pair[1].2.rel
                    ),
                ));
            }
        }
        repeatable.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.rel.cmp(&b.1.rel)));
        for pair in repeatable.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(SetError::invalid(
                    &pair[1].1.path,
                    None,
                    format!(
                        "duplicate repeatable migration {:?}: {}, {} both have it; Flyway refuses the location (\"Found more than one repeatable migration with description {}\"); give each its own description",
                        pair[0].0, pair[0].1.rel, pair[1].1.rel, pair[0].0
                    ),
                ));
            }
        }
        let mut out = Vec::with_capacity(versioned.len() + repeatable.len());
        for (version, description, f) in versioned {
            let up = part(f)?;
            out.push(Migration::new(
                Version::Dotted(version),
                description,
                up,
                None,
            ));
        }
        for (description, f) in repeatable {
            let up = part(f)?;
            out.push(Migration::new(
                Version::Repeatable(description.clone()),
                description,
                up,
                None,
            ));
        }
        Ok(out)
    }

    fn parse_version(&self, text: &str) -> Result<Version, String> {
        let t = text.trim();
        if let Some(description) = t.strip_prefix("R__") {
            return Ok(Version::Repeatable(description.replace('_', " ")));
        }
        let v = t.strip_prefix('V').unwrap_or(t);
        let v = v.split_once("__").map_or(v, |(v, _)| v);
        parse_dotted(v).map(Version::Dotted).map_err(|why| {
            format!("{text:?} is not a Flyway version (e.g. 1.2, 1_2 or R__name): {why}")
        })
    }
}

/// The up part of one migration file.
fn part(f: Found) -> Result<Part, SetError> {
    let source = read_text(&f.path)?;
    let execute_in_transaction = read_conf(&f.path)?;
    let bom = if source.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let text = blank_outside(&source, std::slice::from_ref(&(bom..source.len())));
    let statements = split(&text);
    let no_transaction = match execute_in_transaction {
        Some(tx) => !tx,
        None => all_non_transactional(&f, &text, &statements)?,
    };
    Ok(Part {
        file_name: f.rel,
        path: f.path,
        source,
        text,
        no_transaction,
        statements: Some(statements),
    })
}

/// `executeInTransaction` from the script configuration `<file>.conf`, when it sets it.
fn read_conf(path: &Path) -> Result<Option<bool>, SetError> {
    let mut conf = path.as_os_str().to_owned();
    conf.push(".conf");
    let conf = PathBuf::from(conf);
    if !conf.exists() {
        return Ok(None);
    }
    let text = read_text(&conf)?;
    let mut execute_in_transaction = None;
    for (i, line) in text.split('\n').enumerate() {
        let at = Some(u32::try_from(i + 1).unwrap_or(u32::MAX));
        // Java's `String.trim` and `Properties.load`.
        let line = line.trim_matches(|c: char| c <= ' ');
        if line.is_empty() || line.starts_with(['#', '!']) {
            continue;
        }
        let key_end = line
            .find(['=', ':', ' ', '\t', '\x0c'])
            .unwrap_or(line.len());
        let key = &line[..key_end];
        let value = line[key_end..].trim_start_matches([' ', '\t', '\x0c']);
        let value = value
            .strip_prefix(['=', ':'])
            .unwrap_or(value)
            .trim_start_matches([' ', '\t', '\x0c']);
        let boolean = || {
            if value.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if value.eq_ignore_ascii_case("false") {
                Ok(false)
            } else {
                Err(SetError::invalid(
                    &conf,
                    at,
                    format!(
                        "Flyway refuses it (\"Invalid value for {key} (should be either true or false): {value}\")"
                    ),
                ))
            }
        };
        match key {
            "executeInTransaction" => execute_in_transaction = Some(boolean()?),
            "placeholderReplacement" => {
                boolean()?;
            }
            "encoding" => {
                if !value.eq_ignore_ascii_case("UTF-8") && !value.eq_ignore_ascii_case("UTF8") {
                    return Err(SetError::invalid(
                        &conf,
                        at,
                        format!(
                            "Flyway reads the migration as {value}, and this reader reads migrations as UTF-8 only; convert the file to UTF-8 and drop the setting"
                        ),
                    ));
                }
            }
            "shouldExecute" => {
                return Err(SetError::invalid(
                    &conf,
                    at,
                    "Flyway runs the migration only when this expression holds, which this reader cannot evaluate; move the migration out of the location or drop the setting",
                ));
            }
            _ => {
                return Err(SetError::invalid(
                    &conf,
                    at,
                    format!(
                        "Flyway refuses it (\"Unknown configuration property: {key}. Please check your script config files\"); the keys are executeInTransaction, encoding, placeholderReplacement and shouldExecute"
                    ),
                ));
            }
        }
    }
    Ok(execute_in_transaction)
}

/// `range` of `text` without surrounding whitespace; `None` when nothing is left.
fn trim_range(text: &str, range: Range<usize>) -> Option<Range<usize>> {
    let s = &text[range.clone()];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    let r = range.start + lead..range.end - trail;
    (r.start < r.end).then_some(r)
}

/// The statements Flyway sends, as byte ranges of `text`.
fn split(text: &str) -> Vec<Range<usize>> {
    let base = text.as_ptr() as usize;
    if let Ok(pieces) = pg_query::split_with_parser(text) {
        return pieces
            .into_iter()
            .filter_map(|s| {
                let start = s.as_ptr() as usize - base;
                trim_range(text, start..start + s.len())
            })
            .collect();
    }
    split_with_tokens(text)
}

/// The scanner's tokens of `text` (`None` when it cannot scan it, or `text` holds a NUL).
fn tokens(text: &str) -> Option<Vec<(Token, KeywordKind, Range<usize>)>> {
    let tokens = pg_query::scan_tokens(text).ok()?;
    Some(
        tokens
            .into_iter()
            .filter_map(|t| {
                let token = Token::try_from(t.token).ok()?;
                let kind = KeywordKind::try_from(t.keyword_kind).unwrap_or(KeywordKind::NoKeyword);
                let start = usize::try_from(t.start).ok()?;
                let end = usize::try_from(t.end).ok()?;
                Some((token, kind, start..end))
            })
            .collect(),
    )
}

/// A split of text that does not parse: at each `;` outside parentheses and outside
/// `BEGIN ATOMIC … END` (where Flyway's parser keeps statements together too). A statement
/// starts at its first token, as in the parser's split.
fn split_with_tokens(text: &str) -> Vec<Range<usize>> {
    let Some(tokens) = tokens(text) else {
        return trim_range(text, 0..text.len()).into_iter().collect();
    };
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut parens = 0usize;
    let mut blocks = 0usize;
    let mut previous: Option<Token> = None;
    for (token, _, range) in &tokens {
        match token {
            Token::SqlComment | Token::CComment => continue,
            Token::Ascii40 => parens += 1,
            Token::Ascii41 => parens = parens.saturating_sub(1),
            Token::Atomic if previous == Some(Token::BeginP) && parens == 0 => blocks += 1,
            Token::Case if blocks > 0 && parens == 0 => blocks += 1,
            Token::EndP if blocks > 0 && parens == 0 => blocks -= 1,
            Token::Ascii59 if parens == 0 && blocks == 0 => {
                if let Some(s) = start.take() {
                    out.extend(trim_range(text, s..range.start));
                }
                previous = Some(*token);
                continue;
            }
            _ => {}
        }
        start.get_or_insert(range.start);
        previous = Some(*token);
    }
    if let Some(s) = start {
        out.extend(trim_range(text, s..text.len()));
    }
    out
}

/// Flyway's PostgreSQL patterns for statements that cannot run in a transaction, on the leading
/// words of a statement (keywords and unquoted names outside parentheses, as Flyway's parser
/// collects them): the pattern it matches.
fn non_transactional(statement: &str) -> Option<String> {
    let tokens = tokens(statement)?;
    let mut words: Vec<String> = Vec::new();
    let mut parens = 0usize;
    for (token, kind, range) in tokens {
        match token {
            Token::SqlComment | Token::CComment => continue,
            Token::Ascii40 => parens += 1,
            Token::Ascii41 => parens = parens.saturating_sub(1),
            _ if parens == 0 => {
                let text = &statement[range];
                let word = kind != KeywordKind::NoKeyword
                    || (token == Token::Ident
                        && text.starts_with(|c: char| c.is_alphabetic() || c == '_'));
                if word {
                    words.push(text.to_uppercase());
                    if words.len() == 4 {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    (1..=w.len())
        .map(|n| &w[..n])
        .find(|prefix| {
            matches!(
                prefix,
                [
                    "CREATE" | "DROP",
                    "DATABASE" | "TABLESPACE" | "SUBSCRIPTION"
                ] | ["ALTER", "SYSTEM"]
                    | ["CREATE" | "DROP", "INDEX", "CONCURRENTLY"]
                    | ["CREATE" | "DROP", "UNIQUE", "INDEX", "CONCURRENTLY"]
                    | ["REINDEX", "SCHEMA" | "DATABASE" | "SYSTEM"]
                    | ["REINDEX", "VERBOSE", "SCHEMA" | "DATABASE" | "SYSTEM"]
                    | ["VACUUM"]
                    | ["DISCARD", "ALL"]
            )
        })
        .map(|prefix| prefix.join(" "))
}

/// Whether every statement is non-transactional (then Flyway runs the migration outside a
/// transaction); a mix is refused as Flyway refuses it.
fn all_non_transactional(
    f: &Found,
    text: &str,
    statements: &[Range<usize>],
) -> Result<bool, SetError> {
    let mut transactional: Option<&Range<usize>> = None;
    let mut non_transactional_seen: Option<(&Range<usize>, String)> = None;
    for r in statements {
        match non_transactional(&text[r.clone()]) {
            Some(what) => {
                non_transactional_seen.get_or_insert((r, what.clone()));
                if transactional.is_some() {
                    return Err(mixed(f, text, r, &what, true));
                }
            }
            None => {
                transactional.get_or_insert(r);
                if let Some((_, what)) = &non_transactional_seen {
                    return Err(mixed(f, text, r, what, false));
                }
            }
        }
    }
    Ok(non_transactional_seen.is_some())
}

fn mixed(f: &Found, text: &str, offending: &Range<usize>, what: &str, non_tx: bool) -> SetError {
    let line = line_of(text, offending.start);
    let sql = &text[offending.clone()];
    let first_line = sql.lines().next().unwrap_or("");
    let shown = if first_line.len() < sql.len() {
        format!("{first_line} …")
    } else {
        first_line.to_owned()
    };
    SetError::invalid(
        &f.path,
        Some(line),
        format!(
            "Flyway refuses this migration (\"Detected both transactional and non-transactional statements within the same migration (even though mixed is false). Offending statement found at line {line}: {shown}{}\"): {what} cannot run inside a transaction, and Flyway runs a migration either in one transaction or statement by statement outside any; move the {what} statement(s) into a migration of their own, or set `executeInTransaction` in {}.conf",
            if non_tx { " [non-transactional]" } else { "" },
            f.name
        ),
    )
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
        Flyway.read(folder(files).path())
    }

    fn error(files: &[(&str, &str)]) -> String {
        read(files).unwrap_err().to_string()
    }

    fn queries(part: &Part) -> Vec<&str> {
        part.queries().into_iter().map(|(_, q)| q).collect()
    }

    #[test]
    fn versions_as_flyway_compares_them() {
        assert_eq!(parse_dotted("1").unwrap(), [1]);
        assert_eq!(parse_dotted("1.0").unwrap(), [1]);
        assert_eq!(parse_dotted("01").unwrap(), [1]);
        assert_eq!(parse_dotted("1_2").unwrap(), [1, 2]);
        assert_eq!(parse_dotted("2.0.1.0").unwrap(), [2, 0, 1]);
        assert_eq!(parse_dotted("0").unwrap(), Vec::<u64>::new());
        assert!(parse_dotted("1.9").unwrap() < parse_dotted("1.10").unwrap());
        assert!(parse_dotted("1.9.9").unwrap() < parse_dotted("2").unwrap());
        for bad in ["1.", "1.a", "1..2", ".1", "a", ""] {
            assert!(
                parse_dotted(bad)
                    .unwrap_err()
                    .contains("Version may only contain 0..9 and . (dot)"),
                "{bad}"
            );
        }
        assert!(parse_dotted("-1").unwrap_err().contains("negative"));
        assert!(parse_dotted("latest").unwrap_err().contains("special"));
        assert!(
            parse_dotted("99999999999999999999")
                .unwrap_err()
                .contains("larger")
        );
    }

    #[test]
    fn names_as_flyway_parses_them() {
        let v = |version: Vec<u64>, d: &str| Name::Versioned {
            version,
            description: d.to_owned(),
        };
        assert_eq!(classify("V1_1__add_users.sql"), v(vec![1, 1], "add users"));
        assert_eq!(classify("V1__a__b.sql"), v(vec![1], "a  b"));
        assert_eq!(classify("V1___x.sql"), v(vec![1], " x"));
        assert_eq!(classify("V1.sql"), v(vec![1], ""));
        assert_eq!(classify("V2__x.SQL"), v(vec![2], "x"));
        assert_eq!(
            classify("R__my_views.sql"),
            Name::Repeatable {
                description: "my views".to_owned()
            }
        );
        assert_eq!(classify("U1__x.sql"), Name::Undo);
        assert_eq!(classify("B5__base.sql"), Name::Baseline);
        assert_eq!(classify("afterMigrate__grants.sql"), Name::Callback);
        assert_eq!(classify("beforeMigrate.sql"), Name::Callback);
        assert_eq!(classify("V1__x.sql.conf"), Name::Other);
        assert_eq!(classify(".V1__x.sql"), Name::Other);
        for bad in [
            "V__x.sql",
            "R1__x.sql",
            "V1.a__x.sql",
            "v1__x.sql",
            "schema.sql",
            "V.sql",
        ] {
            assert!(matches!(classify(bad), Name::Invalid(_)), "{bad}");
        }
    }

    #[test]
    fn reads_in_flyway_order() {
        let dir = folder(&[
            ("V1_10__ten.sql", "SELECT 10;"),
            ("V1_9__nine.sql", "SELECT 9;"),
            ("sub/V1_9_9__deep.sql", "SELECT 99;"),
            ("V2__two.SQL", "SELECT 2;"),
            ("R__b_views.sql", "SELECT 'b';"),
            ("sub/R__a_views.sql", "SELECT 'a';"),
            (".hidden/V3__never.sql", "SELECT 3;"),
            ("U2__undo_two.sql", "SELECT -2;"),
            ("afterMigrate.sql", "SELECT 'callback';"),
            ("V1_9__nine.sql.conf", "executeInTransaction=true\n"),
            ("README.md", "x"),
        ]);
        let set = Flyway.read(dir.path()).unwrap();
        let names: Vec<&str> = set.iter().map(|m| m.file_name()).collect();
        assert_eq!(
            names,
            [
                "V1_9__nine.sql",
                "sub/V1_9_9__deep.sql",
                "V1_10__ten.sql",
                "V2__two.SQL",
                "sub/R__a_views.sql",
                "R__b_views.sql"
            ]
        );
        let v: Vec<String> = set.iter().map(|m| m.version.to_string()).collect();
        assert_eq!(v, ["1.9", "1.9.9", "1.10", "2", "R__a views", "R__b views"]);
        assert_eq!(set[4].description, "a views");
        assert!(
            set.iter().all(|m| m.down.is_none()),
            "no down in Flyway OSS"
        );
        let sorted = {
            let mut s: Vec<Version> = set.iter().map(|m| m.version.clone()).collect();
            s.sort();
            s
        };
        assert_eq!(
            sorted,
            set.iter().map(|m| m.version.clone()).collect::<Vec<_>>()
        );
        assert_eq!(
            Flyway.evidence(dir.path()).unwrap(),
            [
                "R__b_views.sql",
                "V1_10__ten.sql",
                "V1_9__nine.sql",
                "sub/R__a_views.sql",
                "sub/V1_9_9__deep.sql"
            ]
        );
    }

    const SCRIPT: &str = "\u{feff}-- header\nCREATE TABLE t (id int);\n\nCREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql;\nCREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND;\nINSERT INTO t VALUES (1); -- trailing\n";

    #[test]
    fn one_statement_at_a_time_at_the_files_positions() {
        let m = &read(&[("V1__x.sql", SCRIPT)]).unwrap()[0];
        assert_eq!(m.up.text.len(), m.up.source.len());
        assert!(m.up.text.starts_with("   -- header"), "the BOM is blanked");
        let q = queries(&m.up);
        assert_eq!(q.len(), 4, "{q:?}");
        assert_eq!(q[0], "CREATE TABLE t (id int)");
        assert!(q[1].starts_with("CREATE FUNCTION f()") && q[1].ends_with("plpgsql"));
        assert!(q[2].starts_with("CREATE FUNCTION g()") && q[2].ends_with("END"));
        assert_eq!(q[3], "INSERT INTO t VALUES (1)");
        assert_eq!(m.up.line_of(m.up.queries()[3].0), 14);
        assert!(!m.up.no_transaction);
        // Text the parser refuses (here a placeholder) is split at top-level semicolons.
        let text = "-- lead\nALTER TABLE ${schema}.t SET (fillfactor = 90);;\n/* c */ CREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\nEND;\nSELECT ';'; -- end";
        assert_eq!(
            queries(&Part {
                statements: Some(split(text)),
                ..Part::whole(String::new(), PathBuf::new(), text.to_owned(), false)
            }),
            [
                "ALTER TABLE ${schema}.t SET (fillfactor = 90)",
                "CREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\nEND",
                "SELECT ';'"
            ]
        );
    }

    #[test]
    fn transactions_as_flyway_decides_them() {
        let set = read(&[
            ("V1__a.sql", "CREATE INDEX CONCURRENTLY i ON t (id);\n/* c */ create unique index concurrently j on t (id);\nVACUUM (ANALYZE) t;"),
            ("V2__b.sql", "REINDEX TABLE CONCURRENTLY t;\nALTER TYPE e ADD VALUE 'x';"),
            ("V3__c.sql", "CREATE TABLE u ();\nCREATE INDEX CONCURRENTLY k ON u ((1));"),
            ("V3__c.sql.conf", "# per-script configuration\nexecuteInTransaction = false\n"),
            ("V4__d.sql", "DROP INDEX CONCURRENTLY i;"),
            ("V4__d.sql.conf", "executeInTransaction:TRUE"),
        ])
        .unwrap();
        let no_tx: Vec<bool> = set.iter().map(|m| m.up.no_transaction).collect();
        // V2: Flyway's patterns do not cover REINDEX TABLE CONCURRENTLY (it fails at run time).
        assert_eq!(no_tx, [true, false, true, false]);
        assert_eq!(
            non_transactional("create UNIQUE index CONCURRENTLY x on t (a)").as_deref(),
            Some("CREATE UNIQUE INDEX CONCURRENTLY")
        );
        assert_eq!(
            non_transactional("DISCARD ALL").as_deref(),
            Some("DISCARD ALL")
        );
        assert_eq!(non_transactional("CREATE INDEX i ON t (a)"), None);
        assert_eq!(non_transactional("SELECT 'VACUUM'"), None);
    }

    #[test]
    fn refuses_a_mix_as_flyway_does() {
        let e = error(&[(
            "V1__a.sql",
            "CREATE TABLE t (id int);\n\nCREATE INDEX CONCURRENTLY i\n  ON t (id);\n",
        )]);
        assert!(e.contains("V1__a.sql:3: Flyway refuses this migration (\"Detected both transactional and non-transactional statements within the same migration (even though mixed is false). Offending statement found at line 3: CREATE INDEX CONCURRENTLY i … [non-transactional]\")"), "{e}");
        assert!(
            e.contains("set `executeInTransaction` in V1__a.sql.conf"),
            "{e}"
        );
        let e = error(&[("V1__a.sql", "VACUUM t;\nSELECT 1;\n")]);
        assert!(
            e.contains("V1__a.sql:2:") && e.contains("line 2: SELECT 1\")"),
            "{e}"
        );
    }

    #[test]
    fn refuses_what_flyway_refuses_or_skips() {
        let e = error(&[("V1__a.sql", ""), ("sub/V1.0__b.sql", "")]);
        assert!(e.contains("duplicate version 1: V1__a.sql, sub/V1.0__b.sql both have it; Flyway refuses the location (\"Found more than one migration with version 1\")"), "{e}");
        let e = error(&[("V01__a.sql", ""), ("V1__b.sql", "")]);
        assert!(e.contains("duplicate version 1"), "{e}");
        let e = error(&[("R__a.sql", ""), ("sub/R__a.sql", "")]);
        assert!(
            e.contains("duplicate repeatable migration \"a\": R__a.sql, sub/R__a.sql"),
            "{e}"
        );
        for (name, want) in [
            ("V1.a__x.sql", "could not recognise version number 1.a"),
            ("V__x.sql", "It must contain a version"),
            ("R1__x.sql", "It cannot contain a version"),
            ("v1__x.sql", "Unrecognised migration name format: v1__x.sql"),
            (
                "sub/schema.sql",
                "Unrecognised migration name format: schema.sql",
            ),
            ("V-1__x.sql", "negative"),
            ("Vlatest__x.sql", "special versions"),
        ] {
            let e = error(&[("V1__ok.sql", ""), (name, "")]);
            assert!(
                e.contains(&format!("{name}: not a valid migration name")),
                "{e}"
            );
            assert!(
                e.contains(want) && e.contains("Flyway skips it without an error"),
                "{e}"
            );
        }
        let e = error(&[("B1__base.sql", "")]);
        assert!(e.contains("B1__base.sql: a baseline migration"), "{e}");
        let e = error(&[
            ("V1__a.sql", ""),
            ("V1__a.sql.conf", "executeInTransaction=no\n"),
        ]);
        assert!(e.contains("V1__a.sql.conf:1: Flyway refuses it (\"Invalid value for executeInTransaction (should be either true or false): no\")"), "{e}");
        let e = error(&[
            ("V1__a.sql", ""),
            ("V1__a.sql.conf", "\nexecuteInTransactions=false\n"),
        ]);
        assert!(e.contains("V1__a.sql.conf:2: Flyway refuses it (\"Unknown configuration property: executeInTransactions."), "{e}");
        assert!(read(&[]).unwrap().is_empty());
    }

    #[test]
    fn versions_on_the_command_line() {
        assert_eq!(
            Flyway.parse_version("1.2").unwrap(),
            Version::Dotted(vec![1, 2])
        );
        assert_eq!(
            Flyway.parse_version("1_2").unwrap(),
            Version::Dotted(vec![1, 2])
        );
        assert_eq!(
            Flyway.parse_version("V1.2.0").unwrap(),
            Version::Dotted(vec![1, 2])
        );
        assert_eq!(
            Flyway.parse_version("R__my_views").unwrap(),
            Version::Repeatable("my views".to_owned())
        );
        assert!(Flyway.parse_version("1.x").is_err());
    }
}
