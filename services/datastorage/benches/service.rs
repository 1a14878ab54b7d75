//! Service benchmarks against the embedded PostgreSQL, each beside its baseline in the same run:
//!
//! - batch ingest (HTTP, 1000-event batches) vs `COPY` of the same rows into `audit_events`, with
//!   the same number of concurrent streams (4, and 1);
//! - single-event POST throughput vs pgbench at the same concurrency inserting the same rows as
//!   many per transaction as the service coalesced (its own metric), and one per transaction;
//! - p50/p99 of a correlation_id query and of a 1-hour time-range query over N events (HTTP);
//! - p50/p99 of each success-rate endpoint and of the incident listing over N action traces;
//! - single-event POSTs with the spool (`--spool`) while PostgreSQL is down (each answered 202
//!   once on disk) vs the same service while it is up (201), and how fast the spool drains.
//!
//! `cargo bench -p datastorage --bench service -- [batch|single|queries|analytics|outage …] [--events 1000000] [--seconds 10]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Parser;
use pg_embedded::Cluster;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

/// The allocator the `datastorage` binary uses, so that the service is measured as deployed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    /// Events in the table for the query benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Events ingested by the batch benchmark (and copied by its baseline).
    #[arg(long, default_value_t = 50_000)]
    batch_events: usize,
    /// Duration of each round of the single-event benchmark (and of pgbench's).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Interleaved rounds of each throughput benchmark and its baseline.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent clients of the single-event run (and pgbench's).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Event writer tasks of the service (`--event-writers`).
    #[arg(long, default_value_t = datastorage::AppState::EVENT_WRITERS)]
    event_writers: usize,
    /// Action traces in the table for the analytics and incident benchmarks.
    #[arg(long, default_value_t = 1_000_000)]
    traces: u64,
    /// Queries per query benchmark.
    #[arg(long, default_value_t = 2000)]
    queries: usize,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
    /// Also write the table, with the machine and the arguments, to docs/benchmarks/service.md
    /// (the README's figures; a test fails when this file's source changed since).
    #[arg(long)]
    record: bool,
    /// Run only these benchmarks (default: all).
    #[arg(value_enum)]
    only: Vec<Which>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Which {
    Batch,
    Single,
    Queries,
    Analytics,
    Outage,
}

fn event(i: usize, ts: DateTime<Utc>) -> Value {
    json!({
        "version": "1.0",
        "event_type": format!("bench.type.{}", i % 20),
        "event_timestamp": ts.to_rfc3339_opts(SecondsFormat::Micros, true),
        "event_category": "gateway",
        "event_action": "received",
        "event_outcome": "success",
        "correlation_id": format!("bench-{}", i / 10),
        "event_data": {"i": i, "pod": "api-7d9f", "namespace": "payments"},
    })
}

struct Row {
    label: String,
    value: String,
    baseline: String,
    ratio: String,
    goal: &'static str,
}

async fn count(url: &str) -> i64 {
    let mut c = PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&mut c)
        .await
        .unwrap()
}

async fn truncate(url: &str) {
    let mut c = PgConnection::connect(url).await.unwrap();
    for sql in ["TRUNCATE audit_events", "VACUUM ANALYZE audit_events"] {
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    }
}

async fn start_service(
    url: &str,
    pool_size: u32,
    event_writers: usize,
    spool: Option<datastorage::store::Spool>,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    // Configured as `datastorage` configures itself: a pool for writes and lookups, one for the
    // filtered queries.
    let sizes = datastorage::db::PoolSizes {
        writes: pool_size,
        queries: 8,
    };
    let (pool, query_pool) =
        datastorage::db::pools(url, Duration::from_secs(30), sizes, Duration::from_secs(5))
            .unwrap();
    let state = datastorage::AppState {
        body_limit: 64 * 1024 * 1024,
        ..datastorage::AppState::new(pool)
    }
    .with_query_pool(query_pool)
    .with_event_writers(event_writers)
    .with_spool(spool);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        datastorage::serve(listener, datastorage::app(state))
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    (base, tx)
}

