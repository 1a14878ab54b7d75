//! Installing what the machine lacks, through apt, announced first and refusable.
//!
//! `cargo xtask` is an alias for this crate's binary, which makes sure the machine can build
//! xtask (libpg_query's Rust bindings are generated with libclang while pg_query builds, so
//! xtask cannot install that itself) and then runs `cargo run -p xtask` with the same
//! arguments. xtask's own installs (PostgreSQL, pgvector's build dependencies, debootstrap) go
//! through [`apt_install`] too.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The variables `cargo run` sets for the program it runs (`CARGO_PKG_NAME`,
/// `CARGO_MANIFEST_DIR`, …) that are present in this process.
///
/// A cargo started with them in its environment differs from one started from a shell: build
/// scripts that declare `rerun-if-env-changed` on such a name (ring's does, for
/// `CARGO_PKG_NAME`) rerun, and everything above them is rebuilt. Every cargo that `cargo
/// xtask` starts (directly, or through cargo-make) goes without them, so all agree and none
/// rebuilds what another built.
pub fn package_env() -> Vec<std::ffi::OsString> {
    std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| {
            let k = k.to_string_lossy();
            k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_MANIFEST_")
                || matches!(
                    k.as_ref(),
                    "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
                )
        })
        .collect()
}

/// Set (to anything but `0`) to refuse every install and print the command instead.
pub const NO_INSTALL_ENV: &str = "DATASTORAGE_NO_INSTALL";

/// Whether [`NO_INSTALL_ENV`] refuses installs.
pub fn refused_by_env() -> bool {
    std::env::var(NO_INSTALL_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `""` as root, `"sudo "` when sudo is there, else `""` (the caller says root is needed).
pub fn root_prefix() -> &'static str {
    if nix::unistd::geteuid().is_root() || which::which("sudo").is_err() {
        ""
    } else {
        "sudo "
    }
}

/// `apt-get update` + `apt-get install` of `packages` (as root, or through sudo), announced on
/// stderr; with `refused`, or where apt-get or root is missing, an error with the command to
/// run instead. `what` names the need in messages.
pub fn apt_install(what: &str, packages: &[&str], refused: bool) -> Result<(), String> {
    let sudo = root_prefix();
    let command = format!(
        "{sudo}apt-get update && {sudo}apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    );
    if which::which("apt-get").is_err() {
        return Err(format!(
            "{what} missing: install {} with your system's package manager (this machine has no apt-get)",
            packages.join(", ")
        ));
    }
    if refused {
        return Err(format!(
            "{what} missing, and installs are off (--no-install or {NO_INSTALL_ENV}): run `{command}`"
        ));
    }
    if sudo.is_empty() && !nix::unistd::geteuid().is_root() {
        return Err(format!(
            "{what} missing: run `{command}` as root (no sudo on this machine)"
        ));
    }
    eprintln!("note: {what} missing; installing: {command}");
    run_as_root(&["apt-get", "update", "-qq"])?;
    let mut install = vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
    install.extend_from_slice(packages);
    run_as_root(&install)
}

fn run_as_root(args: &[&str]) -> Result<(), String> {
    let mut cmd = if root_prefix().is_empty() {
        Command::new(args[0])
    } else {
        let mut c = Command::new("sudo");
        c.arg("--preserve-env=DEBIAN_FRONTEND").arg(args[0]);
        c
    };
    // dpkg's progress goes nowhere; apt's errors (stderr) are shown.
    let status = cmd
        .args(&args[1..])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", args[0]))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", args.join(" ")))
    }
}

/// The libclang bindgen would load, looked for where clang-sys looks on Linux: the folder in
/// `LIBCLANG_PATH`, LLVM's library folders, the system's library folders.
pub fn libclang() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("LIBCLANG_PATH") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
        dirs.push(p);
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        let mut llvm: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("llvm"))
            })
            .map(|p| p.join("lib"))
            .collect();
        llvm.sort();
        llvm.reverse(); // newest first
        dirs.extend(llvm);
    }
    for d in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs.iter().find_map(|d| find_libclang(d))
}

fn find_libclang(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries.flatten().map(|e| e.path()).find(|p| {
        p.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            // libclang.so, libclang.so.1, libclang-14.so.1 (not libclang-cpp*)
            (n == "libclang.so" || n.starts_with("libclang.so.") || n.starts_with("libclang-"))
                && !n.starts_with("libclang-cpp")
                && n.contains(".so")
        })
    })
}

/// The Debian package that provides libclang with the headers bindgen needs.
pub const LIBCLANG_PACKAGE: &str = "libclang-dev";

/// Makes sure libclang is there, installing [`LIBCLANG_PACKAGE`] when allowed.
pub fn ensure_libclang(refused: bool) -> Result<PathBuf, String> {
    if let Some(p) = libclang() {
        return Ok(p);
    }
    apt_install(
        "libclang (building libpg_query's Rust bindings needs it)",
        &[LIBCLANG_PACKAGE],
        refused,
    )?;
    libclang().ok_or_else(|| {
        format!("`apt-get install {LIBCLANG_PACKAGE}` finished, but no libclang is found; set LIBCLANG_PATH")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_libclang_by_its_file_names() {
        let dir = std::env::temp_dir().join(format!("xtask-boot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("libclang-cpp.so.14"), "").unwrap();
        assert_eq!(find_libclang(&dir), None, "libclang-cpp is not libclang");
        std::fs::write(dir.join("libclang-14.so.1"), "").unwrap();
        assert_eq!(find_libclang(&dir), Some(dir.join("libclang-14.so.1")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refused_installs_print_the_command() {
        if which::which("apt-get").is_err() {
            return; // the other message, tested by its wording below
        }
        let err = apt_install("a thing", &["some-package"], true).unwrap_err();
        assert!(
            err.contains("apt-get install -y --no-install-recommends some-package"),
            "{err}"
        );
        assert!(err.contains(NO_INSTALL_ENV), "{err}");
    }
}
