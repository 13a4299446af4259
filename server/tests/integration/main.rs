//! Integration tests: the real server against a real PostgreSQL, a fresh database per
//! test (`#[sqlx::test]` creates and drops them on the cluster in `DATABASE_URL`).
//! All integration tests compile into this one binary.

mod helpers;

mod api;
mod auth;
mod embedded_pg;
mod http;
mod isolation;
mod ledger;
mod model;
mod operator;
mod schema;
mod seed;
mod settlement;
