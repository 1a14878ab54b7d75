//! `cargo xtask profiles derive` and `cargo xtask migrations derive` end to end: the proposal,
//! the generated replacements and bridges, and the proof, on real PostgreSQL servers (one of
//! them a copy of the local installation without pgvector at all).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const TREE: &[&str] = &[
    "migrations",
    "migrations-v1.0",
    "docs/migrations.md",
    "services/datastorage/tests/api/main.rs",
];

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("derive-fixture")
            .tempdir()
            .unwrap();
        for item in TREE {
            copy(&Path::new(REPO).join(item), &dir.path().join(item));
        }
        Self { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out
    }

    fn run(&self, args: &[&str]) -> (bool, String) {
        xtask(Some(self.dir.path()), args)
    }
}

fn xtask(root: Option<&Path>, args: &[&str]) -> (bool, String) {
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

fn copy(from: &Path, to: &Path) {
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
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.insert(rel, std::fs::read(&p).unwrap());
        }
    }
}

#[test]
fn repository_profile_is_what_derive_generates() {
    let (ok, out) = xtask(None, &["profiles", "derive", "v1.0", "--check"]);
    assert!(ok, "{out}");
    assert!(out.contains("up to date"), "{out}");
    for needle in [
        "replace    010_audit_write_api_phase1.sql",
        "011_rename_alert_to_signal.sql depends on",
        "replace    015_create_workflow_catalog_table.sql",
        "leave out  005_vector_schema.sql",
        "21 versions: 14 included, 2 replaced, 5 left out, 0 refused",
    ] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
}

#[test]
fn derive_regenerates_the_profile_and_proves_it() {
    let f = Fixture::new();
    let replacements = f.read("migrations/v1.0-replacements/010_audit_write_api_phase1.sql");
    let bridge = f.read("migrations/v1.0-bridges/015_create_workflow_catalog_table.sql");
    std::fs::remove_dir_all(f.path("migrations/v1.0-replacements")).unwrap();
    std::fs::remove_dir_all(f.path("migrations/v1.0-bridges")).unwrap();
    let (ok, out) = f.run(&["profiles", "derive", "v1.0", "--write"]);
    assert!(ok, "{out}");
    for needle in [
        "proof: applies without vector: 16 migrations on a PostgreSQL that does not have it installed",
        "proof: upgrade equality: derived + 2 bridges + 5 left-out versions == a fresh canonical install",
        "proof: rows kept:",
        "proof: lacks only what needs vector:",
        "migrations-v1.0/: 16 migrations",
    ] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
    assert_eq!(
        f.read("migrations/v1.0-replacements/010_audit_write_api_phase1.sql"),
        replacements
    );
    assert_eq!(
        f.read("migrations/v1.0-bridges/015_create_workflow_catalog_table.sql"),
        bridge
    );
    let (ok, out) = f.run(&["sync-migrations", "--check", "--no-db"]);
    assert!(ok, "{out}");
}

