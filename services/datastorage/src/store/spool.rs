//! The spool: audit writes that the database could not take, kept on this replica's disk until
//! it can.
//!
//! When PostgreSQL is unreachable, an audit write (a single event, a batch, a notification
//! record) is appended here and answered **202 Accepted** only after the append is on disk
//! (a [redb] commit, which fsyncs). A drain task writes the records to PostgreSQL in the order
//! they were accepted once it is back, and removes them only after that commit; while records
//! wait, new writes join the end of the queue, so a later write is never stored before an
//! earlier one. Writing a record twice (a crash between PostgreSQL's commit and the removal)
//! stores nothing twice: an event's id is fixed when it is accepted and an id already stored is
//! skipped; a notification record whose `notification_id` is stored with the same content is
//! taken as stored.
//!
//! A record PostgreSQL refuses for its content (an event whose parent does not exist, a
//! `notification_id` another record holds) is moved to the spool's *failed* table with the
//! reason, counted and logged, never dropped; `datastorage spool status` lists them.
//!
//! The spool is bounded by bytes (queued and failed records together): when it is full, writes
//! the database cannot take are refused with 503 and `Retry-After`, as without a spool.
//!
//! One file per replica: redb locks it, so a second process cannot open it. A replica that never
//! comes back leaves its file on its volume; `datastorage spool drain` writes it from anywhere
//! that can reach the database (see the README).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use redb::TableDefinition;
use redb::{Database, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _};
use serde::{Deserialize, Serialize};
use sqlx::{Connection as _, PgConnection, PgPool};
use tokio::sync::{Notify, oneshot};

use super::audit::Row;
use super::notifications::{NewRow, Replayed};

/// Records waiting to be written, by the order they were accepted in.
const QUEUED: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("queued");
/// Records PostgreSQL refused for their content, with the reason ([`Failed`]).
const FAILED: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("failed");

/// Most records one drain transaction writes.
const DRAIN_CHUNK: usize = 256;
/// Most appends one spool commit (one fsync) takes.
const APPEND_GROUP: usize = 1024;

/// An audit write the database could not take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// One event, or a batch (stored all or nothing), each row with its parent's partition date
    /// where it was known when the write was accepted; the others are looked up when drained.
    Events {
        rows: Vec<Row>,
        parent_dates: Vec<Option<NaiveDate>>,
    },
    /// A notification audit record.
    Notification { row: NewRow },
}

impl Record {
    fn kind(&self) -> &'static str {
        match self {
            Record::Events { rows, .. } if rows.len() == 1 => "event",
            Record::Events { .. } => "batch",
            Record::Notification { .. } => "notification",
        }
    }
}

#[derive(Serialize)]
struct EntryOut<'a> {
    accepted_at: DateTime<Utc>,
    record: &'a Record,
}

/// A queued record as stored.
#[derive(Debug, Deserialize)]
struct Entry {
    accepted_at: DateTime<Utc>,
    record: Record,
}

/// Only the time of a queued record (the rest is skipped, not built).
#[derive(Deserialize)]
struct EntryTime {
    accepted_at: DateTime<Utc>,
}

/// A record moved out of the queue because PostgreSQL refused it for its content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failed {
    pub accepted_at: DateTime<Utc>,
    pub failed_at: DateTime<Utc>,
    /// What PostgreSQL (or the drain's own check) said.
    pub reason: String,
    pub record: Record,
}

/// Why a record could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("the spool is full: {bytes} bytes kept, at most {max}")]
    Full { bytes: u64, max: u64 },
    #[error("cannot write to the spool: {0}")]
    Io(String),
}

/// Why a drain step stopped.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("the database is unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("the spool: {0}")]
    Spool(String),
}

/// What a drain step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Records written to PostgreSQL (or found written already).
    pub stored: u64,
    /// Records moved to the failed table.
    pub failed: u64,
}

/// The spool's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Records waiting to be written.
    pub queued: u64,
    /// Records PostgreSQL refused, kept in the failed table.
    pub failed: u64,
    /// Bytes of the queued and failed records.
    pub bytes: u64,
    /// The bound on `bytes`.
    pub max_bytes: u64,
}

/// A handle on the spool (cheap to clone).
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    path: PathBuf,
    max_bytes: u64,
    queued: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    appends: std::sync::mpsc::Sender<Append>,
    appender: Option<std::thread::JoinHandle<()>>,
    wake: Notify,
}

impl Drop for Inner {
    /// Stop the appender thread and wait for it, so that the file is closed (and its lock
    /// released) when the last handle is gone.
    fn drop(&mut self) {
        let (closed, _) = std::sync::mpsc::channel();
        drop(std::mem::replace(&mut self.appends, closed));
        if let Some(appender) = self.appender.take() {
            let _ = appender.join();
        }
    }
}

