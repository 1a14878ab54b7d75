//! At least 10,000 generated requests, each a valid request of a documented operation with one
//! thing wrong (or, as a control, right): a field mutated (wrong type, out of range, too long,
//! too short, missing, unknown, NUL, Unicode text), the JSON broken at a random byte, a wrong
//! content type, a body over the limit, a query parameter mutated, an unknown path. Each gets
//! exactly the status the document promises for it — for a body, the document itself judges the
//! mutated value (`docgen`) — and after every refused request the database is unchanged.
//! proptest shrinks a failing case to a minimal one.

use std::cell::RefCell;
use std::collections::BTreeMap;

use axum::http::Method;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use sqlx::PgPool;

use crate::contract::{Op, Setup, documented, query_string, send, valid_query};
use crate::docgen::{Doc, Inexpressible, breaks_inexpressible, inexpressible, text};

/// The fuzzed service's body limit: above every generated valid body, far below the default.
const BODY_LIMIT: usize = 256 * 1024;

/// What a case must get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// The document's verdict on the body, taken when the case runs: 400 if it is not JSON,
    /// holds a NUL or the request schema refuses it; otherwise a documented status other than
    /// 400.
    Judged,
    /// Exactly this status.
    Status(u16),
}

/// One generated request.
#[derive(Clone)]
struct Case {
    /// Index into the operations; `None` for a path the document does not have.
    op: Option<usize>,
    method: Method,
    uri: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    expect: Expect,
    what: String,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({}), content type {:?}, expected {:?}, body {:?}",
            self.method,
            self.uri,
            self.what,
            self.content_type,
            self.expect,
            crate::docgen::short(&Value::String(
                String::from_utf8_lossy(&self.body).into_owned()
            ))
        )
    }
}

fn json_case(op: usize, ops: &[Op], body: Vec<u8>, expect: Expect, what: String) -> Case {
    Case {
        op: Some(op),
        method: ops[op].method.clone(),
        uri: ops[op].uri.clone(),
        content_type: Some("application/json"),
        body,
        expect,
        what,
    }
}

/// Body cases of operation `i`: a mutated field, broken JSON, a wrong content type, a body over
/// the limit.
fn body_cases(doc: &Doc, ops: &[Op], i: usize) -> BoxedStrategy<Case> {
    let op = &ops[i];
    let schema = doc.request_schema(&op.method, op.path);
    let valid = doc.valid(&schema);
    let ops1 = ops.to_vec();
    let ops2 = ops.to_vec();
    let ops3 = ops.to_vec();
    let ops4 = ops.to_vec();
    prop_oneof![
        6 => doc.mutated(&schema).prop_map(move |(value, what)| {
            json_case(i, &ops1, serde_json::to_vec(&value).unwrap(), Expect::Judged, what)
        }),
        2 => (valid.clone(), any::<prop::sample::Index>(), any::<u8>(), 0..4u8).prop_map(
            move |(value, at, byte, how)| {
                let mut bytes = serde_json::to_vec(&value).unwrap();
                let at = at.index(bytes.len());
                let what = match how {
                    0 => {
                        bytes.truncate(at);
                        format!("JSON cut at byte {at}")
                    }
                    1 => {
                        bytes.insert(at, byte);
                        format!("byte {byte:#04x} inserted at {at}")
                    }
                    2 => {
                        bytes[at] = byte;
                        format!("byte {at} replaced by {byte:#04x}")
                    }
                    _ => {
                        bytes.extend_from_slice(&bytes.clone()[..at]);
                        format!("{at} bytes of trailing text")
                    }
                };
                json_case(i, &ops2, bytes, Expect::Judged, what)
            }
        ),
        1 => (
            valid.clone(),
            prop::sample::select(vec![
                None,
                Some("text/plain"),
                Some("application/xml"),
                Some("multipart/form-data; boundary=x"),
                Some("application/x-www-form-urlencoded"),
                Some("json"),
            ])
        )
            .prop_map(move |(value, content_type)| Case {
                content_type,
                what: format!("content type {content_type:?}"),
                ..json_case(
                    i,
                    &ops3,
                    serde_json::to_vec(&value).unwrap(),
                    Expect::Status(415),
                    String::new(),
                )
            }),
        1 => (valid, 1..4096usize).prop_map(move |(value, extra)| {
            // A valid body padded with whitespace past the limit: only its size is wrong.
            let mut bytes = serde_json::to_vec(&value).unwrap();
            bytes.resize(BODY_LIMIT + extra, b' ');
            json_case(
                i,
                &ops4,
                bytes,
                Expect::Status(413),
                format!("{} bytes", BODY_LIMIT + extra),
            )
        }),
    ]
    .boxed()
}

