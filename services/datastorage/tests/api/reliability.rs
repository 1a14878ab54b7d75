//! Reliability under concurrency, outages and shutdown, on a real PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use uuid::Uuid;

use crate::helpers::{Process, app_on_own_server, event, reply, sample, spawn_app};

async fn stored_ids(pool: &sqlx::PgPool) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT event_id FROM audit_events")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_processes_migrate_one_empty_database_once() {
    let db = test_db::empty_database()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let starts: Vec<_> = (0..8)
        .map(|_| {
            let url = db.url().to_owned();
            tokio::spawn(async move { Process::start(&url, &["--migrate"]).await })
        })
        .collect();
    let mut processes = Vec::new();
    for start in starts {
        processes.push(start.await.unwrap());
    }

    let pool = db.pool().await.unwrap();
    let rows: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    let expected: Vec<(i64, bool)> = datastorage::MIGRATOR
        .iter()
        .map(|m| (m.version, true))
        .collect();
    assert_eq!(rows, expected, "every migration applied exactly once");

    let client = reqwest::Client::new();
    for p in &processes {
        let ready = client
            .get(format!("{}/health/ready", p.base))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "{} is not ready", p.base);
        let created = client
            .post(format!("{}/api/v1/audit/events", p.base))
            .json(&event("eight"))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    for mut p in processes {
        p.terminate();
        let status = tokio::time::timeout(Duration::from_secs(30), p.child.wait())
            .await
            .expect("exits after SIGTERM")
            .unwrap();
        assert!(status.success(), "{status}");
    }
    assert_eq!(stored_ids(&pool).await.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_each_event_stored_exactly_once() {
    let app = spawn_app().await;
    let acked = Arc::new(Mutex::new(Vec::<Uuid>::new()));
    let mut writers = Vec::new();
    for w in 0..32 {
        let client = app.client.clone();
        let url = app.url("/api/v1/audit/events");
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..25 {
                let r = reply(
                    client
                        .post(&url)
                        .json(&event(&format!("w{w}-{i}")))
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                assert_eq!(r.status, 201, "{r:?}");
                let id: Uuid = r.body["event_id"].as_str().unwrap().parse().unwrap();
                acked.lock().await.push(id);
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert_eq!(acked.len(), 800);
    let stored = stored_ids(&app.pool).await;
    assert_eq!(stored.len(), 800, "no duplicates, nothing missing");
    let stored: HashSet<Uuid> = stored.into_iter().collect();
    let acked: HashSet<Uuid> = acked.into_iter().collect();
    assert_eq!(stored, acked);
}

/// Readiness follows the database: PostgreSQL stopped → 503 for readiness and for writes
/// (liveness stays 200); started again → ready, and writes succeed, with no restart of the service.
#[tokio::test]
async fn readiness_follows_the_database_server() {
    let (cluster, _url, app) = app_on_own_server("ready", 4, |s| s).await;
    assert_eq!(app.get("/health/ready").await.status, 200);
    assert_eq!(
        app.post("/api/v1/audit/events", &event("up")).await.status,
        201
    );

    cluster.pause().unwrap();
    app.get("/health/ready").await.problem(503);
    let detail = app
        .post("/api/v1/audit/events", &event("down"))
        .await
        .problem(503);
    assert!(detail.contains("unavailable"), "{detail}");
    assert_eq!(
        app.get("/health/live").await.status,
        200,
        "liveness needs no database"
    );

    cluster.resume().unwrap();
    let mut ready = false;
    for _ in 0..50 {
        if app.get("/health/ready").await.status == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "not ready within 5 s of the database's return");
    assert_eq!(
        app.post("/api/v1/audit/events", &event("back"))
            .await
            .status,
        201
    );
    let correlations: Vec<String> =
        sqlx::query_scalar("SELECT correlation_id FROM audit_events ORDER BY correlation_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        correlations,
        ["back", "up"],
        "the refused write left nothing"
    );
}

/// Outcome counts of a load run.
#[derive(Debug, Default)]
struct Tally {
    acked: Vec<Uuid>,
    unavailable: usize,
    other: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_restart_mid_load_gives_503_then_recovers_without_losing_acks() {
    let (cluster, url, app) = app_on_own_server("outage", 8, |s| s).await;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut writers = Vec::new();
    for w in 0..8 {
        let client = app.client.clone();
        let url = app.url("/api/v1/audit/events");
        let (stop, tally) = (stop.clone(), tally.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let r = reply(
                    client
                        .post(&url)
                        .json(&event(&format!("o{w}-{i}")))
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                let mut t = tally.lock().await;
                match r.status.as_u16() {
                    201 => t
                        .acked
                        .push(r.body["event_id"].as_str().unwrap().parse().unwrap()),
                    503 => {
                        r.problem(503);
                        t.unavailable += 1;
                        drop(t);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    _ => t.other.push(format!("{r:?}")),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_outage = tally.lock().await.acked.len();
    cluster.pause().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = tally.lock().await.unavailable;
    cluster.resume().unwrap();
    // Recovery: acknowledgements resume without restarting the service.
    let resumed_at = tally.lock().await.acked.len();
    let mut recovered = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if tally.lock().await.acked.len() > resumed_at + 50 {
            recovered = true;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let tally = tally.lock().await;
    assert!(before_outage > 0, "no load before the outage");
    assert!(during > 0, "no 503 during the outage: {tally:?}");
    assert!(recovered, "writes did not resume after the restart");
    assert!(
        tally.other.is_empty(),
        "unexpected replies: {:?}",
        tally.other
    );

    let check = sqlx::PgPool::connect(&url).await.unwrap();
    let stored: HashSet<Uuid> = stored_ids(&check).await.into_iter().collect();
    let lost: Vec<&Uuid> = tally
        .acked
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(lost.is_empty(), "{} acknowledged events lost", lost.len());
    assert_eq!(
        stored.len(),
        tally.acked.len(),
        "only acknowledged events stored"
    );
    eprintln!(
        "outage run: {} acknowledged, {} answered 503",
        tally.acked.len(),
        tally.unavailable
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_in_flight_requests_finish() {
    let db = test_db::database(test_db::Profile::TEST)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pool = db.pool().await.unwrap();
    let process = Process::start(db.url(), &["--shutdown-grace", "30s"]).await;
    let client = reqwest::Client::new();

    // Hold the table so that requests are provably in flight inside the service.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE audit_events IN EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let mut in_flight = Vec::new();
    for i in 0..16 {
        let client = client.clone();
        let url = format!("{}/api/v1/audit/events", process.base);
        in_flight.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&event(&format!("term-{i}")))
                .send()
                .await
                .expect("an in-flight request must get its answer");
            reply(r).await
        }));
    }
    // Every request is inside the service: its INSERTs wait for the lock (single events are
    // coalesced, so there may be fewer INSERTs than requests), and it counts 16 requests in
    // flight besides the one asking.
    let waiting = async {
        loop {
            let inserts: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO audit_events%'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            let metrics = client
                .get(format!("{}/metrics", process.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let in_flight =
                sample(&metrics, "datastorage_http_requests_in_flight", "").unwrap_or(0.0);
            if inserts > 0 && in_flight >= 17.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("16 requests in flight, waiting on the lock");

    let mut process = process;
    process.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        process.child.try_wait().unwrap().is_none(),
        "the service exited with requests in flight"
    );
    // New connections are refused once shutdown has begun.
    let late = client
        .get(format!("{}/health/live", process.base))
        .send()
        .await;
    assert!(late.is_err(), "accepted a new request after SIGTERM");
    blocker.rollback().await.unwrap();

    let mut acked = HashSet::new();
    for r in in_flight {
        let r = r.await.unwrap();
        assert_eq!(r.status, 201, "{r:?}");
        acked.insert(
            r.body["event_id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap(),
        );
    }
    let status = tokio::time::timeout(Duration::from_secs(30), process.child.wait())
        .await
        .expect("exits once in-flight requests are done")
        .unwrap();
    assert!(status.success(), "{status}");
    let stored: HashSet<Uuid> = stored_ids(&pool).await.into_iter().collect();
    assert_eq!(stored, acked);
}
