-- A resale listing carries its pool's hardware, so that the offers beside a search are
-- found by model without reading the pools.
--
-- The search page asks for the open listings of a model, for as many GPUs (or kW) as its
-- search; most searches name no place. The model and the unit's size were the pool's, so
-- PostgreSQL read every open listing and hashed it against the model's pools: on the
-- benchmark's generated market (20,000 open listings, 4,000 pools of a model) 7.5 ms on a
-- quiet machine and 14-17 ms on a busy one, and the quarter of the offers queries with no
-- place set the p95 (BENCHMARKS.md). With the hardware on the listing, an index on it
-- gives the model's listings in the order asked for.
--
-- The copy is written from the pool when the listing is made, whatever the insert says,
-- and rewritten on the open listings if the pool's hardware ever changes (the operator's
-- form refuses that; the trigger keeps the copy true should it happen some other way).

alter table resale_listing
    add column kind text,
    add column gpu_model text,
    -- GPUs per node for a GPU pool, kW per block for a power pool.
    add column unit_size bigint;

create function resale_listing_hardware() returns trigger language plpgsql as $$
begin
    select p.kind, p.gpu_model, coalesce(p.gpus_per_node, p.block_kw, 1)
      into new.kind, new.gpu_model, new.unit_size
      from capacity_pool p where p.id = new.pool_id;
    return new;
end $$;

create trigger resale_listing_hardware before insert on resale_listing
    for each row execute function resale_listing_hardware();

create function capacity_pool_hardware_to_listings() returns trigger language plpgsql as $$
begin
    update resale_listing
       set kind = new.kind, gpu_model = new.gpu_model,
           unit_size = coalesce(new.gpus_per_node, new.block_kw, 1)
     where pool_id = new.id and state = 'open';
    return null;
end $$;

create trigger capacity_pool_hardware_to_listings
    after update of kind, gpu_model, gpus_per_node, block_kw on capacity_pool
    for each row
    when ((old.kind, old.gpu_model, old.gpus_per_node, old.block_kw)
          is distinct from (new.kind, new.gpu_model, new.gpus_per_node, new.block_kw))
    execute function capacity_pool_hardware_to_listings();

-- The listings already made, closed ones included (their transition trigger refuses any
-- change to a closed listing; this fills columns it does not guard, so it is paused for
-- the fill only, inside this migration's transaction).
alter table resale_listing disable trigger resale_listing_transition;
update resale_listing l
   set kind = p.kind, gpu_model = p.gpu_model, unit_size = coalesce(p.gpus_per_node, p.block_kw, 1)
  from capacity_pool p
 where p.id = l.pool_id;
alter table resale_listing enable trigger resale_listing_transition;

alter table resale_listing
    alter column kind set not null,
    alter column unit_size set not null,
    add constraint resale_listing_unit_size_check check (unit_size >= 1);

create index resale_listing_open_hardware_idx
    on resale_listing (kind, lower(gpu_model), lower(during)) where state = 'open';
