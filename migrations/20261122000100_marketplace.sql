-- The marketplace's core schema: organizations, people, sites, capacity pools made of
-- concrete units, availability, blackouts, reservations and the allocations that settle them.
--
-- House style: lowercase SQL, singular table names, created_at/updated_at on every table.
-- Every site-scoped table carries site_id so the schema can later be distributed by site.

create extension if not exists btree_gist;

create table organization (
    id          bigint generated always as identity primary key,
    name        text not null unique check (length(btrim(name)) between 1 and 200),
    kind        text not null check (kind in ('customer', 'operator', 'both')),
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

-- "user" is reserved in SQL, hence app_user.
create table app_user (
    id               bigint generated always as identity primary key,
    organization_id  bigint not null references organization (id),
    email            text not null check (email = lower(btrim(email)) and email like '%_@_%'),
    display_name     text not null check (length(btrim(display_name)) between 1 and 200),
    password_hash    text not null,
    role             text not null default 'member' check (role in ('owner', 'member')),
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    constraint app_user_email_key unique (email)
);
create index app_user_organization_idx on app_user (organization_id);

create table site (
    id                      bigint generated always as identity primary key,
    operator_id             bigint not null references organization (id),
    name                    text not null check (length(btrim(name)) between 1 and 200),
    country                 text not null check (length(country) = 2 and country = upper(country)),
    region                  text not null,
    grid_region             text not null,
    energy_source           text not null,
    -- Power is kept in integer kW (MW × 1000) so capacity sums are exact.
    interconnect_kw         integer not null check (interconnect_kw > 0),
    pue                     double precision not null check (pue >= 1.0 and pue <= 3.0),
    cooling                 text not null,
    status                  text not null check (status in ('building', 'live')),
    -- The mining side of the site.
    hashrate_th             bigint not null default 0 check (hashrate_th >= 0),
    fleet_efficiency_j_th   double precision check (fleet_efficiency_j_th > 0),
    hashprice_usd_cents_per_ph_day bigint check (hashprice_usd_cents_per_ph_day >= 0),
    created_at              timestamptz not null default now(),
    updated_at              timestamptz not null default now(),
    constraint site_operator_name_key unique (operator_id, name)
);
create index site_operator_idx on site (operator_id);

-- A pool is what a site sells. GPU pools sell nodes, power-block pools sell blocks.
-- price_cents is per GPU-hour (gpu) or per kW-month (power, 730 hours a month).
create table capacity_pool (
    id               bigint generated always as identity primary key,
    site_id          bigint not null references site (id),
    kind             text not null check (kind in ('gpu', 'power')),
    name             text not null check (length(btrim(name)) between 1 and 200),
    unit_count       integer not null check (unit_count between 1 and 100000),
    -- GPU pools
    gpu_model        text,
    gpus_per_node    integer check (gpus_per_node between 1 and 72),
    gpu_memory_gb    integer check (gpu_memory_gb > 0),
    interconnect     text check (interconnect in ('infiniband', 'roce', 'ethernet')),
    node_power_w     integer check (node_power_w > 0),
    -- Power-block pools
    block_kw         integer check (block_kw > 0),
    redundancy       text check (redundancy in ('N', 'N+1', '2N')),
    cooling          text,
    -- Terms
    currency         text not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
    price_cents      bigint not null check (price_cents > 0),
    min_term_hours   integer not null default 1 check (min_term_hours >= 1),
    max_term_hours   integer not null default 8760 check (max_term_hours >= 1),
    min_lead_hours   integer not null default 0 check (min_lead_hours >= 0),
    listed           boolean not null default true,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    constraint capacity_pool_term_check check (min_term_hours <= max_term_hours),
    constraint capacity_pool_kind_columns check (
        (kind = 'gpu' and gpu_model is not null and gpus_per_node is not null
            and gpu_memory_gb is not null and interconnect is not null and node_power_w is not null
            and block_kw is null and redundancy is null)
        or
        (kind = 'power' and block_kw is not null and redundancy is not null and cooling is not null
            and gpu_model is null and gpus_per_node is null and node_power_w is null)
    ),
    constraint capacity_pool_site_id_key unique (site_id, id)
);
create index capacity_pool_site_idx on capacity_pool (site_id);
create index capacity_pool_gpu_model_idx on capacity_pool (gpu_model) where kind = 'gpu';

-- Term discounts: a reservation of at least min_hours gets discount_bp basis points off.
create table pool_term_discount (
    id           bigint generated always as identity primary key,
    site_id      bigint not null,
    pool_id      bigint not null,
    min_hours    integer not null check (min_hours >= 1),
    discount_bp  integer not null check (discount_bp between 1 and 9000),
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    foreign key (site_id, pool_id) references capacity_pool (site_id, id) on delete cascade,
    constraint pool_term_discount_key unique (pool_id, min_hours)
);

-- Cancellation policy: cancelling at least min_notice_hours before the start refunds refund_bp.
create table pool_cancellation_tier (
    id                 bigint generated always as identity primary key,
    site_id            bigint not null,
    pool_id            bigint not null,
    min_notice_hours   integer not null check (min_notice_hours >= 0),
    refund_bp          integer not null check (refund_bp between 0 and 10000),
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    foreign key (site_id, pool_id) references capacity_pool (site_id, id) on delete cascade,
    constraint pool_cancellation_tier_key unique (pool_id, min_notice_hours)
);

-- The concrete things that are sold: one row per node or power block.
create table capacity_unit (
    id          bigint generated always as identity primary key,
    site_id     bigint not null,
    pool_id     bigint not null,
    ordinal     integer not null check (ordinal >= 1),
    label       text not null,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    foreign key (site_id, pool_id) references capacity_pool (site_id, id),
    constraint capacity_unit_pool_ordinal_key unique (pool_id, ordinal),
    constraint capacity_unit_owner_key unique (site_id, pool_id, id)
);

-- Time is sold on an hourly grain: every range is [start, end), hour-aligned, non-empty.
create function is_hour_range(r tstzrange) returns boolean
language sql immutable strict as $$
    select not isempty(r)
       and lower_inc(r) and not upper_inc(r)
       and not lower_inf(r) and not upper_inf(r)
       and date_trunc('hour', lower(r), 'UTC') = lower(r)
       and date_trunc('hour', upper(r), 'UTC') = upper(r)
$$;

-- When a pool is on sale.
create table availability_window (
    id          bigint generated always as identity primary key,
    site_id     bigint not null,
    pool_id     bigint not null,
    during      tstzrange not null check (is_hour_range(during)),
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    foreign key (site_id, pool_id) references capacity_pool (site_id, id) on delete cascade,
    constraint availability_window_no_overlap exclude using gist (pool_id with =, during with &&)
);

create table blackout (
    id          bigint generated always as identity primary key,
    site_id     bigint not null,
    pool_id     bigint not null,
    during      tstzrange not null check (is_hour_range(during)),
    reason      text not null default 'maintenance',
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    foreign key (site_id, pool_id) references capacity_pool (site_id, id),
    constraint blackout_pool_id_key unique (pool_id, id)
);

-- The contract. The price breakdown is locked at booking, in integer cents.
create table reservation (
    id                bigint generated always as identity primary key,
    site_id           bigint not null,
    pool_id           bigint not null,
    customer_id       bigint not null references organization (id),
    unit_count        integer not null check (unit_count >= 1),
    during            tstzrange not null check (is_hour_range(during)),
    state             text not null check (state in ('held', 'confirmed', 'cancelled')),
    held_until        timestamptz,
    currency          text not null check (currency ~ '^[A-Z]{3}$'),
    unit_price_cents  bigint not null check (unit_price_cents > 0),
    base_cents        bigint not null check (base_cents >= 0),
    discount_cents    bigint not null check (discount_cents >= 0),
    fee_cents         bigint not null check (fee_cents >= 0),
    total_cents       bigint not null check (total_cents >= 0),
    cancelled_at      timestamptz,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    foreign key (site_id, pool_id) references capacity_pool (site_id, id),
    constraint reservation_total_check check (total_cents = base_cents - discount_cents + fee_cents),
    constraint reservation_held_check check ((state = 'held') = (held_until is not null)),
    constraint reservation_cancelled_check check ((state = 'cancelled') = (cancelled_at is not null)),
    constraint reservation_pool_id_key unique (pool_id, id)
);
create index reservation_customer_idx on reservation (customer_id, id);

-- Which unit serves which reservation or blackout over which range. The exclusion
-- constraint is the settlement guarantee: a unit never serves two things at once,
-- whichever process writes.
create table allocation (
    id              bigint generated always as identity primary key,
    site_id         bigint not null,
    pool_id         bigint not null,
    unit_id         bigint not null,
    reservation_id  bigint,
    blackout_id     bigint,
    during          tstzrange not null check (is_hour_range(during)),
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    -- The unit must belong to the allocation's pool and site.
    foreign key (site_id, pool_id, unit_id) references capacity_unit (site_id, pool_id, id),
    -- A reservation's or blackout's units come from its own pool.
    foreign key (pool_id, reservation_id) references reservation (pool_id, id) on delete cascade,
    foreign key (pool_id, blackout_id) references blackout (pool_id, id) on delete cascade,
    constraint allocation_one_owner check (num_nonnulls(reservation_id, blackout_id) = 1),
    constraint allocation_unit_overlap exclude using gist (unit_id with =, during with &&)
);
create index allocation_pool_during_idx on allocation using gist (pool_id, during);
create index allocation_reservation_idx on allocation (reservation_id) where reservation_id is not null;
create index allocation_blackout_idx on allocation (blackout_id) where blackout_id is not null;
