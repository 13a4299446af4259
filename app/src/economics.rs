//! The mining trade-off: what a megawatt-hour earns sold as AI capacity versus burnt by the
//! site's mining fleet. Pure arithmetic, shared by the server and the browser (the what-if
//! price is recomputed as the operator types). Results are cents as `f64`: these are rates
//! for comparison, never amounts that are charged, so they are rounded only for display.

use crate::pricing::HOURS_PER_MONTH;

/// Facility energy one GPU-hour takes, in MWh: the node's IT power shared by its GPUs,
/// times the site's PUE (cooling and losses).
pub fn mwh_per_gpu_hour(node_power_w: i64, gpus_per_node: i64, pue: f64) -> f64 {
    if gpus_per_node <= 0 {
        return 0.0;
    }
    node_power_w as f64 / gpus_per_node as f64 * pue / 1_000_000.0
}

/// What one MWh earns as GPU time at `cents_per_gpu_hour`.
pub fn ai_cents_per_mwh(cents_per_gpu_hour: f64, mwh_per_gpu_hour: f64) -> f64 {
    if mwh_per_gpu_hour <= 0.0 {
        return 0.0;
    }
    cents_per_gpu_hour / mwh_per_gpu_hour
}

/// What one MWh earns as a power block priced per kW-month (730 hours): a kW-month is
/// 0.73 MWh of facility power.
pub fn block_cents_per_mwh(cents_per_kw_month: i64) -> f64 {
    cents_per_kw_month as f64 / (HOURS_PER_MONTH as f64 / 1000.0)
}

/// What one MWh earns mining: the hashprice (cents per PH/s per day) over the energy a
/// PH/s takes in a day at the fleet's efficiency. 1 PH/s = 1,000 TH/s; at `j_per_th` it
/// draws `j_per_th` kW, i.e. `0.024 × j_per_th` MWh a day. Energy at the miners (their
/// overhead is small next to a GPU hall's and not part of the fleet figure).
pub fn mining_cents_per_mwh(hashprice_cents_per_ph_day: i64, j_per_th: f64) -> f64 {
    if j_per_th <= 0.0 {
        return 0.0;
    }
    hashprice_cents_per_ph_day as f64 / (0.024 * j_per_th)
}

/// The GPU-hour price at which AI earns exactly what mining does per MWh.
pub fn break_even_cents_per_gpu_hour(mining_cents_per_mwh: f64, mwh_per_gpu_hour: f64) -> f64 {
    mining_cents_per_mwh * mwh_per_gpu_hour
}

/// One pool of an operator with what its economics need: the site's power and mining
/// figures, the pool's hardware and price, and what customers booked on it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolEconomics {
    pub site_id: i64,
    pub site_name: String,
    pub pue: f64,
    pub hashprice_cents_per_ph_day: Option<i64>,
    pub fleet_efficiency_j_th: Option<f64>,
    pub pool_id: i64,
    pub pool_name: String,
    /// `gpu` or `power`.
    pub kind: String,
    pub gpus_per_node: Option<i64>,
    pub node_power_w: Option<i64>,
    pub block_kw: Option<i64>,
    /// Per GPU-hour (GPU pools) or per kW-month (power blocks).
    pub price_cents: i64,
    /// Confirmed bookings: their price before the platform's fee, and unit-hours.
    pub booked_cents: i64,
    pub booked_unit_hours: i64,
}

impl PoolEconomics {
    /// Facility MWh one unit (a node or a block) takes in an hour.
    pub fn mwh_per_unit_hour(&self) -> f64 {
        match (self.kind.as_str(), self.node_power_w, self.block_kw) {
            ("gpu", Some(w), _) => w as f64 * self.pue / 1_000_000.0,
            ("power", _, Some(kw)) => kw as f64 / 1000.0,
            _ => 0.0,
        }
    }

    /// What a MWh earns at the list price.
    pub fn list_cents_per_mwh(&self) -> f64 {
        match self.kind.as_str() {
            "gpu" => ai_cents_per_mwh(
                self.price_cents as f64,
                mwh_per_gpu_hour(
                    self.node_power_w.unwrap_or(0),
                    self.gpus_per_node.unwrap_or(0),
                    self.pue,
                ),
            ),
            _ => block_cents_per_mwh(self.price_cents),
        }
    }

    /// What a MWh earned in the confirmed bookings (after term discounts), if any.
    pub fn booked_cents_per_mwh(&self) -> Option<f64> {
        let mwh = self.booked_unit_hours as f64 * self.mwh_per_unit_hour();
        (mwh > 0.0).then(|| self.booked_cents as f64 / mwh)
    }

    /// What a MWh earns mining at this site, when its hashprice and fleet are known.
    pub fn mining_cents_per_mwh(&self) -> Option<f64> {
        match (self.hashprice_cents_per_ph_day, self.fleet_efficiency_j_th) {
            (Some(h), Some(e)) if e > 0.0 => Some(mining_cents_per_mwh(h, e)),
            _ => None,
        }
    }

