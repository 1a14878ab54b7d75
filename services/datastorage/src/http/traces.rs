//! Action traces (recorded by the platform's controllers: what was done about an alert, to which
//! resource, with what outcome) and their read side, incidents.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::store::traces::{self as store, Incident, IncidentFilter, Recorded};

use super::AppState;
use super::error::{
    BodyProblems, Error, Json, PROBLEM_JSON, Path, Problem, Query, ReadTokenProblem, Result,
    ServerProblems, TokenProblem, on_constraint,
};
use super::validate::Rules;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(record_trace))
        .routes(routes!(record_batch))
        .routes(routes!(list_incidents))
        .routes(routes!(get_incident))
}

/// How an action's execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionStatus {
    Pending,
    Executing,
    Completed,
    Failed,
    RolledBack,
}

impl ExecutionStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Executing => "executing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::RolledBack => "rolled-back",
        }
    }
}

/// The Kubernetes resource an action was taken on.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    /// The resource's UID.
    #[schema(min_length = 1, max_length = 36)]
    pub uid: String,
    #[schema(example = "apps/v1", min_length = 1, max_length = 100)]
    pub api_version: String,
    #[schema(example = "Deployment", min_length = 1, max_length = 100)]
    pub kind: String,
    #[schema(min_length = 1, max_length = 253)]
    pub name: String,
    #[schema(max_length = 63)]
    pub namespace: Option<String>,
}

/// A new action trace. Recording one whose `action_id` is stored already changes nothing.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewActionTrace {
    /// Unique per action: the idempotency key.
    #[schema(min_length = 1, max_length = 64)]
    pub action_id: String,
    #[serde(deserialize_with = "super::validate::rfc3339::required")]
    pub action_timestamp: DateTime<Utc>,
    pub resource: ResourceRef,
    #[schema(max_length = 255)]
    pub correlation_id: Option<String>,
    #[schema(example = "PodOOMKilled", min_length = 1, max_length = 200)]
    pub alert_name: String,
    #[schema(example = "critical", min_length = 1, max_length = 20)]
    pub alert_severity: String,
    /// Default `{}`.
    #[schema(value_type = Option<Object>)]
    pub alert_labels: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "super::validate::rfc3339::optional")]
    pub alert_firing_time: Option<DateTime<Utc>>,
    #[schema(example = "increase_memory", min_length = 1, max_length = 50)]
    pub action_type: String,
    /// Default `{}`.
    #[schema(value_type = Option<Object>)]
    pub action_parameters: Option<Map<String, Value>>,
    /// Default (also for null) `pending`.
    pub execution_status: Option<ExecutionStatus>,
    #[serde(default, deserialize_with = "super::validate::rfc3339::optional")]
    pub execution_start_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "super::validate::rfc3339::optional")]
    pub execution_end_time: Option<DateTime<Utc>>,
    #[schema(minimum = 0)]
    pub execution_duration_ms: Option<i32>,
    pub execution_error: Option<String>,
    #[schema(max_length = 100)]
    pub model_used: Option<String>,
    #[schema(minimum = 0, maximum = 1)]
    pub model_confidence: Option<f64>,
    #[schema(example = "pod-oom-killer", max_length = 100)]
    pub incident_type: Option<String>,
    #[schema(max_length = 255)]
    pub workflow_id: Option<String>,
    #[schema(max_length = 50)]
    pub workflow_version: Option<String>,
    #[schema(minimum = 0)]
    pub workflow_step_number: Option<i32>,
    #[schema(max_length = 255)]
    pub workflow_execution_id: Option<String>,
    /// The AI chose this workflow from the catalog.
    pub ai_selected_workflow: Option<bool>,
    /// The AI chained several workflows.
    pub ai_chained_workflows: Option<bool>,
    /// The AI escalated to a person.
    pub ai_manual_escalation: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub ai_workflow_customization: Option<Map<String, Value>>,
}

