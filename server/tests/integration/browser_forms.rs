//! The browser's forms that move money (reserve, extend, cancel) are idempotent: each carries
//! a key rendered into the page, so a resubmitted form (a double click, a reload, the back
//! button) does its thing once and shows the same result.

use crate::helpers::TestApp;
use sqlx::PgPool;

const PW: &str = server::seed::DEMO_PASSWORD;

/// A GPU pool of a live site and the earliest 24-hour window one node is free in it.
pub async fn free_window(db: &PgPool) -> (i64, String, i64) {
    let pool: i64 = sqlx::query_scalar(
        r#"select p.id from capacity_pool p join site s on s.id = p.site_id
           where p.kind = 'gpu' and s.status = 'live' and p.min_lead_hours <= 48
             and p.min_term_hours <= 24 and p.max_term_hours >= 24
           order by p.id limit 1"#,
    )
    .fetch_one(db)
    .await
    .unwrap();
    let start: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        r#"select s from generate_series(date_trunc('hour', now()) + interval '3 days',
                                         date_trunc('hour', now()) + interval '300 days',
                                         interval '1 day') s
           where exists (select 1 from availability_window w where w.pool_id = $1
                          and w.during @> tstzrange(s, s + interval '24 hours'))
             and exists (select 1 from capacity_unit u where u.pool_id = $1
                          and not exists (select 1 from allocation a where a.unit_id = u.id
                                          and a.during && tstzrange(s, s + interval '24 hours')))
           order by s limit 1"#,
    )
    .bind(pool)
    .fetch_one(db)
    .await
    .unwrap();
    (pool, start.to_rfc3339(), 24)
}

async fn reservations(db: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from reservation")
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_resubmitted_reserve_form_books_once(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let cookie = app.log_in("ml@helixlabs.example", PW).await;
    let (pool, start, hours) = free_window(&db).await;
    let pool = pool.to_string();
    let hours = hours.to_string();
    let before = reservations(&db).await;

    // The form's key comes from the server, fresh for each review.
    let key_of = || async {
        let res = app.call("form_key", Some(&cookie), &[]).await;
        assert_eq!(res.status(), 200);
        res.json::<String>().await.unwrap()
    };
    let key = key_of().await;
    assert_ne!(key, key_of().await);

    // JavaScript off: the browser posts the form itself and follows the redirect.
    let form = [
        ("review[pool_id]", pool.as_str()),
        ("review[quantity]", "units:1"),
        ("review[start]", start.as_str()),
        ("review[hours]", hours.as_str()),
        ("request_key", key.as_str()),
    ];
    let mut places = Vec::new();
    for _ in 0..2 {
        let res = app.plain_form("reserve", Some(&cookie), None, &form).await;
        assert!(res.status().is_redirection(), "{}", res.status());
        places.push(res.headers()["location"].to_str().unwrap().to_string());
    }
    assert_eq!(places[0], places[1], "both posts lead to one reservation");
    assert!(places[0].starts_with("/reservations/"), "{}", places[0]);
    assert_eq!(reservations(&db).await, before + 1);

    // JavaScript on: two quick clicks send the same form twice at once.
    let (pool2, start2, _) = free_window(&db).await;
    let (pool2, key2) = (pool2.to_string(), key_of().await);
    let form2 = [
        ("review[pool_id]", pool2.as_str()),
        ("review[quantity]", "units:1"),
        ("review[start]", start2.as_str()),
        ("review[hours]", hours.as_str()),
        ("request_key", key2.as_str()),
    ];
    let (a, b) = tokio::join!(
        app.call("reserve", Some(&cookie), &form2),
        app.call("reserve", Some(&cookie), &form2)
    );
    let (a, b): (serde_json::Value, serde_json::Value) =
        (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a["id"], b["id"], "{a} {b}");
    assert!(a["id"].is_i64(), "{a}");
    assert_eq!(reservations(&db).await, before + 2);
    let stored: Option<String> =
        sqlx::query_scalar("select request_key from reservation where id = $1")
            .bind(a["id"].as_i64().unwrap())
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(stored.as_deref(), Some(key2.as_str()));

    // A malformed key is refused and books nothing.
    let mut bad = form2;
    bad[4].1 = "a key with spaces";
    let res = app.call("reserve", Some(&cookie), &bad).await;
    assert_eq!(res.status(), 400, "{}", res.text().await.unwrap());
    assert_eq!(reservations(&db).await, before + 2);

    // Extend, twice with one form: the reservation grows once; both posts end on the same
    // page (JavaScript off).
    let id = a["id"].as_i64().unwrap().to_string();
    let end = |db: PgPool, id: i64| async move {
        sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
            "select upper(during) from reservation where id = $1",
        )
        .bind(id)
        .fetch_one(&db)
        .await
        .unwrap()
    };
    let before_end = end(db.clone(), a["id"].as_i64().unwrap()).await;
    let extend_key = key_of().await;
    let extend = [
        ("id", id.as_str()),
        ("hours", "2"),
        ("request_key", extend_key.as_str()),
    ];
    let mut answers = Vec::new();
    for _ in 0..2 {
        let res = app
            .plain_form(
                "extend_reservation",
                Some(&cookie),
                Some(&format!("/reservations/{id}")),
                &extend,
            )
            .await;
        answers.push((
            res.status().as_u16(),
            res.headers().get("location").cloned(),
        ));
    }
    assert_eq!(answers[0], answers[1], "the same answer twice");
    assert!(
        answers[0].1.is_some(),
        "a redirect back to the page: {answers:?}"
    );
    assert_eq!(
        end(db.clone(), a["id"].as_i64().unwrap()).await,
        before_end + chrono::Duration::hours(2),
        "extended once"
    );

    // Cancel, twice with one form: cancelled once, the second post gets the first's answer
    // (JavaScript on), not an error about a reservation already cancelled.
    let cancel_key = key_of().await;
    let cancel = [("id", id.as_str()), ("request_key", cancel_key.as_str())];
    let first = app.call("cancel_reservation", Some(&cookie), &cancel).await;
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await.unwrap();
    let second = app.call("cancel_reservation", Some(&cookie), &cancel).await;
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(first, second);
    let refunds: i64 = sqlx::query_scalar(
        "select count(*) from ledger_transaction where kind = 'refund' and reservation_id = $1",
    )
    .bind(a["id"].as_i64().unwrap())
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(refunds, 1);
    // Without a key, a second cancel says what happened.
    let again = app
        .call("cancel_reservation", Some(&cookie), &[("id", id.as_str())])
        .await;
    assert_eq!(again.status(), 409);
}
