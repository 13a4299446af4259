-- Grid curtailment events: a site is asked by its grid program (ERCOT ERS, 4CP, ...) to shed
-- load over some hours. Rigshift plans the shed in the order the site's economics dictate
-- (mining first, then interruptible AI load, never firm), cuts the interrupted allocations
-- for the event's hours and credits their customers, all in the transaction that records
-- the event. The plan is computed by the application (it needs the site's mining fleet and
-- the load of every allocation hour by hour); what it may touch is kept here: a cut for a
-- curtailment is refused on a firm reservation by `firm_reservation_keeps_its_hours`.

create table grid_event (
    id                     bigint generated always as identity primary key,
    site_id                bigint not null references site (id),
    program                text not null check (length(btrim(program)) between 1 and 80),
    during                 tstzrange not null check (is_hour_range(during)
                                                     and upper(during) - lower(during) <= interval '72 hours'),
    shed_kw                bigint not null check (shed_kw > 0),
    -- What the program pays per MWh shed, when it pays (ERS pays for availability, 4CP
    -- saves transmission charges instead).
    payment_cents_per_mwh  bigint check (payment_cents_per_mwh between 0 and 10000000),
    -- The plan at the time it was recorded: the largest part of any hour shed by switching
    -- mining off. The interruptible part is in grid_event_shed, unit by unit.
    mining_shed_kw         bigint not null check (mining_shed_kw >= 0),
    created_by             bigint references app_user (id),
    created_at             timestamptz not null default now()
);
create index grid_event_site_idx on grid_event (site_id, lower(during) desc);

create trigger grid_event_append_only before update or delete on grid_event
    for each row execute function ledger_append_only();

-- The interruptible unit-hours an event took: which reservation's unit, over which hours,
-- and the load that shed (node IT power × PUE, or the block's kW), in watts.
create table grid_event_shed (
    id              bigint generated always as identity primary key,
    grid_event_id   bigint not null references grid_event (id),
    reservation_id  bigint not null references reservation (id),
    unit_id         bigint not null references capacity_unit (id),
    during          tstzrange not null check (is_hour_range(during)),
    watts           bigint not null check (watts > 0)
);
create index grid_event_shed_event_idx on grid_event_shed (grid_event_id);
create index grid_event_shed_reservation_idx on grid_event_shed (reservation_id);

create trigger grid_event_shed_append_only before update or delete on grid_event_shed
    for each row execute function ledger_append_only();

-- The credits an event gave: one per reservation it interrupted.
create table grid_event_credit (
    grid_event_id  bigint not null references grid_event (id),
    credit_id      bigint not null unique references reservation_credit (id),
    primary key (grid_event_id, credit_id)
);

create trigger grid_event_credit_append_only before update or delete on grid_event_credit
    for each row execute function ledger_append_only();

-- An event with what it shed: the largest interruptible load of any hour, the
-- reservations and unit-hours it interrupted, and what their customers were credited.
create view grid_event_summary as
select e.id, e.site_id, e.program, lower(e.during) as start, upper(e.during) as "end",
       e.shed_kw, e.payment_cents_per_mwh, e.mining_shed_kw,
       coalesce((select ceil(max(x.w) / 1000.0)::bigint
                   from (select sum(g.watts) as w
                           from grid_event_shed g
                           cross join generate_series(lower(e.during), upper(e.during) - interval '1 hour',
                                                      interval '1 hour') h
                          where g.grid_event_id = e.id and g.during @> h
                          group by h) x), 0) as interruptible_shed_kw,
       (select count(distinct g.reservation_id) from grid_event_shed g
         where g.grid_event_id = e.id) as reservations_interrupted,
       coalesce((select sum(extract(epoch from upper(g.during) - lower(g.during)) / 3600)::bigint
                   from grid_event_shed g where g.grid_event_id = e.id), 0) as unit_hours_lost,
       coalesce((select sum(c.amount_cents)::bigint
                   from grid_event_credit gc join reservation_credit c on c.id = gc.credit_id
                  where gc.grid_event_id = e.id), 0) as credited_cents,
       e.created_at
  from grid_event e;

-- Cuts reservation `res`'s unit over `piece` for event `ev` and records what it shed. The
-- cut's own trigger refuses it on a firm reservation.
create function grid_event_cut(ev bigint, res bigint, unit bigint, piece tstzrange, load_w bigint)
returns void
language plpgsql as $$
begin
    if not (select e.during @> piece from grid_event e where e.id = ev) then
        raise exception 'grid event % does not cover %', ev, piece
            using errcode = 'check_violation', constraint = 'grid_event_shed_within_event';
    end if;
    perform reservation_cut(res, unit, piece, 'curtailed');
    insert into grid_event_shed (grid_event_id, reservation_id, unit_id, during, watts)
    values (ev, res, unit, piece, load_w);
end
$$;

-- `grid_event.created` to the site's operator, and `reservation.preempted` (cause
-- `grid_event`) to each customer whose reservation it interrupted, with the unit-hours lost
-- and the credit so far. Called once the event's cuts and credits are written.
create function emit_grid_event(ev bigint) returns void
language plpgsql as $$
declare
    e grid_event;
    operator bigint;
    r reservation;
    lost bigint;
begin
    select * into e from grid_event where id = ev;
    select s.operator_id into operator from site s where s.id = e.site_id;
    insert into event_outbox (organization_id, kind, payload)
    values (operator, 'grid_event.created', jsonb_build_object(
        'grid_event_id', e.id, 'site_id', e.site_id, 'program', e.program,
        'start', lower(e.during), 'end', upper(e.during), 'shed_kw', e.shed_kw,
        'payment_cents_per_mwh', e.payment_cents_per_mwh, 'mining_shed_kw', e.mining_shed_kw,
        'interrupted_reservations', (select count(distinct reservation_id) from grid_event_shed where grid_event_id = ev)));
    for r in select x.* from reservation x
              where x.id in (select reservation_id from grid_event_shed where grid_event_id = ev)
              order by x.id loop
        select sum(extract(epoch from upper(g.during) - lower(g.during)) / 3600)::bigint into lost
          from grid_event_shed g where g.grid_event_id = ev and g.reservation_id = r.id;
        insert into event_outbox (organization_id, kind, payload)
        values (r.customer_id, 'reservation.preempted', jsonb_build_object(
            'reservation_id', r.id, 'pool_id', r.pool_id, 'site_id', r.site_id,
            'customer_id', r.customer_id, 'tier', r.tier, 'cause', 'grid_event',
            'grid_event_id', e.id, 'program', e.program,
            'preempted_from', lower(e.during), 'until', upper(e.during), 'unit_hours', lost,
            'credited_cents', r.credited_cents, 'currency', r.currency));
    end loop;
end
$$;

-- Endpoints may subscribe to the events added since the list was written: preemption
-- (20261202000800, whose subscription this check refused) and grid events.
alter table webhook_endpoint drop constraint webhook_endpoint_events_check;
alter table webhook_endpoint add constraint webhook_endpoint_events_check check (
    cardinality(events) >= 1
    and events <@ array['reservation.created', 'reservation.cancelled', 'reservation.started',
                        'reservation.completed', 'reservation.preempted', 'blackout.created',
                        'capacity.changed', 'grid_event.created']::text[]
);

-- The audit trail records who recorded each event.
alter table audit_event drop constraint audit_event_object_type_check;
alter table audit_event add constraint audit_event_object_type_check check (
    object_type in ('reservation', 'pool', 'site', 'blackout', 'api_key', 'organization', 'user',
                    'webhook', 'grid_event')
);
