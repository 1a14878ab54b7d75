//! The HTTP API: one module per resource, assembled by [`app`].

pub mod analytics;
pub mod audit;
pub mod error;
pub mod health;
pub mod notifications;
pub mod traces;
mod validate;
pub mod workflows;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use error::{Error, PROBLEM_JSON};

/// The header that carries a request's id, in the request and in its response.
pub const REQUEST_ID: &str = "x-request-id";

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Writes and lookups by id.
    pub pool: PgPool,
    /// Filtered queries, planned for their values on every call
    /// ([`crate::db::planned_per_execution`]). May be the same pool as `pool`.
    pub query_pool: PgPool,
    /// Writer tasks of single audit events (on `pool`), which coalesce concurrent events.
    pub events: crate::store::EventWriter,
    /// Where audit writes go that the database cannot take (`--spool`); without it they get 503.
    pub spool: Option<crate::store::Spool>,
    /// Bearer token required by write endpoints, when configured.
    pub write_token: Option<Arc<str>>,
    /// Bearer token required by read endpoints (the write token works too), when configured.
    pub read_token: Option<Arc<str>>,
    pub metrics: PrometheusHandle,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Time limit for one request.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("pool", &self.pool)
            .field("query_pool", &self.query_pool)
            .field("events", &self.events)
            .field("spool", &self.spool)
            .field(
                "write_token",
                &self.write_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "read_token",
                &self.read_token.as_ref().map(|_| "<redacted>"),
            )
            .field("body_limit", &self.body_limit)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Default number of event writer tasks (concurrent INSERTs of single events).
    pub const EVENT_WRITERS: usize = 2;

    /// State with defaults for everything but the pool (8 MiB bodies, 30 s per request, no token,
    /// [`AppState::EVENT_WRITERS`] event writers). The one pool serves writes and queries alike;
    /// [`AppState::with_query_pool`] separates them.
    pub fn new(pool: PgPool) -> Self {
        Self {
            query_pool: pool.clone(),
            events: crate::store::EventWriter::new(pool.clone(), Self::EVENT_WRITERS),
            pool,
            spool: None,
            write_token: None,
            read_token: None,
            metrics: metrics_handle(),
            body_limit: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Replace the event writers with `writers` tasks on the write pool.
    pub fn with_event_writers(mut self, writers: usize) -> Self {
        self.events = crate::store::EventWriter::new(self.pool.clone(), writers);
        self
    }

    /// Keep audit writes the database cannot take in `spool` (its drain is started apart, with
    /// [`crate::store::Spool::start_draining`]).
    pub fn with_spool(mut self, spool: Option<crate::store::Spool>) -> Self {
        self.spool = spool;
        self
    }

    /// The spool, when records wait in it: then audit writes queue behind them, so that none is
    /// stored before one accepted earlier (and none waits for a database known to be down).
    pub fn spooling(&self) -> Option<&crate::store::Spool> {
        self.spool.as_ref().filter(|s| s.is_draining())
    }

    pub fn with_query_pool(mut self, pool: PgPool) -> Self {
        self.query_pool = pool;
        self
    }

    pub fn with_write_token(mut self, token: Option<String>) -> Self {
        self.write_token = token.map(Arc::from);
        self
    }

    pub fn with_read_token(mut self, token: Option<String>) -> Self {
        self.read_token = token.map(Arc::from);
        self
    }
}

/// The process-wide Prometheus recorder (installed once, shared by every router).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .expect("static bucket list is valid")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed by an embedding program; then ours
            // only renders what it records itself.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "DataStorage API",
        description = "Audit events, notification audit records and the remediation-workflow catalog. \
                       Errors are RFC 7807 problem documents (application/problem+json).\n\n\
                       The schemas state every limit JSON Schema can express. Beyond them: \
                       no text (in a body, a path or a query) may hold the NUL character \
                       U+0000, which PostgreSQL cannot store (400); a query parameter the \
                       operation does not list is refused (400); rules JSON Schema cannot \
                       express are in each field's description.\n\n\
                       Every response carries `x-request-id`: the request's own, or a new \
                       UUID; the service's log lines of that request carry the same id."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "audit", description = "Audit events"),
        (name = "notifications", description = "Notification audit records"),
        (name = "workflows", description = "Remediation-workflow catalog"),
        (name = "incidents", description = "Action traces and the incidents they record"),
        (name = "health", description = "Health and metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // The read endpoints' token (`--read-token-file`); the write token is accepted too.
        components.add_security_scheme(
            "read_bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The tokens as the guard middleware finds them (a request extension set by [`app`]).
#[derive(Clone)]
struct Tokens {
    write: Option<Arc<str>>,
    read: Option<Arc<str>>,
}

/// Which routes a router serves: the API, the operators' endpoints (health, metrics), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    All,
    /// The API and its document, without health and metrics (`--admin-listen` serves those).
    Api,
    /// Health and metrics only.
    Admin,
}

/// The documented routes of `serves`.
fn routes(serves: Serves) -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::with_openapi(ApiDoc::openapi());
    if serves != Serves::Admin {
        let guarded = OpenApiRouter::new()
            .merge(audit::router())
            .merge(notifications::router())
            .merge(traces::router())
            .merge(analytics::router())
            .merge(workflows::router())
            .layer(middleware::from_fn(require_tokens));
        router = router
            .merge(guarded)
            .merge(
                workflows::search_router()
                    .layer(middleware::from_fn(require_read_token_for_search)),
            )
            .routes(utoipa_axum::routes!(openapi_json));
    }
    if serves != Serves::Api {
        router = router.merge(health::router());
    }
    router
}

