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
