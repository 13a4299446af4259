//! The database round trips of one booking, counted: a regression check on the reserve
//! path's statements (issue 20). sqlx reports every statement it sends as a `sqlx::query`
//! event with its time; a layer counts them while one booking is made through the use case
//! both doors call: a firm booking with free units (the common path), and a firm booking
//! that must preempt (the exact path). The figures are in BENCHMARKS.md; a change that adds
//! a round trip must raise the budget here, and say why.

use app::booking::Tier;
use app::services::reservations;
use chrono::Utc;
use sqlx::PgPool;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::fixtures::{market, req, FEE_BP};
use crate::preemption::{ask, flexible_market, org};

/// The statements of one firm booking with free units (the common path): read the pool,
/// then the one statement that books (`reservations::book`), committed on its own. A booking
/// alone is its own group (`reservations::together`); the group's worker runs on the same
/// thread in this test's runtime, so its statement is counted.
const BUDGET: usize = 2;

/// The statements of one firm booking that takes its units partly free and partly from an
/// interruptible booking: read the pool, whose count of free units shows the booking must
/// preempt, so the one-statement booking (which never preempts) is not tried; then the
/// preempting lane's transaction (a booking alone is its own group): release expired holds,
/// book what is free waiting for units held by unfinished transactions (one statement, one
/// call of the database's rule), preempt into the reservation (`preempt_each`), commit.
/// (sqlx does not report its `BEGIN` as a statement.)
const PREEMPTING_BUDGET: usize = 5;

/// Each statement sqlx sent: (its summary, seconds).
#[derive(Clone, Default)]
struct Statements(Arc<Mutex<Vec<(String, f64)>>>);

#[derive(Default)]
struct Fields {
    summary: String,
    elapsed: f64,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "summary" {
            self.summary = value.to_string();
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed = value;
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" && self.summary.is_empty() {
            self.summary = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        self.0.lock().unwrap().push((f.summary, f.elapsed));
    }
}

/// The statements `booking` sends, each printed with its time, asserted within `budget`.
async fn counted<T, E: std::fmt::Debug>(
    budget: usize,
    booking: impl Future<Output = Result<T, E>>,
) -> Vec<(String, f64)> {
    let seen = Statements::default();
    let subscriber = tracing_subscriber::registry().with(seen.clone());
    let booked = {
        let _scope = tracing::subscriber::set_default(subscriber);
        booking.await
    };
    booked.unwrap();
    let statements = seen.0.lock().unwrap().clone();
    for (i, (summary, secs)) in statements.iter().enumerate() {
        println!("{:>2}. {:>8.3} ms  {summary}", i + 1, secs * 1000.0);
    }
    assert!(
        !statements.is_empty(),
        "no statement was seen: the counter is not listening"
    );
    assert!(
        statements.len() <= budget,
        "one booking took {} round trips, the budget is {budget}: {statements:#?}",
        statements.len()
    );
    statements
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn one_booking_takes_a_counted_number_of_round_trips(db: PgPool) {
    let m = market(&db, 8).await;
    // A first booking warms the connection's statement cache, as in a running server.
    reservations::reserve(&db, m.customer, &req(&m, 8, 2, 4), FEE_BP, Utc::now())
        .await
        .unwrap();
    let second = req(&m, 16, 10, 4);
    let booking = reservations::reserve(&db, m.customer, &second, FEE_BP, Utc::now());
    counted(BUDGET, booking).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn one_preempting_booking_takes_a_counted_number_of_round_trips(db: PgPool) {
    let m = flexible_market(&db, 2, 0).await;
    let flex = org(&db, "Flex").await;
    // Both nodes held interruptibly over hours 2-30; a first preempting booking warms the
    // statement cache and frees one node from hour 4 on. The booking counted takes that
    // node as free and preempts the other.
    reservations::reserve(
        &db,
        flex,
        &ask(&m, 2, 2, 28, Tier::Interruptible),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    reservations::reserve(
        &db,
        m.customer,
        &ask(&m, 1, 4, 4, Tier::Firm),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    let firm = ask(&m, 2, 10, 4, Tier::Firm);
    let booking = reservations::reserve(&db, m.customer, &firm, FEE_BP, m.now);
    let statements = counted(PREEMPTING_BUDGET, booking).await;
    assert!(
        statements.iter().any(|(s, _)| s.contains("preempt_group")),
        "the booking did not preempt: {statements:#?}"
    );
    // The booking statement is sent once, by the exact path: the one-statement booking,
    // which cannot preempt, was not tried first.
    let books = statements
        .iter()
        .filter(|(s, _)| s.trim_start().starts_with("with req"))
        .count();
    assert_eq!(books, 1, "the booking statements sent: {statements:#?}");
}

/// On a pool that sells interruptible hours, a firm booking that finds enough units free
/// takes the common path (the pool read counts them): the count sends the booking to the
/// exact path only when it must preempt.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_firm_booking_with_free_units_on_a_flexible_pool_takes_the_common_path(db: PgPool) {
    let m = flexible_market(&db, 2, 0).await;
    let flex = org(&db, "Flex").await;
    // One of the two nodes held interruptibly over hours 2-30, one free; a first booking
    // warms the statement cache.
    reservations::reserve(
        &db,
        flex,
        &ask(&m, 1, 2, 28, Tier::Interruptible),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    reservations::reserve(
        &db,
        m.customer,
        &ask(&m, 1, 40, 4, Tier::Firm),
        FEE_BP,
        m.now,
    )
    .await
    .unwrap();
    let firm = ask(&m, 1, 10, 4, Tier::Firm);
    let booking = reservations::reserve(&db, m.customer, &firm, FEE_BP, m.now);
    let statements = counted(BUDGET, booking).await;
    assert!(
        !statements.iter().any(|(s, _)| s.contains("preempt_group")),
        "the booking preempted although a node was free: {statements:#?}"
    );
    let cuts: i64 = sqlx::query_scalar("select count(*) from allocation_cut")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(cuts, 0, "nothing was preempted");
}
