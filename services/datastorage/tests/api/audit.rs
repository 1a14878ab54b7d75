//! Audit events over HTTP: writes, defaults, validation, batches, queries and pagination.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{ago, event, reply, spawn_app, spawn_app_with};

#[tokio::test]
async fn single_event_is_stored_with_defaults() {
    let app = spawn_app().await;
    let created = app.post("/api/v1/audit/events", &event("corr-1")).await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["event_id"].as_str().unwrap().to_owned();
    assert!(created.body["event_timestamp"].is_string());

    let got = app.get(&format!("/api/v1/audit/events/{id}")).await;
    assert_eq!(got.status, 200, "{got:?}");
    let e = &got.body;
    assert_eq!(e["correlation_id"], "corr-1");
    assert_eq!(e["actor_type"], "service");
    assert_eq!(e["actor_id"], "gateway-service");
    assert_eq!(e["resource_type"], "gateway");
    assert_eq!(e["resource_id"], "corr-1");
    assert_eq!(e["severity"], "info");
    assert_eq!(e["retention_days"], 2555);
    assert_eq!(e["event_data"]["pod"], "api-7d9f");
    assert_eq!(app.count("audit_events").await, 1);
}

#[tokio::test]
async fn invalid_events_are_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("version", json!(""), "version: must be 1 to 20 characters"),
        (
            "version",
            json!("x".repeat(21)),
            "version: must be 1 to 20 characters",
        ),
        (
            "event_type",
            json!("t".repeat(101)),
            "event_type: must be 1 to 100 characters",
        ),
        ("event_action", json!("a".repeat(51)), "event_action"),
        ("correlation_id", json!(""), "correlation_id"),
        ("correlation_id", json!("c".repeat(256)), "correlation_id"),
        (
            "event_category",
            json!("billing"),
            "unknown variant `billing`",
        ),
        ("event_outcome", json!("maybe"), "unknown variant `maybe`"),
        ("event_data", json!([1, 2]), "event_data"),
        ("event_data", json!("text"), "event_data"),
        (
            "event_timestamp",
            json!(ago(-600)),
            "more than 5 minutes in the future",
        ),
        (
            "event_timestamp",
            json!(ago(8 * 86400)),
            "more than 7 days old",
        ),
        ("event_timestamp", json!("yesterday"), "event_timestamp"),
        (
            "duration_ms",
            json!(-1),
            "duration_ms: must not be negative",
        ),
        ("duration_ms", json!("fast"), "duration_ms"),
        ("namespace", json!("n".repeat(254)), "namespace"),
        ("parent_event_id", json!("not-a-uuid"), "parent_event_id"),
        (
            "unexpected_field",
            json!(1),
            "unknown field `unexpected_field`",
        ),
    ];
    for (field, value, expected) in cases {
        let mut body = event("bad");
        body[field] = value;
        let reply = app.post("/api/v1/audit/events", &body).await;
        let detail = reply.problem(400);
        assert!(
            detail.contains(expected),
            "{field}: {detail:?} lacks {expected:?}"
        );
    }
    let mut missing = event("bad");
    missing.as_object_mut().unwrap().remove("correlation_id");
    let detail = app
        .post("/api/v1/audit/events", &missing)
        .await
        .problem(400);
    assert!(
        detail.contains("missing field `correlation_id`"),
        "{detail}"
    );
    assert_eq!(app.count("audit_events").await, 0);
}

#[tokio::test]
async fn parent_event_must_exist() {
    let app = spawn_app().await;
    let mut child = event("corr-p");
    child["parent_event_id"] = json!("6f1c1a2e-8f57-4a39-9a51-0c1f9f0b7c11");
    let detail = app.post("/api/v1/audit/events", &child).await.problem(400);
    assert!(
        detail.contains("parent_event_id: no event with id"),
        "{detail}"
    );

    let parent = app.post("/api/v1/audit/events", &event("corr-p")).await;
    let parent_id = parent.body["event_id"].clone();
    child["parent_event_id"] = parent_id.clone();
    let created = app.post("/api/v1/audit/events", &child).await;
    assert_eq!(created.status, 201, "{created:?}");
    let (stored_parent, parent_date): (uuid::Uuid, Option<chrono::NaiveDate>) = sqlx::query_as(
        "SELECT parent_event_id, parent_event_date FROM audit_events WHERE event_id = $1::uuid",
    )
    .bind(created.body["event_id"].as_str().unwrap())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored_parent.to_string(), parent_id.as_str().unwrap());
    assert!(
        parent_date.is_some(),
        "the parent's partition date is recorded"
    );
}

