//! The database itself refuses what would break the marketplace's invariants.

use app::services::settlement::{self, AllocateError, AllocationOwner};
use chrono::{Duration, DurationRound, Utc};
use sqlx::PgPool;

fn sqlstate(err: &sqlx::Error) -> Option<String> {
    err.as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.to_string())
}

/// A minimal operator, site and 2-node GPU pool; returns (site_id, pool_id).
async fn tiny_pool(db: &PgPool, name: &str) -> (i64, i64) {
    let org: i64 = sqlx::query_scalar(
        "insert into organization (name, kind) values ($1, 'operator') returning id",
    )
    .bind(format!("{name} operator"))
    .fetch_one(db)
    .await
    .unwrap();
    let site: i64 = sqlx::query_scalar(
        "insert into site (operator_id, name, country, region, grid_region, energy_source, interconnect_kw, pue, cooling, status)
         values ($1, $2, 'US', 'Texas', 'ERCOT', 'wind', 10000, 1.2, 'air', 'live') returning id",
    )
    .bind(org)
    .bind(name)
    .fetch_one(db)
    .await
    .unwrap();
    let pool: i64 = sqlx::query_scalar(
        "insert into capacity_pool (site_id, kind, name, unit_count, gpu_model, gpus_per_node, gpu_memory_gb, interconnect, node_power_w, price_cents)
         values ($1, 'gpu', 'pool', 2, 'H100 SXM', 8, 80, 'infiniband', 10200, 199) returning id",
    )
    .bind(site)
    .fetch_one(db)
    .await
    .unwrap();
    sqlx::query("insert into capacity_unit (site_id, pool_id, ordinal, label) select $1, $2, n, 'node-' || n from generate_series(1, 2) n")
        .bind(site)
        .bind(pool)
        .execute(db)
        .await
        .unwrap();
    (site, pool)
}

