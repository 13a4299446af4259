//! Property test: random sequences of reserve (firm, preempting interruptible capacity when
//! short, or interruptible) / cancel / extend / blackout / move / early end / grid event /
//! hold, confirm and expiry / resale / standing order / incident against one pool, checked
//! after every
//! step against an in-memory model of the pool's units, and the books reconciled after
//! every sequence.

use app::booking::{BookingRequest, ExtendTo, HoldRequest, Tier};
use app::grid::{self, Holding, SiteLoad};
use app::market::InterruptibleOffer;
use app::pricing::{self, Quantity};
use app::services::blackouts::{self, BlackoutUnits};
use app::services::catalog;
use app::services::error::ServiceError;
use app::services::grid_events::{self, NewGridEvent};
use app::services::ledger;
use app::services::reservations::{self, reallocation};
use app::services::{incidents, orders, resale};
use app::window::HourWindow;
use chrono::{DateTime, Duration, DurationRound, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgPool};
use std::str::FromStr;

use crate::fixtures::{gpu_pool, site_input, FEE_BP};

const UNITS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Reserve {
        units: i64,
        start: i64,
        len: i64,
        interruptible: bool,
    },
    Cancel {
        pick: usize,
    },
    Extend {
        pick: usize,
        extra: i64,
    },
    Blackout {
        units: i64,
        start: i64,
        len: i64,
    },
    /// Moves a reservation's piece, from an hour inside it to its end, to another unit.
    Move {
        pick: usize,
        piece: usize,
        to: usize,
        from: i64,
    },
    /// Ends a reservation's piece early, from an hour inside it, with a credit.
    Cut {
        pick: usize,
        piece: usize,
        from: i64,
    },
    /// A grid event asking the site to shed `kw` over `[start, start + len)`.
    GridEvent {
        kw: i64,
        start: i64,
        len: i64,
    },
    /// Holds free units (never preempting) at their price.
    Hold {
        units: i64,
        start: i64,
        len: i64,
    },
    /// Confirms a live hold.
    Confirm {
        pick: usize,
    },
    /// A live hold's time runs out and the release job runs.
    Expire {
        pick: usize,
    },
    /// A firm reservation lists every unit it holds from an hour inside it to its end, and
    /// the other customer buys them all.
    Resell {
        pick: usize,
        from: i64,
    },
    /// The other customer leaves a standing order for exactly this window; one fill round
    /// runs, and an order it did not fill is cancelled.
    Order {
        units: i64,
        start: i64,
        len: i64,
    },
    /// Unit `unit` goes down now, until resolved: its bookings move to spares (firm ones
    /// preempting interruptible capacity if they must), or are lost; holds without a spare
    /// are released.
    Incident {
        unit: usize,
    },
}

/// Each unit draws 10 kW × PUE 1.25; the site's fleet draws 2,000 TH/s × 10 J/TH = 20 kW,
/// and its 100 kW interconnect always leaves the fleet running beside the pool's 37.5 kW.
const UNIT_W: i64 = 12_500;
const SITE: SiteLoad = SiteLoad {
    interconnect_w: 100_000,
    fleet_w: 20_000,
};

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..=UNITS as i64, 0..40_i64, 1..12_i64, any::<bool>()).prop_map(|(units, start, len, interruptible)| Op::Reserve { units, start, len, interruptible }),
        2 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        2 => (any::<usize>(), 1..10_i64).prop_map(|(pick, extra)| Op::Extend { pick, extra }),
        1 => (1..=UNITS as i64, 0..40_i64, 1..6_i64).prop_map(|(units, start, len)| Op::Blackout { units, start, len }),
        2 => (any::<usize>(), any::<usize>(), 0..UNITS, 0..12_i64).prop_map(|(pick, piece, to, from)| Op::Move { pick, piece, to, from }),
        1 => (any::<usize>(), any::<usize>(), 0..12_i64).prop_map(|(pick, piece, from)| Op::Cut { pick, piece, from }),
        2 => (1..=60_i64, 0..40_i64, 1..6_i64).prop_map(|(kw, start, len)| Op::GridEvent { kw, start, len }),
        2 => (1..=UNITS as i64, 0..40_i64, 1..12_i64).prop_map(|(units, start, len)| Op::Hold { units, start, len }),
        1 => any::<usize>().prop_map(|pick| Op::Confirm { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Expire { pick }),
        2 => (any::<usize>(), 0..12_i64).prop_map(|(pick, from)| Op::Resell { pick, from }),
        1 => (1..=UNITS as i64, 0..40_i64, 1..12_i64).prop_map(|(units, start, len)| Op::Order { units, start, len }),
        1 => (0..UNITS).prop_map(|unit| Op::Incident { unit }),
    ]
}

