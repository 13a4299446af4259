//! What the demo pools are already booked for: customers' reservations in the past, present
//! and future (one of them cancelled, some of them interruptible), operators' maintenance
//! blackouts, and a grid event that curtailed an interruptible booking.

/// The hall being built at Mo i Rana is sold ahead of its delivery: (site, pool, delivery in
/// days from today's midnight UTC, credit per day late in basis points of the contract,
/// walk-away in days after the delivery).
pub(super) const FORWARD: (&str, &str, i64, i32, i64) =
    ("Mo i Rana", "B200 (opening soon)", 60, 100, 90);

/// (customer, site, pool name, units, start offset from this hour in hours, duration in hours, cancelled)
pub(super) const RESERVATIONS: &[(&str, &str, &str, i32, i64, i64, bool)] = &[
    // A forward contract on the hall being built at Mo i Rana (see FORWARD), from after its
    // committed delivery.
    (
        "Northwind AI",
        "Mo i Rana",
        "B200 (opening soon)",
        8,
        24 * 62,
        24 * 30,
        false,
    ),
    (
        "Helix Labs",
        "Rockdale North",
        "Hall A — H100 cluster",
        16,
        -24 * 20,
        24 * 14,
        false,
    ),
    (
        "Helix Labs",
        "Rockdale North",
        "Hall A — H100 cluster",
        24,
        -24 * 3,
        24 * 30,
        false,
    ),
    (
        "Northwind AI",
        "Rockdale North",
        "Hall B — B200 cluster",
        16,
        24 * 2,
        24 * 60,
        false,
    ),
    (
        "Parallax Robotics",
        "Pecos Flats",
        "Inference pods",
        12,
        -24 * 10,
        24 * 45,
        false,
    ),
    (
        "Northwind AI",
        "Keystone Ridge",
        "Nuclear-backed H200",
        32,
        24 * 7,
        24 * 21,
        false,
    ),
    (
        "Helix Labs",
        "Keystone Ridge",
        "2N colocation blocks",
        4,
        -24 * 25,
        24 * 90,
        false,
    ),
    (
        "Parallax Robotics",
        "Ohio Valley",
        "MI300X training",
        8,
        24,
        24 * 7,
        false,
    ),
    (
        "Nordic Frost",
        "Grand Forks",
        "Wind-powered H100",
        10,
        -24 * 5,
        24 * 10,
        false,
    ),
    (
        "Northwind AI",
        "Grand Forks",
        "Wind-powered H100",
        20,
        24 * 14,
        24 * 30,
        false,
    ),
    (
        "Helix Labs",
        "Tulsa Yard",
        "B200 pods",
        8,
        24 * 3,
        24 * 14,
        true,
    ),
    (
        "Parallax Robotics",
        "Boden",
        "Hydro H200",
        6,
        -24 * 2,
        24 * 7,
        false,
    ),
    (
        "Helix Labs",
        "Boden",
        "Arctic power blocks",
        6,
        24 * 10,
        24 * 180,
        false,
    ),
    (
        "Northwind AI",
        "Villarrica",
        "Itaipú H100",
        16,
        -24 * 8,
        24 * 28,
        false,
    ),
    (
        "Parallax Robotics",
        "Villarrica",
        "RTX 4090 farm",
        40,
        24 * 5,
        24 * 30,
        false,
    ),
    (
        "Helix Labs",
        "Baie-Comeau",
        "Hydro H100",
        20,
        24 * 30,
        24 * 14,
        false,
    ),
];

/// (site, pool name, units, start offset hours, duration hours, reason)
pub(super) const BLACKOUTS: &[(&str, &str, i32, i64, i64, &str)] = &[
    (
        "Rockdale North",
        "Hall A — H100 cluster",
        4,
        24 * 6,
        12,
        "firmware upgrade on spine switches",
    ),
    (
        "Grand Forks",
        "Cold-climate blocks",
        2,
        24 * 21,
        48,
        "substation transformer maintenance",
    ),
];

/// Interruptible bookings: (customer, site, pool name, units, start offset, duration hours).
pub(super) const INTERRUPTIBLE_RESERVATIONS: &[(&str, &str, &str, i32, i64, i64)] = &[
    (
        "Parallax Robotics",
        "Rockdale North",
        "Hall A — H100 cluster",
        8,
        -24 * 5,
        24 * 10,
    ),
    (
        "Northwind AI",
        "Ohio Valley",
        "MI300X training",
        4,
        24 * 2,
        24 * 5,
    ),
    (
        "Helix Labs",
        "Grand Forks",
        "Wind-powered H100",
        6,
        24,
        24 * 14,
    ),
];

/// A past grid event: the site, the program, the start offset and hours, the kW asked and
/// what the program pays per MWh.
pub(super) struct GridEvent {
    pub site: &'static str,
    pub program: &'static str,
    pub start_h: i64,
    pub hours: i64,
    pub shed_kw: i64,
    pub cents_per_mwh: Option<i64>,
}

/// The past ERS call asks a little more than Rockdale North's 204.25 MW fleet, so four of
/// Parallax's interruptible nodes were shed and credited too; the coming 4CP interval is
/// met by mining alone.
pub(super) const GRID_EVENTS: &[GridEvent] = &[
    GridEvent {
        site: "Rockdale North",
        program: "ERCOT ERS",
        start_h: -58,
        hours: 4,
        shed_kw: 204_300,
        cents_per_mwh: Some(12_000),
    },
    GridEvent {
        site: "Rockdale North",
        program: "ERCOT 4CP",
        start_h: 24 * 6 + 15,
        hours: 2,
        shed_kw: 150_000,
        cents_per_mwh: None,
    },
];

/// A resale listing: (seller, site, pool, nodes, the last hours of its reservation).
pub(super) const RESALE: (&str, &str, &str, i32, i64) = (
    "Northwind AI",
    "Keystone Ridge",
    "Nuclear-backed H200",
    2,
    72,
);

/// A past incident on one node of a customer's reservation: (site, pool, customer, start
/// offset from this hour, hours down, hours after the start it was recorded, cause). One
/// recorded as it happened, so its hours moved to a spare; one recorded only once it was
/// over, so its hours were lost and credited.
pub(super) const INCIDENTS: &[(&str, &str, &str, i64, i64, i64, &str)] = &[
    (
        "Rockdale North",
        "Hall A — H100 cluster",
        "Helix Labs",
        -48,
        10,
        0,
        "Node power supply failed; replaced",
    ),
    (
        "Pecos Flats",
        "Inference pods",
        "Parallax Robotics",
        -30,
        6,
        6,
        "Coolant leak in pod row 2, found at the morning walk-through",
    ),
];
