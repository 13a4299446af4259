//! Resale as every front door shows it (shared with the browser): a customer's listing of
//! the future part of a reservation, and the offers buyers see beside the operator's
//! capacity.

use crate::market::PoolKind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a seller lists: `units` units of reservation `reservation_id` from `start` (a whole
/// hour, in the future) to the reservation's end, at `unit_hour_price_cents` per unit
/// (node or block) and hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewListing {
    pub reservation_id: i64,
    pub units: i64,
    pub start: DateTime<Utc>,
    pub unit_hour_price_cents: i64,
}

/// How many units to buy of a listing, for the listed hours (all that are left when left
/// out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Purchase {
    #[serde(default)]
    pub units: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ListingState {
    /// On sale (until its start).
    Open,
    /// Every unit sold.
    Sold,
    /// Taken off sale by its seller.
    Withdrawn,
    /// Its start passed with units unsold.
    Ended,
}

impl ListingState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Sold => "sold",
            Self::Withdrawn => "withdrawn",
            Self::Ended => "ended",
        }
    }
}

/// The terms every resale is bought on, said wherever one is offered or held.
pub const RESALE_TERMS: &str = "A resale is final: it cannot be cancelled or extended, and it runs on the pool's service terms for the listed hours.";

/// A listing as its seller sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Listing {
    pub id: i64,
    pub reservation_id: i64,
    pub pool_id: i64,
    pub pool_name: String,
    pub units: i64,
    pub units_sold: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub unit_hour_price_cents: i64,
    pub currency: String,
    pub state: ListingState,
    /// What the sales so far brought in, after the platform's fee.
    pub proceeds_cents: i64,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// An open listing as buyers see it: where, what, which hours, at what price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ResaleOffer {
    pub listing_id: i64,
    pub pool_id: i64,
    pub pool_name: String,
    pub site_name: String,
    pub region: String,
    pub kind: PoolKind,
    pub gpu_model: Option<String>,
    /// GPUs per node, or kW per block.
    pub unit_size: i64,
    pub units_left: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub hours: i64,
    pub unit_hour_price_cents: i64,
    /// Every unit left, for every listed hour.
    pub total_cents: i64,
    pub currency: String,
}

impl ResaleOffer {
    /// The price per GPU-hour (GPU pools) or per kW-hour (power), for comparing with list
    /// prices, rounded to the cent.
    pub fn per_size_hour_cents(&self) -> i64 {
        (self.unit_hour_price_cents + self.unit_size / 2) / self.unit_size.max(1)
    }

    pub fn unit_word(&self) -> &'static str {
        match (self.kind, self.units_left) {
            (PoolKind::Gpu, 1) => "node",
            (PoolKind::Gpu, _) => "nodes",
            (PoolKind::Power, 1) => "block",
            (PoolKind::Power, _) => "blocks",
        }
    }
}