/// Who holds a unit over an hour range, in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Reservation(i64),
    Blackout(i64),
    Incident(i64),
}

#[derive(Default)]
struct Model {
    /// Per unit (by ordinal − 1): (owner, start hour, end hour).
    units: Vec<Vec<(Owner, i64, i64)>>,
    /// Reservation id → (start, end, cancelled).
    reservations: Vec<(i64, i64, i64, bool)>,
    /// The interruptible ones.
    interruptible: std::collections::HashSet<i64>,
    /// Live holds (not yet confirmed).
    held: std::collections::HashSet<i64>,
    /// Reservations some of whose hours were resold (they stand: never cancelled).
    resold: std::collections::HashSet<i64>,
    /// Reservations bought on resale (final).
    bought: std::collections::HashSet<i64>,
}

/// A piece of a reservation in the model: (unit index, start, end).
type Piece = (usize, i64, i64);

impl Model {
    fn free(&self, u: usize, s: i64, e: i64, except: Option<Owner>) -> bool {
        self.units[u]
            .iter()
            .all(|&(o, bs, be)| Some(o) == except || be <= s || bs >= e)
    }
    /// The lowest-numbered units free over [s, e), like the database picks them.
    fn pick(&self, k: i64, s: i64, e: i64) -> Option<Vec<usize>> {
        let free: Vec<usize> = (0..UNITS)
            .filter(|&u| self.free(u, s, e, None))
            .take(k as usize)
            .collect();
        (free.len() == k as usize).then_some(free)
    }
    /// The units a firm booking over [s, e) may preempt, in the rule's order: every holder
    /// overlapping it is interruptible; the latest booked first (one price in one pool),
    /// then the lowest unit.
    fn preemptable(&self, s: i64, e: i64) -> Vec<usize> {
        let mut v: Vec<(std::cmp::Reverse<i64>, usize)> = (0..UNITS)
            .filter_map(|u| {
                let over: Vec<Owner> = self.units[u]
                    .iter()
                    .filter(|&&(_, bs, be)| be > s && bs < e)
                    .map(|&(o, _, _)| o)
                    .collect();
                let all_interruptible = !over.is_empty()
                    && over.iter().all(
                        |o| matches!(o, Owner::Reservation(id) if self.interruptible.contains(id)),
                    );
                all_interruptible.then(|| {
                    let latest = over
                        .iter()
                        .filter_map(|o| match o {
                            Owner::Reservation(id) => Some(*id),
                            Owner::Blackout(_) | Owner::Incident(_) => None,
                        })
                        .max()
                        .unwrap_or(0);
                    (std::cmp::Reverse(latest), u)
                })
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, u)| u).collect()
    }
    /// Ends every hold on unit `u` overlapping [s, e) at the later of its start and `s`.
    fn preempt(&mut self, u: usize, s: i64, e: i64) {
        let over: Vec<(Owner, i64, i64)> = self.units[u]
            .iter()
            .copied()
            .filter(|&(_, bs, be)| be > s && bs < e)
            .collect();
        for (o, bs, be) in over {
            self.take_out(o, (u, bs, be), bs.max(s));
        }
    }
    /// Removes [s, e) from the piece of `owner` on unit `u` that covers it.
    fn split_out(&mut self, owner: Owner, u: usize, s: i64, e: i64) {
        let list = &mut self.units[u];
        let i = list
            .iter()
            .position(|&(o, bs, be)| o == owner && bs <= s && be >= e)
            .expect("the cut piece is held");
        let (_, bs, be) = list.remove(i);
        if bs < s {
            list.push((owner, bs, s));
        }
        if e < be {
            list.push((owner, e, be));
        }
    }
    /// The pool's load over [s, e) as the grid event's plan reads it.
    fn holdings(&self, s: i64, e: i64, at: impl Fn(i64) -> DateTime<Utc>) -> Vec<Holding> {
        (0..UNITS)
            .flat_map(|u| self.units[u].iter().map(move |&x| (u, x)))
            .filter_map(|(u, (o, bs, be))| match o {
                Owner::Reservation(id) if be > s && bs < e => Some(Holding {
                    reservation_id: id,
                    unit_id: u as i64,
                    interruptible: self.interruptible.contains(&id),
                    unit_price_cents: 0,
                    // Later bookings have higher ids.
                    booked_at: at(0) + Duration::seconds(id),
                    start: at(bs.max(s)),
                    end: at(be.min(e)),
                    watts: UNIT_W,
                }),
                _ => None,
            })
            .collect()
    }
    /// The pieces `owner` holds, by unit then start.
    fn pieces(&self, owner: Owner) -> Vec<Piece> {
        let mut v: Vec<Piece> = (0..UNITS)
            .flat_map(|u| {
                self.units[u]
                    .iter()
                    .filter(move |(o, _, _)| *o == owner)
                    .map(move |&(_, s, e)| (u, s, e))
            })
            .collect();
        v.sort();
        v
    }
    /// Takes [from, e) out of the piece (u, s, e) of `owner`.
    fn take_out(&mut self, owner: Owner, (u, s, e): Piece, from: i64) {
        let list = &mut self.units[u];
        let i = list
            .iter()
            .position(|&x| x == (owner, s, e))
            .expect("the piece is in the model");
        if from == s {
            list.remove(i);
        } else {
            list[i].2 = from;
        }
    }
    fn snapshot(&self) -> Vec<(i32, Owner, i64, i64)> {
        let mut v: Vec<_> = self
            .units
            .iter()
            .enumerate()
            .flat_map(|(u, list)| list.iter().map(move |&(o, s, e)| (u as i32 + 1, o, s, e)))
            .collect();
        v.sort();
        merge_incidents(v)
    }
    /// Gives incident `id` every hour of [s, e) on unit `u` that nothing holds.
    fn fill(&mut self, id: i64, u: usize, s: i64, e: i64) {
        let mut held: Vec<(i64, i64)> = self.units[u].iter().map(|&(_, bs, be)| (bs, be)).collect();
        held.sort();
        let mut t = s;
        for (bs, be) in held {
            if be <= t || bs >= e {
                continue;
            }
            if bs > t {
                self.units[u].push((Owner::Incident(id), t, bs));
            }
            t = t.max(be);
        }
        if t < e {
            self.units[u].push((Owner::Incident(id), t, e));
        }
    }
}

