//! Liveness, readiness (checks the database) and Prometheus metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{Error, Json, PROBLEM_JSON, Problem, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

/// Health state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    responses((status = 200, description = "Alive", body = Health))
)]
pub async fn live() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// The service can take writes: it reaches its database, or it has a spool with room.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    responses(
        (status = 200, description = "Ready: `ok`, or `spooling` when the database is unreachable and audit writes go to the spool", body = Health),
        (status = 503, description = "The database is unreachable (and there is no spool, or it is full)", body = Problem, content_type = PROBLEM_JSON),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Health>> {
    let check = sqlx::query_scalar!(r#"SELECT 1 AS "one!""#).fetch_one(&state.pool);
    let failure = match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(_)) => {
            return Ok(Json(Health {
                status: "ok".to_owned(),
            }));
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 2 s".to_owned(),
    };
    tracing::warn!(error = %failure, "readiness check failed");
    match &state.spool {
        // Writes are still taken (202), and reads fail with 503 as they would on any replica:
        // staying in the load balancer keeps the audit trail flowing.
        Some(spool) if !spool.is_full() => Ok(Json(Health {
            status: "spooling".to_owned(),
        })),
        Some(_) => Err(Error::SpoolFull),
        None => Err(Error::Unavailable),
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Metrics", body = String, content_type = "text/plain; version=0.0.4"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    for (name, pool) in [("writes", &state.pool), ("queries", &state.query_pool)] {
        metrics::gauge!("datastorage_db_pool_connections", "pool" => name)
            .set(f64::from(pool.size()));
        metrics::gauge!("datastorage_db_pool_idle_connections", "pool" => name)
            .set(pool.num_idle() as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
