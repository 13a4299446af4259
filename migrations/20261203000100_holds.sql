-- Holds: a quote that takes its units from sale for up to 30 minutes, at a price that binds.
--
-- A hold is a reservation in state `held` (the state the schema has known from the start):
-- its allocations are ordinary allocations, so the exclusion constraint keeps a held unit
-- from anyone else while the hold lives, and the ledger posts nothing until it is confirmed
-- (`ledger_settle_reservation`: held -> confirmed charges the locked total).
--
-- The hold's clock is the database's: `held_until` is set from the inserting transaction's
-- time, a confirm is refused once it has passed (whatever the confirming process believes the
-- time is), and `release_expired_holds` is the one way an expired hold ends. Every server
-- process runs it; `for update skip locked` makes two runs (or a run and a confirm) take each
-- hold once, so a hold is released at most once and never after it was confirmed.

-- A released hold keeps its `held_until`: a cancelled reservation with one was a hold never
-- confirmed, so never charged (what `reconcile` expects of it). Only a confirmed
-- reservation has none.
alter table reservation drop constraint reservation_held_check;
alter table reservation add constraint reservation_held_check
    check ((state <> 'held' or held_until is not null) and (state <> 'confirmed' or held_until is null));

-- At most 30 minutes from the moment the hold was written.
alter table reservation add constraint reservation_hold_span
    check (held_until is null or held_until <= created_at + interval '30 minutes');

create index reservation_held_until_idx on reservation (held_until) where state = 'held';

-- A hold is confirmed only while it lives.
create function reservation_hold_lives() returns trigger
language plpgsql as $$
begin
    if old.state = 'held' and new.state = 'confirmed' and old.held_until <= statement_timestamp() then
        raise exception 'the hold on reservation % expired at %', old.id, old.held_until
            using errcode = 'check_violation', constraint = 'reservation_hold_expired';
    end if;
    return new;
end
$$;

create trigger reservation_hold_lives before update of state on reservation
    for each row execute function reservation_hold_lives();

-- Releases every hold past its time (of one pool, or all): its units return to sale, it
-- becomes cancelled (keeping its held_until) with nothing charged or refunded, and the audit trail says so. Returns
-- how many it released. A hold locked by another transaction (its confirm, another release)
-- is left to that transaction.
create function release_expired_holds(only_pool bigint default null) returns integer
language plpgsql as $$
declare
    h record;
    released integer := 0;
begin
    for h in
        select id, customer_id, held_until from reservation
         where state = 'held' and held_until <= statement_timestamp()
           and (only_pool is null or pool_id = only_pool)
         order by id
           for update skip locked
    loop
        delete from allocation where reservation_id = h.id;
        update reservation set state = 'cancelled', cancelled_at = h.held_until,
                               updated_at = now()
         where id = h.id;
        insert into audit_event (organization_id, actor_label, action, object_type, object_id, detail)
        values (h.customer_id, 'system', 'reservation.hold_expired', 'reservation', h.id,
                jsonb_build_object('held_until', h.held_until));
        released := released + 1;
    end loop;
    return released;
end
$$;

-- The all-or-nothing check of one reservation (see 20261202000600_reallocation_and_credits),
-- which now also refuses a cancelled reservation that keeps units.
create or replace function reservation_check_coverage(res bigint) returns void
language plpgsql as $$
declare
    r reservation;
    whole bigint;
    pieces bigint;
    outside bigint;
    short timestamptz;
    held bigint;
begin
    select * into r from reservation where id = res;
    if not found then
        return;
    end if;
    -- A cancelled reservation (a released hold among them) keeps no unit.
    if r.state = 'cancelled' then
        if exists (select 1 from allocation a where a.reservation_id = res) then
            raise exception 'reservation % is cancelled but still holds units', res
                using errcode = 'check_violation', constraint = 'reservation_released';
        end if;
        return;
    end if;
    -- The common case, a reservation as booked: every unit over the whole term, nothing cut.
    select count(*) filter (where a.during = r.during), count(*),
           count(*) filter (where not r.during @> a.during)
      into whole, pieces, outside
      from allocation a where a.reservation_id = res;
    if whole = r.unit_count and pieces = r.unit_count
       and not exists (select 1 from allocation_cut c where c.reservation_id = res) then
        return;
    end if;
    if outside > 0 then
        raise exception 'reservation % has an allocation outside its term %', res, r.during
            using errcode = 'check_violation', constraint = 'reservation_fully_allocated';
    end if;
    -- Held plus cut units only change where a piece starts or ends; check at each such point.
    select p.t, p.n into short, held
      from (select b.t,
                   (select count(*) from allocation a where a.reservation_id = res and a.during @> b.t)
                   + (select count(*) from allocation_cut c where c.reservation_id = res and c.during @> b.t) as n
              from (select lower(r.during) as t
                    union select lower(a.during) from allocation a where a.reservation_id = res
                    union select upper(a.during) from allocation a where a.reservation_id = res
                    union select lower(c.during) from allocation_cut c where c.reservation_id = res
                    union select upper(c.during) from allocation_cut c where c.reservation_id = res) b
             where r.during @> b.t) p
     where p.n <> r.unit_count
     order by p.t
     limit 1;
    if found then
        raise exception 'reservation % holds % of its % units at %', res, held, r.unit_count, short
            using errcode = 'check_violation', constraint = 'reservation_fully_allocated';
    end if;
end
$$;
