//! Settlement services against PostgreSQL: quotes, reservations, races, cancellations,
//! extensions, blackouts, the interconnect limit, availability and search.

use app::booking::{BookingRequest, ExtendTo};
use app::pricing::{self, Quantity, TermDiscount};
use app::services::blackouts::{self, BlackoutUnits};
use app::services::catalog::{self, PoolInput, PoolSpec, SiteInput};
use app::services::error::ServiceError;
use app::services::search::{self, MarketQuery, SearchSort};
use app::services::{availability, pools, reservations};
use app::window::ReservationState;
use chrono::{DateTime, Duration, DurationRound, Utc};
use sqlx::PgPool;

pub const FEE_BP: i64 = 300;

pub struct Market {
    pub operator: i64,
    pub customer: i64,
    pub other_customer: i64,
    pub site: i64,
    pub pool: i64,
    pub now: DateTime<Utc>,
}

pub fn hour(now: DateTime<Utc>, hours: i64) -> DateTime<Utc> {
    now.duration_trunc(Duration::hours(1)).unwrap() + Duration::hours(hours)
}

async fn org(db: &PgPool, name: &str, kind: &str) -> i64 {
    sqlx::query_scalar("insert into organization (name, kind) values ($1, $2) returning id")
        .bind(name)
        .bind(kind)
        .fetch_one(db)
        .await
        .unwrap()
}

pub fn site_input(name: &str, interconnect_kw: i64) -> SiteInput {
    SiteInput {
        name: name.into(),
        country: "US".into(),
        region: "Texas".into(),
        grid_region: "ERCOT".into(),
        energy_source: "wind".into(),
        interconnect_kw,
        pue: 1.25,
        cooling: "air".into(),
        status: "live".into(),
        hashrate_th: 1_000_000,
        fleet_efficiency_j_th: Some(22.0),
        hashprice_usd_cents_per_ph_day: Some(4_800),
    }
}

pub fn gpu_pool(name: &str, nodes: i64) -> PoolInput {
    PoolInput {
        name: name.into(),
        spec: PoolSpec::Gpu {
            gpu_model: "H100 SXM".into(),
            gpus_per_node: 8,
            gpu_memory_gb: 80,
            interconnect: "infiniband".into(),
            node_power_w: 10_000,
        },
        unit_count: nodes,
        price_cents: 200,
        min_term_hours: 1,
        max_term_hours: 24 * 90,
        min_lead_hours: 0,
        discounts: vec![TermDiscount {
            min_hours: 168,
            discount_bp: 500,
        }],
        cancellation: vec![],
    }
}

/// An operator with one live site and one GPU pool of `nodes` nodes open for 60 days,
/// and two customers.
pub async fn market(db: &PgPool, nodes: i64) -> Market {
    market_named(db, nodes, "").await
}

/// [`market`] with `suffix` on the organizations' (unique) names, for several in one database.
pub async fn market_named(db: &PgPool, nodes: i64, suffix: &str) -> Market {
    let now = Utc::now();
    let operator = org(db, &format!("Op{suffix}"), "operator").await;
    let customer = org(db, &format!("Cust{suffix}"), "customer").await;
    let other_customer = org(db, &format!("Other{suffix}"), "customer").await;
    let site = catalog::create_site(db, operator, &site_input("Site", 50_000))
        .await
        .unwrap();
    let pool = catalog::create_pool(db, operator, site, &gpu_pool("H100s", nodes), None)
        .await
        .unwrap();
    catalog::open_window(db, operator, pool, hour(now, -24), hour(now, 24 * 60))
        .await
        .unwrap();
    Market {
        operator,
        customer,
        other_customer,
        site,
        pool,
        now,
    }
}

pub fn req(m: &Market, gpus: i64, from_h: i64, hours: i64) -> BookingRequest {
    BookingRequest {
        pool_id: m.pool,
        quantity: Quantity::Gpus(gpus),
        start: hour(m.now, from_h),
        end: hour(m.now, from_h + hours),
    }
}

