-- Resale: a customer sells back the future part of a firm, confirmed reservation.
--
-- A listing offers some of a reservation's units over [a whole hour, the reservation's end)
-- at a price per unit-hour. A purchase (`resale_buy`, one transaction) moves whole units
-- over the listed hours to a new reservation of the buyer: the seller's pieces are cut with
-- reason `resold` and the buyer's allocated on the same units, so the exclusion constraint
-- and the coverage checks keep every unit-hour with exactly one customer. The money is one
-- balanced ledger transaction, once per purchase: the buyer is charged the sale price, the
-- seller credited it less the platform's fee, the platform keeps the fee. The operator's
-- contract is the seller's reservation, which stands: its charge and its recognition are
-- unchanged, so the operator earns exactly what it did.
--
-- The buyer's reservation is marked with its listing. The ordinary reservation postings
-- (charge, refund, recognition) never apply to it: its money is the resale transaction, and
-- a resale is final (it is not cancelled, extended, repriced or listed again).

create table resale_listing (
    id                     bigint generated always as identity primary key,
    seller_id              bigint not null references organization (id),
    reservation_id         bigint not null references reservation (id),
    site_id                bigint not null,
    pool_id                bigint not null,
    unit_count             integer not null check (unit_count >= 1),
    units_sold             integer not null default 0,
    during                 tstzrange not null check (is_hour_range(during)),
    unit_hour_price_cents  bigint not null check (unit_hour_price_cents between 1 and 100000000),
    currency               text not null check (currency ~ '^[A-Z]{3}$'),
    state                  text not null default 'open' check (state in ('open', 'sold', 'withdrawn')),
    closed_at              timestamptz,
    created_at             timestamptz not null default now(),
    foreign key (site_id, pool_id) references capacity_pool (site_id, id),
    constraint resale_listing_units_sold check (units_sold between 0 and unit_count),
    constraint resale_listing_sold check ((state = 'sold') = (units_sold = unit_count)),
    constraint resale_listing_closed check ((state = 'open') = (closed_at is null)),
    -- A listing never covers past hours: it starts after it was written.
    constraint resale_listing_future check (lower(during) > created_at)
);
create index resale_listing_open_idx on resale_listing (pool_id, lower(during)) where state = 'open';
create index resale_listing_reservation_idx on resale_listing (reservation_id);
create index resale_listing_seller_idx on resale_listing (seller_id, id);

alter table reservation add column resale_listing_id bigint references resale_listing (id);
create index reservation_resale_listing_idx on reservation (resale_listing_id)
    where resale_listing_id is not null;

-- One row per purchase: who bought how many units of which listing, and the money split.
create table resale_purchase (
    id              bigint generated always as identity primary key,
    listing_id      bigint not null references resale_listing (id),
    buyer_id        bigint not null references organization (id),
    reservation_id  bigint not null unique references reservation (id),
    unit_count      integer not null check (unit_count >= 1),
    total_cents     bigint not null check (total_cents > 0),
    fee_cents       bigint not null check (fee_cents >= 0),
    seller_cents    bigint not null check (seller_cents >= 0),
    created_at      timestamptz not null default now(),
    constraint resale_purchase_balanced check (total_cents = seller_cents + fee_cents)
);
create index resale_purchase_listing_idx on resale_purchase (listing_id);

alter table ledger_transaction drop constraint ledger_transaction_kind_check;
alter table ledger_transaction add constraint ledger_transaction_kind_check
    check (kind in ('charge', 'extension', 'refund', 'recognition', 'credit', 'payout', 'correction',
                    'resale'));
alter table ledger_transaction drop constraint ledger_transaction_reservation_check;
alter table ledger_transaction add constraint ledger_transaction_reservation_check
    check (kind not in ('charge', 'extension', 'refund', 'recognition', 'credit', 'resale')
           or reservation_id is not null);
-- A purchase is posted once.
create unique index ledger_transaction_resale_once on ledger_transaction (reservation_id)
    where kind = 'resale';

