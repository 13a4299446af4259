//! Changes a customer makes to a reservation: cancelling before it starts, extending it.

use super::read;
use super::{raw, retrying};
use crate::booking::{CancelPreview, ExtendTo, Reservation, MAX_EXTENSION_HOURS};
use crate::pricing::{self, PriceBreakdown};
use crate::services::audit;
use crate::services::error::{self, Refusal, ServiceError};
use crate::services::pools::{self, PoolInfo};
use crate::window::{HourWindow, ReservationState};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

fn cancel_terms(
    pool: &PoolInfo,
    r: &Reservation,
    now: DateTime<Utc>,
) -> Result<CancelPreview, ServiceError> {
    if r.resale_listing_id.is_some() {
        return Err(ServiceError::conflict(
            "this reservation was bought on resale, and a resale is final: it cannot be cancelled",
        ));
    }
    // A forward contract whose site is still not delivered on its walk-away date may be
    // cancelled with a full refund, even once its hours have begun or passed (none were
    // delivered).
    let walk_away = !pool.site_live && r.forward.is_some_and(|f| now >= f.walk_away_at);
    match r.state {
        ReservationState::Cancelled => {
            return Err(ServiceError::conflict(
                "this reservation is already cancelled",
            ))
        }
        // (A forward contract is not recognised as earned while its site is being built.)
        ReservationState::Active | ReservationState::Completed if walk_away => {}
        ReservationState::Active | ReservationState::Completed => {
            return Err(ServiceError::conflict(
                "this reservation has already started; a started contract cannot be cancelled",
            ))
        }
        // A hold was never charged: releasing it refunds nothing and costs nothing.
        ReservationState::Held => {
            return Ok(CancelPreview {
                reservation_id: r.id,
                notice_hours: (r.start - now).num_hours(),
                refund_bp: 0,
                refund_cents: 0,
                total_cents: 0,
                credited_cents: 0,
            })
        }
        ReservationState::Confirmed => {}
    }
    let notice_hours = (r.start - now).num_hours();
    let refund_bp = if walk_away {
        10_000
    } else {
        pricing::refund_bp_for(notice_hours, &pool.cancellation)
    };
    // Credits were given back already; the policy refunds a share of what is left.
    Ok(CancelPreview {
        reservation_id: r.id,
        notice_hours,
        refund_bp,
        refund_cents: pricing::refund_cents(r.total_cents - r.credited_cents, refund_bp),
        total_cents: r.total_cents,
        credited_cents: r.credited_cents,
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
    let r = read::one(&mut conn, customer_id, id, now).await?;
    let pool = pools::load(&mut conn, r.pool_id, false).await?;
    cancel_terms(&pool, &r, now)
}

/// Cancels a reservation that has not started, releasing its units and locking the refund;
/// for a hold, releases it.
pub async fn cancel(
    db: &PgPool,
    customer_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    let mut tx = db.begin().await?;
    read::lock(&mut tx, customer_id, id).await?;
    let r = read::one(&mut tx, customer_id, id, now).await?;
    let pool = pools::load(&mut tx, r.pool_id, false).await?;
    let preview = cancel_terms(&pool, &r, now)?;
    let open_listings = sqlx::query_scalar!(
        r#"select count(*) as "n!" from resale_listing where reservation_id = $1 and state = 'open'"#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    if open_listings > 0 {
        return Err(ServiceError::conflict(
            "this reservation has resale listings on sale; withdraw them before cancelling it",
        ));
    }
    sqlx::query!("delete from allocation where reservation_id = $1", id)
        .execute(&mut *tx)
        .await?;
    let was_held = r.state == ReservationState::Held;
    let cancelled = sqlx::query!(
        "update reservation set state = 'cancelled', cancelled_at = $2, refund_cents = $3, updated_at = now() where id = $1",
        id,
        now,
        (!was_held).then_some(preview.refund_cents)
    )
    .execute(&mut *tx)
    .await;
    if let Err(e) = cancelled {
        return Err(match error::refusal(&e) {
            Some(Refusal::ResoldStands) => ServiceError::conflict(
                "part of this reservation was resold to another customer; it can no longer be cancelled",
            ),
            _ => e.into(),
        });
    }
    audit::record(
        &mut tx,
        audit::Event {
            organization_id: Some(customer_id),
            action: if was_held {
                "reservation.hold_released"
            } else {
                "reservation.cancelled"
            },
            object_type: "reservation",
            object_id: Some(id),
            detail: serde_json::json!({ "refund_cents": preview.refund_cents }),
        },
    )
    .await?;
    tx.commit().await?;
    read::get(db, customer_id, id, now).await
}

/// Confirms a hold: the reservation is booked at exactly the total it was held at, and
/// charged. Confirming a reservation already confirmed answers it as it is (a repeated
/// confirm changes nothing); a hold that expired or was released is refused. Whether the
/// hold still lives is the database's decision (`reservation_hold_lives`, on its clock), so
/// a confirm and the hold's release never both succeed.
pub async fn confirm(
    db: &PgPool,
    customer_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    let mut tx = db.begin().await?;
    read::lock(&mut tx, customer_id, id).await?;
    let r = read::one(&mut tx, customer_id, id, now).await?;
    match r.state {
        ReservationState::Held => {}
        ReservationState::Confirmed | ReservationState::Active | ReservationState::Completed => {
            return Ok(r)
        }
        ReservationState::Cancelled => {
            return Err(ServiceError::conflict(
                "this hold has ended (it expired or was released) and its units went back on sale; ask for a new quote",
            ))
        }
    }
    let confirmed = sqlx::query!(
        "update reservation set state = 'confirmed', held_until = null, updated_at = now() where id = $1",
        id
    )
    .execute(&mut *tx)
    .await;
    if let Err(e) = confirmed {
        return Err(match error::refusal(&e) {
            Some(Refusal::HoldExpired) => ServiceError::conflict(format!(
                "this hold expired at {}; its units go back on sale, so ask for a new quote",
                r.held_until.map(|t| t.to_rfc3339()).unwrap_or_default()
            )),
            _ => e.into(),
        });
    }
    audit::record(
        &mut tx,
        audit::Event {
            organization_id: Some(customer_id),
            action: "reservation.confirmed",
            object_type: "reservation",
            object_id: Some(id),
            detail: serde_json::json!({ "total_cents": r.total_cents }),
        },
    )
    .await?;
    tx.commit().await?;
    read::get(db, customer_id, id, now).await
}

/// Extends a reservation on the same units, to a new end or by a number of hours, charging
/// the new term's price (at the locked unit price). Refused with the reason when the units
/// are not free.
pub async fn extend(
    db: &PgPool,
    customer_id: i64,
    id: i64,
    to: ExtendTo,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    retrying(|| try_extend(db, customer_id, id, to, fee_bp, now)).await?;
    read::get(db, customer_id, id, now).await
}

async fn try_extend(
    db: &PgPool,
    customer_id: i64,
    id: i64,
    to: ExtendTo,
    fee_bp: i64,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let mut tx = db.begin().await.map_err(raw)?;
    // Lock order everywhere: pool, then reservation.
    let current = read::one(&mut tx, customer_id, id, now).await?;
    let pool = pools::load(&mut tx, current.pool_id, true).await?;
    read::lock(&mut tx, customer_id, id).await?;
    let r = read::one(&mut tx, customer_id, id, now).await?;
    if r.resale_listing_id.is_some() {
        return Err(ServiceError::conflict(
            "this reservation was bought on resale, and a resale is final: book the extra time as a new reservation",
        ));
    }
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
    let new_end = match to {
        ExtendTo::End(end) => end,
        ExtendTo::ByHours(hours) if (1..=MAX_EXTENSION_HOURS).contains(&hours) => {
            r.end + Duration::hours(hours)
        }
        ExtendTo::ByHours(_) => {
            return Err(ServiceError::invalid(
                "hours",
                format!("extend by 1 to {MAX_EXTENSION_HOURS} hours"),
            ))
        }
    };
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
    // The pieces that reach the current end carry on to the new end; a piece that ended
    // early or moved off a unit earlier stays as it is.
    let carried = sqlx::query!(
        r#"update allocation set during = tstzrange(lower(during), $3), updated_at = now()
            where reservation_id = $1 and upper(during) = $2"#,
        id,
        r.end,
        new_end
    )
    .execute(&mut *tx)
    .await;
    match carried {
        Ok(done) if done.rows_affected() as i64 == r.units => {}
        Ok(_) => {
            return Err(ServiceError::conflict(
                "part of this reservation ended early, so it no longer holds all its units at its end; book the extra time as a new reservation",
            ))
        }
        Err(e) if error::refusal(&e) == Some(Refusal::UnitTaken) => {
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
    if p.total_cents < r.credited_cents {
        // A longer term can earn a deeper discount; it may not fall below what was credited.
        return Err(ServiceError::conflict(
            "the new term's price would be less than what this reservation was credited; book the extra time as a new reservation",
        ));
    }
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
    audit::record(
        &mut tx,
        audit::Event {
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
