//! Read-only queries over the public market.

use super::error::ServiceError;
use super::{availability, pools};
use crate::market::{LiveTotals, Overview, PoolDetail, PoolKind, PoolListing, POOL_CHART_DAYS};
use crate::window::HourWindow;
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

/// Totals of listed capacity on live sites.
pub async fn live_count(db: &PgPool) -> Result<LiveTotals, sqlx::Error> {
    let row = sqlx::query!(
        r#"
        select
            coalesce(sum(p.unit_count::bigint * p.gpus_per_node) filter (where p.kind = 'gpu'), 0)::bigint as "gpus!",
            count(distinct s.id) as "sites!",
            coalesce(sum(p.unit_count::bigint * p.block_kw) filter (where p.kind = 'power'), 0)::bigint as "power_kw!"
        from capacity_pool p
        join site s on s.id = p.site_id
        where p.listed and s.status = 'live'
        "#
    )
    .fetch_one(db)
    .await?;
    Ok(LiveTotals {
        gpus: row.gpus,
        sites: row.sites,
        power_kw: row.power_kw,
    })
}

/// One listed pool with its site, as the listing queries read it.
struct ListingRow {
    id: i64,
    name: String,
    kind: String,
    unit_count: i32,
    gpu_model: Option<String>,
    gpus_per_node: Option<i32>,
    gpu_memory_gb: Option<i32>,
    interconnect: Option<String>,
    block_kw: Option<i32>,
    redundancy: Option<String>,
    pool_cooling: Option<String>,
    price_cents: i64,
    currency: String,
    interruptible_price_cents: Option<i64>,
    interruptible_notice_hours: i32,
    site_name: String,
    country: String,
    region: String,
    grid_region: String,
    energy_source: String,
    site_status: String,
    sla_promise_bp: i32,
    sla_below_bp: Vec<i32>,
    sla_credit_bp: Vec<i32>,
    sold_unit_hours: i64,
    lost_unit_hours: i64,
    delivery_at: Option<DateTime<Utc>>,
    late_credit_bp: Option<i32>,
    late_credit_cents_per_unit_day: Option<i64>,
    walk_away_at: Option<DateTime<Utc>>,
}

/// The overview: headline counts and every listed pool, cheapest first within each kind.
pub async fn overview(db: &PgPool) -> Result<Overview, sqlx::Error> {
    let live = live_count(db).await?;
    let rows = sqlx::query_as!(
        ListingRow,
        r#"
        select
            p.id, p.name, p.kind, p.unit_count, p.gpu_model, p.gpus_per_node, p.gpu_memory_gb,
            p.interconnect, p.block_kw, p.redundancy, p.cooling as pool_cooling,
            p.price_cents, p.currency, p.interruptible_price_cents, p.interruptible_notice_hours,
            s.name as site_name, s.country, s.region, s.grid_region, s.energy_source,
            s.status as site_status, p.sla_promise_bp, p.sla_below_bp, p.sla_credit_bp,
            coalesce(rel.sold_unit_hours, 0) as "sold_unit_hours!",
            coalesce(rel.lost_unit_hours, 0) as "lost_unit_hours!",
            p.delivery_at, p.late_credit_bp, p.late_credit_cents_per_unit_day, p.walk_away_at
        from capacity_pool p
        join site s on s.id = p.site_id
        left join pool_reliability rel on rel.pool_id = p.id
        where p.listed
        order by p.kind, p.price_cents, p.id
        "#
    )
    .fetch_all(db)
    .await?;
    let pools = rows.into_iter().filter_map(to_listing).collect();
    Ok(Overview { live, pools })
}

/// Listed pools in id order, `limit` at a time after `after_id`; with `only`, just that pool.
pub async fn listings(
    db: &PgPool,
    after_id: Option<i64>,
    only: Option<i64>,
    limit: i64,
) -> Result<Vec<PoolListing>, sqlx::Error> {
    let rows = sqlx::query_as!(
        ListingRow,
        r#"
        select
            p.id, p.name, p.kind, p.unit_count, p.gpu_model, p.gpus_per_node, p.gpu_memory_gb,
            p.interconnect, p.block_kw, p.redundancy, p.cooling as pool_cooling,
            p.price_cents, p.currency, p.interruptible_price_cents, p.interruptible_notice_hours,
            s.name as site_name, s.country, s.region, s.grid_region, s.energy_source,
            s.status as site_status, p.sla_promise_bp, p.sla_below_bp, p.sla_credit_bp,
            coalesce(rel.sold_unit_hours, 0) as "sold_unit_hours!",
            coalesce(rel.lost_unit_hours, 0) as "lost_unit_hours!",
            p.delivery_at, p.late_credit_bp, p.late_credit_cents_per_unit_day, p.walk_away_at
        from capacity_pool p
        join site s on s.id = p.site_id
        left join pool_reliability rel on rel.pool_id = p.id
        where p.listed and ($1::bigint is null or p.id > $1) and ($2::bigint is null or p.id = $2)
        order by p.id
        limit $3
        "#,
        after_id,
        only,
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().filter_map(to_listing).collect())
}

