//! The bridge of an operator's sites (see [`crate::bridge`]): the facts read from the
//! database in one place for the site page, the economics page and the API.

use super::error::ServiceError;
use crate::bridge::{Bridge, Contract, ListedPool, Mining, SiteFacts};
use crate::power;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// One of the operator's sites' bridge as of `now` (None: it sells nothing forward and is
/// not being built). Not the operator's, or no such site: not found.
pub async fn site(
    db: &PgPool,
    operator_id: i64,
    site_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Bridge>, ServiceError> {
    let s = sqlx::query!(
        r#"select id, name, status, delivered_at, interconnect_kw, pue::float8 as "pue!",
                  hashrate_th, hashprice_usd_cents_per_ph_day, fleet_efficiency_j_th
             from site where id = $1 and operator_id = $2"#,
        site_id,
        operator_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("site"))?;
    let pools = sqlx::query!(
        "select id, kind, unit_count, node_power_w, block_kw, delivery_at
           from capacity_pool where site_id = $1 order by id",
        site_id
    )
    .fetch_all(db)
    .await?;
    let from = crate::window::ceil_hour(now) - chrono::Duration::hours(1);
    let contracts = sqlx::query!(
        r#"select r.pool_id, lower(r.during) as "start!", upper(r.during) as "end!", r.unit_count,
                  r.base_cents - r.discount_cents as "revenue!", r.state,
                  r.forward_delivery_at is not null as "forward!"
             from reservation r
            where r.site_id = $1 and r.state in ('confirmed', 'held') and upper(r.during) > $2
            order by r.id"#,
        site_id,
        from
    )
    .fetch_all(db)
    .await?;
    let late_credits_cents = sqlx::query_scalar!(
        r#"select coalesce(sum(c.amount_cents), 0)::bigint as "cents!"
             from reservation_credit c join reservation r on r.id = c.reservation_id
            where r.site_id = $1 and c.reason = 'late_delivery'"#,
        site_id
    )
    .fetch_one(db)
    .await?;
    let pool_of = |id: i64| pools.iter().find(|p| p.id == id);
    let mining = match (s.hashprice_usd_cents_per_ph_day, s.fleet_efficiency_j_th) {
        (Some(h), Some(e)) if s.hashrate_th > 0 => Some(Mining {
            hashrate_th: s.hashrate_th,
            hashprice_cents_per_ph_day: h,
            j_per_th: e,
        }),
        _ => None,
    };
    let facts = SiteFacts {
        site_id: s.id,
        site_name: s.name,
        building: s.status == "building",
        delivered_at: s.delivered_at,
        interconnect_kw: i64::from(s.interconnect_kw),
        currency: super::ledger::CURRENCY.into(),
        mining,
        pools: pools
            .iter()
            .map(|p| ListedPool {
                delivery_at: p.delivery_at,
                units: i64::from(p.unit_count),
                firm_w: power::pool_firm_w(
                    &p.kind,
                    i64::from(p.unit_count),
                    p.node_power_w,
                    p.block_kw,
                    s.pue,
                ),
            })
            .collect(),
        contracts: contracts
            .iter()
            .filter_map(|r| {
                let p = pool_of(r.pool_id)?;
                Some(Contract {
                    pool_delivery_at: p.delivery_at,
                    start: r.start,
                    end: r.end,
                    units: i64::from(r.unit_count),
                    firm_w: power::pool_firm_w(
                        &p.kind,
                        i64::from(r.unit_count),
                        p.node_power_w,
                        p.block_kw,
                        s.pue,
                    ),
                    revenue_cents: r.revenue,
                    forward: r.forward,
                    confirmed: r.state == "confirmed",
                })
            })
            .collect(),
        late_credits_cents,
    };
    Ok(Bridge::of(facts, from))
}

/// The bridges of every site of the operator that has one, by site name.
pub async fn operator(
    db: &PgPool,
    operator_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Bridge>, ServiceError> {
    let ids = sqlx::query_scalar!(
        r#"select s.id from site s
            where s.operator_id = $1
              and (s.status = 'building'
                   or exists (select 1 from reservation r
                               where r.site_id = s.id and r.forward_delivery_at is not null
                                 and r.state in ('confirmed', 'held') and upper(r.during) > $2))
            order by s.name, s.id
            limit 100"#,
        operator_id,
        now
    )
    .fetch_all(db)
    .await?;
    let mut bridges = Vec::with_capacity(ids.len());
    for id in ids {
        bridges.extend(site(db, operator_id, id, now).await?);
    }
    Ok(bridges)
}
