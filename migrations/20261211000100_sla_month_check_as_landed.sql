-- The SLA month check, stated again in the form every landed database has.
--
-- Migration 20261204000100_incidents.sql was edited after it was first committed and before
-- it landed (2026-12-02): the check on reservation_credit.sla_month first read
-- `(reason = 'sla') = (sla_month is not null)` and was relaxed to
-- `sla_month is null or reason = 'sla'`. Landed migrations are never changed, so the file
-- keeps its landed form; a database migrated from the first commit in between would still
-- hold the stricter check. This puts the landed form in place on any database, and changes
-- nothing where it is already there.
alter table reservation_credit drop constraint reservation_credit_sla_month_check;
alter table reservation_credit add constraint reservation_credit_sla_month_check
    check (sla_month is null or reason = 'sla');
