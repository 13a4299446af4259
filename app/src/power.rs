//! Firm AI load: the power a site commits to AI out of its interconnect. GPU nodes draw
//! their IT load times the site's PUE; power blocks are sold as facility power, as is.

/// Firm load of `nodes` GPU nodes at `node_power_w` IT watts each and `pue`, in whole
/// watts rounded up. 64 nodes × 10 200 W × PUE 1.25 = 816 000 W.
pub fn gpu_firm_w(nodes: i64, node_power_w: i64, pue: f64) -> i64 {
    (nodes as f64 * node_power_w as f64 * pue).ceil() as i64
}

/// Firm load of `blocks` power blocks of `block_kw` kW, in watts.
pub fn blocks_firm_w(blocks: i64, block_kw: i64) -> i64 {
    blocks * block_kw * 1000
}

/// Firm load of `units` units of a pool of `kind` (`gpu` or `power`), from the pool's node
/// IT power or block size as stored: the one rule the interconnect chart and a grid event's
/// shed plan share.
pub fn pool_firm_w(
    kind: &str,
    units: i64,
    node_power_w: Option<i32>,
    block_kw: Option<i32>,
    pue: f64,
) -> i64 {
    match kind {
        "gpu" => gpu_firm_w(units, i64::from(node_power_w.unwrap_or(0)), pue),
        _ => blocks_firm_w(units, i64::from(block_kw.unwrap_or(0))),
    }
}

/// [`pool_firm_w`] of one unit.
pub fn unit_firm_w(kind: &str, node_power_w: Option<i32>, block_kw: Option<i32>, pue: f64) -> i64 {
    pool_firm_w(kind, 1, node_power_w, block_kw, pue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_load_includes_cooling_overhead() {
        assert_eq!(gpu_firm_w(64, 10_200, 1.25), 816_000);
        assert_eq!(gpu_firm_w(1, 3_500, 1.3), 4_550);
        assert_eq!(gpu_firm_w(1, 1, 1.15), 2, "rounded up, never down");
    }

    #[test]
    fn a_pool_counts_by_its_kind() {
        assert_eq!(pool_firm_w("gpu", 2, Some(10_200), None, 1.25), 25_500);
        assert_eq!(unit_firm_w("power", None, Some(1_000), 1.25), 1_000_000);
    }

    #[test]
    fn blocks_are_facility_power() {
        assert_eq!(blocks_firm_w(20, 1_000), 20_000_000);
    }
}
