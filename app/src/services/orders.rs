//! Standing orders: leaving a search open, cancelling it, and the worker round that fills
//! open orders when matching capacity appears (a cancellation, an expired hold, a new pool
//! or sale window, a resale listing: the round simply searches again).
//!
//! A round runs in one process at a time (a transaction-scoped advisory lock), takes the
//! open orders oldest first, and books each through [`reservations::reserve_once`] with the
//! key `standing order <id>`, so an order is booked at most once whatever dies when. While
//! an order is being filled its row is locked, so a cancellation waits and then finds it
//! filled.

use crate::booking::{BookingRequest, Tier};
use crate::market::PoolKind;
use crate::orders::{NewOrder, OrderState, StandingOrder, MAX_OPEN_ORDERS};
use crate::pricing::Quantity;
use crate::services::error::{FieldError, ServiceError};
use crate::services::search::{self, MarketQuery, SearchSort};
use crate::services::{audit, availability, pools, reservations};
use crate::window::{ceil_hour, is_whole_hour};
use chrono::{DateTime, Duration, Utc};
use sqlx::{PgConnection, PgPool};

/// The advisory lock that keeps fill rounds one at a time across processes.
pub const FILL_LOCK: i64 = 0x5249_4753_4f52_4452; // "RIGSORDR"

/// How many open orders one round looks at (oldest first); the rest wait for the next.
const ROUND_ORDERS: i64 = 200;

/// The booking key of an order's reservation. Clients' keys have no spaces, so no request
/// of theirs can take it.
fn order_key(id: i64) -> String {
    format!("standing order {id}")
}

/// One row as stored.
struct Row {
    id: i64,
    state: String,
    kind: Option<String>,
    gpu_model: Option<String>,
    quantity_kind: String,
    quantity: i64,
    hours: i32,
    earliest_start: DateTime<Utc>,
    latest_start: DateTime<Utc>,
    region: Option<String>,
    energy_source: Option<String>,
    tier: String,
    max_total_cents: Option<i64>,
    expires_at: DateTime<Utc>,
    reservation_id: Option<i64>,
    closed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    customer_id: i64,
}

impl Row {
    fn shown(self) -> Result<StandingOrder, ServiceError> {
        let corrupt = || {
            tracing::error!(order = self.id, "a standing order row the app cannot read");
            ServiceError::NotFound("standing order")
        };
        let quantity = match self.quantity_kind.as_str() {
            "gpus" => Quantity::Gpus(self.quantity),
            "kw" => Quantity::Kw(self.quantity),
            "units" => Quantity::Units(self.quantity),
            _ => return Err(corrupt()),
        };
        Ok(StandingOrder {
            id: self.id,
            state: OrderState::parse(&self.state).ok_or_else(corrupt)?,
            kind: match self.kind.as_deref() {
                Some(k) => Some(PoolKind::parse(k).ok_or_else(corrupt)?),
                None => None,
            },
            gpu_model: self.gpu_model,
            quantity,
            hours: i64::from(self.hours),
            earliest_start: self.earliest_start,
            latest_start: self.latest_start,
            region: self.region,
            energy_source: self.energy_source,
            tier: Tier::parse(&self.tier).ok_or_else(corrupt)?,
            max_total_cents: self.max_total_cents,
            expires_at: self.expires_at,
            reservation_id: self.reservation_id,
            closed_at: self.closed_at,
            created_at: self.created_at,
        })
    }
}

/// Trimmed text of at most 80 characters, `None` when empty.
fn text(field: &str, v: &Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let t = v.as_deref().map(str::trim).filter(|t| !t.is_empty())?;
    if t.chars().count() > 80 {
        errors.push(FieldError {
            field: field.into(),
            message: "at most 80 characters".into(),
        });
    }
    Some(t.to_string())
}

