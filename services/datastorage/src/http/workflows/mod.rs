//! The remediation-workflow catalog: versioned workflows (create, list, read: here), lifecycle
//! updates ([`patch`]), label search ([`search`]).

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::error::{
    BodyProblems, Error, Json, PROBLEM_JSON, Path, Problem, Query, ReadTokenProblem, Result,
    ServerProblems, TokenProblem, on_constraint,
};
use super::validate::Rules;

mod patch;
mod search;

pub use patch::*;
pub use search::*;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_workflow, list_workflows))
        .routes(routes!(get_workflow, update_workflow))
        .routes(routes!(workflow_versions))
}

/// Search is a read (POST only for its body): it needs no write token.
pub fn search_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_workflows))
}

/// Lifecycle state of a workflow version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowStatus {
    Active,
    Disabled,
    Deprecated,
    Archived,
}

impl WorkflowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Deprecated => "deprecated",
            Self::Archived => "archived",
        }
    }
}

/// Severity label of a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }
}

/// Priority label of a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Priority {
    P0,
    P1,
    P2,
    P3,
}

impl Priority {
    fn as_str(self) -> &'static str {
        match self {
            Self::P0 => "P0",
            Self::P1 => "P1",
            Self::P2 => "P2",
            Self::P3 => "P3",
        }
    }
}

/// The five mandatory labels every workflow carries; search filters on them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowLabels {
    /// e.g. `OOMKilled`.
    #[schema(min_length = 1, max_length = 100)]
    pub signal_type: String,
    pub severity: Severity,
    /// e.g. `deployment`, or `*` for any component.
    #[schema(min_length = 1, max_length = 100)]
    pub component: String,
    /// e.g. `production`.
    #[schema(min_length = 1, max_length = 100)]
    pub environment: String,
    pub priority: Priority,
}

impl WorkflowLabels {
    fn validate(&self) -> Result<()> {
        static RULES: LazyLock<Rules> =
            LazyLock::new(|| Rules::nested::<WorkflowLabels>("labels."));
        RULES.text("signal_type", &self.signal_type)?;
        RULES.text("component", &self.component)?;
        RULES.text("environment", &self.environment)
    }

    fn to_json(&self) -> Value {
        serde_json::json!({
            "signal_type": self.signal_type,
            "severity": self.severity.as_str(),
            "component": self.component,
            "environment": self.environment,
            "priority": self.priority.as_str(),
        })
    }
}

/// A new workflow version.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkflow {
    /// Stable name shared by all versions.
    #[schema(example = "oomkill-increase-memory", min_length = 1, max_length = 255)]
    pub workflow_name: String,
    /// Unique per workflow_name (409 if the pair exists).
    #[schema(example = "1.0.0", min_length = 1, max_length = 50)]
    pub version: String,
    /// Display name.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    #[schema(min_length = 1, max_length = 100000)]
    pub description: String,
    /// The workflow definition; its SHA-256 is stored as `content_hash`.
    #[schema(min_length = 1, max_length = 10000000)]
    pub content: String,
    pub labels: WorkflowLabels,
    /// Default `active`.
    pub status: Option<WorkflowStatus>,
    /// A JSON object.
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Map<String, Value>>,
    /// Default `tekton`.
    #[schema(min_length = 1, max_length = 100)]
    pub execution_engine: Option<String>,
    pub container_image: Option<String>,
    pub container_digest: Option<String>,
    /// Free-form labels that boost search scores; default `{}`.
    #[schema(value_type = Option<Object>)]
    pub custom_labels: Option<Map<String, Value>>,
    /// Labels detected on the target (e.g. `{"gitOpsManaged": true}`); default `{}`.
    #[schema(value_type = Option<Object>)]
    pub detected_labels: Option<Map<String, Value>>,
}

/// A stored workflow version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Workflow {
    pub workflow_id: Uuid,
    pub workflow_name: String,
    pub version: String,
    pub name: String,
    pub description: String,
    pub content: String,
    /// SHA-256 of `content`, hex.
    pub content_hash: String,
    #[schema(value_type = WorkflowLabels)]
    pub labels: Value,
    pub status: String,
    pub is_latest_version: bool,
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    pub execution_engine: String,
    pub container_image: Option<String>,
    pub container_digest: Option<String>,
    #[schema(value_type = Object)]
    pub custom_labels: Value,
    #[schema(value_type = Object)]
    pub detected_labels: Value,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_by: Option<String>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Create a workflow version; it becomes the latest version of its workflow_name.