async fn allocations(db: &PgPool, reservation: i64) -> i64 {
    sqlx::query_scalar("select count(*) from allocation where reservation_id = $1")
        .bind(reservation)
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn quote_prices_whole_nodes_and_says_when_it_rounded(db: PgPool) {
    let m = market(&db, 4).await;
    let q = reservations::quote(&db, &req(&m, 12, 2, 168), FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!(q.units, 2);
    assert_eq!(
        q.note.as_deref(),
        Some("12 GPUs rounded up to 2 whole nodes (16 GPUs)")
    );
    // 16 GPUs × 168 h × $2.00 = $5,376.00; 5 % off; 3 % fee.
    assert_eq!(q.price.base_cents, 537_600);
    assert_eq!(
        q.price,
        pricing::price(
            pricing::Priced::Gpu {
                nodes: 2,
                gpus_per_node: 8,
                cents_per_gpu_hour: 200
            },
            168,
            &[TermDiscount {
                min_hours: 168,
                discount_bp: 500
            }],
            FEE_BP
        )
    );
    assert_eq!(q.free_units, 4);
    assert_eq!(q.next_start, None);
    // A quote holds nothing.
    let held: i64 = sqlx::query_scalar("select count(*) from allocation")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(held, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn bad_requests_are_refused_with_what_to_fix(db: PgPool) {
    let m = market(&db, 4).await;
    let mut r = req(&m, 8, 2, 4);
    r.start += Duration::minutes(30);
    let e = reservations::quote(&db, &r, FEE_BP, m.now)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ServiceError::Invalid(f) if f[0].field == "window" && f[0].message.contains("whole hour")),
        "{e}"
    );

    let e = reservations::reserve(&db, m.customer, &req(&m, 8, 2, 0), FEE_BP, m.now)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422, "{e}");

    let e = reservations::reserve(&db, m.customer, &req(&m, 8, -5, 4), FEE_BP, m.now)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("at least 0 hours from now"), "{e}");

    let e = reservations::reserve(&db, m.customer, &req(&m, 8 * 5, 2, 4), FEE_BP, m.now)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("this pool has 4 nodes in all"),
        "{e}"
    );

    let e = reservations::reserve(&db, m.customer, &req(&m, 8, 24 * 70, 4), FEE_BP, m.now)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("not on sale for that whole window"),
        "{e}"
    );

    let mut r = req(&m, 8, 2, 4);
    r.quantity = Quantity::Kw(500);
    let e = reservations::reserve(&db, m.customer, &r, FEE_BP, m.now)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("GPU pool"), "{e}");

    r.pool_id = 999_999;
    let e = reservations::reserve(&db, m.customer, &r, FEE_BP, m.now)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404);

    // Operators without a customer side cannot reserve.
    let e = reservations::reserve(&db, m.operator, &req(&m, 8, 2, 4), FEE_BP, m.now)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 403);

    let n: i64 = sqlx::query_scalar("select count(*) from reservation")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(n, 0, "refused requests change nothing");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn reserve_locks_price_and_offers_the_next_window_when_full(db: PgPool) {
    let m = market(&db, 4).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 24, 10, 48), FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!(r.units, 3);
    assert_eq!(r.state, ReservationState::Confirmed);
    assert_eq!(allocations(&db, r.id).await, 3);
    assert_eq!(r.total_cents, r.base_cents - r.discount_cents + r.fee_cents);

    // Price changes later do not touch the contract.
    sqlx::query("update capacity_pool set price_cents = 999 where id = $1")
        .bind(m.pool)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(
        reservations::get(&db, m.customer, r.id, m.now)
            .await
            .unwrap()
            .unit_price_cents,
        200
    );

    // Two more nodes overlapping: only one is free; the answer names the next window.
    let e = reservations::reserve(&db, m.other_customer, &req(&m, 16, 20, 10), FEE_BP, m.now)
        .await
        .unwrap_err();
    match e {
        ServiceError::Conflict {
            message,
            next_start,
            ..
        } => {
            assert_eq!(next_start, Some(hour(m.now, 58)), "{message}");
            assert!(message.contains("only 1 of the 2 nodes"), "{message}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The other customer cannot see the first one's reservation.
    let e = reservations::get(&db, m.other_customer, r.id, m.now)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn racing_for_the_last_units_exactly_the_free_units_win(db: PgPool) {
    let m = market(&db, 10).await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let db = db.clone();
        let r = req(&m, 8, 5, 24);
        let (customer, now) = (m.customer, m.now);
        tasks.push(tokio::spawn(async move {
            reservations::reserve(&db, customer, &r, FEE_BP, now).await
        }));
    }
    let (mut won, mut conflicts) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(ServiceError::Conflict { .. }) => conflicts += 1,
            Err(other) => panic!("a race must end in success or a conflict, got {other:?}"),
        }
    }
    assert_eq!((won, conflicts), (10, 30));
    let (reservations, allocated): (i64, i64) = sqlx::query_as(
        "select (select count(*) from reservation), (select count(*) from allocation)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        (reservations, allocated),
        (10, 10),
        "no partial or extra reservations"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn cancel_refunds_by_policy_and_frees_the_units(db: PgPool) {
    let m = market(&db, 2).await;
    let early = reservations::reserve(&db, m.customer, &req(&m, 16, 24 * 10, 24), FEE_BP, m.now)
        .await
        .unwrap();
    let late = reservations::reserve(&db, m.other_customer, &req(&m, 8, 24, 24), FEE_BP, m.now)
        .await
        .unwrap();

    let preview = reservations::cancel_preview(&db, m.customer, early.id, m.now)
        .await
        .unwrap();
    assert_eq!(
        (preview.refund_bp, preview.refund_cents),
        (10_000, early.total_cents)
    );
    let cancelled = reservations::cancel(&db, m.customer, early.id, m.now)
        .await
        .unwrap();
    assert_eq!(cancelled.state, ReservationState::Cancelled);
    assert_eq!(cancelled.refund_cents, Some(early.total_cents));
    assert_eq!(allocations(&db, early.id).await, 0);
    // The freed nodes can be sold again.
    reservations::reserve(
        &db,
        m.other_customer,
        &req(&m, 8, 24 * 10, 24),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();

    // 24 hours' notice: under the default policy, no refund.
    let c = reservations::cancel(&db, m.other_customer, late.id, m.now)
        .await
        .unwrap();
    assert_eq!(c.refund_cents, Some(0));

    let e = reservations::cancel(&db, m.customer, early.id, m.now)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already cancelled"), "{e}");
    let e = reservations::cancel(&db, m.other_customer, early.id, m.now)
        .await
        .unwrap_err();
    assert_eq!(
        e.status(),
        404,
        "another organization's reservation is invisible"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn extend_keeps_the_same_units_or_refuses_with_the_reason(db: PgPool) {
    let m = market(&db, 1).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 8, 10, 24), FEE_BP, m.now)
        .await
        .unwrap();
    let units_before: Vec<i64> =
        sqlx::query_scalar("select unit_id from allocation where reservation_id = $1")
            .bind(r.id)
            .fetch_all(&db)
            .await
            .unwrap();
    let longer = reservations::extend(
        &db,
        m.customer,
        r.id,
        ExtendTo::End(hour(m.now, 10 + 200)),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(longer.end, hour(m.now, 210));
    // 200 h crosses the 168 h tier: a discount now applies.
    assert!(longer.discount_cents > 0);
    assert_eq!(longer.base_cents, 8 * 200 * 200);
    let units_after: Vec<i64> =
        sqlx::query_scalar("select unit_id from allocation where reservation_id = $1")
            .bind(r.id)
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(units_before, units_after);

    // Someone books right after; extending into it is refused and changes nothing.
    reservations::reserve(&db, m.other_customer, &req(&m, 8, 210, 24), FEE_BP, m.now)
        .await
        .unwrap();
    let e = reservations::extend(
        &db,
        m.customer,
        r.id,
        ExtendTo::End(hour(m.now, 220)),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot be extended on the same units"),
        "{e}"
    );
    assert_eq!(
        reservations::get(&db, m.customer, r.id, m.now)
            .await
            .unwrap()
            .end,
        hour(m.now, 210)
    );
    let e = reservations::extend(
        &db,
        m.customer,
        r.id,
        ExtendTo::End(hour(m.now, 200)),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap_err();
    assert_eq!(e.status(), 422);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn blackouts_take_free_units_and_refuse_booked_ones_naming_the_reservations(db: PgPool) {
    let m = market(&db, 3).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 16, 10, 24), FEE_BP, m.now)
        .await
        .unwrap();
    let e = blackouts::add(
        &db,
        m.operator,
        m.pool,
        hour(m.now, 20),
        hour(m.now, 30),
        BlackoutUnits::All,
        "switch swap",
    )
    .await
    .unwrap_err();
    match e {
        ServiceError::Conflict {
            conflicting_reservations,
            message,
            ..
        } => {
            assert_eq!(conflicting_reservations, vec![r.id]);
            assert!(message.contains(&format!("#{}", r.id)), "{message}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // One free unit can go into maintenance.
    let b = blackouts::add(
        &db,
        m.operator,
        m.pool,
        hour(m.now, 20),
        hour(m.now, 30),
        BlackoutUnits::Count(1),
        "",
    )
    .await
    .unwrap();
    // Now nothing is left in that window for customers.
    let e = reservations::reserve(&db, m.other_customer, &req(&m, 8, 25, 2), FEE_BP, m.now)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 409);
    // Another operator cannot touch this pool.
    let stranger = org(&db, "Stranger Ops", "operator").await;
    assert_eq!(
        blackouts::remove(&db, stranger, b)
            .await
            .unwrap_err()
            .status(),
        404
    );
    blackouts::remove(&db, m.operator, b).await.unwrap();
    reservations::reserve(&db, m.other_customer, &req(&m, 8, 25, 2), FEE_BP, m.now)
        .await
        .unwrap();
}

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

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_node_held_by_an_unfinished_booking_is_waited_for_not_refused(db: PgPool) {
    let m = market(&db, 2).await;
    // Maintenance on node 1 is being written in another transaction, not yet committed.
    let mut holder = db.begin().await.unwrap();
    let w = app::services::settlement::window(hour(m.now, 8), hour(m.now, 12));
    let b: i64 = sqlx::query_scalar(
        "insert into blackout (site_id, pool_id, during) values ((select site_id from capacity_pool where id = $1), $1, $2) returning id",
    )
    .bind(m.pool)
    .bind(w)
    .fetch_one(&mut *holder)
    .await
    .unwrap();
    app::services::settlement::allocate(
        &mut holder,
        m.pool,
        &w,
        1,
        app::services::settlement::AllocationOwner::Blackout(b),
    )
    .await
    .unwrap();
    let (db2, r, customer, now) = (db.clone(), req(&m, 16, 10, 4), m.customer, m.now);
    let both =
        tokio::spawn(async move { reservations::reserve(&db2, customer, &r, FEE_BP, now).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !both.is_finished(),
        "the request waits for the held node instead of answering"
    );
    // The other booking gives up; both nodes are free after all.
    holder.rollback().await.unwrap();
    let res = both.await.unwrap().unwrap();
    assert_eq!(res.units, 2);
    assert_eq!(allocations(&db, res.id).await, 2);
}
