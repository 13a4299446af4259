//! Settlement services against PostgreSQL: quotes, reservations, races, cancellations,
//! extensions and blackouts. Listing limits, availability and search are in
//! `settlement_listing`; the market they run on is in `fixtures`.

use crate::fixtures::{
    hour, lock_unit, market, org, req, unit_ids, until_someone_waits_for_a_lock, FEE_BP,
};
use app::booking::ExtendTo;
use app::pricing::{self, Quantity, TermDiscount};
use app::services::blackouts::{self, BlackoutUnits};
use app::services::error::ServiceError;
use app::services::reservations;
use app::window::ReservationState;
use chrono::Duration;
use sqlx::PgPool;

async fn allocations(db: &PgPool, reservation: i64) -> i64 {
    sqlx::query_scalar("select count(*) from allocation where reservation_id = $1")
        .bind(reservation)
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn quote_prices_whole_nodes_and_says_when_it_rounded(db: PgPool) {
    let m = market(&db, 4).await;
    let q = reservations::quote(&db, &req(&m, 12, 2, 168), FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!(q.units, 2);
    assert_eq!(
        q.note.as_deref(),
        Some("12 GPUs rounded up to 2 whole nodes (16 GPUs)")
    );
    // 16 GPUs × 168 h × $2.00 = $5,376.00; 5 % off; 3 % fee.
    assert_eq!(q.price.base_cents, 537_600);
    assert_eq!(
        q.price,
        pricing::price(
            pricing::Priced::Gpu {
                nodes: 2,
                gpus_per_node: 8,
                cents_per_gpu_hour: 200
            },
            168,
            &[TermDiscount {
                min_hours: 168,
                discount_bp: 500
            }],
            FEE_BP
        )
    );
    assert_eq!(q.free_units, 4);
    assert_eq!(q.next_start, None);
    // A quote holds nothing.
    let held: i64 = sqlx::query_scalar("select count(*) from allocation")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(held, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn bad_requests_are_refused_with_what_to_fix(db: PgPool) {
    let m = market(&db, 4).await;
    let mut r = req(&m, 8, 2, 4);
    r.start += Duration::minutes(30);
    let e = reservations::quote(&db, &r, FEE_BP, m.now)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ServiceError::Invalid(f) if f[0].field == "window" && f[0].message.contains("whole hour")),
        "{e}"
    );

    let e = reservations::reserve(&db, m.customer, &req(&m, 8, 2, 0), FEE_BP, m.now)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422, "{e}");

    let e = reservations::reserve(&db, m.customer, &req(&m, 8, -5, 4), FEE_BP, m.now)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("at least 0 hours from now"), "{e}");

    let e = reservations::reserve(&db, m.customer, &req(&m, 8 * 5, 2, 4), FEE_BP, m.now)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("this pool has 4 nodes in all"),
        "{e}"
    );

    let e = reservations::reserve(&db, m.customer, &req(&m, 8, 24 * 70, 4), FEE_BP, m.now)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("not on sale for that whole window"),
        "{e}"
    );

    let mut r = req(&m, 8, 2, 4);
    r.quantity = Quantity::Kw(500);
    let e = reservations::reserve(&db, m.customer, &r, FEE_BP, m.now)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("GPU pool"), "{e}");

    r.pool_id = 999_999;
    let e = reservations::reserve(&db, m.customer, &r, FEE_BP, m.now)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404);

    // Operators without a customer side cannot reserve.
    let e = reservations::reserve(&db, m.operator, &req(&m, 8, 2, 4), FEE_BP, m.now)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 403);

    let n: i64 = sqlx::query_scalar("select count(*) from reservation")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(n, 0, "refused requests change nothing");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn reserve_locks_price_and_offers_the_next_window_when_full(db: PgPool) {
    let m = market(&db, 4).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 24, 10, 48), FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!(r.units, 3);
    assert_eq!(r.state, ReservationState::Confirmed);
    assert_eq!(allocations(&db, r.id).await, 3);
    assert_eq!(r.total_cents, r.base_cents - r.discount_cents + r.fee_cents);

    // Price changes later do not touch the contract.
    sqlx::query("update capacity_pool set price_cents = 999 where id = $1")
        .bind(m.pool)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(
        reservations::get(&db, m.customer, r.id, m.now)
            .await
            .unwrap()
            .unit_price_cents,
        200
    );

    // Two more nodes overlapping: only one is free; the answer names the next window.
    let e = reservations::reserve(&db, m.other_customer, &req(&m, 16, 20, 10), FEE_BP, m.now)
        .await
        .unwrap_err();
    match e {
        ServiceError::Conflict {
            message,
            next_start,
            ..
        } => {
            assert_eq!(next_start, Some(hour(m.now, 58)), "{message}");
            assert!(message.contains("only 1 of the 2 nodes"), "{message}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The other customer cannot see the first one's reservation.
    let e = reservations::get(&db, m.other_customer, r.id, m.now)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn racing_for_the_last_units_exactly_the_free_units_win(db: PgPool) {
    let m = market(&db, 10).await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let db = db.clone();
        let r = req(&m, 8, 5, 24);
        let (customer, now) = (m.customer, m.now);
        tasks.push(tokio::spawn(async move {
            reservations::reserve(&db, customer, &r, FEE_BP, now).await
        }));
    }
    let (mut won, mut conflicts) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(ServiceError::Conflict { .. }) => conflicts += 1,
            Err(other) => panic!("a race must end in success or a conflict, got {other:?}"),
        }
    }
    assert_eq!((won, conflicts), (10, 30));
    let (reservations, allocated): (i64, i64) = sqlx::query_as(
        "select (select count(*) from reservation), (select count(*) from allocation)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        (reservations, allocated),
        (10, 10),
        "no partial or extra reservations"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn cancel_refunds_by_policy_and_frees_the_units(db: PgPool) {
    let m = market(&db, 2).await;
    let early = reservations::reserve(&db, m.customer, &req(&m, 16, 24 * 10, 24), FEE_BP, m.now)
        .await
        .unwrap();
    let late = reservations::reserve(&db, m.other_customer, &req(&m, 8, 24, 24), FEE_BP, m.now)
        .await
        .unwrap();

    let preview = reservations::cancel_preview(&db, m.customer, early.id, m.now)
        .await
        .unwrap();
    assert_eq!(
        (preview.refund_bp, preview.refund_cents),
        (10_000, early.total_cents)
    );
    let cancelled = reservations::cancel(&db, m.customer, early.id, m.now)
        .await
        .unwrap();
    assert_eq!(cancelled.state, ReservationState::Cancelled);
    assert_eq!(cancelled.refund_cents, Some(early.total_cents));
    assert_eq!(allocations(&db, early.id).await, 0);
    // The freed nodes can be sold again.
    reservations::reserve(
        &db,
        m.other_customer,
        &req(&m, 8, 24 * 10, 24),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();

    // 24 hours' notice: under the default policy, no refund.
    let c = reservations::cancel(&db, m.other_customer, late.id, m.now)
        .await
        .unwrap();
    assert_eq!(c.refund_cents, Some(0));

    let e = reservations::cancel(&db, m.customer, early.id, m.now)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already cancelled"), "{e}");
    let e = reservations::cancel(&db, m.other_customer, early.id, m.now)
        .await
        .unwrap_err();
    assert_eq!(
        e.status(),
        404,
        "another organization's reservation is invisible"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn extend_keeps_the_same_units_or_refuses_with_the_reason(db: PgPool) {
    let m = market(&db, 1).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 8, 10, 24), FEE_BP, m.now)
        .await
        .unwrap();
    let units_before: Vec<i64> =
        sqlx::query_scalar("select unit_id from allocation where reservation_id = $1")
            .bind(r.id)
            .fetch_all(&db)
            .await
            .unwrap();
    let longer = reservations::extend(
        &db,
        m.customer,
        r.id,
        ExtendTo::End(hour(m.now, 10 + 200)),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(longer.end, hour(m.now, 210));
    // 200 h crosses the 168 h tier: a discount now applies.
    assert!(longer.discount_cents > 0);
    assert_eq!(longer.base_cents, 8 * 200 * 200);
    let units_after: Vec<i64> =
        sqlx::query_scalar("select unit_id from allocation where reservation_id = $1")
            .bind(r.id)
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(units_before, units_after);

    // Someone books right after; extending into it is refused and changes nothing.
    reservations::reserve(&db, m.other_customer, &req(&m, 8, 210, 24), FEE_BP, m.now)
        .await
        .unwrap();
    let e = reservations::extend(
        &db,
        m.customer,
        r.id,
        ExtendTo::End(hour(m.now, 220)),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot be extended on the same units"),
        "{e}"
    );
    assert_eq!(
        reservations::get(&db, m.customer, r.id, m.now)
            .await
            .unwrap()
            .end,
        hour(m.now, 210)
    );
    let e = reservations::extend(
        &db,
        m.customer,
        r.id,
        ExtendTo::End(hour(m.now, 200)),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap_err();
    assert_eq!(e.status(), 422);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn blackouts_take_free_units_and_refuse_booked_ones_naming_the_reservations(db: PgPool) {
    let m = market(&db, 3).await;
    let r = reservations::reserve(&db, m.customer, &req(&m, 16, 10, 24), FEE_BP, m.now)
        .await
        .unwrap();
    let e = blackouts::add(
        &db,
        m.operator,
        m.pool,
        hour(m.now, 20),
        hour(m.now, 30),
        BlackoutUnits::All,
        "switch swap",
    )
    .await
    .unwrap_err();
    match e {
        ServiceError::Conflict {
            conflicting_reservations,
            message,
            ..
        } => {
            assert_eq!(conflicting_reservations, vec![r.id]);
            assert!(message.contains(&format!("#{}", r.id)), "{message}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // One free unit can go into maintenance.
    let b = blackouts::add(
        &db,
        m.operator,
        m.pool,
        hour(m.now, 20),
        hour(m.now, 30),
        BlackoutUnits::Count(1),
        "",
    )
    .await
    .unwrap();
    // Now nothing is left in that window for customers.
    let e = reservations::reserve(&db, m.other_customer, &req(&m, 8, 25, 2), FEE_BP, m.now)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 409);
    // Another operator cannot touch this pool.
    let stranger = org(&db, "Stranger Ops", "operator").await;
    assert_eq!(
        blackouts::remove(&db, stranger, b)
            .await
            .unwrap_err()
            .status(),
        404
    );
    blackouts::remove(&db, m.operator, b).await.unwrap();
    reservations::reserve(&db, m.other_customer, &req(&m, 8, 25, 2), FEE_BP, m.now)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_node_held_by_an_unfinished_booking_is_waited_for_not_refused(db: PgPool) {
    let m = market(&db, 2).await;
    // Maintenance on node 1 is being written in another transaction, not yet committed.
    let mut holder = db.begin().await.unwrap();
    let w = app::services::settlement::window(hour(m.now, 8), hour(m.now, 12));
    let b: i64 = sqlx::query_scalar(
        "insert into blackout (site_id, pool_id, during) values ((select site_id from capacity_pool where id = $1), $1, $2) returning id",
    )
    .bind(m.pool)
    .bind(w)
    .fetch_one(&mut *holder)
    .await
    .unwrap();
    app::services::settlement::allocate(
        &mut holder,
        m.pool,
        &w,
        1,
        app::services::settlement::AllocationOwner::Blackout(b),
    )
    .await
    .unwrap();
    let (db2, r, customer, now) = (db.clone(), req(&m, 16, 10, 4), m.customer, m.now);
    let both =
        tokio::spawn(async move { reservations::reserve(&db2, customer, &r, FEE_BP, now).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !both.is_finished(),
        "the request waits for the held node instead of answering"
    );
    // The other booking gives up; both nodes are free after all.
    holder.rollback().await.unwrap();
    let res = both.await.unwrap().unwrap();
    assert_eq!(res.units, 2);
    assert_eq!(allocations(&db, res.id).await, 2);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_booking_in_a_lock_cycle_gives_way_within_its_bound_and_then_books(db: PgPool) {
    let m = market(&db, 2).await;
    let units = unit_ids(&db, m.pool).await;
    // Another writer holds node 2 (as an incident's healing holds the incident's unit).
    let mut other = db.begin().await.unwrap();
    lock_unit(&mut other, units[1]).await;
    // The booking takes node 1, then waits for node 2.
    let (db2, r, customer, now) = (db.clone(), req(&m, 16, 10, 4), m.customer, m.now);
    let booking =
        tokio::spawn(async move { reservations::reserve(&db2, customer, &r, FEE_BP, now).await });
    until_someone_waits_for_a_lock(&db, "the booking never waited for node 2").await;
    // Now the other writer wants node 1, which the booking holds: a cycle. PostgreSQL would
    // break it only after deadlock_timeout (1 s), aborting one of the two; the booking's
    // bounded wait gives it up first, so the other writer gets node 1 well within that.
    let waited = std::time::Instant::now();
    sqlx::query("select 1 from capacity_unit where id = $1 for no key update")
        .bind(units[0])
        .execute(&mut *other)
        .await
        .expect("the other writer is not the deadlock's victim");
    let waited = waited.elapsed();
    assert!(
        waited < std::time::Duration::from_millis(700),
        "the other writer waited {waited:?} for node 1; the booking's wait is bounded at {}",
        app::services::settlement::EXACT_LOCK_WAIT
    );
    other.commit().await.unwrap();
    // The booking tried again and took both nodes.
    let res = booking.await.unwrap().unwrap();
    assert_eq!(res.units, 2);
    assert_eq!(allocations(&db, res.id).await, 2);
}

/// Concurrent bookings are written by shared statements (`reservations::together`): each is
/// still whole, on its own units, in the books and the audit trail, and bookings of one
/// window never take the same unit even when they wait together.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn concurrent_bookings_commit_together_each_whole_and_in_the_books(db: PgPool) {
    let m = market(&db, 40).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let db = db.clone();
        // 32 windows of their own, then 8 bookings of one window.
        let from = if i < 32 { 5 + 24 * i } else { 5 };
        let r = req(&m, 8, from, 24);
        let (customer, now) = (m.customer, m.now);
        tasks.push(tokio::spawn(async move {
            reservations::reserve(&db, customer, &r, FEE_BP, now).await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().expect("every booking fits").id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    let (allocations, units_of_one_window, charges, audited, together): (i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "select (select count(*) from allocation),
                    (select count(distinct unit_id) from allocation where lower(during) = $1),
                    (select count(*) from ledger_transaction where kind = 'charge'),
                    (select count(*) from audit_event where action = 'reservation.created'),
                    (select count(*) from (select xmin::text from reservation group by 1
                                            having count(*) > 1) shared)",
        )
        .bind(hour(m.now, 5))
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(allocations, 40, "one node each, nothing partial");
    assert_eq!(
        units_of_one_window, 9,
        "the first window's booking and the 8 others on different nodes"
    );
    assert_eq!((charges, audited), (40, 40));
    assert!(together >= 1, "some bookings committed in one transaction");
    crate::fixtures::assert_books_reconcile(&db, m.now).await;
}

/// A group whose statement fails (here: two bookings under one request key) writes
/// nothing; each of its bookings is then booked alone, and the key still books once.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_failed_group_books_each_booking_alone_and_a_key_still_books_once(db: PgPool) {
    let m = market(&db, 40).await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let db = db.clone();
        let r = req(&m, 8, 5 + 24 * i, 24);
        let key = if i % 2 == 0 {
            "same-key".to_string()
        } else {
            format!("key-{i}")
        };
        let (customer, now) = (m.customer, m.now);
        tasks.push(tokio::spawn(async move {
            (
                key.clone(),
                reservations::reserve_once(&db, customer, &r, &key, FEE_BP, now).await,
            )
        }));
    }
    let mut same = Vec::new();
    for t in tasks {
        let (key, made) = t.await.unwrap();
        let made = made.expect("every booking is answered with its reservation");
        if key == "same-key" {
            same.push(made.id);
        }
    }
    same.dedup();
    assert_eq!(
        same.len(),
        1,
        "one reservation for the key, given to every request with it"
    );
    let (reservations, allocations): (i64, i64) = sqlx::query_as(
        "select (select count(*) from reservation), (select count(*) from allocation)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((reservations, allocations), (17, 17));
    crate::fixtures::assert_books_reconcile(&db, m.now).await;
}

/// The pids of booking statements waiting for a lock, oldest first.
async fn waiting_bookings(db: &PgPool) -> Vec<i32> {
    sqlx::query_scalar(
        "select pid from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'
            and query like '%with req as%'
          order by query_start",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

async fn until_waiting(db: &PgPool, what: impl Fn(&[i32]) -> bool) -> Vec<i32> {
    for _ in 0..500 {
        let pids = waiting_bookings(db).await;
        if what(&pids) {
            return pids;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the booking statements never reached the expected wait");
}

/// A group of bookings whose connection breaks may have committed with its answer lost, so
/// none of its bookings is booked again: each is answered that its outcome is unknown (and
/// nothing was in fact written). A statement the database refuses is the other case: its
/// bookings are booked alone (the test above).
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_group_whose_connection_breaks_is_not_booked_again(db: PgPool) {
    let m = market(&db, 8).await;
    // Every booking of the customer waits for this lock (the reservation's foreign key).
    let mut blocker = db.begin().await.unwrap();
    sqlx::query("select 1 from organization where id = $1 for update")
        .bind(m.customer)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let book = |i: i64| {
        let (db, r, customer, now) = (db.clone(), req(&m, 8, 5 + 24 * i, 24), m.customer, m.now);
        tokio::spawn(async move { reservations::reserve(&db, customer, &r, FEE_BP, now).await })
    };
    // The two workers each take one booking and wait; the next two queue as one group.
    let first = book(0);
    let pids = until_waiting(&db, |p| p.len() == 1).await;
    let second = book(1);
    until_waiting(&db, |p| p.len() == 2).await;
    let grouped = [book(2), book(3)];
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The first worker's connection ends: its booking alone is answered with the error, and
    // the worker takes the group of two on a new connection, which waits in turn.
    sqlx::query("select pg_terminate_backend($1)")
        .bind(pids[0])
        .execute(&db)
        .await
        .unwrap();
    let first = first.await.unwrap();
    assert!(
        matches!(first, Err(ServiceError::Unavailable(_))),
        "{first:?}"
    );
    let now_waiting = until_waiting(&db, |p| p.len() == 2 && !p.contains(&pids[0])).await;
    let group_pid = *now_waiting.last().unwrap();
    sqlx::query("select pg_terminate_backend($1)")
        .bind(group_pid)
        .execute(&db)
        .await
        .unwrap();
    // Released before the group's answers are read: a booking sent to be booked alone would
    // now go through.
    blocker.rollback().await.unwrap();
    for g in grouped {
        let got = g.await.unwrap();
        match got {
            Err(e) => assert!(e.may_have_taken_effect(), "{e:?}"),
            Ok(r) => panic!("a booking of the broken group was booked again: {}", r.id),
        }
    }
    let second = second
        .await
        .unwrap()
        .expect("the other worker's booking goes through");
    let ids: Vec<i64> = sqlx::query_scalar("select id from reservation")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(ids, vec![second.id]);
}
