-- reservation_ledger now runs for updates only.
--
-- Since 20261220000100 an inserted reservation is settled by the statement trigger
-- reservation_ledger_inserted, so the row function's insert branch could no longer run:
-- only reservation_ledger_on_update calls it. The branch is removed so that the function
-- reads as what it is, the rule for a changed reservation. Its refusals and postings for an
-- update are unchanged (from 20261203000300).
create or replace function reservation_ledger() returns trigger
language plpgsql as $$
begin
    if new.resale_listing_id is not null then
        if new.state is distinct from old.state
           or (new.customer_id, new.currency, new.total_cents, new.during, new.resale_listing_id)
              is distinct from (old.customer_id, old.currency, old.total_cents, old.during, old.resale_listing_id) then
            raise exception 'reservation % was bought on resale; a resale is final', new.id
                using errcode = 'restrict_violation', constraint = 'resale_is_final';
        end if;
        return null;
    end if;
    if old.resale_listing_id is distinct from new.resale_listing_id then
        raise exception 'reservation % cannot become a resale', new.id
            using errcode = 'restrict_violation', constraint = 'resale_is_final';
    end if;
    perform ledger_settle_reservation(old, new);
    return null;
end
$$;
