//! The JSON API over real HTTP: the OpenAPI document, idempotent creation under concurrency,
//! cursor pagination under concurrent inserts, rate limits, webhooks (outbox, signature,
//! retries) and bad input on every kind of route.

use crate::helpers::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::{Arc, Mutex};

const PW: &str = server::seed::DEMO_PASSWORD;

/// A key for a demo organization, made through the browser's door.
async fn key(app: &TestApp, email: &str, scopes: &[&str]) -> String {
    let cookie = app.log_in(email, PW).await;
    let mut form = vec![("name", "api-test")];
    for s in scopes {
        form.push((s, "on"));
    }
    let res = app.call("create_api_key", Some(&cookie), &form).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    v["secret"].as_str().unwrap().to_string()
}

async fn json_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A request that fits: the earliest 4-hour slot for one node of the first GPU pool.
async fn bookable(app: &TestApp, key: &str) -> Value {
    let (_, pools) = json_of(
        app.api(Method::GET, "/pools?limit=200", key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let pool = pools["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "gpu" && p["site_live"] == true)
        .unwrap()["pool_id"]
        .as_i64()
        .unwrap();
    let (status, slot) = json_of(
        app.api(
            Method::GET,
            &format!("/pools/{pool}/slots?units=1&hours=24&within_days=365"),
            key,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{slot}");
    json!({"pool_id": pool, "quantity": {"units": 1}, "start": slot["start"], "end": slot["end"]})
}

async fn count(db: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
        .fetch_one(db)
        .await
        .unwrap()
}

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

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn twenty_concurrent_posts_with_one_idempotency_key_make_one_reservation(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let key = key(&app, "ml@helixlabs.example", &["read", "reserve"]).await;
    let body = bookable(&app, &key).await;
    let before = count(&db, "reservation").await;

    let posts = (0..20).map(|_| {
        let req = app
            .api(Method::POST, "/reservations", &key)
            .header("idempotency-key", "order-7f3a")
            .json(&body);
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    });
    let answers = futures::future::join_all(posts).await;
    assert_eq!(
        count(&db, "reservation").await,
        before + 1,
        "exactly one reservation"
    );
    let created: Vec<&String> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert!(!created.is_empty());
    assert!(
        created.iter().all(|b| *b == created[0]),
        "every completed answer is identical"
    );
    assert!(
        answers.iter().all(|(s, _)| *s == 201 || *s == 409),
        "the rest were told to wait: {:?}",
        answers.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );

    // A later retry replays the first answer.
    let res = app
        .api(Method::POST, "/reservations", &key)
        .header("idempotency-key", "order-7f3a")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(&res.text().await.unwrap(), created[0]);
    // The same key with another body is refused, and nothing is created.
    let mut other = body.clone();
    other["quantity"] = json!({"units": 2});
    let (status, problem) = json_of(
        app.api(Method::POST, "/reservations", &key)
            .header("idempotency-key", "order-7f3a")
            .json(&other)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(problem["code"], "idempotency-key-reused");
    assert_eq!(count(&db, "reservation").await, before + 1);
    // Keys are per organization: another customer may use the same string.
    let other_key = key_for_northwind(&app).await;
    let res = app
        .api(Method::POST, "/quotes", &other_key)
        .header("idempotency-key", "order-7f3a")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// A client that hangs up while its reservation waits in the database: the request still
/// runs to its end, its answer is recorded for the key (a retry replays it instead of
/// getting 409 for a day), and no connection is left inside a transaction.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_client_that_hangs_up_mid_reservation_still_gets_its_answer_kept(db: PgPool) {
    use tokio::io::AsyncWriteExt;
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let key = key(&app, "ml@helixlabs.example", &["read", "reserve"]).await;
    let body = bookable(&app, &key).await.to_string();

    // Hold off every new reservation until this transaction ends.
    let mut blocker = db.begin().await.unwrap();
    sqlx::query("lock table reservation in share mode")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let mut client = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "POST /api/v1/reservations HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\n\
         Idempotency-Key: hang-up-1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        app.addr,
        body.len()
    );
    client.write_all(request.as_bytes()).await.unwrap();
    // The booking is waiting for the lock; now the client goes away.
    let waiting = poll(|| async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from pg_stat_activity
             where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(&db)
        .await
        .unwrap()
            > 0
    })
    .await;
    assert!(waiting, "the reservation never reached the database");
    drop(client);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    blocker.rollback().await.unwrap();

    let recorded = poll(|| async {
        sqlx::query_scalar::<_, String>("select state from idempotency_key where key = 'hang-up-1'")
            .fetch_one(&db)
            .await
            .unwrap()
            == "done"
    })
    .await;
    assert!(
        recorded,
        "the key was left running after the client hung up"
    );
    let (status, kept): (i16, Vec<u8>) =
        sqlx::query_as("select status, body from idempotency_key where key = 'hang-up-1'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(status, 201);
    let kept: Value = serde_json::from_slice(&kept).unwrap();
    let id = kept["id"].as_i64().unwrap();
    let (state, allocated): (String, i64) = sqlx::query_as(
        "select r.state, (select count(*) from allocation a where a.reservation_id = r.id)
         from reservation r where r.id = $1",
    )
    .bind(id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((state.as_str(), allocated), ("confirmed", 1));

    // The retry gets that answer; nothing was left open.
    let res = app
        .api(Method::POST, "/reservations", &key)
        .header("idempotency-key", "hang-up-1")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let replayed: Value = res.json().await.unwrap();
    assert_eq!(replayed["id"], id);
    let open: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_activity
         where datname = current_database() and state like 'idle in transaction%'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(open, 0, "a connection was left inside a transaction");
}

/// Sends `request` while `table` is locked and, once it waits for that lock, ends its
/// database session as a database shutdown or a broken connection would; its answer.
async fn cut_off_mid_request(
    db: &PgPool,
    table: &str,
    request: reqwest::RequestBuilder,
) -> (u16, Value) {
    let mut blocker = db.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "lock table {table} in share mode"
    )))
    .execute(&mut *blocker)
    .await
    .unwrap();
    let answer = tokio::spawn(request.send());
    assert!(
        some_request_waits_for_a_lock(db).await,
        "the request never reached the database"
    );
    assert_eq!(cut_off_waiting_requests(db).await, 1);
    blocker.rollback().await.unwrap();
    json_of(answer.await.unwrap().unwrap()).await
}

/// Ends the database session of every request now waiting for a lock, as a database
/// shutdown or a broken connection would, and says how many there were.
async fn cut_off_waiting_requests(db: &PgPool) -> i64 {
    sqlx::query_scalar(
        "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock') t",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

async fn some_request_waits_for_a_lock(db: &PgPool) -> bool {
    poll(|| async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from pg_stat_activity
             where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(db)
        .await
        .unwrap()
            > 0
    })
    .await
}

/// A keyed reservation whose database session is cut off mid-booking answers 503, and the
/// key is released: a keyed booking finds its own earlier commit, so its retry may run and
/// makes exactly one reservation.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_keyed_reservation_cut_off_by_the_database_is_retried_once(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let key = key(&app, "ml@helixlabs.example", &["read", "reserve"]).await;
    let body = bookable(&app, &key).await;
    let before = count(&db, "reservation").await;

    let (status, problem) = cut_off_mid_request(
        &db,
        "reservation",
        app.api(Method::POST, "/reservations", &key)
            .header("idempotency-key", "cut-off-1")
            .json(&body),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("unavailable"))
    );
    assert_eq!(
        count(&db, "reservation").await,
        before,
        "the cut-off booking rolled back"
    );

    let retry = || {
        app.api(Method::POST, "/reservations", &key)
            .header("idempotency-key", "cut-off-1")
            .json(&body)
            .send()
    };
    let (status, made) = json_of(retry().await.unwrap()).await;
    assert_eq!(status, 201, "{made}");
    let (status, again) = json_of(retry().await.unwrap()).await;
    assert_eq!((status, &again["id"]), (201, &made["id"]));
    assert_eq!(count(&db, "reservation").await, before + 1);
    let stored: Option<String> =
        sqlx::query_scalar("select request_key from reservation where id = $1")
            .bind(made["id"].as_i64().unwrap())
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(stored.as_deref(), Some("cut-off-1"));
}

/// Two bookings with one key racing past the idempotency layer make one reservation, and
/// both get it (one of them through the unique key meeting the other's commit); a third
/// finds it before booking.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn one_request_key_books_one_reservation_even_in_a_race(db: PgPool) {
    use app::services::reservations;
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let key = key(&app, "ml@helixlabs.example", &["read", "reserve"]).await;
    let req: app::booking::BookingRequest =
        serde_json::from_value(bookable(&app, &key).await).unwrap();
    let customer: i64 = sqlx::query_scalar("select id from organization where name = 'Helix Labs'")
        .fetch_one(&db)
        .await
        .unwrap();
    let before = count(&db, "reservation").await;
    let now = chrono::Utc::now();
    let (a, b) = tokio::join!(
        reservations::reserve_once(&db, customer, &req, "race-1", 0, now),
        reservations::reserve_once(&db, customer, &req, "race-1", 0, now),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.id, b.id);
    assert_eq!(count(&db, "reservation").await, before + 1);
    let again = reservations::reserve_once(&db, customer, &req, "race-1", 0, now)
        .await
        .unwrap();
    assert_eq!(again.id, a.id);
    assert_eq!(count(&db, "reservation").await, before + 1);
}

/// Any other keyed request cut off after it reached the database may have taken effect: its
/// key ends `unknown` and a retry is told to look rather than being run a second time.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn another_keyed_request_cut_off_by_the_database_is_not_run_twice(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let operator = key(&app, "ops@lonestarhash.example", &["read", "operate"]).await;
    let site = serde_json::to_value(crate::isolation::site_input()).unwrap();
    let before = count(&db, "site").await;

    let (status, _) = cut_off_mid_request(
        &db,
        "site",
        app.api(Method::POST, "/sites", &operator)
            .header("idempotency-key", "site-1")
            .json(&site),
    )
    .await;
    assert_eq!(status, 503);
    let state: String =
        sqlx::query_scalar("select state from idempotency_key where key = 'site-1'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(state, "unknown");
    let (status, problem) = json_of(
        app.api(Method::POST, "/sites", &operator)
            .header("idempotency-key", "site-1")
            .json(&site)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("idempotency-outcome-unknown"))
    );
    assert!(problem["detail"].as_str().unwrap().contains("new key"));
    assert_eq!(count(&db, "site").await, before);
}

