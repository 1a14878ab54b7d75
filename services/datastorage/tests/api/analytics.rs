//! Success-rate analytics against hand-computed expectations, on traces recorded through the API:
//! every confidence level, empty results, breakdown ordering, the time range, bad parameters.

use serde_json::{Value, json};

use crate::helpers::{TestApp, ago, spawn_app};

/// A trace of `incident` handled by `workflow`@`version`, `ok` or failed, `hours_ago`.
fn execution(
    i: usize,
    incident: &str,
    workflow: &str,
    version: &str,
    ok: bool,
    hours_ago: i64,
) -> Value {
    json!({
        "action_id": format!("{incident}-{workflow}-{version}-{i}-{hours_ago}"),
        "action_timestamp": ago(hours_ago * 3600 + 60),
        "resource": {"uid": format!("uid-{i}"), "api_version": "apps/v1", "kind": "Deployment",
                     "name": format!("app-{i}"), "namespace": "prod"},
        "alert_name": "PodOOMKilled",
        "alert_severity": "critical",
        "action_type": if workflow.starts_with("restart") { "restart_pod" } else { "increase_memory" },
        "execution_status": if ok { "completed" } else { "failed" },
        "incident_type": incident,
        "workflow_id": workflow,
        "workflow_version": version,
        "ai_selected_workflow": i.is_multiple_of(2),
        "ai_chained_workflows": i.is_multiple_of(5),
        "ai_manual_escalation": i.is_multiple_of(10),
    })
}

async fn record(app: &TestApp, traces: Vec<Value>) {
    for chunk in traces.chunks(200) {
        let r = app
            .post("/api/v1/action-traces/batch", &Value::Array(chunk.to_vec()))
            .await;
        assert_eq!(r.status, 201, "{r:?}");
    }
}

