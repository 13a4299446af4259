//! Integration tests: the real server against a real PostgreSQL, a fresh database per
//! test (`#[sqlx::test]` creates and drops them on the cluster in `DATABASE_URL`).
//! All integration tests compile into this one binary.

mod helpers;

mod account_security;
mod api;
mod audit;
mod auth;
mod browser_forms;
mod embedded_pg;
mod hostile_names;
mod http;
mod isolation;
mod ledger;
mod migrations;
mod model;
mod operator;
mod ops;
mod reallocation;
mod schema;
mod seed;
mod settlement;
