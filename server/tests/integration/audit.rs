//! The audit trail: each change records who made it (a person by name, an integration by
//! key), in the same transaction; each organization reads its own trail through either
//! door, the administrator reads everyone's; PostgreSQL refuses to change the record.

use crate::browser_forms::free_window;
use crate::helpers::{enable_second_factor, TestApp};
use app::services::accounts;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

const PW: &str = server::seed::DEMO_PASSWORD;

async fn trail(app: &TestApp, key: &str) -> Vec<Value> {
    let res = app
        .api(Method::GET, "/audit-events?limit=200", key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    page["data"].as_array().unwrap().clone()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn changes_record_who_made_them_and_the_record_cannot_change(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let cookie = app.log_in("ml@helixlabs.example", PW).await;
    let made = app
        .call(
            "create_api_key",
            Some(&cookie),
            &[("name", "scheduler"), ("read", "on"), ("reserve", "on")],
        )
        .await;
    let made: Value = made.json().await.unwrap();
    let key = made["secret"].as_str().unwrap().to_string();
    let prefix = made["key"]["prefix"].as_str().unwrap().to_string();

    // A booking by the person in the browser, another by the key over the API.
    let (pool, start, hours) = free_window(&db).await;
    let (pool_s, hours_s) = (pool.to_string(), hours.to_string());
    let res = app
        .call(
            "reserve",
            Some(&cookie),
            &[
                ("review[pool_id]", &pool_s),
                ("review[quantity]", "units:1"),
                ("review[start]", &start),
                ("review[hours]", &hours_s),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let by_person: Value = res.json().await.unwrap();
    let (pool2, start2, _) = free_window(&db).await;
    let start2: chrono::DateTime<chrono::Utc> = start2.parse().unwrap();
    let res = app
        .api(Method::POST, "/reservations", &key)
        .json(&json!({"pool_id": pool2, "quantity": {"units": 1}, "start": start2, "end": start2 + chrono::Duration::hours(24)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let by_key: Value = res.json().await.unwrap();
    let res = app
        .api(
            Method::POST,
            &format!("/reservations/{}/cancel", by_key["id"]),
            &key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let events = trail(&app, &key).await;
    let find = |action: &str, id: &Value| {
        events
            .iter()
            .find(|e| e["action"] == action && e["object_id"] == *id)
            .unwrap_or_else(|| panic!("{action} {id} in {events:#?}"))
            .clone()
    };
    let person = find("reservation.created", &by_person["id"]);
    assert!(
        person["actor"]
            .as_str()
            .unwrap()
            .ends_with("<ml@helixlabs.example>"),
        "{person}"
    );
    assert_eq!(person["detail"]["units"], 1);
    let integration = find("reservation.created", &by_key["id"]);
    assert_eq!(
        integration["actor"],
        format!("API key {prefix} (scheduler)")
    );
    let cancelled = find("reservation.cancelled", &by_key["id"]);
    assert_eq!(cancelled["actor"], format!("API key {prefix} (scheduler)"));
    assert!(cancelled["detail"]["refund_cents"].is_i64());
    let key_made = find("api_key.created", &made["key"]["id"]);
    assert_eq!(key_made["detail"]["name"], "scheduler");
    assert_eq!(
        events[0]["id"].as_i64().unwrap(),
        events
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .max()
            .unwrap(),
        "newest first"
    );

    // A refused booking leaves no event.
    let before = events.len();
    let res = app
        .api(Method::POST, "/reservations", &key)
        .json(&json!({"pool_id": pool2, "quantity": {"units": 100000}, "start": start2, "end": start2 + chrono::Duration::hours(24)}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    assert_eq!(trail(&app, &key).await.len(), before);

    // Another organization sees none of it, through either door.
    let other = app.log_in("infra@northwind.example", PW).await;
    let theirs: Vec<Value> = app
        .call("audit_events", Some(&other), &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(
        theirs
            .iter()
            .all(|e| e["organization_id"] != by_person["customer_id"]),
        "{theirs:?}"
    );
    let mine: Vec<Value> = app
        .call("audit_events", Some(&cookie), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine.len(), before);

    // The administrator sees everyone's.
    let org = accounts::create_organization(&db, "Rigshift Platform", "customer")
        .await
        .unwrap();
    accounts::create_user(
        &db,
        org,
        "admin@rigshift.example",
        "Admin",
        "violet kettle orbit 2026",
        true,
    )
    .await
    .unwrap();
    let secret = enable_second_factor(&db, "admin@rigshift.example").await;
    let admin = app
        .log_in_with_code(
            "admin@rigshift.example",
            "violet kettle orbit 2026",
            &secret,
        )
        .await;
    let all: Vec<Value> = app
        .call("admin_audit_events", Some(&admin), &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(all.iter().any(|e| e["object_id"] == by_person["id"]));
    assert_eq!(
        app.call("admin_audit_events", Some(&cookie), &[])
            .await
            .status(),
        404
    );

    // Append-only, whatever writes.
    let changed = sqlx::query("update audit_event set action = 'reservation.forgotten'")
        .execute(&db)
        .await;
    let err = changed.unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|d| d.constraint()),
        Some("audit_event_append_only")
    );
    assert!(sqlx::query("delete from audit_event")
        .execute(&db)
        .await
        .is_err());
}

/// An `inventory` key with `read` and `operate` for the signed-in operator; the answer
/// that shows it once.
async fn operator_key(app: &TestApp, cookie: &str) -> Value {
    app.call(
        "create_api_key",
        Some(cookie),
        &[("name", "inventory"), ("read", "on"), ("operate", "on")],
    )
    .await
    .json()
    .await
    .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn operators_changes_to_capacity_are_on_their_trail(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let cookie = app.log_in("ops@lonestarhash.example", PW).await;
    let made = operator_key(&app, &cookie).await;
    let key = made["secret"].as_str().unwrap();
    let site = serde_json::to_value(crate::isolation::site_input()).unwrap();
    let res = app
        .api(Method::POST, "/sites", key)
        .json(&site)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let site: Value = res.json().await.unwrap();
    let res = app
        .api(Method::POST, &format!("/sites/{}/pools", site["id"]), key)
        .json(&crate::isolation::pool_input())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let pool: Value = res.json().await.unwrap();
    let res = app
        .call(
            "revoke_api_key",
            Some(&cookie),
            &[("id", &made["key"]["id"].to_string())],
        )
        .await;
    assert_eq!(res.status(), 200);
    let org: i64 = sqlx::query_scalar(
        "select organization_id from app_user where email = 'ops@lonestarhash.example'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let actions: Vec<(String, String)> = sqlx::query_as(
        "select action, actor_label from audit_event where organization_id = $1 order by id",
    )
    .bind(org)
    .fetch_all(&db)
    .await
    .unwrap();
    let expected_key = format!(
        "API key {} (inventory)",
        made["key"]["prefix"].as_str().unwrap()
    );
    assert!(
        actions.contains(&("site.created".into(), expected_key.clone())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("pool.created".into(), expected_key)),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|(a, who)| a == "api_key.revoked" && who.ends_with("<ops@lonestarhash.example>")),
        "{actions:?}"
    );
    assert!(pool["id"].is_i64(), "{pool}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_api_lists_a_pool_with_its_sale_window_in_one_step(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let cookie = app.log_in("ops@lonestarhash.example", PW).await;
    let made = operator_key(&app, &cookie).await;
    let key = made["secret"].as_str().unwrap();
    let site: i64 = sqlx::query_scalar(
        "select s.id from site s join app_user u on u.organization_id = s.operator_id where u.email = 'ops@lonestarhash.example' order by s.id limit 1",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let pools = |db: PgPool| async move {
        sqlx::query_scalar::<_, i64>("select count(*) from capacity_pool")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    let before = pools(db.clone()).await;
    let mut body = serde_json::to_value(crate::isolation::pool_input()).unwrap();
    // A window that ends before it starts: refused, and no pool is left without it.
    body["on_sale"] = json!({"start": "2031-02-01T00:00:00Z", "end": "2031-01-01T00:00:00Z"});
    let res = app
        .api(Method::POST, &format!("/sites/{site}/pools"), key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(pools(db.clone()).await, before);
    body["on_sale"] = json!({"start": "2031-01-01T00:00:00Z", "end": "2031-02-01T00:00:00Z"});
    let res = app
        .api(Method::POST, &format!("/sites/{site}/pools"), key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let windows: i64 = sqlx::query_scalar(
        "select count(*) from availability_window where pool_id = $1 and during = tstzrange('2031-01-01T00:00:00Z', '2031-02-01T00:00:00Z')",
    )
    .bind(id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(windows, 1);
}
