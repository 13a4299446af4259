-- A pool's busy units over a window are counted by one rule.
--
-- Search counted them with a copy of pool_busy_units' query (20261222000100): a plpgsql
-- function is not inlined, so calling it for each candidate pool would have added a
-- function call per pool to a query with a p95 target. The count is now pool_busy, an SQL
-- function that the planner inlines into search's query as the subquery it had; and
-- pool_busy_units, which gives the pool read of the booking path and incident_heal a plan
-- cached per session, returns it.

create function pool_busy(pool bigint, span tstzrange) returns table (units bigint)
language sql stable as $$
    select count(distinct a.unit_id) from pool_allocations(pool, span) a
$$;

-- As in 20261222000100, the count read from pool_busy.
create or replace function pool_busy_units(pool bigint, span tstzrange) returns bigint
language plpgsql stable
set plan_cache_mode = force_generic_plan
as $$
begin
    return (select b.units from pool_busy(pool, span) b);
end
$$;
