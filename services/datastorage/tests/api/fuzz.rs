//! At least 10,000 generated bad requests: every one gets a 4xx problem, none a 5xx, and no
//! row is ever written (no partial batch).

use axum::body::Body;
use axum::http::{Method, Request};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::{count, database, event, workflow};

/// Fields of an audit event and a value that is invalid for each.
fn bad_event_field() -> impl Strategy<Value = (String, Value)> {
    let too_long = |n: usize| json!("x".repeat(n));
    let choices: Vec<(&str, Value)> = vec![
        ("version", json!("")),
        ("version", too_long(21)),
        ("version", json!(1)),
        ("event_type", json!("")),
        ("event_type", too_long(101)),
        ("event_type", json!(null)),
        ("event_timestamp", json!("2026-13-45T99:00:00Z")),
        ("event_timestamp", json!("2001-01-01T00:00:00Z")),
        ("event_timestamp", json!("2999-01-01T00:00:00Z")),
        ("event_timestamp", json!(1_700_000_000)),
        ("event_category", json!("billing")),
        ("event_category", json!("GATEWAY")),
        ("event_category", json!(["gateway"])),
        ("event_action", too_long(51)),
        ("event_outcome", json!("unknown")),
        ("event_outcome", json!(true)),
        ("correlation_id", json!("")),
        ("correlation_id", too_long(256)),
        ("event_data", json!([])),
        ("event_data", json!("{}")),
        ("event_data", json!(null)),
        ("event_data", json!(42)),
        ("duration_ms", json!(-5)),
        ("duration_ms", json!(1.5)),
        ("duration_ms", json!(4_294_967_296_i64)),
        ("parent_event_id", json!("123")),
        ("severity", too_long(21)),
        ("trace_id", too_long(65)),
        ("span_id", too_long(33)),
        ("namespace", too_long(254)),
        ("actor_type", json!({"a": 1})),
        ("made_up_field", json!("surprise")),
        // NUL: valid JSON, but PostgreSQL text and jsonb cannot hold it.
        ("event_type", json!("a\u{0}b")),
        ("correlation_id", json!("\u{0}")),
        ("namespace", json!("ns\u{0}")),
        ("event_data", json!({"k": "v\u{0}"})),
        ("event_data", json!({"k\u{0}": 1})),
    ];
    (0..choices.len()).prop_map(move |i| (choices[i].0.to_owned(), choices[i].1.clone()))
}

fn bad_event() -> impl Strategy<Value = Value> {
    prop_oneof![
        bad_event_field().prop_map(|(field, value)| {
            let mut e = event("fuzz");
            e[field.as_str()] = value;
            e
        }),
        (0usize..8).prop_map(|i| {
            let required = [
                "version",
                "event_type",
                "event_timestamp",
                "event_category",
                "event_action",
                "event_outcome",
                "correlation_id",
                "event_data",
            ];
            let mut e = event("fuzz");
            e.as_object_mut().unwrap().remove(required[i]);
            e
        }),
    ]
}

