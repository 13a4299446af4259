-- Mail to people: password resets, address verification and security notices. A message is
-- written in the same transaction as what it tells of, and sent by a worker in any server
-- process (rows are claimed with skip locked). Without an SMTP server configured, messages
-- are kept in the local outbox (`delivered_via = 'outbox'`), which developers read.
create table mail_message (
    id               bigint generated always as identity primary key,
    user_id          bigint references app_user (id) on delete set null,
    to_address       text not null check (length(to_address) between 3 and 254 and to_address !~ '[[:space:]]'),
    subject          text not null check (length(subject) between 1 and 200 and subject !~ '[[:cntrl:]]'),
    body             text not null check (length(body) <= 20000),
    created_at       timestamptz not null default now(),
    next_attempt_at  timestamptz not null default now(),
    attempts         integer not null default 0 check (attempts >= 0),
    sent_at          timestamptz,
    delivered_via    text check (delivered_via in ('smtp', 'outbox')),
    failed_at        timestamptz,
    last_error       text check (length(last_error) <= 1000),
    constraint mail_message_sent_check check ((sent_at is null) = (delivered_via is null))
);
create index mail_message_due_idx on mail_message (next_attempt_at)
    where sent_at is null and failed_at is null;
create index mail_message_outbox_idx on mail_message (id) where delivered_via = 'outbox';

-- Single-use links sent by mail: a password reset, an address to verify. Only a SHA-256 of
-- the token is kept; `email` is the address the link went to (verifying proves that one).
create table account_token (
    token_hash  bytea primary key check (length(token_hash) = 32),
    user_id     bigint not null references app_user (id) on delete cascade,
    purpose     text not null check (purpose in ('password_reset', 'verify_email')),
    email       text not null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    used_at     timestamptz,
    check (expires_at > created_at)
);
create index account_token_user_idx on account_token (user_id, purpose, created_at);

-- People who existed before verification count as verified: their addresses were given
-- by administrators or have been signing in.
alter table app_user add column email_verified_at timestamptz;
update app_user set email_verified_at = created_at;

-- A second factor: a TOTP secret (RFC 6238, 30-second steps, six digits). A code is
-- accepted once (`totp_last_step`), so one seen over a shoulder cannot be replayed.
alter table app_user
    add column totp_secret      bytea check (length(totp_secret) = 20),
    add column totp_enabled_at  timestamptz,
    add column totp_last_step   bigint,
    add constraint app_user_totp_check check (totp_enabled_at is null or totp_secret is not null);

-- Recovery codes for a lost authenticator: each works once; only SHA-256 hashes are kept.
create table recovery_code (
    user_id     bigint not null references app_user (id) on delete cascade,
    code_hash   bytea not null check (length(code_hash) = 32),
    created_at  timestamptz not null default now(),
    used_at     timestamptz,
    primary key (user_id, code_hash)
);

-- A sign-in whose password was right and that waits for its second factor: five minutes,
-- five tries.
create table login_challenge (
    token_hash  bytea primary key check (length(token_hash) = 32),
    user_id     bigint not null references app_user (id) on delete cascade,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    attempts    integer not null default 0 check (attempts >= 0)
);
create index login_challenge_user_idx on login_challenge (user_id);
