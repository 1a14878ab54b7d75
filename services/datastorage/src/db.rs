//! Database connections and the embedded v1.0 migrations.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::MIGRATOR;

/// Connection options every service connection uses: its name in `pg_stat_activity` and a
/// statement timeout.
///
/// Prepared statements are planned the PostgreSQL way: generically once they have run a few
/// times. That is right for writes and lookups by key; the filter queries get their own pool
/// with [`planned_per_execution`].
pub fn connect_options(url: &str, statement_timeout: Duration) -> anyhow::Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url)
        .context("DATABASE_URL is not a valid PostgreSQL URL")?
        .application_name("datastorage")
        .options([(
            "statement_timeout",
            format!("{}ms", statement_timeout.as_millis()),
        )]);
    Ok(options)
}

/// The same options with `plan_cache_mode = force_custom_plan`, for the pool of the filter
/// queries.
///
/// Those queries take optional filters (`$1 IS NULL OR col = $1`). A plan made for the actual
/// values folds the absent filters away and keeps partition pruning and index use; a cached
/// generic plan would not. Writes do not need it, and planning every INSERT again costs them
/// about a fifth of their throughput, so they keep PostgreSQL's default.
pub fn planned_per_execution(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("plan_cache_mode", "force_custom_plan")])
}

/// A lazily connecting pool: the service starts (and reports not-ready) while the database is
/// down, and recovers by itself when it comes back.
///
/// Connections are not pinged before each use (that would double the round trips of a write);
/// a connection broken by a database restart fails its next query, which is answered with 503,
/// and is then discarded.
pub fn pool(options: PgConnectOptions, max_connections: u32, acquire_timeout: Duration) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .connect_lazy_with(options)
}

/// The service's two pools on `url`, both lazily connecting: writes and lookups by id with
/// PostgreSQL's default planning, and the filtered queries [planned per execution](planned_per_execution).
pub fn pools(
    url: &str,
    statement_timeout: Duration,
    sizes: PoolSizes,
    acquire_timeout: Duration,
) -> anyhow::Result<(PgPool, PgPool)> {
    let options = connect_options(url, statement_timeout)?;
    Ok((
        pool(options.clone(), sizes.writes, acquire_timeout),
        pool(
            planned_per_execution(options),
            sizes.queries,
            acquire_timeout,
        ),
    ))
}

/// Connections of each of the service's pools.
#[derive(Debug, Clone, Copy)]
pub struct PoolSizes {
    pub writes: u32,
    pub queries: u32,
}

/// Apply the embedded v1.0 migrations on a dedicated connection.
///
/// sqlx takes its advisory lock for the run, so concurrent instances wait for each other and
/// every migration is applied once. A database migrated with another profile is refused before
/// anything runs. The connection is closed afterwards, on failure too, which
/// releases the lock even when sqlx did not. Returns the versions this call applied.
pub async fn migrate(url: &str) -> anyhow::Result<Vec<i64>> {
    let options = PgConnectOptions::from_str(url)
        .context("the migration database URL is not a valid PostgreSQL URL")?
        .application_name("datastorage-migrate");
    let mut conn = PgConnection::connect_with(&options)
        .await
        .context("cannot connect to the database to migrate it")?;
    let result = migrate_on(&mut conn).await;
    let _ = conn.close().await;
    result
}

async fn migrate_on(conn: &mut PgConnection) -> anyhow::Result<Vec<i64>> {
    // A database of another profile (the canonical one, with pgvector), or one half-upgraded,
    // must not be touched by this profile's migrator: the error names the upgrade command.
    pg_schema::profile_guard::check(conn, crate::profile::NAME, &MIGRATOR)
        .await
        .context("refusing to migrate")?;
    let before = applied_versions(conn).await?;
    MIGRATOR
        .run(&mut *conn)
        .await
        .with_context(|| format!("applying the {} migrations failed", crate::profile::NAME))?;
    let after = applied_versions(conn).await?;
    Ok(after.difference(&before).copied().collect())
}

async fn applied_versions(conn: &mut PgConnection) -> anyhow::Result<BTreeSet<i64>> {
    let exists =
        sqlx::query_scalar!(r#"SELECT to_regclass('_sqlx_migrations') IS NOT NULL AS "exists!""#)
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        return Ok(BTreeSet::new());
    }
    let versions = sqlx::query_scalar!("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(&mut *conn)
        .await?;
    Ok(versions.into_iter().collect())
}
