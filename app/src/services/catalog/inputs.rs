//! What an operator sends to list a site or a pool, and the field checks it must pass
//! (every problem is reported at once, by field).

use crate::pricing::{CancellationTier, TermDiscount};
use crate::services::error::{FieldError, ServiceError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteInput {
    pub name: String,
    /// ISO 3166-1 alpha-2, e.g. "US".
    pub country: String,
    pub region: String,
    /// e.g. "ERCOT".
    pub grid_region: String,
    pub energy_source: String,
    pub interconnect_kw: i64,
    pub pue: f64,
    pub cooling: String,
    /// "building" or "live".
    pub status: String,
    pub hashrate_th: i64,
    pub fleet_efficiency_j_th: Option<f64>,
    pub hashprice_usd_cents_per_ph_day: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PoolSpec {
    Gpu {
        gpu_model: String,
        gpus_per_node: i64,
        gpu_memory_gb: i64,
        /// "infiniband", "roce" or "ethernet".
        interconnect: String,
        node_power_w: i64,
    },
    Power {
        block_kw: i64,
        /// "N", "N+1" or "2N".
        redundancy: String,
        cooling: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PoolInput {
    pub name: String,
    pub spec: PoolSpec,
    pub unit_count: i64,
    pub price_cents: i64,
    pub min_term_hours: i64,
    pub max_term_hours: i64,
    pub min_lead_hours: i64,
    pub discounts: Vec<TermDiscount>,
    /// Empty: the default policy ([`crate::pricing::DEFAULT_CANCELLATION`]).
    pub cancellation: Vec<CancellationTier>,
    /// The interruptible tier, when the pool sells one (absent: firm only).
    #[serde(default)]
    pub interruptible: Option<crate::market::InterruptibleOffer>,
    /// The service level. Absent: the default (99.5%; 10%, 25%, 50% of the month's charge
    /// under 99.5%, 99% and 95%) for a new pool, unchanged for an update.
    #[serde(default)]
    pub sla: Option<crate::incidents::SlaTerms>,
    /// Forward terms, for a pool sold ahead of its site's delivery (a site still being
    /// built). Absent or null: none; a building site's pool without them cannot be booked.
    #[serde(default)]
    pub forward: Option<crate::forward::ForwardTerms>,
}

struct Errors(Vec<FieldError>);

impl Errors {
    fn check(&mut self, ok: bool, field: &str, message: impl Into<String>) {
        if !ok {
            self.0.push(FieldError {
                field: field.into(),
                message: message.into(),
            });
        }
    }
    fn text(&mut self, value: &str, field: &str, max: usize) {
        let len = value.trim().chars().count();
        self.check(
            len >= 1 && len <= max,
            field,
            format!("required, at most {max} characters"),
        );
    }
    fn finish(self) -> Result<(), ServiceError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid(self.0))
        }
    }
}

pub(super) fn validate_site(s: &SiteInput) -> Result<(), ServiceError> {
    let mut e = Errors(Vec::new());
    e.text(&s.name, "name", 200);
    e.check(
        s.country.len() == 2 && s.country.chars().all(|c| c.is_ascii_uppercase()),
        "country",
        "use the two-letter country code, e.g. US, SE, PY",
    );
    e.text(&s.region, "region", 200);
    e.text(&s.grid_region, "grid_region", 100);
    e.text(&s.energy_source, "energy_source", 100);
    e.text(&s.cooling, "cooling", 100);
    e.check(
        s.interconnect_kw > 0 && s.interconnect_kw <= 5_000_000,
        "interconnect_kw",
        "between 1 kW and 5 GW",
    );
    e.check(
        s.pue.is_finite() && (1.0..=3.0).contains(&s.pue),
        "pue",
        "a PUE between 1.0 and 3.0",
    );
    e.check(
        s.status == "building" || s.status == "live",
        "status",
        "either building or live",
    );
    e.check(s.hashrate_th >= 0, "hashrate_th", "zero or more TH/s");
    e.check(
        s.fleet_efficiency_j_th
            .is_none_or(|j| j.is_finite() && j > 0.0 && j < 1000.0),
        "fleet_efficiency_j_th",
        "a positive J/TH, e.g. 21.5",
    );
    e.check(
        s.hashprice_usd_cents_per_ph_day.is_none_or(|c| c >= 0),
        "hashprice_usd_cents_per_ph_day",
        "zero or more cents per PH/s per day",
    );
    e.finish()
}

pub(super) fn validate_pool(p: &PoolInput) -> Result<(), ServiceError> {
    let mut e = Errors(Vec::new());
    e.text(&p.name, "name", 200);
    e.check(
        p.unit_count >= 1 && p.unit_count <= 100_000,
        "unit_count",
        "between 1 and 100,000 units",
    );
    e.check(
        p.price_cents >= 1 && p.price_cents <= 100_000_000,
        "price_cents",
        "a positive price in cents",
    );
    e.check(p.min_term_hours >= 1, "min_term_hours", "at least 1 hour");
    e.check(
        p.max_term_hours >= p.min_term_hours && p.max_term_hours <= 24 * 365 * 5,
        "max_term_hours",
        "at least the minimum term and at most five years",
    );
    e.check(
        p.min_lead_hours >= 0 && p.min_lead_hours <= 24 * 365,
        "min_lead_hours",
        "between 0 hours and a year",
    );
    if let Some(o) = &p.interruptible {
        e.check(
            o.price_cents >= 1 && o.price_cents < p.price_cents,
            "interruptible_price_cents",
            "the interruptible price is positive and lower than the firm price",
        );
        e.check(
            (0..=720).contains(&o.notice_hours),
            "interruptible_notice_hours",
            "a notice of 0 to 720 whole hours",
        );
    }
    if let Some(Err(m)) = p.sla.as_ref().map(crate::incidents::SlaTerms::check) {
        e.check(false, "sla", m);
    }
    if let Some(Err((field, m))) = p.forward.as_ref().map(crate::forward::ForwardTerms::check) {
        e.check(false, field, m);
    }
    for d in &p.discounts {
        e.check(
            d.min_hours >= 1 && (1..=9_000).contains(&d.discount_bp),
            "discounts",
            "each tier needs at least 1 hour and 0.01 % to 90 %",
        );
    }
    for t in &p.cancellation {
        e.check(
            t.min_notice_hours >= 0 && (0..=10_000).contains(&t.refund_bp),
            "cancellation",
            "each tier needs a notice of 0 hours or more and a refund of 0 % to 100 %",
        );
    }
    match &p.spec {
        PoolSpec::Gpu {
            gpu_model,
            gpus_per_node,
            gpu_memory_gb,
            interconnect,
            node_power_w,
        } => {
            e.text(gpu_model, "gpu_model", 100);
            e.check(
                (1..=72).contains(gpus_per_node),
                "gpus_per_node",
                "between 1 and 72",
            );
            e.check(
                *gpu_memory_gb >= 1 && *gpu_memory_gb <= 10_000,
                "gpu_memory_gb",
                "a positive number of GB",
            );
            e.check(
                ["infiniband", "roce", "ethernet"].contains(&interconnect.as_str()),
                "interconnect",
                "infiniband, roce or ethernet",
            );
            e.check(
                *node_power_w >= 1 && *node_power_w <= 200_000,
                "node_power_w",
                "IT watts per node, e.g. 10200",
            );
        }
        PoolSpec::Power {
            block_kw,
            redundancy,
            cooling,
        } => {
            e.check(
                *block_kw >= 1 && *block_kw <= 100_000,
                "block_kw",
                "a positive block size in kW",
            );
            e.check(
                ["N", "N+1", "2N"].contains(&redundancy.as_str()),
                "redundancy",
                "N, N+1 or 2N",
            );
            e.text(cooling, "cooling", 100);
        }
    }
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_validation_lists_every_problem() {
        let p = PoolInput {
            interruptible: None,
            sla: None,
            forward: None,
            name: " ".into(),
            spec: PoolSpec::Gpu {
                gpu_model: "H100".into(),
                gpus_per_node: 0,
                gpu_memory_gb: 80,
                interconnect: "carrier pigeon".into(),
                node_power_w: 10_200,
            },
            unit_count: 0,
            price_cents: 199,
            min_term_hours: 24,
            max_term_hours: 12,
            min_lead_hours: 0,
            discounts: vec![],
            cancellation: vec![],
        };
        let ServiceError::Invalid(errs) = validate_pool(&p).unwrap_err() else {
            panic!()
        };
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "unit_count",
                "max_term_hours",
                "gpus_per_node",
                "interconnect"
            ]
        );
    }
}
