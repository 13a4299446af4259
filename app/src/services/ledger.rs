//! Reading the books and the few writes that are not reservation changes (the completion
//! job, payouts). Reservation postings are made by the database itself, in the same
//! transaction as the change (the `reservation_ledger` trigger), so no code path can book,
//! extend or cancel without them.

use super::error::{Refusal, ServiceError};
use crate::ledger::{
    Difference, Earnings, EarningsRow, Month, OperatorBalance, Payout, PlatformBooks,
    Reconciliation, Statement, StatementLine,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// The books are kept per currency; every listed pool is priced in US dollars today.
pub const CURRENCY: &str = "USD";

/// One entry on one of an organization's accounts, for the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub id: i64,
    pub transaction_id: i64,
    /// `charge`, `extension`, `refund`, `credit`, `recognition`, `payout` or `correction`.
    pub transaction_kind: String,
    /// `customer_receivable` or `operator_payable`.
    pub account: String,
    pub reservation_id: Option<i64>,
    /// Positive: a debit (the customer owes more, or the platform owes the operator less).
    pub amount_cents: i64,
    pub currency: String,
    pub effective_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub memo: String,
}

/// Recognises every confirmed reservation that ended by `as_of`: the operator's share and
/// the platform's fee are earned. Idempotent, safe to run from several processes at once,
/// and it catches up whatever came due while no server ran. Returns how many it recognised.
pub async fn recognize_completed(db: &PgPool, as_of: DateTime<Utc>) -> Result<i64, ServiceError> {
    let n = sqlx::query_scalar!(r#"select ledger_recognize_completed($1) as "n!""#, as_of)
        .fetch_one(db)
        .await?;
    Ok(n.into())
}

/// A customer's statement for `month`: opening balance, the month's postings, closing.
pub async fn statement(
    db: &PgPool,
    customer_id: i64,
    month: Month,
) -> Result<Statement, ServiceError> {
    let (from, to) = (month.start(), month.next().start());
    let opening = sqlx::query_scalar!(
        r#"select coalesce(sum(e.amount_cents), 0)::bigint as "sum!"
             from ledger_entry e
             join ledger_account a on a.id = e.account_id
             join ledger_transaction t on t.id = e.transaction_id
            where a.organization_id = $1 and a.kind = 'customer_receivable' and a.currency = $2
              and t.effective_at < $3"#,
        customer_id,
        CURRENCY,
        from
    )
    .fetch_one(db)
    .await?;
    let lines = sqlx::query_as!(
        StatementLine,
        r#"select t.id as transaction_id, t.kind, t.effective_at,
                  -- A sale's reservation is the buyer's: the seller sees the pool, not the id.
                  case when t.kind = 'resale' and e.amount_cents < 0 then null
                       else t.reservation_id end as reservation_id,
                  p.name as "pool_name?", coalesce(t.memo, '') as "memo!", e.amount_cents
             from ledger_entry e
             join ledger_account a on a.id = e.account_id
             join ledger_transaction t on t.id = e.transaction_id
             left join reservation r on r.id = t.reservation_id
             left join capacity_pool p on p.id = r.pool_id
            where a.organization_id = $1 and a.kind = 'customer_receivable' and a.currency = $2
              and t.effective_at >= $3 and t.effective_at < $4
            order by t.effective_at, t.id"#,
        customer_id,
        CURRENCY,
        from,
        to
    )
    .fetch_all(db)
    .await?;
    let charges: i64 = lines.iter().map(|l| l.amount_cents.max(0)).sum();
    let credits: i64 = lines
        .iter()
        .filter(|l| l.kind == "credit")
        .map(|l| -l.amount_cents)
        .sum();
    let resale: i64 = lines
        .iter()
        .filter(|l| l.kind == "resale")
        .map(|l| (-l.amount_cents).max(0))
        .sum();
    let refunds: i64 = lines
        .iter()
        .filter(|l| l.kind != "credit" && l.kind != "resale")
        .map(|l| (-l.amount_cents).max(0))
        .sum();
    Ok(Statement {
        month: month.to_string(),
        currency: CURRENCY.into(),
        opening_cents: opening,
        charges_cents: charges,
        refunds_cents: refunds,
        credits_cents: credits,
        resale_cents: resale,
        closing_cents: opening + charges - refunds - credits - resale,
        lines,
    })
}

/// An operator's money: owed now, still to be earned, per site and month, and payouts.
pub async fn earnings(db: &PgPool, operator_id: i64) -> Result<Earnings, ServiceError> {
    // Earned and fees: the recognitions (and late repricings) of reservations on its sites,
    // by the month they took effect.
    let earned = sqlx::query!(
        r#"select s.id as site_id, s.name as site_name,
                  to_char(date_trunc('month', t.effective_at at time zone 'UTC'), 'YYYY-MM') as "month!",
                  coalesce(-sum(e.amount_cents) filter (where a.kind = 'operator_payable'), 0)::bigint as "earned!",
                  coalesce(-sum(e.amount_cents) filter (where a.kind = 'platform_fee_revenue'), 0)::bigint as "fees!"
             from ledger_transaction t
             join reservation r on r.id = t.reservation_id
             join site s on s.id = r.site_id
             join ledger_entry e on e.transaction_id = t.id
             join ledger_account a on a.id = e.account_id
            where s.operator_id = $1 and t.currency = $2
              and a.kind in ('operator_payable', 'platform_fee_revenue')
              -- A resale is between customers: the operator's contract, and its earnings, stand.
              and t.kind <> 'resale'
            group by 1, 2, 3"#,
        operator_id,
        CURRENCY
    )
    .fetch_all(db)
    .await?;
    // Pending: confirmed, not yet recognised, by the month the reservation ends, less the
    // operator's part of any credits given on it (as the recognition will be).
    let pending = sqlx::query!(
        r#"select s.id as site_id, s.name as site_name,
                  to_char(date_trunc('month', upper(r.during) at time zone 'UTC'), 'YYYY-MM') as "month!",
                  sum(r.base_cents - r.discount_cents
                      - (r.credited_cents - ledger_fee_part(r.fee_cents, r.total_cents, r.credited_cents)))::bigint
                      as "pending!"
             from reservation r
             join site s on s.id = r.site_id
            where s.operator_id = $1 and r.currency = $2 and r.state = 'confirmed'
              and not exists (select 1 from ledger_transaction t
                               where t.reservation_id = r.id and t.kind = 'recognition')
            group by 1, 2, 3"#,
        operator_id,
        CURRENCY
    )
    .fetch_all(db)
    .await?;
    let mut rows: Vec<EarningsRow> = earned
        .into_iter()
        .map(|r| EarningsRow {
            site_id: r.site_id,
            site_name: r.site_name,
            month: r.month,
            earned_cents: r.earned,
            fees_cents: r.fees,
            pending_cents: 0,
        })
        .collect();
    for p in pending {
        match rows
            .iter_mut()
            .find(|r| r.site_id == p.site_id && r.month == p.month)
        {
            Some(row) => row.pending_cents += p.pending,
            None => rows.push(EarningsRow {
                site_id: p.site_id,
                site_name: p.site_name,
                month: p.month,
                earned_cents: 0,
                fees_cents: 0,
                pending_cents: p.pending,
            }),
        }
    }
    // Newest month first, then by site.
    rows.sort_by(|a, b| b.month.cmp(&a.month).then(a.site_name.cmp(&b.site_name)));

    let payouts = sqlx::query_as!(
        Payout,
        r#"select t.id as transaction_id, t.effective_at as paid_at,
                  e.amount_cents, coalesce(t.external_ref, '') as "reference!"
             from ledger_transaction t
             join ledger_entry e on e.transaction_id = t.id
             join ledger_account a on a.id = e.account_id and a.kind = 'operator_payable'
            where t.kind = 'payout' and t.organization_id = $1 and t.currency = $2
            order by t.id desc"#,
        operator_id,
        CURRENCY
    )
    .fetch_all(db)
    .await?;
    let payable = sqlx::query_scalar!(
        r#"select coalesce(-sum(e.amount_cents), 0)::bigint as "owed!"
             from ledger_entry e join ledger_account a on a.id = e.account_id
            where a.organization_id = $1 and a.kind = 'operator_payable' and a.currency = $2"#,
        operator_id,
        CURRENCY
    )
    .fetch_one(db)
    .await?;
    Ok(Earnings {
        currency: CURRENCY.into(),
        payable_cents: payable,
        pending_cents: rows.iter().map(|r| r.pending_cents).sum(),
        earned_cents: rows.iter().map(|r| r.earned_cents).sum(),
        fees_cents: rows.iter().map(|r| r.fees_cents).sum(),
        paid_out_cents: payouts.iter().map(|p| p.amount_cents).sum(),
        rows,
        payouts,
    })
}

/// The entries on the organization's own accounts, oldest first, after entry `after`.
pub async fn entries(
    db: &PgPool,
    organization_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<LedgerEntry>, ServiceError> {
    Ok(sqlx::query_as!(
        LedgerEntry,
        r#"select e.id, t.id as transaction_id, t.kind as transaction_kind, a.kind as account,
                  -- A sale's reservation is the buyer's: the seller is not told its id.
                  case when t.kind = 'resale' and e.amount_cents < 0 then null
                       else t.reservation_id end as reservation_id,
                  e.amount_cents, e.currency, t.effective_at,
                  t.created_at as recorded_at, coalesce(t.memo, '') as "memo!"
             from ledger_entry e
             join ledger_account a on a.id = e.account_id
             join ledger_transaction t on t.id = e.transaction_id
            where a.organization_id = $1 and e.id > $2
            order by e.id
            limit $3"#,
        organization_id,
        after,
        limit
    )
    .fetch_all(db)
    .await?)
}

/// Recomputes what every reservation's postings must be from its row (price, state, locked
/// refund) and compares with the books. Also checks that all entries sum to zero and that
/// every transaction balances. Reads only.
pub async fn reconcile(db: &PgPool, now: DateTime<Utc>) -> Result<Reconciliation, ServiceError> {
    // Expected per reservation, by its state (credited: the credits given on it):
    //   held, or a released hold   nothing posted (a cancelled reservation that keeps its
    //   (cancelled, held_until)    held_until was never confirmed, so never charged).
    //   confirmed, not recognised  charged = total, credited, unearned = total - credited.
    //   confirmed, recognised      charged = total, credited, operator = base - discount less
    //                              its part of the credits, fee = fee less its part
    //                              (ledger_fee_part of the credits).
    //   cancelled                  charged = total, credited, refunded = refund, the retained
    //                              part (total - credited - refund) split ledger_fee_part to
    //                              the fee, the rest to the operator.
    //   bought on resale           one resale transaction: the buyer charged the sale price,
    //                              the seller credited it less the fee, the fee to the
    //                              platform (and nothing else).
    // And every unit-hour a preemption, a grid event or an incident took is credited exactly once: the
    // cuts' unit-hours equal the credits' (unless nothing was left to credit, or the price
    // comes to less than a cent per unit-hour, when the credit is rightly absent). And no
    // late-delivery credit pays a day not owed or more than the contract's daily amount.
    let differences = sqlx::query_as!(
        Difference,
        r#"with expected as (
               select r.id,
                      case when r.state = 'cancelled' and r.held_until is not null then 'held'
                           else r.state end as state,
                      exists (select 1 from ledger_transaction t
                               where t.reservation_id = r.id and t.kind = 'recognition') as recognised,
                      r.total_cents, r.base_cents - r.discount_cents as subtotal, r.fee_cents,
                      coalesce(r.refund_cents, 0) as refund, r.credited_cents as credited,
                      r.total_cents - r.credited_cents - coalesce(r.refund_cents, 0) as retained
                 from reservation r
                where r.resale_listing_id is null
           ), want as (
               select x.id,
                      case when x.state = 'held' then 0 else x.total_cents end as charged,
                      case when x.state = 'cancelled' then x.refund else 0 end as refunded,
                      case when x.state = 'held' then 0 else x.credited end as credited,
                      case when x.state = 'cancelled' then
                               x.retained - ledger_fee_part(x.fee_cents, x.total_cents, x.retained)
                           when x.state = 'confirmed' and x.recognised then
                               x.subtotal - (x.credited - ledger_fee_part(x.fee_cents, x.total_cents, x.credited))
                           else 0 end as operator,
                      case when x.state = 'cancelled' then ledger_fee_part(x.fee_cents, x.total_cents, x.retained)
                           when x.state = 'confirmed' and x.recognised then
                               x.fee_cents - ledger_fee_part(x.fee_cents, x.total_cents, x.credited)
                           else 0 end as fee,
                      case when x.state = 'confirmed' and not x.recognised then x.total_cents - x.credited
                           else 0 end as unearned
                 from expected x
           ), interrupted as (
               -- Incidents too, except on a reservation bought on resale (its money went
               -- to its seller, so it is moved but not credited).
               select c.reservation_id as id,
                      sum(extract(epoch from upper(c.during) - lower(c.during)) / 3600)::bigint as hours
                 from allocation_cut c join reservation r on r.id = c.reservation_id
                where c.reason in ('preempted', 'curtailed')
                   or (c.reason = 'incident' and r.resale_listing_id is null)
                group by 1
           ), credited_hours as (
               select reservation_id as id, sum(unit_hours)::bigint as hours
                 from reservation_credit where reason in ('preempted', 'curtailed', 'incident')
                group by 1
           ), resale_posted as (
               select p.reservation_id as id, p.total_cents, p.seller_cents, p.fee_cents,
                      r.total_cents as reservation_total,
                      count(distinct t.id) as transactions,
                      coalesce(sum(e.amount_cents) filter (where a.organization_id = p.buyer_id
                                                              and a.kind = 'customer_receivable'), 0)::bigint as charged,
                      coalesce(sum(e.amount_cents) filter (where a.organization_id = l.seller_id
                                                              and a.kind = 'customer_receivable'), 0)::bigint as seller,
                      coalesce(sum(e.amount_cents) filter (where a.kind = 'platform_fee_revenue'), 0)::bigint as fee
                 from resale_purchase p
                 join resale_listing l on l.id = p.listing_id
                 join reservation r on r.id = p.reservation_id
                 left join ledger_transaction t on t.reservation_id = p.reservation_id and t.kind = 'resale'
                 left join ledger_entry e on e.transaction_id = t.id
                 left join ledger_account a on a.id = e.account_id
                group by p.id, r.total_cents
           ), found as (
               select rp.id, m.what, m.expected, m.actual
                 from resale_posted rp
                 cross join lateral (values
                     ('resale transactions', 1::bigint, rp.transactions),
                     ('resale charged', rp.total_cents, rp.charged),
                     ('resale seller credit', -rp.seller_cents, rp.seller),
                     ('resale fee', -rp.fee_cents, rp.fee),
                     ('resale total', rp.total_cents, rp.reservation_total)
                 ) as m (what, expected, actual)
                where m.expected is distinct from m.actual
               union all
               select w.id, m.what, m.expected, m.actual
                 from want w
                 left join ledger_reservation_totals l on l.reservation_id = w.id
                 cross join lateral (values
                     ('charged', w.charged, coalesce(l.charged_cents, 0)),
                     ('refunded', w.refunded, coalesce(l.refunded_cents, 0)),
                     ('credited', w.credited, coalesce(l.credited_cents, 0)),
                     ('operator', w.operator, coalesce(l.operator_cents, 0)),
                     ('fee', w.fee, coalesce(l.fee_cents_recognised, 0)),
                     ('unearned', w.unearned, coalesce(l.unearned_cents, 0))
                 ) as m (what, expected, actual)
                where m.expected is distinct from m.actual
               union all
               select r.id, 'interrupted unit-hours credited', i.hours, coalesce(h.hours, 0)
                 from interrupted i
                 join reservation r on r.id = i.id
                 left join credited_hours h on h.id = i.id
                where i.hours is distinct from coalesce(h.hours, 0)
                  and r.total_cents - r.credited_cents - coalesce(r.refund_cents, 0) > 0
                  and r.total_cents >= r.unit_count * extract(epoch from upper(r.during) - lower(r.during)) / 3600
              union all
               -- Late-delivery credits: none for a day not yet owed (day n is owed once n
               -- full days passed since the committed delivery with the site still being
               -- built, within the contract), none above the contract's daily amount.
               select r.id, m.what, 0::bigint, m.n
                 from reservation r
                 join site s on s.id = r.site_id
                 cross join lateral (
                     select count(*) filter (
                                where c.late_day > floor(extract(epoch from
                                          least($1, coalesce(s.delivered_at, $1), upper(r.during))
                                          - r.forward_delivery_at) / 86400)) as early,
                            count(*) filter (
                                where c.amount_cents > coalesce(
                                          floor(r.total_cents::numeric * r.forward_late_credit_bp / 10000)::bigint,
                                          r.forward_late_credit_cents_per_unit_day * r.unit_count)) as above
                       from reservation_credit c
                      where c.reservation_id = r.id and c.reason = 'late_delivery') k
                 cross join lateral (values
                     ('late-delivery credits for days not owed', k.early),
                     ('late-delivery credits above the daily amount', k.above)
                 ) as m (what, n)
                where r.forward_delivery_at is not null and m.n > 0
           )
           select id as "reservation_id!", what as "what!", expected as "expected_cents!",
                  actual as "actual_cents!"
             from found
            order by id, what
            limit 1000"#,
        now
    )
    .fetch_all(db)
    .await?;
    let counts = sqlx::query!(
        r#"select (select count(*) from reservation) as "checked!",
                  (select count(*) from reservation r
                    where r.state = 'confirmed' and upper(r.during) <= $1
                      and r.total_cents - r.credited_cents > 0
                      and not exists (select 1 from ledger_transaction t
                                       where t.reservation_id = r.id and t.kind = 'recognition')) as "awaiting!",
                  (select coalesce(sum(amount_cents), 0) from ledger_entry)::bigint as "sum!",
                  (select count(*) from (select transaction_id from ledger_entry
                                          group by transaction_id having sum(amount_cents) <> 0) u) as "unbalanced!""#,
        now
    )
    .fetch_one(db)
    .await?;
    Ok(Reconciliation {
        reservations_checked: counts.checked,
        awaiting_recognition: counts.awaiting,
        differences,
        ledger_sum_cents: counts.sum,
        unbalanced_transactions: counts.unbalanced,
    })
}

/// The platform's side of the books, with the reconciliation.
pub async fn platform_books(
    db: &PgPool,
    now: DateTime<Utc>,
) -> Result<PlatformBooks, ServiceError> {
    let by_month = sqlx::query!(
        r#"select to_char(date_trunc('month', t.effective_at at time zone 'UTC'), 'YYYY-MM') as "month!",
                  (-sum(e.amount_cents))::bigint as "fees!"
             from ledger_entry e
             join ledger_account a on a.id = e.account_id
             join ledger_transaction t on t.id = e.transaction_id
            where a.kind = 'platform_fee_revenue' and a.currency = $1
            group by 1 order by 1 desc"#,
        CURRENCY
    )
    .fetch_all(db)
    .await?;
    let balances = sqlx::query!(
        r#"select kind as "kind!", coalesce(sum(balance_cents), 0)::bigint as "balance!"
             from ledger_account_balance where currency = $1 group by kind"#,
        CURRENCY
    )
    .fetch_all(db)
    .await?;
    let balance = |kind: &str| {
        balances
            .iter()
            .find(|b| b.kind == kind)
            .map(|b| b.balance)
            .unwrap_or(0)
    };
    let operators = sqlx::query_as!(
        OperatorBalance,
        r#"select o.id as organization_id, o.name, (-b.balance_cents)::bigint as "payable_cents!"
             from ledger_account_balance b join organization o on o.id = b.organization_id
            where b.kind = 'operator_payable' and b.currency = $1
            order by o.name"#,
        CURRENCY
    )
    .fetch_all(db)
    .await?;
    Ok(PlatformBooks {
        currency: CURRENCY.into(),
        fee_revenue_by_month: by_month.into_iter().map(|m| (m.month, m.fees)).collect(),
        unearned_cents: -balance("platform_unearned"),
        fee_revenue_cents: -balance("platform_fee_revenue"),
        receivable_cents: balance("customer_receivable"),
        payable_cents: -balance("operator_payable"),
        paid_out_cents: -balance("platform_cash"),
        operators,
        reconciliation: reconcile(db, now).await?,
    })
}

/// Records a payout of `amount_cents` to `operator_id` under the payment provider's
/// `reference` (see [`super::payments`], the boundary to the provider). Refused unless the
/// platform owes at least that much; a retry with the same reference pays once.
pub async fn record_payout(
    db: &PgPool,
    operator_id: i64,
    amount_cents: i64,
    reference: &str,
) -> Result<i64, ServiceError> {
    if amount_cents <= 0 {
        return Err(ServiceError::invalid(
            "amount_cents",
            "a payout must be a positive number of cents",
        ));
    }
    let reference = reference.trim();
    if reference.is_empty() || reference.len() > 200 {
        return Err(ServiceError::invalid(
            "reference",
            "give the payment's reference (1 to 200 characters)",
        ));
    }
    let kind = sqlx::query_scalar!("select kind from organization where id = $1", operator_id)
        .fetch_optional(db)
        .await?;
    match kind.as_deref() {
        None => return Err(ServiceError::NotFound("operator")),
        Some("customer") => {
            return Err(ServiceError::invalid(
                "organization",
                "only operators are paid out; this organization only buys capacity",
            ))
        }
        _ => {}
    }
    let posted = sqlx::query_scalar!(
        r#"select ledger_post_payout($1, $2, $3, $4) as "id!""#,
        operator_id,
        CURRENCY,
        amount_cents,
        reference
    )
    .fetch_one(db)
    .await;
    match posted {
        Ok(id) => Ok(id),
        Err(e) => match super::error::refusal(&e) {
            // The database's own refusals are the caller's to fix.
            Some(Refusal::PayoutReferenceTaken) => Err(ServiceError::conflict(format!(
                "the reference {reference} belongs to another payout; each payment has its own reference"
            ))),
            Some(Refusal::Check) => Err(ServiceError::conflict(format!(
                "a payout of {} exceeds what the operator is owed now; pay at most its balance on the books page",
                crate::money::format_cents(amount_cents, CURRENCY)
            ))),
            _ => Err(e.into()),
        },
    }
}
