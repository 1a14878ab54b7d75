//! Success-rate analytics: how well remediations work, by incident type, by workflow, or by any
//! combination of incident type, workflow, version and action type, with a confidence level
//! from the number of executions.

use std::sync::LazyLock;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::store::analytics::{self as store, Counts, Dimensions};

use super::AppState;
use super::error::{
    Error, Json, PROBLEM_JSON, Problem, Query, ReadTokenProblem, Result, ServerProblems,
};
use super::validate::Rules;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(by_incident_type))
        .routes(routes!(by_workflow))
        .routes(routes!(multi_dimensional))
}

/// Longest `time_range`, in hours (ten years).
const MAX_HOURS: u64 = 87_600;

/// `time_range` (`24h`, `7d`) in hours.
fn hours(time_range: &str) -> Result<i32> {
    let bad = || {
        Error::validation(format!(
            "time_range: expected a number of hours or days such as 24h or 7d, at most 3650d; got {time_range:?}"
        ))
    };
    let (n, unit) = time_range.split_at(time_range.len().saturating_sub(1));
    let n: u64 = n.parse().map_err(|_| bad())?;
    let hours = match unit {
        "h" => Some(n),
        "d" => n.checked_mul(24),
        _ => None,
    }
    .filter(|&h| h <= MAX_HOURS)
    .ok_or_else(bad)?;
    Ok(hours as i32)
}

/// How far the numbers can be trusted: by executions counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// 100 executions or more.
    High,
    /// 20 to 99.
    Medium,
    /// 5 to 19.
    Low,
    /// Fewer than 5, or fewer than `min_samples`.
    InsufficientData,
}

impl Confidence {
    fn of(total: i64, min_samples: i64) -> Self {
        match total {
            t if t < 5 || t < min_samples => Self::InsufficientData,
            t if t >= 100 => Self::High,
            t if t >= 20 => Self::Medium,
            _ => Self::Low,
        }
    }
}

/// The executions counted and what they say.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Rates {
    pub time_range: String,
    pub total_executions: i64,
    pub successful_executions: i64,
    pub failed_executions: i64,
    /// Percent of executions that succeeded (0–100); 0 without executions.
    pub success_rate: f64,
    pub confidence: Confidence,
    pub min_samples_met: bool,
}

impl Rates {
    fn of(time_range: String, total: i64, successful: i64, min_samples: i64) -> Self {
        let success_rate = if total == 0 {
            0.0
        } else {
            (10_000.0 * successful as f64 / total as f64).round() / 100.0
        };
        Self {
            time_range,
            total_executions: total,
            successful_executions: successful,
            failed_executions: total - successful,
            success_rate,
            confidence: Confidence::of(total, min_samples),
            min_samples_met: total >= min_samples,
        }
    }
}

/// How the AI chose the executed remediations.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AiExecutionMode {
    /// Executions of a workflow the AI selected from the catalog.
    pub catalog_selected: i64,
    /// Executions of chained workflows.
    pub chained: i64,
    /// Executions escalated to a person.
    pub manual_escalation: i64,
}

impl AiExecutionMode {
    fn of(c: &Counts) -> Self {
        Self {
            catalog_selected: c.catalog_selected,
            chained: c.chained,
            manual_escalation: c.manual_escalation,
        }
    }
}

/// One workflow version's share of an incident type's executions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkflowBreakdown {
    pub workflow_id: String,
    pub workflow_version: Option<String>,
    pub executions: i64,
    pub success_rate: f64,
}

/// One incident type's share of a workflow's executions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IncidentTypeBreakdown {
    pub incident_type: String,
    pub executions: i64,
    pub success_rate: f64,
}

/// `(time_range, hours, min_samples)`, defaults applied and checked against the operation's own
/// parameter schema (`rules`).
fn window(
    rules: &Rules,
    time_range: Option<String>,
    min_samples: Option<i64>,
) -> Result<(String, i32, i64)> {
    let time_range = time_range.unwrap_or_else(|| "7d".to_owned());
    let h = hours(&time_range)?;
    let min_samples = min_samples.unwrap_or(5);
    rules.number("min_samples", min_samples as f64)?;
    Ok((time_range, h, min_samples))
}

/// `GET /api/v1/success-rate/incident-type` parameters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentTypeQuery {
    #[param(example = "pod-oom-killer", min_length = 1, max_length = 100)]
    pub incident_type: String,
    /// How far back: hours or days (`24h`, `7d`), at most 3650d; default `7d`.
    #[param(pattern = "^[0-9]+(h|d)$")]
    pub time_range: Option<String>,
    /// Executions needed for a confidence level; default 5.
    #[param(minimum = 1)]
    pub min_samples: Option<i64>,
}

