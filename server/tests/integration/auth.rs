//! Accounts and sessions over real HTTP against the real server: sign-up, the session
//! cookie, sign-in and sign-out, expiry, password changes. Throttling, CSRF and other
//! defences are in `auth_defences`; API keys, administration and the command line in
//! `auth_keys`.

use crate::fixtures::{customer, session_count, who_am_i, PASSWORD};
use crate::helpers::{session_cookie, TestApp};
use app::services::web::CookiePolicy;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

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
