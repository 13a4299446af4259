//! How an operator's capacity is used over time: who holds which unit when (reservations
//! and blackouts), the booked share of each week, and a site's firm AI load against its
//! interconnect. Shared with the browser, which draws the charts; the arithmetic is pure so
//! it is tested without a database.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Who holds a unit over a span.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Holder {
    Reservation { id: i64, customer: String },
    Blackout { id: i64, reason: String },
}

/// One unit held over `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitSpan {
    /// The unit's number in its pool, from 1.
    pub ordinal: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub holder: Holder,
}

/// A pool's units over a range, as the operator's utilization chart shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolUtilization {
    pub pool_id: i64,
    pub pool_name: String,
    pub site_id: i64,
    pub site_name: String,
    /// `gpu` or `power`.
    pub kind: String,
    pub unit_count: i64,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Spans of units `1..=shown_units`, clipped to the range.
    pub spans: Vec<UnitSpan>,
    /// The chart draws at most this many units (a big pool would be unreadable); the weekly
    /// shares count every unit.
    pub shown_units: i64,
    pub weeks: Vec<WeekShare>,
}

/// Unit-hours of one week: booked by customers, under maintenance, and in all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekShare {
    pub start: DateTime<Utc>,
    pub booked_unit_hours: i64,
    pub blackout_unit_hours: i64,
    pub capacity_unit_hours: i64,
}

impl WeekShare {
    /// The booked share in basis points (10,000 = every unit all week).
    pub fn booked_bp(&self) -> i64 {
        if self.capacity_unit_hours == 0 {
            0
        } else {
            self.booked_unit_hours * 10_000 / self.capacity_unit_hours
        }
    }
}

/// Hours of `[a0, a1)` ∩ `[b0, b1)`.
fn overlap_hours(
    a0: DateTime<Utc>,
    a1: DateTime<Utc>,
    b0: DateTime<Utc>,
    b1: DateTime<Utc>,
) -> i64 {
    let (s, e) = (a0.max(b0), a1.min(b1));
    if e > s {
        (e - s).num_hours()
    } else {
        0
    }
}

/// The booked and blacked-out unit-hours of each week from `from`, over `spans` of every unit
/// of a pool of `unit_count` units.
pub fn weekly_shares(
    unit_count: i64,
    spans: &[UnitSpan],
    from: DateTime<Utc>,
    weeks: i64,
) -> Vec<WeekShare> {
    (0..weeks.max(0))
        .map(|w| {
            let start = from + Duration::weeks(w);
            let end = start + Duration::weeks(1);
            let (mut booked, mut blackout) = (0, 0);
            for s in spans {
                let h = overlap_hours(s.start, s.end, start, end);
                match s.holder {
                    Holder::Reservation { .. } => booked += h,
                    Holder::Blackout { .. } => blackout += h,
                }
            }
            WeekShare {
                start,
                booked_unit_hours: booked,
                blackout_unit_hours: blackout,
                capacity_unit_hours: unit_count * 24 * 7,
            }
        })
        .collect()
}

/// Firm AI load committed over `[start, end)`, in watts (a reservation's nodes × IT power ×
/// PUE, or its blocks × block size).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub watts: i64,
}

/// From `at` until the next step, this much firm AI load is committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PowerStep {
    pub at: DateTime<Utc>,
    pub committed_w: i64,
}

/// The committed load over `[from, to)` as a step function: one step at `from` and one at
/// every change, each with the summed load of what overlaps it.
pub fn load_steps(loads: &[Load], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<PowerStep> {
    let mut changes: Vec<(DateTime<Utc>, i64)> = Vec::with_capacity(loads.len() * 2);
    let mut at_from = 0;
    for l in loads {
        let (s, e) = (l.start.max(from), l.end.min(to));
        if e <= s {
            continue;
        }
        if s == from {
            at_from += l.watts;
        } else {
            changes.push((s, l.watts));
        }
        if e < to {
            changes.push((e, -l.watts));
        }
    }
    changes.sort_by_key(|c| c.0);
    let mut steps = vec![PowerStep {
        at: from,
        committed_w: at_from,
    }];
    for (at, delta) in changes {
        let last = steps.last_mut().expect("there is always a first step");
        if last.at == at {
            last.committed_w += delta;
        } else {
            let committed_w = last.committed_w + delta;
            steps.push(PowerStep { at, committed_w });
        }
    }
    // Changes that cancel out at one instant leave equal neighbours; keep only real steps.
    steps.dedup_by(|next, prev| next.committed_w == prev.committed_w);
    steps
}

/// A site's power over a range: its interconnect, the firm AI capacity it lists, and the
/// load its reservations commit; what is left goes to mining.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SitePower {
    pub site_id: i64,
    pub site_name: String,
    pub interconnect_kw: i64,
    /// Every pool at full use: the most AI could ever take.
    pub listed_w: i64,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub steps: Vec<PowerStep>,
    /// The price before the platform's fee of confirmed reservations that have not ended.
    pub booked_ahead_cents: i64,
    pub currency: String,
}

