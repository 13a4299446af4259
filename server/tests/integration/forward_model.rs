//! Property test of the forward pools' one allocation flow of their own, moving a delivery:
//! random sequences of forward bookings, blackouts, cancellations and deliveries moved later
//! or earlier on a 3-node pool of a site still being built, checked after every step
//! against an in-memory model of the units (what the new delivery passes moves by the
//! delay, whole, on its units; the move is refused, changing nothing, if a moved piece would
//! meet one that stays), and the books reconciled after every sequence.

use app::forward::{ForwardTerms, LateCredit};
use app::services::blackouts::{self, BlackoutUnits};
use app::services::catalog;
use app::services::error::ServiceError;
use app::services::ledger;
use app::services::reservations;
use chrono::{DateTime, Duration, DurationRound, Utc};
use proptest::prelude::*;
use sqlx::PgPool;

use crate::fixtures::{gpu_pool, site_input, FEE_BP};
use crate::model::{drop_database, property_setup};

const UNITS: usize = 3;

/// Later deliveries refused, over all sequences (a path the sequences must reach).
static REFUSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[derive(Clone, Debug)]
enum Op {
    /// A forward booking of `units` nodes for `len` hours, `start` hours after the pool's
    /// delivery as it is now.
    Reserve {
        units: i64,
        start: i64,
        len: i64,
    },
    /// The operator blocks `units` nodes (maintenance), as above.
    Blackout {
        units: i64,
        start: i64,
        len: i64,
    },
    Cancel {
        pick: usize,
    },
    /// The delivery moves `hours` later (or earlier, but never before the first one).
    Delay {
        hours: i64,
    },
    Sooner {
        hours: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1..=UNITS as i64, 0..30_i64, 1..10_i64).prop_map(|(units, start, len)| Op::Reserve { units, start, len }),
        1 => (1..=UNITS as i64, 0..30_i64, 1..6_i64).prop_map(|(units, start, len)| Op::Blackout { units, start, len }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        3 => (1..12_i64).prop_map(|hours| Op::Delay { hours }),
        1 => (1..12_i64).prop_map(|hours| Op::Sooner { hours }),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Reservation(i64),
    Blackout(i64),
}

/// Per unit (by ordinal − 1): (owner, start, end) in hours from the first delivery.
type Units = Vec<Vec<(Owner, i64, i64)>>;

/// The pool in the model: per unit, (owner, start, end) in hours from the first delivery;
/// the delivery now; the live reservations' (id, start).
#[derive(Default)]
struct Model {
    units: Units,
    delivery: i64,
    live: Vec<(i64, i64)>,
}

impl Model {
    fn pick(&self, k: i64, s: i64, e: i64) -> Option<Vec<usize>> {
        let free: Vec<usize> = (0..UNITS)
            .filter(|&u| self.units[u].iter().all(|&(_, bs, be)| be <= s || bs >= e))
            .take(k as usize)
            .collect();
        (free.len() == k as usize).then_some(free)
    }

