//! Integration tests of the DataStorage schema and service, on a real PostgreSQL.

use pg_embedded::Cluster;
use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};

/// The migrations the test suite runs: kept on the test profile by `cargo xtask sync-migrations`.
static TEST_MIGRATOR: Migrator = sqlx::migrate!("../../migrations-v1.0");

async fn migrated(cluster: &Cluster, db: &str) -> PgConnection {
    let url = cluster.create_database(db).expect("create database");
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    TEST_MIGRATOR
        .run(&mut conn)
        .await
        .expect("migrations apply");
    conn
}

#[tokio::test]
async fn v1_schema_applies_without_pgvector() {
    let cluster = Cluster::start().expect("embedded PostgreSQL");
    let mut conn = migrated(&cluster, "schema").await;

    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied as usize, TEST_MIGRATOR.iter().count());

    let vector: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(vector, 0, "v1.0 must not install pgvector");

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
    // 011 renamed 010's column; 018 renamed 017's.
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT table_name || '.' || column_name FROM information_schema.columns \
         WHERE (table_name, column_name) IN (('notification_audit', 'signal_fingerprint'), \
         ('remediation_workflow_catalog', 'container_image'), ('remediation_workflow_catalog', 'embedding')) ORDER BY 1",
    )
    .fetch_all(&mut conn)
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
    let cluster = Cluster::start().expect("embedded PostgreSQL");
    let mut conn = migrated(&cluster, "dates").await;
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
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("insert dated {ts}: {e}"));
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 3);
}
