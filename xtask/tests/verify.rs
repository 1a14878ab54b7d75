//! The analysis judged by PostgreSQL: each fixture history is applied on a real (embedded)
//! PostgreSQL by `cargo xtask migrations verify --exclude-each`, once as a whole and once
//! without each migration in turn, and the static verdict on every migration must equal the
//! database's. Each fixture holds one class of construct; the expected counts say that the
//! exclusions really break something (so an agreement is not two silences).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Writes `files` into a fresh folder and verifies it; returns the JSON report.
fn verify(files: &[(&str, &str)], extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, sql.strip_prefix('\n').unwrap_or(sql)).unwrap();
    }
    run(dir.path(), extra)
}

fn run(dir: &Path, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "migrations",
            "verify",
            "--exclude-each",
            "--format",
            "json",
            "--source",
        ])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout:\n{text}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Every disagreement of a report, readably.
fn disagreements(report: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for run in report["runs"].as_array().unwrap() {
        for f in run["files"].as_array().unwrap() {
            if f["verdict"] != "agree" && f["verdict"] != "static_only_deferred" {
                out.push(format!(
                    "without {}: {} {}: database {}, analysis {}",
                    run["excluded"], f["file"], f["verdict"], f["database"], f["findings"]
                ));
            }
        }
        if run["first_failure_named"] == false {
            out.push(format!(
                "without {}: first failure {} not named",
                run["excluded"], run["first_failure"]
            ));
        }
    }
    out
}

/// Asserts full agreement and that `breaking` exclusions break something.
fn agrees(report: &Value, breaking: u64) {
    let d = disagreements(report);
    assert!(d.is_empty(), "disagreements:\n{}", d.join("\n"));
    assert_eq!(
        report["summary"]["breaking"], breaking,
        "{:#}",
        report["summary"]
    );
    assert_eq!(report["summary"]["first_failure_named"], breaking);
}

/// The findings of one run (by excluded file, "" = nothing excluded) on one file.
fn findings<'a>(report: &'a Value, excluded: &str, file: &str) -> Vec<&'a Value> {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["excluded"]
                .as_array()
                .unwrap()
                .first()
                .map_or(excluded.is_empty(), |e| e == excluded)
        })
        .flat_map(|r| r["files"].as_array().unwrap())
        .filter(|f| f["file"] == file)
        .flat_map(|f| f["findings"].as_array().unwrap())
        .collect()
}

#[test]
fn drops_refused_while_dependents_exist() {
    let r = verify(
        &[
            (
                "1_accounts.sql",
                "CREATE TABLE accounts (id int PRIMARY KEY, email text, score int);\n",
            ),
            (
                "2_view.sql",
                "CREATE VIEW active_accounts AS SELECT id, email FROM accounts;\n",
            ),
            ("3_drop_view.sql", "DROP VIEW active_accounts;\n"),
            (
                "4_trigger.sql",
                "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\n\
                 CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION touch();\n",
            ),
            (
                "5_drop_trigger.sql",
                "DROP TRIGGER accounts_touch ON accounts;\n",
            ),
            ("6_drop_function.sql", "DROP FUNCTION touch();\n"),
            (
                "7_expression_index.sql",
                "CREATE FUNCTION norm(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT lower(t) $$;\nCREATE INDEX accounts_norm ON accounts (norm(email));\n",
            ),
            ("8_drop_index.sql", "DROP INDEX accounts_norm;\n"),
            ("9_drop_norm.sql", "DROP FUNCTION norm(text);\n"),
            (
                "10_drop_email.sql",
                "ALTER TABLE accounts DROP COLUMN email;\n",
            ),
        ],
        &[],
    );
    // Leaving out 3, 5 or 8 keeps a dependent alive; leaving out 1, 2, 4 or 7 breaks what uses
    // what it creates (2 only through 3, which then drops nothing: PostgreSQL refuses it).
    agrees(&r, 7);
    let f = findings(&r, "3_drop_view.sql", "10_drop_email.sql");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot drop column accounts.email: view active_accounts (created by 2_view.sql) depends on it"),
        "{f:?}"
    );
}

