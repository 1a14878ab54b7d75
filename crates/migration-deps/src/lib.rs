//! Static dependency analysis of sqlx-style PostgreSQL migrations.
//!
//! [`MigrationSet::read`] reads a folder the way `sqlx migrate` does; [`analyze_set`] parses each
//! file with libpg_query (PostgreSQL's own grammar, PL/pgSQL included) into [`Facts`]: the
//! objects it creates, alters, renames, drops and references. [`check_profile`] walks a subset
//! (a *profile*) in order and reports every reference to an object that no earlier member
//! created, naming the canonical migration that does; [`transaction_findings`] reports what
//! cannot run in the transaction sqlx wraps each migration in.

mod analyze;
mod catalog;
mod check;
pub mod derive;
pub mod extensions;
mod facts;
pub mod layout;
pub mod syntax;

pub use analyze::{Analysis, ParseError, TxOnlyStatement, analyze};
pub use check::{
    AnalyzeError, Analyzed, Edge, Finding, History, Member, Membership, Severity, analyze_lenient,
    analyze_migration, analyze_set, check_profile, dependency_edges, down_findings,
    hazard_findings, parallel, transaction_findings, version_findings,
};
pub use facts::{Action, CreateMode, Detail, Event, ExtensionUse, Facts, Object, RelKind};
pub use layout::{
    Detected, Layout, LayoutKind, Migration, MigrationSet, NO_TX_DIRECTIVE, Part, SetError,
    Version, detect, line_of, read_file,
};
