//! test-db end to end, on the provider `DATASTORAGE_TEST_DB` selects (`local`, `docker`, `url`
//! or `auto`): the profiles' schemas, isolation of the clones, and their removal.

use std::process::Command;
use std::time::{Duration, Instant};

use pg_schema::{Fingerprint, Kind};
use sqlx::{AssertSqlSafe, PgConnection};
use test_db::Profile;

async fn database(profile: Profile) -> test_db::TestDatabase {
    test_db::database(profile)
        .await
        .unwrap_or_else(|e| panic!("test database ({}): {e}", profile.name()))
}

async fn connect(db: &test_db::TestDatabase) -> PgConnection {
    db.connect().await.expect("connect to the test database")
}

async fn database_exists(conn: &mut PgConnection, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(conn)
        .await
        .unwrap()
}

async fn applied_versions(conn: &mut PgConnection) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(conn)
        .await
        .unwrap()
}

/// `table.column` → `format_type` of every column of type `vector` in the public schema.
async fn vector_columns(conn: &mut PgConnection) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod) \
         FROM pg_attribute a \
         JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_type t ON t.oid = a.atttypid \
         WHERE t.typname = 'vector' AND n.nspname = 'public' \
           AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
           AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn full_profile_applies_every_migration_with_pgvector() {
    let db = database(Profile::Full).await;
    let mut conn = connect(&db).await;
    let migrator = Profile::Full.migrator().await.unwrap();
    let expected: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    assert_eq!(expected.len(), 21, "001…020 and 1000");
    assert_eq!(applied_versions(&mut conn).await, expected);
    let vector: Option<String> =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    assert!(vector.is_some(), "the full profile installs pgvector");
}

#[tokio::test]
async fn full_profile_vector_columns_have_the_migrated_dimensions() {
    let db = database(Profile::Full).await;
    let mut conn = connect(&db).await;
    let columns = vector_columns(&mut conn).await;
    let expected = [
        // 008 adds it at 384 dimensions.
        ("action_histories.embedding", "vector(384)"),
        // 005 creates it at 384, 009 moves it to 768.
        ("action_patterns.embedding", "vector(768)"),
        // 010 creates it at 384.
        ("notification_audit.embedding", "vector(384)"),
        // 015 creates it at 384, 016 moves it to 768.
        ("remediation_workflow_catalog.embedding", "vector(768)"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(c, t)| ((*c).to_owned(), (*t).to_owned()))
        .collect();
    assert_eq!(columns, expected);
}

#[tokio::test]
async fn nearest_neighbour_search_on_the_workflow_catalog_uses_the_hnsw_index() {
    let db = database(Profile::Full).await;
    let mut conn = connect(&db).await;
    // 2000 workflows with random 768-dimension embedding (the correlated `WHERE i > 0` makes
    // the subquery run once per row).
    sqlx::query(
        "INSERT INTO remediation_workflow_catalog \
             (workflow_name, version, name, description, content, content_hash, labels, embedding) \
         SELECT 'wf-' || i, '1.0.0', 'Workflow ' || i, 'restart the pod', 'steps: []', \
                repeat('0', 64), '{\"signal_type\": \"OOMKilled\"}', \
                (SELECT array_agg(random()::real) FROM generate_series(1, 768) WHERE i > 0)::vector \
         FROM generate_series(1, 2000) AS i",
    )
    .execute(&mut conn)
    .await
    .expect("insert workflows with embeddings");
    sqlx::query("ANALYZE remediation_workflow_catalog")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();

    let probe: String = sqlx::query_scalar(
        "SELECT embedding::text FROM remediation_workflow_catalog WHERE workflow_name = 'wf-1234'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let query = format!(
        "SELECT workflow_name FROM remediation_workflow_catalog \
         ORDER BY embedding <=> '{probe}'::vector LIMIT 5"
    );
    let plan: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN {query}")))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let plan = plan.join("\n");
    assert!(
        plan.contains("Index Scan using idx_workflow_catalog_embedding"),
        "expected the HNSW index in the plan:\n{plan}"
    );
    let nearest: Vec<String> = sqlx::query_scalar(AssertSqlSafe(query))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(nearest.len(), 5);
    assert_eq!(
        nearest[0], "wf-1234",
        "a vector's nearest neighbour is itself"
    );
}

#[tokio::test]
async fn v1_clone_has_the_schema_without_pgvector() {
    let db = database(Profile::V1_0).await;
    let mut conn = connect(&db).await;
    let migrator = Profile::V1_0.migrator().await.unwrap();
    let expected: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    assert_eq!(applied_versions(&mut conn).await, expected);

    let vector: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(vector, 0, "v1.0 must not install pgvector");
    assert!(vector_columns(&mut conn).await.is_empty());
    for table in [
        "audit_events",
        "notification_audit",
        "remediation_workflow_catalog",
    ] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(exists, "{table} exists in v1.0");
    }

    // The same schema as migrating a fresh database directly: every table, column, constraint,
    // index, function and trigger, as pg_catalog describes them.
    let fresh = test_db::fresh_database(Profile::V1_0).await.unwrap();
    let mut fresh_conn = connect(&fresh).await;
    assert_eq!(applied_versions(&mut fresh_conn).await, expected);
    let clone_schema = Fingerprint::read(&mut conn).await.unwrap();
    let fresh_schema = Fingerprint::read(&mut fresh_conn).await.unwrap();
    assert!(
        clone_schema.names(Kind::Table).count() >= 3,
        "the fingerprint reads the tables"
    );
    let diff = clone_schema.diff(&fresh_schema);
    assert!(
        diff.is_empty(),
        "the clone's schema differs from a fresh migration:\n{}",
        diff.render("clone", "fresh")
    );
}

