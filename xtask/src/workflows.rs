//! The GitHub workflows run only what the repository defines, so they cannot drift from it:
//! every `run:` step is a cargo-make task of `Makefile.toml`, a `cargo xtask` command that
//! xtask's own argument parser accepts, an `apt-get install` preceded by `apt-get update` in
//! the same step (runner images ship a stale package index), or the `$GITHUB_OUTPUT` line of
//! one of those. Checked by a unit test.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Parser as _;

/// One problem per line: `FILE:LINE: what is wrong`.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let makefile =
        std::fs::read_to_string(root.join("Makefile.toml")).context("cannot read Makefile.toml")?;
    let makefile: toml::Table = makefile.parse().context("Makefile.toml is not TOML")?;
    let tasks: Vec<String> = makefile
        .get("tasks")
        .and_then(|t| t.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    let mut files: Vec<_> = std::fs::read_dir(root.join(".github/workflows"))
        .context("cannot read .github/workflows")?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let name = format!(
            ".github/workflows/{}",
            file.file_name().unwrap_or_default().to_string_lossy()
        );
        for (line, command) in run_steps(&text) {
            for p in check_step(&command, &tasks) {
                problems.push(format!("{name}:{line}: {p}: `{command}`"));
            }
        }
    }
    Ok(problems)
}

/// `(line, command)` of every `run:` step; a block (`run: |`) gives one command per line.
fn run_steps(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start().trim_start_matches("- ");
        if let Some(rest) = trimmed.strip_prefix("run:") {
            let rest = rest.trim();
            if rest.starts_with('|') || rest.starts_with('>') {
                let indent = lines[i].len() - lines[i].trim_start().len();
                let mut j = i + 1;
                while j < lines.len()
                    && (lines[j].trim().is_empty()
                        || lines[j].len() - lines[j].trim_start().len() > indent)
                {
                    if !lines[j].trim().is_empty() {
                        out.push((j + 1, lines[j].trim().to_owned()));
                    }
                    j += 1;
                }
                i = j;
                continue;
            }
            out.push((i + 1, rest.trim_matches('"').to_owned()));
        }
        i += 1;
    }
    out
}

/// What is wrong with one step (empty: nothing).
fn check_step(command: &str, tasks: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut updated = false;
    for part in command.split("&&").map(str::trim) {
        let words: Vec<&str> = part.split_whitespace().collect();
        let words = match words.first() {
            Some(&"sudo") => &words[1..],
            _ => &words[..],
        };
        match words {
            ["apt-get", "update", ..] => updated = true,
            ["apt-get", "install", ..] if !updated => {
                problems.push("`apt-get install` without `apt-get update` first".to_owned())
            }
            ["apt-get", "install", ..] => {}
            ["cargo", "make", task, ..] => {
                if !tasks.iter().any(|t| t == task) {
                    problems.push(format!("`{task}` is not a task of Makefile.toml"));
                }
            }
            ["cargo", "xtask", args @ ..] => {
                let argv = std::iter::once("cargo xtask").chain(args.iter().copied());
                if let Err(e) = crate::Cli::try_parse_from(argv) {
                    let first = e.to_string().lines().next().unwrap_or_default().to_owned();
                    problems.push(format!("xtask refuses it ({first})"));
                }
            }
            ["echo", ..] if part.contains("$GITHUB_OUTPUT") && part.contains("$(") => {
                let inner = part
                    .split_once("$(")
                    .and_then(|(_, r)| r.split_once(')'))
                    .map(|(inner, _)| inner)
                    .unwrap_or_default();
                problems.extend(check_step(inner, tasks));
            }
            _ => problems.push(
                "not a Makefile.toml task, a cargo xtask command or an apt install".to_owned(),
            ),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workflow_step_is_a_task_of_the_repository() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let problems = check(root).unwrap();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn a_drifting_step_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Makefile.toml"),
            "[tasks.check]\ncommand = \"cargo\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
        std::fs::write(
            dir.path().join(".github/workflows/x.yml"),
            "jobs:\n  a:\n    steps:\n      - run: cargo make check\n      - run: cargo make gone\n      \
             - run: sudo apt-get install -y postgresql\n      - run: cargo xtask frobnicate\n      \
             - run: |\n          sudo apt-get update && sudo apt-get install -y x\n          ./build.sh\n      \
             - run: echo \"spec=$(cargo xtask tools spec cargo-make)\" >> \"$GITHUB_OUTPUT\"\n",
        )
        .unwrap();
        let problems = check(dir.path()).unwrap().join("\n");
        assert!(
            problems.contains("x.yml:5: `gone` is not a task"),
            "{problems}"
        );
        assert!(
            problems.contains("x.yml:6: `apt-get install` without"),
            "{problems}"
        );
        assert!(problems.contains("x.yml:7: xtask refuses it"), "{problems}");
        assert!(
            problems.contains("x.yml:10: not a Makefile.toml task"),
            "{problems}"
        );
        assert_eq!(problems.lines().count(), 4, "{problems}");
    }
}
