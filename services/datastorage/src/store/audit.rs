//! The SQL of the audit event store: validated rows in, one statement per write.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// Default `retention_days` of a new event.
const RETENTION_DAYS: i32 = 2555;

/// A validated event with defaults applied, ready to insert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    pub event_id: Uuid,
    pub version: String,
    pub event_type: String,
    pub event_timestamp: DateTime<Utc>,
    pub event_date: NaiveDate,
    pub event_category: String,
    pub event_action: String,
    pub event_outcome: String,
    pub actor_type: String,
    pub actor_id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub correlation_id: String,
    pub parent_event_id: Option<Uuid>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub namespace: Option<String>,
    pub cluster_name: Option<String>,
    pub event_data: Value,
    pub severity: String,
    pub duration_ms: Option<i32>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// The partition dates of the parents the rows name that exist (a parent missing from the map
/// does not exist).
pub async fn parent_dates<'c>(
    db: impl sqlx::PgExecutor<'c>,
    rows: &[Row],
) -> sqlx::Result<HashMap<Uuid, NaiveDate>> {
    let wanted: Vec<Uuid> = rows.iter().filter_map(|r| r.parent_event_id).collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let found = sqlx::query!(
        r#"SELECT event_id AS "event_id!", event_date AS "event_date!"
           FROM audit_events
           WHERE event_id = ANY($1)"#,
        &wanted
    )
    .fetch_all(db)
    .await?;
    Ok(found
        .into_iter()
        .map(|r| (r.event_id, r.event_date))
        .collect())
}

/// The partition date of one parent event; `None` when there is no such event.
pub async fn parent_date(pool: &PgPool, parent: Uuid) -> sqlx::Result<Option<NaiveDate>> {
    sqlx::query_scalar!(
        // The query's text is its key in .sqlx/: keep it byte for byte.
        r#"SELECT event_date AS "event_date!"
                   FROM audit_events
                   WHERE event_id = $1
                   LIMIT 1"#,
        parent
    )
    .fetch_optional(pool)
    .await
}

/// One statement for all `rows` (each with its parent's partition date): atomic without an
/// explicit transaction.
///
/// A row whose `event_id` is stored already is skipped, so that writing a row again is
/// harmless: ids are new for every request, and the one way to write one twice is the spool's
/// drain repeating a write whose commit it did not see (a crash, a connection cut after the
/// COMMIT). That is the conflict clause's only purpose.
pub async fn insert_rows<'c>(
    db: impl sqlx::PgExecutor<'c>,
    rows: &[Row],
    parent_dates: &[Option<NaiveDate>],
) -> sqlx::Result<()> {
    macro_rules! col {
        ($f:ident) => {
            rows.iter().map(|r| r.$f.clone()).collect::<Vec<_>>()
        };
    }
    sqlx::query!(
        r#"INSERT INTO audit_events (
               event_id, event_version, event_type, event_timestamp, event_date,
               event_category, event_action, event_outcome,
               actor_type, actor_id, resource_type, resource_id,
               correlation_id, parent_event_id, parent_event_date, trace_id, span_id,
               namespace, cluster_name, event_data, severity, duration_ms,
               error_code, error_message, retention_days)
           SELECT u.*, $24
           FROM UNNEST(
               $1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::date[],
               $6::text[], $7::text[], $8::text[],
               $9::text[], $10::text[], $11::text[], $12::text[],
               $13::text[], $14::uuid[], $15::date[], $16::text[], $17::text[],
               $18::text[], $19::text[], $20::jsonb[], $21::text[], $22::int4[],
               $23::text[], $25::text[]) AS u
           ON CONFLICT (event_id, event_date) DO NOTHING"#,
        &col!(event_id),
        &col!(version),
        &col!(event_type),
        &col!(event_timestamp),
        &col!(event_date),
        &col!(event_category),
        &col!(event_action),
        &col!(event_outcome),
        &col!(actor_type),
        &col!(actor_id),
        &col!(resource_type),
        &col!(resource_id),
        &col!(correlation_id),
        &col!(parent_event_id) as &[Option<Uuid>],
        parent_dates as &[Option<NaiveDate>],
        &col!(trace_id) as &[Option<String>],
        &col!(span_id) as &[Option<String>],
        &col!(namespace) as &[Option<String>],
        &col!(cluster_name) as &[Option<String>],
        &col!(event_data),
        &col!(severity),
        &col!(duration_ms) as &[Option<i32>],
        &col!(error_code) as &[Option<String>],
        RETENTION_DAYS,
        &col!(error_message) as &[Option<String>],
    )
    .execute(db)
    .await?;
    Ok(())
}