/// One keep-alive HTTP/1.1 connection posting single events as fast as the service answers.
///
/// A bare hyper connection with the body rendered by `format!`: the load generator should cost
/// about what pgbench's client costs, so that the comparison measures the service.
/// Every answer must be `expect` (201 stored, or 202 kept in the spool).
/// Returns when each request finished and how long it took.
async fn post_events(
    base: String,
    worker: usize,
    expect: u16,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> Vec<(Instant, Duration)> {
    use http_body_util::{BodyExt, Full};
    let authority = base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut i = worker * 100_000_000;
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let body = format!(
            r#"{{"version":"1.0","event_type":"bench.type.{}","event_timestamp":"{}","event_category":"gateway","event_action":"received","event_outcome":"success","correlation_id":"bench-{}","event_data":{{"i":{i},"pod":"api-7d9f","namespace":"payments"}}}}"#,
            i % 20,
            Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            i / 10,
        );
        let request = hyper::Request::post("/api/v1/audit/events")
            .header(hyper::header::HOST, &authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(hyper::body::Bytes::from(body)))
            .unwrap();
        sender.ready().await.unwrap();
        let sent = Instant::now();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, expect, "{}", String::from_utf8_lossy(&body));
        let finished = Instant::now();
        latencies.push((finished, finished - sent));
        done.fetch_add(1, Ordering::Relaxed);
    }
    latencies
}

