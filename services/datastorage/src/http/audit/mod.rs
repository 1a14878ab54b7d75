//! Audit events: single and batch writes, filtered queries with keyset pagination, lookup by id.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::store;
use crate::store::audit::Row;
use crate::store::spool::Record;

use super::AppState;
use super::error::{
    BodyProblems, Error, Json, PROBLEM_JSON, Path, Problem, Query, ReadTokenProblem, Result,
    ServerProblems, SpooledWriteProblems, TokenProblem,
};
use super::validate::{self, Rules};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_event, list_events))
        .routes(routes!(create_batch))
        .routes(routes!(get_event))
}

/// Newest accepted event time, relative to the server clock.
const MAX_FUTURE: chrono::Duration = chrono::Duration::minutes(5);
/// Oldest accepted event time, relative to the server clock.
const MAX_AGE: chrono::Duration = chrono::Duration::days(7);

/// Which part of the platform emitted the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventCategory {
    Gateway,
    Notification,
    Analysis,
    Signalprocessing,
    Workflow,
    Execution,
    Orchestration,
}

impl EventCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Notification => "notification",
            Self::Analysis => "analysis",
            Self::Signalprocessing => "signalprocessing",
            Self::Workflow => "workflow",
            Self::Execution => "execution",
            Self::Orchestration => "orchestration",
        }
    }
}

/// How the audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventOutcome {
    Success,
    Failure,
    Pending,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Pending => "pending",
        }
    }
}

/// A new audit event.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAuditEvent {
    /// Event schema version.
    #[schema(example = "1.0", min_length = 1, max_length = 20)]
    pub version: String,
    #[schema(example = "gateway.signal.received", min_length = 1, max_length = 100)]
    pub event_type: String,
    /// RFC 3339; at most 5 minutes in the future and at most 7 days old.
    #[serde(deserialize_with = "super::validate::rfc3339::required")]
    pub event_timestamp: DateTime<Utc>,
    pub event_category: EventCategory,
    #[schema(example = "received", min_length = 1, max_length = 50)]
    pub event_action: String,
    pub event_outcome: EventOutcome,
    #[schema(example = "rr-2026-11-25-001", min_length = 1, max_length = 255)]
    pub correlation_id: String,
    /// Any JSON object.
    #[schema(value_type = Object)]
    pub event_data: Map<String, Value>,
    /// Default `service`.
    #[schema(max_length = 50)]
    pub actor_type: Option<String>,
    /// Default `<event_category>-service`.
    #[schema(max_length = 255)]
    pub actor_id: Option<String>,
    /// Default: the event category.
    #[schema(max_length = 100)]
    pub resource_type: Option<String>,
    /// Default: the correlation id.
    #[schema(max_length = 255)]
    pub resource_id: Option<String>,
    /// An existing event's id (400 if there is none).
    pub parent_event_id: Option<Uuid>,
    #[schema(max_length = 253)]
    pub namespace: Option<String>,
    #[schema(max_length = 255)]
    pub cluster_name: Option<String>,
    /// Default `info`.
    #[schema(max_length = 20)]
    pub severity: Option<String>,
    #[schema(minimum = 0)]
    pub duration_ms: Option<i32>,
    #[schema(max_length = 50)]
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    #[schema(max_length = 64)]
    pub trace_id: Option<String>,
    #[schema(max_length = 32)]
    pub span_id: Option<String>,
}

