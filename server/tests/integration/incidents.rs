//! Incidents over real HTTP against PostgreSQL: a down unit's booking moves to a spare (same
//! hours, nothing overlapping) and the unit leaves sale until resolved; with no spare the
//! customer is credited and offered capacity at another of the operator's sites, which it
//! accepts or declines; credits are exact to the cent, SLA tiers by the month's share; and
//! an incident's healing racing a booking of the spare ends one consistent way.

use crate::fixtures::{
    assert_books_reconcile, customer_key, gpu_pool, hour, json_of, market, market_named,
    operator_key, post_json, req, site_input, unit_ids, Market, FEE_BP,
};
use crate::helpers::TestApp;
use app::services::{catalog, reservations};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

async fn get(app: &TestApp, key: &str, path: &str) -> (u16, Value) {
    json_of(app.api(Method::GET, path, key).send().await.unwrap()).await
}

/// (unit id, start, end) of every allocation of a reservation, in order.
async fn pieces(db: &PgPool, res: i64) -> Vec<(i64, DateTime<Utc>, DateTime<Utc>)> {
    sqlx::query_as(
        "select unit_id, lower(during), upper(during) from allocation where reservation_id = $1 order by lower(during), unit_id",
    )
    .bind(res)
    .fetch_all(db)
    .await
    .unwrap()
}

async fn credits(db: &PgPool, res: i64) -> Vec<(String, i64)> {
    sqlx::query_as(
        "select reason, amount_cents from reservation_credit where reservation_id = $1 order by id",
    )
    .bind(res)
    .fetch_all(db)
    .await
    .unwrap()
}

async fn outbox_kinds(db: &PgPool, kind: &str) -> i64 {
    sqlx::query_scalar("select count(*) from event_outbox where kind = $1")
        .bind(kind)
        .fetch_one(db)
        .await
        .unwrap()
}

