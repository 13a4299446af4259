//! Recording a grid curtailment event on an operator's site: the shed plan (`crate::grid`)
//! over the site's load as its allocations hold it, then the interrupted unit-hours cut
//! and credited, the event and its webhooks written, all in one transaction. Scoped to the
//! operator: another operator's site or event is "not found".

use super::error::ServiceError;
use super::reservations::reallocation::{self, CreditReason};
use super::{audit, pools};
use crate::grid::{
    self, DemandResponseMonth, GridEvent, GridEventDetail, Holding, ShedUnit, SiteLoad,
};
use crate::power;
use crate::utilization::format_watts;
use crate::window::HourWindow;
use chrono::{DateTime, Duration, Utc};
use sqlx::{PgConnection, PgPool};

/// The longest event a program calls (ERCOT's ERS runs up to 12 hours; a day covers the
/// rest with room).
pub const MAX_EVENT_HOURS: i64 = 72;
/// How far ahead an event may be recorded.
pub const MAX_DAYS_AHEAD: i64 = 365;
/// The highest payment rate taken: far above any program's cap (ERCOT's is $5,000/MWh).
pub const MAX_CENTS_PER_MWH: i64 = 10_000_000;

/// What an operator records.
#[derive(Clone, Debug)]
pub struct NewGridEvent {
    pub program: String,
    pub window: HourWindow,
    pub shed_kw: i64,
    pub payment_cents_per_mwh: Option<i64>,
}

fn check(e: &NewGridEvent, interconnect_kw: i64, now: DateTime<Utc>) -> Result<(), ServiceError> {
    let program = e.program.trim();
    if program.is_empty() {
        return Err(ServiceError::invalid(
            "program",
            "name the program that called the event, e.g. ERCOT ERS or 4CP",
        ));
    }
    if program.chars().count() > 80 {
        return Err(ServiceError::invalid(
            "program",
            "keep the program's name under 80 characters",
        ));
    }
    if e.window.start() < crate::window::floor_hour(now) {
        return Err(ServiceError::invalid(
            "start",
            "an event starts this hour or later; hours already past cannot be shed",
        ));
    }
    if e.window.start() > now + Duration::days(MAX_DAYS_AHEAD) {
        return Err(ServiceError::invalid(
            "start",
            format!("record events at most {MAX_DAYS_AHEAD} days ahead"),
        ));
    }
    if e.window.hours() > MAX_EVENT_HOURS {
        return Err(ServiceError::invalid(
            "end",
            format!("an event lasts at most {MAX_EVENT_HOURS} hours"),
        ));
    }
    if e.shed_kw < 1 || e.shed_kw > interconnect_kw {
        return Err(ServiceError::invalid(
            "shed_kw",
            format!("shed between 1 kW and the site's interconnect, {interconnect_kw} kW"),
        ));
    }
    if matches!(e.payment_cents_per_mwh, Some(c) if !(0..=MAX_CENTS_PER_MWH).contains(&c)) {
        return Err(ServiceError::invalid(
            "payment_cents_per_mwh",
            "a payment per MWh is between $0 and $100,000",
        ));
    }
    Ok(())
}

/// The site's interconnect and mining fleet, locked so that two events on one site are
/// planned one after the other.
async fn site_load(
    conn: &mut PgConnection,
    operator_id: i64,
    site_id: i64,
) -> Result<(SiteLoad, f64), ServiceError> {
    let s = sqlx::query!(
        r#"select interconnect_kw, pue, hashrate_th, fleet_efficiency_j_th
           from site where id = $1 and operator_id = $2 for no key update"#,
        site_id,
        operator_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ServiceError::NotFound("site"))?;
    // J/TH is watts per TH/s: the fleet's draw at full hashrate.
    let fleet_w = (s.hashrate_th as f64 * s.fleet_efficiency_j_th.unwrap_or(0.0)).round() as i64;
    Ok((
        SiteLoad {
            interconnect_w: i64::from(s.interconnect_kw) * 1000,
            fleet_w,
        },
        s.pue,
    ))
}