impl NewAuditEvent {
    fn validate(self, now: DateTime<Utc>) -> Result<Row> {
        static RULES: LazyLock<Rules> = LazyLock::new(Rules::of::<NewAuditEvent>);
        for (field, value) in [
            ("version", &self.version),
            ("event_type", &self.event_type),
            ("event_action", &self.event_action),
            ("correlation_id", &self.correlation_id),
        ] {
            RULES.text(field, value)?;
        }
        if self.event_timestamp > now + MAX_FUTURE {
            return Err(Error::validation(format!(
                "event_timestamp: {} is more than 5 minutes in the future",
                self.event_timestamp.to_rfc3339()
            )));
        }
        if self.event_timestamp < now - MAX_AGE {
            return Err(Error::validation(format!(
                "event_timestamp: {} is more than 7 days old",
                self.event_timestamp.to_rfc3339()
            )));
        }
        for (field, value) in [
            ("actor_type", &self.actor_type),
            ("actor_id", &self.actor_id),
            ("resource_type", &self.resource_type),
            ("resource_id", &self.resource_id),
            ("namespace", &self.namespace),
            ("cluster_name", &self.cluster_name),
            ("severity", &self.severity),
            ("error_code", &self.error_code),
            ("trace_id", &self.trace_id),
            ("span_id", &self.span_id),
        ] {
            RULES.opt_text(field, value.as_deref())?;
        }
        RULES.opt_number("duration_ms", self.duration_ms.map(f64::from))?;
        let category = self.event_category.as_str();
        Ok(Row {
            event_id: Uuid::new_v4(),
            event_date: self.event_timestamp.date_naive(),
            event_timestamp: self.event_timestamp,
            version: self.version,
            event_type: self.event_type,
            event_category: category.to_owned(),
            event_action: self.event_action,
            event_outcome: self.event_outcome.as_str().to_owned(),
            actor_type: self.actor_type.unwrap_or_else(|| "service".to_owned()),
            actor_id: self
                .actor_id
                .unwrap_or_else(|| format!("{category}-service")),
            resource_type: self.resource_type.unwrap_or_else(|| category.to_owned()),
            resource_id: self
                .resource_id
                .unwrap_or_else(|| self.correlation_id.clone()),
            correlation_id: self.correlation_id,
            parent_event_id: self.parent_event_id,
            trace_id: self.trace_id,
            span_id: self.span_id,
            namespace: self.namespace,
            cluster_name: self.cluster_name,
            event_data: Value::Object(self.event_data),
            severity: self.severity.unwrap_or_else(|| "info".to_owned()),
            duration_ms: self.duration_ms,
            error_code: self.error_code,
            error_message: self.error_message,
        })
    }
}

/// Fewest events in a batch.
const MIN_BATCH: usize = 1;

/// The request body of the batch write: a JSON array of audit events, stored all or nothing.
/// Only its schema is used: the handler reads the elements one by one from the raw body.
#[derive(Debug)]
pub struct EventBatch;

impl utoipa::PartialSchema for EventBatch {
    fn schema() -> RefOr<Schema> {
        validate::batch_schema::<NewAuditEvent>(MIN_BATCH, "Audit events, stored all or nothing.")
    }
}

impl ToSchema for EventBatch {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        validate::batch_item_schemas::<NewAuditEvent>(schemas);
    }
}

/// The acknowledgement of a stored event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventCreated {
    pub event_id: Uuid,
    pub event_timestamp: DateTime<Utc>,
}

/// The acknowledgement of a stored batch, in request order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchCreated {
    pub count: usize,
    pub events: Vec<EventCreated>,
}

/// The state of a write the database could not take now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Queued {
    /// Kept on the service's disk (the spool); stored, in the order accepted, once the database
    /// is back.
    Queued,
}

/// The acknowledgement of an event kept in the spool (202): it will be stored with this id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventQueued {
    pub status: Queued,
    pub event_id: Uuid,
    pub event_timestamp: DateTime<Utc>,
}

/// The acknowledgement of a batch kept in the spool (202), in request order: it will be stored
/// all or nothing, with these ids.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchQueued {
    pub status: Queued,
    pub count: usize,
    pub events: Vec<EventCreated>,
}

