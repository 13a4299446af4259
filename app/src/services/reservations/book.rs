//! Quotes and bookings: the settlement of a new contract against a pool's availability.
//!
//! Settlement happens in PostgreSQL, whichever server process runs the request: units are
//! chosen by the database's one rule (`choose_free_units`) and the exclusion constraint on
//! `allocation` has the last word. A transaction that loses a race (SQLSTATE 23P01, 40001,
//! 40P01) is retried and, if it keeps losing, answered as a conflict; never an error 500,
//! never a partial reservation.

use super::read::{self, Row};
use super::together::{self, Failed, Lane};
use super::{raw, retrying};
use crate::booking::{
    BookingRequest, HoldRequest, Preemption, Quote, Reservation, Tier, DEFAULT_HOLD_MINUTES,
    MAX_HOLD_MINUTES,
};
use crate::pricing::{self, PriceBreakdown};
use crate::services::availability::{self, DEFAULT_HORIZON_DAYS};
use crate::services::column;
use crate::services::error::{self, Refusal, ServiceError};
use crate::services::pools::{self, PoolInfo};
use crate::services::settlement;
use crate::window::HourWindow;
use chrono::{DateTime, Utc};
use sqlx::postgres::types::PgRange;
use sqlx::{Connection, PgConnection, PgPool};

/// What a booking writes: a confirmed reservation, or a hold of its units for `minutes`
/// (state `held`, confirmed later at the same total, or released when it expires).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Book,
    Hold { minutes: i64 },
}

/// A validated request: the pool, the window, the whole units it needs, its tier and the
/// unit price of that tier.
struct Checked {
    pool: PoolInfo,
    window: HourWindow,
    units: i64,
    note: Option<String>,
    tier: Tier,
    unit_price_cents: i64,
    /// Units free over the window when the pool was read, counted only where a firm booking
    /// may preempt (see [`pools::WindowRead::free_units`]).
    free_units: Option<i64>,
}

impl Checked {
    /// Whether booking this request must preempt, by the count read with the pool: a firm
    /// booking that finds too few units free on a pool selling interruptible hours.
    fn must_preempt(&self, kind: Kind) -> bool {
        kind == Kind::Book
            && self.tier == Tier::Firm
            && self.pool.interruptible.is_some()
            && self.free_units.is_some_and(|free| free < self.units)
    }
}

