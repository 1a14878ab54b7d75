//! The OpenAPI document: generated from the handlers, committed as docs/openapi.json.

use std::path::Path;

use crate::helpers::spawn_app;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

/// Generate-or-check: fails when docs/openapi.json is stale; `UPDATE_OPENAPI=1` rewrites it.
#[test]
fn committed_openapi_is_up_to_date() {
    let generated = datastorage::openapi().to_pretty_json().unwrap() + "\n";
    let path = Path::new(DOC);
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if committed == generated {
        return;
    }
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
        return;
    }
    panic!(
        "docs/openapi.json is out of date; run `UPDATE_OPENAPI=1 cargo test -p datastorage --test api openapi` and commit the result"
    );
}

#[test]
fn every_operation_documents_its_problems() {
    let doc = serde_json::to_value(datastorage::openapi()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for required in [
        "/api/v1/audit/events",
        "/api/v1/audit/events/batch",
        "/api/v1/audit/events/{event_id}",
        "/api/v1/audit/notifications",
        "/api/v1/workflows",
        "/api/v1/workflows/{workflow_id}",
        "/api/v1/workflows/by-name/{workflow_name}/versions",
        "/api/v1/workflows/search",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        assert!(paths.contains_key(required), "{required} missing");
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
                // Lookups by a free-text name cannot be malformed.
                let by_name = method == "get"
                    && (path.ends_with("{notification_id}") || path.ends_with("/versions"));
                for status in ["400", "500", "503"] {
                    if status == "400" && by_name {
                        continue;
                    }
                    let content = &responses
                        .get(status)
                        .unwrap_or_else(|| panic!("{method} {path} lacks {status}"))["content"];
                    assert!(
                        content.get("application/problem+json").is_some(),
                        "{method} {path} {status} is not a problem"
                    );
                }
            }
            if ["post", "patch"].contains(&method.as_str()) && path != "/api/v1/workflows/search" {
                assert!(responses.contains_key("401"), "{method} {path} lacks 401");
                assert!(responses.contains_key("413"), "{method} {path} lacks 413");
                assert!(responses.contains_key("415"), "{method} {path} lacks 415");
            }
        }
    }
}

#[tokio::test]
async fn served_document_is_the_committed_one() {
    let app = spawn_app().await;
    let served = app.get("/api/v1/openapi.json").await;
    assert_eq!(served.status, 200);
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DOC).unwrap()).unwrap();
    assert_eq!(served.body, committed);
}
