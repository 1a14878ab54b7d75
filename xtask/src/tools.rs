//! The tools the workflow runs, pinned once in the workspace's `Cargo.toml`
//! (`[workspace.metadata.tools]`), and the one routine that installs them:
//! `cargo xtask tools install [NAME…]`, also used by `sync-migrations` (sqlx-cli), `ci`
//! (cargo-make) and Makefile.toml (sqlx-cli, cargo-nextest).

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use xshell::{Shell, cmd};

/// One pinned tool.
#[derive(Debug, Clone, Deserialize)]
pub struct Tool {
    #[serde(skip)]
    pub name: String,
    pub version: String,
    /// The command that prints the installed version (`["sqlx", "--version"]`).
    pub check: Vec<String>,
    /// Extra `cargo install` arguments.
    #[serde(default)]
    pub install: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    workspace: WorkspaceTable,
}

#[derive(Debug, Deserialize)]
struct WorkspaceTable {
    metadata: Metadata,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    tools: std::collections::BTreeMap<String, Tool>,
}

/// The workspace manifest this xtask was built from: its pins are the ones it runs with, also
/// on another `--root`.
const MANIFEST: &str = include_str!("../../Cargo.toml");

/// Every pinned tool of the workspace at `root`.
pub fn load(root: &Path) -> Result<Vec<Tool>> {
    let path = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).with_context(|| path.display().to_string())
}

/// Every tool this xtask pins.
pub fn pinned() -> Result<Vec<Tool>> {
    parse(MANIFEST).context("Cargo.toml")
}

fn parse(text: &str) -> Result<Vec<Tool>> {
    let m: Manifest = toml::from_str(text).context("no valid [workspace.metadata.tools] table")?;
    Ok(m.workspace
        .metadata
        .tools
        .into_iter()
        .map(|(name, mut t)| {
            t.name = name;
            t
        })
        .collect())
}

/// One pinned tool by name.
pub fn get(name: &str) -> Result<Tool> {
    let all = pinned()?;
    let known = all
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    all.iter().find(|t| t.name == name).cloned().ok_or_else(|| {
        anyhow!("no tool `{name}` in Cargo.toml's [workspace.metadata.tools] (known: {known})")
    })
}

impl Tool {
    /// The version installed now, as its check command prints it (`None`: not installed).
    fn installed(&self, sh: &Shell) -> Option<String> {
        let (program, args) = self.check.split_first()?;
        cmd!(sh, "{program} {args...}")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()
    }

    /// The `cargo install` command line, for messages.
    pub fn install_command(&self) -> String {
        format!(
            "cargo install {} --version ={} {}",
            self.name,
            self.version,
            self.install.join(" ")
        )
        .trim_end()
        .to_owned()
    }

    /// Installs the pinned version unless it is installed already; says what it does.
    pub fn ensure(&self, sh: &Shell) -> Result<()> {
        let current = self.installed(sh).unwrap_or_default();
        if current
            .split_whitespace()
            .any(|w| w.trim_start_matches('v') == self.version)
        {
            return Ok(());
        }
        let found = if current.is_empty() {
            "not installed".to_owned()
        } else {
            current.lines().next().unwrap_or_default().to_owned()
        };
        if crate::system::installs() == crate::system::Installs::Refused {
            bail!(
                "{} {} is needed ({found}), and installs are off (--no-install or {}): run `{}`",
                self.name,
                self.version,
                crate::system::NO_INSTALL_ENV,
                self.install_command()
            );
        }
        eprintln!(
            "note: {} {} is needed ({found}); installing it with cargo (a few minutes, once)",
            self.name, self.version
        );
        let (name, version, args) = (&self.name, format!("={}", self.version), &self.install);
        crate::cargo(cmd!(
            sh,
            "cargo install {name} --version {version} {args...}"
        ))
        .run()
        .with_context(|| {
            format!(
                "cannot install {name}; install it by hand: {}",
                self.install_command()
            )
        })?;
        Ok(())
    }
}

/// Makes sure the pinned `name` is installed.
pub fn ensure(sh: &Shell, name: &str) -> Result<()> {
    get(name)?.ensure(sh)
}

#[derive(Debug, clap::Subcommand)]
pub enum Tools {
    /// Install the pinned tools that are missing or of another version, and the machine's
    /// prerequisites (postgresql, pgvector; debootstrap only when named). All when none is named.
    Install { names: Vec<String> },
    /// Print a tool's pinned version (for scripts).
    Version { name: String },
    /// Print `name@version,…` of the named tools (for install actions in workflows).
    Spec { names: Vec<String> },
    /// Check that every file naming a pinned tool's version (README, workflows, Makefile.toml,
    /// .ci/run) writes the pinned one; exit 1 naming each file and line that does not.
    Check,
    /// List the pinned tools and what is installed.
    List,
}

