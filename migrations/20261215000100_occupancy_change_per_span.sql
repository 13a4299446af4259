-- One occupancy change per stretch of time a statement allocated in, not one spanning all of
-- them. A booking statement now writes up to sixteen bookings at once
-- (reservations::together), whose windows in one pool may lie months apart; one change from
-- the first to the last would have the next refresh of pool_full read every allocation of
-- the pool in between. Overlapping and adjacent allocations still make one change.
create or replace function allocation_occupancy_added() returns trigger
language plpgsql as $$
begin
    insert into pool_occupancy_change (pool_id, during, freed)
    select a.pool_id, span, false
      from (select pool_id, range_agg(during) as spans from added group by pool_id) a
     cross join lateral unnest(a.spans) as span;
    return null;
end
$$;
