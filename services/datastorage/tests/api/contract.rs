//! The OpenAPI document's promise, tried with requests generated from the served document
//! ([`crate::docgen`]): a request the document allows is never refused as invalid (no 400), gets
//! a status the document lists for its operation, and a body that matches the document's
//! schema for that status.

use std::cell::RefCell;
use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use tower::ServiceExt;

use crate::docgen::{Doc, short};
use crate::helpers::{database, workflow};

/// A response: status, content type, body bytes.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Sends one request to `app` in-process.
pub async fn send(
    app: &Router,
    method: &Method,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let mut request = Request::builder().method(method.clone()).uri(uri);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = crate::helpers::content_type(response.headers());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        content_type,
        body: body.to_vec(),
    }
}

/// An operation the generator builds requests for: method, documented path, the URI to send
/// (path parameters filled in).
#[derive(Debug, Clone)]
pub struct Op {
    pub method: Method,
    pub path: &'static str,
    pub uri: String,
}

/// Every operation of the document that takes a JSON body or query parameters; `workflow_id`
/// is an existing workflow (the PATCH target).
pub fn operations(workflow_id: &str) -> Vec<Op> {
    let op = |method: Method, path: &'static str| Op {
        uri: path.replace("{workflow_id}", workflow_id),
        method,
        path,
    };
    vec![
        op(Method::POST, "/api/v1/audit/events"),
        op(Method::POST, "/api/v1/audit/events/batch"),
        op(Method::POST, "/api/v1/audit/notifications"),
        op(Method::POST, "/api/v1/workflows"),
        op(Method::POST, "/api/v1/workflows/search"),
        op(Method::PATCH, "/api/v1/workflows/{workflow_id}"),
        op(Method::GET, "/api/v1/audit/events"),
        op(Method::GET, "/api/v1/workflows"),
        op(Method::POST, "/api/v1/action-traces"),
        op(Method::POST, "/api/v1/action-traces/batch"),
        op(Method::GET, "/api/v1/incidents"),
        op(Method::GET, "/api/v1/success-rate/incident-type"),
        op(Method::GET, "/api/v1/success-rate/workflow"),
        op(Method::GET, "/api/v1/success-rate/multi-dimensional"),
    ]
}

/// A query string from (name, JSON value) pairs: strings as they are, other values as JSON.
pub fn query_string(pairs: &[(String, Value)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        match value {
            Value::String(s) => query.append_pair(name, s),
            other => query.append_pair(name, &other.to_string()),
        };
    }
    query.finish()
}

/// Valid query parameters of an operation: each present or not, with a value it allows.
pub fn valid_query(doc: &Doc, op: &Op) -> BoxedStrategy<Vec<(String, Value)>> {
    let params: Vec<BoxedStrategy<Option<(String, Value)>>> = doc
        .query_parameters(&op.method, op.path)
        .into_iter()
        .filter(|(name, _)| {
            !matches!(
                crate::docgen::inexpressible(name),
                Some(crate::docgen::Inexpressible::Absent)
            )
        })
        .map(|(name, schema)| {
            let required = doc.required(&op.method, op.path, &name);
            let value = doc.valid_parameter(&name, &schema);
            let pair = value.prop_map(move |v| (name.clone(), v));
            if required {
                pair.prop_map(Some).boxed()
            } else {
                prop::option::of(pair).boxed()
            }
        })
        .collect();
    params
        .prop_map(|p| p.into_iter().flatten().collect())
        .boxed()
}

/// A valid request of `op`: its body (JSON) or its query string.
pub fn valid_request(doc: &Doc, op: &Op) -> BoxedStrategy<(String, Option<Value>)> {
    let uri = op.uri.clone();
    if op.method == Method::GET {
        valid_query(doc, op)
            .prop_map(move |q| (format!("{uri}?{}", query_string(&q)), None))
            .boxed()
    } else {
        doc.valid(&doc.request_schema(&op.method, op.path))
            .prop_map(move |body| (uri.clone(), Some(body)))
            .boxed()
    }
}

/// A service in this process on a database of its own, the document it serves, and its
/// operations (the PATCH target created through the API).
pub struct Setup {
    pub rt: tokio::runtime::Runtime,
    pub pool: sqlx::PgPool,
    pub app: Router,
    pub doc: Doc,
    pub ops: Vec<Op>,
    _db: test_db::TestDatabase,
}

