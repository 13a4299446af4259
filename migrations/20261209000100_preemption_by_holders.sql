-- Firm bookings that preempt no longer queue behind one unit's lock over all time.
--
-- preempt_interruptible (of 20261204000200) locked each candidate unit's row before taking
-- it, and the firm booking then allocated the freed unit through choose_free_units, which
-- locks it again. A unit's row lock stands for the unit over all time, while the rule's
-- first choice (lowest price paid, then the latest booked) is often the same unit for many
-- different hours: units are sold lowest-numbered first, so the latest bookings sit on the
-- highest-numbered units in use. Every firm booking that preempted then waited for the same
-- row, whatever its hours: the benchmark measured 313 of the function's 320 ms in that one
-- wait.
--
-- When the interruptible holders' allocations cover every hour of the firm booking's span,
-- the unit's lock is not what keeps two writers apart: no booking can see the unit free over
-- any of those hours until the holders are cut, and cutting needs each holder's row lock
-- (taken in reservation order, as a cancellation takes it). So preempt_into locks the
-- holders, checks under those locks that the unit is still preemptable and still covered,
-- cuts them and allocates the unit to the firm booking, without the unit's lock. Two firm
-- bookings of different hours on one unit hold different holders (or queue on a shared one,
-- and the later finds its piece gone). Where the holders leave a gap in the span, a free-unit
-- chooser could take the gap, so there the unit's lock is taken first, as before.
--
-- preempt_interruptible keeps its behaviour (the incident's healing frees a unit with it and
-- then moves a reservation onto it); its cut, credit and event are now one function both
-- use, preempt_unit.

-- Takes `unit` from its interruptible holders over `span` from `cut_from` on, for a firm
-- booking, if it is still preemptable: each holder's allocation ends at the preemption hour,
-- its lost unit-hours are credited at the price it paid and `reservation.preempted` is sent.
-- The caller holds the unit's lock or its holders' (see preempt_into). Whether it did.
create function preempt_unit(unit bigint, span tstzrange, cut_from timestamptz)
returns boolean
language plpgsql as $$
declare
    held record;
    piece tstzrange;
    hours bigint;
begin
    -- Checked again under the lock: a booking that committed meanwhile may hold it now.
    if not unit_preemptable(unit, span, cut_from) then
        return false;
    end if;
    for held in
        select a.reservation_id, a.during
          from allocation a
         where a.unit_id = unit and a.during && span
         order by a.reservation_id
    loop
        -- Lock order as a cancellation takes it: the reservation, then its allocations.
        perform 1 from reservation where id = held.reservation_id for update;
        -- The piece as the loop read it may be gone under that lock (the reservation was
        -- cancelled, or an incident moved it); a piece that changed instead is taken by
        -- the exclusion constraint's retry.
        continue when not exists (select 1 from allocation a
                                   where a.reservation_id = held.reservation_id
                                     and a.unit_id = unit and a.during = held.during);
        piece := tstzrange(greatest(lower(held.during), lower(span)), upper(held.during));
        hours := (extract(epoch from upper(piece) - lower(piece)) / 3600)::bigint;
        perform reservation_cut(held.reservation_id, unit, piece, 'preempted');
        perform reservation_credit_hours(held.reservation_id, hours, 'preempted',
                                         format('preempted from %s by a firm booking',
                                                to_char(lower(piece) at time zone 'UTC',
                                                        'YYYY-MM-DD HH24:MI "UTC"')),
                                         now());
        perform emit_reservation_preempted(held.reservation_id, unit, piece, hours);
    end loop;
    return true;
end
$$;

create or replace function preempt_interruptible(pool bigint, span tstzrange, wanted bigint, cut_from timestamptz)
returns integer
language plpgsql as $$
declare
    candidate record;
    freed integer := 0;
begin
    if wanted <= 0 then
        return 0;
    end if;
    for candidate in select * from preemption_candidates(pool, span, cut_from) loop
        perform 1 from capacity_unit where id = candidate.unit_id for no key update;
        continue when not preempt_unit(candidate.unit_id, span, cut_from);
        freed := freed + 1;
        exit when freed >= wanted;
    end loop;
    return freed;
end
$$;

-- Whether the allocations on `unit` cover every hour of `span`.
create function unit_covered(unit bigint, span tstzrange)
returns boolean
language sql stable as $$
    select coalesce(range_agg(a.during), '{}'::tstzmultirange) @> span
      from allocation a
     where a.unit_id = unit and a.during && span
$$;

-- Frees up to `wanted` units of `pool` over `span` from interruptible reservations, in the
-- rule's order (preemption_candidates), and allocates each to the firm reservation `res`,
-- inside the caller's transaction. Returns how many units it allocated; fewer than `wanted`
-- when too few could be taken, and the caller then rolls back.
create function preempt_into(pool bigint, span tstzrange, wanted bigint, cut_from timestamptz, res bigint)
returns integer
language plpgsql as $$
declare
    candidate record;
    covered boolean;
    taken integer := 0;
begin
    if wanted <= 0 then
        return 0;
    end if;
    for candidate in select * from preemption_candidates(pool, span, cut_from) loop
        covered := unit_covered(candidate.unit_id, span);
        if not covered then
            perform 1 from capacity_unit where id = candidate.unit_id for no key update;
        end if;
        -- Every holder locked before any is cut, in the order a cancellation takes them.
        perform 1 from reservation r
          where r.id in (select a.reservation_id from allocation a
                          where a.unit_id = candidate.unit_id and a.during && span)
          order by r.id
            for update;
        -- A unit that was covered must still be: a holder cancelled meanwhile leaves a gap
        -- that a free-unit chooser may be taking now, outside the locks held here.
        continue when covered and not unit_covered(candidate.unit_id, span);
        continue when not preempt_unit(candidate.unit_id, span, cut_from);
        insert into allocation (site_id, pool_id, unit_id, reservation_id, during)
        select u.site_id, u.pool_id, u.id, res, span from capacity_unit u where u.id = candidate.unit_id;
        taken := taken + 1;
        exit when taken >= wanted;
    end loop;
    return taken;
end
$$;
