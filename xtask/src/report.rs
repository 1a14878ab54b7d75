//! How findings reach people and CI: one line per finding (`FILE:LINE: error: …`), JSON, or
//! GitHub workflow commands (so a pull request shows each finding on its line).

use migration_deps::{Finding, Severity};
use serde::Serialize;

/// The output formats of the analysis commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `FILE:LINE: error: message`, then a summary.
    Human,
    /// One JSON document (schema in docs/analysis.md).
    Json,
    /// `::error file=…,line=…::message` workflow commands.
    Github,
}

/// Escapes a workflow command's message (`%`, CR, LF), as GitHub's runner expects.
pub fn escape_github(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (also `:` and `,`).
pub fn escape_github_property(text: &str) -> String {
    escape_github(text).replace(':', "%3A").replace(',', "%2C")
}

/// One finding as a GitHub annotation; `path` is the file's path from the repository root.
pub fn github(f: &Finding, path: &str) -> String {
    let level = match f.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    format!(
        "::{level} file={},line={},title=migration analysis::{}",
        escape_github_property(path),
        f.line,
        escape_github(&f.message)
    )
}

/// The JSON form of a finding.
#[derive(Debug, Serialize)]
pub struct JsonFinding<'a> {
    pub file: &'a str,
    pub line: u32,
    pub severity: &'static str,
    pub message: &'a str,
    /// The object a broken dependency needs, and the migration that creates it.
    pub object: Option<String>,
    pub created_by: Option<&'a str>,
    /// PostgreSQL finds it only when a function body runs.
    pub deferred: bool,
}

impl<'a> From<&'a Finding> for JsonFinding<'a> {
    fn from(f: &'a Finding) -> Self {
        JsonFinding {
            file: &f.file,
            line: f.line,
            severity: match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            message: &f.message,
            object: f.dependency.as_ref().map(|(o, _)| o.to_string()),
            created_by: f.dependency.as_ref().map(|(_, by)| by.as_str()),
            deferred: f.deferred,
        }
    }
}
