//! Incidents: an operator records units of a pool that are down, and Rigshift heals and
//! credits in the same transaction (PostgreSQL's `incident_heal`: move to a spare, preempt
//! interruptible capacity for firm hours, cut and credit what cannot move, offer capacity
//! at another site). Customers answer offers; a job in every server process ends incidents
//! at their given end, keeps open-ended ones covering the pool's sale windows, expires
//! offers and refreshes each pool's reliability score.
//!
//! Scoped: an operator sees only its pools' incidents, a customer only its offers and the
//! moves of its reservations; anything else is "not found".

use super::error::{self, Refusal, ServiceError};
use super::reservations::{raw, retrying};
use super::{audit, pools};
use crate::booking::Reservation;
use crate::incidents::{Incident, IncidentDetail, IncidentHit, IncidentOffer, MAX_HOURS_BACK};
use crate::window::{ceil_hour, floor_hour};
use chrono::{DateTime, Duration, Utc};
use sqlx::postgres::types::PgRange;
use sqlx::{PgConnection, PgPool};

/// What an operator records.
#[derive(Clone, Debug)]
pub struct NewIncident {
    /// Unit numbers (1 to the pool's unit count).
    pub units: Vec<i64>,
    pub cause: String,
    pub started_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
}

fn check(n: &NewIncident, unit_count: i64, now: DateTime<Utc>) -> Result<(), ServiceError> {
    let cause = n.cause.trim();
    if cause.is_empty() {
        return Err(ServiceError::invalid(
            "cause",
            "say what went wrong, e.g. a failed power supply",
        ));
    }
    if cause.chars().count() > 500 {
        return Err(ServiceError::invalid(
            "cause",
            "keep the cause under 500 characters",
        ));
    }
    if n.units.is_empty() {
        return Err(ServiceError::invalid(
            "units",
            "name at least one unit that is down, by its number",
        ));
    }
    if n.units.len() > 1000 {
        return Err(ServiceError::invalid(
            "units",
            "record at most 1,000 units in one incident",
        ));
    }
    if let Some(bad) = n.units.iter().find(|u| !(1..=unit_count).contains(*u)) {
        return Err(ServiceError::invalid(
            "units",
            format!("unit {bad} is not in this pool: its units are numbered 1 to {unit_count}"),
        ));
    }
    if n.started_at > now {
        return Err(ServiceError::invalid(
            "started_at",
            "an incident starts now or in the past; plan maintenance ahead with a blackout",
        ));
    }
    if n.started_at < now - Duration::hours(MAX_HOURS_BACK) {
        return Err(ServiceError::invalid(
            "started_at",
            format!("an incident is recorded within {MAX_HOURS_BACK} hours of its start"),
        ));
    }
    if let Some(end) = n.ends_at {
        // Any time a client may send is checked without truncating it.
        if !crate::window::is_whole_hour(end) {
            return Err(ServiceError::invalid(
                "ends_at",
                "give the end on the hour, e.g. 14:00",
            ));
        }
        if end <= now {
            return Err(ServiceError::invalid(
                "ends_at",
                "the end is in the past; leave it blank and resolve the incident instead",
            ));
        }
        if end > now + Duration::days(365) {
            return Err(ServiceError::invalid(
                "ends_at",
                "give an end within a year, or leave it blank until the units are back",
            ));
        }
    }
    Ok(())
}