/// The order as it will be stored, or every field that is wrong.
fn check(o: &NewOrder, now: DateTime<Utc>) -> Result<(NewOrder, DateTime<Utc>), ServiceError> {
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.into(),
            message,
        })
    };
    let (amount, implied) = match o.quantity {
        Quantity::Gpus(n) => (n, Some(PoolKind::Gpu)),
        Quantity::Kw(n) => (n, Some(PoolKind::Power)),
        Quantity::Units(n) => (n, None),
    };
    if !(1..=100_000_000).contains(&amount) {
        bad("quantity", "ask for at least one".into());
    }
    let kind = match (o.kind, implied) {
        (Some(k), Some(i)) if k != i => {
            bad(
                "kind",
                "GPUs are sold by GPU pools and kW by power pools; the kind and the quantity disagree".into(),
            );
            Some(k)
        }
        (k, i) => k.or(i),
    };
    if !(1..=8760).contains(&o.hours) {
        bad("hours", "a duration of 1 to 8,760 hours".into());
    }
    for (field, t) in [
        ("earliest_start", o.earliest_start),
        ("latest_start", o.latest_start),
    ] {
        if !is_whole_hour(t) {
            bad(
                field,
                "a whole hour in UTC, e.g. 2026-12-01T09:00:00Z".into(),
            );
        }
    }
    if o.latest_start < o.earliest_start {
        bad(
            "latest_start",
            "the latest start must not be before the earliest".into(),
        );
    }
    if o.latest_start < ceil_hour(now) {
        bad(
            "latest_start",
            "the latest start has passed; nothing could fill this order".into(),
        );
    }
    if o.latest_start > now + Duration::days(365) {
        bad("latest_start", "at most a year ahead".into());
    }
    let expires_at = o.expires_at.unwrap_or(o.latest_start);
    if expires_at <= now {
        bad("expires_at", "the order must last into the future".into());
    } else if expires_at > o.latest_start {
        bad(
            "expires_at",
            "an order cannot outlast its latest start; leave it out to keep it until then".into(),
        );
    }
    if o.max_total_cents.is_some_and(|c| c < 1) {
        bad("max_total_cents", "a positive total in cents".into());
    }
    if kind == Some(PoolKind::Power) && o.gpu_model.as_deref().is_some_and(|m| !m.trim().is_empty())
    {
        bad("gpu_model", "power pools have no GPU model".into());
    }
    let gpu_model = text("gpu_model", &o.gpu_model, &mut errors);
    let region = text("region", &o.region, &mut errors);
    let energy_source = text("energy_source", &o.energy_source, &mut errors);
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    Ok((
        NewOrder {
            kind,
            gpu_model,
            region,
            energy_source,
            expires_at: Some(expires_at),
            ..o.clone()
        },
        expires_at,
    ))
}

