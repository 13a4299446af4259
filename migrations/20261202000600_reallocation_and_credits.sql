-- What a reservation holds may change after it is made: part of it moves to another unit of
-- its pool, or ends early, and the customer is credited for hours not delivered. This
-- migration gives those changes one home in the database:
--
--   choose_free_units       the one rule that picks free units of a pool for a range.
--   allocation_cut          unit-hours taken out of a reservation, with the reason.
--   reservation_cut         ends a reservation's hold on a unit for a range (early end).
--   reservation_move        moves a reservation's unit-hours from one unit to another.
--   reservation_credit      money given back for hours not delivered, posted in the ledger
--                           by the same transaction (kind 'credit').
--
-- All or nothing, generalised: at every instant of a reservation's term (unless it is
-- cancelled), the units it holds plus the units cut from it equal its unit count, and none
-- of its allocations reaches outside its term. PostgreSQL checks it at commit after any
-- write to the reservation, its allocations or its cuts, so a move or a cut can take several
-- statements but never commit half done. The exclusion constraint on `allocation` is
-- untouched: a unit still never serves two things at once, at every commit.

-- The one rule for choosing units: the lowest-numbered units of `pool` that no allocation
-- overlaps over `span`, at most `wanted` of them, each locked (no key update) so that
-- concurrent choosers take different units. With `wait_for_locked` false, units another transaction
-- has locked are passed over (the fast path); with it true, the chooser waits for them,
-- so a unit busy in someone else's unfinished transaction is never reported as taken.
create function choose_free_units(pool bigint, span tstzrange, wanted bigint, wait_for_locked boolean)
returns table (unit_id bigint, site_id bigint, pool_id bigint)
language plpgsql as $$
begin
    if wait_for_locked then
        return query
            select u.id, u.site_id, u.pool_id from capacity_unit u
             where u.pool_id = choose_free_units.pool
               and not exists (select 1 from allocation a where a.unit_id = u.id and a.during && span)
             order by u.ordinal
             limit wanted
               for no key update of u;
    else
        return query
            select u.id, u.site_id, u.pool_id from capacity_unit u
             where u.pool_id = choose_free_units.pool
               and not exists (select 1 from allocation a where a.unit_id = u.id and a.during && span)
             order by u.ordinal
             limit wanted
               for no key update of u skip locked;
    end if;
end
$$;

-- Money given back to a customer for hours of a reservation that were not delivered. The
-- row is the record; its insert trigger posts it in the ledger and adds it to the
-- reservation's credited_cents in the same transaction.
create table reservation_credit (
    id              bigint generated always as identity primary key,
    reservation_id  bigint not null references reservation (id),
    amount_cents    bigint not null check (amount_cents > 0),
    -- The unit-hours the credit pays for, when it pays for hours (0 for a flat credit).
    unit_hours      bigint not null check (unit_hours >= 0),
    reason          text not null check (reason in ('ended_early', 'preempted', 'curtailed',
                                                    'incident', 'sla', 'goodwill')),
    memo            text check (length(memo) <= 500),
    effective_at    timestamptz not null,
    created_at      timestamptz not null default now()
);
create index reservation_credit_reservation_idx on reservation_credit (reservation_id);

-- What has been credited so far; never more than the customer paid, with any refund.
alter table reservation
    add column credited_cents bigint not null default 0,
    add constraint reservation_credited_check
        check (credited_cents >= 0 and credited_cents + coalesce(refund_cents, 0) <= total_cents);

-- Unit-hours taken out of a reservation, and why. With the allocations they make up the
-- reservation's units at every instant (the check below).
create table allocation_cut (
    id              bigint generated always as identity primary key,
    reservation_id  bigint not null references reservation (id),
    unit_id         bigint not null references capacity_unit (id),
    during          tstzrange not null check (is_hour_range(during)),
    reason          text not null check (reason in ('ended_early', 'preempted', 'curtailed',
                                                    'incident', 'resold')),
    created_at      timestamptz not null default now()
);
create index allocation_cut_reservation_idx on allocation_cut (reservation_id);

-- The platform fee's part of `credited` cents of a reservation of `total` cents with `fee`
-- cents of fee: pro rata, rounded down, as a cancellation splits what it retains. Taken on
-- the running total of credits, so that several credits round like one.
create function ledger_fee_part(fee bigint, total bigint, credited bigint) returns bigint
language sql immutable as $$
    select case when total > 0 then floor(fee::numeric * credited / total)::bigint else 0 end
$$;

