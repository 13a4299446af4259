//! Grid curtailment events against PostgreSQL: mining is shed first, then interruptible
//! reservations in the rule's order and only for the hours needed, never firm ones; a
//! request beyond that is refused with the numbers and writes nothing; credits are exact
//! to the cent and the books reconcile; and the JSON API records, lists and replays them.

use crate::fixtures::{
    assert_books_reconcile, count, gpu_pool, hour, json_of, key, org, site_input, FEE_BP,
};
use crate::helpers::TestApp;
use app::booking::{BookingRequest, Tier};
use app::market::InterruptibleOffer;
use app::pricing::Quantity;
use app::services::catalog;
use app::services::error::ServiceError;
use app::services::grid_events::{self, NewGridEvent};
use app::services::reservations;
use app::window::HourWindow;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

/// A small site: a 200 kW interconnect, a 2,000 TH/s fleet at 25 J/TH (50 kW of mining),
/// two pools of 12.5 kW nodes (10 kW IT × PUE 1.25) whose interruptible tiers cost 120 and
/// 100 cents per GPU-hour.
struct Site {
    operator: i64,
    customer: i64,
    site: i64,
    dear: i64,
    cheap: i64,
    now: DateTime<Utc>,
}

async fn small_site(db: &PgPool) -> Site {
    let now = Utc::now();
    let operator = org(db, "Grid Op", "operator").await;
    let customer = org(db, "Grid Cust", "customer").await;
    let mut s = site_input("Small", 200);
    s.hashrate_th = 2_000;
    s.fleet_efficiency_j_th = Some(25.0);
    let site = catalog::create_site(db, operator, &s).await.unwrap();
    let pool = |name: &'static str, price: i64| {
        let mut p = gpu_pool(name, 4);
        p.interruptible = Some(InterruptibleOffer {
            price_cents: price,
            notice_hours: 0,
        });
        p
    };
    let (dear_input, cheap_input) = (pool("Dear", 120), pool("Cheap", 100));
    let dear = catalog::create_pool(db, operator, site, &dear_input, None)
        .await
        .unwrap();
    let cheap = catalog::create_pool(db, operator, site, &cheap_input, None)
        .await
        .unwrap();
    for p in [dear, cheap] {
        catalog::open_window(db, operator, p, hour(now, -24), hour(now, 24 * 30))
            .await
            .unwrap();
    }
    Site {
        operator,
        customer,
        site,
        dear,
        cheap,
        now,
    }
}

async fn book(db: &PgPool, s: &Site, pool: i64, units: i64, tier: Tier) -> i64 {
    reservations::reserve(
        db,
        s.customer,
        &BookingRequest {
            pool_id: pool,
            quantity: Quantity::Units(units),
            start: hour(s.now, 10),
            end: hour(s.now, 20),
            tier,
            agreed_total_cents: None,
        },
        FEE_BP,
        s.now,
    )
    .await
    .unwrap()
    .id
}

fn event(s: &Site, from_h: i64, hours: i64, shed_kw: i64) -> NewGridEvent {
    NewGridEvent {
        program: "ERCOT ERS".into(),
        window: HourWindow::starting_at(hour(s.now, from_h), hours).unwrap(),
        shed_kw,
        payment_cents_per_mwh: Some(15_000),
    }
}

/// (start hour, end hour) of each piece the reservation holds.
async fn pieces(db: &PgPool, s: &Site, id: i64) -> Vec<(i64, i64)> {
    reservations::holdings(db, s.customer, id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| {
            (
                (h.start - hour(s.now, 0)).num_hours(),
                (h.end - hour(s.now, 0)).num_hours(),
            )
        })
        .collect()
}