-- The ordinary postings skip a resale reservation, and a resale is final.
create or replace function reservation_ledger() returns trigger
language plpgsql as $$
begin
    if new.resale_listing_id is not null then
        if tg_op = 'UPDATE' and (
               new.state is distinct from old.state
               or (new.customer_id, new.currency, new.total_cents, new.during, new.resale_listing_id)
                  is distinct from (old.customer_id, old.currency, old.total_cents, old.during, old.resale_listing_id)) then
            raise exception 'reservation % was bought on resale; a resale is final', new.id
                using errcode = 'restrict_violation', constraint = 'resale_is_final';
        end if;
        return null;
    end if;
    if tg_op = 'UPDATE' and old.resale_listing_id is distinct from new.resale_listing_id then
        raise exception 'reservation % cannot become a resale', new.id
            using errcode = 'restrict_violation', constraint = 'resale_is_final';
    end if;
    if tg_op = 'INSERT' then
        perform ledger_settle_reservation(null, new);
    else
        perform ledger_settle_reservation(old, new);
    end if;
    return null;
end
$$;

-- A reservation some of whose hours were sold cannot be cancelled: the seller was paid for
-- them, and the buyer holds them.
create function reservation_keeps_what_it_sold() returns trigger
language plpgsql as $$
begin
    if new.state = 'cancelled' and old.state <> 'cancelled'
       and exists (select 1 from allocation_cut c where c.reservation_id = new.id and c.reason = 'resold') then
        raise exception 'part of reservation % was resold; it cannot be cancelled', new.id
            using errcode = 'restrict_violation', constraint = 'resold_reservation_stands';
    end if;
    return new;
end
$$;

create trigger reservation_keeps_what_it_sold before update of state on reservation
    for each row execute function reservation_keeps_what_it_sold();

-- Completion recognises ordinary reservations only; a resale's money was settled when bought.
-- (The definition of 20261202000600, which recognises net of credits, with that condition.)
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

-- Buys `units` whole units of listing `listing` for `buyer` at the platform fee `fee_bp`,
-- all in this transaction: checks the listing is open, not started and has the units; takes
-- them from the seller's reservation (units it holds over the whole listed range) and gives
-- them to a new reservation of the buyer; records the purchase and posts its money once.
-- Returns the buyer's reservation. Refusals carry constraint names the app maps:
-- resale_listing_closed (sold, withdrawn or started), resale_listing_units (too few left),
-- resale_listing_unavailable (the seller no longer holds them), resale_own_listing.
create function resale_buy(listing bigint, buyer bigint, units integer, fee_bp integer,
                           actor_user bigint, actor_key bigint)
returns bigint
language plpgsql as $$
declare
    l resale_listing;
    seller reservation;
    res bigint;
    taken integer := 0;
    a record;
    hours bigint;
    total bigint;
    fee bigint;
