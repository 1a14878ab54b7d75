//! `cargo xtask sync-migrations` end to end on a copy of the repository: drift, repair, and
//! bad input that must be refused with a clear message and leave the tree byte-identical.

mod common;

use std::process::Command;

use common::{Fixture, REPO, v1, v1_dir};

/// Runs the sync (no database) and asserts it fails with `needle` and changes nothing.
trait Refused {
    fn refused(&self, needle: &str) -> String;
}

impl Refused for Fixture {
    fn refused(&self, needle: &str) -> String {
        let before = self.snapshot();
        let (ok, out) = self.run(&["sync-migrations", "--no-db"]);
        assert!(
            !ok,
            "expected a refusal containing {needle:?}, got success:\n{out}"
        );
        assert!(out.contains(needle), "expected {needle:?} in:\n{out}");
        assert!(
            self.snapshot() == before,
            "the tree changed although the sync was refused:\n{out}"
        );
        out
    }
}

#[test]
fn repository_is_in_sync() {
    let f = Fixture::new();
    let (ok, out) = f.run(&["sync-migrations", "--check", "--no-db"]);
    assert!(ok, "{out}");
    assert!(out.contains("up to date"), "{out}");
}

#[test]
fn edited_canonical_file_is_drift_until_synced() {
    let f = Fixture::new();
    f.edit("migrations/012_adr033_multidimensional_tracking.sql", |t| {
        t + "\n-- reviewed\n"
    });
    let (ok, out) = f.run(&["sync-migrations", "--check", "--no-db"]);
    assert!(!ok);
    assert!(
        out.contains(&v1(
            "012_adr033_multidimensional_tracking.sql: differs from its source"
        )),
        "{out}"
    );
    assert!(out.contains("run `cargo xtask sync-migrations`"), "{out}");

    let untouched = f.path(&v1("001_initial_schema.sql"));
    let mtime = std::fs::metadata(&untouched).unwrap().modified().unwrap();
    let (ok, out) = f.run(&["sync-migrations", "--no-db"]);
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read(f.path(&v1("012_adr033_multidimensional_tracking.sql"))).unwrap(),
        std::fs::read(f.path("migrations/012_adr033_multidimensional_tracking.sql")).unwrap(),
        "copied byte for byte"
    );
    assert_eq!(
        std::fs::metadata(&untouched).unwrap().modified().unwrap(),
        mtime,
        "unchanged files keep their mtime"
    );
    let (ok, out) = f.run(&["sync-migrations", "--check", "--no-db"]);
    assert!(ok, "{out}");

    // A second run changes nothing at all.
    let before = f.snapshot();
    let (ok, out) = f.run(&["sync-migrations", "--no-db"]);
    assert!(ok, "{out}");
    assert!(f.snapshot() == before);
}

