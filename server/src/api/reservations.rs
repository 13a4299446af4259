//! Quotes and reservations: what customers' schedulers do.

use super::idempotency;
use super::page::{Page, PageParams};
use super::problem::Problem;
use super::{ApiResult, Body, Caller, Id, Params};
use crate::state::AppState;
use app::account::Scope;
use app::booking::{
    BookingRequest, ExtendTo, HoldRequest, Quote, Reservation, ReservationCredit,
    ReservationHolding,
};
use app::services::reservations;
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    Json,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

/// The exact price of a request, with its breakdown; holds no capacity (to hold it at this
/// price, `POST /api/v1/holds`).
#[utoipa::path(post, path = "/api/v1/quotes", tag = "reservations", request_body = BookingRequest,
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The quote", body = Quote),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such listed pool", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (window, quantity, terms)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn quote(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(req): Body<BookingRequest>,
) -> ApiResult<Json<Quote>> {
    p.require(Scope::Read)?;
    Ok(Json(
        reservations::quote(&s.db, &req, s.platform_fee.0, Utc::now()).await?,
    ))
}

/// Reserves capacity: settles the request against the pool's availability, all or nothing,
/// at the quoted price. With `agreed_total_cents` (the quote's total) the booking is refused
/// with `price-changed` and the new total when the price moved meanwhile. Send an
/// `Idempotency-Key` to retry safely.
#[utoipa::path(post, path = "/api/v1/reservations", tag = "reservations", request_body = BookingRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "A unique key per intended reservation (at most 200 characters); a retry with the same key and body replays the first answer", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    security(("api_key" = ["reserve"])),
    responses(
        (status = 201, description = "The reservation", body = Reservation),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `reserve`, or the organization is not a customer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such listed pool", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The capacity is taken (with the next start that fits), the price is no longer the agreed total (`price-changed`, with `total_cents`), or the same Idempotency-Key is still running (`idempotency-key-in-use`) or was cut off after it may have taken effect (`idempotency-outcome-unknown`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request, or the Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    headers: HeaderMap,
    Body(req): Body<BookingRequest>,
) -> ApiResult<(StatusCode, Json<Reservation>)> {
    let me = p.customer(Scope::Reserve)?;
    let (fee, now) = (s.platform_fee.0, Utc::now());
    let r = match idempotency::request_key(&headers) {
        // A keyed booking finds its own earlier commit, so running it again is always safe
        // (the idempotency layer knows this route as one that does).
        Some(key) => reservations::reserve_once(&s.db, me, &req, key, fee, now).await?,
        None => reservations::reserve(&s.db, me, &req, fee, now).await?,
    };
    Ok((StatusCode::CREATED, Json(r)))
}

/// Holds capacity at its quoted price for up to 30 minutes (15 by default): the units leave
/// sale at once, and `POST /api/v1/reservations/{id}/confirm` before `held_until` books
/// them at exactly the held total. An unconfirmed hold is released by itself when it
/// expires; `POST /api/v1/reservations/{id}/cancel` releases it sooner. A hold never
/// preempts interruptible capacity. Send an `Idempotency-Key` to retry safely.
#[utoipa::path(post, path = "/api/v1/holds", tag = "reservations", request_body = HoldRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "A unique key per intended hold (at most 200 characters); a retry with the same key and body replays the first answer", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    security(("api_key" = ["reserve"])),
    responses(
        (status = 201, description = "The hold: a reservation in state `held`, with its price and `held_until`", body = Reservation),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `reserve`, or the organization is not a customer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such listed pool", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too few units are free (with the next start that fits), the price is no longer the agreed total (`price-changed`), or the Idempotency-Key is in use", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request, or minutes outside 1 to 30", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn hold(
    State(s): State<AppState>,
    Caller(p): Caller,
    headers: HeaderMap,
    Body(req): Body<HoldRequest>,
) -> ApiResult<(StatusCode, Json<Reservation>)> {
    let me = p.customer(Scope::Reserve)?;
    let key = idempotency::request_key(&headers);
    // A keyed hold finds its own earlier commit, as a keyed reservation does.
    let r = reservations::hold(&s.db, me, &req, key, s.platform_fee.0, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// Confirms a hold: books it at exactly the held total and charges it. Confirming a
/// reservation that is already confirmed returns it unchanged.
#[utoipa::path(post, path = "/api/v1/reservations/{id}/confirm", tag = "reservations",
    params(("id" = i64, Path, description = "Reservation id (the hold's)", minimum = 1)),
    security(("api_key" = ["reserve"])),
    responses(
        (status = 200, description = "The confirmed reservation", body = Reservation),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `reserve` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such reservation of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The hold expired or was released", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn confirm(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<Reservation>> {
    let me = p.customer(Scope::Reserve)?;
    Ok(Json(
        reservations::confirm(&s.db, me, id, Utc::now()).await?,
    ))
}

/// The organization's reservations, newest first.
#[utoipa::path(get, path = "/api/v1/reservations", tag = "reservations", params(PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of reservations", body = Page<Reservation>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Reservation>>> {
    let me = p.customer(Scope::Read)?;
    let limit = page.limit()?;
    let items = reservations::list(&s.db, me, page.position()?, limit + 1, Utc::now()).await?;
    Ok(Json(Page::of(items, limit, |r| r.id)))
}

/// One of the organization's reservations.
#[utoipa::path(get, path = "/api/v1/reservations/{id}", tag = "reservations",
    params(("id" = i64, Path, description = "Reservation id", minimum = 1)),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The reservation", body = Reservation),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such reservation of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<Reservation>> {
    let me = p.customer(Scope::Read)?;
    Ok(Json(reservations::get(&s.db, me, id, Utc::now()).await?))
}

