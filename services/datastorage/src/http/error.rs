//! One error type for every handler, rendered as RFC 7807 `application/problem+json`.
//!
//! Database and internal errors are logged with `tracing` and answered with a generic problem;
//! their text never reaches the client.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 7807 problem document.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// A URI reference that identifies the problem type.
    #[serde(rename = "type")]
    #[schema(example = "urn:datastorage:problem:validation")]
    pub type_: String,
    /// A short, human-readable summary of the problem type.
    #[schema(example = "Validation failed")]
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 400)]
    pub status: u16,
    /// What went wrong with this request.
    #[schema(example = "event_type: must be 1 to 100 characters")]
    pub detail: String,
    /// The request path the problem occurred on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// Problems any endpoint that reads the database can answer: 500 and 503.
#[derive(Debug, utoipa::IntoResponses)]
pub enum ServerProblems {
    #[response(
        status = 500,
        description = "Internal error",
        content_type = "application/problem+json"
    )]
    Internal(Problem),
    #[response(
        status = 503,
        description = "Database unavailable",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// Problems of an audit write (`--spool` keeps those the database cannot take): 500 and 503.
#[derive(Debug, utoipa::IntoResponses)]
pub enum SpooledWriteProblems {
    #[response(
        status = 500,
        description = "Internal error",
        content_type = "application/problem+json"
    )]
    Internal(Problem),
    #[response(
        status = 503,
        description = "Database unavailable: without a spool, or with the spool full \
                       (type `urn:datastorage:problem:spool-full`); `Retry-After` says when to retry",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// Problems of an endpoint that takes a JSON body: 413 and 415.
#[derive(Debug, utoipa::IntoResponses)]
pub enum BodyProblems {
    #[response(
        status = 413,
        description = "Body too large",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    #[response(
        status = 415,
        description = "Not JSON",
        content_type = "application/problem+json"
    )]
    NotJson(Problem),
}

/// The problem of a write endpoint when a write token is configured: 401.
#[derive(Debug, utoipa::IntoResponses)]
#[response(
    status = 401,
    description = "Write token required",
    content_type = "application/problem+json"
)]
pub struct TokenProblem(pub Problem);

/// The problem of a read endpoint when a read token is configured: 401.
#[derive(Debug, utoipa::IntoResponses)]
#[response(
    status = 401,
    description = "Read token (or the write token) required",
    content_type = "application/problem+json"
)]
pub struct ReadTokenProblem(pub Problem);

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("{detail}")]
    Rejected { status: StatusCode, detail: String },
    #[error("the database is unavailable")]
    Unavailable,
    /// The database is unavailable and the spool cannot take the write.
    #[error("the database is unavailable and this replica's spool is full")]
    SpoolFull,
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn validation(detail: impl Into<String>) -> Self {
        Self::Validation(detail.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Rejected { status, .. } => *status,
            Self::Unavailable | Self::SpoolFull => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::Validation(_) => ("validation", "Validation failed"),
            Self::BadRequest(_) => ("bad-request", "Bad request"),
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::Conflict(_) => ("conflict", "Conflict"),
            Self::Unauthorized => ("unauthorized", "Unauthorized"),
            Self::Rejected { status, .. } => rejection_slug(*status),
            Self::Unavailable => ("unavailable", "Service unavailable"),
            Self::SpoolFull => ("spool-full", "Service unavailable"),
            Self::Database(_) | Self::Internal(_) => ("internal", "Internal server error"),
        }
    }

    /// The problem document this error renders as.
    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        let detail = match self {
            Self::Database(_) | Self::Internal(_) => {
                "the request could not be completed; the error was logged".to_owned()
            }
            Self::Unavailable => "the database is unavailable; retry the request later".to_owned(),
            Self::SpoolFull => "the database is unavailable and this replica's spool of writes \
                                waiting for it is full; retry the request later"
                .to_owned(),
            other => other.to_string(),
        };
        Problem {
            type_: problem_type(slug),
            title: title.to_owned(),
            status: self.status().as_u16(),
            detail,
            instance: None,
        }
    }
}

/// The `type` URI of a problem slug.
pub fn problem_type(slug: &str) -> String {
    format!("urn:datastorage:problem:{slug}")
}

fn rejection_slug(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("payload-too-large", "Payload too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", "Unsupported media type"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "Method not allowed"),
        StatusCode::NOT_FOUND => ("not-found", "Not found"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "Request timeout"),
        s if s.is_server_error() => ("internal", "Internal server error"),
        _ => ("bad-request", "Bad request"),
    }
}

impl Error {
    /// This error as the error of element `i` of a batch: a validation message names the
    /// element; other errors stay as they are.
    pub fn in_element(self, i: usize) -> Self {
        match self {
            Self::Validation(detail) => Self::Validation(format!("element {i}: {detail}")),
            other => other,
        }
    }
}