async fn check_request(
    conn: &mut PgConnection,
    req: &BookingRequest,
    now: DateTime<Utc>,
) -> Result<Checked, ServiceError> {
    let window = HourWindow::new(req.start, req.end)?;
    let pools::WindowRead {
        pool,
        open,
        free_units,
    } = pools::load_with_window(conn, req.pool_id, &window).await?;
    if !pool.listed {
        return Err(ServiceError::NotFound("pool"));
    }
    pool.check_delivery(&window)?;
    pool.terms.check(&window, now)?;
    let unit_price_cents = pool.price_of(req.tier).ok_or_else(|| {
        ServiceError::invalid(
            "tier",
            "this pool sells firm capacity only; ask for the firm tier",
        )
    })?;
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
        tier: req.tier,
        unit_price_cents,
        free_units,
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
    let price = price_of(&c, fee_bp);
    // Counted with the pool where it sells interruptible hours; counted here otherwise.
    let free_units = match c.free_units {
        Some(free) => free,
        None => availability::free_units(&mut conn, &c.pool, &c.window).await?,
    };
    // A firm request that finds too few free units may fit by preempting interruptible ones.
    let preemption =
        if free_units < c.units && c.tier == Tier::Firm && c.pool.interruptible.is_some() {
            let from = c.pool.preemption_from(now);
            let range = pools::to_range(&c.window);
            let takeable = settlement::preemptable(&mut conn, c.pool.id, &range, from).await?;
            (free_units + takeable >= c.units).then(|| Preemption {
                units: c.units - free_units,
                from: c.window.start().max(from),
            })
        } else {
            None
        };
    let next_start = if free_units < c.units && preemption.is_none() {
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
        unit_price_cents: c.unit_price_cents,
        price,
        free_units,
        next_start,
        tier: c.tier,
        preemption,
        forward: c.pool.forward.filter(|_| !c.pool.site_live),
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
/// committed on its own, which also writes the other bookings this process has waiting at
/// that moment ([`together`]). When that statement cannot take every unit (some are free but
/// held by unfinished transactions, or there are too few) it writes nothing, and
/// [`try_reserve`] settles the request exactly, waiting for held units, preempting
/// interruptible ones for a firm booking, and naming the next window that fits. A firm
/// booking that the pool read already shows short of free units on a pool that sells
/// interruptible hours goes to the exact path at once (see [`Checked::must_preempt`]).
pub async fn reserve(
    db: &PgPool,
    customer_id: i64,
    req: &BookingRequest,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    reserve_keyed(db, customer_id, req, Kind::Book, None, fee_bp, now).await
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
    reserve_keyed(
        db,
        customer_id,
        req,
        Kind::Book,
        Some(request_key),
        fee_bp,
        now,
    )
    .await
}

/// Holds the request's units at its price for the minutes asked (15 by default, at most
/// 30): they leave sale at once, and [`super::confirm`] books them at exactly this total.
/// A hold never preempts interruptible capacity, since it may never be confirmed. With
/// `request_key`, at most once per key, as [`reserve_once`].
pub async fn hold(
    db: &PgPool,
    customer_id: i64,
    req: &HoldRequest,
    request_key: Option<&str>,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    let minutes = req.minutes.unwrap_or(DEFAULT_HOLD_MINUTES);
    if !(1..=MAX_HOLD_MINUTES).contains(&minutes) {
        return Err(ServiceError::invalid(
            "minutes",
            format!("a hold lasts 1 to {MAX_HOLD_MINUTES} minutes"),
        ));
    }
    if let Some(key) = request_key {
        if let Some(made) = made_for_key(db, customer_id, key, now).await? {
            return Ok(made);
        }
    }
    let kind = Kind::Hold { minutes };
    reserve_keyed(
        db,
        customer_id,
        &req.request,
        kind,
        request_key,
        fee_bp,
        now,
    )
    .await
}

async fn reserve_keyed(
    db: &PgPool,
    customer_id: i64,
    req: &BookingRequest,
    kind: Kind,
    key: Option<&str>,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    let (c, p) = {
        let mut conn = db.acquire().await?;
        let c = check_request(&mut conn, req, now).await?;
        let p = agreed_price(&c, req, fee_bp)?;
        (c, p)
    };
    // A booking that must preempt joins the preempting lane: the one-statement booking
    // never preempts, so it would find too few units and write nothing.
    let lane = if c.must_preempt(kind) {
        Lane::Preempting
    } else {
        Lane::Whole
    };
    if let Some(made) = book_together(db, &c, &p, customer_id, kind, key, lane, now).await? {
        return Ok(made);
    }
    // The first exact attempt books against the pool just read: reading it again inside
    // the transaction would lock nothing, so it would be no fresher. A retry reads it anew.
    let start = c.window.start();
    let mut checked = Some(c);
    let exact = Write {
        kind,
        key,
        units: Units::Some,
    };
    let mut freed = 0;
    loop {
        match retrying(|| try_reserve(db, customer_id, req, checked.take(), exact, fee_bp, now))
            .await
        {
            Err(e) if freed_since_read(&e, start) && freed < MAX_FREED_RETRIES => freed += 1,
            other => return other,
        }
    }
}

/// How many times the exact path is tried again after a conflict whose own next window is
/// the one asked for. Each retry follows a commit that freed units; the bound stops a
/// booking from chasing a pool that is freed and taken again without end.
const MAX_FREED_RETRIES: u32 = 3;

/// Whether `e` is a conflict that the units freed since the booking read them would
/// answer: the next window that fits, counted after the rollback, starts where the request
/// does. The booking statement reads the pool in its own snapshot, and the preemption that
/// follows reads a later one; a unit freed between the two (its interruptible holder cut
/// by a preemption that committed meanwhile) is busy to the first and free, so not
/// preemptable, to the second: neither takes it. That is a race lost, not a full pool.
fn freed_since_read(e: &ServiceError, start: DateTime<Utc>) -> bool {
    matches!(e, ServiceError::Conflict { next_start: Some(t), .. } if *t == start)
}

/// The common path: the booking, all or nothing, in the group of `lane` this request joins
/// ([`together`]). `None` when it wrote nothing for want of units or after a race, and the
/// exact path must settle it.
#[allow(clippy::too_many_arguments)]
async fn book_together(
    db: &PgPool,
    c: &Checked,
    p: &PriceBreakdown,
    customer_id: i64,
    kind: Kind,
    key: Option<&str>,
    lane: Lane,
    now: DateTime<Utc>,
) -> Result<Option<Reservation>, ServiceError> {
    // The connection goes back to the pool before waiting: the booking is written by the
    // group this request joins, on the group's connection.
    let units = match lane {
        Lane::Whole => Units::All,
        Lane::Preempting => Units::Some,
    };
    let row = BookRow::new(c, p, customer_id, Write { kind, key, units }, now);
    let attempt = match together::join(db, lane, row).await {
        Err(Failed::Group(row)) if lane == Lane::Whole => {
            // The database refused the group's statement (for this booking or another) and
            // it wrote nothing: this one is booked alone and meets its own error, if any.
            let mut conn = db.acquire().await?;
            book(&mut conn, &[&row]).await.map(|mut b| b.remove(0))
        }
        // A preempting booking handed back is settled by the exact path, alone.
        Err(Failed::Group(_)) => Ok(None),
        Err(Failed::Own(e)) => Err(e),
        Ok(b) => Ok(b),
    };
    match attempt {
        Ok(Some(b)) if b.allocated == c.units => booked(c, p, customer_id, b).map(Some),
        // Unreachable: either lane commits a booking only with every unit.
        Ok(Some(_)) => Ok(None),
        // Too few units to take at once wrote nothing (nor does an organization that may
        // not reserve; the exact path tells the two apart).
        Ok(None) => Ok(None),
        Err(e) => match key_taken(&e, key) {
            Some(key) => already_made(db, customer_id, key, now).await.map(Some),
            None if is_partial_or_raced(&e) => Ok(None),
            None => Err(e.into()),
        },
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
        Some(id) => read::get(db, customer_id, id, now).await.map(Some),
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
    key.filter(|_| error::refusal(e) == Some(Refusal::RequestKeyTaken))
}

/// The price of a checked request, refused when the customer agreed to another total.
fn agreed_price(
    c: &Checked,
    req: &BookingRequest,
    fee_bp: i64,
) -> Result<PriceBreakdown, ServiceError> {
    let p = price_of(c, fee_bp);
    match req.agreed_total_cents {
        Some(agreed) if agreed != p.total_cents => Err(ServiceError::PriceChanged {
            agreed_cents: agreed,
            total_cents: p.total_cents,
            currency: c.pool.currency.clone(),
        }),
        _ => Ok(p),
    }
}

fn price_of(c: &Checked, fee_bp: i64) -> PriceBreakdown {
    pricing::price(
        c.pool.priced_at(c.units, c.unit_price_cents),
        c.window.hours(),
        &c.pool.discounts,
        fee_bp,
    )
}

/// What [`book`] wrote.
pub(super) struct Booked {
    id: i64,
    created_at: DateTime<Utc>,
    allocated: i64,
    /// The state it shows now (`reservation_state_at`): held, confirmed, or active when it
    /// starts at once.
    shown_state: String,
    held_until: Option<DateTime<Utc>>,
    /// The forward terms PostgreSQL locked into it (none on a live site).
    forward: Option<crate::forward::ForwardTerms>,
}

/// What [`book`] writes, under which request key, and whether only whole.
#[derive(Clone, Copy, Debug)]
struct Write<'k> {
    kind: Kind,
    key: Option<&'k str>,
    units: Units,
}

/// Whether [`book`] writes the reservation only when it can take every unit it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Units {
    /// All or nothing: the one-statement booking, committed on its own. When too few units
    /// can be taken at once, nothing is written (the reservation, its charge in the ledger
    /// and its events would only be rolled back) and the exact path takes over.
    All,
    /// As many as can be taken, waiting for units other transactions hold (as
    /// [`settlement::allocate`] does): the exact path, whose transaction then preempts for
    /// the rest or rolls back.
    Some,
}

/// One booking for [`book`], owned so that it can be booked together with others
/// ([`super::together`]): the checked request, its price, the buyer, the actor of this
/// request (for the audit event) and what to write.
pub(super) struct BookRow {
    site_id: i64,
    pub(super) pool_id: i64,
    customer_id: i64,
    units: i32,
    pub(super) start: DateTime<Utc>,
    pub(super) end: DateTime<Utc>,
    currency: String,
    unit_price_cents: i64,
    base_cents: i64,
    discount_cents: i64,
    fee_cents: i64,
    total_cents: i64,
    fee_bp: i32,
    request_key: Option<String>,
    actor_user: Option<i64>,
    actor_key: Option<i64>,
    tier: &'static str,
    state: &'static str,
    hold_minutes: Option<i32>,
    action: &'static str,
    now: DateTime<Utc>,
    whole: bool,
    /// For a firm booking on a pool that sells interruptible hours: the first hour it may
    /// take from interruptible reservations ([`PoolInfo::preemption_from`]).
    preempt_from: Option<DateTime<Utc>>,
    /// The pool read found no unit free over the window ([`Checked::free_units`]): the
    /// preempting lane then takes every unit from interruptible reservations without
    /// looking for free ones again ([`book_preempting`]).
    none_free_at_read: bool,
}

impl BookRow {
    /// What reservation `reservation_id`, written for this row `short` units short, may
    /// take from interruptible reservations: `None` when this row may not preempt.
    fn preemption(&self, short: i64, reservation_id: i64) -> Option<settlement::Preempt> {
        self.preempt_from.map(|from| settlement::Preempt {
            pool_id: self.pool_id,
            during: PgRange::from(self.start..self.end),
            wanted: short,
            from,
            reservation_id,
        })
    }

    fn new(
        c: &Checked,
        p: &PriceBreakdown,
        customer_id: i64,
        w: Write<'_>,
        now: DateTime<Utc>,
    ) -> Self {
        let (state, action, hold_minutes) = match w.kind {
            Kind::Book => ("confirmed", "reservation.created", None),
            Kind::Hold { minutes } => ("held", "reservation.held", Some(minutes as i32)),
        };
        let (actor_user, actor_key) = crate::services::audit::current_ids();
        Self {
            site_id: c.pool.site_id,
            pool_id: c.pool.id,
            customer_id,
            units: c.units as i32,
            start: c.window.start(),
            end: c.window.end(),
            currency: c.pool.currency.clone(),
            unit_price_cents: c.unit_price_cents,
            base_cents: p.base_cents,
            discount_cents: p.discount_cents,
            fee_cents: p.fee_cents,
            total_cents: p.total_cents,
            fee_bp: p.fee_bp as i32,
            request_key: w.key.map(str::to_owned),
            actor_user,
            actor_key,
            tier: c.tier.as_str(),
            state,
            hold_minutes,
            action,
            now,
            whole: w.units == Units::All,
            preempt_from: (w.kind == Kind::Book
                && c.tier == Tier::Firm
                && c.pool.interruptible.is_some())
            .then(|| c.pool.preemption_from(now)),
            none_free_at_read: c.free_units == Some(0),
        }
    }

    /// A one-unit booking of `pool_id` for tests that never reach a database.
    #[cfg(test)]
    pub(super) fn for_pool(pool_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            site_id: 1,
            pool_id,
            customer_id: 1,
            units: 1,
            start,
            end,
            currency: "USD".into(),
            unit_price_cents: 100,
            base_cents: 100,
            discount_cents: 0,
            fee_cents: 0,
            total_cents: 100,
            fee_bp: 0,
            request_key: None,
            actor_user: None,
            actor_key: None,
            tier: "firm",
            state: "confirmed",
            hold_minutes: None,
            action: "reservation.created",
            now: start,
            whole: true,
            preempt_from: None,
            none_free_at_read: false,
        }
    }
}

