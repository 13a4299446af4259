//! Isolation: two operators and two customers, every object type, through both doors (a
//! browser session and an API key). Every access to another organization's object fails
//! (404 where the caller's role fits, so existence is never confirmed), and the database
//! is unchanged afterwards.

use crate::helpers::TestApp;
use app::services::blackouts::{self, BlackoutUnits};
use app::services::catalog::{PoolInput, PoolSpec, SiteInput};
use chrono::{Duration, DurationRound, Utc};
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

/// Everything an organization owns, as text, to compare before and after.
pub async fn fingerprint(db: &PgPool) -> String {
    sqlx::query_scalar(
        r#"select concat_ws('#',
             (select string_agg(t::text, '|' order by id) from site t),
             (select string_agg(t::text, '|' order by id) from capacity_pool t),
             (select string_agg(t::text, '|' order by id) from availability_window t),
             (select string_agg(t::text, '|' order by id) from blackout t),
             (select string_agg(t::text, '|' order by id) from reservation t),
             (select string_agg(t::text, '|' order by id) from allocation t),
             (select string_agg(concat(id, ':', revoked_at), '|' order by id) from api_key))"#,
    )
    .fetch_one(db)
    .await
    .unwrap()
}

struct Org {
    id: i64,
    email: String,
}

async fn org(db: &PgPool, name: &str) -> Org {
    let (id, email): (i64, String) = sqlx::query_as(
        "select o.id, u.email from organization o join app_user u on u.organization_id = o.id where o.name = $1",
    )
    .bind(name)
    .fetch_one(db)
    .await
    .unwrap();
    Org { id, email }
}

pub fn site_input() -> SiteInput {
    SiteInput {
        name: "Hijacked".into(),
        country: "US".into(),
        region: "Texas".into(),
        grid_region: "ERCOT".into(),
        energy_source: "wind".into(),
        interconnect_kw: 50_000,
        pue: 1.2,
        cooling: "air".into(),
        status: "live".into(),
        hashrate_th: 0,
        fleet_efficiency_j_th: None,
        hashprice_usd_cents_per_ph_day: None,
    }
}

pub fn pool_input() -> PoolInput {
    PoolInput {
        name: "Planted pool".into(),
        spec: PoolSpec::Power {
            block_kw: 100,
            redundancy: "N".into(),
            cooling: "air".into(),
        },
        unit_count: 1,
        price_cents: 10_000,
        min_term_hours: 1,
        max_term_hours: 8760,
        min_lead_hours: 0,
        discounts: vec![],
        cancellation: vec![],
        interruptible: None,
        sla: None,
        forward: None,
    }
}