/// An incident's hours on a unit may be written in several adjacent pieces (each vacated
/// piece as it is healed); they are one span to the model.
fn merge_incidents(v: Vec<(i32, Owner, i64, i64)>) -> Vec<(i32, Owner, i64, i64)> {
    let mut out: Vec<(i32, Owner, i64, i64)> = Vec::with_capacity(v.len());
    let mut incidents: Vec<(i32, Owner, i64, i64)> = v
        .iter()
        .copied()
        .filter(|x| matches!(x.1, Owner::Incident(_)))
        .collect();
    incidents.sort_by_key(|&(u, o, s, _)| (u, o, s));
    for x in incidents {
        match out.last_mut() {
            Some(last) if last.0 == x.0 && last.1 == x.1 && last.3 == x.2 => last.3 = x.3,
            _ => out.push(x),
        }
    }
    out.extend(v.into_iter().filter(|x| !matches!(x.1, Owner::Incident(_))));
    out.sort();
    out
}

async fn db_snapshot(db: &PgPool, pool: i64, t0: DateTime<Utc>) -> Vec<(i32, Owner, i64, i64)> {
    /// (unit ordinal, reservation, blackout, incident, start, end)
    type Row = (
        i32,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        DateTime<Utc>,
        DateTime<Utc>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select u.ordinal, a.reservation_id, a.blackout_id, a.incident_id, lower(a.during), upper(a.during)
         from allocation a join capacity_unit u on u.id = a.unit_id where a.pool_id = $1",
    )
    .bind(pool)
    .fetch_all(db)
    .await
    .unwrap();
    let mut v: Vec<_> = rows
        .into_iter()
        .map(|(ord, r, b, i, s, e)| {
            let owner = match (r, b, i) {
                (Some(r), None, None) => Owner::Reservation(r),
                (None, Some(b), None) => Owner::Blackout(b),
                (None, None, Some(i)) => Owner::Incident(i),
                other => panic!("allocation with owners {other:?}"),
            };
            (ord, owner, (s - t0).num_hours(), (e - t0).num_hours())
        })
        .collect();
    v.sort();
    merge_incidents(v)
}