/// Whether `check` turns true within five seconds.
async fn poll<F, Fut>(check: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

async fn key_for_northwind(app: &TestApp) -> String {
    key(app, "infra@northwind.example", &["read", "reserve"]).await
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn cursor_pages_stay_stable_while_rows_are_inserted(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let key = key(&app, "ops@lonestarhash.example", &["read", "operate"]).await;
    // Ten more sites for this operator.
    let mut site = serde_json::to_value(crate::isolation::site_input()).unwrap();
    for i in 0..10 {
        site["name"] = json!(format!("Paging site {i}"));
        let res = app
            .api(Method::POST, "/sites", &key)
            .json(&site)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let all: Vec<i64> = sqlx::query_scalar("select id from site where operator_id = (select id from organization where name = 'Lone Star Hash') order by id desc")
        .fetch_all(&db)
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/sites?limit=3&cursor={c}"),
            None => "/sites?limit=3".to_string(),
        };
        let (status, page) = json_of(app.api(Method::GET, &path, &key).send().await.unwrap()).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_i64().unwrap()),
        );
        pages += 1;
        // Someone lists another site between pages: it must not shift what follows.
        site["name"] = json!(format!("Inserted meanwhile {pages}"));
        app.api(Method::POST, "/sites", &key)
            .json(&site)
            .send()
            .await
            .unwrap();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, all, "every site once, in order, none of the new ones");

    for bad in [
        "/sites?limit=0",
        "/sites?limit=201",
        "/sites?cursor=nonsense",
        "/sites?limit=abc",
    ] {
        let (status, problem) =
            json_of(app.api(Method::GET, bad, &key).send().await.unwrap()).await;
        assert!(status == 400 || status == 422, "{bad}: {status}");
        assert!(problem["detail"].as_str().is_some(), "{bad}: {problem}");
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn each_key_gets_its_rate_and_then_429_with_retry_after(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let security = server::http::Security {
        api_rate_per_minute: 5,
        ..Default::default()
    };
    let app = TestApp::spawn_with(db, security).await;
    let a = key(&app, "ml@helixlabs.example", &["read"]).await;
    let b = key(&app, "infra@northwind.example", &["read"]).await;
    let header = |res: &reqwest::Response, name: &str| -> i64 {
        res.headers()[name].to_str().unwrap().parse().unwrap()
    };
    let mut statuses = Vec::new();
    let mut remaining = Vec::new();
    for _ in 0..6 {
        let res = app
            .api(Method::GET, "/organization", &a)
            .send()
            .await
            .unwrap();
        // Every answer tells where the key stands in its minute.
        assert_eq!(header(&res, "ratelimit-limit"), 5);
        assert!((1..=60).contains(&header(&res, "ratelimit-reset")));
        assert_eq!(res.headers()["ratelimit-policy"], "5;w=60");
        remaining.push(header(&res, "ratelimit-remaining"));
        statuses.push(res.status().as_u16());
    }
    // Counting down to zero (a new minute may start the count again once).
    assert!(remaining.contains(&0), "{remaining:?}");
    assert!(
        remaining.windows(2).filter(|w| w[1] > w[0]).count() <= 1,
        "{remaining:?}"
    );
    // The minute may roll over mid-loop; at most one fresh window.
    assert!(statuses.contains(&429), "{statuses:?}");
    let res = loop {
        let res = app
            .api(Method::GET, "/organization", &a)
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            break res;
        }
    };
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    // Another key is counted separately.
    assert_eq!(
        app.api(Method::GET, "/organization", &b)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// A webhook receiver on a local port that records what it gets and answers `status`.
async fn receiver(status: u16) -> (String, Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((headers, body));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn webhooks_deliver_signed_events_written_with_the_change_and_retry_failures(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let security = server::http::Security {
        allow_private_webhooks: true,
        ..Default::default()
    };
    let app = TestApp::spawn_with(db.clone(), security).await;
    let key = key(&app, "ml@helixlabs.example", &["read", "reserve"]).await;
    let (good_url, got) = receiver(200).await;
    let (bad_url, bad_got) = receiver(500).await;
    let mut secrets = Vec::new();
    for url in [&good_url, &bad_url] {
        let (status, made) = json_of(
            app.api(Method::POST, "/webhooks", &key)
                .json(&json!({"url": url, "events": ["reservation.created", "reservation.cancelled"]}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{made}");
        secrets.push(made["secret"].as_str().unwrap().to_string());
    }
    // Events already in the outbox (the demo data) are not for endpoints made later.
    let worker = server::delivery::Worker::new(db.clone(), true);
    worker.round().await.unwrap();
    assert!(got.lock().unwrap().is_empty());

    let body = bookable(&app, &key).await;
    let (status, r) = json_of(
        app.api(Method::POST, "/reservations", &key)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    // The event was written by the same transaction as the reservation.
    let events: i64 = sqlx::query_scalar(
        "select count(*) from event_outbox where kind = 'reservation.created' and (payload->>'reservation_id')::bigint = $1",
    )
    .bind(r["id"].as_i64().unwrap())
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(events, 2, "one for the customer, one for the operator");

    assert_eq!(worker.round().await.unwrap(), 2);
    let received = got.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (headers, payload) = &received[0];
    let event: Value = serde_json::from_str(payload).unwrap();
    assert_eq!(event["type"], "reservation.created");
    assert_eq!(event["data"]["reservation_id"], r["id"]);
    assert_eq!(headers["rigshift-event"], "reservation.created");
    // Signed as Standard Webhooks says: the stock verifier accepts it with the secret shown
    // at registration, and refuses it with another secret or another body.
    assert!(secrets[0].starts_with("whsec_"));
    let verifier = standardwebhooks::Webhook::new(&secrets[0]).unwrap();
    verifier.verify(payload.as_bytes(), headers).unwrap();
    assert!(verifier.verify(b"{}", headers).is_err());
    let other = standardwebhooks::Webhook::new(&secrets[1]).unwrap();
    assert!(other.verify(payload.as_bytes(), headers).is_err());
    assert_eq!(
        headers["webhook-id"],
        format!("msg_{}", headers["rigshift-delivery"].to_str().unwrap())
    );
    let t: i64 = headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((chrono::Utc::now().timestamp() - t).abs() < 60);
    // New endpoints get only the standard headers.
    assert!(headers.get("rigshift-signature").is_none());
    assert_eq!(bad_got.lock().unwrap().len(), 1);

    // Listed with their attempts: delivered, and pending with a retry scheduled.
    let ids: Vec<i64> = sqlx::query_scalar("select id from webhook_endpoint order by id")
        .fetch_all(&db)
        .await
        .unwrap();
    let (_, page) = json_of(
        app.api(
            Method::GET,
            &format!("/webhooks/{}/deliveries", ids[0]),
            &key,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(page["data"][0]["status"], "delivered");
    assert_eq!(page["data"][0]["attempt_log"][0]["status"], 200);
    let (_, page) = json_of(
        app.api(
            Method::GET,
            &format!("/webhooks/{}/deliveries", ids[1]),
            &key,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let failing = &page["data"][0];
    assert_eq!(failing["status"], "pending");
    assert_eq!(failing["attempts"], 1);
    assert_eq!(failing["attempt_log"][0]["status"], 500);
    let next: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(failing["next_attempt_at"].clone()).unwrap();
    assert!(
        next > chrono::Utc::now() + chrono::Duration::seconds(20),
        "backs off ~30 s"
    );

    // Not due yet: nothing is sent; once due, it is retried.
    assert_eq!(worker.round().await.unwrap(), 0);
    sqlx::query("update webhook_delivery set next_attempt_at = now() where delivered_at is null")
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(worker.round().await.unwrap(), 1);
    assert_eq!(bad_got.lock().unwrap().len(), 2);
    let attempts: i32 =
        sqlx::query_scalar("select attempts from webhook_delivery where delivered_at is null")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(attempts, 2);

    // Another organization can't see these endpoints.
    let other = key_for_northwind(&app).await;
    let res = app
        .api(
            Method::GET,
            &format!("/webhooks/{}/deliveries", ids[0]),
            &other,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn webhooks_refuse_private_addresses_unless_allowed(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let key = key(&app, "ml@helixlabs.example", &["read", "reserve"]).await;
    for (url, events) in [
        ("http://example.com/hook", json!(["reservation.created"])),
        ("ftp://example.com", json!(["reservation.created"])),
        (
            "https://user:pw@example.com/",
            json!(["reservation.created"]),
        ),
        ("https://example.com/hook", json!([])),
        ("https://example.com/hook", json!(["everything"])),
    ] {
        let res = app
            .api(Method::POST, "/webhooks", &key)
            .json(&json!({"url": url, "events": events}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{url} {events}");
    }
    assert_eq!(count(&db, "webhook_endpoint").await, 0);
    // Private, loopback, link-local, reserved and embedded-private addresses, written in
    // every form a URL parser accepts, and a name that resolves to loopback: all refused at
    // registration with a 422 naming the address.
    for url in [
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://169.254.169.254/latest",
        "https://10.0.0.1/",
        "https://0x7f000001/",
        "https://2130706433/",
        "https://0.0.0.0/",
        "https://198.18.0.1/",
        "https://224.0.0.1/",
        "https://240.0.0.1/",
        "https://[64:ff9b::a00:1]/",
        "https://[2002:a00:1::]/",
        "https://[::ffff:192.168.0.1]/",
        "https://localhost:8443/hook",
    ] {
        let (status, problem) = json_of(
            app.api(Method::POST, "/webhooks", &key)
                .json(&json!({"url": url, "events": ["reservation.created"]}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 422, "{url}: {problem}");
        let message = problem["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("private or reserved"), "{url}: {problem}");
    }
    assert_eq!(count(&db, "webhook_endpoint").await, 0);

    // The worker checks the addresses it connects to: endpoints that point at private
    // addresses now (a name whose address changed since it was registered, a literal
    // address from before this check) are never contacted.
    let org: i64 = sqlx::query_scalar(
        "select organization_id from app_user where email = 'ml@helixlabs.example'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    for url in ["https://localhost:9/hook", "https://[::ffff:7f00:1]:9/hook"] {
        sqlx::query(
            "insert into webhook_endpoint (organization_id, url, secret, events) values ($1, $2, $3, '{reservation.created}')",
        )
        .bind(org)
        .bind(url)
        .bind(format!("whsec_{}", "a".repeat(32)))
        .execute(&db)
        .await
        .unwrap();
    }
    let body = bookable(&app, &key).await;
    app.api(Method::POST, "/reservations", &key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let worker = server::delivery::Worker::new(db.clone(), false);
    worker.round().await.unwrap();
    let errors: Vec<String> =
        sqlx::query_scalar("select last_error from webhook_delivery order by endpoint_id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(errors.len(), 2);
    for error in errors {
        assert!(error.contains("private or reserved"), "{error}");
    }
    let delivered: i64 =
        sqlx::query_scalar("select count(*) from webhook_delivery where delivered_at is not null")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(delivered, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_endpoint_failing_for_the_whole_retry_period_is_disabled_until_enabled(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let security = server::http::Security {
        allow_private_webhooks: true,
        ..Default::default()
    };
    let app = TestApp::spawn_with(db.clone(), security).await;
    let owner = key(&app, "ml@helixlabs.example", &["read", "reserve"]).await;
    let other = key(&app, "infra@northwind.example", &["read", "reserve"]).await;
    let (url, got) = receiver(503).await;
    let (status, made) = json_of(
        app.api(Method::POST, "/webhooks", &owner)
            .json(&json!({"url": url, "events": ["reservation.created"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["webhook"]["id"].as_i64().unwrap();
    assert!(made["webhook"]["disabled_at"].is_null());
    let body = bookable(&app, &owner).await;
    app.api(Method::POST, "/reservations", &owner)
        .json(&body)
        .send()
        .await
        .unwrap();
    let worker = server::delivery::Worker::new(db.clone(), true);
    worker.round().await.unwrap();
    assert_eq!(got.lock().unwrap().len(), 1);
    // Three days of retries later: the last attempt fails too.
    sqlx::query("update webhook_delivery set attempts = $1 - 1, next_attempt_at = now()")
        .bind(server::delivery::MAX_ATTEMPTS)
        .execute(&db)
        .await
        .unwrap();
    worker.round().await.unwrap();
    assert_eq!(got.lock().unwrap().len(), 2);
    let (_, list) = json_of(
        app.api(Method::GET, "/webhooks", &owner)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let hook = &list["data"][0];
    assert!(hook["disabled_at"].is_string(), "{list}");
    let reason = hook["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("503"), "{reason}");
    // The organization's owner is told by mail.
    let told: String = sqlx::query_scalar(
        "select body from mail_message where subject = 'A Rigshift webhook endpoint was disabled'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(told.contains(&url) && told.contains("/webhooks"), "{told}");

    // Disabled: new events are not sent to it, and nothing is attempted.
    app.api(Method::POST, "/reservations", &owner)
        .json(&bookable(&app, &owner).await)
        .send()
        .await
        .unwrap();
    sqlx::query("update webhook_delivery set next_attempt_at = now()")
        .execute(&db)
        .await
        .unwrap();
    worker.round().await.unwrap();
    assert_eq!(got.lock().unwrap().len(), 2);
    assert_eq!(count(&db, "webhook_delivery").await, 1);

    // Another organization cannot enable it; its owner can, and the delivery goes again.
    let res = app
        .api(Method::POST, &format!("/webhooks/{id}/enable"), &other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .api(Method::POST, &format!("/webhooks/{id}/enable"), &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    worker.round().await.unwrap();
    assert_eq!(got.lock().unwrap().len(), 3);
    let (_, list) = json_of(
        app.api(Method::GET, "/webhooks", &owner)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(list["data"][0]["disabled_at"].is_null());
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
