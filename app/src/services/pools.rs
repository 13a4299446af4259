//! Loading a pool with everything settlement needs: shape, price, terms, discounts,
//! cancellation policy, availability.

use super::error::ServiceError;
use crate::availability::Interval;
use crate::booking::Tier;
use crate::forward::ForwardTerms;
use crate::market::{InterruptibleOffer, PoolKind};
use crate::pricing::{CancellationTier, Priced, TermDiscount, UnitShape};
use crate::window::{HourWindow, Terms};
use chrono::{DateTime, Utc};
use sqlx::postgres::types::PgRange;
use sqlx::PgConnection;
use std::ops::Bound;

#[derive(Clone, Debug)]
pub struct PoolInfo {
    pub id: i64,
    pub site_id: i64,
    pub operator_id: i64,
    pub name: String,
    pub kind: PoolKind,
    pub unit_count: i64,
    pub shape: UnitShape,
    pub price_cents: i64,
    pub currency: String,
    pub terms: Terms,
    pub listed: bool,
    pub site_live: bool,
    pub discounts: Vec<TermDiscount>,
    pub cancellation: Vec<CancellationTier>,
    /// The interruptible tier, when the pool sells one.
    pub interruptible: Option<InterruptibleOffer>,
    /// The forward terms, when the pool sells ahead of its site's delivery.
    pub forward: Option<ForwardTerms>,
}

impl PoolInfo {
    /// Units free over a window, given whether the pool is on sale over all of it and how
    /// many of its units are busy then: none when it is not, otherwise those not busy.
    pub fn free_units(&self, open: bool, busy: i64) -> i64 {
        if open {
            (self.unit_count - busy).max(0)
        } else {
            0
        }
    }

    /// Whether a booking of `window` may be sold now: a pool on a live site always; on a site
    /// still being built, only forward, from the committed delivery on. PostgreSQL keeps
    /// the same rule (`reservation_forward_terms`); this says it with the date.
    pub fn check_delivery(&self, window: &HourWindow) -> Result<(), ServiceError> {
        if self.site_live {
            return Ok(());
        }
        let Some(f) = self.forward else {
            return Err(ServiceError::invalid(
                "pool_id",
                crate::forward::NOT_SOLD_BEFORE_DELIVERY,
            ));
        };
        if window.start() < f.delivery_at {
            return Err(ServiceError::invalid(
                "start",
                format!(
                    "this pool is delivered on {}; forward capacity starts then or later",
                    f.delivery_at.format("%Y-%m-%d %H:%M UTC")
                ),
            ));
        }
        Ok(())
    }

    /// The unit price of `tier`; `None` when the pool does not sell that tier.
    pub fn price_of(&self, tier: Tier) -> Option<i64> {
        match tier {
            Tier::Firm => Some(self.price_cents),
            Tier::Interruptible => self.interruptible.map(|o| o.price_cents),
        }
    }

    /// The first hour a firm booking made at `now` may take from interruptible
    /// reservations: the next whole hour plus the pool's notice period.
    pub fn preemption_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let notice = self.interruptible.map_or(0, |o| o.notice_hours);
        crate::window::ceil_hour(now) + chrono::Duration::hours(notice)
    }

    /// What `units` units of this pool are, for pricing at `unit_price_cents` (the tier's
    /// price, or the price a reservation locked).
    pub fn priced_at(&self, units: i64, unit_price_cents: i64) -> Priced {
        match self.shape {
            UnitShape::GpuNode { gpus_per_node } => Priced::Gpu {
                nodes: units,
                gpus_per_node,
                cents_per_gpu_hour: unit_price_cents,
            },
            UnitShape::PowerBlock { block_kw } => Priced::Power {
                blocks: units,
                block_kw,
                cents_per_kw_month: unit_price_cents,
            },
        }
    }

    /// "node"/"nodes" or "block"/"blocks".
    pub fn unit_word(&self, n: i64) -> &'static str {
        match (self.kind, n) {
            (PoolKind::Gpu, 1) => "node",
            (PoolKind::Gpu, _) => "nodes",
            (PoolKind::Power, 1) => "block",
            (PoolKind::Power, _) => "blocks",
        }
    }
}

