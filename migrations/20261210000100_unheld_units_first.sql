-- A chooser that waits for locked units first takes the free units nobody holds.
--
-- choose_free_units(..., wait_for_locked => true) waited, in unit order, for every free
-- unit another transaction had locked, even when an unheld free unit further up would do.
-- Two choosers that each hold units and wait for the other's can deadlock, and the load and
-- fault harness at 48 workers found one such pair:
--
--   a booking took unit A with `skip locked` and then waited, in its waiting pass, for unit
--   B, which its snapshot saw free;
--   an incident's healing held B (a unit of the incident, locked to fill it) and waited for
--   a spare, in unit order, on A.
--
-- The healing (incident_heal), a moved reservation's new unit and an accepted incident offer
-- all called the waiting form directly. Now the waiting form itself first takes the unheld
-- free units, lowest numbers first, and waits only for what is still missing. A chooser
-- that finds an unheld spare no longer waits at all, so the pair above can only meet when
-- every free unit of the span is held by someone; PostgreSQL still breaks such a cycle
-- after deadlock_timeout and the caller retries, as before.
--
-- It also lets a booking's exact path ask once instead of twice (the unheld pass and then
-- the waiting pass were two statements). The rule's order is unchanged when nobody else
-- holds a unit: the lowest-numbered free units. With units held elsewhere, a waiting
-- chooser takes higher-numbered unheld units before it waits, as the one-statement booking
-- always did.
create or replace function choose_free_units(pool bigint, span tstzrange, wanted bigint, wait_for_locked boolean)
returns table (unit_id bigint, site_id bigint, pool_id bigint)
language plpgsql as $$
declare
    unheld bigint[];
begin
    if not wait_for_locked then
        -- Unchanged: the one-statement booking's pass, one query.
        return query
            select u.id, u.site_id, u.pool_id from capacity_unit u
             where u.pool_id = choose_free_units.pool
               and not exists (select 1 from allocation a where a.unit_id = u.id and a.during && span)
             order by u.ordinal
             limit wanted
               for no key update of u skip locked;
        return;
    end if;
    select coalesce(array_agg(f.id), '{}') into unheld
      from (select u.id from capacity_unit u
             where u.pool_id = choose_free_units.pool
               and not exists (select 1 from allocation a where a.unit_id = u.id and a.during && span)
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
               and not exists (select 1 from allocation a where a.unit_id = u.id and a.during && span)
             order by u.ordinal
             limit wanted - cardinality(unheld)
               for no key update of u;
    end if;
end
$$;
