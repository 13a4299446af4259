//! The ledger against PostgreSQL: the postings of every operation, the database's own
//! refusals (unbalanced or edited books), the completion job run twice, concurrently and
//! after an outage, payouts, and reconciliation (service and command). The property test
//! over random sequences is in `ledger_property`.

use crate::fixtures::{books, hour, ledger_sum, market, req, Books, FEE_BP};
use app::booking::ExtendTo;
use app::ledger::Month;
use app::services::error::ServiceError;
use app::services::{ledger, payments, reservations};
use chrono::{DateTime, Duration, DurationRound, Utc};
use sqlx::PgPool;

async fn postings(db: &PgPool, reservation: i64) -> Vec<(String, Option<i32>)> {
    sqlx::query_as(
        "select kind, fee_bp from ledger_transaction where reservation_id = $1 order by id",
    )
    .bind(reservation)
    .fetch_all(db)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn booking_charges_the_customer_with_the_fee_rate_written_on_the_posting(db: PgPool) {
    let m = market(&db, 4).await;
    // 8 GPUs (1 node) × 10 h × $2.00 = $160.00, 3 % fee $4.80: $164.80.
    let r = reservations::reserve(&db, m.customer, &req(&m, 8, 2, 10), FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!(r.total_cents, 16_480);
    assert_eq!(
        books(&db, r.id).await,
        Books {
            charged: 16_480,
            unearned: 16_480,
            ..Default::default()
        }
    );
    assert_eq!(
        postings(&db, r.id).await,
        vec![("charge".into(), Some(300))]
    );
    let (balance,): (i64,) = sqlx::query_as(
        "select balance_cents from ledger_account_balance where organization_id = $1 and kind = 'customer_receivable'",
    )
    .bind(m.customer)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(balance, 16_480);
    assert_eq!(ledger_sum(&db).await, 0);

    // A refused booking posts nothing.
    let before: i64 = sqlx::query_scalar("select count(*) from ledger_entry")
        .fetch_one(&db)
        .await
        .unwrap();
    let e = reservations::reserve(&db, m.customer, &req(&m, 32, 2, 10), FEE_BP, m.now).await;
    assert!(matches!(e, Err(ServiceError::Conflict { .. })), "{e:?}");
    let after: i64 = sqlx::query_scalar("select count(*) from ledger_entry")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(before, after);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_extension_charges_the_difference(db: PgPool) {
    let m = market(&db, 4).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 8, 2, 10), FEE_BP, m.now)
        .await
        .unwrap();
    let x = reservations::extend(
        &db,
        m.customer,
        r.id,
        ExtendTo::End(hour(m.now, 22)),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    // 20 h: $320.00 + $9.60 = $329.60; the extension charges $164.80 more.
    assert_eq!(x.total_cents, 32_960);
    let b = books(&db, r.id).await;
    assert_eq!((b.charged, b.unearned), (32_960, 32_960));
    let amounts: Vec<(String, i64)> = sqlx::query_as(
        "select t.kind, e.amount_cents from ledger_transaction t
           join ledger_entry e on e.transaction_id = t.id
           join ledger_account a on a.id = e.account_id and a.kind = 'customer_receivable'
          where t.reservation_id = $1 order by t.id",
    )
    .bind(r.id)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        amounts,
        vec![("charge".into(), 16_480), ("extension".into(), 16_480)]
    );
    assert_eq!(ledger_sum(&db).await, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_cancellation_refunds_by_policy_and_the_rest_is_earned_at_once(db: PgPool) {
    let m = market(&db, 4).await;
    // Starts in 100 h: between 48 h and a week ahead the default policy refunds half.
    let r = reservations::reserve(&db, m.customer, &req(&m, 8, 100, 10), FEE_BP, m.now)
        .await
        .unwrap();
    let c = reservations::cancel(&db, m.customer, r.id, m.now)
        .await
        .unwrap();
    // $164.80 total, half refunded: $82.40; $82.40 retained, of which the fee's share is
    // floor(480 × 8240 / 16480) = 240 cents and the operator's 8000.
    assert_eq!(c.refund_cents, Some(8_240));
    assert_eq!(
        books(&db, r.id).await,
        Books {
            charged: 16_480,
            refunded: 8_240,
            operator: 8_000,
            fee: 240,
            unearned: 0
        }
    );
    let kinds: Vec<String> = postings(&db, r.id).await.into_iter().map(|p| p.0).collect();
    assert_eq!(kinds, ["charge", "refund", "recognition"]);
    // The customer's statement of the month shows both lines and what it owes.
    let s = ledger::statement(&db, m.customer, Month::of(Utc::now()))
        .await
        .unwrap();
    assert_eq!(
        (s.charges_cents, s.refunds_cents, s.closing_cents),
        (16_480, 8_240, 8_240)
    );
    assert_eq!(s.lines.len(), 2);
    let csv = s.to_csv();
    assert_eq!(
        csv.lines()
            .filter(|l| l.contains(",refund,") && l.contains(",-82.40,USD"))
            .count(),
        1,
        "{csv}"
    );
    assert_eq!(
        csv.lines()
            .filter(|l| l.contains(",charge,") && l.contains(",164.80,USD"))
            .count(),
        1,
        "{csv}"
    );
    // The operator has earned its share already.
    let e = ledger::earnings(&db, m.operator).await.unwrap();
    assert_eq!(
        (e.payable_cents, e.earned_cents, e.fees_cents),
        (8_000, 8_000, 240)
    );
    assert_eq!(ledger_sum(&db).await, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_database_refuses_unbalanced_or_edited_books(db: PgPool) {
    let m = market(&db, 4).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 8, 2, 10), FEE_BP, m.now)
        .await
        .unwrap();
    let fingerprint = |db: PgPool| async move {
        sqlx::query_as::<_, (i64, i64, i64)>(
            "select (select count(*) from ledger_transaction), (select count(*) from ledger_entry),
                    (select coalesce(sum(abs(amount_cents)), 0)::bigint from ledger_entry)",
        )
        .fetch_one(&db)
        .await
        .unwrap()
    };
    let before = fingerprint(db.clone()).await;

    // A transfer whose legs differ by a cent: refused when the transaction commits.
    let mut tx = db.begin().await.unwrap();
    let t: i64 = sqlx::query_scalar(
        "insert into ledger_transaction (kind, currency, memo, effective_at)
         values ('correction', 'USD', 'one-legged', now()) returning id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "insert into ledger_entry (transaction_id, account_id, currency, amount_cents)
         select $1, id, 'USD', case kind when 'platform_unearned' then 100 else -99 end
           from ledger_account where kind in ('platform_unearned', 'customer_receivable')",
    )
    .bind(t)
    .execute(&mut *tx)
    .await
    .unwrap();
    let err = tx.commit().await.unwrap_err();
    let db_err = err.as_database_error().unwrap();
    assert_eq!(db_err.code().as_deref(), Some("23514"));
    assert!(
        db_err.message().contains("does not balance"),
        "{}",
        db_err.message()
    );

    // Entries and transactions are never changed or removed, not even by the owner.
    for sql in [
        "update ledger_entry set amount_cents = amount_cents * 2",
        "delete from ledger_entry",
        "delete from ledger_transaction",
        "truncate ledger_entry",
    ] {
        let err = sqlx::query(sql).execute(&db).await.unwrap_err();
        let d = err.as_database_error().unwrap();
        assert_eq!(d.code().as_deref(), Some("23001"), "{sql}");
        assert!(
            d.message().contains("append-only"),
            "{sql}: {}",
            d.message()
        );
    }
    // A settled reservation's amounts are not rewritten behind the ledger's back.
    let c = reservations::cancel(&db, m.customer, r.id, m.now)
        .await
        .unwrap();
    let err = sqlx::query("update reservation set total_cents = total_cents + 1, base_cents = base_cents + 1 where id = $1")
        .bind(c.id)
        .execute(&db)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().code().as_deref(),
        Some("23001")
    );
    let after = fingerprint(db.clone()).await;
    assert!(after.0 > before.0, "the cancellation posted");
    assert_eq!(ledger_sum(&db).await, 0);
    assert!(ledger::reconcile(&db, Utc::now()).await.unwrap().is_clean());
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn completion_is_recognised_once_however_often_and_late_the_job_runs(db: PgPool) {
    let m = market(&db, 4).await;
    let mut ids = Vec::new();
    for (start, len) in [(2, 3), (6, 4), (12, 2), (30, 5)] {
        let r = reservations::reserve(&db, m.customer, &req(&m, 8, start, len), FEE_BP, m.now)
            .await
            .unwrap();
        ids.push((r.id, hour(m.now, start + len)));
    }
    // Nothing has ended yet.
    assert_eq!(ledger::recognize_completed(&db, m.now).await.unwrap(), 0);
    // The job ran at hour 8 (two ended), then the servers were down until hour 20: the
    // next run catches up the third; the fourth has not ended.
    assert_eq!(
        ledger::recognize_completed(&db, hour(m.now, 8))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        ledger::recognize_completed(&db, hour(m.now, 10))
            .await
            .unwrap(),
        1
    );
    let late = hour(m.now, 20);
    assert_eq!(ledger::recognize_completed(&db, late).await.unwrap(), 1);
    assert_eq!(ledger::recognize_completed(&db, late).await.unwrap(), 0);
    // Two processes at once after the last one ends: exactly one recognises it.
    let end = hour(m.now, 40);
    let (a, b) = tokio::join!(
        ledger::recognize_completed(&db, end),
        ledger::recognize_completed(&db, end)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    for (id, ended) in ids {
        let recognitions: Vec<(DateTime<Utc>,)> = sqlx::query_as(
            "select effective_at from ledger_transaction where reservation_id = $1 and kind = 'recognition'",
        )
        .bind(id)
        .fetch_all(&db)
        .await
        .unwrap();
        // Once each, dated when the reservation ended (not when the job caught up).
        assert_eq!(recognitions, vec![(ended,)], "reservation {id}");
        let b = books(&db, id).await;
        assert_eq!(b.unearned, 0);
        assert_eq!(b.operator + b.fee, b.charged);
    }
    let e = ledger::earnings(&db, m.operator).await.unwrap();
    // 3 + 4 + 2 + 5 = 14 node-hours of 8 GPUs at $2.00 = $224.00 earned, $6.72 fees.
    assert_eq!(
        (e.earned_cents, e.fees_cents, e.pending_cents),
        (22_400, 672, 0)
    );
    let r = ledger::reconcile(&db, end).await.unwrap();
    assert!(r.is_clean(), "{r:?}");
    assert_eq!(r.awaiting_recognition, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn payouts_never_exceed_what_is_owed_and_retries_pay_once(db: PgPool) {
    let m = market(&db, 4).await;
    reservations::reserve(&db, m.customer, &req(&m, 8, 2, 10), FEE_BP, m.now)
        .await
        .unwrap();
    ledger::recognize_completed(&db, hour(m.now, 13))
        .await
        .unwrap();
    // Earned: $160.00 (the fee, $4.80, is the platform's).
    let e = ledger::earnings(&db, m.operator).await.unwrap();
    assert_eq!(e.payable_cents, 16_000);

    let too_much = payments::pay_out(&db, m.operator, 16_001, Some("wire-1")).await;
    assert!(
        matches!(&too_much, Err(ServiceError::Conflict { message, .. }) if message.contains("exceeds")),
        "{too_much:?}"
    );
    let first = payments::pay_out(&db, m.operator, 10_000, Some("wire-1"))
        .await
        .unwrap();
    let retry = payments::pay_out(&db, m.operator, 10_000, Some("wire-1"))
        .await
        .unwrap();
    assert_eq!(first, retry, "the same reference pays once");
    let reused = payments::pay_out(&db, m.operator, 500, Some("wire-1")).await;
    assert!(
        matches!(reused, Err(ServiceError::Conflict { .. })),
        "{reused:?}"
    );
    let generated = payments::pay_out(&db, m.operator, 6_000, None)
        .await
        .unwrap();
    assert_ne!(generated, first);
    let e = ledger::earnings(&db, m.operator).await.unwrap();
    assert_eq!((e.payable_cents, e.paid_out_cents), (0, 16_000));
    assert_eq!(e.payouts.len(), 2);
    assert!(e.payouts.iter().any(|p| p.reference.starts_with("manual-")));
    // Customers are not paid out.
    let e = payments::pay_out(&db, m.customer, 100, Some("x")).await;
    assert!(matches!(e, Err(ServiceError::Invalid(_))), "{e:?}");
    assert_eq!(ledger_sum(&db).await, 0);
}

/// The server binary's `reconcile` command against this test's database.
fn reconcile_command(db: &PgPool) -> (bool, String) {
    let url = crate::helpers::database_url(db);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("reconcile")
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn reconciliation_passes_on_the_demo_market_and_catches_a_wrong_posting(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let (ok, out) = reconcile_command(&db);
    assert!(ok, "{out}");
    assert!(out.contains(" 0 differences"), "{out}");

    // A balanced but wrong correction: a cent of one reservation's unearned money moved to
    // the fee revenue. The books still sum to zero; the reconciliation still notices.
    let id: i64 = sqlx::query_scalar(
        "select id from reservation where state = 'confirmed' and upper(during) > now() order by id limit 1",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    sqlx::query(
        "select ledger_post('correction', $1, null, 'USD', null, 'wrong', null, now(),
                array[ledger_account_for(null, 'platform_unearned', 'USD'),
                      ledger_account_for(null, 'platform_fee_revenue', 'USD')],
                array[1::bigint, -1::bigint])",
    )
    .bind(id)
    .execute(&db)
    .await
    .unwrap();
    let (ok, out) = reconcile_command(&db);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "reservation {id}: fee expected 0 cents, ledger has 1"
        )),
        "{out}"
    );
    assert!(out.contains("unearned"), "{out}");
    assert_eq!(ledger_sum(&db).await, 0);
}

#[test]
fn months_of_statements_are_utc_calendar_months() {
    let t = Utc::now().duration_trunc(Duration::days(1)).unwrap();
    let m = Month::of(t);
    assert!(m.start() <= t && t < m.next().start());
}

/// The charges of a statement that inserts several reservations (a group of bookings) are
/// posted together: one charge per confirmed reservation with a total, in reservation
/// order, with its fee rate and memo; nothing for a hold; then a reservation inserted in
/// another state, settled by the row rule (here: cancelled at once, so charged, refunded
/// and retained). Their `reservation.created` events too: one for the customer, then one
/// for the operator, per confirmed reservation, in reservation order. Checked inside the
/// transaction, which is then rolled back (the reservations hold no units, so the coverage
/// check would refuse its commit).
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn one_statements_bookings_are_charged_and_announced_each_in_reservation_order(db: PgPool) {
    let m = market(&db, 4).await;
    let mut tx = db.begin().await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar(
        r#"insert into reservation (site_id, pool_id, customer_id, unit_count, during, state, currency,
                                    unit_price_cents, base_cents, discount_cents, fee_cents, total_cents,
                                    fee_bp, held_until, refund_cents, cancelled_at)
           select $1, $2, $3, 1, tstzrange($4 + interval '1 hour' * k, $4 + interval '1 hour' * (k + 1)),
                  s.state, 'USD', 1600, 1600, 0, s.fee, 1600 + s.fee, 300,
                  case when s.state = 'held' then now() + interval '15 minutes' end,
                  case when s.state = 'cancelled' then 800 end,
                  case when s.state = 'cancelled' then now() end
             from (values (1, 'confirmed', 48), (2, 'held', 48), (3, 'confirmed', 60),
                          (4, 'cancelled', 48)) s (k, state, fee)
            order by s.k
           returning id"#,
    )
    .bind(m.site)
    .bind(m.pool)
    .bind(m.customer)
    .bind(hour(m.now, 2))
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let posted: Vec<(i64, String, Option<i32>, String, i64)> = sqlx::query_as(
        "select t.reservation_id, t.kind, t.fee_bp, t.memo, e.amount_cents
           from ledger_transaction t
           join ledger_entry e on e.transaction_id = t.id
           join ledger_account a on a.id = e.account_id and a.kind = 'customer_receivable'
          where t.reservation_id = any($1) order by t.id",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let booked = |i: usize, total: i64| {
        (
            ids[i],
            "charge".to_string(),
            Some(300),
            format!("reservation {} booked", ids[i]),
            total,
        )
    };
    assert_eq!(
        posted,
        vec![
            booked(0, 1_648),
            booked(2, 1_660),
            booked(3, 1_648),
            (
                ids[3],
                "refund".into(),
                Some(300),
                format!("reservation {} cancelled: refund", ids[3]),
                -800
            ),
        ]
    );
    let (sum,): (Option<i64>,) = sqlx::query_as(
        "select sum(e.amount_cents)::bigint from ledger_entry e
           join ledger_transaction t on t.id = e.transaction_id where t.reservation_id = any($1)",
    )
    .bind(&ids)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(sum, Some(0));
    let events: Vec<(i64, String, i64, String, i64)> = sqlx::query_as(
        "select organization_id, kind, (payload->>'reservation_id')::bigint, payload->>'state',
                (payload->>'total_cents')::bigint
           from event_outbox where kind like 'reservation.%' order by id",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let created = |org: i64, i: usize, total: i64| {
        (
            org,
            "reservation.created".to_string(),
            ids[i],
            "confirmed".to_string(),
            total,
        )
    };
    assert_eq!(
        events,
        vec![
            created(m.customer, 0, 1_648),
            created(m.operator, 0, 1_648),
            created(m.customer, 2, 1_660),
            created(m.operator, 2, 1_660),
        ]
    );
    tx.rollback().await.unwrap();
}

/// A reservation written without its fee rate (as rows from before the rate was recorded
/// on the reservation) is posted at the rate its amounts imply by every posting: its
/// charge, a cancellation's refund and retained part, and its recognition at completion.
/// One rule (`reservation_fee_bp`) serves the three posting functions. Checked inside the
/// transaction, which is then rolled back (the reservations hold no units, so the coverage
/// check would refuse its commit).
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_reservation_without_its_fee_rate_is_posted_at_the_rate_its_amounts_imply(db: PgPool) {
    let m = market(&db, 4).await;
    let mut tx = db.begin().await.unwrap();
    // $20.00 less a $4.00 discount, and a $0.40 fee: 250 basis points of $16.00.
    let ids: Vec<i64> = sqlx::query_scalar(
        r#"insert into reservation (site_id, pool_id, customer_id, unit_count, during, state, currency,
                                    unit_price_cents, base_cents, discount_cents, fee_cents, total_cents,
                                    fee_bp, refund_cents, cancelled_at)
           select $1, $2, $3, 1, tstzrange($4 + interval '1 hour' * k, $4 + interval '1 hour' * (k + 1)),
                  s.state, 'USD', 2000, 2000, 400, 40, 1640, null,
                  case when s.state = 'cancelled' then 800 end,
                  case when s.state = 'cancelled' then now() end
             from (values (1, 'confirmed'), (2, 'cancelled')) s (k, state)
            order by s.k
           returning id"#,
    )
    .bind(m.site)
    .bind(m.pool)
    .bind(m.customer)
    .bind(hour(m.now, 2))
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let recognised: i32 = sqlx::query_scalar("select ledger_recognize_completed($1)")
        .bind(hour(m.now, 10))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(recognised, 1);
    let posted: Vec<(i64, String, Option<i32>)> = sqlx::query_as(
        "select reservation_id, kind, fee_bp from ledger_transaction
          where reservation_id = any($1) order by id",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let at_250 = |i: usize, kind: &str| (ids[i], kind.to_string(), Some(250));
    assert_eq!(
        posted,
        vec![
            at_250(0, "charge"),
            at_250(1, "charge"),
            at_250(1, "refund"),
            at_250(1, "recognition"),
            at_250(0, "recognition"),
        ]
    );
    tx.rollback().await.unwrap();
}
