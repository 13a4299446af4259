//! Integration tests: the real server against a real PostgreSQL, a fresh database per
//! test (`#[sqlx::test]` creates and drops them on the cluster in `DATABASE_URL`).
//! All integration tests compile into this one binary.

mod fixtures;
mod helpers;

mod account_security;
mod api;
mod api_requests;
mod api_webhooks;
mod audit;
mod auth;
mod auth_defences;
mod auth_keys;
mod browser_forms;
mod embedded_pg;
mod failover;
mod forward;
mod forward_model;
mod grid_events;
mod holds;
mod hostile_names;
mod http;
mod incidents;
mod isolation;
mod ledger;
mod ledger_property;
mod migrations;
mod model;
mod occupancy;
mod operator;
mod ops;
mod orders;
mod plans;
mod preempt_group;
mod preemption;
mod reallocation;
mod resale;
mod round_trips;
mod schema;
mod seed;
mod settlement;
mod settlement_listing;
