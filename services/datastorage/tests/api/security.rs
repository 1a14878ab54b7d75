//! Roles (owner migrates, app does DML only) and the write token.

use reqwest::Url;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::helpers::{event, reply, spawn_app_with, spawn_on, workflow};

fn with_user(url: &str, user: &str, password: &str) -> String {
    let mut url = Url::parse(url).unwrap();
    url.set_username(user).unwrap();
    url.set_password(Some(password)).unwrap();
    url.to_string()
}

#[tokio::test]
async fn app_role_can_write_rows_but_not_change_the_schema() {
    let db = test_db::empty_database()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Roles are cluster-wide: unique names per run.
    let suffix = std::process::id();
    let roles = datastorage::roles::Roles {
        owner: format!("ds_owner_{suffix}"),
        owner_password: "owner-secret".into(),
        app: format!("ds_app_{suffix}"),
        app_password: "app-secret".into(),
    };
    datastorage::roles::setup(db.url(), &roles).await.unwrap();
    // Idempotent.
    datastorage::roles::setup(db.url(), &roles).await.unwrap();

    let owner_url = with_user(db.url(), &roles.owner, &roles.owner_password);
    let app_url = with_user(db.url(), &roles.app, &roles.app_password);
    let applied = datastorage::db::migrate(&owner_url).await.unwrap();
    assert_eq!(applied.len(), datastorage::MIGRATOR.iter().count());

    let mut app_conn = PgConnection::connect(&app_url).await.unwrap();
    for ddl in [
        "CREATE TABLE sneaky (id int)",
        "DROP TABLE audit_events",
        "ALTER TABLE audit_events ADD COLUMN sneaky int",
        "TRUNCATE audit_events",
        "CREATE INDEX sneaky ON notification_audit (recipient)",
        "DELETE FROM _sqlx_migrations WHERE false; DROP TABLE _sqlx_migrations",
    ] {
        let err = sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
            .execute(&mut app_conn)
            .await
            .expect_err(ddl);
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert!(
            matches!(code.as_deref(), Some("42501")),
            "{ddl}: expected permission denied, got {err}"
        );
    }

    // The service, connected as the app role, works.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect(&app_url)
        .await
        .unwrap();
    let app = spawn_on(Some(db), pool, |s| s).await;
    assert_eq!(
        app.post("/api/v1/audit/events", &event("roles"))
            .await
            .status,
        201
    );
    assert_eq!(
        app.post("/api/v1/workflows", &workflow("roles", "1"))
            .await
            .status,
        201
    );
    let notification = json!({
        "remediation_id": "r", "notification_id": "n", "recipient": "x", "channel": "email",
        "message_summary": "m", "status": "sent", "sent_at": "2026-11-25T10:00:00Z",
    });
    assert_eq!(
        app.post("/api/v1/audit/notifications", &notification)
            .await
            .status,
        201
    );
    let owner: String = sqlx::query_scalar(
        "SELECT tableowner::text FROM pg_tables WHERE tablename = 'audit_events'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(owner, roles.owner);
}

#[tokio::test]
async fn write_token_guards_writes_only() {
    let app = spawn_app_with(|s| s.with_write_token(Some("s3cret-token".into()))).await;
    let url = app.url("/api/v1/audit/events");
    let body = event("token");

    let none = reply(app.client.post(&url).json(&body).send().await.unwrap()).await;
    none.problem(401);
    let wrong = reply(
        app.client
            .post(&url)
            .bearer_auth("s3cret-tokeN")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    wrong.problem(401);
    let scheme = reply(
        app.client
            .post(&url)
            .header("authorization", "Basic s3cret-token")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    scheme.problem(401);
    assert_eq!(app.count("audit_events").await, 0);

    let ok = reply(
        app.client
            .post(&url)
            .bearer_auth("s3cret-token")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, 201, "{ok:?}");
    // Reads and search need no token.
    assert_eq!(app.get("/api/v1/audit/events").await.status, 200);
    let search = json!({"signal_type": "OOMKilled", "severity": "critical", "component": "*",
                        "environment": "production", "priority": "P0"});
    assert_eq!(
        app.post("/api/v1/workflows/search", &search).await.status,
        200
    );
}

/// Every operation the OpenAPI document marks with the bearer scheme refuses a request without a
/// token and one with a wrong token (401 problem, nothing written); every other operation needs
/// none. The list comes from the served document, so a new write endpoint is covered at once.
/// Every operation of the document: `METHOD path`, the method, a concrete path (any
/// well-formed id: tokens are checked before the lookup), and the security schemes it names.
fn documented_operations() -> Vec<(String, reqwest::Method, String, Vec<String>)> {
    let doc = serde_json::to_value(datastorage::openapi()).unwrap();
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let schemes = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_object())
                .flat_map(|r| r.keys().cloned())
                .collect();
            let concrete = path
                .split('/')
                .map(|seg| match seg {
                    "{workflow_name}" => "wf",
                    "{id}" => "1",
                    s if s.starts_with('{') => "6f1c1a2e-8f57-4a39-9a51-0c1f9f0b7c11",
                    s => s,
                })
                .collect::<Vec<_>>()
                .join("/");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            operations.push((format!("{method} {path}"), method, concrete, schemes));
        }
    }
    operations.sort();
    operations
}