/// One request the service must refuse.
#[derive(Debug, Clone)]
struct Bad {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn json_request(path: &str, body: &Value) -> Bad {
    Bad {
        method: Method::POST,
        path: path.to_owned(),
        content_type: Some("application/json"),
        body: serde_json::to_vec(body).unwrap(),
    }
}

fn bad_request() -> impl Strategy<Value = Bad> {
    prop_oneof![
        // One invalid event.
        bad_event().prop_map(|e| json_request("/api/v1/audit/events", &e)),
        // A batch with one invalid element somewhere.
        (bad_event(), 1usize..12, any::<prop::sample::Index>()).prop_map(|(bad, n, at)| {
            let mut batch: Vec<Value> = (0..n).map(|i| event(&format!("fuzz-{i}"))).collect();
            batch.insert(at.index(n + 1), bad);
            json_request("/api/v1/audit/events/batch", &Value::Array(batch))
        }),
        // Not an array.
        bad_event()
            .prop_map(|e| json_request("/api/v1/audit/events/batch", &json!({"events": [e]}))),
        // Arbitrary bytes declared as JSON (never valid JSON: a stray byte is prepended).
        prop::collection::vec(any::<u8>(), 0..200).prop_map(|mut bytes| {
            bytes.insert(0, b'}');
            Bad {
                method: Method::POST,
                path: "/api/v1/audit/events".into(),
                content_type: Some("application/json"),
                body: bytes,
            }
        }),
        // A valid event with a wrong or missing content type.
        prop::sample::select(vec![
            None,
            Some("text/plain"),
            Some("application/xml"),
            Some("multipart/form-data")
        ])
        .prop_map(|ct| Bad {
            method: Method::POST,
            path: "/api/v1/audit/events".into(),
            content_type: ct,
            body: serde_json::to_vec(&event("fuzz")).unwrap(),
        }),
        // Invalid notifications.
        (0usize..6).prop_map(|i| {
            let mut n = json!({
                "remediation_id": "r", "notification_id": "fuzz", "recipient": "x",
                "channel": "slack", "message_summary": "m", "status": "sent",
                "sent_at": "2026-11-25T10:00:00Z",
            });
            match i {
                0 => n["status"] = json!("delivered"),
                1 => n["escalation_level"] = json!(-1),
                2 => n["channel"] = json!("c".repeat(51)),
                3 => {
                    n.as_object_mut().unwrap().remove("recipient");
                }
                4 => n["recipient"] = json!("ops\u{0}"),
                _ => n["sent_at"] = json!("noon"),
            }
            json_request("/api/v1/audit/notifications", &n)
        }),
        // Invalid workflows.
        (0usize..7).prop_map(|i| {
            let mut w = workflow("fuzz", "1");
            match i {
                0 => w["labels"]["severity"] = json!("extreme"),
                1 => w["labels"]["priority"] = json!("P7"),
                2 => {
                    w["labels"].as_object_mut().unwrap().remove("component");
                }
                3 => w["version"] = json!(""),
                4 => w["content_hash"] = json!("0000"),
                5 => w["content"] = json!("steps:\u{0}"),
                _ => w["status"] = json!("retired"),
            }
            json_request("/api/v1/workflows", &w)
        }),
        // Invalid searches.
        (0usize..4).prop_map(|i| {
            let mut s = json!({"signal_type": "OOMKilled", "severity": "critical",
                               "component": "*", "environment": "production", "priority": "P0"});
            match i {
                0 => s["top_k"] = json!(0),
                1 => s["min_score"] = json!(-0.1),
                2 => s["severity"] = json!("meh"),
                _ => {
                    s.as_object_mut().unwrap().remove("signal_type");
                }
            }
            json_request("/api/v1/workflows/search", &s)
        }),
        // Invalid queries.
        prop::sample::select(vec![
            "limit=0",
            "limit=5000",
            "limit=-1",
            "cursor=%%%",
            "cursor=AAAA",
            "since=tomorrow",
            "until=later",
            "event_outcome=meh",
            "unknown=1",
            "correlation_id=%00",
            "event_type=a%00b",
        ])
        .prop_map(|q| Bad {
            method: Method::GET,
            path: format!("/api/v1/audit/events?{q}"),
            content_type: None,
            body: Vec::new(),
        }),
        // Invalid lifecycle updates.
        prop::sample::select(vec![
            json!({"content": "new"}),
            json!({"status": "nope"}),
            json!([]),
            json!({}),
            json!({"disabled_by": 5}),
            json!({"labels": {}}),
        ])
        .prop_map(|body| Bad {
            method: Method::PATCH,
            path: "/api/v1/workflows/6f1c1a2e-8f57-4a39-9a51-0c1f9f0b7c11".into(),
            content_type: Some("application/json"),
            body: serde_json::to_vec(&body).unwrap(),
        }),
    ]
}

#[test]
fn ten_thousand_bad_requests_get_4xx_problems_and_write_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(database());
    let pool = rt.block_on(db.pool()).unwrap();
    let app = datastorage::app(datastorage::AppState::new(pool.clone()));

    let mut runner = TestRunner::new(Config {
        cases: 10_000,
        failure_persistence: None,
        ..Config::default()
    });
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    runner
        .run(&bad_request(), |bad| {
            let mut request = Request::builder().method(bad.method.clone()).uri(&bad.path);
            if let Some(ct) = bad.content_type {
                request = request.header("content-type", ct);
            }
            let request = request.body(Body::from(bad.body.clone())).unwrap();
            let response = rt.block_on(app.clone().oneshot(request)).unwrap();
            let status = response.status();
            *statuses.borrow_mut().entry(status.as_u16()).or_default() += 1;
            prop_assert!(
                status.is_client_error(),
                "{} {} got {status}",
                bad.method,
                bad.path
            );
            prop_assert_eq!(
                response.headers().get("content-type").map(|v| v.as_bytes()),
                Some(&b"application/problem+json"[..])
            );
            Ok(())
        })
        .unwrap();
    let statuses = statuses.into_inner();
    let total: u32 = statuses.values().sum();
    assert!(total >= 10_000, "{statuses:?}");
    eprintln!("bad requests by status: {statuses:?}");
    for table in [
        "audit_events",
        "notification_audit",
        "remediation_workflow_catalog",
    ] {
        assert_eq!(rt.block_on(count(&pool, table)), 0, "{table} has rows");
    }
}
