//! Resale over real HTTP: a listing of the last hours of a reservation is found and bought,
//! the unit-hours move in one transaction (the seller keeps none of what it sold) and the
//! money is one balanced posting (buyer charged = seller credited + platform fee), while the
//! operator's contract and books stand; two buyers for one listing, and a seller withdrawing
//! while a buyer buys, end one way; and the listing rules refuse what cannot be sold.

use crate::fixtures::{
    assert_books_reconcile, books, customer_key, hour, json_of, market, post_json, Market,
};
use crate::helpers::TestApp;
use app::ledger::Month;
use app::services::ledger;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

async fn get(app: &TestApp, key: &str, path: &str) -> (u16, Value) {
    json_of(app.api(Method::GET, path, key).send().await.unwrap()).await
}

/// Books `units` nodes from hour `from_h` for `hours` hours; returns the reservation id.
async fn book(app: &TestApp, key: &str, m: &Market, units: i64, from_h: i64, hours: i64) -> i64 {
    let (status, r) = post_json(
        app,
        key,
        "/reservations",
        json!({"pool_id": m.pool, "quantity": {"units": units},
               "start": hour(m.now, from_h), "end": hour(m.now, from_h + hours)}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    r["id"].as_i64().unwrap()
}

async fn list(
    app: &TestApp,
    key: &str,
    res: i64,
    units: i64,
    start: chrono::DateTime<chrono::Utc>,
    price: i64,
) -> (u16, Value) {
    post_json(
        app,
        key,
        "/resale-listings",
        json!({"reservation_id": res, "units": units, "start": start, "unit_hour_price_cents": price}),
    )
    .await
}

/// API keys of the market's two customers: the one that sells, the one that buys.
async fn seller_and_buyer(db: &PgPool, m: &Market) -> (String, String) {
    (
        customer_key(db, m.customer).await,
        customer_key(db, m.other_customer).await,
    )
}

/// Units the reservation holds over [from, to).
async fn held_over(
    db: &PgPool,
    res: i64,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> i64 {
    sqlx::query_scalar(
        "select count(*) from allocation where reservation_id = $1 and during @> tstzrange($2, $3)",
    )
    .bind(res)
    .bind(from)
    .bind(to)
    .fetch_one(db)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_resale_moves_the_hours_and_the_money_once_and_the_operator_is_unaffected(db: PgPool) {
    let m = market(&db, 2).await;
    let app = TestApp::spawn(db.clone()).await;
    let (seller, buyer) = seller_and_buyer(&db, &m).await;
    let res = book(&app, &seller, &m, 2, 10, 96).await;
    let before = books(&db, res).await;
    // The last 48 hours of both nodes, at $15.00 per node-hour.
    let from = hour(m.now, 58);
    let (status, listing) = list(&app, &seller, res, 2, from, 1_500).await;
    assert_eq!(status, 201, "{listing}");
    assert_eq!(listing["state"], "open");
    let id = listing["id"].as_i64().unwrap();

    for bad in [
        "pool_id=0",
        "gpus=0",
        "kw=20000000",
        "limit=500",
        "gpus=8&kw=10",
    ] {
        let (status, problem) = get(&app, &buyer, &format!("/resale-listings?{bad}")).await;
        assert_eq!(status, 422, "{bad}: {problem}");
    }
    let (status, offers) = get(
        &app,
        &buyer,
        &format!("/resale-listings?pool_id={}&gpus=8", m.pool),
    )
    .await;
    assert_eq!(status, 200, "{offers}");
    let offer = &offers[0];
    assert_eq!(offer["listing_id"], id);
    assert_eq!(
        (offer["units_left"].as_i64(), offer["hours"].as_i64()),
        (Some(2), Some(48))
    );
    assert_eq!(offer["total_cents"], 2 * 48 * 1_500);
    assert_eq!(offer["start"], json!(from));
    // Every filter, matching and not: the query is planned for each call's values, so each
    // combination is its own plan.
    for (filter, found) in [
        (
            "gpu_model=h100%20sxm&region=ercot&energy_source=WIND&kind=gpu&gpus=16",
            true,
        ),
        ("region=tx&gpus=8", false),
        ("region=US", true),
        ("gpu_model=B200", false),
        ("kind=power", false),
        ("energy_source=hydro", false),
        ("gpus=17", false),
        ("pool_id=999999", false),
        ("limit=1", true),
    ] {
        let (status, offers) = get(&app, &buyer, &format!("/resale-listings?{filter}")).await;
        assert_eq!(status, 200, "{filter}: {offers}");
        let ids: Vec<i64> = offers
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["listing_id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, if found { vec![id] } else { vec![] }, "{filter}");
    }

    // One node now: the buyer's reservation holds it for exactly the listed hours.
    let (status, bought) = post_json(
        &app,
        &buyer,
        &format!("/resale-listings/{id}/buy"),
        json!({"units": 1}),
    )
    .await;
    assert_eq!(status, 201, "{bought}");
    let total = 48 * 1_500;
    assert_eq!(bought["total_cents"], total);
    assert_eq!(bought["units"], 1);
    assert_eq!(bought["resale_listing_id"], id);
    assert_eq!(bought["start"], json!(from));
    let bought_id = bought["id"].as_i64().unwrap();
    let fee = bought["fee_cents"].as_i64().unwrap();
    assert_eq!(fee, total * app::pricing::DEFAULT_PLATFORM_FEE_BP / 10_000);
    assert_eq!(held_over(&db, bought_id, from, hour(m.now, 106)).await, 1);
    assert_eq!(held_over(&db, res, from, hour(m.now, 106)).await, 1);
    assert_eq!(held_over(&db, res, hour(m.now, 10), from).await, 2);

    // The money: the buyer charged, the seller credited the price less the fee, once; the
    // seller's own contract with the operator is as it was.
    let month = Month::of(chrono::Utc::now());
    let sold = ledger::statement(&db, m.customer, month).await.unwrap();
    assert_eq!(sold.resale_cents, total - fee);
    let line = sold.lines.iter().find(|l| l.kind == "resale").unwrap();
    assert_eq!(
        line.reservation_id, None,
        "the seller is not told the buyer's reservation"
    );
    let paid = ledger::statement(&db, m.other_customer, month)
        .await
        .unwrap();
    assert!(paid.lines.iter().any(|l| l.kind == "resale"
        && l.amount_cents == total
        && l.reservation_id == Some(bought_id)));
    assert_eq!(books(&db, res).await, before);
    let kinds: Vec<String> = sqlx::query_scalar(
        "select kind from ledger_transaction where reservation_id = $1 order by id",
    )
    .bind(bought_id)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        ["resale"],
        "a resale posts its purchase and nothing else"
    );
    assert_books_reconcile(&db, chrono::Utc::now()).await;

    // The second node sells the listing out; a third buy finds it closed.
    let (status, _) = post_json(
        &app,
        &buyer,
        &format!("/resale-listings/{id}/buy"),
        json!({}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, problem) = post_json(
        &app,
        &buyer,
        &format!("/resale-listings/{id}/buy"),
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    let (_, mine) = get(&app, &seller, "/resale-listings/mine").await;
    assert_eq!(mine["data"][0]["state"], "sold");
    assert_eq!(mine["data"][0]["proceeds_cents"], 2 * (total - fee));
    assert_eq!(held_over(&db, res, from, hour(m.now, 106)).await, 0);

    // The seller cannot cancel what it sold part of; the buyer's resale is final.
    let (status, problem) = post_json(
        &app,
        &seller,
        &format!("/reservations/{res}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("resold"),
        "{problem}"
    );
    for path in ["cancel", "extend"] {
        let (status, problem) = post_json(
            &app,
            &buyer,
            &format!("/reservations/{bought_id}/{path}"),
            json!({"end": hour(m.now, 120)}),
        )
        .await;
        assert_eq!(status, 409, "{path}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("final"),
            "{problem}"
        );
    }
    // Nor can anyone else see the seller's listings as theirs.
    let (status, _) = post_json(
        &app,
        &buyer,
        &format!("/resale-listings/{id}/withdraw"),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    assert_books_reconcile(&db, chrono::Utc::now()).await;
}

/// Offers are found by the hardware a listing carries (migration 20261224000200). It is the
/// pool's, whatever the insert said, and it follows the pool should its hardware change.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_listing_carries_its_pools_hardware_and_is_found_by_it(db: PgPool) {
    let m = market(&db, 2).await;
    let app = TestApp::spawn(db.clone()).await;
    let (seller, buyer) = seller_and_buyer(&db, &m).await;
    let res = book(&app, &seller, &m, 2, 10, 96).await;
    let (status, listing) = list(&app, &seller, res, 2, hour(m.now, 58), 1_500).await;
    assert_eq!(status, 201, "{listing}");
    let id = listing["id"].as_i64().unwrap();
    let carried = |db: PgPool| async move {
        sqlx::query_as::<_, (String, Option<String>, i64)>(
            "select kind, gpu_model, unit_size from resale_listing where id = $1",
        )
        .bind(id)
        .fetch_one(&db)
        .await
        .unwrap()
    };
    assert_eq!(
        carried(db.clone()).await,
        ("gpu".into(), Some("H100 SXM".into()), 8)
    );

    // An insert that says otherwise is written with the pool's hardware. (Rolled back: the
    // reservation is on sale already.)
    let mut tx = db.begin().await.unwrap();
    sqlx::query("update resale_listing set state = 'withdrawn', closed_at = now() where id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("update reservation set resale_listing_id = null where id = $1")
        .bind(res)
        .execute(&mut *tx)
        .await
        .unwrap();
    let written: (String, Option<String>, i64) = sqlx::query_as(
        "insert into resale_listing (seller_id, reservation_id, site_id, pool_id, unit_count, during,
                                     unit_hour_price_cents, currency, kind, gpu_model, unit_size)
         select customer_id, id, site_id, pool_id, 1, during, 100, currency, 'power', 'B200', 1000
           from reservation where id = $1
         returning kind, gpu_model, unit_size",
    )
    .bind(res)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(written, ("gpu".into(), Some("H100 SXM".into()), 8));
    tx.rollback().await.unwrap();

    // The pool's hardware changed behind the operator's form: the open listing follows, and
    // is found by the new model and node size only.
    sqlx::query("update capacity_pool set gpu_model = 'B200', gpus_per_node = 4 where id = $1")
        .bind(m.pool)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(
        carried(db.clone()).await,
        ("gpu".into(), Some("B200".into()), 4)
    );
    for (filter, found) in [
        ("gpu_model=b200&gpus=8", true),
        ("gpu_model=b200&gpus=9", false),
        ("gpu_model=h100%20sxm", false),
    ] {
        let (status, offers) = get(&app, &buyer, &format!("/resale-listings?{filter}")).await;
        assert_eq!(status, 200, "{filter}: {offers}");
        assert_eq!(
            offers.as_array().unwrap().len(),
            usize::from(found),
            "{filter}"
        );
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn two_buyers_for_one_listing_get_it_once(db: PgPool) {
    let m = market(&db, 1).await;
    let app = TestApp::spawn(db.clone()).await;
    let seller = customer_key(&db, m.customer).await;
    let third = crate::fixtures::org(&db, "Third", "customer").await;
    let (a, b) = (
        customer_key(&db, m.other_customer).await,
        customer_key(&db, third).await,
    );
    let res = book(&app, &seller, &m, 1, 10, 48).await;
    let (_, listing) = list(&app, &seller, res, 1, hour(m.now, 30), 900).await;
    let path = format!("/resale-listings/{}/buy", listing["id"]);
    let (one, two) = tokio::join!(
        post_json(&app, &a, &path, json!({})),
        post_json(&app, &b, &path, json!({}))
    );
    let mut statuses = [one.0, two.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{one:?} {two:?}");
    let purchases: i64 = sqlx::query_scalar("select count(*) from resale_purchase")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(purchases, 1);
    let owners: i64 = sqlx::query_scalar(
        "select count(distinct r.customer_id) from allocation a join reservation r on r.id = a.reservation_id
          where a.during && tstzrange($1, $2)",
    )
    .bind(hour(m.now, 30))
    .bind(hour(m.now, 58))
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(owners, 1, "one customer holds the listed hours");
    assert_books_reconcile(&db, chrono::Utc::now()).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_seller_withdrawing_while_a_buyer_buys_ends_one_way(db: PgPool) {
    let m = market(&db, 1).await;
    let app = TestApp::spawn(db.clone()).await;
    let (seller, buyer) = seller_and_buyer(&db, &m).await;
    let mut outcomes = std::collections::BTreeMap::<&str, u32>::new();
    for i in 0..8 {
        let from = 10 + i * 30;
        let res = book(&app, &seller, &m, 1, from, 24).await;
        let (status, listing) = list(&app, &seller, res, 1, hour(m.now, from + 12), 700).await;
        assert_eq!(status, 201, "{listing}");
        let id = listing["id"].as_i64().unwrap();
        let withdraw = async {
            tokio::time::sleep(std::time::Duration::from_millis(i as u64)).await;
            post_json(
                &app,
                &seller,
                &format!("/resale-listings/{id}/withdraw"),
                json!({}),
            )
            .await
        };
        let buy_path = format!("/resale-listings/{id}/buy");
        let (w, b) = tokio::join!(withdraw, post_json(&app, &buyer, &buy_path, json!({})));
        let seller_keeps =
            held_over(&db, res, hour(m.now, from + 12), hour(m.now, from + 24)).await;
        match (w.0, b.0) {
            (200, 409) => {
                assert_eq!(seller_keeps, 1);
                *outcomes.entry("withdrawn").or_default() += 1;
            }
            (409, 201) => {
                assert_eq!(seller_keeps, 0);
                assert!(
                    w.1["detail"].as_str().unwrap().contains("sold"),
                    "{:?}",
                    w.1
                );
                *outcomes.entry("bought").or_default() += 1;
            }
            other => panic!("round {i}: withdraw and buy answered {other:?}: {w:?} {b:?}"),
        }
    }
    eprintln!("outcomes: {outcomes:?}");
    assert_books_reconcile(&db, chrono::Utc::now()).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn what_cannot_be_resold_is_refused_and_writes_nothing(db: PgPool) {
    let m = market(&db, 2).await;
    let app = TestApp::spawn(db.clone()).await;
    let (seller, other) = seller_and_buyer(&db, &m).await;
    let res = book(&app, &seller, &m, 1, 10, 48).await;
    let half_hour = hour(m.now, 20) + chrono::Duration::minutes(30);
    for (units, start, price, status, field) in [
        (1, hour(m.now, -1), 500, 422, Some("start")),
        (1, half_hour, 500, 422, Some("start")),
        (2, hour(m.now, 20), 500, 422, Some("units")),
        (1, hour(m.now, 20), 0, 422, Some("unit_hour_price_cents")),
        (
            1,
            "0177-10-27T12:27:28Z".parse().unwrap(),
            500,
            422,
            Some("start"),
        ),
        (1, hour(m.now, 5), 500, 409, None),
        (1, hour(m.now, 58), 500, 409, None),
    ] {
        let (got, problem) = list(&app, &seller, res, units, start, price).await;
        assert_eq!(got, status, "{units} from {start}: {problem}");
        if let Some(f) = field {
            assert!(
                problem["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["field"] == f),
                "{problem}"
            );
        }
    }
    // Another organization's reservation is not found.
    let (status, _) = list(&app, &other, res, 1, hour(m.now, 20), 500).await;
    assert_eq!(status, 404);
    let count: i64 = sqlx::query_scalar("select count(*) from resale_listing")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(count, 0);

    // Its own listing cannot be bought by the seller; a listed reservation is not cancelled
    // until the listing is withdrawn.
    let (_, listing) = list(&app, &seller, res, 1, hour(m.now, 20), 500).await;
    let id = listing["id"].as_i64().unwrap();
    let (status, problem) = post_json(
        &app,
        &seller,
        &format!("/resale-listings/{id}/buy"),
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    let (status, problem) = list(&app, &seller, res, 1, hour(m.now, 30), 500).await;
    assert_eq!(status, 422, "the one unit is on sale already: {problem}");
    let (status, problem) = post_json(
        &app,
        &seller,
        &format!("/reservations/{res}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("withdraw"),
        "{problem}"
    );
    let (status, _) = post_json(
        &app,
        &seller,
        &format!("/resale-listings/{id}/withdraw"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post_json(
        &app,
        &other,
        &format!("/resale-listings/{id}/buy"),
        json!({}),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = post_json(
        &app,
        &seller,
        &format!("/reservations/{res}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);

    // PostgreSQL refuses a listing that does not fit its reservation, and changing one.
    let res2 = book(&app, &seller, &m, 1, 100, 10).await;
    let wrong = sqlx::query(
        "insert into resale_listing (seller_id, reservation_id, site_id, pool_id, unit_count, during,
                                     unit_hour_price_cents, currency)
         select $1, r.id, r.site_id, r.pool_id, 1, tstzrange(lower(r.during), upper(r.during) + interval '1 hour'), 100, 'USD'
           from reservation r where r.id = $2",
    )
    .bind(m.customer)
    .bind(res2)
    .execute(&db)
    .await
    .unwrap_err();
    assert!(wrong.to_string().contains("does not fit"), "{wrong}");
}
