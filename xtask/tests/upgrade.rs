//! `cargo xtask upgrade --from v1.0 --to full` and `cargo xtask schema-diff` end to end, on a
//! throwaway local PostgreSQL with pgvector: a v1.0 database plus the upgrade is exactly a fresh
//! full install, keeps its rows, and everything that is not a clean v1.0 database is refused
//! and left as it was.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pg_schema::applied::{self, AppliedMigration};
use pg_schema::{Fingerprint, profile_guard};
use pg_server::{Migrations, Server};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{Connection, Executor, PgConnection};

const FULL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
/// The v1.0 profile's directory (its name comes from `migrations/profiles.toml`).
static V1: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{}/../{}",
        env!("CARGO_MANIFEST_DIR"),
        pg_schema::profiles::dir("v1.0").expect("profile v1.0")
    )
});
fn v1_dir() -> &'static str {
    pg_schema::profiles::dir("v1.0").expect("profile v1.0")
}
const BRIDGE_010: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../migrations/v1.0-bridges/010_audit_write_api_phase1.sql"
);
/// The versions the v1.0 profile leaves out, applied by the upgrade.
const EXCLUDED: [i64; 5] = [5, 7, 8, 9, 16];

/// A local server with two templates: `tpl_v1` (migrated with the v1.0 profile) and
/// `tpl_full`.
struct Env {
    server: Server,
}

impl Env {
    async fn new() -> Self {
        let server = Server::local().await.expect("start PostgreSQL");
        assert!(
            server.has_extension("vector").await.unwrap(),
            "pgvector is not installed for the local PostgreSQL: run `cargo xtask tools install pgvector`"
        );
        for (name, profile, dir) in [("tpl_v1", "v1.0", V1.as_str()), ("tpl_full", "full", FULL)] {
            let migrations = Migrations::read(profile, Path::new(dir))
                .await
                .expect("read migrations");
            server
                .migrated_database(name, &migrations)
                .await
                .expect("migrate");
        }
        Self { server }
    }

    /// A copy of a template.
    async fn copy(&self, name: &str, template: &str) -> String {
        self.server
            .execute(format!(
                "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
            ))
            .await
            .expect("copy template");
        self.server.url(name)
    }

    async fn v1(&self, name: &str) -> String {
        self.copy(name, "tpl_v1").await
    }
}

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect")
}

async fn migrator(dir: &str) -> Migrator {
    Migrator::new(Path::new(dir))
        .await
        .expect("read migrations")
}

