-- A pool's best term discount for a given term is read from its own row.
--
-- Search sorted by total cost orders every candidate pool by its total, and the total
-- needs the best discount whose threshold the term reaches. Read by a correlated subquery
-- on pool_term_discount, that was an index probe per candidate: 5.6 ms of a 17.6 ms search
-- over 4,000 pools on the benchmark's generated market, and the quarter of the searches
-- with no region set the p95 (BENCHMARKS.md). Kept on the pool as two arrays in step, it
-- is a scalar expression: the arrays' width_bucket finds how many thresholds the term
-- reaches, and that position holds the answer.
--
--   term_discount_hours    the tiers' min_hours, ascending (they are unique per pool);
--   term_discount_best_bp  at position i, the largest discount of the tiers with
--                          min_hours <= term_discount_hours[i]: a running maximum, since an
--                          operator may give a longer term a smaller discount. That is the
--                          rule of pricing::discount_bp_for, "the best discount whose
--                          threshold the term reaches".
--
-- Only the triggers below write the two arrays, and they write nothing else.

alter table capacity_pool
    add column term_discount_hours integer[] not null default '{}',
    add column term_discount_best_bp integer[] not null default '{}',
    add constraint capacity_pool_term_discount_curve_check
        check (cardinality(term_discount_hours) = cardinality(term_discount_best_bp));

-- The best discount for a term of `hours`; 0 when no threshold is reached (width_bucket
-- gives 0 below the first threshold and for no thresholds, and position 0 is null).
-- Inlined by the planner into the query that calls it.
create function pool_term_discount_bp(p capacity_pool, hours integer) returns integer
language sql immutable as $$
    select coalesce(p.term_discount_best_bp[width_bucket(hours, p.term_discount_hours)], 0)
$$;

-- The two arrays for a pool, from its tiers.
create function pool_term_discount_curve(pool bigint, out hours integer[], out best_bp integer[])
language sql stable as $$
    select coalesce(array_agg(t.min_hours order by t.min_hours), '{}'),
           coalesce(array_agg(t.best order by t.min_hours), '{}')
    from (select d.min_hours, max(d.discount_bp) over (order by d.min_hours) as best
            from pool_term_discount d where d.pool_id = pool) t
$$;

-- Rewrites the arrays of the pools whose tiers a statement changed, once per statement (an
-- edit replaces a pool's tiers by a delete and an insert per tier).
create function pool_term_discount_refresh() returns trigger language plpgsql as $$
declare
    pools bigint[];
begin
    if tg_op = 'UPDATE' then
        pools := array(select pool_id from changed union select pool_id from changed_before);
    else
        pools := array(select distinct pool_id from changed);
    end if;
    -- Lock, then read in a statement of its own: under read committed that statement sees
    -- every edit of the same pools' tiers that committed while this one waited for the
    -- lock, because such an edit holds the lock until it commits. Read in one statement
    -- with the update, a concurrent edit could be missed and the arrays left stale.
    perform 1 from capacity_pool where id = any (pools) order by id for no key update;
    update capacity_pool p
       set (term_discount_hours, term_discount_best_bp) = (select c.hours, c.best_bp from pool_term_discount_curve(p.id) c)
     where p.id = any (pools);
    return null;
end $$;

create trigger pool_term_discount_inserted after insert on pool_term_discount
    referencing new table as changed
    for each statement execute function pool_term_discount_refresh();
create trigger pool_term_discount_updated after update on pool_term_discount
    referencing old table as changed_before new table as changed
    for each statement execute function pool_term_discount_refresh();
create trigger pool_term_discount_deleted after delete on pool_term_discount
    referencing old table as changed
    for each statement execute function pool_term_discount_refresh();

-- A pool's update announces capacity.changed (20261122000700), but rewriting its arrays
-- changes nothing a subscriber is told about (tier edits never announced themselves). The
-- one trigger for insert and update becomes two, so that the update's can look at OLD.
drop trigger capacity_pool_outbox on capacity_pool;
create trigger capacity_pool_listed_outbox after insert on capacity_pool
    for each row execute function capacity_outbox();
create trigger capacity_pool_changed_outbox after update on capacity_pool
    for each row
    when (old.term_discount_hours is not distinct from new.term_discount_hours
          and old.term_discount_best_bp is not distinct from new.term_discount_best_bp)
    execute function capacity_outbox();

-- The pools that already have tiers (after the outbox triggers above, so that this
-- announces nothing).
update capacity_pool p
   set (term_discount_hours, term_discount_best_bp) = (select c.hours, c.best_bp from pool_term_discount_curve(p.id) c)
 where exists (select 1 from pool_term_discount d where d.pool_id = p.id);