impl NewActionTrace {
    fn validate(self) -> Result<store::Trace> {
        static RULES: LazyLock<Rules> = LazyLock::new(Rules::of::<NewActionTrace>);
        static RESOURCE: LazyLock<Rules> =
            LazyLock::new(|| Rules::nested::<ResourceRef>("resource."));
        for (field, value) in [
            ("action_id", &self.action_id),
            ("alert_name", &self.alert_name),
            ("alert_severity", &self.alert_severity),
            ("action_type", &self.action_type),
        ] {
            RULES.text(field, value)?;
        }
        for (field, value) in [
            ("correlation_id", &self.correlation_id),
            ("model_used", &self.model_used),
            ("incident_type", &self.incident_type),
            ("workflow_id", &self.workflow_id),
            ("workflow_version", &self.workflow_version),
            ("workflow_execution_id", &self.workflow_execution_id),
        ] {
            RULES.opt_text(field, value.as_deref())?;
        }
        RULES.opt_number(
            "execution_duration_ms",
            self.execution_duration_ms.map(f64::from),
        )?;
        RULES.opt_number("model_confidence", self.model_confidence)?;
        RULES.opt_number(
            "workflow_step_number",
            self.workflow_step_number.map(f64::from),
        )?;
        let r = &self.resource;
        for (field, value) in [
            ("uid", &r.uid),
            ("api_version", &r.api_version),
            ("kind", &r.kind),
            ("name", &r.name),
        ] {
            RESOURCE.text(field, value)?;
        }
        RESOURCE.opt_text("namespace", r.namespace.as_deref())?;
        Ok(store::Trace {
            action_id: self.action_id,
            action_timestamp: self.action_timestamp,
            resource: store::Resource {
                uid: self.resource.uid,
                api_version: self.resource.api_version,
                kind: self.resource.kind,
                name: self.resource.name,
                namespace: self.resource.namespace,
            },
            correlation_id: self.correlation_id,
            alert_name: self.alert_name,
            alert_severity: self.alert_severity,
            alert_labels: Value::Object(self.alert_labels.unwrap_or_default()),
            alert_firing_time: self.alert_firing_time,
            action_type: self.action_type,
            action_parameters: Value::Object(self.action_parameters.unwrap_or_default()),
            execution_status: self
                .execution_status
                .unwrap_or(ExecutionStatus::Pending)
                .as_str(),
            execution_start_time: self.execution_start_time,
            execution_end_time: self.execution_end_time,
            execution_duration_ms: self.execution_duration_ms,
            execution_error: self.execution_error,
            model_used: self.model_used,
            model_confidence: self.model_confidence,
            incident_type: self.incident_type,
            workflow_id: self.workflow_id,
            workflow_version: self.workflow_version,
            workflow_step_number: self.workflow_step_number,
            workflow_execution_id: self.workflow_execution_id,
            ai_selected_workflow: self.ai_selected_workflow,
            ai_chained_workflows: self.ai_chained_workflows,
            ai_manual_escalation: self.ai_manual_escalation,
            ai_workflow_customization: self.ai_workflow_customization.map(Value::Object),
        })
    }
}

/// A recorded trace.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TraceRecorded {
    /// The trace's id (its incident id).
    pub id: i64,
    pub action_id: String,
    /// `false`: a trace with this `action_id` was stored before and is left as it was.
    pub created: bool,
}

impl TraceRecorded {
    fn of(action_id: String, recorded: Recorded) -> Self {
        let (id, created) = match recorded {
            Recorded::Created(id) => (id, true),
            Recorded::Existing(id) => (id, false),
        };
        Self {
            id,
            action_id,
            created,
        }
    }
}

/// A resource UID that names another resource (another namespace, kind or name): 409.
fn uid_conflict(e: sqlx::Error) -> Error {
    on_constraint("resource_references_resource_uid_key", || {
        Error::Conflict("resource.uid already names another resource".to_owned())
    })(e)
}

/// Record an action trace, idempotently on its `action_id`.
#[utoipa::path(
    post,
    path = "/api/v1/action-traces",
    tag = "incidents",
    request_body = NewActionTrace,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Recorded", body = TraceRecorded),
        (status = 200, description = "Recorded before (same action_id); nothing changed", body = TraceRecorded),
        (status = 400, description = "Invalid trace or malformed JSON", body = Problem, content_type = PROBLEM_JSON),
        TokenProblem,
        (status = 409, description = "resource.uid names another resource", body = Problem, content_type = PROBLEM_JSON),
        BodyProblems,
        ServerProblems,
    )
)]
pub async fn record_trace(
    State(state): State<AppState>,
    Json(trace): Json<NewActionTrace>,
) -> Result<(StatusCode, Json<TraceRecorded>)> {
    let trace = trace.validate()?;
    let recorded = store::record(&state.pool, std::slice::from_ref(&trace))
        .await
        .map_err(uid_conflict)?[0];
    let status = match recorded {
        Recorded::Created(_) => StatusCode::CREATED,
        Recorded::Existing(_) => StatusCode::OK,
    };
    Ok((status, Json(TraceRecorded::of(trace.action_id, recorded))))
}

/// Fewest traces in a batch.
const MIN_BATCH: usize = 1;