async fn exec(url: &str, sql: &str) {
    let mut conn = connect(url).await;
    conn.execute(sqlx::AssertSqlSafe(sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{e}\nin:\n{sql}"));
    conn.close().await.unwrap();
}

async fn query_text(url: &str, sql: &str) -> String {
    let mut conn = connect(url).await;
    let text: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{e}\nin:\n{sql}"));
    conn.close().await.unwrap();
    text.unwrap_or_default()
}

/// The schema and the migration bookkeeping: what must not change when the upgrade refuses.
async fn snapshot(url: &str) -> (Fingerprint, Option<Vec<AppliedMigration>>) {
    let mut conn = connect(url).await;
    let fp = Fingerprint::read(&mut conn).await.unwrap();
    let rows = applied::read(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    (fp, rows)
}

fn xtask(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env_remove("DATABASE_URL")
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

fn upgrade(url: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec![
        "upgrade",
        "--from",
        "v1.0",
        "--to",
        "full",
        "--database-url",
        url,
    ];
    args.extend_from_slice(extra);
    xtask(&args)
}

/// Runs the upgrade, expects a refusal containing `needle`, and checks nothing changed.
async fn refused(url: &str, needle: &str) -> String {
    let before = snapshot(url).await;
    let (ok, out) = upgrade(url, &[]);
    assert!(
        !ok,
        "expected a refusal containing {needle:?}, got success:\n{out}"
    );
    assert!(out.contains(needle), "expected {needle:?} in:\n{out}");
    assert!(out.contains("Nothing was changed."), "{out}");
    let after = snapshot(url).await;
    assert!(
        after == before,
        "the database changed although the upgrade was refused:\n{}",
        before.0.diff(&after.0).render("before", "after")
    );
    out
}

const SAMPLE_ROWS: &str = r#"
INSERT INTO audit_events (event_type, event_timestamp, event_date, event_category, event_action,
                          event_outcome, correlation_id, event_data, namespace)
VALUES ('gateway.signal.received', now(), (now() AT TIME ZONE 'UTC')::date, 'gateway', 'received',
        'success', 'rr-1', '{"signal": "HighMemory"}', 'prod'),
       ('workflow.selected', '2031-05-01T10:00:00Z', '2031-05-01', 'workflow', 'selected',
        'pending', 'rr-1', '{"workflow": "restart-pod"}', NULL);
INSERT INTO notification_audit (remediation_id, notification_id, recipient, channel,
                                message_summary, status, sent_at, signal_fingerprint)
VALUES ('rr-1', 'n-1', 'oncall@example.org', 'email', 'Pod restarted', 'sent', now(), 'fp-123'),
       ('rr-1', 'n-2', '#ops', 'slack', 'Escalated', 'escalated', now(), NULL);
INSERT INTO remediation_workflow_catalog (workflow_name, version, name, description, content,
                                          content_hash, labels, is_latest_version, parameters,
                                          container_image, custom_labels)
VALUES ('restart-pod', '1.0.0', 'Restart pod', 'Restarts a crash-looping pod', 'steps: []',
        repeat('a', 64), '{"signal_type": "OOMKilled", "severity": "critical"}', true,
        '{"namespace": "string"}', 'registry.example/restart:1', '{"team": "sre"}');
"#;

/// The sample rows, without the embedding columns the upgrade adds.
const SAMPLE_QUERY: &str = r#"
SELECT jsonb_build_object(
    'audit_events', (SELECT jsonb_agg(to_jsonb(e) ORDER BY e.event_date) FROM audit_events e),
    'audit_partitions', (SELECT jsonb_agg(tableoid::regclass::text ORDER BY event_date) FROM audit_events),
    'notification_audit', (SELECT jsonb_agg(to_jsonb(n) - 'embedding' ORDER BY n.notification_id) FROM notification_audit n),
    'remediation_workflow_catalog', (SELECT jsonb_agg(to_jsonb(w) - 'embedding' ORDER BY w.workflow_name) FROM remediation_workflow_catalog w)
)::text"#;

#[tokio::test]
async fn upgrade_makes_a_v1_database_a_full_one_and_keeps_its_rows() {
    let env = Env::new().await;
    let url = env.v1("upgraded").await;
    let full_url = env.copy("fresh_full", "tpl_full").await;
    exec(&url, SAMPLE_ROWS).await;
    let rows_before = query_text(&url, SAMPLE_QUERY).await;
    assert!(
        rows_before.contains("audit_events_default"),
        "{rows_before}"
    );

    let (ok, out) = upgrade(&url, &[]);
    assert!(ok, "{out}");
    println!("{out}");
    for step in [
        "bridged 010_audit_write_api_phase1.sql",
        "bridged 015_create_workflow_catalog_table.sql",
        "applied 005_vector_schema.sql",
        "applied 016_update_embedding_dimensions.sql",
    ] {
        assert!(out.contains(step), "{step:?} missing from:\n{out}");
    }
    assert!(
        out.contains("upgraded database `upgraded` from v1.0 to full"),
        "{out}"
    );

    // The schema is exactly a fresh full install's.
    let (fp, rows) = snapshot(&url).await;
    let (full_fp, full_rows) = snapshot(&full_url).await;
    let diff = fp.diff(&full_fp);
    assert!(
        diff.is_empty(),
        "v1.0 + upgrade differs from a fresh full install:\n{}",
        diff.render("v1.0 + upgrade", "fresh full")
    );
    // And so is the bookkeeping: the versions, descriptions and checksums sqlx checks.
    let key = |rows: Option<Vec<AppliedMigration>>| -> Vec<(i64, String, bool, Vec<u8>)> {
        rows.unwrap()
            .into_iter()
            .map(|r| (r.version, r.description, r.success, r.checksum))
            .collect()
    };
    let upgraded_rows = rows.clone().unwrap();
    assert_eq!(key(rows), key(full_rows));
    for r in upgraded_rows
        .iter()
        .filter(|r| EXCLUDED.contains(&r.version))
    {
        assert!(
            r.execution_time > 0,
            "version {} recorded without its time: {r:?}",
            r.version
        );
    }

    // The rows are still there, in the same partitions, with no embedding yet.
    assert_eq!(query_text(&url, SAMPLE_QUERY).await, rows_before);
    assert_eq!(
        query_text(
            &url,
            "SELECT (SELECT count(*) FROM notification_audit WHERE embedding IS NULL) || '/' ||
                    (SELECT count(*) FROM remediation_workflow_catalog WHERE embedding IS NULL)"
        )
        .await,
        "2/1"
    );

    // The full profile's service can run on it now: its guard and sqlx agree, nothing is pending.
    let full = migrator(FULL).await;
    let mut conn = connect(&url).await;
    assert_eq!(
        profile_guard::check(&mut conn, "full", &full)
            .await
            .unwrap(),
        profile_guard::Compatible::Migrated {
            applied: 21,
            pending: vec![]
        }
    );
    full.run(&mut conn)
        .await
        .expect("the full migrator accepts the upgraded database");
    conn.close().await.unwrap();

    // A second upgrade is a no-op.
    let before = snapshot(&url).await;
    let (ok, out) = upgrade(&url, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "nothing to do: database `upgraded` already has every migration of profile full"
        ),
        "{out}"
    );
    assert!(snapshot(&url).await == before);

    // schema-diff agrees.
    let (ok, out) = xtask(&["schema-diff", &url, &full_url]);
    assert!(ok, "{out}");
    assert!(out.starts_with("identical: "), "{out}");
}

#[tokio::test]
async fn dry_run_prints_the_plan_and_changes_nothing() {
    let env = Env::new().await;
    let url = env.v1("dry").await;
    exec(&url, SAMPLE_ROWS).await;
    let before = snapshot(&url).await;
    let rows_before = query_text(&url, SAMPLE_QUERY).await;
    let (ok, out) = upgrade(&url, &["--dry-run"]);
    println!("{out}");
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "database `dry`: a clean v1.0 database (16 migrations, checksums match {}/)",
            v1_dir()
        )),
        "{out}"
    );
    let steps: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim_start().split_once(". ").map(|(_, rest)| rest))
        .filter(|rest| rest.starts_with("bridge ") || rest.starts_with("apply "))
        .map(|rest| rest.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "010_audit_write_api_phase1.sql",
            "015_create_workflow_catalog_table.sql",
            "005_vector_schema.sql",
            "007_add_context_column.sql",
            "008_context_api_compatibility.sql",
            "009_update_vector_dimensions.sql",
            "016_update_embedding_dimensions.sql",
        ],
        "{out}"
    );
    assert!(
        out.contains("run migrations/v1.0-bridges/010_audit_write_api_phase1.sql; version 10 records the checksum of migrations/010_audit_write_api_phase1.sql"),
        "{out}"
    );
    assert!(
        out.trim_end().ends_with(
            "dry run: nothing was changed; run the same command without --dry-run to upgrade"
        ),
        "{out}"
    );
    assert!(
        snapshot(&url).await == before,
        "the dry run changed the database"
    );
    assert_eq!(query_text(&url, SAMPLE_QUERY).await, rows_before);
    assert_eq!(
        query_text(
            &url,
            "SELECT count(*)::text FROM pg_extension WHERE extname = 'vector'"
        )
        .await,
        "0"
    );
}

