//! Running Rigshift: liveness apart from readiness, readiness that turns 503 as a server
//! shuts down, Prometheus metrics, and brotli beside gzip.

use crate::helpers::{database_url, free_port, TestApp};
use reqwest::Method;
use sqlx::PgPool;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn readiness_turns_503_while_draining_and_liveness_does_not(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let status = |path: &'static str| {
        let app = &app;
        async move {
            app.client
                .get(app.url(path))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("/livez").await, 200);
    assert_eq!(status("/readyz").await, 200);
    app.ops.start_draining();
    assert_eq!(status("/readyz").await, 503);
    assert_eq!(status("/livez").await, 200);
    // Still serving while it drains.
    assert_eq!(status("/healthz").await, 200);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_server_process_is_unready_through_its_shutdown_grace(db: PgPool) {
    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("serve")
        .env("DATABASE_URL", database_url(&db))
        .env("RIGSHIFT_LISTEN", format!("127.0.0.1:{port}"))
        .env("RIGSHIFT_SEED", "never")
        .env("RIGSHIFT_SHUTDOWN_GRACE_SECS", "3")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(res) = reqwest::get(&url).await {
            if res.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the server never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let signalled = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap()
        .success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), 503, "unready once the signal arrived");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "draining");
    let stopped = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(30),
            "did not stop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(stopped.success(), "{stopped}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(3),
        "served through the grace period"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn metrics_count_requests_by_route_and_show_the_queues(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    for path in ["/healthz", "/healthz", "/pools/1", "/no/such/page"] {
        app.client.get(app.url(path)).send().await.unwrap();
    }
    let cookie = app
        .log_in("ml@helixlabs.example", server::seed::DEMO_PASSWORD)
        .await;
    let res = app
        .call(
            "create_api_key",
            Some(&cookie),
            &[("name", "m"), ("read", "on")],
        )
        .await;
    let key: serde_json::Value = res.json().await.unwrap();
    let key = key["secret"].as_str().unwrap();
    app.api(Method::GET, "/reservations/999999", key)
        .send()
        .await
        .unwrap();
    sqlx::query(
        "insert into idempotency_key (organization_id, key, request_hash, state)
         select id, 'k1', decode(repeat('00', 32), 'hex'), 'running' from organization limit 1",
    )
    .execute(&db)
    .await
    .unwrap();

    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    for line in [
        r#"rigshift_http_requests_total{route="/healthz",method="GET",status="200"} 2"#,
        r#"rigshift_http_requests_total{route="/pools/{id}",method="GET",status="200"} 1"#,
        r#"rigshift_http_requests_total{route="/api/v1/reservations/{id}",method="GET",status="404"} 1"#,
        r#"rigshift_http_request_duration_seconds_bucket{route="/healthz",method="GET",status="200",le="+Inf"} 2"#,
        "rigshift_idempotency_keys_running 1",
        "rigshift_webhook_deliveries_pending 0",
        "rigshift_up 1",
        "rigshift_draining 0",
        r#"rigshift_job_interval_seconds{job="webhooks"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
    assert!(text.contains("rigshift_db_pool_connections "));
    assert!(text.contains(r#"rigshift_job_seconds_since_round{job="ledger_recognition"} "#));
    // Unmatched paths share one label, so a scanner cannot grow the series without bound.
    assert!(
        text.contains(r#"route="unmatched""#) || text.contains(r#"route="/{*"#),
        "{text}"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn pages_come_in_brotli_or_gzip_as_the_client_asks(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db).await;
    for (accept, want) in [("br", "br"), ("gzip", "gzip")] {
        let res = app
            .client
            .get(app.url("/"))
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-encoding"], want, "{accept}");
    }
}
