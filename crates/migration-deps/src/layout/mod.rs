//! Reading a folder of migrations the way the tool that runs them reads it.
//!
//! Each migration tool keeps its history in its own layout: sqlx (`<v>_<d>.sql`, or reversible
//! `.up.sql`/`.down.sql` pairs), goose (one file with `-- +goose Up`/`Down` sections), diesel (a
//! folder per migration with `up.sql`), golang-migrate, dbmate and Flyway. A [`Layout`] reads one
//! of them: what that tool would run as "up" (and "down"), in the tool's order, with its
//! transaction switch and the way it hands the SQL to PostgreSQL. Every reader keeps positions
//! in the original file: a [`Part`]'s text has the same length as its file, with what does not
//! run (the other direction's section, annotations) blanked, so a line the analysis reports is
//! a line of the file.
//!
//! One module per tool; a new layout is one more module and one more [`LayoutKind`].

mod dbmate;
mod diesel;
mod flyway;
mod golang_migrate;
mod goose;
mod sqlx;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha384};

pub use sqlx::{NO_TX_DIRECTIVE, read_file};

/// The migration tools whose folders can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LayoutKind {
    Sqlx,
    Goose,
    Diesel,
    GolangMigrate,
    Dbmate,
    Flyway,
}

impl LayoutKind {
    pub const ALL: [LayoutKind; 6] = [
        LayoutKind::Sqlx,
        LayoutKind::Goose,
        LayoutKind::Diesel,
        LayoutKind::GolangMigrate,
        LayoutKind::Dbmate,
        LayoutKind::Flyway,
    ];

    /// The name used on the command line (`--layout golang-migrate`).
    pub fn name(self) -> &'static str {
        match self {
            LayoutKind::Sqlx => "sqlx",
            LayoutKind::Goose => "goose",
            LayoutKind::Diesel => "diesel",
            LayoutKind::GolangMigrate => "golang-migrate",
            LayoutKind::Dbmate => "dbmate",
            LayoutKind::Flyway => "flyway",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The reader of this layout.
    pub fn reader(self) -> &'static dyn Layout {
        match self {
            LayoutKind::Sqlx => &sqlx::Sqlx,
            LayoutKind::Goose => &goose::Goose,
            LayoutKind::Diesel => &diesel::Diesel,
            LayoutKind::GolangMigrate => &golang_migrate::GolangMigrate,
            LayoutKind::Dbmate => &dbmate::Dbmate,
            LayoutKind::Flyway => &flyway::Flyway,
        }
    }
}

impl fmt::Display for LayoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One migration tool's way of keeping a history in a folder.
pub trait Layout: Send + Sync {
    fn kind(&self) -> LayoutKind;

    /// The entries of `dir` (paths relative to it) that are this tool's migrations and could
    /// not be another tool's, for `--layout auto`. Empty when nothing in `dir` is.
    fn evidence(&self, dir: &Path) -> Result<Vec<String>, SetError>;

    /// Every migration of `dir`, in the order the tool applies them. Refuses, with the file and
    /// line, what the tool would refuse, and what it would silently misread (saying so).
    fn read(&self, dir: &Path) -> Result<Vec<Migration>, SetError>;

    /// A version as a person writes it (`--exclude 5`, `--exclude 2019-02-26-002946`).
    fn parse_version(&self, text: &str) -> Result<Version, String>;
}

/// A migration's version, as its tool orders them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// sqlx, goose, golang-migrate: an integer, ordered numerically.
    Int(i64),
    /// diesel, dbmate: a string, ordered as a string.
    Text(String),
    /// Flyway: dotted parts compared numerically one by one (trailing zero parts dropped, so
    /// `1` = `1.0`).
    Dotted(Vec<u64>),
    /// Flyway `R__<description>`: runs after every versioned migration, in description order.
    Repeatable(String),
}

impl Version {
    /// The integer version (sqlx, goose, golang-migrate).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Version::Int(v) => Some(*v),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Int(v) => write!(f, "{v}"),
            Version::Text(t) => f.write_str(t),
            Version::Dotted(parts) => {
                if parts.is_empty() {
                    return f.write_str("0");
                }
                let text: Vec<String> = parts.iter().map(u64::to_string).collect();
                f.write_str(&text.join("."))
            }
            Version::Repeatable(d) => write!(f, "R__{d}"),
        }
    }
}

/// What one direction of a migration runs, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The file, relative to the migration folder (`011_x.sql`, `2019-…_x/up.sql`).
    pub file_name: String,
    pub path: PathBuf,
    /// The file's text, as read.
    pub source: String,
    /// What the tool runs: `source` with everything else (the other direction, annotation
    /// lines) blanked to spaces, line breaks kept, so offsets and lines are the file's.
    pub text: String,
    /// The tool runs it outside a transaction of its own.
    pub no_transaction: bool,
    /// `None`: the text goes to PostgreSQL as one query (simple protocol, so PostgreSQL runs
    /// its statements as one implicit transaction when there is no explicit one). `Some`: one
    /// query per statement, these byte ranges of `text`, as goose and Flyway do.
    pub statements: Option<Vec<Range<usize>>>,
}

