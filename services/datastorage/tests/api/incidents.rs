//! Action traces and incidents, on PostgreSQL: recording is idempotent on `action_id`; a batch is
//! all or nothing; the listing filters, pages with a true total and `has_more`, newest first.

use serde_json::{Value, json};

use crate::helpers::{TestApp, ago, spawn_app};

/// A valid action trace.
fn trace(action_id: &str, alert: &str, namespace: &str, seconds_ago: i64) -> Value {
    json!({
        "action_id": action_id,
        "action_timestamp": ago(seconds_ago),
        "resource": {
            "uid": format!("uid-{namespace}-api"),
            "api_version": "apps/v1",
            "kind": "Deployment",
            "name": "api",
            "namespace": namespace,
        },
        "alert_name": alert,
        "alert_severity": "critical",
        "alert_labels": {"pod": "api-7d9f"},
        "action_type": "increase_memory",
        "execution_status": "completed",
        "incident_type": "pod-oom-killer",
        "workflow_id": "oomkill-increase-memory",
        "workflow_version": "1.0.0",
        "ai_selected_workflow": true,
    })
}

async fn rows(app: &TestApp) -> (i64, i64, i64) {
    (
        app.count("resource_action_traces").await,
        app.count("resource_references").await,
        app.count("action_histories").await,
    )
}

#[tokio::test]
async fn a_trace_is_recorded_once_per_action_id() {
    let app = spawn_app().await;
    let first = app
        .post(
            "/api/v1/action-traces",
            &trace("act-1", "PodOOMKilled", "payments", 60),
        )
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(first.body["created"], true);
    let again = app
        .post(
            "/api/v1/action-traces",
            &trace("act-1", "PodOOMKilled", "payments", 30),
        )
        .await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["created"], false);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(rows(&app).await, (1, 1, 1));
    // A second action on the same resource: one resource, one history counting two actions.
    let second = app
        .post(
            "/api/v1/action-traces",
            &trace("act-2", "PodOOMKilled", "payments", 10),
        )
        .await;
    assert_eq!(second.status, 201);
    assert_eq!(rows(&app).await, (2, 1, 1));
    let total: i32 = sqlx::query_scalar("SELECT total_actions FROM action_histories")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(total, 2);

    let incident = app
        .get(&format!("/api/v1/incidents/{}", first.body["id"]))
        .await;
    assert_eq!(incident.status, 200);
    assert_eq!(incident.body["action_id"], "act-1");
    assert_eq!(incident.body["namespace"], "payments");
    assert_eq!(incident.body["resource_kind"], "Deployment");
    assert_eq!(incident.body["execution_status"], "completed");
    app.get("/api/v1/incidents/999999").await.problem(404);
    app.get("/api/v1/incidents/not-a-number").await.problem(400);
}

#[tokio::test]
async fn a_batch_is_all_or_nothing_and_a_recreated_resource_keeps_its_reference() {
    let app = spawn_app().await;
    let mut bad = trace("b-2", "PodOOMKilled", "payments", 5);
    bad["resource"]["namespace"] = json!("n".repeat(64));
    let refused = app
        .post(
            "/api/v1/action-traces/batch",
            &json!([trace("b-1", "PodOOMKilled", "payments", 5), bad]),
        )
        .await;
    let detail = refused.problem(400);
    assert!(
        detail.starts_with("element 1: resource.namespace"),
        "{detail}"
    );
    assert_eq!(rows(&app).await, (0, 0, 0));
    app.post("/api/v1/action-traces/batch", &json!([]))
        .await
        .problem(400);

    let stored = app
        .post(
            "/api/v1/action-traces/batch",
            &json!([
                trace("b-1", "PodOOMKilled", "payments", 5),
                trace("b-1", "PodOOMKilled", "payments", 5),
                trace("b-3", "HighLatency", "checkout", 4),
            ]),
        )
        .await;
    assert_eq!(stored.status, 201, "{stored:?}");
    let created: Vec<bool> = stored.body["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["created"].as_bool().unwrap())
        .collect();
    assert_eq!(created, [true, false, true]);
    assert_eq!(rows(&app).await, (2, 2, 2));

    // The deployment is deleted and created again under the same name: a new UID, the same
    // reference.
    let mut recreated = trace("b-4", "PodOOMKilled", "payments", 1);
    recreated["resource"]["uid"] = json!("uid-payments-api-2");
    assert_eq!(
        app.post("/api/v1/action-traces", &recreated).await.status,
        201
    );
    assert_eq!(rows(&app).await, (3, 2, 2));
    // A UID that names another resource is refused.
    let mut clash = trace("b-5", "PodOOMKilled", "payments", 1);
    clash["resource"]["uid"] = json!("uid-checkout-api");
    clash["resource"]["name"] = json!("worker");
    app.post("/api/v1/action-traces", &clash).await.problem(409);
    assert_eq!(rows(&app).await, (3, 2, 2));
}

#[tokio::test]
async fn incidents_filter_and_page_with_a_true_total() {
    let app = spawn_app().await;
    let mut batch = Vec::new();
    for i in 0..25 {
        let (alert, namespace) = if i % 5 == 0 {
            ("HighLatency", "checkout")
        } else {
            ("PodOOMKilled", "payments")
        };
        batch.push(trace(&format!("p-{i:02}"), alert, namespace, 100 - i));
    }
    let stored = app
        .post("/api/v1/action-traces/batch", &Value::Array(batch))
        .await;
    assert_eq!(stored.status, 201, "{stored:?}");

    let page = app
        .get("/api/v1/incidents?alert_name=PodOOMKilled&limit=7")
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.body["pagination"]["total"], 20);
    assert_eq!(page.body["pagination"]["has_more"], true);
    let ids: Vec<&str> = page.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["action_id"].as_str().unwrap())
        .collect();
    // Newest first.
    assert_eq!(
        ids,
        ["p-24", "p-23", "p-22", "p-21", "p-19", "p-18", "p-17"]
    );
    let last = app
        .get("/api/v1/incidents?alert_name=PodOOMKilled&limit=7&offset=14")
        .await;
    assert_eq!(last.body["data"].as_array().unwrap().len(), 6);
    assert_eq!(last.body["pagination"]["has_more"], false);
    // Beyond the end: an empty page, the total still true.
    let past = app.get("/api/v1/incidents?offset=100").await;
    assert_eq!(past.body["data"], json!([]));
    assert_eq!(past.body["pagination"]["total"], 25);

    let checkout = app.get("/api/v1/incidents?namespace=checkout").await;
    assert_eq!(checkout.body["pagination"]["total"], 5);
    let none = app
        .get("/api/v1/incidents?namespace=checkout&severity=low")
        .await;
    assert_eq!(none.body["pagination"]["total"], 0);
    for bad in ["limit=0", "limit=1001", "offset=-1", "status=x"] {
        app.get(&format!("/api/v1/incidents?{bad}"))
            .await
            .problem(400);
    }
}