/// Every allocation on the site's units over the event's hours, with its load: the
/// interruptible reservations' (locked first, as a cancellation locks them, so their
/// allocations stay as read) and the firm load beside them.
///
/// Both reads go pool by pool through `pool_allocations`, the one read of a pool's window
/// and its indexes; the reservations to lock are found through their allocations, since no
/// index on `reservation` leads with the site. `offset 0` keeps each pool's read its own:
/// flattened, the planner read the window across every pool and joined the site's pools to
/// it afterwards. On the benchmark's generated market (1,000,000 allocations and as many
/// reservations), one site and a 24-hour window: the allocations' read took 453 ms
/// flattened and 0.4 ms pool by pool (482 ms as one site-wide read, as before); the lock
/// read took 273 ms as a scan of every reservation, and 2 ms now (a 30-day window).
async fn holdings(
    conn: &mut PgConnection,
    site_id: i64,
    window: &HourWindow,
    pue: f64,
) -> Result<Vec<Holding>, ServiceError> {
    let range = pools::to_range(window);
    sqlx::query!(
        "select id from reservation
         where id in (select a.reservation_id
                        from capacity_pool p
                       cross join lateral (select * from pool_allocations(p.id, $2) offset 0) a
                       where p.site_id = $1)
           and tier = 'interruptible' and state = 'confirmed'
         order by id for update",
        site_id,
        range
    )
    .fetch_all(&mut *conn)
    .await?;
    let rows = sqlx::query!(
        r#"select a.reservation_id as "reservation_id!", a.unit_id as "unit_id!",
                  r.tier = 'interruptible' and r.state = 'confirmed' as "interruptible!",
                  r.unit_price_cents, r.created_at,
                  greatest(lower(a.during), lower($2::tstzrange)) as "start!",
                  least(upper(a.during), upper($2::tstzrange)) as "end!",
                  p.kind, p.node_power_w, p.block_kw
           from capacity_pool p
           cross join lateral (select * from pool_allocations(p.id, $2) offset 0) a
           join reservation r on r.id = a.reservation_id
           where p.site_id = $1 and a.reservation_id is not null"#,
        site_id,
        range
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Holding {
            reservation_id: r.reservation_id,
            unit_id: r.unit_id,
            interruptible: r.interruptible,
            unit_price_cents: r.unit_price_cents,
            booked_at: r.created_at,
            start: r.start,
            end: r.end,
            watts: power::unit_firm_w(&r.kind, r.node_power_w, r.block_kw, pue),
        })
        .collect())
}

/// Records a curtailment event on the operator's site and carries out its shed plan:
/// mining first, then interruptible reservations (cut for the hours needed and credited at
/// the price they paid), never firm ones. Refused, with the numbers, when mining and
/// interruptible load cannot shed what is asked in some hour; nothing is written then.
pub async fn record(
    db: &PgPool,
    operator_id: i64,
    site_id: i64,
    e: &NewGridEvent,
    now: DateTime<Utc>,
) -> Result<GridEvent, ServiceError> {
    let id = super::reservations::retrying(|| async {
        let mut tx = db.begin().await.map_err(super::reservations::raw)?;
        let id = record_in(&mut tx, operator_id, site_id, e, now).await?;
        tx.commit().await.map_err(super::reservations::raw)?;
        Ok(id)
    })
    .await?;
    summary(db, operator_id, id).await
}

