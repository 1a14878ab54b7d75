//! Success-rate analytics over the action traces: each answer is one statement. An execution is
//! a trace whose `execution_status` is `completed` (a success) or `failed` (a failure); pending,
//! executing and rolled-back traces are not counted. The two larger statements are in
//! `services/datastorage/sql/` (the API suite checks their plans use the partial indexes of
//! migration 012).

use serde_json::Value;
use sqlx::PgPool;

/// Counts over the executions that match.
#[derive(Debug, Clone)]
pub struct Counts {
    pub total: i64,
    pub successful: i64,
    pub catalog_selected: i64,
    pub chained: i64,
    pub manual_escalation: i64,
    /// `[{…, executions, success_rate}]`, most executions first.
    pub breakdown: Value,
}

/// Executions of `incident_type` in the last `hours`, with a per-workflow breakdown.
pub async fn by_incident_type(
    pool: &PgPool,
    incident_type: &str,
    hours: i32,
) -> sqlx::Result<Counts> {
    let r = sqlx::query_file!("sql/success_rate_incident_type.sql", incident_type, hours,)
        .fetch_one(pool)
        .await?;
    Ok(Counts {
        total: r.total,
        successful: r.successful,
        catalog_selected: r.catalog_selected,
        chained: r.chained,
        manual_escalation: r.manual_escalation,
        breakdown: r.breakdown,
    })
}

/// Executions of `workflow_id` (and `workflow_version`, if given) in the last `hours`, with a
/// per-incident-type breakdown.
pub async fn by_workflow(
    pool: &PgPool,
    workflow_id: &str,
    workflow_version: Option<&str>,
    hours: i32,
) -> sqlx::Result<Counts> {
    let r = sqlx::query_file!(
        "sql/success_rate_workflow.sql",
        workflow_id,
        workflow_version,
        hours,
    )
    .fetch_one(pool)
    .await?;
    Ok(Counts {
        total: r.total,
        successful: r.successful,
        catalog_selected: r.catalog_selected,
        chained: r.chained,
        manual_escalation: r.manual_escalation,
        breakdown: r.breakdown,
    })
}

/// The dimensions of the multi-dimensional query (`None`: any).
#[derive(Debug, Clone, Default)]
pub struct Dimensions {
    pub incident_type: Option<String>,
    pub workflow_id: Option<String>,
    pub workflow_version: Option<String>,
    pub action_type: Option<String>,
}

/// Executions matching every given dimension in the last `hours`: (total, successful).
pub async fn by_dimensions(pool: &PgPool, d: &Dimensions, hours: i32) -> sqlx::Result<(i64, i64)> {
    let r = sqlx::query!(
        r#"SELECT count(*) AS "total!",
                  count(*) FILTER (WHERE execution_status = 'completed') AS "successful!"
           FROM resource_action_traces
           WHERE ($1::text IS NULL OR incident_type = $1)
             AND ($2::text IS NULL OR workflow_id = $2)
             AND ($3::text IS NULL OR workflow_version = $3)
             AND ($4::text IS NULL OR action_type = $4)
             AND action_timestamp >= now() - make_interval(hours => $5)
             AND execution_status IN ('completed', 'failed')"#,
        d.incident_type,
        d.workflow_id,
        d.workflow_version,
        d.action_type,
        hours,
    )
    .fetch_one(pool)
    .await?;
    Ok((r.total, r.successful))
}
