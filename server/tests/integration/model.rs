//! Property test: random sequences of reserve / cancel / extend / blackout / move / early end
//! against one pool, checked after every step against an in-memory model of the pool's
//! units, and the books reconciled after every sequence.

use app::booking::{BookingRequest, ExtendTo};
use app::pricing::{self, Quantity};
use app::services::blackouts::{self, BlackoutUnits};
use app::services::catalog;
use app::services::error::ServiceError;
use app::services::ledger;
use app::services::reservations::{self, reallocation};
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
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..=UNITS as i64, 0..40_i64, 1..12_i64).prop_map(|(units, start, len)| Op::Reserve { units, start, len }),
        2 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        2 => (any::<usize>(), 1..10_i64).prop_map(|(pick, extra)| Op::Extend { pick, extra }),
        1 => (1..=UNITS as i64, 0..40_i64, 1..6_i64).prop_map(|(units, start, len)| Op::Blackout { units, start, len }),
        2 => (any::<usize>(), any::<usize>(), 0..UNITS, 0..12_i64).prop_map(|(pick, piece, to, from)| Op::Move { pick, piece, to, from }),
        1 => (any::<usize>(), any::<usize>(), 0..12_i64).prop_map(|(pick, piece, from)| Op::Cut { pick, piece, from }),
    ]
}

/// Who holds a unit over an hour range, in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Reservation(i64),
    Blackout(i64),
}

#[derive(Default)]
struct Model {
    /// Per unit (by ordinal − 1): (owner, start hour, end hour).
    units: Vec<Vec<(Owner, i64, i64)>>,
    /// Reservation id → (start, end, cancelled).
    reservations: Vec<(i64, i64, i64, bool)>,
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
        v
    }
}

async fn db_snapshot(db: &PgPool, pool: i64, t0: DateTime<Utc>) -> Vec<(i32, Owner, i64, i64)> {
    /// (unit ordinal, reservation, blackout, start, end)
    type Row = (i32, Option<i64>, Option<i64>, DateTime<Utc>, DateTime<Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "select u.ordinal, a.reservation_id, a.blackout_id, lower(a.during), upper(a.during)
         from allocation a join capacity_unit u on u.id = a.unit_id where a.pool_id = $1",
    )
    .bind(pool)
    .fetch_all(db)
    .await
    .unwrap();
    let mut v: Vec<_> = rows
        .into_iter()
        .map(|(ord, r, b, s, e)| {
            let owner = match (r, b) {
                (Some(r), None) => Owner::Reservation(r),
                (None, Some(b)) => Owner::Blackout(b),
                other => panic!("allocation with owners {other:?}"),
            };
            (ord, owner, (s - t0).num_hours(), (e - t0).num_hours())
        })
        .collect();
    v.sort();
    v
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
    let site = catalog::create_site(db, operator, &site_input("site", 50_000))
        .await
        .unwrap();
    let pool = catalog::create_pool(db, operator, site, &gpu_pool("pool", UNITS as i64), None)
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
            Op::Reserve { units, start, len } => {
                let r = BookingRequest {
                    pool_id: pool,
                    quantity: Quantity::Units(units),
                    start: at(start),
                    end: at(start + len),
                    tier: app::booking::Tier::Firm,
                };
                let got = reservations::reserve(db, customer, &r, FEE_BP, now).await;
                match (model.pick(units, start, start + len), got) {
                    (Some(chosen), Ok(res)) => {
                        assert_eq!(res.units, units);
                        for u in chosen {
                            model.units[u].push((Owner::Reservation(res.id), start, start + len));
                        }
                        model.reservations.push((res.id, start, start + len, false));
                    }
                    (None, Err(ServiceError::Conflict { .. })) => {}
                    (expected, got) => panic!(
                        "reserve {units}×[{start},{}): model {expected:?}, db {got:?}",
                        start + len
                    ),
                }
            }
            Op::Cancel { pick } => {
                if model.reservations.is_empty() {
                    continue;
                }
                let i = pick % model.reservations.len();
                let (id, start, _, cancelled) = model.reservations[i];
                let got = reservations::cancel(db, customer, id, now).await;
                if cancelled {
                    assert!(matches!(got, Err(ServiceError::Conflict { .. })), "{got:?}");
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
                    customer,
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
                    reallocation::CreditReason::EndedEarly,
                    "",
                    now,
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
                model.take_out(owner, p, at_hour);
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
    let live: Vec<i64> = model
        .reservations
        .iter()
        .filter(|r| !r.3)
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (db, name) = rt.block_on(fresh_database("prop"));
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        rt.block_on(run_case(&db, n, ops));
        Ok(())
    });
    rt.block_on(drop_database(db, &name));
    result.unwrap();
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
