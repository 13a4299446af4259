//! Standing orders over real HTTP and the fill worker against PostgreSQL: an order fills
//! when a cancellation frees capacity, once; orders competing for one unit fill in order of
//! creation; an order racing a direct booking for a freed unit never double-books; an order
//! over its price limit waits, and one past its expiry lapses with `order.expired`.

use crate::fixtures::{count, customer_key, hour, json_of, market, post_json, Market, FEE_BP};
use crate::helpers::TestApp;
use app::services::{orders, reservations};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

/// One node (8 GPUs) of the market's GPU model for `hours` hours, starting at hour `from_h`.
fn order(m: &Market, from_h: i64, to_h: i64, hours: i64) -> Value {
    json!({
        "gpu_model": "H100 SXM",
        "quantity": {"gpus": 8},
        "hours": hours,
        "earliest_start": hour(m.now, from_h),
        "latest_start": hour(m.now, to_h),
        "region": "texas",
    })
}

fn booking(m: &Market, from_h: i64, hours: i64) -> Value {
    json!({
        "pool_id": m.pool,
        "quantity": {"units": 1},
        "start": hour(m.now, from_h),
        "end": hour(m.now, from_h + hours),
    })
}

async fn round(db: &PgPool) -> orders::Round {
    orders::fill_round(db, FEE_BP, chrono::Utc::now())
        .await
        .unwrap()
}