impl From<crate::store::spool::PushError> for Error {
    fn from(e: crate::store::spool::PushError) -> Self {
        match e {
            crate::store::spool::PushError::Full { .. } => Self::SpoolFull,
            // The write is neither stored nor queued: the client must retry, as without a spool.
            crate::store::spool::PushError::Io(e) => {
                tracing::error!(error = %e, "cannot append to the spool");
                Self::Unavailable
            }
        }
    }
}

impl From<crate::store::Error> for Error {
    fn from(e: crate::store::Error) -> Self {
        match e {
            crate::store::Error::Unavailable(_) => Self::Unavailable,
            crate::store::Error::Database(e) => Self::from(e),
            crate::store::Error::WriterStopped => {
                Self::Internal("the event writer stopped".to_owned())
            }
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if crate::store::is_unavailable(&e) {
            Self::Unavailable
        } else {
            Self::Database(e)
        }
    }
}

/// The one place a constraint violation becomes an answer: `.map_err(on_constraint(NAME, ||
/// Error::Conflict(…)))` maps a violation of constraint `NAME` to the given error, and any other
/// database error as [`Error::from`] does.
pub fn on_constraint(
    constraint: &'static str,
    error: impl FnOnce() -> Error,
) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some(constraint) => error(),
        _ => Error::from(e),
    }
}

/// A `problem+json` response with the given status and detail.
pub fn problem_response(status: StatusCode, detail: impl Into<String>) -> Response {
    Error::Rejected {
        status,
        detail: detail.into(),
    }
    .into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match &self {
            Self::Database(e) => tracing::error!(error = %e, "database error"),
            Self::Internal(e) => tracing::error!(error = %e, "internal error"),
            Self::Unavailable => tracing::warn!("database unavailable"),
            Self::SpoolFull => tracing::warn!("database unavailable and the spool is full"),
            _ => {}
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match self {
            Self::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::SpoolFull => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<JsonRejection> for Error {
    fn from(rejection: JsonRejection) -> Self {
        let status = match rejection.status() {
            // Wrong types and unknown enum values: a bad request like any other.
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            s => s,
        };
        Self::Rejected {
            status,
            detail: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Self::Rejected {
            status: StatusCode::BAD_REQUEST,
            detail: rejection.body_text(),
        }
    }
}

impl From<PathRejection> for Error {
    fn from(rejection: PathRejection) -> Self {
        Self::Rejected {
            status: StatusCode::BAD_REQUEST,
            detail: rejection.body_text(),
        }
    }
}

/// `axum::Json` whose rejections are problems, and which refuses the NUL character.
///
/// JSON may carry `\u0000` in a string, but PostgreSQL `text` and `jsonb` cannot store it; such
/// a body is a 400 naming where it is, rather than a database error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    /// axum's own steps and rejections: content type, body (within the body limit), JSON.
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(Error::Rejected {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                detail: "Expected request with `Content-Type: application/json`".to_owned(),
            });
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Error::from(JsonRejection::from(e)))?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        if let Some(at) = escaped_nul(&bytes) {
            return Err(Error::validation(format!(
                "the body holds a NUL character (\\u0000 at byte {at}), which PostgreSQL cannot store"
            )));
        }
        Ok(Self(value))
    }
}

/// `application/json` or any `application/*+json`, as `axum::Json` accepts.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| {
            m.type_() == mime::APPLICATION
                && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
        })
}

/// Byte offset of the first `\u0000` escape in a JSON text (one not itself escaped, as in
/// `\\u0000`).
fn escaped_nul(json: &[u8]) -> Option<usize> {
    memchr::memmem::find_iter(json, b"\\u0000").find(|&i| {
        let backslashes_before = json[..i].iter().rev().take_while(|&&b| b == b'\\').count();
        backslashes_before % 2 == 0
    })
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` whose rejections are problems.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` whose rejections are problems.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

#[cfg(test)]
mod tests {
    use super::escaped_nul;

    #[test]
    fn finds_nul_escapes_but_not_escaped_backslashes() {
        assert_eq!(escaped_nul(br#"{"a":"x\u0000"}"#), Some(7));
        assert_eq!(escaped_nul(br#"{"a\u0000":1}"#), Some(3));
        assert_eq!(escaped_nul(br#"{"a":"\\\u0000"}"#), Some(8));
        assert_eq!(escaped_nul(br#"{"a":"\\u0000"}"#), None);
        assert_eq!(escaped_nul(br#"{"a":"\\\\u0000 \u0001"}"#), None);
        assert_eq!(escaped_nul(br#"{"a":"u0000"}"#), None);
    }
}
