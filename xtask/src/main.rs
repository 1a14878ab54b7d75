//! Project automation, run as `cargo xtask <command>`.

mod bench;
mod bench_analysis;
mod ci;
mod codegen;
mod db;
mod deps;
mod derive;
mod fsx;
mod fuzz;
mod generated;
mod graph;
mod pg;
mod pg_image;
mod profiles;
mod report;
mod schema_diff;
mod sqlx_prepare;
mod sync;
mod system;
mod tools;
mod upgrade;
mod verify;
#[cfg(test)]
mod workflows;
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
    /// Work on the profiles of migrations/profiles.toml.
    #[command(subcommand)]
    Profiles(Profiles),
    /// A local PostgreSQL for manual use.
    #[command(subcommand)]
    Pg(pg::Pg),
    /// Build a local Docker image of PostgreSQL 15 + pgvector 0.8.0 from Debian packages.
    PgImage(pg_image::PgImage),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Upgrade a database of a derived profile to the canonical one (`--from v1.0 --to full`).
    Upgrade(upgrade::Upgrade),
    /// Compare the schemas of two databases or profiles; exit 1 when they differ.
    SchemaDiff(schema_diff::SchemaDiff),
    /// README's test command: every check and test (`cargo make ci`, installing cargo-make if needed).
    Ci(ci::Ci),
    /// Regenerate (or `--check`) the source files generated from other sources.
    Codegen(codegen::Codegen),
    /// Regenerate (or `--check`) the offline query data in `.sqlx/` against the test profile.
    SqlxPrepare(sqlx_prepare::SqlxPrepare),
    /// The pinned tools of Cargo.toml's [workspace.metadata.tools]: install, print, list.
    #[command(subcommand)]
    Tools(tools::Tools),
    /// Fuzz the service's body and query parsing (libFuzzer, nightly Rust) for a bounded time;
    /// the corpus it grows is replayed by the API suite.
    Fuzz(fuzz::Fuzz),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The sync check beside the cp+sed recipe, and the full run on a cold PostgreSQL.
    Sync(bench::Bench),
    /// Cloning a test database from its template beside migrating a fresh one.
    TestDb(bench::BenchTestDb),
    /// The dependency analysis beside libpg_query parsing the same files.
    Analysis(bench_analysis::BenchAnalysis),
    /// `migrations verify --exclude-each` on a 250-migration history (or `--source`).
    Verify(bench_analysis::BenchVerify),
    /// `profiles derive v1.0` with its proof, each phase timed.
    Derive(derive::BenchDerive),
}

#[derive(Debug, Subcommand)]
enum Migrations {
    /// Report broken dependencies in a folder of migrations, optionally with versions left out.
    Deps(deps::Deps),
    /// Write the dependency graph with profile membership to docs/migrations.md.
    Graph(graph::Graph),
    /// Apply the migrations on a throwaway PostgreSQL and compare its verdict on each with the
    /// analysis's (`--exclude-each`: for every single exclusion).
    Verify(verify::Verify),
    /// Derive a profile without some extensions from a folder of migrations: classify each
    /// version, rewrite the ones to replace, generate their bridges, and prove it on PostgreSQL.
    Derive(derive::MigrationsDerive),
}

#[derive(Debug, Subcommand)]
enum Profiles {
    /// Derive a profile of migrations/profiles.toml from the canonical migrations (its
    /// replacements, bridges, include and exclude lists), prove it, and with --write write it.
    Derive(derive::ProfilesDerive),
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

/// A cargo command run from here (cargo make, cargo install, cargo sqlx, cargo bench), without
/// what `cargo run` set for xtask, so that it rebuilds nothing another cargo built
/// ([`xtask_boot::package_env`]).
pub fn cargo(cmd: xshell::Cmd<'_>) -> xshell::Cmd<'_> {
    xtask_boot::package_env()
        .into_iter()
        .fold(cmd, |cmd, name| cmd.env_remove(name))
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
        Command::Migrations(Migrations::Verify(c)) => c.run(),
        Command::Migrations(Migrations::Derive(c)) => c.run(),
        Command::Profiles(Profiles::Derive(c)) => c.run(&sh),
        Command::Pg(c) => c.run(),
        Command::PgImage(c) => c.run(),
        Command::Bench(BenchCommand::Sync(c)) => c.run(),
        Command::Upgrade(c) => c.run(),
        Command::SchemaDiff(c) => c.run(&sh),
        Command::SqlxPrepare(c) => c.run(&sh),
        Command::Tools(c) => c.run(&sh),
        Command::Ci(c) => c.run(&sh),
        Command::Codegen(c) => c.run(&sh),
        Command::Fuzz(c) => c.run(&sh),
        Command::Bench(BenchCommand::TestDb(c)) => c.run(&sh),
        Command::Bench(BenchCommand::Analysis(c)) => c.run(),
        Command::Bench(BenchCommand::Verify(c)) => c.run(),
        Command::Bench(BenchCommand::Derive(c)) => c.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
