//! Quotes, reservations, cancellations and extensions: the settlement of contracts
//! against a pool's availability.
//!
//! Settlement happens in PostgreSQL, whichever server process runs the request: units are
//! chosen under row locks (see [`settlement::allocate`]) and the exclusion constraint on
//! `allocation` has the last word. A transaction that loses a race (SQLSTATE 23P01, 40001,
//! 40P01) is retried and, if it keeps losing, answered as a conflict; never an error 500,
//! never a partial reservation.

use super::availability::{self, DEFAULT_HORIZON_DAYS};
use super::error::ServiceError;
use super::pools::{self, PoolInfo};
use super::settlement::{self, AllocateError, AllocationOwner};
use crate::booking::{BookingRequest, CancelPreview, Quote, Reservation};
use crate::pricing::{self, PriceBreakdown};
use crate::window::{HourWindow, ReservationState};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// Each retry follows another transaction's commit on the same units, so retries always
/// make progress; the cap only bounds the worst case before answering "conflict".
const MAX_ATTEMPTS: u32 = 16;

/// A validated request: the pool, the window and the whole units it needs.
struct Checked {
    pool: PoolInfo,
    window: HourWindow,
    units: i64,
    note: Option<String>,
}

async fn check_request(
    conn: &mut PgConnection,
    req: &BookingRequest,
    now: DateTime<Utc>,
) -> Result<Checked, ServiceError> {
    let window = HourWindow::new(req.start, req.end)?;
    let (pool, open) = pools::load_with_window(conn, req.pool_id, &window).await?;
    if !pool.listed {
        return Err(ServiceError::NotFound("pool"));
    }
    pool.terms.check(&window, now)?;
    let need = pricing::units_for(pool.shape, req.quantity)?;
    if need.units > pool.unit_count {
        return Err(ServiceError::invalid(
            "quantity",
            format!(
                "this pool has {} {} in all; ask for at most that many",
                pool.unit_count,
                pool.unit_word(pool.unit_count)
            ),
        ));
    }
    if !open {
        return Err(ServiceError::invalid(
            "window",
            "the pool is not on sale for that whole window; see its availability for open dates",
        ));
    }
    Ok(Checked {
        pool,
        window,
        units: need.units,
        note: need.note,
    })
}