/// Query cases of operation `i`: a valid query with one parameter made wrong (or, for free text,
/// set to other valid text), an unknown or a repeated parameter.
fn query_cases(doc: &Doc, ops: &[Op], i: usize) -> BoxedStrategy<Case> {
    let op = ops[i].clone();
    let params = doc.query_parameters(&op.method, op.path);
    let resolved: Vec<(String, Value)> = params
        .iter()
        .map(|(n, s)| (n.clone(), doc.resolve(s).clone()))
        .collect();
    let mutation = (any::<prop::sample::Index>(), 0..5u8, text(0, 10)).prop_map(
        move |(at, how, s)| -> (Option<(String, String)>, u16, String) {
            let (name, schema) = &resolved[at.index(resolved.len())];
            let bad = |v: &str| (Some((name.clone(), v.to_owned())), 400);
            let (pair, status) = match (how, schema["type"].as_str(), inexpressible(name)) {
                // An unknown parameter.
                (0, ..) => {
                    let unknown = format!("x_{}", s.len());
                    return (
                        Some((unknown.clone(), "1".to_owned())),
                        400,
                        format!("unknown parameter {unknown}"),
                    );
                }
                // A NUL in any value.
                (1, ..) => bad(&format!("{s}\u{0}")),
                (_, _, Some(Inexpressible::TimeOrDuration)) => bad("tomorrow"),
                (_, _, Some(Inexpressible::TimeRange)) => {
                    bad(if how == 2 { "7w" } else { "3651d" })
                }
                (_, _, Some(Inexpressible::Absent)) => bad(&format!("not-a-cursor{s}")),
                (_, Some("integer"), _) => match how {
                    2 => bad("1.5"),
                    3 => bad(""),
                    _ => {
                        let below = schema["minimum"].as_i64().map(|m| m - 1);
                        let above = schema["maximum"].as_i64().map(|m| m + 1);
                        bad(&below.or(above).unwrap_or(i64::MAX).to_string())
                    }
                },
                (_, Some("boolean"), _) => bad("yes"),
                _ if schema["enum"].is_array() => {
                    let value = format!("{s}-not-listed");
                    bad(&value)
                }
                // Free text: valid within the parameter's lengths.
                _ => {
                    let n = s.chars().count() as u64;
                    let fits = schema["minLength"].as_u64().is_none_or(|m| n >= m)
                        && schema["maxLength"].as_u64().is_none_or(|m| n <= m);
                    (
                        Some((name.clone(), s.clone())),
                        if fits { 200 } else { 400 },
                    )
                }
            };
            let what = match &pair {
                Some((n, v)) => format!("{n}={v:?}"),
                None => String::new(),
            };
            (pair, status, what)
        },
    );
    let uri = op.uri.clone();
    (valid_query(doc, &op), mutation, any::<bool>())
        .prop_map(move |(mut query, (pair, status, what), repeat)| {
            let (mut status, mut what) = (status, what);
            if let Some((name, value)) = pair {
                query.retain(|(n, _)| *n != name);
                query.push((name, Value::String(value)));
            }
            if repeat && status == 200 && !query.is_empty() {
                // A repeated parameter.
                query.push(query[0].clone());
                status = 400;
                what = format!("{} given twice", query[0].0);
            }
            Case {
                op: Some(i),
                method: Method::GET,
                uri: format!("{uri}?{}", query_string(&query)),
                content_type: None,
                body: Vec::new(),
                expect: Expect::Status(status),
                what,
            }
        })
        .boxed()
}

/// Paths: unknown ones (404), lookups of ids that do not exist (404) or are not ids (400).
fn path_cases() -> BoxedStrategy<Case> {
    let get = |uri: String, status: u16, what: &str| Case {
        op: None,
        method: Method::GET,
        uri,
        content_type: None,
        body: Vec::new(),
        expect: Expect::Status(status),
        what: what.to_owned(),
    };
    let segment = "[a-z0-9_-]{1,12}";
    prop_oneof![
        segment.prop_map(move |s| get(format!("/api/v1/no-such-{s}"), 404, "unknown path")),
        segment.prop_map(move |s| get(format!("/api/v2/{s}"), 404, "unknown version")),
        any::<u128>().prop_map(move |n| get(
            format!("/api/v1/audit/events/{}", uuid::Uuid::from_u128(n)),
            404,
            "no such event"
        )),
        any::<u128>().prop_map(move |n| get(
            format!("/api/v1/workflows/{}", uuid::Uuid::from_u128(n)),
            404,
            "no such workflow"
        )),
        segment.prop_map(move |s| get(format!("/api/v1/audit/events/{s}"), 400, "not a UUID")),
    ]
    .boxed()
}