/// Single events that arrive together are written by one INSERT. When the database refuses one
/// of them, that request fails alone: every other one is stored and acknowledged.
#[tokio::test]
async fn coalesced_single_events_fail_alone() {
    let app = spawn_app_with(|s| s.with_event_writers(1)).await;
    // A rule of this test's database only, so that the database itself refuses one event.
    sqlx::raw_sql(
        "ALTER TABLE audit_events ADD CONSTRAINT test_refuses_poison CHECK (event_type <> 'poison')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    // Hold INSERTs back so that the events queue up behind the first one.
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::raw_sql("LOCK TABLE audit_events IN SHARE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let post = |body: serde_json::Value| {
        let request = app.client.post(app.url("/api/v1/audit/events")).json(&body);
        tokio::spawn(async move { reply(request.send().await.unwrap()).await })
    };
    let mut good = vec![post(event("coalesce-0"))];
    // The writer is now stuck on the lock with that first event.
    let mut waited = 0;
    while sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock' \
           AND query LIKE 'INSERT INTO audit_events%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
        == 0
    {
        waited += 1;
        assert!(waited < 500, "the first INSERT never waited for the lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    good.extend((1..10).map(|i| post(event(&format!("coalesce-{i}")))));
    let mut poison = event("coalesce-poison");
    poison["event_type"] = json!("poison");
    let poison = post(poison);
    good.extend((10..15).map(|i| post(event(&format!("coalesce-{i}")))));
    tokio::time::sleep(Duration::from_millis(300)).await; // all queued behind the first
    blocker.rollback().await.unwrap();

    for reply in good {
        let reply = reply.await.unwrap();
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    poison.await.unwrap().problem(500);
    assert_eq!(app.count("audit_events").await, 15);
    let poisoned: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE event_type = 'poison'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(poisoned, 0);
}

#[tokio::test]
async fn batch_is_all_or_nothing() {
    let app = spawn_app().await;
    let mut batch: Vec<Value> = (0..5).map(|i| event(&format!("b-{i}"))).collect();
    batch[3]["event_outcome"] = json!("exploded");
    let detail = app
        .post("/api/v1/audit/events/batch", &Value::Array(batch.clone()))
        .await
        .problem(400);
    assert!(detail.starts_with("element 3:"), "{detail}");
    batch[3]["event_outcome"] = json!("failure");
    batch[4]["parent_event_id"] = json!("6f1c1a2e-8f57-4a39-9a51-0c1f9f0b7c11");
    let detail = app
        .post("/api/v1/audit/events/batch", &Value::Array(batch.clone()))
        .await
        .problem(400);
    assert!(detail.starts_with("element 4: parent_event_id"), "{detail}");
    assert_eq!(app.count("audit_events").await, 0, "no partial batch");

    batch[4].as_object_mut().unwrap().remove("parent_event_id");
    let created = app
        .post("/api/v1/audit/events/batch", &Value::Array(batch))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["count"], 5);
    let ids: HashSet<&str> = created.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(app.count("audit_events").await, 5);
}

#[tokio::test]
async fn batch_must_be_a_non_empty_array() {
    let app = spawn_app().await;
    let detail = app
        .post("/api/v1/audit/events/batch", &event("x"))
        .await
        .problem(400);
    assert!(detail.contains("JSON array"), "{detail}");
    let detail = app
        .post("/api/v1/audit/events/batch", &json!([]))
        .await
        .problem(400);
    assert!(detail.contains("empty"), "{detail}");
}

#[tokio::test]
async fn query_filters_and_paginates_newest_first() {
    let app = spawn_app().await;
    // 25 events of correlation "page", 5 of "other"; timestamps one second apart.
    let mut batch = Vec::new();
    for i in 0..30 {
        let mut e = event(if i < 25 { "page" } else { "other" });
        e["event_timestamp"] = json!(ago(1000 - i));
        if i % 2 == 0 {
            e["event_outcome"] = json!("failure");
            e["severity"] = json!("warning");
        }
        batch.push(e);
    }
    let created = app
        .post("/api/v1/audit/events/batch", &Value::Array(batch))
        .await;
    assert_eq!(created.status, 201, "{created:?}");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/api/v1/audit/events?correlation_id=page&limit=10".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get(&path).await;
        assert_eq!(page.status, 200, "{page:?}");
        pages += 1;
        for e in page.body["data"].as_array().unwrap() {
            assert_eq!(e["correlation_id"], "page");
            seen.push((
                e["event_timestamp"].as_str().unwrap().to_owned(),
                e["event_id"].as_str().unwrap().to_owned(),
            ));
        }
        match page.body["pagination"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    let distinct: HashSet<_> = seen.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(distinct.len(), 25, "no event twice across pages");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.0.cmp(&a.0));
    assert_eq!(seen, sorted, "newest first");

    let failures = app
        .get("/api/v1/audit/events?event_outcome=failure&severity=warning&limit=1000")
        .await;
    assert_eq!(failures.body["data"].as_array().unwrap().len(), 15);
    let recent = app.get("/api/v1/audit/events?since=990s&limit=1000").await;
    assert_eq!(recent.status, 200, "{recent:?}");
    let n = recent.body["data"].as_array().unwrap().len();
    assert!((19..=21).contains(&n), "events of the last 990 s: {n}");
    let window = app
        .get(&format!(
            "/api/v1/audit/events?since={}&until={}&limit=1000",
            ago(995).replace('+', "%2B"),
            ago(985).replace('+', "%2B")
        ))
        .await;
    let n = window.body["data"].as_array().unwrap().len();
    assert!((9..=11).contains(&n), "events in a 10 s window: {n}");
    let category = app
        .get("/api/v1/audit/events?event_category=workflow")
        .await;
    assert_eq!(category.body["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn query_parameters_are_validated() {
    let app = spawn_app().await;
    for (query, expected) in [
        ("limit=0", "limit: must be 1 to 1000"),
        ("limit=1001", "limit: must be 1 to 1000"),
        ("limit=ten", "limit"),
        ("cursor=garbage", "cursor"),
        ("since=last-tuesday", "since: expected an RFC 3339 time"),
        ("event_category=billing", "event_category"),
        ("colour=red", "colour"),
    ] {
        let detail = app
            .get(&format!("/api/v1/audit/events?{query}"))
            .await
            .problem(400);
        assert!(detail.contains(expected), "{query}: {detail}");
    }
    app.get("/api/v1/audit/events/not-a-uuid")
        .await
        .problem(400);
    let detail = app
        .get("/api/v1/audit/events/6f1c1a2e-8f57-4a39-9a51-0c1f9f0b7c11")
        .await
        .problem(404);
    assert!(detail.contains("no audit event"), "{detail}");
}
