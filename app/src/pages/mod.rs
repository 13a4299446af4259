//! One module per page (and `bridge`, the panel two operator pages share).

pub mod account;
pub mod activity;
pub mod admin;
pub mod books;
pub mod bridge;
pub mod developers;
pub mod earnings;
pub mod economics;
pub mod grid_events;
pub mod home;
pub mod incidents;
pub mod login;
pub mod not_found;
pub mod operator;
pub mod operator_pool;
pub mod operator_site;
pub mod orders;
pub mod outbox;
pub mod pool;
pub mod recovery;
pub mod resale;
pub mod reservations;
pub mod search;
pub mod security;
pub mod statement;
pub mod webhooks;