impl Part {
    /// A part that runs the whole file.
    pub fn whole(file_name: String, path: PathBuf, source: String, no_transaction: bool) -> Self {
        Part {
            file_name,
            path,
            text: source.clone(),
            source,
            no_transaction,
            statements: None,
        }
    }

    /// The 1-based line of a byte offset in the file.
    pub fn line_of(&self, offset: usize) -> u32 {
        line_of(&self.source, offset)
    }

    /// The queries the tool sends, in order: `(byte offset in the file, text)`.
    pub fn queries(&self) -> Vec<(usize, &str)> {
        match &self.statements {
            None => vec![(0, self.text.as_str())],
            Some(ranges) => ranges
                .iter()
                .map(|r| (r.start, &self.text[r.clone()]))
                .collect(),
        }
    }
}

/// One migration: its version, what it runs up and (when the layout has one) down.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: Version,
    /// As the tool records it (sqlx: the name after the version, `_` → space).
    pub description: String,
    pub up: Part,
    pub down: Option<Part>,
    /// SHA-384 of the up file's bytes, as sqlx records it in `_sqlx_migrations.checksum`.
    pub checksum: [u8; 48],
}

impl Migration {
    /// A migration whose up part is the whole file (and down, when given, the whole other file).
    pub fn new(version: Version, description: String, up: Part, down: Option<Part>) -> Self {
        let checksum = Sha384::digest(up.source.as_bytes()).into();
        Migration {
            version,
            description,
            up,
            down,
            checksum,
        }
    }

    /// The up file, relative to the folder: how findings name the migration.
    pub fn file_name(&self) -> &str {
        &self.up.file_name
    }

    /// The integer version of a migration read as sqlx reads it (this repository's profiles).
    ///
    /// # Panics
    /// When the layout has versions that are not integers (diesel, dbmate, Flyway).
    pub fn int_version(&self) -> i64 {
        self.version.as_int().unwrap_or_else(|| {
            panic!(
                "{}: version {} is not an integer",
                self.up.file_name, self.version
            )
        })
    }

    /// The checksum as lowercase hex.
    pub fn checksum_hex(&self) -> String {
        hex::encode(self.checksum)
    }
}

impl fmt::Display for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.up.file_name)
    }
}

/// The 1-based line of a byte offset in `text`.
pub fn line_of(text: &str, offset: usize) -> u32 {
    let offset = offset.min(text.len());
    1 + text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u32
}

/// `source` with everything outside `keep` replaced by spaces (line breaks kept): the same
/// length, the same lines.
pub fn blank_outside(source: &str, keep: &[Range<usize>]) -> String {
    let mut out: Vec<u8> = source
        .bytes()
        .map(|b| if b == b'\n' || b == b'\r' { b } else { b' ' })
        .collect();
    for r in keep {
        out[r.clone()].copy_from_slice(&source.as_bytes()[r.clone()]);
    }
    // Only ASCII spaces replaced whole UTF-8 sequences outside `keep`; the ranges keep theirs.
    String::from_utf8(out).expect("ranges lie on character boundaries")
}

/// Problems reading a migration folder.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: is not valid UTF-8 (byte {valid_up_to}): migrations are read as UTF-8 text", path.display())]
    NotUtf8 { path: PathBuf, valid_up_to: usize },
    #[error("{}: is a symbolic link: migrations must be regular files (a link's target can change without the checksum history noticing){}", path.display(), if *followed { "; the migration tool would follow it" } else { "" })]
    Symlink { path: PathBuf, followed: bool },
    /// A file or folder the layout refuses (or this reader refuses where the tool would
    /// misread it), at a line when there is one.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<u32>,
        message: String,
    },
    #[error("{}: no {layout} migrations found{hint}", dir.display())]
    Empty {
        dir: PathBuf,
        layout: LayoutKind,
        hint: String,
    },
    #[error("{}: {message}", dir.display())]
    Layout { dir: PathBuf, message: String },
}

