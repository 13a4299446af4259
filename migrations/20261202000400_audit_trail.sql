-- The audit trail: who (a person, an API key, or the platform itself) did what to which
-- object, when. Written by the use cases in the same transaction as the change, so an
-- event exists exactly when its change committed. Append-only: PostgreSQL refuses to
-- change or delete an event.
create table audit_event (
    id               bigint generated always as identity primary key,
    -- Whose trail it is: the organization the object belongs to.
    organization_id  bigint references organization (id),
    actor_user_id    bigint references app_user (id),
    actor_key_id     bigint references api_key (id),
    -- The actor as they were named when they acted (a person's name and address, a key's
    -- prefix and name, or `system`), kept as text so the trail reads the same later.
    actor_label      text not null check (length(actor_label) between 1 and 500),
    action           text not null check (action ~ '^[a-z_]+\.[a-z_]+$'),
    object_type      text not null check (object_type in ('reservation', 'pool', 'site', 'blackout',
                                                          'api_key', 'organization', 'user', 'webhook')),
    object_id        bigint,
    detail           jsonb not null default '{}'::jsonb,
    created_at       timestamptz not null default now(),
    constraint audit_event_one_actor check (num_nonnulls(actor_user_id, actor_key_id) <= 1)
);
create index audit_event_organization_idx on audit_event (organization_id, id);

create function audit_event_is_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'audit events are never changed or deleted'
        using errcode = 'integrity_constraint_violation', constraint = 'audit_event_append_only';
end
$$;

create trigger audit_event_append_only
    before update or delete on audit_event
    for each row execute function audit_event_is_append_only();
create trigger audit_event_no_truncate
    before truncate on audit_event
    for each statement execute function audit_event_is_append_only();

-- How an actor is named in the trail: a person by name and address, a key by its public
-- prefix and name, anything else as the platform.
create function audit_actor_label(user_id bigint, key_id bigint) returns text
language sql stable as $$
    select coalesce(
        (select u.display_name || ' <' || u.email || '>' from app_user u where u.id = user_id),
        (select 'API key rsk_' || k.prefix || ' (' || k.name || ')' from api_key k where k.id = key_id),
        'system')
$$;
