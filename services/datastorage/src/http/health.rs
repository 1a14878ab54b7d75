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

/// The service can reach its database.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database is unreachable", body = Problem, content_type = PROBLEM_JSON),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Health>> {
    let check = sqlx::query_scalar!(r#"SELECT 1 AS "one!""#).fetch_one(&state.pool);
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(_)) => Ok(Json(Health {
            status: "ok".to_owned(),
        })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(Error::Unavailable)
        }
        Err(_) => Err(Error::Unavailable),
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
