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

use crate::fixtures::FEE_BP;
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