/// Loads a pool; with `lock`, takes its row lock for the rest of the transaction (extensions
/// and blackouts hold it so that two changes to one pool's contracts never interleave). The
/// lock is `no key update`: new reservations only take a key-share lock on the pool (their
/// foreign key), so bookings go on while an extension or blackout holds it.
pub async fn load(
    conn: &mut PgConnection,
    pool_id: i64,
    lock: bool,
) -> Result<PoolInfo, ServiceError> {
    Ok(fetch(conn, pool_id, lock, None).await?.0)
}

/// A pool as read for one window: whether its availability covers the window and, for a
/// pool that sells interruptible hours (where a firm booking may have to preempt), how many
/// of its units are free over all of it.
pub struct WindowRead {
    pub pool: PoolInfo,
    pub open: bool,
    /// Units free over the whole window (0 when it is not on sale then), counted only for a
    /// pool that sells interruptible hours: `None` for the others.
    pub free_units: Option<i64>,
}

/// Loads a pool and, in the same round trip, whether its availability covers `w` and (see
/// [`WindowRead::free_units`]) how many of its units are free over it.
pub async fn load_with_window(
    conn: &mut PgConnection,
    pool_id: i64,
    w: &HourWindow,
) -> Result<WindowRead, ServiceError> {
    let (pool, open, busy) = fetch(conn, pool_id, false, Some(to_range(w))).await?;
    let open = open.unwrap_or(false);
    let free_units = busy.map(|busy| pool.free_units(open, busy));
    Ok(WindowRead {
        pool,
        open,
        free_units,
    })
}

/// The pool; with a window, whether it is open over it and (when counted) its busy units.
async fn fetch(
    conn: &mut PgConnection,
    pool_id: i64,
    lock: bool,
    window: Option<PgRange<DateTime<Utc>>>,
) -> Result<(PoolInfo, Option<bool>, Option<i64>), ServiceError> {
    if lock {
        sqlx::query_scalar!(
            "select id from capacity_pool where id = $1 for no key update",
            pool_id
        )
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(ServiceError::NotFound("pool"))?;
    }
    // One round trip: the pool, its site, and its discount and cancellation tiers as arrays.
    let r = sqlx::query!(
        r#"select p.id, p.site_id, s.operator_id, p.name, p.kind, p.unit_count, p.gpus_per_node, p.block_kw,
                  p.price_cents, p.currency, p.min_term_hours, p.max_term_hours, p.min_lead_hours,
                  p.interruptible_price_cents, p.interruptible_notice_hours,
                  p.listed, s.status = 'live' as "site_live!",
                  p.delivery_at, p.late_credit_bp, p.late_credit_cents_per_unit_day, p.walk_away_at,
                  coalesce(d.hours, '{}') as "discount_hours!", coalesce(d.bp, '{}') as "discount_bp!",
                  coalesce(c.hours, '{}') as "notice_hours!", coalesce(c.bp, '{}') as "refund_bp!",
                  case when $2::tstzrange is null then null else (
                      -- One window usually holds the whole range; only adjacent windows need merging.
                      exists (select 1 from availability_window aw where aw.pool_id = p.id and aw.during @> $2::tstzrange)
                      or (select coalesce(range_agg(aw.during) @> $2::tstzrange, false)
                          from availability_window aw where aw.pool_id = p.id)
                  ) end as "open?",
                  case when $2::tstzrange is not null and p.interruptible_price_cents is not null
                       then pool_busy_units(p.id, $2::tstzrange) end as "busy_units?"
           from capacity_pool p
           join site s on s.id = p.site_id
           left join lateral (
               select array_agg(min_hours order by min_hours) as hours, array_agg(discount_bp order by min_hours) as bp
               from pool_term_discount where pool_id = p.id
           ) d on true
           left join lateral (
               select array_agg(min_notice_hours order by min_notice_hours) as hours,
                      array_agg(refund_bp order by min_notice_hours) as bp
               from pool_cancellation_tier where pool_id = p.id
           ) c on true
           where p.id = $1"#,
        pool_id,
        window
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ServiceError::NotFound("pool"))?;
    let kind = PoolKind::parse(&r.kind).ok_or(ServiceError::NotFound("pool"))?;
    let shape = match kind {
        PoolKind::Gpu => UnitShape::GpuNode {
            gpus_per_node: i64::from(r.gpus_per_node.unwrap_or(1)),
        },
        PoolKind::Power => UnitShape::PowerBlock {
            block_kw: i64::from(r.block_kw.unwrap_or(1)),
        },
    };
    let discounts = r
        .discount_hours
        .iter()
        .zip(&r.discount_bp)
        .map(|(&h, &bp)| TermDiscount {
            min_hours: i64::from(h),
            discount_bp: i64::from(bp),
        })
        .collect();
    let cancellation = r
        .notice_hours
        .iter()
        .zip(&r.refund_bp)
        .map(|(&h, &bp)| CancellationTier {
            min_notice_hours: i64::from(h),
            refund_bp: i64::from(bp),
        })
        .collect();
    let pool = PoolInfo {
        id: r.id,
        site_id: r.site_id,
        operator_id: r.operator_id,
        name: r.name,
        kind,
        unit_count: i64::from(r.unit_count),
        shape,
        price_cents: r.price_cents,
        currency: r.currency,
        terms: Terms {
            min_term_hours: i64::from(r.min_term_hours),
            max_term_hours: i64::from(r.max_term_hours),
            min_lead_hours: i64::from(r.min_lead_hours),
        },
        listed: r.listed,
        site_live: r.site_live,
        discounts,
        cancellation,
        interruptible: r
            .interruptible_price_cents
            .map(|price_cents| InterruptibleOffer {
                price_cents,
                notice_hours: i64::from(r.interruptible_notice_hours),
            }),
        forward: ForwardTerms::from_columns(
            r.delivery_at,
            r.late_credit_bp,
            r.late_credit_cents_per_unit_day,
            r.walk_away_at,
        ),
    };
    Ok((pool, r.open, r.busy_units))
}