/// The OpenAPI document of the service, generated from the handlers' own types.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = routes(Serves::All).split_for_parts().1;
    utoipa::Modify::modify(&workflows::UpdateNeedsAField, &mut doc);
    doc
}

/// The OpenAPI document (the same as `docs/openapi.json`).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "health",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json"))
)]
async fn openapi_json() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let body = DOC.get_or_init(|| openapi().to_pretty_json().unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response()
}

/// The service: every route, problem+json for every error, metrics, limits and timeouts.
pub fn app(state: AppState) -> Router {
    app_serving(state, Serves::All)
}

/// The service's routes of `serves` (`--admin-listen` puts health and metrics on a listener of
/// their own).
pub fn app_serving(state: AppState, serves: Serves) -> Router {
    let (router, _) = routes(serves).split_for_parts();
    router
        .route_layer(middleware::from_fn(record_metrics))
        .fallback(not_found)
        .layer(middleware::from_fn(refuse_nul_in_uri))
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(DefaultBodyLimit::max(state.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.request_timeout,
        ))
        .layer(Extension(Tokens {
            write: state.write_token.clone(),
            read: state.read_token.clone(),
        }))
        // Every line logged while a request runs carries its id (the span's `request_id`), and
        // the response returns it: the client's own `x-request-id`, or a new UUID.
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
        .route(
            "/",
            get(|| async { axum::response::Redirect::temporary("/api/v1/openapi.json") }),
        )
}

/// The span of one request: method, URI and request id.
fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        uri = %request.uri(),
        request_id = %id
    )
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Error {
    Error::NotFound(format!("no route for {method} {}", uri.path()))
}

/// Writes need `Authorization: Bearer <write token>` when one is configured; reads (GET, HEAD)
/// need the read token, or the write token, when a read token is configured.
async fn require_tokens(
    Extension(tokens): Extension<Tokens>,
    request: Request,
    next: Next,
) -> Response {
    let read = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    guard(&tokens, read, request, next).await
}

/// The workflow search is a read, though a POST.
async fn require_read_token_for_search(
    Extension(tokens): Extension<Tokens>,
    request: Request,
    next: Next,
) -> Response {
    guard(&tokens, true, request, next).await
}

async fn guard(tokens: &Tokens, read: bool, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compared in constant time.
    let is = |token: &Option<Arc<str>>| {
        token
            .as_deref()
            .is_some_and(|t| bool::from(given.as_bytes().ct_eq(t.as_bytes())))
    };
    let allowed = if read {
        tokens.read.is_none() || is(&tokens.read) || is(&tokens.write)
    } else {
        tokens.write.is_none() || is(&tokens.write)
    };
    if allowed {
        next.run(request).await
    } else {
        Error::Unauthorized.into_response()
    }
}

/// Request count and latency per route and status, and the number of requests in flight.
async fn record_metrics(request: Request, next: Next) -> Response {
    /// Counts a request as in flight until it is answered or dropped.
    struct InFlight(metrics::Gauge);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.decrement(1.0);
        }
    }
    let in_flight = InFlight(metrics::gauge!("datastorage_http_requests_in_flight"));
    in_flight.0.increment(1.0);
    let start = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("datastorage_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("datastorage_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
}

/// A NUL character (`%00`) in the path or query would reach PostgreSQL, which cannot store or
/// compare it: a 400 problem instead. (`%` only ever starts an escape in a valid URI.)
async fn refuse_nul_in_uri(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let nul = |s: &str| s.contains("%00");
    if nul(uri.path()) || uri.query().is_some_and(nul) {
        return Error::validation(
            "the URL holds a NUL character (%00), which PostgreSQL cannot store",
        )
        .into_response();
    }
    next.run(request).await
}

/// Errors produced outside the handlers (405, timeouts, …) become problems too.
async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("method {method} is not allowed here"),
        StatusCode::SERVICE_UNAVAILABLE => "the request took too long and was cancelled".to_owned(),
        s => s.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut problem = error::problem_response(status, detail);
    if let Some(allow) = allow {
        problem.headers_mut().insert(header::ALLOW, allow);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        problem
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    problem
}
