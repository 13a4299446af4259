-- An endpoint whose deliveries have all failed for the whole retry period (about three
-- days) is disabled: nothing more is sent to it until its owner enables it again. Its
-- deliveries wait, pending, meanwhile.
alter table webhook_endpoint
    add column disabled_at     timestamptz,
    add column disabled_reason text check (length(disabled_reason) <= 1000),
    add constraint webhook_endpoint_disabled_check
        check ((disabled_at is null) = (disabled_reason is null));