/// Inserts each row's reservation and, in the same statement, allocates the free units the
/// database's one rule chooses (`choose_free_units`, as [`settlement::allocate`] does). A
/// row booked whole ([`Units::All`]) passes over units another booking has locked at this
/// moment; a row of the exact path ([`Units::Some`]) then waits for those it still needs,
/// bounded by the exact path's lock timeout. The answer has one entry per row, in order.
///
/// The lock is what keeps concurrent bookings apart. Without it two bookings of
/// overlapping windows may pick the same unit; an exclusion constraint enters each row in
/// its index before checking it, so each then waits for the other, and PostgreSQL only
/// breaks the cycle after `deadlock_timeout` (a second), which under 32 or more concurrent
/// clients collapsed throughput. With `skip locked` they take different units,
/// or the later one comes up short and settles on the exact path. A unit taken by a
/// transaction that committed after this statement's snapshot still fails the exclusion
/// constraint (23P01), which also goes to the exact path. Rows of one statement choose with
/// one snapshot and do not see each other's units, so two rows of one pool must not
/// overlap in time (the caller's rule, [`super::together`]). An entry is `None` when the
/// organization may not reserve (only buyers of capacity may), or with [`Units::All`] when
/// too few units could be taken.
///
/// A hold's end is the database's clock (this transaction's start plus its minutes), the
/// clock its confirm and its release read.
pub(super) async fn book(
    conn: &mut PgConnection,
    rows: &[&BookRow],
) -> Result<Vec<Option<Booked>>, sqlx::Error> {
    book_seeking(conn, rows, |_| true).await
}

