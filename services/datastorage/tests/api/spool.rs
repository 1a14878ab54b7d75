//! Audit writes during a database outage (`--spool`): 202 once on disk, stored once when the
//! database is back, in order; a full spool refuses with 503; a record PostgreSQL refuses is
//! kept as failed. On real PostgreSQL servers that the tests stop and start.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use datastorage::store::Spool;
use datastorage::store::spool::Record;
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::helpers::{Process, Reply, app_on_own_server, event, reply, sample};
use crate::notifications::notification;

/// A spool in a new temporary folder (kept as long as the returned guard).
fn spool(max_bytes: u64) -> (tempfile::TempDir, Spool) {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("spool.redb"), max_bytes).unwrap();
    (dir, spool)
}

/// Waits until nothing is queued in `spool` (at most `seconds`).
async fn drained(spool: &Spool, seconds: u64) {
    let wait = async {
        while spool.status().queued > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(seconds), wait)
        .await
        .unwrap_or_else(|_| panic!("spool not drained within {seconds} s: {spool:?}"));
}

async fn event_ids(pool: &sqlx::PgPool) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT event_id FROM audit_events")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn notification_ids(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT notification_id FROM notification_audit")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The event ids a 201 or 202 answer acknowledges.
fn acknowledged(r: &Reply) -> Vec<Uuid> {
    let ids = match r.body.get("events") {
        Some(events) => events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].clone())
            .collect(),
        None => vec![r.body["event_id"].clone()],
    };
    ids.iter()
        .map(|id| id.as_str().unwrap().parse().unwrap())
        .collect()
}

#[derive(Debug, Default)]
struct Tally {
    events: Vec<Uuid>,
    notifications: Vec<String>,
    created: usize,
    queued: usize,
    other: Vec<String>,
}

