//! Notification audit records.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

pub fn notification(id: &str) -> Value {
    json!({
        "remediation_id": "rr-42",
        "notification_id": id,
        "recipient": "#oncall",
        "channel": "slack",
        "message_summary": "Deployment api restarted with 2Gi memory",
        "status": "sent",
        "sent_at": "2026-11-25T10:00:00Z",
        "signal_fingerprint": "fp-9b1e",
    })
}

#[tokio::test]
async fn notification_is_stored_and_duplicates_conflict() {
    let app = spawn_app().await;
    let created = app
        .post("/api/v1/audit/notifications", &notification("n-1"))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["escalation_level"], 0);
    assert_eq!(created.body["signal_fingerprint"], "fp-9b1e");

    let detail = app
        .post("/api/v1/audit/notifications", &notification("n-1"))
        .await
        .problem(409);
    assert!(detail.contains("n-1"), "{detail}");
    assert_eq!(app.count("notification_audit").await, 1);

    let got = app.get("/api/v1/audit/notifications/n-1").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["recipient"], "#oncall");
    app.get("/api/v1/audit/notifications/n-404")
        .await
        .problem(404);
}

#[tokio::test]
async fn invalid_notifications_are_refused() {
    let app = spawn_app().await;
    for (field, value, expected) in [
        ("status", json!("lost"), "unknown variant `lost`"),
        ("notification_id", json!(""), "notification_id"),
        ("channel", json!("c".repeat(51)), "channel"),
        ("escalation_level", json!(-1), "escalation_level"),
        ("sent_at", json!(17), "sent_at"),
    ] {
        let mut body = notification("n-bad");
        body[field] = value;
        let detail = app
            .post("/api/v1/audit/notifications", &body)
            .await
            .problem(400);
        assert!(detail.contains(expected), "{field}: {detail}");
    }
    assert_eq!(app.count("notification_audit").await, 0);
}