async fn events(db: &PgPool, org: i64, kind: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "select payload from event_outbox where organization_id = $1 and kind = $2 order by id",
    )
    .bind(org)
    .bind(kind)
    .fetch_all(db)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_order_fills_once_when_a_cancellation_frees_capacity(db: PgPool) {
    let m = market(&db, 1).await;
    let app = TestApp::spawn(db.clone()).await;
    let (mine, theirs) = (
        customer_key(&db, m.customer).await,
        customer_key(&db, m.other_customer).await,
    );
    let (status, taken) = post_json(&app, &theirs, "/reservations", booking(&m, 10, 6)).await;
    assert_eq!(status, 201, "{taken}");

    // Nothing fits between hours 10 and 12: the order waits.
    let (status, left) = post_json(&app, &mine, "/orders", order(&m, 10, 12, 4)).await;
    assert_eq!(status, 201, "{left}");
    assert_eq!(left["state"], "open");
    assert_eq!(left["expires_at"], left["latest_start"]);
    let id = left["id"].as_i64().unwrap();
    let r = round(&db).await;
    assert!(r.ran);
    assert_eq!(r.filled, 0);

    // A cancellation frees the node: the next round books it for the order, once.
    let taken_id = taken["id"].as_i64().unwrap();
    let (status, _) = post_json(
        &app,
        &theirs,
        &format!("/reservations/{taken_id}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(round(&db).await.filled, 1);
    assert_eq!(round(&db).await.filled, 0);
    let (status, filled) = json_of(
        app.api(Method::GET, &format!("/orders/{id}"), &mine)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(filled["state"], "filled", "{filled}");
    let rid = filled["reservation_id"].as_i64().unwrap();
    let (status, res) = json_of(
        app.api(Method::GET, &format!("/reservations/{rid}"), &mine)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["start"], json!(hour(m.now, 10)));
    assert_eq!(res["units"], 1);
    let made: i64 = sqlx::query_scalar(
        "select count(*) from reservation where customer_id = $1 and state <> 'cancelled'",
    )
    .bind(m.customer)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(made, 1);
    let told = events(&db, m.customer, "order.filled").await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["reservation_id"], rid);

    // A filled order cannot be cancelled; the other organization cannot see it at all.
    let (status, problem) =
        post_json(&app, &mine, &format!("/orders/{id}/cancel"), json!({})).await;
    assert_eq!(status, 409, "{problem}");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains(&format!("#{rid}")));
    let (status, _) = post_json(&app, &theirs, &format!("/orders/{id}/cancel"), json!({})).await;
    assert_eq!(status, 404);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn orders_competing_for_one_unit_fill_in_order_of_creation(db: PgPool) {
    let m = market(&db, 1).await;
    let app = TestApp::spawn(db.clone()).await;
    let (first, second) = (
        customer_key(&db, m.other_customer).await,
        customer_key(&db, m.customer).await,
    );
    let (_, a) = post_json(&app, &first, "/orders", order(&m, 10, 10, 4)).await;
    let (_, b) = post_json(&app, &second, "/orders", order(&m, 10, 10, 4)).await;
    assert_eq!(round(&db).await.filled, 1);
    let state = |id: &Value| {
        let db = db.clone();
        let id = id.as_i64().unwrap();
        async move {
            sqlx::query_scalar::<_, String>("select state from standing_order where id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    assert_eq!(state(&a["id"]).await, "filled");
    assert_eq!(state(&b["id"]).await, "open");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_order_and_a_direct_booking_racing_for_a_freed_unit_never_double_book(db: PgPool) {
    let m = market(&db, 1).await;
    let app = TestApp::spawn(db.clone()).await;
    let (mine, theirs) = (
        customer_key(&db, m.customer).await,
        customer_key(&db, m.other_customer).await,
    );
    let mut winners = std::collections::BTreeMap::<&str, u32>::new();
    for i in 0..8 {
        let from = 10 + i * 6;
        let (_, blocker) = post_json(&app, &theirs, "/reservations", booking(&m, from, 4)).await;
        let (status, o) = post_json(&app, &mine, "/orders", order(&m, from, from, 4)).await;
        assert_eq!(status, 201, "{o}");
        let blocker = blocker["id"].as_i64().unwrap();
        post_json(
            &app,
            &theirs,
            &format!("/reservations/{blocker}/cancel"),
            json!({}),
        )
        .await;
        // The direct booking starts a little later each time, so each side wins some.
        let direct = async {
            tokio::time::sleep(std::time::Duration::from_millis(i as u64 * 4)).await;
            post_json(&app, &theirs, "/reservations", booking(&m, from, 4)).await
        };
        let (r, (status, _)) = tokio::join!(round(&db), direct);
        let order_state: String =
            sqlx::query_scalar("select state from standing_order where id = $1")
                .bind(o["id"].as_i64().unwrap())
                .fetch_one(&db)
                .await
                .unwrap();
        let held: i64 = sqlx::query_scalar(
            "select count(*) from allocation where pool_id = $1 and during && tstzrange($2, $3)",
        )
        .bind(m.pool)
        .bind(hour(m.now, from))
        .bind(hour(m.now, from + 4))
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(held, 1, "round {i}: the unit is held once");
        match (status, order_state.as_str()) {
            (201, "open") => *winners.entry("direct").or_default() += 1,
            (409, "filled") => *winners.entry("order").or_default() += 1,
            other => panic!("round {i}: booking {other:?}, fill {r:?}"),
        }
        // Close a still-open order so later rounds do not fill it.
        let id = o["id"].as_i64().unwrap();
        if order_state == "open" {
            post_json(&app, &mine, &format!("/orders/{id}/cancel"), json!({})).await;
        }
    }
    eprintln!("winners: {winners:?}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_order_waits_under_its_price_limit_and_lapses_at_its_expiry(db: PgPool) {
    let m = market(&db, 1).await;
    let app = TestApp::spawn(db.clone()).await;
    let key = customer_key(&db, m.customer).await;
    // 8 GPUs × 4 h × $2.00 = $64 before the fee: a $10 limit never fills.
    let mut cheap = order(&m, 10, 12, 4);
    cheap["max_total_cents"] = json!(1_000);
    cheap["expires_at"] = json!(chrono::Utc::now() + chrono::Duration::seconds(2));
    let (status, o) = post_json(&app, &key, "/orders", cheap).await;
    assert_eq!(status, 201, "{o}");
    assert_eq!(round(&db).await.filled, 0);
    assert_eq!(count(&db, "reservation").await, 0);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let r = round(&db).await;
    assert_eq!((r.filled, r.expired), (0, 1));
    let lapsed = events(&db, m.customer, "order.expired").await;
    assert_eq!(lapsed.len(), 1);
    assert_eq!(lapsed[0]["order_id"], o["id"]);
    let id = o["id"].as_i64().unwrap();
    let (status, problem) = post_json(&app, &key, &format!("/orders/{id}/cancel"), json!({})).await;
    assert_eq!(status, 409, "{problem}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_bad_order_is_refused_field_by_field_and_an_open_one_can_be_cancelled(db: PgPool) {
    let m = market(&db, 1).await;
    let app = TestApp::spawn(db.clone()).await;
    let key = customer_key(&db, m.customer).await;
    let cases = [
        (json!({"hours": 0}), "hours"),
        (json!({"quantity": {"gpus": 0}}), "quantity"),
        (
            json!({"earliest_start": hour(m.now, 10) + chrono::Duration::minutes(30)}),
            "earliest_start",
        ),
        (json!({"latest_start": hour(m.now, 5)}), "latest_start"),
        (
            json!({"latest_start": hour(m.now, -2), "earliest_start": hour(m.now, -3)}),
            "latest_start",
        ),
        (json!({"expires_at": hour(m.now, 20)}), "expires_at"),
        (json!({"max_total_cents": 0}), "max_total_cents"),
        (json!({"kind": "power"}), "kind"),
        (json!({"region": "x".repeat(81)}), "region"),
        // Times no pool could ever serve, far outside the clock's usual range.
        (
            json!({"latest_start": "0177-10-27T12:27:28+17:21"}),
            "latest_start",
        ),
        (
            json!({"earliest_start": "9999-12-31T23:00:00Z"}),
            "latest_start",
        ),
    ];
    for (change, field) in cases {
        let mut body = order(&m, 10, 12, 4);
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, problem) = post_json(&app, &key, "/orders", body).await;
        assert_eq!(status, 422, "{field}: {problem}");
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{field}: {problem}"
        );
    }
    assert_eq!(count(&db, "standing_order").await, 0);

    let (_, o) = post_json(&app, &key, "/orders", order(&m, 10, 12, 4)).await;
    let id = o["id"].as_i64().unwrap();
    // Fill nothing: the node is taken by someone else first.
    reservations::reserve(
        &db,
        m.other_customer,
        &crate::fixtures::req(&m, 8, 10, 8),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(round(&db).await.filled, 0);
    let (status, cancelled) =
        post_json(&app, &key, &format!("/orders/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    let (status, _) = post_json(&app, &key, &format!("/orders/{id}/cancel"), json!({})).await;
    assert_eq!(status, 409);
    let (status, page) = json_of(
        app.api(Method::GET, "/orders?limit=1", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["data"][0]["id"], id);
    // PostgreSQL keeps a closed order closed.
    let reopened =
        sqlx::query("update standing_order set state = 'open', closed_at = null where id = $1")
            .bind(id)
            .execute(&db)
            .await
            .unwrap_err();
    assert!(reopened.to_string().contains("cannot change"), "{reopened}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn one_fill_round_runs_at_a_time(db: PgPool) {
    let _m = market(&db, 1).await;
    let mut held = db.begin().await.unwrap();
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(orders::FILL_LOCK)
        .execute(&mut *held)
        .await
        .unwrap();
    assert!(!round(&db).await.ran, "a second round ran beside the first");
    held.rollback().await.unwrap();
    assert!(round(&db).await.ran);
}
