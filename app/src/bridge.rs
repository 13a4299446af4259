//! The bridge in numbers: a site converting from mining to AI earns from its fleet until its
//! hall is delivered, and from the forward contracts sold on the hall after. Pure arithmetic
//! over what the database holds, shared by the server and the browser: mining revenue until
//! the delivery, the forward AI revenue contracted, the firm AI load over time (each pool
//! counted from its delivery, the interconnect check's rule), and how much of the hall's
//! first [`PRESOLD_DAYS`] days is sold.

use crate::utilization::{load_steps, Load, PowerStep};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The days after a delivery that the pre-sold share and the chart cover.
pub const PRESOLD_DAYS: i64 = 90;

/// A site's mining fleet, when its figures are known.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Mining {
    /// The fleet's hashrate in TH/s.
    pub hashrate_th: i64,
    /// What a PH/s earns in a day, in cents.
    pub hashprice_cents_per_ph_day: i64,
    /// The fleet's efficiency in J/TH.
    pub j_per_th: f64,
}

impl Mining {
    /// The fleet's draw in watts: J/TH × TH/s.
    pub fn draw_w(&self) -> i64 {
        (self.hashrate_th as f64 * self.j_per_th).round() as i64
    }

    /// What the fleet earns over `hours`, in cents (rounded down): PH/s × hashprice × days.
    pub fn cents_over(&self, hours: i64) -> i64 {
        i128::from(self.hashrate_th)
            .checked_mul(i128::from(self.hashprice_cents_per_ph_day))
            .and_then(|c| c.checked_mul(i128::from(hours.max(0))))
            .and_then(|c| i64::try_from(c / (1000 * 24)).ok())
            .unwrap_or(i64::MAX)
    }
}

/// A pool of the site as the bridge counts it: its firm load, from its delivery (none: it
/// is ready now).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListedPool {
    pub delivery_at: Option<DateTime<Utc>>,
    pub units: i64,
    pub firm_w: i64,
}

/// A confirmed or held reservation on the site that is not over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contract {
    /// Its pool's delivery, when the pool is sold forward.
    pub pool_delivery_at: Option<DateTime<Utc>>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub units: i64,
    pub firm_w: i64,
    /// Its price before the platform's fee; counted as revenue when confirmed and forward.
    pub revenue_cents: i64,
    pub forward: bool,
    pub confirmed: bool,
}

/// What the database says of one site, before the arithmetic.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteFacts {
    pub site_id: i64,
    pub site_name: String,
    pub building: bool,
    pub delivered_at: Option<DateTime<Utc>>,
    pub interconnect_kw: i64,
    pub currency: String,
    pub mining: Option<Mining>,
    pub pools: Vec<ListedPool>,
    pub contracts: Vec<Contract>,
    pub late_credits_cents: i64,
}

/// The bridge of one site, as the site and economics pages and the API show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Bridge {
    pub site_id: i64,
    pub site_name: String,
    /// Still being built (not yet delivered).
    pub building: bool,
    pub interconnect_kw: i64,
    pub currency: String,
    /// The chart's span: from this hour to [`PRESOLD_DAYS`] days after the delivery.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The hall's delivery: the earliest committed delivery of its forward pools while the
    /// site is being built, or when it was delivered. None: nothing is sold forward.
    pub delivery_at: Option<DateTime<Utc>>,
    pub mining: Option<Mining>,
    /// What the fleet earns from now until the delivery (none once delivered, or when the
    /// fleet's figures are unknown).
    pub mining_until_delivery_cents: Option<i64>,
    /// Forward contracts confirmed on the site and their price before the platform's fee.
    pub forward_contracts: i64,
    pub forward_revenue_cents: i64,
    /// Late-delivery credits paid so far.
    pub late_credits_cents: i64,
    /// Firm AI capacity listed over time, each pool from its delivery.
    pub listed: Vec<PowerStep>,
    /// Firm AI load contracted over time.
    pub contracted: Vec<PowerStep>,
    /// Unit-hours of the forward pools' first [`PRESOLD_DAYS`] days after their delivery:
    /// sold, and in all.
    pub presold_unit_hours: i64,
    pub hall_unit_hours: i64,
}

