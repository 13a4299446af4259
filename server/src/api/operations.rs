//! The organization, and what operators' inventory systems do: sites, pools, blackouts,
//! and the bookings on their capacity.

use super::{ApiResult, Body, Caller, Id, Page, Params};
use crate::http::AppState;
use app::account::{OrgKind, Scope};
use app::operations::{Booking, OperatorBlackout, OperatorSite};
use app::services::blackouts::{self, BlackoutUnits};
use app::services::catalog::{self, PoolInput, SiteInput};
use app::services::{operations, principal::Door};
use axum::{extract::State, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
pub struct Organization {
    pub id: i64,
    pub name: String,
    pub kind: OrgKind,
    /// The calling key's scopes.
    pub scopes: Vec<Scope>,
}

pub async fn organization(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> ApiResult<Json<Organization>> {
    p.require(Scope::Read)?;
    let name = sqlx::query_scalar!(
        "select name from organization where id = $1",
        p.organization_id
    )
    .fetch_one(&s.db)
    .await
    .map_err(app::services::error::ServiceError::from)?;
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

#[derive(Serialize)]
pub struct SiteList {
    pub sites: Vec<OperatorSite>,
}

pub async fn list_sites(State(s): State<AppState>, Caller(p): Caller) -> ApiResult<Json<SiteList>> {
    let me = p.operator(Scope::Read)?;
    Ok(Json(SiteList {
        sites: operations::sites(&s.db, me).await?,
    }))
}

pub async fn get_site(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<OperatorSite>> {
    let me = p.operator(Scope::Read)?;
    Ok(Json(operations::site(&s.db, me, id).await?))
}

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

#[derive(Serialize)]
pub struct Created {
    pub id: i64,
}

pub async fn create_pool(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(site_id): Id,
    Body(input): Body<PoolInput>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let me = p.operator(Scope::Operate)?;
    let id = catalog::create_pool(&s.db, me, site_id, &input).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

#[derive(Serialize)]
pub struct BlackoutList {
    pub blackouts: Vec<OperatorBlackout>,
}

pub async fn list_blackouts(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> ApiResult<Json<BlackoutList>> {
    let me = p.operator(Scope::Read)?;
    Ok(Json(BlackoutList {
        blackouts: operations::blackouts(&s.db, me).await?,
    }))
}

#[derive(Deserialize)]
pub struct NewBlackout {
    pub pool_id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `"all"` or `{"count": n}`.
    pub units: BlackoutUnits,
    #[serde(default)]
    pub reason: String,
}

pub async fn create_blackout(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(b): Body<NewBlackout>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let me = p.operator(Scope::Operate)?;
    let id = blackouts::add(&s.db, me, b.pool_id, b.start, b.end, b.units, &b.reason).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

pub async fn delete_blackout(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    let me = p.operator(Scope::Operate)?;
    blackouts::remove(&s.db, me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct BookingList {
    pub bookings: Vec<Booking>,
}

pub async fn list_bookings(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(page): Params<Page>,
) -> ApiResult<Json<BookingList>> {
    let me = p.operator(Scope::Read)?;
    Ok(Json(BookingList {
        bookings: operations::bookings(&s.db, me, page.before, page.limit()?).await?,
    }))
}
