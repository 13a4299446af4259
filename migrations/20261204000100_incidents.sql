-- Incidents: an operator records that units of a pool are down. Rigshift heals first (moves
-- the hit unit-hours to a spare unit of the pool, preempting interruptible capacity for a
-- firm reservation if it must), credits what it cannot heal (the lost unit-hours at the
-- price paid, plus the pool's SLA credit when a month's delivered share falls under its
-- promise), and offers equivalent capacity at another of the operator's sites at the same
-- price. Everything in one transaction per incident, through the re-allocation primitives
-- of 20261202000600, so the exclusion constraint and the coverage check hold throughout.
--
-- The units of an incident are out of sale like a blackout's: the incident owns their
-- allocations over its hours (from the hour it started; to its given end, or, while it is
-- open without one, to the end of the pool's last availability window, extended as that
-- grows).

create function range_hours(r tstzrange) returns bigint
language sql immutable as $$
    select case when r is null or isempty(r) then 0
                else (extract(epoch from upper(r) - lower(r)) / 3600)::bigint end
$$;

create function ceil_hour(t timestamptz) returns timestamptz
language sql immutable as $$
    select case when date_trunc('hour', t, 'UTC') = t then t
                else date_trunc('hour', t, 'UTC') + interval '1 hour' end
$$;

-- SLA terms: the monthly availability promise and the credit tiers, in basis points. Tier k
-- applies when the month's delivered share is under below_bp[k] and pays credit_bp[k] of the
-- month's charge; the deepest tier reached applies. The default is written on every pool.
create function sla_terms_valid(promise integer, below integer[], credit integer[]) returns boolean
language sql immutable as $$
    select promise between 5000 and 10000
       and cardinality(below) between 1 and 5
       and cardinality(below) = cardinality(credit)
       and below[1] <= promise
       and (select bool_and(below[k] between 1 and 10000 and credit[k] between 1 and 10000
                            and (k = 1 or (below[k] < below[k - 1] and credit[k] > credit[k - 1])))
              from generate_subscripts(below, 1) k)
$$;

alter table capacity_pool
    add column sla_promise_bp integer not null default 9950,
    add column sla_below_bp integer[] not null default '{9950,9900,9500}',
    add column sla_credit_bp integer[] not null default '{1000,2500,5000}',
    add constraint capacity_pool_sla_check check (sla_terms_valid(sla_promise_bp, sla_below_bp, sla_credit_bp));

create table incident (
    id              bigint generated always as identity primary key,
    site_id         bigint not null,
    pool_id         bigint not null,
    cause           text not null check (length(btrim(cause)) between 1 and 500),
    -- When the units went down, as the operator said; never ahead of the recording, at most
    -- 72 hours before it.
    started_at      timestamptz not null,
    -- The end the operator gave, if any (on the hour).
    ends_at         timestamptz,
    state           text not null default 'open' check (state in ('open', 'resolved')),
    resolved_at     timestamptz,
    -- The hours its units are out of sale so far (see the top of this file).
    during          tstzrange not null check (is_hour_range(during)),
    created_at      timestamptz not null default now(),
    foreign key (site_id, pool_id) references capacity_pool (site_id, id),
    constraint incident_pool_id_key unique (pool_id, id),
    constraint incident_started_check check (started_at <= created_at + interval '1 minute'
                                             and started_at >= created_at - interval '72 hours'),
    constraint incident_ends_check check (ends_at is null
                                          or (ends_at > started_at and date_trunc('hour', ends_at, 'UTC') = ends_at)),
    constraint incident_resolved_check check ((state = 'resolved') = (resolved_at is not null))
);
create index incident_pool_idx on incident (pool_id, id);
create index incident_open_idx on incident (id) where state = 'open';

create table incident_unit (
    incident_id bigint not null references incident (id),
    unit_id     bigint not null references capacity_unit (id),
    primary key (incident_id, unit_id)
);