impl Setup {
    /// With `body_limit` instead of the default one, if given.
    pub fn new(body_limit: Option<usize>) -> Setup {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let db = rt.block_on(database());
        let pool = rt.block_on(db.pool()).unwrap();
        let mut state = datastorage::AppState::new(pool.clone());
        if let Some(limit) = body_limit {
            state.body_limit = limit;
        }
        let app = datastorage::app(state);
        let doc = rt.block_on(Doc::served(&app));
        let workflow_id = rt.block_on(existing_workflow(&app));
        let ops = operations(&workflow_id);
        Setup {
            rt,
            pool,
            app,
            doc,
            ops,
            _db: db,
        }
    }
}

/// Creates a workflow through the API; its id.
pub async fn existing_workflow(app: &Router) -> String {
    let created = send(
        app,
        &Method::POST,
        "/api/v1/workflows",
        Some("application/json"),
        serde_json::to_vec(&workflow("patch-target", "1")).unwrap(),
    )
    .await;
    assert_eq!(created.status, 201);
    let body: Value = serde_json::from_slice(&created.body).unwrap();
    body["workflow_id"].as_str().unwrap().to_owned()
}

/// Checks `answer` against what the document says of `op`: a listed status, and a body that
/// matches the schema listed for it. Returns a description of the mismatch, if any.
pub fn documented(doc: &Doc, op: &Op, answer: &Answer) -> Result<(), String> {
    let responses = &doc.operation(&op.method, op.path)["responses"];
    let listed = &responses[answer.status.to_string()];
    if !listed.is_object() {
        return Err(format!("status {} is not documented", answer.status));
    }
    let Some(content) = listed["content"].as_object() else {
        return Ok(());
    };
    let media = answer.content_type.split(';').next().unwrap_or("").trim();
    let Some(documented) = content.get(media) else {
        return Err(format!(
            "content type {media:?} is not documented for {} (documented: {:?})",
            answer.status,
            content.keys().collect::<Vec<_>>()
        ));
    };
    let body: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("the {} body is not JSON: {e}", answer.status))?;
    let validator = doc.validator(&documented["schema"]);
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the {} body does not match its schema: {errors:?}; body {}",
            answer.status,
            short(&body)
        ))
    }
}

#[test]
fn requests_the_document_allows_are_answered_as_documented() {
    let setup = Setup::new(None);
    let Setup {
        rt, app, doc, ops, ..
    } = &setup;

    let cases = Union::new(ops.iter().enumerate().map(|(i, op)| {
        valid_request(doc, op)
            .prop_map(move |request| (i, request))
            .boxed()
    }));
    let statuses = RefCell::new(BTreeMap::<(String, u16), u32>::new());
    let mut runner = TestRunner::new(Config {
        cases: 3_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&cases, |(i, (uri, body))| {
            let op = &ops[i];
            let (content_type, bytes) = match &body {
                Some(b) => (Some("application/json"), serde_json::to_vec(b).unwrap()),
                None => (None, Vec::new()),
            };
            let answer = rt.block_on(send(app, &op.method, &uri, content_type, bytes));
            let what = format!(
                "{} {uri} {}",
                op.method,
                body.as_ref().map(short).unwrap_or_default()
            );
            prop_assert!(
                answer.status != 400 && answer.status < 500,
                "{what}: a request the document allows got {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
            if let Err(mismatch) = documented(doc, op, &answer) {
                return Err(TestCaseError::fail(format!("{what}: {mismatch}")));
            }
            *statuses
                .borrow_mut()
                .entry((format!("{} {}", op.method, op.path), answer.status))
                .or_default() += 1;
            Ok(())
        })
        .unwrap();
    let statuses = statuses.into_inner();
    eprintln!("statuses of document-valid requests: {statuses:#?}");
    for op in ops {
        let key = format!("{} {}", op.method, op.path);
        let succeeded: u32 = statuses
            .iter()
            .filter(|((k, status), _)| *k == key && *status < 300)
            .map(|(_, n)| n)
            .sum();
        assert!(succeeded >= 50, "{key}: only {succeeded} successes");
    }
}