#[utoipa::path(
    post,
    path = "/api/v1/workflows",
    tag = "workflows",
    request_body = NewWorkflow,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created; older versions are no longer latest", body = Workflow),
        (status = 400, description = "Invalid workflow or malformed JSON", body = Problem, content_type = PROBLEM_JSON),
        TokenProblem,
        (status = 409, description = "This workflow_name and version exist", body = Problem, content_type = PROBLEM_JSON),
        BodyProblems,
        ServerProblems,
    )
)]
pub async fn create_workflow(
    State(state): State<AppState>,
    Json(w): Json<NewWorkflow>,
) -> Result<(StatusCode, Json<Workflow>)> {
    static RULES: LazyLock<Rules> = LazyLock::new(Rules::of::<NewWorkflow>);
    for (field, value) in [
        ("workflow_name", &w.workflow_name),
        ("version", &w.version),
        ("name", &w.name),
        ("description", &w.description),
        ("content", &w.content),
    ] {
        RULES.text(field, value)?;
    }
    w.labels.validate()?;
    RULES.opt_text("execution_engine", w.execution_engine.as_deref())?;
    let execution_engine = w.execution_engine.unwrap_or_else(|| "tekton".to_owned());
    let content_hash = hex::encode(Sha256::digest(w.content.as_bytes()));
    let status = w.status.unwrap_or(WorkflowStatus::Active);

    let mut tx = state.pool.begin().await?;
    // Versions of one workflow_name are created one at a time, so exactly one stays latest.
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 7301))",
        w.workflow_name
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        r#"UPDATE remediation_workflow_catalog
           SET is_latest_version = false
           WHERE workflow_name = $1
             AND is_latest_version"#,
        w.workflow_name
    )
    .execute(&mut *tx)
    .await?;
    let created = sqlx::query_as!(
        Workflow,
        r#"INSERT INTO remediation_workflow_catalog (
               workflow_name, version, name, description, content, content_hash, labels,
               status, is_latest_version, parameters, execution_engine, container_image,
               container_digest, custom_labels, detected_labels,
               disabled_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, $9, $10, $11, $12, $13, $14,
                   CASE WHEN $8::varchar = 'disabled' THEN now() END)
           RETURNING workflow_id, workflow_name, version, name, description, content,
                     content_hash, labels, status, is_latest_version, parameters,
                     execution_engine, container_image, container_digest, custom_labels,
                     detected_labels, disabled_at, disabled_by, disabled_reason,
                     created_at, updated_at"#,
        w.workflow_name,
        w.version,
        w.name,
        w.description,
        w.content,
        content_hash,
        w.labels.to_json(),
        status.as_str(),
        w.parameters.map(Value::Object),
        execution_engine,
        w.container_image,
        w.container_digest,
        Value::Object(w.custom_labels.unwrap_or_default()),
        Value::Object(w.detected_labels.unwrap_or_default()),
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(on_constraint("uq_workflow_name_version", || {
        Error::Conflict(format!(
            "workflow {:?} already has a version {:?}",
            w.workflow_name, w.version
        ))
    }))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Filters of `GET /api/v1/workflows`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorkflowFilter {
    pub workflow_name: Option<String>,
    pub status: Option<WorkflowStatus>,
    pub signal_type: Option<String>,
    pub severity: Option<Severity>,
    pub environment: Option<String>,
    /// Only latest versions (`true`) or only older ones (`false`).
    pub latest_only: Option<bool>,
    /// Default 50.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Default 0.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// One page of workflows, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkflowPage {
    pub data: Vec<Workflow>,
    pub limit: i64,
    pub offset: i64,
    /// Number of workflows matching the filters.
    pub total: i64,
}

