//! The public market: what is listed, shared by the server and the browser.

use crate::pricing::PriceBreakdown;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What kind of capacity a pool sells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    /// GPU nodes, priced per GPU-hour.
    Gpu,
    /// Power blocks for customers' own hardware, priced per kW-month.
    Power,
}

impl PoolKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gpu" => Some(Self::Gpu),
            "power" => Some(Self::Power),
            _ => None,
        }
    }

    /// The unit a price is quoted in.
    pub fn price_unit(self) -> &'static str {
        match self {
            Self::Gpu => "GPU-hour",
            Self::Power => "kW-month",
        }
    }

    /// What one concrete unit of the pool is called, in the plural.
    pub fn unit_noun(self) -> &'static str {
        match self {
            Self::Gpu => "nodes",
            Self::Power => "blocks",
        }
    }
}

/// One listed pool as the market overview shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PoolListing {
    pub pool_id: i64,
    pub pool_name: String,
    pub kind: PoolKind,
    pub site_name: String,
    pub country: String,
    pub region: String,
    pub grid_region: String,
    pub energy_source: String,
    pub site_live: bool,
    /// e.g. "8 × H100 SXM 80 GB · InfiniBand" or "500 kW blocks · 2N · liquid".
    pub spec: String,
    pub unit_count: i32,
    /// GPUs across all nodes (GPU pools only).
    pub gpus: Option<i64>,
    /// kW across all blocks (power pools only).
    pub power_kw: Option<i64>,
    pub price_cents: i64,
    pub currency: String,
}

/// The headline figures of the market plus its listed pools.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub live: LiveTotals,
    pub pools: Vec<PoolListing>,
}

/// Live totals of what is listed on live sites, read straight from PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveTotals {
    pub gpus: i64,
    pub sites: i64,
    pub power_kw: i64,
}

/// The market overview: headline counts and every listed pool.
#[server(endpoint = "market_overview")]
pub async fn market_overview() -> Result<Overview, ServerFnError> {
    let db = crate::services::db_from_context()?;
    crate::services::market::overview(&db)
        .await
        .map_err(crate::services::unavailable)
}

/// Counts the GPUs, sites and power listed right now (the "refresh" control).
#[server(endpoint = "live_count")]
pub async fn live_count() -> Result<LiveTotals, ServerFnError> {
    let db = crate::services::db_from_context()?;
    crate::services::market::live_count(&db)
        .await
        .map_err(crate::services::unavailable)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SearchSort {
    /// Cheapest unit price first.
    #[default]
    Price,
    /// Earliest start first.
    EarliestStart,
    /// Lowest total for the request first.
    TotalCost,
}

/// A pool that fits a search, with the quote for the request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SearchHit {
    pub pool_id: i64,
    pub pool_name: String,
    pub kind: PoolKind,
    pub site_name: String,
    pub country: String,
    pub region: String,
    pub grid_region: String,
    pub energy_source: String,
    pub gpu_model: Option<String>,
    pub interconnect: Option<String>,
    pub unit_price_cents: i64,
    pub currency: String,
    pub units: i64,
    pub note: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub price: PriceBreakdown,
}
