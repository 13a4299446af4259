-- Forward pools (the bridge): a pool on a site that is still being built may be sold ahead
-- of its delivery only on forward terms, a committed delivery hour, a credit for each day
-- late and a walk-away date. Without them it cannot be booked by any door; with them, no
-- booking starts before the delivery. Each forward reservation keeps the terms it was sold
-- on, so a later change to the pool never rewrites a contract.

alter table capacity_pool
    add column delivery_at timestamptz,
    add column late_credit_bp integer,
    add column late_credit_cents_per_unit_day bigint,
    add column walk_away_at timestamptz,
    add constraint capacity_pool_forward_terms check (
        (delivery_at is null and walk_away_at is null
            and late_credit_bp is null and late_credit_cents_per_unit_day is null)
        or (delivery_at is not null and walk_away_at is not null
            and date_trunc('hour', delivery_at, 'UTC') = delivery_at
            and walk_away_at > delivery_at
            and (late_credit_bp is null) <> (late_credit_cents_per_unit_day is null)
            and coalesce(late_credit_bp, 1) between 1 and 10000
            and coalesce(late_credit_cents_per_unit_day, 1) between 1 and 100000000)
    );

alter table reservation
    add column forward_delivery_at timestamptz,
    add column forward_late_credit_bp integer,
    add column forward_late_credit_cents_per_unit_day bigint,
    add column forward_walk_away_at timestamptz,
    add constraint reservation_forward_terms check (
        (forward_delivery_at is null and forward_walk_away_at is null
            and forward_late_credit_bp is null and forward_late_credit_cents_per_unit_day is null)
        or (forward_delivery_at is not null and forward_walk_away_at is not null
            and (forward_late_credit_bp is null) <> (forward_late_credit_cents_per_unit_day is null)
            and lower(during) >= forward_delivery_at)
    );

