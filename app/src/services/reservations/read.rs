//! Reading reservations: one row shape ([`Row`]), one conversion to what the doors show, and
//! the shown state from the database's `reservation_state_at`, its one definition.

use crate::booking::{Reservation, ReservationCredit, ReservationDetail, ReservationHolding, Tier};
use crate::services::error::ServiceError;
use crate::services::pools;
use crate::window::ReservationState;
use chrono::{DateTime, Utc};
use sqlx::postgres::types::PgRange;
use sqlx::{PgConnection, PgPool};

/// A reservation as stored, with its pool's name and the state it shows at the time read.
/// Every query that returns reservations selects these columns.
pub(super) struct Row {
    pub id: i64,
    pub pool_id: i64,
    pub pool_name: String,
    pub site_id: i64,
    pub customer_id: i64,
    pub unit_count: i32,
    pub during: PgRange<DateTime<Utc>>,
    pub shown_state: String,
    pub tier: String,
    pub currency: String,
    pub unit_price_cents: i64,
    pub base_cents: i64,
    pub discount_cents: i64,
    pub fee_cents: i64,
    pub total_cents: i64,
    pub refund_cents: Option<i64>,
    pub credited_cents: i64,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub held_until: Option<DateTime<Utc>>,
    pub resale_listing_id: Option<i64>,
    pub forward_delivery_at: Option<DateTime<Utc>>,
    pub forward_late_credit_bp: Option<i32>,
    pub forward_late_credit_cents_per_unit_day: Option<i64>,
    pub forward_walk_away_at: Option<DateTime<Utc>>,
}

impl Row {
    pub(super) fn shown(self) -> Result<Reservation, ServiceError> {
        let corrupt = || {
            tracing::error!(
                reservation = self.id,
                "a reservation row the app cannot read"
            );
            ServiceError::NotFound("reservation")
        };
        let (start, end) = pools::from_range(&self.during).ok_or_else(corrupt)?;
        let state = ReservationState::from_shown(&self.shown_state).ok_or_else(corrupt)?;
        let tier = Tier::parse(&self.tier).ok_or_else(corrupt)?;
        Ok(Reservation {
            id: self.id,
            pool_id: self.pool_id,
            pool_name: self.pool_name,
            site_id: self.site_id,
            customer_id: self.customer_id,
            units: i64::from(self.unit_count),
            start,
            end,
            state,
            tier,
            currency: self.currency,
            unit_price_cents: self.unit_price_cents,
            base_cents: self.base_cents,
            discount_cents: self.discount_cents,
            fee_cents: self.fee_cents,
            total_cents: self.total_cents,
            refund_cents: self.refund_cents,
            credited_cents: self.credited_cents,
            created_at: self.created_at,
            cancelled_at: self.cancelled_at,
            held_until: self.held_until,
            resale_listing_id: self.resale_listing_id,
            forward: crate::forward::ForwardTerms::from_columns(
                self.forward_delivery_at,
                self.forward_late_credit_bp,
                self.forward_late_credit_cents_per_unit_day,
                self.forward_walk_away_at,
            ),
        })
    }
}

/// One of the customer's reservations; another organization's is "not found".
pub async fn get(
    db: &PgPool,
    customer_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    let mut conn = db.acquire().await?;
    one(&mut conn, customer_id, id, now).await
}

/// The same, on the caller's connection (inside its transaction).
pub(super) async fn one(
    conn: &mut PgConnection,
    customer_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    sqlx::query_as!(
        Row,
        r#"select r.id, r.pool_id, p.name as pool_name, r.site_id, r.customer_id, r.unit_count, r.during,
                  reservation_state_at(r.state, r.during, $3) as "shown_state!", r.tier, r.currency,
                  r.unit_price_cents, r.base_cents, r.discount_cents, r.fee_cents, r.total_cents,
                  r.refund_cents, r.credited_cents, r.created_at, r.cancelled_at, r.held_until,
                  r.resale_listing_id, r.forward_delivery_at, r.forward_late_credit_bp,
                  r.forward_late_credit_cents_per_unit_day, r.forward_walk_away_at
             from reservation r join capacity_pool p on p.id = r.pool_id
            where r.id = $1 and r.customer_id = $2"#,
        id,
        customer_id,
        now
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ServiceError::NotFound("reservation"))?
    .shown()
}

