//! What an operator of Rigshift itself watches: whether the database answers (health and
//! readiness) and the queues behind the marketplace, read for `/metrics`.

use sqlx::PgPool;
use std::time::Duration;

/// Whether the database answers a trivial query within two seconds.
pub async fn database_answers(db: &PgPool) -> bool {
    let ping = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("select 1").fetch_one(db),
    )
    .await;
    match ping {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database error");
            false
        }
        Err(_) => {
            tracing::warn!("health check: database did not answer within 2 s");
            false
        }
    }
}

/// Work waiting in the database, across every server process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Webhook deliveries not yet delivered nor given up.
    pub webhooks_pending: i64,
    /// Deliveries that are due now and not yet sent.
    pub webhooks_due: i64,
    /// API requests with an `Idempotency-Key` still running.
    pub idempotency_running: i64,
}

pub async fn backlog(db: &PgPool) -> Result<Backlog, sqlx::Error> {
    let row = sqlx::query!(
        r#"select
             (select count(*) from webhook_delivery
               where delivered_at is null and failed_at is null) as "pending!",
             (select count(*) from webhook_delivery
               where delivered_at is null and failed_at is null and next_attempt_at <= now()) as "due!",
             (select count(*) from idempotency_key where state = 'running') as "running!""#
    )
    .fetch_one(db)
    .await?;
    Ok(Backlog {
        webhooks_pending: row.pending,
        webhooks_due: row.due,
        idempotency_running: row.running,
    })
}