/// One record for the appender thread, and where its outcome goes.
struct Append {
    bytes: Vec<u8>,
    done: oneshot::Sender<Result<(), String>>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.inner.path)
            .field("status", &self.status())
            .finish()
    }
}

impl Spool {
    /// Open the spool file at `path` (created, with its folder, if missing), holding at most
    /// `max_bytes` of records. Records a previous run left are kept and counted.
    pub fn open(path: &Path, max_bytes: u64) -> anyhow::Result<Spool> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the spool's folder {}", dir.display()))?;
        }
        let db = Database::create(path)
            .with_context(|| format!("cannot open the spool {}", path.display()))?;
        let txn = db.begin_write()?;
        let (queued, failed, bytes, next) = {
            let queued = txn.open_table(QUEUED)?;
            let failed = txn.open_table(FAILED)?;
            let mut bytes = 0u64;
            for table in [&queued, &failed] {
                for entry in table.iter()? {
                    bytes += entry?.1.value().len() as u64;
                }
            }
            let next = queued.last()?.map_or(0, |(k, _)| k.value() + 1);
            (queued.len()?, failed.len()?, bytes, next)
        };
        txn.commit()?;
        let db = Arc::new(db);
        let (appends, receiver) = std::sync::mpsc::channel();
        let appender_db = db.clone();
        let appender = std::thread::Builder::new()
            .name("spool-append".to_owned())
            .spawn(move || append(&appender_db, &receiver, next))
            .context("cannot start the spool's appender thread")?;
        let spool = Spool {
            inner: Arc::new(Inner {
                db,
                path: path.to_owned(),
                max_bytes,
                queued: AtomicU64::new(queued),
                failed: AtomicU64::new(failed),
                bytes: AtomicU64::new(bytes),
                appends,
                appender: Some(appender),
                wake: Notify::new(),
            }),
        };
        spool.publish();
        Ok(spool)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn status(&self) -> Status {
        Status {
            queued: self.inner.queued.load(Ordering::Acquire),
            failed: self.inner.failed.load(Ordering::Acquire),
            bytes: self.inner.bytes.load(Ordering::Acquire),
            max_bytes: self.inner.max_bytes,
        }
    }

    /// Whether records are waiting: then new writes are queued behind them.
    pub fn is_draining(&self) -> bool {
        self.inner.queued.load(Ordering::Acquire) > 0
    }

    /// Whether a write of a few kilobytes would be refused now.
    pub fn is_full(&self) -> bool {
        self.inner.bytes.load(Ordering::Acquire) + 64 * 1024 > self.inner.max_bytes
    }

    /// Append `record`; returns once it is on disk.
    pub async fn push(&self, record: &Record) -> Result<(), PushError> {
        let bytes = serde_json::to_vec(&EntryOut {
            accepted_at: Utc::now(),
            record,
        })
        .map_err(|e| PushError::Io(e.to_string()))?;
        let size = bytes.len() as u64;
        let max = self.inner.max_bytes;
        let before = self.inner.bytes.fetch_add(size, Ordering::AcqRel);
        if before + size > max {
            self.inner.bytes.fetch_sub(size, Ordering::AcqRel);
            metrics::counter!("datastorage_spool_refused_total").increment(1);
            return Err(PushError::Full { bytes: before, max });
        }
        let (done, outcome) = oneshot::channel();
        let appended = match self.inner.appends.send(Append { bytes, done }) {
            Ok(()) => outcome
                .await
                .unwrap_or_else(|_| Err("the appender thread stopped".to_owned())),
            Err(_) => Err("the appender thread stopped".to_owned()),
        };
        if let Err(e) = appended {
            self.inner.bytes.fetch_sub(size, Ordering::AcqRel);
            return Err(PushError::Io(e));
        }
        self.inner.queued.fetch_add(1, Ordering::AcqRel);
        metrics::counter!("datastorage_spool_queued_total", "kind" => record.kind()).increment(1);
        self.publish();
        self.inner.wake.notify_one();
        Ok(())
    }

    /// The failed records, oldest first.
    pub fn failed(&self) -> anyhow::Result<Vec<(u64, Failed)>> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(FAILED)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let failed: Failed = serde_json::from_slice(value.value())
                .with_context(|| format!("failed record {} is unreadable", key.value()))?;
            out.push((key.value(), failed));
        }
        Ok(out)
    }

    /// When the oldest queued record was accepted.
    pub fn oldest(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(QUEUED)?;
        let Some((key, value)) = table.first()? else {
            return Ok(None);
        };
        let entry: EntryTime = serde_json::from_slice(value.value())
            .with_context(|| format!("queued record {} is unreadable", key.value()))?;
        Ok(Some(entry.accepted_at))
    }

    /// Set the gauges from the counts (and the oldest record's age).
    fn publish(&self) {
        let status = self.status();
        metrics::gauge!("datastorage_spool_records").set(status.queued as f64);
        metrics::gauge!("datastorage_spool_failed_records").set(status.failed as f64);
        metrics::gauge!("datastorage_spool_bytes").set(status.bytes as f64);
        metrics::gauge!("datastorage_spool_max_bytes").set(status.max_bytes as f64);
    }

    fn publish_age(&self) {
        let age = match self.oldest() {
            Ok(Some(at)) => (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0,
            Ok(None) => 0.0,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the spool's oldest record");
                return;
            }
        };
        metrics::gauge!("datastorage_spool_oldest_age_seconds").set(age);
    }

    /// The drain task: whenever records wait, write them to `pool`; while the database is
    /// unavailable, try again every `retry`. Runs until aborted.
    pub fn start_draining(&self, pool: PgPool, retry: Duration) -> tokio::task::JoinHandle<()> {
        let spool = self.clone();
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                spool.publish_age();
                if !spool.is_draining() {
                    tokio::select! {
                        () = spool.inner.wake.notified() => {}
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
                match spool.drain_step(&pool).await {
                    Ok(_) => {
                        if failing {
                            tracing::info!(
                                left = spool.status().queued,
                                "the database is back: draining the spool"
                            );
                            failing = false;
                        }
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, queued = spool.status().queued, "cannot drain the spool; retrying");
                            failing = true;
                        }
                        tokio::time::sleep(retry).await;
                    }
                }
            }
        })
    }

    /// Write everything queued to `pool`, step by step, until the queue is empty; for
    /// `datastorage spool drain`. Stops at the first error.
    pub async fn drain_all(&self, pool: &PgPool) -> Result<Drained, DrainError> {
        let mut total = Drained::default();
        while self.is_draining() {
            let step = self.drain_step(pool).await?;
            total.stored += step.stored;
            total.failed += step.failed;
        }
        Ok(total)
    }

    /// Write the oldest queued records (at most [`DRAIN_CHUNK`]) in one transaction, each
    /// in a savepoint of its own; then remove them from the queue (a refused one to the failed
    /// table).
    pub async fn drain_step(&self, pool: &PgPool) -> Result<Drained, DrainError> {
        let db = self.inner.db.clone();
        let chunk = tokio::task::spawn_blocking(move || read_chunk(&db))
            .await
            .map_err(|e| DrainError::Spool(e.to_string()))?
            .map_err(|e| DrainError::Spool(format!("{e:#}")))?;
        if chunk.is_empty() {
            return Ok(Drained::default());
        }
        let mut tx = pool.begin().await.map_err(DrainError::Unavailable)?;
        let mut refused: Vec<(u64, Option<String>)> = Vec::with_capacity(chunk.len());
        for (key, entry, _) in &chunk {
            let mut savepoint = tx.begin().await.map_err(DrainError::Unavailable)?;
            match write_record(&mut savepoint, &entry.record).await {
                Ok(()) => {
                    savepoint.commit().await.map_err(DrainError::Unavailable)?;
                    refused.push((*key, None));
                }
                Err(Refusal::Database(e)) if super::is_unavailable(&e) => {
                    return Err(DrainError::Unavailable(e));
                }
                Err(refusal) => {
                    savepoint
                        .rollback()
                        .await
                        .map_err(DrainError::Unavailable)?;
                    refused.push((*key, Some(refusal.to_string())));
                }
            }
        }
        tx.commit().await.map_err(DrainError::Unavailable)?;

        // Written: now out of the queue. A crash before this commit writes them again on the
        // next drain, which stores nothing twice.
        let mut moved = Vec::with_capacity(chunk.len());
        let mut drained = Drained::default();
        // Change of the byte count: a stored record's bytes go, a refused one's failed copy
        // replaces its queued one.
        let mut delta: i64 = 0;
        for ((key, entry, size), (_, refusal)) in chunk.into_iter().zip(refused) {
            delta -= size as i64;
            let Some(reason) = refusal else {
                drained.stored += 1;
                moved.push((key, None));
                continue;
            };
            tracing::error!(
                record = key,
                kind = entry.record.kind(),
                accepted_at = %entry.accepted_at,
                %reason,
                "PostgreSQL refused a spooled record; it is kept in the spool's failed table"
            );
            drained.failed += 1;
            let failed = Failed {
                accepted_at: entry.accepted_at,
                failed_at: Utc::now(),
                reason,
                record: entry.record,
            };
            let bytes =
                serde_json::to_vec(&failed).map_err(|e| DrainError::Spool(e.to_string()))?;
            delta += bytes.len() as i64;
            moved.push((key, Some(bytes)));
        }
        let db = self.inner.db.clone();
        let removed = moved.len() as u64;
        tokio::task::spawn_blocking(move || remove(&db, &moved))
            .await
            .map_err(|e| DrainError::Spool(e.to_string()))?
            .map_err(|e| DrainError::Spool(format!("{e:#}")))?;
        self.inner.queued.fetch_sub(removed, Ordering::AcqRel);
        self.inner
            .failed
            .fetch_add(drained.failed, Ordering::AcqRel);
        if delta < 0 {
            self.inner
                .bytes
                .fetch_sub(delta.unsigned_abs(), Ordering::AcqRel);
        } else {
            self.inner
                .bytes
                .fetch_add(delta.unsigned_abs(), Ordering::AcqRel);
        }
        metrics::counter!("datastorage_spool_drained_total").increment(drained.stored);
        metrics::counter!("datastorage_spool_failed_total").increment(drained.failed);
        self.publish();
        Ok(drained)
    }
}