alter table allocation add column incident_id bigint;
alter table allocation add constraint allocation_incident_fkey
    foreign key (pool_id, incident_id) references incident (pool_id, id);
alter table allocation drop constraint allocation_one_owner;
alter table allocation add constraint allocation_one_owner
    check (num_nonnulls(reservation_id, blackout_id, incident_id) = 1);
create index allocation_incident_idx on allocation (incident_id) where incident_id is not null;

-- What an incident did to each piece of a reservation it hit: moved to another unit, lost
-- (cut, credited when it is owed), or released (a hold, never charged). The customer's
-- record of "which unit changed and when", and the harness's proof that no firm unit-hour
-- was lost without being moved or credited. `xact` groups one transaction's hits.
create table incident_hit (
    id              bigint generated always as identity primary key,
    incident_id     bigint not null references incident (id),
    reservation_id  bigint not null references reservation (id),
    unit_id         bigint not null references capacity_unit (id),
    during          tstzrange not null check (is_hour_range(during)),
    outcome         text not null check (outcome in ('moved', 'lost', 'released')),
    to_unit_id      bigint references capacity_unit (id),
    xact            xid8 not null default pg_current_xact_id(),
    created_at      timestamptz not null default now(),
    constraint incident_hit_moved_check check ((outcome = 'moved') = (to_unit_id is not null))
);
create index incident_hit_incident_idx on incident_hit (incident_id, xact);
create index incident_hit_reservation_idx on incident_hit (reservation_id);

create trigger incident_hit_append_only before update or delete on incident_hit
    for each row execute function ledger_append_only();

-- The credits an incident posted (for the lost hours, and the SLA credits they brought).
create table incident_credit (
    incident_id bigint not null references incident (id),
    credit_id   bigint not null references reservation_credit (id),
    primary key (incident_id, credit_id)
);

-- The offer of equivalent capacity at another site when the pool had no spare: the same
-- GPU model (at least as many GPUs a node) or block size, the same units, the lost hours,
-- at the price paid for them. Accepting books it (a new reservation charged that price);
-- the credit for the lost hours stands either way.
create table incident_offer (
    id                      bigint generated always as identity primary key,
    incident_id             bigint not null references incident (id),
    reservation_id          bigint not null references reservation (id),
    customer_id             bigint not null references organization (id),
    pool_id                 bigint not null references capacity_pool (id),
    unit_count              integer not null check (unit_count >= 1),
    during                  tstzrange not null check (is_hour_range(during)),
    currency                text not null,
    total_cents             bigint not null check (total_cents >= 0),
    expires_at              timestamptz not null,
    state                   text not null default 'open'
                            check (state in ('open', 'accepted', 'declined', 'expired')),
    accepted_reservation_id bigint references reservation (id),
    closed_at               timestamptz,
    created_at              timestamptz not null default now(),
    constraint incident_offer_accepted_check check ((state = 'accepted') = (accepted_reservation_id is not null)),
    constraint incident_offer_closed_check check ((state = 'open') = (closed_at is null)),
    constraint incident_offer_once unique (incident_id, reservation_id, during)
);
create index incident_offer_customer_idx on incident_offer (customer_id, id);
create index incident_offer_open_idx on incident_offer (expires_at) where state = 'open';

create function incident_offer_transition() returns trigger
language plpgsql as $$
begin
    if old.state <> 'open' then
        raise exception 'offer % is %; it cannot change', old.id, old.state
            using errcode = 'restrict_violation', constraint = 'incident_offer_closed_for_good';
    end if;
    if (new.incident_id, new.reservation_id, new.customer_id, new.pool_id, new.unit_count, new.during,
        new.currency, new.total_cents, new.expires_at)
       is distinct from
       (old.incident_id, old.reservation_id, old.customer_id, old.pool_id, old.unit_count, old.during,
        old.currency, old.total_cents, old.expires_at) then
        raise exception 'offer % cannot change its terms', old.id
            using errcode = 'restrict_violation', constraint = 'incident_offer_closed_for_good';
    end if;
    return new;
