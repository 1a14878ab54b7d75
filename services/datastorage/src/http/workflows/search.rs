//! `POST /api/v1/workflows/search`: label search over the active, latest versions.

use super::*;

/// A label search: hard filters on the five labels, scoring on detected and custom labels.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    #[schema(min_length = 1, max_length = 100)]
    pub signal_type: String,
    pub severity: Severity,
    /// `*` matches any component (and a workflow whose component is `*` matches any request).
    #[schema(min_length = 1, max_length = 100)]
    pub component: String,
    #[schema(min_length = 1, max_length = 100)]
    pub environment: String,
    pub priority: Priority,
    /// Each label the workflow has with the same value adds 0.5 to the score's numerator;
    /// each it has with a different value subtracts 1.
    #[schema(value_type = Option<Object>)]
    pub detected_labels: Option<Map<String, Value>>,
    /// Each label the workflow has with the same value (or, for arrays, a shared element)
    /// adds 0.5.
    #[schema(value_type = Option<Object>)]
    pub custom_labels: Option<Map<String, Value>>,
    /// Default 10.
    #[schema(minimum = 1, maximum = 100)]
    pub top_k: Option<u32>,
    /// Default 0.
    #[schema(minimum = 0, maximum = 1)]
    pub min_score: Option<f64>,
}

/// A ranked search result.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    /// (5 + boosts − penalties) / 10, clamped to 0–1.
    pub score: f64,
    pub workflow_id: Uuid,
    pub workflow_name: String,
    pub version: String,
    pub name: String,
    pub description: String,
    #[schema(value_type = WorkflowLabels)]
    pub labels: Value,
    #[schema(value_type = Object)]
    pub custom_labels: Value,
    #[schema(value_type = Object)]
    pub detected_labels: Value,
    pub container_image: Option<String>,
    pub execution_engine: String,
}

/// Search results, best first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    pub total_results: usize,
    pub workflows: Vec<SearchHit>,
}

const DETECTED_BOOST: f64 = 0.5;
const DETECTED_PENALTY: f64 = 1.0;
const CUSTOM_BOOST: f64 = 0.5;

fn custom_matches(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Array(w), Value::Array(h)) => w.iter().any(|x| h.contains(x)),
        (w, Value::Array(h)) => h.contains(w),
        (Value::Array(w), h) => w.contains(h),
        (w, h) => w == h,
    }
}

/// The score of one candidate.
fn score(req: &SearchRequest, detected: &Value, custom: &Value) -> f64 {
    let mut numerator = 5.0;
    if let Some(want) = &req.detected_labels {
        for (key, value) in want {
            match detected.get(key) {
                Some(have) if have == value => numerator += DETECTED_BOOST,
                Some(_) => numerator -= DETECTED_PENALTY,
                None => {}
            }
        }
    }
    if let Some(want) = &req.custom_labels {
        for (key, value) in want {
            if custom
                .get(key)
                .is_some_and(|have| custom_matches(value, have))
            {
                numerator += CUSTOM_BOOST;
            }
        }
    }
    (numerator / 10.0).clamp(0.0, 1.0)
}

/// Find the active, latest workflows matching a signal, ranked by score.
#[utoipa::path(
    post,
    path = "/api/v1/workflows/search",
    tag = "workflows",
    security((), ("read_bearer" = [])),
    request_body = SearchRequest,
    responses(
        (status = 200, description = "Ranked results", body = SearchResults),
        (status = 400, description = "Invalid search or malformed JSON", body = Problem, content_type = PROBLEM_JSON),
        BodyProblems,
        ReadTokenProblem,
        ServerProblems,
    )
)]
pub async fn search_workflows(
    State(state): State<AppState>,
    Json(req): Json<SearchRequest>,
) -> Result<Json<SearchResults>> {
    static RULES: LazyLock<Rules> = LazyLock::new(Rules::of::<SearchRequest>);
    for (field, value) in [
        ("signal_type", &req.signal_type),
        ("component", &req.component),
        ("environment", &req.environment),
    ] {
        RULES.text(field, value)?;
    }
    let top_k = req.top_k.unwrap_or(10);
    RULES.number("top_k", f64::from(top_k))?;
    let min_score = req.min_score.unwrap_or(0.0);
    RULES.number("min_score", min_score)?;
    let candidates = sqlx::query!(
        r#"SELECT workflow_id, workflow_name, version, name, description, labels,
                  custom_labels, detected_labels, container_image, execution_engine
           FROM remediation_workflow_catalog
           WHERE status = 'active'
             AND is_latest_version
             AND labels->>'signal_type' = $1
             AND labels->>'severity' = $2
             AND ($3 = '*' OR labels->>'component' IN ($3, '*'))
             AND labels->>'environment' = $4
             AND labels->>'priority' = $5"#,
        req.signal_type,
        req.severity.as_str(),
        req.component,
        req.environment,
        req.priority.as_str(),
    )
    .fetch_all(&state.query_pool)
    .await?;
    let mut hits: Vec<SearchHit> = candidates
        .into_iter()
        .map(|c| SearchHit {
            score: score(&req, &c.detected_labels, &c.custom_labels),
            workflow_id: c.workflow_id,
            workflow_name: c.workflow_name,
            version: c.version,
            name: c.name,
            description: c.description,
            labels: c.labels,
            custom_labels: c.custom_labels,
            detected_labels: c.detected_labels,
            container_image: c.container_image,
            execution_engine: c.execution_engine,
        })
        .filter(|h| h.score >= min_score)
        .collect();
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.workflow_name.cmp(&b.workflow_name))
    });
    hits.truncate(top_k as usize);
    Ok(Json(SearchResults {
        total_results: hits.len(),
        workflows: hits,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(detected: Value, custom: Value) -> SearchRequest {
        serde_json::from_value(json!({
            "signal_type": "OOMKilled", "severity": "critical", "component": "*",
            "environment": "production", "priority": "P0",
            "detected_labels": detected, "custom_labels": custom,
        }))
        .unwrap()
    }

    #[test]
    fn scores_boosts_and_penalties() {
        let req = request(
            json!({"gitOpsManaged": true, "pdbProtected": true}),
            json!({"team": "payments"}),
        );
        // No labels on the workflow: the base score.
        assert_eq!(score(&req, &json!({}), &json!({})), 0.5);
        // One detected match, one detected conflict, one custom match: (5 + 0.5 - 1 + 0.5) / 10.
        let s = score(
            &req,
            &json!({"gitOpsManaged": true, "pdbProtected": false}),
            &json!({"team": ["payments", "core"]}),
        );
        assert!((s - 0.5).abs() < 1e-9, "{s}");
        let s = score(
            &req,
            &json!({"gitOpsManaged": true, "pdbProtected": true}),
            &json!({"team": "payments"}),
        );
        assert!((s - 0.65).abs() < 1e-9, "{s}");
    }
}