/// Keep `rows` in the spool and answer 202 with `body`.
async fn queue<T: Serialize>(
    spool: &crate::store::Spool,
    rows: Vec<Row>,
    parent_dates: Vec<Option<NaiveDate>>,
    body: T,
) -> Result<Response> {
    let n = rows.len() as u64;
    spool.push(&Record::Events { rows, parent_dates }).await?;
    metrics::counter!("datastorage_audit_events_queued_total").increment(n);
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Store one audit event.
#[utoipa::path(
    post,
    path = "/api/v1/audit/events",
    tag = "audit",
    request_body = NewAuditEvent,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Stored", body = EventCreated),
        (status = 202, description = "The database is unavailable: the event is kept in the service's spool (`--spool`) and will be stored with this id. \
                                      Its parent event, if any, is checked then; an event whose parent does not exist is kept in the spool's failed records", body = EventQueued),
        (status = 400, description = "Invalid event, malformed JSON or unknown parent event", body = Problem, content_type = PROBLEM_JSON),
        TokenProblem,
        BodyProblems,
        SpooledWriteProblems,
    )
)]
pub async fn create_event(
    State(state): State<AppState>,
    Json(event): Json<NewAuditEvent>,
) -> Result<Response> {
    let row = event.validate(Utc::now())?;
    let event_id = row.event_id;
    let event_timestamp = row.event_timestamp;
    let queued = EventQueued {
        status: Queued::Queued,
        event_id,
        event_timestamp,
    };
    if let Some(spool) = state.spooling() {
        return queue(spool, vec![row], vec![None], queued).await;
    }
    let parent_date = match row.parent_event_id {
        Some(parent) => match store::audit::parent_date(&state.pool, parent).await {
            Ok(Some(date)) => Some(date),
            Ok(None) => {
                return Err(Error::validation(format!(
                    "parent_event_id: no event with id {parent}"
                )));
            }
            Err(e) if store::is_unavailable(&e) && state.spool.is_some() => {
                let spool = state.spool.as_ref().expect("checked");
                return queue(spool, vec![row], vec![None], queued).await;
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    // The writer consumes the row; a copy is kept only where the spool may need it.
    let kept = state.spool.as_ref().map(|spool| (spool, row.clone()));
    match state.events.write(row, parent_date).await {
        Ok(()) => {}
        Err(store::Error::Unavailable(_)) if kept.is_some() => {
            let (spool, row) = kept.expect("checked");
            return queue(spool, vec![row], vec![parent_date], queued).await;
        }
        Err(e) => return Err(e.into()),
    }
    metrics::counter!("datastorage_audit_events_written_total").increment(1);
    Ok((
        StatusCode::CREATED,
        Json(EventCreated {
            event_id,
            event_timestamp,
        }),
    )
        .into_response())
}

/// Store a JSON array of audit events, all or nothing.
#[utoipa::path(
    post,
    path = "/api/v1/audit/events/batch",
    tag = "audit",
    request_body = EventBatch,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "All stored", body = BatchCreated),
        (status = 202, description = "The database is unavailable: the batch is kept in the service's spool (`--spool`) and will be stored all or nothing, with these ids", body = BatchQueued),
        (status = 400, description = "Not an array, empty, or an invalid element (named by its index); nothing stored", body = Problem, content_type = PROBLEM_JSON),
        TokenProblem,
        BodyProblems,
        SpooledWriteProblems,
    )
)]
pub async fn create_batch(
    State(state): State<AppState>,
    Json(body): Json<Box<RawValue>>,
) -> Result<Response> {
    // The body is valid JSON by now; each element is deserialized straight from its text, with
    // its index in any error, and no intermediate JSON tree is built.
    let items: Vec<&RawValue> = serde_json::from_str(body.get())
        .map_err(|_| Error::validation("the batch body must be a JSON array of events"))?;
    if items.len() < MIN_BATCH {
        return Err(Error::validation("the batch is empty"));
    }
    let now = Utc::now();
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let event: NewAuditEvent = serde_json::from_str(item.get())
            .map_err(|e| Error::validation(format!("element {i}: {e}")))?;
        let row = event.validate(now).map_err(|e| e.in_element(i))?;
        rows.push(row);
    }
    let acknowledged = |rows: &[Row]| {
        rows.iter()
            .map(|r| EventCreated {
                event_id: r.event_id,
                event_timestamp: r.event_timestamp,
            })
            .collect::<Vec<_>>()
    };
    let queued = |rows: &[Row]| BatchQueued {
        status: Queued::Queued,
        count: rows.len(),
        events: acknowledged(rows),
    };
    if let Some(spool) = state.spooling() {
        let body = queued(&rows);
        let unknown = vec![None; rows.len()];
        return queue(spool, rows, unknown, body).await;
    }
    let parents = match store::audit::parent_dates(&state.pool, &rows).await {
        Ok(parents) => parents,
        Err(e) if store::is_unavailable(&e) && state.spool.is_some() => {
            let spool = state.spool.as_ref().expect("checked");
            let body = queued(&rows);
            let unknown = vec![None; rows.len()];
            return queue(spool, rows, unknown, body).await;
        }
        Err(e) => return Err(e.into()),
    };
    for (i, row) in rows.iter().enumerate() {
        if let Some(parent) = row.parent_event_id
            && !parents.contains_key(&parent)
        {
            return Err(Error::validation(format!(
                "element {i}: parent_event_id: no event with id {parent}"
            )));
        }
    }
    let parent_dates: Vec<Option<NaiveDate>> = rows
        .iter()
        .map(|r| r.parent_event_id.and_then(|p| parents.get(&p).copied()))
        .collect();
    match store::audit::insert_rows(&state.pool, &rows, &parent_dates).await {
        Ok(()) => {}
        Err(e) if store::is_unavailable(&e) && state.spool.is_some() => {
            let spool = state.spool.as_ref().expect("checked");
            let body = queued(&rows);
            return queue(spool, rows, parent_dates, body).await;
        }
        Err(e) => return Err(e.into()),
    }
    metrics::counter!("datastorage_audit_events_written_total").increment(rows.len() as u64);
    let events = acknowledged(&rows);
    Ok((
        StatusCode::CREATED,
        Json(BatchCreated {
            count: events.len(),
            events,
        }),
    )
        .into_response())
}