/// The units serving one of the organization's reservations, piece by piece: one per unit
/// over the whole term as booked, more when part of it moved to another unit or ended early.
#[utoipa::path(get, path = "/api/v1/reservations/{id}/units", tag = "reservations",
    params(("id" = i64, Path, description = "Reservation id", minimum = 1)),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The units and their hours, by unit number then time", body = Vec<ReservationHolding>),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such reservation of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn units(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<Vec<ReservationHolding>>> {
    let me = p.customer(Scope::Read)?;
    // "Not found" for another organization's reservation, not an empty list.
    reservations::get(&s.db, me, id, Utc::now()).await?;
    Ok(Json(reservations::holdings(&s.db, me, id).await?))
}

/// The credits given on one of the organization's reservations for hours not delivered,
/// oldest first.
#[utoipa::path(get, path = "/api/v1/reservations/{id}/credits", tag = "reservations",
    params(("id" = i64, Path, description = "Reservation id", minimum = 1)),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The credits", body = Vec<ReservationCredit>),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such reservation of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn credits(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<Vec<ReservationCredit>>> {
    let me = p.customer(Scope::Read)?;
    reservations::get(&s.db, me, id, Utc::now()).await?;
    Ok(Json(reservations::credits(&s.db, me, id).await?))
}

/// Cancels a reservation that has not started; the refund follows the pool's policy. For a
/// hold, releases it (nothing was charged).
#[utoipa::path(post, path = "/api/v1/reservations/{id}/cancel", tag = "reservations",
    params(("id" = i64, Path, description = "Reservation id", minimum = 1)),
    security(("api_key" = ["reserve"])),
    responses(
        (status = 200, description = "The cancelled reservation, with its refund", body = Reservation),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `reserve` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such reservation of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already cancelled or started", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<Reservation>> {
    let me = p.customer(Scope::Reserve)?;
    Ok(Json(reservations::cancel(&s.db, me, id, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Extend {
    /// The new end (RFC 3339, whole hour in UTC), later than the current one.
    pub end: DateTime<Utc>,
}

/// Extends a reservation on the same units, priced at its locked unit price.
#[utoipa::path(post, path = "/api/v1/reservations/{id}/extend", tag = "reservations", request_body = Extend,
    params(("id" = i64, Path, description = "Reservation id", minimum = 1)),
    security(("api_key" = ["reserve"])),
    responses(
        (status = 200, description = "The extended reservation", body = Reservation),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `reserve` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such reservation of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The units are booked or under maintenance after the current end", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid end", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn extend(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
    Body(body): Body<Extend>,
) -> ApiResult<Json<Reservation>> {
    let me = p.customer(Scope::Reserve)?;
    Ok(Json(
        reservations::extend(
            &s.db,
            me,
            id,
            ExtendTo::End(body.end),
            s.platform_fee.0,
            Utc::now(),
        )
        .await?,
    ))
}
