//! The boundary to a payment provider: the one place money would leave the platform.
//!
//! Rigshift has no payment rail yet. A payout is made outside the app (a bank transfer) and
//! recorded here with its reference; [`pay_out`] is what a provider integration would
//! replace. The contract a real rail must keep:
//!
//! 1. Choose the reference first (it doubles as the provider's idempotency key), then ask
//!    the provider to send the money, then record the payout with that reference. A retry
//!    after a crash reuses the reference: the provider sends once and the ledger records
//!    once (`ledger_post_payout` returns the payout already posted under it).
//! 2. Never send more than the operator's payable balance; the ledger refuses to record it
//!    (the payable account is locked while the payout is checked and posted).

use super::error::ServiceError;
use super::ledger;
use sqlx::PgPool;

/// Pays `amount_cents` to the operator: today, records a transfer made by hand under
/// `reference` (the bank's transfer id), or under a generated `manual-…` one.
pub async fn pay_out(
    db: &PgPool,
    operator_id: i64,
    amount_cents: i64,
    reference: Option<&str>,
) -> Result<i64, ServiceError> {
    let reference = match reference.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => r.to_string(),
        None => format!("manual-{}", super::token::random_hex(8)),
    };
    ledger::record_payout(db, operator_id, amount_cents, &reference).await
}
