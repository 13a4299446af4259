-- Settlement needs: the refund locked when a reservation is cancelled, and indexes for
-- the market search and the customer's reservation list.

alter table reservation
    add column refund_cents bigint,
    add constraint reservation_refund_check check (
        (state = 'cancelled' and refund_cents between 0 and total_cents)
        or (state <> 'cancelled' and refund_cents is null)
    );

create index capacity_pool_search_idx on capacity_pool (kind, price_cents) where listed;
create index reservation_pool_during_idx on reservation using gist (pool_id, during);