end
$$;

create trigger incident_offer_transition before update on incident_offer
    for each row execute function incident_offer_transition();

-- SLA credits name their month, so a month's credit is topped up, never paid twice.
alter table reservation_credit add column sla_month date;
alter table reservation_credit add constraint reservation_credit_sla_month_check
    check (sla_month is null or reason = 'sla');

-- The SLA credit owed to reservation `res` for the month starting `month_start` (UTC), less
-- what was credited for that month before: when the share of the reservation's unit-hours
-- of that month not lost to incidents is under the pool's promise, the deepest tier reached
-- pays its share of the month's charge (the total pro rata to the month's unit-hours,
-- rounded down, then the tier's basis points of it, rounded down). Returns the credit
-- posted, or null.
create function reservation_sla_settle(res bigint, month_start timestamptz) returns reservation_credit
language plpgsql as $$
declare
    r reservation;
    p capacity_pool;
    month tstzrange;
    sold bigint;
    lost bigint;
    share_bp bigint;
    tier_bp integer;
    month_charge bigint;
    due bigint;
    credit reservation_credit;
begin
    select * into r from reservation where id = res for update;
    if r.state <> 'confirmed' or r.resale_listing_id is not null then
        return null;
    end if;
    select * into p from capacity_pool where id = r.pool_id;
    month := tstzrange(month_start, ((month_start at time zone 'UTC') + interval '1 month') at time zone 'UTC');
    sold := r.unit_count * range_hours(r.during * month);
    if sold = 0 then
        return null;
    end if;
    select coalesce(sum(range_hours(c.during * month)), 0) into lost
      from allocation_cut c where c.reservation_id = res and c.reason = 'incident' and c.during && month;
    share_bp := floor(10000 * (sold - lost)::numeric / sold)::bigint;
    if share_bp >= p.sla_promise_bp then
        return null;
    end if;
    select max(p.sla_credit_bp[k]) into tier_bp
      from generate_subscripts(p.sla_below_bp, 1) k where share_bp < p.sla_below_bp[k];
    if tier_bp is null then
        return null;
    end if;
    month_charge := floor(r.total_cents::numeric * sold / (r.unit_count * range_hours(r.during)))::bigint;
    due := floor(month_charge::numeric * tier_bp / 10000)::bigint
           - coalesce((select sum(amount_cents) from reservation_credit
                        where reservation_id = res and reason = 'sla' and sla_month = month_start::date), 0);
    due := least(due, r.total_cents - r.credited_cents - coalesce(r.refund_cents, 0));
    if due <= 0 then
        return null;
    end if;
    insert into reservation_credit (reservation_id, amount_cents, unit_hours, reason, memo, effective_at, sla_month)
    values (res, due, 0, 'sla',
            format('SLA for %s: %s%% of this reservation''s unit-hours delivered, under the %s%% promise; %s%% of the month''s charge',
                   to_char(month_start at time zone 'UTC', 'FMMonth YYYY'),
                   to_char(share_bp / 100.0, 'FM990.00'), to_char(p.sla_promise_bp / 100.0, 'FM990.00'),
                   to_char(tier_bp / 100.0, 'FM990.##')),
            now(), month_start::date)
    returning * into credit;
    return credit;
end
$$;

-- `reservation.credited` to the customer and the site's operator.
create function emit_reservation_credited(c reservation_credit, incident bigint) returns void
language plpgsql as $$
declare
    r reservation;
    operator bigint;
    body jsonb;
