//! The one error type of the services. Each front door maps it once: server functions to
//! a readable message, the JSON API to a problem document with the status from [`ServiceError::status`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A field the caller got wrong, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The seconds a 503 (the database unreachable, restarting or failing over) asks the caller
/// to wait before retrying, at both doors.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed or breaks a rule; nothing was changed.
    #[error("{}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The thing does not exist, or the caller may not see it (the same answer, on purpose).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller did not say who they are, or said it wrongly (no or bad session or key).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Too many attempts; try again after `retry_after_secs`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// The request is valid but the market state refuses it (capacity gone, units booked).
    #[error("{message}")]
    Conflict {
        message: String,
        /// The earliest start that would fit the same request, when there is one.
        next_start: Option<DateTime<Utc>>,
        /// Reservations in the way (e.g. of a blackout over booked units).
        conflicting_reservations: Vec<i64>,
    },
    /// The customer agreed to a total that is no longer the price; nothing was booked.
    #[error(
        "the price changed: the total is now {}, not the {} agreed to; review the new total and send it again",
        crate::money::format_cents(*total_cents, currency),
        crate::money::format_cents(*agreed_cents, currency)
    )]
    PriceChanged {
        agreed_cents: i64,
        total_cents: i64,
        currency: String,
    },
    /// The database failed; details are logged, never shown.
    #[error("the marketplace database is unavailable right now; please try again in a moment")]
    Unavailable(#[source] sqlx::Error),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            next_start: None,
            conflicting_reservations: Vec::new(),
        }
    }

    /// Whether the failed request may still have changed something: the database broke off
    /// after it was sent a statement, so what it was asked may or may not have committed.
    pub fn may_have_taken_effect(&self) -> bool {
        matches!(self, Self::Unavailable(e) if may_have_taken_effect(e))
    }

    /// The HTTP status each front door answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 422,
            Self::NotFound(_) => 404,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::TooManyRequests { .. } => 429,
            Self::Conflict { .. } | Self::PriceChanged { .. } => 409,
            Self::Unavailable(_) => 503,
        }
    }
}

/// What PostgreSQL refused, read in one place: the named constraints and the SQLSTATEs the
/// services act on. Call sites match on this, never on names or codes of their own, and the
/// database's own text never reaches a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The transaction lost a race and may be tried again: an exclusion violation (a unit
    /// taken meanwhile, 23P01), a serialization failure (40001) or a deadlock (40P01).
    Race,
    /// A unit would serve two things at once (`allocation_unit_overlap`, 23P01).
    UnitTaken,
    /// A reservation with this request key exists (`reservation_request_key`).
    RequestKeyTaken,
    /// A reservation would commit holding fewer units than it sold
    /// (`reservation_fully_allocated`).
    PartialBooking,
    /// There is a platform administrator already (`app_user_one_platform_admin`).
    SecondAdministrator,
    /// The operator has a site of that name (`site_operator_name_key`).
    SiteNameTaken,
    /// A payout reference is used by another payout (`ledger_transaction_payout_ref_key`).
    PayoutReferenceTaken,
    /// A pool's sale windows would overlap (`availability_window_no_overlap`).
    SaleWindowOverlap,
    /// A reservation was asked to give up unit-hours it does not hold
    /// (`allocation_piece_held`).
    PieceNotHeld,
    /// Only a confirmed reservation can be credited (`reservation_credit_confirmed`).
    NotCreditable,
    /// A firm reservation's hours were to be taken for something other than an incident
    /// (`firm_reservation_keeps_its_hours`).
    FirmKeepsItsHours,
    /// A hold was to be confirmed after it expired (`reservation_hold_expired`).
    HoldExpired,
    /// A reservation part of which was resold was to be cancelled
    /// (`resold_reservation_stands`).
    ResoldStands,
    /// No such offer of the customer's (`incident_offer_missing`).
    OfferMissing,
    /// The offer was answered, expired, or its hours are past (`incident_offer_closed`).
    OfferClosed,
    /// The offered capacity was booked meanwhile (`incident_offer_taken`).
    OfferTaken,
    /// A building site's pool without forward terms was to be booked
    /// (`pool_not_on_sale_before_delivery`).
    NotSoldBeforeDelivery,
    /// A forward booking was to start before its pool's delivery
    /// (`forward_starts_at_delivery`).
    BeforeDelivery,
    /// A delivery was to move later past a reservation that cannot be shifted whole: hours
    /// of it were taken or are on resale (`forward_delay_keeps_contracts_whole`).
    DelayBreaksContract,
    /// Another check refused the change (23514): the request breaks a rule the database keeps.
    Check,
}