async fn total_and_credited(db: &PgPool, id: i64) -> (i64, i64) {
    sqlx::query_as("select total_cents, credited_cents from reservation where id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn mining_goes_first_then_the_cheapest_latest_interruptible_and_never_firm(db: PgPool) {
    let s = small_site(&db).await;
    // AI load from hour 10 to 20: 25 kW firm, 12.5 kW interruptible at 120, and two
    // 12.5 kW interruptible bookings at 100 (the second booked later).
    let firm = book(&db, &s, s.dear, 2, Tier::Firm).await;
    let dear = book(&db, &s, s.dear, 1, Tier::Interruptible).await;
    let cheap_first = book(&db, &s, s.cheap, 1, Tier::Interruptible).await;
    let cheap_latest = book(&db, &s, s.cheap, 1, Tier::Interruptible).await;

    // 40 kW: mining (50 kW running) covers it; nothing is cut.
    let e = grid_events::record(&db, s.operator, s.site, &event(&s, 12, 4, 40), s.now)
        .await
        .unwrap();
    assert_eq!(
        (
            e.mining_shed_kw,
            e.interruptible_shed_kw,
            e.reservations_interrupted
        ),
        (40, 0, 0)
    );
    assert_eq!(e.revenue_cents(), 40 * 4 * 15_000 / 1000);

    // 60 kW: 50 kW of mining, then one 12.5 kW unit: the cheapest, latest booked.
    let e = grid_events::record(&db, s.operator, s.site, &event(&s, 12, 4, 60), s.now)
        .await
        .unwrap();
    assert_eq!(
        (
            e.mining_shed_kw,
            e.interruptible_shed_kw,
            e.reservations_interrupted,
            e.unit_hours_lost
        ),
        (50, 13, 1, 4)
    );
    assert_eq!(pieces(&db, &s, cheap_latest).await, [(10, 12), (16, 20)]);
    for untouched in [firm, dear, cheap_first] {
        assert!(
            pieces(&db, &s, untouched)
                .await
                .iter()
                .all(|&p| p == (10, 20)),
            "reservation {untouched} keeps all its hours"
        );
    }
    // Credited 4 of its 10 unit-hours at the price it paid, to the cent.
    let (total, credited) = total_and_credited(&db, cheap_latest).await;
    assert_eq!(credited, total * 4 / 10);
    assert_eq!(e.credited_cents, credited);
    let detail = grid_events::get(&db, s.operator, e.id).await.unwrap();
    assert_eq!(detail.shed.len(), 1);
    assert_eq!(
        (detail.shed[0].reservation_id, detail.shed[0].watts),
        (cheap_latest, 12_500)
    );

    // Webhooks: the operator hears of the event, the customer of the interruption.
    let kinds: Vec<(i64, String)> = sqlx::query_as(
        "select organization_id, kind from event_outbox
          where kind in ('grid_event.created', 'reservation.preempted') order by id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        [
            (s.operator, "grid_event.created".to_string()),
            (s.operator, "grid_event.created".to_string()),
            (s.customer, "reservation.preempted".to_string()),
        ]
    );
    let cause: String = sqlx::query_scalar(
        "select payload->>'cause' from event_outbox where kind = 'reservation.preempted'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(cause, "grid_event");
    assert_books_reconcile(&db, s.now).await;

    // The month's demand response: two events' payments beside the one credit.
    let dr = grid_events::demand_response(&db, s.operator).await.unwrap();
    assert_eq!(dr.len(), 1);
    assert_eq!(
        (
            dr[0].events,
            dr[0].kwh_shed,
            dr[0].revenue_cents,
            dr[0].credits_cents
        ),
        (2, 400, 400 * 15_000 / 1000, credited)
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn more_than_mining_and_interruptible_can_shed_is_refused_with_the_numbers(db: PgPool) {
    let s = small_site(&db).await;
    book(&db, &s, s.dear, 2, Tier::Firm).await;
    let flex = book(&db, &s, s.cheap, 1, Tier::Interruptible).await;
    // Mining 50 kW + interruptible 12.5 kW = 62.5 kW at most; 25 kW is firm.
    let err = grid_events::record(&db, s.operator, s.site, &event(&s, 12, 4, 70), s.now)
        .await
        .unwrap_err();
    let ServiceError::Invalid(fields) = err else {
        panic!("expected a refusal, got {err:?}")
    };
    assert_eq!(fields[0].field, "shed_kw");
    for figure in [
        "70 kW",
        "mining runs 50 kW",
        "interruptible AI load 12 kW",
        "25 kW is firm",
    ] {
        assert!(
            fields[0].message.contains(figure),
            "{figure} in {}",
            fields[0].message
        );
    }
    assert_eq!(count(&db, "grid_event").await, 0);
    assert_eq!(count(&db, "allocation_cut").await, 0);
    assert_eq!(pieces(&db, &s, flex).await, [(10, 20)]);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_event_is_checked_and_scoped_to_its_operator(db: PgPool) {
    let s = small_site(&db).await;
    let refused = |e: Result<app::grid::GridEvent, ServiceError>| match e {
        Err(ServiceError::Invalid(f)) => f[0].field.clone(),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let rec = |e: NewGridEvent| {
        let (db, s) = (&db, &s);
        async move { grid_events::record(db, s.operator, s.site, &e, s.now).await }
    };
    assert_eq!(refused(rec(event(&s, -2, 4, 10)).await), "start");
    assert_eq!(refused(rec(event(&s, 2, 73, 10)).await), "end");
    assert_eq!(refused(rec(event(&s, 2, 4, 201)).await), "shed_kw");
    assert_eq!(
        refused(
            rec(NewGridEvent {
                program: "  ".into(),
                ..event(&s, 2, 4, 10)
            })
            .await
        ),
        "program"
    );
    assert_eq!(
        refused(
            rec(NewGridEvent {
                payment_cents_per_mwh: Some(-1),
                ..event(&s, 2, 4, 10)
            })
            .await
        ),
        "payment_cents_per_mwh"
    );
    let stranger = org(&db, "Other Op", "operator").await;
    assert!(matches!(
        grid_events::record(&db, stranger, s.site, &event(&s, 2, 4, 10), s.now).await,
        Err(ServiceError::NotFound("site"))
    ));
    assert!(matches!(
        grid_events::list(&db, stranger, s.site, None, 10).await,
        Err(ServiceError::NotFound("site"))
    ));
    assert_eq!(count(&db, "grid_event").await, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_database_refuses_a_curtailment_cut_of_a_firm_reservation(db: PgPool) {
    let s = small_site(&db).await;
    let firm = book(&db, &s, s.dear, 1, Tier::Firm).await;
    let e = grid_events::record(&db, s.operator, s.site, &event(&s, 12, 4, 10), s.now)
        .await
        .unwrap();
    let unit: i64 = sqlx::query_scalar("select unit_id from allocation where reservation_id = $1")
        .bind(firm)
        .fetch_one(&db)
        .await
        .unwrap();
    // Whatever code writes it, a curtailment never takes a firm reservation's hours.
    let err = sqlx::query("select grid_event_cut($1, $2, $3, tstzrange($4, $5), 12500)")
        .bind(e.id)
        .bind(firm)
        .bind(unit)
        .bind(hour(s.now, 12))
        .bind(hour(s.now, 16))
        .execute(&db)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().constraint(),
        Some("firm_reservation_keeps_its_hours")
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn operators_record_list_and_replay_grid_events_over_the_api(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let operator = key(&app, "ops@lonestarhash.example", &["read", "operate"]).await;
    let reader = key(&app, "ops@lonestarhash.example", &["read"]).await;
    let (_, sites) = json_of(
        app.api(Method::GET, "/sites", &operator)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let site = sites["data"][0]["id"].as_i64().unwrap();
    let start = hour(Utc::now(), 30);
    let body = json!({"program": "4CP <b>peak</b>", "start": start, "end": hour(Utc::now(), 32),
                      "shed_kw": 100, "payment_cents_per_mwh": 20000});
    let path = format!("/sites/{site}/grid-events");
    let post = |key: &str, idem: &str, body: &serde_json::Value| {
        app.api(Method::POST, &path, key)
            .header("Idempotency-Key", idem)
            .json(body)
            .send()
    };
    let before = count(&db, "grid_event").await;
    let (status, first) = json_of(post(&operator, "ge-1", &body).await.unwrap()).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["program"], "4CP <b>peak</b>");
    assert_eq!(first["mining_shed_kw"], 100);
    let (status, again) = json_of(post(&operator, "ge-1", &body).await.unwrap()).await;
    assert_eq!(
        (status, &again["id"]),
        (201, &first["id"]),
        "a retry replays"
    );
    assert_eq!(count(&db, "grid_event").await, before + 1);

    let (status, _) = json_of(post(&reader, "ge-2", &body).await.unwrap()).await;
    assert_eq!(status, 403, "recording needs the operate scope");
    let mut too_much = body.clone();
    too_much["shed_kw"] = json!(10_000_000);
    let (status, p) = json_of(post(&operator, "ge-3", &too_much).await.unwrap()).await;
    assert_eq!(status, 422, "{p}");
    let mut past = body.clone();
    past["start"] = json!(hour(Utc::now(), -3));
    let (status, p) = json_of(post(&operator, "ge-4", &past).await.unwrap()).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (422, Some("start")),
        "{p}"
    );

    let (status, list) = json_of(app.api(Method::GET, &path, &reader).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["id"] == first["id"]));
    let (status, one) = json_of(
        app.api(
            Method::GET,
            &format!("/grid-events/{}", first["id"]),
            &reader,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((status, &one["event"]["shed_kw"]), (200, &json!(100)));
    let (status, dr) = json_of(
        app.api(Method::GET, "/demand-response", &reader)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(dr
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["site_id"] == site && m["revenue_cents"].as_i64() >= Some(4_000)));

    // Another operator's key finds no such site or event.
    let stranger = key(&app, "ops@appalachian.example", &["read", "operate"]).await;
    let (status, _) = json_of(post(&stranger, "ge-5", &body).await.unwrap()).await;
    assert_eq!(status, 404);
    let (status, _) = json_of(
        app.api(
            Method::GET,
            &format!("/grid-events/{}", first["id"]),
            &stranger,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 404);

    // Endpoints can subscribe to every event the marketplace sends, the new ones included.
    let (status, w) = json_of(
        app.api(Method::POST, "/webhooks", &operator)
            .json(&json!({"url": "https://93.184.216.34/rigshift", "events": app::webhook::EVENTS}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{w}");
}