#[test]
fn objects_that_already_exist_because_a_drop_or_rename_was_left_out() {
    let r = verify(
        &[
            (
                "1_events.sql",
                "CREATE TABLE events (id int);\nCREATE INDEX events_id ON events (id);\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';\n",
            ),
            ("2_drop.sql", "DROP TABLE events;\nDROP FUNCTION f();\n"),
            (
                "3_again.sql",
                "CREATE TABLE events (id bigint, at timestamptz);\nCREATE INDEX events_id ON events (id);\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2';\n",
            ),
            ("4_rename.sql", "ALTER TABLE events RENAME TO old_events;\n"),
            ("5_new.sql", "CREATE TABLE events (id uuid);\n"),
        ],
        &[],
    );
    agrees(&r, 4);
    let f = findings(&r, "2_drop.sql", "3_again.sql");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains("table events already exists (created by 1_events.sql)"),
        "{f:?}"
    );
}

#[test]
fn a_table_renamed_earlier_in_the_same_file() {
    let r = verify(
        &[
            ("1_people.sql", "CREATE TABLE people (id int, name text);\n"),
            (
                "2_rename_and_copy.sql",
                "ALTER TABLE people RENAME TO persons;\nALTER TABLE persons RENAME COLUMN name TO full_name;\n\
                 CREATE TABLE persons_archive (id int, full_name text);\n\
                 INSERT INTO persons_archive (id, full_name) SELECT id, full_name FROM persons;\n",
            ),
            ("3_use.sql", "SELECT full_name FROM persons;\n"),
        ],
        &[],
    );
    agrees(&r, 2);
}

#[test]
fn indexes_behind_constraints_and_constraints_using_an_index() {
    let r = verify(
        &[
            (
                "1_t.sql",
                "CREATE TABLE t (id int PRIMARY KEY, code text UNIQUE, n int);\n",
            ),
            (
                "2_rename_index.sql",
                "ALTER INDEX t_pkey RENAME TO t_primary;\n",
            ),
            (
                "3_use_new_name.sql",
                "ALTER INDEX t_primary SET (fillfactor = 90);\nALTER TABLE t RENAME CONSTRAINT t_primary TO t_key_id;\n",
            ),
            (
                "4_drop_index_behind.sql",
                "DO $$ BEGIN DROP INDEX t_code_key; EXCEPTION WHEN dependent_objects_still_exist THEN NULL; END $$;\n",
            ),
            (
                "5_unique_index.sql",
                "CREATE UNIQUE INDEX t_n_idx ON t (n);\n",
            ),
            (
                "6_using_index.sql",
                "ALTER TABLE t ADD CONSTRAINT t_n_unique UNIQUE USING INDEX t_n_idx;\n",
            ),
            (
                "7_drop_constraint.sql",
                "ALTER TABLE t DROP CONSTRAINT t_n_unique;\n",
            ),
        ],
        &[],
    );
    agrees(&r, 4);
}

#[test]
fn columns_inside_set_operations() {
    let r = verify(
        &[
            (
                "1_a.sql",
                "CREATE TABLE a (id int, label text);\nCREATE TABLE b (id int);\n",
            ),
            ("2_b_label.sql", "ALTER TABLE b ADD COLUMN label text;\n"),
            (
                "3_union.sql",
                "CREATE VIEW labels AS SELECT id, label FROM a UNION ALL SELECT id, label FROM b \
                 EXCEPT SELECT id, label FROM a WHERE label IS NULL;\n",
            ),
        ],
        &[],
    );
    agrees(&r, 2);
}

