//! The HTTP surface over real TCP: health, the server-rendered market, server functions,
//! the 404 page and the headers every response carries.

use crate::helpers::TestApp;
use sqlx::PgPool;

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn healthz_is_200_with_the_database_and_503_without(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    db.close().await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn market_page_is_server_rendered_from_the_database(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let gpus: i64 = sqlx::query_scalar(
        "select sum(p.unit_count * p.gpus_per_node) from capacity_pool p join site s on s.id = p.site_id
         where p.kind = 'gpu' and p.listed and s.status = 'live'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let app = TestApp::spawn(db).await;
    let res = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let shown = app::money::group_thousands(gpus as u64);
    assert!(
        html.contains(&format!(r#"data-testid="live-gpus">{shown}<"#)),
        "the page should show {shown} GPUs"
    );
    for expected in [
        "Rockdale North",
        "ERCOT",
        "Baie-Comeau",
        "MI300X",
        "$1.99",
        "GPU-hour",
        "kW-month",
        "/pkg/rigshift.js",
    ] {
        assert!(
            html.contains(expected),
            "{expected} missing from the market page"
        );
    }
    // Sites still being built are marked, not hidden.
    assert!(html.contains("building"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn empty_market_says_so(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let html = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("No capacity is listed yet"));
    assert!(html.contains(r#"data-testid="live-gpus">0<"#));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn live_count_server_function_reads_the_current_totals(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let call = || async {
        let res = app
            .client
            .post(app.url("/api/live_count"))
            .header("origin", app.origin())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body("")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<serde_json::Value>().await.unwrap()
    };
    let before = call().await;
    assert_eq!(before["sites"], 10, "10 of the 12 demo sites are live");
    // Unlisting a pool changes the count at once.
    let unlisted: i64 = sqlx::query_scalar(
        "update capacity_pool set listed = false where name = 'Hall A — H100 cluster' returning (unit_count * gpus_per_node)::bigint",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let after = call().await;
    assert_eq!(
        after["gpus"].as_i64().unwrap(),
        before["gpus"].as_i64().unwrap() - unlisted
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn unknown_pages_get_a_styled_404_and_every_response_has_security_headers(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let res = app
        .client
        .get(app.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let headers = res.headers().clone();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(
        headers["referrer-policy"],
        "strict-origin-when-cross-origin"
    );
    let request_id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(request_id.len(), 36, "a UUID request id: {request_id}");
    let html = res.text().await.unwrap();
    assert!(html.contains("Page not found"));

    // A request id sent by a proxy is kept.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "lb-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "lb-42");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn market_page_arrives_complete_without_a_loading_placeholder(db: PgPool) {
    // People without JavaScript must get the data in the document itself, not a
    // placeholder that only a script would swap out.
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db).await;
    let html = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("Loading the market"),
        "the page streamed a placeholder"
    );
    assert!(
        !html.contains("<template"),
        "the page streamed out-of-order chunks"
    );
}
