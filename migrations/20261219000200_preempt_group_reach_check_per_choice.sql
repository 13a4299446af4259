-- preempt_group's check for a cut reaching another want, one probe per choice.
--
-- 20261219000100 made preempt_group go one want at a time when a want's cut reaches into
-- another want's span on the same unit. Its check joined every choice's allocations over
-- the span to every want, and under the generic plan it cost about 3.5 ms of database CPU
-- per group of 16 in the replay harness (server/harness/preempt_replay): a sixth of the
-- group's time, on a path where no cut reaches anything.
--
-- Wants of one pool do not overlap when the check runs, so a cut reaches another want only
-- with the part of the holder's allocation after its own want's end. The check now reads
-- each choice's allocations once (one index probe per choice) and matches the wants only to
-- those running past that end: about 0.3 ms per group. The answers are the same; the rest
-- of the function is 20261219000100's.

-- Up to `wanted[i]` units of `pools[i]` over `spans[i]`, taken from interruptible
-- reservations from `cut_from[i]` on and allocated to the firm reservation `res[i]`, for
-- every i, inside the caller's transaction (the steps: see 20261218000100). Returns how many
-- units each want took, by its position from 1; fewer than wanted means the caller must
-- roll back.
create or replace function preempt_group(pools bigint[], spans tstzrange[], wanted bigint[],
                              cut_from timestamptz[], res bigint[])
returns table (n bigint, taken integer)
language plpgsql
set plan_cache_mode = force_generic_plan
as $$
declare
    todo bigint[];             -- the positions of the wants still to be served
    chosen preemption_pick[];  -- this round's choices
    picks preemption_pick[] := '{}';  -- the choices that stood under their locks
    pieces preemption_piece[];
    sound boolean;