/// [`book`], looking for free units only for the rows `seek_free` picks: the others are
/// written with none, and their caller preempts for all of their units. Why: the walk that
/// looks for free units probes every unit of the pool when it finds none, which is what it
/// finds for a row the pool read found full.
async fn book_seeking(
    conn: &mut PgConnection,
    rows: &[&BookRow],
    seek_free: impl Fn(&BookRow) -> bool,
) -> Result<Vec<Option<Booked>>, sqlx::Error> {
    // The reservation's id is drawn before the insert so that the allocations, the audit
    // events and the answer can be matched to their row (`returning` gives no source column).
    let written = sqlx::query!(
        r#"
        with req as (
            select *
              from unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[], $5::tstzrange[],
                          $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
                          $11::bigint[], $12::int[], $13::text[], $14::bigint[], $15::bigint[],
                          $16::text[], $17::text[], $18::int[], $19::text[], $20::timestamptz[],
                          $21::bool[], $22::int[])
                   with ordinality
                   as r (site_id, pool_id, customer_id, units, during, currency, unit_price_cents,
                         base_cents, discount_cents, fee_cents, total_cents, fee_bp, request_key,
                         actor_user, actor_key, tier, state, hold_minutes, action, asked_at, whole,
                         seek, n)
        ),
        chosen as (
            select r.n, c.unit_id, c.site_id, c.pool_id
              from req r cross join lateral choose_free_units(r.pool_id, r.during, r.seek, not r.whole) c
             where r.seek > 0
        ),
        written as (
            select r.*, nextval(pg_get_serial_sequence('reservation', 'id')) as id
              from req r
             where exists (select 1 from organization o where o.id = r.customer_id and o.kind <> 'operator')
               and (not r.whole or (select count(*) from chosen c where c.n = r.n) = r.units)
        ),
        res as (
            insert into reservation (id, site_id, pool_id, customer_id, unit_count, during, state, currency,
                                     unit_price_cents, base_cents, discount_cents, fee_cents, total_cents, fee_bp,
                                     request_key, tier, held_until)
            overriding system value
            select id, site_id, pool_id, customer_id, units, during, state, currency, unit_price_cents,
                   base_cents, discount_cents, fee_cents, total_cents, fee_bp, request_key, tier,
                   now() + make_interval(mins => hold_minutes)
              from written
            returning id, created_at, held_until, forward_delivery_at, forward_late_credit_bp,
                      forward_late_credit_cents_per_unit_day, forward_walk_away_at
        ),
        taken as (
            insert into allocation (site_id, pool_id, unit_id, reservation_id, during)
            select c.site_id, c.pool_id, c.unit_id, w.id, w.during from chosen c join written w on w.n = c.n
            returning reservation_id
        ),
        audited as (
            insert into audit_event (organization_id, actor_user_id, actor_key_id, actor_label,
                                     action, object_type, object_id, detail)
            select w.customer_id, w.actor_user, w.actor_key, audit_actor_label(w.actor_user, w.actor_key),
                   w.action, 'reservation', w.id,
                   jsonb_build_object('pool_id', w.pool_id, 'units', w.units, 'start', lower(w.during),
                                      'end', upper(w.during), 'total_cents', w.total_cents)
              from written w
        )
        select w.n as "n!", res.id, res.created_at, res.held_until, res.forward_delivery_at,
               res.forward_late_credit_bp, res.forward_late_credit_cents_per_unit_day, res.forward_walk_away_at,
               (select count(*) from taken t where t.reservation_id = res.id) as "allocated!",
               reservation_state_at(w.state, w.during, w.asked_at) as "shown_state!"
          from written w join res on res.id = w.id
        "#,
        &column(rows, |r| r.site_id),
        &column(rows, |r| r.pool_id),
        &column(rows, |r| r.customer_id),
        &column(rows, |r| r.units),
        &column(rows, |r| PgRange::from(r.start..r.end)),
        &column(rows, |r| r.currency.clone()),
        &column(rows, |r| r.unit_price_cents),
        &column(rows, |r| r.base_cents),
        &column(rows, |r| r.discount_cents),
        &column(rows, |r| r.fee_cents),
        &column(rows, |r| r.total_cents),
        &column(rows, |r| r.fee_bp),
        &column(rows, |r| r.request_key.clone()) as &[Option<String>],
        &column(rows, |r| r.actor_user) as &[Option<i64>],
        &column(rows, |r| r.actor_key) as &[Option<i64>],
        &column(rows, |r| r.tier.to_owned()),
        &column(rows, |r| r.state.to_owned()),
        &column(rows, |r| r.hold_minutes) as &[Option<i32>],
        &column(rows, |r| r.action.to_owned()),
        &column(rows, |r| r.now),
        &column(rows, |r| r.whole),
        &column(rows, |r| if seek_free(r) { r.units } else { 0 }),
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut answer: Vec<Option<Booked>> = rows.iter().map(|_| None).collect();
    for r in written {
        // `with ordinality` counts from 1.
        answer[(r.n - 1) as usize] = Some(Booked {
            id: r.id,
            created_at: r.created_at,
            allocated: r.allocated,
            shown_state: r.shown_state,
            held_until: r.held_until,
            forward: crate::forward::ForwardTerms::from_columns(
                r.forward_delivery_at,
                r.forward_late_credit_bp,
                r.forward_late_credit_cents_per_unit_day,
                r.forward_walk_away_at,
            ),
        });
    }
    Ok(answer)
}

