-- Market search filters by GPU model and by place (country, region or grid region) before
-- it looks at availability; these indexes let it start from the few matching rows.

create index capacity_pool_model_price_idx on capacity_pool (lower(gpu_model), price_cents) where listed;
create index site_grid_region_idx on site (lower(grid_region)) where status = 'live';
create index site_region_idx on site (lower(region)) where status = 'live';
create index site_country_idx on site (lower(country)) where status = 'live';
