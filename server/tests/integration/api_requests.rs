//! How the JSON API treats repeated and heavy traffic, over real HTTP: idempotent creation
//! under concurrency, requests cut off by the client or the database, cursor pagination
//! under concurrent inserts, and rate limits per key.

use crate::fixtures::{
    bookable, count, json_of, key, key_for_northwind, until_someone_waits_for_a_lock,
};
use crate::helpers::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

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
    until_someone_waits_for_a_lock(&db, "the reservation never reached the database").await;
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
    until_someone_waits_for_a_lock(db, "the request never reached the database").await;
    assert_eq!(cut_off_waiting_requests(db).await, 1);
    blocker.rollback().await.unwrap();
    let res = answer.await.unwrap().unwrap();
    if res.status() == 503 {
        assert_eq!(
            res.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap()),
            Some("2"),
            "a 503 says when to retry"
        );
    }
    json_of(res).await
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