/// [`record`] inside the caller's transaction (the demo data records a past event as it
/// was recorded then, with `now` before its start); the event's id.
pub async fn record_in(
    conn: &mut PgConnection,
    operator_id: i64,
    site_id: i64,
    e: &NewGridEvent,
    now: DateTime<Utc>,
) -> Result<i64, ServiceError> {
    let (site, pue) = site_load(conn, operator_id, site_id).await?;
    check(e, site.interconnect_w / 1000, now)?;
    let held = holdings(conn, site_id, &e.window, pue).await?;
    let plan = grid::plan(
        site,
        e.shed_kw * 1000,
        e.window.start(),
        e.window.end(),
        &held,
    )
    .map_err(|s| {
        ServiceError::invalid(
            "shed_kw",
            format!(
                "the site cannot shed {} at {} without touching firm AI load: mining runs {} then and interruptible AI load {}, at most {} together ({} is firm and is never shed)",
                format_watts(s.asked_w),
                s.at.format("%Y-%m-%d %H:%M UTC"),
                format_watts(s.mining_w),
                format_watts(s.interruptible_w),
                format_watts(s.sheddable_w()),
                format_watts(s.firm_w),
            ),
        )
    })?;
    let program = e.program.trim();
    let id = sqlx::query_scalar!(
        r#"insert into grid_event (site_id, program, during, shed_kw, payment_cents_per_mwh,
                                   mining_shed_kw, created_by)
           values ($1, $2, $3, $4, $5, $6, $7) returning id"#,
        site_id,
        program,
        pools::to_range(&e.window),
        e.shed_kw,
        e.payment_cents_per_mwh,
        (plan.mining_shed_w() + 999) / 1000,
        audit::current_ids().0
    )
    .fetch_one(&mut *conn)
    .await?;
    // Unit-hours lost per reservation: one credit each, whatever the number of its cuts.
    let mut lost: std::collections::BTreeMap<i64, i64> = Default::default();
    for c in &plan.cuts {
        let piece = HourWindow::new(c.start, c.end)?;
        sqlx::query!(
            "select grid_event_cut($1, $2, $3, $4, $5)",
            id,
            c.reservation_id,
            c.unit_id,
            pools::to_range(&piece),
            c.watts
        )
        .execute(&mut *conn)
        .await
        .map_err(super::reservations::raw)?;
        *lost.entry(c.reservation_id).or_default() += piece.hours();
    }
    let memo = format!(
        "{program} grid event, {} to {}",
        e.window.start().format("%Y-%m-%d %H:%M"),
        e.window.end().format("%Y-%m-%d %H:%M UTC")
    );
    for (&reservation_id, &hours) in &lost {
        let credited = reallocation::credit_hours(
            conn,
            reservation_id,
            hours,
            CreditReason::Curtailed,
            &memo,
            now,
        )
        .await?;
        if let Some(c) = credited {
            sqlx::query!(
                "insert into grid_event_credit (grid_event_id, credit_id) values ($1, $2)",
                id,
                c.credit_id
            )
            .execute(&mut *conn)
            .await?;
        }
    }
    sqlx::query!("select emit_grid_event($1)", id)
        .execute(&mut *conn)
        .await?;
    audit::note(
        conn,
        operator_id,
        "grid_event.created",
        ("grid_event", id),
        serde_json::json!({
            "site_id": site_id, "program": program, "start": e.window.start(),
            "end": e.window.end(), "shed_kw": e.shed_kw,
            "reservations_interrupted": lost.len(),
        }),
    )
    .await?;
    Ok(id)
}