/// An incident type's success rate, and each workflow's.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IncidentTypeSuccessRate {
    pub incident_type: String,
    #[serde(flatten)]
    pub rates: Rates,
    pub ai_execution_mode: AiExecutionMode,
    /// Most executions first.
    pub workflow_breakdown: Vec<WorkflowBreakdown>,
}

/// How often remediations of an incident type succeed, and with which workflows.
#[utoipa::path(
    get,
    path = "/api/v1/success-rate/incident-type",
    tag = "incidents",
    security((), ("read_bearer" = [])),
    params(IncidentTypeQuery),
    responses(
        (status = 200, description = "The success rate", body = IncidentTypeSuccessRate),
        (status = 400, description = "Missing or invalid parameter", body = Problem, content_type = PROBLEM_JSON),
        ReadTokenProblem,
        ServerProblems,
    )
)]
pub async fn by_incident_type(
    State(state): State<AppState>,
    Query(q): Query<IncidentTypeQuery>,
) -> Result<Json<IncidentTypeSuccessRate>> {
    static RULES: LazyLock<Rules> = LazyLock::new(Rules::of_params::<IncidentTypeQuery>);
    RULES.text("incident_type", &q.incident_type)?;
    let (time_range, hours, min_samples) = window(&RULES, q.time_range, q.min_samples)?;
    let counts = store::by_incident_type(&state.query_pool, &q.incident_type, hours).await?;
    Ok(Json(IncidentTypeSuccessRate {
        incident_type: q.incident_type,
        rates: Rates::of(time_range, counts.total, counts.successful, min_samples),
        ai_execution_mode: AiExecutionMode::of(&counts),
        workflow_breakdown: breakdown(counts.breakdown)?,
    }))
}

/// `GET /api/v1/success-rate/workflow` parameters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorkflowQuery {
    #[param(min_length = 1, max_length = 255)]
    pub workflow_id: String,
    /// Only this version; default every version.
    #[param(max_length = 50)]
    pub workflow_version: Option<String>,
    /// How far back: hours or days (`24h`, `7d`), at most 3650d; default `7d`.
    #[param(pattern = "^[0-9]+(h|d)$")]
    pub time_range: Option<String>,
    /// Executions needed for a confidence level; default 5.
    #[param(minimum = 1)]
    pub min_samples: Option<i64>,
}

/// A workflow's success rate, and for each incident type.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkflowSuccessRate {
    pub workflow_id: String,
    pub workflow_version: Option<String>,
    #[serde(flatten)]
    pub rates: Rates,
    pub ai_execution_mode: AiExecutionMode,
    /// Most executions first.
    pub incident_type_breakdown: Vec<IncidentTypeBreakdown>,
}

/// How often a workflow (or one of its versions) succeeds, per incident type too.
#[utoipa::path(
    get,
    path = "/api/v1/success-rate/workflow",
    tag = "incidents",
    security((), ("read_bearer" = [])),
    params(WorkflowQuery),
    responses(
        (status = 200, description = "The success rate", body = WorkflowSuccessRate),
        (status = 400, description = "Missing or invalid parameter", body = Problem, content_type = PROBLEM_JSON),
        ReadTokenProblem,
        ServerProblems,
    )
)]
pub async fn by_workflow(
    State(state): State<AppState>,
    Query(q): Query<WorkflowQuery>,
) -> Result<Json<WorkflowSuccessRate>> {
    static RULES: LazyLock<Rules> = LazyLock::new(Rules::of_params::<WorkflowQuery>);
    RULES.text("workflow_id", &q.workflow_id)?;
    RULES.opt_text("workflow_version", q.workflow_version.as_deref())?;
    let (time_range, hours, min_samples) = window(&RULES, q.time_range, q.min_samples)?;
    let counts = store::by_workflow(
        &state.query_pool,
        &q.workflow_id,
        q.workflow_version.as_deref(),
        hours,
    )
    .await?;
    Ok(Json(WorkflowSuccessRate {
        workflow_id: q.workflow_id,
        workflow_version: q.workflow_version,
        rates: Rates::of(time_range, counts.total, counts.successful, min_samples),
        ai_execution_mode: AiExecutionMode::of(&counts),
        incident_type_breakdown: breakdown(counts.breakdown)?,
    }))
}