async fn run_case(db: &PgPool, case: usize, ops: Vec<Op>) {
    let now = Utc::now();
    let t0 = now.duration_trunc(Duration::hours(1)).unwrap() + Duration::hours(10);
    let at = |h: i64| t0 + Duration::hours(h);
    let operator: i64 = sqlx::query_scalar(
        "insert into organization (name, kind) values ($1, 'operator') returning id",
    )
    .bind(format!("op {case}"))
    .fetch_one(db)
    .await
    .unwrap();
    let customer: i64 = sqlx::query_scalar(
        "insert into organization (name, kind) values ($1, 'customer') returning id",
    )
    .bind(format!("cust {case}"))
    .fetch_one(db)
    .await
    .unwrap();
    let other: i64 = sqlx::query_scalar(
        "insert into organization (name, kind) values ($1, 'customer') returning id",
    )
    .bind(format!("other {case}"))
    .fetch_one(db)
    .await
    .unwrap();
    // Reservations bought on resale or by a standing order are the other customer's.
    let others = std::sync::Mutex::new(std::collections::HashSet::<i64>::new());
    let customer_of = |id: i64| {
        if others.lock().unwrap().contains(&id) {
            other
        } else {
            customer
        }
    };
    let mut site_spec = site_input("site", SITE.interconnect_w / 1000);
    site_spec.hashrate_th = 2_000;
    site_spec.fleet_efficiency_j_th = Some(10.0);
    let site = catalog::create_site(db, operator, &site_spec)
        .await
        .unwrap();
    let mut pool_spec = gpu_pool("pool", UNITS as i64);
    // A GPU model of its own, so a standing order of this case fills in this case's pool.
    let model_name = format!("model {case}");
    if let catalog::PoolSpec::Gpu { gpu_model, .. } = &mut pool_spec.spec {
        *gpu_model = model_name.clone();
    }
    pool_spec.interruptible = Some(InterruptibleOffer {
        price_cents: 120,
        notice_hours: 0,
    });
    let pool = catalog::create_pool(db, operator, site, &pool_spec, None)
        .await
        .unwrap();
    catalog::open_window(db, operator, pool, at(-10), at(24 * 30))
        .await
        .unwrap();

    let unit_ids: Vec<i64> =
        sqlx::query_scalar("select id from capacity_unit where pool_id = $1 order by ordinal")
            .bind(pool)
            .fetch_all(db)
            .await
            .unwrap();
    let mut model = Model {
        units: vec![Vec::new(); UNITS],
        ..Default::default()
    };
    for op in ops {
        match op {
            Op::Reserve {
                units,
                start,
                len,
                interruptible,
            } => {
                let (s, e) = (start, start + len);
                let r = BookingRequest {
                    pool_id: pool,
                    quantity: Quantity::Units(units),
                    start: at(s),
                    end: at(e),
                    tier: if interruptible {
                        Tier::Interruptible
                    } else {
                        Tier::Firm
                    },
                    agreed_total_cents: None,
                };
                let got = reservations::reserve(db, customer, &r, FEE_BP, now).await;
                // Free units first; a firm booking short of units takes the rest from
                // interruptible reservations.
                let free: Vec<usize> = (0..UNITS).filter(|&u| model.free(u, s, e, None)).collect();
                let short = (units as usize).saturating_sub(free.len());
                let taken: Vec<usize> = if short > 0 && !interruptible {
                    model.preemptable(s, e).into_iter().take(short).collect()
                } else {
                    Vec::new()
                };
                let fits = free.len() + taken.len() >= units as usize;
                match (fits, got) {
                    (true, Ok(res)) => {
                        assert_eq!(res.units, units);
                        for &u in &taken {
                            model.preempt(u, s, e);
                        }
                        let chosen = free.iter().take(units as usize).chain(&taken);
                        for &u in chosen {
                            model.units[u].push((Owner::Reservation(res.id), s, e));
                        }
                        model.reservations.push((res.id, s, e, false));
                        if interruptible {
                            model.interruptible.insert(res.id);
                        }
                    }
                    (false, Err(ServiceError::Conflict { .. })) => {}
                    (fits, got) => panic!(
                        "reserve {units}×[{s},{e}) interruptible={interruptible}: model fits={fits}, db {got:?}"
                    ),
                }
            }
            Op::Cancel { pick } => {
                if model.reservations.is_empty() {
                    continue;
                }
                let i = pick % model.reservations.len();
                let (id, start, _, cancelled) = model.reservations[i];
                let got = reservations::cancel(db, customer_of(id), id, now).await;
                let stands = model.resold.contains(&id) || model.bought.contains(&id);
                if cancelled || stands {
                    assert!(matches!(got, Err(ServiceError::Conflict { .. })), "{got:?}");
                } else if model.held.remove(&id) {
                    // A released hold refunds nothing: nothing was charged.
                    assert_eq!(got.unwrap().refund_cents, None);
                    for list in &mut model.units {
                        list.retain(|(o, _, _)| *o != Owner::Reservation(id));
                    }
                    model.reservations[i].3 = true;
                } else {
                    let res = got.unwrap();
                    // The pool has no policy of its own: the default tiers apply.
                    let bp = pricing::refund_bp_for((at(start) - now).num_hours(), &[]);
                    assert_eq!(
                        res.refund_cents,
                        Some(pricing::refund_cents(
                            res.total_cents - res.credited_cents,
                            bp
                        ))
                    );
                    for list in &mut model.units {
                        list.retain(|(o, _, _)| *o != Owner::Reservation(id));
                    }
                    model.reservations[i].3 = true;
                }
            }
            Op::Extend { pick, extra } => {
                if model.reservations.is_empty() {
                    continue;
                }
                let i = pick % model.reservations.len();
                let (id, _, end, cancelled) = model.reservations[i];
                let got = reservations::extend(
                    db,
                    customer_of(id),
                    id,
                    ExtendTo::End(at(end + extra)),
                    FEE_BP,
                    now,
                )
                .await;
                let me = Owner::Reservation(id);
                // The pieces that reach the end carry on; all the units must still be there.
                let reaching: Vec<Piece> = model
                    .pieces(me)
                    .into_iter()
                    .filter(|&(_, _, e)| e == end)
                    .collect();
                let units = sqlx::query_scalar::<_, i32>(
                    "select unit_count from reservation where id = $1",
                )
                .bind(id)
                .fetch_one(db)
                .await
                .unwrap() as usize;
                let fits = !cancelled
                    && !model.held.contains(&id)
                    && !model.bought.contains(&id)
                    && reaching.len() == units
                    && reaching
                        .iter()
                        .all(|&(u, _, _)| model.free(u, end, end + extra, None));
                match (fits, got) {
                    (true, Ok(res)) => {
                        assert_eq!(res.end, at(end + extra));
                        for list in &mut model.units {
                            for iv in list.iter_mut().filter(|(o, _, e)| *o == me && *e == end) {
                                iv.2 = end + extra;
                            }
                        }
                        model.reservations[i].2 = end + extra;
                    }
                    (false, Err(ServiceError::Conflict { .. })) => {}
                    (fits, got) => {
                        panic!("extend #{id} by {extra} h: model fits={fits}, db {got:?}")
                    }
                }
            }
            Op::Blackout { units, start, len } => {
                let got = blackouts::add(
                    db,
                    operator,
                    pool,
                    at(start),
                    at(start + len),
                    BlackoutUnits::Count(units),
                    "test",
                )
                .await;
                match (model.pick(units, start, start + len), got) {
                    (Some(chosen), Ok(id)) => {
                        for u in chosen {
                            model.units[u].push((Owner::Blackout(id), start, start + len));
                        }
                    }
                    (None, Err(ServiceError::Conflict { .. })) => {}
                    (expected, got) => panic!(
                        "blackout {units}×[{start},{}): model {expected:?}, db {got:?}",
                        start + len
                    ),
                }
            }
            Op::Move {
                pick,
                piece,
                to,
                from,
            } => {
                let Some((id, owner, p @ (u, ps, pe), at_hour)) =
                    choose_piece(&model, pick, piece, from)
                else {
                    continue;
                };
                if to == u {
                    continue;
                }
                let mut tx = db.begin().await.unwrap();
                let got = reallocation::move_piece(
                    &mut tx,
                    id,
                    unit_ids[u],
                    unit_ids[to],
                    &HourWindow::new(at(at_hour), at(pe)).unwrap(),
                )
                .await;
                let fits = model.free(to, at_hour, pe, None);
                match (fits, got) {
                    (true, Ok(())) => {
                        tx.commit().await.unwrap();
                        model.take_out(owner, p, at_hour);
                        model.units[to].push((owner, at_hour, pe));
                    }
                    (false, Err(ServiceError::Conflict { .. })) => {
                        // Rolled back now, not when the connection is next used: the refused move
                        // locked its target unit, and a lock left behind would make the next
                        // booking pass that unit over and differ from the model's choice.
                        tx.rollback().await.unwrap();
                    }
                    (fits, got) => panic!(
                        "move #{id} unit {u} [{ps},{pe}) from {at_hour} to unit {to}: model fits={fits}, db {got:?}"
                    ),
                }
            }
            Op::Cut { pick, piece, from } => {
                let Some((id, owner, p @ (u, _, pe), at_hour)) =
                    choose_piece(&model, pick, piece, from)
                else {
                    continue;
                };
                let mut tx = db.begin().await.unwrap();
                reallocation::cut(
                    &mut tx,
                    id,
                    unit_ids[u],
                    &HourWindow::new(at(at_hour), at(pe)).unwrap(),
                    reallocation::CutReason::Incident,
                )
                .await
                .unwrap();
                reallocation::credit_hours(
                    &mut tx,
                    id,
                    pe - at_hour,
                    // An hour a firm reservation loses is an incident's (the database allows
                    // no other cut of it), and reconcile expects its credit as such.
                    reallocation::CreditReason::Incident,
                    "",
                    now,
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
                model.take_out(owner, p, at_hour);
            }
            Op::GridEvent { kw, start, len } => {
                let (s, e) = (start, start + len);
                let event = NewGridEvent {
                    program: "ERCOT ERS".into(),
                    window: HourWindow::new(at(s), at(e)).unwrap(),
                    shed_kw: kw,
                    payment_cents_per_mwh: None,
                };
                let got = grid_events::record(db, operator, site, &event, now).await;
                let plan = grid::plan(SITE, kw * 1000, at(s), at(e), &model.holdings(s, e, at));
                match (plan, got) {
                    (Ok(plan), Ok(recorded)) => {
                        let interrupted: std::collections::BTreeSet<i64> =
                            plan.cuts.iter().map(|c| c.reservation_id).collect();
                        assert_eq!(
                            recorded.reservations_interrupted as usize,
                            interrupted.len()
                        );
                        for c in plan.cuts {
                            assert!(
                                model.interruptible.contains(&c.reservation_id),
                                "never firm"
                            );
                            let hours = |t: DateTime<Utc>| (t - t0).num_hours();
                            model.split_out(
                                Owner::Reservation(c.reservation_id),
                                c.unit_id as usize,
                                hours(c.start),
                                hours(c.end),
                            );
                        }
                    }
                    (Err(_), Err(ServiceError::Invalid(f))) if f[0].field == "shed_kw" => {}
                    (plan, got) => {
                        panic!("grid event {kw} kW [{s},{e}): model {plan:?}, db {got:?}")
                    }
                }
            }
            Op::Hold { units, start, len } => {
                let (s, e) = (start, start + len);
                let req = HoldRequest {
                    request: BookingRequest {
                        pool_id: pool,
                        quantity: Quantity::Units(units),
                        start: at(s),
                        end: at(e),
                        tier: Tier::Firm,
                        agreed_total_cents: None,
                    },
                    minutes: Some(15),
                };
                let got = reservations::hold(db, customer, &req, None, FEE_BP, now).await;
                // A hold takes free units only, never preempting.
                match (model.pick(units, s, e), got) {
                    (Some(chosen), Ok(res)) => {
                        assert!(res.held_until.is_some());
                        for u in chosen {
                            model.units[u].push((Owner::Reservation(res.id), s, e));
                        }
                        model.reservations.push((res.id, s, e, false));
                        model.held.insert(res.id);
                    }
                    (None, Err(ServiceError::Conflict { .. })) => {}
                    (expected, got) => {
                        panic!("hold {units}×[{s},{e}): model {expected:?}, db {got:?}")
                    }
                }
            }
            Op::Confirm { pick } | Op::Expire { pick } => {
                let mut live: Vec<i64> = model.held.iter().copied().collect();
                live.sort();
                let Some(&id) = live.get(pick % live.len().max(1)) else {
                    continue;
                };
                model.held.remove(&id);
                if matches!(op, Op::Confirm { .. }) {
                    let res = reservations::confirm(db, customer, id, now).await.unwrap();
                    assert_eq!(res.held_until, None);
                    continue;
                }
                sqlx::query(
                    "update reservation set held_until = now() - interval '1 second' where id = $1",
                )
                .bind(id)
                .execute(db)
                .await
                .unwrap();
                assert_eq!(reservations::release_expired_holds(db).await.unwrap(), 1);
                for list in &mut model.units {
                    list.retain(|(o, _, _)| *o != Owner::Reservation(id));
                }
                let i = model.reservations.iter().position(|r| r.0 == id).unwrap();
                model.reservations[i].3 = true;
            }
            Op::Resell { pick, from } => {
                // Firm, confirmed, not itself a resale.
                let sellable: Vec<(i64, i64, i64)> = model
                    .reservations
                    .iter()
                    .filter(|r| {
                        !r.3 && !model.held.contains(&r.0)
                            && !model.bought.contains(&r.0)
                            && !model.interruptible.contains(&r.0)
                    })
                    .map(|r| (r.0, r.1, r.2))
                    .collect();
                let Some(&(id, s, e)) = sellable.get(pick % sellable.len().max(1)) else {
                    continue;
                };
                let h = s + from % (e - s);
                let seller = Owner::Reservation(id);
                let whole: Vec<usize> = model
                    .pieces(seller)
                    .into_iter()
                    .filter(|&(_, ps, pe)| ps <= h && pe >= e)
                    .map(|(u, _, _)| u)
                    .collect();
                if whole.is_empty() {
                    continue;
                }
                // The seller's counterpart buys.
                let seller_org = customer_of(id);
                let buyer = if seller_org == customer {
                    other
                } else {
                    customer
                };
                let listing = resale::list(
                    db,
                    seller_org,
                    &app::resale::NewListing {
                        reservation_id: id,
                        units: whole.len() as i64,
                        start: at(h),
                        unit_hour_price_cents: 300,
                    },
                    now,
                )
                .await
                .unwrap();
                let bought = resale::buy(db, buyer, listing.id, None, FEE_BP, now)
                    .await
                    .unwrap();
                assert_eq!(bought.units, whole.len() as i64);
                for u in whole {
                    model.split_out(seller, u, h, e);
                    model.units[u].push((Owner::Reservation(bought.id), h, e));
                }
                model.reservations.push((bought.id, h, e, false));
                model.resold.insert(id);
                model.bought.insert(bought.id);
                if buyer == other {
                    others.lock().unwrap().insert(bought.id);
                }
            }
            Op::Order { units, start, len } => {
                let (s, e) = (start, start + len);
                let order = app::orders::NewOrder {
                    kind: None,
                    gpu_model: Some(model_name.clone()),
                    quantity: Quantity::Units(units),
                    hours: len,
                    earliest_start: at(s),
                    latest_start: at(s),
                    region: None,
                    energy_source: None,
                    tier: Tier::Firm,
                    max_total_cents: None,
                    expires_at: None,
                };
                let left = orders::create(db, other, &order, now).await.unwrap();
                let round = orders::fill_round(db, FEE_BP, now).await.unwrap();
                let after = orders::get(db, other, left.id).await.unwrap();
                match (model.pick(units, s, e), after.reservation_id) {
                    (Some(chosen), Some(rid)) => {
                        assert_eq!(round.filled, 1);
                        for u in chosen {
                            model.units[u].push((Owner::Reservation(rid), s, e));
                        }
                        model.reservations.push((rid, s, e, false));
                        others.lock().unwrap().insert(rid);
                    }
                    (None, None) => {
                        orders::cancel(db, other, left.id, now).await.unwrap();
                    }
                    (expected, got) => {
                        panic!("order {units}×[{s},{e}): model {expected:?}, filled with {got:?}")
                    }
                }
            }
            Op::Incident { unit: u } => {
                let new = incidents::NewIncident {
                    units: vec![u as i64 + 1],
                    cause: "model".into(),
                    started_at: now,
                    ends_at: None,
                };
                let inc = incidents::open(db, operator, pool, &new, now)
                    .await
                    .unwrap();
                // From the hour it started to the end of the pool's sale window.
                let (from, until) = (
                    (crate::fixtures::hour(now, 0) - t0).num_hours(),
                    (inc.out_of_sale_until - t0).num_hours(),
                );
                assert_eq!(until, 24 * 30);
                // Interruptible pieces first, then by reservation and start.
                let mut hit: Vec<(bool, i64, i64, i64)> = model.units[u]
                    .iter()
                    .filter_map(|&(o, s, e)| match o {
                        Owner::Reservation(id) => {
                            Some((!model.interruptible.contains(&id), id, s, e))
                        }
                        _ => None,
                    })
                    .collect();
                hit.sort();
                for (firm, id, s, e) in hit {
                    let owner = Owner::Reservation(id);
                    if !model.units[u].contains(&(owner, s, e)) {
                        continue; // a hold released by an earlier piece of it
                    }
                    let mut spare = model.pick(1, s, e).map(|v| v[0]);
                    if model.held.contains(&id) {
                        if spare.is_none() {
                            model.held.remove(&id);
                            for list in &mut model.units {
                                list.retain(|(o, _, _)| *o != owner);
                            }
                            let i = model.reservations.iter().position(|r| r.0 == id).unwrap();
                            model.reservations[i].3 = true;
                            continue;
                        }
                    } else if spare.is_none() && firm {
                        if let Some(&x) = model.preemptable(s, e).first() {
                            model.preempt(x, s, e);
                            spare = Some(x);
                        }
                    }
                    model.split_out(owner, u, s, e);
                    if let Some(x) = spare {
                        model.units[x].push((owner, s, e));
                    }
                }
                model.fill(inc.id, u, from, until);
            }
        }
        assert_eq!(
            db_snapshot(db, pool, t0).await,
            model.snapshot(),
            "database and model disagree"
        );
    }
    let books = ledger::reconcile(db, now).await.unwrap();
    assert!(
        books.is_clean(),
        "the books disagree: {:?}",
        books.differences
    );
}

/// A piece of a live reservation and an hour inside it, picked by the op's numbers:
/// (reservation id, owner, piece, hour).
fn choose_piece(
    model: &Model,
    pick: usize,
    piece: usize,
    from: i64,
) -> Option<(i64, Owner, Piece, i64)> {
    // Holds are not credited and resales are final: their hours are not moved or cut here.
    let live: Vec<i64> = model
        .reservations
        .iter()
        .filter(|r| !r.3 && !model.held.contains(&r.0) && !model.bought.contains(&r.0))
        .map(|r| r.0)
        .collect();
    let id = *live.get(pick % live.len().max(1))?;
    let owner = Owner::Reservation(id);
    let pieces = model.pieces(owner);
    let p @ (_, s, e) = *pieces.get(piece % pieces.len().max(1))?;
    Some((id, owner, p, s + from % (e - s)))
}

/// A migrated database of its own for a property test (`label` keeps two tests apart),
/// shared by all its cases; dropped by [`drop_database`].
pub async fn fresh_database(label: &str) -> (PgPool, String) {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL must point at the test cluster");
    let name = format!("rigshift_{label}_{}", std::process::id());
    let admin = PgConnectOptions::from_str(&url).unwrap();
    let mut conn = sqlx::PgConnection::connect_with(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists {name} with (force)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let db = PgPool::connect_with(admin.database(&name)).await.unwrap();
    server::db::MIGRATOR.run(&db).await.unwrap();
    (db, name)
}

#[test]
fn random_sequences_agree_with_the_model_and_keep_the_invariants() {
    let (rt, db, name, mut runner) = property_setup("prop", 256);
    let case = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        rt.block_on(run_case(&db, n, ops));
        Ok(())
    });
    // The sequences reached the paths under test: preemptions and grid events cut hours.
    let cuts: Vec<(String, i64)> = rt
        .block_on(
            sqlx::query_as("select reason, count(*) from allocation_cut group by 1 order by 1")
                .fetch_all(&db),
        )
        .unwrap();
    let reached: (i64, i64, i64) = rt
        .block_on(
            sqlx::query_as(
                "select (select count(*) from standing_order where state = 'filled'),
                        (select count(*) from audit_event where action = 'reservation.hold_expired'),
                        (select count(*) from incident_hit where outcome = 'moved')",
            )
            .fetch_one(&db),
        )
        .unwrap();
    rt.block_on(drop_database(db, &name));
    result.unwrap();
    assert!(
        reached.0 > 0,
        "no standing order was filled in any sequence"
    );
    assert!(reached.1 > 0, "no hold expired in any sequence");
    assert!(reached.2 > 0, "no incident moved a booking in any sequence");
    for reason in ["curtailed", "incident", "preempted", "resold"] {
        assert!(
            cuts.iter().any(|(r, n)| r == reason && *n > 0),
            "no cut for {reason} in any sequence: {cuts:?}"
        );
    }
}

/// What a property test over the database runs in: a runtime, a migrated database of its
/// own ([`fresh_database`]; its name, for [`drop_database`]), and a runner of `cases` cases
/// that keeps no failure files.
pub fn property_setup(
    label: &str,
    cases: u32,
) -> (tokio::runtime::Runtime, PgPool, String, TestRunner) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (db, name) = rt.block_on(fresh_database(label));
    let runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    (rt, db, name, runner)
}

pub async fn drop_database(db: PgPool, name: &str) {
    db.close().await;
    let url = std::env::var("DATABASE_URL").unwrap();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists {name} with (force)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}