/// The status of `method path` with `token`, and the reply.
async fn status_with(
    app: &crate::helpers::TestApp,
    method: &reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> crate::helpers::Reply {
    let mut request = app
        .client
        .request(method.clone(), app.url(path))
        .json(&json!({}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    reply(request.send().await.unwrap()).await
}

#[tokio::test]
async fn every_documented_write_needs_the_token() {
    let app = spawn_app_with(|s| s.with_write_token(Some("s3cret-token".into()))).await;
    let mut guarded = Vec::new();
    for (what, method, path, schemes) in documented_operations() {
        if schemes.iter().any(|s| s == "bearer") {
            guarded.push(what.clone());
            for token in [None, Some("s3cret-tokeN"), Some("")] {
                let r = status_with(&app, &method, &path, token).await;
                assert_eq!(r.status, 401, "{what} with token {token:?}: {r:?}");
                r.problem(401);
            }
            let r = status_with(&app, &method, &path, Some("s3cret-token")).await;
            assert_ne!(r.status, 401, "{what} refused the right token: {r:?}");
        } else {
            // Without a read token, reads are open.
            let r = status_with(&app, &method, &path, None).await;
            assert_ne!(r.status, 401, "{what} is open without a read token: {r:?}");
        }
    }
    assert_eq!(
        guarded,
        [
            "PATCH /api/v1/workflows/{workflow_id}",
            "POST /api/v1/action-traces",
            "POST /api/v1/action-traces/batch",
            "POST /api/v1/audit/events",
            "POST /api/v1/audit/events/batch",
            "POST /api/v1/audit/notifications",
            "POST /api/v1/workflows",
        ],
        "the document's guarded operations"
    );
    for table in [
        "audit_events",
        "notification_audit",
        "remediation_workflow_catalog",
    ] {
        assert_eq!(
            app.count(table).await,
            0,
            "{table}: a refused or invalid write stored a row"
        );
    }
}

#[tokio::test]
async fn with_a_read_token_every_documented_read_needs_it_or_the_write_token() {
    let (read, write) = ("r3ad-token", "wr1te-token");
    let app = spawn_app_with(|s| {
        s.with_write_token(Some(write.into()))
            .with_read_token(Some(read.into()))
    })
    .await;
    let mut reads = Vec::new();
    for (what, method, path, schemes) in documented_operations() {
        if schemes.iter().any(|s| s == "read_bearer") {
            reads.push(what.clone());
            for token in [None, Some("r3ad-tokeN"), Some("")] {
                let r = status_with(&app, &method, &path, token).await;
                assert_eq!(r.status, 401, "{what} with token {token:?}: {r:?}");
                r.problem(401);
            }
            for token in [read, write] {
                let r = status_with(&app, &method, &path, Some(token)).await;
                assert_ne!(r.status, 401, "{what} refused {token}: {r:?}");
            }
        } else if schemes.iter().any(|s| s == "bearer") {
            // The read token does not allow writes.
            let r = status_with(&app, &method, &path, Some(read)).await;
            assert_eq!(r.status, 401, "{what} took the read token: {r:?}");
        } else {
            // Health, metrics and the document stay open.
            let r = status_with(&app, &method, &path, None).await;
            assert_ne!(r.status, 401, "{what}: {r:?}");
        }
    }
    assert_eq!(
        reads,
        [
            "GET /api/v1/audit/events",
            "GET /api/v1/audit/events/{event_id}",
            "GET /api/v1/audit/notifications/{notification_id}",
            "GET /api/v1/incidents",
            "GET /api/v1/incidents/{id}",
            "GET /api/v1/success-rate/incident-type",
            "GET /api/v1/success-rate/multi-dimensional",
            "GET /api/v1/success-rate/workflow",
            "GET /api/v1/workflows",
            "GET /api/v1/workflows/by-name/{workflow_name}/versions",
            "GET /api/v1/workflows/{workflow_id}",
            "POST /api/v1/workflows/search",
        ],
        "the document's read-guarded operations"
    );
}

#[tokio::test]
async fn admin_listener_serves_health_and_metrics_and_the_api_listener_does_not() {
    let db = crate::helpers::database().await;
    // A free port for the admin listener.
    let admin = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin_address = admin.local_addr().unwrap().to_string();
    drop(admin);
    let process =
        crate::helpers::Process::start(db.url(), &["--admin-listen", &admin_address]).await;
    let client = reqwest::Client::new();
    for path in ["/health/live", "/health/ready", "/metrics"] {
        let on_admin = client
            .get(format!("http://{admin_address}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(on_admin.status(), 200, "{path} on the admin listener");
        let on_api = reply(
            client
                .get(format!("{}{path}", process.base))
                .send()
                .await
                .unwrap(),
        )
        .await;
        on_api.problem(404);
    }
    let api = client
        .get(format!("{}/api/v1/audit/events", process.base))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    let not_api = client
        .get(format!("http://{admin_address}/api/v1/audit/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(not_api.status(), 404, "the admin listener serves no API");
}