/// `GET /api/v1/success-rate/multi-dimensional` parameters: any of the dimensions.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DimensionsQuery {
    #[param(max_length = 100)]
    pub incident_type: Option<String>,
    #[param(max_length = 255)]
    pub workflow_id: Option<String>,
    #[param(max_length = 50)]
    pub workflow_version: Option<String>,
    #[param(max_length = 50)]
    pub action_type: Option<String>,
    /// How far back: hours or days (`24h`, `7d`), at most 3650d; default `7d`.
    #[param(pattern = "^[0-9]+(h|d)$")]
    pub time_range: Option<String>,
    /// Executions needed for a confidence level; default 5.
    #[param(minimum = 1)]
    pub min_samples: Option<i64>,
}

/// The dimensions a multi-dimensional answer is for (absent: any).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueriedDimensions {
    pub incident_type: Option<String>,
    pub workflow_id: Option<String>,
    pub workflow_version: Option<String>,
    pub action_type: Option<String>,
}

/// The success rate of the executions matching every given dimension.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MultiDimensionalSuccessRate {
    pub dimensions: QueriedDimensions,
    #[serde(flatten)]
    pub rates: Rates,
}

/// How often the executions of any combination of incident type, workflow, version and action
/// type succeed.
#[utoipa::path(
    get,
    path = "/api/v1/success-rate/multi-dimensional",
    tag = "incidents",
    security((), ("read_bearer" = [])),
    params(DimensionsQuery),
    responses(
        (status = 200, description = "The success rate", body = MultiDimensionalSuccessRate),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = PROBLEM_JSON),
        ReadTokenProblem,
        ServerProblems,
    )
)]
pub async fn multi_dimensional(
    State(state): State<AppState>,
    Query(q): Query<DimensionsQuery>,
) -> Result<Json<MultiDimensionalSuccessRate>> {
    static RULES: LazyLock<Rules> = LazyLock::new(Rules::of_params::<DimensionsQuery>);
    for (field, value) in [
        ("incident_type", &q.incident_type),
        ("workflow_id", &q.workflow_id),
        ("workflow_version", &q.workflow_version),
        ("action_type", &q.action_type),
    ] {
        RULES.opt_text(field, value.as_deref())?;
    }
    let (time_range, hours, min_samples) = window(&RULES, q.time_range, q.min_samples)?;
    let dimensions = Dimensions {
        incident_type: q.incident_type,
        workflow_id: q.workflow_id,
        workflow_version: q.workflow_version,
        action_type: q.action_type,
    };
    let (total, successful) = store::by_dimensions(&state.query_pool, &dimensions, hours).await?;
    Ok(Json(MultiDimensionalSuccessRate {
        dimensions: QueriedDimensions {
            incident_type: dimensions.incident_type,
            workflow_id: dimensions.workflow_id,
            workflow_version: dimensions.workflow_version,
            action_type: dimensions.action_type,
        },
        rates: Rates::of(time_range, total, successful, min_samples),
    }))
}

/// A breakdown the query built as JSON, as its typed rows.
fn breakdown<T: serde::de::DeserializeOwned>(rows: Value) -> Result<Vec<T>> {
    serde_json::from_value(rows)
        .map_err(|e| Error::Internal(format!("success-rate breakdown: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ranges_and_confidence() {
        assert_eq!(hours("24h").unwrap(), 24);
        assert_eq!(hours("7d").unwrap(), 168);
        assert_eq!(hours("3650d").unwrap(), 87_600);
        for bad in [
            "3651d",
            "7w",
            "d",
            "",
            "-1d",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(hours(bad).is_err(), "{bad}");
        }
        assert_eq!(Confidence::of(4, 1), Confidence::InsufficientData);
        assert_eq!(Confidence::of(5, 5), Confidence::Low);
        assert_eq!(Confidence::of(19, 5), Confidence::Low);
        assert_eq!(Confidence::of(20, 5), Confidence::Medium);
        assert_eq!(Confidence::of(99, 5), Confidence::Medium);
        assert_eq!(Confidence::of(100, 5), Confidence::High);
        assert_eq!(Confidence::of(100, 200), Confidence::InsufficientData);
        let r = Rates::of("7d".into(), 3, 2, 5);
        assert_eq!((r.success_rate, r.failed_executions), (66.67, 1));
        assert_eq!(Rates::of("7d".into(), 0, 0, 5).success_rate, 0.0);
    }
}