    /// The delivery moved to `to` (later): the reservations starting before it move by the
    /// delay; None when a moved piece would meet one that stays.
    fn delayed(&self, to: i64) -> Option<(Units, Vec<(i64, i64)>)> {
        let delay = to - self.delivery;
        let moving: Vec<i64> = self
            .live
            .iter()
            .filter(|&&(_, s)| s < to)
            .map(|&(id, _)| id)
            .collect();
        let moves = |o: &Owner| matches!(o, Owner::Reservation(id) if moving.contains(id));
        let mut units = self.units.clone();
        for unit in &mut units {
            for piece in unit.iter_mut().filter(|p| moves(&p.0)) {
                piece.1 += delay;
                piece.2 += delay;
            }
            for (i, a) in unit.iter().enumerate() {
                for b in &unit[i + 1..] {
                    if moves(&a.0) != moves(&b.0) && a.1 < b.2 && b.1 < a.2 {
                        return None;
                    }
                }
            }
        }
        let live = self
            .live
            .iter()
            .map(|&(id, s)| (id, if moving.contains(&id) { s + delay } else { s }))
            .collect();
        Some((units, live))
    }
}

/// The pool's allocations as the database has them, in the model's terms.
async fn pieces(db: &PgPool, pool: i64, t0: DateTime<Utc>) -> Units {
    type Row = (i32, Option<i64>, Option<i64>, DateTime<Utc>, DateTime<Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "select u.ordinal, a.reservation_id, a.blackout_id, lower(a.during), upper(a.during)
           from allocation a join capacity_unit u on u.id = a.unit_id
          where a.pool_id = $1",
    )
    .bind(pool)
    .fetch_all(db)
    .await
    .unwrap();
    let mut units = vec![Vec::new(); UNITS];
    for (ordinal, r, b, s, e) in rows {
        let owner = match (r, b) {
            (Some(r), _) => Owner::Reservation(r),
            (_, Some(b)) => Owner::Blackout(b),
            _ => unreachable!("an allocation has one owner"),
        };
        units[ordinal as usize - 1].push((owner, (s - t0).num_hours(), (e - t0).num_hours()));
    }
    for u in &mut units {
        u.sort();
    }
    units
}

async fn run_case(db: &PgPool, case: usize, ops: Vec<Op>) {
    let now = Utc::now();
    let t0 = now.duration_trunc(Duration::hours(1)).unwrap() + Duration::days(30);
    let at = |h: i64| t0 + Duration::hours(h);
    let terms = |h: i64| ForwardTerms {
        delivery_at: at(h),
        late_credit: LateCredit::Share { bp_per_day: 100 },
        walk_away_at: t0 + Duration::days(200),
    };
    let mut site = site_input("Hall", 50_000);
    site.status = "building".into();
    let mut pool = gpu_pool("Hall nodes", UNITS as i64);
    pool.forward = Some(terms(0));
    let m = crate::fixtures::market_on(db, &format!(" {case}"), &site, &pool, (1, 24 * 60)).await;
    let mut model = Model {
        units: vec![Vec::new(); UNITS],
        ..Model::default()
    };
    for op in ops {
        match op {
            Op::Reserve { units, start, len } => {
                let (s, e) = (model.delivery + start, model.delivery + start + len);
                let r = app::booking::BookingRequest {
                    pool_id: m.pool,
                    quantity: app::pricing::Quantity::Gpus(units * 8),
                    start: at(s),
                    end: at(e),
                    tier: app::booking::Tier::Firm,
                    agreed_total_cents: None,
                };
                let got = reservations::reserve(db, m.customer, &r, FEE_BP, now).await;
                match (model.pick(units, s, e), got) {
                    (Some(chosen), Ok(res)) => {
                        for u in chosen {
                            model.units[u].push((Owner::Reservation(res.id), s, e));
                        }
                        model.live.push((res.id, s));
                    }
                    (None, Err(ServiceError::Conflict { .. })) => {}
                    (expected, got) => {
                        panic!("reserve {units}×[{s},{e}): model {expected:?}, db {got:?}")
                    }
                }
            }
            Op::Blackout { units, start, len } => {
                let (s, e) = (model.delivery + start, model.delivery + start + len);
                let got = blackouts::add(
                    db,
                    m.operator,
                    m.pool,
                    at(s),
                    at(e),
                    BlackoutUnits::Count(units),
                    "test",
                )
                .await;
                match (model.pick(units, s, e), got) {
                    (Some(chosen), Ok(id)) => {
                        for u in chosen {
                            model.units[u].push((Owner::Blackout(id), s, e));
                        }
                    }
                    (None, Err(ServiceError::Conflict { .. })) => {}
                    (expected, got) => {
                        panic!("blackout {units}×[{s},{e}): model {expected:?}, db {got:?}")
                    }
                }
            }
            Op::Cancel { pick } => {
                if model.live.is_empty() {
                    continue;
                }
                let (id, _) = model.live.remove(pick % model.live.len());
                reservations::cancel(db, m.customer, id, now).await.unwrap();
                for u in &mut model.units {
                    u.retain(|p| p.0 != Owner::Reservation(id));
                }
            }
            Op::Delay { hours } => {
                let to = model.delivery + hours;
                pool.forward = Some(terms(to));
                let got = catalog::update_pool(db, m.operator, m.pool, &pool).await;
                match (model.delayed(to), got) {
                    (Some((units, live)), Ok(n)) => {
                        let moved = live.iter().zip(&model.live).filter(|(a, b)| a != b).count();
                        assert_eq!(n as usize, moved, "delay to {to}");
                        model.units = units;
                        model.live = live;
                        model.delivery = to;
                    }
                    (None, Err(ServiceError::Conflict { .. })) => {
                        REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        pool.forward = Some(terms(model.delivery));
                    }
                    (expected, got) => panic!(
                        "delay to {to}: model {}, db {got:?}",
                        if expected.is_some() {
                            "moves"
                        } else {
                            "refuses"
                        }
                    ),
                }
            }
            Op::Sooner { hours } => {
                let to = (model.delivery - hours).max(0);
                pool.forward = Some(terms(to));
                assert_eq!(
                    catalog::update_pool(db, m.operator, m.pool, &pool)
                        .await
                        .unwrap(),
                    0,
                    "an earlier delivery moves nothing"
                );
                model.delivery = to;
            }
        }
        let mut want = model.units.clone();
        for u in &mut want {
            u.sort();
        }
        assert_eq!(pieces(db, m.pool, t0).await, want, "after {op:?}");
    }
    // Every reservation's hours are its allocations' (moved together), and the books agree.
    let torn: i64 = sqlx::query_scalar(
        "select count(*) from allocation a join reservation r on r.id = a.reservation_id
          where r.pool_id = $1 and a.during <> r.during",
    )
    .bind(m.pool)
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(torn, 0);
    let books = ledger::reconcile(db, now).await.unwrap();
    assert!(books.is_clean(), "{books:?}");
}

#[test]
fn moving_deliveries_agrees_with_the_model() {
    let (rt, db, name, mut runner) = property_setup("forward", 64);
    let case = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&proptest::collection::vec(op(), 1..30), |ops| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        rt.block_on(run_case(&db, n, ops));
        Ok(())
    });
    // The sequences reached both outcomes of a later delivery.
    let delayed: i64 = rt
        .block_on(
            sqlx::query_scalar(
                "select count(*) from event_outbox where kind = 'reservation.delayed'",
            )
            .fetch_one(&db),
        )
        .unwrap();
    rt.block_on(drop_database(db, &name));
    result.unwrap();
    assert!(
        delayed > 0,
        "no delivery moved a reservation in any sequence"
    );
    assert!(
        REFUSED.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no later delivery was refused in any sequence"
    );
}