begin
    select * into r from reservation where id = c.reservation_id;
    select s.operator_id into operator from site s where s.id = r.site_id;
    body := jsonb_build_object(
        'reservation_id', r.id, 'pool_id', r.pool_id, 'site_id', r.site_id, 'customer_id', r.customer_id,
        'credit_id', c.id, 'reason', c.reason, 'amount_cents', c.amount_cents, 'unit_hours', c.unit_hours,
        'memo', c.memo, 'incident_id', incident, 'credited_cents', r.credited_cents, 'currency', r.currency);
    insert into event_outbox (organization_id, kind, payload) values (r.customer_id, 'reservation.credited', body);
    if operator is distinct from r.customer_id then
        insert into event_outbox (organization_id, kind, payload) values (operator, 'reservation.credited', body);
    end if;
end
$$;

-- Fills the hours of `span` on `unit` that nothing holds with the incident's allocations.
create function incident_fill(inc bigint, unit bigint, span tstzrange) returns void
language plpgsql as $$
declare
    i incident;
    a record;
    t timestamptz := lower(span);
begin
    select * into i from incident where id = inc;
    for a in select during from allocation where unit_id = unit and during && span order by lower(during) loop
        if lower(a.during) > t then
            insert into allocation (site_id, pool_id, unit_id, incident_id, during)
            values (i.site_id, i.pool_id, unit, inc, tstzrange(t, lower(a.during)));
        end if;
        t := greatest(t, upper(a.during));
    end loop;
    if t < upper(span) then
        insert into allocation (site_id, pool_id, unit_id, incident_id, during)
        values (i.site_id, i.pool_id, unit, inc, tstzrange(t, upper(span)));
    end if;
end
$$;