/// The new user: a migration with a vector column on a new table that a later plain
/// migration extends; derive replaces it, and sync proves both profiles and the upgrade.
#[test]
fn a_new_vector_migration_needs_no_handwork() {
    let f = Fixture::new();
    f.write(
        "migrations/021_incident_notes.sql",
        "-- 021_incident_notes.sql\n-- Purpose: notes on incidents, with an embedding for similar-note search.\n\nCREATE TABLE incident_notes (\n    id BIGSERIAL PRIMARY KEY,\n    body TEXT NOT NULL,\n    embedding vector(768)\n);\n\nCREATE INDEX idx_incident_notes_embedding\n    ON incident_notes USING hnsw (embedding vector_cosine_ops);\n",
    );
    f.write(
        "migrations/022_incident_note_author.sql",
        "-- 022_incident_note_author.sql\nALTER TABLE incident_notes ADD COLUMN author TEXT;\n",
    );
    f.write(
        "migrations/023_notification_summary_embedding.sql",
        "ALTER TABLE notification_audit ADD COLUMN summary_embedding vector(768);\n",
    );
    let (ok, out) = f.run(&["profiles", "derive", "v1.0", "--write"]);
    assert!(ok, "{out}");
    assert!(out.contains("replace    021_incident_notes.sql"), "{out}");
    assert!(
        out.contains(
            "everything it does needs vector: column notification_audit.summary_embedding"
        ),
        "{out}"
    );
    assert!(
        out.contains("+ 6 left-out versions == a fresh canonical install"),
        "{out}"
    );
    assert!(
        out.contains("include    022_incident_note_author.sql"),
        "{out}"
    );
    assert!(out.contains("proof: upgrade equality"), "{out}");
    let toml = f.read("migrations/profiles.toml");
    assert!(
        toml.contains("21 = \"v1.0-replacements/021_incident_notes.sql\""),
        "{toml}"
    );
    assert!(toml.contains("22"), "{toml}");
    let replacement = f.read("migrations-v1.0/021_incident_notes.sql");
    assert!(
        replacement
            .lines()
            .filter(|l| !l.starts_with("--"))
            .all(|l| !l.contains("vector")),
        "{replacement}"
    );
    assert!(
        replacement.contains("Generated by `cargo xtask profiles derive v1.0`"),
        "{replacement}"
    );
    let bridge = f.read("migrations/v1.0-bridges/021_incident_notes.sql");
    assert!(
        bridge.contains("ADD COLUMN embedding vector(768)"),
        "{bridge}"
    );
    let (ok, out) = f.run(&["sync-migrations", "--check"]);
    assert!(ok, "{out}");
}

