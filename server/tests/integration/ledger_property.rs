//! A property test of the ledger against PostgreSQL: random reserve / extend / cancel /
//! complete sequences, after every step of which each reservation's books are what the
//! policy says, all accounts sum to zero and the reconciliation agrees.

use crate::fixtures::{books, hour, ledger_sum, market_named, FEE_BP};
use app::booking::{BookingRequest, ExtendTo};
use app::pricing::{self, Priced, Quantity, TermDiscount};
use app::services::error::ServiceError;
use app::services::{ledger, reservations};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use sqlx::PgPool;

#[derive(Clone, Debug)]
enum Op {
    Reserve {
        nodes: i64,
        start: i64,
        len: i64,
    },
    Extend {
        pick: usize,
        extra: i64,
    },
    Cancel {
        pick: usize,
    },
    /// The clock moves on by `hours` and the completion job runs.
    Complete {
        hours: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..=2_i64, 1..200_i64, 1..30_i64).prop_map(|(nodes, start, len)| Op::Reserve { nodes, start, len }),
        2 => (any::<usize>(), 1..200_i64).prop_map(|(pick, extra)| Op::Extend { pick, extra }),
        2 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        2 => (1..60_i64).prop_map(|hours| Op::Complete { hours }),
    ]
}

/// What the policy says a reservation owes, kept by the test itself.
struct Expected {
    id: i64,
    nodes: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    refund: Option<i64>,
}

fn policy_price(nodes: i64, hours: i64) -> pricing::PriceBreakdown {
    pricing::price(
        Priced::Gpu {
            nodes,
            gpus_per_node: 8,
            cents_per_gpu_hour: 200,
        },
        hours,
        &[TermDiscount {
            min_hours: 168,
            discount_bp: 500,
        }],
        FEE_BP,
    )
}

async fn run_case(db: &PgPool, case: usize, ops: Vec<Op>) {
    let m = market_named(db, 3, &format!(" {case}")).await;
    let mut clock = m.now;
    let mut expected: Vec<Expected> = Vec::new();
    for op in ops {
        match op {
            Op::Reserve { nodes, start, len } => {
                let r = BookingRequest {
                    pool_id: m.pool,
                    quantity: Quantity::Units(nodes),
                    start: hour(m.now, start),
                    end: hour(m.now, start + len),
                    tier: app::booking::Tier::Firm,
                    agreed_total_cents: None,
                };
                match reservations::reserve(db, m.customer, &r, FEE_BP, clock).await {
                    Ok(res) => expected.push(Expected {
                        id: res.id,
                        nodes,
                        start: r.start,
                        end: r.end,
                        refund: None,
                    }),
                    Err(ServiceError::Conflict { .. } | ServiceError::Invalid(_)) => {}
                    Err(e) => panic!("reserve: {e}"),
                }
            }
            Op::Extend { pick, extra } if !expected.is_empty() => {
                let i = pick % expected.len();
                let new_end = expected[i].end + Duration::hours(extra);
                match reservations::extend(
                    db,
                    m.customer,
                    expected[i].id,
                    ExtendTo::End(new_end),
                    FEE_BP,
                    clock,
                )
                .await
                {
                    Ok(_) => expected[i].end = new_end,
                    Err(ServiceError::Conflict { .. } | ServiceError::Invalid(_)) => {}
                    Err(e) => panic!("extend: {e}"),
                }
            }
            Op::Cancel { pick } if !expected.is_empty() => {
                let i = pick % expected.len();
                match reservations::cancel(db, m.customer, expected[i].id, clock).await {
                    Ok(res) => {
                        let e = &mut expected[i];
                        let total =
                            policy_price(e.nodes, (e.end - e.start).num_hours()).total_cents;
                        let bp = pricing::refund_bp_for((e.start - clock).num_hours(), &[]);
                        assert_eq!(res.refund_cents, Some(pricing::refund_cents(total, bp)));
                        e.refund = res.refund_cents;
                    }
                    Err(ServiceError::Conflict { .. }) => {
                        let e = &expected[i];
                        assert!(
                            e.refund.is_some() || clock >= e.start,
                            "cancel refused before the start"
                        );
                    }
                    Err(e) => panic!("cancel: {e}"),
                }
            }
            Op::Complete { hours } => {
                clock += Duration::hours(hours);
                ledger::recognize_completed(db, clock).await.unwrap();
            }
            _ => {}
        }
        // After every step: each reservation's books are what the policy says...
        for e in &expected {
            let price = policy_price(e.nodes, (e.end - e.start).num_hours());
            let b = books(db, e.id).await;
            assert_eq!(
                b.charged, price.total_cents,
                "charged, reservation {}",
                e.id
            );
            match e.refund {
                Some(refund) => {
                    assert_eq!(b.refunded, refund, "refund, reservation {}", e.id);
                    assert_eq!(b.charged - b.refunded, b.operator + b.fee);
                    assert_eq!(b.unearned, 0);
                }
                None if e.end <= clock => {
                    assert_eq!(b.operator, price.base_cents - price.discount_cents);
                    assert_eq!(b.fee, price.fee_cents);
                    assert_eq!((b.refunded, b.unearned), (0, 0));
                }
                None => assert_eq!(
                    (b.refunded, b.operator, b.fee, b.unearned),
                    (0, 0, 0, price.total_cents)
                ),
            }
        }
        // ...and all accounts together sum to zero, and the reconciliation agrees.
        assert_eq!(ledger_sum(db).await, 0);
        let r = ledger::reconcile(db, clock).await.unwrap();
        assert!(r.is_clean(), "{r:?}");
    }
}

#[test]
fn random_reserve_extend_cancel_complete_sequences_keep_the_books_right() {
    let (rt, db, name, mut runner) = crate::model::property_setup("ledger", 32);
    let case = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&proptest::collection::vec(op(), 1..25), |ops| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        rt.block_on(run_case(&db, n, ops));
        Ok(())
    });
    rt.block_on(crate::model::drop_database(db, &name));
    result.unwrap();
}