#[tokio::test]
async fn success_rates_match_hand_computed_figures() {
    let app = spawn_app().await;
    let mut traces = Vec::new();
    // oom: memory-up@1 8 of 10 succeed, memory-up@2 3 of 4, restart@1 1 of 6; 20 executions.
    for i in 0..10 {
        traces.push(execution(i, "oom", "memory-up", "1", i < 8, 1));
    }
    for i in 10..14 {
        traces.push(execution(i, "oom", "memory-up", "2", i < 13, 2));
    }
    for i in 14..20 {
        traces.push(execution(i, "oom", "restart", "1", i == 14, 3));
    }
    // Not executions: pending and executing traces.
    let mut pending = execution(20, "oom", "memory-up", "1", true, 1);
    pending["execution_status"] = json!("pending");
    let mut executing = execution(21, "oom", "memory-up", "1", true, 1);
    executing["execution_status"] = json!("executing");
    traces.extend([pending, executing]);
    // Outside a 1-day range: 3 failures two days ago.
    for i in 30..33 {
        traces.push(execution(i, "oom", "memory-up", "1", false, 48));
    }
    // Another incident type handled by memory-up: 100 executions, 90 succeed.
    for i in 100..200 {
        traces.push(execution(i, "cpu-throttle", "memory-up", "1", i < 190, 4));
    }
    record(&app, traces).await;

    let r = app
        .get("/api/v1/success-rate/incident-type?incident_type=oom&time_range=1d")
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let b = &r.body;
    assert_eq!(b["incident_type"], "oom");
    assert_eq!(b["time_range"], "1d");
    assert_eq!(b["total_executions"], 20);
    assert_eq!(b["successful_executions"], 12);
    assert_eq!(b["failed_executions"], 8);
    assert_eq!(b["success_rate"], 60.0);
    assert_eq!(b["confidence"], "medium");
    assert_eq!(b["min_samples_met"], true);
    // i even: 10 of 0..20; i % 5 == 0: 4; i % 10 == 0: 2.
    assert_eq!(
        b["ai_execution_mode"],
        json!({"catalog_selected": 10, "chained": 4, "manual_escalation": 2})
    );
    assert_eq!(
        b["workflow_breakdown"],
        json!([
            {"workflow_id": "memory-up", "workflow_version": "1", "executions": 10, "success_rate": 80.0},
            {"workflow_id": "restart", "workflow_version": "1", "executions": 6, "success_rate": 16.67},
            {"workflow_id": "memory-up", "workflow_version": "2", "executions": 4, "success_rate": 75.0},
        ])
    );
    // The default range (7d) takes in the three older failures.
    let week = app
        .get("/api/v1/success-rate/incident-type?incident_type=oom")
        .await;
    assert_eq!(week.body["total_executions"], 23);
    assert_eq!(week.body["time_range"], "7d");

    let w = app
        .get(
            "/api/v1/success-rate/workflow?workflow_id=memory-up&workflow_version=1&time_range=24h",
        )
        .await;
    assert_eq!(w.status, 200, "{w:?}");
    assert_eq!(w.body["total_executions"], 110);
    assert_eq!(w.body["successful_executions"], 98);
    assert_eq!(w.body["success_rate"], 89.09);
    assert_eq!(w.body["confidence"], "high");
    assert_eq!(
        w.body["incident_type_breakdown"],
        json!([
            {"incident_type": "cpu-throttle", "executions": 100, "success_rate": 90.0},
            {"incident_type": "oom", "executions": 10, "success_rate": 80.0},
        ])
    );

    let m = app
        .get("/api/v1/success-rate/multi-dimensional?incident_type=oom&workflow_id=restart&time_range=1d")
        .await;
    assert_eq!(m.status, 200, "{m:?}");
    assert_eq!(m.body["total_executions"], 6);
    assert_eq!(m.body["success_rate"], 16.67);
    assert_eq!(m.body["confidence"], "low");
    assert_eq!(m.body["dimensions"]["workflow_id"], "restart");
    assert_eq!(m.body["dimensions"]["action_type"], Value::Null);
    let by_action = app
        .get("/api/v1/success-rate/multi-dimensional?action_type=restart_pod&time_range=1d")
        .await;
    assert_eq!(by_action.body["total_executions"], 6);
    // Above the executions counted, min_samples makes the data insufficient.
    let strict = app
        .get(
            "/api/v1/success-rate/multi-dimensional?incident_type=oom&time_range=1d&min_samples=21",
        )
        .await;
    assert_eq!(strict.body["confidence"], "insufficient_data");
    assert_eq!(strict.body["min_samples_met"], false);
    let few = app
        .get("/api/v1/success-rate/workflow?workflow_id=memory-up&workflow_version=2&time_range=1d")
        .await;
    assert_eq!(few.body["total_executions"], 4);
    assert_eq!(few.body["confidence"], "insufficient_data");

    // Nothing matches: zeros, not errors.
    let none = app
        .get("/api/v1/success-rate/incident-type?incident_type=disk-full")
        .await;
    assert_eq!(none.status, 200);
    assert_eq!(none.body["total_executions"], 0);
    assert_eq!(none.body["success_rate"], 0.0);
    assert_eq!(none.body["confidence"], "insufficient_data");
    assert_eq!(none.body["workflow_breakdown"], json!([]));

    for bad in [
        "/api/v1/success-rate/incident-type",
        "/api/v1/success-rate/incident-type?incident_type=oom&time_range=7w",
        "/api/v1/success-rate/incident-type?incident_type=oom&time_range=3651d",
        "/api/v1/success-rate/incident-type?incident_type=oom&min_samples=0",
        "/api/v1/success-rate/workflow",
        "/api/v1/success-rate/multi-dimensional?unknown=1",
    ] {
        app.get(bad).await.problem(400);
    }
}