/// The exact price of a request with its breakdown, and whether it fits right now.
pub async fn quote(
    db: &PgPool,
    req: &BookingRequest,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Quote, ServiceError> {
    let mut conn = db.acquire().await?;
    let c = check_request(&mut conn, req, now).await?;
    let price = pricing::price(
        c.pool.priced(c.units),
        c.window.hours(),
        &c.pool.discounts,
        fee_bp,
    );
    let free_units = availability::free_units(&mut conn, &c.pool, &c.window).await?;
    let next_start = if free_units < c.units {
        availability::find_slot(
            &mut conn,
            &c.pool,
            c.units,
            c.window.hours(),
            c.window.start(),
            DEFAULT_HORIZON_DAYS,
        )
        .await?
    } else {
        None
    };
    Ok(Quote {
        pool_id: c.pool.id,
        units: c.units,
        note: c.note,
        start: c.window.start(),
        end: c.window.end(),
        hours: c.window.hours(),
        currency: c.pool.currency.clone(),
        unit_price_cents: c.pool.price_cents,
        price,
        free_units,
        next_start,
    })
}

/// Only organizations that buy capacity may reserve it.
async fn require_customer(conn: &mut PgConnection, org_id: i64) -> Result<(), ServiceError> {
    let kind = sqlx::query_scalar!("select kind from organization where id = $1", org_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(ServiceError::NotFound("organization"))?;
    if kind == "operator" {
        return Err(ServiceError::Forbidden(
            "this organization is registered as an operator only; reserving capacity needs a customer organization".into(),
        ));
    }
    Ok(())
}

/// Reserves the request for `customer_id`, all or nothing, at the price of this moment.
///
/// The common case takes two round trips: read the pool, then one statement ([`book`])
/// committed on its own. When that statement cannot take every unit (some are free but
/// held by unfinished transactions, or there are too few), the database refuses its commit
/// (the `reservation_fully_allocated` constraint trigger) and [`try_reserve`] settles the
/// request exactly, waiting for held units and naming the next window that fits.
pub async fn reserve(
    db: &PgPool,
    customer_id: i64,
    req: &BookingRequest,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    reserve_keyed(db, customer_id, req, None, fee_bp, now).await
}

/// Reserves as [`reserve`] does, at most once per `request_key` of the organization (the
/// API's `Idempotency-Key`). The key is written with the reservation by the same statement,
/// so a retry after a lost answer gets the reservation the first attempt committed, even
/// when no process heard that commit's acknowledgement, instead of booking twice or being
/// refused by its own first booking.
pub async fn reserve_once(
    db: &PgPool,
    customer_id: i64,
    req: &BookingRequest,
    request_key: &str,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    if let Some(made) = made_for_key(db, customer_id, request_key, now).await? {
        return Ok(made);
    }
    reserve_keyed(db, customer_id, req, Some(request_key), fee_bp, now).await
}

async fn reserve_keyed(
    db: &PgPool,
    customer_id: i64,
    req: &BookingRequest,
    key: Option<&str>,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    {
        let mut conn = db.acquire().await?;
        let c = check_request(&mut conn, req, now).await?;
        let p = price_of(&c, fee_bp);
        match book(&mut conn, &c, &p, customer_id, key).await {
            Ok(Some(b)) if b.allocated == c.units => return Ok(booked(c, p, customer_id, b, now)),
            Ok(Some(_)) => {} // unreachable: the trigger refuses a partial commit
            Ok(None) => {
                require_customer(&mut conn, customer_id).await?;
                return Err(ServiceError::conflict(
                    "the organization changed while booking; please try again",
                ));
            }
            Err(e) => match key_taken(&e, key) {
                Some(key) => return already_made(db, customer_id, key, now).await,
                None if is_partial_or_raced(&e) => {}
                None => return Err(e.into()),
            },
        }
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_reserve(db, customer_id, req, key, fee_bp, now).await {
            Err(ServiceError::Unavailable(e))
                if super::error::is_retryable(&e) && attempt < MAX_ATTEMPTS =>
            {
                continue
            }
            other => return other,
        }
    }
}

/// The reservation an earlier request with `key` made, if one did.
async fn made_for_key(
    db: &PgPool,
    customer_id: i64,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<Reservation>, ServiceError> {
    let id = sqlx::query_scalar!(
        "select id from reservation where customer_id = $1 and request_key = $2",
        customer_id,
        key
    )
    .fetch_optional(db)
    .await?;
    match id {
        Some(id) => get(db, customer_id, id, now).await.map(Some),
        None => Ok(None),
    }
}

/// The answer when the booking statement met the key's reservation, committed by a request
/// with the same key in the meantime.
async fn already_made(
    db: &PgPool,
    customer_id: i64,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    made_for_key(db, customer_id, key, now)
        .await?
        .ok_or_else(|| {
            ServiceError::conflict("a request with this key is being booked; please retry")
        })
}

/// `key`, when `e` says a reservation with it exists already.
fn key_taken<'k>(e: &sqlx::Error, key: Option<&'k str>) -> Option<&'k str> {
    key.filter(|_| super::error::refusal(e) == Some(super::error::Refusal::RequestKeyTaken))
}

fn price_of(c: &Checked, fee_bp: i64) -> PriceBreakdown {
    pricing::price(
        c.pool.priced(c.units),
        c.window.hours(),
        &c.pool.discounts,
        fee_bp,
    )
}

/// What [`book`] wrote.
struct Booked {
    id: i64,
    created_at: DateTime<Utc>,
    allocated: i64,
}

/// Inserts the reservation and, in the same statement, allocates the units free in this
/// statement's snapshot, lowest numbers first (as [`settlement::allocate`] chooses them),
/// passing over units another booking has locked at this moment.
///
/// The lock is what keeps concurrent bookings apart. Without it two bookings of
/// overlapping windows may pick the same unit; an exclusion constraint enters each row in
/// its index before checking it, so each then waits for the other, and PostgreSQL only
/// breaks the cycle after `deadlock_timeout` (a second), which under 32 or more concurrent
/// clients collapsed throughput. With `skip locked` they take different units,
/// or the later one comes up short and settles on the exact path. A unit taken by a
/// transaction that committed after this statement's snapshot still fails the exclusion
/// constraint (23P01), which also goes to the exact path. `None` when the organization may
/// not reserve (only buyers of capacity may).
async fn book(
    conn: &mut PgConnection,
    c: &Checked,
    p: &PriceBreakdown,
    customer_id: i64,
    key: Option<&str>,
) -> Result<Option<Booked>, sqlx::Error> {
    let range = pools::to_range(&c.window);
    // The audit event is written by the same statement: the booking commits with it or not.
    let (actor_user, actor_key) = super::audit::current_ids();
    let row = sqlx::query!(
        r#"
        with res as (
            insert into reservation (site_id, pool_id, customer_id, unit_count, during, state, currency,
                                     unit_price_cents, base_cents, discount_cents, fee_cents, total_cents, fee_bp,
                                     request_key)
            select $1, $2, $3, $4, $5, 'confirmed', $6, $7, $8, $9, $10, $11, $13, $14
            where exists (select 1 from organization where id = $3 and kind <> 'operator')
            returning id, created_at
        ),
        chosen as (
            select u.id, u.site_id, u.pool_id from capacity_unit u
            where u.pool_id = $2
              and not exists (select 1 from allocation a where a.unit_id = u.id and a.during && $5)
            order by u.ordinal
            limit $12
            for no key update of u skip locked
        ),
        taken as (
            insert into allocation (site_id, pool_id, unit_id, reservation_id, during)
            select chosen.site_id, chosen.pool_id, chosen.id, res.id, $5 from chosen cross join res
            returning 1
        ),
        audited as (
            insert into audit_event (organization_id, actor_user_id, actor_key_id, actor_label,
                                     action, object_type, object_id, detail)
            select $3, $15, $16, audit_actor_label($15, $16), 'reservation.created', 'reservation', res.id,
                   jsonb_build_object('pool_id', $2::bigint, 'units', $4::int, 'start', lower($5::tstzrange),
                                      'end', upper($5::tstzrange), 'total_cents', $11::bigint)
            from res
        )
        select res.id, res.created_at, (select count(*) from taken) as "allocated!" from res
        "#,
        c.pool.site_id,
        c.pool.id,
        customer_id,
        c.units as i32,
        range,
        c.pool.currency,
        c.pool.price_cents,
        p.base_cents,
        p.discount_cents,
        p.fee_cents,
        p.total_cents,
        c.units,
        p.fee_bp as i32,
        key,
        actor_user,
        actor_key,
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| Booked {
        id: r.id,
        created_at: r.created_at,
        allocated: r.allocated,
    }))
}

