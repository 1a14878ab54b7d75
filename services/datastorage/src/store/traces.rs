//! Action traces (`resource_action_traces`, with the resource they acted on in
//! `resource_references` and its `action_histories` row): recorded idempotently on `action_id`,
//! read back as incidents. The API says `alert_*` as the service it replaces did; the columns
//! are `signal_*` since migration 011.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// The resource an action was taken on.
#[derive(Debug, Clone)]
pub struct Resource {
    pub uid: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

/// One action trace, validated.
#[derive(Debug, Clone)]
pub struct Trace {
    pub action_id: String,
    pub action_timestamp: DateTime<Utc>,
    pub resource: Resource,
    pub correlation_id: Option<String>,
    pub alert_name: String,
    pub alert_severity: String,
    pub alert_labels: Value,
    pub alert_firing_time: Option<DateTime<Utc>>,
    pub action_type: String,
    pub action_parameters: Value,
    pub execution_status: &'static str,
    pub execution_start_time: Option<DateTime<Utc>>,
    pub execution_end_time: Option<DateTime<Utc>>,
    pub execution_duration_ms: Option<i32>,
    pub execution_error: Option<String>,
    pub model_used: Option<String>,
    pub model_confidence: Option<f64>,
    pub incident_type: Option<String>,
    pub workflow_id: Option<String>,
    pub workflow_version: Option<String>,
    pub workflow_step_number: Option<i32>,
    pub workflow_execution_id: Option<String>,
    pub ai_selected_workflow: Option<bool>,
    pub ai_chained_workflows: Option<bool>,
    pub ai_manual_escalation: Option<bool>,
    pub ai_workflow_customization: Option<Value>,
}

/// What recording a trace did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored now, with this id.
    Created(i64),
    /// A trace with this `action_id` was stored before, with this id; nothing changed.
    Existing(i64),
}

/// Records `traces` in one transaction, each idempotently on its `action_id`: a trace whose
/// `action_id` is stored already is left as it is. The resource is created or its
/// `last_seen_at` moved; its action history counts the new traces.
pub async fn record(pool: &PgPool, traces: &[Trace]) -> sqlx::Result<Vec<Recorded>> {
    let mut tx = pool.begin().await?;
    let mut out = Vec::with_capacity(traces.len());
    for trace in traces {
        out.push(record_one(&mut tx, trace).await?);
    }
    tx.commit().await?;
    Ok(out)
}

async fn record_one(conn: &mut PgConnection, t: &Trace) -> Result<Recorded, sqlx::Error> {
    // Concurrent recordings of one action_id wait for each other, so exactly one stores it.
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 7302))",
        t.action_id
    )
    .execute(&mut *conn)
    .await?;
    if let Some(id) = sqlx::query_scalar!(
        "SELECT id FROM resource_action_traces WHERE action_id = $1 LIMIT 1",
        t.action_id
    )
    .fetch_optional(&mut *conn)
    .await?
    {
        return Ok(Recorded::Existing(id));
    }
    let r = &t.resource;
    // The resource by its UID; else by its identity (namespace, kind, name), which a new object
    // of the same name takes over with its new UID. A UID already naming another resource
    // violates `resource_references_resource_uid_key`.
    let known = sqlx::query_scalar!(
        r#"UPDATE resource_references SET last_seen_at = now(), api_version = $5
           WHERE resource_uid = $1 AND kind = $2 AND name = $3
             AND namespace IS NOT DISTINCT FROM $4
           RETURNING id"#,
        r.uid,
        r.kind,
        r.name,
        r.namespace,
        r.api_version,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let resource_id = match known {
        Some(id) => id,
        None => sqlx::query_scalar!(
            r#"INSERT INTO resource_references (resource_uid, api_version, kind, name, namespace)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (namespace, kind, name) DO UPDATE
                       SET resource_uid = EXCLUDED.resource_uid,
                           api_version = EXCLUDED.api_version,
                           last_seen_at = now(),
                           deleted_at = NULL
                   RETURNING id"#,
            r.uid,
            r.api_version,
            r.kind,
            r.name,
            r.namespace,
        )
        .fetch_one(&mut *conn)
        .await?,
    };
    let history_id = sqlx::query_scalar!(
        r#"INSERT INTO action_histories (resource_id, total_actions, last_action_at)
           VALUES ($1, 1, $2)
           ON CONFLICT (resource_id) DO UPDATE
               SET total_actions = action_histories.total_actions + 1,
                   last_action_at = greatest(action_histories.last_action_at, EXCLUDED.last_action_at)
           RETURNING id"#,
        resource_id,
        t.action_timestamp,
    )
    .fetch_one(&mut *conn)
    .await?;
    let id = sqlx::query_scalar!(
        r#"INSERT INTO resource_action_traces (
               action_history_id, action_id, correlation_id, action_timestamp,
               execution_start_time, execution_end_time, execution_duration_ms,
               signal_name, signal_severity, signal_labels, signal_firing_time,
               model_used, model_confidence, action_type, action_parameters,
               execution_status, execution_error, incident_type, workflow_id, workflow_version,
               workflow_step_number, workflow_execution_id, ai_selected_workflow,
               ai_chained_workflows, ai_manual_escalation, ai_workflow_customization)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::float8::numeric(4,3),
                   $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)
           RETURNING id"#,
        history_id,
        t.action_id,
        t.correlation_id,
        t.action_timestamp,
        t.execution_start_time,
        t.execution_end_time,
        t.execution_duration_ms,
        t.alert_name,
        t.alert_severity,
        t.alert_labels,
        t.alert_firing_time,
        t.model_used,
        t.model_confidence,
        t.action_type,
        t.action_parameters,
        t.execution_status,
        t.execution_error,
        t.incident_type,
        t.workflow_id,
        t.workflow_version,
        t.workflow_step_number,
        t.workflow_execution_id,
        t.ai_selected_workflow,
        t.ai_chained_workflows,
        t.ai_manual_escalation,
        t.ai_workflow_customization,
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Recorded::Created(id))
}