#[test]
fn stale_generated_file_is_removed() {
    let f = Fixture::new();
    f.edit("migrations/profiles.toml", |t| {
        t.replace(
            "include = [1, 2, 3, 4, 6, 11, 12, 13, 14, 17, 18, 19, 20, 1000]",
            "include = [1, 2, 3, 4, 6, 11, 12, 13, 14, 17, 18, 19, 20]",
        )
        .replace(
            "[profiles.\"v1.0\".exclude]\n",
            "[profiles.\"v1.0\".exclude]\n1000 = \"partitions come from the service\"\n",
        )
    });
    let (ok, out) = f.run(&["sync-migrations", "--no-db"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("1000_create_audit_events_partitions.sql: stale"),
        "{out}"
    );
    assert!(
        !f.path(&v1("1000_create_audit_events_partitions.sql"))
            .exists()
    );
}

#[test]
fn test_suite_reference_follows_the_test_profile() {
    let f = Fixture::new();
    f.edit("services/datastorage/tests/api/main.rs", |t| {
        t.replace(&format!("\"../../{}\"", v1_dir()), "\"../../migrations\"")
    });
    let (ok, out) = f.run(&["sync-migrations", "--check", "--no-db"]);
    assert!(!ok);
    assert!(
        out.contains("services/datastorage/tests/api/main.rs:"),
        "{out}"
    );
    let (ok, out) = f.run(&["sync-migrations", "--no-db"]);
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(f.path("services/datastorage/tests/api/main.rs")).unwrap();
    assert!(
        text.contains(&format!("sqlx::migrate!(\"../../{}\")", v1_dir())),
        "{text}"
    );
}

#[test]
fn refuses_duplicate_version() {
    let f = Fixture::new();
    f.write("migrations/011_again.sql", "SELECT 1;\n");
    f.refused("duplicate version 11");
}

#[test]
fn refuses_malformed_file_name() {
    let f = Fixture::new();
    f.write("migrations/add-index.sql", "SELECT 1;\n");
    f.refused("not a valid migration name");
    let f = Fixture::new();
    f.write("migrations/v2_add_index.sql", "SELECT 1;\n");
    f.refused("v2_add_index.sql: not a valid migration name");
}

#[test]
fn refuses_unknown_allowlist_entry() {
    let f = Fixture::new();
    f.edit("migrations/profiles.toml", |t| {
        t.replace("20, 1000]", "20, 42, 1000]")
    });
    f.refused("includes version 42, but migrations has no migration with that version");
}

#[test]
fn refuses_missing_replacement() {
    let f = Fixture::new();
    f.edit("migrations/profiles.toml", |t| {
        t.replace(
            "v1.0-replacements/010_audit",
            "v1.0-replacements/010_missing",
        )
    });
    f.refused("which does not exist");
}

#[test]
fn refuses_path_traversal_and_absolute_paths() {
    let f = Fixture::new();
    f.edit("migrations/profiles.toml", |t| {
        t.replace(
            "v1.0-replacements/010_audit_write_api_phase1.sql",
            "../../etc/010_audit_write_api_phase1.sql",
        )
    });
    f.refused("path leaves its folder");
    let f = Fixture::new();
    f.edit("migrations/profiles.toml", |t| {
        t.replace(
            &format!("dir = \"{}\"", v1_dir()),
            &format!("dir = \"/tmp/{}\"", v1_dir()),
        )
    });
    f.refused("absolute path");
}

#[test]
fn refuses_symlinked_migration() {
    let f = Fixture::new();
    std::os::unix::fs::symlink(
        "001_initial_schema.sql",
        f.path("migrations/021_linked.sql"),
    )
    .unwrap();
    f.refused("021_linked.sql: is a symbolic link");
}

#[test]
fn refuses_non_utf8_migration() {
    let f = Fixture::new();
    f.write("migrations/021_latin1.sql", b"-- caf\xe9\nSELECT 1;\n");
    f.refused("021_latin1.sql: is not valid UTF-8");
}

#[test]
fn refuses_stray_file_in_generated_directory() {
    let f = Fixture::new();
    f.write(&v1("021_hotfix.sql"), "SELECT 1;\n");
    f.refused(&v1("021_hotfix.sql: stray file"));
}

#[test]
fn refuses_hand_edited_generated_file() {
    let f = Fixture::new();
    f.edit(&v1("013_create_audit_events_table.sql"), |t| {
        t.replace("2555", "3650")
    });
    f.refused(&v1("013_create_audit_events_table.sql: edited by hand"));
    let (ok, out) = f.run(&["sync-migrations", "--check", "--no-db"]);
    assert!(!ok && out.contains("edited by hand"), "{out}");
}

#[test]
fn refuses_directive_after_bom_or_blank_line() {
    let f = Fixture::new();
    f.write("migrations/021_index.sql", "\u{feff}-- no-transaction\nCREATE INDEX CONCURRENTLY idx_x ON audit_events (event_type);\n");
    f.refused(
        "migrations/021_index.sql:1: warning: `-- no-transaction` is preceded by a byte-order mark",
    );
    let f = Fixture::new();
    f.write(
        "migrations/021_index.sql",
        "\n\n-- no-transaction\nCREATE INDEX CONCURRENTLY idx_x ON audit_events (event_type);\n",
    );
    f.refused(
        "migrations/021_index.sql:3: warning: `-- no-transaction` is preceded by blank space",
    );
}

#[test]
fn refuses_concurrently_or_commit_in_a_transaction() {
    let f = Fixture::new();
    f.write(
        "migrations/021_index.sql",
        "-- an index\nCREATE INDEX CONCURRENTLY idx_x\n    ON audit_events (event_type);\n",
    );
    f.refused(
        "migrations/021_index.sql:2: error: CREATE INDEX CONCURRENTLY cannot run inside the transaction",
    );
    let f = Fixture::new();
    f.write(
        "migrations/021_commit.sql",
        "CREATE TABLE t (id int);\nCOMMIT;\n",
    );
    // PostgreSQL accepts a COMMIT there (sqlx's own COMMIT then only warns): a hazard, not an
    // error.
    classify(&f, "21");
    let (ok, out) = f.run(&["sync-migrations", "--no-db"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("migrations/021_commit.sql:2: warning: COMMIT inside a migration"),
        "{out}"
    );
    let f = Fixture::new();
    f.write("migrations/021_two.sql", "-- no-transaction\nCREATE INDEX CONCURRENTLY idx_x ON audit_events (event_type);\nCREATE INDEX CONCURRENTLY idx_y ON audit_events (event_action);\n");
    f.refused("must be the only statement");
}

#[test]
fn refuses_broken_dependency_naming_the_excluded_migration() {
    let f = Fixture::new();
    f.edit("migrations/profiles.toml", |t| {
        t.replace(
            "10 = \"v1.0-replacements/010_audit_write_api_phase1.sql\"\n",
            "",
        )
        .replace(
            "[profiles.\"v1.0\".exclude]\n",
            "[profiles.\"v1.0\".exclude]\n10 = \"needs pgvector\"\n",
        )
    });
    let out = f.refused(
        "migrations/011_rename_alert_to_signal.sql:8: error: table notification_audit is created by excluded 010_audit_write_api_phase1.sql",
    );
    assert!(out.contains("nothing was written"), "{out}");
}

#[test]
fn refuses_forbidden_extension_in_v1() {
    let f = Fixture::new();
    f.edit("migrations/profiles.toml", |t| {
        t.replace("include = [1, 2, 3, 4, 6,", "include = [1, 2, 3, 4, 5, 6,")
            .replace(
                "\n5 = \"creates the vector extension",
                "\n# 5 = \"creates the vector extension",
            )
    });
    f.refused("migrations/005_vector_schema.sql:");
    f.refused("needs extension vector, which this profile forbids");
}

#[test]
fn refuses_replacement_that_still_needs_vector() {
    let f = Fixture::new();
    f.edit(
        "migrations/v1.0-replacements/015_create_workflow_catalog_table.sql",
        |t| t.replace("    labels ", "    embedding vector(384),\n    labels "),
    );
    f.refused("v1.0-replacements/015_create_workflow_catalog_table.sql:");
}

#[test]
fn refuses_ambiguous_test_reference() {
    let f = Fixture::new();
    f.edit("services/datastorage/tests/api/main.rs", |t| {
        t + "\n// \"../../migrations\"\n"
    });
    f.refused("expected exactly one string literal naming a migration directory");
    let f = Fixture::new();
    f.edit("services/datastorage/tests/api/main.rs", |t| {
        t.replace(&format!("\"../../{}\"", v1_dir()), "MIGRATIONS_DIR")
    });
    f.refused("found 0");
}

#[test]
fn refuses_unparsable_sql_with_its_line() {
    let f = Fixture::new();
    f.write(
        "migrations/021_typo.sql",
        "CREATE TABLE ok (id int);\n\nCREAT TABLE broken (id int);\n",
    );
    f.refused("migrations/021_typo.sql:3: cannot parse");
}

#[test]
fn deps_reports_the_seed_allowlist_breaks() {
    let (ok, out) = Fixture::new().run(&[
        "migrations",
        "deps",
        "--source",
        &format!("{REPO}/migrations"),
        "--exclude",
        "5,7,8,9,10,15,16",
    ]);
    assert!(!ok);
    for file in [
        "011_rename_alert_to_signal.sql:",
        "017_add_workflow_schema_fields.sql:",
        "018_rename_execution_bundle_to_container_image.sql:",
        "019_uuid_primary_key.sql:",
        "020_add_workflow_label_columns.sql:",
    ] {
        assert!(out.contains(file), "{file} in:\n{out}");
    }
    assert!(
        out.contains("is created by excluded 015_create_workflow_catalog_table.sql"),
        "{out}"
    );
    let (ok, out) = Fixture::new().run(&[
        "migrations",
        "deps",
        "--source",
        &format!("{REPO}/migrations"),
        "--exclude",
        "007,009",
    ]);
    assert!(ok, "leaf migrations can go: {out}");
    let (ok, out) = Fixture::new().run(&[
        "migrations",
        "deps",
        "--source",
        &format!("{REPO}/migrations"),
        "--exclude",
        "x",
    ]);
    assert!(!ok && out.contains("not a migration version"), "{out}");
}

#[test]
fn graph_check_detects_a_stale_document() {
    let f = Fixture::new();
    let (ok, out) = f.run(&["migrations", "graph", "--check"]);
    assert!(ok, "{out}");
    f.edit("docs/migrations.md", |t| {
        t.replace("flowchart TD", "flowchart LR")
    });
    let (ok, out) = f.run(&["migrations", "graph", "--check"]);
    assert!(!ok && out.contains("out of date"), "{out}");
}

/// A new canonical migration that `profiles.toml` does not classify for v1.0 stops the sync (and
/// `--check`) with what to decide, and changes nothing.
fn refused_as_unclassified(f: &Fixture, file: &str, suggestion: &str) -> String {
    let version = file.split('_').next().unwrap().trim_start_matches('0');
    let out = f.refused(&format!(
        "migrations/{file}: version {version} is not classified for profile \"v1.0\": list it in migrations/profiles.toml under [profiles.\"v1.0\"] in `include` (copied as it is), `replace` (a variant for this profile) or `exclude` (left out)"
    ));
    assert!(
        out.contains(&format!("the analysis suggests: {suggestion}")),
        "expected the suggestion {suggestion:?} in:\n{out}"
    );
    assert!(out.contains("nothing was written"), "{out}");
    let before = f.snapshot();
    let (ok, check) = f.run(&["sync-migrations", "--check", "--no-db"]);
    assert!(
        !ok && check.contains(&format!(
            "migrations/{file}: version {version} is not classified"
        )),
        "{check}"
    );
    assert!(f.snapshot() == before);
    out
}

/// Adds `entry` under `[profiles."v1.0".exclude]`, or to `include` when it is a bare version.
fn classify(f: &Fixture, entry: &str) {
    f.edit("migrations/profiles.toml", |t| {
        if let Ok(v) = entry.parse::<i64>() {
            t.replace("20, 1000]", &format!("20, 1000, {v}]"))
        } else {
            t.replace(
                "[profiles.\"v1.0\".exclude]\n",
                &format!("[profiles.\"v1.0\".exclude]\n{entry}\n"),
            )
        }
    });
}

#[test]
fn new_plain_migration_is_not_left_out_silently() {
    let f = Fixture::new();
    f.write(
        "migrations/021_audit_event_source.sql",
        "ALTER TABLE audit_events ADD COLUMN source text;\n",
    );
    refused_as_unclassified(
        &f,
        "021_audit_event_source.sql",
        "include it: it uses nothing this profile forbids and depends only on versions the profile has",
    );
    classify(&f, "21");
    let (ok, out) = f.run(&["sync-migrations", "--no-db"]);
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read(f.path(&v1("021_audit_event_source.sql"))).unwrap(),
        std::fs::read(f.path("migrations/021_audit_event_source.sql")).unwrap()
    );
}

#[test]
fn new_vector_migrations_are_not_left_out_silently() {
    let f = Fixture::new();
    f.write(
        "migrations/021_incident_embeddings.sql",
        "CREATE TABLE incident_embeddings (\n    id bigint PRIMARY KEY,\n    embedding vector(768) NOT NULL\n);\n",
    );
    f.write(
        "migrations/022_incident_embedding_model.sql",
        "ALTER TABLE incident_embeddings ADD COLUMN model text;\n",
    );
    let out = refused_as_unclassified(
        &f,
        "021_incident_embeddings.sql",
        "exclude it: it needs extension vector (line 3: type vector), which this profile forbids, and no version of the profile depends on it",
    );
    assert!(
        out.contains("migrations/022_incident_embedding_model.sql: version 22 is not classified"),
        "{out}"
    );
    assert!(
        out.contains("exclude it too, or include or replace what it depends on: it depends on 021_incident_embeddings.sql (relation incident_embeddings), which is not classified either"),
        "{out}"
    );
    // Deciding one of them is not enough.
    classify(&f, "21 = \"incident embeddings need pgvector\"");
    let out = refused_as_unclassified(
        &f,
        "022_incident_embedding_model.sql",
        "exclude it too, or include or replace what it depends on: it depends on 021_incident_embeddings.sql (relation incident_embeddings), which is excluded",
    );
    assert!(!out.contains("version 21 is not classified"), "{out}");
    classify(&f, "22 = \"alters 021's table\"");
    let (ok, out) = f.run(&["sync-migrations", "--no-db"]);
    assert!(ok, "{out}");
    assert!(!f.path(&v1("021_incident_embeddings.sql")).exists());
    let graph = std::fs::read_to_string(f.path("docs/migrations.md")).unwrap();
    assert!(
        graph.contains(
            "| 21 | `021_incident_embeddings.sql` | excluded: incident embeddings need pgvector |"
        ),
        "{graph}"
    );
}

#[test]
fn new_migration_on_an_excluded_one_is_not_left_out_silently() {
    let f = Fixture::new();
    f.write(
        "migrations/021_pattern_weight.sql",
        "-- Weighs action patterns.\nALTER TABLE action_patterns ADD COLUMN weight real NOT NULL DEFAULT 1;\n",
    );
    refused_as_unclassified(
        &f,
        "021_pattern_weight.sql",
        "exclude it too, or include or replace what it depends on: it depends on 005_vector_schema.sql (relation action_patterns), which is excluded",
    );
    // Including it instead is a broken dependency, reported as such.
    classify(&f, "21");
    f.refused("migrations/021_pattern_weight.sql:2: error: table action_patterns is created by excluded 005_vector_schema.sql");
}

#[test]
fn unclassified_versions_stand_out_in_the_graph() {
    let f = Fixture::new();
    f.write(
        "migrations/021_audit_event_source.sql",
        "ALTER TABLE audit_events ADD COLUMN source text;\n",
    );
    let (ok, out) = f.run(&["migrations", "graph"]);
    assert!(ok, "{out}");
    let graph = std::fs::read_to_string(f.path("docs/migrations.md")).unwrap();
    assert!(
        graph.contains("m21[\"021<br/>audit event source\"]:::unclassified"),
        "{graph}"
    );
    assert!(
        graph.contains("| 21 | `021_audit_event_source.sql` | **not classified**"),
        "{graph}"
    );
    assert!(
        graph.contains("| 5 | `005_vector_schema.sql` | excluded: creates the vector extension"),
        "{graph}"
    );
}

#[test]
fn refuses_versions_listed_twice_or_absent() {
    let f = Fixture::new();
    classify(&f, "11 = \"twice\"");
    f.refused(
        "profiles.\"v1.0\": version 11 is both included and excluded; list it in one place only",
    );
    let f = Fixture::new();
    classify(&f, "10 = \"twice\"");
    f.refused(
        "profiles.\"v1.0\": version 10 is both replaced and excluded; list it in one place only",
    );
    let f = Fixture::new();
    classify(&f, "42 = \"gone\"");
    f.refused("profile \"v1.0\" excludes version 42, but migrations has no migration with that version; remove it from `exclude`");
    let f = Fixture::new();
    classify(&f, "05 = \"again\"");
    f.refused("profiles.\"v1.0\".exclude lists version 5 twice (\"05\" and \"5\")");
}

/// After the decision, both profiles are proven on a real PostgreSQL.
#[test]
fn classified_new_migrations_are_proven_on_postgres() {
    let f = Fixture::new();
    f.write(
        "migrations/021_audit_event_source.sql",
        "ALTER TABLE audit_events ADD COLUMN source text;\n",
    );
    f.write(
        "migrations/022_incident_embeddings.sql",
        "CREATE TABLE incident_embeddings (id bigint PRIMARY KEY, embedding vector(768) NOT NULL);\n",
    );
    classify(&f, "21");
    classify(&f, "22 = \"needs pgvector\"");
    let (ok, out) = f.run(&["sync-migrations"]);
    assert!(ok, "{out}");
    assert!(out.contains("profile v1.0: 17 migrations applied"), "{out}");
    assert!(out.contains("profile full: 23 migrations applied"), "{out}");
}

/// A reversible history (`sqlx migrate add -r`): both files of an allowlisted version are
/// copied byte for byte, a replacement brings its own down file, the manifest lists both, and
/// the derived profile runs, reverts to zero and runs again with the real sqlx-cli.
#[test]
fn reversible_migrations_are_derived_in_pairs_and_revert_with_sqlx() {
    let f = Fixture::new();
    let up_21 = "ALTER TABLE audit_events ADD COLUMN source text;\n";
    let down_21 = "-- Undo 021.\nALTER TABLE audit_events DROP COLUMN source;\n";
    f.write("migrations/021_audit_event_source.up.sql", up_21);
    f.write("migrations/021_audit_event_source.down.sql", down_21);
    f.write(
        "migrations/022_incident_embeddings.up.sql",
        "CREATE TABLE incident_embeddings (id bigint PRIMARY KEY, embedding vector(768) NOT NULL);\n",
    );
    f.write(
        "migrations/022_incident_embeddings.down.sql",
        "DROP TABLE incident_embeddings;\n",
    );
    f.write(
        "migrations/023_incident_notes.up.sql",
        "CREATE TABLE incident_notes (id bigint PRIMARY KEY, body text NOT NULL, embedding vector(768));\n",
    );
    f.write(
        "migrations/023_incident_notes.down.sql",
        "DROP TABLE incident_notes;\n",
    );
    let up_23_v1 = "CREATE TABLE incident_notes (id bigint PRIMARY KEY, body text NOT NULL);\n";
    let down_23_v1 = "-- The v1.0 variant's own undo.\nDROP TABLE incident_notes;\n";
    f.write(
        "migrations/v1.0-replacements/023_incident_notes.up.sql",
        up_23_v1,
    );
    f.write(
        "migrations/v1.0-replacements/023_incident_notes.down.sql",
        down_23_v1,
    );
    f.write(
        "migrations/v1.0-bridges/023_incident_notes.up.sql",
        "ALTER TABLE incident_notes ADD COLUMN embedding vector(768);\n",
    );
    classify(&f, "21");
    classify(&f, "22 = \"needs pgvector\"");
    f.edit("migrations/profiles.toml", |t| {
        t.replace(
            "[profiles.\"v1.0\".replace]\n",
            "[profiles.\"v1.0\".replace]\n23 = \"v1.0-replacements/023_incident_notes.up.sql\"\n",
        )
        .replace(
            "[profiles.\"v1.0\".bridge]\n",
            "[profiles.\"v1.0\".bridge]\n23 = \"v1.0-bridges/023_incident_notes.up.sql\"\n",
        )
    });
    let (ok, out) = f.run(&["sync-migrations"]);
    assert!(ok, "{out}");
    assert!(out.contains("profile v1.0: 18 migrations applied"), "{out}");
    assert!(out.contains("profile full: 24 migrations applied"), "{out}");

    // Both files, byte for byte; the replacement's own down file; nothing of the excluded 022.
    let read = |rel: &str| std::fs::read_to_string(f.path(rel)).unwrap();
    assert_eq!(read(&v1("021_audit_event_source.up.sql")), up_21);
    assert_eq!(read(&v1("021_audit_event_source.down.sql")), down_21);
    assert_eq!(read(&v1("023_incident_notes.up.sql")), up_23_v1);
    assert_eq!(read(&v1("023_incident_notes.down.sql")), down_23_v1);
    assert!(!f.path(&v1("022_incident_embeddings.up.sql")).exists());
    assert!(!f.path(&v1("022_incident_embeddings.down.sql")).exists());
    let manifest = read(&v1("manifest.toml"));
    for needle in [
        "file = \"021_audit_event_source.down.sql\"\nsource = \"migrations/021_audit_event_source.down.sql\"\nkind = \"copy\"\ndirection = \"down\"",
        "file = \"023_incident_notes.down.sql\"\nsource = \"migrations/v1.0-replacements/023_incident_notes.down.sql\"\nkind = \"replacement\"\ndirection = \"down\"",
    ] {
        assert!(manifest.contains(needle), "{needle:?} not in:\n{manifest}");
    }
    let (ok, out) = f.run(&["sync-migrations", "--check", "--no-db"]);
    assert!(ok, "{out}");

    // Run, revert to zero, run again: sqlx-cli on a real PostgreSQL.
    let cluster = pg_embedded::Cluster::start().expect("start PostgreSQL");
    let url = cluster.create_database("reversible").unwrap();
    let dir = f.path(v1_dir());
    let sqlx = |args: &[&str]| {
        let out = Command::new("sqlx")
            .args(args)
            .arg("--source")
            .arg(&dir)
            .args(["--database-url", &url])
            .output()
            .expect("sqlx-cli is installed (cargo xtask sync-migrations installs it)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "sqlx {args:?} failed:\n{text}");
        text
    };
    let exists = |sql: &str| -> bool {
        let out = cluster.psql("reversible", sql).expect("psql");
        out.trim() == "t"
    };
    let has_source = "SELECT EXISTS (SELECT FROM information_schema.columns WHERE table_name = 'audit_events' AND column_name = 'source')";
    let has_notes = "SELECT to_regclass('incident_notes') IS NOT NULL";
    sqlx(&["migrate", "run"]);
    assert!(exists(has_source) && exists(has_notes));
    let out = sqlx(&["migrate", "revert", "--target-version", "0"]);
    assert!(
        out.contains("23/revert") && out.contains("21/revert"),
        "{out}"
    );
    assert!(!exists(has_source) && !exists(has_notes), "{out}");
    let out = sqlx(&["migrate", "run"]);
    assert!(
        out.contains("21/migrate") && out.contains("23/migrate"),
        "{out}"
    );
    assert!(exists(has_source) && exists(has_notes));

    // The upgrade to the full profile: the bridge of the reversible replacement, then the
    // reversible version v1.0 leaves out.
    let (ok, out) = f.run(&[
        "upgrade",
        "--from",
        "v1.0",
        "--to",
        "full",
        "--database-url",
        &url,
    ]);
    assert!(ok, "{out}");
    assert!(
        exists("SELECT to_regclass('incident_embeddings') IS NOT NULL"),
        "{out}"
    );
    assert!(
        exists(
            "SELECT EXISTS (SELECT FROM information_schema.columns WHERE table_name = 'incident_notes' AND column_name = 'embedding')"
        ),
        "{out}"
    );
}
