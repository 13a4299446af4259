-- reservation_pool_during_idx served no query (availability reads `allocation`), and every
-- booking paid to maintain it.
drop index reservation_pool_during_idx;