/// An action trace as an incident: the alert, the action, its resource and outcome.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Incident {
    pub id: i64,
    pub action_id: String,
    pub correlation_id: Option<String>,
    pub alert_name: String,
    pub alert_severity: String,
    #[schema(value_type = Object)]
    pub alert_labels: Value,
    pub alert_firing_time: Option<DateTime<Utc>>,
    pub action_type: String,
    pub action_timestamp: DateTime<Utc>,
    pub execution_status: String,
    pub execution_error: Option<String>,
    pub incident_type: Option<String>,
    pub workflow_id: Option<String>,
    pub workflow_version: Option<String>,
    pub resource_kind: String,
    pub resource_name: String,
    pub namespace: Option<String>,
}

/// Filters of the incident listing (`None`: any).
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub alert_name: Option<String>,
    pub severity: Option<String>,
    pub action_type: Option<String>,
    pub namespace: Option<String>,
}

/// One page of incidents, newest first, and the number of all that match.
///
/// The traces are filtered, ordered and cut to the page on their keys alone (the sort carries
/// no row) before the page's rows are read and joined to their resources, and the total counts
/// traces alone: every trace has its action history and
/// resource (NOT NULL foreign keys, ON DELETE CASCADE), so the joins change neither. A namespace
/// becomes the action histories of its resources (an array computed once), which the
/// `(action_history_id, action_timestamp)` index serves; the query pool plans each statement for
/// its parameters (`force_custom_plan`), so the filters that are not given drop out.
pub async fn incidents(
    pool: &PgPool,
    f: &IncidentFilter,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<Incident>, i64)> {
    let page = sqlx::query_as!(
        Incident,
        r#"SELECT t.id, t.action_id, t.correlation_id, t.signal_name AS alert_name,
                  t.signal_severity AS alert_severity, t.signal_labels AS alert_labels,
                  t.signal_firing_time AS alert_firing_time, t.action_type, t.action_timestamp,
                  t.execution_status, t.execution_error, t.incident_type, t.workflow_id,
                  t.workflow_version, r.kind AS resource_kind, r.name AS resource_name,
                  r.namespace
           FROM (SELECT id, action_timestamp FROM resource_action_traces
                 WHERE ($1::text IS NULL OR signal_name = $1)
                   AND ($2::text IS NULL OR signal_severity = $2)
                   AND ($3::text IS NULL OR action_type = $3)
                   AND ($4::text IS NULL OR action_history_id = ANY (ARRAY(
                            SELECT h.id FROM action_histories h
                            JOIN resource_references r ON r.id = h.resource_id
                            WHERE r.namespace = $4)))
                 ORDER BY action_timestamp DESC, id DESC
                 LIMIT $5 OFFSET $6) page
           JOIN resource_action_traces t
             ON t.id = page.id AND t.action_timestamp = page.action_timestamp
           JOIN action_histories h ON h.id = t.action_history_id
           JOIN resource_references r ON r.id = h.resource_id
           ORDER BY t.action_timestamp DESC, t.id DESC"#,
        f.alert_name,
        f.severity,
        f.action_type,
        f.namespace,
        limit,
        offset,
    )
    .fetch_all(pool);
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!"
           FROM resource_action_traces
           WHERE ($1::text IS NULL OR signal_name = $1)
             AND ($2::text IS NULL OR signal_severity = $2)
             AND ($3::text IS NULL OR action_type = $3)
             AND ($4::text IS NULL OR action_history_id = ANY (ARRAY(
                      SELECT h.id FROM action_histories h
                      JOIN resource_references r ON r.id = h.resource_id
                      WHERE r.namespace = $4)))"#,
        f.alert_name,
        f.severity,
        f.action_type,
        f.namespace,
    )
    .fetch_one(pool);
    // On two connections at once.
    let (page, total) = tokio::try_join!(page, total)?;
    Ok((page, total))
}

/// One incident by its trace id.
pub async fn incident(pool: &PgPool, id: i64) -> sqlx::Result<Option<Incident>> {
    sqlx::query_as!(
        Incident,
        r#"SELECT t.id, t.action_id, t.correlation_id, t.signal_name AS alert_name,
                  t.signal_severity AS alert_severity, t.signal_labels AS alert_labels,
                  t.signal_firing_time AS alert_firing_time, t.action_type, t.action_timestamp,
                  t.execution_status, t.execution_error, t.incident_type, t.workflow_id,
                  t.workflow_version, r.kind AS resource_kind, r.name AS resource_name,
                  r.namespace
           FROM resource_action_traces t
           JOIN action_histories h ON h.id = t.action_history_id
           JOIN resource_references r ON r.id = h.resource_id
           WHERE t.id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await
}