impl Bridge {
    /// The arithmetic, as of the hour `from`. None when the site sells nothing forward and
    /// is not being built: it has no bridge to show.
    pub fn of(facts: SiteFacts, from: DateTime<Utc>) -> Option<Self> {
        let forward_deliveries = facts.pools.iter().filter_map(|p| p.delivery_at);
        let delivery_at = if facts.building {
            forward_deliveries.min()
        } else {
            facts
                .delivered_at
                .filter(|_| facts.contracts.iter().any(|c| c.forward))
        };
        if !facts.building && delivery_at.is_none() {
            return None;
        }
        let to = delivery_at.unwrap_or(from).max(from) + Duration::days(PRESOLD_DAYS);
        let mining_until_delivery_cents = match (facts.building, delivery_at, facts.mining) {
            (true, Some(d), Some(m)) => Some(m.cents_over((d - from).num_hours())),
            _ => None,
        };
        let listed: Vec<Load> = facts
            .pools
            .iter()
            .map(|p| Load {
                start: counts_from(facts.building, p.delivery_at, from),
                end: to,
                watts: p.firm_w,
            })
            .collect();
        let contracted: Vec<Load> = facts
            .contracts
            .iter()
            .map(|c| Load {
                start: c.start,
                end: c.end,
                watts: c.firm_w,
            })
            .collect();
        let window = |d: DateTime<Utc>| (d, d + Duration::days(PRESOLD_DAYS));
        let hall_unit_hours = facts
            .pools
            .iter()
            .filter(|p| p.delivery_at.is_some())
            .map(|p| p.units * PRESOLD_DAYS * 24)
            .sum();
        let presold_unit_hours = facts
            .contracts
            .iter()
            .filter_map(|c| {
                let (w0, w1) = window(c.pool_delivery_at?);
                let (s, e) = (c.start.max(w0), c.end.min(w1));
                (e > s).then(|| (e - s).num_hours() * c.units)
            })
            .sum();
        let forward = facts.contracts.iter().filter(|c| c.forward && c.confirmed);
        Some(Self {
            site_id: facts.site_id,
            site_name: facts.site_name,
            building: facts.building,
            interconnect_kw: facts.interconnect_kw,
            currency: facts.currency,
            from,
            to,
            delivery_at,
            mining: facts.mining,
            mining_until_delivery_cents,
            forward_contracts: forward.clone().count() as i64,
            forward_revenue_cents: forward.map(|c| c.revenue_cents).sum(),
            late_credits_cents: facts.late_credits_cents,
            listed: load_steps(&listed, from, to),
            contracted: load_steps(&contracted, from, to),
            presold_unit_hours,
            hall_unit_hours,
        })
    }

    /// The share of the hall's first days sold, in basis points.
    pub fn presold_bp(&self) -> i64 {
        if self.hall_unit_hours == 0 {
            0
        } else {
            self.presold_unit_hours * 10_000 / self.hall_unit_hours
        }
    }

    /// The highest firm AI load contracted in the span.
    pub fn peak_contracted_w(&self) -> i64 {
        self.contracted
            .iter()
            .map(|s| s.committed_w)
            .max()
            .unwrap_or(0)
    }

    /// The fleet's draw while it runs, at most the interconnect.
    pub fn mining_draw_w(&self) -> Option<i64> {
        self.mining
            .map(|m| m.draw_w().min(self.interconnect_kw * 1000))
    }
}

/// When a pool's firm load starts to count against the interconnect: its delivery on a site
/// still being built, `now` otherwise (and for a delivery already past). The bridge's chart
/// and the interconnect check both count by it.
pub fn counts_from(
    building: bool,
    delivery_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    delivery_at.filter(|_| building).unwrap_or(now).max(now)
}

