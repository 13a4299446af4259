//! Incidents for operators (record units that are down, resolve, read), and for customers
//! the offers of capacity at another site that an incident without a spare makes.

use super::page::{Page, PageParams};
use super::problem::Problem;
use super::{ApiResult, Body, Caller, Id, Params};
use crate::state::AppState;
use app::account::Scope;
use app::booking::Reservation;
use app::incidents::{Incident, IncidentDetail, IncidentOffer};
use app::services::incidents::{self, NewIncident};
use axum::{extract::State, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

/// Units of a pool that are down.
#[derive(Deserialize, ToSchema)]
pub struct NewIncidentBody {
    /// The unit numbers that are down (1 to the pool's unit count), at least one.
    pub units: Vec<i64>,
    /// What went wrong; 1 to 500 characters.
    pub cause: String,
    /// When the units went down: now or in the last 72 hours. Default: now.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// When they will be back, on the hour, if known. Without it the incident lasts until
    /// it is resolved.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
}

/// Records an incident on units of one of the organization's pools and heals at once, in
/// one transaction: each hit reservation's hours from the next whole hour move to a spare
/// unit of the pool (interruptible capacity is preempted for a firm reservation if it must,
/// never firm); hours already past, and hours with no spare, are credited at the price paid,
/// with the pool's SLA credit when a month's delivered share falls under its promise; a
/// firm reservation without a spare is offered equivalent capacity at another of the
/// operator's sites. The units are out of sale until the incident ends. Webhooks:
/// `incident.opened`, `reservation.moved`, `reservation.credited`. Send an
/// `Idempotency-Key` to retry safely.
#[utoipa::path(post, path = "/api/v1/pools/{id}/incidents", tag = "operations", request_body = NewIncidentBody,
    params(("id" = i64, Path, description = "Pool id", minimum = 1),
           ("Idempotency-Key" = Option<String>, Header, description = "A unique key per intended incident; a retry with the same key and body replays the first answer", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    security(("api_key" = ["operate"])),
    responses(
        (status = 201, description = "The incident with what it moved and credited", body = Incident),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such pool of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The same Idempotency-Key is still running, or a race lost on every retry", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid units, cause, start or end", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(pool_id): Id,
    Body(b): Body<NewIncidentBody>,
) -> ApiResult<(StatusCode, Json<Incident>)> {
    let me = p.operator(Scope::Operate)?;
    let now = Utc::now();
    let incident = incidents::open(
        &s.db,
        me,
        pool_id,
        &NewIncident {
            units: b.units,
            cause: b.cause,
            started_at: b.started_at.unwrap_or(now),
            ends_at: b.ends_at,
        },
        now,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(incident)))
}

/// The pool's incidents, the latest first.
#[utoipa::path(get, path = "/api/v1/pools/{id}/incidents", tag = "operations",
    params(("id" = i64, Path, description = "Pool id", minimum = 1), PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of incidents", body = Page<Incident>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such pool of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(pool_id): Id,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Incident>>> {
    let me = p.operator(Scope::Read)?;
    let limit = page.limit()?;
    let items = incidents::list(&s.db, me, pool_id, page.position()?, limit + 1).await?;
    Ok(Json(Page::of(items, limit, |i| i.id)))
}

/// One incident with every reservation piece it hit: moved (to which unit), lost
/// (credited), or a hold released.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "operations",
    params(("id" = i64, Path, description = "Incident id", minimum = 1)),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The incident and its hits", body = IncidentDetail),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such incident on this organization's pools", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<IncidentDetail>> {
    let me = p.operator(Scope::Read)?;
    Ok(Json(incidents::get(&s.db, me, id).await?))
}

/// Resolves an open incident: its units return to sale from the next whole hour. Resolving
/// it again answers it unchanged. Webhook: `incident.resolved`.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/resolve", tag = "operations",
    params(("id" = i64, Path, description = "Incident id", minimum = 1)),
    security(("api_key" = ["operate"])),
    responses(
        (status = 200, description = "The resolved incident", body = Incident),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such incident on this organization's pools", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A race lost on every retry", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn resolve(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<Incident>> {
    let me = p.operator(Scope::Operate)?;
    Ok(Json(incidents::resolve(&s.db, me, id, Utc::now()).await?))
}

/// The organization's offers of capacity at another site, made when an incident left a
/// reservation without a spare, the latest first.
#[utoipa::path(get, path = "/api/v1/incident-offers", tag = "reservations",
    params(PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of offers", body = Page<IncidentOffer>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn offers(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<IncidentOffer>>> {
    let me = p.customer(Scope::Read)?;
    let limit = page.limit()?;
    let items = incidents::offers(&s.db, me, None, page.position()?, limit + 1).await?;
    Ok(Json(Page::of(items, limit, |o| o.id)))
}

/// Accepts an offer before its deadline: its capacity is booked for the hours still ahead
/// (from the next whole hour) at the offer's price, pro rata, as a new firm reservation
/// charged like any other. The credit for the lost hours stands. Accepting again answers
/// the same reservation.
#[utoipa::path(post, path = "/api/v1/incident-offers/{id}/accept", tag = "reservations",
    params(("id" = i64, Path, description = "Offer id", minimum = 1)),
    security(("api_key" = ["reserve"])),
    responses(
        (status = 200, description = "The reservation at the other site", body = Reservation),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `reserve` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such offer of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Declined, expired, its hours past, or the capacity booked meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn accept(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<Reservation>> {
    let me = p.customer(Scope::Reserve)?;
    Ok(Json(incidents::accept(&s.db, me, id, Utc::now()).await?))
}

/// Declines an offer; the credit for the lost hours stands. Declining again answers it
/// unchanged.
#[utoipa::path(post, path = "/api/v1/incident-offers/{id}/decline", tag = "reservations",
    params(("id" = i64, Path, description = "Offer id", minimum = 1)),
    security(("api_key" = ["reserve"])),
    responses(
        (status = 200, description = "The declined offer", body = IncidentOffer),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `reserve` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such offer of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Accepted or expired", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn decline(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<IncidentOffer>> {
    let me = p.customer(Scope::Reserve)?;
    Ok(Json(incidents::decline(&s.db, me, id).await?))
}
