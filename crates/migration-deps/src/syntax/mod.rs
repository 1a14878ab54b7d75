//! PostgreSQL's parse tree, typed (pg_query's protobuf types).

pub mod children;
