//! The fixture the end-to-end tests of xtask share: a copy of the repository's migration tree in
//! a temporary folder, the xtask binary run on it, and byte snapshots of it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// What the migration tools read and write (besides the profile directories).
pub const TREE: &[&str] = &[
    "migrations",
    "docs/migrations.md",
    "services/datastorage/tests/api/main.rs",
    "services/datastorage/src/profile.rs",
    "crates/test-db/src/profile.rs",
    "crates/pg-schema/src/profiles.rs",
];

/// The v1.0 profile's directory, as `migrations/profiles.toml` names it.
pub fn v1_dir() -> &'static str {
    pg_schema::profiles::dir("v1.0").expect("profile v1.0 in profiles.toml")
}

/// A path in the v1.0 profile's directory (`v1("")` is the directory with its `/`).
pub fn v1(rel: &str) -> String {
    format!("{}/{rel}", v1_dir())
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("xtask-fixture")
            .tempdir()
            .unwrap();
        for (_, profile_dir) in pg_schema::profiles::DIRS {
            copy(
                &Path::new(REPO).join(profile_dir),
                &dir.path().join(profile_dir),
            );
        }
        for item in TREE {
            copy(&Path::new(REPO).join(item), &dir.path().join(item));
        }
        Self { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    pub fn edit(&self, rel: &str, f: impl FnOnce(String) -> String) {
        let text = self.read(rel);
        self.write(rel, f(text));
    }

    /// Every file and link under the fixture, with its bytes (links: their target).
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out
    }

    pub fn run(&self, args: &[&str]) -> (bool, String) {
        xtask(Some(self.dir.path()), args)
    }
}

/// Runs the xtask binary (on `root` when given); returns success and stdout + stderr.
pub fn xtask(root: Option<&Path>, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    if let Some(root) = root {
        cmd.arg("--root").arg(root);
    }
    let out = cmd.args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        if meta.file_type().is_symlink() {
            out.insert(
                rel,
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            );
        } else if meta.is_dir() {
            walk(root, &p, out);
        } else {
            out.insert(rel, std::fs::read(&p).unwrap());
        }
    }
}