/// Books through the service (so a start in the past can be made as of an earlier `now`).
async fn book_as_of(
    db: &PgPool,
    m: &Market,
    customer: i64,
    nodes: i64,
    from_h: i64,
    hours: i64,
    as_of: DateTime<Utc>,
) -> (i64, i64) {
    let r = reservations::reserve(
        db,
        customer,
        &req(m, nodes * 8, from_h, hours),
        FEE_BP,
        as_of,
    )
    .await
    .unwrap();
    (r.id, r.total_cents)
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_incident_moves_the_booking_to_a_spare_and_keeps_the_unit_out_of_sale_until_resolved(
    db: PgPool,
) {
    let m = market(&db, 3).await;
    let app = TestApp::spawn(db.clone()).await;
    let (op, cust) = (
        operator_key(&db, m.operator).await,
        customer_key(&db, m.customer).await,
    );
    let units = unit_ids(&db, m.pool).await;
    let (res, _) = book_as_of(&db, &m, m.customer, 1, 2, 24, m.now).await;
    assert_eq!(
        pieces(&db, res).await,
        vec![(units[0], hour(m.now, 2), hour(m.now, 26))]
    );

    let (status, inc) = post_json(
        &app,
        &op,
        &format!("/pools/{}/incidents", m.pool),
        json!({"units": [1], "cause": "<b>PSU</b> failed"}),
    )
    .await;
    assert_eq!(status, 201, "{inc}");
    assert_eq!(inc["state"], "open");
    assert_eq!(inc["units"], json!([1]));
    assert_eq!(inc["moved_unit_hours"], 24);
    assert_eq!(inc["lost_unit_hours"], 0);
    assert_eq!(inc["credited_cents"], 0);
    // The same hours, on the lowest spare; nothing credited, the customer told.
    assert_eq!(
        pieces(&db, res).await,
        vec![(units[1], hour(m.now, 2), hour(m.now, 26))]
    );
    assert!(credits(&db, res).await.is_empty());
    assert_eq!(
        outbox_kinds(&db, "reservation.moved").await,
        2,
        "customer and operator"
    );
    assert_eq!(outbox_kinds(&db, "incident.opened").await, 1);
    let (_, detail) = get(&app, &op, &format!("/incidents/{}", inc["id"])).await;
    assert_eq!(detail["hits"][0]["outcome"], "moved");
    assert_eq!(detail["hits"][0]["unit"], 1);
    assert_eq!(detail["hits"][0]["to_unit"], 2);

    // Unit 1 is out of sale: two nodes do not fit over those hours, one does.
    let two = json!({"pool_id": m.pool, "quantity": {"units": 2}, "start": hour(m.now, 4), "end": hour(m.now, 8)});
    let (status, _) = post_json(&app, &cust, "/reservations", two.clone()).await;
    assert_eq!(status, 409);
    // An operator's typo is a clear 422, and another operator's pool is not found.
    let (status, bad) = post_json(
        &app,
        &op,
        &format!("/pools/{}/incidents", m.pool),
        json!({"units": [9], "cause": "x"}),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        bad["detail"].as_str().unwrap().contains("numbered 1 to 3"),
        "{bad}"
    );
    let (status, _) = post_json(
        &app,
        &op,
        &format!("/pools/{}/incidents", m.pool),
        json!({"units": [2], "cause": "late", "started_at": m.now - Duration::hours(80)}),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = post_json(
        &app,
        &cust,
        &format!("/pools/{}/incidents", m.pool),
        json!({"units": [2], "cause": "not mine"}),
    )
    .await;
    assert_eq!(status, 403);

    // Resolved: from the next hour the unit is on sale again.
    let (status, resolved) = post_json(
        &app,
        &op,
        &format!("/incidents/{}/resolve", inc["id"]),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["state"], "resolved");
    let (status, again) = post_json(
        &app,
        &op,
        &format!("/incidents/{}/resolve", inc["id"]),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, &again["resolved_at"]),
        (200, &resolved["resolved_at"])
    );
    assert_eq!(outbox_kinds(&db, "incident.resolved").await, 1);
    let (status, two_booked) = post_json(&app, &cust, "/reservations", two).await;
    assert_eq!(status, 201, "{two_booked}");
    let (_, listed) = get(&app, &op, &format!("/pools/{}/incidents", m.pool)).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let audit: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where object_type = 'incident' and action in ('incident.opened', 'incident.resolved')")
        .fetch_one(&db).await.unwrap();
    assert_eq!(audit, 2);
    assert_books_reconcile(&db, Utc::now()).await;
}

/// A second live site of the same operator with a pool of `nodes` H100 nodes on sale.
async fn second_site(db: &PgPool, m: &Market, nodes: i64) -> i64 {
    let site = catalog::create_site(db, m.operator, &site_input("Second", 50_000))
        .await
        .unwrap();
    let pool = catalog::create_pool(db, m.operator, site, &gpu_pool("H100s too", nodes), None)
        .await
        .unwrap();
    catalog::open_window(db, m.operator, pool, hour(m.now, -24), hour(m.now, 24 * 60))
        .await
        .unwrap();
    pool
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn with_no_spare_the_hours_are_credited_and_offered_at_another_site_to_accept_or_decline(
    db: PgPool,
) {
    let m = market(&db, 2).await;
    let other = second_site(&db, &m, 2).await;
    let app = TestApp::spawn(db.clone()).await;
    let op = operator_key(&db, m.operator).await;
    let (first, second) = (
        customer_key(&db, m.customer).await,
        customer_key(&db, m.other_customer).await,
    );
    let (a, a_total) = book_as_of(&db, &m, m.customer, 1, 3, 48, m.now).await;
    let (b, b_total) = book_as_of(&db, &m, m.other_customer, 1, 3, 48, m.now).await;

    let (status, inc) = post_json(
        &app,
        &op,
        &format!("/pools/{}/incidents", m.pool),
        json!({"units": [1, 2], "cause": "the hall's cooling failed"}),
    )
    .await;
    assert_eq!(status, 201, "{inc}");
    assert_eq!(inc["moved_unit_hours"], 0);
    assert_eq!(inc["lost_unit_hours"], 96);
    assert_eq!(inc["offers"], 2);
    // Every hour lost: the price paid back in full, whatever the SLA tier would add.
    assert_eq!(
        credits(&db, a).await,
        vec![("incident".to_string(), a_total)]
    );
    assert_eq!(
        credits(&db, b).await,
        vec![("incident".to_string(), b_total)]
    );
    assert!(pieces(&db, a).await.is_empty());
    assert!(outbox_kinds(&db, "reservation.credited").await >= 4);

    let (status, offers) = get(&app, &first, "/incident-offers").await;
    assert_eq!(status, 200);
    let offer = &offers["data"][0];
    assert_eq!(
        (offer["reservation_id"].as_i64(), offer["pool_id"].as_i64()),
        (Some(a), Some(other))
    );
    assert_eq!(offer["units"], 1);
    assert_eq!(
        offer["total_cents"].as_i64(),
        Some(a_total),
        "the price paid for the same hours"
    );
    assert_eq!(offer["state"], "open");
    // Another customer's offer is not found.
    let (status, _) = post_json(
        &app,
        &second,
        &format!("/incident-offers/{}/accept", offer["id"]),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);

    let (status, moved) = post_json(
        &app,
        &first,
        &format!("/incident-offers/{}/accept", offer["id"]),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["pool_id"].as_i64(), Some(other));
    assert_eq!(moved["start"], json!(hour(m.now, 3)));
    assert_eq!(moved["total_cents"].as_i64(), Some(a_total));
    let (status, again) = post_json(
        &app,
        &first,
        &format!("/incident-offers/{}/accept", offer["id"]),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, &again["id"]),
        (200, &moved["id"]),
        "accepting twice books once"
    );
    let (status, late) = post_json(
        &app,
        &first,
        &format!("/incident-offers/{}/decline", offer["id"]),
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{late}");

    let (_, offers) = get(&app, &second, "/incident-offers").await;
    let b_offer = &offers["data"][0];
    let (status, declined) = post_json(
        &app,
        &second,
        &format!("/incident-offers/{}/decline", b_offer["id"]),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, declined["state"].as_str()),
        (200, Some("declined"))
    );
    let (status, _) = post_json(
        &app,
        &second,
        &format!("/incident-offers/{}/accept", b_offer["id"]),
        json!({}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        credits(&db, b).await,
        vec![("incident".to_string(), b_total)],
        "the credit stands"
    );
    assert_books_reconcile(&db, Utc::now()).await;
}

/// The first instant of the UTC month after `t`'s.
fn next_month(t: DateTime<Utc>) -> DateTime<Utc> {
    let (y, mo) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    Utc.with_ymd_and_hms(y, mo, 1, 0, 0, 0).unwrap()
}

fn month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn credits_are_exact_to_the_cent_with_the_sla_tier_of_each_months_share(db: PgPool) {
    let m = market(&db, 1).await;
    catalog::open_window(&db, m.operator, m.pool, hour(m.now, -72), hour(m.now, -24))
        .await
        .unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let op = operator_key(&db, m.operator).await;
    // 1 node for 200 hours from 30 hours ago, booked then.
    let (res, total) = book_as_of(&db, &m, m.customer, 1, -30, 200, hour(m.now, -31)).await;
    let started = m.now - Duration::hours(5);
    let (status, inc) = post_json(
        &app,
        &op,
        &format!("/pools/{}/incidents", m.pool),
        json!({"units": [1], "cause": "node rebooted in a loop", "started_at": started}),
    )
    .await;
    assert_eq!(status, 201, "{inc}");
    // No spare: from the hour it started to the end of the reservation, all lost.
    let lost_from = hour(m.now, -5);
    let term = (hour(m.now, -30), hour(m.now, 170));
    let lost_hours = (term.1 - lost_from).num_hours();
    assert_eq!(inc["lost_unit_hours"].as_i64(), Some(lost_hours));
    let lost_credit = total * lost_hours / 200;
    let mut expected = vec![("incident".to_string(), lost_credit)];
    // Each month the lost hours touch: the share of the reservation's hours that month
    // delivered; the deepest tier under it pays its share of the month's charge.
    let mut credited = lost_credit;
    let mut month = month_start(lost_from);
    while month < term.1 {
        let (a, b) = (month.max(term.0), next_month(month).min(term.1));
        let sold = (b - a).num_hours();
        let lost = (b - lost_from.max(a)).num_hours().max(0);
        let share_bp = 10_000 * (sold - lost) / sold;
        let tier = [(9_500, 5_000), (9_900, 2_500), (9_950, 1_000)]
            .into_iter()
            .find(|(below, _)| share_bp < *below)
            .map(|(_, c)| c);
        if let Some(tier) = tier {
            let due = ((total * sold / 200) * tier / 10_000).min(total - credited);
            if due > 0 {
                expected.push(("sla".to_string(), due));
                credited += due;
            }
        }
        month = next_month(month);
    }
    assert_eq!(credits(&db, res).await, expected);
    assert_eq!(inc["credited_cents"].as_i64(), Some(credited));
    assert_books_reconcile(&db, Utc::now()).await;

    // A partial hour of the last month: the incident on a reservation of a few hours only
    // in the past is credited for exactly those hours.
    let m2 = market_named(&db, 1, "-short").await;
    let op2 = operator_key(&db, m2.operator).await;
    let (short, short_total) = book_as_of(&db, &m2, m2.customer, 1, -3, 7, hour(m2.now, -4)).await;
    let (status, inc2) = post_json(&app, &op2, &format!("/pools/{}/incidents", m2.pool),
        json!({"units": [1], "cause": "fan", "started_at": m2.now - Duration::minutes(90), "ends_at": hour(m2.now, 2)})).await;
    assert_eq!(status, 201, "{inc2}");
    let lost2 = (hour(m2.now, 2) - hour(m2.now - Duration::minutes(90), 0)).num_hours();
    assert_eq!(
        credits(&db, short).await[0],
        ("incident".to_string(), short_total * lost2 / 7)
    );
    assert_books_reconcile(&db, Utc::now()).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn healing_racing_a_booking_of_the_spare_ends_one_consistent_way(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let (mut moved, mut credited) = (0, 0);
    for round in 0..8 {
        let m = market_named(&db, 2, &format!("-race{round}")).await;
        let (op, other) = (
            operator_key(&db, m.operator).await,
            customer_key(&db, m.other_customer).await,
        );
        let (res, total) = book_as_of(&db, &m, m.customer, 1, 2, 24, m.now).await;
        let path = format!("/pools/{}/incidents", m.pool);
        let incident = post_json(&app, &op, &path, json!({"units": [1], "cause": "race"}));
        let booking = post_json(
            &app,
            &other,
            "/reservations",
            json!({"pool_id": m.pool, "quantity": {"units": 1}, "start": hour(m.now, 2), "end": hour(m.now, 26)}),
        );
        let ((si, inc), (sb, _)) = tokio::join!(incident, booking);
        assert_eq!(si, 201, "{inc}");
        let held = pieces(&db, res).await;
        if sb == 201 {
            // The booking took the spare first: nothing to move to, every hour credited.
            assert!(held.is_empty(), "{held:?}");
            assert_eq!(
                credits(&db, res).await,
                vec![("incident".to_string(), total)]
            );
            credited += 1;
        } else {
            assert_eq!(sb, 409);
            assert_eq!(held.len(), 1);
            assert_eq!(inc["moved_unit_hours"], 24);
            moved += 1;
        }
        // Every unit-hour of the pool is held once at most (the exclusion constraint), and
        // the down unit by the incident alone.
        let on_down_unit: i64 = sqlx::query_scalar(
            "select count(*) from allocation a join capacity_unit u on u.id = a.unit_id
              where u.pool_id = $1 and u.ordinal = 1 and a.reservation_id is not null and a.during && tstzrange($2, $3)")
            .bind(m.pool).bind(hour(m.now, 1)).bind(hour(m.now, 26))
            .fetch_one(&db).await.unwrap();
        assert_eq!(on_down_unit, 0);
    }
    assert_eq!(moved + credited, 8);
    assert_books_reconcile(&db, Utc::now()).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_incident_racing_a_cancellation_of_the_booking_it_hits_answers_both(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    for round in 0..8 {
        let m = market_named(&db, 2, &format!("-cancel{round}")).await;
        let (op, cust) = (
            operator_key(&db, m.operator).await,
            customer_key(&db, m.customer).await,
        );
        let (res, _) = book_as_of(&db, &m, m.customer, 1, 2, 24, m.now).await;
        let path = format!("/pools/{}/incidents", m.pool);
        let incident = post_json(&app, &op, &path, json!({"units": [1], "cause": "race"}));
        let cancel_path = format!("/reservations/{res}/cancel");
        let cancel = post_json(&app, &cust, &cancel_path, json!({}));
        let ((si, inc), (sc, cancelled)) = tokio::join!(incident, cancel);
        // Whichever came first, neither is refused: the cancellation holds, and the
        // incident moved the booking (it came first) or found nothing left to move.
        assert_eq!(si, 201, "{inc}");
        assert_eq!(sc, 200, "{cancelled}");
        assert!(pieces(&db, res).await.is_empty());
    }
    assert_books_reconcile(&db, Utc::now()).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_operator_states_its_pools_sla_and_a_malformed_one_is_refused(db: PgPool) {
    let m = market(&db, 1).await;
    let app = TestApp::spawn(db.clone()).await;
    let op = operator_key(&db, m.operator).await;
    let (_, pool) = get(&app, &op, &format!("/pools/{}", m.pool)).await;
    assert_eq!(pool["sla"]["promise_bp"], 9950, "the default: {pool}");
    let mut input =
        serde_json::to_value(catalog::pool_input(&db, m.operator, m.pool).await.unwrap()).unwrap();
    input["sla"] = json!({"promise_bp": 9990, "tiers": [{"below_bp": 9990, "credit_bp": 2000}]});
    let put = |body: Value| {
        app.api(Method::PUT, &format!("/pools/{}", m.pool), &op)
            .json(&body)
            .send()
    };
    let (status, answer) = json_of(put(input.clone()).await.unwrap()).await;
    assert!(status == 200 || status == 204, "{status} {answer}");
    let (_, pool) = get(&app, &op, &format!("/pools/{}", m.pool)).await;
    assert_eq!(pool["sla"]["promise_bp"], 9990);
    assert_eq!(pool["sla"]["tiers"][0]["credit_bp"], 2000);
    // Deeper tiers must pay more: refused field by field, nothing changed.
    input["sla"] = json!({"promise_bp": 9990, "tiers": [{"below_bp": 9990, "credit_bp": 2000},
                                                        {"below_bp": 9500, "credit_bp": 1000}]});
    let (status, bad) = json_of(put(input).await.unwrap()).await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["errors"][0]["field"], "sla");
    let (_, pool) = get(&app, &op, &format!("/pools/{}", m.pool)).await;
    assert_eq!(pool["sla"]["tiers"].as_array().unwrap().len(), 1);
}