#[tokio::test]
async fn refuses_what_is_not_a_clean_v1_database_and_changes_nothing() {
    let env = Env::new().await;

    // Never migrated with sqlx.
    let url = env.server.create_database("empty").await.unwrap();
    refused(
        &url,
        "database `empty`: no _sqlx_migrations table: the database was never migrated with sqlx",
    )
    .await;

    // A migration that failed.
    let url = env.v1("failed").await;
    exec(
        &url,
        "UPDATE _sqlx_migrations SET success = false WHERE version = 20",
    )
    .await;
    refused(&url, "records failed migration 020 (success = false)").await;

    // Applied from an edited file.
    let url = env.v1("edited").await;
    exec(
        &url,
        "UPDATE _sqlx_migrations SET checksum = sha384('edited') WHERE version = 13",
    )
    .await;
    refused(
        &url,
        &format!("checksum mismatch: version 13 (checksum 0e9cb29b9d8b…) matches neither {}/013_create_audit_events_table.sql nor migrations/013_create_audit_events_table.sql", v1_dir()),
    )
    .await;

    // A version neither profile has.
    let url = env.v1("unknown").await;
    exec(
        &url,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (2001, 'hotfix', true, sha384('hotfix'), 1)",
    )
    .await;
    refused(
        &url,
        &format!(
            "records version 2001 that neither profile v1.0 ({}/) nor full (migrations/) has",
            v1_dir()
        ),
    )
    .await;

    // Not fully migrated to v1.0.
    let url = env.server.create_database("behind").await.unwrap();
    let mut conn = connect(&url).await;
    migrator(&V1).await.run_to(15, &mut conn).await.unwrap();
    conn.close().await.unwrap();
    refused(
        &url,
        "not fully migrated to profile v1.0: versions 017, 018, 019, 020, 1000 are not applied",
    )
    .await;

    // Half an upgrade done by hand: the bridge of 010 and its checksum, not 015's.
    let url = env.v1("half_bridged").await;
    let bridge = std::fs::read_to_string(BRIDGE_010).unwrap();
    let canonical_010 = migrator(FULL)
        .await
        .iter()
        .find(|m| m.version == 10)
        .unwrap()
        .checksum
        .to_vec();
    let mut conn = connect(&url).await;
    conn.execute(sqlx::AssertSqlSafe(bridge)).await.unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 10")
        .bind(canonical_010)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    refused(
        &url,
        "partial upgrade state: version 010 is already profile full's migration, while 015 still is profile v1.0's, and 005, 007, 008, 009, 016 are not applied",
    )
    .await;

    // The full profile's migrations run on a v1.0 database without the guard: sqlx applies the
    // left-out versions below 010 and then stops at 010's checksum.
    let url = env.v1("sqlx_ran_full").await;
    let mut conn = connect(&url).await;
    let err = migrator(FULL).await.run(&mut conn).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("migration 10 was previously applied but has been modified"),
        "{err}"
    );
    conn.close().await.unwrap();
    refused(
        &url,
        "partial upgrade state: versions 005, 007, 008, 009 are already profile full's migrations, while 010, 015 still are profile v1.0's, and 016 is not applied",
    )
    .await;

    // Already full: the idempotent case, not a refusal.
    let url = env.copy("already_full", "tpl_full").await;
    let before = snapshot(&url).await;
    let (ok, out) = upgrade(&url, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("nothing to do: database `already_full` already has every migration of profile full (migrations/)"), "{out}");
    assert!(snapshot(&url).await == before);

    // No database given.
    let (ok, out) = xtask(&["upgrade", "--from", "v1.0", "--to", "full"]);
    assert!(!ok);
    assert!(
        out.contains("no database to upgrade: pass --database-url URL (or set DATABASE_URL)"),
        "{out}"
    );
    // Upgrades go from a derived profile to the canonical one.
    let url = env.v1("backwards").await;
    let (ok, out) = xtask(&[
        "upgrade",
        "--from",
        "full",
        "--to",
        "v1.0",
        "--database-url",
        &url,
    ]);
    assert!(!ok);
    assert!(
        out.contains("--to v1.0: upgrades go to the canonical profile (full)"),
        "{out}"
    );
    let (ok, out) = xtask(&[
        "upgrade",
        "--from",
        "v2",
        "--to",
        "full",
        "--database-url",
        &url,
    ]);
    assert!(!ok);
    assert!(
        out.contains("--from v2: no such profile in migrations/profiles.toml (known: full, v1.0)"),
        "{out}"
    );
}

