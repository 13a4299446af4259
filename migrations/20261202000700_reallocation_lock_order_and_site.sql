-- Three corrections to the re-allocation primitives of 20261202000600:
--
-- 1. Lock order. Cancellation and extension lock the reservation, then its allocations. A
--    cut or a move locked the allocation first and then needed the reservation (its
--    foreign-key check), so a cut racing a cancellation could deadlock. Every primitive now
--    locks the reservation first, as they do.
-- 2. The coverage check after a change to a reservation's allocations is skipped, like the
--    one after an insert, when the reservation row itself was written in the transaction:
--    that row's own deferred check runs at commit on the final state, so an extension of k
--    units no longer checks the reservation k + 1 times.
-- 3. Cuts and credits carry their site, as every site-scoped table does.

create or replace function allocation_take_out(res bigint, unit bigint, piece tstzrange) returns allocation
language plpgsql as $$
declare
    a allocation;
begin
    perform 1 from reservation where id = res for update;
    select * into a from allocation
     where reservation_id = res and unit_id = unit and during @> piece
       for update;
    if not found then
        raise exception 'reservation % does not hold unit % over %', res, unit, piece
            using errcode = 'check_violation', constraint = 'allocation_piece_held';
    end if;
    if a.during = piece then
        delete from allocation where id = a.id;
    elsif lower(a.during) = lower(piece) then
        update allocation set during = tstzrange(upper(piece), upper(a.during)), updated_at = now()
         where id = a.id;
    else
        update allocation set during = tstzrange(lower(a.during), lower(piece)), updated_at = now()
         where id = a.id;
        if upper(piece) < upper(a.during) then
            insert into allocation (site_id, pool_id, unit_id, reservation_id, during)
            values (a.site_id, a.pool_id, a.unit_id, res, tstzrange(upper(piece), upper(a.during)));
        end if;
    end if;
    return a;
end
$$;

-- Whether reservation `res` was written (inserted or updated) by this transaction; its own
-- deferred coverage check then runs at commit.
create function reservation_written_here(res bigint) returns boolean
language sql stable as $$
    select coalesce((select r.xmin::text = pg_current_xact_id()::xid::text
                       from reservation r where r.id = res), false)
$$;

create or replace function check_reservation_fully_allocated() returns trigger
language plpgsql as $$
begin
    if tg_table_name = 'reservation' then
        perform reservation_check_coverage(new.id);
        return null;
    end if;
    if tg_op in ('UPDATE', 'DELETE') and old.reservation_id is not null
       and not reservation_written_here(old.reservation_id) then
        perform reservation_check_coverage(old.reservation_id);
    end if;
    if tg_op = 'INSERT' then
        if new.reservation_id is not null and not reservation_written_here(new.reservation_id) then
            perform reservation_check_coverage(new.reservation_id);
        end if;
    elsif tg_op = 'UPDATE' then
        if new.reservation_id is distinct from old.reservation_id and new.reservation_id is not null
           and not reservation_written_here(new.reservation_id) then
            perform reservation_check_coverage(new.reservation_id);
        end if;
    end if;
    return null;
end
$$;

alter table allocation_cut add column site_id bigint references site (id);
update allocation_cut c set site_id = r.site_id from reservation r where r.id = c.reservation_id;
alter table allocation_cut alter column site_id set not null;

alter table reservation_credit add column site_id bigint references site (id);
update reservation_credit c set site_id = r.site_id from reservation r where r.id = c.reservation_id;
alter table reservation_credit alter column site_id set not null;

-- The site of a cut or a credit is its reservation's.
create function set_site_from_reservation() returns trigger
language plpgsql as $$
begin
    select r.site_id into new.site_id from reservation r where r.id = new.reservation_id;
    return new;
end
$$;

create trigger allocation_cut_site before insert on allocation_cut
    for each row execute function set_site_from_reservation();
create trigger reservation_credit_site before insert on reservation_credit
    for each row execute function set_site_from_reservation();
