-- The browser's forms are idempotent too: their answers are kept like the API's, and a form
-- posted without JavaScript is answered with a redirect, whose target a replay must repeat.
alter table idempotency_key add column location text check (length(location) <= 2000);