#[tokio::test]
async fn waits_for_the_migration_lock_and_rolls_back_on_failure() {
    let env = Env::new().await;

    // A migration holds sqlx's lock (as a service's `--migrate` would): the upgrade waits.
    let url = env.v1("locked").await;
    let mut holder = connect(&url).await;
    holder.lock().await.unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "upgrade",
            "--from",
            "v1.0",
            "--to",
            "full",
            "-q",
            "--database-url",
            &url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut observer = connect(&url).await;
    let started = Instant::now();
    loop {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                            WHERE datname = current_database()
                              AND wait_event_type = 'Lock' AND wait_event = 'advisory')",
        )
        .fetch_one(&mut observer)
        .await
        .unwrap();
        if waiting {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the upgrade never waited for the migration lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let untouched: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut observer)
        .await
        .unwrap();
    assert_eq!(
        untouched, 16,
        "the upgrade changed the database before it had the lock"
    );
    holder.unlock().await.unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with("upgraded database `locked`"),
        "-q prints only the result: {text}"
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut observer)
        .await
        .unwrap();
    assert_eq!(count, 21);

    // A step fails (an object in the way of 005): everything is rolled back, the lock released.
    let url = env.v1("in_the_way").await;
    exec(&url, "CREATE TABLE action_patterns (id integer)").await;
    let before = snapshot(&url).await;
    let (ok, out) = upgrade(&url, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("migrations/005_vector_schema.sql: while executing migration 5: error returned from database: relation \"action_patterns\" already exists"),
        "{out}"
    );
    assert!(
        out.contains("The upgrade was rolled back. Nothing was changed."),
        "{out}"
    );
    let after = snapshot(&url).await;
    assert!(
        after == before,
        "a failed upgrade left changes:\n{}",
        before.0.diff(&after.0).render("before", "after")
    );
    let mut conn = connect(&url).await;
    tokio::time::timeout(Duration::from_secs(30), conn.lock())
        .await
        .expect("the migration lock was not released")
        .unwrap();
    conn.unlock().await.unwrap();
}