#[test]
fn functions_told_apart_by_their_arguments() {
    let r = verify(
        &[
            (
                "1_f.sql",
                "CREATE FUNCTION score(n int) RETURNS int LANGUAGE sql AS 'SELECT n';\n",
            ),
            (
                "2_overload.sql",
                "CREATE FUNCTION score(n numeric, at timestamptz) RETURNS numeric LANGUAGE sql AS 'SELECT n';\n",
            ),
            (
                "3_drop_overload.sql",
                "DROP FUNCTION score(numeric, timestamp with time zone);\n",
            ),
            ("4_use_the_other.sql", "SELECT score(1);\n"),
        ],
        &[],
    );
    agrees(&r, 2);
}

#[test]
fn transaction_rules_are_postgres_own() {
    let r = verify(
        &[
            (
                "1_t.sql",
                "CREATE TABLE t (id int);\nCREATE MATERIALIZED VIEW m AS SELECT id FROM t;\nCREATE UNIQUE INDEX m_id ON m (id);\n",
            ),
            (
                "2_refresh.sql",
                "REFRESH MATERIALIZED VIEW CONCURRENTLY m;\nANALYZE t;\n",
            ),
            ("3_begin.sql", "BEGIN;\nALTER TABLE t ADD COLUMN n int;\n"),
            (
                "4_concurrently.sql",
                "-- no-transaction\nCREATE INDEX CONCURRENTLY t_n ON t (n);\n",
            ),
            ("5_vacuum_in_tx.sql", "VACUUM t;\n"),
        ],
        &[],
    );
    // 5 fails on its own (VACUUM in sqlx's transaction): both say so in every run.
    let d = disagreements(&r);
    assert!(d.is_empty(), "{}", d.join("\n"));
    let whole = findings(&r, "", "5_vacuum_in_tx.sql");
    assert_eq!(whole[0]["severity"], "error");
    let begin = findings(&r, "", "3_begin.sql");
    assert_eq!(
        begin[0]["severity"], "warning",
        "PostgreSQL only warns: {begin:?}"
    );
    assert!(findings(&r, "", "2_refresh.sql").is_empty());
}

#[test]
fn function_bodies_checked_when_postgres_checks_them() {
    let r = verify(
        &[
            ("1_t.sql", "CREATE TABLE t (id int, note text);\n"),
            // SQL bodies are checked when created; PL/pgSQL ones when they run.
            (
                "2_sql_fn.sql",
                "CREATE FUNCTION notes() RETURNS SETOF text LANGUAGE sql AS $$ SELECT note FROM t $$;\n",
            ),
            (
                "3_plpgsql_fn.sql",
                "CREATE FUNCTION purge() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n    DELETE FROM t WHERE note IS NULL;\nEND\n$$;\n",
            ),
            ("4_call.sql", "SELECT purge();\n"),
            (
                "5_guarded.sql",
                "DO $$\nBEGIN\n    ALTER TABLE t ADD CONSTRAINT t_note CHECK (note <> '');\nEXCEPTION\n    WHEN duplicate_object THEN NULL;\nEND\n$$;\n",
            ),
        ],
        &[],
    );
    agrees(&r, 2);
    // Without t, PostgreSQL accepts the PL/pgSQL function; the analysis says it fails later.
    let body = findings(&r, "1_t.sql", "3_plpgsql_fn.sql");
    assert_eq!(body[0]["deferred"], true, "{body:?}");
}

#[test]
fn a_column_retyped_before_its_old_type_is_dropped() {
    let r = verify(
        &[
            (
                "1_type.sql",
                "CREATE TYPE mood AS ENUM ('ok', 'bad');\nCREATE TABLE t (m mood);\n",
            ),
            (
                "2_rename_type.sql",
                "ALTER TYPE mood RENAME TO mood_old;\nCREATE TYPE mood AS ENUM ('ok', 'bad', 'meh');\n",
            ),
            (
                "3_retype.sql",
                "ALTER TABLE t ALTER COLUMN m TYPE mood USING m::text::mood;\n",
            ),
            ("4_drop_old.sql", "DROP TYPE mood_old;\n"),
        ],
        &[],
    );
    agrees(&r, 3);
}

