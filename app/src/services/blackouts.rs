//! Maintenance windows (blackouts): they take units out of sale like a reservation does.

use super::error::ServiceError;
use super::pools;
use super::settlement::{self, AllocateError, AllocationOwner};
use crate::window::HourWindow;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// Which units go into maintenance.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BlackoutUnits {
    /// Every unit of the pool.
    All,
    /// This many free units (lowest numbers first).
    Count(i64),
}

/// The pool, if `operator_id` operates its site (anyone else gets "not found").
async fn operated_pool(
    conn: &mut PgConnection,
    operator_id: i64,
    pool_id: i64,
    lock: bool,
) -> Result<pools::PoolInfo, ServiceError> {
    let pool = pools::load(conn, pool_id, lock).await?;
    if pool.operator_id != operator_id {
        return Err(ServiceError::NotFound("pool"));
    }
    Ok(pool)
}

/// Adds a blackout. Refused, with the reservations in the way, when the units are booked.
pub async fn add(
    db: &PgPool,
    operator_id: i64,
    pool_id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    units: BlackoutUnits,
    reason: &str,
) -> Result<i64, ServiceError> {
    let window = HourWindow::new(start, end)?;
    let reason = reason.trim();
    if reason.chars().count() > 500 {
        return Err(ServiceError::invalid(
            "reason",
            "keep the reason under 500 characters",
        ));
    }
    let reason = if reason.is_empty() {
        "maintenance"
    } else {
        reason
    };
    let mut tx = db.begin().await?;
    let pool = operated_pool(&mut tx, operator_id, pool_id, true).await?;
    let wanted = match units {
        BlackoutUnits::All => pool.unit_count,
        BlackoutUnits::Count(n) if n >= 1 && n <= pool.unit_count => n,
        BlackoutUnits::Count(n) => {
            return Err(ServiceError::invalid(
                "units",
                format!("choose between 1 and {} units (got {n})", pool.unit_count),
            ))
        }
    };
    let range = pools::to_range(&window);
    let id = sqlx::query_scalar!(
        "insert into blackout (site_id, pool_id, during, reason) values ($1, $2, $3, $4) returning id",
        pool.site_id,
        pool.id,
        range,
        reason
    )
    .fetch_one(&mut *tx)
    .await?;
    match settlement::allocate(
        &mut tx,
        pool.id,
        &range,
        wanted,
        AllocationOwner::Blackout(id),
    )
    .await
    {
        Ok(()) => {}
        Err(AllocateError::Insufficient { free, .. }) => {
            let in_the_way = sqlx::query_scalar!(
                r#"select distinct reservation_id as "id!" from pool_allocations($1, $2)
                   where reservation_id is not null
                   order by 1"#,
                pool.id,
                range
            )
            .fetch_all(&mut *tx)
            .await?;
            tx.rollback().await?;
            let listed = in_the_way
                .iter()
                .map(|id| format!("#{id}"))
                .collect::<Vec<_>>()
                .join(", ");
            let message = if in_the_way.is_empty() {
                format!("only {free} of the {wanted} units are free in that window: the rest are already under maintenance")
            } else {
                format!(
                    "only {free} of the {wanted} units are free in that window; these reservations hold units then: {listed}"
                )
            };
            return Err(ServiceError::Conflict {
                message,
                next_start: None,
                conflicting_reservations: in_the_way,
            });
        }
        Err(AllocateError::Db(e)) => return Err(e.into()),
    }
    super::audit::record(
        &mut tx,
        super::audit::Event {
            organization_id: Some(operator_id),
            action: "blackout.created",
            object_type: "blackout",
            object_id: Some(id),
            detail: serde_json::json!({
                "pool_id": pool.id, "units": wanted, "start": window.start(), "end": window.end(),
                "reason": reason,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Removes a blackout and frees its units.
pub async fn remove(db: &PgPool, operator_id: i64, blackout_id: i64) -> Result<(), ServiceError> {
    let mut tx = db.begin().await?;
    let deleted = sqlx::query!(
        r#"delete from blackout b using site s
           where b.id = $1 and s.id = b.site_id and s.operator_id = $2
           returning b.pool_id, lower(b.during) as "start!", upper(b.during) as "end!""#,
        blackout_id,
        operator_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ServiceError::NotFound("blackout"))?;
    super::audit::record(
        &mut tx,
        super::audit::Event {
            organization_id: Some(operator_id),
            action: "blackout.removed",
            object_type: "blackout",
            object_id: Some(blackout_id),
            detail: serde_json::json!({
                "pool_id": deleted.pool_id, "start": deleted.start, "end": deleted.end,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
