//! Listing and finding capacity through the services, against PostgreSQL: the interconnect
//! limit on what a site lists, availability timelines and free slots, and market search.

use crate::fixtures::{gpu_pool, hour, market, org, req, site_input, FEE_BP};
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
