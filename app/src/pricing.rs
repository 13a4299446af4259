//! The pricing rules, pure and shared: the browser previews a quote with exactly the
//! arithmetic the server uses when it locks a price. All amounts are integer cents.

use serde::{Deserialize, Serialize};

/// Hours in the billing month that power-block prices (per kW-month) are quoted in:
/// 8 760 hours a year / 12.
pub const HOURS_PER_MONTH: i64 = 730;

/// The platform's fee, in basis points of the discounted price, unless configured otherwise.
pub const DEFAULT_PLATFORM_FEE_BP: i64 = 300;

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
pub struct TermDiscount {
    pub min_hours: i64,
    pub discount_bp: i64,
}

/// The exact price with its breakdown: `total = base - discount + fee`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
