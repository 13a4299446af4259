-- A reservation's platform fee rate is read by one rule.
--
-- Every posting of a reservation records the fee rate it was priced at: the rate written on
-- the reservation, or, for a reservation written without one, the rate its amounts imply
-- (ledger_fee_bp of its fee over its price after discount). That rule was written out in
-- three functions (ledger_post_charges, ledger_settle_reservation and
-- ledger_recognize_completed), so a change to it would have had to be made three times.
-- They now call reservation_fee_bp, an SQL function the planner inlines, so the postings'
-- plans are as before. Nothing posted changes.

create function reservation_fee_bp(r reservation) returns integer
language sql immutable as $$
    select coalesce(r.fee_bp, ledger_fee_bp(r.fee_cents, r.base_cents - r.discount_cents))
$$;

-- As in 20261221000200, the fee rate read by reservation_fee_bp.
create or replace function ledger_post_charges(rs reservation[], effective_at timestamptz)
returns void
language plpgsql as $$
begin
    with charge as materialized (
        select n.id, n.currency, n.total_cents, coalesce(ledger_post_charges.effective_at, n.created_at) as at,
               reservation_fee_bp(n) as bp,
               ledger_account_for(n.customer_id, 'customer_receivable', n.currency) as receivable,
               ledger_account_for(null, 'platform_unearned', n.currency) as unearned,
               nextval(pg_get_serial_sequence('ledger_transaction', 'id')) as tx
          from (select * from unnest(rs) n where n.total_cents <> 0 order by n.id) n
    ), tx as (
        insert into ledger_transaction (id, kind, reservation_id, organization_id, currency, fee_bp, memo,
                                        external_ref, effective_at)
        overriding system value
        select c.tx, 'charge', c.id, null, c.currency, c.bp, format('reservation %s booked', c.id), null, c.at
          from charge c
         order by c.id
    )
    insert into ledger_entry (transaction_id, account_id, currency, amount_cents)
    select c.tx, e.account, c.currency, e.amount
      from charge c
     cross join lateral (values (1, c.receivable, c.total_cents),
                                (2, c.unearned, -c.total_cents)) as e (k, account, amount)
     order by c.id, e.k;
end
$$;

-- As in 20261221000200, the fee rate read by reservation_fee_bp.
create or replace function ledger_settle_reservation(o reservation, n reservation) returns void
language plpgsql as $$
declare
    operator bigint;
    payable bigint;
    bp integer;
    inserted boolean := o.id is null;
    recognised boolean := false;
    d bigint;
    d_operator bigint;
    d_fee bigint;
    refund bigint;
    retained bigint;
    fee_kept bigint;
