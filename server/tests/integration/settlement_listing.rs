//! Listing and finding capacity through the services, against PostgreSQL: the interconnect
//! limit on what a site lists, availability timelines and free slots, and market search.

use crate::fixtures::{
    gpu_pool, hour, market, org, req, site_input, until_someone_waits_for_a_lock, FEE_BP,
};
use app::booking::BookingRequest;
use app::pricing::{Quantity, TermDiscount};
use app::services::catalog::{self, PoolInput, SiteInput};
use app::services::error::ServiceError;
use app::services::search::{self, MarketQuery, SearchSort};
use app::services::{availability, pools, reservations};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn listing_more_firm_load_than_the_interconnect_is_refused(db: PgPool) {
    let operator = org(&db, "Small Ops", "operator").await;
    // 1 MW interconnect; PUE 1.25; 10 kW nodes → 12.5 kW firm per node → 80 nodes = 1,000 kW.
    let site = catalog::create_site(&db, operator, &site_input("Small", 1_000))
        .await
        .unwrap();
    catalog::create_pool(&db, operator, site, &gpu_pool("fits", 80), None)
        .await
        .unwrap();
    let e = catalog::create_pool(&db, operator, site, &gpu_pool("one too many", 1), None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422);
    assert!(e.to_string().contains("1,013 kW of firm AI load"), "{e}");
    // Raising the PUE of a full site is refused too.
    let mut hotter = site_input("Small", 1_000);
    hotter.pue = 1.3;
    match catalog::update_site(&db, operator, site, &hotter).await {
        Err(ServiceError::Invalid(fields)) => {
            assert_eq!(fields[0].field, "interconnect_kw");
            assert!(
                fields[0].message.contains("1,040 kW of firm AI load"),
                "{}",
                fields[0].message
            );
        }
        other => panic!("expected the interconnect to be refused, got {other:?}"),
    }
    // Customers cannot list; other operators cannot see the site.
    let customer = org(&db, "Buyer", "customer").await;
    assert_eq!(
        catalog::create_site(&db, customer, &site_input("Nope", 1_000))
            .await
            .unwrap_err()
            .status(),
        403
    );
    let other = org(&db, "Other Ops", "operator").await;
    assert_eq!(
        catalog::create_pool(&db, other, site, &gpu_pool("x", 1), None)
            .await
            .unwrap_err()
            .status(),
        404
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn timeline_and_find_slot_follow_the_bookings(db: PgPool) {
    let m = market(&db, 2).await;
    reservations::reserve(&db, m.customer, &req(&m, 8, 10, 10), FEE_BP, m.now)
        .await
        .unwrap();
    reservations::reserve(&db, m.customer, &req(&m, 8, 15, 10), FEE_BP, m.now)
        .await
        .unwrap();
    let mut conn = db.acquire().await.unwrap();
    let pool = pools::load(&mut conn, m.pool, false).await.unwrap();
    let range = app::window::HourWindow::new(hour(m.now, 0), hour(m.now, 40)).unwrap();
    let steps = availability::timeline(&mut conn, &pool, &range)
        .await
        .unwrap();
    let expected: Vec<(DateTime<Utc>, i64)> = vec![
        (hour(m.now, 0), 2),
        (hour(m.now, 10), 1),
        (hour(m.now, 15), 0),
        (hour(m.now, 20), 1),
        (hour(m.now, 25), 2),
    ];
    assert_eq!(
        steps.iter().map(|s| (s.at, s.free)).collect::<Vec<_>>(),
        expected
    );
    let slot = availability::find_slot(&mut conn, &pool, 2, 5, hour(m.now, 8), 30)
        .await
        .unwrap();
    assert_eq!(slot, Some(hour(m.now, 25)));
    let slot = availability::find_slot(&mut conn, &pool, 1, 5, hour(m.now, 8), 30)
        .await
        .unwrap();
    assert_eq!(slot, Some(hour(m.now, 8)));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn search_filters_sorts_and_prices_every_hit(db: PgPool) {
    let m = market(&db, 2).await;
    let cheap_site = catalog::create_site(
        &db,
        m.operator,
        &SiteInput {
            energy_source: "hydro".into(),
            grid_region: "ANDE".into(),
            country: "PY".into(),
            ..site_input("Cheap", 50_000)
        },
    )
    .await
    .unwrap();
    let cheap = catalog::create_pool(
        &db,
        m.operator,
        cheap_site,
        &PoolInput {
            price_cents: 150,
            ..gpu_pool("cheap", 1)
        },
        None,
    )
    .await
    .unwrap();
    catalog::open_window(
        &db,
        m.operator,
        cheap,
        hour(m.now, -24),
        hour(m.now, 24 * 60),
    )
    .await
    .unwrap();
    // The cheap pool is busy for the first three days.
    let busy = BookingRequest {
        pool_id: cheap,
        quantity: Quantity::Units(1),
        start: hour(m.now, 1),
        end: hour(m.now, 72),
        tier: app::booking::Tier::Firm,
        agreed_total_cents: None,
    };
    reservations::reserve(&db, m.customer, &busy, FEE_BP, m.now)
        .await
        .unwrap();

    let base = MarketQuery {
        kind: None,
        gpu_model: Some("h100 sxm".into()),
        quantity: Some(Quantity::Gpus(8)),
        hours: 24,
        start: Some(hour(m.now, 5)),
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
    };
    // Window mode: the cheap pool is busy then, so only the other one is offered.
    let page = search::search(&db, &base, FEE_BP, m.now).await.unwrap();
    assert_eq!(
        page.hits.iter().map(|h| h.pool_id).collect::<Vec<_>>(),
        vec![m.pool]
    );
    assert_eq!(page.hits[0].price.base_cents, 8 * 24 * 200);

    // Earliest mode: both, the cheap one from hour 72; sorted by start, then by price.
    let earliest = MarketQuery {
        start: None,
        within_days: Some(10),
        sort: SearchSort::EarliestStart,
        ..base.clone()
    };
    let page = search::search(&db, &earliest, FEE_BP, m.now).await.unwrap();
    let got: Vec<_> = page.hits.iter().map(|h| (h.pool_id, h.start)).collect();
    assert_eq!(
        got,
        vec![(m.pool, hour(m.now, 1)), (cheap, hour(m.now, 72))]
    );
    let by_price = search::search(
        &db,
        &MarketQuery {
            sort: SearchSort::Price,
            ..earliest.clone()
        },
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(by_price.hits[0].pool_id, cheap);

    // Filters.
    let hydro = search::search(
        &db,
        &MarketQuery {
            energy_source: Some("Hydro".into()),
            ..earliest.clone()
        },
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(
        hydro.hits.iter().map(|h| h.pool_id).collect::<Vec<_>>(),
        vec![cheap]
    );
    let ande = search::search(
        &db,
        &MarketQuery {
            region: Some("ande".into()),
            ..earliest.clone()
        },
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(ande.hits.len(), 1);
    let capped = search::search(
        &db,
        &MarketQuery {
            max_price_cents: Some(160),
            min_reliability_bp: None,
            ..earliest.clone()
        },
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(
        capped.hits.iter().map(|h| h.pool_id).collect::<Vec<_>>(),
        vec![cheap]
    );
    let too_big = search::search(
        &db,
        &MarketQuery {
            quantity: Some(Quantity::Gpus(24)),
            ..earliest.clone()
        },
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert!(too_big.hits.is_empty(), "no pool has 3 nodes");
    let power = search::search(
        &db,
        &MarketQuery {
            quantity: Some(Quantity::Kw(500)),
            gpu_model: None,
            ..earliest.clone()
        },
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert!(power.hits.is_empty(), "no power blocks listed here");
    let e = search::search(
        &db,
        &MarketQuery {
            hours: 0,
            ..base.clone()
        },
        FEE_BP,
        m.now,
    )
    .await
    .unwrap_err();
    assert_eq!(e.status(), 422);
    // Pagination.
    let first = search::search(
        &db,
        &MarketQuery {
            limit: 1,
            ..earliest.clone()
        },
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    let second = search::search(
        &db,
        &MarketQuery {
            limit: 1,
            offset: 1,
            ..earliest
        },
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            first.has_more,
            second.has_more,
            first.hits.len(),
            second.hits.len()
        ),
        (true, false, 1, 1)
    );
    assert_ne!(first.hits[0].pool_id, second.hits[0].pool_id);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn window_search_pages_through_the_database_and_sorts_by_total(db: PgPool) {
    let m = market(&db, 2).await;
    // Five more single-node pools at rising prices; the cheapest gets a big term discount.
    let mut ids = Vec::new();
    for (i, price) in [210_i64, 220, 230, 240, 250].into_iter().enumerate() {
        let mut p = gpu_pool(&format!("extra {i}"), 1);
        p.price_cents = price;
        if i == 4 {
            p.discounts = vec![TermDiscount {
                min_hours: 24,
                discount_bp: 5_000,
            }];
        }
        let id = catalog::create_pool(&db, m.operator, m.site, &p, None)
            .await
            .unwrap();
        catalog::open_window(&db, m.operator, id, hour(m.now, -24), hour(m.now, 24 * 60))
            .await
            .unwrap();
        ids.push(id);
    }
    let q = MarketQuery {
        kind: None,
        gpu_model: None,
        quantity: Some(Quantity::Gpus(8)),
        hours: 48,
        start: Some(hour(m.now, 10)),
        within_days: None,
        region: None,
        energy_source: None,
        interconnect: None,
        max_price_cents: None,
        min_reliability_bp: None,
        tier: app::booking::Tier::Firm,
        delivery: Default::default(),
        sort: SearchSort::Price,
        limit: 2,
        offset: 0,
    };
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = search::search(
            &db,
            &MarketQuery {
                offset,
                ..q.clone()
            },
            FEE_BP,
            m.now,
        )
        .await
        .unwrap();
        seen.extend(page.hits.iter().map(|h| h.unit_price_cents));
        if !page.has_more {
            break;
        }
        offset += 2;
    }
    assert_eq!(seen, vec![200, 210, 220, 230, 240, 250]);

    // By total: the pool at $2.50 with 50 % off is the cheapest contract.
    let by_total = search::search(
        &db,
        &MarketQuery {
            sort: SearchSort::TotalCost,
            limit: 3,
            ..q
        },
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(by_total.hits[0].pool_id, ids[4]);
    assert_eq!(by_total.hits[0].price.discount_bp, 5_000);
    let totals: Vec<i64> = by_total.hits.iter().map(|h| h.price.total_cents).collect();
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");
}

/// Search's sort by total reads each pool's best term discount from the pool's row
/// (`pool_term_discount_bp`), which the tier triggers keep. For any term it must give
/// pricing's answer, through every way the tiers change, and keeping it must not announce
/// the pool as changed to webhook subscribers.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_pools_best_term_discount_is_kept_on_its_row_by_pricings_rule(db: PgPool) {
    let m = market(&db, 1).await;
    let tier = |min_hours, discount_bp| TermDiscount {
        min_hours,
        discount_bp,
    };
    let mut p = gpu_pool("tiered", 1);
    // A longer term given a smaller discount: the best one reached still applies.
    p.discounts = vec![tier(24, 3_000), tier(72, 1_000), tier(168, 5_000)];
    let pool = catalog::create_pool(&db, m.operator, m.site, &p, None)
        .await
        .unwrap();
    assert_discounts_read_from_the_row(&db, pool, &p.discounts).await;

    // The operator's edit replaces the tiers (a delete, then an insert per tier). It is
    // announced as often as an edit that leaves the tiers as they were: the pool's own
    // updates are, the rewrite of its discount arrays is not.
    let before = pool_changes_announced(&db, pool).await;
    catalog::update_pool(&db, m.operator, pool, &p)
        .await
        .unwrap();
    let per_edit = pool_changes_announced(&db, pool).await - before;
    assert!(per_edit >= 1);
    p.discounts = vec![tier(48, 2_000), tier(12, 500)];
    catalog::update_pool(&db, m.operator, pool, &p)
        .await
        .unwrap();
    assert_discounts_read_from_the_row(&db, pool, &p.discounts).await;
    let announced_before = pool_changes_announced(&db, pool).await;
    assert_eq!(announced_before, before + 2 * per_edit);

    // A tier changed in place, and one removed, outside the operator's form.
    sqlx::query(
        "update pool_term_discount set discount_bp = 700 where pool_id = $1 and min_hours = 12",
    )
    .bind(pool)
    .execute(&db)
    .await
    .unwrap();
    p.discounts = vec![tier(48, 2_000), tier(12, 700)];
    assert_discounts_read_from_the_row(&db, pool, &p.discounts).await;
    sqlx::query("delete from pool_term_discount where pool_id = $1 and min_hours = 48")
        .bind(pool)
        .execute(&db)
        .await
        .unwrap();
    p.discounts = vec![tier(12, 700)];
    assert_discounts_read_from_the_row(&db, pool, &p.discounts).await;
    assert_eq!(pool_changes_announced(&db, pool).await, announced_before);

    // No tiers left: no discount for any term.
    p.discounts = vec![];
    catalog::update_pool(&db, m.operator, pool, &p)
        .await
        .unwrap();
    assert_discounts_read_from_the_row(&db, pool, &[]).await;
    assert_eq!(
        pool_changes_announced(&db, pool).await,
        announced_before + per_edit
    );
}

/// Two edits of one pool's tiers at once: the second, which waited for the first, writes
/// arrays that hold both (read after the wait, not from what it saw when it began).
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn concurrent_tier_edits_leave_the_pools_discounts_whole(db: PgPool) {
    let m = market(&db, 1).await;
    let insert_tier = "insert into pool_term_discount (site_id, pool_id, min_hours, discount_bp)
                       values ($1, $2, $3, $4)";
    let mut first = db.begin().await.unwrap();
    sqlx::query(insert_tier)
        .bind(m.site)
        .bind(m.pool)
        .bind(24)
        .bind(1_000)
        .execute(&mut *first)
        .await
        .unwrap();
    let (db2, site, pool) = (db.clone(), m.site, m.pool);
    let second = tokio::spawn(async move {
        let mut tx = db2.begin().await.unwrap();
        sqlx::query(insert_tier)
            .bind(site)
            .bind(pool)
            .bind(72)
            .bind(2_500)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    });
    until_someone_waits_for_a_lock(&db, "the second edit never waited for the first").await;
    first.commit().await.unwrap();
    second.await.unwrap();
    let both = [
        TermDiscount {
            min_hours: 24,
            discount_bp: 1_000,
        },
        TermDiscount {
            min_hours: 72,
            discount_bp: 2_500,
        },
    ];
    assert_discounts_read_from_the_row(&db, m.pool, &both).await;
}

async fn assert_discounts_read_from_the_row(db: &PgPool, pool: i64, tiers: &[TermDiscount]) {
    for hours in [
        1_i32, 11, 12, 13, 23, 24, 47, 48, 71, 72, 100, 167, 168, 8_760,
    ] {
        let read: i32 = sqlx::query_scalar(
            "select pool_term_discount_bp(p, $2) from capacity_pool p where p.id = $1",
        )
        .bind(pool)
        .bind(hours)
        .fetch_one(db)
        .await
        .unwrap();
        assert_eq!(
            i64::from(read),
            app::pricing::discount_bp_for(i64::from(hours), tiers),
            "{hours} hours with {tiers:?}"
        );
    }
}

async fn pool_changes_announced(db: &PgPool, pool: i64) -> i64 {
    sqlx::query_scalar(
        "select count(*) from event_outbox
          where kind = 'capacity.changed' and payload->>'change' = 'capacity_pool.update'
            and (payload->>'pool_id')::bigint = $1",
    )
    .bind(pool)
    .fetch_one(db)
    .await
    .unwrap()
}
