//! Single-event writes, coalesced into multi-row INSERTs while they arrive together.
//!
//! Most of what an INSERT costs PostgreSQL is per statement and per commit (executor start-up,
//! partition routing, trigger and constraint set-up, the WAL flush), not per row. So a few
//! writer tasks take the events that are waiting when they are free, up to
//! [`EventWriter::MAX_BATCH`], and store them with one statement, which is atomic on its own.
//! Nothing waits for a batch to fill: an event that arrives alone is written alone at once.
//!
//! Every request still gets its own answer, and only after the commit of the statement that
//! stored its event: 201 means stored. When a statement of several events fails for a reason
//! other than the database being unreachable, each of its events is written again on its own,
//! so that one event's failure is not another's.

use std::sync::{Arc, Once};

use chrono::NaiveDate;
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::Error;
use super::audit::{Row, insert_rows};

type Result<T> = std::result::Result<T, Error>;

/// An event waiting for a writer, and where its outcome goes.
struct Pending {
    row: Row,
    parent_date: Option<NaiveDate>,
    done: oneshot::Sender<Result<()>>,
}

/// The handle through which requests hand single events to the writer tasks (cheap to clone).
#[derive(Clone)]
pub struct EventWriter {
    queue: mpsc::Sender<Pending>,
    writers: Arc<Writers>,
}

/// What the writer tasks share; they are started with the first event, on its runtime.
struct Writers {
    pool: PgPool,
    count: usize,
    receiver: Mutex<mpsc::Receiver<Pending>>,
    started: Once,
}

impl std::fmt::Debug for EventWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventWriter")
            .field("writers", &self.writers.count)
            .field(
                "waiting",
                &(self.queue.max_capacity() - self.queue.capacity()),
            )
            .finish()
    }
}

impl EventWriter {
    /// Most events one statement stores.
    pub const MAX_BATCH: usize = 64;
    /// Events that may wait for a writer before requests wait to hand theirs over.
    const QUEUE: usize = 4096;

    /// `writers` writer tasks on `pool`, started with the first event. They stop when the last
    /// handle is dropped, after writing what is queued.
    pub fn new(pool: PgPool, writers: usize) -> Self {
        let (queue, receiver) = mpsc::channel(Self::QUEUE);
        Self {
            queue,
            writers: Arc::new(Writers {
                pool,
                count: writers.max(1),
                receiver: Mutex::new(receiver),
                started: Once::new(),
            }),
        }
    }

    /// Store one event; returns once it is committed (or could not be).
    pub async fn write(&self, row: Row, parent_date: Option<NaiveDate>) -> Result<()> {
        self.writers.started.call_once(|| {
            for _ in 0..self.writers.count {
                tokio::spawn(write_batches(self.writers.clone()));
            }
        });
        let (done, outcome) = oneshot::channel();
        self.queue
            .send(Pending {
                row,
                parent_date,
                done,
            })
            .await
            .map_err(|_| Error::WriterStopped)?;
        outcome.await.map_err(|_| Error::WriterStopped)?
    }
}

/// One writer task: take what is waiting, store it, answer every request.
async fn write_batches(writers: Arc<Writers>) {
    let mut batch = Vec::with_capacity(EventWriter::MAX_BATCH);
    loop {
        {
            let mut receiver = writers.receiver.lock().await;
            if receiver.recv_many(&mut batch, EventWriter::MAX_BATCH).await == 0 {
                return; // every handle is gone and the queue is empty
            }
        }
        metrics::histogram!("datastorage_audit_insert_batch_events").record(batch.len() as f64);
        write_batch(&writers.pool, &mut batch).await;
    }
}

async fn write_batch(pool: &PgPool, batch: &mut Vec<Pending>) {
    let mut rows = Vec::with_capacity(batch.len());
    let mut parent_dates = Vec::with_capacity(batch.len());
    let mut answers = Vec::with_capacity(batch.len());
    for p in batch.drain(..) {
        rows.push(p.row);
        parent_dates.push(p.parent_date);
        answers.push(p.done);
    }
    match insert_rows(pool, &rows, &parent_dates).await {
        Ok(()) => {
            for answer in answers {
                let _ = answer.send(Ok(()));
            }
        }
        Err(e) if super::is_unavailable(&e) => {
            let kind = e.to_string();
            for answer in answers {
                let _ = answer.send(Err(Error::Unavailable(kind.clone())));
            }
        }
        Err(e) if answers.len() == 1 => {
            if let Some(answer) = answers.pop() {
                let _ = answer.send(Err(Error::Database(e)));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, events = rows.len(), "a coalesced INSERT failed; writing its events one by one");
            for (i, answer) in answers.into_iter().enumerate() {
                let outcome = insert_rows(pool, &rows[i..=i], &parent_dates[i..=i]).await;
                let _ = answer.send(outcome.map_err(Error::Database));
            }
        }
    }
}
