-- Moving a forward pool's delivery later (the hall is late). Contracts keep the delivery they
-- were sold on, so the late-delivery credits still run from it; what moves is when their
-- hours begin. A reservation whose start the new delivery passes is shifted later by the
-- delay, whole: never shortened, on the same units, at the same price. Every reservation of
-- the pool that starts before the new delivery moves by the same delay, so their order on a
-- unit is kept; if a shifted one would run into hours already sold or blocked on its unit,
-- the exclusion constraint refuses the move and nothing changes. Each customer hears
-- `reservation.delayed`. Moving a delivery earlier changes no contract.

alter table webhook_endpoint drop constraint webhook_endpoint_events_check;
alter table webhook_endpoint add constraint webhook_endpoint_events_check check (
    cardinality(events) >= 1
    and events <@ array['reservation.created', 'reservation.cancelled', 'reservation.started',
                        'reservation.completed', 'reservation.preempted', 'blackout.created',
                        'capacity.changed', 'grid_event.created', 'order.filled',
                        'order.expired', 'incident.opened', 'incident.resolved',
                        'reservation.moved', 'reservation.credited', 'site.delivered',
                        'reservation.delayed']::text[]
);

-- Moves `pool`'s delivery to `new_delivery` and shifts its reservations as above; returns
-- how many it shifted. Only a pool on a site still being built has a delivery to move.
create function forward_move_delivery(pool bigint, new_delivery timestamptz) returns integer
language plpgsql as $$
declare
    p record;
    delay interval;
    a record;
    ids bigint[];
    shifted integer := 0;
begin
    select cp.id, cp.delivery_at, s.status
      into p
      from capacity_pool cp join site s on s.id = cp.site_id
     where cp.id = pool
       for update of cp;
    if not found or p.status <> 'building' or p.delivery_at is null
       or new_delivery <= p.delivery_at then
        return 0;
    end if;
    delay := new_delivery - p.delivery_at;
    -- The reservations the new delivery passes, locked in id order like every multi-row lock.
    select coalesce(array_agg(id order by id), '{}') into ids
      from (select r.id from reservation r
             where r.pool_id = pool and r.state in ('confirmed', 'held')
               and lower(r.during) < new_delivery
             order by r.id
               for update) passed;
    if exists (select 1 from allocation_cut c where c.reservation_id = any (ids))
       or exists (select 1 from resale_listing l
                   where l.reservation_id = any (ids) and l.state = 'open') then
        raise exception 'a reservation of pool % has hours taken from it or on resale and cannot be shifted whole', pool
            using errcode = 'check_violation', constraint = 'forward_delay_keeps_contracts_whole';
    end if;
    -- Latest first: a translation later never meets a piece of the same set that has not
    -- moved yet, since the exclusion constraint is checked row by row.
    for a in
        select al.id from allocation al where al.reservation_id = any (ids)
         order by lower(al.during) desc, al.id
    loop
        update allocation
           set during = tstzrange(lower(during) + delay, upper(during) + delay), updated_at = now()
         where id = a.id;
    end loop;
    update reservation r
       set during = tstzrange(lower(r.during) + delay, upper(r.during) + delay), updated_at = now()
     where r.id = any (ids);
    get diagnostics shifted = row_count;
    update capacity_pool set delivery_at = new_delivery, updated_at = now() where id = pool;
    insert into event_outbox (organization_id, kind, payload)
    select r.customer_id, 'reservation.delayed',
           jsonb_build_object('reservation_id', r.id, 'pool_id', r.pool_id, 'site_id', r.site_id,
                              'committed_delivery_at', r.forward_delivery_at,
                              'expected_delivery_at', new_delivery,
                              'start', lower(r.during), 'end', upper(r.during),
                              'delayed_by_hours', extract(epoch from delay)::bigint / 3600)
      from reservation r
     where r.id = any (ids)
     order by r.id;
    return shifted;
end $$;
