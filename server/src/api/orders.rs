//! Standing orders for customers: leave a search open until capacity that matches it
//! appears, read what became of it, cancel it.

use super::page::{Page, PageParams};
use super::problem::Problem;
use super::{ApiResult, Body, Caller, Id, Params};
use crate::state::AppState;
use app::account::Scope;
use app::orders::{NewOrder, StandingOrder};
use app::services::orders;
use axum::{extract::State, http::StatusCode, Json};
use chrono::Utc;

/// Leaves a standing order: every server process searches the market for it every few
/// seconds and books the first match (cheapest total first) that starts between
/// `earliest_start` and `latest_start` and costs at most `max_total_cents`, through the same
/// booking path as `POST /api/v1/reservations`, at most once. Orders are filled in the
/// order they were created. `order.filled` (with the reservation) or `order.expired` tells
/// the customer. Send an `Idempotency-Key` to retry safely.
#[utoipa::path(post, path = "/api/v1/orders", tag = "reservations", request_body = NewOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "A unique key per intended order; a retry with the same key and body replays the first answer", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    security(("api_key" = ["reserve"])),
    responses(
        (status = 201, description = "The order, open", body = StandingOrder),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `reserve`, or the organization is not a customer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The organization has the most open orders it may, or the Idempotency-Key is in use", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid order (quantity, hours, starts, expiry, total)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(order): Body<NewOrder>,
) -> ApiResult<(StatusCode, Json<StandingOrder>)> {
    let me = p.customer(Scope::Reserve)?;
    let made = orders::create(&s.db, me, &order, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// The organization's standing orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "reservations", params(PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of orders", body = Page<StandingOrder>),
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
) -> ApiResult<Json<Page<StandingOrder>>> {
    let me = p.customer(Scope::Read)?;
    let limit = page.limit()?;
    let items = orders::list(&s.db, me, page.position()?, limit + 1).await?;
    Ok(Json(Page::of(items, limit, |o| o.id)))
}

/// One of the organization's standing orders.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "reservations",
    params(("id" = i64, Path, description = "Order id", minimum = 1)),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The order", body = StandingOrder),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<StandingOrder>> {
    let me = p.customer(Scope::Read)?;
    Ok(Json(orders::get(&s.db, me, id).await?))
}

/// Cancels an open standing order. One filled meanwhile is not cancelled: the answer is 409
/// with the reservation it made.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "reservations",
    params(("id" = i64, Path, description = "Order id", minimum = 1)),
    security(("api_key" = ["reserve"])),
    responses(
        (status = 200, description = "The cancelled order", body = StandingOrder),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `reserve` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Filled, expired or cancelled already", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<StandingOrder>> {
    let me = p.customer(Scope::Reserve)?;
    Ok(Json(orders::cancel(&s.db, me, id, Utc::now()).await?))
}
