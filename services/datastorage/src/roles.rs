//! The two database roles: the schema owner (runs migrations) and the application role
//! (DML only), which the service connects as.

use anyhow::Context as _;
use sqlx::{Connection, PgConnection};

/// Names and passwords of the two roles.
#[derive(Clone)]
pub struct Roles {
    pub owner: String,
    pub owner_password: String,
    pub app: String,
    pub app_password: String,
}

impl std::fmt::Debug for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roles")
            .field("owner", &self.owner)
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

fn ident(name: &str) -> anyhow::Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    anyhow::ensure!(
        ok,
        "role name {name:?} must be 1-63 characters of a-z, 0-9 and _, not starting with a digit"
    );
    Ok(format!("\"{name}\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Create (or update) both roles on the database `admin_url` points at, as a superuser or a role
/// with CREATEROLE. Idempotent.
///
/// The owner may create objects in schema `public`; the app role may connect and use the
/// schema, and gets SELECT/INSERT/UPDATE/DELETE on the owner's tables (present and future),
/// USAGE on its sequences and EXECUTE on its functions: it cannot create, alter or drop
/// anything.
pub async fn setup(admin_url: &str, roles: &Roles) -> anyhow::Result<()> {
    let owner = ident(&roles.owner)?;
    let app = ident(&roles.app)?;
    anyhow::ensure!(owner != app, "the owner and app roles must differ");
    let mut conn = PgConnection::connect(admin_url)
        .await
        .context("cannot connect with the admin URL")?;
    let database: String = sqlx::query_scalar!(r#"SELECT current_database() AS "db!""#)
        .fetch_one(&mut conn)
        .await?;
    let database = format!("\"{}\"", database.replace('"', "\"\""));
    let mut statements = Vec::new();
    for (role, password) in [(&owner, &roles.owner_password), (&app, &roles.app_password)] {
        anyhow::ensure!(!password.is_empty(), "the password of role {role} is empty");
        let name = literal(role.trim_matches('"'));
        statements.push(format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN \
             CREATE ROLE {role} LOGIN; END IF; END $$"
        ));
        statements.push(format!(
            "ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}",
            literal(password)
        ));
        statements.push(format!("GRANT CONNECT ON DATABASE {database} TO {role}"));
    }
    statements.extend([
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_owned(),
        format!("GRANT USAGE, CREATE ON SCHEMA public TO {owner}"),
        format!("GRANT USAGE ON SCHEMA public TO {app}"),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public \
             GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}"
        ),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public \
             GRANT USAGE, SELECT ON SEQUENCES TO {app}"
        ),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public \
             GRANT EXECUTE ON FUNCTIONS TO {app}"
        ),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}"),
        format!("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {app}"),
    ]);
    let mut tx = conn.begin().await?;
    for statement in statements {
        // Role names are checked by `ident`, passwords quoted by `literal`.
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await
            .context("setting up the roles failed")?;
    }
    tx.commit().await?;
    conn.close().await?;
    Ok(())
}
