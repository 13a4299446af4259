//! Getting back in and keeping others out: password reset by a single-use, expiring link
//! received through a real SMTP listener; email verification at sign-up; security notices;
//! two-factor authentication with TOTP and recovery codes, required of the administrator.

use crate::helpers::{enable_second_factor, link_in, session_cookie, SmtpListener, TestApp};
use app::services::accounts;
use server::mailer::Mailer;
use sqlx::PgPool;

const PW: &str = server::seed::DEMO_PASSWORD;
const NEW_PW: &str = "correct horse battery staple 2026";

async fn who_am_i(app: &TestApp, cookie: &str) -> serde_json::Value {
    let res = app.call("who_am_i", Some(cookie), &[]).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Sends what is queued and returns every message the listener holds.
async fn deliver(mailer: &Mailer, smtp: &SmtpListener) -> Vec<String> {
    mailer.round().await.unwrap();
    for _ in 0..50 {
        let m = smtp.messages();
        if !m.is_empty() {
            return m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    smtp.messages()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_forgotten_password_is_reset_by_a_mailed_single_use_link(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let smtp = SmtpListener::start().await;
    let mailer = Mailer::new(
        db.clone(),
        Some(&smtp.url()),
        "Rigshift <rigshift@localhost>",
    )
    .unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let email = "ml@helixlabs.example";
    let old_session = app.log_in(email, PW).await;

    // The same answer for an address with an account and one without.
    let known = app
        .call("request_password_reset", None, &[("email", email)])
        .await;
    let unknown = app
        .call(
            "request_password_reset",
            None,
            &[("email", "nobody@helixlabs.example")],
        )
        .await;
    assert_eq!(known.status(), 200);
    assert_eq!(unknown.status(), 200);
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());

    let mail = deliver(&mailer, &smtp).await;
    assert_eq!(
        mail.len(),
        1,
        "one message, to the account's address: {mail:?}"
    );
    assert!(
        mail[0].contains(&format!("X-RcptTo: {email}")),
        "{}",
        mail[0]
    );
    assert!(mail[0].contains("Subject: Reset your Rigshift password"));
    let link = link_in(&mail[0], "/reset?code=").expect("a reset link");
    assert!(link.starts_with(&app.origin()), "{link}");
    let token = link.split("code=").nth(1).unwrap().to_string();

    // The page opens on the link; a bad token says the link is dead.
    let page = app
        .client
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("reset-form"),
        "the form is shown at {link}: {page}"
    );
    let dead = app.page("/reset?code=0000", None).await.1;
    assert!(dead.contains("reset-dead"));

    // A weak password is refused and the link keeps working.
    let weak = [
        ("token", token.as_str()),
        ("new_password", "password1234"),
        ("confirm_password", "password1234"),
    ];
    let res = app.call("reset_password", None, &weak).await;
    assert_eq!(res.status(), 422);
    let good = [
        ("token", token.as_str()),
        ("new_password", NEW_PW),
        ("confirm_password", NEW_PW),
    ];
    let res = app.call("reset_password", None, &good).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // Once only.
    let res = app.call("reset_password", None, &good).await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("expired or was already used"));

    // The new password works, the old one not, and the old session has ended.
    assert!(who_am_i(&app, &old_session).await.is_null());
    let res = app
        .call("log_in", None, &[("email", email), ("password", PW)])
        .await;
    assert_eq!(res.status(), 401);
    let cookie = app.log_in(email, NEW_PW).await;
    assert_eq!(who_am_i(&app, &cookie).await["email"], email);

    // The owner is told.
    let mail = deliver(&mailer, &smtp).await;
    assert_eq!(mail.len(), 2);
    assert!(mail[1].contains("Subject: Security notice for your Rigshift account"));
    assert!(mail[1].contains("was reset"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn reset_links_expire_and_are_limited_per_hour(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let email = "infra@northwind.example";
    for _ in 0..5 {
        let res = app
            .call("request_password_reset", None, &[("email", email)])
            .await;
        assert_eq!(res.status(), 200);
    }
    let queued: i64 = sqlx::query_scalar("select count(*) from mail_message where to_address = $1")
        .bind(email)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(queued, 3, "three reset mails an hour at most");
    // An expired link is dead.
    sqlx::query("update account_token set created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour'")
        .execute(&db)
        .await
        .unwrap();
    let body: String = sqlx::query_scalar("select body from mail_message order by id limit 1")
        .fetch_one(&db)
        .await
        .unwrap();
    let token = link_in(&body, "/reset?code=").unwrap();
    let token = token.split("code=").nth(1).unwrap();
    let res = app
        .call(
            "reset_password",
            None,
            &[
                ("token", token),
                ("new_password", NEW_PW),
                ("confirm_password", NEW_PW),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    // Malformed addresses are a 422, not a silent success.
    let res = app
        .call(
            "request_password_reset",
            None,
            &[("email", "not an address")],
        )
        .await;
    assert_eq!(res.status(), 422);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn sign_up_mails_a_verification_link_that_verifies_the_address(db: PgPool) {
    let smtp = SmtpListener::start().await;
    let mailer = Mailer::new(
        db.clone(),
        Some(&smtp.url()),
        "Rigshift <rigshift@localhost>",
    )
    .unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let email = "ada@verify.example";
    let res = app
        .call(
            "sign_up",
            None,
            &[
                ("organization_name", "Verify <b>Labs</b>"),
                ("kind", "customer"),
                ("display_name", "Ada <script>alert(1)</script>"),
                ("email", email),
                ("password", NEW_PW),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let cookie = session_cookie(&res).unwrap();
    assert_eq!(who_am_i(&app, &cookie).await["email_verified"], false);
    let account = app.page("/account", Some(&cookie)).await.1;
    assert!(account.contains("verify-panel"));

    let mail = deliver(&mailer, &smtp).await;
    assert_eq!(mail.len(), 1);
    assert!(mail[0].contains("Subject: Confirm your email address for Rigshift"));
    // Plain text: the name is there as the person typed it, as text.
    assert!(mail[0].contains("Content-Type: text/plain"));
    let link = link_in(&mail[0], "/verify?code=").unwrap();
    let token = link.split("code=").nth(1).unwrap();
    let res = app
        .call("verify_email", Some(&cookie), &[("token", token)])
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(who_am_i(&app, &cookie).await["email_verified"], true);
    let res = app
        .call("verify_email", Some(&cookie), &[("token", token)])
        .await;
    assert_eq!(res.status(), 422, "the link works once");
    // Nothing more to verify: asking for another link says so.
    let res = app.call("resend_verification", Some(&cookie), &[]).await;
    assert_eq!(res.status(), 409);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn new_api_keys_and_password_changes_send_security_notices(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let email = "compute@parallax.example";
    let cookie = app.log_in(email, PW).await;
    let res = app
        .call(
            "create_api_key",
            Some(&cookie),
            &[("name", "<b>ci</b>"), ("read", "on")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .call(
            "change_password",
            Some(&cookie),
            &[
                ("current_password", PW),
                ("new_password", NEW_PW),
                ("confirm_password", NEW_PW),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let bodies: Vec<String> = sqlx::query_scalar(
        "select body from mail_message where to_address = $1 and subject like 'Security notice%' order by id",
    )
    .bind(email)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(
        bodies[0].contains(r#"A new API key, "<b>ci</b>""#),
        "{}",
        bodies[0]
    );
    assert!(bodies[1].contains("password of your Rigshift account was changed"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn two_factor_sign_in_takes_a_fresh_code_or_a_recovery_code_once(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let email = "infra@northwind.example";
    let cookie = app.log_in(email, PW).await;

    // Set up: a secret, confirmed with a code from it; ten recovery codes, once.
    assert_eq!(
        app.call("begin_second_factor", Some(&cookie), &[])
            .await
            .status(),
        200
    );
    let status: serde_json::Value = app
        .call("second_factor_status", Some(&cookie), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["enabled"], false);
    assert!(status["pending"]["uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/Rigshift:"));
    let pending: Vec<String> =
        serde_json::from_value(status["pending"]["recovery_codes"].clone()).unwrap();
    assert_eq!(
        pending.len(),
        10,
        "shown before it is turned on (no JavaScript needed)"
    );
    let secret: Vec<u8> = sqlx::query_scalar("select totp_secret from app_user where email = $1")
        .bind(email)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        status["pending"]["secret"],
        app::services::second_factor::base32(&secret)
    );
    let res = app
        .call(
            "confirm_second_factor",
            Some(&cookie),
            &[("code", "000000")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let code = app::services::second_factor::code_at(&secret, chrono::Utc::now());
    let res = app
        .call("confirm_second_factor", Some(&cookie), &[("code", &code)])
        .await;
    assert_eq!(res.status(), 200);
    let recovery: Vec<String> = res.json().await.unwrap();
    assert_eq!(
        recovery, pending,
        "the codes shown during setup are the ones that work"
    );
    let stored: Option<Vec<String>> =
        sqlx::query_scalar("select totp_pending_codes from app_user where email = $1")
            .bind(email)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(stored, None, "only hashes are kept once it is on");
    assert_eq!(who_am_i(&app, &cookie).await["second_factor"], true);

    // The password alone no longer signs in.
    let res = app
        .call("log_in", None, &[("email", email), ("password", PW)])
        .await;
    assert_eq!(res.status(), 200);
    assert!(session_cookie(&res).is_none());
    let to = res.headers()["location"].to_str().unwrap().to_string();
    let challenge = to
        .split("challenge=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let wrong = app
        .call(
            "log_in_code",
            None,
            &[("challenge", &challenge), ("code", "123456")],
        )
        .await;
    assert_eq!(wrong.status(), 422);
    assert!(session_cookie(&wrong).is_none());
    // The code used to turn it on was used: it does not sign in again.
    let replay = app
        .call(
            "log_in_code",
            None,
            &[("challenge", &challenge), ("code", &code)],
        )
        .await;
    assert_eq!(replay.status(), 422);
    // A recovery code does, once.
    let ok = app
        .call(
            "log_in_code",
            None,
            &[("challenge", &challenge), ("code", &recovery[0])],
        )
        .await;
    assert_eq!(ok.status(), 200);
    assert!(session_cookie(&ok).is_some());
    let res = app
        .call("log_in", None, &[("email", email), ("password", PW)])
        .await;
    let to = res.headers()["location"].to_str().unwrap().to_string();
    let challenge = to
        .split("challenge=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let again = app
        .call(
            "log_in_code",
            None,
            &[("challenge", &challenge), ("code", &recovery[0])],
        )
        .await;
    assert_eq!(again.status(), 422);
    // Five wrong codes end the challenge.
    for _ in 0..4 {
        app.call(
            "log_in_code",
            None,
            &[("challenge", &challenge), ("code", "999999")],
        )
        .await;
    }
    let fresh = app::services::second_factor::code_at(
        &secret,
        chrono::Utc::now() + chrono::Duration::seconds(30),
    );
    let res = app
        .call(
            "log_in_code",
            None,
            &[("challenge", &challenge), ("code", &fresh)],
        )
        .await;
    assert_eq!(res.status(), 401, "the sign-in starts over");

    // Turning it off takes the password and a code.
    let res = app
        .call(
            "disable_second_factor",
            Some(&cookie),
            &[("current_password", "wrong password!!"), ("code", &fresh)],
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .call(
            "disable_second_factor",
            Some(&cookie),
            &[("current_password", PW), ("code", &recovery[1])],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(who_am_i(&app, &cookie).await["second_factor"], false);
    let notices: i64 = sqlx::query_scalar(
        "select count(*) from mail_message where to_address = $1 and body like '%Two-factor authentication was turned%'",
    )
    .bind(email)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(notices, 2, "on and off");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_administrator_must_use_a_second_factor(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let org = accounts::create_organization(&db, "Rigshift Platform", "customer")
        .await
        .unwrap();
    let email = "admin@rigshift.example";
    accounts::create_user(&db, org, email, "Admin", NEW_PW, true)
        .await
        .unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let cookie = app.log_in(email, NEW_PW).await;
    let res = app.call("admin_organizations", Some(&cookie), &[]).await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("second factor"));
    let account = app.page("/account", Some(&cookie)).await.1;
    assert!(account.contains("admin-needs-2fa"));

    let secret = enable_second_factor(&db, email).await;
    let cookie = app.log_in_with_code(email, NEW_PW, &secret).await;
    let res = app.call("admin_organizations", Some(&cookie), &[]).await;
    assert_eq!(res.status(), 200);
    // And it cannot be turned off.
    let code = app::services::second_factor::code_at(
        &secret,
        chrono::Utc::now() + chrono::Duration::seconds(30),
    );
    let res = app
        .call(
            "disable_second_factor",
            Some(&cookie),
            &[("current_password", NEW_PW), ("code", &code)],
        )
        .await;
    assert_eq!(res.status(), 403);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_outbox_keeps_mail_without_smtp_and_the_page_shows_it(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let mailer = Mailer::new(db.clone(), None, "Rigshift <rigshift@localhost>").unwrap();
    let app = TestApp::spawn(db.clone()).await;
    app.call(
        "request_password_reset",
        None,
        &[("email", "ml@helixlabs.example")],
    )
    .await;
    assert_eq!(mailer.round().await.unwrap(), 1);
    let page = app.page("/developers/mail", None).await.1;
    assert!(page.contains("Reset your Rigshift password"));
    assert!(page.contains("/reset?code="));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn without_javascript_a_refused_form_comes_back_to_its_page_with_the_error(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let res = app
        .plain_form(
            "request_password_reset",
            None,
            Some("/forgot?from=login"),
            &[("email", "not an address")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/forgot?from=login&form_error="), "{to}");
    let page = app.page(&to, None).await.1;
    assert!(
        page.contains(r#"data-testid="form-error""#),
        "the error is on the page"
    );
    assert!(page.contains("forgot-form"), "and so is the form");
    // A good address: the page that says the mail is on its way.
    let res = app
        .plain_form(
            "request_password_reset",
            None,
            Some("/forgot"),
            &[("email", "someone@example.com")],
        )
        .await;
    assert!(res.status().is_redirection());
    assert_eq!(res.headers()["location"], "/forgot?sent=1");
    let page = app.page("/forgot?sent=1", None).await.1;
    assert!(page.contains("reset-sent"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_plain_form_that_succeeds_comes_back_to_its_page_with_its_confirmation(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db).await;
    let cookie = app.log_in("ml@helixlabs.example", PW).await;
    // Sent from a page that still shows an earlier refusal: the refusal goes, the
    // confirmation comes, and the page's own query stays.
    let res = app
        .plain_form(
            "change_password",
            Some(&cookie),
            Some("/account?tab=1&form_error=too+short"),
            &[
                ("current_password", PW),
                ("new_password", NEW_PW),
                ("confirm_password", NEW_PW),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(to, "/account?tab=1&form_done=%2Fapi%2Fchange_password");
    let page = app.page(&to, Some(&cookie)).await.1;
    assert!(
        page.contains("Password changed."),
        "the form's confirmation shows"
    );
    assert!(!page.contains("too short"), "the earlier refusal is gone");
    // Another form's confirmation is not this one's.
    let page = app
        .page("/account?form_done=%2Fapi%2Frevoke_api_key", Some(&cookie))
        .await
        .1;
    assert!(!page.contains("Password changed."));
    assert!(page.contains("Key revoked"));
    // A server function that sends the visitor elsewhere keeps its own place.
    let res = app
        .plain_form("log_out", Some(&cookie), Some("/account"), &[])
        .await;
    assert!(res.status().is_redirection());
    assert_eq!(res.headers()["location"], "/");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_secret_shown_once_is_not_made_by_a_plain_form_that_would_lose_it(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let cookie = app.log_in("ml@helixlabs.example", PW).await;
    let keys = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from api_key")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    let before = keys().await;
    let res = app
        .plain_form(
            "create_api_key",
            Some(&cookie),
            Some("/account"),
            &[("name", "no-js"), ("read", "on")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    let page = app.page(&to, Some(&cookie)).await.1;
    assert!(page.contains("which needs JavaScript"), "{to}");
    assert_eq!(keys().await, before, "no key nobody could use");
    // The page's island asks for JSON and gets the secret.
    let res = app
        .call(
            "create_api_key",
            Some(&cookie),
            &[("name", "js"), ("read", "on")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(keys().await, before + 1);
    // The same for a webhook endpoint's signing secret; the page that lists them still
    // renders (the refusal is the creating function's alone).
    let hooks = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from webhook_endpoint")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    let hooks_before = hooks().await;
    let res = app
        .plain_form(
            "create_webhook",
            Some(&cookie),
            Some("/webhooks"),
            &[("url", "https://example.com/hook")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    let (status, page) = app.page(&to, Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(page.contains("which needs JavaScript"), "{to}");
    assert_eq!(hooks().await, hooks_before);
    // As a browser asks for a page (`Accept: text/html`, like a plain form's post).
    let res = app
        .client
        .get(app.url("/webhooks"))
        .header("cookie", &cookie)
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(!page.contains("needs JavaScript"), "listing is not refused");
    assert!(page.contains("no-webhooks") || page.contains("webhook-table"));
}
