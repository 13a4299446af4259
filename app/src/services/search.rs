//! Market search across every listed pool on live sites and, from their delivery, forward
//! pools on sites being built: filters, a window (or "earliest start within N days"),
//! sorting, and each hit priced exactly as a quote would be.

use super::availability::find_slot;
use super::error::ServiceError;
use super::pools;
use crate::booking::Tier;
use crate::incidents::Reliability;
use crate::market::PoolKind;
use crate::pricing::{self, Quantity, TermDiscount, UnitShape};
use crate::window::{ceil_hour, HourWindow};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub use crate::market::{SearchHit, SearchSort};
use sqlx::PgPool;

/// How many pools "earliest start" mode examines at most (cheapest first): each needs its
/// own look at the pool's bookings.
pub const EARLIEST_MODE_CANDIDATES: i64 = 300;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarketQuery {
    pub kind: Option<PoolKind>,
    pub gpu_model: Option<String>,
    /// GPUs or kW (or whole units); default one unit.
    pub quantity: Option<Quantity>,
    /// Duration of the reservation in hours.
    pub hours: i64,
    /// Window mode: start exactly here. Otherwise "earliest start within `within_days`".
    pub start: Option<DateTime<Utc>>,
    pub within_days: Option<i64>,
    /// Matches country code, region or grid region (case-insensitive).
    pub region: Option<String>,
    /// Matches part of the energy source, e.g. "hydro".
    pub energy_source: Option<String>,
    /// GPU fabric: infiniband, roce or ethernet.
    pub interconnect: Option<String>,
    /// Highest unit price (per GPU-hour or per kW-month) in cents, of the tier asked for.
    pub max_price_cents: Option<i64>,
    /// Only pools whose reliability score (the delivered share of the unit-hours sold over
    /// the last 90 days) is at least this, in basis points; pools with no history yet are
    /// left out when it is set.
    #[serde(default)]
    pub min_reliability_bp: Option<i64>,
    /// `Interruptible`: only pools that sell that tier, priced at it. `Firm` (the default):
    /// every pool at its firm price.
    #[serde(default)]
    pub tier: Tier,
    /// Ready capacity, forward capacity (from its delivery), or both (the default).
    #[serde(default)]
    pub delivery: crate::market::Delivery,
    pub sort: SearchSort,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// Whether another page follows (`offset + limit`).
    pub has_more: bool,
}

/// A text filter as the queries compare it: trimmed, lower case, and none when empty.
pub(crate) fn opt_text(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| v.trim().to_lowercase())
        .filter(|v| !v.is_empty())
}

/// One row of the candidate query.
#[derive(sqlx::FromRow)]
struct Candidate {
    id: i64,
    name: String,
    kind: String,
    gpu_model: Option<String>,
    gpus_per_node: Option<i32>,
    block_kw: Option<i32>,
    interconnect: Option<String>,
    price_cents: i64,
    currency: String,
    min_lead_hours: i32,
    site_name: String,
    country: String,
    region: String,
    grid_region: String,
    energy_source: String,
    need: i64,
    sold_unit_hours: i64,
    lost_unit_hours: i64,
    delivery_at: Option<DateTime<Utc>>,
    late_credit_bp: Option<i32>,
    late_credit_cents_per_unit_day: Option<i64>,
    walk_away_at: Option<DateTime<Utc>>,
    /// The pool's term discounts, as two arrays in step (least hours first).
    discount_min_hours: Vec<i32>,
    discount_bp: Vec<i32>,
}

impl Candidate {
    fn term_discounts(&self) -> Vec<TermDiscount> {
        self.discount_min_hours
            .iter()
            .zip(&self.discount_bp)
            .map(|(&min_hours, &bp)| TermDiscount {
                min_hours: i64::from(min_hours),
                discount_bp: i64::from(bp),
            })
            .collect()
    }
}

