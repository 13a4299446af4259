//! Server-only services: the one implementation of every rule, called by server
//! functions and by the JSON API alike.

pub mod accounts;
pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod availability;
pub mod blackouts;
pub mod bridge;
pub mod catalog;
pub mod economics;
pub mod error;
pub mod forward;
pub mod grid_events;
pub mod health;
pub mod idempotency;
pub mod incidents;
pub mod lease;
pub mod ledger;
pub mod mail;
pub mod market;
pub mod operations;
pub mod orders;
pub mod password;
pub mod payments;
pub mod pools;
pub mod principal;
pub mod recovery;
pub mod replica;
pub mod resale;
pub mod reservations;
pub mod search;
pub mod second_factor;
pub mod sessions;
pub mod settlement;
pub mod throttle;
pub mod token;
pub mod utilization;
pub mod web;
pub mod webhook_address;
pub mod webhook_queue;
pub mod webhooks;

use crate::app_error::AppError;
use leptos::prelude::*;
use sqlx::PgPool;

/// The database pool the server provides to every request's reactive context.
pub fn db_from_context() -> Result<PgPool, AppError> {
    use_context::<PgPool>().ok_or_else(|| {
        tracing::error!("no PgPool in the request context");
        AppError::unavailable("The marketplace is misconfigured; please try again later.")
    })
}

/// One field of every row, as the array bound to a statement that acts on many rows at
/// once (`unnest($1::bigint[], $2::tstzrange[], …)`).
pub(crate) fn column<R, T>(rows: &[R], field: impl Fn(&R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

/// Logs a database failure and returns an error that is safe to show to anyone.
pub fn unavailable(err: sqlx::Error) -> AppError {
    web::fail(error::ServiceError::from(err))
}