/// Everything the database holds, as one comparable string.
async fn fingerprint(pool: &PgPool) -> String {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM audit_events)::text
             || '/' || (SELECT count(*) FROM notification_audit)::text
             || '/' || (SELECT coalesce(md5(string_agg(w::text, ',' ORDER BY w.workflow_id)), '')
                        FROM remediation_workflow_catalog w)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Whether a JSON value holds the NUL character in a string or a key.
fn holds_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

#[test]
fn ten_thousand_mutated_requests_get_the_documented_status_and_refused_ones_write_nothing() {
    let setup = Setup::new(Some(BODY_LIMIT));
    let Setup {
        rt,
        pool,
        app,
        doc,
        ops,
        ..
    } = &setup;
    let mut strategies: Vec<BoxedStrategy<Case>> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            if op.method == Method::GET {
                query_cases(doc, ops, i)
            } else {
                body_cases(doc, ops, i)
            }
        })
        .collect();
    strategies.push(path_cases());
    let cases = Union::new(strategies);

    let tally = RefCell::new(BTreeMap::<(String, u16), u32>::new());
    let mut runner = TestRunner::new(Config {
        cases: 10_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&cases, |case| {
            let before = rt.block_on(fingerprint(pool));
            let answer = rt.block_on(send(
                app,
                &case.method,
                &case.uri,
                case.content_type,
                case.body.clone(),
            ));
            let label = format!("{} {} ({})", case.method, case.uri, case.what);
            let body_text = String::from_utf8_lossy(&answer.body).into_owned();
            // The status the document promises.
            let refused = match case.expect {
                Expect::Status(status) => {
                    prop_assert_eq!(answer.status, status, "{}: {}", label, body_text);
                    status >= 400
                }
                Expect::Judged => {
                    let op = &ops[case.op.unwrap()];
                    let schema = doc.request_schema(&op.method, op.path);
                    let validator = doc.validator(&schema);
                    if case.body.len() > BODY_LIMIT {
                        prop_assert_eq!(answer.status, 413, "{}: {}", label, body_text);
                    }
                    let verdict = match serde_json::from_slice::<Value>(&case.body) {
                        _ if case.body.len() > BODY_LIMIT => Err("over the body limit"),
                        Err(_) => Err("not JSON"),
                        Ok(v) if holds_nul(&v) => Err("a NUL"),
                        Ok(v) if !doc.allows(&validator, &schema, &v) => Err("schema-invalid"),
                        Ok(v) => match breaks_inexpressible(&v) {
                            Some(true) => Err("against a rule in a description"),
                            Some(false) => Ok(()),
                            // Too close to call: either answer is right; nothing else is.
                            None => {
                                prop_assert!([201, 400].contains(&answer.status), "{}", label);
                                Err("too close to call")
                            }
                        },
                    };
                    match verdict {
                        Err("over the body limit") => true,
                        Err("too close to call") => answer.status >= 400,
                        Err(why) => {
                            prop_assert_eq!(
                                answer.status,
                                400,
                                "{} is {}: {}",
                                label,
                                why,
                                body_text
                            );
                            true
                        }
                        Ok(()) => {
                            prop_assert!(
                                answer.status != 400 && answer.status < 500,
                                "{label}: the document allows the body {}, got {}: {body_text}",
                                String::from_utf8_lossy(&case.body),
                                answer.status
                            );
                            answer.status >= 400
                        }
                    }
                }
            };
            if let Some(op) = case.op
                && let Err(mismatch) = documented(doc, &ops[op], &answer)
            {
                return Err(TestCaseError::fail(format!("{label}: {mismatch}")));
            }
            if refused {
                prop_assert_eq!(
                    answer.content_type.as_str(),
                    "application/problem+json",
                    "{}",
                    label
                );
                let after = rt.block_on(fingerprint(pool));
                prop_assert_eq!(
                    before,
                    after,
                    "{} was refused but changed the database",
                    label
                );
            }
            let key = match case.op {
                Some(op) => format!("{} {}", ops[op].method, ops[op].path),
                None => "paths".to_owned(),
            };
            *tally.borrow_mut().entry((key, answer.status)).or_default() += 1;
            Ok(())
        })
        .unwrap();
    let tally = tally.into_inner();
    let total: u32 = tally.values().sum();
    eprintln!("mutated requests by operation and status: {tally:#?}");
    assert!(total >= 10_000, "{total} cases");
    // Every kind of answer was reached.
    for status in [200, 201, 400, 404, 413, 415] {
        assert!(
            tally.keys().any(|(_, s)| *s == status),
            "no case got {status}: {tally:?}"
        );
    }
}