/// The reservation just committed for a checked request, without reading it back.
fn booked(
    c: Checked,
    p: PriceBreakdown,
    customer_id: i64,
    b: Booked,
    now: DateTime<Utc>,
) -> Reservation {
    Reservation {
        id: b.id,
        pool_id: c.pool.id,
        pool_name: c.pool.name,
        site_id: c.pool.site_id,
        customer_id,
        units: c.units,
        start: c.window.start(),
        end: c.window.end(),
        state: ReservationState::at("confirmed", &c.window, now),
        currency: c.pool.currency,
        unit_price_cents: c.pool.price_cents,
        base_cents: p.base_cents,
        discount_cents: p.discount_cents,
        fee_cents: p.fee_cents,
        total_cents: p.total_cents,
        refund_cents: None,
        created_at: b.created_at,
        cancelled_at: None,
    }
}

/// The one-statement booking could not take every unit, or collided with another writer.
fn is_partial_or_raced(e: &sqlx::Error) -> bool {
    super::error::is_retryable(e)
        || super::error::refusal(e) == Some(super::error::Refusal::PartialBooking)
}

/// The exact path, in one transaction: book what is free now, then wait for units other
/// transactions hold; too few in the end is a conflict that names the next window.
async fn try_reserve(
    db: &PgPool,
    customer_id: i64,
    req: &BookingRequest,
    key: Option<&str>,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    let mut tx = db.begin().await.map_err(raw)?;
    let c = check_request(&mut tx, req, now).await?;
    let p = price_of(&c, fee_bp);
    let booking = match book(&mut tx, &c, &p, customer_id, key).await {
        Err(e) => match key_taken(&e, key) {
            Some(key) => {
                tx.rollback().await.map_err(raw)?;
                return already_made(db, customer_id, key, now).await;
            }
            None => return Err(raw(e)),
        },
        Ok(booking) => booking,
    };
    let Some(b) = booking else {
        tx.rollback().await.map_err(raw)?;
        let mut conn = db.acquire().await?;
        require_customer(&mut conn, customer_id).await?;
        return Err(ServiceError::conflict(
            "the organization changed while booking; please try again",
        ));
    };
    if b.allocated < c.units {
        let range = pools::to_range(&c.window);
        let rest = c.units - b.allocated;
        match settlement::allocate(
            &mut tx,
            c.pool.id,
            &range,
            rest,
            AllocationOwner::Reservation(b.id),
        )
        .await
        {
            Ok(()) => {}
            Err(AllocateError::Insufficient { free, .. }) => {
                tx.rollback().await.map_err(raw)?;
                return Err(not_enough(db, &c, b.allocated + free, now).await);
            }
            Err(AllocateError::Db(e)) => return Err(raw(e)),
        }
    }
    tx.commit().await.map_err(raw)?;
    Ok(booked(c, p, customer_id, b, now))
}

