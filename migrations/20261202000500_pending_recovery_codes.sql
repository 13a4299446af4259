-- Recovery codes are made when two-factor setup begins and shown beside the new secret, so
-- a person without JavaScript sees them before turning it on (a page reload would lose codes
-- shown only in the answer to "turn on"). They are kept as text only until setup is
-- confirmed; then only their hashes remain (`recovery_code`).
alter table app_user add column totp_pending_codes text[]
    check (totp_pending_codes is null or cardinality(totp_pending_codes) = 10);
