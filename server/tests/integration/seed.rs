use app::services::password;
use server::seed::{self, SeedError, SeedOutcome, DEMO_PASSWORD};
use sqlx::PgPool;

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn seeds_a_living_market_once(db: PgPool) {
    let counts = match seed::seed_if_empty(&db).await.unwrap() {
        SeedOutcome::Seeded(c) => c,
        other => panic!("expected a seed, got {other:?}"),
    };
    assert_eq!(counts.sites, 12);
    assert_eq!(counts.organizations, 9);
    assert_eq!(counts.pools, 19);
    assert_eq!(counts.reservations, 19);
    assert_eq!(counts.blackouts, 2);
    assert_eq!(counts.grid_events, 2);
    assert_eq!(counts.incidents, 2);
    // The past ERS call shed the fleet and four interruptible H100 nodes, credited.
    let (units, credits): (i64, i64) = sqlx::query_as(
        "select (select count(*) from grid_event_shed), (select count(*) from reservation_credit where reason = 'curtailed')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((units, credits), (4, 1));
    // One incident healed onto a spare (10 node-hours moved, nothing credited), one found
    // only once it was over (6 node-hours lost, credited with the SLA tier's credit).
    let outcomes: Vec<(String, i64)> = sqlx::query_as(
        "select outcome, sum(range_hours(during))::bigint from incident_hit group by outcome order by outcome",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        outcomes,
        [("lost".to_string(), 6), ("moved".to_string(), 10)]
    );
    let incident_credits: Vec<String> = sqlx::query_scalar(
        "select c.reason from incident_credit ic join reservation_credit c on c.id = ic.credit_id order by c.id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(incident_credits[0], "incident");
    let scored: i64 =
        sqlx::query_scalar("select count(*) from pool_reliability where lost_unit_hours > 0")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(
        scored, 1,
        "the pool that lost hours has a score under 100 %"
    );

    let regions: Vec<String> =
        sqlx::query_scalar("select distinct grid_region from site order by 1")
            .fetch_all(&db)
            .await
            .unwrap();
    for expected in ["ERCOT", "PJM", "MISO", "SPP", "Hydro-Québec", "ANDE"] {
        assert!(
            regions.iter().any(|r| r == expected),
            "{expected} missing from {regions:?}"
        );
    }
    let models: Vec<String> = sqlx::query_scalar(
        "select distinct gpu_model from capacity_pool where kind = 'gpu' order by 1",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(models, ["B200", "H100 SXM", "H200", "MI300X", "RTX 4090"]);

    // A second run changes nothing.
    assert_eq!(
        seed::seed_if_empty(&db).await.unwrap(),
        SeedOutcome::AlreadyPopulated
    );
    assert!(matches!(seed::seed(&db).await, Err(SeedError::NotEmpty(9))));
    let sites: i64 = sqlx::query_scalar("select count(*) from site")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(sites, 12);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn every_live_reservation_holds_exactly_its_units_and_prices_add_up(db: PgPool) {
    seed::seed(&db).await.unwrap();
    /// (id, state, unit-hours sold, unit-hours held or cut, base, discount, fee, total)
    type Row = (i64, String, i64, i64, i64, i64, i64, i64);
    // Held or cut: a piece may have moved to another unit (an incident healed) or been cut
    // (curtailed, lost), never more or less than it sold.
    let rows: Vec<Row> = sqlx::query_as(
        "select r.id, r.state, r.unit_count * range_hours(r.during),
                (select coalesce(sum(range_hours(a.during)), 0) from allocation a where a.reservation_id = r.id)::bigint
                + (select coalesce(sum(range_hours(c.during)), 0) from allocation_cut c where c.reservation_id = r.id)::bigint,
                r.base_cents, r.discount_cents, r.fee_cents, r.total_cents
         from reservation r order by r.id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 19);
    // The hall being built at Mo i Rana is sold forward, from its delivery.
    let forward: i64 = sqlx::query_scalar(
        "select count(*) from reservation r join capacity_pool p on p.id = r.pool_id
          where r.forward_delivery_at = p.delivery_at and lower(r.during) >= p.delivery_at",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(forward, 1);
    let mut cancelled = 0;
    for (id, state, units, allocated, base, discount, fee, total) in rows {
        if state == "cancelled" {
            cancelled += 1;
            assert_eq!(allocated, 0, "cancelled reservation {id} still holds units");
        } else {
            assert_eq!(allocated, units, "reservation {id}");
        }
        assert!(base > 0 && fee > 0, "reservation {id} has a real price");
        assert_eq!(total, base - discount + fee, "reservation {id}");
    }
    assert_eq!(cancelled, 1);

    // Allocations cover each reservation's whole window on distinct units, except the
    // hours the grid event cut and the incidents moved (the database's coverage check
    // accounts for those).
    let mismatched: i64 = sqlx::query_scalar(
        "select count(*) from allocation a join reservation r on r.id = a.reservation_id
         where (a.during <> r.during or a.pool_id <> r.pool_id)
           and not exists (select 1 from allocation_cut c where c.reservation_id = r.id)
           and not exists (select 1 from incident_hit h where h.reservation_id = r.id)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(mismatched, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn demo_accounts_log_in_with_the_documented_password(db: PgPool) {
    seed::seed(&db).await.unwrap();
    let (email, hash): (String, String) = sqlx::query_as(
        "select email, password_hash from app_user where email = 'ml@helixlabs.example'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(email, "ml@helixlabs.example");
    assert!(hash.starts_with("$argon2id$"));
    assert!(password::verify(DEMO_PASSWORD.into(), hash.clone()).await);
    assert!(!password::verify("not-the-demo-password".into(), hash).await);
    let accounts = seed::demo_accounts().count();
    let users: i64 = sqlx::query_scalar("select count(*) from app_user")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(users, accounts as i64);
}
