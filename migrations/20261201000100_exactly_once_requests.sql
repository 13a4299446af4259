-- A reservation made through the API with an Idempotency-Key carries that key, unique per
-- customer organization, written by the same statement that books it. A retry after a lost
-- answer then finds what the first attempt committed, even when the server never heard
-- the commit's acknowledgement (the connection broke after COMMIT was sent), instead of
-- booking again or being refused by its own first attempt.
alter table reservation add column request_key text
    check (request_key is null or length(request_key) between 1 and 200);

create unique index reservation_request_key on reservation (customer_id, request_key)
    where request_key is not null;

-- An idempotent request whose answer is a 5xx after its statements may have reached the
-- database (the connection broke mid-request) ends `unknown`: its retries are told to look
-- before they try again, rather than run it a second time or wait for it.
alter table idempotency_key drop constraint idempotency_key_state_check;
alter table idempotency_key add constraint idempotency_key_state_check
    check (state in ('running', 'done', 'unknown'));

-- The state a reservation shows at `at`: a confirmed one is active inside its window and
-- completed after it. The one definition for every query that shows or filters by it.
create function reservation_state_at(state text, during tstzrange, at timestamptz) returns text
language sql immutable parallel safe as $$
    select case when state = 'confirmed' and upper(during) <= at then 'completed'
                when state = 'confirmed' and lower(during) <= at then 'active'
                else state end
$$;

-- The reservations on an operator's capacity that match the bookings filter (each argument
-- null for "any"): the one filter behind the bookings list, its totals and its CSV. A plain
-- SQL function, so PostgreSQL inlines it into each query.
create function operator_bookings(operator bigint, site bigint, pool bigint, shown_state text,
                                  ends_after timestamptz, starts_before timestamptz)
returns setof reservation
language sql stable as $$
    select r.* from reservation r
    join site s on s.id = r.site_id
    where s.operator_id = operator
      and (site is null or r.site_id = site)
      and (pool is null or r.pool_id = pool)
      and (shown_state is null or reservation_state_at(r.state, r.during, now()) = shown_state)
      and (ends_after is null or upper(r.during) > ends_after)
      and (starts_before is null or lower(r.during) < starts_before)
$$;