/// The conflict for a request that found only `free` units, with the next window that fits.
async fn not_enough(db: &PgPool, c: &Checked, free: i64, now: DateTime<Utc>) -> ServiceError {
    let next_start = match db.acquire().await {
        Ok(mut conn) => availability::find_slot(
            &mut conn,
            &c.pool,
            c.units,
            c.window.hours(),
            c.window.start().max(c.pool.terms.earliest_start(now)),
            DEFAULT_HORIZON_DAYS,
        )
        .await
        .unwrap_or_else(|e| {
            // The hint is a courtesy; the conflict stands without it.
            tracing::warn!(error = %e, "could not compute the next window for a conflict");
            None
        }),
        Err(e) => {
            tracing::warn!(error = %e, "could not compute the next window for a conflict");
            None
        }
    };
    let mut message = format!(
        "only {free} of the {} {} asked for are free for that whole window",
        c.units,
        c.pool.unit_word(c.units)
    );
    match next_start {
        Some(t) => message.push_str(&format!(
            "; the earliest start that fits is {}",
            t.to_rfc3339()
        )),
        None => message.push_str("; nothing fits within the next year"),
    }
    ServiceError::Conflict {
        message,
        next_start,
        conflicting_reservations: Vec::new(),
    }
}

/// Keeps retryable database errors raw (for the retry loop); `From` would turn them into
/// conflicts straight away.
fn raw(e: sqlx::Error) -> ServiceError {
    if super::error::is_retryable(&e) {
        ServiceError::Unavailable(e)
    } else {
        ServiceError::from(e)
    }
}

/// One of the customer's reservations; another organization's is "not found".
pub async fn get(
    db: &PgPool,
    customer_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    let mut conn = db.acquire().await?;
    fetch(&mut conn, customer_id, id, false, now).await
}