#[test]
fn partitions_go_with_their_parent_and_cascades_take_dependents() {
    let r = verify(
        &[
            (
                "1_parent.sql",
                "CREATE TABLE m (id int, at date) PARTITION BY RANGE (at);\nCREATE TABLE m_2026 PARTITION OF m FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');\n",
            ),
            (
                "2_view.sql",
                "CREATE VIEW recent AS SELECT id FROM m_2026;\n",
            ),
            ("3_drop_cascade.sql", "DROP TABLE m CASCADE;\n"),
            (
                "4_again.sql",
                "CREATE TABLE m_2026 (id int);\nCREATE VIEW recent AS SELECT id FROM m_2026;\n",
            ),
        ],
        &[],
    );
    agrees(&r, 2);
}

#[test]
fn layouts_are_applied_as_their_tools_apply_them() {
    // goose: the Down sections would break the history if they ran after the Up ones.
    let r = verify(
        &[
            (
                "00001_users.sql",
                "-- +goose Up\nCREATE TABLE users (id int);\n\n-- +goose Down\nDROP TABLE users;\n",
            ),
            (
                "00002_email.sql",
                "-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION e() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END; $$;\n-- +goose StatementEnd\nALTER TABLE users ADD COLUMN email text;\n\n-- +goose Down\nALTER TABLE users DROP COLUMN email;\nDROP FUNCTION e();\n",
            ),
            (
                "00003_index.sql",
                "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY users_email ON users (email);\nCREATE INDEX CONCURRENTLY users_id ON users (id);\n\n-- +goose Down\nDROP INDEX users_email;\n",
            ),
        ],
        &["--layout", "goose"],
    );
    agrees(&r, 2);
    // diesel: folders ordered by name as strings.
    let r = verify(
        &[
            ("2019-01-01-000000_a/up.sql", "CREATE TABLE a (id int);\n"),
            ("2019-01-01-000000_a/down.sql", "DROP TABLE a;\n"),
            (
                "2019-01-02-000000_b/up.sql",
                "ALTER TABLE a ADD COLUMN b int;\n",
            ),
            (
                "2019-01-02-000000_b/down.sql",
                "ALTER TABLE a DROP COLUMN b;\n",
            ),
        ],
        &[],
    );
    assert_eq!(r["layout"], "diesel");
    agrees(&r, 1);
    // Flyway: dotted versions, 1.9 before 1.10.
    let r = verify(
        &[
            ("V1.9__t.sql", "CREATE TABLE t (id int);\n"),
            ("V1.10__t_n.sql", "ALTER TABLE t ADD COLUMN n int;\n"),
            ("V1.10.1__index.sql", "CREATE INDEX t_n ON t (n);\n"),
        ],
        &[],
    );
    assert_eq!(r["layout"], "flyway");
    agrees(&r, 2);
}

#[test]
fn state_of_objects_not_only_their_existence() {
    let r = verify(
        &[
            (
                "1_status.sql",
                "CREATE TYPE status AS ENUM ('new', 'paid');\nCREATE TABLE orders (id int, s status DEFAULT 'new', total int);\n",
            ),
            ("2_label.sql", "ALTER TYPE status ADD VALUE 'sent';\n"),
            (
                "3_use_label.sql",
                "UPDATE orders SET s = 'sent' WHERE s = 'paid';\nSELECT 'sent'::status;\n",
            ),
            (
                "4_fn.sql",
                "CREATE FUNCTION cents(n int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN n * 100; END $$;\n",
            ),
            ("5_immutable.sql", "ALTER FUNCTION cents(int) IMMUTABLE;\n"),
            (
                "6_index.sql",
                "CREATE INDEX orders_cents ON orders (cents(total));\n",
            ),
            (
                "7_drop_fn.sql",
                "DROP INDEX orders_cents;\nDROP FUNCTION cents(int);\n",
            ),
            (
                "8_returns.sql",
                "CREATE FUNCTION label(n int) RETURNS text LANGUAGE sql AS $$ SELECT n::text $$;\n",
            ),
            ("9_drop_label.sql", "DROP FUNCTION label(int);\n"),
            (
                "10_returns_again.sql",
                "CREATE OR REPLACE FUNCTION label(n int) RETURNS bigint LANGUAGE sql AS $$ SELECT n::bigint $$;\n",
            ),
            ("11_view.sql", "CREATE VIEW ids AS SELECT id FROM orders;\n"),
            ("12_drop_view.sql", "DROP VIEW ids;\n"),
            (
                "13_retype.sql",
                "ALTER TABLE orders ALTER COLUMN id TYPE bigint;\n",
            ),
        ],
        &[],
    );
    agrees(&r, 9);
    let f = findings(&r, "2_label.sql", "3_use_label.sql");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("'sent' is not a label of enum type status"),
        "{f:?}"
    );
}

