//! Statements that must read by key whatever the planner saw when it planned them.
//!
//! The functions on the booking path keep one generic plan per connection, made from the
//! statistics of the moment they are first called. A table analysed while empty (a market
//! restored or upgraded before its first preemption has no cut, and the analyse after a
//! restore covers every table) makes a sequential scan the cheapest plan, and the connection
//! keeps it while the table grows (BENCHMARKS.md, 2026-12-06: the coverage check at commit
//! took 0.49 ms a call that way in the settlement benchmark, 0.05 ms reading by key).

use app::booking::Tier;
use app::services::reservations;
use sqlx::{Connection, PgConnection, PgPool};

use crate::fixtures::{hour, FEE_BP};
use crate::preemption::{ask, flexible_market, org};

/// The coverage check (run at commit for every reservation a transaction wrote) reads a
/// reservation's cuts through their index on a connection that planned it while
/// `allocation_cut` was empty and analysed as such.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_coverage_check_reads_cuts_by_key_when_planned_on_an_empty_table(db: PgPool) {
    let m = flexible_market(&db, 2, 0).await;
    let flex = org(&db, "Flex").await;
    let interruptible = reservations::reserve(
        &db,
        flex,
        &ask(&m, 2, 2, 28, Tier::Interruptible),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    sqlx::query("analyze allocation_cut")
        .execute(&db)
        .await
        .unwrap();
    // A connection of its own, so that the check is planned here, after the analyse.
    let mut conn = PgConnection::connect_with(&db.connect_options())
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("select reservation_check_coverage($1)")
        .bind(interruptible.id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let (seq, idx): (i64, i64) = sqlx::query_as(
        "select seq_scan, coalesce(idx_scan, 0) from pg_stat_xact_user_tables where relname = 'allocation_cut'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert!(idx >= 1, "the check did not read allocation_cut at all");
    assert_eq!(
        seq, 0,
        "the check scanned every cut to find this reservation's"
    );
}

/// A pool's allocations over a window (the pool read's busy count, the preemption choice)
/// are read through the two indexes split by length (20261222000100) and no other, so that
/// long allocations do not widen the pages a short window opens; and the two together miss
/// no allocation: one of exactly a week (short), one an hour longer (long), one of 4 hours.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_pools_window_is_read_by_allocation_length_and_misses_none(db: PgPool) {
    let m = flexible_market(&db, 4, 0).await;
    let flex = org(&db, "Flex").await;
    for (hours, tier) in [
        (168, Tier::Firm),
        (169, Tier::Firm),
        (4, Tier::Interruptible),
    ] {
        let customer = if tier == Tier::Firm { m.customer } else { flex };
        reservations::reserve(&db, customer, &ask(&m, 1, 10, hours, tier), FEE_BP, m.now)
            .await
            .unwrap();
    }
    let mut conn = PgConnection::connect_with(&db.connect_options())
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    // The table is a few rows; on a market's it would not be scanned whole either.
    sqlx::query("set local enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    let (busy, candidates): (i64, i64) = sqlx::query_as(
        "select pool_busy_units($1, tstzrange($2, $2 + interval '2 hours')), \
                (select count(*) from preemption_candidates($1, tstzrange($2, $2 + interval '2 hours'), $2))",
    )
    .bind(m.pool)
    .bind(hour(m.now, 11))
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    // Every index of allocation the two read, with how often.
    let scans: Vec<(String, i64)> = sqlx::query_as(
        "select i.indexrelid::regclass::text, pg_stat_get_xact_numscans(i.indexrelid) \
           from pg_index i \
          where i.indrelid = 'allocation'::regclass and pg_stat_get_xact_numscans(i.indexrelid) > 0 \
          order by 1",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(busy, 3, "a unit's allocation was missed by the count");
    assert_eq!(
        candidates, 1,
        "only the interruptible unit may be preempted"
    );
    let read: Vec<&str> = scans.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        read,
        ["allocation_pool_long_idx", "allocation_pool_short_idx"],
        "{scans:?}"
    );
    // Both functions asked both indexes.
    assert!(scans.iter().all(|(_, n)| *n >= 2), "{scans:?}");
}