impl SitePower {
    pub fn interconnect_w(&self) -> i64 {
        self.interconnect_kw * 1000
    }

    /// The largest committed load in the range.
    pub fn peak_w(&self) -> i64 {
        self.steps.iter().map(|s| s.committed_w).max().unwrap_or(0)
    }

    /// What mining keeps at the peak of AI load.
    pub fn mining_floor_w(&self) -> i64 {
        (self.interconnect_w() - self.peak_w()).max(0)
    }
}

/// Watts as people read them on a site: `1.25 MW`, `750 kW`.
pub fn format_watts(w: i64) -> String {
    if w.abs() >= 1_000_000 {
        format!("{:.2} MW", w as f64 / 1_000_000.0)
    } else {
        format!(
            "{} kW",
            crate::money::group_thousands((w / 1000).unsigned_abs())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0).unwrap()
    }

    fn load(s: DateTime<Utc>, e: DateTime<Utc>, watts: i64) -> Load {
        Load {
            start: s,
            end: e,
            watts,
        }
    }

    #[test]
    fn loads_add_up_where_they_overlap_and_drop_where_they_end() {
        // 800 kW from the 2nd to the 4th, 200 kW more from the 3rd to the 5th.
        let steps = load_steps(
            &[
                load(t(2, 0), t(4, 0), 800_000),
                load(t(3, 0), t(5, 0), 200_000),
            ],
            t(1, 0),
            t(10, 0),
        );
        let got: Vec<_> = steps.iter().map(|s| (s.at, s.committed_w)).collect();
        assert_eq!(
            got,
            [
                (t(1, 0), 0),
                (t(2, 0), 800_000),
                (t(3, 0), 1_000_000),
                (t(4, 0), 200_000),
                (t(5, 0), 0),
            ]
        );
    }

    #[test]
    fn loads_are_clipped_to_the_range_and_back_to_back_loads_make_no_false_step() {
        // One load ends exactly when an equal one starts: no dip at the 3rd.
        let steps = load_steps(
            &[
                load(t(1, 0), t(3, 0), 500_000),
                load(t(3, 0), t(20, 0), 500_000),
            ],
            t(2, 0),
            t(6, 0),
        );
        assert_eq!(
            steps,
            [PowerStep {
                at: t(2, 0),
                committed_w: 500_000
            }]
        );
        assert_eq!(
            load_steps(&[load(t(7, 0), t(8, 0), 1)], t(1, 0), t(6, 0)),
            [PowerStep {
                at: t(1, 0),
                committed_w: 0
            }]
        );
    }

    #[test]
    fn a_week_with_two_units_booked_for_half_of_it_is_booked_a_quarter_of_a_four_unit_pool() {
        // 4 units × 168 h = 672 unit-hours; 2 units × 84 h = 168 booked → 25 %.
        let r = |ordinal, s, e| UnitSpan {
            ordinal,
            start: s,
            end: e,
            holder: Holder::Reservation {
                id: 1,
                customer: "Helix".into(),
            },
        };
        let spans = [
            r(1, t(1, 0), t(4, 12)),
            r(2, t(1, 0), t(4, 12)),
            UnitSpan {
                ordinal: 3,
                start: t(7, 0),
                end: t(9, 0),
                holder: Holder::Blackout {
                    id: 9,
                    reason: "maintenance".into(),
                },
            },
        ];
        let weeks = weekly_shares(4, &spans, t(1, 0), 2);
        assert_eq!(weeks[0].booked_unit_hours, 168);
        assert_eq!(weeks[0].capacity_unit_hours, 672);
        assert_eq!(weeks[0].booked_bp(), 2_500);
        // The blackout runs from the 7th 00:00 to the 9th 00:00: 24 h in each week.
        assert_eq!(weeks[0].blackout_unit_hours, 24);
        assert_eq!(weeks[1].blackout_unit_hours, 24);
        assert_eq!(weeks[1].booked_bp(), 0);
    }

    #[test]
    fn a_site_keeps_for_mining_what_its_peak_ai_load_leaves() {
        let p = SitePower {
            site_id: 1,
            site_name: "Site".into(),
            interconnect_kw: 10_000,
            listed_w: 6_000_000,
            from: t(1, 0),
            to: t(2, 0),
            steps: vec![
                PowerStep {
                    at: t(1, 0),
                    committed_w: 1_500_000,
                },
                PowerStep {
                    at: t(1, 6),
                    committed_w: 4_250_000,
                },
            ],
            booked_ahead_cents: 0,
            currency: "USD".into(),
        };
        assert_eq!(p.peak_w(), 4_250_000);
        assert_eq!(p.mining_floor_w(), 5_750_000);
        assert_eq!(format_watts(p.mining_floor_w()), "5.75 MW");
        assert_eq!(format_watts(750_000), "750 kW");
    }
}
