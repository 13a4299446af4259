//! What an operator sees of its own business (shared with the browser): its sites, its
//! blackouts and the bookings customers made on its capacity.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OperatorSite {
    pub id: i64,
    pub name: String,
    pub country: String,
    pub region: String,
    pub grid_region: String,
    pub energy_source: String,
    pub interconnect_kw: i64,
    pub pue: f64,
    pub status: String,
    pub pools: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OperatorBlackout {
    pub id: i64,
    pub site_id: i64,
    pub pool_id: i64,
    pub pool_name: String,
    pub units: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: String,
}

/// A reservation on the operator's capacity: who, what, when, and the price locked in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Booking {
    pub id: i64,
    pub site_id: i64,
    pub pool_id: i64,
    pub pool_name: String,
    pub customer_name: String,
    pub units: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub state: String,
    pub currency: String,
    pub total_cents: i64,
    pub created_at: DateTime<Utc>,
}
