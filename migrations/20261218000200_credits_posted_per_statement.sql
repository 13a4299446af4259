-- Credits are posted once per statement instead of once per credit.
--
-- reservation_credit_post ran for each credit row: it locked the reservation, looked up two
-- or three ledger accounts, posted one ledger transaction through ledger_post and added the
-- credit to the reservation's credited total, about ten statements per credit (0.29 ms of
-- database CPU per credit in the replay of the preempting lane, 2026-12-05). A group of
-- firm bookings now preempts set-based (preempt_group) and inserts all its credits in one
-- statement, so the trigger now posts all of a statement's credits at once, with the same
-- rule and the same postings:
--   before recognition   Dr unearned amount                      Cr receivable(C) amount
--   after recognition    Dr payable(O) amount - fee part,        Cr receivable(C) amount
--                        Dr fee revenue fee part
-- one ledger transaction per credit, the fee part taken on the running total of the
-- reservation's credits (ledger_fee_part), credits of one reservation in one statement
-- counted in the order they were inserted, as the row trigger met them. Only a confirmed
-- reservation is credited; reservation_credited_check still refuses a credit beyond what was
-- paid (now on the statement's total for the reservation, so the statement fails as before).

drop trigger reservation_credit_post on reservation_credit;
drop function reservation_credit_post();

create function reservation_credit_post() returns trigger
language plpgsql as $$
declare
    refused record;
begin
    -- Each credited reservation locked, in reservation order, as a cancellation takes it.
    perform 1 from reservation r
      where r.id in (select c.reservation_id from added c)
      order by r.id
        for update;
    select r.id, r.state into refused
      from added c join reservation r on r.id = c.reservation_id
     where r.state <> 'confirmed'
     order by c.id
     limit 1;
    if found then
        raise exception 'reservation % is %; only a confirmed reservation can be credited', refused.id, refused.state
            using errcode = 'check_violation', constraint = 'reservation_credit_confirmed';
    end if;
    -- The operators' payable accounts, locked in account order: serialises with payouts,
    -- which may be checking their balances.
    perform 1 from ledger_account a
      where a.id in (select ledger_account_for(s.operator_id, 'operator_payable', r.currency)
                       from (select distinct c.reservation_id from added c) c
                       join reservation r on r.id = c.reservation_id
                       join site s on s.id = r.site_id
                      where exists (select 1 from ledger_transaction t
                                     where t.reservation_id = r.id and t.kind = 'recognition'))
      order by a.id
        for update;
    with credit as (
        select c.id as credit_id, c.amount_cents as amount, r.id as res, r.currency, r.fee_bp,
               format('reservation %s credited: %s', r.id, c.reason) as memo, c.effective_at,
               ledger_account_for(r.customer_id, 'customer_receivable', r.currency) as receivable,
               case when k.recognised then ledger_account_for(s.operator_id, 'operator_payable', r.currency)
                    else ledger_account_for(null, 'platform_unearned', r.currency) end as debited,
               case when k.recognised then ledger_account_for(null, 'platform_fee_revenue', r.currency) end as fee_revenue,
               case when k.recognised
                    then ledger_fee_part(r.fee_cents, r.total_cents, k.before + c.amount_cents)
                         - ledger_fee_part(r.fee_cents, r.total_cents, k.before)
                    else 0 end as fee_part
          from (select c.*,
                       coalesce(sum(c.amount_cents) over (partition by c.reservation_id order by c.id
                                                          rows between unbounded preceding and 1 preceding),
                                0)::bigint as earlier
                  from added c) c
          join reservation r on r.id = c.reservation_id
          join site s on s.id = r.site_id
         cross join lateral (
             select r.credited_cents + c.earlier as before,
                    exists (select 1 from ledger_transaction t
                             where t.reservation_id = r.id and t.kind = 'recognition') as recognised) k
    ), posting as materialized (
        -- The ledger transactions numbered in the order the credits were inserted.
        select o.*, nextval(pg_get_serial_sequence('ledger_transaction', 'id')) as tx
          from (select * from credit order by credit_id) o
    ), tx as (
        insert into ledger_transaction (id, kind, reservation_id, organization_id, currency, fee_bp, memo,
                                        external_ref, effective_at)
        overriding system value
        select p.tx, 'credit', p.res, null, p.currency, p.fee_bp, p.memo, null, p.effective_at
          from posting p
         order by p.credit_id
    )
    insert into ledger_entry (transaction_id, account_id, currency, amount_cents)
    select p.tx, e.account, p.currency, e.amount
      from posting p
     cross join lateral (values (1, p.debited, p.amount - p.fee_part),
                                (2, p.fee_revenue, p.fee_part),
                                (3, p.receivable, -p.amount)) as e (k, account, amount)
     where e.amount <> 0
     order by p.credit_id, e.k;
    -- The reservation_credited_check refuses a credit beyond what was paid.
    update reservation r
       set credited_cents = r.credited_cents + c.amount, updated_at = now()
      from (select c.reservation_id, sum(c.amount_cents) as amount from added c group by 1) c
     where r.id = c.reservation_id;
    return null;
end
$$;

create trigger reservation_credit_post after insert on reservation_credit
    referencing new table as added
    for each statement execute function reservation_credit_post();
