-- Two no-ops a preempting booking paid for on every call, skipped.
--
-- Measured in the settlement benchmark's preemption run (2026-12-05, pg_stat_statements):
-- a firm booking that must preempt asks choose_free_units for a free unit of a pool whose
-- every unit is busy over the span, and both of its passes walked all of the pool's units
-- (0.23 ms and 0.17 ms per booking on a pool of 64); the credit of each preempted
-- reservation updates its credited total, and the ledger trigger then ran
-- ledger_settle_reservation only to find nothing to post (0.12 ms).

-- choose_free_units: when no unit is free over the span at all, locked or not, there is
-- nothing to lock or wait for. One walk without locks, stopping at the first free unit,
-- says so; otherwise the two passes run as before. The rule is unchanged.
create or replace function choose_free_units(pool bigint, span tstzrange, wanted bigint, wait_for_locked boolean)
returns table (unit_id bigint, site_id bigint, pool_id bigint)
language plpgsql
set plan_cache_mode = force_generic_plan
as $$
declare
    unheld bigint[];
begin
    -- Each pass keeps a unit whose next allocation after the span's start (if any) starts
    -- at or after the span's end: free over the span (see 20261214000100's note).
    if not wait_for_locked then
        -- The one-statement booking's pass, one query.
        return query
            select u.id, u.site_id, u.pool_id from capacity_unit u
             where u.pool_id = choose_free_units.pool
               and coalesce((select lower(a.during) from allocation a
                              where a.unit_id = u.id and upper(a.during) > lower(span)
                              order by upper(a.during) limit 1) >= upper(span), true)
             order by u.ordinal
             limit wanted
               for no key update of u skip locked;
        return;
    end if;
    if not exists (select 1 from capacity_unit u
                    where u.pool_id = choose_free_units.pool
                      and coalesce((select lower(a.during) from allocation a
                                     where a.unit_id = u.id and upper(a.during) > lower(span)
                                     order by upper(a.during) limit 1) >= upper(span), true)) then
        return;
    end if;
    select coalesce(array_agg(f.id), '{}') into unheld
      from (select u.id from capacity_unit u
             where u.pool_id = choose_free_units.pool
               and coalesce((select lower(a.during) from allocation a
                              where a.unit_id = u.id and upper(a.during) > lower(span)
                              order by upper(a.during) limit 1) >= upper(span), true)
             order by u.ordinal
             limit wanted
               for no key update of u skip locked) f;
    return query
        select u.id, u.site_id, u.pool_id from capacity_unit u
         where u.id = any(unheld)
         order by u.ordinal;
    if cardinality(unheld) < wanted then
        return query
            select u.id, u.site_id, u.pool_id from capacity_unit u
             where u.pool_id = choose_free_units.pool
               and u.id <> all(unheld)
               and coalesce((select lower(a.during) from allocation a
                              where a.unit_id = u.id and upper(a.during) > lower(span)
                              order by upper(a.during) limit 1) >= upper(span), true)
             order by u.ordinal
             limit wanted - cardinality(unheld)
               for no key update of u;
    end if;
end
$$;

-- The ledger trigger on update fires only when the update can matter to the books. An
-- update that leaves a confirmed reservation confirmed with the same customer, currency,
-- amounts, term and resale origin posts nothing and breaks no rule of reservation_ledger
-- or ledger_settle_reservation: their refusals all need a change of state, of one of
-- these columns, or a cancelled reservation, and their postings a change of state or of
-- the amounts. (A credit, which changes credited_cents, posts through the credit's own
-- trigger.) Keep this condition in step with those two functions.
--
-- A WHEN condition may read OLD only on an update trigger, so the one trigger becomes
-- two; the update's name keeps its place between reservation_ledger and
-- reservation_outbox in the order PostgreSQL fires them (by name).
drop trigger reservation_ledger on reservation;
create trigger reservation_ledger after insert on reservation
    for each row execute function reservation_ledger();
create trigger reservation_ledger_on_update after update on reservation
    for each row
    when (not (old.state = 'confirmed' and new.state = 'confirmed'
               and (old.customer_id, old.currency, old.base_cents, old.discount_cents, old.fee_cents,
                    old.total_cents, old.resale_listing_id, old.during)
                   is not distinct from
                   (new.customer_id, new.currency, new.base_cents, new.discount_cents, new.fee_cents,
                    new.total_cents, new.resale_listing_id, new.during)))
    execute function reservation_ledger();