/// Why the drain did not store a record.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("{0}")]
    Content(String),
    #[error("{0}")]
    Database(#[from] sqlx::Error),
}

/// Store one record on `conn` (inside a savepoint).
async fn write_record(conn: &mut PgConnection, record: &Record) -> Result<(), Refusal> {
    match record {
        Record::Events { rows, parent_dates } => {
            let mut dates = parent_dates.clone();
            let unknown: Vec<Row> = rows
                .iter()
                .zip(&dates)
                .filter(|(r, d)| r.parent_event_id.is_some() && d.is_none())
                .map(|(r, _)| r.clone())
                .collect();
            if !unknown.is_empty() {
                let found = super::audit::parent_dates(&mut *conn, &unknown).await?;
                for (i, (row, date)) in rows.iter().zip(dates.iter_mut()).enumerate() {
                    if let (Some(parent), None) = (row.parent_event_id, *date) {
                        *date = Some(*found.get(&parent).ok_or_else(|| {
                            Refusal::Content(format!(
                                "element {i}: parent_event_id: no event with id {parent}"
                            ))
                        })?);
                    }
                }
            }
            super::audit::insert_rows(&mut *conn, rows, &dates).await?;
            Ok(())
        }
        Record::Notification { row } => {
            match super::notifications::insert_replayed(conn, row).await? {
                Replayed::Stored | Replayed::AlreadyStored => Ok(()),
                Replayed::Conflict => Err(Refusal::Content(format!(
                    "notification_id {:?} is held by another record",
                    row.notification_id
                ))),
            }
        }
    }
}

