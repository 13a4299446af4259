-- Where each pool is sold out, kept by the database, so a search passes over a pool that is
-- full somewhere in the asked window without counting its allocations one by one (a window
-- in which a whole model is sold out had the search test every pool of the model).
--
-- A unit holds at most one allocation at a time (allocation_unit_overlap), so the number of
-- allocations covering an instant is the number of busy units then; where it reaches the
-- pool's size, no unit is free, and no booking needing its units for a window overlapping
-- that instant can be placed. That is the only thing the summary is used to say.
--
-- Bookings do not update the summary (they would all queue on their pool's summary row);
-- they append what they changed to pool_occupancy_change, and a job folds the changes in.
-- Until it has, a freed allocation's change row stops the summary from being believed over
-- its range, so a stale summary can make a search slower, never wrong.

create table pool_full (
    pool_id     bigint primary key references capacity_pool (id) on delete cascade,
    -- The pool's size the periods were computed for; at any other size they say nothing.
    unit_count  integer not null,
    full_during tstzmultirange not null,
    refreshed_at timestamptz not null default now()
);

-- Appended by the allocation triggers below, taken by refresh_pool_occupancy. No foreign key:
-- its check would lock the pool's row for every booking; a row of a pool that is gone is
-- dropped by the next refresh.
create table pool_occupancy_change (
    id      bigint generated always as identity primary key,
    pool_id bigint not null,
    during  tstzrange not null,
    -- An allocation was removed or shortened here: the summary may claim full what is not.
    freed   boolean not null
);
create index pool_occupancy_change_freed_idx on pool_occupancy_change using gist (pool_id, during) where freed;

-- One row per pool and statement, spanning what the statement touched in that pool.
create function allocation_occupancy_added() returns trigger
language plpgsql as $$
begin
    insert into pool_occupancy_change (pool_id, during, freed)
    select pool_id, tstzrange(min(lower(during)), max(upper(during))), false
      from added group by pool_id;
    return null;
end
$$;

create function allocation_occupancy_freed() returns trigger
language plpgsql as $$
begin
    insert into pool_occupancy_change (pool_id, during, freed)
    select pool_id, tstzrange(min(lower(during)), max(upper(during))), true
      from gone group by pool_id;
    return null;
end
$$;

create function allocation_occupancy_moved() returns trigger
language plpgsql as $$
begin
    insert into pool_occupancy_change (pool_id, during, freed)
    select pool_id, tstzrange(min(lower(during)), max(upper(during))), true
      from gone group by pool_id
    union all
    select pool_id, tstzrange(min(lower(during)), max(upper(during))), false
      from added group by pool_id;
    return null;
end
$$;

create trigger allocation_occupancy_added after insert on allocation
    referencing new table as added
    for each statement execute function allocation_occupancy_added();
create trigger allocation_occupancy_freed after delete on allocation
    referencing old table as gone
    for each statement execute function allocation_occupancy_freed();
create trigger allocation_occupancy_moved after update on allocation
    referencing old table as gone new table as added
    for each statement execute function allocation_occupancy_moved();

-- The periods of `pool` within `touched` in which every one of its `units` is allocated.
create function pool_full_periods(pool bigint, units integer, touched tstzrange) returns tstzmultirange
language sql stable as $$
    with edge as (
        select greatest(lower(a.during), lower(touched)) as at, 1 as step
          from allocation a where a.pool_id = pool and a.during && touched
        union all
        select least(upper(a.during), upper(touched)), -1
          from allocation a where a.pool_id = pool and a.during && touched
    ), busy as (
        select at, sum(sum(step)) over (order by at) as units_busy, lead(at) over (order by at) as next_at
          from edge group by at
    )
    select coalesce(range_agg(tstzrange(at, next_at)), '{}'::tstzmultirange)
      from busy where units_busy >= units and next_at > at
$$;

-- Folds the pending changes of up to `max_pools` pools into the summary; returns how many
-- pools it refreshed. One refresher at a time (others return 0 at once). The changes are
-- taken by one statement and the allocations read by later ones, which see at least what
-- the first saw: a change committed in between stays for the next round.
create function refresh_pool_occupancy(max_pools integer default 500) returns integer
language plpgsql as $$
declare
    c record;
    n integer := 0;
begin
    if not pg_try_advisory_xact_lock(hashtext('refresh_pool_occupancy')) then
        return 0;
    end if;
    for c in
        with taken as (
            delete from pool_occupancy_change
             where pool_id in (select distinct pool_id from pool_occupancy_change limit max_pools)
            returning pool_id, during
        )
        select t.pool_id, p.unit_count, f.unit_count as summarised_units, range_agg(t.during) as touched
          from taken t
          join capacity_pool p on p.id = t.pool_id
          left join pool_full f on f.pool_id = t.pool_id
         group by t.pool_id, p.unit_count, f.unit_count
    loop
        if c.summarised_units is distinct from c.unit_count then
            -- New, or resized: every period is computed again.
            insert into pool_full (pool_id, unit_count, full_during)
            values (c.pool_id, c.unit_count, pool_full_periods(c.pool_id, c.unit_count, tstzrange(null, null)))
            on conflict (pool_id) do update
               set unit_count = excluded.unit_count, full_during = excluded.full_during, refreshed_at = now();
        else
            update pool_full
               set full_during = (full_during - c.touched)
                                 + (select coalesce(range_agg(pool_full_periods(c.pool_id, c.unit_count, r)), '{}')
                                      from unnest(c.touched) r),
                   refreshed_at = now()
             where pool_id = c.pool_id;
        end if;
        n := n + 1;
    end loop;
    return n;
end
$$;

-- Pools resized since their summary are computed again on their next change; the existing
-- pools are all summarised by the first refreshes after this migration.
insert into pool_occupancy_change (pool_id, during, freed)
select id, tstzrange(null, null), false from capacity_pool;

-- A pool's size changing makes its summary say nothing (unit_count differs); queue it.
create function capacity_pool_occupancy_resized() returns trigger
language plpgsql as $$
begin
    insert into pool_occupancy_change (pool_id, during, freed)
    values (new.id, tstzrange(null, null), false);
    return null;
end
$$;
create trigger capacity_pool_occupancy_resized after update of unit_count on capacity_pool
    for each row when (old.unit_count is distinct from new.unit_count)
    execute function capacity_pool_occupancy_resized();
