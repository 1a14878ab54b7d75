//! Project automation, run as `cargo xtask <command>`.

mod bench;
mod db;
mod deps;
mod fsx;
mod graph;
mod pg;
mod profiles;
mod sync;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "DataStorage project automation",
    version
)]
struct Cli {
    /// The repository to work on (default: the one this xtask belongs to).
    #[arg(long, global = true, env = "XTASK_ROOT", hide = true)]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Regenerate the derived migration profiles, check dependencies, update test paths, and
    /// prove every profile on PostgreSQL.
    SyncMigrations(sync::SyncMigrations),
    /// Analyse migrations.
    #[command(subcommand)]
    Migrations(Migrations),
    /// A local PostgreSQL for manual use.
    #[command(subcommand)]
    Pg(pg::Pg),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The sync check beside the cp+sed recipe, and the full run on a cold PostgreSQL.
    Sync(bench::Bench),
}

#[derive(Debug, Subcommand)]
enum Migrations {
    /// Report broken dependencies in a folder of migrations, optionally with versions left out.
    Deps(deps::Deps),
    /// Write the dependency graph with profile membership to docs/migrations.md.
    Graph(graph::Graph),
}

static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The repository root: `--root`, else the repository xtask lives in.
pub fn project_root() -> PathBuf {
    ROOT.get_or_init(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask is inside the repository")
            .to_path_buf()
    })
    .clone()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(root) = cli.root.clone() {
        let _ = ROOT.set(std::path::absolute(&root).unwrap_or(root));
    }
    let sh = match xshell::Shell::new() {
        Ok(sh) => sh,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    sh.change_dir(project_root());
    let result = match cli.command {
        Command::SyncMigrations(c) => c.run(&sh),
        Command::Migrations(Migrations::Deps(c)) => c.run(),
        Command::Migrations(Migrations::Graph(c)) => c.run(),
        Command::Pg(c) => c.run(),
        Command::Bench(BenchCommand::Sync(c)) => c.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