/// The refusal in `err`, when it is one the services act on.
pub fn refusal(err: &sqlx::Error) -> Option<Refusal> {
    let db = err.as_database_error()?;
    let by_name = match db.constraint() {
        Some("reservation_request_key") => Some(Refusal::RequestKeyTaken),
        Some("reservation_fully_allocated") => Some(Refusal::PartialBooking),
        Some("app_user_one_platform_admin") => Some(Refusal::SecondAdministrator),
        Some("site_operator_name_key") => Some(Refusal::SiteNameTaken),
        Some("ledger_transaction_payout_ref_key") => Some(Refusal::PayoutReferenceTaken),
        Some("allocation_unit_overlap") => Some(Refusal::UnitTaken),
        Some("availability_window_no_overlap") => Some(Refusal::SaleWindowOverlap),
        Some("allocation_piece_held") => Some(Refusal::PieceNotHeld),
        Some("reservation_credit_confirmed") => Some(Refusal::NotCreditable),
        Some("firm_reservation_keeps_its_hours") => Some(Refusal::FirmKeepsItsHours),
        Some("reservation_hold_expired") => Some(Refusal::HoldExpired),
        Some("resold_reservation_stands") => Some(Refusal::ResoldStands),
        Some("incident_offer_missing") => Some(Refusal::OfferMissing),
        Some("incident_offer_closed") => Some(Refusal::OfferClosed),
        Some("incident_offer_taken") => Some(Refusal::OfferTaken),
        Some("pool_not_on_sale_before_delivery") => Some(Refusal::NotSoldBeforeDelivery),
        Some("forward_starts_at_delivery") => Some(Refusal::BeforeDelivery),
        Some("forward_delay_keeps_contracts_whole") => Some(Refusal::DelayBreaksContract),
        _ => None,
    };
    if by_name.is_some() {
        return by_name;
    }
    if is_retryable(err) {
        return Some(Refusal::Race);
    }
    (db.code().as_deref() == Some("23514")).then_some(Refusal::Check)
}

/// SQLSTATEs of transactions that lost a race and may simply be tried again:
/// exclusion violation, serialization failure, deadlock, and a lock wait that ran out its
/// bound (55P03; only a transaction that set one, see `settlement::EXACT_LOCK_WAIT`).
pub fn is_retryable(err: &sqlx::Error) -> bool {
    matches!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("23P01" | "40001" | "40P01" | "55P03")
    )
}

impl From<sqlx::Error> for ServiceError {
    fn from(err: sqlx::Error) -> Self {
        // PostgreSQL text can't hold a NUL character (SQLSTATE 22021); that is the caller's
        // input, not a database failure.
        if err.as_database_error().and_then(|e| e.code()).as_deref() == Some("22021") {
            return Self::invalid(
                "text",
                "text may not contain NUL (zero) characters; remove them and try again",
            );
        }
        // The site's status changed between the booking's check and its insert: the same
        // refusal the check gives.
        match refusal(&err) {
            Some(Refusal::NotSoldBeforeDelivery) => {
                return Self::invalid("pool_id", crate::forward::NOT_SOLD_BEFORE_DELIVERY)
            }
            Some(Refusal::BeforeDelivery) => return Self::invalid(
                "start",
                "this pool's capacity is delivered later; forward capacity starts at its delivery",
            ),
            _ => {}
        }
        if is_retryable(&err) {
            // A race that ran out of retries is the caller's conflict, never a 500.
            return Self::conflict(
                "someone else changed this capacity at the same moment; please try again",
            );
        }
        tracing::error!(error = %err, "database error");
        Self::Unavailable(err)
    }
}

impl From<crate::window::WindowError> for ServiceError {
    fn from(e: crate::window::WindowError) -> Self {
        Self::invalid("window", e.to_string())
    }
}

impl From<crate::window::TermsError> for ServiceError {
    fn from(e: crate::window::TermsError) -> Self {
        Self::invalid("window", e.to_string())
    }
}

impl From<crate::pricing::QuantityError> for ServiceError {
    fn from(e: crate::pricing::QuantityError) -> Self {
        Self::invalid("quantity", e.to_string())
    }
}

/// Whether `err` leaves open if the statement it answers was carried out. Only a broken
/// connection does (I/O, a garbled protocol, the session ended by the server, e.g. by a
/// shutdown, SQLSTATE classes 08 and 57P): COMMIT may have been sent and done with its
/// acknowledgement lost. Failing to get a connection, and errors the database reports for a
/// statement, leave nothing behind (the transaction rolls back).
pub fn may_have_taken_effect(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => false,
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_connection_may_have_committed_but_no_connection_did_not() {
        let broken = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(may_have_taken_effect(&broken));
        assert!(ServiceError::Unavailable(broken).may_have_taken_effect());
        assert!(!may_have_taken_effect(&sqlx::Error::PoolTimedOut));
        assert!(!ServiceError::conflict("taken").may_have_taken_effect());
    }
}
