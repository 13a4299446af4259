-- Standing orders: a customer's search left open until capacity that matches it appears.
--
-- The order is the search (what, how much, how long, between which starts, where, which
-- tier, at most what total) and an expiry. A worker in every server process fills open
-- orders in the order they were created (one round at a time across processes: an
-- advisory lock), through the same booking path as everyone, with the request key
-- `standing order <id>`: a key no client can send (client keys have no spaces), so the
-- booking happens at most once even if a process dies between booking and marking the
-- order filled, and the next round finds the reservation the key made.
create table standing_order (
    id               bigint generated always as identity primary key,
    customer_id      bigint not null references organization (id),
    kind             text check (kind in ('gpu', 'power')),
    gpu_model        text check (length(btrim(gpu_model)) between 1 and 80),
    quantity_kind    text not null check (quantity_kind in ('units', 'gpus', 'kw')),
    quantity         bigint not null check (quantity between 1 and 100000000),
    hours            integer not null check (hours between 1 and 8760),
    earliest_start   timestamptz not null check (date_trunc('hour', earliest_start) = earliest_start),
    latest_start     timestamptz not null check (date_trunc('hour', latest_start) = latest_start),
    region           text check (length(btrim(region)) between 1 and 80),
    energy_source    text check (length(btrim(energy_source)) between 1 and 80),
    tier             text not null default 'firm' check (tier in ('firm', 'interruptible')),
    max_total_cents  bigint check (max_total_cents > 0),
    expires_at       timestamptz not null,
    state            text not null default 'open' check (state in ('open', 'filled', 'cancelled', 'expired')),
    reservation_id   bigint references reservation (id),
    closed_at        timestamptz,
    created_at       timestamptz not null default now(),
    constraint standing_order_starts check (latest_start >= earliest_start),
    -- An order cannot wait past its latest start: nothing could fill it then.
    constraint standing_order_expiry check (expires_at <= latest_start),
    constraint standing_order_filled check ((state = 'filled') = (reservation_id is not null)),
    constraint standing_order_closed check ((state = 'open') = (closed_at is null))
);
create index standing_order_open_idx on standing_order (id) where state = 'open';
create index standing_order_customer_idx on standing_order (customer_id, id);
-- A reservation fills at most one order.
create unique index standing_order_reservation_key on standing_order (reservation_id)
    where reservation_id is not null;

-- An order only leaves `open`, once; a filled order's reservation is its customer's, in the
-- order's window.
create function standing_order_transition() returns trigger
language plpgsql as $$
declare
    r reservation;
begin
    if old.state <> 'open' then
        raise exception 'standing order % is % and cannot change', old.id, old.state
            using errcode = 'restrict_violation', constraint = 'standing_order_closed_for_good';
    end if;
    if (new.customer_id, new.kind, new.gpu_model, new.quantity_kind, new.quantity, new.hours,
        new.earliest_start, new.latest_start, new.region, new.energy_source, new.tier,
        new.max_total_cents, new.expires_at, new.created_at)
       is distinct from
       (old.customer_id, old.kind, old.gpu_model, old.quantity_kind, old.quantity, old.hours,
        old.earliest_start, old.latest_start, old.region, old.energy_source, old.tier,
        old.max_total_cents, old.expires_at, old.created_at) then
        raise exception 'standing order % cannot be changed; cancel it and leave a new one', old.id
            using errcode = 'restrict_violation', constraint = 'standing_order_closed_for_good';
    end if;
    if new.state = 'filled' then
        select * into r from reservation where id = new.reservation_id;
        if r.customer_id <> new.customer_id or r.state = 'cancelled'
           or lower(r.during) < new.earliest_start or lower(r.during) > new.latest_start
           or upper(r.during) - lower(r.during) <> make_interval(hours => new.hours)
           or r.tier <> new.tier
           or (new.max_total_cents is not null and r.total_cents > new.max_total_cents) then
            raise exception 'reservation % does not fill standing order %', r.id, new.id
                using errcode = 'check_violation', constraint = 'standing_order_fill_matches';
        end if;
    end if;
    return new;
end
$$;

create trigger standing_order_transition before update on standing_order
    for each row execute function standing_order_transition();

-- The customer hears when an order is filled or runs out, in the same transaction.
create function standing_order_outbox() returns trigger
language plpgsql as $$
begin
    if new.state in ('filled', 'expired') and old.state = 'open' then
        insert into event_outbox (organization_id, kind, payload)
        values (new.customer_id, 'order.' || new.state, jsonb_build_object(
            'order_id', new.id, 'state', new.state, 'reservation_id', new.reservation_id,
            'earliest_start', new.earliest_start, 'latest_start', new.latest_start,
            'hours', new.hours, 'expires_at', new.expires_at));
    end if;
    return null;
end
$$;

create trigger standing_order_outbox after update of state on standing_order
    for each row execute function standing_order_outbox();

alter table webhook_endpoint drop constraint webhook_endpoint_events_check;
alter table webhook_endpoint add constraint webhook_endpoint_events_check check (
    cardinality(events) >= 1
    and events <@ array['reservation.created', 'reservation.cancelled', 'reservation.started',
                        'reservation.completed', 'reservation.preempted', 'blackout.created',
                        'capacity.changed', 'grid_event.created', 'order.filled',
                        'order.expired']::text[]
);

alter table audit_event drop constraint audit_event_object_type_check;
alter table audit_event add constraint audit_event_object_type_check check (
    object_type in ('reservation', 'pool', 'site', 'blackout', 'api_key', 'organization', 'user',
                    'webhook', 'grid_event', 'standing_order')
);
