//! The organization, and what operators' inventory systems do: sites, pools, blackouts,
//! and the bookings on their capacity.

use super::page::{Page, PageParams};
use super::problem::Problem;
use super::{ApiResult, Body, Caller, Id, Params};
use crate::state::AppState;
use app::account::{OrgKind, Scope};
use app::operations::{Booking, OperatorBlackout, OperatorSite};
use app::services::blackouts::{self, BlackoutUnits};
use app::services::catalog::{self, PoolInput, SiteInput};
use app::services::error::ServiceError;
use app::services::operations::{self, PoolScope};
use app::services::principal::Door;
use app::window::HourWindow;
use axum::{extract::State, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Organization {
    pub id: i64,
    pub name: String,
    pub kind: OrgKind,
    /// The calling key's scopes.
    pub scopes: Vec<Scope>,
}

/// The calling organization and the key's scopes.
#[utoipa::path(get, path = "/api/v1/organization", tag = "organization",
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The organization", body = Organization),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No `read` scope, or the organization is suspended", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn organization(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> ApiResult<Json<Organization>> {
    p.require(Scope::Read)?;
    let name = app::services::accounts::organization_name(&s.db, p.organization_id).await?;
    let scopes = match &p.door {
        Door::ApiKey { scopes, .. } => scopes.clone(),
        Door::Session { .. } => Scope::ALL.to_vec(),
    };
    Ok(Json(Organization {
        id: p.organization_id,
        name,
        kind: p.kind,
        scopes,
    }))
}

/// The operator's sites, newest first.
#[utoipa::path(get, path = "/api/v1/sites", tag = "operations", params(PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of sites", body = Page<OperatorSite>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_sites(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<OperatorSite>>> {
    let me = p.operator(Scope::Read)?;
    let limit = page.limit()?;
    let items = operations::sites(&s.db, me, page.position()?, limit + 1).await?;
    Ok(Json(Page::of(items, limit, |x| x.id)))
}

/// One of the operator's sites.
#[utoipa::path(get, path = "/api/v1/sites/{id}", tag = "operations",
    params(("id" = i64, Path, description = "Site id", minimum = 1)),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The site", body = OperatorSite),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_site(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<OperatorSite>> {
    let me = p.operator(Scope::Read)?;
    Ok(Json(operations::site(&s.db, me, id).await?))
}

/// A site's bridge from mining to AI, or none when it is live and sells nothing forward.
#[derive(Serialize, ToSchema)]
pub struct SiteBridge {
    pub site_id: i64,
    pub bridge: Option<app::bridge::Bridge>,
}

/// One of the operator's sites converting from mining to AI: mining revenue until the hall's
/// delivery, the forward AI revenue contracted after it, the firm AI load over time against
/// the interconnect (each pool from its delivery) and the share of the hall's first 90 days
/// pre-sold.
#[utoipa::path(get, path = "/api/v1/sites/{id}/bridge", tag = "operations",
    params(("id" = i64, Path, description = "Site id", minimum = 1)),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The site's bridge (null when it has none)", body = SiteBridge),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn site_bridge(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<SiteBridge>> {
    let me = p.operator(Scope::Read)?;
    let bridge = app::services::bridge::site(&s.db, me, id, Utc::now()).await?;
    Ok(Json(SiteBridge {
        site_id: id,
        bridge,
    }))
}