impl SetError {
    pub(crate) fn invalid(path: &Path, line: Option<u32>, message: impl Into<String>) -> Self {
        SetError::Invalid {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SetError + '_ {
        move |source| SetError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Reads a file as UTF-8.
pub(crate) fn read_text(path: &Path) -> Result<String, SetError> {
    let bytes = std::fs::read(path).map_err(SetError::io(path))?;
    String::from_utf8(bytes).map_err(|e| SetError::NotUtf8 {
        path: path.to_path_buf(),
        valid_up_to: e.utf8_error().valid_up_to(),
    })
}

/// The entries of a folder (name, path), sorted by name; names that are not UTF-8 are shown
/// lossily, as the tools do.
pub(crate) fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, SetError> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(SetError::io(dir))?
        .map(|e| {
            e.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .map_err(SetError::io(dir))
        })
        .collect::<Result<_, _>>()?;
    out.sort();
    Ok(out)
}

/// What `--layout auto` chose, and why.
#[derive(Debug, Clone)]
pub struct Detected {
    pub kind: LayoutKind,
    pub reason: String,
}

/// Finds the layout of `dir`: the one tool whose migrations are there. Two tools' files in one
/// folder are an error naming some of each.
pub fn detect(dir: &Path) -> Result<Detected, SetError> {
    let mut found: Vec<(LayoutKind, Vec<String>)> = Vec::new();
    for kind in LayoutKind::ALL {
        let evidence = kind.reader().evidence(dir)?;
        if !evidence.is_empty() {
            found.push((kind, evidence));
        }
    }
    let sample = |files: &[String]| {
        let mut s: Vec<&str> = files.iter().take(3).map(String::as_str).collect();
        if files.len() > 3 {
            s.push("…");
        }
        s.join(", ")
    };
    // Reversible `<v>_<d>.up.sql` pairs are both sqlx's and golang-migrate's.
    if let [
        (LayoutKind::Sqlx, sqlx),
        (LayoutKind::GolangMigrate, golang),
    ] = found.as_slice()
    {
        if let Some(simple) = sqlx.iter().find(|f| !golang.contains(f)) {
            return Ok(Detected {
                kind: LayoutKind::Sqlx,
                reason: format!(
                    "{} sqlx migration file(s): reversible pairs and simple files such as {simple}, which golang-migrate would ignore",
                    sqlx.len()
                ),
            });
        }
        let timestamps = golang.iter().all(|f| {
            let v = f.split('_').next().unwrap_or("");
            v.len() == 14 && v.bytes().all(|b| b.is_ascii_digit()) && v.starts_with('2')
        });
        let (kind, why) = if timestamps {
            (
                LayoutKind::Sqlx,
                "every version is a `YYYYMMDDhhmmss` timestamp, as `sqlx migrate add -r` writes them",
            )
        } else {
            (
                LayoutKind::GolangMigrate,
                "the versions are not sqlx's `YYYYMMDDhhmmss` timestamps",
            )
        };
        return Ok(Detected {
            kind,
            reason: format!(
                "{} `<version>_<description>.up.sql`/`.down.sql` files, which both sqlx and golang-migrate read; chose {kind} because {why} (pass --layout {} if it is the other)",
                golang.len(),
                if kind == LayoutKind::Sqlx {
                    "golang-migrate"
                } else {
                    "sqlx"
                }
            ),
        });
    }
    match found.as_slice() {
        [] => Err(SetError::Layout {
            dir: dir.to_path_buf(),
            message: "no migrations of any known layout (sqlx, goose, diesel, golang-migrate, dbmate, flyway) found".to_owned(),
        }),
        [(kind, files)] => Ok(Detected {
            kind: *kind,
            reason: format!("{} {kind} migration file(s), e.g. {}", files.len(), sample(files)),
        }),
        several => Err(SetError::Layout {
            dir: dir.to_path_buf(),
            message: format!(
                "holds the migrations of more than one tool, which no tool reads together: {}; keep one layout per folder (or pass --layout to read it as one tool does)",
                several
                    .iter()
                    .map(|(k, files)| format!("{k}: {}", sample(files)))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }),
    }
}

/// A folder of migrations, in the order its tool applies them.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    pub dir: PathBuf,
    pub layout: LayoutKind,
    pub migrations: Vec<Migration>,
}

impl MigrationSet {
    /// Reads `dir` as sqlx does (this repository's own layout).
    pub fn read(dir: &Path) -> Result<Self, SetError> {
        Self::read_as(dir, LayoutKind::Sqlx)
    }

    /// Reads `dir` as the given tool does.
    pub fn read_as(dir: &Path, layout: LayoutKind) -> Result<Self, SetError> {
        let migrations = layout.reader().read(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            layout,
            migrations,
        })
    }

    /// The migration with this integer version (sqlx, goose, golang-migrate).
    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.find(&Version::Int(version))
    }

    /// The migration with this version.
    pub fn find(&self, version: &Version) -> Option<&Migration> {
        self.migrations.iter().find(|m| &m.version == version)
    }

    /// Parses a version the way this set's layout writes them and finds it.
    pub fn lookup(&self, text: &str) -> Result<&Migration, String> {
        let v = self.layout.reader().parse_version(text)?;
        self.find(&v)
            .ok_or_else(|| format!("{} has no migration with version {v}", self.dir.display()))
    }
}