async fn blackout(
    db: &PgPool,
    site: i64,
    pool: i64,
    during: &sqlx::postgres::types::PgRange<chrono::DateTime<Utc>>,
) -> i64 {
    sqlx::query_scalar(
        "insert into blackout (site_id, pool_id, during) values ($1, $2, $3) returning id",
    )
    .bind(site)
    .bind(pool)
    .bind(during)
    .fetch_one(db)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn one_unit_never_serves_two_owners_at_once(db: PgPool) {
    let (site, pool) = tiny_pool(&db, "Overlap").await;
    let t0 = Utc::now().duration_trunc(Duration::hours(1)).unwrap() + Duration::days(1);
    let w = settlement::window(t0, t0 + Duration::hours(10));
    let b1 = blackout(&db, site, pool, &w).await;
    let unit: i64 =
        sqlx::query_scalar("select id from capacity_unit where pool_id = $1 and ordinal = 1")
            .bind(pool)
            .fetch_one(&db)
            .await
            .unwrap();
    sqlx::query("insert into allocation (site_id, pool_id, unit_id, blackout_id, during) values ($1, $2, $3, $4, $5)")
        .bind(site).bind(pool).bind(unit).bind(b1).bind(w)
        .execute(&db)
        .await
        .unwrap();

    // The same unit over an overlapping range: refused by PostgreSQL (exclusion violation).
    let overlapping = settlement::window(t0 + Duration::hours(9), t0 + Duration::hours(12));
    let b2 = blackout(&db, site, pool, &overlapping).await;
    let err = sqlx::query("insert into allocation (site_id, pool_id, unit_id, blackout_id, during) values ($1, $2, $3, $4, $5)")
        .bind(site).bind(pool).bind(unit).bind(b2).bind(overlapping)
        .execute(&db)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("23P01"), "{err}");

    // Back to back ([start, end) ranges) is fine.
    let adjacent = settlement::window(t0 + Duration::hours(10), t0 + Duration::hours(12));
    let b3 = blackout(&db, site, pool, &adjacent).await;
    sqlx::query("insert into allocation (site_id, pool_id, unit_id, blackout_id, during) values ($1, $2, $3, $4, $5)")
        .bind(site).bind(pool).bind(unit).bind(b3).bind(adjacent)
        .execute(&db)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn allocation_is_all_or_nothing(db: PgPool) {
    let (site, pool) = tiny_pool(&db, "AllOrNothing").await;
    let t0 = Utc::now().duration_trunc(Duration::hours(1)).unwrap() + Duration::days(1);
    let w = settlement::window(t0, t0 + Duration::hours(4));

    let mut tx = db.begin().await.unwrap();
    let b = sqlx::query_scalar::<_, i64>(
        "insert into blackout (site_id, pool_id, during) values ($1, $2, $3) returning id",
    )
    .bind(site)
    .bind(pool)
    .bind(w)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let err = settlement::allocate(&mut tx, pool, &w, 3, AllocationOwner::Blackout(b))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AllocateError::Insufficient { wanted: 3, free: 2 }),
        "{err}"
    );
    tx.rollback().await.unwrap();
    let held: i64 = sqlx::query_scalar("select count(*) from allocation")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(held, 0, "a refused request leaves nothing behind");

    let mut tx = db.begin().await.unwrap();
    let b = sqlx::query_scalar::<_, i64>(
        "insert into blackout (site_id, pool_id, during) values ($1, $2, $3) returning id",
    )
    .bind(site)
    .bind(pool)
    .bind(w)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    settlement::allocate(&mut tx, pool, &w, 2, AllocationOwner::Blackout(b))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let held: i64 = sqlx::query_scalar("select count(*) from allocation")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(held, 2);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn windows_must_be_hour_aligned_and_non_empty(db: PgPool) {
    let (site, pool) = tiny_pool(&db, "Grain").await;
    let t0 = Utc::now().duration_trunc(Duration::hours(1)).unwrap() + Duration::days(1);
    for (start, end) in [
        (t0 + Duration::minutes(30), t0 + Duration::hours(2)), // not on the hour
        (t0 + Duration::hours(2), t0 + Duration::hours(1)),    // end before start
        (t0, t0),                                              // empty
    ] {
        let err = sqlx::query("insert into blackout (site_id, pool_id, during) values ($1, $2, tstzrange($3, $4, '[)'))")
            .bind(site).bind(pool).bind(start).bind(end)
            .execute(&db)
            .await
            .unwrap_err();
        // 23514: check violation; 22000: range lower bound greater than upper bound.
        let code = sqlstate(&err).unwrap_or_default();
        assert!(code == "23514" || code == "22000", "{start}..{end}: {err}");
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_unit_cannot_serve_another_pools_blackout(db: PgPool) {
    let (site_a, pool_a) = tiny_pool(&db, "Pool A").await;
    let (_site_b, pool_b) = tiny_pool(&db, "Pool B").await;
    let t0 = Utc::now().duration_trunc(Duration::hours(1)).unwrap() + Duration::days(1);
    let w = settlement::window(t0, t0 + Duration::hours(1));
    let b = blackout(&db, site_a, pool_a, &w).await;
    let foreign_unit: i64 =
        sqlx::query_scalar("select id from capacity_unit where pool_id = $1 limit 1")
            .bind(pool_b)
            .fetch_one(&db)
            .await
            .unwrap();
    let err = sqlx::query("insert into allocation (site_id, pool_id, unit_id, blackout_id, during) values ($1, $2, $3, $4, $5)")
        .bind(site_a).bind(pool_a).bind(foreign_unit).bind(b).bind(w)
        .execute(&db)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("23503"), "{err}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_reservation_cannot_commit_with_fewer_units_than_it_sold(db: PgPool) {
    let (site, pool) = tiny_pool(&db, "Partial").await;
    let customer: i64 = sqlx::query_scalar(
        "insert into organization (name, kind) values ('Buyer', 'customer') returning id",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let t0 = Utc::now().duration_trunc(Duration::hours(1)).unwrap() + Duration::days(1);
    let w = settlement::window(t0, t0 + Duration::hours(4));
    let mut tx = db.begin().await.unwrap();
    let id: i64 = sqlx::query_scalar(
        "insert into reservation (site_id, pool_id, customer_id, unit_count, during, state, currency,
                                  unit_price_cents, base_cents, discount_cents, fee_cents, total_cents)
         values ($1, $2, $3, 2, $4, 'confirmed', 'USD', 199, 100, 0, 3, 103) returning id",
    )
    .bind(site)
    .bind(pool)
    .bind(customer)
    .bind(w)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    // One of the two units only.
    settlement::allocate(&mut tx, pool, &w, 1, AllocationOwner::Reservation(id))
        .await
        .unwrap();
    let err = tx.commit().await.unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|e| e.constraint()),
        Some("reservation_fully_allocated"),
        "{err}"
    );
    let left: i64 = sqlx::query_scalar("select count(*) from reservation")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(left, 0, "nothing of the partial booking remains");
}
