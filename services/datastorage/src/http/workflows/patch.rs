//! `PATCH /api/v1/workflows/{id}`: a workflow version's lifecycle fields.

use super::*;

/// The mutable part of a workflow version: at least one of its fields. Any other field is
/// immutable (400).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowUpdate {
    #[schema(nullable = false)]
    pub status: Option<WorkflowStatus>,
    /// Set to null to clear.
    #[schema(max_length = 255)]
    pub disabled_by: Option<String>,
    /// Set to null to clear.
    #[schema(max_length = 10000)]
    pub disabled_reason: Option<String>,
}

/// Fewest fields in an update (`minProperties` of [`WorkflowUpdate`], set by
/// [`UpdateNeedsAField`]).
const MIN_UPDATE_FIELDS: usize = 1;

/// States `minProperties` of the PATCH body in the document. utoipa-gen 5.5 writes
/// `#[schema(min_properties = …)]` as `maxProperties` (its `Feature::MinProperties` emits
/// `.max_properties(…)`), so the keyword is set here instead.
#[derive(Debug)]
pub struct UpdateNeedsAField;

impl utoipa::Modify for UpdateNeedsAField {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let schema = openapi
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("WorkflowUpdate"));
        if let Some(utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(o))) = schema
        {
            o.min_properties = Some(MIN_UPDATE_FIELDS);
        }
    }
}

/// Parsed PATCH body: which fields were given, and their values (`None` = null).
#[derive(Debug, Default)]
struct Patch {
    status: Option<WorkflowStatus>,
    disabled_by: Option<Option<String>>,
    disabled_reason: Option<Option<String>>,
}

fn parse_patch(body: Value) -> Result<Patch> {
    let Value::Object(fields) = body else {
        return Err(Error::validation("the update must be a JSON object"));
    };
    if fields.len() < MIN_UPDATE_FIELDS {
        return Err(Error::validation(
            "the update is empty; it may set status, disabled_by and disabled_reason",
        ));
    }
    let mut patch = Patch::default();
    static RULES: LazyLock<Rules> = LazyLock::new(Rules::of::<WorkflowUpdate>);
    let opt_string = |key: &str, v: Value| -> Result<Option<String>> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => {
                RULES.text(key, &s)?;
                Ok(Some(s))
            }
            other => Err(Error::validation(format!(
                "{key}: expected a string or null, got {other}"
            ))),
        }
    };
    for (key, value) in fields {
        match key.as_str() {
            "status" => {
                patch.status = Some(
                    serde_json::from_value(value)
                        .map_err(|e| Error::validation(format!("status: {e}")))?,
                );
            }
            "disabled_by" => patch.disabled_by = Some(opt_string("disabled_by", value)?),
            "disabled_reason" => {
                patch.disabled_reason = Some(opt_string("disabled_reason", value)?);
            }
            other => {
                return Err(Error::validation(format!(
                    "{other}: immutable field; only status, disabled_by and disabled_reason can be updated"
                )));
            }
        }
    }
    Ok(patch)
}

/// Change a workflow version's lifecycle fields.
#[utoipa::path(
    patch,
    path = "/api/v1/workflows/{workflow_id}",
    tag = "workflows",
    params(("workflow_id" = Uuid, Path, description = "The workflow version's id")),
    request_body = WorkflowUpdate,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Workflow),
        (status = 400, description = "Immutable field, invalid value or malformed JSON", body = Problem, content_type = PROBLEM_JSON),
        TokenProblem,
        (status = 404, description = "No such workflow", body = Problem, content_type = PROBLEM_JSON),
        BodyProblems,
        ServerProblems,
    )
)]
pub async fn update_workflow(
    State(state): State<AppState>,
    Path(workflow_id): Path<Uuid>,
    Json(body): Json<Value>,
) -> Result<Json<Workflow>> {
    let patch = parse_patch(body)?;
    sqlx::query_as!(
        Workflow,
        r#"UPDATE remediation_workflow_catalog
           SET status = COALESCE($2, status),
               disabled_at = CASE
                   WHEN $2::text IS NULL THEN disabled_at
                   WHEN $2 = 'disabled' THEN COALESCE(disabled_at, now())
                   ELSE NULL
               END,
               disabled_by = CASE WHEN $3 THEN $4 ELSE disabled_by END,
               disabled_reason = CASE WHEN $5 THEN $6 ELSE disabled_reason END
           WHERE workflow_id = $1
           RETURNING workflow_id, workflow_name, version, name, description, content,
                     content_hash, labels, status, is_latest_version, parameters,
                     execution_engine, container_image, container_digest, custom_labels,
                     detected_labels, disabled_at, disabled_by, disabled_reason,
                     created_at, updated_at"#,
        workflow_id,
        patch.status.map(WorkflowStatus::as_str),
        patch.disabled_by.is_some(),
        patch.disabled_by.flatten(),
        patch.disabled_reason.is_some(),
        patch.disabled_reason.flatten(),
    )
    .fetch_optional(&state.pool)
    .await?
    .map(Json)
    .ok_or_else(|| Error::NotFound(format!("no workflow with id {workflow_id}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patch_allows_only_lifecycle_fields() {
        let p = parse_patch(json!({"status": "disabled", "disabled_reason": null})).unwrap();
        assert_eq!(p.status, Some(WorkflowStatus::Disabled));
        assert_eq!(p.disabled_reason, Some(None));
        assert_eq!(p.disabled_by, None);
        let err = parse_patch(json!({"content": "x"}))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("content: immutable field"), "{err}");
        assert!(parse_patch(json!({})).is_err());
        assert!(parse_patch(json!([])).is_err());
        assert!(parse_patch(json!({"status": "gone"})).is_err());
    }
}