-- Heals what incident `inc` hits over `span`, in the caller's transaction. Hours before
-- `heal_from` (past, or under way) cannot be healed: they are cut and credited. Later hours
-- move to a spare unit of the pool, chosen by the one rule (choose_free_units); a firm
-- reservation without a spare preempts interruptible capacity (after the pool's notice), never
-- firm; what still has nowhere to go is cut, credited, and offered at another site. Holds on
-- a hit unit that cannot move are released (never charged). Each vacated piece of a failed
-- unit becomes the incident's at once, so a failed unit is never chosen as a spare.
-- Interruptible pieces go first and only to free units, so firm ones may preempt after.
create function incident_heal(inc bigint, span tstzrange, heal_from timestamptz)
returns table (moved_unit_hours bigint, lost_unit_hours bigint, credited_cents bigint, offers bigint)
language plpgsql as $$
declare
    i incident;
    p capacity_pool;
    u record;
    piece record;
    r reservation;
    hit tstzrange;
    past tstzrange;
    fut tstzrange;
    spare bigint;
    cut_from timestamptz;
    lost record;
    m timestamptz;
    c reservation_credit;
    alt record;
    w tstzrange;
    offer_total bigint;
    moved_h bigint := 0;
    lost_h bigint := 0;
    credited bigint := 0;
    offered bigint := 0;
begin
    select * into i from incident where id = inc for update;
    select * into p from capacity_pool where id = i.pool_id;
    cut_from := ceil_hour(now() + make_interval(hours => p.interruptible_notice_hours));
    for u in select iu.unit_id from incident_unit iu where iu.incident_id = inc order by iu.unit_id loop
        perform 1 from capacity_unit where id = u.unit_id for no key update;
        perform incident_fill(inc, u.unit_id, span);
    end loop;
    for piece in
        select a.reservation_id, a.unit_id, a.during, res.tier, res.state
          from allocation a
          join incident_unit iu on iu.unit_id = a.unit_id and iu.incident_id = inc
          join reservation res on res.id = a.reservation_id
         where a.during && span
         order by (res.tier = 'firm'), a.reservation_id, a.unit_id, lower(a.during)
    loop
        select * into r from reservation where id = piece.reservation_id for update;
        hit := piece.during * span;
        -- A hold: moved whole if a spare serves all of its hit hours, else released.
        if r.state = 'held' then
            if not exists (select 1 from allocation where reservation_id = r.id and unit_id = piece.unit_id
                                                     and during = piece.during) then
                continue; -- released already by an earlier piece of it
            end if;
            spare := (select f.unit_id from choose_free_units(i.pool_id, hit, 1, true) f);
            if spare is not null and lower(hit) >= heal_from then
                perform reservation_move(r.id, piece.unit_id, spare, hit);
                insert into incident_hit (incident_id, reservation_id, unit_id, during, outcome, to_unit_id)
                values (inc, r.id, piece.unit_id, hit, 'moved', spare);
                perform incident_fill(inc, piece.unit_id, span);
                continue;
            end if;
            insert into incident_hit (incident_id, reservation_id, unit_id, during, outcome)
            select inc, r.id, a.unit_id, a.during * span, 'released'
              from allocation a where a.reservation_id = r.id and a.during && span
               and a.unit_id in (select unit_id from incident_unit where incident_id = inc);
            delete from allocation where reservation_id = r.id;
            update reservation set state = 'cancelled', cancelled_at = now(), updated_at = now() where id = r.id;
            insert into audit_event (organization_id, actor_label, action, object_type, object_id, detail)
            values (r.customer_id, 'system', 'reservation.hold_released', 'reservation', r.id,
                    jsonb_build_object('incident_id', inc, 'reason', 'a unit it held went down'));
            perform incident_fill(inc, u2.unit_id, span)
               from incident_unit u2 where u2.incident_id = inc;
            continue;
        end if;
        if heal_from <= lower(hit) then
            past := 'empty';
            fut := hit;
        elsif heal_from >= upper(hit) then
            past := hit;
            fut := 'empty';
        else
            past := tstzrange(lower(hit), heal_from);
            fut := tstzrange(heal_from, upper(hit));
        end if;
        if not isempty(past) then
            perform reservation_cut(r.id, piece.unit_id, past, 'incident');
            insert into incident_hit (incident_id, reservation_id, unit_id, during, outcome)
            values (inc, r.id, piece.unit_id, past, 'lost');
        end if;
        if not isempty(fut) then
            spare := (select f.unit_id from choose_free_units(i.pool_id, fut, 1, true) f);
            if spare is null and r.tier = 'firm' and p.interruptible_price_cents is not null
               and preempt_interruptible(i.pool_id, fut, 1, cut_from) > 0 then
                spare := (select f.unit_id from choose_free_units(i.pool_id, fut, 1, true) f);
            end if;
            if spare is not null then
                perform reservation_move(r.id, piece.unit_id, spare, fut);
                insert into incident_hit (incident_id, reservation_id, unit_id, during, outcome, to_unit_id)
                values (inc, r.id, piece.unit_id, fut, 'moved', spare);
            else
                perform reservation_cut(r.id, piece.unit_id, fut, 'incident');
                insert into incident_hit (incident_id, reservation_id, unit_id, during, outcome)
                values (inc, r.id, piece.unit_id, fut, 'lost');
            end if;
        end if;
        perform incident_fill(inc, piece.unit_id, span);
    end loop;

    select coalesce(sum(range_hours(h.during)), 0) into moved_h
      from incident_hit h where h.incident_id = inc and h.xact = pg_current_xact_id() and h.outcome = 'moved';

    -- Credits: the lost unit-hours at the price paid, then each touched month's SLA credit.
    -- A reservation bought on resale is not credited here (its money went to its seller).
    for lost in
        select h.reservation_id, sum(range_hours(h.during))::bigint as hours,
               min(lower(h.during)) as first_lost, max(upper(h.during)) as last_lost
          from incident_hit h
         where h.incident_id = inc and h.xact = pg_current_xact_id() and h.outcome = 'lost'
         group by h.reservation_id order by h.reservation_id
    loop
        lost_h := lost_h + lost.hours;
        select * into r from reservation where id = lost.reservation_id;
        continue when r.resale_listing_id is not null;
        c := reservation_credit_hours(r.id, lost.hours, 'incident',
                                      format('incident #%s (%s): %s unit-hours not delivered from %s',
                                             inc, left(i.cause, 200), lost.hours,
                                             to_char(lost.first_lost at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
                                      now());
        if c.id is not null then
            credited := credited + c.amount_cents;
            insert into incident_credit (incident_id, credit_id) values (inc, c.id);
            perform emit_reservation_credited(c, inc);
        end if;
        for m in select generate_series(date_trunc('month', lost.first_lost, 'UTC'),
                                        lost.last_lost - interval '1 microsecond', interval '1 month')
        loop
            c := reservation_sla_settle(r.id, date_trunc('month', m, 'UTC'));
            if c.id is not null then
                credited := credited + c.amount_cents;
                insert into incident_credit (incident_id, credit_id) values (inc, c.id);
                perform emit_reservation_credited(c, inc);
            end if;
        end loop;
    end loop;

    -- Offers for future hours a firm reservation lost: equivalent capacity at another live
    -- site of the operator, cheapest first, free over the hours right now.
    for lost in
        select h.reservation_id, count(distinct h.unit_id)::integer as units,
               tstzrange(min(lower(h.during)), max(upper(h.during))) as hull
          from incident_hit h
          join reservation res on res.id = h.reservation_id
         where h.incident_id = inc and h.xact = pg_current_xact_id() and h.outcome = 'lost'
           and lower(h.during) >= heal_from and res.tier = 'firm' and res.state = 'confirmed'
           and res.resale_listing_id is null
         group by h.reservation_id order by h.reservation_id
    loop
        select * into r from reservation where id = lost.reservation_id;
        w := lost.hull;
        continue when upper(w) - interval '1 hour' <= now();
        select p2.id into alt
          from capacity_pool p2 join site s2 on s2.id = p2.site_id
         where s2.operator_id = (select operator_id from site where id = i.site_id)
           and p2.site_id <> i.site_id and s2.status = 'live' and p2.listed
           and p2.kind = p.kind and p2.currency = r.currency
           and ((p.kind = 'gpu' and p2.gpu_model = p.gpu_model and p2.gpus_per_node >= p.gpus_per_node)
                or (p.kind = 'power' and p2.block_kw >= p.block_kw))
           and (select coalesce(range_agg(aw.during) @> w, false) from availability_window aw where aw.pool_id = p2.id)
           and p2.unit_count - (select count(distinct a.unit_id) from allocation a
                                 where a.pool_id = p2.id and a.during && w) >= lost.units
         order by p2.price_cents, p2.id
         limit 1;
        continue when not found;
        offer_total := floor(r.total_cents::numeric * lost.units * range_hours(w)
                             / (r.unit_count * range_hours(r.during)))::bigint;
        insert into incident_offer (incident_id, reservation_id, customer_id, pool_id, unit_count, during,
                                    currency, total_cents, expires_at)
        values (inc, r.id, r.customer_id, alt.id, lost.units, w, r.currency, offer_total,
                least(now() + interval '24 hours', upper(w) - interval '1 hour'))
        on conflict do nothing;
        if found then
            offered := offered + 1;
        end if;
    end loop;

    -- `reservation.moved` once per reservation that moved, with its moves.
    insert into event_outbox (organization_id, kind, payload)
    select o.org, 'reservation.moved',
           jsonb_build_object('reservation_id', res.id, 'pool_id', res.pool_id, 'site_id', res.site_id,
                              'customer_id', res.customer_id, 'incident_id', inc,
                              'moves', jsonb_agg(jsonb_build_object(
                                  'from_unit', fu.ordinal, 'to_unit', tu.ordinal,
                                  'start', lower(h.during), 'end', upper(h.during)) order by h.id))
      from incident_hit h
      join reservation res on res.id = h.reservation_id
      join capacity_unit fu on fu.id = h.unit_id
      join capacity_unit tu on tu.id = h.to_unit_id
      join site s on s.id = res.site_id
      cross join lateral (select res.customer_id as org
                          union select s.operator_id where s.operator_id <> res.customer_id) o
     where h.incident_id = inc and h.xact = pg_current_xact_id() and h.outcome = 'moved'
     group by o.org, res.id;

    moved_unit_hours := moved_h;
    lost_unit_hours := lost_h;
    credited_cents := credited;
    offers := offered;
    return next;
end
$$;

-- Ends an open incident at `at` (its resolution): its units return to sale from the next
-- whole hour (hours before stay out of sale, as they were).
create function incident_resolve(inc bigint, at timestamptz) returns boolean
language plpgsql as $$
declare
    i incident;
    new_upper timestamptz;
begin
    select * into i from incident where id = inc for update;
    if i.state = 'resolved' then
        return false;
    end if;
    new_upper := least(upper(i.during), greatest(lower(i.during) + interval '1 hour', ceil_hour(at)));
    delete from allocation where incident_id = inc and lower(during) >= new_upper;
    update allocation set during = tstzrange(lower(during), new_upper), updated_at = now()
     where incident_id = inc and upper(during) > new_upper;
    update incident set state = 'resolved', resolved_at = at, during = tstzrange(lower(during), new_upper)
     where id = inc;
    return true;
end
$$;

-- `incident.opened` and `incident.resolved`, to the site's operator.
create function incident_outbox() returns trigger
language plpgsql as $$
declare
    operator bigint;
begin
    if tg_op = 'UPDATE' and new.state is not distinct from old.state then
        return null;
    end if;
    select s.operator_id into operator from site s where s.id = new.site_id;
    insert into event_outbox (organization_id, kind, payload)
    values (operator, case when tg_op = 'INSERT' then 'incident.opened' else 'incident.resolved' end,
            jsonb_build_object('incident_id', new.id, 'pool_id', new.pool_id, 'site_id', new.site_id,
                               'cause', new.cause, 'started_at', new.started_at, 'ends_at', new.ends_at,
                               'state', new.state, 'resolved_at', new.resolved_at,
                               'units', (select jsonb_agg(cu.ordinal order by cu.ordinal)
                                           from incident_unit iu join capacity_unit cu on cu.id = iu.unit_id
                                          where iu.incident_id = new.id)));
    return null;
end
$$;

-- Deferred, so the units (inserted after the incident) are in the payload.
create constraint trigger incident_outbox after insert or update on incident
    deferrable initially deferred
    for each row execute function incident_outbox();

-- Accepts offer `offer` for `customer`: books its capacity for the hours still ahead (from
-- the next whole hour) at the offer's price pro rata, as a confirmed firm reservation
-- charged like any other. Accepting twice returns the same reservation.
create function incident_offer_accept(offer bigint, customer bigint, actor_user bigint, actor_key bigint)
returns bigint
language plpgsql as $$
declare
    o incident_offer;
    orig reservation;
    p capacity_pool;
    w tstzrange;
    total bigint;
    fee bigint;
    res bigint;
    taken integer;
begin
    select * into o from incident_offer where id = offer and customer_id = customer for update;
    if not found then
        raise exception 'no offer %', offer using errcode = 'no_data_found', constraint = 'incident_offer_missing';
    end if;
    if o.state = 'accepted' then
        return o.accepted_reservation_id;
    end if;
    w := tstzrange(greatest(lower(o.during), ceil_hour(statement_timestamp())), upper(o.during));
    if o.state <> 'open' or o.expires_at <= statement_timestamp() or isempty(w) then
        raise exception 'offer % is closed', offer using errcode = 'check_violation', constraint = 'incident_offer_closed';
    end if;
    select * into orig from reservation where id = o.reservation_id;
    select * into p from capacity_pool where id = o.pool_id;
    total := floor(o.total_cents::numeric * range_hours(w) / range_hours(o.during))::bigint;
    fee := floor(total::numeric * coalesce(orig.fee_bp, 0) / (10000 + coalesce(orig.fee_bp, 0)))::bigint;
    insert into reservation (site_id, pool_id, customer_id, unit_count, during, state, currency,
                             unit_price_cents, base_cents, discount_cents, fee_cents, total_cents, fee_bp, tier)
    values (p.site_id, p.id, customer, o.unit_count, w, 'confirmed', o.currency,
            orig.unit_price_cents, total - fee, 0, fee, total, orig.fee_bp, 'firm')
    returning id into res;
    insert into allocation (site_id, pool_id, unit_id, reservation_id, during)
    select f.site_id, f.pool_id, f.unit_id, res, w from choose_free_units(p.id, w, o.unit_count, true) f;
    get diagnostics taken = row_count;
    if taken < o.unit_count then
        raise exception 'offer % capacity is taken', offer using errcode = 'check_violation', constraint = 'incident_offer_taken';
    end if;
    update incident_offer set state = 'accepted', accepted_reservation_id = res, closed_at = statement_timestamp()
     where id = offer;
    insert into audit_event (organization_id, actor_user_id, actor_key_id, actor_label, action,
                             object_type, object_id, detail)
    values (customer, actor_user, actor_key, audit_actor_label(actor_user, actor_key), 'incident_offer.accepted',
            'incident_offer', offer, jsonb_build_object('reservation_id', res, 'total_cents', total));
    return res;
end
$$;

-- The delivered share of each pool's sold unit-hours over the last 90 days, kept by a job
-- (search reads it, so it is not recomputed per search). Sold: confirmed reservations'
-- unit-hours in the window; lost: those cut for an incident (healed hours were delivered).
create table pool_reliability (
    pool_id         bigint primary key references capacity_pool (id),
    sold_unit_hours bigint not null check (sold_unit_hours >= 0),
    lost_unit_hours bigint not null check (lost_unit_hours >= 0),
    computed_at     timestamptz not null
);

create function refresh_pool_reliability(only_pool bigint default null) returns integer
language plpgsql as $$
declare
    w tstzrange := tstzrange(date_trunc('hour', now(), 'UTC') - interval '90 days', date_trunc('hour', now(), 'UTC'));
    n integer;
begin
    insert into pool_reliability (pool_id, sold_unit_hours, lost_unit_hours, computed_at)
    select p.id, coalesce(s.sold, 0), coalesce(l.lost, 0), now()
      from capacity_pool p
      left join lateral (select sum(r.unit_count * range_hours(r.during * w))::bigint as sold
                           from reservation r
                          where r.pool_id = p.id and r.state = 'confirmed' and r.during && w) s on true
      left join lateral (select sum(range_hours(c.during * w))::bigint as lost
                           from allocation_cut c join reservation r on r.id = c.reservation_id
                          where r.pool_id = p.id and c.reason = 'incident' and c.during && w) l on true
     where only_pool is null or p.id = only_pool
    on conflict (pool_id) do update
       set sold_unit_hours = excluded.sold_unit_hours, lost_unit_hours = excluded.lost_unit_hours,
           computed_at = excluded.computed_at;
    get diagnostics n = row_count;
    return n;
end
$$;

alter table webhook_endpoint drop constraint webhook_endpoint_events_check;
alter table webhook_endpoint add constraint webhook_endpoint_events_check check (
    cardinality(events) >= 1
    and events <@ array['reservation.created', 'reservation.cancelled', 'reservation.started',
                        'reservation.completed', 'reservation.preempted', 'blackout.created',
                        'capacity.changed', 'grid_event.created', 'order.filled',
                        'order.expired', 'incident.opened', 'incident.resolved',
                        'reservation.moved', 'reservation.credited']::text[]
);

alter table audit_event drop constraint audit_event_object_type_check;
alter table audit_event add constraint audit_event_object_type_check check (
    object_type in ('reservation', 'pool', 'site', 'blackout', 'api_key', 'organization', 'user',
                    'webhook', 'grid_event', 'standing_order', 'resale_listing', 'incident',
                    'incident_offer')
);
