//! Shared helpers: a service on a private, migrated database; request shortcuts; sample bodies.

use std::process::Stdio;
use std::time::Duration;

use datastorage::{AppState, app};
use pg_embedded::Cluster;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use test_db::{Profile, TestDatabase};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A service listening on a free port, with its own database.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    /// Kept so the database lives as long as the service.
    _db: Option<TestDatabase>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A response, with the body parsed as JSON (`Value::Null` when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

impl Reply {
    /// Asserts an RFC 7807 problem with this status and returns its detail.
    #[track_caller]
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "unexpected reply: {self:?}");
        assert_eq!(self.content_type, "application/problem+json", "{self:?}");
        assert_eq!(self.body["status"], status, "{self:?}");
        for key in ["type", "title", "detail"] {
            assert!(self.body[key].is_string(), "problem lacks {key}: {self:?}");
        }
        self.body["detail"].as_str().unwrap().to_owned()
    }
}

/// A v1.0 database of its own, migrated from the test profile's template.
pub async fn database() -> TestDatabase {
    test_db::database(Profile::TEST)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|s| s).await
}

/// A service whose state `configure` may change (body limit, write token, …).
pub async fn spawn_app_with(configure: impl FnOnce(AppState) -> AppState) -> TestApp {
    let db = database().await;
    // The service's two pools, as `datastorage::run` sets them up.
    let sizes = datastorage::db::PoolSizes {
        writes: 8,
        queries: 4,
    };
    let (pool, query_pool) = datastorage::db::pools(
        db.url(),
        Duration::from_secs(30),
        sizes,
        Duration::from_secs(5),
    )
    .expect("pools");
    spawn_on(Some(db), pool, move |s| {
        configure(s.with_query_pool(query_pool))
    })
    .await
}

/// A service on `pool`; `db` (if any) is kept alive as long as the service.
pub async fn spawn_on(
    db: Option<TestDatabase>,
    pool: PgPool,
    configure: impl FnOnce(AppState) -> AppState,
) -> TestApp {
    let state = configure(AppState::new(pool.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        datastorage::serve(listener, app(state))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    TestApp {
        base,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        pool,
        _db: db,
        stop: Some(stop),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The `content-type` of a response ("" when it has none).
pub fn content_type(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

pub async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let content_type = content_type(response.headers());
    let bytes = response.bytes().await.unwrap();
    Reply {
        status,
        content_type,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Reply {
        reply(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        reply(
            self.client
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        reply(
            self.client
                .patch(self.url(path))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn count(&self, table: &str) -> i64 {
        count(&self.pool, table).await
    }
}

pub async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The value of the sample `name{labels}` in a Prometheus text exposition (labels in the order
/// the exporter writes them, i.e. sorted as given), if present.
pub fn sample(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{labels}}}")
    };
    metrics.lines().find_map(|line| {
        let (k, v) = line.rsplit_once(' ')?;
        (k == key).then(|| v.parse().unwrap())
    })
}

/// RFC 3339 for now minus `seconds_ago`.
pub fn ago(seconds_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds_ago))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A valid audit event.
pub fn event(correlation_id: &str) -> Value {
    json!({
        "version": "1.0",
        "event_type": "gateway.signal.received",
        "event_timestamp": ago(1),
        "event_category": "gateway",
        "event_action": "received",
        "event_outcome": "success",
        "correlation_id": correlation_id,
        "event_data": {"signal": "OOMKilled", "pod": "api-7d9f"},
    })
}

/// A valid workflow version.
pub fn workflow(name: &str, version: &str) -> Value {
    json!({
        "workflow_name": name,
        "version": version,
        "name": format!("{name} {version}"),
        "description": "Raise the memory limit of the OOMKilled deployment",
        "content": format!("apiVersion: tekton.dev/v1\nkind: Pipeline\n# {name} {version}\n"),
        "labels": {
            "signal_type": "OOMKilled",
            "severity": "critical",
            "component": "deployment",
            "environment": "production",
            "priority": "P0",
        },
    })
}

/// A service on database `name` of a private embedded server, which the test may stop
/// ([`Cluster::pause`]) and start again; `connections` in its pool, 0.5 s to acquire one;
/// `configure` may change its state.
pub async fn app_on_own_server(
    name: &str,
    connections: u32,
    configure: impl FnOnce(AppState) -> AppState,
) -> (Cluster, String, TestApp) {
    let cluster = Cluster::start().expect("embedded PostgreSQL");
    let url = cluster.create_database(name).unwrap();
    datastorage::db::migrate(&url).await.unwrap();
    let options = datastorage::db::connect_options(&url, Duration::from_secs(5)).unwrap();
    let pool = datastorage::db::pool(options, connections, Duration::from_millis(500));
    let app = spawn_on(None, pool, configure).await;
    (cluster, url, app)
}

/// A `datastorage` process started with `args`, and the address it listens on.
pub struct Process {
    pub child: Child,
    pub base: String,
}

impl Process {
    pub async fn start(database_url: &str, args: &[&str]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_datastorage"))
            .args(["--database-url", database_url, "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start datastorage");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("datastorage did not start listening within 60 s")
            .unwrap();
        let Some(line) = line else {
            let out = child.wait_with_output().await.unwrap();
            panic!(
                "datastorage exited before listening: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Process { child, base }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("running") as i32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
    }
}
