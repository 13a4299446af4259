//! The Rigshift server: configuration, start-up (embedded database, migrations, demo
//! data), the HTTP router and graceful shutdown. The binary in `main.rs` only parses the
//! command line and calls into here, so integration tests can boot the same server.

// The app's page types are deep; the server instantiates them when rendering.
#![recursion_limit = "512"]

pub mod admin_cli;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod delivery;
pub mod embedded_pg;
pub mod exports;
pub mod http;
pub mod mailer;
pub mod ops;
pub mod seed;
pub mod startup;
pub mod state;
pub mod telemetry;
