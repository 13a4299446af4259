//! Webhooks over real HTTP: events written with the change into the outbox, signed
//! deliveries and retries, private addresses refused, and endpoints disabled after failing
//! for the whole retry period.

use crate::fixtures::{bookable, count, json_of, key, key_for_northwind};
use crate::helpers::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::{Arc, Mutex};

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
