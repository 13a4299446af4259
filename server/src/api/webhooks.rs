//! Webhook endpoints and their deliveries.

use super::page::{Page, PageParams};
use super::problem::Problem;
use super::{ApiResult, Body, Caller, Id, Params};
use crate::state::AppState;
use app::account::Scope;
use app::services::webhooks;
use app::webhook::{CreatedWebhook, Delivery, Webhook};
use axum::{extract::State, http::StatusCode, Json};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewWebhook {
    /// Where to POST events: an https:// URL on a public address (http:// and private
    /// addresses only where the server allows them).
    pub url: String,
    /// Any of `reservation.created`, `reservation.cancelled`, `reservation.started`,
    /// `reservation.completed`, `reservation.preempted`, `blackout.created`,
    /// `capacity.changed`, `grid_event.created`.
    pub events: Vec<String>,
}

/// The organization's webhook endpoints, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", params(PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of endpoints", body = Page<Webhook>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Webhook>>> {
    p.require(Scope::Read)?;
    let limit = page.limit()?;
    let items = webhooks::list(&s.db, p.organization_id, page.position()?, limit + 1).await?;
    Ok(Json(Page::of(items, limit, |w| w.id)))
}

/// Registers an endpoint for some events. Its signing secret is in this answer only.
/// Needs `reserve` or `operate` (a key that may change something may subscribe to changes).
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    params(("Idempotency-Key" = Option<String>, Header, description = "A unique key per intended endpoint", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    security(("api_key" = ["reserve"]), ("api_key" = ["operate"])),
    responses(
        (status = 201, description = "The endpoint and its secret", body = CreatedWebhook),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key has neither `reserve` nor `operate`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too many endpoints, or the same Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid URL or events, or the URL's host is (or resolves to) a private or reserved address", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(b): Body<NewWebhook>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    if !p.allows(Scope::Reserve) && !p.allows(Scope::Operate) {
        p.require(Scope::Operate)?;
    }
    let made = webhooks::create(
        &s.db,
        p.organization_id,
        &b.url,
        &b.events,
        s.security.allow_private_webhooks,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// Deletes an endpoint; its pending deliveries are dropped.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id", minimum = 1)),
    security(("api_key" = ["reserve"]), ("api_key" = ["operate"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key has neither `reserve` nor `operate`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    if !p.allows(Scope::Reserve) && !p.allows(Scope::Operate) {
        p.require(Scope::Operate)?;
    }
    webhooks::delete(&s.db, p.organization_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enables an endpoint that was disabled after its deliveries failed for about three days;
/// its waiting deliveries go out again at once, each with a fresh set of retries.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/enable", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id", minimum = 1)),
    security(("api_key" = ["reserve"]), ("api_key" = ["operate"])),
    responses(
        (status = 204, description = "Enabled (or it was not disabled)"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key has neither `reserve` nor `operate`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn enable(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    if !p.allows(Scope::Reserve) && !p.allows(Scope::Operate) {
        p.require(Scope::Operate)?;
    }
    webhooks::enable(&s.db, p.organization_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deliveries to one endpoint, newest first, each with its attempts.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id", minimum = 1), PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of deliveries", body = Page<Delivery>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn deliveries(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Delivery>>> {
    p.require(Scope::Read)?;
    let limit = page.limit()?;
    let items = webhooks::deliveries(
        &s.db,
        p.organization_id,
        Some(id),
        page.position()?,
        limit + 1,
    )
    .await?;
    Ok(Json(Page::of(items, limit, |d| d.id)))
}
