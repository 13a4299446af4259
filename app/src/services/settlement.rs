//! Settlement: turning a request for k units over a window into k concrete allocations,
//! or none. PostgreSQL's exclusion constraint on `allocation` is the final word; this
//! module picks free units and reports when there are not enough.

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
/// Concurrent writers on one pool do not queue behind each other: each first takes free
/// units that no other transaction is holding (row locks with `skip locked`), so 32
/// clients booking one pool proceed in parallel. Only when that finds too few does it wait
/// for the held units, so a unit busy in someone else's unfinished transaction is never
/// reported as taken. (`reservations::book` chooses units by the same rule.)
/// (SQLSTATE 23P01) from the constraint, which callers retry or report as a conflict.
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
    let mut inserted = sqlx::query!(
        r#"
        with chosen as (
            select u.id, u.site_id, u.pool_id from capacity_unit u
            where u.pool_id = $1
              and not exists (select 1 from allocation a where a.unit_id = u.id and a.during && $2)
            order by u.ordinal
            limit $5
            for no key update of u skip locked
        )
        insert into allocation (site_id, pool_id, unit_id, reservation_id, blackout_id, during)
        select site_id, pool_id, id, $3, $4, $2 from chosen
        "#,
        pool_id,
        during,
        reservation_id,
        blackout_id,
        wanted,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected() as i64;
    if inserted < wanted {
        // Our own rows are visible to us, so the units just taken are not chosen again.
        inserted += sqlx::query!(
            r#"
            with chosen as (
                select u.id, u.site_id, u.pool_id from capacity_unit u
                where u.pool_id = $1
                  and not exists (select 1 from allocation a where a.unit_id = u.id and a.during && $2)
                order by u.ordinal
                limit $5
                for no key update of u
            )
            insert into allocation (site_id, pool_id, unit_id, reservation_id, blackout_id, during)
            select site_id, pool_id, id, $3, $4, $2 from chosen
            "#,
            pool_id,
            during,
            reservation_id,
            blackout_id,
            wanted - inserted,
        )
        .execute(&mut *conn)
        .await?
        .rows_affected() as i64;
    }
    if inserted < wanted {
        return Err(AllocateError::Insufficient {
            wanted,
            free: inserted,
        });
    }
    Ok(())
}