/// Runs `cargo xtask migrations <args>` and returns (success, stdout + stderr).
fn xtask(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("migrations")
        .args(args)
        .arg("--source")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, sql).unwrap();
    }
    dir
}

#[test]
fn golang_migrate_and_dbmate_are_applied_as_their_tools_apply_them() {
    // golang-migrate: each up file is one multi-statement query, no transaction of the tool's.
    let r = verify(
        &[
            (
                "000001_users.up.sql",
                "CREATE TABLE users (id int PRIMARY KEY);\n",
            ),
            ("000001_users.down.sql", "DROP TABLE users;\n"),
            (
                "000002_orders.up.sql",
                "CREATE TABLE orders (id int, user_id int REFERENCES users (id));\nCREATE INDEX orders_user ON orders (user_id);\n",
            ),
            ("000002_orders.down.sql", "DROP TABLE orders;\n"),
        ],
        &[],
    );
    assert_eq!(r["layout"], "golang-migrate");
    agrees(&r, 1);
    // dbmate: the up section only; `transaction:false` for CONCURRENTLY.
    let r = verify(
        &[
            (
                "20240101000000_users.sql",
                "-- migrate:up\nCREATE TABLE users (id int, email text);\n\n-- migrate:down\nDROP TABLE users;\n",
            ),
            (
                "20240102000000_email_index.sql",
                "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n\n-- migrate:down\nDROP INDEX users_email;\n",
            ),
        ],
        &[],
    );
    assert_eq!(r["layout"], "dbmate");
    agrees(&r, 1);
}

/// Down parts are never part of the forward walk; `--check-down` parses them (deps) and, with
/// verify, reverts the whole history on PostgreSQL and runs it again.
#[test]
fn down_parts_checked_on_request() {
    let broken = folder(&[
        (
            "00001_users.sql",
            "-- +goose Up\nCREATE TABLE users (id int);\n\n-- +goose Down\nDROP TABLE users;\n",
        ),
        (
            "00002_email.sql",
            "-- +goose Up\nALTER TABLE users ADD COLUMN email text;\n\n-- +goose Down\nALTER TABLE users DROP COLUMN email;\nDROP TABEL nothing;\n",
        ),
    ]);
    // The Down sections contradict the Up ones, and one does not parse: without
    // --check-down none of it is reported.
    let (ok, out) = xtask(&["deps"], broken.path());
    assert!(ok, "{out}");
    assert!(!out.contains("error:"), "{out}");
    let (ok, out) = xtask(&["deps", "--check-down"], broken.path());
    assert!(!ok, "{out}");
    assert!(
        out.contains("00002_email.sql:6: error: the down part does not parse"),
        "{out}"
    );
    let (ok, out) = xtask(&["verify", "--check-down"], broken.path());
    assert!(!ok, "{out}");
    assert!(out.contains("00002_email.sql"), "{out}");
    assert!(out.contains("1 refused"), "{out}");

    // A down part that does not undo its up: the up fails when run again.
    let leaky = folder(&[
        ("1_users.up.sql", "CREATE TABLE users (id int);\n"),
        ("1_users.down.sql", "DROP TABLE users;\n"),
        (
            "2_audit.up.sql",
            "CREATE TABLE audit (id int);\nCREATE INDEX audit_id ON audit (id);\n",
        ),
        ("2_audit.down.sql", "DROP INDEX audit_id;\n"),
    ]);
    let (ok, out) = xtask(
        &["verify", "--check-down", "--layout", "sqlx"],
        leaky.path(),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("2 applied in reverse order, 0 refused, 1 up part(s) refused when run again"),
        "{out}"
    );
    assert!(out.contains("relation \"audit\" already exists"), "{out}");

    // A sound reversible history goes down to zero and up again.
    let sound = folder(&[
        ("1_users.up.sql", "CREATE TABLE users (id int);\n"),
        ("1_users.down.sql", "DROP TABLE users;\n"),
        ("2_audit.up.sql", "CREATE TABLE audit (id int);\n"),
        ("2_audit.down.sql", "DROP TABLE audit;\n"),
    ]);
    let (ok, out) = xtask(
        &["verify", "--check-down", "--layout", "sqlx"],
        sound.path(),
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("2 applied in reverse order, 0 refused, 0 up part"),
        "{out}"
    );
}

