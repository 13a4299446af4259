//! The pricing rules, pure and shared: the browser previews a quote with exactly the
//! arithmetic the server uses when it locks a price. All amounts are integer cents.

use serde::{Deserialize, Serialize};

/// Hours in the billing month that power-block prices (per kW-month) are quoted in:
/// 8 760 hours a year / 12.
pub const HOURS_PER_MONTH: i64 = 730;

/// The platform's fee, in basis points of the discounted price, unless configured otherwise.
pub const DEFAULT_PLATFORM_FEE_BP: i64 = 300;

/// The platform's fee rate in basis points as this server is configured
/// (`RIGSHIFT_PLATFORM_FEE_BP`); server functions read it from the request context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformFee(pub i64);

impl Default for PlatformFee {
    fn default() -> Self {
        Self(DEFAULT_PLATFORM_FEE_BP)
    }
}

/// What is being priced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Priced {
    /// `nodes` GPU nodes of `gpus_per_node` GPUs at `cents_per_gpu_hour`.
    Gpu {
        nodes: i64,
        gpus_per_node: i64,
        cents_per_gpu_hour: i64,
    },
    /// `blocks` power blocks of `block_kw` at `cents_per_kw_month`.
    Power {
        blocks: i64,
        block_kw: i64,
        cents_per_kw_month: i64,
    },
}

/// A term discount: reservations of at least `min_hours` get `discount_bp` basis points off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TermDiscount {
    pub min_hours: i64,
    pub discount_bp: i64,
}

/// The exact price with its breakdown: `total = base - discount + fee`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PriceBreakdown {
    pub base_cents: i64,
    pub discount_bp: i64,
    pub discount_cents: i64,
    pub fee_bp: i64,
    pub fee_cents: i64,
    pub total_cents: i64,
}

/// `value × bp / 10 000`, rounded half up, in 128-bit arithmetic so it cannot overflow.
fn apply_bp(value: i64, bp: i64) -> i64 {
    let v = i128::from(value) * i128::from(bp);
    ((v + 5_000) / 10_000) as i64
}

/// The base price of `hours` of `what`, before discounts and fees.
pub fn base_cents(what: Priced, hours: i64) -> i64 {
    match what {
        Priced::Gpu {
            nodes,
            gpus_per_node,
            cents_per_gpu_hour,
        } => nodes * gpus_per_node * hours * cents_per_gpu_hour,
        Priced::Power {
            blocks,
            block_kw,
            cents_per_kw_month,
        } => {
            // kW × cents/kW-month × hours / 730, rounded half up.
            let num =
                i128::from(blocks * block_kw) * i128::from(cents_per_kw_month) * i128::from(hours);
            let den = i128::from(HOURS_PER_MONTH);
            ((2 * num + den) / (2 * den)) as i64
        }
    }
}

/// The best (largest) discount whose threshold the term reaches; 0 when none does.
pub fn discount_bp_for(hours: i64, tiers: &[TermDiscount]) -> i64 {
    tiers
        .iter()
        .filter(|t| hours >= t.min_hours)
        .map(|t| t.discount_bp)
        .max()
        .unwrap_or(0)
}

/// Prices `hours` of `what` with the pool's term discounts and the platform fee.
pub fn price(what: Priced, hours: i64, tiers: &[TermDiscount], fee_bp: i64) -> PriceBreakdown {
    let base = base_cents(what, hours);
    let discount_bp = discount_bp_for(hours, tiers);
    let discount = apply_bp(base, discount_bp);
    let fee = apply_bp(base - discount, fee_bp);
    PriceBreakdown {
        base_cents: base,
        discount_bp,
        discount_cents: discount,
        fee_bp,
        fee_cents: fee,
        total_cents: base - discount + fee,
    }
}

/// What one unit of a pool is, for turning a request into whole units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnitShape {
    GpuNode { gpus_per_node: i64 },
    PowerBlock { block_kw: i64 },
}

/// How much capacity a customer asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// GPUs (GPU pools), rounded up to whole nodes.
    Gpus(i64),
    /// kW (power pools), rounded up to whole blocks.
    Kw(i64),
    /// Whole nodes or blocks.
    Units(i64),
}

impl Quantity {
    /// The kind of amount and the amount, as the database queries take them (`'gpus'`,
    /// `'kw'` or `'units'`), so SQL can round to each pool's own unit size.
    pub fn sql_parts(self) -> (&'static str, i64) {
        match self {
            Quantity::Gpus(n) => ("gpus", n),
            Quantity::Kw(n) => ("kw", n),
            Quantity::Units(n) => ("units", n),
        }
    }
}

