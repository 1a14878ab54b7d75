//! Finding the local PostgreSQL server binaries.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// The programs a cluster needs from the server's `bin` directory.
pub const REQUIRED: [&str; 4] = ["initdb", "pg_ctl", "postgres", "psql"];

/// Where to look for the server binaries, in order.
///
/// [`Search::from_env`] is what [`PgBinaries::discover`] uses; tests build their own to
/// simulate a machine without PostgreSQL.
#[derive(Debug, Clone)]
pub struct Search {
    /// An explicit directory (`PG_BINDIR`): used alone when set.
    pub explicit: Option<PathBuf>,
    /// The `PATH` value to search for `initdb`/`pg_ctl`/`postgres`/`psql` and `pg_config`.
    pub path: Option<OsString>,
    /// Roots holding versioned server folders, such as Debian's `/usr/lib/postgresql/<major>/bin`.
    pub versioned_roots: Vec<PathBuf>,
}

impl Search {
    /// `PG_BINDIR`, then `PATH`, then `pg_config --bindir`, then Debian's and RPM's versioned folders.
    pub fn from_env() -> Self {
        Self {
            explicit: std::env::var_os("PG_BINDIR").map(PathBuf::from),
            path: std::env::var_os("PATH"),
            versioned_roots: vec![PathBuf::from("/usr/lib/postgresql"), PathBuf::from("/usr")],
        }
    }
}

/// A directory holding a usable set of PostgreSQL server binaries.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    bindir: PathBuf,
    version: String,
}

impl PgBinaries {
    /// Finds the server binaries as described on [`Search::from_env`].
    pub fn discover() -> Result<Self, Error> {
        Self::discover_in(&Search::from_env())
    }

    /// Finds the server binaries in the given places.
    pub fn discover_in(search: &Search) -> Result<Self, Error> {
        let mut tried = Vec::new();
        if let Some(dir) = &search.explicit {
            return Self::at(dir).map_err(|missing| Error::BinariesNotFound {
                searched: format!("PG_BINDIR={} (missing {missing})", dir.display()),
            });
        }
        let path_dirs: Vec<PathBuf> = search
            .path
            .as_ref()
            .map(|p| std::env::split_paths(p).collect())
            .unwrap_or_default();

        // 1. PATH: the directory holding `initdb`. Debian links only some programs into
        //    /usr/bin or /usr/local/bin, so follow the `initdb` symlink to its real folder too.
        for dir in &path_dirs {
            let initdb = dir.join("initdb");
            if !initdb.is_file() {
                continue;
            }
            let mut candidates = vec![dir.clone()];
            if let Ok(real) = initdb.canonicalize()
                && let Some(parent) = real.parent()
            {
                candidates.push(parent.to_path_buf());
            }
            for c in candidates {
                match Self::at(&c) {
                    Ok(found) => return Ok(found),
                    Err(missing) => tried.push(format!("{} (missing {missing})", c.display())),
                }
            }
        }
        if path_dirs.is_empty() {
            tried.push("PATH (empty)".to_owned());
        } else {
            tried.push("PATH (no initdb)".to_owned());
        }

        // 2. pg_config --bindir
        for dir in &path_dirs {
            let pg_config = dir.join("pg_config");
            if !pg_config.is_file() {
                continue;
            }
            if let Ok(out) = Command::new(&pg_config).arg("--bindir").output()
                && out.status.success()
            {
                let bindir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
                match Self::at(&bindir) {
                    Ok(found) => return Ok(found),
                    Err(missing) => tried.push(format!(
                        "pg_config --bindir = {} (missing {missing})",
                        bindir.display()
                    )),
                }
            }
            break;
        }

        // 3. versioned folders, newest major first: /usr/lib/postgresql/<major>/bin, /usr/pgsql-<major>/bin
        for root in &search.versioned_roots {
            let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let major = name.strip_prefix("pgsql-").unwrap_or(&name).parse().ok()?;
                    Some((major, e.path().join("bin")))
                })
                .collect();
            found.sort_by_key(|f| std::cmp::Reverse(f.0));
            for (_, bindir) in found {
                match Self::at(&bindir) {
                    Ok(found) => return Ok(found),
                    Err(missing) => tried.push(format!("{} (missing {missing})", bindir.display())),
                }
            }
            tried.push(format!("{}/*/bin", root.display()));
        }
        Err(Error::BinariesNotFound {
            searched: tried.join("; "),
        })
    }

    /// Uses `dir` if it holds every program of [`REQUIRED`]; otherwise names the first one missing.
    fn at(dir: &Path) -> Result<Self, &'static str> {
        if let Some(missing) = REQUIRED.iter().find(|p| !dir.join(p).is_file()) {
            return Err(missing);
        }
        let version = Command::new(dir.join("postgres"))
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .ok_or("a working postgres")?;
        Ok(Self {
            bindir: dir.to_path_buf(),
            version,
        })
    }

    /// The directory holding the programs.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// `postgres --version`, e.g. `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The server's major version, e.g. `15`.
    pub fn major_version(&self) -> Option<u32> {
        let rest = self.version.split(") ").nth(1)?;
        rest.split(['.', ' ']).next()?.parse().ok()
    }

    /// The full path of one program of the server's `bin` directory.
    pub fn program(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }
}
