-- All or nothing, enforced by PostgreSQL: when a transaction that created a reservation
-- commits, the reservation (unless cancelled meanwhile) holds exactly as many allocations
-- as units. A partial booking can never be committed, whatever code path writes it.

create function check_reservation_fully_allocated() returns trigger
language plpgsql as $$
declare
    wanted integer;
    current_state text;
    held bigint;
begin
    select r.unit_count, r.state,
           (select count(*) from allocation a where a.reservation_id = r.id)
      into wanted, current_state, held
      from reservation r where r.id = new.id;
    if found and current_state <> 'cancelled' and held <> wanted then
        raise exception 'reservation % holds % of its % units', new.id, held, wanted
            using errcode = 'check_violation', constraint = 'reservation_fully_allocated';
    end if;
    return null;
end
$$;

create constraint trigger reservation_fully_allocated
    after insert on reservation
    deferrable initially deferred
    for each row execute function check_reservation_fully_allocated();