/// Whole units for a request, with a note when it was rounded up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitsNeeded {
    pub units: i64,
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum QuantityError {
    #[error("ask for at least one (got {0})")]
    NotPositive(i64),
    #[error("this is a GPU pool: ask for GPUs or nodes, not kW")]
    KwFromGpuPool,
    #[error("this is a power-block pool: ask for kW or blocks, not GPUs")]
    GpusFromPowerPool,
    #[error("that is more than any pool holds; ask for at most 100,000 units")]
    TooLarge,
}

/// Turns a request into whole units of `shape`, rounding up and saying so.
pub fn units_for(shape: UnitShape, q: Quantity) -> Result<UnitsNeeded, QuantityError> {
    let (amount, per_unit, what, unit) = match (shape, q) {
        (_, Quantity::Units(n)) => {
            if n < 1 {
                return Err(QuantityError::NotPositive(n));
            }
            if n > 100_000 {
                return Err(QuantityError::TooLarge);
            }
            return Ok(UnitsNeeded {
                units: n,
                note: None,
            });
        }
        (UnitShape::GpuNode { gpus_per_node }, Quantity::Gpus(g)) => {
            (g, gpus_per_node, "GPUs", "node")
        }
        (UnitShape::PowerBlock { block_kw }, Quantity::Kw(kw)) => (kw, block_kw, "kW", "block"),
        (UnitShape::GpuNode { .. }, Quantity::Kw(_)) => return Err(QuantityError::KwFromGpuPool),
        (UnitShape::PowerBlock { .. }, Quantity::Gpus(_)) => {
            return Err(QuantityError::GpusFromPowerPool)
        }
    };
    if amount < 1 {
        return Err(QuantityError::NotPositive(amount));
    }
    if amount / per_unit.max(1) > 100_000 {
        return Err(QuantityError::TooLarge);
    }
    let per_unit = per_unit.max(1);
    let units = (amount + per_unit - 1) / per_unit;
    let note = (units * per_unit != amount).then(|| {
        format!(
            "{amount} {what} rounded up to {units} whole {unit}{} ({} {what})",
            if units == 1 { "" } else { "s" },
            units * per_unit
        )
    });
    Ok(UnitsNeeded { units, note })
}

/// A cancellation tier: cancelling at least `min_notice_hours` before the start refunds
/// `refund_bp` basis points of the total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CancellationTier {
    pub min_notice_hours: i64,
    pub refund_bp: i64,
}

/// The policy of a pool that has not set its own: full refund a week ahead, half two
/// days ahead, nothing after that.
pub const DEFAULT_CANCELLATION: &[CancellationTier] = &[
    CancellationTier {
        min_notice_hours: 168,
        refund_bp: 10_000,
    },
    CancellationTier {
        min_notice_hours: 48,
        refund_bp: 5_000,
    },
    CancellationTier {
        min_notice_hours: 0,
        refund_bp: 0,
    },
];

/// The refund share for cancelling `notice_hours` before the start (the best tier reached).
pub fn refund_bp_for(notice_hours: i64, tiers: &[CancellationTier]) -> i64 {
    let tiers = if tiers.is_empty() {
        DEFAULT_CANCELLATION
    } else {
        tiers
    };
    tiers
        .iter()
        .filter(|t| notice_hours >= t.min_notice_hours)
        .map(|t| t.refund_bp)
        .max()
        .unwrap_or(0)
}

