//! Connecting to PostgreSQL and keeping its schema current.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Why the server will not use the database it was given.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Sql(#[from] sqlx::Error),
    #[error("the database at DATABASE_URL is a read-only replica (it is in recovery): point DATABASE_URL at the primary, e.g. through the HAProxy port that routes to the current primary")]
    ReadOnlyReplica,
}

/// A connection pool on the primary. Acquiring waits at most a few seconds, so a request
/// fails fast (503 with `Retry-After`, and `/healthz` 503) while the database is unreachable;
/// the pool reconnects by itself once it is back.
///
/// After a failover the old primary comes back as a replica. No pooled connection survives
/// that (PostgreSQL restarts to be demoted, and HAProxy closes the sessions of a server it
/// marks down), and a new connection that lands on a replica anyway (HAProxy's check had not
/// yet seen the change) is refused, so a request never writes to a database that is no longer
/// the primary: it gets 503 and its retry reaches the new one.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, ConnectError> {
    let options = PgConnectOptions::from_str(url)?.application_name("rigshift");
    // Checked once with its own connection first, for a clear refusal at startup.
    let mut first = sqlx::PgConnection::connect_with(&options).await?;
    if in_recovery(&mut first).await? {
        return Err(ConnectError::ReadOnlyReplica);
    }
    first.close().await?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(|conn, _| {
            Box::pin(async move {
                if in_recovery(conn).await? {
                    return Err(sqlx::Error::Protocol(
                        "connected to a read-only replica, not the primary".into(),
                    ));
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?)
}

/// One more connection to the database behind `pool`, for work that must not wait behind
/// requests for a connection: the lease renewal, whose delay would make a busy, live
/// process look dead to the others.
pub fn own_connection(pool: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy_with((*pool.connect_options()).clone())
}

/// A pool on a replica, for reads that may be a moment stale. Lazy: the server starts, and
/// reads from the primary, while the replica is unreachable.
pub fn connect_replica(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name("rigshift-reads");
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy_with(options))
}

async fn in_recovery(conn: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select pg_is_in_recovery()")
        .fetch_one(conn)
        .await
}

/// Creates `name` on the cluster behind `admin_url` unless it exists.
pub async fn ensure_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        // Identifiers cannot be bound; `name` is checked to be [A-Za-z0-9_] by the config.
        sqlx::query(sqlx::AssertSqlSafe(format!("create database \"{name}\"")))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await
}

/// Applies pending migrations. Safe to run from several processes at once: sqlx takes
/// an advisory lock around the run.
pub async fn migrate(db: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(db).await
}
