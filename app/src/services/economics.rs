//! The figures behind an operator's mining trade-off page: every pool of the operator
//! with its site's power and mining data and what customers booked on it.

use super::error::ServiceError;
use crate::economics::PoolEconomics;
use sqlx::PgPool;

/// The operator's pools, by site; bookings are the confirmed reservations (any time).
pub async fn pools(db: &PgPool, operator_id: i64) -> Result<Vec<PoolEconomics>, ServiceError> {
    Ok(sqlx::query_as!(
        PoolEconomics,
        r#"select s.id as site_id, s.name as site_name, s.pue::float8 as "pue!",
                  s.hashprice_usd_cents_per_ph_day as hashprice_cents_per_ph_day,
                  s.fleet_efficiency_j_th,
                  p.id as pool_id, p.name as pool_name, p.kind,
                  p.gpus_per_node::bigint as gpus_per_node, p.node_power_w::bigint as node_power_w,
                  p.block_kw::bigint as block_kw, p.price_cents,
                  coalesce(b.booked_cents, 0)::bigint as "booked_cents!",
                  coalesce(b.unit_hours, 0)::bigint as "booked_unit_hours!"
             from site s
             join capacity_pool p on p.site_id = s.id
             left join lateral (
                 select sum(r.base_cents - r.discount_cents) as booked_cents,
                        sum(r.unit_count * extract(epoch from upper(r.during) - lower(r.during)) / 3600) as unit_hours
                   from reservation r
                  where r.pool_id = p.id and r.state = 'confirmed'
             ) b on true
            where s.operator_id = $1
            order by s.name, s.id, p.name, p.id
            limit 1000"#,
        operator_id
    )
    .fetch_all(db)
    .await?)
}