/// The operator's events on a site, the latest recorded first: at most `limit`, before
/// the event with id `before_id` when given (the API's cursor).
pub async fn list(
    db: &PgPool,
    operator_id: i64,
    site_id: i64,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<GridEvent>, ServiceError> {
    let rows = summaries(db, operator_id, Some(site_id), None, before_id, limit).await?;
    if rows.is_empty() {
        // An empty list of someone else's site would say the site exists.
        sqlx::query_scalar!(
            "select id from site where id = $1 and operator_id = $2",
            site_id,
            operator_id
        )
        .fetch_optional(db)
        .await?
        .ok_or(ServiceError::NotFound("site"))?;
    }
    Ok(rows)
}

/// One of the operator's events.
async fn summary(db: &PgPool, operator_id: i64, id: i64) -> Result<GridEvent, ServiceError> {
    summaries(db, operator_id, None, Some(id), None, 1)
        .await?
        .pop()
        .ok_or(ServiceError::NotFound("grid event"))
}

/// The one query shape for events with what they shed and credited: the operator's, on
/// `site_id` or every site, the one with `id` or all, those before `before_id`; the latest
/// recorded first, at most `limit`.
async fn summaries(
    db: &PgPool,
    operator_id: i64,
    site_id: Option<i64>,
    id: Option<i64>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<GridEvent>, ServiceError> {
    Ok(sqlx::query_as!(
        GridEvent,
        r#"select e.id as "id!", e.site_id as "site_id!", e.program as "program!",
                  e.start as "start!", e."end" as "end!", e.shed_kw as "shed_kw!",
                  e.payment_cents_per_mwh, e.mining_shed_kw as "mining_shed_kw!",
                  e.interruptible_shed_kw as "interruptible_shed_kw!",
                  e.reservations_interrupted as "reservations_interrupted!",
                  e.unit_hours_lost as "unit_hours_lost!", e.credited_cents as "credited_cents!",
                  e.created_at as "created_at!"
           from grid_event_summary e join site s on s.id = e.site_id
           where s.operator_id = $1 and ($2::bigint is null or e.site_id = $2)
             and ($3::bigint is null or e.id = $3) and ($4::bigint is null or e.id < $4)
           order by e.id desc limit $5"#,
        operator_id,
        site_id,
        id,
        before_id,
        limit.clamp(1, 500)
    )
    .fetch_all(db)
    .await?)
}

/// One of the operator's events with the units it took.
pub async fn get(db: &PgPool, operator_id: i64, id: i64) -> Result<GridEventDetail, ServiceError> {
    let event = summary(db, operator_id, id).await?;
    let shed = sqlx::query_as!(
        ShedUnit,
        r#"select g.reservation_id, o.name as customer, r.pool_id, p.name as pool_name,
                  u.ordinal::bigint as "unit!", lower(g.during) as "start!", upper(g.during) as "end!",
                  g.watts
           from grid_event_shed g
           join reservation r on r.id = g.reservation_id
           join organization o on o.id = r.customer_id
           join capacity_pool p on p.id = r.pool_id
           join capacity_unit u on u.id = g.unit_id
           where g.grid_event_id = $1
           order by lower(g.during), g.reservation_id, u.ordinal"#,
        id
    )
    .fetch_all(db)
    .await?;
    Ok(GridEventDetail { event, shed })
}

/// Demand response per site and month, latest first: what the events' programs pay beside
/// the credits their curtailments gave.
pub async fn demand_response(
    db: &PgPool,
    operator_id: i64,
) -> Result<Vec<DemandResponseMonth>, ServiceError> {
    let rows = sqlx::query!(
        r#"select e.site_id as "site_id!", s.name as site_name,
                  date_trunc('month', e.start, 'UTC') as "month!",
                  count(*) as "events!",
                  sum(e.shed_kw * extract(epoch from e."end" - e.start) / 3600)::bigint as "kwh!",
                  array_agg(e.shed_kw) as "shed_kw!", array_agg((extract(epoch from e."end" - e.start) / 3600)::bigint) as "hours!",
                  array_agg(coalesce(e.payment_cents_per_mwh, 0)) as "rates!",
                  sum(e.credited_cents)::bigint as "credits!"
           from grid_event_summary e join site s on s.id = e.site_id
           where s.operator_id = $1
           group by 1, 2, 3
           order by 3 desc, 2"#,
        operator_id
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DemandResponseMonth {
            site_id: r.site_id,
            site_name: r.site_name,
            month: r.month,
            events: r.events,
            kwh_shed: r.kwh,
            // Each event rounds its own payment, as the program pays it.
            revenue_cents: r
                .shed_kw
                .iter()
                .zip(&r.hours)
                .zip(&r.rates)
                .map(|((&kw, &h), &rate)| grid::demand_response_cents(kw, h, rate))
                .sum(),
            credits_cents: r.credits,
        })
        .collect())
}