/// Locks one of the customer's reservations for a change (lock order everywhere: pool, then
/// reservation).
pub(super) async fn lock(
    conn: &mut PgConnection,
    customer_id: i64,
    id: i64,
) -> Result<(), ServiceError> {
    sqlx::query_scalar!(
        "select id from reservation where id = $1 and customer_id = $2 for update",
        id,
        customer_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ServiceError::NotFound("reservation"))?;
    Ok(())
}

/// The customer's reservations, newest first, `limit` at a time after `before_id`.
pub async fn list(
    db: &PgPool,
    customer_id: i64,
    before_id: Option<i64>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Reservation>, ServiceError> {
    let limit = limit.clamp(1, 500);
    sqlx::query_as!(
        Row,
        r#"select r.id, r.pool_id, p.name as pool_name, r.site_id, r.customer_id, r.unit_count, r.during,
                  reservation_state_at(r.state, r.during, $4) as "shown_state!", r.tier, r.currency,
                  r.unit_price_cents, r.base_cents, r.discount_cents, r.fee_cents, r.total_cents,
                  r.refund_cents, r.credited_cents, r.created_at, r.cancelled_at, r.held_until,
                  r.resale_listing_id, r.forward_delivery_at, r.forward_late_credit_bp,
                  r.forward_late_credit_cents_per_unit_day, r.forward_walk_away_at
             from reservation r join capacity_pool p on p.id = r.pool_id
            where r.customer_id = $1 and ($2::bigint is null or r.id < $2)
            order by r.id desc
            limit $3"#,
        customer_id,
        before_id,
        limit,
        now
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Row::shown)
    .collect()
}

/// The reservation with the units that serve it and its credits, for its page.
pub async fn detail(
    db: &PgPool,
    customer_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<ReservationDetail, ServiceError> {
    let reservation = get(db, customer_id, id, now).await?;
    Ok(ReservationDetail {
        holdings: holdings(db, customer_id, id).await?,
        credits: credits(db, customer_id, id).await?,
        reservation,
    })
}

/// Which units serve the reservation over which hours, by unit number then time: one line
/// per allocation, so a move shows as two lines on two units.
pub async fn holdings(
    db: &PgPool,
    customer_id: i64,
    id: i64,
) -> Result<Vec<ReservationHolding>, ServiceError> {
    let rows = sqlx::query!(
        r#"select u.ordinal, a.during
             from allocation a
             join capacity_unit u on u.id = a.unit_id
             join reservation r on r.id = a.reservation_id
            where a.reservation_id = $1 and r.customer_id = $2
            order by u.ordinal, lower(a.during)"#,
        id,
        customer_id
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let (start, end) = pools::from_range(&r.during)?;
            Some(ReservationHolding {
                unit: i64::from(r.ordinal),
                start,
                end,
            })
        })
        .collect())
}

/// The credits given on the reservation, oldest first, with the hours each one pays for.
pub async fn credits(
    db: &PgPool,
    customer_id: i64,
    id: i64,
) -> Result<Vec<ReservationCredit>, ServiceError> {
    Ok(sqlx::query_as!(
        ReservationCredit,
        r#"select c.id, c.amount_cents, c.unit_hours, c.reason, coalesce(c.memo, '') as "memo!",
                  c.effective_at
             from reservation_credit c join reservation r on r.id = c.reservation_id
            where c.reservation_id = $1 and r.customer_id = $2
            order by c.id"#,
        id,
        customer_id
    )
    .fetch_all(db)
    .await?)
}