/// Bad input of each layout is refused with the file (and line) and what is wrong.
#[test]
fn bad_input_names_the_file_and_line() {
    // (layout, files, what the error must name)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        (
            "goose",
            &[(
                "00001_a.sql",
                "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Donw\n",
            )],
            "00001_a.sql:3",
        ),
        (
            "goose",
            &[("00001_a.sql", "CREATE TABLE a (id int);\n")],
            "00001_a.sql",
        ),
        (
            "dbmate",
            &[(
                "20240101_a.sql",
                "CREATE TABLE a (id int);\n-- migrate:down\n",
            )],
            "20240101_a.sql",
        ),
        (
            "diesel",
            &[("2024-01-01-000000_a/down.sql", "DROP TABLE a;\n")],
            "2024-01-01-000000_a",
        ),
        (
            "flyway",
            &[
                ("V1__a.sql", "CREATE TABLE a ();\n"),
                ("V1.0__b.sql", "CREATE TABLE b ();\n"),
            ],
            "V1",
        ),
        (
            "sqlx",
            &[
                ("1_a.sql", "CREATE TABLE a ();\n"),
                ("1_b.sql", "CREATE TABLE b ();\n"),
            ],
            "duplicate",
        ),
    ];
    for (layout, files, needle) in cases {
        let dir = folder(files);
        let (ok, out) = xtask(&["deps", "--layout", layout], dir.path());
        assert!(!ok, "{layout}: accepted:\n{out}");
        assert!(out.contains(needle), "{layout}: {needle:?} not in:\n{out}");
    }
    let dir = folder(&[("1_a.sql", "CREATE TABLE a ();\n")]);
    let (ok, out) = xtask(&["deps", "--layout", "liquibase"], dir.path());
    assert!(!ok);
    assert!(
        out.contains("liquibase") && out.contains("goose") && out.contains("flyway"),
        "{out}"
    );
    // Two layouts in one folder.
    let dir = folder(&[
        ("1_a.sql", "CREATE TABLE a ();\n"),
        ("2019-01-01-000000_b/up.sql", "CREATE TABLE b ();\n"),
    ]);
    let (ok, out) = xtask(&["deps"], dir.path());
    assert!(!ok, "{out}");
    assert!(
        out.contains("1_a.sql") && out.contains("2019-01-01-000000_b"),
        "{out}"
    );
}