#[tokio::test]
async fn clones_are_isolated_from_each_other() {
    let a = database(Profile::V1_0).await;
    let b = database(Profile::V1_0).await;
    assert_ne!(a.name(), b.name());
    let mut ca = connect(&a).await;
    let mut cb = connect(&b).await;

    sqlx::query(
        "INSERT INTO remediation_workflow_catalog \
             (workflow_name, version, name, description, content, content_hash, labels) \
         VALUES ('only-in-a', '1.0.0', 'A', 'd', 'c', repeat('0', 64), '{}')",
    )
    .execute(&mut ca)
    .await
    .unwrap();
    sqlx::query("CREATE TABLE created_in_a (id int)")
        .execute(&mut ca)
        .await
        .unwrap();

    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM remediation_workflow_catalog")
        .fetch_one(&mut cb)
        .await
        .unwrap();
    assert_eq!(rows, 0, "a row written in one clone is not in another");
    let table: bool = sqlx::query_scalar("SELECT to_regclass('created_in_a') IS NOT NULL")
        .fetch_one(&mut cb)
        .await
        .unwrap();
    assert!(!table, "a table created in one clone is not in another");

    // And nothing leaked back into the template: a new clone is clean too.
    let c = database(Profile::V1_0).await;
    let mut cc = connect(&c).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM remediation_workflow_catalog")
        .fetch_one(&mut cc)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn a_dropped_clone_is_gone() {
    let witness = database(Profile::V1_0).await;
    let mut conn = connect(&witness).await;

    let db = database(Profile::V1_0).await;
    let name = db.name().to_owned();
    // An open connection must not keep it alive.
    let open = connect(&db).await;
    assert!(database_exists(&mut conn, &name).await);
    drop(db);
    assert!(
        !database_exists(&mut conn, &name).await,
        "{name} still exists"
    );
    drop(open);
}

#[tokio::test]
async fn a_panicking_test_keeps_its_database() {
    let (tx, rx) = std::sync::mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let db = test_db::database(Profile::V1_0).await.unwrap();
            tx.send(db.name().to_owned()).unwrap();
            panic!("a deliberate test failure");
        })
    })
    .join();
    assert!(panicked.is_err());
    let name = rx.recv().unwrap();

    let witness = database(Profile::V1_0).await;
    let mut conn = connect(&witness).await;
    assert!(
        database_exists(&mut conn, &name).await,
        "the failed test's database {name} was kept"
    );
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}

/// Runs [`provider_probe`] in a child process with `env`, returning its output and duration.
fn probe(env: &[(&str, &str)]) -> (bool, String, Duration) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "provider_probe", "--ignored", "--nocapture"])
        .env_remove("TEST_DATABASE_URL")
        .env_remove("DATASTORAGE_TEST_DB");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text, start.elapsed())
}

#[test]
fn a_misconfigured_provider_fails_fast_saying_what_to_do() {
    let (ok, out, took) = probe(&[("DATASTORAGE_TEST_DB", "url")]);
    assert!(!ok);
    assert!(
        out.contains("DATASTORAGE_TEST_DB=url needs TEST_DATABASE_URL"),
        "{out}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");

    let (ok, out, took) = probe(&[
        ("DATASTORAGE_TEST_DB", "url"),
        (
            "TEST_DATABASE_URL",
            "postgres://postgres:x@127.0.0.1:1/postgres",
        ),
    ]);
    assert!(!ok);
    assert!(
        out.contains(
            "TEST_DATABASE_URL: cannot connect to postgres://postgres:***@127.0.0.1:1/postgres"
        ),
        "{out}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");

    let (ok, out, _) = probe(&[("DATASTORAGE_TEST_DB", "podman")]);
    assert!(!ok);
    assert!(out.contains("use auto, url, docker or local"), "{out}");
}

#[tokio::test]
#[ignore = "run in a child process by a_misconfigured_provider_fails_fast_saying_what_to_do"]
async fn provider_probe() {
    if let Err(e) = test_db::database(Profile::V1_0).await {
        panic!("{e}");
    }
}
