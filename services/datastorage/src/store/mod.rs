//! Persistence: the SQL the handlers run to store records, and the writer tasks that coalesce
//! single audit events into multi-row statements, and the spool that keeps audit writes while
//! the database cannot take them. The HTTP layer (`crate::http`) validates,
//! calls these, and turns their errors into answers.

pub mod analytics;
pub mod audit;
pub mod notifications;
pub mod spool;
pub mod traces;
mod writer;

pub use spool::Spool;
pub use writer::EventWriter;

/// What a store write can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database cannot be reached right now (see [`is_unavailable`]).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database refused the statement.
    #[error(transparent)]
    Database(sqlx::Error),
    /// The writer tasks are gone (the service is shutting down).
    #[error("the event writer stopped")]
    WriterStopped,
}

/// Errors that mean "the database cannot be reached right now" (answered with 503).
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            // Class 57 (operator intervention: admin shutdown, cannot connect now) and
            // class 08 (connection exception).
            db.code()
                .is_some_and(|c| c.starts_with("57") || c.starts_with("08"))
        }
        sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}