/// Every "Index Name" in an EXPLAIN (FORMAT JSON) plan.
fn index_names(plan: &Value, out: &mut Vec<String>) {
    match plan {
        Value::Object(node) => {
            if let Some(Value::String(name)) = node.get("Index Name") {
                out.push(name.clone());
            }
            node.values().for_each(|v| index_names(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| index_names(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_success_rate_statements_use_the_partial_indexes_of_012() {
    let app = spawn_app().await;
    record(
        &app,
        (0..40)
            .map(|i| execution(i, "oom", "memory-up", "1", i % 3 > 0, 1))
            .collect(),
    )
    .await;
    let mut conn = app.pool.acquire().await.unwrap();
    // The tables are small, so a sequential scan would win anyway: the question is whether an
    // index can serve the statement.
    sqlx::raw_sql("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let sql = |file: &str| {
        let path = format!("{}/sql/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        sqlx::AssertSqlSafe(format!("EXPLAIN (FORMAT JSON) {text}"))
    };
    let plan: Value = sqlx::query_scalar(sql("success_rate_incident_type.sql"))
        .bind("oom")
        .bind(24)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let mut used = Vec::new();
    index_names(&plan, &mut used);
    eprintln!("by incident type: {used:?}");
    assert!(
        used.iter().any(|n| n.contains("incident_type")),
        "by incident type, no incident_type index: {used:?}"
    );
    let plan: Value = sqlx::query_scalar(sql("success_rate_workflow.sql"))
        .bind("memory-up")
        .bind(Some("1"))
        .bind(24)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let mut used = Vec::new();
    index_names(&plan, &mut used);
    eprintln!("by workflow: {used:?}");
    assert!(
        used.iter().any(|n| n.contains("workflow_id")),
        "by workflow, no workflow index: {used:?}"
    );
}

/// Every partition an EXPLAIN (FORMAT JSON) plan reads ("Relation Name"), and how many
/// partitions the executor removed before running it ("Subplans Removed").
fn relations(plan: &Value, names: &mut Vec<String>, removed: &mut i64) {
    match plan {
        Value::Object(node) => {
            if let Some(Value::String(name)) = node.get("Relation Name") {
                names.push(name.clone());
            }
            if let Some(n) = node.get("Subplans Removed").and_then(Value::as_i64) {
                *removed += n;
            }
            node.values().for_each(|v| relations(v, names, removed));
        }
        Value::Array(items) => items.iter().for_each(|v| relations(v, names, removed)),
        _ => {}
    }
}

/// With monthly partitions for the past year, a 1-day success rate reads none of the months
/// before the day (only its own, the later ones and DEFAULT: the range has no upper bound): the
/// time condition prunes them when the statement starts (`now()` is known then, not when it is
/// planned), for both statements and for either plan PostgreSQL may choose, custom or generic.
#[tokio::test]
async fn the_success_rate_statements_read_only_the_partitions_of_the_time_range() {
    let app = spawn_app().await;
    sqlx::raw_sql(
        "SELECT create_resource_action_traces_partition((now() - make_interval(months => m))::date)
         FROM generate_series(1, 12) AS m",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    record(
        &app,
        (0..20)
            .map(|i| execution(i, "oom", "memory-up", "1", i % 3 > 0, 1))
            .collect(),
    )
    .await;
    let partitions: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'resource_action_traces'::regclass ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(partitions.len() >= 16, "{partitions:?}");
    // The months wholly before the day.
    let past: Vec<String> = sqlx::query_scalar(
        "SELECT 'resource_action_traces_' || to_char(d, '\"y\"YYYY\"m\"MM')
         FROM generate_series(1, 12) AS m,
              LATERAL (SELECT date_trunc('month', (now() - interval '1 day') AT TIME ZONE 'UTC')
                              - make_interval(months => m)) AS t(d)",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        past.iter().all(|p| partitions.contains(p)),
        "{past:?} not all in {partitions:?}"
    );
    let mut conn = app.pool.acquire().await.unwrap();
    for mode in ["force_custom_plan", "force_generic_plan"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
            .execute(&mut *conn)
            .await
            .unwrap();
        for (file, args) in [
            ("success_rate_incident_type.sql", 2),
            ("success_rate_workflow.sql", 3),
        ] {
            let path = format!("{}/sql/{file}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let explain = sqlx::AssertSqlSafe(format!("EXPLAIN (FORMAT JSON) {text}"));
            let query = sqlx::query_scalar::<_, Value>(explain);
            let query = if args == 2 {
                query.bind("oom").bind(24)
            } else {
                query.bind("memory-up").bind(Some("1")).bind(24)
            };
            let plan = query.fetch_one(&mut *conn).await.unwrap();
            let (mut read, mut removed) = (Vec::new(), 0);
            relations(&plan, &mut read, &mut removed);
            read.sort();
            read.dedup();
            let stray: Vec<&String> = read.iter().filter(|r| past.contains(r)).collect();
            eprintln!("{file}, {mode}: reads {read:?}, {removed} partitions removed at start");
            assert!(
                stray.is_empty(),
                "{file} ({mode}) reads months before the day: {stray:?}"
            );
            assert!(
                removed >= 12,
                "{file} ({mode}): {removed} partitions pruned"
            );
            assert!(
                !read.is_empty(),
                "{file} ({mode}): no partition in the plan"
            );
        }
    }
}