/// Books `rows`, firm bookings short of free units on pools that sell interruptible hours,
/// in one transaction: the exact path for all of them at once. One statement takes the
/// units that are free, waiting for those held by unfinished transactions ([`book`] with
/// [`Units::Some`]), except for rows the pool read found with none free; a second preempts
/// for what each row still lacks, rows in order of pool and start
/// ([`settlement::preempt_each`]); the transaction commits only when every row has all its
/// units. The locks are taken in the exact path's order, units first, then
/// each row's interruptible holders, and under its bound ([`settlement::open_exact`]).
///
/// `None`: a row could not have all its units (too few could be taken, or its
/// organization may not reserve), and nothing was written; each row is then booked alone,
/// where it meets its own answer. Rows of one pool must not overlap in time, as for [`book`].
pub(super) async fn book_preempting(
    conn: &mut PgConnection,
    rows: &[&BookRow],
) -> Result<Option<Vec<Option<Booked>>>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut pools: Vec<i64> = rows.iter().map(|r| r.pool_id).collect();
    pools.sort_unstable();
    pools.dedup();
    let mut released_in = Vec::new();
    for pool in pools {
        if settlement::open_exact(&mut tx, pool).await? > 0 {
            released_in.push(pool);
        }
    }
    // A row the pool read found full has no free unit to take: every unit had an
    // allocation over its window. A unit freed since then by another transaction is
    // missed, as one freed after the booking statement's snapshot always was (a race either
    // way, which a free unit a moment later cannot tell apart); a hold expired and released
    // just now, in this transaction, is not, so that pool's rows look again.
    let written: Option<Vec<Booked>> = book_seeking(&mut tx, rows, |r| {
        !r.none_free_at_read || released_in.contains(&r.pool_id)
    })
    .await?
    .into_iter()
    .collect();
    let Some(mut written) = written else {
        tx.rollback().await?;
        return Ok(None);
    };
    let mut wants = Vec::new();
    for (r, b) in rows.iter().zip(&written) {
        let short = i64::from(r.units) - b.allocated;
        if short > 0 {
            let Some(want) = r.preemption(short, b.id) else {
                tx.rollback().await?;
                return Ok(None);
            };
            wants.push(want);
        }
    }
    let taken = settlement::preempt_each(&mut tx, &wants).await?;
    if taken.iter().zip(&wants).any(|(t, w)| *t < w.wanted) {
        tx.rollback().await?;
        return Ok(None);
    }
    tx.commit().await?;
    for (r, b) in rows.iter().zip(&mut written) {
        b.allocated = i64::from(r.units);
    }
    Ok(Some(written.into_iter().map(Some).collect()))
}

