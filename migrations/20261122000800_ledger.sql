-- The ledger: double entry, integer cents. Every reservation is settled in it by triggers, in
-- the same transaction as the reservation change, so a booking, extension or cancellation
-- can never commit without its postings, whichever code path writes it.
--
-- An entry's amount_cents is positive for a debit and negative for a credit; the entries of
-- a transaction sum to zero, which PostgreSQL checks at commit. Nothing is ever updated or
-- deleted: a mistake is undone by a correcting transaction.
--
-- Accounts, one per (organization, kind, currency):
--   customer_receivable   (customer) what the customer owes for what it booked; a credit
--                         balance is money owed back to it.
--   operator_payable      (operator) what the platform owes the site's operator for capacity
--                         delivered, until a payout.
--   platform_unearned     booked but not yet earned (deferred revenue): a reservation's money
--                         waits here until it completes or is cancelled.
--   platform_fee_revenue  the platform's fee, once earned.
--   platform_cash         money paid out (payouts); customer collections will post here too.
-- There is no refunds account: a refund is given before the start, out of unearned money, so
-- it only reverses part of the charge (nothing was earned, so there is no revenue to reduce).
--
-- Postings of reservation R (customer C, the site's operator O):
--   charge       R confirmed      Dr receivable(C) total        Cr unearned total
--   extension    R's price moves  Dr receivable(C) d            Cr unearned d   (d = new - old total; a negative d reverses)
--   refund       R cancelled      Dr unearned refund            Cr receivable(C) refund
--   recognition  R cancelled      Dr unearned total - refund    Cr payable(O), Cr fee revenue (pro rata, below)
--   recognition  R completed      Dr unearned total             Cr payable(O) base - discount, Cr fee revenue fee
--   payout       money sent to O  Dr payable(O) amount          Cr cash amount
-- Entries of 0 cents are left out; a transaction left with no entries is not recorded.

-- The fee rate of existing rows, derived from their locked amounts. Only approximate when the
-- amounts are tiny (a 0-cent fee on 10 cents derives 0 bp), hence the clamp: the derivation
-- must never fail on odd data.
create function ledger_fee_bp(fee_cents bigint, subtotal_cents bigint) returns integer
language sql immutable as $$
    select least(greatest(coalesce(round(fee_cents * 10000.0 / nullif(subtotal_cents, 0)), 0), 0), 10000)::integer
$$;

-- The platform fee rate the reservation was priced at. Nullable: rows booked before this
-- migration only know it through the derivation above, and the app sets it from now on.
alter table reservation add column fee_bp integer check (fee_bp between 0 and 10000);
update reservation set fee_bp = ledger_fee_bp(fee_cents, base_cents - discount_cents);

create table ledger_account (
    id               bigint generated always as identity primary key,
    -- The customer or operator the account belongs to; null for the platform's own accounts.
    organization_id  bigint references organization (id),
    kind             text not null check (kind in ('customer_receivable', 'operator_payable',
                                                   'platform_unearned', 'platform_fee_revenue',
                                                   'platform_cash')),
    currency         text not null check (currency ~ '^[A-Z]{3}$'),
    created_at       timestamptz not null default now(),
    constraint ledger_account_owner_check check (
        (kind in ('customer_receivable', 'operator_payable')) = (organization_id is not null)),
    -- One account per owner, kind and currency; the platform (null owner) included.
    constraint ledger_account_key unique nulls not distinct (organization_id, kind, currency),
    -- Lets entries refer to (account, currency) so they cannot mix currencies.
    constraint ledger_account_currency_key unique (id, currency)
);

create table ledger_transaction (
    id               bigint generated always as identity primary key,
    kind             text not null check (kind in ('charge', 'extension', 'refund', 'recognition',
                                                   'payout', 'correction')),
    reservation_id   bigint references reservation (id),
    -- The operator paid, for payouts.
    organization_id  bigint references organization (id),
    currency         text not null check (currency ~ '^[A-Z]{3}$'),
    -- The platform fee rate of the reservation posted; null for payouts and corrections.
    fee_bp           integer check (fee_bp between 0 and 10000),
    memo             text,
    -- The payment provider's reference of a payout.
    external_ref     text check (length(btrim(external_ref)) between 1 and 200),
    -- When the economic event happened (booking, cancellation, end of the term, payout),
    -- which is not when it was recorded (created_at) for catch-up and backfilled postings.
    effective_at     timestamptz not null,
    created_at       timestamptz not null default now(),
    constraint ledger_transaction_reservation_check check (
        kind not in ('charge', 'extension', 'refund', 'recognition') or reservation_id is not null),
    constraint ledger_transaction_payout_check check (
        kind <> 'payout' or (reservation_id is null and organization_id is not null and external_ref is not null)),
    constraint ledger_transaction_currency_key unique (id, currency)
);
-- Idempotent postings: a reservation is charged once, refunded once and recognised once (at
-- completion or, for its retained part, at cancellation). Its extensions are not limited.
-- Also the index for looking a reservation's postings up.
create unique index ledger_transaction_once on ledger_transaction (reservation_id, kind)
    where kind in ('charge', 'refund', 'recognition');
-- A payout retried with the provider's reference cannot pay twice.
create unique index ledger_transaction_payout_ref_key on ledger_transaction (external_ref)
    where kind = 'payout';

-- No created_at: an entry is recorded with its transaction.
create table ledger_entry (
    id              bigint generated always as identity primary key,
    transaction_id  bigint not null,
    account_id      bigint not null,
    currency        text not null,
    amount_cents    bigint not null check (amount_cents <> 0),
    foreign key (transaction_id, currency) references ledger_transaction (id, currency),
    foreign key (account_id, currency) references ledger_account (id, currency)
);
create index ledger_entry_account_idx on ledger_entry (account_id, id);
create index ledger_entry_transaction_idx on ledger_entry (transaction_id);

-- Every transaction balances, checked by PostgreSQL at commit (deferred, so a transaction's
-- entries may be written by several statements): its entries sum to zero and there are at
-- least two. A transaction without entries is refused too, and so is an entry added later
-- to a committed transaction that would unbalance it.
create function ledger_check_balanced() returns trigger
language plpgsql as $$
declare
    tx bigint;
    total numeric;
    entries bigint;
begin
    if tg_table_name = 'ledger_entry' then
        tx := new.transaction_id;
    else
        tx := new.id;
    end if;
    select coalesce(sum(e.amount_cents), 0), count(*) into total, entries
      from ledger_entry e where e.transaction_id = tx;
    if entries < 2 then
        raise exception 'ledger transaction % has % entries; a transaction needs at least two', tx, entries
            using errcode = 'check_violation', constraint = 'ledger_transaction_balanced';
    elsif total <> 0 then
        raise exception 'ledger transaction % does not balance: its entries sum to % cents', tx, total
            using errcode = 'check_violation', constraint = 'ledger_transaction_balanced';
    end if;
    return null;
end
$$;

create constraint trigger ledger_entry_balanced
    after insert on ledger_entry
    deferrable initially deferred
    for each row execute function ledger_check_balanced();

create constraint trigger ledger_transaction_balanced
    after insert on ledger_transaction
    deferrable initially deferred
    for each row execute function ledger_check_balanced();

-- The books are append-only: what was posted stays, and an error is undone by a correcting
-- transaction that says so. Accounts stay too, since entries and history name them.
create function ledger_append_only() returns trigger
language plpgsql as $$
begin
    if tg_table_name = 'ledger_account' then
        raise exception 'ledger accounts are permanent; entries refer to them'
            using errcode = 'restrict_violation', detail = format('%s on ledger_account', tg_op);
    end if;
    raise exception 'ledger entries are append-only; post a correcting transaction'
        using errcode = 'restrict_violation', detail = format('%s on %s', tg_op, tg_table_name);
end
$$;

create trigger ledger_entry_append_only before update or delete on ledger_entry
    for each row execute function ledger_append_only();
create trigger ledger_entry_no_truncate before truncate on ledger_entry
    for each statement execute function ledger_append_only();
create trigger ledger_transaction_append_only before update or delete on ledger_transaction
    for each row execute function ledger_append_only();
create trigger ledger_transaction_no_truncate before truncate on ledger_transaction
    for each statement execute function ledger_append_only();
create trigger ledger_account_permanent before update or delete on ledger_account
    for each row execute function ledger_append_only();
create trigger ledger_account_no_truncate before truncate on ledger_account
    for each statement execute function ledger_append_only();

-- The account of `org` (null for the platform) of `kind` in `currency`, created on first
-- use. Safe under concurrency: of two first uses, one inserts and the other's insert does
-- nothing and then reads the committed row (READ COMMITTED; under REPEATABLE READ it fails
-- with a retryable serialization error instead). The common case is the first select.
create function ledger_account_for(org bigint, kind text, currency text) returns bigint
language plpgsql as $$
declare
    account bigint;
begin
    for attempt in 1..2 loop
        if org is null then
            select a.id into account from ledger_account a
             where a.organization_id is null and a.kind = ledger_account_for.kind
               and a.currency = ledger_account_for.currency;
        else
            select a.id into account from ledger_account a
             where a.organization_id = org and a.kind = ledger_account_for.kind
               and a.currency = ledger_account_for.currency;
        end if;
        if account is not null then
            return account;
        end if;
        insert into ledger_account (organization_id, kind, currency)
        values (org, ledger_account_for.kind, ledger_account_for.currency)
        on conflict on constraint ledger_account_key do nothing
        returning id into account;
        if account is not null then
            return account;
        end if;
    end loop;
    raise exception 'ledger account (%, %, %) could not be created', org, kind, currency;
end
$$;

-- Records one transaction with its entries (accounts[i] gets amounts[i]; zero amounts are
-- left out) in one statement, so even with the balance checks made immediate the
-- transaction and its entries are checked together. Returns the transaction, or null when
-- every amount is zero, or when `once` and the reservation already has a posting of this
-- kind (the loser of a race then records nothing and raises nothing).
create function ledger_post(tx_kind text, tx_reservation bigint, tx_organization bigint, tx_currency text,
                            tx_fee_bp integer, tx_memo text, tx_ref text, tx_effective_at timestamptz,
                            accounts bigint[], amounts bigint[], once boolean default false)
returns bigint
language plpgsql as $$
declare
    tx bigint;
begin
    if not exists (select 1 from unnest(amounts) x where x <> 0) then
        return null;
    end if;
    if once then
        with t as (
            insert into ledger_transaction (kind, reservation_id, organization_id, currency, fee_bp, memo,
                                            external_ref, effective_at)
            values (tx_kind, tx_reservation, tx_organization, tx_currency, tx_fee_bp, tx_memo, tx_ref, tx_effective_at)
            on conflict (reservation_id, kind) where kind in ('charge', 'refund', 'recognition') do nothing
            returning id
        ), e as (
            insert into ledger_entry (transaction_id, account_id, currency, amount_cents)
            select t.id, u.account, tx_currency, u.amount
              from t cross join unnest(accounts, amounts) as u (account, amount)
             where u.amount <> 0
        )
        select t.id into tx from t;
    else
        with t as (
            insert into ledger_transaction (kind, reservation_id, organization_id, currency, fee_bp, memo,
                                            external_ref, effective_at)
            values (tx_kind, tx_reservation, tx_organization, tx_currency, tx_fee_bp, tx_memo, tx_ref, tx_effective_at)
            returning id
        ), e as (
            insert into ledger_entry (transaction_id, account_id, currency, amount_cents)
            select t.id, u.account, tx_currency, u.amount
              from t cross join unnest(accounts, amounts) as u (account, amount)
             where u.amount <> 0
        )
        select t.id into tx from t;
    end if;
    return tx;
end
$$;

-- Posts what a reservation change means for the books: `o` is the row before (null for an
-- insert), `n` the row after. Called by the reservation_ledger trigger and, once, by this
-- migration for the rows that already exist.
--
-- Transitions:
--   insert held, held -> held, held -> cancelled   nothing: nothing was sold.
--   insert confirmed                               charge, at created_at.
--   held -> confirmed                              charge, now.
--   insert cancelled (history, e.g. the seed)      charge at created_at, then as a cancellation.
--   confirmed, price changed (extension)           extension, now.
--   confirmed -> cancelled                         refund and recognition of the retained part,
--                                                  at cancelled_at.
--   anything else that would contradict what is posted is refused (below).
--
-- A cancellation without a locked refund (refund_cents null: rows inserted already
-- cancelled) refunds nothing, as the reservation pages show it.
--
-- The retained part of a cancellation is split like the price: the platform keeps its fee
-- pro rata, floor(fee × retained / total), and the operator the rest (the rounding cent goes
-- to the operator).
--
-- A reservation already recognised as completed that still changes price (an extension
-- that raced the recognition: the app refuses to extend a completed reservation, but its
-- clock is the request's) posts the difference straight to the operator and the fee, as the
-- recognition would have: its unearned balance stays zero and nothing is recognised twice.
-- This relies on READ COMMITTED (the app's level): the recognition locks the row, and the
-- change that waited for it sees the recognition once it holds the lock.
create function ledger_settle_reservation(o reservation, n reservation) returns void
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
                n.refund_cents)
               is distinct from
               (o.state, o.customer_id, o.currency, o.base_cents, o.discount_cents, o.fee_cents, o.total_cents,
                o.refund_cents) then
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
            -- Serialises with payouts, which may be checking this balance.
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
        retained := n.total_cents - refund;
        fee_kept := case when n.total_cents > 0
                         then floor(n.fee_cents::numeric * retained / n.total_cents)::bigint
                         else 0 end;
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

create function reservation_ledger() returns trigger
language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        perform ledger_settle_reservation(null, new);
    else
        perform ledger_settle_reservation(old, new);
    end if;
    return null;
end
$$;

-- Recognises every confirmed reservation that ended by `as_of` and is not recognised yet:
-- its money moves from unearned to the operator (base - discount) and the platform's fee
-- revenue (fee), effective at its end. Returns how many it recognised.
--
-- Not a trigger: completion is the passing of time, not a write. Whoever runs it (a periodic
-- job) catches up everything due, however long since the last run, and running it again does
-- nothing. Two runs at once do not collide: each skips the rows the other has locked, and a
-- row the other recognised just before this one locked it loses on the unique index
-- (ledger_transaction_once) without an error. Reservations of 0 cents have nothing to
-- recognise and are not counted.
create function ledger_recognize_completed(as_of timestamptz default now()) returns integer
language plpgsql as $$
declare
    r reservation;
    operator bigint;
    recognised integer := 0;
begin
    for r in
        select res.* from reservation res
         where res.state = 'confirmed' and upper(res.during) <= as_of and res.total_cents > 0
           and not exists (select 1 from ledger_transaction t
                            where t.reservation_id = res.id and t.kind = 'recognition')
         order by res.id
           for update of res skip locked
    loop
        select s.operator_id into operator from site s where s.id = r.site_id;
        if ledger_post('recognition', r.id, null, r.currency,
                       coalesce(r.fee_bp, ledger_fee_bp(r.fee_cents, r.base_cents - r.discount_cents)),
                       format('reservation %s completed', r.id), null, upper(r.during),
                       array[ledger_account_for(null, 'platform_unearned', r.currency),
                             ledger_account_for(operator, 'operator_payable', r.currency),
                             ledger_account_for(null, 'platform_fee_revenue', r.currency)],
                       array[r.total_cents, -(r.base_cents - r.discount_cents), -r.fee_cents],
                       once => true) is not null then
            recognised := recognised + 1;
        end if;
    end loop;
    return recognised;
end
$$;

-- Pays `amount` cents of what the platform owes `operator` in `currency`, under the payment
-- provider's reference `ref`. Refused (check_violation) unless 0 < amount <= the operator's
-- payable balance. The payable account row is locked, so concurrent payouts to one operator
-- take turns and cannot together pay more than is owed. Idempotent on `ref`: a retry of the
-- same payout returns the transaction already posted; the same `ref` for a different payout
-- is refused (unique_violation).
create function ledger_post_payout(operator bigint, currency text, amount bigint, ref text) returns bigint
language plpgsql as $$
declare
    payable bigint;
    owed bigint;
    done ledger_transaction;
    paid bigint;
begin
    if amount is null or amount <= 0 then
        raise exception 'a payout must be a positive number of cents, not %', amount
            using errcode = 'check_violation';
    end if;
    if ref is null or length(btrim(ref)) = 0 then
        raise exception 'a payout needs the payment provider''s reference'
            using errcode = 'check_violation';
    end if;
    select a.id into payable from ledger_account a
     where a.organization_id = operator and a.kind = 'operator_payable'
       and a.currency = ledger_post_payout.currency
       for update;
    -- Read after the lock, so a payout that committed while this one waited is seen.
    select t.* into done from ledger_transaction t where t.kind = 'payout' and t.external_ref = ref;
    if found then
        select e.amount_cents into paid from ledger_entry e
         where e.transaction_id = done.id and e.account_id = payable;
        if done.organization_id = operator and done.currency = ledger_post_payout.currency and paid = amount then
            return done.id;
        end if;
        raise exception 'payout reference % is already used by ledger transaction %', ref, done.id
            using errcode = 'unique_violation', constraint = 'ledger_transaction_payout_ref_key';
    end if;
    select -coalesce(sum(e.amount_cents), 0) into owed from ledger_entry e where e.account_id = payable;
    if payable is null or amount > owed then
        raise exception 'payout of % cents exceeds what operator % is owed in % (% cents)',
                        amount, operator, ledger_post_payout.currency, coalesce(owed, 0)
            using errcode = 'check_violation';
    end if;
    return ledger_post('payout', null, operator, ledger_post_payout.currency, null,
                       format('payout to operator %s', operator), ref, now(),
                       array[payable, ledger_account_for(null, 'platform_cash', ledger_post_payout.currency)],
                       array[amount, -amount]);
end
$$;

-- Every account with its balance (debits positive) and how many entries it has.
create view ledger_account_balance as
select a.id as account_id, a.organization_id, a.kind, a.currency,
       coalesce(sum(e.amount_cents), 0)::bigint as balance_cents,
       count(e.id) as entries
  from ledger_account a
  left join ledger_entry e on e.account_id = a.id
 group by a.id;

-- What the books say about each reservation, for reconciliation against its row:
--   confirmed, not ended:  charged = total, unearned = total.
--   completed:             charged = total, operator = base - discount, fee = fee_cents, unearned = 0.
--   cancelled:             charged = total, refunded = refund_cents,
--                          operator + fee = total - refund_cents, unearned = 0.
-- Always charged - refunded = unearned + operator + fee (the receivable is where it lands).
create view ledger_reservation_totals as
select t.reservation_id, t.currency,
       coalesce(sum(e.amount_cents) filter (where a.kind = 'customer_receivable' and t.kind <> 'refund'), 0)::bigint
           as charged_cents,
       coalesce(-sum(e.amount_cents) filter (where a.kind = 'customer_receivable' and t.kind = 'refund'), 0)::bigint
           as refunded_cents,
       coalesce(-sum(e.amount_cents) filter (where a.kind = 'platform_unearned'), 0)::bigint as unearned_cents,
       coalesce(-sum(e.amount_cents) filter (where a.kind = 'operator_payable'), 0)::bigint as operator_cents,
       coalesce(-sum(e.amount_cents) filter (where a.kind = 'platform_fee_revenue'), 0)::bigint
           as fee_cents_recognised
  from ledger_transaction t
  join ledger_entry e on e.transaction_id = t.id
  join ledger_account a on a.id = e.account_id
 where t.reservation_id is not null
 group by t.reservation_id, t.currency;

-- The books start consistent with the reservations that exist: each is posted as if the
-- trigger had seen it inserted (charges at booking, cancellations at cancelled_at), then
-- whatever has ended is recognised. On an empty database this does nothing.
do $$
declare
    r reservation;
begin
    for r in select * from reservation order by id loop
        perform ledger_settle_reservation(null, r);
    end loop;
end
$$;
select ledger_recognize_completed(now());

-- Created last, so the backfill above is the only way existing rows get posted.
create trigger reservation_ledger after insert or update on reservation
    for each row execute function reservation_ledger();
