//! The per-pool sold-out summary search reads (`pool_full`, folded in by the `occupancy`
//! job): it says exactly where every unit is busy, and a summary behind the allocations
//! makes a search slower, never wrong.

use crate::fixtures::{hour, market, req, FEE_BP};
use app::pricing::Quantity;
use app::services::reservations;
use app::services::search::{self, MarketQuery, SearchSort};
use app::services::{availability, pools};
use app::window::HourWindow;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

async fn refresh(db: &PgPool) -> i64 {
    let mut pools = 0;
    loop {
        let n = search::refresh_occupancy(db).await.unwrap();
        if n == 0 {
            return pools;
        }
        pools += n;
    }
}

/// The hours (from `now`'s hour, within 0..horizon) in which every unit of the pool is
/// allocated: as the summary says, and as counted from the allocations one by one.
async fn full_hours(
    db: &PgPool,
    pool: i64,
    now: DateTime<Utc>,
    horizon: i64,
) -> (Vec<i64>, Vec<i64>) {
    let rows: Vec<(i64, bool, bool)> = sqlx::query_as(
        "select h,
                exists (select 1 from pool_full f where f.pool_id = $1 and f.full_during @> at),
                (select count(*) from allocation a where a.pool_id = $1 and a.during @> at)
                    = (select unit_count from capacity_pool where id = $1)
           from generate_series(0, $3 - 1) h,
                lateral (select date_trunc('hour', $2::timestamptz) + h * interval '1 hour' as at) t
          order by h",
    )
    .bind(pool)
    .bind(now)
    .bind(horizon)
    .fetch_all(db)
    .await
    .unwrap();
    let pick =
        |f: fn(&(i64, bool, bool)) -> bool| rows.iter().filter(|r| f(r)).map(|r| r.0).collect();
    (pick(|r| r.1), pick(|r| r.2))
}

async fn summarised_full_hours(
    db: &PgPool,
    pool: i64,
    now: DateTime<Utc>,
    horizon: i64,
) -> Vec<i64> {
    full_hours(db, pool, now, horizon).await.0
}

fn query(start: DateTime<Utc>, hours: i64, gpus: i64) -> MarketQuery {
    MarketQuery {
        kind: None,
        gpu_model: Some("h100 sxm".into()),
        quantity: Some(Quantity::Gpus(gpus)),
        hours,
        start: Some(start),
        within_days: None,
        region: None,
        energy_source: None,
        interconnect: None,
        max_price_cents: None,
        min_reliability_bp: None,
        tier: app::booking::Tier::Firm,
        delivery: Default::default(),
        sort: SearchSort::Price,
        limit: 20,
        offset: 0,
    }
}