    /// The GPU-hour price at which this pool earns what mining does (GPU pools only).
    pub fn break_even_cents_per_gpu_hour(&self) -> Option<f64> {
        let mining = self.mining_cents_per_mwh()?;
        (self.kind == "gpu").then(|| {
            break_even_cents_per_gpu_hour(
                mining,
                mwh_per_gpu_hour(
                    self.node_power_w.unwrap_or(0),
                    self.gpus_per_node.unwrap_or(0),
                    self.pue,
                ),
            )
        })
    }

    /// What a MWh would earn at `cents_per_gpu_hour` (GPU pools only).
    pub fn what_if_cents_per_mwh(&self, cents_per_gpu_hour: f64) -> Option<f64> {
        (self.kind == "gpu").then(|| {
            ai_cents_per_mwh(
                cents_per_gpu_hour,
                mwh_per_gpu_hour(
                    self.node_power_w.unwrap_or(0),
                    self.gpus_per_node.unwrap_or(0),
                    self.pue,
                ),
            )
        })
    }
}

/// Cents with a fractional part, as dollars for people: `125490.2` → `$1,254.90`.
pub fn format_rate(cents: f64) -> String {
    crate::money::format_cents(cents.round() as i64, "USD")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn h100_node_of_10_2_kw_at_pue_1_25_takes_1_59375_kwh_per_gpu_hour() {
        // 10,200 W / 8 GPUs = 1,275 W; × 1.25 = 1,593.75 W for one hour.
        assert!(close(mwh_per_gpu_hour(10_200, 8, 1.25), 0.001_593_75));
        assert_eq!(mwh_per_gpu_hour(10_200, 0, 1.25), 0.0);
    }

    #[test]
    fn two_dollars_per_gpu_hour_earn_1254_90_per_mwh() {
        // 200 cents / 0.00159375 MWh = 125,490.196 cents.
        let ai = ai_cents_per_mwh(200.0, mwh_per_gpu_hour(10_200, 8, 1.25));
        assert!(close(ai, 125_490.196_078_431));
        assert_eq!(format_rate(ai), "$1,254.90");
    }

    #[test]
    fn hashprice_48_dollars_at_22_j_per_th_earns_90_91_per_mwh() {
        // 1 PH/s at 22 J/TH draws 22 kW: 528 kWh a day for $48.00 → $90.909… per MWh.
        let mining = mining_cents_per_mwh(4_800, 22.0);
        assert!(close(mining, 9_090.909_090_909));
        assert_eq!(format_rate(mining), "$90.91");
        assert_eq!(mining_cents_per_mwh(4_800, 0.0), 0.0);
    }

    #[test]
    fn break_even_for_that_h100_against_that_fleet_is_14_49_cents_per_gpu_hour() {
        // $90.909 per MWh × 0.00159375 MWh = 14.489 cents per GPU-hour.
        let be = break_even_cents_per_gpu_hour(
            mining_cents_per_mwh(4_800, 22.0),
            mwh_per_gpu_hour(10_200, 8, 1.25),
        );
        assert!(close(be, 14.488_636_363));
        // At the break-even price AI and mining earn the same per MWh.
        let mwh = mwh_per_gpu_hour(10_200, 8, 1.25);
        assert!(close(
            ai_cents_per_mwh(be, mwh),
            mining_cents_per_mwh(4_800, 22.0)
        ));
    }

    #[test]
    fn a_pool_compares_its_list_price_bookings_and_what_if_with_mining() {
        let p = PoolEconomics {
            site_id: 1,
            site_name: "Site".into(),
            pue: 1.25,
            hashprice_cents_per_ph_day: Some(4_800),
            fleet_efficiency_j_th: Some(22.0),
            pool_id: 2,
            pool_name: "H100".into(),
            kind: "gpu".into(),
            gpus_per_node: Some(8),
            node_power_w: Some(10_200),
            block_kw: None,
            price_cents: 200,
            // 10 node-hours booked for $152.00 (5 % off $160.00).
            booked_cents: 15_200,
            booked_unit_hours: 10,
        };
        // A node-hour: 10,200 W × 1.25 = 12.75 kWh.
        assert!(close(p.mwh_per_unit_hour(), 0.012_75));
        assert_eq!(format_rate(p.list_cents_per_mwh()), "$1,254.90");
        // $152.00 over 0.1275 MWh = $1,192.16 per MWh.
        assert_eq!(format_rate(p.booked_cents_per_mwh().unwrap()), "$1,192.16");
        assert_eq!(format_rate(p.mining_cents_per_mwh().unwrap()), "$90.91");
        assert!(close(
            p.break_even_cents_per_gpu_hour().unwrap(),
            14.488_636_363
        ));
        // What if $0.10 per GPU-hour: $62.75 per MWh, below mining.
        assert_eq!(
            format_rate(p.what_if_cents_per_mwh(10.0).unwrap()),
            "$62.75"
        );
        let unknown = PoolEconomics {
            hashprice_cents_per_ph_day: None,
            booked_unit_hours: 0,
            ..p
        };
        assert_eq!(unknown.mining_cents_per_mwh(), None);
        assert_eq!(unknown.booked_cents_per_mwh(), None);
    }

    #[test]
    fn a_150_dollar_kw_month_block_earns_205_48_per_mwh() {
        // 15,000 cents / 0.73 MWh = 20,547.945 cents.
        assert!(close(block_cents_per_mwh(15_000), 20_547.945_205_479));
    }
}