/// Where an open incident without an end keeps its units out of sale: to the end of the
/// pool's last sale window, and at least to the next whole hour.
async fn open_ended_until(
    conn: &mut PgConnection,
    pool_id: i64,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ServiceError> {
    let last = sqlx::query_scalar!(
        r#"select max(upper(during)) from availability_window where pool_id = $1"#,
        pool_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let next = ceil_hour(now + Duration::seconds(1));
    Ok(last.map_or(next, |l| l.max(next)))
}

/// Records an incident and heals what it hits, in one transaction, tried again when it
/// loses a race (a spare booked meanwhile, a deadlock with a booking or an extension).
pub async fn open(
    db: &PgPool,
    operator_id: i64,
    pool_id: i64,
    n: &NewIncident,
    now: DateTime<Utc>,
) -> Result<Incident, ServiceError> {
    retrying(|| try_open(db, operator_id, pool_id, n, now)).await
}

async fn try_open(
    db: &PgPool,
    operator_id: i64,
    pool_id: i64,
    n: &NewIncident,
    now: DateTime<Utc>,
) -> Result<Incident, ServiceError> {
    let mut tx = db.begin().await?;
    let pool = pools::load(&mut tx, pool_id, false).await?;
    if pool.operator_id != operator_id {
        return Err(ServiceError::NotFound("pool"));
    }
    check(n, pool.unit_count, now)?;
    let start = floor_hour(n.started_at);
    let until = match n.ends_at {
        Some(end) => end,
        None => open_ended_until(&mut tx, pool.id, now).await?,
    };
    let mut units = n.units.clone();
    units.sort_unstable();
    units.dedup();
    let id = sqlx::query_scalar!(
        r#"insert into incident (site_id, pool_id, cause, started_at, ends_at, during)
           values ($1, $2, $3, $4, $5, tstzrange($6, $7)) returning id"#,
        pool.site_id,
        pool.id,
        n.cause.trim(),
        n.started_at,
        n.ends_at,
        start,
        until
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(raw)?;
    sqlx::query!(
        r#"insert into incident_unit (incident_id, unit_id)
           select $1, u.id from capacity_unit u where u.pool_id = $2 and u.ordinal = any($3::int[])"#,
        id,
        pool.id,
        &units.iter().map(|u| *u as i32).collect::<Vec<_>>()
    )
    .execute(&mut *tx)
    .await
    .map_err(raw)?;
    heal(&mut tx, id, start, until, now).await?;
    audit::record(
        &mut tx,
        audit::Event {
            organization_id: Some(operator_id),
            action: "incident.opened",
            object_type: "incident",
            object_id: Some(id),
            detail: serde_json::json!({
                "pool_id": pool.id, "units": units, "cause": n.cause.trim(),
                "started_at": n.started_at, "ends_at": n.ends_at,
            }),
        },
    )
    .await?;
    sqlx::query!("select refresh_pool_reliability($1)", pool.id)
        .fetch_one(&mut *tx)
        .await
        .map_err(raw)?;
    tx.commit().await.map_err(raw)?;
    summary(db, operator_id, id).await
}

/// Heals incident `id` over `[from, to)` (PostgreSQL's `incident_heal`); hours from the next
/// whole hour on may move, earlier ones are lost and credited.
async fn heal(
    conn: &mut PgConnection,
    id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let span = PgRange::from(from..to);
    // The pool's lock first, as an extension takes it before its reservation: healing locks
    // units, then the reservations it hits, while an extension holds its reservation and
    // waits on the units it grows into. Without a common first lock the two can deadlock
    // (the load harness met it at 48 workers).
    sqlx::query!(
        r#"select p.id from capacity_pool p join incident i on i.pool_id = p.id
            where i.id = $1 for no key update of p"#,
        id
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(raw)?;
    sqlx::query!(
        "select * from incident_heal($1, $2, $3)",
        id,
        span,
        ceil_hour(now + Duration::seconds(1))
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(raw)?;
    Ok(())
}

/// Resolves an open incident: its units return to sale from the next whole hour. Resolving
/// a resolved incident changes nothing and answers it as it is.
pub async fn resolve(
    db: &PgPool,
    operator_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Incident, ServiceError> {
    let mut tx = db.begin().await?;
    let owned = sqlx::query_scalar!(
        r#"select i.id from incident i join site s on s.id = i.site_id
           where i.id = $1 and s.operator_id = $2 for update of i"#,
        id,
        operator_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if owned.is_none() {
        return Err(ServiceError::NotFound("incident"));
    }
    let changed = sqlx::query_scalar!(r#"select incident_resolve($1, $2) as "changed!""#, id, now)
        .fetch_one(&mut *tx)
        .await?;
    if changed {
        audit::record(
            &mut tx,
            audit::Event {
                organization_id: Some(operator_id),
                action: "incident.resolved",
                object_type: "incident",
                object_id: Some(id),
                detail: serde_json::json!({ "resolved_at": now }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    summary(db, operator_id, id).await
}

/// One incident of the operator's.
async fn summary(db: &PgPool, operator_id: i64, id: i64) -> Result<Incident, ServiceError> {
    list_where(db, operator_id, None, Some(id), None, 1)
        .await?
        .pop()
        .ok_or(ServiceError::NotFound("incident"))
}

/// A pool's incidents, newest first, `before` an id for the next page.
pub async fn list(
    db: &PgPool,
    operator_id: i64,
    pool_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Incident>, ServiceError> {
    let owned = sqlx::query_scalar!(
        r#"select exists (select 1 from capacity_pool p join site s on s.id = p.site_id
                           where p.id = $1 and s.operator_id = $2) as "owned!""#,
        pool_id,
        operator_id
    )
    .fetch_one(db)
    .await?;
    if !owned {
        return Err(ServiceError::NotFound("pool"));
    }
    list_where(db, operator_id, Some(pool_id), None, before, limit).await
}

async fn list_where(
    db: &PgPool,
    operator_id: i64,
    pool_id: Option<i64>,
    id: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Incident>, ServiceError> {
    Ok(sqlx::query_as!(
        Incident,
        r#"select i.id, i.pool_id, p.name as pool_name, i.site_id, s.name as site_name, i.cause,
                  array(select cu.ordinal::bigint from incident_unit iu join capacity_unit cu on cu.id = iu.unit_id
                         where iu.incident_id = i.id order by cu.ordinal) as "units!",
                  i.started_at, i.ends_at, i.state, i.resolved_at, upper(i.during) as "out_of_sale_until!",
                  coalesce((select sum(range_hours(h.during)) from incident_hit h
                             where h.incident_id = i.id and h.outcome = 'moved'), 0)::bigint as "moved_unit_hours!",
                  coalesce((select sum(range_hours(h.during)) from incident_hit h
                             where h.incident_id = i.id and h.outcome = 'lost'), 0)::bigint as "lost_unit_hours!",
                  coalesce((select sum(c.amount_cents) from incident_credit ic
                             join reservation_credit c on c.id = ic.credit_id
                             where ic.incident_id = i.id), 0)::bigint as "credited_cents!",
                  p.currency,
                  (select count(*) from incident_offer o where o.incident_id = i.id) as "offers!",
                  i.created_at
           from incident i
           join capacity_pool p on p.id = i.pool_id
           join site s on s.id = i.site_id
           where s.operator_id = $1
             and ($2::bigint is null or i.pool_id = $2)
             and ($3::bigint is null or i.id = $3)
             and ($4::bigint is null or i.id < $4)
           order by i.id desc
           limit $5"#,
        operator_id,
        pool_id,
        id,
        before,
        limit
    )
    .fetch_all(db)
    .await?)
}

/// One incident with every piece of a reservation it hit.
pub async fn get(db: &PgPool, operator_id: i64, id: i64) -> Result<IncidentDetail, ServiceError> {
    let incident = summary(db, operator_id, id).await?;
    let hits = hits_where(db, Some(id), None).await?;
    Ok(IncidentDetail { incident, hits })
}

async fn hits_where(
    db: &PgPool,
    incident_id: Option<i64>,
    reservation_id: Option<i64>,
) -> Result<Vec<IncidentHit>, ServiceError> {
    Ok(sqlx::query_as!(
        IncidentHit,
        r#"select h.incident_id, h.reservation_id, fu.ordinal::bigint as "unit!", h.outcome,
                  tu.ordinal::bigint as "to_unit?", lower(h.during) as "start!", upper(h.during) as "end!",
                  i.cause
           from incident_hit h
           join incident i on i.id = h.incident_id
           join capacity_unit fu on fu.id = h.unit_id
           left join capacity_unit tu on tu.id = h.to_unit_id
           where ($1::bigint is null or h.incident_id = $1)
             and ($2::bigint is null or h.reservation_id = $2)
           order by h.id"#,
        incident_id,
        reservation_id
    )
    .fetch_all(db)
    .await?)
}

/// What incidents did to a reservation (the caller has checked the reservation is the
/// viewer's).
pub async fn hits_of_reservation(
    db: &PgPool,
    reservation_id: i64,
) -> Result<Vec<IncidentHit>, ServiceError> {
    hits_where(db, None, Some(reservation_id)).await
}

/// A customer's offers, newest first (of one reservation, when given).
pub async fn offers(
    db: &PgPool,
    customer_id: i64,
    reservation_id: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<IncidentOffer>, ServiceError> {
    Ok(sqlx::query_as!(
        IncidentOffer,
        r#"select o.id, o.incident_id, o.reservation_id, o.pool_id, p.name as pool_name, s.name as site_name,
                  o.unit_count::bigint as "units!", lower(o.during) as "start!", upper(o.during) as "end!",
                  o.currency, o.total_cents, o.expires_at,
                  case when o.state = 'open' and o.expires_at <= now() then 'expired' else o.state end as "state!",
                  o.accepted_reservation_id
           from incident_offer o
           join capacity_pool p on p.id = o.pool_id
           join site s on s.id = p.site_id
           where o.customer_id = $1
             and ($2::bigint is null or o.reservation_id = $2)
             and ($3::bigint is null or o.id < $3)
           order by o.id desc
           limit $4"#,
        customer_id,
        reservation_id,
        before,
        limit
    )
    .fetch_all(db)
    .await?)
}

async fn offer(db: &PgPool, customer_id: i64, id: i64) -> Result<IncidentOffer, ServiceError> {
    // The customer's newest offer up to `id` is that offer, when it is theirs.
    offers(db, customer_id, None, Some(id.saturating_add(1)), 1)
        .await?
        .pop()
        .filter(|o| o.id == id)
        .ok_or(ServiceError::NotFound("offer"))
}

/// Accepts an offer: books its capacity for the hours still ahead at its price, charged as
/// any reservation is. Accepting an accepted offer answers the same reservation.
pub async fn accept(
    db: &PgPool,
    customer_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    let (user, key) = audit::current_ids();
    // A refusal comes out of the retry loop as a value, so that a closed offer can be
    // answered with its state.
    let res = retrying(|| async {
        match sqlx::query_scalar!(
            r#"select incident_offer_accept($1, $2, $3, $4) as "id!""#,
            id,
            customer_id,
            user,
            key
        )
        .fetch_one(db)
        .await
        {
            Ok(res) => Ok(Ok(res)),
            Err(e) => match error::refusal(&e) {
                Some(r @ (Refusal::OfferMissing | Refusal::OfferClosed | Refusal::OfferTaken)) => {
                    Ok(Err(r))
                }
                _ => Err(raw(e)),
            },
        }
    })
    .await?;
    let res = match res {
        Ok(res) => res,
        Err(Refusal::OfferClosed) => {
            let o = offer(db, customer_id, id).await?;
            return Err(ServiceError::conflict(format!(
                "this offer is {}; it can no longer be accepted",
                o.state
            )));
        }
        Err(Refusal::OfferTaken) => {
            return Err(ServiceError::conflict(
                "that capacity was booked by someone else meanwhile; the credit for your lost hours stands",
            ))
        }
        Err(_) => return Err(ServiceError::NotFound("offer")),
    };
    super::reservations::get(db, customer_id, res, now).await
}

/// Declines an open offer (the credit stands). Declining a declined offer changes nothing.
pub async fn decline(
    db: &PgPool,
    customer_id: i64,
    id: i64,
) -> Result<IncidentOffer, ServiceError> {
    let o = offer(db, customer_id, id).await?;
    match o.state.as_str() {
        "declined" => return Ok(o),
        "open" => {}
        other => {
            return Err(ServiceError::conflict(format!(
                "this offer is {other}; there is nothing to decline"
            )))
        }
    }
    let mut tx = db.begin().await?;
    let changed = sqlx::query!(
        r#"update incident_offer set state = 'declined', closed_at = now()
           where id = $1 and customer_id = $2 and state = 'open' and expires_at > now()"#,
        id,
        customer_id
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 1 {
        audit::record(
            &mut tx,
            audit::Event {
                organization_id: Some(customer_id),
                action: "incident_offer.declined",
                object_type: "incident_offer",
                object_id: Some(id),
                detail: serde_json::json!({ "reservation_id": o.reservation_id }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    let o = offer(db, customer_id, id).await?;
    if o.state != "declined" {
        return Err(ServiceError::conflict(format!(
            "this offer is {}; there is nothing to decline",
            o.state
        )));
    }
    Ok(o)
}

/// What one run of the job did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    pub ended: i64,
    pub extended: i64,
    pub offers_expired: i64,
}

/// The job, run every few seconds by every server process: incidents past their given end
/// are resolved; open-ended ones are extended over sale windows opened since (healing what
/// was booked there meanwhile); offers past their deadline expire. Each incident is taken
/// under its row lock (`skip locked`), so two processes never handle one twice.
pub async fn tick(db: &PgPool, now: DateTime<Utc>) -> Result<Tick, ServiceError> {
    let mut t = Tick::default();
    let ended = sqlx::query!(
        r#"select i.id, s.operator_id from incident i join site s on s.id = i.site_id
           where i.state = 'open' and i.ends_at <= $1 order by i.id limit 100"#,
        now
    )
    .fetch_all(db)
    .await?;
    for e in ended {
        let mut tx = db.begin().await?;
        let locked = sqlx::query_scalar!(
            "select id from incident where id = $1 and state = 'open' for update skip locked",
            e.id
        )
        .fetch_optional(&mut *tx)
        .await?;
        if locked.is_none() {
            continue;
        }
        sqlx::query!(
            "select incident_resolve(id, ends_at) from incident where id = $1",
            e.id
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query!(
            r#"insert into audit_event (organization_id, actor_label, action, object_type, object_id, detail)
               values ($1, 'system', 'incident.resolved', 'incident', $2, '{"at": "its given end"}')"#,
            e.operator_id,
            e.id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        t.ended += 1;
    }
    let open_ended = sqlx::query!(
        r#"select i.id, i.pool_id, upper(i.during) as "until!" from incident i
           where i.state = 'open' and i.ends_at is null order by i.id limit 100"#
    )
    .fetch_all(db)
    .await?;
    for o in open_ended {
        // Most rounds find nothing to extend: no transaction for those.
        let target = open_ended_until(&mut *db.acquire().await?, o.pool_id, now).await?;
        if target <= o.until {
            continue;
        }
        let mut tx = db.begin().await?;
        let locked = sqlx::query_scalar!(
            r#"select upper(during) as "until!" from incident
               where id = $1 and state = 'open' for update skip locked"#,
            o.id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(until) = locked else { continue };
        if target <= until {
            continue;
        }
        heal(&mut tx, o.id, until, target, now).await?;
        sqlx::query!(
            "update incident set during = tstzrange(lower(during), $2) where id = $1",
            o.id,
            target
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        t.extended += 1;
    }
    t.offers_expired = sqlx::query!(
        r#"update incident_offer set state = 'expired', closed_at = expires_at
           where state = 'open' and expires_at <= $1"#,
        now
    )
    .execute(db)
    .await?
    .rows_affected() as i64;
    Ok(t)
}

/// Recomputes every pool's reliability score (a job, every minute).
pub async fn refresh_reliability(db: &PgPool) -> Result<i64, ServiceError> {
    Ok(
        sqlx::query_scalar!(r#"select refresh_pool_reliability() as "n!""#)
            .fetch_one(db)
            .await? as i64,
    )
}