async fn key_for(app: &TestApp, cookie: &str, scopes: &[&str]) -> String {
    let mut form = vec![("name", "matrix")];
    for s in scopes {
        form.push((s, "on"));
    }
    let res = app.call("create_api_key", Some(cookie), &form).await;
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    v["secret"].as_str().unwrap().to_string()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn no_organization_reaches_another_ones_data_through_either_door(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let pw = server::seed::DEMO_PASSWORD;
    // Two operators, two customers from the demo market.
    let op_a = org(&db, "Lone Star Hash").await;
    let op_b = org(&db, "Appalachian Compute").await;
    let cu_c = org(&db, "Helix Labs").await;
    let cu_d = org(&db, "Northwind AI").await;

    // Operator B's site, pool and a blackout; customer D's reservation and API key.
    let (b_site, b_pool): (i64, i64) = sqlx::query_as(
        "select s.id, p.id from site s join capacity_pool p on p.site_id = s.id where s.operator_id = $1 order by p.id limit 1",
    )
    .bind(op_b.id)
    .fetch_one(&db)
    .await
    .unwrap();
    let start = (Utc::now() + Duration::days(300))
        .duration_trunc(Duration::hours(1))
        .unwrap();
    let b_blackout = blackouts::add(
        &db,
        op_b.id,
        b_pool,
        start,
        start + Duration::hours(4),
        BlackoutUnits::Count(1),
        "test",
    )
    .await
    .unwrap();
    let d_reservation: i64 = sqlx::query_scalar(
        "select id from reservation where customer_id = $1 and state = 'confirmed' and lower(during) > now() order by id limit 1",
    )
    .bind(cu_d.id)
    .fetch_one(&db)
    .await
    .expect("the demo market gives Northwind a future reservation");

    let app = TestApp::spawn(db.clone()).await;
    let a = app.log_in(&op_a.email, pw).await;
    let c = app.log_in(&cu_c.email, pw).await;
    let d = app.log_in(&cu_d.email, pw).await;
    let a_key = key_for(&app, &a, &["read", "operate"]).await;
    let c_key = key_for(&app, &c, &["read", "reserve"]).await;
    let d_key = key_for(&app, &d, &["read"]).await;
    let d_key_id: i64 = sqlx::query_scalar("select id from api_key where organization_id = $1")
        .bind(cu_d.id)
        .fetch_one(&db)
        .await
        .unwrap();
    let _ = d_key;

    let before = fingerprint(&db).await;
    let mut checked = 0;

    // Browser sessions: server functions.
    let id = |n: i64| n.to_string();
    for (who, cookie, function, arg, expect) in [
        ("operator A", &a, "remove_blackout", id(b_blackout), 404),
        ("customer C", &c, "remove_blackout", id(b_blackout), 403),
        ("customer C", &c, "get_reservation", id(d_reservation), 404),
        (
            "customer C",
            &c,
            "cancel_reservation",
            id(d_reservation),
            404,
        ),
        (
            "operator A",
            &a,
            "cancel_reservation",
            id(d_reservation),
            403,
        ),
        ("customer C", &c, "revoke_api_key", id(d_key_id), 404),
        ("operator A", &a, "revoke_api_key", id(d_key_id), 404),
    ] {
        let res = app.call(function, Some(cookie), &[("id", &arg)]).await;
        assert_eq!(res.status(), expect, "{who} calling {function}({arg})");
        checked += 1;
    }
    // Lists show only the caller's own objects.
    let sites: Vec<serde_json::Value> = app
        .call("operator_sites", Some(&a), &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(!sites.is_empty() && sites.iter().all(|s| s["id"] != b_site));
    let blackouts: Vec<serde_json::Value> = app
        .call("operator_blackouts", Some(&a), &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(blackouts.iter().all(|b| b["id"] != b_blackout));
    let unfiltered = [
        ("site", ""),
        ("pool", ""),
        ("state", ""),
        ("from", ""),
        ("to", ""),
    ];
    let page: serde_json::Value = app
        .call("operator_bookings", Some(&a), &unfiltered)
        .await
        .json()
        .await
        .unwrap();
    let a_sites: Vec<i64> = sites.iter().map(|s| s["id"].as_i64().unwrap()).collect();
    let bookings = page["items"].as_array().unwrap();
    assert!(bookings
        .iter()
        .all(|b| a_sites.contains(&b["site_id"].as_i64().unwrap())));
    // Filtering by another operator's site finds nothing rather than its bookings.
    let b_site_text = b_site.to_string();
    let theirs: serde_json::Value = app
        .call(
            "operator_bookings",
            Some(&a),
            &[
                ("site", b_site_text.as_str()),
                ("pool", ""),
                ("state", ""),
                ("from", ""),
                ("to", ""),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
    assert_eq!(theirs["totals"]["bookings"], 0);
    assert!(theirs["pools"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["site_id"] != b_site));
    for (function, arg) in [("load_site_overview", b_site), ("load_pool_admin", b_pool)] {
        let res = app
            .call(function, Some(&a), &[("id", &arg.to_string())])
            .await;
        assert_eq!(res.status(), 404, "operator A calling {function}({arg})");
    }
    let csv = app
        .client
        .get(app.url(&format!("/operator/bookings.csv?site={b_site}")))
        .header("cookie", &a)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(
        csv.text().await.unwrap().lines().count(),
        1,
        "only the header line"
    );
    let mine: Vec<serde_json::Value> = app
        .call("my_reservations", Some(&c), &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(!mine.is_empty() && mine.iter().all(|r| r["customer_id"] == cu_c.id));
    let keys: Vec<serde_json::Value> = app
        .call("api_keys", Some(&c), &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(keys.iter().all(|k| k["id"] != d_key_id));
    assert_eq!(
        app.call("operator_sites", Some(&c), &[]).await.status(),
        403
    );
    assert_eq!(
        app.call("my_reservations", Some(&a), &[]).await.status(),
        403
    );

    // API keys: the JSON API.
    let site = serde_json::to_value(site_input()).unwrap();
    let pool = serde_json::to_value(pool_input()).unwrap();
    let future = json!({"end": (start + Duration::days(400)).to_rfc3339()});
    let blackout = json!({"pool_id": b_pool, "start": start.to_rfc3339(),
        "end": (start + Duration::hours(2)).to_rfc3339(), "units": "all"});
    for (who, key, method, path, body, expect) in [
        (
            "operator A",
            &a_key,
            Method::GET,
            format!("/sites/{b_site}"),
            None,
            404,
        ),
        (
            "operator A",
            &a_key,
            Method::PUT,
            format!("/sites/{b_site}"),
            Some(site.clone()),
            404,
        ),
        (
            "operator A",
            &a_key,
            Method::POST,
            format!("/sites/{b_site}/pools"),
            Some(pool.clone()),
            404,
        ),
        (
            "operator A",
            &a_key,
            Method::POST,
            "/blackouts".to_string(),
            Some(blackout.clone()),
            404,
        ),
        (
            "operator A",
            &a_key,
            Method::DELETE,
            format!("/blackouts/{b_blackout}"),
            None,
            404,
        ),
        (
            "operator A",
            &a_key,
            Method::GET,
            format!("/reservations/{d_reservation}"),
            None,
            403,
        ),
        (
            "customer C",
            &c_key,
            Method::GET,
            format!("/reservations/{d_reservation}"),
            None,
            404,
        ),
        (
            "customer C",
            &c_key,
            Method::POST,
            format!("/reservations/{d_reservation}/cancel"),
            None,
            404,
        ),
        (
            "customer C",
            &c_key,
            Method::POST,
            format!("/reservations/{d_reservation}/extend"),
            Some(future.clone()),
            404,
        ),
        (
            "customer C",
            &c_key,
            Method::GET,
            format!("/sites/{b_site}"),
            None,
            403,
        ),
        (
            "customer C",
            &c_key,
            Method::PUT,
            format!("/sites/{b_site}"),
            Some(site.clone()),
            403,
        ),
        (
            "customer C",
            &c_key,
            Method::DELETE,
            format!("/blackouts/{b_blackout}"),
            None,
            403,
        ),
    ] {
        let mut req = app.api(method.clone(), &path, key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), expect, "{who}: {method} {path}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        checked += 1;
    }
    let listed: serde_json::Value = app
        .api(Method::GET, "/sites", &a_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["id"] != b_site));
    let listed: serde_json::Value = app
        .api(Method::GET, "/reservations", &c_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = listed["data"].as_array().unwrap();
    assert!(!listed.is_empty() && listed.iter().all(|r| r["customer_id"] == cu_c.id));
    let listed: serde_json::Value = app
        .api(Method::GET, "/bookings", &a_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| a_sites.contains(&b["site_id"].as_i64().unwrap())));

    assert_eq!(
        fingerprint(&db).await,
        before,
        "no foreign access changed anything"
    );
    assert!(checked >= 19);

    // The same calls on their own objects work, so the refusals above are about ownership.
    let res = app
        .api(Method::GET, &format!("/sites/{}", a_sites[0]), &a_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let d_key2 = key_for(&app, &d, &["read", "reserve"]).await;
    let res = app
        .api(
            Method::GET,
            &format!("/reservations/{d_reservation}"),
            &d_key2,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .api(
            Method::DELETE,
            &format!("/blackouts/{b_blackout}"),
            &key_for(&app, &app.log_in(&op_b.email, pw).await, &["operate"]).await,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
}
