-- The units a firm booking could preempt are found among the allocations of its own pool.
--
-- preemption_candidates joined the pool's units to the allocations overlapping the span by
-- unit, so the allocation index on (pool_id, during) was searched on the span alone: every
-- allocation of every pool overlapping the span was read and then matched to the pool's
-- units. On the benchmark's database that is a handful of rows, but a market of many pools
-- busy over the same hours made each preemption, and each quote of a firm booking on a pool
-- that sells interruptible hours, read all of them. An allocation's pool is its unit's
-- (the foreign key to capacity_unit is on both), so asking for it changes no answer.
-- The rule is unchanged (see 20261216000100).
create or replace function preemption_candidates(pool bigint, span tstzrange, cut_from timestamptz)
returns table (unit_id bigint, price bigint, latest timestamptz)
language sql stable as $$
    select u.id, max(r.unit_price_cents), max(r.created_at)
      from capacity_unit u
      join allocation a on a.unit_id = u.id and a.pool_id = pool and a.during && span
      left join lateral (select h.unit_price_cents, h.created_at, h.tier
                           from reservation h where h.id = a.reservation_id
                         offset 0) r on true
     where u.pool_id = pool
     group by u.id
    having bool_and(r.tier is not distinct from 'interruptible'
                    and greatest(lower(a.during), lower(span)) >= cut_from)
     order by 2, 3 desc, u.id
$$;