/// Batch ingest over HTTP with `streams` concurrent clients vs COPY of the same rows over as
/// many concurrent connections, in `rounds` interleaved rounds (medians compared). Both
/// payloads, the JSON bodies and the CSV, are rendered before the clock starts.
async fn batch_vs_copy(url: &str, base: &str, n: usize, rounds: usize, streams: usize) -> Row {
    let now = Utc::now();
    let events: Vec<Value> = (0..n)
        .map(|i| event(i, now - chrono::Duration::milliseconds(i as i64)))
        .collect();
    let bodies: Vec<Vec<u8>> = events
        .chunks(1000)
        .map(|c| serde_json::to_vec(c).unwrap())
        .collect();
    // The same rows, as the service would write them, for COPY (CSV).
    let mut csv = vec![String::new(); streams];
    for (i, e) in events.iter().enumerate() {
        let ts: DateTime<Utc> = e["event_timestamp"].as_str().unwrap().parse().unwrap();
        let data = e["event_data"].to_string().replace('"', "\"\"");
        // Stream `i % streams` copies the rows its HTTP client posts (batches of 1000, dealt
        // round-robin).
        csv[(i / 1000) % streams].push_str(&format!(
            "{},1.0,{},{},{},gateway,received,success,service,gateway-service,gateway,{},{},\"{}\",info,2555\n",
            uuid::Uuid::new_v4(),
            e["event_type"].as_str().unwrap(),
            ts.to_rfc3339_opts(SecondsFormat::Micros, true),
            ts.date_naive(),
            e["correlation_id"].as_str().unwrap(),
            e["correlation_id"].as_str().unwrap(),
            data,
        ));
    }
    let client = reqwest::Client::new();
    let (mut http, mut copy) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        truncate(url).await;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for lane in 0..streams {
            let lane_bodies: Vec<Vec<u8>> =
                bodies.iter().skip(lane).step_by(streams).cloned().collect();
            let client = client.clone();
            let url = format!("{base}/api/v1/audit/events/batch");
            tasks.push(tokio::spawn(async move {
                for body in lane_bodies {
                    let r = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let http_time = start.elapsed();
        assert_eq!(count(url).await, n as i64);
        truncate(url).await;

        // Connected before the clock starts, as the service's pool is.
        let mut conns = Vec::new();
        for _ in 0..streams {
            conns.push(PgConnection::connect(url).await.unwrap());
        }
        let start = Instant::now();
        let copies: Vec<_> = conns
            .into_iter()
            .zip(csv.iter().cloned())
            .map(|(mut conn, rows)| {
                tokio::spawn(async move {
                    let mut sink = conn
                        .copy_in_raw(
                            "COPY audit_events (event_id, event_version, event_type, event_timestamp, event_date, \
                             event_category, event_action, event_outcome, actor_type, actor_id, resource_type, \
                             resource_id, correlation_id, event_data, severity, retention_days) FROM STDIN (FORMAT csv)",
                        )
                        .await
                        .unwrap();
                    sink.send(rows.as_bytes()).await.unwrap();
                    sink.finish().await.unwrap();
                })
            })
            .collect();
        for copy in copies {
            copy.await.unwrap();
        }
        let copy_time = start.elapsed();
        assert_eq!(count(url).await, n as i64);
        let (h, c) = (
            n as f64 / http_time.as_secs_f64(),
            n as f64 / copy_time.as_secs_f64(),
        );
        eprintln!(
            "round {round}/{rounds}, {streams} stream(s): batch ingest {h:.0} events/s, COPY {c:.0} rows/s"
        );
        http.push(h);
        copy.push(c);
    }
    truncate(url).await;
    let (http_rate, copy_rate) = (median(&mut http), median(&mut copy));
    Row {
        label: format!(
            "batch ingest, {n} events in batches of 1000, {streams} concurrent client(s), median of {rounds} rounds (events/s)"
        ),
        value: format!("{http_rate:.0}"),
        baseline: format!(
            "COPY of the same rows, {streams} concurrent connection(s): {copy_rate:.0}"
        ),
        ratio: format!("{:.0} %", 100.0 * http_rate / copy_rate),
        goal: "≥ 60 %",
    }
}

/// Single-event POSTs at a fixed concurrency vs pgbench at the same concurrency, in `rounds`
/// interleaved rounds (the machine's drift hits all sides alike); medians are compared. The
/// service coalesces concurrent events into multi-row INSERTs, k events per INSERT and commit on
/// average (its own metric, `datastorage_audit_insert_batch_events`, read for each round); the
/// like-for-like baseline is pgbench inserting the same rows k per transaction (k rounded), and
/// pgbench committing every row alone is the naive client's reference.
async fn single_vs_pgbench(
    cluster: &Cluster,
    url: &str,
    base: &str,
    seconds: u64,
    concurrency: usize,
    rounds: usize,
) -> Vec<Row> {
    let (mut http, mut batched, mut per_row) = (Vec::new(), Vec::new(), Vec::new());
    let mut latencies = Vec::new();
    let mut ks = Vec::new();
    for round in 1..=rounds {
        truncate(url).await;
        let before = batch_metrics();
        let (rate, mut l, _) = http_round(base, seconds, concurrency, 201).await;
        let after = batch_metrics();
        let k = (after.1 - before.1) / (after.0 - before.0).max(1.0);
        let rows_per_txn = (k.round() as usize).max(1);
        truncate(url).await;
        let (tps, _) = pgbench_round(cluster, url, seconds, concurrency, rows_per_txn);
        truncate(url).await;
        let (tps1, _) = pgbench_round(cluster, url, seconds, concurrency, 1);
        let rows = tps * rows_per_txn as f64;
        eprintln!(
            "round {round}/{rounds}: service {rate:.0} events/s ({k:.2} per INSERT); pgbench {rows:.0} rows/s at {rows_per_txn} per transaction, {tps1:.0} rows/s at 1"
        );
        http.push(rate);
        batched.push(rows);
        per_row.push(tps1);
        latencies.append(&mut l);
        ks.push(k);
    }
    truncate(url).await;
    latencies.sort();
    let mean = latencies.iter().sum::<Duration>() / latencies.len().max(1) as u32;
    let k = median(&mut ks);
    let (http, batched, per_row) = (
        median(&mut http),
        median(&mut batched),
        median(&mut per_row),
    );
    let value = format!(
        "{http:.0} (latency mean {:.2} ms, p99 {:.2} ms; {k:.2} events per INSERT and commit)",
        mean.as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    let label = format!(
        "single-event POST, {concurrency} clients, median of {rounds} × {seconds} s rounds (events/s)"
    );
    vec![
        Row {
            label: label.clone(),
            value: value.clone(),
            baseline: format!(
                "pgbench, {concurrency} clients, the same rows {} per INSERT and commit (as the service): {batched:.0} rows/s",
                (k.round() as usize).max(1)
            ),
            ratio: format!("{:.0} %", 100.0 * http / batched),
            goal: "≥ 70 %",
        },
        Row {
            label,
            value,
            baseline: format!(
                "pgbench, {concurrency} clients, one row per INSERT and commit (a naive client): {per_row:.0} rows/s"
            ),
            ratio: format!("{:.0} %", 100.0 * http / per_row),
            goal: "reference",
        },
    ]
}

/// INSERTs of single events and the events they stored so far, from the service's metrics.
fn batch_metrics() -> (f64, f64) {
    let text = datastorage::http::metrics_handle().render();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("datastorage_audit_insert_batch_events_count "),
        value("datastorage_audit_insert_batch_events_sum "),
    )
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One HTTP round, every answer `expect`: events/s after a second of warm-up, each request's
/// latency then, and how many events were acknowledged in all.
async fn http_round(
    base: &str,
    seconds: u64,
    concurrency: usize,
    expect: u16,
) -> (f64, Vec<Duration>, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..concurrency)
        .map(|w| {
            let (stop, done) = (stop.clone(), done.clone());
            tokio::spawn(post_events(base.to_owned(), w, expect, stop, done))
        })
        .collect();
    // Like pgbench's figure, the rate leaves out connecting: the first second warms up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (warm, start) = (done.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (finished, elapsed) = (done.load(Ordering::Relaxed), start.elapsed());
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(
            t.await
                .unwrap()
                .into_iter()
                .filter(|(at, _)| *at >= start && *at <= start + elapsed)
                .map(|(_, latency)| latency),
        );
    }
    let rate = (finished - warm) as f64 / elapsed.as_secs_f64();
    (rate, latencies, done.load(Ordering::Relaxed))
}

/// One pgbench round of the rows the service writes, `rows_per_txn` rows per INSERT (one
/// statement, one commit): transactions per second and pgbench's mean latency.
fn pgbench_round(
    cluster: &Cluster,
    url: &str,
    seconds: u64,
    concurrency: usize,
    rows_per_txn: usize,
) -> (f64, String) {
    let script = std::env::temp_dir().join(format!(
        "ds-bench-{}-{rows_per_txn}.sql",
        std::process::id()
    ));
    std::fs::write(
        &script,
        format!(
            "\\set i random(1, 100000000)\n\
             INSERT INTO audit_events (event_id, event_version, event_type, event_timestamp, event_date, \
             event_category, event_action, event_outcome, actor_type, actor_id, resource_type, resource_id, \
             correlation_id, parent_event_id, parent_event_date, trace_id, span_id, namespace, cluster_name, \
             event_data, severity, duration_ms, error_code, error_message, retention_days) \
             SELECT gen_random_uuid(), '1.0', 'bench.type.' || ((:i::int + g) % 20), now(), (now() AT TIME ZONE 'UTC')::date, \
             'gateway', 'received', 'success', 'service', 'gateway-service', 'gateway', 'bench-' || ((:i::int + g) / 10), \
             'bench-' || ((:i::int + g) / 10), NULL, NULL, NULL, NULL, NULL, NULL, \
             jsonb_build_object('i', :i::int + g, 'pod', 'api-7d9f', 'namespace', 'payments'), 'info', NULL, NULL, NULL, 2555 \
             FROM generate_series(1, {rows_per_txn}) AS g;\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(cluster.binaries().program("pgbench"))
        .args(["-n", "-M", "prepared", "-f"])
        .arg(&script)
        .args([
            "-c",
            &concurrency.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            url,
        ])
        .output()
        .expect("pgbench");
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let latency = text
        .lines()
        .find_map(|l| l.strip_prefix("latency average = "))
        .map_or_else(|| "?".to_owned(), |l| format!("latency mean {l}"));
    let tps: f64 = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l["tps = ".len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("pgbench tps line");
    (tps, latency)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// p50/p99 of the two query shapes over `events` rows, end to end over HTTP.
async fn queries(url: &str, base: &str, events: u64, n: usize) -> Vec<Row> {
    truncate(url).await;
    let mut conn = PgConnection::connect(url).await.unwrap();
    let start = Instant::now();
    // Spread over the last 7 days; 10 events per correlation id.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit_events (event_id, event_version, event_type, event_timestamp, event_date, \
         event_category, event_action, event_outcome, actor_type, actor_id, resource_type, resource_id, \
         correlation_id, event_data, severity, retention_days) \
         SELECT gen_random_uuid(), '1.0', 'bench.type.' || (i % 20), ts, (ts AT TIME ZONE 'UTC')::date, \
                'gateway', 'received', CASE WHEN i % 7 = 0 THEN 'failure' ELSE 'success' END, \
                'service', 'gateway-service', 'gateway', 'bench-' || (i / 10), 'bench-' || (i / 10), \
                jsonb_build_object('i', i), 'info', 2555 \
         FROM generate_series(1, {events}) AS i, \
              LATERAL (SELECT now() - interval '5 minutes' - (i * (interval '7 days' / {events}))) AS t(ts)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::raw_sql("VACUUM ANALYZE audit_events")
        .execute(&mut conn)
        .await
        .unwrap();
    eprintln!(
        "loaded {events} events in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let now = Utc::now();
    let mut rows = Vec::new();
    for shape in ["correlation_id", "1-hour range"] {
        let path = |q: usize| {
            if shape == "correlation_id" {
                format!(
                    "/api/v1/audit/events?correlation_id=bench-{}",
                    (q * 7919) as u64 % (events / 10)
                )
            } else {
                let end = now - chrono::Duration::seconds(((q * 7919) % (6 * 86400)) as i64 + 3600);
                let begin = end - chrono::Duration::hours(1);
                format!(
                    "/api/v1/audit/events?since={}&until={}&limit=100",
                    begin.to_rfc3339_opts(SecondsFormat::Secs, true),
                    end.to_rfc3339_opts(SecondsFormat::Secs, true)
                )
            }
        };
        let found = |body: &Value| !body["data"].as_array().unwrap().is_empty();
        rows.push(Row {
            label: format!("GET by {shape} over {events} events, HTTP round trip (p50 / p99)"),
            value: timed_gets(base, n, path, found).await,
            baseline: "–".into(),
            ratio: "–".into(),
            goal: "p99 ≤ 5 ms",
        });
    }
    rows
}

/// `n` GETs of `path(q)` after 50 that warm up, each answered 200 with a body `found` accepts
/// (so that an empty answer is not measured as a fast one): "p50 / p99" of the round trips.
async fn timed_gets(
    base: &str,
    n: usize,
    path: impl Fn(usize) -> String,
    found: impl Fn(&Value) -> bool,
) -> String {
    let client = reqwest::Client::new();
    let mut times = Vec::with_capacity(n);
    for q in 0..n + 50 {
        let path = path(q);
        // The round trip ends with the last byte of the response; the client's own JSON
        // parsing is not the service's time and happens after.
        let t = Instant::now();
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        let status = r.status();
        let bytes = r.bytes().await.unwrap();
        let elapsed = t.elapsed();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        assert!(found(&body), "{path} found nothing: {body}");
        if q >= 50 {
            times.push(elapsed);
        }
    }
    times.sort();
    format!(
        "{:.2} ms / {:.2} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    )
}

/// Action traces for the analytics: spread over the last 30 days (the month before this one
/// gets its own partition, as the service's partition upkeep would), over 1,000 resources in
/// 20 namespaces; 20 incident types with 5 workflows each, 3 versions; 70 % completed, 20 %
/// failed, 10 % pending; AI flags on every 2nd, 5th and 10th (each independent of the
/// dimensions).
async fn load_traces(url: &str, traces: u64) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let start = Instant::now();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "TRUNCATE resource_references, action_histories, resource_action_traces CASCADE; \
         SELECT create_resource_action_traces_partition((now() - interval '1 month')::date); \
         INSERT INTO resource_references (resource_uid, api_version, kind, name, namespace) \
         SELECT 'uid-' || i, 'apps/v1', 'Deployment', 'app-' || i, 'ns-' || (i % 20) \
         FROM generate_series(0, 999) AS i; \
         INSERT INTO action_histories (resource_id) SELECT id FROM resource_references ORDER BY id; \
         INSERT INTO resource_action_traces (action_history_id, action_id, correlation_id, \
             action_timestamp, signal_name, signal_severity, action_type, execution_status, \
             incident_type, workflow_id, workflow_version, ai_selected_workflow, \
             ai_chained_workflows, ai_manual_escalation) \
         SELECT h.first + i % 1000, 'bench-' || i, 'corr-' || i, \
                now() - interval '1 minute' - i * (interval '30 days' / {traces}), \
                'Alert' || (i % 50), (ARRAY['critical', 'warning', 'info'])[i % 3 + 1], \
                'action-' || (i % 10), \
                CASE WHEN i / 7 % 10 < 7 THEN 'completed' WHEN i / 7 % 10 < 9 THEN 'failed' ELSE 'pending' END, \
                'incident-' || (i % 20), 'workflow-' || ((i % 20) * 5 + (i / 20) % 5), \
                ((i / 100) % 3 + 1)::text, i / 3 % 2 = 0, i / 3 % 5 = 0, i / 3 % 10 = 0 \
         FROM generate_series(0, {traces} - 1) AS i, \
              (SELECT min(id) AS first FROM action_histories) AS h"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::raw_sql("VACUUM ANALYZE resource_references, action_histories, resource_action_traces")
        .execute(&mut conn)
        .await
        .unwrap();
    eprintln!(
        "loaded {traces} action traces in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// A query of the analytics benchmark: its label, the path of its q-th request, what a useful
/// answer holds, the goal.
type Shape<'a> = (
    &'static str,
    Box<dyn Fn(usize) -> String>,
    &'a dyn Fn(&Value) -> bool,
    &'static str,
);

/// p50/p99 of the three success-rate endpoints and of the incident listing over `traces`
/// action traces, end to end over HTTP.
async fn analytics(url: &str, base: &str, traces: u64, n: usize) -> Vec<Row> {
    load_traces(url, traces).await;
    let executions = |body: &Value| body["total_executions"].as_i64().unwrap() > 0;
    let incidents = |body: &Value| !body["data"].as_array().unwrap().is_empty();
    let shapes: Vec<Shape<'_>> = vec![
        (
            "GET success-rate/incident-type, 7 days",
            Box::new(|q| {
                format!(
                    "/api/v1/success-rate/incident-type?incident_type=incident-{}&time_range=7d",
                    q % 20
                )
            }),
            &executions,
            "p99 ≤ 20 ms",
        ),
        (
            "GET success-rate/workflow, 7 days",
            Box::new(|q| {
                format!(
                    "/api/v1/success-rate/workflow?workflow_id=workflow-{}&time_range=7d",
                    q % 100
                )
            }),
            &executions,
            "p99 ≤ 20 ms",
        ),
        (
            "GET success-rate/multi-dimensional (incident type, workflow, action type), 7 days",
            Box::new(|q| {
                let incident = q % 20;
                format!(
                    "/api/v1/success-rate/multi-dimensional?incident_type=incident-{incident}\
                     &workflow_id=workflow-{}&action_type=action-{}&time_range=7d",
                    incident * 5 + q % 5,
                    incident % 10,
                )
            }),
            &executions,
            "p99 ≤ 20 ms",
        ),
        (
            "GET incidents, newest 20, with the total",
            Box::new(|q| format!("/api/v1/incidents?limit=20&offset={}", q % 5 * 20)),
            &incidents,
            "p99 ≤ 5 ms",
        ),
        (
            "GET incidents of one alert name, newest 20, with the total",
            Box::new(|q| format!("/api/v1/incidents?alert_name=Alert{}&limit=20", q % 50)),
            &incidents,
            "p99 ≤ 5 ms",
        ),
        (
            "GET incidents of one namespace and severity, newest 20, with the total",
            Box::new(|q| {
                format!(
                    "/api/v1/incidents?namespace=ns-{}&severity=critical&limit=20",
                    q % 20
                )
            }),
            &incidents,
            "p99 ≤ 5 ms",
        ),
    ];
    let mut rows = Vec::new();
    for (label, path, found, goal) in shapes {
        rows.push(Row {
            label: format!("{label} over {traces} action traces, HTTP round trip (p50 / p99)"),
            value: timed_gets(base, n, path, found).await,
            baseline: "–".into(),
            ratio: "–".into(),
            goal,
        });
    }
    rows
}

/// Single-event POSTs to a service with a spool, first with PostgreSQL up (201, stored) and
/// then down (202, kept in the spool: fsync before the answer), `concurrency` clients for
/// `seconds` each; then PostgreSQL is started again and the time to drain the spool measured,
/// and every acknowledged event is checked to be stored once.
async fn outage(
    cluster: &Cluster,
    url: &str,
    seconds: u64,
    concurrency: usize,
    writers: usize,
) -> Vec<Row> {
    truncate(url).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = datastorage::store::Spool::open(&dir.path().join("spool.redb"), 4 << 30).unwrap();
    let (base, stop) = start_service(url, concurrency as u32, writers, Some(spool.clone())).await;
    let (up, up_latencies, up_total) = http_round(&base, seconds, concurrency, 201).await;
    cluster.pause().unwrap();
    let (down, down_latencies, down_total) = http_round(&base, seconds, concurrency, 202).await;
    let queued = spool.status().queued;
    cluster.resume().unwrap();
    let (pool, _) = datastorage::db::pools(
        url,
        Duration::from_secs(30),
        datastorage::db::PoolSizes {
            writes: 4,
            queries: 1,
        },
        Duration::from_secs(5),
    )
    .unwrap();
    let started = Instant::now();
    let drain = spool.start_draining(pool, Duration::from_millis(100));
    while spool.status().queued > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = started.elapsed();
    drain.abort();
    let _ = stop.send(());
    assert_eq!(spool.status().failed, 0, "{:?}", spool.failed().unwrap());
    assert_eq!(
        count(url).await as u64,
        up_total + down_total,
        "stored events vs acknowledged ones (201 and 202)"
    );
    truncate(url).await;
    let latency = |mut l: Vec<Duration>| {
        l.sort();
        format!(
            "latency p50 {:.2} ms, p99 {:.2} ms",
            percentile(&l, 0.5).as_secs_f64() * 1e3,
            percentile(&l, 0.99).as_secs_f64() * 1e3
        )
    };
    let label =
        format!("single-event POST with --spool, {concurrency} clients, {seconds} s (events/s)");
    vec![
        Row {
            label: format!("{label}: PostgreSQL down, each answered 202 once fsynced to the spool"),
            value: format!("{down:.0} ({})", latency(down_latencies)),
            baseline: format!(
                "the same service, PostgreSQL up (201): {up:.0} ({})",
                latency(up_latencies)
            ),
            ratio: format!("{:.0} %", 100.0 * down / up),
            goal: "reference",
        },
        Row {
            label: format!(
                "spool drain once PostgreSQL is back: {queued} queued events (events/s)"
            ),
            value: format!(
                "{:.0} ({:.1} s)",
                queued as f64 / drained.as_secs_f64(),
                drained.as_secs_f64()
            ),
            baseline: format!("the same service storing events while PostgreSQL is up: {up:.0}"),
            ratio: format!(
                "{:.0} %",
                100.0 * queued as f64 / drained.as_secs_f64() / up
            ),
            goal: "reference",
        },
    ]
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let cluster = Cluster::builder()
        .setting("shared_buffers", "'512MB'")
        .setting("max_wal_size", "'4GB'")
        .start()
        .expect("embedded PostgreSQL");
    let url = cluster.create_database("bench").unwrap();
    datastorage::db::migrate(&url).await.unwrap();
    let (base, stop) = start_service(&url, args.concurrency as u32, args.event_writers, None).await;
    eprintln!(
        "PostgreSQL {} (embedded); service at {base}",
        cluster.binaries().version()
    );

    let runs = |which| args.only.is_empty() || args.only.contains(&which);
    let mut rows = Vec::new();
    if runs(Which::Batch) {
        for streams in [4, 1] {
            rows.push(
                batch_vs_copy(&url, &base, args.batch_events, args.rounds.max(1), streams).await,
            );
        }
    }
    if runs(Which::Single) {
        rows.extend(
            single_vs_pgbench(
                &cluster,
                &url,
                &base,
                args.seconds,
                args.concurrency,
                args.rounds.max(1),
            )
            .await,
        );
    }
    if runs(Which::Queries) {
        rows.extend(queries(&url, &base, args.events, args.queries).await);
    }
    if runs(Which::Analytics) {
        rows.extend(analytics(&url, &base, args.traces, args.queries).await);
    }
    let _ = stop.send(());
    // Last: it stops and starts the server.
    if runs(Which::Outage) {
        rows.extend(
            outage(
                &cluster,
                &url,
                args.seconds,
                args.concurrency,
                args.event_writers,
            )
            .await,
        );
    }

    let mut table = String::from(
        "| benchmark | service | baseline (same run) | service / baseline | goal |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.label, r.value, r.baseline, r.ratio, r.goal
        ));
    }
    print!("{table}");
    if args.record {
        record(&table, cluster.binaries().version());
        eprintln!("wrote docs/benchmarks/service.md");
    }
}

/// The SHA-256 of this file as it was built: docs/benchmarks/service.md records it, and the API
/// suite's `recorded_benchmark_is_of_the_current_bench` fails when the two differ.
fn source_hash() -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(include_str!("service.rs").as_bytes()))
}

/// Writes the results file the README links to: how the figures were taken, and the table.
fn record(table: &str, postgres: &str) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks/service.md");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|kb| kb.trim().trim_end_matches(" kB").parse::<f64>().ok())
        .map_or_else(
            || "?".to_owned(),
            |kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0),
        );
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("?", |l| l.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let arguments: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench" && a != "--record")
        .collect();
    let text = format!(
        "# Service benchmark results\n\n\
         Written by `cargo bench -p datastorage --bench service -- --record{}` on {} \
         ({cores} cores, {memory}, {cpu}; load generator, service and PostgreSQL share the \
         cores), server `{postgres}` (embedded). What each row compares is in its cells; the \
         method is in `services/datastorage/benches/service.rs`.\n\n{table}\n\
         <!-- bench source sha256: {} -->\n",
        arguments
            .iter()
            .map(|a| format!(" {a}"))
            .collect::<String>(),
        Utc::now().format("%Y-%m-%d"),
        source_hash(),
    );
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
}
