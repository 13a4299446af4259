//! An operator's view of use over time: which unit of a pool serves whom when, and the firm
//! AI load a site's reservations commit against its interconnect. Scoped to the operator:
//! another operator's pool or site is "not found".

use super::error::ServiceError;
use crate::power;
use crate::utilization::{self as u, Holder, Load, PoolUtilization, SitePower, UnitSpan};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

/// The chart draws at most this many units of a pool.
pub const CHART_UNITS: i64 = 32;

/// Who holds which unit of the pool over `[from, from + weeks)`, and each week's shares.
pub async fn pool(
    db: &PgPool,
    operator_id: i64,
    pool_id: i64,
    from: DateTime<Utc>,
    weeks: i64,
) -> Result<PoolUtilization, ServiceError> {
    let to = from + Duration::weeks(weeks);
    let p = sqlx::query!(
        r#"select p.id, p.name, p.kind, p.unit_count, s.id as site_id, s.name as site_name
           from capacity_pool p join site s on s.id = p.site_id
           where p.id = $1 and s.operator_id = $2"#,
        pool_id,
        operator_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("pool"))?;
    // Held reservations hold their units too, so they are drawn; cancelled ones have no
    // allocations left.
    let rows = sqlx::query!(
        r#"select cu.ordinal::bigint as "ordinal!",
                  greatest(lower(a.during), $2) as "start!", least(upper(a.during), $3) as "end!",
                  a.reservation_id, o.name as "customer?", a.blackout_id, b.reason as "reason?"
           from pool_allocations($1, tstzrange($2, $3)) a
           join capacity_unit cu on cu.id = a.unit_id
           left join reservation r on r.id = a.reservation_id
           left join organization o on o.id = r.customer_id
           left join blackout b on b.id = a.blackout_id
           order by cu.ordinal, lower(a.during)"#,
        pool_id,
        from,
        to
    )
    .fetch_all(db)
    .await?;
    let spans: Vec<UnitSpan> = rows
        .into_iter()
        .filter_map(|r| {
            let holder = match (r.reservation_id, r.blackout_id) {
                (Some(id), _) => Holder::Reservation {
                    id,
                    customer: r.customer.unwrap_or_default(),
                },
                (None, Some(id)) => Holder::Blackout {
                    id,
                    reason: r.reason.unwrap_or_default(),
                },
                (None, None) => return None,
            };
            Some(UnitSpan {
                ordinal: r.ordinal,
                start: r.start,
                end: r.end,
                holder,
            })
        })
        .collect();
    let unit_count = i64::from(p.unit_count);
    let weeks_shares = u::weekly_shares(unit_count, &spans, from, weeks);
    let shown_units = unit_count.min(CHART_UNITS);
    Ok(PoolUtilization {
        pool_id: p.id,
        pool_name: p.name,
        site_id: p.site_id,
        site_name: p.site_name,
        kind: p.kind,
        unit_count,
        from,
        to,
        spans: spans
            .into_iter()
            .filter(|s| s.ordinal <= shown_units)
            .collect(),
        shown_units,
        weeks: weeks_shares,
    })
}

/// The site's interconnect, listed AI capacity and committed AI load over `[from, to)`.
pub async fn site_power(
    db: &PgPool,
    operator_id: i64,
    site_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<SitePower, ServiceError> {
    let site = sqlx::query!(
        "select id, name, interconnect_kw, pue from site where id = $1 and operator_id = $2",
        site_id,
        operator_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("site"))?;
    let pools = sqlx::query!(
        "select kind, unit_count, node_power_w, block_kw from capacity_pool where site_id = $1",
        site_id
    )
    .fetch_all(db)
    .await?;
    let listed_w = pools
        .iter()
        .map(|p| {
            power::pool_firm_w(
                &p.kind,
                i64::from(p.unit_count),
                p.node_power_w,
                p.block_kw,
                site.pue,
            )
        })
        .sum();
    let reservations = sqlx::query!(
        r#"select r.unit_count, lower(r.during) as "start!", upper(r.during) as "end!",
                  p.kind, p.node_power_w, p.block_kw
           from reservation r join capacity_pool p on p.id = r.pool_id
           where r.site_id = $1 and r.state in ('confirmed', 'held') and r.during && tstzrange($2, $3)"#,
        site_id,
        from,
        to
    )
    .fetch_all(db)
    .await?;
    let loads: Vec<Load> = reservations
        .iter()
        .map(|r| Load {
            start: r.start,
            end: r.end,
            watts: power::pool_firm_w(
                &r.kind,
                i64::from(r.unit_count),
                r.node_power_w,
                r.block_kw,
                site.pue,
            ),
        })
        .collect();
    let ahead = sqlx::query!(
        r#"select coalesce(sum(base_cents - discount_cents), 0)::bigint as "cents!",
                  coalesce(min(currency), 'USD') as "currency!"
           from reservation where site_id = $1 and state = 'confirmed' and upper(during) > now()"#,
        site_id
    )
    .fetch_one(db)
    .await?;
    Ok(SitePower {
        site_id: site.id,
        site_name: site.name,
        interconnect_kw: i64::from(site.interconnect_kw),
        listed_w,
        from,
        to,
        steps: u::load_steps(&loads, from, to),
        booked_ahead_cents: ahead.cents,
        currency: ahead.currency,
    })
}
