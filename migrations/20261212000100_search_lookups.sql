-- What market search needs to start from the few matching rows and to rule out the sold-out
-- pools in one lookup instead of one per candidate.

-- The pools full at some instant of a window: search collects them once per query, by this
-- index, and passes over them by a hashed lookup.
create index pool_full_during_idx on pool_full using gist (full_during);

-- Search filters sites by place on any site it sells from, live or being built (forward
-- capacity), so the indexes limited to live sites could not serve it: a place's sites came
-- from reading every site.
drop index site_grid_region_idx;
drop index site_region_idx;
drop index site_country_idx;
create index site_grid_region_idx on site (lower(grid_region));
create index site_region_idx on site (lower(region));
create index site_country_idx on site (lower(country));

-- How many pools of each model there are. Without it the planner guesses a handful for any
-- model, and joins thousands of a popular model's pools to their sites one at a time.
create statistics capacity_pool_model_stats on (lower(gpu_model)) from capacity_pool;
analyze capacity_pool;
analyze site;