alter table ledger_transaction drop constraint ledger_transaction_kind_check;
alter table ledger_transaction add constraint ledger_transaction_kind_check
    check (kind in ('charge', 'extension', 'refund', 'recognition', 'credit', 'payout', 'correction'));
alter table ledger_transaction drop constraint ledger_transaction_reservation_check;
alter table ledger_transaction add constraint ledger_transaction_reservation_check
    check (kind not in ('charge', 'extension', 'refund', 'recognition', 'credit') or reservation_id is not null);

-- Posts a credit:
--   before recognition   Dr unearned amount                      Cr receivable(C) amount
--   after recognition    Dr payable(O) amount - fee part,        Cr receivable(C) amount
--                        Dr fee revenue fee part
-- (the fee part is ledger_fee_part of the running total, minus that of the credits before).
-- Only a confirmed reservation is credited: a held one was not charged, a cancelled one was
-- settled by its cancellation.
create function reservation_credit_post() returns trigger
language plpgsql as $$
declare
    r reservation;
    operator bigint;
    payable bigint;
    recognised boolean;
    fee_part bigint;
begin
    select * into r from reservation where id = new.reservation_id for update;
    if r.state <> 'confirmed' then
        raise exception 'reservation % is %; only a confirmed reservation can be credited', r.id, r.state
            using errcode = 'check_violation', constraint = 'reservation_credit_confirmed';
    end if;
    recognised := exists (select 1 from ledger_transaction t
                           where t.reservation_id = r.id and t.kind = 'recognition');
    if recognised then
        fee_part := ledger_fee_part(r.fee_cents, r.total_cents, r.credited_cents + new.amount_cents)
                    - ledger_fee_part(r.fee_cents, r.total_cents, r.credited_cents);
        select s.operator_id into operator from site s where s.id = r.site_id;
        payable := ledger_account_for(operator, 'operator_payable', r.currency);
        -- Serialises with payouts, which may be checking this balance.
        perform 1 from ledger_account a where a.id = payable for update;
        perform ledger_post('credit', r.id, null, r.currency, r.fee_bp,
                            format('reservation %s credited: %s', r.id, new.reason), null, new.effective_at,
                            array[payable,
                                  ledger_account_for(null, 'platform_fee_revenue', r.currency),
                                  ledger_account_for(r.customer_id, 'customer_receivable', r.currency)],
                            array[new.amount_cents - fee_part, fee_part, -new.amount_cents]);
    else
        perform ledger_post('credit', r.id, null, r.currency, r.fee_bp,
                            format('reservation %s credited: %s', r.id, new.reason), null, new.effective_at,
                            array[ledger_account_for(null, 'platform_unearned', r.currency),
                                  ledger_account_for(r.customer_id, 'customer_receivable', r.currency)],
                            array[new.amount_cents, -new.amount_cents]);
    end if;
    -- The reservation_credited_check refuses a credit beyond what was paid.
    update reservation set credited_cents = credited_cents + new.amount_cents, updated_at = now()
     where id = r.id;
    return null;
end
$$;

create trigger reservation_credit_post after insert on reservation_credit
    for each row execute function reservation_credit_post();

create trigger reservation_credit_append_only before update or delete on reservation_credit
    for each row execute function ledger_append_only();

-- The credit for `hours_lost` unit-hours of reservation `res` at the price its customer paid
-- (the total over the unit-hours it bought, rounded down), recorded with `why`. Returns the
-- credit, or null when it comes to 0 cents.
create function reservation_credit_hours(res bigint, hours_lost bigint, why text, note text,
                                         effective timestamptz default now())
returns reservation_credit
language plpgsql as $$
declare
    r reservation;
    amount bigint;
    credit reservation_credit;
begin
    select * into r from reservation where id = res for update;
    if not found then
        raise exception 'reservation % does not exist', res using errcode = 'no_data_found';
    end if;
    if r.state <> 'confirmed' then
        raise exception 'reservation % is %; only a confirmed reservation can be credited', r.id, r.state
            using errcode = 'check_violation', constraint = 'reservation_credit_confirmed';
    end if;
    amount := floor(r.total_cents::numeric * hours_lost
                    / (r.unit_count * extract(epoch from upper(r.during) - lower(r.during)) / 3600))::bigint;
    -- Never more than what is left of the payment.
    amount := least(amount, r.total_cents - r.credited_cents - coalesce(r.refund_cents, 0));
    if amount <= 0 then
        return null;
    end if;
    insert into reservation_credit (reservation_id, amount_cents, unit_hours, reason, memo, effective_at)
    values (res, amount, hours_lost, why, note, effective)
    returning * into credit;
    return credit;
end
$$;