/// The reservation just committed for a checked request, without reading it back: the
/// row the booking statement wrote, in the shape every read has.
fn booked(
    c: &Checked,
    p: &PriceBreakdown,
    customer_id: i64,
    b: Booked,
) -> Result<Reservation, ServiceError> {
    let (late_bp, late_cents) = b
        .forward
        .map_or((None, None), |f| f.late_credit.to_columns());
    Row {
        id: b.id,
        pool_id: c.pool.id,
        pool_name: c.pool.name.clone(),
        site_id: c.pool.site_id,
        customer_id,
        unit_count: c.units as i32,
        during: pools::to_range(&c.window),
        shown_state: b.shown_state,
        tier: c.tier.as_str().to_string(),
        currency: c.pool.currency.clone(),
        unit_price_cents: c.unit_price_cents,
        base_cents: p.base_cents,
        discount_cents: p.discount_cents,
        fee_cents: p.fee_cents,
        total_cents: p.total_cents,
        refund_cents: None,
        credited_cents: 0,
        created_at: b.created_at,
        cancelled_at: None,
        held_until: b.held_until,
        resale_listing_id: None,
        forward_delivery_at: b.forward.map(|f| f.delivery_at),
        forward_late_credit_bp: late_bp,
        forward_late_credit_cents_per_unit_day: late_cents,
        forward_walk_away_at: b.forward.map(|f| f.walk_away_at),
    }
    .shown()
}

