-- A booking statement's charges are posted once per statement instead of once per booking;
-- and the units a firm booking may preempt are found among its pool's allocations without
-- reading the pool's units.
--
-- Charges. reservation_ledger ran for each inserted reservation: ledger_settle_reservation
-- looked up two ledger accounts and posted one ledger transaction through ledger_post,
-- about eight statements each with its executor set up per booking (0.17 ms of the 2.1 ms
-- of database time per preempting booking in the settlement benchmark, 2026-12-06,
-- pg_stat_statements; the same on the plain path, where a booking costs about 0.8 ms). The
-- bookings of a group are inserted by one statement (reservations::together), so the
-- charges of a statement's confirmed reservations are now posted together, with the same
-- rule and the same postings as ledger_settle_reservation's for an inserted reservation:
--   Dr receivable(C) total    Cr unearned total
-- one ledger transaction per reservation with a total, numbered in reservation order, its
-- fee rate and memo as before. Every other inserted reservation keeps the row rule, after
-- the charges and in reservation order:
-- a resale's purchase posts nothing here (the resale posts its own), a hold nothing until
-- it is confirmed (an update, reservation_ledger_on_update), and any other state goes
-- through ledger_settle_reservation as before, so that function stays the one place the
-- settlement of a reservation is written.
--
-- Preemption candidates. preemption_candidates joined the pool's units to the allocations
-- overlapping the span; an allocation's pool is its unit's (the foreign key to
-- capacity_unit is on (site_id, pool_id, unit_id)), and a unit without an allocation over
-- the span is never a candidate, so grouping the allocations by unit gives the same rows
-- without reading the units at all. The rule is unchanged (see 20261216000100).

drop trigger reservation_ledger on reservation;

create function reservation_ledger_inserted() returns trigger
language plpgsql as $$
begin
    with charge as materialized (
        select n.id, n.currency, n.created_at, n.total_cents,
               coalesce(n.fee_bp, ledger_fee_bp(n.fee_cents, n.base_cents - n.discount_cents)) as bp,
               ledger_account_for(n.customer_id, 'customer_receivable', n.currency) as receivable,
               ledger_account_for(null, 'platform_unearned', n.currency) as unearned,
               nextval(pg_get_serial_sequence('ledger_transaction', 'id')) as tx
          from (select * from added n
                 where n.resale_listing_id is null and n.state = 'confirmed' and n.total_cents <> 0
                 order by n.id) n
    ), tx as (
        insert into ledger_transaction (id, kind, reservation_id, organization_id, currency, fee_bp, memo,
                                        external_ref, effective_at)
        overriding system value
        select c.tx, 'charge', c.id, null, c.currency, c.bp, format('reservation %s booked', c.id), null,
               c.created_at
          from charge c
         order by c.id
    )
    insert into ledger_entry (transaction_id, account_id, currency, amount_cents)
    select c.tx, e.account, c.currency, e.amount
      from charge c
     cross join lateral (values (1, c.receivable, c.total_cents),
                                (2, c.unearned, -c.total_cents)) as e (k, account, amount)
     order by c.id, e.k;
    -- Then any other reservation the statement inserted, by the row rule.
    perform ledger_settle_reservation(null, n)
       from added n
      where n.resale_listing_id is null and n.state not in ('held', 'confirmed')
      order by n.id;
    return null;
end
$$;

-- The row trigger's name kept. A statement trigger fires after the statement's row triggers
-- (reservation_outbox's events among them); none of those reads the charge.
create trigger reservation_ledger after insert on reservation
    referencing new table as added
    for each statement execute function reservation_ledger_inserted();

create or replace function preemption_candidates(pool bigint, span tstzrange, cut_from timestamptz)
returns table (unit_id bigint, price bigint, latest timestamptz)
language sql stable as $$
    select a.unit_id, max(r.unit_price_cents), max(r.created_at)
      from allocation a
      left join lateral (select h.unit_price_cents, h.created_at, h.tier
                           from reservation h where h.id = a.reservation_id
                         offset 0) r on true
     where a.pool_id = pool and a.during && span
     group by a.unit_id
    having bool_and(r.tier is not distinct from 'interruptible'
                    and greatest(lower(a.during), lower(span)) >= cut_from)
     order by 2, 3 desc, a.unit_id
$$;
