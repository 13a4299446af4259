-- A pool's allocations over a window, found through two indexes split by length.
--
-- The GiST index on (pool_id, during) keeps, on each page, the bounding period of what the
-- page holds. A long allocation (a firm contract of months) widens the bound of the page
-- it lands on to its whole length, and as pages split, the long allocations spread over
-- many of them: every window of the pool then has to open every such page and test each
-- of its entries. In the settlement benchmark's preemption pool (32 allocations of 4,000
-- hours among 32,000 of 4 hours, after a 20-second run) one 4-hour window's 64 allocations
-- took 14 index pages to find; the same index built without the 32 long ones, 3. Perf
-- put 21 % of the database's CPU in those GiST scans (the pool read's busy count and the
-- preemption choice, one scan each per booking).
--
-- Allocations up to a week long and longer ones now have an index each, so short periods
-- are bounded by short periods; a read of a pool's window asks both (a BitmapOr of two
-- small scans). On a copy of that database, 1,000 windows took 80 to 113 ms of busy counts
-- against 247 to 302 ms, and 265 to 338 ms of preemption choices against 539 to 563 ms.
--
-- Every read of a pool's allocations over a window now goes through pool_allocations
-- (below: the busy count, the preemption choice, the sold-out summary, the incident's
-- offer of another pool; in the server: search, utilization, blackouts), and the full
-- index is dropped: kept, the planner could still prefer it (it did on a small table), and
-- every allocation written would update three GiST indexes instead of two.

-- Whether an allocation period counts as long for the split above; allocations are whole
-- hours with both bounds finite (is_hour_range), so this is never null.
create function allocation_is_long(during tstzrange) returns boolean
language sql immutable
return upper(during) - lower(during) > interval '7 days';

create index allocation_pool_short_idx on allocation using gist (pool_id, during)
    where not allocation_is_long(during);
create index allocation_pool_long_idx on allocation using gist (pool_id, during)
    where allocation_is_long(during);

-- The allocations of `pool` overlapping `span`. Inlined into the caller's query; the two
-- arms of the length test are what let the planner use each partial index (it proves an
-- index's predicate from the arm), so together they select every allocation.
create function pool_allocations(pool bigint, span tstzrange) returns setof allocation
language sql stable as $$
    select a.*
      from allocation a
     where a.pool_id = pool and a.during && span
       and (not allocation_is_long(a.during) or allocation_is_long(a.during))
$$;

-- As in 20261218000300, reading the pool's allocations through pool_allocations.
create or replace function preemption_candidates(pool bigint, span tstzrange, cut_from timestamptz)
returns table (unit_id bigint, price bigint, latest timestamptz)
language sql stable as $$
    select a.unit_id, max(r.unit_price_cents), max(r.created_at)
      from pool_allocations(pool, span) a
      left join lateral (select h.unit_price_cents, h.created_at, h.tier
                           from reservation h where h.id = a.reservation_id
                         offset 0) r on true
     group by a.unit_id
    having bool_and(r.tier is not distinct from 'interruptible'
                    and greatest(lower(a.during), lower(span)) >= cut_from)
     order by 2, 3 desc, a.unit_id
$$;

-- As in 20261216000100, reading the pool's allocations through pool_allocations.
create or replace function pool_busy_units(pool bigint, span tstzrange) returns bigint
language plpgsql stable
set plan_cache_mode = force_generic_plan
as $$
begin
    return (select count(distinct a.unit_id) from pool_allocations(pool, span) a);
end
$$;

-- As in 20261208000100, reading the pool's allocations through pool_allocations.
create or replace function pool_full_periods(pool bigint, units integer, touched tstzrange) returns tstzmultirange
language sql stable as $$
    with edge as (
        select greatest(lower(a.during), lower(touched)) as at, 1 as step
          from pool_allocations(pool, touched) a
        union all
        select least(upper(a.during), upper(touched)), -1
          from pool_allocations(pool, touched) a
    ), busy as (
        select at, sum(sum(step)) over (order by at) as units_busy, lead(at) over (order by at) as next_at
          from edge group by at
    )
    select coalesce(range_agg(tstzrange(at, next_at)), '{}'::tstzmultirange)
      from busy where units_busy >= units and next_at > at
$$;

-- As in 20261204000200, except that the offer's pool is checked for free units by
-- pool_busy_units, the rule the booking path counts with, instead of a copy of its query.
create or replace function incident_heal(inc bigint, span tstzrange, heal_from timestamptz)
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
        -- Under the reservation's lock, the piece as the loop read it may be gone: a
        -- cancellation, a preemption or an extension committed meanwhile. Then there is
        -- nothing of it to heal here, and a changed piece is read again below.
        continue when r.state = 'cancelled'
                   or not exists (select 1 from allocation a
                                   where a.reservation_id = r.id and a.unit_id = piece.unit_id
                                     and a.during = piece.during);
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
           and p2.unit_count - pool_busy_units(p2.id, w) >= lost.units
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

drop index allocation_pool_during_idx;
