//! The workflow catalog: versions, lifecycle updates, search.

use serde_json::{Value, json};

use crate::helpers::{spawn_app, workflow};

#[tokio::test]
async fn versions_keep_exactly_one_latest() {
    let app = spawn_app().await;
    let v1 = app
        .post("/api/v1/workflows", &workflow("oom", "1.0.0"))
        .await;
    assert_eq!(v1.status, 201, "{v1:?}");
    assert_eq!(v1.body["status"], "active");
    assert_eq!(v1.body["is_latest_version"], true);
    assert_eq!(v1.body["execution_engine"], "tekton");
    // content_hash is the SHA-256 of content, computed by the server.
    let content = v1.body["content"].as_str().unwrap();
    let hash: String = sqlx::query_scalar("SELECT encode(sha256($1::bytea), 'hex')")
        .bind(content.as_bytes())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(v1.body["content_hash"], hash);

    let v2 = app
        .post("/api/v1/workflows", &workflow("oom", "1.1.0"))
        .await;
    assert_eq!(v2.status, 201, "{v2:?}");
    let versions = app.get("/api/v1/workflows/by-name/oom/versions").await;
    let list: Vec<(String, bool)> = versions
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["version"].as_str().unwrap().to_owned(),
                w["is_latest_version"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(list, [("1.1.0".into(), true), ("1.0.0".into(), false)]);

    let detail = app
        .post("/api/v1/workflows", &workflow("oom", "1.0.0"))
        .await
        .problem(409);
    assert!(detail.contains("1.0.0"), "{detail}");
    app.get("/api/v1/workflows/by-name/none/versions")
        .await
        .problem(404);

    let id = v1.body["workflow_id"].as_str().unwrap();
    let got = app.get(&format!("/api/v1/workflows/{id}")).await;
    assert_eq!(got.body["version"], "1.0.0");
    let latest = app
        .get("/api/v1/workflows?workflow_name=oom&latest_only=true")
        .await;
    assert_eq!(latest.body["total"], 1);
    assert_eq!(latest.body["data"][0]["version"], "1.1.0");

    // Pages: newest first; `total` counts every match, also past the last page.
    let page = app
        .get("/api/v1/workflows?workflow_name=oom&limit=1&offset=1")
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.body["total"], 2);
    assert_eq!(
        (page.body["limit"].clone(), page.body["offset"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(page.body["data"][0]["version"], "1.0.0");
    let past = app
        .get("/api/v1/workflows?workflow_name=oom&offset=5")
        .await;
    assert_eq!(past.body["data"], json!([]));
    assert_eq!(past.body["total"], 2);
}

#[tokio::test]
async fn concurrent_versions_leave_one_latest() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let client = app.client.clone();
        let url = app.url("/api/v1/workflows");
        let body = workflow("race", &format!("1.{i}.0"));
        tasks.push(tokio::spawn(async move {
            client.post(url).json(&body).send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let latest: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM remediation_workflow_catalog WHERE workflow_name = 'race' AND is_latest_version",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(latest, 1);
}

#[tokio::test]
async fn only_lifecycle_fields_can_change() {
    let app = spawn_app().await;
    let created = app.post("/api/v1/workflows", &workflow("wf", "1")).await;
    let path = format!(
        "/api/v1/workflows/{}",
        created.body["workflow_id"].as_str().unwrap()
    );
    for field in [
        "content",
        "version",
        "labels",
        "workflow_name",
        "is_latest_version",
    ] {
        let detail = app.patch(&path, &json!({ field: "x" })).await.problem(400);
        assert_eq!(
            detail,
            format!(
                "{field}: immutable field; only status, disabled_by and disabled_reason can be updated"
            )
        );
    }
    app.patch(&path, &json!({"status": "paused"}))
        .await
        .problem(400);
    app.patch(&path, &json!({})).await.problem(400);

    let disabled = app
        .patch(
            &path,
            &json!({"status": "disabled", "disabled_by": "oncall", "disabled_reason": "flaky"}),
        )
        .await;
    assert_eq!(disabled.status, 200, "{disabled:?}");
    assert_eq!(disabled.body["status"], "disabled");
    assert_eq!(disabled.body["disabled_by"], "oncall");
    assert!(disabled.body["disabled_at"].is_string());
    assert_eq!(disabled.body["content"], created.body["content"]);

    let active = app
        .patch(&path, &json!({"status": "active", "disabled_reason": null}))
        .await;
    assert_eq!(active.body["status"], "active");
    assert!(active.body["disabled_at"].is_null());
    assert!(active.body["disabled_reason"].is_null());
    assert_eq!(active.body["disabled_by"], "oncall", "untouched field kept");

    app.patch(
        "/api/v1/workflows/6f1c1a2e-8f57-4a39-9a51-0c1f9f0b7c11",
        &json!({"status": "active"}),
    )
    .await
    .problem(404);
}

#[tokio::test]
async fn invalid_workflows_are_refused() {
    let app = spawn_app().await;
    for (pointer, value, expected) in [
        (
            "/labels/severity",
            json!("urgent"),
            "unknown variant `urgent`",
        ),
        ("/labels/priority", json!("P9"), "unknown variant `P9`"),
        ("/labels/signal_type", json!(""), "labels.signal_type"),
        ("/workflow_name", json!(""), "workflow_name"),
        ("/status", json!("gone"), "unknown variant `gone`"),
    ] {
        let mut body = workflow("bad", "1");
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        body.pointer_mut(parent).unwrap()[key] = value;
        let parent = if parent.is_empty() { "/" } else { parent };
        let _ = parent;
        let detail = app.post("/api/v1/workflows", &body).await.problem(400);
        assert!(detail.contains(expected), "{pointer}: {detail}");
    }
    let mut body = workflow("bad", "1");
    body["labels"]
        .as_object_mut()
        .unwrap()
        .remove("environment");
    let detail = app.post("/api/v1/workflows", &body).await.problem(400);
    assert!(detail.contains("environment"), "{detail}");
    assert_eq!(app.count("remediation_workflow_catalog").await, 0);
}

fn search(extra: Value) -> Value {
    let mut body = json!({
        "signal_type": "OOMKilled", "severity": "critical", "component": "deployment",
        "environment": "production", "priority": "P0",
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

#[tokio::test]
async fn search_filters_and_ranks() {
    let app = spawn_app().await;
    let mut gitops = workflow("gitops-aware", "1");
    gitops["detected_labels"] = json!({"gitOpsManaged": true});
    gitops["custom_labels"] = json!({"team": ["payments", "core"]});
    let mut conflicting = workflow("no-gitops", "1");
    conflicting["detected_labels"] = json!({"gitOpsManaged": false});
    let mut any_component = workflow("any-component", "1");
    any_component["labels"]["component"] = json!("*");
    let mut staging = workflow("staging-only", "1");
    staging["labels"]["environment"] = json!("staging");
    let mut disabled = workflow("disabled", "1");
    disabled["status"] = json!("disabled");
    for body in [&gitops, &conflicting, &any_component, &staging, &disabled] {
        assert_eq!(app.post("/api/v1/workflows", body).await.status, 201);
    }
    // An older version is never a result.
    app.post("/api/v1/workflows", &workflow("gitops-aware-old", "1"))
        .await;
    app.post("/api/v1/workflows", &workflow("gitops-aware-old", "2"))
        .await;

    let results = app
        .post(
            "/api/v1/workflows/search",
            &search(json!({
                "detected_labels": {"gitOpsManaged": true},
                "custom_labels": {"team": "payments"},
            })),
        )
        .await;
    assert_eq!(results.status, 200, "{results:?}");
    let ranked: Vec<(String, f64)> = results.body["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["workflow_name"].as_str().unwrap().to_owned(),
                h["score"].as_f64().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = ranked.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "gitops-aware",
            "any-component",
            "gitops-aware-old",
            "no-gitops"
        ]
    );
    assert!((ranked[0].1 - 0.6).abs() < 1e-9, "{ranked:?}");
    assert!((ranked[1].1 - 0.5).abs() < 1e-9, "{ranked:?}");
    assert!((ranked[3].1 - 0.4).abs() < 1e-9, "{ranked:?}");

    let top = app
        .post(
            "/api/v1/workflows/search",
            &search(
                json!({"detected_labels": {"gitOpsManaged": true}, "min_score": 0.5, "top_k": 2}),
            ),
        )
        .await;
    assert_eq!(top.body["total_results"], 2);

    let wildcard = app
        .post(
            "/api/v1/workflows/search",
            &search(json!({"component": "*"})),
        )
        .await;
    assert_eq!(wildcard.body["total_results"], 4);

    for (extra, expected) in [
        (json!({"top_k": 0}), "top_k"),
        (json!({"top_k": 101}), "top_k"),
        (json!({"min_score": 1.5}), "min_score"),
        (json!({"severity": "urgent"}), "severity"),
        (json!({"priority": "P4"}), "P4"),
    ] {
        let detail = app
            .post("/api/v1/workflows/search", &search(extra.clone()))
            .await
            .problem(400);
        assert!(detail.contains(expected), "{extra}: {detail}");
    }
}
