//! Every error is an RFC 7807 problem: malformed bodies, wrong content type, limits, routing.

use serde_json::json;

use crate::helpers::{event, reply, spawn_app, spawn_app_with};

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

#[tokio::test]
async fn health_and_metrics() {
    let app = spawn_app().await;
    let live = app.get("/health/live").await;
    assert_eq!(live.status, 200);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["status"], "ok");
    app.post("/api/v1/audit/events", &event("m")).await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("datastorage_audit_events_written_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="/api/v1/audit/events",status="201""#),
        "{metrics}"
    );
    assert!(metrics.contains("datastorage_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn readiness_fails_without_the_database() {
    let app = spawn_app().await;
    app.pool.close().await;
    app.get("/health/ready").await.problem(503);
    let detail = app
        .post("/api/v1/audit/events", &event("down"))
        .await
        .problem(503);
    assert!(detail.contains("unavailable"), "{detail}");
}