begin
    if not inserted then
        if o.state = 'cancelled'
           and (n.state, n.customer_id, n.currency, n.base_cents, n.discount_cents, n.fee_cents, n.total_cents,
                n.refund_cents, n.credited_cents)
               is distinct from
               (o.state, o.customer_id, o.currency, o.base_cents, o.discount_cents, o.fee_cents, o.total_cents,
                o.refund_cents, o.credited_cents) then
            raise exception 'reservation % is cancelled and settled; its state and amounts cannot change', n.id
                using errcode = 'restrict_violation';
        end if;
        if o.state = 'confirmed' and n.state = 'held' then
            raise exception 'reservation % is confirmed and charged; it cannot return to held', n.id
                using errcode = 'restrict_violation';
        end if;
        if o.state <> 'held' and (n.customer_id, n.currency) is distinct from (o.customer_id, o.currency) then
            raise exception 'reservation % is charged; its customer and currency cannot change', n.id
                using errcode = 'restrict_violation';
        end if;
        if o.state = 'confirmed' then
            recognised := exists (select 1 from ledger_transaction t
                                   where t.reservation_id = n.id and t.kind = 'recognition');
        end if;
        if recognised and n.state = 'cancelled' then
            raise exception 'reservation % was recognised as completed; it cannot be cancelled', n.id
                using errcode = 'restrict_violation';
        end if;
    end if;

    bp := reservation_fee_bp(n);

    if (inserted and n.state <> 'held') or (not inserted and o.state = 'held' and n.state = 'confirmed') then
        perform ledger_post_charges(array[n], case when inserted then null else now() end);
    elsif o.state = 'confirmed' then
        d := n.total_cents - o.total_cents;
        d_operator := (n.base_cents - n.discount_cents) - (o.base_cents - o.discount_cents);
        d_fee := n.fee_cents - o.fee_cents;
        if not recognised and d <> 0 then
            perform ledger_post('extension', n.id, null, n.currency, bp,
                                format('reservation %s repriced from %s to %s', n.id, o.total_cents, n.total_cents),
                                null, now(),
                                array[ledger_account_for(n.customer_id, 'customer_receivable', n.currency),
                                      ledger_account_for(null, 'platform_unearned', n.currency)],
                                array[d, -d]);
        elsif recognised and (d <> 0 or d_operator <> 0) then
            select s.operator_id into operator from site s where s.id = n.site_id;
            payable := ledger_account_for(operator, 'operator_payable', n.currency);
            perform 1 from ledger_account a where a.id = payable for update;
            perform ledger_post('extension', n.id, null, n.currency, bp,
                                format('reservation %s repriced from %s to %s after completion', n.id,
                                       o.total_cents, n.total_cents),
                                null, now(),
                                array[ledger_account_for(n.customer_id, 'customer_receivable', n.currency),
                                      payable,
                                      ledger_account_for(null, 'platform_fee_revenue', n.currency)],
                                array[d, -d_operator, -d_fee]);
        end if;
    end if;

    if n.state = 'cancelled' and (inserted or o.state = 'confirmed') then
        refund := coalesce(n.refund_cents, 0);
        retained := n.total_cents - n.credited_cents - refund;
        fee_kept := ledger_fee_part(n.fee_cents, n.total_cents, retained);
        select s.operator_id into operator from site s where s.id = n.site_id;
        perform ledger_post('refund', n.id, null, n.currency, bp,
                            format('reservation %s cancelled: refund', n.id), null,
                            coalesce(n.cancelled_at, now()),
                            array[ledger_account_for(null, 'platform_unearned', n.currency),
                                  ledger_account_for(n.customer_id, 'customer_receivable', n.currency)],
                            array[refund, -refund]);
        perform ledger_post('recognition', n.id, null, n.currency, bp,
                            format('reservation %s cancelled: retained', n.id), null,
                            coalesce(n.cancelled_at, now()),
                            array[ledger_account_for(null, 'platform_unearned', n.currency),
                                  ledger_account_for(operator, 'operator_payable', n.currency),
                                  ledger_account_for(null, 'platform_fee_revenue', n.currency)],
                            array[retained, -(retained - fee_kept), -fee_kept]);
    end if;
end
$$;

-- As in 20261205000100, the fee rate read by reservation_fee_bp.
create or replace function ledger_recognize_completed(as_of timestamptz default now()) returns integer
language plpgsql as $$
declare
    r reservation;
    operator bigint;
    fee_part bigint;
    recognised integer := 0;
begin
    for r in
        select res.* from reservation res
         where res.state = 'confirmed' and upper(res.during) <= as_of
           and res.total_cents - res.credited_cents > 0
           and res.resale_listing_id is null
           -- Nothing of a forward contract was delivered while its site is being built.
           and not (res.forward_delivery_at is not null
                    and exists (select 1 from site s where s.id = res.site_id and s.status = 'building'))
           and not exists (select 1 from ledger_transaction t
                            where t.reservation_id = res.id and t.kind = 'recognition')
         order by res.id
           for update of res skip locked
    loop
        select s.operator_id into operator from site s where s.id = r.site_id;
        fee_part := ledger_fee_part(r.fee_cents, r.total_cents, r.credited_cents);
        if ledger_post('recognition', r.id, null, r.currency,
                       reservation_fee_bp(r),
                       format('reservation %s completed', r.id), null, upper(r.during),
                       array[ledger_account_for(null, 'platform_unearned', r.currency),
                             ledger_account_for(operator, 'operator_payable', r.currency),
                             ledger_account_for(null, 'platform_fee_revenue', r.currency)],
                       array[r.total_cents - r.credited_cents,
                             -((r.base_cents - r.discount_cents) - (r.credited_cents - fee_part)),
                             -(r.fee_cents - fee_part)],
                       once => true) is not null then
            recognised := recognised + 1;
        end if;
    end loop;
    return recognised;
end
$$;