/// Lists a new site. Send an `Idempotency-Key` to retry safely.
#[utoipa::path(post, path = "/api/v1/sites", tag = "operations", request_body = SiteInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "A unique key per intended site; a retry with the same key and body replays the first answer", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    security(("api_key" = ["operate"])),
    responses(
        (status = 201, description = "The new site", body = OperatorSite),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The same Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid site, or the Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_site(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(input): Body<SiteInput>,
) -> ApiResult<(StatusCode, Json<OperatorSite>)> {
    let me = p.operator(Scope::Operate)?;
    let id = catalog::create_site(&s.db, me, &input).await?;
    Ok((
        StatusCode::CREATED,
        Json(operations::site(&s.db, me, id).await?),
    ))
}

/// Replaces a site's details. Lowering its interconnect below the listed firm load is refused.
#[utoipa::path(put, path = "/api/v1/sites/{id}", tag = "operations", request_body = SiteInput,
    params(("id" = i64, Path, description = "Site id", minimum = 1)),
    security(("api_key" = ["operate"])),
    responses(
        (status = 200, description = "The updated site", body = OperatorSite),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid site", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_site(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
    Body(input): Body<SiteInput>,
) -> ApiResult<Json<OperatorSite>> {
    let me = p.operator(Scope::Operate)?;
    catalog::update_site(&s.db, me, id, &input).await?;
    Ok(Json(operations::site(&s.db, me, id).await?))
}

#[derive(Serialize, ToSchema)]
pub struct Created {
    pub id: i64,
}

/// A pool to list, and optionally the window it goes on sale for at once.
#[derive(Deserialize, ToSchema)]
pub struct NewPool {
    #[serde(flatten)]
    pub pool: PoolInput,
    /// Opens the pool for sale over this window in the same transaction as the listing
    /// (the browser's form does the same); without it, open windows later with
    /// `POST /api/v1/pools/{id}/windows`.
    pub on_sale: Option<NewWindow>,
}

/// Lists a capacity pool (GPU nodes or power blocks) on one of the operator's sites, and
/// optionally puts it on sale; more firm load than the interconnect carries is refused.
#[utoipa::path(post, path = "/api/v1/sites/{id}/pools", tag = "operations", request_body = NewPool,
    params(("id" = i64, Path, description = "Site id", minimum = 1),
           ("Idempotency-Key" = Option<String>, Header, description = "A unique key per intended pool", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    security(("api_key" = ["operate"])),
    responses(
        (status = 201, description = "The new pool's id", body = Created),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The same Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid pool or sale window, or over the interconnect", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_pool(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(site_id): Id,
    Body(input): Body<NewPool>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let me = p.operator(Scope::Operate)?;
    let on_sale = input
        .on_sale
        .map(|w| HourWindow::new(w.start, w.end))
        .transpose()
        .map_err(ServiceError::from)?;
    let id = catalog::create_pool(&s.db, me, site_id, &input.pool, on_sale.as_ref()).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// Changes a pool's name, price, terms, discounts and cancellation policy (its hardware and
/// size stay as listed). Moving a forward pool's delivery later shifts the reservations the
/// new date passes by the delay, whole (each customer gets `reservation.delayed`); their
/// contracts keep the delivery they were sold on, so late credits still count from it.
#[utoipa::path(put, path = "/api/v1/pools/{id}", tag = "operations", request_body = PoolInput,
    params(("id" = i64, Path, description = "Pool id", minimum = 1)),
    security(("api_key" = ["operate"])),
    responses(
        (status = 200, description = "The pool's id and the reservations a later delivery shifted", body = PoolUpdated),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such pool of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A later delivery would shift a reservation into hours already sold or blocked on its units, or one with hours taken or on resale; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid pool, or a change of hardware or size", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_pool(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
    Body(input): Body<PoolInput>,
) -> ApiResult<Json<PoolUpdated>> {
    let me = p.operator(Scope::Operate)?;
    let delayed_reservations = catalog::update_pool(&s.db, me, id, &input).await?;
    Ok(Json(PoolUpdated {
        id,
        delayed_reservations,
    }))
}

/// A pool's terms changed.
#[derive(Serialize, ToSchema)]
pub struct PoolUpdated {
    pub id: i64,
    /// Reservations a later delivery shifted (each customer got `reservation.delayed`).
    pub delayed_reservations: i64,
}

/// Upcoming maintenance on the operator's pools, newest first.
#[utoipa::path(get, path = "/api/v1/blackouts", tag = "operations", params(PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of blackouts", body = Page<OperatorBlackout>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_blackouts(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<OperatorBlackout>>> {
    let me = p.operator(Scope::Read)?;
    let limit = page.limit()?;
    let items =
        operations::blackouts(&s.db, me, PoolScope::All, page.position()?, limit + 1).await?;
    Ok(Json(Page::of(items, limit, |x| x.id)))
}

#[derive(Deserialize, ToSchema)]
pub struct NewBlackout {
    pub pool_id: i64,
    /// Start, RFC 3339, whole hour in UTC.
    pub start: DateTime<Utc>,
    /// End (exclusive), RFC 3339, whole hour in UTC.
    pub end: DateTime<Utc>,
    /// `"all"` or `{"count": n}` (the n free units with the lowest numbers).
    pub units: BlackoutUnits,
    /// Why (default "maintenance"); at most 500 characters.
    #[serde(default)]
    pub reason: String,
}

/// Takes units out of sale for maintenance. Refused, with the reservations in the way, when
/// the units are booked.
#[utoipa::path(post, path = "/api/v1/blackouts", tag = "operations", request_body = NewBlackout,
    params(("Idempotency-Key" = Option<String>, Header, description = "A unique key per intended blackout", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    security(("api_key" = ["operate"])),
    responses(
        (status = 201, description = "The blackout's id", body = Created),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such pool of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The units are booked, or the same Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid blackout", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_blackout(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(b): Body<NewBlackout>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let me = p.operator(Scope::Operate)?;
    let id = blackouts::add(&s.db, me, b.pool_id, b.start, b.end, b.units, &b.reason).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// Ends a blackout: its units go back on sale.
#[utoipa::path(delete, path = "/api/v1/blackouts/{id}", tag = "operations",
    params(("id" = i64, Path, description = "Blackout id", minimum = 1)),
    security(("api_key" = ["operate"])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such blackout of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_blackout(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    let me = p.operator(Scope::Operate)?;
    blackouts::remove(&s.db, me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reservations customers made on the operator's capacity, newest first.
#[utoipa::path(get, path = "/api/v1/bookings", tag = "operations", params(PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of bookings", body = Page<Booking>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_bookings(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Booking>>> {
    let me = p.operator(Scope::Read)?;
    let limit = page.limit()?;
    let items =
        operations::bookings(&s.db, me, &Default::default(), page.position()?, limit + 1).await?;
    Ok(Json(Page::of(items, limit, |x| x.id)))
}

#[derive(Deserialize, ToSchema)]
pub struct NewWindow {
    /// Start, RFC 3339, whole hour in UTC.
    pub start: DateTime<Utc>,
    /// End (exclusive), RFC 3339, whole hour in UTC.
    pub end: DateTime<Utc>,
}

/// Puts a pool on sale for a window (availability). Windows of a pool never overlap.
#[utoipa::path(post, path = "/api/v1/pools/{id}/windows", tag = "operations", request_body = NewWindow,
    params(("id" = i64, Path, description = "Pool id", minimum = 1),
           ("Idempotency-Key" = Option<String>, Header, description = "A unique key per intended window", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    security(("api_key" = ["operate"])),
    responses(
        (status = 201, description = "The window's id", body = Created),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such pool of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Overlaps a window of the pool, or the same Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid window", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn open_window(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(pool_id): Id,
    Body(w): Body<NewWindow>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let me = p.operator(Scope::Operate)?;
    let id = catalog::open_window(&s.db, me, pool_id, w.start, w.end).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}