async fn offered(db: &PgPool, pool: i64, q: &MarketQuery, now: DateTime<Utc>) -> bool {
    let page = search::search(db, q, FEE_BP, now).await.unwrap();
    page.hits.iter().any(|h| h.pool_id == pool)
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_sold_out_pool_is_passed_over_and_offered_again_the_moment_a_unit_frees(db: PgPool) {
    let m = market(&db, 2).await;
    // One node each: both busy from hour 20 to 34.
    let _first = reservations::reserve(&db, m.customer, &req(&m, 8, 10, 24), FEE_BP, m.now)
        .await
        .unwrap();
    let second = reservations::reserve(&db, m.customer, &req(&m, 8, 20, 24), FEE_BP, m.now)
        .await
        .unwrap();
    assert!(refresh(&db).await >= 1);
    assert_eq!(
        summarised_full_hours(&db, m.pool, m.now, 100).await,
        (20..34).collect::<Vec<_>>()
    );
    // Refreshing again with nothing changed touches no pool.
    assert_eq!(refresh(&db).await, 0);

    let overlapping = query(hour(m.now, 30), 24, 8);
    let after = query(hour(m.now, 44), 24, 8);
    assert!(!offered(&db, m.pool, &overlapping, m.now).await);
    assert!(offered(&db, m.pool, &after, m.now).await);

    // Cancelled: one node is free from hour 20, though the summary still says full.
    reservations::cancel(&db, m.customer, second.id, m.now)
        .await
        .unwrap();
    assert_eq!(
        summarised_full_hours(&db, m.pool, m.now, 100).await,
        (20..34).collect::<Vec<_>>()
    );
    assert!(
        offered(&db, m.pool, &overlapping, m.now).await,
        "a freed unit is offered before the summary catches up"
    );
    refresh(&db).await;
    assert_eq!(
        summarised_full_hours(&db, m.pool, m.now, 100).await,
        Vec::<i64>::new()
    );
    assert!(offered(&db, m.pool, &overlapping, m.now).await);
    // Both nodes asked for: the first booking still holds one until hour 34.
    assert!(!offered(&db, m.pool, &query(hour(m.now, 30), 24, 16), m.now).await);
}

/// Bookings, extensions and cancellations in a pseudo-random order; after each step the
/// search's answer for a set of windows matches the free units counted directly (whether or
/// not the summary has caught up), and after each refresh the summary's full hours are the
/// counted ones.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_summary_agrees_with_the_allocations_and_search_with_the_free_units(db: PgPool) {
    let m = market(&db, 3).await;
    let horizon = 120;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut live: Vec<i64> = Vec::new();
    let mut conn = db.acquire().await.unwrap();
    let pool = pools::load(&mut conn, m.pool, false).await.unwrap();
    for step in 0..40 {
        match next(4) {
            0 if !live.is_empty() => {
                let id = live.swap_remove(next(live.len() as u64) as usize);
                reservations::cancel(&db, m.customer, id, m.now)
                    .await
                    .unwrap();
            }
            _ => {
                let nodes = 1 + next(2) as i64;
                let from = 1 + next(90) as i64;
                let hours = 4 + next(30) as i64;
                if let Ok(r) = reservations::reserve(
                    &db,
                    m.customer,
                    &req(&m, 8 * nodes, from, hours),
                    FEE_BP,
                    m.now,
                )
                .await
                {
                    live.push(r.id);
                }
            }
        }
        if step % 3 == 0 {
            refresh(&db).await;
            let (summarised, counted) = full_hours(&db, m.pool, m.now, horizon).await;
            assert_eq!(summarised, counted, "after step {step}");
        }
        for (from, hours, nodes) in [
            (5, 24, 1),
            (20, 10, 2),
            (40, 30, 1),
            (60, 8, 3),
            (80, 24, 1),
        ] {
            let w = HourWindow::new(hour(m.now, from), hour(m.now, from + hours)).unwrap();
            let free = availability::free_units(&mut conn, &pool, &w)
                .await
                .unwrap();
            assert_eq!(
                offered(&db, m.pool, &query(w.start(), hours, 8 * nodes), m.now).await,
                free >= nodes,
                "step {step}: {nodes} nodes from hour {from} for {hours} h, {free} free"
            );
        }
    }
}

/// One statement that allocates in stretches of time months apart (a group of bookings
/// committed together) records one change per stretch, so the next refresh reads the
/// allocations of those stretches and not of every month between them.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn one_statement_allocating_months_apart_records_a_change_per_stretch(db: PgPool) {
    let m = market(&db, 2).await;
    let booked = reservations::reserve(&db, m.customer, &req(&m, 8, 10, 24), FEE_BP, m.now)
        .await
        .unwrap();
    refresh(&db).await;
    let mut tx = db.begin().await.unwrap();
    sqlx::query("delete from pool_occupancy_change")
        .execute(&mut *tx)
        .await
        .unwrap();
    // The booking's allocations again, 100 hours later and 1,000 hours later, in one
    // statement; the other node, so only the deferred whole-reservation check (never
    // reached: rolled back) would object.
    sqlx::query(
        "insert into allocation (site_id, pool_id, unit_id, reservation_id, during)
         select a.site_id, a.pool_id, other.id, a.reservation_id,
                tstzrange(lower(a.during) + shift, upper(a.during) + shift)
           from allocation a
           join capacity_unit other on other.pool_id = a.pool_id and other.id <> a.unit_id
          cross join (values (interval '100 hours'), (interval '1000 hours')) s(shift)
          where a.reservation_id = $1",
    )
    .bind(booked.id)
    .execute(&mut *tx)
    .await
    .unwrap();
    let changes: Vec<(DateTime<Utc>, DateTime<Utc>, bool)> = sqlx::query_as(
        "select lower(during), upper(during), freed from pool_occupancy_change
          where pool_id = $1 order by lower(during)",
    )
    .bind(m.pool)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        changes,
        vec![
            (hour(m.now, 110), hour(m.now, 134), false),
            (hour(m.now, 1010), hour(m.now, 1034), false),
        ]
    );
    tx.rollback().await.unwrap();
}