begin
    select * into l from resale_listing where id = listing for update;
    if not found then
        raise exception 'no resale listing %', listing
            using errcode = 'no_data_found', constraint = 'resale_listing_missing';
    end if;
    if l.state <> 'open' or lower(l.during) <= statement_timestamp() then
        raise exception 'resale listing % is closed', listing
            using errcode = 'check_violation', constraint = 'resale_listing_closed';
    end if;
    if l.seller_id = buyer then
        raise exception 'resale listing % is the buyer''s own', listing
            using errcode = 'check_violation', constraint = 'resale_own_listing';
    end if;
    if units < 1 or units > l.unit_count - l.units_sold then
        raise exception 'resale listing % has % units left', listing, l.unit_count - l.units_sold
            using errcode = 'check_violation', constraint = 'resale_listing_units';
    end if;
    if not exists (select 1 from organization where id = buyer and kind <> 'operator') then
        raise exception 'organization % does not buy capacity', buyer
            using errcode = 'check_violation', constraint = 'resale_buyer_is_customer';
    end if;
    select * into seller from reservation where id = l.reservation_id for update;
    if seller.state <> 'confirmed' then
        raise exception 'reservation % of listing % is not confirmed', seller.id, listing
            using errcode = 'check_violation', constraint = 'resale_listing_unavailable';
    end if;
    hours := extract(epoch from upper(l.during) - lower(l.during))::bigint / 3600;
    total := units * hours * l.unit_hour_price_cents;
    fee := floor(total::numeric * fee_bp / 10000)::bigint;
    insert into reservation (site_id, pool_id, customer_id, unit_count, during, state, currency,
                             unit_price_cents, base_cents, discount_cents, fee_cents, total_cents,
                             fee_bp, tier, resale_listing_id)
    values (l.site_id, l.pool_id, buyer, units, l.during, 'confirmed', l.currency,
            l.unit_hour_price_cents, total - fee, 0, fee, total, fee_bp, seller.tier, l.id)
    returning id into res;
    for a in
        select unit_id from allocation
         where reservation_id = seller.id and during @> l.during
         order by unit_id
         limit units
    loop
        perform reservation_cut(seller.id, a.unit_id, l.during, 'resold');
        insert into allocation (site_id, pool_id, unit_id, reservation_id, during)
        values (l.site_id, l.pool_id, a.unit_id, res, l.during);
        taken := taken + 1;
    end loop;
    if taken < units then
        raise exception 'the seller of listing % holds % of the % units over its hours', listing, taken, units
            using errcode = 'check_violation', constraint = 'resale_listing_unavailable';
    end if;
    insert into resale_purchase (listing_id, buyer_id, reservation_id, unit_count, total_cents,
                                 fee_cents, seller_cents)
    values (listing, buyer, res, units, total, fee, total - fee);
    update resale_listing
       set units_sold = units_sold + units,
           state = case when units_sold + units = unit_count then 'sold' else 'open' end,
           closed_at = case when units_sold + units = unit_count then statement_timestamp() end
     where id = listing;
    perform ledger_post('resale', res, null, l.currency, fee_bp,
                        format('resale listing %s: %s units bought', listing, units), null,
                        statement_timestamp(),
                        array[ledger_account_for(buyer, 'customer_receivable', l.currency),
                              ledger_account_for(l.seller_id, 'customer_receivable', l.currency),
                              ledger_account_for(null, 'platform_fee_revenue', l.currency)],
                        array[total, -(total - fee), -fee]);
    insert into audit_event (organization_id, actor_user_id, actor_key_id, actor_label, action,
                             object_type, object_id, detail)
    values (buyer, actor_user, actor_key, audit_actor_label(actor_user, actor_key), 'resale.bought',
            'resale_listing', listing, jsonb_build_object('reservation_id', res, 'units', units,
                                                          'total_cents', total)),
           -- The seller's trail names no one of the buyer's organization.
           (l.seller_id, null, null, 'system', 'resale.sold',
            'resale_listing', listing, jsonb_build_object('units', units, 'seller_cents', total - fee));
    return res;
end
$$;

-- What a listing may offer: the future part, from a whole hour to its end, of a firm,
-- confirmed reservation (not itself a resale) of its seller, at most all its units.
create function resale_listing_check() returns trigger
language plpgsql as $$
declare
    r reservation;
begin
    select * into r from reservation where id = new.reservation_id;
    if r.customer_id <> new.seller_id or r.state <> 'confirmed' or r.tier <> 'firm'
       or r.resale_listing_id is not null
       or (r.site_id, r.pool_id, r.currency) is distinct from (new.site_id, new.pool_id, new.currency)
       or new.unit_count > r.unit_count
       or upper(new.during) <> upper(r.during) or lower(new.during) < lower(r.during) then
        raise exception 'listing does not fit reservation %', r.id
            using errcode = 'check_violation', constraint = 'resale_listing_fits';
    end if;
    return new;
end
$$;

create trigger resale_listing_check before insert on resale_listing
    for each row execute function resale_listing_check();

-- A listing is closed for good once sold or withdrawn; its terms never change.
create function resale_listing_transition() returns trigger
language plpgsql as $$
begin
    if old.state <> 'open' then
        raise exception 'resale listing % is % and cannot change', old.id, old.state
            using errcode = 'restrict_violation', constraint = 'resale_listing_closed_for_good';
    end if;
    if (new.seller_id, new.reservation_id, new.unit_count, new.during, new.unit_hour_price_cents, new.currency)
       is distinct from (old.seller_id, old.reservation_id, old.unit_count, old.during, old.unit_hour_price_cents, old.currency)
       or new.units_sold < old.units_sold then
        raise exception 'resale listing % cannot be changed; withdraw it and list again', old.id
            using errcode = 'restrict_violation', constraint = 'resale_listing_closed_for_good';
    end if;
    return new;
end
$$;

create trigger resale_listing_transition before update on resale_listing
    for each row execute function resale_listing_transition();

alter table audit_event drop constraint audit_event_object_type_check;
alter table audit_event add constraint audit_event_object_type_check check (
    object_type in ('reservation', 'pool', 'site', 'blackout', 'api_key', 'organization', 'user',
                    'webhook', 'grid_event', 'standing_order', 'resale_listing')
);