#[tokio::test]
async fn schema_diff_reports_what_v1_lacks_against_full() {
    let (ok, out) = xtask(&["schema-diff", "v1.0", "full"]);
    println!("{out}");
    assert!(!ok, "v1.0 and full cannot have the same schema:\n{out}");
    for line in [
        &format!("A = v1.0 (a fresh database migrated with {}/)", v1_dir()),
        "B = full (a fresh database migrated with migrations/)",
        "  vector ",
        "public.notification_audit.embedding",
        "public.remediation_workflow_catalog.embedding",
        "public.action_histories.embedding",
        "public.idx_workflow_catalog_embedding",
        "public.action_patterns",
        "error: the schemas differ: 28 differences: 0 only in A, 28 only in B, 0 differ",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    assert!(
        out.lines().any(
            |l| l.contains("public.remediation_workflow_catalog.embedding")
                && l.ends_with("vector(768)")
        ),
        "{out}"
    );
    let (ok, out) = xtask(&["schema-diff", "v1.0", "v1.0"]);
    assert!(ok, "{out}");
    assert!(
        out.starts_with(&format!(
            "identical: v1.0 (a fresh database migrated with {}/) and v1.0",
            v1_dir()
        )),
        "{out}"
    );
    let (ok, out) = xtask(&["schema-diff", "v1.0", "v3"]);
    assert!(!ok);
    assert!(out.contains("\"v3\" is neither a PostgreSQL URL"), "{out}");
}
