-- The integrations API: idempotent creation, per-key rate limits, and webhooks fed by an
-- outbox that triggers fill in the same transaction as the change they report.

-- A creating POST with an Idempotency-Key, per organization: the first request's answer,
-- replayed to retries with the same body. Kept 24 hours, then purged.
create table idempotency_key (
    organization_id  bigint not null references organization (id),
    key              text not null check (length(key) between 1 and 200),
    request_hash     bytea not null check (length(request_hash) = 32),
    state            text not null check (state in ('running', 'done')),
    status           smallint,
    content_type     text,
    body             bytea,
    created_at       timestamptz not null default now(),
    completed_at     timestamptz,
    primary key (organization_id, key),
    constraint idempotency_key_done_check check ((state = 'done') = (status is not null))
);
create index idempotency_key_created_idx on idempotency_key (created_at);

-- Requests per API key in the current minute, shared by every server process.
create table api_rate_window (
    api_key_id    bigint primary key references api_key (id) on delete cascade,
    window_start  timestamptz not null,
    requests      integer not null check (requests >= 0)
);

create table webhook_endpoint (
    id               bigint generated always as identity primary key,
    organization_id  bigint not null references organization (id),
    url              text not null check (url ~ '^https?://[^[:space:]]+$' and length(url) <= 2000),
    -- Signs deliveries (HMAC-SHA256); shown once when the endpoint is registered.
    secret           text not null check (length(secret) >= 32),
    events           text[] not null check (
        cardinality(events) >= 1
        and events <@ array['reservation.created', 'reservation.cancelled', 'reservation.started',
                            'reservation.completed', 'blackout.created', 'capacity.changed']::text[]
    ),
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);
create index webhook_endpoint_organization_idx on webhook_endpoint (organization_id, id);

-- The outbox: one row per event and organization that should hear of it.
create table event_outbox (
    id               bigint generated always as identity primary key,
    organization_id  bigint not null references organization (id),
    kind             text not null,
    payload          jsonb not null,
    created_at       timestamptz not null default now(),
    -- When the dispatcher turned it into deliveries (one per subscribed endpoint).
    dispatched_at    timestamptz
);
create index event_outbox_pending_idx on event_outbox (id) where dispatched_at is null;

create table webhook_delivery (
    id               bigint generated always as identity primary key,
    endpoint_id      bigint not null references webhook_endpoint (id) on delete cascade,
    event_id         bigint not null references event_outbox (id),
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    delivered_at     timestamptz,
    -- Given up after the last retry.
    failed_at        timestamptz,
    last_status      smallint,
    last_error       text,
    created_at       timestamptz not null default now(),
    constraint webhook_delivery_once unique (endpoint_id, event_id)
);
create index webhook_delivery_due_idx on webhook_delivery (next_attempt_at)
    where delivered_at is null and failed_at is null;

create table webhook_attempt (
    id           bigint generated always as identity primary key,
    delivery_id  bigint not null references webhook_delivery (id) on delete cascade,
    attempted_at timestamptz not null default now(),
    status       smallint,
    error        text,
    duration_ms  integer not null
);
create index webhook_attempt_delivery_idx on webhook_attempt (delivery_id, id);

-- Started and completed are moments in time, not writes; the dispatcher records here which
-- it has announced, so each is announced once.
create table reservation_milestone (
    reservation_id  bigint not null references reservation (id) on delete cascade,
    kind            text not null check (kind in ('started', 'completed')),
    created_at      timestamptz not null default now(),
    primary key (reservation_id, kind)
);

-- Tells the customer and the site's operator about a reservation event.
create function emit_reservation_event(event_kind text, r reservation) returns void
language plpgsql as $$
declare
    operator bigint;
    body jsonb;
begin
    select s.operator_id into operator from site s where s.id = r.site_id;
    body := jsonb_build_object(
        'reservation_id', r.id, 'pool_id', r.pool_id, 'site_id', r.site_id,
        'customer_id', r.customer_id, 'units', r.unit_count,
        'start', lower(r.during), 'end', upper(r.during), 'state', r.state,
        'currency', r.currency, 'total_cents', r.total_cents);
    insert into event_outbox (organization_id, kind, payload) values (r.customer_id, event_kind, body);
    if operator is distinct from r.customer_id then
        insert into event_outbox (organization_id, kind, payload) values (operator, event_kind, body);
    end if;
end $$;

create function reservation_outbox() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' and new.state = 'confirmed'
       or tg_op = 'UPDATE' and new.state = 'confirmed' and old.state = 'held' then
        perform emit_reservation_event('reservation.created', new);
    elsif tg_op = 'UPDATE' and new.state = 'cancelled' and old.state <> 'cancelled' then
        perform emit_reservation_event('reservation.cancelled', new);
    end if;
    return null;
end $$;

create trigger reservation_outbox after insert or update of state on reservation
    for each row execute function reservation_outbox();

create function blackout_outbox() returns trigger language plpgsql as $$
begin
    insert into event_outbox (organization_id, kind, payload)
    select s.operator_id, 'blackout.created',
           jsonb_build_object('blackout_id', new.id, 'pool_id', new.pool_id, 'site_id', new.site_id,
                              'start', lower(new.during), 'end', upper(new.during), 'reason', new.reason)
    from site s where s.id = new.site_id;
    return null;
end $$;

create trigger blackout_outbox after insert on blackout
    for each row execute function blackout_outbox();

-- A pool listed or changed, or its availability changed.
create function capacity_outbox() returns trigger language plpgsql as $$
declare
    row_site bigint;
    row_pool bigint;
begin
    if tg_table_name = 'capacity_pool' then
        row_site := new.site_id; row_pool := new.id;
    elsif tg_op = 'DELETE' then
        row_site := old.site_id; row_pool := old.pool_id;
    else
        row_site := new.site_id; row_pool := new.pool_id;
    end if;
    insert into event_outbox (organization_id, kind, payload)
    select s.operator_id, 'capacity.changed',
           jsonb_build_object('pool_id', row_pool, 'site_id', row_site, 'change', lower(tg_table_name || '.' || tg_op))
    from site s where s.id = row_site;
    return null;
end $$;

create trigger capacity_pool_outbox after insert or update on capacity_pool
    for each row execute function capacity_outbox();
create trigger availability_window_outbox after insert or update or delete on availability_window
    for each row execute function capacity_outbox();
