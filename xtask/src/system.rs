//! What the workflow needs from the machine besides the pinned cargo tools: PostgreSQL's server
//! binaries, the pgvector extension for them, and (for `pg-image` only) debootstrap.
//!
//! README's two commands install whatever is missing, saying so first: on Debian or Ubuntu
//! through apt (as root, or with sudo), pgvector built from the source package of Debian's next
//! release (the machine's own apt mirror, a private apt state; nothing of the machine's apt
//! configuration changes). `--no-install` or [`NO_INSTALL_ENV`] refuses instead and prints the
//! commands; elsewhere the error names what to install.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

pub use xtask_boot::NO_INSTALL_ENV;
/// The Debian suite pgvector's source package comes from (it packages 0.8.0).
const PGVECTOR_SUITE: &str = "trixie";
const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Whether installs are allowed: not with `--no-install`, not with [`NO_INSTALL_ENV`] set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installs {
    Allowed,
    Refused,
}

static REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A command's `--no-install`: every install of this process is refused from now on (and the
/// commands it runs are told with [`NO_INSTALL_ENV`]).
pub fn refuse_installs() {
    REFUSED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether this process may install what is missing.
pub fn installs() -> Installs {
    if xtask_boot::refused_by_env() || REFUSED.load(std::sync::atomic::Ordering::Relaxed) {
        Installs::Refused
    } else {
        Installs::Allowed
    }
}

/// The machine's prerequisites, by the name `cargo xtask tools install` knows them.
pub const PREREQUISITES: &[&str] = &["libclang", "postgresql", "pgvector", "debootstrap"];

/// Makes sure the named prerequisite is present, installing it when allowed.
pub fn ensure(sh: &Shell, name: &str, installs: Installs) -> Result<()> {
    match name {
        // Already there when xtask runs (`cargo xtask` installs it before building xtask);
        // listed so that `tools install` and `tools list` know every prerequisite.
        "libclang" => xtask_boot::ensure_libclang(installs == Installs::Refused)
            .map(drop)
            .map_err(anyhow::Error::msg),
        "postgresql" => ensure_postgresql(sh, installs).map(drop),
        "pgvector" => ensure_pgvector(sh, installs),
        "debootstrap" => ensure_package(sh, installs, "debootstrap", "debootstrap", || {
            which::which("debootstrap").is_ok() || Path::new("/usr/sbin/debootstrap").is_file()
        }),
        other => bail!(
            "no prerequisite `{other}` (known: {})",
            PREREQUISITES.join(", ")
        ),
    }
}

/// What is present now, for `tools list`.
pub fn describe(name: &str) -> String {
    match name {
        "libclang" => match xtask_boot::libclang() {
            Some(p) => p.display().to_string(),
            None => "not installed".to_owned(),
        },
        "postgresql" => match pg_embedded::PgBinaries::discover() {
            Ok(b) => format!("{} ({})", b.version(), b.bindir().display()),
            Err(_) => "not installed".to_owned(),
        },
        "pgvector" => match vector_control() {
            Some(p) if p.is_file() => format!("installed ({})", p.display()),
            Some(_) => "not installed".to_owned(),
            None => "no PostgreSQL server".to_owned(),
        },
        "debootstrap" => match which::which("debootstrap") {
            Ok(p) => p.display().to_string(),
            Err(_) if Path::new("/usr/sbin/debootstrap").is_file() => {
                "/usr/sbin/debootstrap".to_owned()
            }
            Err(_) => "not installed".to_owned(),
        },
        _ => String::new(),
    }
}

/// The server binaries, installed with apt when missing.
fn ensure_postgresql(sh: &Shell, installs: Installs) -> Result<pg_embedded::PgBinaries> {
    if let Ok(b) = pg_embedded::PgBinaries::discover() {
        return Ok(b);
    }
    ensure_package(
        sh,
        installs,
        "PostgreSQL server binaries",
        "postgresql",
        || pg_embedded::PgBinaries::discover().is_ok(),
    )?;
    pg_embedded::PgBinaries::discover()
        .context("PostgreSQL was installed but its binaries are not found")
}

/// A Debian package, installed with apt unless `present` says it is there.
fn ensure_package(
    sh: &Shell,
    installs: Installs,
    what: &str,
    package: &str,
    present: impl Fn() -> bool,
) -> Result<()> {
    if present() {
        return Ok(());
    }
    apt_install(sh, installs, what, &[package])?;
    if !present() {
        bail!("`apt-get install {package}` finished, but {what} are still not found");
    }
    Ok(())
}

/// `apt-get update` + `apt-get install` of `packages`, announced; or the refusal.
fn apt_install(_sh: &Shell, installs: Installs, what: &str, packages: &[&str]) -> Result<()> {
    xtask_boot::apt_install(what, packages, installs == Installs::Refused)
        .map_err(anyhow::Error::msg)
}

use xtask_boot::root_prefix;

/// `program` run as root: directly when this process is root, else through sudo.
fn as_root<'a>(sh: &'a Shell, program: &str) -> xshell::Cmd<'a> {
    if root_prefix().is_empty() {
        cmd!(sh, "{program}")
    } else {
        cmd!(sh, "sudo {program}")
    }
}

fn pg_config() -> Option<PathBuf> {
    let b = pg_embedded::PgBinaries::discover().ok()?;
    let p = b.bindir().join("pg_config");
    p.is_file().then_some(p)
}

