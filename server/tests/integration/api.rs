//! The JSON API over real HTTP: the OpenAPI document, bad input on every kind of route, and
//! every route doing its job for its owner. Retried, cut-off, paged and rate-limited requests
//! are in `api_requests`; webhooks in `api_webhooks`.

use crate::fixtures::{bookable, json_of, key};
use crate::helpers::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_openapi_document_describes_every_route(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (status, doc) = json_of(
        app.client
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/organization", "get"),
        ("/api/v1/pools", "get"),
        ("/api/v1/pools/{id}", "put"),
        ("/api/v1/pools/{id}/availability", "get"),
        ("/api/v1/pools/{id}/timeline", "get"),
        ("/api/v1/pools/{id}/slots", "get"),
        ("/api/v1/search", "get"),
        ("/api/v1/quotes", "post"),
        ("/api/v1/reservations", "post"),
        ("/api/v1/reservations/{id}/cancel", "post"),
        ("/api/v1/reservations/{id}/extend", "post"),
        ("/api/v1/reservations/{id}/confirm", "post"),
        ("/api/v1/holds", "post"),
        ("/api/v1/sites/{id}/pools", "post"),
        ("/api/v1/blackouts/{id}", "delete"),
        ("/api/v1/bookings", "get"),
        ("/api/v1/webhooks", "post"),
        ("/api/v1/webhooks/{id}/enable", "post"),
        ("/api/v1/webhooks/{id}/deliveries", "get"),
    ] {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        assert!(
            op["responses"]["401"].is_object(),
            "{method} {path} documents no 401"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

/// What is tried, with which key, how, and the status it must get.
type Case<'a> = (&'a str, &'a String, Method, String, Option<Value>, u16);

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn bad_input_gets_a_specific_problem_document_and_changes_nothing(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let customer = key(&app, "ml@helixlabs.example", &["read", "reserve"]).await;
    let operator = key(&app, "ops@lonestarhash.example", &["read", "operate"]).await;
    let good = bookable(&app, &customer).await;
    let before = crate::isolation::fingerprint(&db).await;

    let mut cases: Vec<Case> = Vec::new();
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let end_before_start = with("end", good["start"].clone());
    let mut swapped = good.clone();
    swapped["start"] = good["end"].clone();
    swapped["end"] = good["start"].clone();
    cases.push((
        "missing field",
        &customer,
        Method::POST,
        "/reservations".into(),
        Some(json!({"pool_id": good["pool_id"]})),
        422,
    ));
    cases.push((
        "wrong type",
        &customer,
        Method::POST,
        "/reservations".into(),
        Some(with("pool_id", json!("seven"))),
        422,
    ));
    cases.push((
        "negative units",
        &customer,
        Method::POST,
        "/reservations".into(),
        Some(with("quantity", json!({"units": -3}))),
        422,
    ));
    cases.push((
        "absurd units",
        &customer,
        Method::POST,
        "/reservations".into(),
        Some(with("quantity", json!({"units": 1_000_000_000}))),
        422,
    ));
    cases.push((
        "zero-length window",
        &customer,
        Method::POST,
        "/reservations".into(),
        Some(end_before_start),
        422,
    ));
    cases.push((
        "end before start",
        &customer,
        Method::POST,
        "/reservations".into(),
        Some(swapped),
        422,
    ));
    cases.push((
        "not on the hour",
        &customer,
        Method::POST,
        "/reservations".into(),
        Some(with("start", json!("2031-01-01T10:30:00Z"))),
        422,
    ));
    cases.push((
        "unknown pool",
        &customer,
        Method::POST,
        "/reservations".into(),
        Some(with("pool_id", json!(999_999))),
        404,
    ));
    cases.push((
        "unknown reservation",
        &customer,
        Method::POST,
        "/reservations/999999/cancel".into(),
        None,
        404,
    ));
    cases.push((
        "id not a number",
        &customer,
        Method::GET,
        "/reservations/abc".into(),
        None,
        404,
    ));
    cases.push((
        "extend to the past",
        &customer,
        Method::POST,
        "/reservations/999999/extend".into(),
        Some(json!({"end": "not a date"})),
        422,
    ));
    cases.push((
        "bad site",
        &operator,
        Method::POST,
        "/sites".into(),
        Some(json!({"name": ""})),
        422,
    ));
    cases.push((
        "negative interconnect",
        &operator,
        Method::POST,
        "/sites".into(),
        Some({
            let mut s = serde_json::to_value(crate::isolation::site_input()).unwrap();
            s["interconnect_kw"] = json!(-5);
            s
        }),
        422,
    ));
    cases.push(("blackout end before start", &operator, Method::POST, "/blackouts".into(), Some(json!({
        "pool_id": 1, "start": "2031-01-02T00:00:00Z", "end": "2031-01-01T00:00:00Z", "units": "all"})), 422));
    cases.push((
        "unknown blackout",
        &operator,
        Method::DELETE,
        "/blackouts/999999".into(),
        None,
        404,
    ));
    cases.push((
        "timeline without range",
        &customer,
        Method::GET,
        format!("/pools/{}/timeline", good["pool_id"]),
        None,
        400,
    ));
    cases.push((
        "slot with zero hours",
        &customer,
        Method::GET,
        format!("/pools/{}/slots?units=1&hours=0", good["pool_id"]),
        None,
        422,
    ));
    cases.push((
        "search with both gpus and kw",
        &customer,
        Method::GET,
        "/search?hours=24&gpus=8&kw=100".into(),
        None,
        422,
    ));
    cases.push((
        "unknown route",
        &customer,
        Method::GET,
        "/nothing-here".into(),
        None,
        404,
    ));
    cases.push((
        "wrong method",
        &customer,
        Method::DELETE,
        "/reservations".into(),
        None,
        405,
    ));

    for (what, key, method, path, body, expected) in cases {
        let mut req = app.api(method.clone(), &path, key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let problem: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "{what}: {method} {path} → {problem}");
        assert_eq!(content_type, "application/problem+json", "{what}");
        assert_eq!(problem["status"], expected, "{what}");
        assert!(
            problem["detail"].as_str().is_some_and(|d| d.len() > 10),
            "{what}: {problem}"
        );
    }
    // Not JSON at all, and oversized bodies.
    let res = app
        .api(Method::POST, "/reservations", &customer)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app
        .api(Method::POST, "/reservations", &customer)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let res = app
        .api(Method::POST, "/reservations", &customer)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"pad\": \"{}\"}}",
            "x".repeat(server::http::MAX_BODY_BYTES)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(
        crate::isolation::fingerprint(&db).await,
        before,
        "nothing changed"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn every_route_does_its_job_for_its_owner(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let operator = key(&app, "ops@lonestarhash.example", &["read", "operate"]).await;
    let customer = key(&app, "ml@helixlabs.example", &["read", "reserve"]).await;
    let call = |method: Method, path: String, key: &String, body: Option<Value>| {
        let mut req = app.api(method, &path, key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move { json_of(req.send().await.unwrap()).await }
    };

    // Operator: a site, a power pool on it, a price change, a blackout.
    let mut site = serde_json::to_value(crate::isolation::site_input()).unwrap();
    site["name"] = json!("Tour site");
    let (s, created) = call(Method::POST, "/sites".into(), &operator, Some(site.clone())).await;
    assert_eq!(s, 201, "{created}");
    let site_id = created["id"].as_i64().unwrap();
    site["pue"] = json!(1.15);
    let (s, updated) = call(
        Method::PUT,
        format!("/sites/{site_id}"),
        &operator,
        Some(site),
    )
    .await;
    assert_eq!((s, updated["pue"].as_f64()), (200, Some(1.15)));
    let (s, got) = call(Method::GET, format!("/sites/{site_id}"), &operator, None).await;
    assert_eq!((s, got["name"].as_str()), (200, Some("Tour site")));
    let mut pool = serde_json::to_value(crate::isolation::pool_input()).unwrap();
    pool["unit_count"] = json!(4);
    let (s, made) = call(
        Method::POST,
        format!("/sites/{site_id}/pools"),
        &operator,
        Some(pool.clone()),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let pool_id = made["id"].as_i64().unwrap();
    pool["price_cents"] = json!(12_345);
    let (s, _) = call(
        Method::PUT,
        format!("/pools/{pool_id}"),
        &operator,
        Some(pool.clone()),
    )
    .await;
    assert_eq!(s, 200);
    pool["unit_count"] = json!(5);
    let (s, p) = call(
        Method::PUT,
        format!("/pools/{pool_id}"),
        &operator,
        Some(pool),
    )
    .await;
    assert_eq!(
        (s, p["errors"][0]["field"].as_str()),
        (422, Some("unit_count"))
    );
    let (s, listing) = call(Method::GET, format!("/pools/{pool_id}"), &customer, None).await;
    assert_eq!((s, listing["price_cents"].as_i64()), (200, Some(12_345)));

    // Customer: availability, timeline, slot, search, quote, reserve, get, extend, cancel.
    let body = bookable(&app, &customer).await;
    let pool = body["pool_id"].as_i64().unwrap();
    let (start, end) = (
        body["start"].as_str().unwrap().to_string(),
        body["end"].as_str().unwrap().to_string(),
    );
    let (s, avail) = call(
        Method::GET,
        format!("/pools/{pool}/availability?start={start}&end={end}"),
        &customer,
        None,
    )
    .await;
    assert_eq!(s, 200, "{avail}");
    assert!(avail["free_units"].as_i64().unwrap() >= 1);
    let (s, timeline) = call(
        Method::GET,
        format!("/pools/{pool}/timeline?start={start}&end={end}"),
        &customer,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(!timeline["steps"].as_array().unwrap().is_empty());
    let (s, found) = call(
        Method::GET,
        "/search?hours=24&gpus=8&within_days=30&limit=2".into(),
        &customer,
        None,
    )
    .await;
    assert_eq!(s, 200, "{found}");
    assert!(found["data"].as_array().unwrap().len() <= 2);
    if let Some(next) = found["next_cursor"].as_str() {
        let (s, more) = call(
            Method::GET,
            format!("/search?hours=24&gpus=8&within_days=30&limit=2&cursor={next}"),
            &customer,
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_ne!(
            more["data"][0]["pool_id"], found["data"][0]["pool_id"],
            "the next page moves on"
        );
    }
    let (s, quote) = call(
        Method::POST,
        "/quotes".into(),
        &customer,
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, 200);
    let (s, r) = call(
        Method::POST,
        "/reservations".into(),
        &customer,
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(
        r["total_cents"], quote["price"]["total_cents"],
        "the quote is the price"
    );
    assert_eq!(
        r["pool_name"],
        listing_name(&app, &customer, r["pool_id"].as_i64().unwrap()).await
    );
    let id = r["id"].as_i64().unwrap();
    let (s, got) = call(Method::GET, format!("/reservations/{id}"), &customer, None).await;
    assert_eq!((s, got["id"].as_i64()), (200, Some(id)));
    let (s, _) = call(Method::POST, "/reservations".into(), &customer, Some(body)).await;
    assert!(
        s == 201 || s == 409,
        "a second booking of the same window fits or conflicts: {s}"
    );
    let new_end = (chrono::DateTime::parse_from_rfc3339(&end).unwrap()
        + chrono::Duration::hours(2))
    .to_rfc3339();
    let (s, extended) = call(
        Method::POST,
        format!("/reservations/{id}/extend"),
        &customer,
        Some(json!({"end": new_end})),
    )
    .await;
    assert!(s == 200 || s == 409, "{extended}");
    let (s, cancelled) = call(
        Method::POST,
        format!("/reservations/{id}/cancel"),
        &customer,
        None,
    )
    .await;
    assert_eq!((s, cancelled["state"].as_str()), (200, Some("cancelled")));
    let (s, again) = call(
        Method::POST,
        format!("/reservations/{id}/cancel"),
        &customer,
        None,
    )
    .await;
    assert_eq!((s, again["code"].as_str()), (409, Some("conflict")));

    // Operator again: the booking on its capacity, a blackout on its own pool.
    let (s, bookings) = call(Method::GET, "/bookings?limit=200".into(), &operator, None).await;
    assert_eq!(s, 200);
    let listed = bookings["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["id"] == id);
    let on_its_capacity = is_lone_star_site(&db, r["site_id"].as_i64().unwrap()).await;
    assert_eq!(
        listed, on_its_capacity,
        "an operator sees exactly the bookings on its sites"
    );
    let bstart = (chrono::Utc::now() + chrono::Duration::days(200))
        .format("%Y-%m-%dT%H:00:00Z")
        .to_string();
    let bend = (chrono::Utc::now() + chrono::Duration::days(201))
        .format("%Y-%m-%dT%H:00:00Z")
        .to_string();
    let wstart = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:00:00Z")
        .to_string();
    let wend = (chrono::Utc::now() + chrono::Duration::days(365))
        .format("%Y-%m-%dT%H:00:00Z")
        .to_string();
    let (s, w) = call(
        Method::POST,
        format!("/pools/{pool_id}/windows"),
        &operator,
        Some(json!({"start": wstart, "end": wend})),
    )
    .await;
    assert_eq!(s, 201, "{w}");
    let (s, overlap) = call(
        Method::POST,
        format!("/pools/{pool_id}/windows"),
        &operator,
        Some(json!({"start": wstart, "end": wend})),
    )
    .await;
    assert!(
        s == 409 || s == 422,
        "overlapping windows are refused: {overlap}"
    );
    let (s, b) = call(Method::POST, "/blackouts".into(), &operator,
        Some(json!({"pool_id": pool_id, "start": bstart, "end": bend, "units": {"count": 2}, "reason": "transformer swap"}))).await;
    assert_eq!(s, 201, "{b}");
    let bid = b["id"].as_i64().unwrap();
    let (s, list) = call(Method::GET, "/blackouts".into(), &operator, None).await;
    assert_eq!(s, 200);
    let mine = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == bid)
        .unwrap()
        .clone();
    assert_eq!(mine["units"], 2);
    let res = app
        .api(Method::DELETE, &format!("/blackouts/{bid}"), &operator)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
}

async fn is_lone_star_site(db: &PgPool, site: i64) -> bool {
    sqlx::query_scalar("select exists (select 1 from site s join organization o on o.id = s.operator_id where s.id = $1 and o.name = 'Lone Star Hash')")
        .bind(site)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn listing_name(app: &TestApp, key: &str, pool: i64) -> Value {
    let (_, listing) = json_of(
        app.api(Method::GET, &format!("/pools/{pool}"), key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    listing["pool_name"].clone()
}
