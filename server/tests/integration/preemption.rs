//! The interruptible tier against PostgreSQL: priced at the pool's interruptible price,
//! preempted by firm bookings only after the notice period and in the rule's order, credited
//! to the cent, never taking a firm reservation's hours, and two firm bookings racing for
//! the same interruptible units.

use crate::fixtures::{assert_books_reconcile, gpu_pool, hour, market, unit_ids, Market, FEE_BP};
use crate::helpers::Gate;
use app::booking::{BookingRequest, HoldRequest, Tier};
use app::market::InterruptibleOffer;
use app::pricing::Quantity;
use app::services::catalog::{self, PoolInput};
use app::services::error::ServiceError;
use app::services::reservations;
use app::services::reservations::reallocation::{self, CutReason};
use app::window::HourWindow;
use sqlx::PgPool;

/// Firm at 200 cents per GPU-hour, interruptible at 120 with `notice` hours' notice.
fn flexible_pool(name: &str, nodes: i64, notice: i64) -> PoolInput {
    PoolInput {
        interruptible: Some(InterruptibleOffer {
            price_cents: 120,
            notice_hours: notice,
        }),
        ..gpu_pool(name, nodes)
    }
}

/// A market whose pool sells both tiers.
pub(crate) async fn flexible_market(db: &PgPool, nodes: i64, notice: i64) -> Market {
    let mut m = market(db, 1).await;
    m.pool = catalog::create_pool(
        db,
        m.operator,
        m.site,
        &flexible_pool("Flex", nodes, notice),
        None,
    )
    .await
    .unwrap();
    catalog::open_window(
        db,
        m.operator,
        m.pool,
        hour(m.now, -24),
        hour(m.now, 24 * 60),
    )
    .await
    .unwrap();
    m
}

pub(crate) fn ask(m: &Market, nodes: i64, from_h: i64, hours: i64, tier: Tier) -> BookingRequest {
    BookingRequest {
        pool_id: m.pool,
        quantity: Quantity::Units(nodes),
        start: hour(m.now, from_h),
        end: hour(m.now, from_h + hours),
        tier,
        agreed_total_cents: None,
    }
}

pub(crate) async fn org(db: &PgPool, name: &str) -> i64 {
    sqlx::query_scalar("insert into organization (name, kind) values ($1, 'customer') returning id")
        .bind(name)
        .fetch_one(db)
        .await
        .unwrap()
}

