-- The units a firm booking could preempt are found with a plan that no longer depends on
-- how many reservations the database holds.
--
-- preemption_candidates joined every allocation overlapping the span to its reservation and
-- grouped by unit. Planned once for any span (preempt_into keeps one plan), the planner had
-- to guess how many allocations overlap an unknown span, guessed a hundredth of the table,
-- and on a database of 32,000 reservations chose to read the whole reservation table into
-- a hash for every call: 9 to 12 ms per call under EXPLAIN ANALYZE, 8.2 ms of the 10.3 ms
-- preempt_into took per call in pg_stat_statements (one client replaying the settlement
-- benchmark's preempting booking, 2026-12-05). On a database twice that size the same
-- query plans index lookups again (1.1 ms), so the cost came and went with the table's size.
--
-- The reservation of each allocation is now read behind an optimisation fence (OFFSET 0),
-- which PostgreSQL does not merge into the join, so it is always one lookup by the primary
-- key per allocation: 0.3 to 1.0 ms on the smaller database, 1.1 ms on the larger, where the
-- old plan was already this one. (Asking unit by unit instead, one probe of the exclusion
-- constraint's index per unit, was tried: 1.1 to 1.6 ms on the larger database, and 0.2 ms
-- more database time per preempting booking than this.)
--
-- The rule is unchanged: a unit is a candidate when it has an allocation in the span and
-- every such allocation is an interruptible reservation's that would not be cut before
-- `cut_from`; lowest price paid first, then the latest booked, then the unit's id.

create or replace function preemption_candidates(pool bigint, span tstzrange, cut_from timestamptz)
returns table (unit_id bigint, price bigint, latest timestamptz)
language sql stable as $$
    select u.id, max(r.unit_price_cents), max(r.created_at)
      from capacity_unit u
      join allocation a on a.unit_id = u.id and a.during && span
      left join lateral (select h.unit_price_cents, h.created_at, h.tier
                           from reservation h where h.id = a.reservation_id
                         offset 0) r on true
     where u.pool_id = pool
     group by u.id
    having bool_and(r.tier is not distinct from 'interruptible'
                    and greatest(lower(a.during), lower(span)) >= cut_from)
     order by 2, 3 desc, u.id
$$;

-- How many of `pool`'s units are busy at some hour of `span` (allocated to a reservation, a
-- blackout or an incident): the units a booking of the whole span cannot take as free. A
-- quote shows the pool's size minus this; a firm booking on a pool that sells
-- interruptible hours reads it with the pool and, when too few units are left free, goes
-- straight to the path that preempts instead of first trying the one-statement booking,
-- which never preempts (that attempt took 0.44 ms of database CPU, of about 5.3 ms for the
-- whole preempting booking; the count adds 0.11 ms to the pool read).
create function pool_busy_units(pool bigint, span tstzrange) returns bigint
language plpgsql stable
set plan_cache_mode = force_generic_plan
as $$
begin
    return (select count(distinct a.unit_id) from allocation a
             where a.pool_id = pool and a.during && span);
end
$$;
