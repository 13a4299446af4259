//! Forward pools over real HTTP against PostgreSQL: a pool on a site still being built
//! cannot be booked by any door unless it sells forward, and a forward booking starts at the
//! committed delivery or later, refused with the date otherwise; the reservation keeps the
//! terms it was sold on whatever the pool says later.

use crate::fixtures::{
    count, customer_key, gpu_pool, hour, operator_key, post_json, site_input, Market, FEE_BP,
};
use crate::helpers::TestApp;
use app::forward::{ForwardTerms, LateCredit};
use app::services::{catalog, reservations};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

/// An operator with a site under construction (mining 1 EH/s at 22 J/TH, $48 per PH/s-day)
/// and a 4-node pool on it, on sale (windows open) for 120 days, with `forward` terms or none.
async fn building_market(db: &PgPool, forward: Option<ForwardTerms>) -> Market {
    let mut site = site_input("Hall B", 50_000);
    site.status = "building".into();
    let mut pool = gpu_pool("Hall B H200s", 4);
    pool.forward = forward;
    crate::fixtures::market_on(db, "", &site, &pool, (1, 24 * 120)).await
}

fn terms(now: DateTime<Utc>) -> ForwardTerms {
    ForwardTerms {
        delivery_at: hour(now, 24 * 30),
        late_credit: LateCredit::Share { bp_per_day: 100 },
        walk_away_at: hour(now, 24 * 90),
    }
}