/// Leaves a standing order for `customer_id`. The worker's next round looks for it.
pub async fn create(
    db: &PgPool,
    customer_id: i64,
    order: &NewOrder,
    now: DateTime<Utc>,
) -> Result<StandingOrder, ServiceError> {
    let (o, expires_at) = check(order, now)?;
    let (quantity_kind, quantity) = o.quantity.sql_parts();
    let mut tx = db.begin().await?;
    // Serialises this organization's creates, so the cap holds under concurrent requests.
    sqlx::query!(
        "select id from organization where id = $1 for update",
        customer_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let open = sqlx::query_scalar!(
        r#"select count(*) as "n!" from standing_order where customer_id = $1 and state = 'open'"#,
        customer_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if open >= MAX_OPEN_ORDERS {
        return Err(ServiceError::conflict(format!(
            "your organization has {MAX_OPEN_ORDERS} open standing orders, the most it may; cancel one first"
        )));
    }
    let id = sqlx::query_scalar!(
        r#"insert into standing_order (customer_id, kind, gpu_model, quantity_kind, quantity, hours,
                                       earliest_start, latest_start, region, energy_source, tier,
                                       max_total_cents, expires_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           returning id"#,
        customer_id,
        o.kind.map(|k| k.as_str()),
        o.gpu_model,
        quantity_kind,
        quantity,
        o.hours as i32,
        o.earliest_start,
        o.latest_start,
        o.region,
        o.energy_source,
        o.tier.as_str(),
        o.max_total_cents,
        expires_at,
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit::Event {
            organization_id: Some(customer_id),
            action: "order.created",
            object_type: "standing_order",
            object_id: Some(id),
            detail: serde_json::json!({ "expires_at": expires_at }),
        },
    )
    .await?;
    let made = one(&mut tx, Some(customer_id), id).await?;
    tx.commit().await?;
    Ok(made)
}

async fn one(
    conn: &mut PgConnection,
    customer_id: Option<i64>,
    id: i64,
) -> Result<StandingOrder, ServiceError> {
    row(conn, customer_id, id, false).await?.shown()
}

/// One order (of the customer, when given), locked for a change when `lock`.
async fn row(
    conn: &mut PgConnection,
    customer_id: Option<i64>,
    id: i64,
    lock: bool,
) -> Result<Row, ServiceError> {
    let r = if lock {
        sqlx::query_as!(
            Row,
            r#"select id, state, kind, gpu_model, quantity_kind, quantity, hours, earliest_start,
                      latest_start, region, energy_source, tier, max_total_cents, expires_at,
                      reservation_id, closed_at, created_at, customer_id
                 from standing_order where id = $1 and ($2::bigint is null or customer_id = $2)
                  for update"#,
            id,
            customer_id
        )
        .fetch_optional(&mut *conn)
        .await?
    } else {
        sqlx::query_as!(
            Row,
            r#"select id, state, kind, gpu_model, quantity_kind, quantity, hours, earliest_start,
                      latest_start, region, energy_source, tier, max_total_cents, expires_at,
                      reservation_id, closed_at, created_at, customer_id
                 from standing_order where id = $1 and ($2::bigint is null or customer_id = $2)"#,
            id,
            customer_id
        )
        .fetch_optional(&mut *conn)
        .await?
    };
    r.ok_or(ServiceError::NotFound("standing order"))
}

/// One of the customer's orders; another organization's is "not found".
pub async fn get(db: &PgPool, customer_id: i64, id: i64) -> Result<StandingOrder, ServiceError> {
    let mut conn = db.acquire().await?;
    one(&mut conn, Some(customer_id), id).await
}

/// The customer's orders, newest first, `limit` at a time after `before_id`.
pub async fn list(
    db: &PgPool,
    customer_id: i64,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<StandingOrder>, ServiceError> {
    sqlx::query_as!(
        Row,
        r#"select id, state, kind, gpu_model, quantity_kind, quantity, hours, earliest_start,
                  latest_start, region, energy_source, tier, max_total_cents, expires_at,
                  reservation_id, closed_at, created_at, customer_id
             from standing_order
            where customer_id = $1 and ($2::bigint is null or id < $2)
            order by id desc limit $3"#,
        customer_id,
        before_id,
        limit.clamp(1, 500)
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Row::shown)
    .collect()
}

/// Cancels an open order. One being filled at this moment is waited for; if it was filled
/// (even by a round that died before saying so), the answer says so instead.
pub async fn cancel(
    db: &PgPool,
    customer_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<StandingOrder, ServiceError> {
    let mut tx = db.begin().await?;
    let r = row(&mut tx, Some(customer_id), id, true).await?;
    match OrderState::parse(&r.state) {
        Some(OrderState::Open) => {}
        Some(OrderState::Filled) => {
            return Err(filled_already(r.reservation_id.unwrap_or_default()))
        }
        _ => return Err(ServiceError::conflict("this order is closed already")),
    }
    if let Some(made) = made_by(&mut tx, customer_id, id).await? {
        mark_filled(&mut tx, id, made, now).await?;
        tx.commit().await?;
        return Err(filled_already(made));
    }
    sqlx::query!(
        "update standing_order set state = 'cancelled', closed_at = $2 where id = $1",
        id,
        now
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit::Event {
            organization_id: Some(customer_id),
            action: "order.cancelled",
            object_type: "standing_order",
            object_id: Some(id),
            detail: serde_json::json!({}),
        },
    )
    .await?;
    let done = one(&mut tx, Some(customer_id), id).await?;
    tx.commit().await?;
    Ok(done)
}

/// The refusal to cancel an order that reservation `made` filled.
fn filled_already(made: i64) -> ServiceError {
    ServiceError::conflict(format!(
        "this order was filled already (reservation #{made}); cancel the reservation instead"
    ))
}

/// The reservation an order's key made, if any.
async fn made_by(
    conn: &mut PgConnection,
    customer_id: i64,
    order_id: i64,
) -> Result<Option<i64>, ServiceError> {
    Ok(sqlx::query_scalar!(
        "select id from reservation where customer_id = $1 and request_key = $2",
        customer_id,
        order_key(order_id)
    )
    .fetch_optional(&mut *conn)
    .await?)
}

async fn mark_filled(
    conn: &mut PgConnection,
    id: i64,
    reservation_id: i64,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    sqlx::query!(
        "update standing_order set state = 'filled', reservation_id = $2, closed_at = $3 where id = $1",
        id,
        reservation_id,
        now
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// False when another process was running a round (this one did nothing).
    pub ran: bool,
    pub filled: i64,
    pub expired: i64,
}

/// One round of the worker: lapses orders past their expiry, then tries every open order,
/// oldest first, against the market as it is now.
pub async fn fill_round(
    db: &PgPool,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Round, ServiceError> {
    let mut lock = db.begin().await?;
    let got = sqlx::query_scalar!(
        r#"select pg_try_advisory_xact_lock($1) as "got!""#,
        FILL_LOCK
    )
    .fetch_one(&mut *lock)
    .await?;
    if !got {
        return Ok(Round::default());
    }
    let expired = sqlx::query_scalar!(
        r#"with lapsed as (
               update standing_order set state = 'expired', closed_at = $1
                where state = 'open' and expires_at <= $1
                returning id)
           select count(*) as "n!" from lapsed"#,
        now
    )
    .fetch_one(db)
    .await?;
    let open = sqlx::query_scalar!(
        "select id from standing_order where state = 'open' order by id limit $1",
        ROUND_ORDERS
    )
    .fetch_all(db)
    .await?;
    let mut filled = 0;
    for id in open {
        match fill(db, id, fee_bp, now).await {
            Ok(true) => filled += 1,
            Ok(false) => {}
            // One order's failure does not hold up the others; the next round tries again.
            Err(e) => tracing::warn!(order = id, error = %e, "filling a standing order failed"),
        }
    }
    lock.rollback().await?;
    Ok(Round {
        ran: true,
        filled,
        expired,
    })
}

/// Tries to fill one order; `true` when it was filled. The order's row stays locked until
/// it is marked, so a cancellation waits for the outcome.
async fn fill(db: &PgPool, id: i64, fee_bp: i64, now: DateTime<Utc>) -> Result<bool, ServiceError> {
    let mut tx = db.begin().await?;
    let r = row(&mut tx, None, id, true).await?;
    if r.state != "open" || r.expires_at <= now {
        return Ok(false);
    }
    let customer_id = r.customer_id;
    let made = match made_by(&mut tx, customer_id, id).await? {
        Some(made) => Some(made),
        None => book_first_match(db, r.shown()?, customer_id, fee_bp, now).await?,
    };
    let Some(reservation_id) = made else {
        return Ok(false);
    };
    mark_filled(&mut tx, id, reservation_id, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Searches the market for the order and books the first match that fits its starts and its
/// total, cheapest total first. `None` when nothing fits now.
async fn book_first_match(
    db: &PgPool,
    o: StandingOrder,
    customer_id: i64,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Option<i64>, ServiceError> {
    let days_left = (o.latest_start - now).num_days() + 1;
    let q = MarketQuery {
        kind: o.kind,
        gpu_model: o.gpu_model.clone(),
        quantity: Some(o.quantity),
        hours: o.hours,
        start: None,
        within_days: Some(days_left.clamp(1, 365)),
        region: o.region.clone(),
        energy_source: o.energy_source.clone(),
        interconnect: None,
        max_price_cents: None,
        min_reliability_bp: None,
        tier: o.tier,
        // An order fills with capacity that exists; a forward contract is the buyer's choice.
        delivery: crate::market::Delivery::Ready,
        sort: SearchSort::TotalCost,
        limit: 100,
        offset: 0,
    };
    let hits = search::search(db, &q, fee_bp, now).await?.hits;
    let mut conn = db.acquire().await?;
    for hit in hits {
        // The search's start is the pool's earliest from now; the order may want later.
        let start = if hit.start >= o.earliest_start {
            hit.start
        } else {
            let pool = pools::load(&mut conn, hit.pool_id, false).await?;
            let from = o.earliest_start.max(hit.start);
            let horizon = (o.latest_start - from).num_days() + 1;
            match availability::find_slot(&mut conn, &pool, hit.units, o.hours, from, horizon)
                .await?
            {
                Some(s) => s,
                None => continue,
            }
        };
        if start > o.latest_start {
            continue;
        }
        let mut req = BookingRequest {
            pool_id: hit.pool_id,
            quantity: o.quantity,
            start,
            end: start + Duration::hours(o.hours),
            tier: o.tier,
            agreed_total_cents: None,
        };
        let quote = reservations::quote(db, &req, fee_bp, now).await?;
        if o.max_total_cents
            .is_some_and(|max| quote.price.total_cents > max)
        {
            continue;
        }
        // Booked at the total just checked against the order's limit, or not at all.
        req.agreed_total_cents = Some(quote.price.total_cents);
        let key = order_key(o.id);
        match reservations::reserve_once(db, customer_id, &req, &key, fee_bp, now).await {
            Ok(r) => return Ok(Some(r.id)),
            // Taken meanwhile, repriced, or not bookable on this pool's terms (its lead time,
            // its sale windows): try the next match.
            Err(
                ServiceError::Conflict { .. }
                | ServiceError::PriceChanged { .. }
                | ServiceError::Invalid(_),
            ) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}
