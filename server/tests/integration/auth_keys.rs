//! API keys, the platform administrator, the administration commands and pages by role,
//! over real HTTP against the real server.

use crate::fixtures::{who_am_i, PASSWORD};
use crate::helpers::TestApp;
use app::services::accounts;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

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
