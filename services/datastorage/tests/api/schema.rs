//! The v1.0 schema itself.

use crate::TEST_MIGRATOR;
use crate::helpers::database;

#[tokio::test]
async fn v1_schema_applies_without_pgvector() {
    let db = database().await;
    let pool = db.pool().await.unwrap();

    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    let expected: Vec<i64> = TEST_MIGRATOR.iter().map(|m| m.version).collect();
    assert_eq!(applied, expected);
    // The service embeds the same profile.
    let embedded: Vec<i64> = datastorage::MIGRATOR.iter().map(|m| m.version).collect();
    assert_eq!(embedded, expected);

    let vector: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(vector, 0, "v1.0 must not install pgvector");

    // 011 renamed 010's column; 018 renamed 017's; no embedding column anywhere.
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT table_name || '.' || column_name FROM information_schema.columns \
         WHERE (table_name, column_name) IN (('notification_audit', 'signal_fingerprint'), \
         ('remediation_workflow_catalog', 'container_image')) OR column_name = 'embedding' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        columns,
        [
            "notification_audit.signal_fingerprint",
            "remediation_workflow_catalog.container_image"
        ]
    );
}

#[tokio::test]
async fn audit_events_accept_any_date() {
    let db = database().await;
    let pool = db.pool().await.unwrap();
    for ts in [
        "2019-03-01T00:00:00Z",
        "2040-06-01T12:00:00Z",
        "2026-11-25T10:00:00Z",
    ] {
        sqlx::query(
            "INSERT INTO audit_events (event_version, event_type, event_timestamp, event_date, event_category, \
             event_action, event_outcome, correlation_id, event_data) \
             VALUES ('1.0', 'test.event', $1::timestamptz, ($1::timestamptz AT TIME ZONE 'UTC')::date, \
             'gateway', 'write', 'success', 'c-1', '{}')",
        )
        .bind(ts)
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("insert dated {ts}: {e}"));
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn migrate_refuses_a_full_profile_database_and_changes_nothing() {
    let db = test_db::database(test_db::Profile::Full)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pool = db.pool().await.unwrap();
    let snapshot = || async {
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&pool)
                .await
                .unwrap();
        let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_class")
            .fetch_one(&pool)
            .await
            .unwrap();
        (rows, tables)
    };
    let before = snapshot().await;
    let err = datastorage::db::migrate(db.url()).await.unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("cargo xtask upgrade --from v1.0 --to full")
            || message.contains("cannot run on a database of the full profile"),
        "{message}"
    );
    assert_eq!(snapshot().await, before, "the database changed");

    // The binary says the same and exits non-zero.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_datastorage"))
        .args([
            "--database-url",
            db.url(),
            "--migrate",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to migrate"), "{stderr}");
}
