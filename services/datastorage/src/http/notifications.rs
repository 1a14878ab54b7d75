//! Notification audit records.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::store;
use crate::store::notifications::NewRow;
use crate::store::spool::Record;

use super::AppState;
use super::audit::Queued;
use super::error::{
    BodyProblems, Error, Json, PROBLEM_JSON, Path, Problem, ReadTokenProblem, Result,
    ServerProblems, SpooledWriteProblems, TokenProblem, on_constraint,
};
use super::validate::Rules;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_notification))
        .routes(routes!(get_notification))
}

/// Delivery state of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    Sent,
    Failed,
    Acknowledged,
    Escalated,
}

impl NotificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Acknowledged => "acknowledged",
            Self::Escalated => "escalated",
        }
    }
}

/// A new notification audit record.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNotification {
    #[schema(min_length = 1, max_length = 255)]
    pub remediation_id: String,
    /// Unique (409 if a record with it exists).
    #[schema(min_length = 1, max_length = 255)]
    pub notification_id: String,
    #[schema(min_length = 1, max_length = 255)]
    pub recipient: String,
    /// e.g. `slack`, `email`.
    #[schema(min_length = 1, max_length = 50)]
    pub channel: String,
    #[schema(min_length = 1, max_length = 100000)]
    pub message_summary: String,
    pub status: NotificationStatus,
    #[serde(deserialize_with = "super::validate::rfc3339::required")]
    pub sent_at: DateTime<Utc>,
    pub delivery_status: Option<String>,
    pub error_message: Option<String>,
    /// Default 0.
    #[schema(minimum = 0)]
    pub escalation_level: Option<i32>,
    pub signal_fingerprint: Option<String>,
}

/// A stored notification audit record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    pub id: i64,
    pub remediation_id: String,
    pub notification_id: String,
    pub recipient: String,
    pub channel: String,
    pub message_summary: String,
    pub status: String,
    pub sent_at: DateTime<Utc>,
    pub delivery_status: Option<String>,
    pub error_message: Option<String>,
    pub escalation_level: i32,
    pub signal_fingerprint: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The acknowledgement of a record kept in the spool (202).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NotificationQueued {
    pub status: Queued,
    pub notification_id: String,
}

/// Store a notification audit record.
#[utoipa::path(
    post,
    path = "/api/v1/audit/notifications",
    tag = "notifications",
    request_body = NewNotification,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Stored", body = Notification),
        (status = 202, description = "The database is unavailable: the record is kept in the service's spool (`--spool`) and will be stored then. \
                                      If another record holds its notification_id by then, it is kept in the spool's failed records", body = NotificationQueued),
        (status = 400, description = "Invalid record or malformed JSON", body = Problem, content_type = PROBLEM_JSON),
        TokenProblem,
        (status = 409, description = "A record with this notification_id exists", body = Problem, content_type = PROBLEM_JSON),
        BodyProblems,
        SpooledWriteProblems,
    )
)]
pub async fn create_notification(
    State(state): State<AppState>,
    Json(n): Json<NewNotification>,
) -> Result<Response> {
    static RULES: LazyLock<Rules> = LazyLock::new(Rules::of::<NewNotification>);
    for (field, value) in [
        ("remediation_id", &n.remediation_id),
        ("notification_id", &n.notification_id),
        ("recipient", &n.recipient),
        ("channel", &n.channel),
        ("message_summary", &n.message_summary),
    ] {
        RULES.text(field, value)?;
    }
    let escalation_level = n.escalation_level.unwrap_or(0);
    RULES.number("escalation_level", f64::from(escalation_level))?;
    let n = NewRow {
        remediation_id: n.remediation_id,
        notification_id: n.notification_id,
        recipient: n.recipient,
        channel: n.channel,
        message_summary: n.message_summary,
        status: n.status.as_str().to_owned(),
        sent_at: n.sent_at,
        delivery_status: n.delivery_status,
        error_message: n.error_message,
        escalation_level,
        signal_fingerprint: n.signal_fingerprint,
    };
    if let Some(spool) = state.spooling() {
        return queue(spool, n).await;
    }
    let stored = sqlx::query_as!(
        Notification,
        r#"INSERT INTO notification_audit (
               remediation_id, notification_id, recipient, channel, message_summary,
               status, sent_at, delivery_status, error_message, escalation_level,
               signal_fingerprint)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           RETURNING id, remediation_id, notification_id, recipient, channel, message_summary,
                     status, sent_at, delivery_status, error_message, escalation_level,
                     signal_fingerprint, created_at, updated_at"#,
        n.remediation_id,
        n.notification_id,
        n.recipient,
        n.channel,
        n.message_summary,
        n.status,
        n.sent_at,
        n.delivery_status,
        n.error_message,
        n.escalation_level,
        n.signal_fingerprint,
    )
    .fetch_one(&state.pool)
    .await;
    match stored {
        Ok(stored) => Ok((StatusCode::CREATED, Json(stored)).into_response()),
        Err(e) if store::is_unavailable(&e) && state.spool.is_some() => {
            queue(state.spool.as_ref().expect("checked"), n).await
        }
        Err(e) => Err(on_constraint(
            "notification_audit_notification_id_key",
            || {
                Error::Conflict(format!(
                    "a notification with notification_id {:?} already exists",
                    n.notification_id
                ))
            },
        )(e)),
    }
}

/// Keep `row` in the spool and answer 202.
async fn queue(spool: &store::Spool, row: NewRow) -> Result<Response> {
    let body = NotificationQueued {
        status: Queued::Queued,
        notification_id: row.notification_id.clone(),
    };
    spool.push(&Record::Notification { row }).await?;
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// One notification audit record by its notification_id.
#[utoipa::path(
    get,
    path = "/api/v1/audit/notifications/{notification_id}",
    tag = "notifications",
    security((), ("read_bearer" = [])),
    params(("notification_id" = String, Path, description = "The notification's id")),
    responses(
        (status = 200, description = "The record", body = Notification),
        (status = 404, description = "No such record", body = Problem, content_type = PROBLEM_JSON),
        ReadTokenProblem,
        ServerProblems,
    )
)]
pub async fn get_notification(
    State(state): State<AppState>,
    Path(notification_id): Path<String>,
) -> Result<Json<Notification>> {
    sqlx::query_as!(
        Notification,
        r#"SELECT id, remediation_id, notification_id, recipient, channel, message_summary,
                  status, sent_at, delivery_status, error_message, escalation_level,
                  signal_fingerprint, created_at, updated_at
           FROM notification_audit
           WHERE notification_id = $1"#,
        notification_id
    )
    .fetch_optional(&state.pool)
    .await?
    .map(Json)
    .ok_or_else(|| Error::NotFound(format!("no notification with id {notification_id:?}")))
}