/// Whether the pool's availability windows (together) cover the whole window.
pub async fn is_open(
    conn: &mut PgConnection,
    pool_id: i64,
    w: &HourWindow,
) -> Result<bool, ServiceError> {
    let range = to_range(w);
    let open = sqlx::query_scalar!(
        r#"select coalesce(range_agg(during) @> $2::tstzrange, false) as "open!"
           from availability_window where pool_id = $1"#,
        pool_id,
        range
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(open)
}

/// Availability intervals of a pool that touch `[from, to)`.
pub async fn open_intervals(
    conn: &mut PgConnection,
    pool_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Interval>, ServiceError> {
    let range = PgRange::from(from..to);
    let rows = sqlx::query_scalar!(
        "select during from availability_window where pool_id = $1 and during && $2 order by during",
        pool_id,
        range
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().filter_map(from_range).collect())
}

/// Busy intervals per unit (ordered by unit number) that touch `[from, to)`.
pub async fn busy_by_unit(
    conn: &mut PgConnection,
    pool_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Vec<Interval>>, ServiceError> {
    let range = PgRange::from(from..to);
    let rows = sqlx::query!(
        r#"select u.ordinal, a.during as "during?"
           from capacity_unit u
           left join allocation a on a.unit_id = u.id and a.during && $2
           where u.pool_id = $1
           order by u.ordinal, a.during"#,
        pool_id,
        range
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut units: Vec<Vec<Interval>> = Vec::new();
    let mut last_ordinal = None;
    for r in rows {
        if last_ordinal != Some(r.ordinal) {
            units.push(Vec::new());
            last_ordinal = Some(r.ordinal);
        }
        if let Some(iv) = r.during.as_ref().and_then(from_range) {
            units.last_mut().expect("pushed above").push(iv);
        }
    }
    Ok(units)
}

pub fn to_range(w: &HourWindow) -> PgRange<DateTime<Utc>> {
    PgRange::from(w.start()..w.end())
}

/// A bounded `[start, end)` range as an interval (the schema allows no other kind).
pub fn from_range(r: &PgRange<DateTime<Utc>>) -> Option<Interval> {
    let start = match r.start {
        Bound::Included(s) => s,
        Bound::Excluded(s) => s,
        Bound::Unbounded => return None,
    };
    let end = match r.end {
        Bound::Excluded(e) => e,
        Bound::Included(e) => e,
        Bound::Unbounded => return None,
    };
    Some((start, end))
}
