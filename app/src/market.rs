//! The public market: what is listed, shared by the server and the browser.

use crate::availability::Step;
use crate::pricing::{self, CancellationTier, PriceBreakdown, Quantity, TermDiscount, UnitShape};
use crate::window::Terms;
use chrono::{DateTime, Utc};
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
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gpu => "gpu",
            Self::Power => "power",
        }
    }

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

/// A pool's interruptible tier: cheaper than its firm capacity, and preemptible by firm
/// bookings after `notice_hours` whole hours' notice (0 allowed), with every lost hour
/// credited at the price paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InterruptibleOffer {
    /// Per GPU-hour or per kW-month, as the pool's firm price; lower than it.
    pub price_cents: i64,
    pub notice_hours: i64,
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
    /// The interruptible tier, when the pool sells one.
    pub interruptible: Option<InterruptibleOffer>,
    /// The service level: the monthly availability promise and its credit tiers.
    pub sla: crate::incidents::SlaTerms,
    /// The pool's record over the last 90 days ("no history yet" until it has sold some).
    pub reliability: crate::incidents::Reliability,
    /// The forward terms, when the pool sells ahead of its site's delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<crate::forward::ForwardTerms>,
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
    /// Most reliable first (the delivered share over 90 days), pools with no history last.
    Reliability,
}

/// Which capacity a search looks at: ready now, sold ahead of a site's delivery, or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Both (the default); forward capacity only from its delivery.
    #[default]
    Any,
    /// Only capacity on live sites.
    Ready,
    /// Only forward capacity: pools on sites still being built, from their delivery.
    Forward,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::Ready => "ready",
            Self::Forward => "forward",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "any" | "" => Some(Self::Any),
            "ready" => Some(Self::Ready),
            "forward" => Some(Self::Forward),
            _ => None,
        }
    }
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
    /// The tier the hit is priced at.
    pub tier: crate::booking::Tier,
    /// The pool's record over the last 90 days.
    pub reliability: crate::incidents::Reliability,
    /// Set for forward capacity (a site still being built): its delivery and terms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<crate::forward::ForwardTerms>,
}

/// How far ahead a pool's page charts its free units.
pub const POOL_CHART_DAYS: i64 = 90;

/// A pool's page: the listing, its terms and site facts, and its free units over the next
/// [`POOL_CHART_DAYS`] days.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolDetail {
    pub listing: PoolListing,
    pub shape: UnitShape,
    pub terms: Terms,
    pub discounts: Vec<TermDiscount>,
    pub cancellation: Vec<CancellationTier>,
    pub fee_bp: i64,
    pub pue: f64,
    pub cooling: String,
    pub interconnect_kw: i64,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub steps: Vec<Step>,
}

impl PoolDetail {
    /// The price the browser previews while the customer types; the server re-prices.
    pub fn preview(
        &self,
        quantity: Quantity,
        hours: i64,
        tier: crate::booking::Tier,
    ) -> Result<(i64, Option<String>, PriceBreakdown), String> {
        let unit_price = match (tier, self.listing.interruptible) {
            (crate::booking::Tier::Firm, _) => self.listing.price_cents,
            (crate::booking::Tier::Interruptible, Some(o)) => o.price_cents,
            (crate::booking::Tier::Interruptible, None) => {
                return Err("this pool sells firm capacity only".into())
            }
        };
        if hours < self.terms.min_term_hours || hours > self.terms.max_term_hours {
            return Err(format!(
                "this pool sells terms of {} to {} hours",
                self.terms.min_term_hours, self.terms.max_term_hours
            ));
        }
        let need = pricing::units_for(self.shape, quantity).map_err(|e| e.to_string())?;
        if need.units > i64::from(self.listing.unit_count) {
            return Err(format!(
                "this pool has {} units in all",
                self.listing.unit_count
            ));
        }
        let priced = match self.shape {
            UnitShape::GpuNode { gpus_per_node } => pricing::Priced::Gpu {
                nodes: need.units,
                gpus_per_node,
                cents_per_gpu_hour: unit_price,
            },
            UnitShape::PowerBlock { block_kw } => pricing::Priced::Power {
                blocks: need.units,
                block_kw,
                cents_per_kw_month: unit_price,
            },
        };
        Ok((
            need.units,
            need.note,
            pricing::price(priced, hours, &self.discounts, self.fee_bp),
        ))
    }

    pub fn cancellation_terms(&self) -> Vec<CancellationTier> {
        if self.cancellation.is_empty() {
            pricing::DEFAULT_CANCELLATION.to_vec()
        } else {
            self.cancellation.clone()
        }
    }
}
