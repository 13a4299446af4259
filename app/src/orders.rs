//! Standing orders as every front door shows them (shared with the browser): a search left
//! open until matching capacity appears, filled at most once through the booking path.

use crate::booking::Tier;
use crate::market::PoolKind;
use crate::pricing::Quantity;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The most orders an organization may have open at once.
pub const MAX_OPEN_ORDERS: i64 = 100;

/// What a customer leaves: the search to keep running, and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewOrder {
    /// `gpu` or `power`; implied by GPUs or kW.
    #[serde(default)]
    pub kind: Option<PoolKind>,
    /// Exact GPU model, e.g. "H100 SXM" (any when left out).
    #[serde(default)]
    pub gpu_model: Option<String>,
    pub quantity: Quantity,
    /// Duration in hours, 1 to 8,760.
    pub hours: i64,
    /// The earliest and latest start accepted (whole hours, UTC).
    pub earliest_start: DateTime<Utc>,
    pub latest_start: DateTime<Utc>,
    /// Country code, region or grid region.
    #[serde(default)]
    pub region: Option<String>,
    /// Part of the energy source, e.g. "hydro".
    #[serde(default)]
    pub energy_source: Option<String>,
    #[serde(default)]
    pub tier: Tier,
    /// The most the reservation may cost in all, in cents (any price when left out).
    #[serde(default)]
    pub max_total_cents: Option<i64>,
    /// When the order lapses unfilled; at the latest start when left out.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum OrderState {
    Open,
    Filled,
    Cancelled,
    Expired,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Filled => "filled",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "filled" => Some(Self::Filled),
            "cancelled" => Some(Self::Cancelled),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// A standing order and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StandingOrder {
    pub id: i64,
    pub state: OrderState,
    pub kind: Option<PoolKind>,
    pub gpu_model: Option<String>,
    pub quantity: Quantity,
    pub hours: i64,
    pub earliest_start: DateTime<Utc>,
    pub latest_start: DateTime<Utc>,
    pub region: Option<String>,
    pub energy_source: Option<String>,
    pub tier: Tier,
    pub max_total_cents: Option<i64>,
    pub expires_at: DateTime<Utc>,
    /// The reservation that filled it.
    pub reservation_id: Option<i64>,
    /// When it was filled, cancelled or expired.
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl StandingOrder {
    /// What it asks for, in words: "16 GPUs of H100 SXM for 24 h, firm, in Texas".
    pub fn summary(&self) -> String {
        let amount = match self.quantity {
            Quantity::Gpus(n) => format!("{n} GPU{}", if n == 1 { "" } else { "s" }),
            Quantity::Kw(n) => format!("{n} kW"),
            Quantity::Units(n) => format!("{n} unit{}", if n == 1 { "" } else { "s" }),
        };
        let mut s = amount;
        if let Some(m) = &self.gpu_model {
            s.push_str(&format!(" of {m}"));
        }
        s.push_str(&format!(" for {} h, {}", self.hours, self.tier.as_str()));
        if let Some(r) = &self.region {
            s.push_str(&format!(", in {r}"));
        }
        if let Some(e) = &self.energy_source {
            s.push_str(&format!(", {e} power"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_says_what_it_asks_for() {
        let t = chrono::DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let o = StandingOrder {
            id: 1,
            state: OrderState::Open,
            kind: None,
            gpu_model: Some("H100 SXM".into()),
            quantity: Quantity::Gpus(16),
            hours: 24,
            earliest_start: t,
            latest_start: t,
            region: Some("Texas".into()),
            energy_source: None,
            tier: Tier::Firm,
            max_total_cents: None,
            expires_at: t,
            reservation_id: None,
            closed_at: None,
            created_at: t,
        };
        assert_eq!(o.summary(), "16 GPUs of H100 SXM for 24 h, firm, in Texas");
        for s in ["open", "filled", "cancelled", "expired"] {
            assert_eq!(OrderState::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(OrderState::parse("closed"), None);
    }
}
