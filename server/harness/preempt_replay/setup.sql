-- The settlement benchmark's preemption pool, for preempt_replay.sh: 64 nodes, every 4-hour
-- block of the next 4,000 hours full, 32 nodes held by one firm booking and 32 by
-- interruptible bookings of one node and one block each. Runs on a database with every
-- migration applied and nothing else (the ids the replay's statements use are the first
-- ones: pool 1, customer 2).
insert into organization (name, kind) values ('replay operator', 'operator'), ('replay customer', 'customer');
insert into site (operator_id, name, country, region, grid_region, energy_source, interconnect_kw, pue, cooling, status)
select (select id from organization where name='replay operator'), 'bench', 'US', 'Texas', 'ERCOT', 'wind', 5000000, 1.2, 'air', 'live';
insert into capacity_pool (site_id, kind, name, unit_count, gpu_model, gpus_per_node, gpu_memory_gb, interconnect, node_power_w, price_cents, max_term_hours, interruptible_price_cents)
select s.id, 'gpu', 'preemption pool', 64, 'H100 SXM', 8, 80, 'infiniband', 10000, 200, 8760, 120 from site s;
insert into capacity_unit (site_id, pool_id, ordinal, label)
select p.site_id, p.id, n, 'node-' || n from capacity_pool p cross join generate_series(1, 64) n;
create table replay_t0 as select date_trunc('hour', now()) + interval '2 hours' as t0;
insert into availability_window (site_id, pool_id, during)
select site_id, id, tstzrange((select t0 from replay_t0), (select t0 from replay_t0) + interval '3650 days') from capacity_pool;
begin;
with r as (insert into reservation (site_id, pool_id, customer_id, unit_count, during, state, currency, unit_price_cents, base_cents, discount_cents, fee_cents, total_cents, tier)
select p.site_id, p.id, (select id from organization where name='replay customer'), 32, tstzrange(t0, t0 + interval '4000 hours'), 'confirmed', 'USD', 200, 32*8*200*4000, 0, 0, 32*8*200*4000, 'firm' from capacity_pool p, replay_t0 returning *)
insert into allocation (site_id, pool_id, unit_id, reservation_id, during)
select r.site_id, r.pool_id, u.id, r.id, r.during from r join capacity_unit u on u.pool_id = r.pool_id and u.ordinal <= 32;
commit;
begin;
with slots as (
   select b, k, tstzrange(t0 + interval '4 hours' * b, t0 + interval '4 hours' * (b + 1)) as during
     from replay_t0, generate_series(0, 999) b, generate_series(1, 32) k order by b, k),
r as (
   insert into reservation (site_id, pool_id, customer_id, unit_count, during, state, currency,
                            unit_price_cents, base_cents, discount_cents, fee_cents, total_cents, tier)
   select p.site_id, p.id, (select id from organization where name='replay customer'), 1, during, 'confirmed', 'USD', 120, 3840, 0, 0, 3840, 'interruptible' from slots, capacity_pool p
   returning id, during, site_id, pool_id)
insert into allocation (site_id, pool_id, unit_id, reservation_id, during)
select x.site_id, x.pool_id, u.id, x.id, x.during
 from (select id, during, site_id, pool_id, row_number() over (partition by during order by id) as k from r) x
 join capacity_unit u on u.pool_id = x.pool_id and u.ordinal = 32 + x.k;
commit;
analyze;
