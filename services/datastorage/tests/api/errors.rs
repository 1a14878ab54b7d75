//! Every error is an RFC 7807 problem: malformed bodies, wrong content type, limits, routing.

use serde_json::json;

use crate::helpers::{Process, database, event, reply, sample, spawn_app, spawn_app_with};

#[tokio::test]
async fn malformed_requests_get_problems() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/audit/events");
    let cases: Vec<(Option<&str>, Vec<u8>, u16)> = vec![
        (Some("application/json"), b"{\"version\": ".to_vec(), 400),
        (Some("application/json"), b"not json".to_vec(), 400),
        (Some("application/json"), vec![0xff, 0xfe, 0x00], 400),
        (Some("application/json"), b"".to_vec(), 400),
        (
            Some("text/plain"),
            serde_json::to_vec(&event("x")).unwrap(),
            415,
        ),
        (None, serde_json::to_vec(&event("x")).unwrap(), 415),
    ];
    for (content_type, body, status) in cases {
        let mut request = app.client.post(&url).body(body.clone());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let r = reply(request.send().await.unwrap()).await;
        r.problem(status);
    }
    assert_eq!(app.count("audit_events").await, 0);
}

#[tokio::test]
async fn nul_characters_get_400_not_a_database_error() {
    let app = spawn_app().await;
    // JSON allows "\u0000" in strings and keys; PostgreSQL text and jsonb do not.
    let mut in_text = event("nul");
    in_text["event_type"] = json!("gateway\u{0}received");
    let mut in_data = event("nul");
    in_data["event_data"] = json!({"pod": {"name\u{0}": "api"}});
    for body in [&in_text, &in_data] {
        let detail = app.post("/api/v1/audit/events", body).await.problem(400);
        assert!(detail.contains("NUL"), "{detail}");
    }
    let batch = json!([event("nul-1"), in_data]);
    app.post("/api/v1/audit/events/batch", &batch)
        .await
        .problem(400);
    let mut workflow = crate::helpers::workflow("nul", "1.0.0");
    workflow["content"] = json!("steps:\u{0}");
    app.post("/api/v1/workflows", &workflow).await.problem(400);
    // An escaped backslash before "u0000" is ordinary text.
    let mut literal = event("nul-literal");
    literal["event_data"] = json!({"text": "\\u0000"});
    assert_eq!(app.post("/api/v1/audit/events", &literal).await.status, 201);

    for path in [
        "/api/v1/audit/events?correlation_id=%00",
        "/api/v1/audit/events?event_type=a%00b",
        "/api/v1/workflows/by-name/a%00b/versions",
        "/api/v1/audit/events/%00",
    ] {
        let detail = app.get(path).await.problem(400);
        assert!(detail.contains("NUL"), "{path}: {detail}");
    }
    assert_eq!(app.count("audit_events").await, 1);
    assert_eq!(app.count("remediation_workflow_catalog").await, 0);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = spawn_app_with(|s| datastorage::AppState {
        body_limit: 4096,
        ..s
    })
    .await;
    let mut big = event("big");
    big["event_data"]["blob"] = serde_json::json!("x".repeat(10_000));
    let detail = app.post("/api/v1/audit/events", &big).await.problem(413);
    assert!(!detail.is_empty());
    let batch = serde_json::Value::Array(vec![big; 3]);
    app.post("/api/v1/audit/events/batch", &batch)
        .await
        .problem(413);
    assert_eq!(app.count("audit_events").await, 0);
    // A small one still passes.
    assert_eq!(
        app.post("/api/v1/audit/events", &event("ok")).await.status,
        201
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problems() {
    let app = spawn_app().await;
    app.get("/api/v1/nothing-here").await.problem(404);
    let r = reply(
        app.client
            .delete(app.url("/api/v1/audit/events"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.problem(405);
    let r = reply(
        app.client
            .put(app.url("/api/v1/workflows/search"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.problem(405);
}

/// The metrics of a process of its own (the recorder is process-wide, so the figures here are
/// exactly this test's requests and nobody else's).
#[tokio::test]
async fn health_and_metrics() {
    let db = database().await;
    let process = Process::start(db.url(), &[]).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", process.base);
    let metrics = || async {
        let r = client.get(url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };

    let live = reply(client.get(url("/health/live")).send().await.unwrap()).await;
    assert_eq!(
        (live.status.as_u16(), &live.body["status"]),
        (200, &json!("ok"))
    );
    let ready = reply(client.get(url("/health/ready")).send().await.unwrap()).await;
    assert_eq!(
        (ready.status.as_u16(), &ready.body["status"]),
        (200, &json!("ok"))
    );
    let before = metrics().await;
    assert_eq!(
        sample(&before, "datastorage_audit_events_written_total", ""),
        None,
        "no event written yet:\n{before}"
    );

    for i in 0..3 {
        let r = client
            .post(url("/api/v1/audit/events"))
            .json(&event(&format!("m{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let batch: Vec<_> = (0..4).map(|i| event(&format!("b{i}"))).collect();
    let r = client
        .post(url("/api/v1/audit/events/batch"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut bad = event("bad");
    bad["event_category"] = json!("billing");
    let r = client
        .post(url("/api/v1/audit/events"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let after = metrics().await;
    let value = |name: &str, labels: &str| sample(&after, name, labels);
    assert_eq!(
        value("datastorage_audit_events_written_total", ""),
        Some(7.0),
        "3 single events and a batch of 4:\n{after}"
    );
    let requests = "datastorage_http_requests_total";
    assert_eq!(
        value(
            requests,
            r#"method="POST",route="/api/v1/audit/events",status="201""#
        ),
        Some(3.0),
        "{after}"
    );
    assert_eq!(
        value(
            requests,
            r#"method="POST",route="/api/v1/audit/events",status="400""#
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        value(
            requests,
            r#"method="POST",route="/api/v1/audit/events/batch",status="201""#
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        value(
            requests,
            r#"method="GET",route="/health/ready",status="200""#
        ),
        Some(1.0),
        "{after}"
    );
    // Four POSTs to /api/v1/audit/events, each timed once.
    assert_eq!(
        value(
            "datastorage_http_request_duration_seconds_count",
            r#"method="POST",route="/api/v1/audit/events""#
        ),
        Some(4.0),
        "{after}"
    );
    // Only this scrape is in flight while it renders.
    assert_eq!(
        value("datastorage_http_requests_in_flight", ""),
        Some(1.0),
        "{after}"
    );
    let connections = value("datastorage_db_pool_connections", r#"pool="writes""#);
    assert!(connections.is_some_and(|n| n >= 1.0), "{after}");
}