async fn fetch(
    conn: &mut PgConnection,
    customer_id: i64,
    id: i64,
    lock: bool,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    if lock {
        sqlx::query_scalar!(
            "select id from reservation where id = $1 and customer_id = $2 for update",
            id,
            customer_id
        )
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(ServiceError::NotFound("reservation"))?;
    }
    let r = sqlx::query!(
        r#"select r.id, r.pool_id, p.name as pool_name, r.site_id, r.customer_id, r.unit_count, r.during,
                  r.state, r.currency, r.unit_price_cents, r.base_cents, r.discount_cents, r.fee_cents,
                  r.total_cents, r.refund_cents, r.created_at, r.cancelled_at
           from reservation r join capacity_pool p on p.id = r.pool_id
           where r.id = $1 and r.customer_id = $2"#,
        id,
        customer_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ServiceError::NotFound("reservation"))?;
    let (start, end) = pools::from_range(&r.during).ok_or(ServiceError::NotFound("reservation"))?;
    let window = HourWindow::new(start, end)?;
    Ok(Reservation {
        id: r.id,
        pool_id: r.pool_id,
        pool_name: r.pool_name,
        site_id: r.site_id,
        customer_id: r.customer_id,
        units: i64::from(r.unit_count),
        start,
        end,
        state: ReservationState::at(&r.state, &window, now),
        currency: r.currency,
        unit_price_cents: r.unit_price_cents,
        base_cents: r.base_cents,
        discount_cents: r.discount_cents,
        fee_cents: r.fee_cents,
        total_cents: r.total_cents,
        refund_cents: r.refund_cents,
        created_at: r.created_at,
        cancelled_at: r.cancelled_at,
    })
}

/// The customer's reservations, newest first, `limit` at a time after `before_id`.
pub async fn list(
    db: &PgPool,
    customer_id: i64,
    before_id: Option<i64>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Reservation>, ServiceError> {
    let limit = limit.clamp(1, 500);
    let ids = sqlx::query_scalar!(
        "select id from reservation where customer_id = $1 and ($2::bigint is null or id < $2) order by id desc limit $3",
        customer_id,
        before_id,
        limit
    )
    .fetch_all(db)
    .await?;
    let mut conn = db.acquire().await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(fetch(&mut conn, customer_id, id, false, now).await?);
    }
    Ok(out)
}

fn cancel_terms(
    pool: &PoolInfo,
    r: &Reservation,
    now: DateTime<Utc>,
) -> Result<CancelPreview, ServiceError> {
    match r.state {
        ReservationState::Cancelled => {
            return Err(ServiceError::conflict(
                "this reservation is already cancelled",
            ))
        }
        ReservationState::Active | ReservationState::Completed => {
            return Err(ServiceError::conflict(
                "this reservation has already started; a started contract cannot be cancelled",
            ))
        }
        ReservationState::Held | ReservationState::Confirmed => {}
    }
    let notice_hours = (r.start - now).num_hours();
    let refund_bp = pricing::refund_bp_for(notice_hours, &pool.cancellation);
    Ok(CancelPreview {
        reservation_id: r.id,
        notice_hours,
        refund_bp,
        refund_cents: pricing::refund_cents(r.total_cents, refund_bp),
        total_cents: r.total_cents,
    })
}

/// What cancelling now would refund, by the pool's policy.
pub async fn cancel_preview(
    db: &PgPool,
    customer_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<CancelPreview, ServiceError> {
    let mut conn = db.acquire().await?;
    let r = fetch(&mut conn, customer_id, id, false, now).await?;
    let pool = pools::load(&mut conn, r.pool_id, false).await?;
    cancel_terms(&pool, &r, now)
}

/// Cancels a reservation that has not started, releasing its units and locking the refund.
pub async fn cancel(
    db: &PgPool,
    customer_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    let mut tx = db.begin().await?;
    let r = fetch(&mut tx, customer_id, id, true, now).await?;
    let pool = pools::load(&mut tx, r.pool_id, false).await?;
    let preview = cancel_terms(&pool, &r, now)?;
    sqlx::query!("delete from allocation where reservation_id = $1", id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "update reservation set state = 'cancelled', cancelled_at = $2, refund_cents = $3, updated_at = now() where id = $1",
        id,
        now,
        preview.refund_cents
    )
    .execute(&mut *tx)
    .await?;
    super::audit::record(
        &mut tx,
        super::audit::Event {
            organization_id: Some(customer_id),
            action: "reservation.cancelled",
            object_type: "reservation",
            object_id: Some(id),
            detail: serde_json::json!({ "refund_cents": preview.refund_cents }),
        },
    )
    .await?;
    tx.commit().await?;
    get(db, customer_id, id, now).await
}

/// Extends a reservation to `new_end` on the same units, charging the new term's price
/// (at the locked unit price). Refused with the reason when the units are not free.
pub async fn extend(
    db: &PgPool,
    customer_id: i64,
    id: i64,
    new_end: DateTime<Utc>,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_extend(db, customer_id, id, new_end, fee_bp, now).await {
            Err(ServiceError::Unavailable(e))
                if super::error::is_retryable(&e) && attempt < MAX_ATTEMPTS =>
            {
                continue
            }
            Ok(()) => return get(db, customer_id, id, now).await,
            Err(e) => return Err(e),
        }
    }
}