/// The first time the firm load of `loads` (each counted from its time) exceeds `cap_w`:
/// that time and the load from then. Load listed on a site never falls, so this is `None`
/// exactly when the total fits; what the time adds is when it would stop fitting.
pub fn first_over(loads: &[(DateTime<Utc>, i64)], cap_w: i64) -> Option<(DateTime<Utc>, i64)> {
    let from = loads.iter().map(|l| l.0).min()?;
    let to = loads.iter().map(|l| l.0).max()? + Duration::hours(1);
    let loads: Vec<Load> = loads
        .iter()
        .map(|&(start, watts)| Load {
            start,
            end: to,
            watts,
        })
        .collect();
    load_steps(&loads, from, to)
        .into_iter()
        .find(|s| s.committed_w > cap_w)
        .map(|s| (s.at, s.committed_w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, d, 0, 0, 0).unwrap()
    }

    fn facts() -> SiteFacts {
        SiteFacts {
            site_id: 1,
            site_name: "Hall".into(),
            building: true,
            delivered_at: None,
            interconnect_kw: 70_000,
            currency: "USD".into(),
            // 2 EH/s at 21 J/TH: 42 MW, earning 2,000 PH × $48 = $96,000 a day.
            mining: Some(Mining {
                hashrate_th: 2_000_000,
                hashprice_cents_per_ph_day: 4_800,
                j_per_th: 21.0,
            }),
            pools: vec![
                ListedPool {
                    delivery_at: Some(day(11)),
                    units: 10,
                    firm_w: 1_000_000,
                },
                ListedPool {
                    delivery_at: Some(day(21)),
                    units: 4,
                    firm_w: 400_000,
                },
            ],
            contracts: vec![Contract {
                pool_delivery_at: Some(day(11)),
                start: day(11),
                end: day(16),
                units: 5,
                firm_w: 500_000,
                revenue_cents: 1_234_500,
                forward: true,
                confirmed: true,
            }],
            late_credits_cents: 0,
        }
    }

    #[test]
    fn mining_earns_until_the_first_delivery_and_ai_is_contracted_after() {
        let b = Bridge::of(facts(), day(1)).unwrap();
        assert_eq!(b.delivery_at, Some(day(11)));
        assert_eq!(b.mining_until_delivery_cents, Some(10 * 9_600_000));
        assert_eq!(b.mining_draw_w(), Some(42_000_000));
        assert_eq!(b.forward_contracts, 1);
        assert_eq!(b.forward_revenue_cents, 1_234_500);
        assert_eq!(b.to, day(11) + Duration::days(PRESOLD_DAYS));
        // Listed capacity counts each pool from its delivery.
        let listed: Vec<_> = b.listed.iter().map(|s| (s.at, s.committed_w)).collect();
        assert_eq!(
            listed,
            vec![(day(1), 0), (day(11), 1_000_000), (day(21), 1_400_000)]
        );
        let contracted: Vec<_> = b.contracted.iter().map(|s| (s.at, s.committed_w)).collect();
        assert_eq!(
            contracted,
            vec![(day(1), 0), (day(11), 500_000), (day(16), 0)]
        );
        assert_eq!(b.peak_contracted_w(), 500_000);
        // 5 units × 120 hours of 14 units × 90 days.
        assert_eq!(b.presold_unit_hours, 600);
        assert_eq!(b.hall_unit_hours, 14 * 90 * 24);
        assert_eq!(b.presold_bp(), 600 * 10_000 / (14 * 90 * 24));
    }

    #[test]
    fn a_delivered_site_keeps_its_bridge_only_while_it_has_forward_contracts() {
        let mut f = facts();
        f.building = false;
        f.delivered_at = Some(day(9));
        let b = Bridge::of(f.clone(), day(10)).unwrap();
        assert_eq!(b.delivery_at, Some(day(9)));
        assert_eq!(b.mining_until_delivery_cents, None);
        // Live: every pool counts from now.
        assert_eq!(b.listed[0].committed_w, 1_400_000);
        f.contracts.clear();
        assert_eq!(Bridge::of(f, day(10)), None);
    }

    #[test]
    fn a_building_site_without_forward_terms_shows_no_delivery() {
        let mut f = facts();
        f.pools.iter_mut().for_each(|p| p.delivery_at = None);
        f.contracts.clear();
        let b = Bridge::of(f, day(1)).unwrap();
        assert_eq!(b.delivery_at, None);
        assert_eq!(b.mining_until_delivery_cents, None);
        assert_eq!(b.hall_unit_hours, 0);
        assert_eq!(b.presold_bp(), 0);
    }

    #[test]
    fn the_interconnect_is_exceeded_from_the_delivery_that_tips_it() {
        let loads = [(day(1), 600), (day(21), 300), (day(11), 200)];
        assert_eq!(first_over(&loads, 1_100), None);
        assert_eq!(first_over(&loads, 1_000), Some((day(21), 1_100)));
        assert_eq!(first_over(&loads, 700), Some((day(11), 800)));
        assert_eq!(first_over(&loads, 500), Some((day(1), 600)));
        assert_eq!(first_over(&[], 0), None);
        // Two loads from the same hour count together.
        assert_eq!(
            first_over(&[(day(1), 5), (day(1), 5)], 9),
            Some((day(1), 10))
        );
    }

    #[test]
    fn a_pool_counts_from_its_delivery_only_while_its_site_is_built() {
        assert_eq!(counts_from(true, Some(day(11)), day(1)), day(11));
        assert_eq!(counts_from(false, Some(day(11)), day(1)), day(1));
        assert_eq!(
            counts_from(true, Some(day(1)), day(11)),
            day(11),
            "a late one, from now"
        );
        assert_eq!(counts_from(true, None, day(1)), day(1));
    }

    #[test]
    fn mining_revenue_is_whole_cents_and_never_overflows() {
        let m = Mining {
            hashrate_th: 1_500,
            hashprice_cents_per_ph_day: 4_801,
            j_per_th: 20.0,
        };
        // 1.5 PH/s × $48.01 × 1 day = $72.015 → 7,201 cents.
        assert_eq!(m.cents_over(24), 7_201);
        assert_eq!(m.cents_over(-5), 0);
        let huge = Mining {
            hashrate_th: i64::MAX,
            hashprice_cents_per_ph_day: i64::MAX,
            j_per_th: 1.0,
        };
        assert_eq!(huge.cents_over(24), i64::MAX);
    }
}
