-- The free-unit chooser finds a unit's next allocation through a btree index instead of
-- searching the exclusion constraint's GiST index.
--
-- choose_free_units walks a pool's units in order and keeps those with no allocation over
-- the span. It asked that of the GiST index behind allocation_unit_overlap, whose pages
-- cover overlapping boxes of (unit, time): one probe visits several of them. Timed on the
-- settlement benchmark's database (BENCHMARKS.md, 2026-12-04), 1,000 spans each:
--
-- * a full pool of 64 units (every unit busy, as when a firm booking must preempt): the
--   GiST walk over all 64 units took 0.78 ms, the btree walk 0.24 ms;
-- * a pool of 2,000 units with a few busy ones in each window: 24 µs and 12 µs per choice.
--
-- The rule is unchanged. Allocations of one unit never overlap (allocation_unit_overlap is
-- checked at every insert, so this transaction's own rows obey it too), so they follow one
-- another in time. Of those that end after the span starts, the one that ends first is the
-- only one that can reach into the span: every later one starts after it ends. The unit is
-- free over the span exactly when there is no such allocation or it starts at or after the
-- span's end. One descent of a btree on (unit_id, upper(during)) finds it. Ranges here are
-- whole hours, lower bound included and upper excluded (is_hour_range), so an allocation
-- that ends where the span starts does not overlap it, as with `&&`.

create index allocation_unit_end_idx on allocation (unit_id, upper(during));

create or replace function choose_free_units(pool bigint, span tstzrange, wanted bigint, wait_for_locked boolean)
returns table (unit_id bigint, site_id bigint, pool_id bigint)
language plpgsql
set plan_cache_mode = force_generic_plan
as $$
declare
    unheld bigint[];
begin
    -- Each pass keeps a unit whose next allocation after the span's start (if any) starts
    -- at or after the span's end: free over the span (see the migration's note).
    if not wait_for_locked then
        -- The one-statement booking's pass, one query.
        return query
            select u.id, u.site_id, u.pool_id from capacity_unit u
             where u.pool_id = choose_free_units.pool
               and coalesce((select lower(a.during) from allocation a
                              where a.unit_id = u.id and upper(a.during) > lower(span)
                              order by upper(a.during) limit 1) >= upper(span), true)
             order by u.ordinal
             limit wanted
               for no key update of u skip locked;
        return;
    end if;
    select coalesce(array_agg(f.id), '{}') into unheld
      from (select u.id from capacity_unit u
             where u.pool_id = choose_free_units.pool
               and coalesce((select lower(a.during) from allocation a
                              where a.unit_id = u.id and upper(a.during) > lower(span)
                              order by upper(a.during) limit 1) >= upper(span), true)
             order by u.ordinal
             limit wanted
               for no key update of u skip locked) f;
    return query
        select u.id, u.site_id, u.pool_id from capacity_unit u
         where u.id = any(unheld)
         order by u.ordinal;
    if cardinality(unheld) < wanted then
        return query
            select u.id, u.site_id, u.pool_id from capacity_unit u
             where u.pool_id = choose_free_units.pool
               and u.id <> all(unheld)
               and coalesce((select lower(a.during) from allocation a
                              where a.unit_id = u.id and upper(a.during) > lower(span)
                              order by upper(a.during) limit 1) >= upper(span), true)
             order by u.ordinal
             limit wanted - cardinality(unheld)
               for no key update of u;
    end if;
end
$$;
