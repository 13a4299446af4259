//! An operator's reads of its own business. Every query is scoped by `operator_id`; another
//! operator's site is "not found".

use super::error::ServiceError;
use crate::operations::{Booking, OperatorBlackout, OperatorSite};
use sqlx::PgPool;

/// The operator's sites, newest first, `limit` at a time before `before_id`.
pub async fn sites(
    db: &PgPool,
    operator_id: i64,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<OperatorSite>, ServiceError> {
    let rows = sqlx::query!(
        r#"select s.id, s.name, s.country, s.region, s.grid_region, s.energy_source,
                  s.interconnect_kw, s.pue, s.status, s.created_at,
                  (select count(*) from capacity_pool p where p.site_id = s.id) as "pools!"
           from site s where s.operator_id = $1 and ($2::bigint is null or s.id < $2)
           order by s.id desc limit $3"#,
        operator_id,
        before_id,
        limit.clamp(1, 500)
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| OperatorSite {
            id: r.id,
            name: r.name,
            country: r.country,
            region: r.region,
            grid_region: r.grid_region,
            energy_source: r.energy_source,
            interconnect_kw: i64::from(r.interconnect_kw),
            pue: r.pue,
            status: r.status,
            pools: r.pools,
            created_at: r.created_at,
        })
        .collect())
}

pub async fn site(
    db: &PgPool,
    operator_id: i64,
    site_id: i64,
) -> Result<OperatorSite, ServiceError> {
    sites(db, operator_id, Some(site_id.saturating_add(1)), 1)
        .await?
        .into_iter()
        .find(|s| s.id == site_id)
        .ok_or(ServiceError::NotFound("site"))
}

/// Blackouts on the operator's pools that have not ended yet, newest first, `limit` at a
/// time before `before_id`.
pub async fn blackouts(
    db: &PgPool,
    operator_id: i64,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<OperatorBlackout>, ServiceError> {
    let rows = sqlx::query!(
        r#"select b.id, b.site_id, b.pool_id, p.name as pool_name, b.reason,
                  lower(b.during) as "start!", upper(b.during) as "end!",
                  (select count(*) from allocation a where a.blackout_id = b.id) as "units!"
           from blackout b
           join capacity_pool p on p.id = b.pool_id
           join site s on s.id = b.site_id
           where s.operator_id = $1 and upper(b.during) > now()
             and ($2::bigint is null or b.id < $2)
           order by b.id desc
           limit $3"#,
        operator_id,
        before_id,
        limit.clamp(1, 500)
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| OperatorBlackout {
            id: r.id,
            site_id: r.site_id,
            pool_id: r.pool_id,
            pool_name: r.pool_name,
            units: r.units,
            start: r.start,
            end: r.end,
            reason: r.reason,
        })
        .collect())
}

/// Reservations on the operator's capacity, newest first, `limit` at a time before `before_id`.
pub async fn bookings(
    db: &PgPool,
    operator_id: i64,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Booking>, ServiceError> {
    let rows = sqlx::query!(
        r#"select r.id, r.site_id, r.pool_id, p.name as pool_name, o.name as customer_name,
                  r.unit_count, lower(r.during) as "start!", upper(r.during) as "end!",
                  case when r.state = 'confirmed' and upper(r.during) <= now() then 'completed'
                       when r.state = 'confirmed' and lower(r.during) <= now() then 'active'
                       else r.state end as "state!",
                  r.currency, r.total_cents, r.created_at
           from reservation r
           join site s on s.id = r.site_id
           join capacity_pool p on p.id = r.pool_id
           join organization o on o.id = r.customer_id
           where s.operator_id = $1 and ($2::bigint is null or r.id < $2)
           order by r.id desc
           limit $3"#,
        operator_id,
        before_id,
        limit.clamp(1, 500)
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Booking {
            id: r.id,
            site_id: r.site_id,
            pool_id: r.pool_id,
            pool_name: r.pool_name,
            customer_name: r.customer_name,
            units: i64::from(r.unit_count),
            start: r.start,
            end: r.end,
            state: r.state,
            currency: r.currency,
            total_cents: r.total_cents,
            created_at: r.created_at,
        })
        .collect())
}