begin
    -- Wants of one pool that overlap would choose without seeing each other's choices.
    if exists (select 1
                 from unnest(pools, spans) with ordinality a (pool, span, k)
                 join unnest(pools, spans) with ordinality b (pool, span, k)
                   on b.pool = a.pool and b.k > a.k and b.span && a.span) then
        return query select * from preempt_one_by_one(pools, spans, wanted, cut_from, res);
        return;
    end if;

    -- 1-3, for the wants still to be served: a choice that no longer stands under its locks
    -- (another transaction preempted the unit first) is made again, as preempt_into moves
    -- on to its next candidate, keeping the locks taken so far.
    select coalesce(array_agg(w.n), '{}') into todo
      from unnest(wanted) with ordinality as w (wanted, n)
     where w.wanted > 0;
    for attempt in 1..3 loop
        exit when cardinality(todo) = 0;
        -- 1. The choices, in preempt_into's order.
        select coalesce(array_agg(row(w.n, c.unit_id, w.span, w.cut_from, w.res, v.covered)::preemption_pick
                                  order by w.pool, lower(w.span), w.n, c.k), '{}'),
               coalesce(bool_and(c.k is not null), true)
          into chosen, sound
          from unnest(pools, spans, wanted, cut_from, res)
               with ordinality as w (pool, span, wanted, cut_from, res, n)
          left join lateral (select x.unit_id,
                                    row_number() over (order by x.price, x.latest desc, x.unit_id) as k
                               from preemption_candidates(w.pool, w.span, w.cut_from) x
                              order by k
                              limit w.wanted) c on true
          left join lateral (select coalesce(range_agg(a.during), '{}'::tstzmultirange) @> w.span as covered
                               from allocation a
                              where a.unit_id = c.unit_id and a.during && w.span) v on true
         where w.n = any(todo);
        sound := sound and not exists (
            select 1 from unnest(wanted) with ordinality as w (wanted, n)
             where w.n = any(todo)
               and w.wanted > (select count(*) from unnest(chosen) p where p.n = w.n));
        if not sound then
            -- Too few candidates: preempt_into gives the short answer the caller rolls back on.
            return query select * from preempt_one_by_one(pools, spans, wanted, cut_from, res);
            return;
        end if;

        -- 2. The locks: units a gap could be taken from, then the holders in reservation order.
        perform 1 from capacity_unit u
          where u.id in (select p.unit_id from unnest(chosen) p where not p.covered)
          order by u.id
            for no key update;
        perform 1 from reservation r
          where r.id in (select a.reservation_id
                           from unnest(chosen) p
                           join allocation a on a.unit_id = p.unit_id and a.during && p.span)
          order by r.id
            for update;

        -- 3. Under the locks, whether each choice still stands: still preemptable
        -- (unit_preemptable's rule), still covered where it was, every holder confirmed.
        select coalesce(array_agg(p.n) filter (where not v.ok), '{}'),
               coalesce(array_agg(row(p.n, p.unit_id, p.span, p.cut_from, p.res, p.covered)::preemption_pick
                                  order by p.pos) filter (where v.ok), '{}')
          into todo, chosen
          from unnest(chosen) with ordinality p (n, unit_id, span, cut_from, res, covered, pos)
          cross join lateral (
              select coalesce(bool_and(r.tier is not distinct from 'interruptible'
                                       and r.state = 'confirmed'
                                       and greatest(lower(a.during), lower(p.span)) >= p.cut_from), false)
                     and (not p.covered or coalesce(range_agg(a.during) @> p.span, false)) as ok
                from allocation a
                left join reservation r on r.id = a.reservation_id
               where a.unit_id = p.unit_id and a.during && p.span) v;
        -- A want keeps its choices only when all of them stand.
        picks := picks || array(select row(c.n, c.unit_id, c.span, c.cut_from, c.res, c.covered)::preemption_pick
                                  from unnest(chosen) with ordinality c (n, unit_id, span, cut_from, res, covered, pos)
                                 where c.n <> all(todo)
                                 order by c.pos);
        select coalesce(array_agg(distinct t), '{}') into todo from unnest(todo) t;
    end loop;
    if cardinality(todo) > 0 then
        return query select * from preempt_one_by_one(pools, spans, wanted, cut_from, res);
        return;
    end if;
    if cardinality(picks) = 0 then
        return query select w.n, 0 from unnest(wanted) with ordinality as w (wanted, n);
        return;
    end if;

    -- A cut runs from the want's start to the end of the holder's allocation, so it may
    -- reach into a later want's span on the same unit. preempt_into, serving that want
    -- after the cut, sees the unit without the piece (its holders' prices, its coverage)
    -- and may choose otherwise: the choices made from the state before any cut stand only
    -- when no cut reaches another want's span.
    -- Wants of one pool do not overlap here, so a cut reaches another want only with the
    -- part of the holder's allocation after its own want's end. The allocations are read
    -- first, one probe per choice; the wants are matched only to those that run past it.
    if exists (with reaching as materialized (
                   select p.n, tstzrange(upper(p.span), upper(a.during)) as past_end
                     from unnest(picks) p
                     join allocation a on a.unit_id = p.unit_id and a.during && p.span
                    where upper(a.during) > upper(p.span))
               select 1
                 from reaching r
                 join unnest(pools, spans) with ordinality w (pool, span, n)
                   on w.n <> r.n and w.pool = pools[r.n] and w.span && r.past_end) then
        return query select * from preempt_one_by_one(pools, spans, wanted, cut_from, res);
        return;
    end if;

    -- The pieces each holder loses. The credit runs over a reservation's pieces in the order
    -- preempt_into takes them: by their start, and pieces of one start (one want's units) in
    -- the order the units were chosen, which is the candidates' order, not the units' ids.
    select coalesce(array_agg(row(h.holder, h.unit_id, h.alloc, h.during, h.piece, h.hours,
                                  h.amount, h.credited + h.amount_so_far)::preemption_piece
                              order by h.holder, lower(h.piece), h.pos), '{}')
      into pieces
      from (select g.*,
                   sum(g.amount) over (partition by g.holder order by lower(g.piece), g.pos) as amount_so_far
              from (select f.*,
                           greatest(0, least(f.raw, f.left_to_credit
                                                    - coalesce(sum(f.raw) over (partition by f.holder
                                                                                order by lower(f.piece), f.pos
                                                                                rows between unbounded preceding
                                                                                         and 1 preceding), 0))) as amount
                      from (select e.*,
                                   floor(r.total_cents::numeric * e.hours
                                         / (r.unit_count * extract(epoch from upper(r.during) - lower(r.during)) / 3600))::bigint as raw,
                                   r.total_cents - r.credited_cents - coalesce(r.refund_cents, 0) as left_to_credit,
                                   r.credited_cents as credited
                              from (select a.reservation_id as holder, a.unit_id, a.id as alloc, a.during, d.piece, p.pos,
                                           (extract(epoch from upper(d.piece) - lower(d.piece)) / 3600)::bigint as hours
                                      from unnest(picks) with ordinality p (n, unit_id, span, cut_from, res, covered, pos)
                                      join allocation a on a.unit_id = p.unit_id and a.during && p.span
                                      cross join lateral (select tstzrange(greatest(lower(a.during), lower(p.span)),
                                                                           upper(a.during)) as piece) d) e
                              join reservation r on r.id = e.holder) f) g) h;
    -- One allocation under two wants' spans (a long interruptible booking): preempt_into cuts
    -- it for the first and leaves the second to choose again.
    if (select count(distinct x.alloc) <> count(*) from unnest(pieces) x) then
        return query select * from preempt_one_by_one(pools, spans, wanted, cut_from, res);
        return;
    end if;

    -- 4. The cuts, their records, the credits and the events.
    delete from allocation a
     using unnest(pieces) x
     where a.id = x.alloc and lower(x.piece) = lower(x.during);
    update allocation a
       set during = tstzrange(lower(x.during), lower(x.piece)), updated_at = now()
      from unnest(pieces) x
     where a.id = x.alloc and lower(x.piece) > lower(x.during);
    insert into allocation_cut (reservation_id, unit_id, during, reason)
    select x.holder, x.unit_id, x.piece, 'preempted'
      from unnest(pieces) with ordinality x (holder, unit_id, alloc, during, piece, hours, amount, credited, k)
     order by x.k;
    insert into reservation_credit (reservation_id, amount_cents, unit_hours, reason, memo, effective_at)
    select x.holder, x.amount, x.hours, 'preempted',
           format('preempted from %s by a firm booking',
                  to_char(lower(x.piece) at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
           now()
      from unnest(pieces) with ordinality x (holder, unit_id, alloc, during, piece, hours, amount, credited, k)
     where x.amount > 0
     order by x.k;
    insert into event_outbox (organization_id, kind, payload)
    select o.org, 'reservation.preempted', e.body
      from (select x.k, r.customer_id, s.operator_id,
                   jsonb_build_object(
                       'reservation_id', r.id, 'pool_id', r.pool_id, 'site_id', r.site_id,
                       'customer_id', r.customer_id, 'tier', r.tier, 'cause', 'firm_booking',
                       'unit', u.ordinal,
                       'preempted_from', lower(x.piece), 'until', upper(x.piece), 'unit_hours', x.hours,
                       'credited_cents', x.credited, 'currency', r.currency) as body
              from unnest(pieces) with ordinality x (holder, unit_id, alloc, during, piece, hours, amount, credited, k)
              join reservation r on r.id = x.holder
              join site s on s.id = r.site_id
              join capacity_unit u on u.id = x.unit_id) e
     cross join lateral (select e.customer_id as org, 1 as k
                         union all
                         select e.operator_id, 2 where e.operator_id is distinct from e.customer_id) o
     order by e.k, o.k;

    -- 5. The units to the firm bookings.
    insert into allocation (site_id, pool_id, unit_id, reservation_id, during)
    select u.site_id, u.pool_id, u.id, p.res, p.span
      from unnest(picks) p
      join capacity_unit u on u.id = p.unit_id
     order by u.id;

    return query
        select w.n, (select count(*)::integer from unnest(picks) p where p.n = w.n)
          from unnest(wanted) with ordinality as w (wanted, n);
end
$$;
