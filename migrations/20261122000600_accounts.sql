-- Accounts and the doors into the marketplace: browser sessions, API keys, login throttling,
-- platform administration (one administrator, suspension of organizations).

alter table organization add column suspended_at timestamptz;

-- The platform administrator is a person, not an organization: one at most.
alter table app_user add column platform_admin boolean not null default false;
create unique index app_user_one_platform_admin on app_user (platform_admin) where platform_admin;

-- Browser sessions. Only a SHA-256 of the cookie value is stored, so a copy of this table
-- does not let anyone act as the people in it.
create table session (
    id_hash        bytea primary key check (length(id_hash) = 32),
    user_id        bigint not null references app_user (id) on delete cascade,
    created_at     timestamptz not null default now(),
    last_seen_at   timestamptz not null default now(),
    -- Absolute expiry; the idle expiry is computed from last_seen_at.
    expires_at     timestamptz not null,
    user_agent     text not null default '' check (length(user_agent) <= 400)
);
create index session_user_idx on session (user_id);
create index session_expires_idx on session (expires_at);

-- API keys for integrations: `rsk_<prefix>_<secret>`. The prefix is public and unique (it is
-- shown in lists and used to find the key); the whole key is stored only as a SHA-256 hash.
create table api_key (
    id               bigint generated always as identity primary key,
    organization_id  bigint not null references organization (id),
    created_by       bigint references app_user (id) on delete set null,
    name             text not null check (length(btrim(name)) between 1 and 100),
    prefix           text not null unique check (prefix ~ '^[a-z0-9]{10}$'),
    secret_hash      bytea not null check (length(secret_hash) = 32),
    scopes           text[] not null check (
        cardinality(scopes) between 1 and 3
        and scopes <@ array['read', 'reserve', 'operate']::text[]
    ),
    expires_at       timestamptz,
    last_used_at     timestamptz,
    revoked_at       timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);
create index api_key_organization_idx on api_key (organization_id, id);

-- Failed logins, counted per account (email) and per client address, shared by every server
-- process. A row says how many failures happened since window_start and, once too many did,
-- until when further attempts are refused. The lock always ends: nobody is locked out forever.
create table login_throttle (
    key            text primary key check (length(key) <= 300),
    failures       integer not null default 0 check (failures >= 0),
    window_start   timestamptz not null default now(),
    locked_until   timestamptz
);
