//! The rows of sqlx's `_sqlx_migrations` table.

use sqlx::PgConnection;

/// The table sqlx records applied migrations in (its default; the project does not change it).
pub const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// One row of `_sqlx_migrations`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppliedMigration {
    pub version: i64,
    pub description: String,
    /// `installed_on` as PostgreSQL prints it.
    pub installed_on: String,
    pub success: bool,
    /// SHA-384 of the migration file that was applied.
    pub checksum: Vec<u8>,
    /// Nanoseconds, as sqlx measures them (`-1` while a migration's transaction is open).
    pub execution_time: i64,
}

impl AppliedMigration {
    /// The checksum as lowercase hex.
    pub fn checksum_hex(&self) -> String {
        self.checksum.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Every row of `_sqlx_migrations` in version order, or `None` when the table does not exist
/// (the database was never migrated with sqlx). Only reads.
pub async fn read(conn: &mut PgConnection) -> Result<Option<Vec<AppliedMigration>>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(MIGRATIONS_TABLE)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(None);
    }
    let rows = sqlx::query_as(
        "SELECT version, description, installed_on::text AS installed_on, success, checksum, execution_time
         FROM _sqlx_migrations
         ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(rows))
}

/// The name of the database `conn` is connected to.
pub async fn current_database(conn: &mut PgConnection) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(conn)
        .await
}