-- Every new reservation, whichever door made it (booking, hold, standing order, resale,
-- an incident's offer): on a building site, the pool must sell forward and the reservation
-- starts at the delivery or later, and it takes the pool's terms as they are now.
create function reservation_forward_terms() returns trigger
language plpgsql as $$
declare
    p record;
begin
    if tg_op = 'UPDATE' then
        if (new.forward_delivery_at, new.forward_late_credit_bp,
            new.forward_late_credit_cents_per_unit_day, new.forward_walk_away_at)
           is distinct from
           (old.forward_delivery_at, old.forward_late_credit_bp,
            old.forward_late_credit_cents_per_unit_day, old.forward_walk_away_at) then
            raise exception 'reservation % keeps the forward terms it was sold on', old.id
                using errcode = 'check_violation', constraint = 'reservation_forward_terms_locked';
        end if;
        return new;
    end if;
    select s.status, cp.delivery_at, cp.late_credit_bp, cp.late_credit_cents_per_unit_day,
           cp.walk_away_at
      into p
      from capacity_pool cp join site s on s.id = cp.site_id
     where cp.id = new.pool_id;
    if p.status = 'building' then
        if p.delivery_at is null then
            raise exception 'pool % is on a site still being built and sells no forward capacity', new.pool_id
                using errcode = 'check_violation', constraint = 'pool_not_on_sale_before_delivery';
        end if;
        if lower(new.during) < p.delivery_at then
            raise exception 'pool % delivers at %; a reservation starts then or later', new.pool_id, p.delivery_at
                using errcode = 'check_violation', constraint = 'forward_starts_at_delivery';
        end if;
        new.forward_delivery_at := p.delivery_at;
        new.forward_late_credit_bp := p.late_credit_bp;
        new.forward_late_credit_cents_per_unit_day := p.late_credit_cents_per_unit_day;
        new.forward_walk_away_at := p.walk_away_at;
    else
        new.forward_delivery_at := null;
        new.forward_late_credit_bp := null;
        new.forward_late_credit_cents_per_unit_day := null;
        new.forward_walk_away_at := null;
    end if;
    return new;
end $$;

create trigger reservation_forward_terms
    before insert or update of forward_delivery_at, forward_late_credit_bp,
        forward_late_credit_cents_per_unit_day, forward_walk_away_at on reservation
    for each row execute function reservation_forward_terms();

-- When a site goes live: its delivery time, which ends the days counted late (a site that
-- goes back to building keeps the first delivery). Its operator and every customer with a
-- forward reservation there hear `site.delivered`.
alter table site add column delivered_at timestamptz;

create function site_delivered() returns trigger
language plpgsql as $$
declare
    body jsonb;
begin
    if old.status = 'building' and new.status = 'live' and old.delivered_at is null then
        new.delivered_at := now();
        body := jsonb_build_object('site_id', new.id, 'name', new.name, 'delivered_at', new.delivered_at);
        insert into event_outbox (organization_id, kind, payload) values (new.operator_id, 'site.delivered', body);
        insert into event_outbox (organization_id, kind, payload)
        select distinct r.customer_id, 'site.delivered', body
          from reservation r
         where r.site_id = new.id and r.state = 'confirmed' and r.forward_delivery_at is not null
           and r.customer_id <> new.operator_id;
    end if;
    return new;
end $$;

create trigger site_delivered before update of status on site
    for each row execute function site_delivered();

-- Late-delivery credits: one per reservation per full day past its committed delivery, in
-- the ledger like every credit (a unique index makes each day once, whichever process posts
-- it), until the site is delivered or the contract's end.
alter table reservation_credit drop constraint reservation_credit_reason_check;
alter table reservation_credit add constraint reservation_credit_reason_check
    check (reason in ('ended_early', 'preempted', 'curtailed', 'incident', 'sla', 'goodwill',
                      'late_delivery'));
alter table reservation_credit add column late_day integer,
    add constraint reservation_credit_late_day_check
        check ((reason = 'late_delivery') = (late_day is not null) and (late_day is null or late_day >= 1));
create unique index reservation_credit_late_day_key
    on reservation_credit (reservation_id, late_day) where late_day is not null;

-- Posts every late-delivery credit owed as of `at` and returns how many it posted. Day n
-- (n >= 1) is owed once n full days have passed since the committed delivery and the site
-- was still being built at its end; no day past the contract's end is owed. A day's credit
-- is the reservation's terms' share of its total, rounded down, or the amount per unit,
-- never more than is left of the payment.
create function forward_late_credits(at timestamptz) returns bigint
language plpgsql as $$
declare
    r record;
    n integer;
    owed integer;
    amount bigint;
    c reservation_credit;
    posted bigint := 0;
begin
    for r in
        select res.id, res.forward_delivery_at, upper(res.during) as ends, s.delivered_at
          from reservation res
          join site s on s.id = res.site_id
         where res.state = 'confirmed' and res.forward_delivery_at is not null
           and res.forward_delivery_at + interval '1 day' <= least(at, coalesce(s.delivered_at, at))
         order by res.id
           for update of res skip locked
    loop
        owed := floor(extract(epoch from least(at, coalesce(r.delivered_at, at), r.ends)
                                          - r.forward_delivery_at) / 86400)::integer;
        for n in 1..owed loop
            continue when exists (select 1 from reservation_credit
                                   where reservation_id = r.id and late_day = n);
            select least(
                       case when res.forward_late_credit_bp is not null
                            then floor(res.total_cents::numeric * res.forward_late_credit_bp / 10000)::bigint
                            else res.forward_late_credit_cents_per_unit_day * res.unit_count end,
                       res.total_cents - res.credited_cents - coalesce(res.refund_cents, 0))
              into amount
              from reservation res where res.id = r.id;
            exit when amount <= 0;
            insert into reservation_credit (reservation_id, amount_cents, unit_hours, reason, memo,
                                            effective_at, late_day)
            values (r.id, amount, 0, 'late_delivery',
                    format('delivery %s day(s) late', n),
                    r.forward_delivery_at + make_interval(days => n), n)
            returning * into c;
            perform emit_reservation_credited(c, null);
            posted := posted + 1;
        end loop;
    end loop;
    return posted;
end $$;

alter table webhook_endpoint drop constraint webhook_endpoint_events_check;
alter table webhook_endpoint add constraint webhook_endpoint_events_check check (
    cardinality(events) >= 1
    and events <@ array['reservation.created', 'reservation.cancelled', 'reservation.started',
                        'reservation.completed', 'reservation.preempted', 'blackout.created',
                        'capacity.changed', 'grid_event.created', 'order.filled',
                        'order.expired', 'incident.opened', 'incident.resolved',
                        'reservation.moved', 'reservation.credited', 'site.delivered']::text[]
);

-- A forward reservation is not earned while its site is still being built: its hours were
-- not delivered (the customer may yet walk away with a full refund). The rest as before.
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
