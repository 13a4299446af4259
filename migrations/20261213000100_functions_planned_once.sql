-- The booking path's helper functions, planned once per connection instead of once per call.
--
-- pg_stat_statements (`track = all`, `track_planning = on`) over the settlement benchmark
-- (BENCHMARKS.md, 2026-12-04) showed about a tenth of the database's time going to
-- planning, most of it for a handful of small statements planned again on every use:
--
-- * SQL-language functions that PostgreSQL cannot inline (a FROM clause, a sub-select, or
--   STRICT over an expression that is not itself strict) parse and plan their body afresh
--   in every transaction that calls them. `audit_actor_label`, in every audited write, was
--   planned 13,056 times for 13,056 calls at 0.5 ms each; `reservation_written_here`, in the
--   allocation check, 15,684 times; `is_hour_range`, in eleven tables' CHECK constraints,
--   31,370 times; `unit_covered` and `unit_preemptable`, on the preemption path, on every
--   call. As PL/pgSQL functions their statements are prepared once per connection;
--   `is_hour_range`, non-strict with a pre-parsed body, is inlined into the constraints.
-- * PL/pgSQL functions' queries kept being planned for each call's values, because the
--   plan for any value looked a hair more expensive: the ledger balance check (112,760
--   plans for 143,049 calls), the allocation coverage check, the free-unit chooser, and on
--   the preemption path the choice of the unit to preempt (2.8 ms of planning per call)
--   and the checks of the unit. Each has one sensible plan whatever the values (an index
--   lookup by transaction, by reservation, by pool in unit order, by unit and span), so
--   they now keep the one plan.
--
-- Every function keeps its rule exactly: same arguments, same answers, NULLs included.

-- Non-strict so that PostgreSQL can inline it; a NULL range gives NULL as before (every
-- term is NULL), which a CHECK constraint accepts as it did.
create or replace function is_hour_range(r tstzrange) returns boolean
language sql immutable
return not isempty(r)
       and lower_inc(r) and not upper_inc(r)
       and not lower_inf(r) and not upper_inf(r)
       and date_trunc('hour', lower(r), 'UTC') = lower(r)
       and date_trunc('hour', upper(r), 'UTC') = upper(r);

create or replace function audit_actor_label(user_id bigint, key_id bigint) returns text
language plpgsql stable as $$
declare
    label text;
begin
    -- Each lookup runs only with an id: a query planned for a NULL id finds nothing at no
    -- cost, and PostgreSQL would then plan the query afresh for every value.
    if user_id is not null then
        select u.display_name || ' <' || u.email || '>' into label
          from app_user u where u.id = audit_actor_label.user_id;
    end if;
    if label is null and key_id is not null then
        select 'API key rsk_' || k.prefix || ' (' || k.name || ')' into label
          from api_key k where k.id = audit_actor_label.key_id;
    end if;
    return coalesce(label, 'system');
end
$$;

create or replace function reservation_written_here(res bigint) returns boolean
language plpgsql stable as $$
begin
    return coalesce((select r.xmin::text = pg_current_xact_id()::xid::text
                       from reservation r where r.id = res), false);
end
$$;

create or replace function unit_covered(unit bigint, span tstzrange) returns boolean
language plpgsql stable as $$
begin
    return (select coalesce(range_agg(a.during), '{}'::tstzmultirange) @> span
              from allocation a
             where a.unit_id = unit and a.during && span);
end
$$;

create or replace function unit_preemptable(unit bigint, span tstzrange, cut_from timestamptz) returns boolean
language plpgsql stable as $$
begin
    return (select coalesce(bool_and(r.tier is not distinct from 'interruptible'
                                     and greatest(lower(a.during), lower(span)) >= cut_from), false)
              from allocation a
              left join reservation r on r.id = a.reservation_id
             where a.unit_id = unit and a.during && span);
end
$$;

alter function ledger_check_balanced() set plan_cache_mode = force_generic_plan;
alter function reservation_check_coverage(bigint) set plan_cache_mode = force_generic_plan;
alter function choose_free_units(bigint, tstzrange, bigint, boolean) set plan_cache_mode = force_generic_plan;
alter function unit_covered(bigint, tstzrange) set plan_cache_mode = force_generic_plan;
alter function unit_preemptable(bigint, tstzrange, timestamptz) set plan_cache_mode = force_generic_plan;
-- The unit to preempt (preemption_candidates, inlined into its loop) and the cut itself.
alter function preempt_into(bigint, tstzrange, bigint, timestamptz, bigint) set plan_cache_mode = force_generic_plan;
alter function preempt_unit(bigint, tstzrange, timestamptz) set plan_cache_mode = force_generic_plan;
