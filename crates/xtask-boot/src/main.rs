//! `cargo xtask …` (the alias in `.cargo/config.toml`): makes sure xtask can be built, then
//! runs `cargo run -p xtask -- …` in this process's place.

use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let refused = xtask_boot::refused_by_env() || args.iter().any(|a| a == "--no-install");
    if let Err(e) = xtask_boot::ensure_libclang(refused) {
        eprintln!("error: cannot build xtask: {e}");
        return ExitCode::FAILURE;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut run = Command::new(cargo);
    for name in xtask_boot::package_env() {
        run.env_remove(name);
    }
    let err = run
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(&args)
        .exec();
    eprintln!("error: cannot run cargo: {err}");
    ExitCode::FAILURE
}
