//! Quotes and reservations: what customers' schedulers do.

use super::{ApiResult, Body, Caller, Id, Page, Params};
use crate::http::AppState;
use app::account::Scope;
use app::booking::{BookingRequest, Quote, Reservation};
use app::pricing::DEFAULT_PLATFORM_FEE_BP;
use app::services::reservations;
use axum::{extract::State, http::StatusCode, Json};
use chrono::{DateTime, Utc};

pub async fn quote(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(req): Body<BookingRequest>,
) -> ApiResult<Json<Quote>> {
    p.require(Scope::Read)?;
    Ok(Json(
        reservations::quote(&s.db, &req, DEFAULT_PLATFORM_FEE_BP, Utc::now()).await?,
    ))
}

pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(req): Body<BookingRequest>,
) -> ApiResult<(StatusCode, Json<Reservation>)> {
    let me = p.customer(Scope::Reserve)?;
    let r = reservations::reserve(&s.db, me, &req, DEFAULT_PLATFORM_FEE_BP, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[derive(serde::Serialize)]
pub struct ReservationList {
    pub reservations: Vec<Reservation>,
}

pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(page): Params<Page>,
) -> ApiResult<Json<ReservationList>> {
    let me = p.customer(Scope::Read)?;
    let list = reservations::list(&s.db, me, page.before, page.limit()?, Utc::now()).await?;
    Ok(Json(ReservationList { reservations: list }))
}

pub async fn get(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<Reservation>> {
    let me = p.customer(Scope::Read)?;
    Ok(Json(reservations::get(&s.db, me, id, Utc::now()).await?))
}

pub async fn cancel(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<Reservation>> {
    let me = p.customer(Scope::Reserve)?;
    Ok(Json(reservations::cancel(&s.db, me, id, Utc::now()).await?))
}

#[derive(serde::Deserialize)]
pub struct Extend {
    pub end: DateTime<Utc>,
}

pub async fn extend(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
    Body(body): Body<Extend>,
) -> ApiResult<Json<Reservation>> {
    let me = p.customer(Scope::Reserve)?;
    Ok(Json(
        reservations::extend(&s.db, me, id, body.end, DEFAULT_PLATFORM_FEE_BP, Utc::now()).await?,
    ))
}
