//! Resale: customers list the future part of a reservation, buyers find and buy listings,
//! sellers withdraw what has not sold.

use super::page::{Page, PageParams};
use super::problem::Problem;
use super::{ApiResult, Body, Caller, Id, Params};
use crate::state::AppState;
use app::account::Scope;
use app::booking::Reservation;
use app::market::PoolKind;
use app::pricing::Quantity;
use app::resale::{Listing, NewListing, Purchase, ResaleOffer};
use app::services::error::ServiceError;
use app::services::resale::{self, OfferFilter};
use axum::{extract::State, http::StatusCode, Json};
use chrono::Utc;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OfferParams {
    /// Only this pool's listings.
    #[param(minimum = 1)]
    pub pool_id: Option<i64>,
    /// `gpu` or `power`.
    pub kind: Option<PoolKind>,
    /// e.g. `H100 SXM`.
    pub gpu_model: Option<String>,
    /// Country code, region or grid region.
    pub region: Option<String>,
    /// Part of the energy source.
    pub energy_source: Option<String>,
    /// Listings with at least this many GPUs left (whole nodes).
    #[param(minimum = 1, maximum = 1000000)]
    pub gpus: Option<i64>,
    /// Listings with at least this many kW left (whole blocks).
    #[param(minimum = 1, maximum = 10000000)]
    pub kw: Option<i64>,
    /// At most this many listings (1 to 200; default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// Open resale listings (on sale until their start), soonest first, then cheapest: whole
/// units of a customer's reservation for the listed hours, bought only as listed. A resale
/// is final (it cannot be cancelled or extended).
#[utoipa::path(get, path = "/api/v1/resale-listings", tag = "market", params(OfferParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The open listings", body = Vec<ResaleOffer>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid quantity or limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn offers(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<OfferParams>,
) -> ApiResult<Json<Vec<ResaleOffer>>> {
    p.require(Scope::Read)?;
    if q.pool_id.is_some_and(|id| id < 1) {
        return Err(ServiceError::invalid("pool_id", "a pool id is 1 or more").into());
    }
    let quantity = match (q.gpus, q.kw) {
        (Some(_), Some(_)) => {
            return Err(ServiceError::invalid("gpus", "ask for GPUs or kW, not both").into())
        }
        (Some(n), None) if (1..=1_000_000).contains(&n) => Some(Quantity::Gpus(n)),
        (None, Some(n)) if (1..=10_000_000).contains(&n) => Some(Quantity::Kw(n)),
        (None, None) => None,
        (Some(_), None) => return Err(ServiceError::invalid("gpus", "1 to 1,000,000 GPUs").into()),
        _ => return Err(ServiceError::invalid("kw", "1 to 10,000,000 kW").into()),
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ServiceError::invalid("limit", "limit is between 1 and 200").into());
    }
    let f = OfferFilter {
        pool_id: q.pool_id,
        kind: q.kind,
        gpu_model: q.gpu_model,
        region: q.region,
        energy_source: q.energy_source,
        quantity,
        limit,
    };
    Ok(Json(resale::offers(&s.db, &f, Utc::now()).await?))
}

/// Lists the future part of one of the organization's firm, confirmed reservations for
/// resale: `units` units from `start` (a whole hour, after now) to the reservation's end,
/// at `unit_hour_price_cents` per unit and hour. The listing is on sale until its start;
/// a buyer is charged the price, and the organization credited it less the platform's fee.
/// Send an `Idempotency-Key` to retry safely.
#[utoipa::path(post, path = "/api/v1/resale-listings", tag = "reservations", request_body = NewListing,
    params(("Idempotency-Key" = Option<String>, Header, description = "A unique key per intended listing; a retry with the same key and body replays the first answer", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    security(("api_key" = ["reserve"])),
    responses(
        (status = 201, description = "The listing", body = Listing),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `reserve`, or the organization is not a customer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such reservation of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The reservation cannot be resold (not firm, not confirmed, bought on resale, or the start is outside it)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid start, units or price", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(l): Body<NewListing>,
) -> ApiResult<(StatusCode, Json<Listing>)> {
    let me = p.customer(Scope::Reserve)?;
    let made = resale::list(&s.db, me, &l, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// The organization's own listings, newest first, with what each has sold and brought in.
#[utoipa::path(get, path = "/api/v1/resale-listings/mine", tag = "reservations", params(PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of listings", body = Page<Listing>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mine(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Listing>>> {
    let me = p.customer(Scope::Read)?;
    let limit = page.limit()?;
    let items = resale::mine(&s.db, me, None, page.position()?, limit + 1, Utc::now()).await?;
    Ok(Json(Page::of(items, limit, |l| l.id)))
}

/// Takes one of the organization's open listings off sale; what was sold stays sold.
#[utoipa::path(post, path = "/api/v1/resale-listings/{id}/withdraw", tag = "reservations",
    params(("id" = i64, Path, description = "Listing id", minimum = 1)),
    security(("api_key" = ["reserve"])),
    responses(
        (status = 200, description = "The withdrawn listing", body = Listing),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `reserve` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such listing of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Sold or withdrawn already", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn withdraw(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<Listing>> {
    let me = p.customer(Scope::Reserve)?;
    Ok(Json(resale::withdraw(&s.db, me, id, Utc::now()).await?))
}

/// Buys whole units of an open listing for its listed hours (every unit left when `units`
/// is left out), in one transaction: the unit-hours move to a new reservation of the
/// organization, which is charged the price. A resale is final. Send an `Idempotency-Key`
/// to retry safely.
#[utoipa::path(post, path = "/api/v1/resale-listings/{id}/buy", tag = "reservations", request_body = Purchase,
    params(("id" = i64, Path, description = "Listing id", minimum = 1),
           ("Idempotency-Key" = Option<String>, Header, description = "A unique key per intended purchase; a retry with the same key and body replays the first answer", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    security(("api_key" = ["reserve"])),
    responses(
        (status = 201, description = "The buyer's new reservation", body = Reservation),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `reserve`, or the organization is not a customer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such listing", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Sold, withdrawn, started, too few units left, or the organization's own listing", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid units", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn buy(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
    Body(purchase): Body<Purchase>,
) -> ApiResult<(StatusCode, Json<Reservation>)> {
    let me = p.customer(Scope::Reserve)?;
    let r = resale::buy(&s.db, me, id, purchase.units, s.platform_fee.0, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(r)))
}