impl Tools {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let root = crate::project_root();
        match self {
            Tools::Install { names } => {
                let names: Vec<String> = if names.is_empty() {
                    ["libclang", "postgresql", "pgvector"]
                        .into_iter()
                        .map(str::to_owned)
                        .chain(pinned()?.into_iter().map(|t| t.name))
                        .collect()
                } else {
                    names
                };
                for name in &names {
                    if crate::system::PREREQUISITES.contains(&name.as_str()) {
                        crate::system::ensure(sh, name, crate::system::installs())?;
                        println!("{name}: {}", crate::system::describe(name));
                    } else {
                        let t = get(name)?;
                        t.ensure(sh)?;
                        println!("{} {}: installed", t.name, t.version);
                    }
                }
                Ok(())
            }
            Tools::Version { name } => {
                println!("{}", get(&name)?.version);
                Ok(())
            }
            Tools::Spec { names } => {
                let spec = names
                    .iter()
                    .map(|n| get(n).map(|t| format!("{}@{}", t.name, t.version)))
                    .collect::<Result<Vec<_>>>()?;
                println!("{}", spec.join(","));
                Ok(())
            }
            Tools::Check => {
                check_mentions(&root)?;
                println!("every file writes the versions Cargo.toml pins");
                Ok(())
            }
            Tools::List => {
                for t in pinned()? {
                    let now = t
                        .installed(sh)
                        .map(|s| s.lines().next().unwrap_or_default().to_owned())
                        .unwrap_or_else(|| "not installed".to_owned());
                    println!("{:<14} {:<10} {now}", t.name, t.version);
                }
                for name in crate::system::PREREQUISITES {
                    println!("{name:<14} {:<10} {}", "-", crate::system::describe(name));
                }
                Ok(())
            }
        }
    }
}

/// Every place outside Cargo.toml that writes a pinned tool's version, with what it writes:
/// `(file, line, tool, version)`.
pub fn mentions(root: &Path, tools: &[Tool]) -> Result<Vec<(String, usize, String, String)>> {
    let mut files: Vec<String> = vec!["README.md".into(), "Makefile.toml".into(), ".ci/run".into()];
    if let Ok(dir) = std::fs::read_dir(root.join(".github/workflows")) {
        for e in dir.flatten() {
            files.push(format!(
                ".github/workflows/{}",
                e.file_name().to_string_lossy()
            ));
        }
    }
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(root.join(&file)) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            for t in tools {
                // `name@1.2.3` (install actions) and `name 1.2.3` (prose).
                for sep in ['@', ' '] {
                    let needle = format!("{}{sep}", t.name);
                    let mut rest = line;
                    while let Some(at) = rest.find(&needle) {
                        let after = &rest[at + needle.len()..];
                        let version: String = after
                            .chars()
                            .take_while(|c| c.is_ascii_digit() || *c == '.')
                            .collect();
                        let version = version.trim_end_matches('.').to_owned();
                        if version.contains('.') {
                            out.push((file.clone(), i + 1, t.name.clone(), version));
                        }
                        rest = after;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Fails naming each file that writes another version of a pinned tool.
pub fn check_mentions(root: &Path) -> Result<()> {
    let tools = load(root)?;
    let mut wrong = Vec::new();
    for (file, line, name, version) in mentions(root, &tools)? {
        let pinned = &tools
            .iter()
            .find(|t| t.name == name)
            .expect("listed")
            .version;
        if &version != pinned {
            wrong.push(format!(
                "{file}:{line}: {name} {version}, but Cargo.toml's [workspace.metadata.tools] pins {pinned}"
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        bail!("{}", wrong.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    #[test]
    fn every_file_writes_the_pinned_versions() {
        check_mentions(&root()).unwrap();
    }

    #[test]
    fn sqlx_cli_is_the_sqlx_crate_version() {
        let tools = load(&root()).unwrap();
        let cli = tools.iter().find(|t| t.name == "sqlx-cli").unwrap();
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("sqlx = {{ version = \"={}\"", cli.version)),
            "the sqlx crate is not pinned to sqlx-cli's {}",
            cli.version
        );
    }

    #[test]
    fn a_disagreeing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(root().join("Cargo.toml"), dir.path().join("Cargo.toml")).unwrap();
        std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
        std::fs::write(
            dir.path().join(".github/workflows/x.yml"),
            "      - uses: taiki-e/install-action@v2\n        with:\n          tool: cargo-make@0.1.2\n",
        )
        .unwrap();
        let e = check_mentions(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(".github/workflows/x.yml:3: cargo-make 0.1.2"),
            "{e}"
        );
    }
}