-- Takes `piece` out of reservation `res`'s allocation on `unit`: the allocation shrinks, is
-- split in two around the piece, or goes. The piece must lie within one allocation.
create function allocation_take_out(res bigint, unit bigint, piece tstzrange) returns allocation
language plpgsql as $$
declare
    a allocation;
begin
    select * into a from allocation
     where reservation_id = res and unit_id = unit and during @> piece
       for update;
    if not found then
        raise exception 'reservation % does not hold unit % over %', res, unit, piece
            using errcode = 'check_violation', constraint = 'allocation_piece_held';
    end if;
    if a.during = piece then
        delete from allocation where id = a.id;
    elsif lower(a.during) = lower(piece) then
        update allocation set during = tstzrange(upper(piece), upper(a.during)), updated_at = now()
         where id = a.id;
    else
        update allocation set during = tstzrange(lower(a.during), lower(piece)), updated_at = now()
         where id = a.id;
        if upper(piece) < upper(a.during) then
            insert into allocation (site_id, pool_id, unit_id, reservation_id, during)
            values (a.site_id, a.pool_id, a.unit_id, res, tstzrange(upper(piece), upper(a.during)));
        end if;
    end if;
    return a;
end
$$;

-- Ends reservation `res`'s hold on `unit` over `piece` (the unit is free for others from
-- then on) and records the cut with `why`. Crediting the customer is a separate decision
-- (reservation_credit_hours), so that several cuts of one event make one credit.
create function reservation_cut(res bigint, unit bigint, piece tstzrange, why text) returns void
language plpgsql as $$
begin
    perform allocation_take_out(res, unit, piece);
    insert into allocation_cut (reservation_id, unit_id, during, reason) values (res, unit, piece, why);
end
$$;

-- Moves reservation `res`'s unit-hours over `piece` from unit `from_unit` to `to_unit` of
-- the same pool. The target unit is locked as choose_free_units locks it, so a concurrent
-- booking passes it over; if it is taken over the piece anyway, the exclusion constraint
-- refuses the move (23P01) and nothing of it stays.
create function reservation_move(res bigint, from_unit bigint, to_unit bigint, piece tstzrange) returns void
language plpgsql as $$
declare
    a allocation;
begin
    perform 1 from capacity_unit where id = to_unit for no key update;
    a := allocation_take_out(res, from_unit, piece);
    insert into allocation (site_id, pool_id, unit_id, reservation_id, during)
    values (a.site_id, a.pool_id, to_unit, res, piece);
end
$$;

-- The generalised all-or-nothing check of one reservation (see the top of this file).
create function reservation_check_coverage(res bigint) returns void
language plpgsql as $$
declare
    r reservation;
    whole bigint;
    pieces bigint;
    outside bigint;
    short timestamptz;
    held bigint;
begin
    select * into r from reservation where id = res;
    if not found or r.state = 'cancelled' then
        return;
    end if;
    -- The common case, a reservation as booked: every unit over the whole term, nothing cut.
    select count(*) filter (where a.during = r.during), count(*),
           count(*) filter (where not r.during @> a.during)
      into whole, pieces, outside
      from allocation a where a.reservation_id = res;
    if whole = r.unit_count and pieces = r.unit_count
       and not exists (select 1 from allocation_cut c where c.reservation_id = res) then
        return;
    end if;
    if outside > 0 then
        raise exception 'reservation % has an allocation outside its term %', res, r.during
            using errcode = 'check_violation', constraint = 'reservation_fully_allocated';
    end if;
    -- Held plus cut units only change where a piece starts or ends; check at each such point.
    select p.t, p.n into short, held
      from (select b.t,
                   (select count(*) from allocation a where a.reservation_id = res and a.during @> b.t)
                   + (select count(*) from allocation_cut c where c.reservation_id = res and c.during @> b.t) as n
              from (select lower(r.during) as t
                    union select lower(a.during) from allocation a where a.reservation_id = res
                    union select upper(a.during) from allocation a where a.reservation_id = res
                    union select lower(c.during) from allocation_cut c where c.reservation_id = res
                    union select upper(c.during) from allocation_cut c where c.reservation_id = res) b
             where r.during @> b.t) p
     where p.n <> r.unit_count
     order by p.t
     limit 1;
    if found then
        raise exception 'reservation % holds % of its % units at %', res, held, r.unit_count, short
            using errcode = 'check_violation', constraint = 'reservation_fully_allocated';
    end if;
end
$$;

