//! Reading a folder of sqlx-style migrations exactly as `sqlx migrate` would see it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha384};

/// The line sqlx looks for, at the very start of the file, to run a migration outside a transaction.
pub const NO_TX_DIRECTIVE: &str = "-- no-transaction";

/// One migration file.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The integer prefix of the file name (`001` → 1, `1000` → 1000).
    pub version: i64,
    /// The rest of the name, without `.sql`, underscores kept.
    pub description: String,
    /// The file name, e.g. `011_rename_alert_to_signal.sql`.
    pub file_name: String,
    pub path: PathBuf,
    pub sql: String,
    /// SHA-384 of the file's bytes, as sqlx records it in `_sqlx_migrations.checksum`.
    pub checksum: [u8; 48],
    /// Whether sqlx runs it outside a transaction (the file starts with `-- no-transaction`).
    pub no_transaction: bool,
}

impl Migration {
    /// Builds a migration from a file name and its text, checking the name like sqlx does.
    pub fn from_parts(path: PathBuf, file_name: &str, sql: String) -> Result<Self, SetError> {
        let (version, description) =
            parse_file_name(file_name).ok_or_else(|| SetError::BadName { path: path.clone() })?;
        let checksum = Sha384::digest(sql.as_bytes()).into();
        Ok(Self {
            version,
            description,
            file_name: file_name.to_owned(),
            no_transaction: sql.starts_with(NO_TX_DIRECTIVE),
            path,
            sql,
            checksum,
        })
    }

    /// The checksum as lowercase hex.
    pub fn checksum_hex(&self) -> String {
        hex::encode(self.checksum)
    }

    /// The 1-based line of a byte offset in the file.
    pub fn line_of(&self, offset: usize) -> u32 {
        line_of(&self.sql, offset)
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

/// `NNN_description.sql` → (NNN, description). `None` for names sqlx would reject.
pub fn parse_file_name(name: &str) -> Option<(i64, String)> {
    let stem = name.strip_suffix(".sql")?;
    let (version, description) = stem.split_once('_')?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) || description.is_empty()
    {
        return None;
    }
    Some((version.parse().ok()?, description.to_owned()))
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
    #[error(
        "{}: not a valid migration name: expected `<version>_<description>.sql` with a numeric version (e.g. `021_add_index.sql`)",
        path.display()
    )]
    BadName { path: PathBuf },
    #[error("{} and {}: duplicate version {version}: each version must appear once", first.display(), second.display())]
    DuplicateVersion {
        version: i64,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{}: is a symbolic link: migrations must be regular files (a link's target can change without the checksum history noticing)", path.display())]
    Symlink { path: PathBuf },
    #[error("{}: is not valid UTF-8 (byte {valid_up_to}): sqlx reads migrations as UTF-8 text", path.display())]
    NotUtf8 { path: PathBuf, valid_up_to: usize },
}

/// A folder of migrations, sorted by version.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    pub dir: PathBuf,
    pub migrations: Vec<Migration>,
}

impl MigrationSet {
    /// Reads the top-level `*.sql` files of `dir` (subfolders and other files are ignored, as sqlx
    /// does), rejecting what sqlx would misread: malformed names, duplicate versions, symlinks and
    /// non-UTF-8 text.
    pub fn read(dir: &Path) -> Result<Self, SetError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SetError::Io { path, source }
        };
        let mut by_version: BTreeMap<i64, Migration> = BTreeMap::new();
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .collect::<Result<_, _>>()
            .map_err(io(dir))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !name.ends_with(".sql") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
            if meta.is_dir() {
                continue;
            }
            if meta.file_type().is_symlink() {
                return Err(SetError::Symlink { path });
            }
            let migration = read_file(&path, &name)?;
            if let Some(prev) = by_version.get(&migration.version) {
                return Err(SetError::DuplicateVersion {
                    version: migration.version,
                    first: prev.path.clone(),
                    second: path,
                });
            }
            by_version.insert(migration.version, migration);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            migrations: by_version.into_values().collect(),
        })
    }

    /// The migration with this version.
    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.migrations
            .binary_search_by_key(&version, |m| m.version)
            .ok()
            .map(|i| &self.migrations[i])
    }
}

/// Reads one migration file (no symlink check: callers decide).
pub fn read_file(path: &Path, name: &str) -> Result<Migration, SetError> {
    let bytes = std::fs::read(path).map_err(|source| SetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let sql = String::from_utf8(bytes).map_err(|e| SetError::NotUtf8 {
        path: path.to_path_buf(),
        valid_up_to: e.utf8_error().valid_up_to(),
    })?;
    if name.contains('_') && name.ends_with(".sql") {
        Migration::from_parts(path.to_path_buf(), name, sql)
    } else {
        Err(SetError::BadName {
            path: path.to_path_buf(),
        })
    }
}

impl fmt::Display for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name)
    }
}
