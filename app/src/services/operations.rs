//! An operator's reads of its own business. Every query is scoped by `operator_id`; another
//! operator's site is "not found".

use super::error::ServiceError;
use crate::operations::{
    Booking, BookingFilter, BookingTotals, OperatorBlackout, OperatorPool, OperatorSite,
};
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

/// Which of the operator's pools a listing covers.
#[derive(Clone, Copy, Debug)]
pub enum PoolScope {
    All,
    Site(i64),
    Pool(i64),
}

impl PoolScope {
    /// The (site, pool) filters as query parameters; `None` is "any".
    fn ids(self) -> (Option<i64>, Option<i64>) {
        match self {
            Self::All => (None, None),
            Self::Site(id) => (Some(id), None),
            Self::Pool(id) => (None, Some(id)),
        }
    }
}

/// Blackouts on the operator's pools in `scope` that have not ended yet, newest first,
/// `limit` at a time before `before_id`.
pub async fn blackouts(
    db: &PgPool,
    operator_id: i64,
    scope: PoolScope,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<OperatorBlackout>, ServiceError> {
    let (site_id, pool_id) = scope.ids();
    let rows = sqlx::query!(
        r#"select b.id, b.site_id, b.pool_id, p.name as pool_name, b.reason,
                  lower(b.during) as "start!", upper(b.during) as "end!",
                  (select count(*) from allocation a where a.blackout_id = b.id) as "units!"
           from blackout b
           join capacity_pool p on p.id = b.pool_id
           join site s on s.id = b.site_id
           where s.operator_id = $1 and upper(b.during) > now()
             and ($2::bigint is null or b.id < $2)
             and ($4::bigint is null or b.site_id = $4)
             and ($5::bigint is null or b.pool_id = $5)
           order by b.id desc
           limit $3"#,
        operator_id,
        before_id,
        limit.clamp(1, 500),
        site_id,
        pool_id
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

/// Reservations on the operator's capacity that match `filter`, newest first, `limit` at a
/// time before `before_id`. The filter is the SQL function `operator_bookings`, which
/// [`booking_totals`] applies too; the shown state is `reservation_state_at`.
pub async fn bookings(
    db: &PgPool,
    operator_id: i64,
    filter: &BookingFilter,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Booking>, ServiceError> {
    let rows = sqlx::query!(
        r#"select r.id as "id!", r.site_id as "site_id!", r.pool_id as "pool_id!", p.name as pool_name,
                  o.name as customer_name, r.unit_count as "unit_count!",
                  lower(r.during) as "start!", upper(r.during) as "end!",
                  reservation_state_at(r.state, r.during, now()) as "state!",
                  r.currency as "currency!", r.total_cents as "total_cents!", r.created_at as "created_at!"
           from operator_bookings($1, $4, $5, $6, $7, $8) r
           join capacity_pool p on p.id = r.pool_id
           join organization o on o.id = r.customer_id
           where $2::bigint is null or r.id < $2
           order by r.id desc
           limit $3"#,
        operator_id,
        before_id,
        limit.clamp(1, 10_000),
        filter.site_id,
        filter.pool_id,
        filter.state,
        filter.from,
        filter.to
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

/// What every booking matching `filter` adds up to; cancelled ones count as bookings but
/// bring no money or unit-hours. The filter is the one [`bookings`] applies
/// (`operator_bookings`).
pub async fn booking_totals(
    db: &PgPool,
    operator_id: i64,
    filter: &BookingFilter,
) -> Result<BookingTotals, ServiceError> {
    let r = sqlx::query!(
        r#"select count(*) as "bookings!",
                  coalesce(sum(r.unit_count * extract(epoch from upper(r.during) - lower(r.during)) / 3600)
                           filter (where r.state <> 'cancelled'), 0)::bigint as "unit_hours!",
                  coalesce(sum(r.total_cents) filter (where r.state <> 'cancelled'), 0)::bigint as "total_cents!",
                  coalesce(min(r.currency), 'USD') as "currency!"
           from operator_bookings($1, $2, $3, $4, $5, $6) r"#,
        operator_id,
        filter.site_id,
        filter.pool_id,
        filter.state,
        filter.from,
        filter.to
    )
    .fetch_one(db)
    .await?;
    Ok(BookingTotals {
        bookings: r.bookings,
        unit_hours: r.unit_hours,
        total_cents: r.total_cents,
        currency: r.currency,
    })
}

/// One of the operator's pools; another operator's is "not found".
pub async fn pool(
    db: &PgPool,
    operator_id: i64,
    pool_id: i64,
) -> Result<OperatorPool, ServiceError> {
    pools(db, operator_id, PoolScope::Pool(pool_id))
        .await?
        .into_iter()
        .next()
        .ok_or(ServiceError::NotFound("pool"))
}

/// The operator's pools (of one site, or all), by site and name.
pub async fn pools(
    db: &PgPool,
    operator_id: i64,
    scope: PoolScope,
) -> Result<Vec<OperatorPool>, ServiceError> {
    let (site_id, pool_id) = scope.ids();
    let rows = sqlx::query!(
        r#"select p.id, p.site_id, s.name as site_name, p.name, p.kind, p.unit_count, p.gpu_model,
                  p.gpus_per_node, p.gpu_memory_gb, p.interconnect, p.node_power_w, p.block_kw,
                  p.redundancy, p.cooling, p.price_cents, p.currency, p.min_term_hours,
                  p.max_term_hours, p.min_lead_hours,
                  (select max(upper(w.during)) from availability_window w where w.pool_id = p.id) as open_until
           from capacity_pool p join site s on s.id = p.site_id
           where s.operator_id = $1 and ($2::bigint is null or p.site_id = $2)
             and ($3::bigint is null or p.id = $3)
           order by s.name, s.id, p.name, p.id
           limit 2000"#,
        operator_id,
        site_id,
        pool_id
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let spec = if r.kind == "gpu" {
                format!(
                    "{} × {} · {} GB · {} · {} W/node",
                    r.gpus_per_node.unwrap_or(0),
                    r.gpu_model.unwrap_or_default(),
                    r.gpu_memory_gb.unwrap_or(0),
                    r.interconnect.unwrap_or_default(),
                    crate::money::group_thousands(r.node_power_w.unwrap_or(0).max(0) as u64)
                )
            } else {
                format!(
                    "{} kW blocks · {} · {}",
                    crate::money::group_thousands(r.block_kw.unwrap_or(0).max(0) as u64),
                    r.redundancy.unwrap_or_default(),
                    r.cooling.unwrap_or_default()
                )
            };
            OperatorPool {
                id: r.id,
                site_id: r.site_id,
                site_name: r.site_name,
                name: r.name,
                kind: r.kind,
                spec,
                unit_count: i64::from(r.unit_count),
                price_cents: r.price_cents,
                currency: r.currency,
                min_term_hours: i64::from(r.min_term_hours),
                max_term_hours: i64::from(r.max_term_hours),
                min_lead_hours: i64::from(r.min_lead_hours),
                open_until: r.open_until,
            }
        })
        .collect())
}
