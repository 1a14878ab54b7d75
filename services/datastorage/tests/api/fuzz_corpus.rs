//! The libFuzzer target's corpus (`services/datastorage/fuzz/corpus/requests`, grown by
//! `cargo xtask fuzz`), replayed on a real PostgreSQL: every input the fuzzer kept answers as
//! `datastorage::fuzzing::check` requires, and every refused one leaves the database unchanged.

use std::path::Path;

use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::helpers::{content_type, database};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/requests");

#[tokio::test]
async fn every_corpus_input_is_answered_as_required() {
    let db = database().await;
    let pool = db.pool().await.unwrap();
    let app = datastorage::app(datastorage::AppState::new(pool.clone()));
    let mut inputs: Vec<_> = std::fs::read_dir(Path::new(CORPUS))
        .unwrap_or_else(|e| panic!("{CORPUS}: {e}"))
        .map(|entry| entry.unwrap().path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 20, "only {} corpus inputs", inputs.len());
    let mut refused = 0;
    for input in &inputs {
        let data = std::fs::read(input).unwrap();
        let before = state(&pool).await;
        let response = app
            .clone()
            .oneshot(datastorage::fuzzing::request(&data))
            .await
            .unwrap();
        let status = response.status();
        let content_type = content_type(response.headers());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let name = input.file_name().unwrap().to_string_lossy();
        if let Err(wrong) = datastorage::fuzzing::check(
            status,
            Some(&content_type)
                .filter(|c| !c.is_empty())
                .map(String::as_str),
        ) {
            panic!("{name}: {wrong}: {}", String::from_utf8_lossy(&body));
        }
        if status.is_client_error() {
            refused += 1;
            assert_eq!(state(&pool).await, before, "{name}: refused but wrote");
        }
    }
    eprintln!("{} corpus inputs replayed, {refused} refused", inputs.len());
}

async fn state(pool: &sqlx::PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM audit_events), (SELECT count(*) FROM notification_audit),
                (SELECT count(*) FROM remediation_workflow_catalog)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}