async fn try_extend(
    db: &PgPool,
    customer_id: i64,
    id: i64,
    new_end: DateTime<Utc>,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let mut tx = db.begin().await.map_err(raw)?;
    // Lock order everywhere: pool, then reservation.
    let current = fetch(&mut tx, customer_id, id, false, now).await?;
    let pool = pools::load(&mut tx, current.pool_id, true).await?;
    let r = fetch(&mut tx, customer_id, id, true, now).await?;
    match r.state {
        ReservationState::Confirmed | ReservationState::Active => {}
        ReservationState::Cancelled => {
            return Err(ServiceError::conflict(
                "a cancelled reservation cannot be extended",
            ))
        }
        ReservationState::Completed => {
            return Err(ServiceError::conflict(
                "a completed reservation cannot be extended",
            ))
        }
        ReservationState::Held => {
            return Err(ServiceError::conflict(
                "confirm the reservation before extending it",
            ))
        }
    }
    if new_end <= r.end {
        return Err(ServiceError::invalid(
            "end",
            format!(
                "the new end must be after the current end ({})",
                r.end.to_rfc3339()
            ),
        ));
    }
    let window = HourWindow::new(r.start, new_end)?;
    if window.hours() > pool.terms.max_term_hours {
        return Err(ServiceError::invalid(
            "end",
            format!(
                "the term would be {} hours; this pool sells at most {} hours",
                window.hours(),
                pool.terms.max_term_hours
            ),
        ));
    }
    if !pools::is_open(&mut tx, pool.id, &window).await? {
        return Err(ServiceError::invalid(
            "end",
            "the pool is not on sale until that end; see its availability",
        ));
    }
    let range = pools::to_range(&window);
    let moved = sqlx::query!(
        "update allocation set during = $2, updated_at = now() where reservation_id = $1",
        id,
        range
    )
    .execute(&mut *tx)
    .await;
    match moved {
        Ok(_) => {}
        Err(e) if super::error::refusal(&e) == Some(super::error::Refusal::UnitTaken) => {
            return Err(ServiceError::conflict(format!(
                "the units of this reservation are booked or under maintenance between {} and {}; it cannot be extended on the same units",
                r.end.to_rfc3339(),
                new_end.to_rfc3339()
            )));
        }
        Err(e) => return Err(raw(e)),
    }
    let p: PriceBreakdown = pricing::price(
        pool.priced_at(r.units, r.unit_price_cents),
        window.hours(),
        &pool.discounts,
        fee_bp,
    );
    sqlx::query!(
        r#"update reservation set during = $2, base_cents = $3, discount_cents = $4, fee_cents = $5,
                                  total_cents = $6, fee_bp = $7, updated_at = now()
           where id = $1"#,
        id,
        range,
        p.base_cents,
        p.discount_cents,
        p.fee_cents,
        p.total_cents,
        p.fee_bp as i32
    )
    .execute(&mut *tx)
    .await
    .map_err(raw)?;
    super::audit::record(
        &mut tx,
        super::audit::Event {
            organization_id: Some(customer_id),
            action: "reservation.extended",
            object_type: "reservation",
            object_id: Some(id),
            detail: serde_json::json!({
                "from_end": r.end, "to_end": new_end, "total_cents": p.total_cents,
            }),
        },
    )
    .await?;
    tx.commit().await.map_err(raw)?;
    Ok(())
}