/// List workflows.
#[utoipa::path(
    get,
    path = "/api/v1/workflows",
    tag = "workflows",
    security((), ("read_bearer" = [])),
    params(WorkflowFilter),
    responses(
        (status = 200, description = "One page of workflows", body = WorkflowPage),
        (status = 400, description = "Invalid filter", body = Problem, content_type = PROBLEM_JSON),
        ReadTokenProblem,
        ServerProblems,
    )
)]
pub async fn list_workflows(
    State(state): State<AppState>,
    Query(f): Query<WorkflowFilter>,
) -> Result<Json<WorkflowPage>> {
    static RULES: LazyLock<Rules> = LazyLock::new(Rules::of_params::<WorkflowFilter>);
    let limit = f.limit.unwrap_or(50);
    RULES.number("limit", limit as f64)?;
    let offset = f.offset.unwrap_or(0);
    RULES.number("offset", offset as f64)?;
    let status = f.status.map(WorkflowStatus::as_str);
    let severity = f.severity.map(Severity::as_str);
    // The page and the number of all matches (which a window count over the page would miss
    // once the offset passes the last match), on two connections at once.
    let page = sqlx::query_as!(
        Workflow,
        r#"SELECT workflow_id, workflow_name, version, name, description, content,
                  content_hash, labels, status, is_latest_version, parameters,
                  execution_engine, container_image, container_digest, custom_labels,
                  detected_labels, disabled_at, disabled_by, disabled_reason,
                  created_at, updated_at
           FROM remediation_workflow_catalog
           WHERE ($1::text IS NULL OR workflow_name = $1)
             AND ($2::text IS NULL OR status = $2)
             AND ($3::text IS NULL OR labels->>'signal_type' = $3)
             AND ($4::text IS NULL OR labels->>'severity' = $4)
             AND ($5::text IS NULL OR labels->>'environment' = $5)
             AND ($6::bool IS NULL OR is_latest_version = $6)
           ORDER BY created_at DESC, workflow_id
           LIMIT $7
           OFFSET $8"#,
        f.workflow_name,
        status,
        f.signal_type,
        severity,
        f.environment,
        f.latest_only,
        limit,
        offset,
    )
    .fetch_all(&state.query_pool);
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "total!"
           FROM remediation_workflow_catalog
           WHERE ($1::text IS NULL OR workflow_name = $1)
             AND ($2::text IS NULL OR status = $2)
             AND ($3::text IS NULL OR labels->>'signal_type' = $3)
             AND ($4::text IS NULL OR labels->>'severity' = $4)
             AND ($5::text IS NULL OR labels->>'environment' = $5)
             AND ($6::bool IS NULL OR is_latest_version = $6)"#,
        f.workflow_name,
        status,
        f.signal_type,
        severity,
        f.environment,
        f.latest_only,
    )
    .fetch_one(&state.query_pool);
    let (data, total) = tokio::try_join!(page, total)?;
    Ok(Json(WorkflowPage {
        data,
        limit,
        offset,
        total,
    }))
}

/// One workflow version by id.
#[utoipa::path(
    get,
    path = "/api/v1/workflows/{workflow_id}",
    tag = "workflows",
    security((), ("read_bearer" = [])),
    params(("workflow_id" = Uuid, Path, description = "The workflow version's id")),
    responses(
        (status = 200, description = "The workflow", body = Workflow),
        (status = 400, description = "Not a UUID", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such workflow", body = Problem, content_type = PROBLEM_JSON),
        ReadTokenProblem,
        ServerProblems,
    )
)]
pub async fn get_workflow(
    State(state): State<AppState>,
    Path(workflow_id): Path<Uuid>,
) -> Result<Json<Workflow>> {
    sqlx::query_as!(
        Workflow,
        r#"SELECT workflow_id, workflow_name, version, name, description, content,
                  content_hash, labels, status, is_latest_version, parameters,
                  execution_engine, container_image, container_digest, custom_labels,
                  detected_labels, disabled_at, disabled_by, disabled_reason,
                  created_at, updated_at
           FROM remediation_workflow_catalog
           WHERE workflow_id = $1"#,
        workflow_id
    )
    .fetch_optional(&state.pool)
    .await?
    .map(Json)
    .ok_or_else(|| Error::NotFound(format!("no workflow with id {workflow_id}")))
}

/// Every version of a workflow, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/workflows/by-name/{workflow_name}/versions",
    tag = "workflows",
    security((), ("read_bearer" = [])),
    params(("workflow_name" = String, Path, description = "The workflow's name")),
    responses(
        (status = 200, description = "The versions, newest first", body = Vec<Workflow>),
        (status = 404, description = "No workflow with this name", body = Problem, content_type = PROBLEM_JSON),
        ReadTokenProblem,
        ServerProblems,
    )
)]
pub async fn workflow_versions(
    State(state): State<AppState>,
    Path(workflow_name): Path<String>,
) -> Result<Json<Vec<Workflow>>> {
    let versions = sqlx::query_as!(
        Workflow,
        r#"SELECT workflow_id, workflow_name, version, name, description, content,
                  content_hash, labels, status, is_latest_version, parameters,
                  execution_engine, container_image, container_digest, custom_labels,
                  detected_labels, disabled_at, disabled_by, disabled_reason,
                  created_at, updated_at
           FROM remediation_workflow_catalog
           WHERE workflow_name = $1
           ORDER BY created_at DESC, workflow_id"#,
        workflow_name
    )
    .fetch_all(&state.pool)
    .await?;
    if versions.is_empty() {
        return Err(Error::NotFound(format!(
            "no workflow named {workflow_name:?}"
        )));
    }
    Ok(Json(versions))
}
