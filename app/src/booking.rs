//! Quotes and reservations as every front door shows them (shared with the browser).

use crate::pricing::{PriceBreakdown, Quantity};
use crate::window::ReservationState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a customer asks to price or reserve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BookingRequest {
    pub pool_id: i64,
    pub quantity: Quantity,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The exact price of a request; holds no capacity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Quote {
    pub pool_id: i64,
    pub units: i64,
    /// Set when the request was rounded up to whole nodes or blocks.
    pub note: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub hours: i64,
    pub currency: String,
    pub unit_price_cents: i64,
    pub price: PriceBreakdown,
    /// Units free over the whole window right now.
    pub free_units: i64,
    /// The earliest start that fits when the window itself does not.
    pub next_start: Option<DateTime<Utc>>,
}

/// A reservation (the contract), with its state at the time it was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Reservation {
    pub id: i64,
    pub pool_id: i64,
    pub pool_name: String,
    pub site_id: i64,
    pub customer_id: i64,
    pub units: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub state: ReservationState,
    pub currency: String,
    pub unit_price_cents: i64,
    pub base_cents: i64,
    pub discount_cents: i64,
    pub fee_cents: i64,
    pub total_cents: i64,
    pub refund_cents: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// What cancelling now would refund, shown before the customer confirms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CancelPreview {
    pub reservation_id: i64,
    pub notice_hours: i64,
    pub refund_bp: i64,
    pub refund_cents: i64,
    pub total_cents: i64,
}