/// A name that is a view where the history expects a table: `ALTER TABLE … ADD COLUMN` and a
/// foreign key to it are refused ("cannot be performed on relation", "is not a table").
#[test]
fn a_view_where_a_table_is_expected() {
    let r = verify(
        &[
            ("1_meta_view.sql", "CREATE VIEW meta AS SELECT 1 AS id;\n"),
            (
                "2_meta_table.sql",
                "DROP VIEW meta;\nCREATE TABLE meta (id int PRIMARY KEY);\n",
            ),
            (
                "3_meta_note.sql",
                "ALTER TABLE meta ADD COLUMN note text;\n",
            ),
            (
                "4_refs.sql",
                "CREATE TABLE refs (meta_id int REFERENCES meta (id));\n",
            ),
            (
                "5_view_default.sql",
                "CREATE VIEW meta_ids AS SELECT id FROM meta;\nALTER TABLE meta_ids ALTER COLUMN id SET DEFAULT 0;\n",
            ),
        ],
        &[],
    );
    agrees(&r, 2);
    let without_2 = findings(&r, "2_meta_table.sql", "4_refs.sql");
    assert!(
        without_2.iter().any(|f| f["message"]
            .as_str()
            .unwrap()
            .contains("is a view here, not a table")),
        "{without_2:?}"
    );
}

/// A foreign key needs a primary key, or a unique constraint or index on exactly the
/// referenced columns, which the excluded migration may be the one to add.
#[test]
fn foreign_keys_need_the_referenced_key() {
    let r = verify(
        &[
            (
                "1_builds.sql",
                "CREATE TABLE builds (id bigint NOT NULL, crate text NOT NULL, version text NOT NULL);\n",
            ),
            (
                "2_builds_pkey.sql",
                "ALTER TABLE builds ADD PRIMARY KEY (id);\n",
            ),
            (
                "3_builds_unique.sql",
                "CREATE UNIQUE INDEX builds_crate_version ON builds (crate, version);\n",
            ),
            (
                "4_logs.sql",
                "CREATE TABLE logs (build_id bigint REFERENCES builds, line text);\n",
            ),
            (
                "5_artifacts.sql",
                "CREATE TABLE artifacts (crate text, version text, FOREIGN KEY (version, crate) REFERENCES builds (version, crate));\n",
            ),
            (
                "6_self.sql",
                "CREATE TABLE nodes (parent bigint REFERENCES nodes (id), id bigint PRIMARY KEY);\n",
            ),
        ],
        &[],
    );
    agrees(&r, 3);
    let without_pkey = findings(&r, "2_builds_pkey.sql", "4_logs.sql");
    assert!(
        without_pkey.iter().any(|f| f["message"]
            .as_str()
            .unwrap()
            .contains("has no primary key")),
        "{without_pkey:?}"
    );
}

/// Column state, not existence: a default that cannot be cast to the new type blocks `ALTER
/// COLUMN … TYPE` until it is dropped (in the same statement, PostgreSQL drops it first).
#[test]
fn a_default_blocks_a_retype() {
    let r = verify(
        &[
            (
                "1_tokens.sql",
                "CREATE TABLE tokens (id int, token text NOT NULL DEFAULT 'none', active int DEFAULT 1, note varchar(20) DEFAULT 'n');\n",
            ),
            (
                "2_drop_default.sql",
                "ALTER TABLE tokens ALTER COLUMN token DROP DEFAULT;\n",
            ),
            (
                "3_bytea.sql",
                "ALTER TABLE tokens ALTER COLUMN token TYPE bytea USING decode(token, 'hex');\n",
            ),
            (
                "4_bool.sql",
                "ALTER TABLE tokens ALTER COLUMN active SET DEFAULT NULL, ALTER COLUMN active DROP DEFAULT, ALTER COLUMN active TYPE boolean USING active <> 0, ALTER COLUMN active SET DEFAULT true;\n",
            ),
            (
                "5_text.sql",
                "ALTER TABLE tokens ALTER COLUMN note TYPE text;\n",
            ),
        ],
        &[],
    );
    agrees(&r, 2);
    let without = findings(&r, "2_drop_default.sql", "3_bytea.sql");
    assert!(
        without.iter().any(|f| f["message"]
            .as_str()
            .unwrap()
            .contains("cannot be cast automatically to type bytea")),
        "{without:?}"
    );
}
