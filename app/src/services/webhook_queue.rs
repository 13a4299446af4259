//! The webhook queue in the database: outbox events become deliveries for the endpoints
//! subscribed to them, due deliveries are leased to one sender at a time, and each attempt
//! is recorded with the retry policy. The server's worker sends the requests; every step
//! here claims its rows with `skip locked`, so any number of processes can run side by side.

use super::error::ServiceError;
use super::mail::PublicUrl;
use super::webhooks;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Minutes to wait after each failed attempt: from 30 seconds to a day, about three days in
/// all (Standard Webhooks asks for retries over days, so a receiver's weekend outage heals).
const RETRY_MINUTES: [f64; 11] = [
    0.5, 2.0, 10.0, 30.0, 60.0, 120.0, 240.0, 480.0, 720.0, 1440.0, 1440.0,
];
/// Attempts before a delivery is given up: the first and one per retry.
pub const MAX_ATTEMPTS: i32 = RETRY_MINUTES.len() as i32 + 1;
/// Seconds to wait after the `attempts`-th failed attempt.
pub fn backoff_secs(attempts: i32) -> i64 {
    let i = (attempts.max(1) as usize - 1).min(RETRY_MINUTES.len() - 1);
    (RETRY_MINUTES[i] * 60.0) as i64
}

/// Announces reservations that started or completed (in the last day: an old database
/// coming back does not replay its whole history), once each.
pub async fn announce_milestones(db: &PgPool) -> Result<(), ServiceError> {
    for (kind, event) in [
        ("started", "reservation.started"),
        ("completed", "reservation.completed"),
    ] {
        sqlx::query(
                r#"with due as (
                       insert into reservation_milestone (reservation_id, kind)
                       select r.id, $1 from reservation r
                       where r.state = 'confirmed'
                         and (case when $1 = 'started' then lower(r.during) else upper(r.during) end)
                             between now() - interval '1 day' and now()
                       on conflict do nothing
                       returning reservation_id)
                   select emit_reservation_event($2, r) from reservation r join due on due.reservation_id = r.id"#,
            )
            .bind(kind)
            .bind(event)
            .fetch_all(db)
            .await?;
    }
    Ok(())
}

/// Outbox events become one delivery per subscribed endpoint of their organization.
pub async fn dispatch(db: &PgPool) -> Result<(), ServiceError> {
    sqlx::query!(
            r#"with batch as (
                   select id, organization_id, kind, created_at from event_outbox
                   where dispatched_at is null order by id limit 500 for update skip locked),
               made as (
                   insert into webhook_delivery (endpoint_id, event_id)
                   select w.id, b.id from batch b
                   join webhook_endpoint w on w.organization_id = b.organization_id and b.kind = any(w.events)
                       -- A disabled endpoint misses what happens while it is disabled.
                       and w.disabled_at is null
                       -- An endpoint hears of what happens after it was registered.
                       and w.created_at <= b.created_at
                   on conflict do nothing)
               update event_outbox e set dispatched_at = now() from batch b where e.id = b.id"#
        )
        .execute(db)
        .await?;
    Ok(())
}

/// A delivery leased to this process for two minutes, with what sending it needs.
pub struct DueDelivery {
    pub id: i64,
    pub attempts: i32,
    pub url: String,
    pub secret: String,
    pub event_id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Leases up to `batch` due deliveries of enabled endpoints, so no other process sends them
/// meanwhile.
pub async fn lease_due(db: &PgPool, batch: i64) -> Result<Vec<DueDelivery>, ServiceError> {
    // Lease the due deliveries for two minutes, so no other process sends them meanwhile.
    Ok(sqlx::query_as!(
            DueDelivery,
            r#"with due as (
                   select d.id from webhook_delivery d
                   join webhook_endpoint w on w.id = d.endpoint_id and w.disabled_at is null
                   where d.delivered_at is null and d.failed_at is null and d.next_attempt_at <= now()
                   order by d.next_attempt_at limit $1 for update of d skip locked)
               update webhook_delivery d set next_attempt_at = now() + interval '2 minutes'
               from due, webhook_endpoint w, event_outbox e
               where d.id = due.id and w.id = d.endpoint_id and e.id = d.event_id
               returning d.id, d.attempts, w.url, w.secret, e.id as event_id, e.kind, e.payload, e.created_at"#,
            batch
        )
        .fetch_all(db)
        .await?)
}

/// One attempt at a delivery, as the sender saw it.
pub struct Attempt {
    pub delivery_id: i64,
    /// Attempts made so far, this one included.
    pub attempts: i32,
    pub status: Option<i16>,
    pub error: Option<String>,
    pub delivered: bool,
    pub duration_ms: i32,
}

/// Records an attempt and schedules the next by the retry policy; after the last one the
/// delivery is given up, and an endpoint whose deliveries all failed is disabled (its
/// owners are told, with links to `public_url`).
pub async fn record_attempt(
    db: &PgPool,
    a: Attempt,
    public_url: &PublicUrl,
) -> Result<(), ServiceError> {
    let (id, attempts, ok) = (a.delivery_id, a.attempts, a.delivered);
    let mut tx = db.begin().await?;
    sqlx::query!(
            "insert into webhook_attempt (delivery_id, status, error, duration_ms) values ($1, $2, $3, $4)",
            id,
            a.status,
            a.error.as_deref(),
            a.duration_ms
        )
        .execute(&mut *tx)
        .await?;
    let give_up = !ok && attempts >= MAX_ATTEMPTS;
    sqlx::query!(
        r#"update webhook_delivery set
                 attempts = $2, last_status = $3, last_error = $4,
                 delivered_at = case when $5 then now() end,
                 failed_at = case when $6 then now() end,
                 next_attempt_at = now() + make_interval(secs => $7::bigint::double precision)
               where id = $1"#,
        id,
        attempts,
        a.status,
        a.error.as_deref(),
        ok,
        give_up,
        backoff_secs(attempts)
    )
    .execute(&mut *tx)
    .await?;
    if give_up {
        webhooks::disable_if_dead(&mut tx, id, attempts, a.error.as_deref(), public_url).await?;
    }
    tx.commit().await?;
    Ok(())
}