/// The refund of `total_cents` at `refund_bp`, rounded half up.
pub fn refund_cents(total_cents: i64, refund_bp: i64) -> i64 {
    apply_bp(total_cents, refund_bp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_round_up_to_whole_nodes_and_say_so() {
        let node = UnitShape::GpuNode { gpus_per_node: 8 };
        assert_eq!(
            units_for(node, Quantity::Gpus(16)).unwrap(),
            UnitsNeeded {
                units: 2,
                note: None
            }
        );
        let r = units_for(node, Quantity::Gpus(20)).unwrap();
        assert_eq!(r.units, 3);
        assert_eq!(
            r.note.as_deref(),
            Some("20 GPUs rounded up to 3 whole nodes (24 GPUs)")
        );
        assert_eq!(
            units_for(node, Quantity::Gpus(0)),
            Err(QuantityError::NotPositive(0))
        );
        assert_eq!(
            units_for(node, Quantity::Kw(500)),
            Err(QuantityError::KwFromGpuPool)
        );
    }

    #[test]
    fn kw_round_up_to_whole_blocks() {
        let block = UnitShape::PowerBlock { block_kw: 500 };
        let r = units_for(block, Quantity::Kw(501)).unwrap();
        assert_eq!(r.units, 2);
        assert_eq!(
            r.note.as_deref(),
            Some("501 kW rounded up to 2 whole blocks (1000 kW)")
        );
        assert_eq!(units_for(block, Quantity::Units(3)).unwrap().units, 3);
        assert_eq!(
            units_for(block, Quantity::Gpus(8)),
            Err(QuantityError::GpusFromPowerPool)
        );
        assert_eq!(
            units_for(block, Quantity::Units(-1)),
            Err(QuantityError::NotPositive(-1))
        );
    }

    #[test]
    fn refunds_follow_the_best_tier_reached() {
        assert_eq!(refund_bp_for(200, DEFAULT_CANCELLATION), 10_000);
        assert_eq!(refund_bp_for(168, DEFAULT_CANCELLATION), 10_000);
        assert_eq!(refund_bp_for(167, DEFAULT_CANCELLATION), 5_000);
        assert_eq!(refund_bp_for(47, DEFAULT_CANCELLATION), 0);
        assert_eq!(refund_bp_for(-5, DEFAULT_CANCELLATION), 0);
        assert_eq!(
            refund_bp_for(100, &[]),
            5_000,
            "no tiers: the default policy"
        );
        // Half of $100.01 is $50.005 → $50.01 (half up).
        assert_eq!(refund_cents(10_001, 5_000), 5_001);
    }

    const H100: Priced = Priced::Gpu {
        nodes: 2,
        gpus_per_node: 8,
        cents_per_gpu_hour: 219,
    };

    #[test]
    fn gpu_base_is_gpus_times_hours_times_rate() {
        // 2 nodes × 8 GPUs × 24 h × $2.19 = $840.96
        assert_eq!(base_cents(H100, 24), 84_096);
    }

    #[test]
    fn power_base_prorates_the_month_and_rounds_half_up() {
        // 1 block × 500 kW × $120/kW-month × 730 h / 730 = $60,000.00 exactly
        let p = Priced::Power {
            blocks: 1,
            block_kw: 500,
            cents_per_kw_month: 12_000,
        };
        assert_eq!(base_cents(p, 730), 6_000_000);
        // 1 kW × 1 cent × 365 h / 730 = 0.5 cent → rounds up to 1
        let tiny = Priced::Power {
            blocks: 1,
            block_kw: 1,
            cents_per_kw_month: 1,
        };
        assert_eq!(base_cents(tiny, 365), 1);
        assert_eq!(base_cents(tiny, 364), 0);
    }

    #[test]
    fn picks_the_largest_discount_reached() {
        let tiers = [
            TermDiscount {
                min_hours: 168,
                discount_bp: 500,
            },
            TermDiscount {
                min_hours: 720,
                discount_bp: 1000,
            },
        ];
        assert_eq!(discount_bp_for(167, &tiers), 0);
        assert_eq!(discount_bp_for(168, &tiers), 500);
        assert_eq!(discount_bp_for(10_000, &tiers), 1000);
    }

    #[test]
    fn breakdown_adds_up_with_discount_and_fee() {
        let tiers = [TermDiscount {
            min_hours: 168,
            discount_bp: 500,
        }];
        // base: 16 GPUs × 168 h × $2.19 = $5,886.72; 5% off = $294.34 (294.336 → 294.34);
        // fee 3% of $5,592.38 = $167.77 (167.7714 → 167.77); total $5,760.15.
        let b = price(H100, 168, &tiers, 300);
        assert_eq!(b.base_cents, 588_672);
        assert_eq!(b.discount_cents, 29_434);
        assert_eq!(b.fee_cents, 16_777);
        assert_eq!(b.total_cents, 576_015);
        assert_eq!(b.total_cents, b.base_cents - b.discount_cents + b.fee_cents);
    }

    #[test]
    fn huge_orders_do_not_overflow_the_basis_point_maths() {
        let p = Priced::Gpu {
            nodes: 10_000,
            gpus_per_node: 8,
            cents_per_gpu_hour: 10_000,
        };
        let b = price(
            p,
            8_760,
            &[TermDiscount {
                min_hours: 1,
                discount_bp: 9_000,
            }],
            300,
        );
        assert_eq!(b.total_cents, b.base_cents - b.discount_cents + b.fee_cents);
        assert!(b.total_cents > 0);
    }
}
