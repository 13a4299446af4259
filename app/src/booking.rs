//! Quotes and reservations as every front door shows them (shared with the browser).

use crate::pricing::{PriceBreakdown, Quantity};
use crate::window::ReservationState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which kind of contract: firm capacity keeps every hour it was sold; interruptible is
/// cheaper, and a firm booking may take its units after the pool's notice period, crediting
/// the hours lost at the price paid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    #[default]
    Firm,
    Interruptible,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firm => "firm",
            Self::Interruptible => "interruptible",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "firm" => Some(Self::Firm),
            "interruptible" => Some(Self::Interruptible),
            _ => None,
        }
    }
}

/// What a customer asks to price or reserve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BookingRequest {
    pub pool_id: i64,
    pub quantity: Quantity,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `firm` (the default) or `interruptible`.
    #[serde(default)]
    pub tier: Tier,
    /// The total the customer agreed to (a quote's `price.total_cents`). When set and the
    /// price is now different, the request is refused with the new total and nothing is
    /// booked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreed_total_cents: Option<i64>,
}

/// The longest a hold may last, and how long one lasts when the request does not say.
pub const MAX_HOLD_MINUTES: i64 = 30;
pub const DEFAULT_HOLD_MINUTES: i64 = 15;

/// A request to hold capacity at its quoted price: the units leave sale at once, and
/// confirming within `minutes` books them at exactly the held total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HoldRequest {
    #[serde(flatten)]
    pub request: BookingRequest,
    /// How long to hold, 1 to 30 minutes; 15 when left out.
    #[serde(default)]
    pub minutes: Option<i64>,
}

/// A firm request that fits only by preempting interruptible capacity: how many units it
/// would take from interruptible reservations, and from when (never before the pool's
/// notice period has run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Preemption {
    pub units: i64,
    pub from: DateTime<Utc>,
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
    pub tier: Tier,
    /// Set when a firm request fits only by preempting interruptible reservations.
    pub preemption: Option<Preemption>,
    /// Set for capacity sold ahead of its site's delivery: the terms the booking would lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<crate::forward::ForwardTerms>,
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
    pub tier: Tier,
    pub currency: String,
    pub unit_price_cents: i64,
    pub base_cents: i64,
    pub discount_cents: i64,
    pub fee_cents: i64,
    pub total_cents: i64,
    pub refund_cents: Option<i64>,
    /// Given back so far for hours not delivered (credits), in cents.
    pub credited_cents: i64,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// For a hold (`state` held): when it ends unless confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<DateTime<Utc>>,
    /// Set when it was bought on resale: the listing it came from. A resale is final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resale_listing_id: Option<i64>,
    /// Set when it was sold ahead of its site's delivery: the forward terms it keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<crate::forward::ForwardTerms>,
}

/// How far to extend a reservation: to a new end (the API) or by a number of hours (the
/// browser's form). Either way the service checks it against the pool's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtendTo {
    End(DateTime<Utc>),
    ByHours(i64),
}

/// The most hours one extension adds (a year).
pub const MAX_EXTENSION_HOURS: i64 = 8760;

/// One unit serving a reservation over a range of hours. A reservation booked whole has one
/// per unit over its whole term; a move or an early end shows as more, shorter pieces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReservationHolding {
    /// The unit's number in its pool (node or block 1, 2, ...).
    pub unit: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A reservation with the units that serve it and the credits given on it: what its page
/// shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationDetail {
    pub reservation: Reservation,
    pub holdings: Vec<ReservationHolding>,
    pub credits: Vec<ReservationCredit>,
}

/// Money given back on a reservation for hours not delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReservationCredit {
    pub id: i64,
    pub amount_cents: i64,
    /// The unit-hours it pays for (0 for a flat credit).
    pub unit_hours: i64,
    /// `ended_early`, `preempted`, `curtailed`, `incident`, `sla` or `goodwill`.
    pub reason: String,
    pub memo: String,
    pub effective_at: DateTime<Utc>,
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
    /// Already given back as credits; the policy refunds a share of the rest.
    pub credited_cents: i64,
}

impl ReservationCredit {
    /// The reason in words.
    pub fn reason_text(&self) -> &'static str {
        match self.reason.as_str() {
            "ended_early" => "hours ended early",
            "preempted" => "preemption",
            "curtailed" => "grid curtailment",
            "incident" => "hardware incident",
            "sla" => "service level credit",
            _ => "goodwill credit",
        }
    }
}
