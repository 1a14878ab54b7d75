//! What a PostgreSQL database's schema is, read from `pg_catalog`, in a form two databases can be
//! compared by; and the guard that stops a migration profile from running on a database that was
//! migrated with another profile.
//!
//! ```no_run
//! # async fn demo(a: &mut sqlx::PgConnection, b: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
//! let before = pg_schema::Fingerprint::read(a).await?;
//! let after = pg_schema::Fingerprint::read(b).await?;
//! let diff = before.diff(&after);
//! if !diff.is_empty() {
//!     print!("{}", diff.render("before", "after"));
//! }
//! # Ok(())
//! # }
//! ```
//!
//! * [`Fingerprint`]: every extension, schema, type, table (with its partitioning and partitions),
//!   column, constraint, index, sequence, view, function and trigger outside the system schemas,
//!   each as a name and a definition PostgreSQL itself prints (`format_type`,
//!   `pg_get_constraintdef`, `pg_get_indexdef`, …). Column order, owners, privileges, statistics
//!   and the rows themselves are not part of it, nor are sqlx's `_sqlx_migrations` table and the
//!   objects an extension brings with it (only the extension itself is).
//! * [`Diff`]: what only one side has and what both have with different definitions, rendered as
//!   a table grouped by kind of object.
//! * [`profile_guard`]: call [`profile_guard::check`] before `Migrator::run`.
//! * [`applied`]: the rows of `_sqlx_migrations`.

pub mod applied;
mod diff;
mod fingerprint;
pub mod profile_guard;
pub mod profiles;

pub use diff::{Change, Diff, Status};
pub use fingerprint::{Fingerprint, Kind, ObjectId};
