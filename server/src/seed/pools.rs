//! The demo capacity pools on those sites (GPU clusters of several models and power blocks)
//! and the term discounts and cancellation policy every demo pool offers.

use app::pricing::TermDiscount;

/// GPU models and their usual node configuration: (model, memory GB, node power W, interconnect).
pub(super) fn gpu_spec(model: &str) -> (i32, i32, &'static str) {
    match model {
        "H100 SXM" => (80, 10_200, "infiniband"),
        "H200" => (141, 10_200, "infiniband"),
        "B200" => (192, 14_300, "infiniband"),
        "MI300X" => (192, 10_000, "roce"),
        _ => (24, 3_500, "ethernet"), // RTX 4090
    }
}

/// The interruptible price the demo's H100 and MI300X pools offer beside their firm price
/// (about a third less, with two hours' notice); the other models sell firm capacity only.
pub(super) fn interruptible_price(model: &str, firm_cents: i64) -> Option<i64> {
    matches!(model, "H100 SXM" | "MI300X").then(|| firm_cents * 65 / 100)
}

pub(super) enum PoolSpec {
    Gpu {
        model: &'static str,
        nodes: i32,
        cents_per_gpu_hour: i64,
    },
    Power {
        block_kw: i32,
        blocks: i32,
        redundancy: &'static str,
        cooling: &'static str,
        cents_per_kw_month: i64,
    },
}

/// (site, pool name, spec)
pub(super) fn pools() -> Vec<(&'static str, &'static str, PoolSpec)> {
    use PoolSpec::*;
    vec![
        (
            "Rockdale North",
            "Hall A — H100 cluster",
            Gpu {
                model: "H100 SXM",
                nodes: 64,
                cents_per_gpu_hour: 199,
            },
        ),
        (
            "Rockdale North",
            "Hall B — B200 cluster",
            Gpu {
                model: "B200",
                nodes: 32,
                cents_per_gpu_hour: 389,
            },
        ),
        (
            "Rockdale North",
            "Shell power, north yard",
            Power {
                block_kw: 1_000,
                blocks: 20,
                redundancy: "N+1",
                cooling: "immersion",
                cents_per_kw_month: 11_500,
            },
        ),
        (
            "Pecos Flats",
            "Inference pods",
            Gpu {
                model: "RTX 4090",
                nodes: 48,
                cents_per_gpu_hour: 38,
            },
        ),
        (
            "Pecos Flats",
            "Solar-backed H100",
            Gpu {
                model: "H100 SXM",
                nodes: 16,
                cents_per_gpu_hour: 189,
            },
        ),
        (
            "Keystone Ridge",
            "Nuclear-backed H200",
            Gpu {
                model: "H200",
                nodes: 32,
                cents_per_gpu_hour: 289,
            },
        ),
        (
            "Keystone Ridge",
            "2N colocation blocks",
            Power {
                block_kw: 500,
                blocks: 12,
                redundancy: "2N",
                cooling: "direct liquid",
                cents_per_kw_month: 16_500,
            },
        ),
        (
            "Ohio Valley",
            "MI300X training",
            Gpu {
                model: "MI300X",
                nodes: 24,
                cents_per_gpu_hour: 189,
            },
        ),
        (
            "Grand Forks",
            "Wind-powered H100",
            Gpu {
                model: "H100 SXM",
                nodes: 40,
                cents_per_gpu_hour: 205,
            },
        ),
        (
            "Grand Forks",
            "Cold-climate blocks",
            Power {
                block_kw: 1_000,
                blocks: 10,
                redundancy: "N",
                cooling: "free air",
                cents_per_kw_month: 9_500,
            },
        ),
        (
            "Tulsa Yard",
            "B200 pods",
            Gpu {
                model: "B200",
                nodes: 16,
                cents_per_gpu_hour: 419,
            },
        ),
        (
            "Boden",
            "Hydro H200",
            Gpu {
                model: "H200",
                nodes: 24,
                cents_per_gpu_hour: 269,
            },
        ),
        (
            "Boden",
            "Arctic power blocks",
            Power {
                block_kw: 500,
                blocks: 16,
                redundancy: "N+1",
                cooling: "free air",
                cents_per_kw_month: 10_500,
            },
        ),
        (
            "Kajaani",
            "MI300X pods",
            Gpu {
                model: "MI300X",
                nodes: 12,
                cents_per_gpu_hour: 179,
            },
        ),
        (
            "Mo i Rana",
            "B200 (opening soon)",
            Gpu {
                model: "B200",
                nodes: 24,
                cents_per_gpu_hour: 399,
            },
        ),
        (
            "Baie-Comeau",
            "Hydro H100",
            Gpu {
                model: "H100 SXM",
                nodes: 20,
                cents_per_gpu_hour: 215,
            },
        ),
        (
            "Villarrica",
            "Itaipú H100",
            Gpu {
                model: "H100 SXM",
                nodes: 32,
                cents_per_gpu_hour: 179,
            },
        ),
        (
            "Villarrica",
            "RTX 4090 farm",
            Gpu {
                model: "RTX 4090",
                nodes: 64,
                cents_per_gpu_hour: 34,
            },
        ),
        (
            "Hernandarias",
            "Immersion blocks",
            Power {
                block_kw: 250,
                blocks: 24,
                redundancy: "N",
                cooling: "immersion",
                cents_per_kw_month: 9_000,
            },
        ),
    ]
}

/// Term discounts every demo pool offers: 5 % from a week, 10 % from 30 days, 15 % from 90 days.
pub(super) const DISCOUNTS: &[TermDiscount] = &[
    TermDiscount {
        min_hours: 168,
        discount_bp: 500,
    },
    TermDiscount {
        min_hours: 720,
        discount_bp: 1_000,
    },
    TermDiscount {
        min_hours: 2_160,
        discount_bp: 1_500,
    },
];

/// Cancellation policy of the demo pools: (minimum notice in hours, refund in basis points).
pub(super) const CANCELLATION: &[(i32, i32)] = &[(168, 10_000), (48, 5_000), (0, 0)];
