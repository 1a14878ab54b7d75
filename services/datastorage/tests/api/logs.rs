//! The service's logs, read from a `datastorage` process: JSON off a terminal (`--log-format
//! auto`), never an escape code when not on a terminal, the request id in every line logged
//! during a request and in the response's `x-request-id`.

use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::helpers::{Process, database};

/// Runs `datastorage` with `args` (request-level lines on), sends two requests (one with an id of
/// its own), stops it; the request ids its responses carried, and everything it logged.
async fn logs_of(args: &[&str]) -> (Vec<String>, String) {
    let db = database().await;
    let mut args = args.to_vec();
    args.extend(["--log", "info,tower_http=debug"]);
    let mut process = Process::start(db.url(), &args).await;
    let mut stderr = process.child.stderr.take().unwrap();
    let logged = tokio::spawn(async move {
        let mut text = String::new();
        stderr.read_to_string(&mut text).await.unwrap();
        text
    });
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for own in [None, Some("client-chosen-id-7")] {
        let mut request = client.get(format!("{}/api/v1/audit/events?limit=1", process.base));
        if let Some(id) = own {
            request = request.header("x-request-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        if let Some(own) = own {
            assert_eq!(id, own, "the client's own request id is kept");
        } else {
            uuid::Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{id}: {e}"));
        }
        ids.push(id);
    }
    process.terminate();
    process.child.wait().await.unwrap();
    (ids, logged.await.unwrap())
}

#[tokio::test]
async fn logs_are_json_off_a_terminal_with_the_request_id_in_every_request_line() {
    let (ids, logged) = logs_of(&["--log-format", "auto"]).await;
    assert!(!logged.contains('\u{1b}'), "escape codes in {logged}");
    let lines: Vec<Value> = logged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "listening"),
        "{logged}"
    );
    for id in &ids {
        let of_request: Vec<&Value> = lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id.as_str())
            .collect();
        // tower-http's "started processing request" and "finished processing request".
        assert!(of_request.len() >= 2, "{id}: {of_request:?}\n{logged}");
    }
    // Every line logged inside a request's span names the request's id.
    for line in lines.iter().filter(|l| l["span"]["name"] == "request") {
        let id = line["span"]["request_id"].as_str().unwrap_or_default();
        assert!(ids.iter().any(|i| i == id), "{line}");
    }
}

#[tokio::test]
async fn pretty_logs_have_no_escape_codes_when_not_on_a_terminal() {
    let (ids, logged) = logs_of(&["--log-format", "pretty"]).await;
    assert!(!logged.contains('\u{1b}'), "escape codes in {logged}");
    assert!(logged.contains("listening"), "{logged}");
    for id in &ids {
        assert!(
            logged.contains(&format!("request_id={id}")),
            "{id} not logged: {logged}"
        );
    }
}
