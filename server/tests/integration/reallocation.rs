//! The re-allocation primitives and credits against PostgreSQL: moving unit-hours to another
//! unit, ending them early, crediting the customer; what the database refuses; a move racing
//! a booking of the same unit; and the books reconciling with credits before and after
//! completion.

use crate::fixtures::{assert_books_reconcile, hour, lock_unit, market, req, unit_ids, FEE_BP};
use app::ledger::Month;
use app::services::error::ServiceError;
use app::services::reservations::reallocation::{self, CreditReason, CutReason};
use app::services::{ledger, reservations};
use app::window::HourWindow;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Ends `reservation`'s hold on `unit` over `piece`, committed on its own.
async fn cut_now(db: &PgPool, reservation: i64, unit: i64, piece: &HourWindow, why: CutReason) {
    let mut tx = db.begin().await.unwrap();
    reallocation::cut(&mut tx, reservation, unit, piece, why)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// (unit number, start, end) of every piece the reservation holds.
async fn pieces(db: &PgPool, customer: i64, id: i64) -> Vec<(i64, DateTime<Utc>, DateTime<Utc>)> {
    reservations::holdings(db, customer, id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.unit, h.start, h.end))
        .collect()
}

/// Takes `piece` of `unit` out of `reservation` for an incident and credits its unit-hours
/// for `why`, in one committed transaction; the credit made.
async fn cut_and_credit(
    db: &PgPool,
    reservation: i64,
    unit: i64,
    piece: &HourWindow,
    why: CreditReason,
    memo: &str,
    at: DateTime<Utc>,
) -> reallocation::Credited {
    let mut tx = db.begin().await.unwrap();
    reallocation::cut(&mut tx, reservation, unit, piece, CutReason::Incident)
        .await
        .unwrap();
    let credited = reallocation::credit_hours(&mut tx, reservation, piece.hours(), why, memo, at)
        .await
        .unwrap()
        .expect("a paid reservation is credited");
    tx.commit().await.unwrap();
    credited
}