/// The one-statement booking could not take every unit, or collided with another writer.
fn is_partial_or_raced(e: &sqlx::Error) -> bool {
    error::is_retryable(e) || error::refusal(e) == Some(Refusal::PartialBooking)
}

/// The exact path, in one transaction: release the pool's expired holds, then book what is
/// free, waiting for units other transactions hold (one statement), and preempt for the
/// rest when the booking may; too few in the end is a conflict that names the next window.
/// `checked` is the request as the common path checked it, for the first attempt; a retry
/// checks it again.
async fn try_reserve(
    db: &PgPool,
    customer_id: i64,
    req: &BookingRequest,
    checked: Option<Checked>,
    w: Write<'_>,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    let mut tx = db.begin().await.map_err(raw)?;
    let c = match checked {
        Some(c) => c,
        None => check_request(&mut tx, req, now).await?,
    };
    let p = agreed_price(&c, req, fee_bp)?;
    // Lock waits bounded from here on (see EXACT_LOCK_WAIT), and an expired hold the
    // release job has not reached yet gives its units back first.
    settlement::open_exact(&mut tx, c.pool.id)
        .await
        .map_err(raw)?;
    let row = BookRow::new(&c, &p, customer_id, w, now);
    let booking = match book(&mut tx, &[&row]).await.map(|mut b| b.remove(0)) {
        Err(e) => match key_taken(&e, w.key) {
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
    // The statement took every unit that is free, having waited for those held by
    // unfinished transactions; what is still short is preempted or the booking fails.
    if b.allocated < c.units {
        let short = c.units - b.allocated;
        let taken = match row.preemption(short, b.id) {
            Some(want) => {
                settlement::preempt_each(&mut tx, &[want])
                    .await
                    .map_err(raw)?[0]
                    == short
            }
            None => false,
        };
        if !taken {
            tx.rollback().await.map_err(raw)?;
            return Err(not_enough(db, &c, b.allocated, now).await);
        }
    }
    tx.commit().await.map_err(raw)?;
    booked(&c, &p, customer_id, b)
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