/// A stored audit event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub event_id: Uuid,
    pub version: String,
    pub event_type: String,
    pub event_timestamp: DateTime<Utc>,
    pub event_date: NaiveDate,
    pub event_category: String,
    pub event_action: String,
    pub event_outcome: String,
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub correlation_id: String,
    pub parent_event_id: Option<Uuid>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub namespace: Option<String>,
    pub cluster_name: Option<String>,
    #[schema(value_type = Object)]
    pub event_data: Value,
    pub severity: Option<String>,
    pub duration_ms: Option<i32>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub retention_days: i32,
    pub created_at: DateTime<Utc>,
}

/// Filters of `GET /api/v1/audit/events`. Results are newest first.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    pub event_type: Option<String>,
    pub event_category: Option<EventCategory>,
    pub event_outcome: Option<EventOutcome>,
    pub severity: Option<String>,
    pub correlation_id: Option<String>,
    /// RFC 3339 time or a duration ago (`24h`, `30m`, `7d`); inclusive.
    pub since: Option<String>,
    /// RFC 3339 time or a duration ago; exclusive.
    pub until: Option<String>,
    /// Default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of events.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<AuditEvent>,
    pub pagination: Pagination,
}

/// Keyset pagination state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Pagination {
    pub limit: i64,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Opaque cursor: the sort key of the last event of a page.
fn encode_cursor(ts: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{id}", ts.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid)> {
    let bad = || Error::validation("cursor: not a cursor returned by this API");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (micros, id) = text.split_once('|').ok_or_else(bad)?;
    let ts = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(bad)?;
    let id = id.parse::<Uuid>().map_err(|_| bad())?;
    Ok((ts, id))
}