-- Fired at commit. A reservation written in this transaction is checked by its own trigger,
-- so an allocation inserted for it (a booking's units) adds no second check.
create or replace function check_reservation_fully_allocated() returns trigger
language plpgsql as $$
declare
    written_here boolean;
begin
    if tg_table_name = 'reservation' then
        perform reservation_check_coverage(new.id);
        return null;
    end if;
    if tg_op = 'INSERT' then
        if new.reservation_id is null then
            return null;
        end if;
        select r.xmin::text = pg_current_xact_id()::xid::text into written_here
          from reservation r where r.id = new.reservation_id;
        if not coalesce(written_here, false) then
            perform reservation_check_coverage(new.reservation_id);
        end if;
        return null;
    end if;
    if old.reservation_id is not null then
        perform reservation_check_coverage(old.reservation_id);
    end if;
    if tg_op = 'UPDATE' and new.reservation_id is distinct from old.reservation_id
       and new.reservation_id is not null then
        perform reservation_check_coverage(new.reservation_id);
    end if;
    return null;
end
$$;

-- The insert trigger stays; a reservation's later changes (its term, its units) and its
-- allocations' and cuts' changes are checked too.
create constraint trigger reservation_fully_allocated_on_update
    after update on reservation
    deferrable initially deferred
    for each row execute function check_reservation_fully_allocated();

create constraint trigger allocation_keeps_reservations_whole
    after insert or update or delete on allocation
    deferrable initially deferred
    for each row execute function check_reservation_fully_allocated();

create function allocation_cut_check() returns trigger
language plpgsql as $$
begin
    perform reservation_check_coverage(coalesce(new.reservation_id, old.reservation_id));
    return null;
end
$$;

create constraint trigger allocation_cut_keeps_reservations_whole
    after insert or update or delete on allocation_cut
    deferrable initially deferred
    for each row execute function allocation_cut_check();

-- Cuts are history, like the ledger.
create trigger allocation_cut_append_only before update or delete on allocation_cut
    for each row execute function ledger_append_only();

-- The ledger learns credits (the rest of ledger_settle_reservation is as before):
--   * a cancelled reservation's credited amount cannot change either;
--   * a cancellation retains total - credited - refund (the credits were given back already).
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

    bp := coalesce(n.fee_bp, ledger_fee_bp(n.fee_cents, n.base_cents - n.discount_cents));

    if (inserted and n.state <> 'held') or (not inserted and o.state = 'held' and n.state = 'confirmed') then
        perform ledger_post('charge', n.id, null, n.currency, bp,
                            format('reservation %s booked', n.id), null,
                            case when inserted then n.created_at else now() end,
                            array[ledger_account_for(n.customer_id, 'customer_receivable', n.currency),
                                  ledger_account_for(null, 'platform_unearned', n.currency)],
                            array[n.total_cents, -n.total_cents]);
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

-- Completion recognises what was not credited: the unearned total - credited moves to the
-- operator and the fee, each less its part of the credits.
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
           and not exists (select 1 from ledger_transaction t
                            where t.reservation_id = res.id and t.kind = 'recognition')
         order by res.id
           for update of res skip locked
    loop
        select s.operator_id into operator from site s where s.id = r.site_id;
        fee_part := ledger_fee_part(r.fee_cents, r.total_cents, r.credited_cents);
        if ledger_post('recognition', r.id, null, r.currency,
                       coalesce(r.fee_bp, ledger_fee_bp(r.fee_cents, r.base_cents - r.discount_cents)),
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

-- Credits are neither charges nor refunds; the view counts them on their own.
create or replace view ledger_reservation_totals as
select t.reservation_id, t.currency,
       coalesce(sum(e.amount_cents) filter (where a.kind = 'customer_receivable'
                                              and t.kind not in ('refund', 'credit')), 0)::bigint
           as charged_cents,
       coalesce(-sum(e.amount_cents) filter (where a.kind = 'customer_receivable' and t.kind = 'refund'), 0)::bigint
           as refunded_cents,
       coalesce(-sum(e.amount_cents) filter (where a.kind = 'platform_unearned'), 0)::bigint as unearned_cents,
       coalesce(-sum(e.amount_cents) filter (where a.kind = 'operator_payable'), 0)::bigint as operator_cents,
       coalesce(-sum(e.amount_cents) filter (where a.kind = 'platform_fee_revenue'), 0)::bigint
           as fee_cents_recognised,
       coalesce(-sum(e.amount_cents) filter (where a.kind = 'customer_receivable' and t.kind = 'credit'), 0)::bigint
           as credited_cents
  from ledger_transaction t
  join ledger_entry e on e.transaction_id = t.id
  join ledger_account a on a.id = e.account_id
 where t.reservation_id is not null
 group by t.reservation_id, t.currency;