/// `vector.control` in the server's extension folder (present or not); `None`: no server.
fn vector_control() -> Option<PathBuf> {
    let pg_config = pg_config()?;
    let out = std::process::Command::new(pg_config)
        .arg("--sharedir")
        .output()
        .ok()?;
    let share = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Some(Path::new(&share).join("extension/vector.control"))
}

/// pgvector for the server's binaries: built from Debian's source package when missing.
fn ensure_pgvector(sh: &Shell, installs: Installs) -> Result<()> {
    let bin = ensure_postgresql(sh, installs)?;
    let major = bin
        .major_version()
        .context("cannot tell the PostgreSQL server's major version")?;
    let pg_config = pg_config().with_context(|| {
        format!(
            "pg_config is missing from {}: install postgresql-server-dev-{major}",
            bin.bindir().display()
        )
    })?;
    let control = vector_control().context("pg_config --sharedir failed")?;
    if control.is_file() {
        return Ok(());
    }
    let sudo = root_prefix();
    let how = format!(
        "{sudo}apt-get install postgresql-server-dev-{major} dpkg-dev build-essential, then build the `pgvector` source package of Debian {PGVECTOR_SUITE} with `make USE_PGXS=1 PG_CONFIG={}` and `{sudo}make install`",
        pg_config.display()
    );
    if installs == Installs::Refused {
        bail!(
            "pgvector is not installed for PostgreSQL {major} ({} missing), and installs are off (--no-install or {NO_INSTALL_ENV}): {how}",
            control.display()
        );
    }
    let mirror = crate::pg_image::debian_mirror()
        .with_context(|| format!("pgvector missing; to install it by hand: {how}"))?;
    if !Path::new(DEBIAN_KEYRING).is_file() {
        bail!(
            "pgvector missing: {DEBIAN_KEYRING} is needed to fetch its source (install debian-archive-keyring), or: {how}"
        );
    }
    eprintln!(
        "note: pgvector is not installed for PostgreSQL {major}; building it from Debian {PGVECTOR_SUITE}'s source package (about a minute, once)"
    );
    let dev = format!("postgresql-server-dev-{major}");
    let missing: Vec<&str> = [dev.as_str(), "dpkg-dev", "build-essential"]
        .into_iter()
        .filter(|p| {
            cmd!(sh, "dpkg -s {p}")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run()
                .is_err()
        })
        .collect();
    if !missing.is_empty() {
        apt_install(sh, installs, "pgvector's build dependencies", &missing)?;
    }

    // A private apt state: the machine's own sources and lists stay untouched.
    let work = tempfile::tempdir().context("cannot create a temporary folder")?;
    let w = work.path();
    for d in ["lists/partial", "cache/archives/partial", "src"] {
        std::fs::create_dir_all(w.join(d))?;
    }
    std::fs::write(
        w.join("sources.list"),
        format!("deb-src [signed-by={DEBIAN_KEYRING}] {mirror} {PGVECTOR_SUITE} main\n"),
    )?;
    let opts = [
        format!("Dir::Etc::SourceList={}", w.join("sources.list").display()),
        "Dir::Etc::SourceParts=/dev/null".to_owned(),
        format!("Dir::State::Lists={}", w.join("lists").display()),
        format!("Dir::Cache={}", w.join("cache").display()),
        "APT::Sandbox::User=root".to_owned(),
    ];
    let opts: Vec<String> = opts
        .iter()
        .flat_map(|o| ["-o".to_owned(), o.clone()])
        .collect();
    let opts = &opts;
    cmd!(sh, "apt-get {opts...} update -qq")
        .run()
        .context("cannot read the source index of Debian's next release")?;
    {
        let _dir = sh.push_dir(w.join("src"));
        cmd!(sh, "apt-get {opts...} source -qq pgvector")
            .ignore_stdout()
            .run()
            .context("`apt-get source pgvector` failed")?;
    }
    let src = std::fs::read_dir(w.join("src"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("pgvector-"))
        })
        .context("`apt-get source pgvector` gave no source tree")?;
    let jobs = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string();
    let pg_config_arg = format!("PG_CONFIG={}", pg_config.display());
    eprintln!(
        "note: building {} against PostgreSQL {major}",
        src.file_name().unwrap_or_default().to_string_lossy()
    );
    cmd!(
        sh,
        "make -s -C {src} USE_PGXS=1 {pg_config_arg} OPTFLAGS= -j{jobs}"
    )
    .ignore_stdout()
    .run()
    .context("building pgvector failed")?;
    as_root(sh, "make")
        .args(["-s", "-C"])
        .arg(&src)
        .args(["USE_PGXS=1", &pg_config_arg, "install"])
        .ignore_stdout()
        .run()
        .context("installing pgvector failed")?;
    if !control.is_file() {
        bail!(
            "pgvector was built, but {} is still missing",
            control.display()
        );
    }
    eprintln!("note: pgvector installed for PostgreSQL {major}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_prerequisite_is_named() {
        let sh = Shell::new().unwrap();
        let err = ensure(&sh, "postgis", Installs::Refused)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no prerequisite `postgis`"), "{err}");
        assert!(
            err.contains("libclang, postgresql, pgvector, debootstrap"),
            "{err}"
        );
    }
}