fn to_listing(r: ListingRow) -> Option<PoolListing> {
    let kind = PoolKind::parse(&r.kind)?;
    let (spec, gpus, power_kw) = match kind {
        PoolKind::Gpu => {
            let per_node = r.gpus_per_node.unwrap_or(0);
            let spec = format!(
                "{} × {} {} GB · {}",
                per_node,
                r.gpu_model.as_deref().unwrap_or("GPU"),
                r.gpu_memory_gb.unwrap_or(0),
                interconnect_label(r.interconnect.as_deref().unwrap_or(""))
            );
            (
                spec,
                Some(i64::from(r.unit_count) * i64::from(per_node)),
                None,
            )
        }
        PoolKind::Power => {
            let block = r.block_kw.unwrap_or(0);
            let spec = format!(
                "{} kW blocks · {} · {}",
                block,
                r.redundancy.as_deref().unwrap_or("N"),
                r.pool_cooling.as_deref().unwrap_or("air")
            );
            (spec, None, Some(i64::from(r.unit_count) * i64::from(block)))
        }
    };
    Some(PoolListing {
        pool_id: r.id,
        pool_name: r.name,
        kind,
        site_name: r.site_name,
        country: r.country,
        region: r.region,
        grid_region: r.grid_region,
        energy_source: r.energy_source,
        site_live: r.site_status == "live",
        spec,
        unit_count: r.unit_count,
        gpus,
        power_kw,
        price_cents: r.price_cents,
        currency: r.currency,
        interruptible: r.interruptible_price_cents.map(|price_cents| {
            crate::market::InterruptibleOffer {
                price_cents,
                notice_hours: i64::from(r.interruptible_notice_hours),
            }
        }),
        sla: crate::incidents::SlaTerms::from_columns(
            r.sla_promise_bp,
            &r.sla_below_bp,
            &r.sla_credit_bp,
        ),
        reliability: crate::incidents::Reliability {
            sold_unit_hours: r.sold_unit_hours,
            lost_unit_hours: r.lost_unit_hours,
        },
        // Terms left on a pool whose site went live no longer apply to new bookings.
        forward: crate::forward::ForwardTerms::from_columns(
            r.delivery_at,
            r.late_credit_bp,
            r.late_credit_cents_per_unit_day,
            r.walk_away_at,
        )
        .filter(|_| r.site_status != "live"),
    })
}

fn interconnect_label(code: &str) -> &str {
    match code {
        "infiniband" => "InfiniBand",
        "roce" => "RoCE",
        "ethernet" => "Ethernet",
        other => other,
    }
}

/// What a pool's page shows: the listing, its terms, its site's facts and its free units
/// over the next [`POOL_CHART_DAYS`] days from the next whole hour. "Not found" for a pool
/// that is not listed.
pub async fn pool_detail(
    db: &PgPool,
    id: i64,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<PoolDetail, ServiceError> {
    let listing = listings(db, None, Some(id), 1)
        .await?
        .pop()
        .ok_or(ServiceError::NotFound("pool"))?;
    let mut conn = db.acquire().await?;
    let pool = pools::load(&mut conn, id, false).await?;
    let site = sqlx::query!(
        "select pue, cooling, interconnect_kw from site where id = $1",
        pool.site_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let from = crate::window::ceil_hour(now);
    let to = from + Duration::days(POOL_CHART_DAYS);
    let range = HourWindow::new(from, to)?;
    let steps = availability::timeline(&mut conn, &pool, &range).await?;
    Ok(PoolDetail {
        listing,
        shape: pool.shape,
        terms: pool.terms,
        discounts: pool.discounts,
        cancellation: pool.cancellation,
        fee_bp,
        pue: site.pue,
        cooling: site.cooling,
        interconnect_kw: i64::from(site.interconnect_kw),
        from,
        to,
        steps,
    })
}
