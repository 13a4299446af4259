-- Two refinements of the preemption of 20261202000800:
--
-- 1. The recheck of a candidate under its lock asks about that one unit, not the whole
--    pool: `unit_preemptable` is the per-unit form of preemption_candidates' condition.
--    Before, every locked candidate recomputed the candidate list of the whole pool.
-- 2. `reservation.preempted` says what took the hours, `cause: "firm_booking"`, as the grid
--    event's does with `cause: "grid_event"`.

-- Whether a firm booking over `span` may take `unit` from `cut_from` on: the unit is held
-- over the span, only by interruptible reservations, none of them cut before `cut_from`.
create function unit_preemptable(unit bigint, span tstzrange, cut_from timestamptz)
returns boolean
language sql stable as $$
    select coalesce(bool_and(r.tier is not distinct from 'interruptible'
                             and greatest(lower(a.during), lower(span)) >= cut_from), false)
      from allocation a
      left join reservation r on r.id = a.reservation_id
     where a.unit_id = unit and a.during && span
$$;

create or replace function preempt_interruptible(pool bigint, span tstzrange, wanted bigint, cut_from timestamptz)
returns integer
language plpgsql as $$
declare
    candidate record;
    held record;
    piece tstzrange;
    hours bigint;
    freed integer := 0;
begin
    if wanted <= 0 then
        return 0;
    end if;
    for candidate in select * from preemption_candidates(pool, span, cut_from) loop
        perform 1 from capacity_unit where id = candidate.unit_id for no key update;
        -- Checked again under the lock: a booking that committed meanwhile may hold it now.
        continue when not unit_preemptable(candidate.unit_id, span, cut_from);
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

create or replace function emit_reservation_preempted(res bigint, unit bigint, piece tstzrange, hours bigint)
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
        'customer_id', r.customer_id, 'tier', r.tier, 'cause', 'firm_booking',
        'unit', (select ordinal from capacity_unit where id = unit),
        'preempted_from', lower(piece), 'until', upper(piece), 'unit_hours', hours,
        'credited_cents', r.credited_cents, 'currency', r.currency);
    insert into event_outbox (organization_id, kind, payload) values (r.customer_id, 'reservation.preempted', body);
    if operator is distinct from r.customer_id then
        insert into event_outbox (organization_id, kind, payload) values (operator, 'reservation.preempted', body);
    end if;
end
$$;