/// (unit number, start hour, end hour) of what the reservation holds.
async fn holds(db: &PgPool, m: &Market, customer: i64, id: i64) -> Vec<(i64, i64, i64)> {
    reservations::holdings(db, customer, id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| {
            (
                h.unit,
                (h.start - hour(m.now, 0)).num_hours(),
                (h.end - hour(m.now, 0)).num_hours(),
            )
        })
        .collect()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn interruptible_capacity_is_priced_lower_and_refused_where_not_sold(db: PgPool) {
    let m = flexible_market(&db, 2, 2).await;
    let firm = reservations::quote(&db, &ask(&m, 1, 10, 10, Tier::Firm), FEE_BP, m.now)
        .await
        .unwrap();
    let flex = reservations::quote(&db, &ask(&m, 1, 10, 10, Tier::Interruptible), FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!((firm.unit_price_cents, flex.unit_price_cents), (200, 120));
    assert_eq!(flex.price.base_cents, 120 * 8 * 10);
    let r = reservations::reserve(
        &db,
        m.customer,
        &ask(&m, 1, 10, 10, Tier::Interruptible),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(
        (r.tier, r.unit_price_cents, r.total_cents),
        (Tier::Interruptible, 120, flex.price.total_cents)
    );

    // A pool that sells firm capacity only refuses the tier, naming it.
    let firm_only = crate::fixtures::market_named(&db, 1, " firm only").await;
    let e = reservations::quote(
        &db,
        &BookingRequest {
            tier: Tier::Interruptible,
            ..crate::fixtures::req(&firm_only, 8, 10, 5)
        },
        FEE_BP,
        m.now,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, ServiceError::Invalid(f) if f[0].field == "tier"),
        "{e:?}"
    );

    // The offer must be cheaper than firm capacity.
    let e = catalog::create_pool(
        &db,
        m.operator,
        m.site,
        &PoolInput {
            interruptible: Some(InterruptibleOffer {
                price_cents: 250,
                notice_hours: 0,
            }),
            ..gpu_pool("Too dear", 1)
        },
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, ServiceError::Invalid(f) if f[0].field == "interruptible_price_cents"),
        "{e:?}"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_firm_booking_preempts_after_the_notice_in_order_and_credits_to_the_cent(db: PgPool) {
    let m = flexible_market(&db, 2, 3).await;
    let (a, b) = (org(&db, "Flex A").await, org(&db, "Flex B").await);
    // A books unit 1 first, B unit 2 later; same price, so B (the latest booked) goes first.
    let ra = reservations::reserve(
        &db,
        a,
        &ask(&m, 1, 1, 20, Tier::Interruptible),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    let rb = reservations::reserve(
        &db,
        b,
        &ask(&m, 1, 1, 20, Tier::Interruptible),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();

    // Within the notice (3 hours from the next whole hour), nothing may be taken.
    let early = ask(&m, 1, 2, 5, Tier::Firm);
    let q = reservations::quote(&db, &early, FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!(q.preemption, None);
    let e = reservations::reserve(&db, m.customer, &early, FEE_BP, m.now)
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::Conflict { .. }), "{e:?}");

    // From hour 10 on it may: the quote says so, and the booking takes B's unit.
    let firm = ask(&m, 1, 10, 6, Tier::Firm);
    let q = reservations::quote(&db, &firm, FEE_BP, m.now)
        .await
        .unwrap();
    let p = q.preemption.expect("the quote says it would preempt");
    assert_eq!((p.units, p.from), (1, hour(m.now, 10)));
    let f = reservations::reserve(&db, m.customer, &firm, FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!(f.tier, Tier::Firm);
    assert_eq!(holds(&db, &m, m.customer, f.id).await, vec![(2, 10, 16)]);
    assert_eq!(holds(&db, &m, b, rb.id).await, vec![(2, 1, 10)]);
    assert_eq!(holds(&db, &m, a, ra.id).await, vec![(1, 1, 21)]);

    // B lost hours 10 to 21 of its 20: credited 11/20 of what it paid, to the cent.
    let b_now = reservations::get(&db, b, rb.id, m.now).await.unwrap();
    assert_eq!(b_now.credited_cents, rb.total_cents * 11 / 20);
    let credits = reservations::credits(&db, b, rb.id).await.unwrap();
    assert_eq!(
        (credits[0].reason.as_str(), credits[0].unit_hours),
        ("preempted", 11)
    );
    assert!(
        credits[0].memo.contains("preempted from"),
        "{}",
        credits[0].memo
    );
    // B and the operator are told.
    let told: Vec<i64> = sqlx::query_scalar(
        "select organization_id from event_outbox where kind = 'reservation.preempted' and (payload->>'reservation_id')::bigint = $1 order by 1",
    )
    .bind(rb.id)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(told, {
        let mut v = vec![m.operator, b];
        v.sort();
        v
    });
    let causes: Vec<String> = sqlx::query_scalar(
        "select payload->>'cause' from event_outbox where kind = 'reservation.preempted' and (payload->>'reservation_id')::bigint = $1",
    )
    .bind(rb.id)
    .fetch_all(&db)
    .await
    .unwrap();
    assert!(causes.iter().all(|c| c == "firm_booking"), "{causes:?}");

    // Cheaper first: a third customer's interruptible booking at a lower price (after a price
    // cut) goes before A's.
    catalog::update_pool(
        &db,
        m.operator,
        m.pool,
        &PoolInput {
            interruptible: Some(InterruptibleOffer {
                price_cents: 90,
                notice_hours: 3,
            }),
            ..flexible_pool("Flex", 2, 3)
        },
    )
    .await
    .unwrap();
    let c = org(&db, "Flex C").await;
    let rc = reservations::reserve(
        &db,
        c,
        &ask(&m, 1, 16, 10, Tier::Interruptible),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(holds(&db, &m, c, rc.id).await, vec![(2, 16, 26)]);
    let f2 = reservations::reserve(
        &db,
        m.customer,
        &ask(&m, 1, 18, 2, Tier::Firm),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(holds(&db, &m, m.customer, f2.id).await, vec![(2, 18, 20)]);
    assert_eq!(holds(&db, &m, c, rc.id).await, vec![(2, 16, 18)]);
    assert_eq!(
        holds(&db, &m, a, ra.id).await,
        vec![(1, 1, 21)],
        "A paid more: kept"
    );

    assert_books_reconcile(&db, m.now).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn firm_hours_are_never_preempted_nor_cut_for_anything_but_an_incident(db: PgPool) {
    let m = flexible_market(&db, 1, 0).await;
    let held = reservations::reserve(
        &db,
        m.customer,
        &ask(&m, 1, 5, 10, Tier::Firm),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    // Another firm booking finds nothing to take.
    let e = reservations::reserve(
        &db,
        m.other_customer,
        &ask(&m, 1, 8, 2, Tier::Firm),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ServiceError::Conflict { .. }), "{e:?}");
    // PostgreSQL refuses to cut a firm reservation for preemption or curtailment, whatever
    // code asks; an incident may.
    let unit = unit_ids(&db, m.pool).await[0];
    let piece = HourWindow::new(hour(m.now, 12), hour(m.now, 15)).unwrap();
    for why in [
        CutReason::Preempted,
        CutReason::Curtailed,
        CutReason::EndedEarly,
    ] {
        let mut tx = db.begin().await.unwrap();
        let e = reallocation::cut(&mut tx, held.id, unit, &piece, why)
            .await
            .unwrap_err();
        assert!(matches!(e, ServiceError::Conflict { .. }), "{why:?}: {e:?}");
    }
    let mut tx = db.begin().await.unwrap();
    reallocation::cut(&mut tx, held.id, unit, &piece, CutReason::Incident)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn two_firm_bookings_racing_for_interruptible_units_never_book_half(db: PgPool) {
    let m = flexible_market(&db, 3, 0).await;
    let flex = org(&db, "Flex").await;
    let r = reservations::reserve(
        &db,
        flex,
        &ask(&m, 3, 5, 10, Tier::Interruptible),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    // Two firm bookings of two units each over the same hours: only one fits.
    let (x, y) = (org(&db, "Firm X").await, org(&db, "Firm Y").await);
    let book = |customer: i64| {
        let db = db.clone();
        let request = ask(&m, 2, 6, 4, Tier::Firm);
        let now = m.now;
        tokio::spawn(
            async move { reservations::reserve(&db, customer, &request, FEE_BP, now).await },
        )
    };
    let (bx, by) = (book(x), book(y));
    let (bx, by) = (bx.await.unwrap(), by.await.unwrap());
    let won = [&bx, &by].iter().filter(|b| b.is_ok()).count();
    assert_eq!(won, 1, "x {bx:?}, y {by:?}");
    let lost = if bx.is_ok() { by } else { bx };
    assert!(
        matches!(lost, Err(ServiceError::Conflict { .. })),
        "{lost:?}"
    );
    // The interruptible reservation lost exactly two units from hour 6, credited once each.
    let credits = reservations::credits(&db, flex, r.id).await.unwrap();
    assert_eq!(credits.iter().map(|c| c.unit_hours).sum::<i64>(), 2 * 9);
    let units: i64 = sqlx::query_scalar(
        "select count(*) from allocation where reservation_id = $1 and upper(during) = $2",
    )
    .bind(r.id)
    .bind(hour(m.now, 15))
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(units, 1);
    assert_books_reconcile(&db, m.now).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn search_finds_the_interruptible_tier_at_its_price(db: PgPool) {
    use app::services::search::{self, MarketQuery, SearchSort};
    let m = flexible_market(&db, 2, 2).await;
    let query = |tier: Tier| MarketQuery {
        kind: None,
        gpu_model: Some("H100 SXM".into()),
        quantity: Some(Quantity::Gpus(8)),
        hours: 24,
        start: Some(hour(m.now, 30)),
        within_days: None,
        region: None,
        energy_source: None,
        interconnect: None,
        max_price_cents: None,
        min_reliability_bp: None,
        tier,
        delivery: Default::default(),
        sort: SearchSort::Price,
        limit: 20,
        offset: 0,
    };
    // Firm: both pools of the market (the plain one and the flexible one) at their firm price.
    let firm = search::search(&db, &query(Tier::Firm), FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!(firm.hits.len(), 2);
    assert!(firm
        .hits
        .iter()
        .all(|h| h.tier == Tier::Firm && h.unit_price_cents == 200));
    // Interruptible: only the pool that sells it, at its price, with a quote to match.
    let flex = search::search(&db, &query(Tier::Interruptible), FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!(flex.hits.len(), 1);
    let hit = &flex.hits[0];
    assert_eq!(
        (hit.pool_id, hit.unit_price_cents, hit.tier),
        (m.pool, 120, Tier::Interruptible)
    );
    let quote = reservations::quote(&db, &ask(&m, 1, 30, 24, Tier::Interruptible), FEE_BP, m.now)
        .await
        .unwrap();
    assert_eq!(hit.price, quote.price);
    // The price ceiling applies to the tier asked for.
    let capped = search::search(
        &db,
        &MarketQuery {
            max_price_cents: Some(150),
            min_reliability_bp: None,
            ..query(Tier::Interruptible)
        },
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(capped.hits.len(), 1);
}

/// Stops a firm booking inside the database once it cuts a piece starting at hour `from_h`
/// (before the cut is written), its transaction open, until the gate opens.
async fn gate_the_cut_at(db: &PgPool, m: &Market, from_h: i64) -> Gate {
    Gate::close(
        db,
        "hold_the_cut",
        "insert",
        "allocation_cut",
        &format!("lower(new.during) = '{}'", hour(m.now, from_h).to_rfc3339()),
    )
    .await
}

/// `customer` books `request` in a task of its own.
fn reserve_in_task(
    db: &PgPool,
    m: &Market,
    customer: i64,
    request: BookingRequest,
) -> tokio::task::JoinHandle<Result<app::booking::Reservation, ServiceError>> {
    let (db, now) = (db.clone(), m.now);
    tokio::spawn(async move { reservations::reserve(&db, customer, &request, FEE_BP, now).await })
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn firm_bookings_preempting_one_unit_for_different_hours_do_not_wait_for_each_other(
    db: PgPool,
) {
    let m = flexible_market(&db, 1, 0).await;
    let flex = org(&db, "Flex").await;
    // The pool's one node is held interruptibly in three blocks, by three reservations.
    let mut blocks = Vec::new();
    for from_h in [1, 11, 21] {
        let r = ask(&m, 1, from_h, 10, Tier::Interruptible);
        blocks.push(
            reservations::reserve(&db, flex, &r, FEE_BP, m.now)
                .await
                .unwrap(),
        );
    }
    // The firm customer has booked before (a customer's first booking opens its ledger
    // accounts, which a second booking meanwhile would wait for).
    let earlier = ask(&m, 1, 50, 1, Tier::Firm);
    reservations::reserve(&db, m.customer, &earlier, FEE_BP, m.now)
        .await
        .unwrap();
    // A firm booking of hours 2-4 stops inside the database once it has cut the first block,
    // its transaction open.
    let gate = gate_the_cut_at(&db, &m, 2).await;
    let first = reserve_in_task(&db, &m, m.customer, ask(&m, 1, 2, 2, Tier::Firm));
    Gate::waiting(&db).await;
    // Firm bookings of the other blocks' hours preempt the same node meanwhile: they wait for
    // nothing the first holds (they queued behind the node's lock before).
    for from_h in [12, 22] {
        let request = ask(&m, 1, from_h, 2, Tier::Firm);
        let booked = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            reservations::reserve(&db, m.customer, &request, FEE_BP, m.now),
        )
        .await
        .expect("a preemption of other hours waited for the first")
        .unwrap();
        assert_eq!(
            holds(&db, &m, m.customer, booked.id).await,
            vec![(1, from_h, from_h + 2)]
        );
    }
    assert!(!first.is_finished());
    gate.open().await;
    let first = first.await.unwrap().unwrap();
    assert_eq!(holds(&db, &m, m.customer, first.id).await, vec![(1, 2, 4)]);
    // Each block lost the rest of its hours from the firm booking's start, credited once.
    for (r, (start, cut)) in blocks.iter().zip([(1, 2), (11, 12), (21, 22)]) {
        assert_eq!(holds(&db, &m, flex, r.id).await, vec![(1, start, cut)]);
        let credits = reservations::credits(&db, flex, r.id).await.unwrap();
        assert_eq!(
            credits.iter().map(|c| c.unit_hours).collect::<Vec<_>>(),
            vec![start + 10 - cut]
        );
    }
    assert_books_reconcile(&db, m.now).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_preemption_whose_holders_leave_a_gap_keeps_the_unit_from_a_booking_of_the_gap(
    db: PgPool,
) {
    let m = flexible_market(&db, 1, 0).await;
    let flex = org(&db, "Flex").await;
    let other = org(&db, "Gap buyer").await;
    // The node is held interruptibly over hours 1-5 only; a firm booking of hours 3-8 takes
    // it, and hours 5-8 are free: a gap another booking could take meanwhile.
    let held = ask(&m, 1, 1, 4, Tier::Interruptible);
    let r = reservations::reserve(&db, flex, &held, FEE_BP, m.now)
        .await
        .unwrap();
    for (customer, from_h) in [(m.customer, 50), (other, 52)] {
        // Both customers have booked before (a first booking opens ledger accounts).
        let earlier = ask(&m, 1, from_h, 1, Tier::Firm);
        reservations::reserve(&db, customer, &earlier, FEE_BP, m.now)
            .await
            .unwrap();
    }
    let gate = gate_the_cut_at(&db, &m, 3).await;
    let first = reserve_in_task(&db, &m, m.customer, ask(&m, 1, 3, 5, Tier::Firm));
    Gate::waiting(&db).await;
    // A booking of hour 6 finds the node free in the committed state, but the preempting
    // booking holds the node's lock: it waits, then finds the node taken.
    let gap = reserve_in_task(&db, &m, other, ask(&m, 1, 6, 1, Tier::Firm));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !gap.is_finished(),
        "the gap was booked under a preemption holding the node"
    );
    gate.open().await;
    let first = first.await.unwrap().unwrap();
    assert_eq!(holds(&db, &m, m.customer, first.id).await, vec![(1, 3, 8)]);
    let gap = gap.await.unwrap();
    assert!(matches!(gap, Err(ServiceError::Conflict { .. })), "{gap:?}");
    assert_eq!(holds(&db, &m, flex, r.id).await, vec![(1, 1, 3)]);
    assert_books_reconcile(&db, m.now).await;
}

/// Concurrent firm bookings that must preempt share transactions (the preempting lane of
/// `reservations::together`): each still takes its unit from an interruptible holder with
/// its credit (a cut ends the holder's unit from that hour on), and the books reconcile.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn concurrent_preempting_bookings_commit_together_each_whole_and_credited(db: PgPool) {
    let m = flexible_market(&db, 2, 0).await;
    let flex = org(&db, "Flex").await;
    let firm = org(&db, "Firm").await;
    // Both nodes held interruptible over hours 5..293: room for three rounds.
    reservations::reserve(
        &db,
        flex,
        &ask(&m, 2, 5, 3 * 96, Tier::Interruptible),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    // Whether bookings meet in a transaction depends on how they arrive: on a loaded
    // machine they may come one by one, so a round that shared none is followed by another
    // on later hours (every round's bookings are checked all the same).
    let mut together: i64 = 0;
    for round in 0..3 {
        let first_h = 5 + 96 * round;
        let mut tasks = Vec::new();
        for i in 0..24 {
            let db = db.clone();
            // 24 windows of 4 hours each on the interruptible hours.
            let request = ask(&m, 1, first_h + 4 * i, 4, Tier::Firm);
            let now = m.now;
            tasks.push(tokio::spawn(async move {
                reservations::reserve(&db, firm, &request, FEE_BP, now).await
            }));
        }
        let mut booked = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(r) => booked.push(r.id),
                other => panic!("round {round}, booking {i}: {other:?}"),
            }
        }
        assert_eq!(booked.len(), 24);
        let preempted: i64;
        (preempted, together) = sqlx::query_as(
            "select (select count(*) from allocation_cut
                      where reason = 'preempted' and lower(during) >= $2 and lower(during) < $3),
                    (select count(*) from (select xmin::text from reservation where id = any($1)
                                            group by 1 having count(*) > 1) shared)",
        )
        .bind(&booked)
        .bind(hour(m.now, first_h))
        .bind(hour(m.now, first_h + 96))
        .fetch_one(&db)
        .await
        .unwrap();
        // A preemption ends the holder's unit from its hour on, so the later windows find
        // it free: at most one cut per booking, and a round after the first may find both
        // nodes already free (cut in an earlier round).
        assert!(preempted <= 24, "{preempted} cuts");
        if round == 0 {
            assert!(preempted >= 1, "the first round preempted nothing");
        }
        for id in &booked {
            let units: i64 =
                sqlx::query_scalar("select count(*) from allocation where reservation_id = $1")
                    .bind(id)
                    .fetch_one(&db)
                    .await
                    .unwrap();
            assert_eq!(units, 1);
        }
        if together >= 1 {
            break;
        }
    }
    assert!(
        together >= 1,
        "some bookings committed in one transaction in one of three rounds"
    );
    assert_books_reconcile(&db, m.now).await;
}

/// The preempting lane takes no free unit for a booking whose pool read found the pool full,
/// but a hold that expired before the booking is released by the booking's own transaction:
/// its unit is free, and taken, before any interruptible unit is preempted.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_firm_booking_takes_the_unit_of_an_expired_hold_before_preempting(db: PgPool) {
    let m = flexible_market(&db, 2, 0).await;
    let (holder, flex) = (org(&db, "Holder").await, org(&db, "Flex").await);
    let held = reservations::hold(
        &db,
        holder,
        &HoldRequest {
            request: ask(&m, 1, 10, 4, Tier::Firm),
            minutes: Some(5),
        },
        None,
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    let interruptible = reservations::reserve(
        &db,
        flex,
        &ask(&m, 1, 10, 4, Tier::Interruptible),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    sqlx::query("update reservation set held_until = now() - interval '1 second' where id = $1")
        .bind(held.id)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(holds(&db, &m, holder, held.id).await, vec![(1, 10, 14)]);
    assert_eq!(
        holds(&db, &m, flex, interruptible.id).await,
        vec![(2, 10, 14)]
    );

    // The pool reads full (the expired hold still has its unit), so the booking joins the
    // preempting lane; its transaction releases the hold and takes that unit.
    let firm = reservations::reserve(
        &db,
        m.customer,
        &ask(&m, 1, 10, 4, Tier::Firm),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    assert_eq!(holds(&db, &m, m.customer, firm.id).await, vec![(1, 10, 14)]);
    let state: String = sqlx::query_scalar("select state from reservation where id = $1")
        .bind(held.id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(state, "cancelled");
    assert_eq!(
        holds(&db, &m, flex, interruptible.id).await,
        vec![(2, 10, 14)],
        "the interruptible booking keeps its hours"
    );
    let after = reservations::get(&db, flex, interruptible.id, m.now)
        .await
        .unwrap();
    assert_eq!(after.credited_cents, 0);
    assert_books_reconcile(&db, chrono::Utc::now()).await;
}