/// Query audit events, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit/events",
    tag = "audit",
    security((), ("read_bearer" = [])),
    params(EventFilter),
    responses(
        (status = 200, description = "One page of events", body = EventPage),
        (status = 400, description = "Invalid filter, limit or cursor", body = Problem, content_type = PROBLEM_JSON),
        ReadTokenProblem,
        ServerProblems,
    )
)]
pub async fn list_events(
    State(state): State<AppState>,
    Query(filter): Query<EventFilter>,
) -> Result<Json<EventPage>> {
    let now = Utc::now();
    static RULES: LazyLock<Rules> = LazyLock::new(Rules::of_params::<EventFilter>);
    let limit = filter.limit.unwrap_or(100);
    RULES.number("limit", limit as f64)?;
    let since = filter
        .since
        .as_deref()
        .map(|s| validate::time_or_relative("since", s, now))
        .transpose()?;
    let until = filter
        .until
        .as_deref()
        .map(|s| validate::time_or_relative("until", s, now))
        .transpose()?;
    let (after_ts, after_id) = match filter.cursor.as_deref().map(decode_cursor).transpose()? {
        Some((ts, id)) => (Some(ts), Some(id)),
        None => (None, None),
    };
    let since_date = since.map(|t| t.date_naive());
    let until_date = until.map(|t| t.date_naive());
    let mut data = sqlx::query_as!(
        AuditEvent,
        r#"SELECT event_id, event_version AS version, event_type, event_timestamp, event_date,
                  event_category, event_action, event_outcome, actor_type, actor_id,
                  resource_type, resource_id, correlation_id, parent_event_id, trace_id, span_id,
                  namespace, cluster_name, event_data, severity, duration_ms, error_code,
                  error_message, retention_days, created_at
           FROM audit_events
           WHERE ($1::text IS NULL OR event_type = $1)
             AND ($2::text IS NULL OR event_category = $2)
             AND ($3::text IS NULL OR event_outcome = $3)
             AND ($4::text IS NULL OR severity = $4)
             AND ($5::text IS NULL OR correlation_id = $5)
             AND ($6::timestamptz IS NULL OR event_timestamp >= $6)
             AND ($7::date IS NULL OR event_date >= $7)
             AND ($8::timestamptz IS NULL OR event_timestamp < $8)
             AND ($9::date IS NULL OR event_date <= $9)
             AND ($10::timestamptz IS NULL OR (event_timestamp, event_id) < ($10, $11::uuid))
           ORDER BY event_timestamp DESC, event_id DESC
           LIMIT $12"#,
        filter.event_type,
        filter.event_category.map(EventCategory::as_str),
        filter.event_outcome.map(EventOutcome::as_str),
        filter.severity,
        filter.correlation_id,
        since,
        since_date,
        until,
        until_date,
        after_ts,
        after_id,
        limit + 1,
    )
    .fetch_all(&state.query_pool)
    .await?;
    let next_cursor = if data.len() as i64 > limit {
        data.truncate(limit as usize);
        data.last()
            .map(|e| encode_cursor(e.event_timestamp, e.event_id))
    } else {
        None
    };
    Ok(Json(EventPage {
        data,
        pagination: Pagination { limit, next_cursor },
    }))
}

/// One audit event by id.
#[utoipa::path(
    get,
    path = "/api/v1/audit/events/{event_id}",
    tag = "audit",
    security((), ("read_bearer" = [])),
    params(("event_id" = Uuid, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The event", body = AuditEvent),
        (status = 400, description = "Not a UUID", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such event", body = Problem, content_type = PROBLEM_JSON),
        ReadTokenProblem,
        ServerProblems,
    )
)]
pub async fn get_event(
    State(state): State<AppState>,
    Path(event_id): Path<Uuid>,
) -> Result<Json<AuditEvent>> {
    sqlx::query_as!(
        AuditEvent,
        r#"SELECT event_id, event_version AS version, event_type, event_timestamp, event_date,
                  event_category, event_action, event_outcome, actor_type, actor_id,
                  resource_type, resource_id, correlation_id, parent_event_id, trace_id, span_id,
                  namespace, cluster_name, event_data, severity, duration_ms, error_code,
                  error_message, retention_days, created_at
           FROM audit_events
           WHERE event_id = $1
           LIMIT 1"#,
        event_id
    )
    .fetch_optional(&state.pool)
    .await?
    .map(Json)
    .ok_or_else(|| Error::NotFound(format!("no audit event with id {event_id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let ts = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(decode_cursor(&encode_cursor(ts, id)).unwrap(), (ts, id));
        for bad in [
            "",
            "!!",
            "bm90LWEtY3Vyc29y",
            &URL_SAFE_NO_PAD.encode("12|nope"),
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