/// PostgreSQL stopped under load from 8 clients (single events, batches, notification records):
/// every write is answered 201 or 202, and once the server is back every acknowledged record is
/// stored, exactly once, and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_stopped_mid_load_every_write_is_201_or_202_and_stored_once() {
    let (_dir, spool) = spool(256 * 1024 * 1024);
    let (cluster, url, app) =
        app_on_own_server("spooled", 8, |s| s.with_spool(Some(spool.clone()))).await;
    let drain = spool.start_draining(app.pool.clone(), Duration::from_millis(200));

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut clients = Vec::new();
    for c in 0..8 {
        let client = app.client.clone();
        let base = app.base.clone();
        let (stop, tally) = (stop.clone(), tally.clone());
        clients.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (path, body) = match c {
                    0 => (
                        "/api/v1/audit/events/batch",
                        json!([
                            event(&format!("b{i}")),
                            event(&format!("b{i}")),
                            event(&format!("b{i}"))
                        ]),
                    ),
                    1 => (
                        "/api/v1/audit/notifications",
                        notification(&format!("n-{i}")),
                    ),
                    _ => ("/api/v1/audit/events", event(&format!("e{c}-{i}"))),
                };
                let r = reply(
                    client
                        .post(format!("{base}{path}"))
                        .json(&body)
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                let mut t = tally.lock().await;
                match r.status.as_u16() {
                    201 => t.created += 1,
                    202 => {
                        assert_eq!(r.body["status"], "queued", "{r:?}");
                        t.queued += 1;
                    }
                    _ => {
                        t.other.push(format!("{r:?}"));
                        continue;
                    }
                }
                if c == 1 {
                    t.notifications
                        .push(body["notification_id"].as_str().unwrap().to_owned());
                } else {
                    t.events.extend(acknowledged(&r));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cluster.pause().unwrap();
    let queued_before = tally.lock().await.queued;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let queued_during = tally.lock().await.queued - queued_before;
    cluster.resume().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    drained(&spool, 60).await;
    drain.abort();

    let tally = tally.lock().await;
    assert!(
        tally.other.is_empty(),
        "answers other than 201/202: {:?}",
        tally.other
    );
    assert!(
        queued_during > 0,
        "nothing was queued during the outage: {tally:?}"
    );
    assert!(tally.created > 0, "nothing was stored directly: {tally:?}");
    assert_eq!(spool.status().failed, 0, "{:?}", spool.failed().unwrap());

    let check = sqlx::PgPool::connect(&url).await.unwrap();
    let stored = event_ids(&check).await;
    let unique: HashSet<Uuid> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    let acked: HashSet<Uuid> = tally.events.iter().copied().collect();
    assert_eq!(acked.len(), tally.events.len());
    let lost = acked.difference(&unique).count();
    let extra = unique.difference(&acked).count();
    assert_eq!(
        (lost, extra),
        (0, 0),
        "acknowledged events lost / unacknowledged events stored"
    );

    let mut stored = notification_ids(&check).await;
    let mut acked = tally.notifications.clone();
    stored.sort();
    acked.sort();
    assert_eq!(stored, acked, "notification records");
    eprintln!(
        "outage with a spool: {} writes answered 201, {} answered 202 ({} while PostgreSQL was down); {} events and {} notification records stored once each",
        tally.created,
        tally.queued,
        queued_during,
        tally.events.len(),
        tally.notifications.len()
    );
}

/// Records wait in the spool of a service killed with SIGKILL; a new process on the same file
/// stores them all once the database is back. Order holds across them: a child event queued
/// after its parent is stored with the parent's partition date.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_queued_before_sigkill_are_stored_after_restart() {
    let cluster = pg_embedded::Cluster::start().expect("embedded PostgreSQL");
    let url = cluster.create_database("killed").unwrap();
    datastorage::db::migrate(&url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.redb");
    let path = path.to_str().unwrap();
    cluster.pause().unwrap();

    let args = [
        "--spool",
        path,
        "--acquire-timeout",
        "300ms",
        "--spool-retry",
        "200ms",
    ];
    let mut process = Process::start(&url, &args).await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        let request = client.post(format!("{}{path}", process.base)).json(&body);
        async move { reply(request.send().await.unwrap()).await }
    };
    let mut acked = Vec::new();
    let parent = post("/api/v1/audit/events", event("parent")).await;
    assert_eq!(parent.status, 202, "{parent:?}");
    let parent_id = acknowledged(&parent)[0];
    acked.push(parent_id);
    let mut child = event("child");
    child["parent_event_id"] = json!(parent_id);
    for body in [child.clone(), event("single")] {
        let r = post("/api/v1/audit/events", body).await;
        assert_eq!(r.status, 202, "{r:?}");
        acked.extend(acknowledged(&r));
    }
    let batch = post(
        "/api/v1/audit/events/batch",
        json!([event("batch"), event("batch")]),
    )
    .await;
    assert_eq!(batch.status, 202, "{batch:?}");
    assert_eq!(batch.body["count"], 2);
    acked.extend(acknowledged(&batch));
    let n = post("/api/v1/audit/notifications", notification("n-killed")).await;
    assert_eq!(n.status, 202, "{n:?}");
    assert_eq!(
        n.body,
        json!({"status": "queued", "notification_id": "n-killed"})
    );

    let ready = reply(
        client
            .get(format!("{}/health/ready", process.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (ready.status.as_u16(), ready.body["status"].as_str()),
        (200, Some("spooling"))
    );
    let metrics = client
        .get(format!("{}/metrics", process.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(&metrics, "datastorage_spool_records", ""),
        Some(5.0),
        "{metrics}"
    );

    process.child.kill().await.unwrap();
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_datastorage"))
        .args(["spool", "status", "--spool", path])
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{status:?}");
    assert!(printed.contains(": 5 queued"), "{printed}");
    assert!(printed.contains(", 0 failed"), "{printed}");
    cluster.resume().unwrap();
    let check = sqlx::PgPool::connect(&url).await.unwrap();
    assert!(
        event_ids(&check).await.is_empty(),
        "stored before the restart"
    );

    let process = Process::start(&url, &args).await;
    let wait = async {
        while event_ids(&check).await.len() < acked.len()
            || notification_ids(&check).await.is_empty()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("the restarted service drains its spool within 30 s");
    let stored: HashSet<Uuid> = event_ids(&check).await.into_iter().collect();
    assert_eq!(stored, acked.iter().copied().collect::<HashSet<_>>());
    assert_eq!(event_ids(&check).await.len(), acked.len());
    let (parent_of, parent_date): (Option<Uuid>, Option<chrono::NaiveDate>) = sqlx::query_as(
        "SELECT parent_event_id, parent_event_date FROM audit_events WHERE correlation_id = 'child'",
    )
    .fetch_one(&check)
    .await
    .unwrap();
    assert_eq!(parent_of, Some(parent_id));
    assert!(
        parent_date.is_some(),
        "the child's parent date was looked up when drained"
    );
    assert_eq!(notification_ids(&check).await, ["n-killed"]);
    drop(process);
}

/// With the database down and the spool full, a write is refused with 503 `spool-full` and
/// `Retry-After`, and readiness fails; what was queued before is stored once the database is
/// back, and the refused write left nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_refuses_writes_with_503() {
    let (_dir, spool) = spool(4096);
    let (cluster, _url, app) =
        app_on_own_server("full", 2, |s| s.with_spool(Some(spool.clone()))).await;
    cluster.pause().unwrap();
    let mut queued = Vec::new();
    let refused = loop {
        let r = app.post("/api/v1/audit/events", &event("fill")).await;
        match r.status.as_u16() {
            202 => queued.extend(acknowledged(&r)),
            503 => break r,
            _ => panic!("{r:?}"),
        }
        assert!(queued.len() < 100, "4 KiB spool never full");
    };
    refused.problem(503);
    assert_eq!(refused.body["type"], "urn:datastorage:problem:spool-full");
    let raw = app
        .client
        .post(app.url("/api/v1/audit/events"))
        .json(&event("more"))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 503);
    assert_eq!(raw.headers()["retry-after"], "5");
    app.get("/health/ready").await.problem(503);
    assert!(!queued.is_empty());

    cluster.resume().unwrap();
    let drain = spool.start_draining(app.pool.clone(), Duration::from_millis(100));
    drained(&spool, 30).await;
    drain.abort();
    let stored: HashSet<Uuid> = event_ids(&app.pool).await.into_iter().collect();
    assert_eq!(stored, queued.into_iter().collect::<HashSet<_>>());
}

/// Draining again what was stored already stores nothing twice: an event id that is stored is
/// skipped, and a notification record stored with the same content counts as stored. A record
/// PostgreSQL refuses (a parent that does not exist, a notification_id held by another record)
/// is moved to the failed table with the reason, and the others are stored.
#[tokio::test]
async fn drains_are_idempotent_and_refused_records_are_kept_as_failed() {
    let db = crate::helpers::database().await;
    let pool = db.pool().await.unwrap();
    let app = crate::helpers::spawn_on(None, pool.clone(), |s| s).await;
    let (_dir, spool) = spool(1024 * 1024);

    // Stored directly first: an event and a notification record.
    let created = app.post("/api/v1/audit/events", &event("twice")).await;
    assert_eq!(created.status, 201);
    let stored_id = acknowledged(&created)[0];
    assert_eq!(
        app.post("/api/v1/audit/notifications", &notification("n-same"))
            .await
            .status,
        201
    );
    assert_eq!(
        app.post("/api/v1/audit/notifications", &notification("n-taken"))
            .await
            .status,
        201
    );
    let event_row: datastorage::store::audit::Row = {
        let stored = app.get(&format!("/api/v1/audit/events/{stored_id}")).await;
        assert_eq!(stored.status, 200);
        let b = &stored.body;
        let text = |k: &str| b[k].as_str().unwrap().to_owned();
        datastorage::store::audit::Row {
            event_id: stored_id,
            version: text("version"),
            event_type: text("event_type"),
            event_timestamp: text("event_timestamp").parse().unwrap(),
            event_date: text("event_date").parse().unwrap(),
            event_category: text("event_category"),
            event_action: text("event_action"),
            event_outcome: text("event_outcome"),
            actor_type: text("actor_type"),
            actor_id: text("actor_id"),
            resource_type: text("resource_type"),
            resource_id: text("resource_id"),
            correlation_id: text("correlation_id"),
            parent_event_id: None,
            trace_id: None,
            span_id: None,
            namespace: None,
            cluster_name: None,
            event_data: b["event_data"].clone(),
            severity: text("severity"),
            duration_ms: None,
            error_code: None,
            error_message: None,
        }
    };
    let mut orphan = event_row.clone();
    orphan.event_id = Uuid::new_v4();
    orphan.correlation_id = "orphan".to_owned();
    let missing = Uuid::new_v4();
    orphan.parent_event_id = Some(missing);
    let mut fresh = event_row.clone();
    fresh.event_id = Uuid::new_v4();
    fresh.correlation_id = "fresh".to_owned();
    let notification_row = |id: &str, recipient: &str| datastorage::store::notifications::NewRow {
        remediation_id: "rr-42".to_owned(),
        notification_id: id.to_owned(),
        recipient: recipient.to_owned(),
        channel: "slack".to_owned(),
        message_summary: "Deployment api restarted with 2Gi memory".to_owned(),
        status: "sent".to_owned(),
        sent_at: "2026-11-25T10:00:00Z".parse().unwrap(),
        delivery_status: None,
        error_message: None,
        escalation_level: 0,
        signal_fingerprint: Some("fp-9b1e".to_owned()),
    };
    let records = [
        Record::Events {
            rows: vec![event_row.clone()],
            parent_dates: vec![None],
        },
        Record::Notification {
            row: notification_row("n-same", "#oncall"),
        },
        Record::Events {
            rows: vec![orphan],
            parent_dates: vec![None],
        },
        Record::Notification {
            row: notification_row("n-taken", "#someone-else"),
        },
        Record::Events {
            rows: vec![fresh.clone(), fresh.clone()],
            parent_dates: vec![None, None],
        },
    ];
    for r in &records {
        spool.push(r).await.unwrap();
    }
    let drained = spool.drain_all(&pool).await.unwrap();
    assert_eq!((drained.stored, drained.failed), (3, 2));
    let status = spool.status();
    assert_eq!((status.queued, status.failed), (0, 2));

    let ids = event_ids(&pool).await;
    assert_eq!(
        ids.len(),
        2,
        "the event stored once, the fresh one once: {ids:?}"
    );
    assert!(ids.contains(&stored_id) && ids.contains(&fresh.event_id));
    assert_eq!(app.count("notification_audit").await, 2);
    let failed = spool.failed().unwrap();
    let reasons: Vec<&str> = failed.iter().map(|(_, f)| f.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2);
    assert!(
        reasons[0].contains(&format!("no event with id {missing}")),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("n-taken") && reasons[1].contains("another record"),
        "{reasons:?}"
    );
    assert_eq!(failed[0].1.record, records[2]);

    // Reopened, the spool still holds its failed records and nothing queued.
    let path = spool.path().to_owned();
    drop(spool);
    let reopened = Spool::open(&path, 1024 * 1024).unwrap();
    assert_eq!(reopened.status().failed, 2);
    assert_eq!(reopened.status().queued, 0);
}