/// The request body of the batch write: a JSON array of action traces, stored all or nothing.
#[derive(Debug)]
pub struct ActionTraceBatch;

impl utoipa::PartialSchema for ActionTraceBatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::validate::batch_schema::<NewActionTrace>(
            MIN_BATCH,
            "Action traces, stored all or nothing.",
        )
    }
}

impl ToSchema for ActionTraceBatch {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        super::validate::batch_item_schemas::<NewActionTrace>(schemas);
    }
}

/// Recorded traces, in request order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchRecorded {
    pub count: usize,
    pub traces: Vec<TraceRecorded>,
}

/// Record a JSON array of action traces, all or nothing, each idempotently on its `action_id`.
#[utoipa::path(
    post,
    path = "/api/v1/action-traces/batch",
    tag = "incidents",
    request_body = ActionTraceBatch,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Recorded (`created` tells which were new)", body = BatchRecorded),
        (status = 400, description = "Not an array, empty, or an invalid element (named by its index); nothing stored", body = Problem, content_type = PROBLEM_JSON),
        TokenProblem,
        (status = 409, description = "A resource.uid names another resource; nothing stored", body = Problem, content_type = PROBLEM_JSON),
        BodyProblems,
        ServerProblems,
    )
)]
pub async fn record_batch(
    State(state): State<AppState>,
    Json(items): Json<Vec<Value>>,
) -> Result<(StatusCode, Json<BatchRecorded>)> {
    if items.len() < MIN_BATCH {
        return Err(Error::validation("the batch is empty"));
    }
    let mut traces = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let trace: NewActionTrace = serde_json::from_value(item)
            .map_err(|e| Error::validation(format!("element {i}: {e}")))?;
        traces.push(trace.validate().map_err(|e| e.in_element(i))?);
    }
    let recorded = store::record(&state.pool, &traces)
        .await
        .map_err(uid_conflict)?;
    let traces: Vec<TraceRecorded> = traces
        .into_iter()
        .zip(recorded)
        .map(|(t, r)| TraceRecorded::of(t.action_id, r))
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(BatchRecorded {
            count: traces.len(),
            traces,
        }),
    ))
}

/// Filters of `GET /api/v1/incidents`. Results are newest first.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    pub alert_name: Option<String>,
    /// The alert's severity.
    pub severity: Option<String>,
    pub action_type: Option<String>,
    /// The resource's namespace.
    pub namespace: Option<String>,
    /// Default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Default 0.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// Offset pagination state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OffsetPagination {
    /// Number of incidents matching the filters.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    /// More match beyond this page.
    pub has_more: bool,
}

/// One page of incidents.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IncidentPage {
    pub data: Vec<Incident>,
    pub pagination: OffsetPagination,
}

/// List incidents (action traces), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/incidents",
    tag = "incidents",
    security((), ("read_bearer" = [])),
    params(IncidentQuery),
    responses(
        (status = 200, description = "One page of incidents", body = IncidentPage),
        (status = 400, description = "Invalid filter", body = Problem, content_type = PROBLEM_JSON),
        ReadTokenProblem,
        ServerProblems,
    )
)]
pub async fn list_incidents(
    State(state): State<AppState>,
    Query(q): Query<IncidentQuery>,
) -> Result<Json<IncidentPage>> {
    static RULES: LazyLock<Rules> = LazyLock::new(Rules::of_params::<IncidentQuery>);
    let limit = q.limit.unwrap_or(100);
    RULES.number("limit", limit as f64)?;
    let offset = q.offset.unwrap_or(0);
    RULES.number("offset", offset as f64)?;
    let filter = IncidentFilter {
        alert_name: q.alert_name,
        severity: q.severity,
        action_type: q.action_type,
        namespace: q.namespace,
    };
    let (data, total) = store::incidents(&state.query_pool, &filter, limit, offset).await?;
    let has_more = offset.saturating_add(data.len() as i64) < total;
    Ok(Json(IncidentPage {
        data,
        pagination: OffsetPagination {
            total,
            limit,
            offset,
            has_more,
        },
    }))
}

/// One incident by id.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}",
    tag = "incidents",
    security((), ("read_bearer" = [])),
    params(("id" = i64, Path, description = "The incident's (trace's) id")),
    responses(
        (status = 200, description = "The incident", body = Incident),
        (status = 400, description = "Not an id", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such incident", body = Problem, content_type = PROBLEM_JSON),
        ReadTokenProblem,
        ServerProblems,
    )
)]
pub async fn get_incident(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Incident>> {
    store::incident(&state.pool, id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("no incident with id {id}")))
}
