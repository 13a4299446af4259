//! Defences of the sign-in and the browser's door, over real HTTP: answers and timing that
//! don't tell which emails exist, cross-site requests refused, throttling per account and per
//! address (also against parallel guesses), content security policy and body limits.

use crate::fixtures::{customer, session_count, PASSWORD};
use crate::helpers::{session_cookie, TestApp};
use sqlx::PgPool;
use std::time::Instant;

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn unknown_email_and_wrong_password_get_the_same_answer_in_comparable_time(db: PgPool) {
    customer(&db, "Acme", "a@acme.example").await;
    let app = TestApp::spawn(db.clone()).await;
    async fn timed(app: &TestApp, email: &str) -> (u16, String, f64) {
        let t = Instant::now();
        let res = app
            .call(
                "log_in",
                None,
                &[("email", email), ("password", "not the password at all")],
            )
            .await;
        let status = res.status().as_u16();
        (status, res.text().await.unwrap(), t.elapsed().as_secs_f64())
    }
    // Warm the decoy hash, then compare medians.
    timed(&app, "warm@nowhere.example").await;
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for i in 0..3 {
        let (s1, b1, t1) = timed(&app, &format!("nobody{i}@nowhere.example")).await;
        let (s2, b2, t2) = timed(&app, "a@acme.example").await;
        assert_eq!((s1, s2), (401, 401));
        assert_eq!(b1, b2, "the answers must not tell which emails exist");
        unknown.push(t1);
        wrong.push(t2);
    }
    unknown.sort_by(f64::total_cmp);
    wrong.sort_by(f64::total_cmp);
    // Both paths verify one argon2id hash; without the decoy an unknown email would answer
    // in a fraction of the time.
    assert!(
        unknown[1] > wrong[1] * 0.4,
        "unknown email {:.1} ms vs wrong password {:.1} ms",
        unknown[1] * 1e3,
        wrong[1] * 1e3
    );
    sqlx::query("delete from login_throttle")
        .execute(&db)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn cross_site_state_changes_are_refused_and_change_nothing(db: PgPool) {
    customer(&db, "Acme", "a@acme.example").await;
    let app = TestApp::spawn(db.clone()).await;
    let cookie = app.log_in("a@acme.example", PASSWORD).await;
    let post = |headers: Vec<(&'static str, &'static str)>| {
        let mut req = app
            .client
            .post(app.url("/api/create_api_key"))
            .header("cookie", cookie.clone())
            .form(&[("name", "planted"), ("read", "on")]);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![],
    ] {
        let res = post(headers.clone()).await.unwrap();
        assert_eq!(res.status(), 403, "{headers:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["code"], "cross-site-request");
    }
    // A log-out forged from another site is refused too.
    let res = app
        .client
        .post(app.url("/api/log_out"))
        .header("cookie", cookie.clone())
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let keys: i64 = sqlx::query_scalar("select count(*) from api_key")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(keys, 0);
    assert_eq!(session_count(&db).await, 1);

    // The same request from our own page works.
    let res = post(vec![("sec-fetch-site", "same-origin")]).await.unwrap();
    assert_eq!(res.status(), 200);
    // And GET never changes anything: server functions that change state refuse it.
    let res = app
        .client
        .get(app.url("/api/log_out"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    assert_eq!(session_count(&db).await, 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn repeated_failures_are_throttled_with_retry_after_and_the_lock_ends(db: PgPool) {
    customer(&db, "Acme", "a@acme.example").await;
    let app = TestApp::spawn(db.clone()).await;
    let try_password = |pw: &'static str| {
        let app = &app;
        async move {
            app.call(
                "log_in",
                None,
                &[("email", "a@acme.example"), ("password", pw)],
            )
            .await
        }
    };
    for _ in 0..5 {
        assert_eq!(try_password("wrong password, again").await.status(), 401);
    }
    let res = try_password("wrong password, again").await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "first lock is a minute: {retry}");
    let body = res.text().await.unwrap();
    assert!(body.contains("Too many attempts; wait"), "{body}");
    // Even the right password waits while the lock holds...
    let res = try_password(PASSWORD).await;
    assert_eq!(res.status(), 429);
    assert!(session_cookie(&res).is_none());

    // ...but the lock ends: the owner gets in afterwards, and the count starts over.
    sqlx::query("update login_throttle set locked_until = now() - interval '1 second'")
        .execute(&db)
        .await
        .unwrap();
    let res = try_password(PASSWORD).await;
    assert_eq!(res.status(), 200);
    let left: i64 =
        sqlx::query_scalar("select count(*) from login_throttle where key like 'account:%'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(
        left, 0,
        "a successful sign-in clears the account's failures"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn throttling_also_counts_per_client_address(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    // Many accounts from one address: the address limit (30) trips even though no single
    // account reached its own.
    for i in 0..30 {
        let email = format!("guess{i}@x.example");
        let res = app
            .call(
                "log_in",
                None,
                &[("email", &email), ("password", "wrong password, again")],
            )
            .await;
        assert_eq!(res.status(), 401);
    }
    let res = app
        .call(
            "log_in",
            None,
            &[
                ("email", "another@x.example"),
                ("password", "wrong password, again"),
            ],
        )
        .await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn parallel_guesses_get_no_more_tries_than_sequential_ones(db: PgPool) {
    customer(&db, "Acme", "a@acme.example").await;
    let app = TestApp::spawn(db.clone()).await;
    let guesses = (0..20).map(|i| {
        let app = &app;
        async move {
            let pw = format!("wrong guess number {i}");
            app.call(
                "log_in",
                None,
                &[("email", "a@acme.example"), ("password", &pw)],
            )
            .await
            .status()
            .as_u16()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, 20, "{statuses:?}");
    assert!(
        checked <= 5,
        "only 5 passwords may be tried, {checked} were: {statuses:?}"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn pages_carry_a_nonce_csp_and_other_responses_a_deny_all_policy(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let res = app.client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let html = res.text().await.unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("a nonce in the policy");
    assert!(nonce.len() >= 22, "at least 128 bits");
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "inline scripts carry the nonce"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    // A new nonce per response.
    let again = app.client.get(app.url("/login")).send().await.unwrap();
    assert_ne!(
        again.headers()["content-security-policy"].to_str().unwrap(),
        csp
    );

    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(res.headers().contains_key("referrer-policy"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn oversized_bodies_are_refused_with_413(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let big = "x".repeat(server::http::MAX_BODY_BYTES + 1);
    let res = app
        .client
        .post(app.url("/api/v1/quotes"))
        .bearer_auth("rsk_aaaaaaaaaa_x")
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    // Refused from its declared length, before anything else reads it.
    assert_eq!(res.status(), 413);
    let res = app
        .client
        .post(app.url("/api/log_in"))
        .header("origin", app.origin())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email=a%40b.co&password={big}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}
