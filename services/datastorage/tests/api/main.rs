//! Integration tests of the DataStorage schema and service, on a real PostgreSQL.
//!
//! The database comes from the `test-db` provider (`DATASTORAGE_TEST_DB=auto|url|docker|local`):
//! every test gets its own copy of the migrated v1.0 schema.

mod helpers;

mod analytics;
mod audit;
mod benchmarks;
mod contract;
mod docgen;
mod errors;
mod fuzz;
mod fuzz_corpus;
mod incidents;
mod logs;
mod notifications;
mod openapi;
mod pools;
mod reliability;
mod schema;
mod security;
mod spool;
mod workflows;

use sqlx::migrate::Migrator;

/// The migrations the test suite runs: kept on the test profile by `cargo xtask sync-migrations`.
pub static TEST_MIGRATOR: Migrator = sqlx::migrate!("../../migrations-v1.0");
