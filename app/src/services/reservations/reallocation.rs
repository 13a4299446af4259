//! Changing what a reservation holds after it is made, inside the caller's transaction:
//! moving unit-hours to another unit of the pool, ending a unit's hours early, and crediting
//! the customer for hours not delivered. These are the building blocks of preemption, grid
//! curtailment, incidents and resale; each use case composes them in one transaction.
//!
//! The rules live in PostgreSQL (`reservation_move`, `reservation_cut`,
//! `reservation_credit_hours`, migration `reallocation_and_credits`): the exclusion
//! constraint keeps a unit from serving two things at every commit, the coverage check keeps
//! every reservation whole (held plus cut units equal its units at every instant), and a
//! credit is posted in the ledger by the same transaction. Here they get typed inputs and
//! errors a customer or operator can read.

use crate::services::error::{self, Refusal, ServiceError};
use crate::services::pools;
use crate::window::HourWindow;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// Why unit-hours were taken out of a reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutReason {
    EndedEarly,
    Preempted,
    Curtailed,
    Incident,
    Resold,
}

impl CutReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::EndedEarly => "ended_early",
            Self::Preempted => "preempted",
            Self::Curtailed => "curtailed",
            Self::Incident => "incident",
            Self::Resold => "resold",
        }
    }
}

/// Why money was given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreditReason {
    EndedEarly,
    Preempted,
    Curtailed,
    Incident,
    Sla,
    Goodwill,
}

impl CreditReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::EndedEarly => "ended_early",
            Self::Preempted => "preempted",
            Self::Curtailed => "curtailed",
            Self::Incident => "incident",
            Self::Sla => "sla",
            Self::Goodwill => "goodwill",
        }
    }
}

/// What the database refused in a re-allocation, in words for the person who asked.
fn refused(e: sqlx::Error, reservation_id: i64, unit_id: i64, piece: &HourWindow) -> ServiceError {
    let span = format!(
        "{} to {}",
        piece.start().to_rfc3339(),
        piece.end().to_rfc3339()
    );
    match error::refusal(&e) {
        Some(Refusal::PieceNotHeld) => ServiceError::conflict(format!(
            "reservation #{reservation_id} does not hold the unit with id {unit_id} for the whole of {span}"
        )),
        Some(Refusal::UnitTaken) => ServiceError::conflict(format!(
            "the unit with id {unit_id} is booked or under maintenance during {span}"
        )),
        Some(Refusal::FirmKeepsItsHours) => ServiceError::conflict(format!(
            "reservation #{reservation_id} is firm: it keeps every hour it was sold, and only an incident on its unit may take some"
        )),
        _ => e.into(),
    }
}

/// Ends `reservation_id`'s hold on `unit_id` over `piece` (the unit is free for others
/// then) and records why. The customer is not credited by this; see [`credit_hours`].
pub async fn cut(
    conn: &mut PgConnection,
    reservation_id: i64,
    unit_id: i64,
    piece: &HourWindow,
    why: CutReason,
) -> Result<(), ServiceError> {
    sqlx::query!(
        "select reservation_cut($1, $2, $3, $4)",
        reservation_id,
        unit_id,
        pools::to_range(piece),
        why.as_str()
    )
    .execute(&mut *conn)
    .await
    .map(|_| ())
    .map_err(|e| refused(e, reservation_id, unit_id, piece))
}

/// Moves `reservation_id`'s unit-hours over `piece` from unit `from_unit` to `to_unit` of
/// the same pool. Refused when the reservation does not hold `from_unit` over the whole
/// piece or `to_unit` is taken then; the caller's transaction then rolls back.
pub async fn move_piece(
    conn: &mut PgConnection,
    reservation_id: i64,
    from_unit: i64,
    to_unit: i64,
    piece: &HourWindow,
) -> Result<(), ServiceError> {
    let same_pool = sqlx::query_scalar!(
        r#"select exists (select 1 from capacity_unit u join reservation r on r.pool_id = u.pool_id
                           where u.id = $1 and r.id = $2) as "same!""#,
        to_unit,
        reservation_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if !same_pool {
        return Err(ServiceError::invalid(
            "to_unit",
            "a reservation moves only to another unit of its own pool",
        ));
    }
    sqlx::query!(
        "select reservation_move($1, $2, $3, $4)",
        reservation_id,
        from_unit,
        to_unit,
        pools::to_range(piece)
    )
    .execute(&mut *conn)
    .await
    .map(|_| ())
    .map_err(|e| match error::refusal(&e) {
        Some(Refusal::UnitTaken) => refused(e, reservation_id, to_unit, piece),
        _ => refused(e, reservation_id, from_unit, piece),
    })
}

/// A unit of `pool_id` free over the whole of `piece` (the lowest-numbered, by the one
/// rule that chooses units), locked for this transaction; `None` when there is none.
pub async fn spare_unit(
    conn: &mut PgConnection,
    pool_id: i64,
    piece: &HourWindow,
) -> Result<Option<i64>, ServiceError> {
    Ok(sqlx::query_scalar!(
        r#"select unit_id as "unit_id!" from choose_free_units($1, $2, 1, true)"#,
        pool_id,
        pools::to_range(piece)
    )
    .fetch_optional(&mut *conn)
    .await?)
}

/// A credit that was posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credited {
    pub credit_id: i64,
    pub amount_cents: i64,
}

/// Credits the customer of `reservation_id` for `unit_hours` not delivered, at the price it
/// paid (its total over the unit-hours it bought, rounded down, never more than is left of
/// the payment), posted in the ledger in the caller's transaction. `None` when that comes
/// to nothing (a free reservation, or one credited in full already).
pub async fn credit_hours(
    conn: &mut PgConnection,
    reservation_id: i64,
    unit_hours: i64,
    why: CreditReason,
    memo: &str,
    effective_at: DateTime<Utc>,
) -> Result<Option<Credited>, ServiceError> {
    if unit_hours < 1 {
        return Err(ServiceError::invalid(
            "unit_hours",
            "a credit for hours pays for at least one unit-hour",
        ));
    }
    if memo.chars().count() > 500 {
        return Err(ServiceError::invalid(
            "memo",
            "keep the note under 500 characters",
        ));
    }
    let row = sqlx::query!(
        r#"select c.id, c.amount_cents from reservation_credit_hours($1, $2, $3, $4, $5) c"#,
        reservation_id,
        unit_hours,
        why.as_str(),
        memo,
        effective_at
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match error::refusal(&e) {
        Some(Refusal::NotCreditable) => ServiceError::conflict(format!(
            "reservation #{reservation_id} is not confirmed; only a confirmed reservation can be credited"
        )),
        _ => e.into(),
    })?;
    // The function returns null (a row of nulls here) when there is nothing to credit.
    Ok(match (row.id, row.amount_cents) {
        (Some(credit_id), Some(amount_cents)) => Some(Credited {
            credit_id,
            amount_cents,
        }),
        _ => None,
    })
}