fn span(m: &crate::fixtures::Market, from_h: i64, to_h: i64) -> HourWindow {
    HourWindow::new(hour(m.now, from_h), hour(m.now, to_h)).unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_move_shifts_unit_hours_and_frees_the_old_unit_for_others(db: PgPool) {
    let m = market(&db, 3).await;
    let units = unit_ids(&db, m.pool).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 8, 10, 10), FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!(
        pieces(&db, m.customer, r.id).await,
        vec![(1, hour(m.now, 10), hour(m.now, 20))]
    );

    // Hours 14 to 20 move from unit 1 to unit 3.
    let mut tx = db.begin().await.unwrap();
    reallocation::move_piece(&mut tx, r.id, units[0], units[2], &span(&m, 14, 20))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        pieces(&db, m.customer, r.id).await,
        vec![
            (1, hour(m.now, 10), hour(m.now, 14)),
            (3, hour(m.now, 14), hour(m.now, 20)),
        ]
    );
    // The reservation itself is unchanged: same units, term and price.
    let after = reservations::get(&db, m.customer, r.id, m.now)
        .await
        .unwrap();
    assert_eq!(
        (after.units, after.total_cents, after.credited_cents),
        (1, r.total_cents, 0)
    );

    // Unit 1 is free from hour 14: two nodes over 14..20 now fit (units 1 and 2).
    let two = reservations::reserve(&db, m.other_customer, &req(&m, 16, 14, 6), FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!(
        pieces(&db, m.other_customer, two.id).await,
        vec![
            (1, hour(m.now, 14), hour(m.now, 20)),
            (2, hour(m.now, 14), hour(m.now, 20))
        ]
    );

    // A move onto a taken unit (unit 1 is the other customer's from hour 14) is refused and
    // changes nothing.
    let mut tx = db.begin().await.unwrap();
    let e = reallocation::move_piece(&mut tx, r.id, units[2], units[0], &span(&m, 16, 18))
        .await
        .unwrap_err();
    drop(tx);
    assert!(
        matches!(&e, ServiceError::Conflict { message, .. } if message.contains("booked or under maintenance")),
        "{e:?}"
    );
    // A move of hours the reservation does not hold on that unit is refused too.
    let mut tx = db.begin().await.unwrap();
    let e = reallocation::move_piece(&mut tx, r.id, units[0], units[1], &span(&m, 12, 16))
        .await
        .unwrap_err();
    drop(tx);
    assert!(
        matches!(&e, ServiceError::Conflict { message, .. } if message.contains("does not hold")),
        "{e:?}"
    );
    assert_eq!(pieces(&db, m.customer, r.id).await.len(), 2);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_database_keeps_every_reservation_whole_whatever_writes_the_rows(db: PgPool) {
    let m = market(&db, 3).await;
    let units = unit_ids(&db, m.pool).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 16, 10, 10), FEE_BP, m.now)
        .await
        .unwrap();
    // Each write runs in a transaction of its own (with the reservation and a unit as $1
    // and $2) and is refused when it commits.
    for (what, write, unit) in [
        (
            "dropping a unit's hours without recording a cut",
            "update allocation set during = tstzrange(lower(during), lower(during) + interval '2 hours') where reservation_id = $1 and unit_id = $2",
            units[0],
        ),
        (
            "a third unit the reservation did not buy",
            "insert into allocation (site_id, pool_id, unit_id, reservation_id, during) select site_id, pool_id, $2, id, during from reservation where id = $1",
            units[2],
        ),
        (
            "a cut recorded for hours the reservation still holds (counted twice)",
            "insert into allocation_cut (reservation_id, unit_id, during, reason) select id, $2, during, 'incident' from reservation where id = $1",
            units[0],
        ),
        (
            // The cut's own check leaves a reservation written in the transaction to the
            // reservation's check at commit, which must still see the double count.
            "the same cut in a transaction that also updates the reservation",
            "with touched as (update reservation set updated_at = now() where id = $1)
             insert into allocation_cut (reservation_id, unit_id, during, reason) select id, $2, during, 'incident' from reservation where id = $1",
            units[0],
        ),
        (
            "a piece moved outside the term",
            "update allocation set during = tstzrange(lower(during) + interval '1 hour', upper(during) + interval '1 hour') where reservation_id = $1 and unit_id = $2",
            units[1],
        ),
    ] {
        let mut tx = db.begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(write))
            .bind(r.id)
            .bind(unit)
            .execute(&mut *tx)
            .await
            .unwrap();
        let e = tx.commit().await.expect_err(what);
        assert_eq!(
            e.as_database_error()
                .and_then(|d| d.constraint().map(str::to_owned)),
            Some("reservation_fully_allocated".to_owned()),
            "{what}: {e}"
        );
    }

    // Cuts are history: they cannot be edited away.
    cut_now(&db, r.id, units[1], &span(&m, 18, 20), CutReason::Incident).await;
    assert!(
        sqlx::query("delete from allocation_cut where reservation_id = $1")
            .bind(r.id)
            .execute(&db)
            .await
            .is_err()
    );
    assert_eq!(
        pieces(&db, m.customer, r.id).await,
        vec![
            (1, hour(m.now, 10), hour(m.now, 20)),
            (2, hour(m.now, 10), hour(m.now, 18)),
        ]
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_cut_with_a_credit_is_posted_reconciled_and_shown(db: PgPool) {
    let m = market(&db, 3).await;
    let units = unit_ids(&db, m.pool).await;
    // Two nodes for ten hours: 20 unit-hours.
    let r = reservations::reserve(&db, m.customer, &req(&m, 16, 10, 10), FEE_BP, m.now)
        .await
        .unwrap();

    // Unit 2 stops at hour 16: four unit-hours are not delivered.
    let credited = cut_and_credit(
        &db,
        r.id,
        units[1],
        &span(&m, 16, 20),
        // A firm reservation's hours are cut for an incident only, and credited as one.
        CreditReason::Incident,
        "node 2 stopped early",
        hour(m.now, 16),
    )
    .await;
    let expected = r.total_cents * 4 / 20;
    assert_eq!(credited.amount_cents, expected);

    let after = reservations::get(&db, m.customer, r.id, m.now)
        .await
        .unwrap();
    assert_eq!(after.credited_cents, expected);
    let credits = reservations::credits(&db, m.customer, r.id).await.unwrap();
    assert_eq!(credits.len(), 1);
    assert_eq!(
        (credits[0].unit_hours, credits[0].amount_cents),
        (4, expected)
    );
    assert_eq!(credits[0].reason_text(), "hardware incident");
    // Another organization sees neither the reservation's units nor its credits.
    assert!(reservations::credits(&db, m.other_customer, r.id)
        .await
        .unwrap()
        .is_empty());

    // The freed hours of unit 2 can be booked by someone else (units 2 and 3).
    let other = reservations::reserve(&db, m.other_customer, &req(&m, 16, 16, 4), FEE_BP, m.now)
        .await
        .unwrap();
    let other_subtotal = other.base_cents - other.discount_cents;

    assert_books_reconcile(&db, m.now).await;

    // On the customer's statement for the month of the credit.
    let month = Month::of(hour(m.now, 16));
    let statement = ledger::statement(&db, m.customer, month).await.unwrap();
    assert_eq!(statement.credits_cents, expected);
    assert!(statement.lines.iter().any(|l| l.kind == "credit"
        && l.amount_cents == -expected
        && l.reservation_id == Some(r.id)));

    // The operator's pending earnings already leave the credit out.
    let earnings = ledger::earnings(&db, m.operator).await.unwrap();
    let fee_part = r.fee_cents * expected / r.total_cents;
    let subtotal = r.base_cents - r.discount_cents;
    assert_eq!(
        earnings.pending_cents,
        subtotal - (expected - fee_part) + other_subtotal,
        "{earnings:?}"
    );

    // Completion recognises what was not credited; a later credit comes out of what was
    // earned. Both reconcile.
    ledger::recognize_completed(&db, hour(m.now, 21))
        .await
        .unwrap();
    assert_books_reconcile(&db, hour(m.now, 21)).await;
    let earnings = ledger::earnings(&db, m.operator).await.unwrap();
    assert_eq!(earnings.pending_cents, 0);
    assert_eq!(
        earnings.earned_cents,
        subtotal - (expected - fee_part) + other_subtotal
    );

    let mut tx = db.begin().await.unwrap();
    let late = reallocation::credit_hours(&mut tx, r.id, 2, CreditReason::Sla, "", hour(m.now, 22))
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(late.amount_cents, r.total_cents * 2 / 20);
    assert_books_reconcile(&db, hour(m.now, 23)).await;

    // Never more than was paid: a credit for every hour again is capped at what is left.
    let mut tx = db.begin().await.unwrap();
    let rest = reallocation::credit_hours(
        &mut tx,
        r.id,
        20,
        CreditReason::Goodwill,
        "",
        hour(m.now, 23),
    )
    .await
    .unwrap()
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        rest.amount_cents,
        r.total_cents - expected - late.amount_cents
    );
    let mut tx = db.begin().await.unwrap();
    let none = reallocation::credit_hours(
        &mut tx,
        r.id,
        1,
        CreditReason::Goodwill,
        "",
        hour(m.now, 23),
    )
    .await
    .unwrap();
    assert_eq!(none, None);
    drop(tx);
    assert_books_reconcile(&db, hour(m.now, 23)).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_cancellation_after_a_credit_refunds_by_policy_from_what_is_left(db: PgPool) {
    let m = market(&db, 2).await;
    let units = unit_ids(&db, m.pool).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 8, 200, 10), FEE_BP, m.now)
        .await
        .unwrap();
    let c = cut_and_credit(
        &db,
        r.id,
        units[0],
        &span(&m, 205, 210),
        CreditReason::EndedEarly,
        "",
        m.now,
    )
    .await;
    let preview = reservations::cancel_preview(&db, m.customer, r.id, m.now)
        .await
        .unwrap();
    let cancelled = reservations::cancel(&db, m.customer, r.id, m.now)
        .await
        .unwrap();
    assert_eq!(cancelled.refund_cents, Some(preview.refund_cents));
    assert_eq!(
        preview.refund_cents,
        app::pricing::refund_cents(r.total_cents - c.amount_cents, preview.refund_bp)
    );
    assert_books_reconcile(&db, m.now).await;
    // A cancelled reservation is settled: no more credits.
    let mut tx = db.begin().await.unwrap();
    let e = reallocation::credit_hours(&mut tx, r.id, 1, CreditReason::Goodwill, "", m.now)
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::Conflict { .. }), "{e:?}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_move_and_a_booking_racing_for_one_unit_never_overlap(db: PgPool) {
    let m = market(&db, 2).await;
    let units = unit_ids(&db, m.pool).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 8, 10, 10), FEE_BP, m.now)
        .await
        .unwrap();

    // The move to unit 2 is under way (uncommitted) when a booking asks for one node over
    // the same hours: unit 2 is locked, so the booking waits, then takes unit 1, which the
    // move has freed.
    let mut tx = db.begin().await.unwrap();
    reallocation::move_piece(&mut tx, r.id, units[0], units[1], &span(&m, 10, 20))
        .await
        .unwrap();
    let booking = {
        let db = db.clone();
        let request = req(&m, 8, 10, 10);
        let (customer, now) = (m.other_customer, m.now);
        tokio::spawn(
            async move { reservations::reserve(&db, customer, &request, FEE_BP, now).await },
        )
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !booking.is_finished(),
        "the booking must wait for the unit the move holds"
    );
    tx.commit().await.unwrap();
    let b = booking.await.unwrap().unwrap();
    assert_eq!(
        pieces(&db, m.customer, r.id).await,
        vec![(2, hour(m.now, 10), hour(m.now, 20))]
    );
    assert_eq!(
        pieces(&db, m.other_customer, b.id).await,
        vec![(1, hour(m.now, 10), hour(m.now, 20))]
    );

    // The other way round: a booking holds the target unit, so the move waits and is then
    // refused, leaving the reservation where it was.
    let third = reservations::reserve(&db, m.customer, &req(&m, 8, 30, 5), FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!(pieces(&db, m.customer, third.id).await[0].0, 1);
    let mut booking_tx = db.begin().await.unwrap();
    lock_unit(&mut booking_tx, units[1]).await;
    sqlx::query("insert into reservation (site_id, pool_id, customer_id, unit_count, during, state, currency, unit_price_cents, base_cents, discount_cents, fee_cents, total_cents, fee_bp) values ($1, $2, $3, 1, tstzrange($4, $5), 'confirmed', 'USD', 100, 100, 0, 0, 100, 0)")
        .bind(m.site)
        .bind(m.pool)
        .bind(m.other_customer)
        .bind(hour(m.now, 30))
        .bind(hour(m.now, 35))
        .execute(&mut *booking_tx)
        .await
        .unwrap();
    sqlx::query("insert into allocation (site_id, pool_id, unit_id, reservation_id, during) select site_id, pool_id, $1, id, during from reservation where id = (select max(id) from reservation)")
        .bind(units[1])
        .execute(&mut *booking_tx)
        .await
        .unwrap();
    let mover = {
        let db = db.clone();
        let (id, from, to) = (third.id, units[0], units[1]);
        let piece = span(&m, 30, 35);
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            let moved = reallocation::move_piece(&mut tx, id, from, to, &piece).await;
            if moved.is_ok() {
                tx.commit().await.unwrap();
            }
            moved
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !mover.is_finished(),
        "the move must wait for the unit the booking holds"
    );
    booking_tx.commit().await.unwrap();
    let e = mover.await.unwrap().unwrap_err();
    assert!(matches!(e, ServiceError::Conflict { .. }), "{e:?}");
    assert_eq!(
        pieces(&db, m.customer, third.id).await,
        vec![(1, hour(m.now, 30), hour(m.now, 35))]
    );
    assert_books_reconcile(&db, m.now).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_reservation_that_ended_early_is_not_extended_on_units_it_gave_up(db: PgPool) {
    let m = market(&db, 2).await;
    let units = unit_ids(&db, m.pool).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 16, 10, 10), FEE_BP, m.now)
        .await
        .unwrap();
    // A move keeps the reservation extendable: the moved piece reaches the end.
    cut_now(&db, r.id, units[1], &span(&m, 18, 20), CutReason::Incident).await;
    let e = reservations::extend(
        &db,
        m.customer,
        r.id,
        app::booking::ExtendTo::ByHours(2),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, ServiceError::Conflict { message, .. } if message.contains("ended early")),
        "{e:?}"
    );
    // Out of range is refused by the service, whichever door asked.
    let e = reservations::extend(
        &db,
        m.customer,
        r.id,
        app::booking::ExtendTo::ByHours(0),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ServiceError::Invalid { .. }), "{e:?}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_cut_and_a_cancellation_of_one_reservation_take_turns_without_a_deadlock(db: PgPool) {
    let m = market(&db, 2).await;
    let units = unit_ids(&db, m.pool).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 16, 100, 10), FEE_BP, m.now)
        .await
        .unwrap();
    // A cancellation as `reservations::cancel` makes it, paused halfway: the reservation is
    // locked, its allocations not yet released.
    let mut cancelling = db.begin().await.unwrap();
    sqlx::query("select 1 from reservation where id = $1 for update")
        .bind(r.id)
        .execute(&mut *cancelling)
        .await
        .unwrap();
    // A cut of the same reservation starts meanwhile. It locks the reservation first too, so
    // it waits here instead of taking an allocation the cancellation is about to release.
    let cut = {
        let db = db.clone();
        let (id, unit, piece) = (r.id, units[1], span(&m, 105, 110));
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            let cut = reallocation::cut(&mut tx, id, unit, &piece, CutReason::Incident).await;
            if cut.is_ok() {
                tx.commit().await.unwrap();
            }
            cut
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!cut.is_finished(), "the cut waits for the cancellation");
    let started = std::time::Instant::now();
    sqlx::query("delete from allocation where reservation_id = $1")
        .bind(r.id)
        .execute(&mut *cancelling)
        .await
        .unwrap();
    sqlx::query("update reservation set state = 'cancelled', cancelled_at = now(), refund_cents = 0 where id = $1")
        .bind(r.id)
        .execute(&mut *cancelling)
        .await
        .unwrap();
    cancelling.commit().await.unwrap();
    // The cut then finds nothing to take: a clean refusal, no deadlock waited out (PostgreSQL
    // breaks a cycle only after a second).
    let refused = cut.await.unwrap().unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_millis(900));
    assert!(
        matches!(&refused, ServiceError::Conflict { message, .. } if message.contains("does not hold")),
        "{refused:?}"
    );
    assert_books_reconcile(&db, m.now).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn cuts_and_credits_carry_their_reservations_site(db: PgPool) {
    let m = market(&db, 2).await;
    let units = unit_ids(&db, m.pool).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 16, 100, 10), FEE_BP, m.now)
        .await
        .unwrap();
    cut_and_credit(
        &db,
        r.id,
        units[1],
        &span(&m, 105, 110),
        CreditReason::Incident,
        "",
        m.now,
    )
    .await;
    let sites: Vec<i64> = sqlx::query_scalar(
        "select site_id from allocation_cut where reservation_id = $1 union all select site_id from reservation_credit where reservation_id = $1",
    )
    .bind(r.id)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(sites, vec![m.site, m.site]);
}