fn ask(m: &Market, from_h: i64, hours: i64) -> Value {
    json!({
        "pool_id": m.pool,
        "quantity": {"units": 1},
        "start": hour(m.now, from_h),
        "end": hour(m.now, from_h + hours),
    })
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_building_sites_pool_without_forward_terms_is_refused_at_every_door(db: PgPool) {
    let m = building_market(&db, None).await;
    let app = TestApp::spawn(db.clone()).await;
    let key = customer_key(&db, m.customer).await;
    for path in ["/quotes", "/reservations", "/holds"] {
        let (status, problem) = post_json(&app, &key, path, ask(&m, 24, 4)).await;
        assert_eq!(status, 422, "{path}: {problem}");
        assert_eq!(
            problem["errors"][0]["field"], "pool_id",
            "{path}: {problem}"
        );
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("being built"), "{message}");
    }
    // The service the browser's server functions call says the same.
    let err = reservations::reserve(
        &db,
        m.customer,
        &crate::fixtures::req(&m, 8, 24, 4),
        FEE_BP,
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(format!("{err:?}").contains("being built"), "{err:?}");
    // And PostgreSQL refuses a reservation written past every door.
    let raw = sqlx::query(
        "insert into reservation (site_id, pool_id, customer_id, unit_count, during, state,
                                  currency, unit_price_cents, base_cents, discount_cents,
                                  fee_cents, total_cents)
         values ($1, $2, $3, 1, tstzrange($4, $5), 'confirmed', 'USD', 200, 800, 0, 0, 800)",
    )
    .bind(m.site)
    .bind(m.pool)
    .bind(m.customer)
    .bind(hour(m.now, 24))
    .bind(hour(m.now, 28))
    .execute(&db)
    .await
    .unwrap_err();
    assert_eq!(
        raw.as_database_error().and_then(|e| e.constraint()),
        Some("pool_not_on_sale_before_delivery")
    );
    assert_eq!(count(&db, "reservation").await, 0);
    assert_eq!(count(&db, "allocation").await, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_forward_booking_starts_at_the_delivery_and_keeps_the_terms_it_was_sold_on(db: PgPool) {
    let t = terms(Utc::now());
    let m = building_market(&db, Some(t)).await;
    let app = TestApp::spawn(db.clone()).await;
    let key = customer_key(&db, m.customer).await;

    // Before the delivery: refused with the date, nothing booked.
    for path in ["/quotes", "/reservations", "/holds"] {
        let (status, problem) = post_json(&app, &key, path, ask(&m, 24 * 29, 48)).await;
        assert_eq!(status, 422, "{path}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "start", "{path}: {problem}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains(&t.delivery_at.format("%Y-%m-%d %H:%M UTC").to_string()),
            "{message}"
        );
    }
    assert_eq!(count(&db, "reservation").await, 0);

    // From the delivery: a forward contract, priced and quoted as usual.
    let (status, quote) = post_json(&app, &key, "/quotes", ask(&m, 24 * 30, 48)).await;
    assert_eq!(status, 200, "{quote}");
    assert_eq!(quote["forward"]["delivery_at"], json!(t.delivery_at));
    let (status, booked) = post_json(&app, &key, "/reservations", ask(&m, 24 * 30, 48)).await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(booked["total_cents"], quote["price"]["total_cents"]);
    assert_eq!(booked["forward"], json!(t), "{booked}");
    let id = booked["id"].as_i64().unwrap();

    // The operator changes the pool's terms; the contract keeps its own.
    let op = operator_key(&db, m.operator).await;
    let mut pool = gpu_pool("Hall B H200s", 4);
    let later = ForwardTerms {
        delivery_at: hour(m.now, 24 * 40),
        late_credit: LateCredit::PerUnitDay { cents: 5_000 },
        walk_away_at: hour(m.now, 24 * 100),
    };
    pool.forward = Some(later);
    let (status, updated) = json_put(&app, &op, &format!("/pools/{}", m.pool), json!(pool)).await;
    assert_eq!(status, 200, "{updated}");
    let (status, listed) = crate::fixtures::json_of(
        app.api(Method::GET, &format!("/pools/{}", m.pool), &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed["forward"], json!(later), "{listed}");
    let (status, again) = crate::fixtures::json_of(
        app.api(Method::GET, &format!("/reservations/{id}"), &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again["forward"], json!(t), "{again}");
    // PostgreSQL will not rewrite them either.
    let err = sqlx::query("update reservation set forward_delivery_at = forward_delivery_at + interval '1 day' where id = $1")
        .bind(id)
        .execute(&db)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|e| e.constraint()),
        Some("reservation_forward_terms_locked")
    );

    // The site goes live: its pools sell as ready capacity, without forward terms.
    sqlx::query("update site set status = 'live' where id = $1")
        .bind(m.site)
        .execute(&db)
        .await
        .unwrap();
    let (status, ready) = post_json(&app, &key, "/reservations", ask(&m, 24, 4)).await;
    assert_eq!(status, 201, "{ready}");
    assert!(ready.get("forward").is_none_or(Value::is_null), "{ready}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn forward_terms_are_checked_field_by_field(db: PgPool) {
    let m = building_market(&db, None).await;
    let app = TestApp::spawn(db.clone()).await;
    let op = operator_key(&db, m.operator).await;
    let good = terms(m.now);
    let cases = [
        (
            ForwardTerms {
                delivery_at: hour(m.now, -24),
                ..good
            },
            "delivery_at",
        ),
        (
            ForwardTerms {
                walk_away_at: good.delivery_at,
                ..good
            },
            "walk_away_at",
        ),
        (
            ForwardTerms {
                late_credit: LateCredit::Share { bp_per_day: 20_000 },
                ..good
            },
            "late_credit",
        ),
    ];
    for (bad, field) in cases {
        let mut pool = gpu_pool("Hall B H200s", 4);
        pool.forward = Some(bad);
        let (status, problem) =
            json_put(&app, &op, &format!("/pools/{}", m.pool), json!(pool)).await;
        assert_eq!(status, 422, "{field}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let forward: Option<DateTime<Utc>> =
        sqlx::query_scalar("select delivery_at from capacity_pool where id = $1")
            .bind(m.pool)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(forward, None, "a refused update changed nothing");
}

async fn json_put(app: &TestApp, key: &str, path: &str, body: Value) -> (u16, Value) {
    crate::fixtures::json_of(
        app.api(Method::PUT, path, key)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Ten days of one node of the market's pool from its committed delivery (30 days ahead).
async fn ten_days_from_delivery(db: &PgPool, m: &Market) -> app::booking::Reservation {
    reservations::reserve(
        db,
        m.customer,
        &crate::fixtures::req(m, 8, 24 * 30, 24 * 10),
        FEE_BP,
        Utc::now(),
    )
    .await
    .unwrap()
}

/// The credits of `reservation` for days late, in day order: (day, cents).
async fn late_credits(db: &PgPool, reservation: i64) -> Vec<(i32, i64)> {
    sqlx::query_as(
        "select late_day, amount_cents from reservation_credit
          where reservation_id = $1 and reason = 'late_delivery' order by late_day",
    )
    .bind(reservation)
    .fetch_all(db)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_late_delivery_credits_each_day_once_and_the_walk_away_refunds_in_full(db: PgPool) {
    let t = terms(Utc::now());
    let m = building_market(&db, Some(t)).await;
    let booked = ten_days_from_delivery(&db, &m).await;
    assert_eq!(booked.forward, Some(t));
    let per_day = booked.total_cents / 100; // 1% of the contract, rounded down

    // Three and a half days past the delivery, two processes post at once: three days, once.
    let at = t.delivery_at + chrono::Duration::hours(84);
    let (a, b) = tokio::join!(
        app::services::forward::post_late_credits(&db, at),
        app::services::forward::post_late_credits(&db, at)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 3);
    assert_eq!(
        late_credits(&db, booked.id).await,
        vec![(1, per_day), (2, per_day), (3, per_day)]
    );
    assert_eq!(
        app::services::forward::post_late_credits(&db, at)
            .await
            .unwrap(),
        0,
        "a day is credited once"
    );
    crate::fixtures::assert_books_reconcile(&db, at).await;

    // Under way but undelivered, before the walk-away date: a started contract stands.
    let refused = reservations::cancel(&db, m.customer, booked.id, at)
        .await
        .unwrap_err();
    assert!(format!("{refused:?}").contains("started"), "{refused:?}");
    // From the walk-away date (the contract's hours have all passed, undelivered, so none
    // was earned by the operator): cancelled, and everything not yet credited comes back.
    let walk = t.walk_away_at + chrono::Duration::hours(1);
    let recognised: i32 = sqlx::query_scalar("select ledger_recognize_completed($1)")
        .bind(walk)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        recognised, 0,
        "an undelivered forward contract is not earned"
    );
    let preview = reservations::cancel_preview(&db, m.customer, booked.id, walk)
        .await
        .unwrap();
    assert_eq!(preview.refund_bp, 10_000);
    let cancelled = reservations::cancel(&db, m.customer, booked.id, walk)
        .await
        .unwrap();
    assert_eq!(
        cancelled.refund_cents.unwrap() + cancelled.credited_cents,
        booked.total_cents,
        "a full refund"
    );
    crate::fixtures::assert_books_reconcile(&db, walk).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_delivered_site_stops_the_late_days_and_says_so(db: PgPool) {
    let t = terms(Utc::now());
    let m = building_market(&db, Some(t)).await;
    let booked = ten_days_from_delivery(&db, &m).await;
    // Delivered now, ahead of its date: no day is ever late.
    sqlx::query("update site set status = 'live' where id = $1")
        .bind(m.site)
        .execute(&db)
        .await
        .unwrap();
    let at = t.delivery_at + chrono::Duration::days(5);
    assert_eq!(
        app::services::forward::post_late_credits(&db, at)
            .await
            .unwrap(),
        0
    );
    assert!(late_credits(&db, booked.id).await.is_empty());
    let told: Vec<i64> = sqlx::query_scalar(
        "select organization_id from event_outbox where kind = 'site.delivered' order by organization_id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(told, vec![m.operator, m.customer]);
}

/// The reservation's hours: (start, end), and whether every allocation of it spans them.
async fn span_of(db: &PgPool, id: i64) -> (DateTime<Utc>, DateTime<Utc>, bool) {
    sqlx::query_as(
        "select lower(r.during), upper(r.during),
                bool_and(a.during = r.during)
           from reservation r join allocation a on a.reservation_id = r.id
          where r.id = $1 group by r.id",
    )
    .bind(id)
    .fetch_one(db)
    .await
    .unwrap()
}

/// All four nodes of the market's pool for `hours` from `from_h` hours ahead.
async fn every_node(db: &PgPool, m: &Market, from_h: i64, hours: i64) -> app::booking::Reservation {
    let r = crate::fixtures::req(m, 32, from_h, hours);
    reservations::reserve(db, m.customer, &r, FEE_BP, Utc::now())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn moving_the_delivery_later_shifts_what_it_passes_whole_and_earlier_changes_nothing(
    db: PgPool,
) {
    let t = terms(Utc::now());
    let m = building_market(&db, Some(t)).await;
    let app = TestApp::spawn(db.clone()).await;
    let op = operator_key(&db, m.operator).await;
    // Every node, back to back from the delivery (day 30), and again from day 40.
    let a = every_node(&db, &m, 24 * 30, 48).await;
    let b = every_node(&db, &m, 24 * 32, 48).await;
    let c = every_node(&db, &m, 24 * 40, 24).await;
    let move_to = |days: i64| {
        let mut pool = gpu_pool("Hall B H200s", 4);
        pool.forward = Some(ForwardTerms {
            delivery_at: hour(m.now, 24 * days),
            ..t
        });
        json!(pool)
    };

    // Three days late: the two contracts the new date passes move by three days, in order,
    // whole, on their units; the one after it stays.
    let (status, body) = json_put(&app, &op, &format!("/pools/{}", m.pool), move_to(33)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delayed_reservations"], json!(2), "{body}");
    let three = chrono::Duration::days(3);
    assert_eq!(
        span_of(&db, a.id).await,
        (a.start + three, a.end + three, true)
    );
    assert_eq!(
        span_of(&db, b.id).await,
        (b.start + three, b.end + three, true)
    );
    assert_eq!(span_of(&db, c.id).await, (c.start, c.end, true));
    let delayed: Vec<Value> = sqlx::query_scalar(
        "select payload from event_outbox where kind = 'reservation.delayed' order by id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(delayed.len(), 2, "{delayed:?}");
    assert_eq!(delayed[0]["reservation_id"], json!(a.id));
    assert_eq!(delayed[0]["delayed_by_hours"], json!(72));
    let committed: DateTime<Utc> =
        serde_json::from_value(delayed[0]["committed_delivery_at"].clone()).unwrap();
    assert_eq!(committed, t.delivery_at);
    assert_eq!(delayed[1]["reservation_id"], json!(b.id));
    // The contracts keep the delivery they were sold on: late days count from it.
    let posted =
        app::services::forward::post_late_credits(&db, t.delivery_at + chrono::Duration::hours(36))
            .await
            .unwrap();
    assert_eq!(
        posted, 3,
        "day 1 of each contract: all three were sold that delivery"
    );
    // Price and money are untouched; the books still reconcile.
    let total: i64 = sqlx::query_scalar("select total_cents from reservation where id = $1")
        .bind(a.id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(total, a.total_cents);
    crate::fixtures::assert_books_reconcile(&db, t.delivery_at + chrono::Duration::hours(36)).await;

    // Six more days would push the first contract into the third's hours on the same
    // nodes: refused, and nothing moves.
    let (status, problem) = json_put(&app, &op, &format!("/pools/{}", m.pool), move_to(39)).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("already sold"),
        "{problem}"
    );
    assert_eq!(
        span_of(&db, a.id).await,
        (a.start + three, a.end + three, true)
    );
    let delivery: DateTime<Utc> =
        sqlx::query_scalar("select delivery_at from capacity_pool where id = $1")
            .bind(m.pool)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(delivery, hour(m.now, 24 * 33));

    // Earlier: new sales may start sooner; no contract changes.
    let (status, body) = json_put(&app, &op, &format!("/pools/{}", m.pool), move_to(31)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delayed_reservations"], json!(0), "{body}");
    assert_eq!(
        span_of(&db, a.id).await,
        (a.start + three, a.end + three, true)
    );
    assert_eq!(
        count(&db, "event_outbox where kind = 'reservation.delayed'").await,
        2
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_interconnect_counts_forward_load_from_its_delivery_and_says_when_it_is_short(
    db: PgPool,
) {
    let now = Utc::now();
    let operator = crate::fixtures::org(&db, "Op", "operator").await;
    // 100 kW; a node is 10 kW × PUE 1.25 = 12.5 kW.
    let mut site = site_input("Hall C", 100);
    site.status = "building".into();
    let site = catalog::create_site(&db, operator, &site).await.unwrap();
    let forward = |nodes: i64, days: i64| {
        let mut p = gpu_pool(&format!("Forward {nodes}"), nodes);
        p.forward = Some(ForwardTerms {
            delivery_at: hour(now, 24 * days),
            late_credit: LateCredit::Share { bp_per_day: 100 },
            walk_away_at: hour(now, 24 * (days + 30)),
        });
        p
    };
    // 4 nodes (50 kW) ready now, 2 (25 kW) delivered in 30 days: 75 kW from then.
    catalog::create_pool(&db, operator, site, &gpu_pool("Ready", 4), None)
        .await
        .unwrap();
    catalog::create_pool(&db, operator, site, &forward(2, 30), None)
        .await
        .unwrap();
    // 3 more delivered in 60 days would make 112.5 kW from then: refused, saying when.
    let err = catalog::create_pool(&db, operator, site, &forward(3, 60), None)
        .await
        .unwrap_err()
        .to_string();
    let when = hour(now, 24 * 60).format("%Y-%m-%d %H:%M UTC").to_string();
    assert!(err.contains(&format!("from {when}")), "{err}");
    assert!(err.contains("113 kW of firm AI load"), "{err}");
    assert!(
        err.contains("75 kW is already listed and 25 kW is left"),
        "{err}"
    );
    // 2 more fit (100 kW from day 60).
    catalog::create_pool(&db, operator, site, &forward(2, 60), None)
        .await
        .unwrap();
    // A 3-node ready pool would overflow from the second delivery (day 30): 37.5 + 75 kW.
    let err = catalog::create_pool(&db, operator, site, &gpu_pool("More", 3), None)
        .await
        .unwrap_err()
        .to_string();
    let when = hour(now, 24 * 30).format("%Y-%m-%d %H:%M UTC").to_string();
    assert!(err.contains(&format!("from {when}")), "{err}");
    assert_eq!(count(&db, "capacity_pool").await, 3);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_bridge_shows_mining_until_the_delivery_and_the_ai_sold_after_it(db: PgPool) {
    let t = terms(Utc::now());
    let m = building_market(&db, Some(t)).await;
    let booked = ten_days_from_delivery(&db, &m).await;
    let app = TestApp::spawn(db.clone()).await;
    let op = operator_key(&db, m.operator).await;
    let (status, body) = crate::fixtures::json_of(
        app.api(Method::GET, &format!("/sites/{}/bridge", m.site), &op)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let b: app::bridge::Bridge = serde_json::from_value(body["bridge"].clone()).unwrap();
    assert_eq!(b.delivery_at, Some(t.delivery_at));
    // 1 EH/s × $48 per PH/s-day = $48,000 a day, for each hour until the delivery.
    let hours = (t.delivery_at - b.from).num_hours();
    assert_eq!(b.mining_until_delivery_cents, Some(4_800_000 * hours / 24));
    assert_eq!(b.mining_draw_w(), Some(22_000_000));
    assert_eq!(b.forward_contracts, 1);
    let revenue: i64 =
        sqlx::query_scalar("select base_cents - discount_cents from reservation where id = $1")
            .bind(booked.id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(b.forward_revenue_cents, revenue);
    // One node (12.5 kW) contracted from the delivery for ten days; four listed from it.
    let contracted: Vec<_> = b.contracted.iter().map(|s| (s.at, s.committed_w)).collect();
    assert_eq!(
        contracted,
        vec![
            (b.from, 0),
            (t.delivery_at, 12_500),
            (t.delivery_at + chrono::Duration::days(10), 0)
        ]
    );
    let listed: Vec<_> = b.listed.iter().map(|s| (s.at, s.committed_w)).collect();
    assert_eq!(listed, vec![(b.from, 0), (t.delivery_at, 50_000)]);
    // 240 node-hours of 4 nodes × 90 days.
    assert_eq!(
        (b.presold_unit_hours, b.hall_unit_hours),
        (240, 4 * 90 * 24)
    );
    assert_eq!(b.presold_bp(), 277);

    // Another operator's site is not found; a live site selling nothing forward has none.
    let other = crate::fixtures::org(&db, "Op2", "operator").await;
    let other_key = operator_key(&db, other).await;
    let (status, _) = crate::fixtures::json_of(
        app.api(
            Method::GET,
            &format!("/sites/{}/bridge", m.site),
            &other_key,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let live = catalog::create_site(&db, m.operator, &site_input("Live", 1_000))
        .await
        .unwrap();
    let (status, body) = crate::fixtures::json_of(
        app.api(Method::GET, &format!("/sites/{live}/bridge"), &op)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["bridge"], Value::Null, "{body}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn reconcile_finds_a_late_credit_for_a_day_not_owed(db: PgPool) {
    let t = terms(Utc::now());
    let m = building_market(&db, Some(t)).await;
    let booked = ten_days_from_delivery(&db, &m).await;
    let at = t.delivery_at + chrono::Duration::hours(30);
    app::services::forward::post_late_credits(&db, at)
        .await
        .unwrap();
    crate::fixtures::assert_books_reconcile(&db, at).await;
    // Day 5, written past the job (balanced in the ledger, but not owed yet).
    sqlx::query(
        "insert into reservation_credit (reservation_id, amount_cents, unit_hours, reason, memo,
                                         effective_at, late_day)
         values ($1, 1, 0, 'late_delivery', 'forged', $2, 5)",
    )
    .bind(booked.id)
    .bind(at)
    .execute(&db)
    .await
    .unwrap();
    let books = app::services::ledger::reconcile(&db, at).await.unwrap();
    assert!(!books.is_clean());
    assert!(
        books
            .differences
            .iter()
            .any(|d| d.reservation_id == booked.id
                && d.what == "late-delivery credits for days not owed"),
        "{books:?}"
    );
}
