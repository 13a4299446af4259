//! Grid curtailment events: a grid program asks a site to shed load over some hours, and the
//! site sheds it in the order its economics dictate. Mining goes first (it earns least per
//! MWh and switches off in minutes), then interruptible AI load, sold on exactly that
//! understanding; firm AI load never. The plan is pure arithmetic over the site's load hour
//! by hour, shared with the browser and tested without a database.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A recorded event with what it shed, as its site's page and the API show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GridEvent {
    pub id: i64,
    pub site_id: i64,
    /// The program that called it, as the operator typed it (ERCOT ERS, 4CP, ...).
    pub program: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The load the program asked the site to shed.
    pub shed_kw: i64,
    /// What the program pays per MWh shed, when it pays.
    pub payment_cents_per_mwh: Option<i64>,
    /// The largest part of any hour shed by switching mining off.
    pub mining_shed_kw: i64,
    /// The largest interruptible AI load shed in any hour.
    pub interruptible_shed_kw: i64,
    /// Interruptible reservations it interrupted, their unit-hours lost and the credits
    /// their customers got.
    pub reservations_interrupted: i64,
    pub unit_hours_lost: i64,
    pub credited_cents: i64,
    pub created_at: DateTime<Utc>,
}

impl GridEvent {
    pub fn hours(&self) -> i64 {
        (self.end - self.start).num_hours()
    }

    /// The program's payment for the event: the load asked to be shed over its hours, at
    /// its rate per MWh (rounded down to the cent).
    pub fn revenue_cents(&self) -> i64 {
        demand_response_cents(
            self.shed_kw,
            self.hours(),
            self.payment_cents_per_mwh.unwrap_or(0),
        )
    }
}

/// What `shed_kw` over `hours` earns at `cents_per_mwh`, rounded down to the cent.
pub fn demand_response_cents(shed_kw: i64, hours: i64, cents_per_mwh: i64) -> i64 {
    (i128::from(shed_kw) * i128::from(hours) * i128::from(cents_per_mwh) / 1000) as i64
}

/// Unit-hours an event took from one interruptible reservation's unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ShedUnit {
    pub reservation_id: i64,
    pub customer: String,
    pub pool_id: i64,
    pub pool_name: String,
    /// The unit's number in its pool.
    pub unit: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub watts: i64,
}

/// An event with the units it took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GridEventDetail {
    pub event: GridEvent,
    pub shed: Vec<ShedUnit>,
}

/// Demand response on one site in one month: what the programs paid beside what the
/// curtailed customers were credited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DemandResponseMonth {
    pub site_id: i64,
    pub site_name: String,
    /// The first instant of the month (UTC).
    pub month: DateTime<Utc>,
    pub events: i64,
    /// Energy asked to be shed: each event's kW over its hours.
    pub kwh_shed: i64,
    pub revenue_cents: i64,
    /// Credits to customers whose interruptible reservations the events cut.
    pub credits_cents: i64,
}

/// One unit's load over some hours of the event, as the site's allocations hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    pub reservation_id: i64,
    pub unit_id: i64,
    /// Only interruptible holdings can be shed; the rest is firm load.
    pub interruptible: bool,
    /// The unit price its reservation paid, and when it was booked: interruptible holdings
    /// are shed lowest price first, then latest booked (the rule of preemption).
    pub unit_price_cents: i64,
    pub booked_at: DateTime<Utc>,
    /// Clipped to the event's hours.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub watts: i64,
}

/// The site as a curtailment sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiteLoad {
    pub interconnect_w: i64,
    /// The mining fleet at full power: hashrate × J/TH.
    pub fleet_w: i64,
}

/// One hour of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HourShed {
    pub at: DateTime<Utc>,
    pub mining_w: i64,
    pub interruptible_w: i64,
    /// Firm AI load, untouched.
    pub firm_w: i64,
}

/// Hours of one holding that the plan cuts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub reservation_id: i64,
    pub unit_id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub watts: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub hours: Vec<HourShed>,
    pub cuts: Vec<Cut>,
}

impl Plan {
    pub fn mining_shed_w(&self) -> i64 {
        self.hours.iter().map(|h| h.mining_w).max().unwrap_or(0)
    }
}

/// The hour in which the site cannot shed what was asked without touching firm load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    pub at: DateTime<Utc>,
    pub asked_w: i64,
    /// What is running then and could be switched off.
    pub mining_w: i64,
    pub interruptible_w: i64,
    pub firm_w: i64,
}

impl Shortfall {
    pub fn sheddable_w(&self) -> i64 {
        self.mining_w + self.interruptible_w
    }
}