/// The appender thread: every record waiting goes into one commit (one fsync), then each is
/// answered. Ends when the last [`Spool`] handle is gone.
fn append(db: &Database, receiver: &std::sync::mpsc::Receiver<Append>, mut next: u64) {
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        while group.len() < APPEND_GROUP {
            match receiver.try_recv() {
                Ok(more) => group.push(more),
                Err(_) => break,
            }
        }
        let outcome = (|| -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(QUEUED)?;
                for (i, a) in group.iter().enumerate() {
                    table.insert(next + i as u64, a.bytes.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })();
        match outcome {
            Ok(()) => {
                next += group.len() as u64;
                for a in group {
                    let _ = a.done.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot append to the spool");
                for a in group {
                    let _ = a.done.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// The oldest queued records: key, record, stored size.
fn read_chunk(db: &Database) -> anyhow::Result<Vec<(u64, Entry, usize)>> {
    let txn = db.begin_read()?;
    let table = txn.open_table(QUEUED)?;
    let mut chunk = Vec::new();
    for entry in table.iter()?.take(DRAIN_CHUNK) {
        let (key, value) = entry?;
        let bytes = value.value();
        let record: Entry = serde_json::from_slice(bytes)
            .with_context(|| format!("queued record {} is unreadable", key.value()))?;
        chunk.push((key.value(), record, bytes.len()));
    }
    Ok(chunk)
}

/// Remove drained records from the queue, moving those with a failed copy to the failed table;
/// one commit.
fn remove(db: &Database, moved: &[(u64, Option<Vec<u8>>)]) -> anyhow::Result<()> {
    let txn = db.begin_write()?;
    {
        let mut queued = txn.open_table(QUEUED)?;
        let mut failed = txn.open_table(FAILED)?;
        for (key, copy) in moved {
            queued.remove(*key)?;
            if let Some(bytes) = copy {
                failed.insert(*key, bytes.as_slice())?;
            }
        }
    }
    txn.commit()?;
    Ok(())
}
