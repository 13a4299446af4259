-- A preempted reservation's coverage is checked once at commit, and cheaply.
--
-- A preemption cuts an interruptible reservation's unit (allocation removed, allocation_cut
-- added) and credits it (reservation.credited_cents updated). Each of the three writes
-- queued a deferred coverage check of the same reservation: the allocation's was already
-- skipped for a reservation written in the transaction (its own deferred check runs at
-- commit), but the cut's and the update's both ran, and both took the slow path, which
-- walks every point where a piece starts or ends, because the fast path only knew a
-- reservation with nothing cut. In the settlement benchmark's preemption run (2026-12-05,
-- pg_stat_statements) those checks were 0.17 ms and 2 × 0.12 ms of about 2.8 ms of database
-- time per preempting booking.

-- The cut's check follows the allocation's rule: a reservation written (inserted or
-- updated) in this transaction is checked by its own deferred trigger at commit.
create or replace function allocation_cut_check() returns trigger
language plpgsql as $$
declare
    res bigint := coalesce(new.reservation_id, old.reservation_id);
begin
    if not reservation_written_here(res) then
        perform reservation_check_coverage(res);
    end if;
    return null;
end
$$;

-- The fast path now counts cut pieces with held ones: when every piece, held or cut,
-- spans the whole term and there are as many as the reservation has units, held plus cut
-- is the unit count at every hour, which is what the walk over the points would find.
-- Anything else (a piece shorter than the term, a piece outside it) takes the walk as
-- before.
create or replace function reservation_check_coverage(res bigint) returns void
language plpgsql
set plan_cache_mode = force_generic_plan
as $$
declare
    r reservation;
    whole bigint;
    pieces bigint;
    outside bigint;
    short timestamptz;
    held bigint;
begin
    select * into r from reservation where id = res;
    if not found then
        return;
    end if;
    -- A cancelled reservation (a released hold among them) keeps no unit.
    if r.state = 'cancelled' then
        if exists (select 1 from allocation a where a.reservation_id = res) then
            raise exception 'reservation % is cancelled but still holds units', res
                using errcode = 'check_violation', constraint = 'reservation_released';
        end if;
        return;
    end if;
    -- The common cases: every unit held (or cut, by a preemption from the term's start) over
    -- the whole term.
    select count(*) filter (where p.during = r.during), count(*),
           count(*) filter (where p.held and not r.during @> p.during)
      into whole, pieces, outside
      from (select a.during, true as held from allocation a where a.reservation_id = res
            union all
            select c.during, false from allocation_cut c where c.reservation_id = res) p;
    if whole = r.unit_count and pieces = r.unit_count then
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