/// Plans shedding `shed_w` in every hour of `[start, end)`: mining first, as much as runs
/// (the fleet, but never more than the interconnect leaves after the AI load), then
/// interruptible holdings in the order of preemption, each for only the hours still short,
/// whole units at a time. Refused with the worst hour when mining and interruptible load
/// together fall short.
pub fn plan(
    site: SiteLoad,
    shed_w: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    holdings: &[Holding],
) -> Result<Plan, Shortfall> {
    let n = (end - start).num_hours().max(0) as usize;
    let at = |i: usize| start + Duration::hours(i as i64);
    let index = |t: DateTime<Utc>| ((t - start).num_hours().clamp(0, n as i64)) as usize;
    let (mut firm, mut interruptible) = (vec![0i64; n], vec![0i64; n]);
    for h in holdings {
        let load = if h.interruptible {
            &mut interruptible
        } else {
            &mut firm
        };
        for slot in &mut load[index(h.start)..index(h.end)] {
            *slot += h.watts;
        }
    }
    let mining: Vec<i64> = (0..n)
        .map(|i| {
            site.fleet_w
                .min((site.interconnect_w - firm[i] - interruptible[i]).max(0))
        })
        .collect();
    let worst = (0..n)
        .filter(|&i| mining[i] + interruptible[i] < shed_w)
        .min_by_key(|&i| mining[i] + interruptible[i]);
    if let Some(i) = worst {
        return Err(Shortfall {
            at: at(i),
            asked_w: shed_w,
            mining_w: mining[i],
            interruptible_w: interruptible[i],
            firm_w: firm[i],
        });
    }
    let mining_shed: Vec<i64> = mining.iter().map(|&m| m.min(shed_w)).collect();
    let mut need: Vec<i64> = mining_shed.iter().map(|&m| shed_w - m).collect();
    let mut shed = vec![0i64; n];
    let mut order: Vec<&Holding> = holdings.iter().filter(|h| h.interruptible).collect();
    order.sort_by(|a, b| {
        (
            a.unit_price_cents,
            b.booked_at,
            a.reservation_id,
            a.unit_id,
            a.start,
        )
            .cmp(&(
                b.unit_price_cents,
                a.booked_at,
                b.reservation_id,
                b.unit_id,
                b.start,
            ))
    });
    let mut cuts = Vec::new();
    for h in order {
        if need.iter().all(|&x| x <= 0) {
            break;
        }
        // The runs of this holding's hours that are still short.
        let mut run: Option<usize> = None;
        for i in index(h.start)..=index(h.end) {
            let short = i < index(h.end) && need[i] > 0;
            match (short, run) {
                (true, None) => run = Some(i),
                (false, Some(first)) => {
                    cuts.push(Cut {
                        reservation_id: h.reservation_id,
                        unit_id: h.unit_id,
                        start: at(first),
                        end: at(i),
                        watts: h.watts,
                    });
                    for j in first..i {
                        need[j] -= h.watts;
                        shed[j] += h.watts;
                    }
                    run = None;
                }
                _ => {}
            }
        }
    }
    Ok(Plan {
        hours: (0..n)
            .map(|i| HourShed {
                at: at(i),
                mining_w: mining_shed[i],
                interruptible_w: shed[i],
                firm_w: firm[i],
            })
            .collect(),
        cuts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, hour, 0, 0).unwrap()
    }

    fn holding(res: i64, unit: i64, interruptible: bool, price: i64, booked: u32) -> Holding {
        Holding {
            reservation_id: res,
            unit_id: unit,
            interruptible,
            unit_price_cents: price,
            booked_at: t(booked),
            start: t(10),
            end: t(14),
            watts: 100_000,
        }
    }

    const SITE: SiteLoad = SiteLoad {
        interconnect_w: 1_000_000,
        fleet_w: 500_000,
    };

    #[test]
    fn mining_alone_covers_a_small_request_and_nothing_is_cut() {
        let p = plan(SITE, 300_000, t(10), t(14), &[holding(1, 1, true, 50, 0)]).unwrap();
        assert!(p.cuts.is_empty());
        assert!(p
            .hours
            .iter()
            .all(|h| h.mining_w == 300_000 && h.interruptible_w == 0));
    }

    #[test]
    fn interruptible_units_go_after_mining_cheapest_then_latest_and_firm_never() {
        // 500 kW mining runs (the interconnect leaves 700 kW); asking 700 kW needs two more
        // 100 kW units: the two cheapest, and of equal prices the later booking.
        let hs = [
            holding(1, 1, false, 10, 0),
            holding(2, 2, true, 80, 1),
            holding(3, 3, true, 50, 1),
            holding(4, 4, true, 50, 2),
        ];
        let p = plan(SITE, 700_000, t(10), t(14), &hs).unwrap();
        let taken: Vec<_> = p.cuts.iter().map(|c| c.reservation_id).collect();
        assert_eq!(taken, [4, 3]);
        assert_eq!(p.mining_shed_w(), 500_000);
        assert!(p
            .hours
            .iter()
            .all(|h| h.interruptible_w == 200_000 && h.firm_w == 100_000));
    }

    #[test]
    fn only_the_hours_still_short_are_cut() {
        // A 400 kW firm booking runs only 10:00-12:00: the 800 kW interconnect then leaves
        // mining 300 kW, so only those two hours need the interruptible unit.
        let mut firm = holding(1, 1, false, 10, 0);
        firm.end = t(12);
        firm.watts = 400_000;
        let hs = [firm, holding(2, 2, true, 50, 1)];
        let site = SiteLoad {
            interconnect_w: 800_000,
            fleet_w: 500_000,
        };
        let p = plan(site, 400_000, t(10), t(14), &hs).unwrap();
        assert_eq!(
            p.cuts,
            [Cut {
                reservation_id: 2,
                unit_id: 2,
                start: t(10),
                end: t(12),
                watts: 100_000
            }]
        );
        assert_eq!(p.hours[0].mining_w, 300_000);
        assert_eq!(p.hours[3].mining_w, 400_000);
    }

    #[test]
    fn a_request_beyond_mining_and_interruptible_is_refused_with_the_numbers() {
        let hs = [holding(1, 1, false, 10, 0), holding(2, 2, true, 50, 1)];
        let short = plan(SITE, 700_000, t(10), t(14), &hs).unwrap_err();
        assert_eq!(short.at, t(10));
        assert_eq!(
            (short.mining_w, short.interruptible_w, short.firm_w),
            (500_000, 100_000, 100_000)
        );
        assert_eq!(short.sheddable_w(), 600_000);
    }

    #[test]
    fn demand_response_pays_the_asked_kw_over_the_hours() {
        // 2 MW for 4 hours at $150/MWh = 8 MWh × $150 = $1,200.
        assert_eq!(demand_response_cents(2_000, 4, 15_000), 120_000);
        assert_eq!(demand_response_cents(1, 1, 999), 0, "rounded down");
    }
}