#[test]
fn refusals_name_the_line_and_change_nothing() {
    let f = Fixture::new();
    f.write(
        "migrations/021_backfill.sql",
        "-- 021_backfill.sql\nCREATE TABLE notes (id int, embedding vector(3));\nDO $$ BEGIN PERFORM '[1,2,3]'::vector; END $$;\nALTER TABLE notes ADD COLUMN n int;\n",
    );
    let before = f.snapshot();
    let (ok, out) = f.run(&["profiles", "derive", "v1.0", "--write", "--no-proof"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("021_backfill.sql:3: error: a DO block uses type vector"),
        "{out}"
    );
    assert!(out.contains("Nothing was written"), "{out}");
    assert!(f.snapshot() == before, "the tree changed:\n{out}");
}

#[test]
fn bad_input_is_refused_clearly() {
    let f = Fixture::new();
    let before = f.snapshot();
    for (args, needle) in [
        (
            vec!["profiles", "derive", "v2.0"],
            "profile `v2.0`: no such profile",
        ),
        (vec!["profiles", "derive", "full"], "is the canonical one"),
        (
            vec![
                "migrations",
                "derive",
                "--source",
                "migrations",
                "--forbid",
                "nosuch",
            ],
            "extension `nosuch`: the analysis does not know",
        ),
        (
            vec![
                "migrations",
                "derive",
                "--source",
                "migrations",
                "--forbid",
                "pg_trgm",
            ],
            "no migration of",
        ),
    ] {
        let mut full = args.clone();
        if full[0] == "migrations" {
            let source = f.path("migrations");
            let (ok, out) = xtask(
                None,
                &[
                    "migrations",
                    "derive",
                    "--source",
                    source.to_str().unwrap(),
                    "--forbid",
                    full[5],
                ],
            );
            assert!(!ok && out.contains(needle), "{needle:?} not in:\n{out}");
            continue;
        }
        full.push("--no-proof");
        let (ok, out) = f.run(&full);
        assert!(!ok && out.contains(needle), "{needle:?} not in:\n{out}");
    }
    assert!(f.snapshot() == before);
}

#[test]
fn a_stale_generated_replacement_fails_the_check() {
    let f = Fixture::new();
    let p = "migrations/010_audit_write_api_phase1.sql";
    let text = f.read(p).replace(
        "    escalation_level   INTEGER      NOT NULL DEFAULT 0,\n",
        "    escalation_level   INTEGER      NOT NULL DEFAULT 0,\n    priority           INTEGER,\n",
    );
    f.write(p, &text);
    let (ok, out) = f.run(&["sync-migrations", "--check", "--no-db"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("v1.0-replacements/010_audit_write_api_phase1.sql: not what `cargo xtask profiles derive v1.0` generates"),
        "{out}"
    );
    let (ok, out) = f.run(&["profiles", "derive", "v1.0", "--write"]);
    assert!(ok, "{out}");
    assert!(
        f.read("migrations-v1.0/010_audit_write_api_phase1.sql")
            .contains("priority")
    );
}

/// Any history, any layout: a diesel history with a vector column that a later migration
/// indexes by another column.
#[test]
fn migrations_derive_writes_a_proven_folder_in_the_same_layout() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("migrations");
    let w = |rel: &str, text: &str| {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w(
        "2024-01-01-000000_docs/up.sql",
        "-- documents with embeddings\nCREATE EXTENSION IF NOT EXISTS vector;\nCREATE TABLE docs (id SERIAL PRIMARY KEY, title TEXT NOT NULL, embedding vector(3));\nCREATE INDEX docs_embedding ON docs USING ivfflat (embedding vector_l2_ops);\n",
    );
    w(
        "2024-01-01-000000_docs/down.sql",
        "DROP INDEX docs_embedding;\nDROP TABLE docs;\nDROP EXTENSION vector;\n",
    );
    w(
        "2024-02-01-000000_titles/up.sql",
        "CREATE INDEX docs_title ON docs (title);\n",
    );
    w(
        "2024-02-01-000000_titles/down.sql",
        "DROP INDEX docs_title;\n",
    );
    w(
        "2024-03-01-000000_resize/up.sql",
        "DROP INDEX docs_embedding;\nALTER TABLE docs ALTER COLUMN embedding TYPE vector(4) USING NULL;\n",
    );
    w("2024-03-01-000000_resize/down.sql", "SELECT 1;\n");
    let out_dir = dir.path().join("out");
    let (ok, out) = xtask(
        None,
        &[
            "migrations",
            "derive",
            "--source",
            src.to_str().unwrap(),
            "--forbid",
            "vector",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("read as diesel"), "{out}");
    assert!(
        out.contains("3 versions: 1 included, 1 replaced, 1 left out, 0 refused"),
        "{out}"
    );
    assert!(out.contains("proof: applies without vector"), "{out}");
    assert!(out.contains("proof: upgrade equality"), "{out}");
    let up =
        std::fs::read_to_string(out_dir.join("migrations/2024-01-01-000000_docs/up.sql")).unwrap();
    let code: Vec<&str> = up
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    assert!(code.iter().all(|l| !l.contains("vector")), "{up}");
    assert!(up.contains("title text NOT NULL"), "{up}");
    let down = std::fs::read_to_string(out_dir.join("migrations/2024-01-01-000000_docs/down.sql"))
        .unwrap();
    let code: Vec<&str> = down.lines().filter(|l| !l.starts_with("--")).collect();
    assert!(code.contains(&"DROP TABLE docs;"), "{down}");
    assert!(
        code.iter()
            .all(|l| !l.contains("docs_embedding") && !l.contains("vector")),
        "{down}"
    );
    assert!(!out_dir.join("migrations/2024-03-01-000000_resize").exists());
    let bridge =
        std::fs::read_to_string(out_dir.join("bridges/2024-01-01-000000_docs_up.sql")).unwrap();
    assert!(
        bridge.contains("ADD COLUMN embedding vector(3)"),
        "{bridge}"
    );
}

#[test]
fn a_hand_written_bridge_wins_over_the_generated_one() {
    let f = Fixture::new();
    let rel = "migrations/v1.0-bridges/015_create_workflow_catalog_table.sql";
    let hand = "-- 015 bridge, written by hand.\nCREATE EXTENSION IF NOT EXISTS vector;\nALTER TABLE remediation_workflow_catalog ADD COLUMN embedding vector(384);\nCREATE INDEX idx_workflow_catalog_embedding ON remediation_workflow_catalog USING hnsw (embedding vector_cosine_ops);\n";
    f.write(rel, hand);
    let (ok, out) = f.run(&["profiles", "derive", "v1.0", "--check"]);
    assert!(ok, "{out}");
    let (ok, out) = f.run(&["profiles", "derive", "v1.0", "--write"]);
    assert!(ok, "{out}");
    assert!(out.contains("proof: upgrade equality"), "{out}");
    assert_eq!(f.read(rel), hand);
}
