//! Settlement: turning a request for k units over a window into k concrete allocations,
//! or none. PostgreSQL's exclusion constraint on `allocation` is the final word; this
//! module picks free units and reports when there are not enough.

use crate::services::column;
use chrono::{DateTime, Utc};
use sqlx::postgres::types::PgRange;
use sqlx::{PgConnection, Postgres, Transaction};

/// Who an allocation serves.
#[derive(Clone, Copy, Debug)]
pub enum AllocationOwner {
    Reservation(i64),
    Blackout(i64),
}

/// Not enough units of the pool are free over the whole window.
#[derive(Debug, thiserror::Error)]
pub enum AllocateError {
    #[error("only {free} of the {wanted} units asked for are free over the whole window")]
    Insufficient { wanted: i64, free: i64 },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// `[start, end)` as PostgreSQL's `tstzrange`.
pub fn window(start: DateTime<Utc>, end: DateTime<Utc>) -> PgRange<DateTime<Utc>> {
    PgRange::from(start..end)
}

/// Allocates `wanted` free units of `pool_id` over `during` to `owner`, lowest unit numbers
/// first, inside the caller's transaction. Either all `wanted` rows are written or an error
/// is returned and the caller rolls back.
///
/// Units are chosen by the database's one rule, `choose_free_units` (lowest numbers first,
/// locked so that concurrent choosers take different units; `reservations::book` and
/// re-allocation use it too). Concurrent writers on one pool do not queue behind each
/// other: the rule first takes free units that no other transaction is holding, so 32
/// clients booking one pool proceed in parallel. Only when those are too few does it wait
/// for the held units, in the same call, so a unit busy in someone else's unfinished
/// transaction is never reported as taken. Our own rows are visible to us, so units this
/// transaction already took are not chosen again. A unit committed by another transaction
/// meanwhile fails the exclusion constraint (SQLSTATE 23P01), which callers retry or report
/// as a conflict.
pub async fn allocate(
    tx: &mut Transaction<'_, Postgres>,
    pool_id: i64,
    during: &PgRange<DateTime<Utc>>,
    wanted: i64,
    owner: AllocationOwner,
) -> Result<(), AllocateError> {
    let (reservation_id, blackout_id) = match owner {
        AllocationOwner::Reservation(id) => (Some(id), None),
        AllocationOwner::Blackout(id) => (None, Some(id)),
    };
    let conn: &mut PgConnection = tx;
    let done = sqlx::query!(
        r#"
        insert into allocation (site_id, pool_id, unit_id, reservation_id, blackout_id, during)
        select c.site_id, c.pool_id, c.unit_id, $3, $4, $2
          from choose_free_units($1, $2, $5, true) c
        "#,
        pool_id,
        during,
        reservation_id,
        blackout_id,
        wanted,
    )
    .execute(conn)
    .await?;
    let inserted = done.rows_affected() as i64;
    if inserted < wanted {
        return Err(AllocateError::Insufficient {
            wanted,
            free: inserted,
        });
    }
    Ok(())
}

/// One firm reservation's preemption for [`preempt_each`]: take up to `wanted` units of
/// `pool_id` over `during` from interruptible reservations and allocate them to
/// `reservation_id` by the database's rule (`preempt_into`, `preempt_group`: lowest price
/// paid first, then the latest booked; never before `from`, never a firm reservation's
/// unit), crediting their customers.
pub struct Preempt {
    pub pool_id: i64,
    pub during: PgRange<DateTime<Utc>>,
    pub wanted: i64,
    pub from: DateTime<Utc>,
    pub reservation_id: i64,
}

/// Each of `wants`, in one statement inside the caller's transaction (the database's
/// `preempt_group`: set-based for the whole group, the units to preempt locked first, then
/// every holder in reservation order; what it cannot take set-based goes through
/// `preempt_into` one want at a time, in order of pool and start). Returns how many units
/// each took, in the order of `wants`; fewer than wanted means the caller must roll back.
pub async fn preempt_each(
    tx: &mut Transaction<'_, Postgres>,
    wants: &[Preempt],
) -> Result<Vec<i64>, sqlx::Error> {
    if wants.is_empty() {
        return Ok(Vec::new());
    }
    let conn: &mut PgConnection = tx;
    let rows = sqlx::query!(
        r#"select preempt_group.n as "n!", preempt_group.taken as "taken!"
             from preempt_group($1::bigint[], $2::tstzrange[], $3::bigint[],
                                $4::timestamptz[], $5::bigint[])"#,
        &column(wants, |w| w.pool_id),
        &column(wants, |w| w.during.clone()),
        &column(wants, |w| w.wanted),
        &column(wants, |w| w.from),
        &column(wants, |w| w.reservation_id),
    )
    .fetch_all(conn)
    .await?;
    let mut taken = vec![0; wants.len()];
    for r in rows {
        // `with ordinality` counts from 1.
        taken[(r.n - 1) as usize] = i64::from(r.taken);
    }
    Ok(taken)
}

/// How many units of `pool_id` a firm booking over `during` could take from interruptible
/// reservations from `from` on (read only: what a quote says).
pub async fn preemptable(
    conn: &mut PgConnection,
    pool_id: i64,
    during: &PgRange<DateTime<Utc>>,
    from: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from preemption_candidates($1, $2, $3)"#,
        pool_id,
        during,
        from
    )
    .fetch_one(conn)
    .await
}

/// The longest a booking's exact path waits for a lock another transaction holds (a unit,
/// an interruptible holder's reservation, a conflicting allocation not yet committed)
/// before it rolls back and tries again.
///
/// The exact path holds the units it has taken while it waits for more, so it can close a
/// cycle with another writer that holds one of the units it wants and waits for one of
/// its own (a second booking's waiting pass, an incident's healing). PostgreSQL breaks a
/// cycle only after `deadlock_timeout` (a second by default), aborting whichever waiter's
/// check comes first. A bounded wait below that gives the cycle up from the booking's side
/// first: it rolls back (freeing what it held, so the other writer proceeds) and retries,
/// which [`crate::services::error::is_retryable`] allows. A lock held longer than this by a
/// transaction that is not waiting on us costs a retry, not a wrong answer.
pub const EXACT_LOCK_WAIT: &str = "200ms";

/// Opens a booking's exact path in the caller's transaction, in one round trip: bounds its
/// lock waits to [`EXACT_LOCK_WAIT`] (this transaction only), then releases the pool's expired
/// holds (see [`release_expired_holds`]). Returns how many holds it released.
pub async fn open_exact(conn: &mut PgConnection, pool_id: i64) -> Result<i64, sqlx::Error> {
    // The subquery in FROM runs first, so the bound is in force for the release too.
    let released = sqlx::query_scalar!(
        r#"select release_expired_holds($1) as "released!"
             from (select set_config('lock_timeout', $2, true)) bounded"#,
        pool_id,
        EXACT_LOCK_WAIT
    )
    .fetch_one(conn)
    .await?;
    Ok(i64::from(released))
}

/// Releases the holds past their time (of one pool, or all), inside the caller's
/// transaction: their units return to sale and they become cancelled, nothing charged (the
/// database's `release_expired_holds`, which skips a hold another transaction is confirming
/// or releasing). Returns how many it released.
pub async fn release_expired_holds(
    conn: &mut PgConnection,
    pool_id: Option<i64>,
) -> Result<i64, sqlx::Error> {
    let released = sqlx::query_scalar!(
        r#"select release_expired_holds($1) as "released!""#,
        pool_id
    )
    .fetch_one(conn)
    .await?;
    Ok(i64::from(released))
}