/// Where a search's hits start: every one at the window's start, or each at its pool's
/// earliest free slot, looked up on the connection held for the search.
enum Starts {
    At(DateTime<Utc>),
    Earliest(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

pub async fn search(
    db: &PgPool,
    q: &MarketQuery,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<SearchPage, ServiceError> {
    if q.hours < 1 || q.hours > 24 * 365 * 5 {
        return Err(ServiceError::invalid(
            "hours",
            "a duration between 1 hour and 5 years",
        ));
    }
    let window = match q.start {
        Some(start) => Some(HourWindow::starting_at(start, q.hours)?),
        None => None,
    };
    let within_days = q.within_days.unwrap_or(30);
    if !(1..=365).contains(&within_days) {
        return Err(ServiceError::invalid(
            "within_days",
            "between 1 and 365 days",
        ));
    }
    if q.min_reliability_bp
        .is_some_and(|r| !(0..=10_000).contains(&r))
    {
        return Err(ServiceError::invalid(
            "min_reliability",
            "a reliability between 0 and 100 percent",
        ));
    }
    if q.max_price_cents.is_some_and(|p| p < 1) {
        return Err(ServiceError::invalid(
            "max_price_cents",
            "a positive price in cents",
        ));
    }
    let (quantity_kind, amount) = q.quantity.unwrap_or(Quantity::Units(1)).sql_parts();
    if !(1..=100_000_000).contains(&amount) {
        return Err(ServiceError::invalid("quantity", "ask for at least one"));
    }
    let kind = match (q.kind, q.quantity) {
        (Some(k), _) => Some(k),
        (None, Some(Quantity::Gpus(_))) => Some(PoolKind::Gpu),
        (None, Some(Quantity::Kw(_))) => Some(PoolKind::Power),
        _ => None,
    };
    let limit = q.limit.clamp(1, 100);
    let offset = q.offset.clamp(0, 10_000);
    let sort = match q.sort {
        SearchSort::Price | SearchSort::EarliestStart => "price",
        SearchSort::TotalCost => "total",
        SearchSort::Reliability => "reliability",
    };
    // Window mode asks the database for one page (plus one row, to know if more follow);
    // earliest mode needs every candidate's earliest start, so it looks at a bounded set.
    let (sql_limit, sql_offset) = match window {
        Some(_) => (limit + 1, offset),
        None => (EARLIEST_MODE_CANDIDATES, 0),
    };
    let range = window.as_ref().map(pools::to_range);

    // The inner query applies the cheap filters and orders the candidates; `offset 0` keeps
    // PostgreSQL from pushing the availability test inside, so the outer query tests pools
    // in order and stops as soon as the page is full instead of testing every pool.
    // Sent unnamed (`query_as` with `persistent(false)`, as `resale::offers`): each call is
    // planned for its values. The filters are optional (`$n is null or ...`), so a plan
    // reused for any values could start from no index; PostgreSQL picks between the two by
    // estimated cost, and with the model statistic it turned to the reused plan for the
    // offers query (BENCHMARKS.md, 2026-12-04). One more round trip, no reused plan.
    let rows: Vec<Candidate> = sqlx::query_as(
        r#"
        select c.id, pd.name, pd.kind,
               pd.gpu_model, pd.gpus_per_node, pd.block_kw, pd.interconnect,
               c.price_cents, pd.currency, pd.min_lead_hours,
               sd.name as site_name, sd.country, sd.region,
               sd.grid_region, sd.energy_source, c.need,
               c.sold_unit_hours, c.lost_unit_hours,
               c.delivery_at, c.late_credit_bp, c.late_credit_cents_per_unit_day, c.walk_away_at,
               -- The page's pools' discount tiers, read with them (no second query).
               coalesce(d.min_hours, '{}') as discount_min_hours, coalesce(d.bp, '{}') as discount_bp
        from (
            -- Only what the filters, the order and the availability test need: every
            -- candidate of a model (thousands) is sorted, so its row is kept narrow; the
            -- names and the place are read below for the page's rows only.
            select p.id, p.unit_count, t.price_cents, n.need,
                   coalesce(rel.sold_unit_hours, 0) as sold_unit_hours,
                   coalesce(rel.lost_unit_hours, 0) as lost_unit_hours,
                   -- Forward terms only while the site is being built (null once live).
                   f.delivery_at, f.late_credit_bp, f.late_credit_cents_per_unit_day, f.walk_away_at,
                   -- The order's keys, one per sort (null under the others).
                   -- Most reliable first; no history yet last.
                   case when $13 = 'reliability' then
                       coalesce(greatest(rel.sold_unit_hours - rel.lost_unit_hours, 0) * 10000 / nullif(rel.sold_unit_hours, 0), -1)
                   end as reliability_key,
                   case when $13 = 'total' then
                       -- The total before rounding: base × (1 − best discount); the fee is
                       -- proportional. The discount is read from the pool's row, not by a
                       -- subquery per candidate (migration 20261224000100).
                       (case when p.kind = 'gpu' then n.need * p.gpus_per_node * $7::bigint * t.price_cents
                             else n.need * p.block_kw * t.price_cents * $7::bigint / 730.0 end)::numeric
                       * (10000 - pool_term_discount_bp(p, $7))
                   end as total_key
            from capacity_pool p
            join site s on s.id = p.site_id
            left join pool_reliability rel on rel.pool_id = p.id
            cross join lateral (
                select (case
                    when $11 = 'units' then $12::bigint
                    when $11 = 'gpus' and p.kind = 'gpu' then ($12::bigint + p.gpus_per_node - 1) / p.gpus_per_node
                    when $11 = 'kw' and p.kind = 'power' then ($12::bigint + p.block_kw - 1) / p.block_kw
                end)::bigint as need
            ) n
            cross join lateral (
                select case when $15 = 'interruptible' then p.interruptible_price_cents
                            else p.price_cents end as price_cents
            ) t
            -- Computed in the row (not a lateral sub-select, which cost a join node per pool).
            cross join lateral (
                select case when s.status = 'building' then p.delivery_at end as delivery_at,
                       case when s.status = 'building' then p.late_credit_bp end as late_credit_bp,
                       case when s.status = 'building' then p.late_credit_cents_per_unit_day end
                           as late_credit_cents_per_unit_day,
                       case when s.status = 'building' then p.walk_away_at end as walk_away_at
            ) f
            -- Live sites sell ready capacity; sites being built only forward, from delivery.
            where p.listed and (s.status = 'live' or f.delivery_at is not null)
              and ($17::text = 'any' or ($17 = 'forward') = (f.delivery_at is not null))
              and ($9::tstzrange is null or f.delivery_at is null or lower($9::tstzrange) >= f.delivery_at)
              and t.price_cents is not null
              and n.need is not null and n.need <= p.unit_count
              and ($1::text is null or p.kind = $1)
              and ($2::text is null or lower(p.gpu_model) = $2)
              and ($3::text is null or lower(s.country) = $3 or lower(s.region) = $3 or lower(s.grid_region) = $3)
              and ($4::text is null or strpos(lower(s.energy_source), $4) > 0)
              and ($5::text is null or p.interconnect = $5)
              and ($6::bigint is null or t.price_cents <= $6)
              and p.min_term_hours <= $7 and p.max_term_hours >= $7
              and ($9::tstzrange is null or lower($9::tstzrange) >= $10::timestamptz + make_interval(hours => p.min_lead_hours))
              and ($16::bigint is null or (rel.sold_unit_hours > 0
                   and greatest(rel.sold_unit_hours - rel.lost_unit_hours, 0) * 10000 / rel.sold_unit_hours >= $16))
              -- Every unit busy at some hour of the window, as the database last summarised
              -- it (pool_full, at the pool's present size): no booking fits, unless an
              -- allocation freed there since. The set is read once, by the summary's index,
              -- and each candidate looked up in it (a hashed subplan), not read per pool.
              and (p.id, p.unit_count) not in (
                    select pf.pool_id, pf.unit_count from pool_full pf
                     where pf.full_during && $9::tstzrange
                       and not exists (select 1 from pool_occupancy_change ch
                                        where ch.freed and ch.pool_id = pf.pool_id and ch.during && $9::tstzrange))
            order by reliability_key desc, total_key, t.price_cents, p.id
            offset 0
        ) c
        join capacity_pool pd on pd.id = c.id
        join site sd on sd.id = pd.site_id
        left join lateral (
            select array_agg(d.min_hours order by d.min_hours) as min_hours,
                   array_agg(d.discount_bp order by d.min_hours) as bp
              from pool_term_discount d where d.pool_id = c.id
        ) d on true
        where $9::tstzrange is null or (
            exists (select 1 from availability_window aw where aw.pool_id = c.id and aw.during @> $9::tstzrange)
            or (select coalesce(range_agg(aw.during) @> $9::tstzrange, false) from availability_window aw where aw.pool_id = c.id)
        ) and c.unit_count - (select b.units from pool_busy(c.id, $9::tstzrange) b) >= c.need
        -- The candidates' order again: without it the page follows whichever side the
        -- planner puts first in the joins above (with a handful of pools it read `pd` first,
        -- and a page sorted by total came out in the pools' order). The keys are asked for
        -- under the same `$13` tests as inside: planned for its values, the key of another
        -- sort is a null constant, which PostgreSQL leaves out of the inner order, and must
        -- leave out here too to see that the candidates already come in this order. Asked
        -- for as plain columns, it sorted every candidate again, availability test and all
        -- (172 ms instead of 14 on the generated market).
        order by case when $13 = 'reliability' then c.reliability_key end desc,
                 case when $13 = 'total' then c.total_key end,
                 c.price_cents, c.id
        limit $8 offset $14
        "#,
    )
    .bind(kind.map(PoolKind::as_str))
    .bind(opt_text(&q.gpu_model))
    .bind(opt_text(&q.region))
    .bind(opt_text(&q.energy_source))
    .bind(opt_text(&q.interconnect))
    .bind(q.max_price_cents)
    .bind(q.hours as i32)
    .bind(sql_limit)
    .bind(range)
    .bind(now)
    .bind(quantity_kind)
    .bind(amount)
    .bind(sort)
    .bind(sql_offset)
    .bind(q.tier.as_str())
    .bind(q.min_reliability_bp)
    .bind(q.delivery.as_str())
    .persistent(false)
    .fetch_all(db)
    .await?;

    let mut hits = Vec::with_capacity(rows.len());
    // Window mode starts every hit at the window's start and needs no connection: taking one
    // from the pool would cost a round trip to check it for nothing. Earliest mode looks up
    // each candidate's first free slot on one connection.
    let mut starts = match &window {
        Some(w) => Starts::At(w.start()),
        None => Starts::Earliest(db.acquire().await?),
    };
    for c in rows {
        let Some(pool_kind) = PoolKind::parse(&c.kind) else {
            continue;
        };
        let shape = match pool_kind {
            PoolKind::Gpu => UnitShape::GpuNode {
                gpus_per_node: i64::from(c.gpus_per_node.unwrap_or(1)),
            },
            PoolKind::Power => UnitShape::PowerBlock {
                block_kw: i64::from(c.block_kw.unwrap_or(1)),
            },
        };
        // The same rounding rule as quotes, for the note ("20 GPUs rounded up to ...").
        let Ok(need) = pricing::units_for(shape, q.quantity.unwrap_or(Quantity::Units(1))) else {
            continue;
        };
        debug_assert_eq!(need.units, c.need);
        let start = match &mut starts {
            Starts::At(start) => *start,
            Starts::Earliest(conn) => {
                let earliest_allowed =
                    ceil_hour(now + Duration::hours(i64::from(c.min_lead_hours)))
                        .max(c.delivery_at.unwrap_or(now));
                let pool = pools::load(conn, c.id, false).await?;
                match find_slot(
                    conn,
                    &pool,
                    need.units,
                    q.hours,
                    earliest_allowed,
                    within_days,
                )
                .await?
                {
                    Some(s) if s <= now + Duration::days(within_days) => s,
                    _ => continue,
                }
            }
        };
        let priced = match shape {
            UnitShape::GpuNode { gpus_per_node } => pricing::Priced::Gpu {
                nodes: need.units,
                gpus_per_node,
                cents_per_gpu_hour: c.price_cents,
            },
            UnitShape::PowerBlock { block_kw } => pricing::Priced::Power {
                blocks: need.units,
                block_kw,
                cents_per_kw_month: c.price_cents,
            },
        };
        let price = pricing::price(priced, q.hours, &c.term_discounts(), fee_bp);
        hits.push(SearchHit {
            pool_id: c.id,
            pool_name: c.name,
            kind: pool_kind,
            site_name: c.site_name,
            country: c.country,
            region: c.region,
            grid_region: c.grid_region,
            energy_source: c.energy_source,
            gpu_model: c.gpu_model,
            interconnect: c.interconnect,
            unit_price_cents: c.price_cents,
            currency: c.currency,
            units: need.units,
            note: need.note,
            start,
            end: start + Duration::hours(q.hours),
            price,
            tier: q.tier,
            reliability: Reliability {
                sold_unit_hours: c.sold_unit_hours,
                lost_unit_hours: c.lost_unit_hours,
            },
            forward: crate::forward::ForwardTerms::from_columns(
                c.delivery_at,
                c.late_credit_bp,
                c.late_credit_cents_per_unit_day,
                c.walk_away_at,
            ),
        });
    }
    if window.is_some() {
        let has_more = hits.len() as i64 > limit;
        hits.truncate(limit as usize);
        return Ok(SearchPage { hits, has_more });
    }
    match q.sort {
        SearchSort::Price => hits.sort_by_key(|h| (h.unit_price_cents, h.start, h.pool_id)),
        SearchSort::EarliestStart => hits.sort_by_key(|h| (h.start, h.unit_price_cents, h.pool_id)),
        SearchSort::TotalCost => hits.sort_by_key(|h| (h.price.total_cents, h.start, h.pool_id)),
        SearchSort::Reliability => hits.sort_by_key(|h| {
            (
                std::cmp::Reverse(h.reliability.share_bp().unwrap_or(-1)),
                h.unit_price_cents,
                h.pool_id,
            )
        }),
    }
    let has_more = hits.len() > (offset + limit) as usize;
    let hits = hits
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    Ok(SearchPage { hits, has_more })
}

/// Pools whose sold-out summary one refresh round folds in at most; a backlog (the first
/// round after the summary is created, or a sold-out window that took a whole model) takes
/// several rounds, and search is exact meanwhile, only slower.
pub const OCCUPANCY_POOLS_PER_ROUND: i32 = 2_000;

/// Folds the allocations changed since the last round into the per-pool sold-out summary
/// that search reads (a job, every second; the database runs one round at a time). Returns
/// the number of pools refreshed.
pub async fn refresh_occupancy(db: &PgPool) -> Result<i64, ServiceError> {
    Ok(sqlx::query_scalar!(
        r#"select refresh_pool_occupancy($1) as "n!""#,
        OCCUPANCY_POOLS_PER_ROUND
    )
    .fetch_one(db)
    .await? as i64)
}
