//! Holds and binding totals over real HTTP: a hold takes its units from sale at once and is
//! confirmed at exactly the held total whatever the price does meanwhile; an agreed total
//! that is no longer the price books nothing; an expired hold cannot be confirmed and is
//! released once, by whichever process gets there, and a hold racing its own expiry ends
//! one way only.

use crate::fixtures::{
    assert_books_reconcile, books, count, customer_key, hour, market, post_json, Market,
};
use crate::helpers::TestApp;
use app::services::reservations;
use serde_json::{json, Value};
use sqlx::PgPool;

/// `nodes` nodes (8 GPUs each) of the market's pool from `from_h` for `hours` hours.
fn ask(m: &Market, nodes: i64, from_h: i64, hours: i64) -> Value {
    json!({
        "pool_id": m.pool,
        "quantity": {"units": nodes},
        "start": hour(m.now, from_h),
        "end": hour(m.now, from_h + hours),
    })
}

async fn state_of(db: &PgPool, id: i64) -> (String, i64) {
    sqlx::query_as(
        "select r.state, (select count(*) from allocation a where a.reservation_id = r.id)
           from reservation r where r.id = $1",
    )
    .bind(id)
    .fetch_one(db)
    .await
    .unwrap()
}

async fn set_price(db: &PgPool, pool: i64, cents: i64) {
    sqlx::query("update capacity_pool set price_cents = $2 where id = $1")
        .bind(pool)
        .bind(cents)
        .execute(db)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_hold_takes_its_units_from_sale_and_confirms_at_the_held_total(db: PgPool) {
    let m = market(&db, 2).await;
    let app = TestApp::spawn(db.clone()).await;
    let (mine, theirs) = (
        customer_key(&db, m.customer).await,
        customer_key(&db, m.other_customer).await,
    );
    let mut body = ask(&m, 2, 10, 4);
    body["minutes"] = json!(10);
    let (status, hold) = post_json(&app, &mine, "/holds", body).await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(hold["state"], "held");
    let id = hold["id"].as_i64().unwrap();
    let total = hold["total_cents"].as_i64().unwrap();
    let until: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(hold["held_until"].clone()).unwrap();
    let left = until - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(9) && left <= chrono::Duration::minutes(10),
        "held for {left}"
    );
    // Nothing is charged while it is held.
    assert_eq!(books(&db, id).await.charged, 0);

    // Off sale for everyone else at once.
    let (_, quote) = post_json(&app, &theirs, "/quotes", ask(&m, 1, 10, 4)).await;
    assert_eq!(quote["free_units"], 0, "{quote}");
    let (status, refused) = post_json(&app, &theirs, "/reservations", ask(&m, 1, 11, 1)).await;
    assert_eq!(status, 409, "{refused}");

    // The list price doubles; the hold confirms at the total it was held at.
    set_price(&db, m.pool, 400).await;
    let (status, confirmed) = post_json(
        &app,
        &mine,
        &format!("/reservations/{id}/confirm"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["state"], "confirmed");
    assert_eq!(confirmed["total_cents"], total);
    assert!(confirmed.get("held_until").is_none(), "{confirmed}");
    assert_eq!(books(&db, id).await.charged, total);
    assert_eq!(state_of(&db, id).await, ("confirmed".into(), 2));

    // A second confirm changes nothing; releasing a confirmed booking is a cancellation.
    let (status, again) = post_json(
        &app,
        &mine,
        &format!("/reservations/{id}/confirm"),
        json!({}),
    )
    .await;
    assert_eq!((status, again["total_cents"].as_i64()), (200, Some(total)));
    assert_eq!(books(&db, id).await.charged, total);
    // Another organization cannot see, let alone confirm, the hold.
    let (status, _) = post_json(
        &app,
        &theirs,
        &format!("/reservations/{id}/confirm"),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    assert_books_reconcile(&db, chrono::Utc::now()).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_agreed_total_that_is_no_longer_the_price_books_nothing(db: PgPool) {
    let m = market(&db, 2).await;
    let app = TestApp::spawn(db.clone()).await;
    let key = customer_key(&db, m.customer).await;
    let (status, quote) = post_json(&app, &key, "/quotes", ask(&m, 1, 10, 4)).await;
    assert_eq!(status, 200);
    let agreed = quote["price"]["total_cents"].as_i64().unwrap();

    set_price(&db, m.pool, 250).await;
    for path in ["/reservations", "/holds"] {
        let mut body = ask(&m, 1, 10, 4);
        body["agreed_total_cents"] = json!(agreed);
        let (status, problem) = post_json(&app, &key, path, body).await;
        assert_eq!(status, 409, "{path}: {problem}");
        assert_eq!(problem["code"], "price-changed");
        let now_total = problem["total_cents"].as_i64().unwrap();
        assert!(now_total > agreed, "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(&app::money::format_cents(now_total, "USD")),
            "{detail}"
        );
    }
    assert_eq!(count(&db, "reservation").await, 0);
    assert_eq!(count(&db, "allocation").await, 0);

    // Agreeing to the new total books it.
    let (_, quote) = post_json(&app, &key, "/quotes", ask(&m, 1, 10, 4)).await;
    let mut body = ask(&m, 1, 10, 4);
    body["agreed_total_cents"] = quote["price"]["total_cents"].clone();
    let (status, made) = post_json(&app, &key, "/reservations", body).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["total_cents"], quote["price"]["total_cents"]);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_hold_outside_its_limits_is_refused_with_the_field(db: PgPool) {
    let m = market(&db, 2).await;
    let app = TestApp::spawn(db.clone()).await;
    let key = customer_key(&db, m.customer).await;
    for minutes in [0, 31, -5] {
        let mut body = ask(&m, 1, 10, 4);
        body["minutes"] = json!(minutes);
        let (status, problem) = post_json(&app, &key, "/holds", body).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], "minutes");
    }
    // Asking for more than is free holds nothing and names the next window.
    let (status, problem) = post_json(&app, &key, "/holds", ask(&m, 3, 10, 4)).await;
    assert_eq!(status, 422, "{problem}");
    let (status, _) = post_json(&app, &key, "/holds", ask(&m, 2, 10, 4)).await;
    assert_eq!(status, 201);
    let (status, problem) = post_json(&app, &key, "/holds", ask(&m, 1, 12, 4)).await;
    assert_eq!(status, 409, "{problem}");
    assert!(problem["next_start"].is_string(), "{problem}");
    assert_eq!(count(&db, "reservation").await, 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_expired_hold_cannot_be_confirmed_and_is_released_once(db: PgPool) {
    let m = market(&db, 1).await;
    let app = TestApp::spawn(db.clone()).await;
    let (mine, theirs) = (
        customer_key(&db, m.customer).await,
        customer_key(&db, m.other_customer).await,
    );
    let (_, hold) = post_json(&app, &mine, "/holds", ask(&m, 1, 10, 4)).await;
    let id = hold["id"].as_i64().unwrap();
    // Its time passes (the database's clock is the hold's clock).
    sqlx::query("update reservation set held_until = now() - interval '1 second' where id = $1")
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    let (status, problem) = post_json(
        &app,
        &mine,
        &format!("/reservations/{id}/confirm"),
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("expired"),
        "{problem}"
    );
    assert_eq!(state_of(&db, id).await, ("held".into(), 1));

    // Two processes release at once: one of them releases it, once.
    let (a, b) = tokio::join!(
        reservations::release_expired_holds(&db),
        reservations::release_expired_holds(&db)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(reservations::release_expired_holds(&db).await.unwrap(), 0);
    assert_eq!(state_of(&db, id).await, ("cancelled".into(), 0));
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where action = 'reservation.hold_expired' and object_id = $1",
    )
    .bind(id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    let (status, problem) = post_json(
        &app,
        &mine,
        &format!("/reservations/{id}/confirm"),
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(books(&db, id).await.charged, 0);

    // The unit is on sale again.
    let (status, made) = post_json(&app, &theirs, "/reservations", ask(&m, 1, 10, 4)).await;
    assert_eq!(status, 201, "{made}");
    assert_books_reconcile(&db, chrono::Utc::now()).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_booking_takes_the_units_of_a_hold_that_expired_before_the_job_ran(db: PgPool) {
    let m = market(&db, 1).await;
    let app = TestApp::spawn(db.clone()).await;
    let (mine, theirs) = (
        customer_key(&db, m.customer).await,
        customer_key(&db, m.other_customer).await,
    );
    let (_, hold) = post_json(&app, &mine, "/holds", ask(&m, 1, 10, 4)).await;
    let id = hold["id"].as_i64().unwrap();
    sqlx::query("update reservation set held_until = now() - interval '1 second' where id = $1")
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    // No release job has run: the booking's own path releases the pool's expired holds.
    let (status, made) = post_json(&app, &theirs, "/reservations", ask(&m, 1, 11, 2)).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(state_of(&db, id).await, ("cancelled".into(), 0));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_released_hold_leaves_nothing_and_the_database_refuses_one_that_keeps_units(db: PgPool) {
    let m = market(&db, 2).await;
    let app = TestApp::spawn(db.clone()).await;
    let key = customer_key(&db, m.customer).await;
    let (_, hold) = post_json(&app, &key, "/holds", ask(&m, 2, 10, 4)).await;
    let id = hold["id"].as_i64().unwrap();
    let (status, released) =
        post_json(&app, &key, &format!("/reservations/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(released["state"], "cancelled");
    assert!(released["refund_cents"].is_null(), "{released}");
    assert_eq!(state_of(&db, id).await, ("cancelled".into(), 0));
    assert_eq!(books(&db, id).await, Default::default());

    // PostgreSQL itself refuses a cancelled reservation that keeps a unit, and a hold
    // confirmed after its time.
    let (_, other) = post_json(&app, &key, "/holds", ask(&m, 1, 20, 4)).await;
    let other = other["id"].as_i64().unwrap();
    let kept = sqlx::query(
        "update reservation set state = 'cancelled', cancelled_at = now() where id = $1",
    )
    .bind(other)
    .execute(&db)
    .await
    .unwrap_err();
    assert!(kept.to_string().contains("still holds units"), "{kept}");
    sqlx::query("update reservation set held_until = now() - interval '1 second' where id = $1")
        .bind(other)
        .execute(&db)
        .await
        .unwrap();
    let confirmed =
        sqlx::query("update reservation set state = 'confirmed', held_until = null where id = $1")
            .bind(other)
            .execute(&db)
            .await
            .unwrap_err();
    assert!(confirmed.to_string().contains("expired"), "{confirmed}");
    // A hold longer than 30 minutes cannot be written.
    let long = sqlx::query(
        "update reservation set held_until = created_at + interval '31 minutes' where id = $1",
    )
    .bind(other)
    .execute(&db)
    .await
    .unwrap_err();
    assert!(long.to_string().contains("reservation_hold_span"), "{long}");
}

/// A confirm sent as the hold runs out, against the release job: whichever wins, the hold
/// ends one way only: confirmed with its units and charged, or released with nothing.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_hold_expiring_while_its_confirm_arrives_ends_one_way(db: PgPool) {
    let m = market(&db, 1).await;
    let app = TestApp::spawn(db.clone()).await;
    let key = customer_key(&db, m.customer).await;
    let mut outcomes = std::collections::BTreeMap::<&str, u32>::new();
    for round in 0..12 {
        let (status, hold) = post_json(&app, &key, "/holds", ask(&m, 1, 10 + round * 4, 4)).await;
        assert_eq!(status, 201, "{hold}");
        let id = hold["id"].as_i64().unwrap();
        let total = hold["total_cents"].as_i64().unwrap();
        sqlx::query(
            "update reservation set held_until = clock_timestamp() + interval '40 milliseconds' where id = $1",
        )
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(25 + round as u64 * 2)).await;
        let path = format!("/reservations/{id}/confirm");
        let confirm = post_json(&app, &key, &path, json!({}));
        let release = async {
            tokio::time::sleep(std::time::Duration::from_millis(15)).await;
            reservations::release_expired_holds(&db).await.unwrap()
        };
        let ((status, answer), _) = tokio::join!(confirm, release);
        // Whatever the job did, it finishes by itself afterwards.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        reservations::release_expired_holds(&db).await.unwrap();
        let (state, units) = state_of(&db, id).await;
        let charged = books(&db, id).await.charged;
        match status {
            200 => {
                assert_eq!(answer["state"], "confirmed");
                assert_eq!((state.as_str(), units, charged), ("confirmed", 1, total));
                *outcomes.entry("confirmed").or_default() += 1;
            }
            409 => {
                assert_eq!((state.as_str(), units, charged), ("cancelled", 0, 0));
                *outcomes.entry("released").or_default() += 1;
            }
            other => panic!("confirm answered {other}: {answer}"),
        }
    }
    eprintln!("outcomes: {outcomes:?}");
    assert_books_reconcile(&db, chrono::Utc::now()).await;
}
