//! Resale: listing the future part of a reservation, withdrawing a listing, buying one, and
//! the open offers buyers see. The purchase itself is the database's `resale_buy`, one
//! transaction that moves the unit-hours and posts the money once (see its migration).

use crate::booking::Reservation;
use crate::market::PoolKind;
use crate::pricing::Quantity;
use crate::resale::{Listing, ListingState, NewListing, ResaleOffer};
use crate::services::error::{FieldError, ServiceError};
use crate::services::search::opt_text;
use crate::services::{audit, pools, reservations};
use crate::window::{ceil_hour, is_whole_hour};
use chrono::{DateTime, Utc};
use sqlx::postgres::types::PgRange;
use sqlx::PgPool;

/// Which open offers to show: on one pool, or matching a search's filters and quantity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfferFilter {
    pub pool_id: Option<i64>,
    pub kind: Option<PoolKind>,
    pub gpu_model: Option<String>,
    pub region: Option<String>,
    pub energy_source: Option<String>,
    /// Offers with at least this much left (one unit when none).
    pub quantity: Option<Quantity>,
    pub limit: i64,
}

/// Lists `units` units of one of the seller's reservations from `start` to its end.
pub async fn list(
    db: &PgPool,
    seller_id: i64,
    l: &NewListing,
    now: DateTime<Utc>,
) -> Result<Listing, ServiceError> {
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.into(),
            message,
        })
    };
    if !is_whole_hour(l.start) {
        bad("start", "a whole hour in UTC".into());
    }
    if l.start <= now {
        bad(
            "start",
            "a listing covers future hours only; start it at the next whole hour or later".into(),
        );
    }
    if !(1..=100_000_000).contains(&l.unit_hour_price_cents) {
        bad(
            "unit_hour_price_cents",
            "a price per unit-hour of 1 cent to $1,000,000".into(),
        );
    }
    if l.units < 1 {
        bad("units", "list at least one unit".into());
    }
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    let mut tx = db.begin().await?;
    reservations::lock_for_change(&mut tx, seller_id, l.reservation_id).await?;
    let r = reservations::get_in(&mut tx, seller_id, l.reservation_id, now).await?;
    let refusal = match () {
        _ if r.resale_listing_id.is_some() => {
            Some("a reservation bought on resale cannot be listed again".to_string())
        }
        _ if r.tier != crate::booking::Tier::Firm => {
            Some("only firm reservations can be resold".to_string())
        }
        _ if !matches!(
            r.state,
            crate::window::ReservationState::Confirmed | crate::window::ReservationState::Active
        ) =>
        {
            Some(format!(
                "a {} reservation cannot be listed",
                r.state.as_str()
            ))
        }
        _ if l.start < r.start || l.start >= r.end => Some(format!(
            "the listing starts inside the reservation: from {} to an hour before its end",
            r.start.max(ceil_hour(now)).to_rfc3339()
        )),
        _ => None,
    };
    if let Some(m) = refusal {
        return Err(ServiceError::conflict(m));
    }
    let pool = pools::load(&mut tx, r.pool_id, false).await?;
    let range = pools::to_range(&crate::window::HourWindow::new(l.start, r.end)?);
    // Units it holds over the whole listed range, less what its open listings still offer.
    let free_to_list = sqlx::query_scalar!(
        r#"select (select count(*) from allocation a
                    where a.reservation_id = $1 and a.during @> $2::tstzrange)
                - coalesce((select sum(unit_count - units_sold) from resale_listing
                             where reservation_id = $1 and state = 'open'), 0) as "n!""#,
        r.id,
        range
    )
    .fetch_one(&mut *tx)
    .await?;
    if l.units > free_to_list {
        return Err(ServiceError::invalid(
            "units",
            format!(
                "this reservation can list at most {} more {} over those hours (it holds them, less what its open listings offer)",
                free_to_list.max(0),
                pool.unit_word(free_to_list)
            ),
        ));
    }
    let id = sqlx::query_scalar!(
        r#"insert into resale_listing (seller_id, reservation_id, site_id, pool_id, unit_count, during,
                                       unit_hour_price_cents, currency)
           values ($1, $2, $3, $4, $5, $6, $7, $8) returning id"#,
        seller_id,
        r.id,
        r.site_id,
        r.pool_id,
        l.units as i32,
        range,
        l.unit_hour_price_cents,
        r.currency,
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit::Event {
            organization_id: Some(seller_id),
            action: "resale.listed",
            object_type: "resale_listing",
            object_id: Some(id),
            detail: serde_json::json!({
                "reservation_id": r.id, "units": l.units, "start": l.start,
                "unit_hour_price_cents": l.unit_hour_price_cents,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    get(db, seller_id, id, now).await
}

struct ListingRow {
    id: i64,
    reservation_id: i64,
    pool_id: i64,
    pool_name: String,
    unit_count: i32,
    units_sold: i32,
    during: PgRange<DateTime<Utc>>,
    unit_hour_price_cents: i64,
    currency: String,
    state: String,
    proceeds: i64,
    created_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
}

impl ListingRow {
    fn shown(self, now: DateTime<Utc>) -> Result<Listing, ServiceError> {
        let (start, end) =
            pools::from_range(&self.during).ok_or(ServiceError::NotFound("resale listing"))?;
        let state = match self.state.as_str() {
            "sold" => ListingState::Sold,
            "withdrawn" => ListingState::Withdrawn,
            _ if start <= now => ListingState::Ended,
            _ => ListingState::Open,
        };
        Ok(Listing {
            id: self.id,
            reservation_id: self.reservation_id,
            pool_id: self.pool_id,
            pool_name: self.pool_name,
            units: i64::from(self.unit_count),
            units_sold: i64::from(self.units_sold),
            start,
            end,
            unit_hour_price_cents: self.unit_hour_price_cents,
            currency: self.currency,
            state,
            proceeds_cents: self.proceeds,
            created_at: self.created_at,
            closed_at: self.closed_at,
        })
    }
}

/// Which of a seller's listings to read.
#[derive(Clone, Copy, Debug, Default)]
struct Which {
    reservation_id: Option<i64>,
    id: Option<i64>,
    before_id: Option<i64>,
}

async fn rows(
    db: &PgPool,
    seller_id: i64,
    which: Which,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Listing>, ServiceError> {
    sqlx::query_as!(
        ListingRow,
        r#"select l.id, l.reservation_id, l.pool_id, p.name as pool_name, l.unit_count, l.units_sold,
                  l.during, l.unit_hour_price_cents, l.currency, l.state,
                  coalesce((select sum(seller_cents) from resale_purchase rp where rp.listing_id = l.id), 0)::bigint as "proceeds!",
                  l.created_at, l.closed_at
             from resale_listing l join capacity_pool p on p.id = l.pool_id
            where l.seller_id = $1 and ($2::bigint is null or l.reservation_id = $2)
              and ($3::bigint is null or l.id = $3) and ($4::bigint is null or l.id < $4)
            order by l.id desc limit $5"#,
        seller_id,
        which.reservation_id,
        which.id,
        which.before_id,
        limit.clamp(1, 500)
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|r| r.shown(now))
    .collect()
}

/// The seller's listings (of one reservation, or all), newest first.
pub async fn mine(
    db: &PgPool,
    seller_id: i64,
    reservation_id: Option<i64>,
    before_id: Option<i64>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Listing>, ServiceError> {
    let which = Which {
        reservation_id,
        before_id,
        ..Which::default()
    };
    rows(db, seller_id, which, limit, now).await
}

/// One of the seller's listings.
pub async fn get(
    db: &PgPool,
    seller_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Listing, ServiceError> {
    let which = Which {
        id: Some(id),
        ..Which::default()
    };
    rows(db, seller_id, which, 1, now)
        .await?
        .pop()
        .ok_or(ServiceError::NotFound("resale listing"))
}

/// Takes an open listing off sale; what was sold stays sold.
pub async fn withdraw(
    db: &PgPool,
    seller_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Listing, ServiceError> {
    let mut tx = db.begin().await?;
    let state = sqlx::query_scalar!(
        "select state from resale_listing where id = $1 and seller_id = $2 for update",
        id,
        seller_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ServiceError::NotFound("resale listing"))?;
    if state != "open" {
        return Err(ServiceError::conflict(format!(
            "this listing is {state} already"
        )));
    }
    sqlx::query!(
        "update resale_listing set state = 'withdrawn', closed_at = $2 where id = $1",
        id,
        now
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit::Event {
            organization_id: Some(seller_id),
            action: "resale.withdrawn",
            object_type: "resale_listing",
            object_id: Some(id),
            detail: serde_json::json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    get(db, seller_id, id, now).await
}

/// Buys `units` units (all that are left when `None`) of an open listing for `buyer_id`, in
/// one transaction; returns the buyer's new reservation.
pub async fn buy(
    db: &PgPool,
    buyer_id: i64,
    listing_id: i64,
    units: Option<i64>,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    let units = match units {
        Some(n) if n < 1 => return Err(ServiceError::invalid("units", "buy at least one unit")),
        Some(n) => n,
        None => sqlx::query_scalar!(
            r#"select (unit_count - units_sold)::bigint as "n!" from resale_listing where id = $1"#,
            listing_id
        )
        .fetch_optional(db)
        .await?
        .ok_or(ServiceError::NotFound("resale listing"))?,
    };
    let (actor_user, actor_key) = audit::current_ids();
    let made = sqlx::query_scalar!(
        r#"select resale_buy($1, $2, $3, $4, $5, $6) as "id!""#,
        listing_id,
        buyer_id,
        i32::try_from(units).unwrap_or(i32::MAX),
        fee_bp as i32,
        actor_user,
        actor_key,
    )
    .fetch_one(db)
    .await;
    let id = match made {
        Ok(id) => id,
        Err(e) => {
            let constraint = e
                .as_database_error()
                .and_then(|d| d.constraint())
                .map(str::to_string);
            return Err(match constraint.as_deref() {
                Some("resale_listing_missing") => ServiceError::NotFound("resale listing"),
                Some("resale_listing_closed") => ServiceError::conflict(
                    "this listing is no longer on sale (sold, withdrawn, or its hours have begun)",
                ),
                Some("resale_listing_units") => ServiceError::conflict(
                    "fewer units are left on this listing than asked for; reload it to see what is left",
                ),
                Some("resale_listing_unavailable") => ServiceError::conflict(
                    "the seller no longer holds these hours; the listing cannot be bought",
                ),
                Some("resale_own_listing") => {
                    ServiceError::conflict("this is your own listing; withdraw it instead")
                }
                Some("resale_buyer_is_customer") => ServiceError::Forbidden(
                    "this organization is registered as an operator only; buying capacity needs a customer organization".into(),
                ),
                _ => e.into(),
            });
        }
    };
    reservations::get(db, buyer_id, id, now).await
}

/// One row of the offers query.
#[derive(sqlx::FromRow)]
struct OfferRow {
    id: i64,
    pool_id: i64,
    pool_name: String,
    site_name: String,
    region: String,
    kind: String,
    gpu_model: Option<String>,
    unit_size: i64,
    units_left: i64,
    during: PgRange<DateTime<Utc>>,
    unit_hour_price_cents: i64,
    currency: String,
}

/// Open offers, soonest first, then cheapest.
pub async fn offers(
    db: &PgPool,
    f: &OfferFilter,
    now: DateTime<Utc>,
) -> Result<Vec<ResaleOffer>, ServiceError> {
    let (quantity_kind, amount) = f.quantity.unwrap_or(Quantity::Units(1)).sql_parts();
    // Written with `query_as` rather than the checked macro, whose statements are always
    // named and reused: this one is planned for each call's values. Its filters are optional
    // (`$n is null or ...`); a plan made for any values can use neither the model nor the
    // place indexes, and PostgreSQL, once it reuses one, looked up every open listing's
    // pool one by one (BENCHMARKS.md, 2026-12-04: p95 35-39 ms over 20,000 listings, 7-8 ms
    // planned each time). The tests run it with every filter.
    let rows: Vec<OfferRow> = sqlx::query_as(
        r#"select l.id, l.pool_id, p.name as pool_name, s.name as site_name, s.region, l.kind,
                  l.gpu_model, l.unit_size, (l.unit_count - l.units_sold)::bigint as units_left,
                  l.during, l.unit_hour_price_cents, l.currency
             from resale_listing l
             join capacity_pool p on p.id = l.pool_id
             join site s on s.id = p.site_id
            where l.state = 'open' and lower(l.during) > $1 and p.listed and s.status = 'live'
              and ($2::bigint is null or l.pool_id = $2)
              -- The pool's hardware as the listing carries it (migration 20261224000200):
              -- with no place asked for, the model's open listings are read in order from
              -- its index, not every open listing hashed against the model's pools.
              and ($3::text is null or l.kind = $3)
              and ($4::text is null or lower(l.gpu_model) = $4)
              and ($5::text is null or lower(s.country) = $5 or lower(s.region) = $5 or lower(s.grid_region) = $5)
              and ($6::text is null or strpos(lower(s.energy_source), $6) > 0)
              -- Enough left: the units left, in what was asked for, reach the amount (k units
              -- of n GPUs serve g GPUs exactly when k ≥ ⌈g / n⌉, that is when k × n ≥ g).
              and (l.unit_count - l.units_sold) * (case
                    when $7 = 'units' then 1
                    when $7 = 'gpus' and l.kind = 'gpu' then l.unit_size
                    when $7 = 'kw' and l.kind = 'power' then l.unit_size
                  end) >= $8::bigint
            order by lower(l.during), l.unit_hour_price_cents, l.id
            limit $9"#,
    )
    .bind(now)
    .bind(f.pool_id)
    .bind(f.kind.map(PoolKind::as_str))
    .bind(opt_text(&f.gpu_model))
    .bind(opt_text(&f.region))
    .bind(opt_text(&f.energy_source))
    .bind(quantity_kind)
    .bind(amount)
    .bind(f.limit.clamp(1, 200))
    .persistent(false)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let (start, end) = pools::from_range(&r.during)?;
            let hours = (end - start).num_hours();
            Some(ResaleOffer {
                listing_id: r.id,
                pool_id: r.pool_id,
                pool_name: r.pool_name,
                site_name: r.site_name,
                region: r.region,
                kind: PoolKind::parse(&r.kind)?,
                gpu_model: r.gpu_model,
                unit_size: r.unit_size,
                units_left: r.units_left,
                start,
                end,
                hours,
                unit_hour_price_cents: r.unit_hour_price_cents,
                total_cents: r.units_left * hours * r.unit_hour_price_cents,
                currency: r.currency,
            })
        })
        .collect())
}
