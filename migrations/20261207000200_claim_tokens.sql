-- Each claim's own random token: its request's answer is recorded, or the claim released,
-- only by the claim that holds it now. So a claim taken over from a process taken for dead
-- is not overwritten by that process, and a claim whose own insert may or may not have
-- committed (the database failed over under it) can be released later without touching a
-- newer claim of the same key.
alter table idempotency_key add column claim_token bigint;
