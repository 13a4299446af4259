//! Accounts, sessions, CSRF, throttling and API keys, over real HTTP against the real server.

use crate::helpers::{session_cookie, TestApp};
use app::services::{accounts, web::CookiePolicy};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::time::Instant;

const PASSWORD: &str = "granite orchard 4 lanterns";

/// A customer organization with one person; returns the user id.
async fn customer(db: &PgPool, org: &str, email: &str) -> i64 {
    let org = accounts::create_organization(db, org, "customer")
        .await
        .unwrap();
    accounts::create_user(db, org, email, "Test Person", PASSWORD, false)
        .await
        .unwrap()
}

async fn who_am_i(app: &TestApp, cookie: &str) -> serde_json::Value {
    let res = app.call("who_am_i", Some(cookie), &[]).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn session_count(db: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from session")
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn sign_up_starts_a_session_with_a_safe_cookie_and_an_argon2id_hash(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let res = app
        .call(
            "sign_up",
            None,
            &[
                ("organization_name", "Quarry Labs"),
                ("kind", "both"),
                ("display_name", "Ada Quarry"),
                ("email", " Ada@Quarry.Example "),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(flag), "{flag} missing in {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP by default");
    let cookie = session_cookie(&res).unwrap();
    let secret = cookie.split_once('=').unwrap().1;
    assert_eq!(secret.len(), 64, "256 random bits, hex");

    // Only a digest of the session id is stored.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select id_hash from session")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(stored, vec![Sha256::digest(secret.as_bytes()).to_vec()]);

    let me = who_am_i(&app, &cookie).await;
    assert_eq!(me["email"], "ada@quarry.example");
    let people: serde_json::Value = app
        .call("members", Some(&cookie), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(people[0]["email"], "ada@quarry.example");
    assert_eq!(
        people[0]["role"], "owner",
        "the person who signs up owns the organization"
    );
    assert_eq!(me["kind"], "both");
    assert_eq!(me["organization_name"], "Quarry Labs");

    let phc: String = sqlx::query_scalar("select password_hash from app_user")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(!phc.contains(PASSWORD));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn sign_up_refuses_weak_passwords_and_taken_emails_and_changes_nothing(db: PgPool) {
    customer(&db, "Existing", "taken@x.example").await;
    let app = TestApp::spawn(db.clone()).await;
    let attempt = |email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.call(
                "sign_up",
                None,
                &[
                    ("organization_name", "New Org"),
                    ("kind", "customer"),
                    ("display_name", "N"),
                    ("email", email),
                    ("password", password),
                ],
            )
            .await
        }
    };
    let res = attempt("new@x.example", "short").await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("at least 12 characters"));
    let res = attempt("new@x.example", "password1234").await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("most common"));
    let res = attempt("taken@x.example", PASSWORD).await;
    assert_eq!(res.status(), 422);
    assert!(session_cookie(&res).is_none());
    assert!(res.text().await.unwrap().contains("already exists"));
    let orgs: i64 = sqlx::query_scalar("select count(*) from organization")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(orgs, 1, "a failed sign-up leaves no organization behind");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn https_setting_gives_the_cookie_its_host_prefix_and_secure_flag(db: PgPool) {
    customer(&db, "Acme", "a@acme.example").await;
    let security = server::http::Security {
        cookies: CookiePolicy {
            secure: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let app = TestApp::spawn_with(db, security).await;
    let res = app
        .call(
            "log_in",
            None,
            &[("email", "a@acme.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 200);
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set_cookie.starts_with("__Host-rigshift_session="),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("; Secure") && set_cookie.contains("HttpOnly"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn sign_in_rotates_the_session_and_sign_out_ends_it_on_the_server(db: PgPool) {
    customer(&db, "Acme", "a@acme.example").await;
    let app = TestApp::spawn(db.clone()).await;
    let first = app.log_in("a@acme.example", PASSWORD).await;
    assert_eq!(who_am_i(&app, &first).await["email"], "a@acme.example");

    // Signing in again with the old cookie gives a new id and ends the old session.
    let res = app
        .call(
            "log_in",
            Some(&first),
            &[("email", "a@acme.example"), ("password", PASSWORD)],
        )
        .await;
    let second = session_cookie(&res).unwrap();
    assert_ne!(first, second);
    assert!(who_am_i(&app, &first).await.is_null(), "the old id is dead");
    assert_eq!(session_count(&db).await, 1);

    let res = app.call("log_out", Some(&second), &[]).await;
    assert_eq!(res.status(), 200);
    let cleared = res.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(
        session_count(&db).await,
        0,
        "logout deletes the session row"
    );
    // A copy of the cookie kept by an attacker is worth nothing now.
    assert!(who_am_i(&app, &second).await.is_null());
    let res = app.call("api_keys", Some(&second), &[]).await;
    assert_eq!(res.status(), 401);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn sessions_expire_when_idle_and_at_their_absolute_limit(db: PgPool) {
    customer(&db, "Acme", "a@acme.example").await;
    let app = TestApp::spawn(db.clone()).await;
    let idle = app.log_in("a@acme.example", PASSWORD).await;
    let old = app.log_in("a@acme.example", PASSWORD).await;
    let hash = |c: &str| Sha256::digest(c.split_once('=').unwrap().1.as_bytes()).to_vec();
    sqlx::query("update session set last_seen_at = now() - interval '13 hours' where id_hash = $1")
        .bind(hash(&idle))
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("update session set expires_at = now() - interval '1 second' where id_hash = $1")
        .bind(hash(&old))
        .execute(&db)
        .await
        .unwrap();
    assert!(
        who_am_i(&app, &idle).await.is_null(),
        "12 hours idle ends a session"
    );
    assert!(
        who_am_i(&app, &old).await.is_null(),
        "the absolute expiry ends it"
    );
    let fresh = app.log_in("a@acme.example", PASSWORD).await;
    assert!(!who_am_i(&app, &fresh).await.is_null());
}

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
async fn change_password_needs_the_current_one_and_signs_out_other_sessions(db: PgPool) {
    customer(&db, "Acme", "a@acme.example").await;
    let app = TestApp::spawn(db.clone()).await;
    let here = app.log_in("a@acme.example", PASSWORD).await;
    let elsewhere = app.log_in("a@acme.example", PASSWORD).await;
    let new = "teal harbor 9 bicycles";
    let res = app
        .call(
            "change_password",
            Some(&here),
            &[
                ("current_password", "not it at all!"),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .call(
            "change_password",
            Some(&here),
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(!who_am_i(&app, &here).await.is_null(), "this session stays");
    assert!(who_am_i(&app, &elsewhere).await.is_null(), "the others end");
    assert_eq!(
        app.call(
            "log_in",
            None,
            &[("email", "a@acme.example"), ("password", PASSWORD)]
        )
        .await
        .status(),
        401
    );
    app.log_in("a@acme.example", new).await;
}

async fn create_key(app: &TestApp, cookie: &str, form: &[(&str, &str)]) -> serde_json::Value {
    let res = app.call("create_api_key", Some(cookie), form).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn api_keys_are_shown_once_stored_hashed_scoped_and_revocable(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let cookie = app
        .log_in("ml@helixlabs.example", server::seed::DEMO_PASSWORD)
        .await;
    let made = create_key(
        &app,
        &cookie,
        &[
            ("name", "scheduler"),
            ("read", "on"),
            ("expires_in_days", "30"),
        ],
    )
    .await;
    let secret = made["secret"].as_str().unwrap().to_string();
    let prefix = made["key"]["prefix"].as_str().unwrap().to_string();
    assert!(
        secret.starts_with(&format!("{prefix}_")),
        "{secret} / {prefix}"
    );
    assert!(secret.len() > 70);

    // The database holds the public prefix and a SHA-256, never the key.
    let row: (String, Vec<u8>, Vec<String>) =
        sqlx::query_as("select prefix, secret_hash, scopes from api_key")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(format!("rsk_{}", row.0), prefix);
    assert_eq!(row.1, Sha256::digest(secret.as_bytes()).to_vec());
    assert_eq!(row.2, vec!["read".to_string()]);
    let dump: String = sqlx::query_scalar("select string_agg(t::text, ' ') from api_key t")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(
        !dump.contains(&secret[prefix.len() + 1..]),
        "the secret is not stored"
    );

    // Listing never shows the secret again.
    let listed = app
        .call("api_keys", Some(&cookie), &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(listed.contains(&prefix) && !listed.contains(&secret));

    // The key works, and records its use.
    let res = app
        .api(reqwest::Method::GET, "/organization", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let org: serde_json::Value = res.json().await.unwrap();
    assert_eq!(org["name"], "Helix Labs");
    assert_eq!(org["scopes"], serde_json::json!(["read"]));
    let used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select last_used_at from api_key")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(used.is_some());

    // A read key can't reserve (403, nothing created).
    let before: i64 = sqlx::query_scalar("select count(*) from reservation")
        .fetch_one(&db)
        .await
        .unwrap();
    let res = app
        .api(reqwest::Method::POST, "/reservations", &secret)
        .json(&serde_json::json!({"pool_id": 1, "quantity": {"units": 1},
            "start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let problem: serde_json::Value = res.json().await.unwrap();
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("`reserve` scope"));
    let after: i64 = sqlx::query_scalar("select count(*) from reservation")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(before, after);

    // Keys never travel in URLs: refused even when valid.
    let res = app
        .client
        .get(app.url(&format!("/api/v1/organization?api_key={secret}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Revoked: 401 with a problem document that says so.
    let id = made["key"]["id"].as_i64().unwrap().to_string();
    assert_eq!(
        app.call("revoke_api_key", Some(&cookie), &[("id", &id)])
            .await
            .status(),
        200
    );
    let res = app
        .api(reqwest::Method::GET, "/organization", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(res.headers().contains_key("www-authenticate"));
    assert!(res.text().await.unwrap().contains("revoked"));

    // An expired key stops working too.
    let made = create_key(&app, &cookie, &[("name", "short-lived"), ("read", "on")]).await;
    sqlx::query("update api_key set expires_at = now() - interval '1 minute' where id = $1")
        .bind(made["key"]["id"].as_i64().unwrap())
        .execute(&db)
        .await
        .unwrap();
    let res = app
        .api(
            reqwest::Method::GET,
            "/organization",
            made["secret"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Garbage and missing keys: 401, never 500.
    for bad in ["rsk_nope", "rsk_aaaaaaaaaa_deadbeef", "", "Basic abc"] {
        let res = app
            .api(reqwest::Method::GET, "/organization", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{bad}");
    }
    let res = app
        .client
        .get(app.url("/api/v1/organization"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn keys_get_only_the_scopes_their_organization_may_hold(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let customer = app
        .log_in("ml@helixlabs.example", server::seed::DEMO_PASSWORD)
        .await;
    let res = app
        .call(
            "create_api_key",
            Some(&customer),
            &[("name", "x"), ("operate", "on")],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("operator organizations"));
    let res = app
        .call("create_api_key", Some(&customer), &[("name", "x")])
        .await;
    assert_eq!(res.status(), 422, "no scope at all");
    let count: i64 = sqlx::query_scalar("select count(*) from api_key")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_platform_administrator_sees_every_organization_and_suspends_one(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let org = accounts::create_organization(&db, "Rigshift Platform", "customer")
        .await
        .unwrap();
    accounts::create_user(&db, org, "admin@rigshift.example", "Admin", PASSWORD, true)
        .await
        .unwrap();
    // Only one administrator.
    let second = accounts::create_user(
        &db,
        org,
        "admin2@rigshift.example",
        "Admin 2",
        PASSWORD,
        true,
    )
    .await;
    assert_eq!(second.unwrap_err().status(), 409);

    let app = TestApp::spawn(db.clone()).await;
    let secret = crate::helpers::enable_second_factor(&db, "admin@rigshift.example").await;
    let admin = app
        .log_in_with_code("admin@rigshift.example", PASSWORD, &secret)
        .await;
    let customer = app
        .log_in("ml@helixlabs.example", server::seed::DEMO_PASSWORD)
        .await;
    let key = create_key(&app, &customer, &[("name", "k"), ("read", "on")]).await;
    let key = key["secret"].as_str().unwrap().to_string();

    // Everyone else: the admin pages don't exist.
    assert_eq!(
        app.call("admin_organizations", Some(&customer), &[])
            .await
            .status(),
        404
    );
    let res = app
        .client
        .get(app.url("/admin"))
        .header("cookie", &customer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let res = app.call("admin_organizations", Some(&admin), &[]).await;
    assert_eq!(res.status(), 200);
    let orgs: Vec<serde_json::Value> = res.json().await.unwrap();
    assert_eq!(orgs.len(), 10);
    let helix = orgs.iter().find(|o| o["name"] == "Helix Labs").unwrap()["id"]
        .as_i64()
        .unwrap();

    let id = helix.to_string();
    let res = app
        .call(
            "set_suspended",
            Some(&admin),
            &[("organization_id", &id), ("suspend", "true")],
        )
        .await;
    assert_eq!(res.status(), 200);
    // Its people are signed out and can't sign in; its keys stop working.
    assert!(who_am_i(&app, &customer).await.is_null());
    let res = app
        .call(
            "log_in",
            None,
            &[
                ("email", "ml@helixlabs.example"),
                ("password", server::seed::DEMO_PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("suspended"));
    let res = app
        .api(reqwest::Method::GET, "/organization", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Reinstated: back in.
    let res = app
        .call(
            "set_suspended",
            Some(&admin),
            &[("organization_id", &id), ("suspend", "false")],
        )
        .await;
    assert_eq!(res.status(), 200);
    app.log_in("ml@helixlabs.example", server::seed::DEMO_PASSWORD)
        .await;
    let res = app
        .api(reqwest::Method::GET, "/organization", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
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

/// The administration commands of the server binary, against this test's database.
fn admin_command(db_url: &str, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn command_line_creates_organizations_people_and_keys(db: PgPool) {
    let url = crate::helpers::database_url(&db);
    let run = |args: &[&str], stdin: &str| {
        let out = admin_command(&url, args, stdin);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };

    let (ok, out, err) = run(
        &["create-org", "--name", "Cli Compute", "--kind", "operator"],
        "",
    );
    assert!(ok, "{err}");
    let org: String = out
        .trim()
        .strip_prefix("created organization ")
        .and_then(|s| s.split(':').next())
        .unwrap()
        .to_string();

    let (ok, _, err) = run(
        &[
            "create-user",
            "--org",
            &org,
            "--email",
            "ops@cli.example",
            "--name",
            "Ops",
        ],
        "short\n",
    );
    assert!(!ok && err.contains("12 characters"), "{err}");
    let (ok, out, err) = run(
        &[
            "create-user",
            "--org",
            &org,
            "--email",
            "ops@cli.example",
            "--name",
            "Ops",
            "--platform-admin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("ops@cli.example") && out.contains("platform administrator"),
        "{out}"
    );

    let (ok, _, err) = run(
        &[
            "create-key",
            "--org",
            &org,
            "--name",
            "inv",
            "--scopes",
            "read,admin",
        ],
        "",
    );
    assert!(!ok && err.contains("unknown scope `admin`"), "{err}");
    let (ok, out, err) = run(
        &[
            "create-key",
            "--org",
            &org,
            "--name",
            "inventory",
            "--scopes",
            "read,operate",
        ],
        "",
    );
    assert!(ok, "{err}");
    let key = out.trim().to_string();
    assert!(key.starts_with("rsk_") && err.contains("shown once"));

    let app = TestApp::spawn(db.clone()).await;
    let res = app
        .api(reqwest::Method::GET, "/organization", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["name"], "Cli Compute");
    assert_eq!(body["scopes"], serde_json::json!(["read", "operate"]));
    let cookie = app.log_in("ops@cli.example", PASSWORD).await;
    assert_eq!(who_am_i(&app, &cookie).await["platform_admin"], true);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn private_pages_answer_by_role_401_403_or_200(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db).await;
    let page = |path: &'static str, cookie: Option<String>| {
        let app = &app;
        async move {
            let mut req = app.client.get(app.url(path));
            if let Some(c) = cookie {
                req = req.header("cookie", c);
            }
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let (status, html) = page("/operator", None).await;
    assert_eq!(status, 401);
    assert!(html.contains("Please sign in"));
    let customer = app
        .log_in("ml@helixlabs.example", server::seed::DEMO_PASSWORD)
        .await;
    let operator = app
        .log_in("ops@lonestarhash.example", server::seed::DEMO_PASSWORD)
        .await;
    let (status, html) = page("/operator", Some(customer.clone())).await;
    assert_eq!(status, 403);
    assert!(
        !html.contains("Rockdale North"),
        "no operator data for a customer"
    );
    let (status, html) = page("/operator", Some(operator.clone())).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Rockdale North") && !html.contains("Boden"),
        "only its own sites"
    );
    assert_eq!(page("/reservations", Some(operator)).await.0, 403);
    let (status, html) = page("/reservations", Some(customer)).await;
    assert_eq!(status, 200);
    assert!(html.contains("reservation-table"));
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
async fn control_characters_in_account_fields_are_a_422_not_a_database_error(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let res = app
        .call(
            "sign_up",
            None,
            &[
                ("organization_name", "Nul\u{0}Org"),
                ("kind", "customer"),
                ("display_name", "N"),
                ("email", "nul@x.example"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("control characters"));
    let res = app
        .call(
            "log_in",
            None,
            &[("email", "a\u{0}@x.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 401);
}
