-- Two tiers on every pool: firm (the contracts sold so far) and interruptible, cheaper,
-- which a firm booking may preempt after the pool's notice period, with a credit for every
-- hour lost. What a firm reservation was sold it keeps: PostgreSQL refuses to take its hours
-- for anything but an incident (or the customer's own resale), whatever code path writes.

-- The interruptible offer: its price (per GPU-hour or per kW-month, as the pool's firm
-- price, and lower) and how many whole hours' notice a preemption gives. No price: the
-- pool sells firm capacity only.
alter table capacity_pool
    add column interruptible_price_cents bigint,
    add column interruptible_notice_hours integer not null default 0
        check (interruptible_notice_hours between 0 and 720),
    add constraint capacity_pool_interruptible_price_check
        check (interruptible_price_cents is null
               or (interruptible_price_cents > 0 and interruptible_price_cents < price_cents));

alter table reservation
    add column tier text not null default 'firm' check (tier in ('firm', 'interruptible'));

-- A firm reservation loses hours only to an incident on its units (the operator's handling)
-- or to its own customer's resale; preemption and curtailment take interruptible hours only.
create function allocation_cut_keeps_firm_whole() returns trigger
language plpgsql as $$
begin
    if new.reason not in ('incident', 'resold')
       and exists (select 1 from reservation r where r.id = new.reservation_id and r.tier = 'firm') then
        raise exception 'reservation % is firm; its hours cannot be taken for %', new.reservation_id, new.reason
            using errcode = 'check_violation', constraint = 'firm_reservation_keeps_its_hours';
    end if;
    return new;
end
$$;

create trigger allocation_cut_keeps_firm_whole before insert on allocation_cut
    for each row execute function allocation_cut_keeps_firm_whole();

-- The units of `pool` a firm booking of `span` could take from interruptible reservations:
-- every allocation on the unit that overlaps the span is an interruptible reservation's,
-- and none would be cut before `cut_from` (the end of the notice period). By the rule of
-- preemption: the lowest price paid first, then the latest booked. `price` is the highest
-- unit price among the unit's interruptible holders (all of them lose it), `latest` the
-- latest of their bookings.
create function preemption_candidates(pool bigint, span tstzrange, cut_from timestamptz)
returns table (unit_id bigint, price bigint, latest timestamptz)
language sql stable as $$
    select u.id, max(r.unit_price_cents), max(r.created_at)
      from capacity_unit u
      join allocation a on a.unit_id = u.id and a.during && span
      left join reservation r on r.id = a.reservation_id
     where u.pool_id = pool
     group by u.id
    having bool_and(r.tier is not distinct from 'interruptible'
                    and greatest(lower(a.during), lower(span)) >= cut_from)
     order by 2, 3 desc, u.id
$$;

-- Frees up to `wanted` units of `pool` over `span` for a firm booking by preempting
-- interruptible reservations (preemption_candidates' order), inside the caller's
-- transaction: each holder's allocation on the unit ends at the preemption hour (the later
-- of the span's start and the allocation's), the lost unit-hours are credited at the price
-- it paid, and `reservation.preempted` goes to its customer and the operator. Each unit is
-- locked and checked again before it is taken, so two firm bookings racing for the same
-- units take different ones or find too few; never half of one. Returns how many units it
-- freed.
create function preempt_interruptible(pool bigint, span tstzrange, wanted bigint, cut_from timestamptz)
returns integer
language plpgsql as $$
declare
    candidate record;
    held record;
    piece tstzrange;
    hours bigint;
    freed integer := 0;
    still_candidate boolean;
begin
    if wanted <= 0 then
        return 0;
    end if;
    for candidate in select * from preemption_candidates(pool, span, cut_from) loop
        perform 1 from capacity_unit where id = candidate.unit_id for no key update;
        -- Checked again under the lock: a booking that committed meanwhile may hold it now.
        select exists (select 1 from preemption_candidates(pool, span, cut_from) c
                        where c.unit_id = candidate.unit_id)
          into still_candidate;
        continue when not still_candidate;
        for held in
            select a.reservation_id, a.during
              from allocation a
             where a.unit_id = candidate.unit_id and a.during && span
             order by a.reservation_id
        loop
            -- Lock order as a cancellation takes it: the reservation, then its allocations.
            perform 1 from reservation where id = held.reservation_id for update;
            piece := tstzrange(greatest(lower(held.during), lower(span)), upper(held.during));
            hours := (extract(epoch from upper(piece) - lower(piece)) / 3600)::bigint;
            perform reservation_cut(held.reservation_id, candidate.unit_id, piece, 'preempted');
            perform reservation_credit_hours(held.reservation_id, hours, 'preempted',
                                             format('preempted from %s by a firm booking',
                                                    to_char(lower(piece) at time zone 'UTC',
                                                            'YYYY-MM-DD HH24:MI "UTC"')),
                                             now());
            perform emit_reservation_preempted(held.reservation_id, candidate.unit_id, piece, hours);
        end loop;
        freed := freed + 1;
        exit when freed >= wanted;
    end loop;
    return freed;
end
$$;

-- `reservation.preempted`, to the interrupted customer and the site's operator: which
-- reservation, from when, how many unit-hours were lost and the credit so far.
create function emit_reservation_preempted(res bigint, unit bigint, piece tstzrange, hours bigint)
returns void
language plpgsql as $$
declare
    r reservation;
    operator bigint;
    body jsonb;
begin
    select * into r from reservation where id = res;
    select s.operator_id into operator from site s where s.id = r.site_id;
    body := jsonb_build_object(
        'reservation_id', r.id, 'pool_id', r.pool_id, 'site_id', r.site_id,
        'customer_id', r.customer_id, 'tier', r.tier,
        'unit', (select ordinal from capacity_unit where id = unit),
        'preempted_from', lower(piece), 'until', upper(piece), 'unit_hours', hours,
        'credited_cents', r.credited_cents, 'currency', r.currency);
    insert into event_outbox (organization_id, kind, payload) values (r.customer_id, 'reservation.preempted', body);
    if operator is distinct from r.customer_id then
        insert into event_outbox (organization_id, kind, payload) values (operator, 'reservation.preempted', body);
    end if;
end
$$;
