//! Public market data for any key with `read`: listed pools, their availability, the
//! free-units timeline, find-a-slot and market search.

use super::page::{Page, PageParams};
use super::problem::Problem;
use super::{ApiResult, Caller, Id, Params};
use crate::state::AppState;
use app::account::Scope;
use app::availability::Step;
use app::market::{PoolKind, PoolListing};
use app::pricing::Quantity;
use app::services::principal::Principal;
use app::services::search::{self, MarketQuery, SearchHit, SearchSort};
use app::services::{availability, error::ServiceError, market, pools};
use app::window::HourWindow;
use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Listed pools, in id order.
#[utoipa::path(get, path = "/api/v1/pools", tag = "market", params(PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of listed pools", body = Page<PoolListing>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_pools(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<PoolListing>>> {
    p.require(Scope::Read)?;
    let limit = page.limit()?;
    let items = market::listings(&s.db, page.position()?, None, limit + 1).await?;
    Ok(Json(Page::of(items, limit, |l| l.pool_id)))
}

/// One listed pool.
#[utoipa::path(get, path = "/api/v1/pools/{id}", tag = "market",
    params(("id" = i64, Path, description = "Pool id", minimum = 1)),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The pool", body = PoolListing),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such listed pool", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_pool(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<PoolListing>> {
    p.require(Scope::Read)?;
    market::listings(&s.db, None, Some(id), 1)
        .await?
        .pop()
        .map(Json)
        .ok_or_else(|| ServiceError::NotFound("pool").into())
}

/// A window `[start, end)`, both on whole UTC hours.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WindowParams {
    /// Start, RFC 3339, on a whole hour in UTC.
    pub start: DateTime<Utc>,
    /// End (exclusive), RFC 3339, on a whole hour in UTC.
    pub end: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Availability {
    pub pool_id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Units free over the whole window (0 outside the pool's availability).
    pub free_units: i64,
    pub unit_count: i64,
}

/// A pool anyone may look at: listed, or the caller's own.
async fn visible_pool(
    s: &AppState,
    p: &Principal,
    id: i64,
) -> Result<(sqlx::pool::PoolConnection<sqlx::Postgres>, pools::PoolInfo), ServiceError> {
    let mut conn = s.db.acquire().await?;
    let pool = pools::load(&mut conn, id, false).await?;
    if !pool.listed && pool.operator_id != p.organization_id {
        return Err(ServiceError::NotFound("pool"));
    }
    Ok((conn, pool))
}

/// Units of a pool free over a whole window.
#[utoipa::path(get, path = "/api/v1/pools/{id}/availability", tag = "market",
    params(("id" = i64, Path, description = "Pool id", minimum = 1), WindowParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "Free units over the window", body = Availability),
        (status = 400, description = "Missing or malformed start/end", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such pool", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The window is not on whole hours, or ends before it starts", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn availability(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
    Params(w): Params<WindowParams>,
) -> ApiResult<Json<Availability>> {
    p.require(Scope::Read)?;
    let window = HourWindow::new(w.start, w.end).map_err(ServiceError::from)?;
    let (mut conn, pool) = visible_pool(&s, &p, id).await?;
    let free_units = availability::free_units(&mut conn, &pool, &window).await?;
    Ok(Json(Availability {
        pool_id: id,
        start: w.start,
        end: w.end,
        free_units,
        unit_count: pool.unit_count,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    pub pool_id: i64,
    pub unit_count: i64,
    /// The free-units step function: each step holds from `at` until the next step.
    pub steps: Vec<Step>,
}

/// The free-units timeline (a step function) of a pool over a range of at most two years.
#[utoipa::path(get, path = "/api/v1/pools/{id}/timeline", tag = "market",
    params(("id" = i64, Path, description = "Pool id", minimum = 1), WindowParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The timeline", body = Timeline),
        (status = 400, description = "Missing or malformed start/end", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such pool", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad range", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn timeline(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
    Params(w): Params<WindowParams>,
) -> ApiResult<Json<Timeline>> {
    p.require(Scope::Read)?;
    let range = HourWindow::new(w.start, w.end).map_err(ServiceError::from)?;
    let (mut conn, pool) = visible_pool(&s, &p, id).await?;
    let steps = availability::timeline(&mut conn, &pool, &range).await?;
    Ok(Json(Timeline {
        pool_id: id,
        unit_count: pool.unit_count,
        steps,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlotParams {
    /// Whole units (nodes or blocks) needed.
    #[param(minimum = 1, maximum = 100000)]
    pub units: i64,
    /// Duration in hours.
    #[param(minimum = 1, maximum = 8760)]
    pub hours: i64,
    /// Earliest acceptable start (default: now), rounded up to the hour.
    pub from: Option<DateTime<Utc>>,
    /// How many days ahead to look (default 365).
    #[param(minimum = 1, maximum = 730)]
    pub within_days: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Slot {
    pub pool_id: i64,
    pub units: i64,
    pub hours: i64,
    /// The earliest start that fits; absent when nothing fits within the horizon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
}

/// Find a slot: the earliest start at which `units` units are free for `hours` hours.
#[utoipa::path(get, path = "/api/v1/pools/{id}/slots", tag = "market",
    params(("id" = i64, Path, description = "Pool id", minimum = 1), SlotParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The earliest slot, if any", body = Slot),
        (status = 400, description = "Missing or malformed parameters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such pool", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Out-of-range parameters", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn find_slot(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
    Params(q): Params<SlotParams>,
) -> ApiResult<Json<Slot>> {
    p.require(Scope::Read)?;
    let mut errors = Vec::new();
    if !(1..=100_000).contains(&q.units) {
        errors.push(field("units", "units is between 1 and 100,000"));
    }
    if !(1..=8760).contains(&q.hours) {
        errors.push(field("hours", "hours is between 1 and 8,760 (a year)"));
    }
    let within = q.within_days.unwrap_or(availability::DEFAULT_HORIZON_DAYS);
    if !(1..=730).contains(&within) {
        errors.push(field("within_days", "within_days is between 1 and 730"));
    }
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors).into());
    }
    let (mut conn, pool) = visible_pool(&s, &p, id).await?;
    // Not before the pool's minimum lead time: a slot must be one that can be booked.
    let earliest = Utc::now() + chrono::Duration::hours(pool.terms.min_lead_hours);
    let from = q.from.unwrap_or(earliest).max(earliest);
    let start = availability::find_slot(&mut conn, &pool, q.units, q.hours, from, within).await?;
    Ok(Json(Slot {
        pool_id: id,
        units: q.units,
        hours: q.hours,
        start,
        end: start.map(|s| s + chrono::Duration::hours(q.hours)),
    }))
}

fn field(name: &str, message: &str) -> app::services::error::FieldError {
    app::services::error::FieldError {
        field: name.into(),
        message: message.into(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// `gpu` or `power`.
    pub kind: Option<PoolKind>,
    /// e.g. `H100 SXM`.
    pub gpu_model: Option<String>,
    /// How many GPUs (GPU pools; rounded up to whole nodes).
    #[param(minimum = 1, maximum = 1000000)]
    pub gpus: Option<i64>,
    /// How many kW (power pools; rounded up to whole blocks).
    #[param(minimum = 1, maximum = 10000000)]
    pub kw: Option<i64>,
    /// Duration in hours.
    #[param(minimum = 1, maximum = 8760)]
    pub hours: i64,
    /// Start exactly here (RFC 3339, whole hour); otherwise the earliest start within `within_days`.
    pub start: Option<DateTime<Utc>>,
    #[param(minimum = 1, maximum = 365)]
    pub within_days: Option<i64>,
    /// Country code, region or grid region, e.g. `ERCOT`.
    pub region: Option<String>,
    /// Part of the energy source, e.g. `hydro`.
    pub energy_source: Option<String>,
    /// `infiniband`, `roce` or `ethernet`.
    pub interconnect: Option<String>,
    /// Highest unit price in cents (per GPU-hour or per kW-month).
    #[param(minimum = 1)]
    pub max_price_cents: Option<i64>,
    /// Only pools that delivered at least this share (percent, e.g. `99.5`) of the unit-hours
    /// they sold over the last 90 days; pools with no history yet are left out.
    #[param(minimum = 0, maximum = 100)]
    pub min_reliability: Option<f64>,
    /// `price` (default), `earliest_start`, `total_cost` or `reliability` (most reliable
    /// first, no history last).
    pub sort: Option<SearchSort>,
    /// `interruptible`: only pools that sell that tier, priced at it; `firm` (default): every
    /// pool at its firm price.
    pub tier: Option<app::booking::Tier>,
    /// `any` (default): ready and forward capacity; `ready`: only live sites; `forward`: only
    /// pools sold ahead of their site's delivery (hits carry `forward`, and start at the
    /// delivery or later).
    pub delivery: Option<app::market::Delivery>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Market search across all listed pools; each hit carries its quote. Results are ranked,
/// not ordered by id, so a cursor holds a position in the ranking.
#[utoipa::path(get, path = "/api/v1/search", tag = "market", params(SearchParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of matching pools with quotes", body = Page<SearchHit>),
        (status = 400, description = "Missing or malformed parameters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Out-of-range parameters", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn search(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<SearchParams>,
) -> ApiResult<Json<Page<SearchHit>>> {
    p.require(Scope::Read)?;
    let limit = match q.limit {
        None => 20,
        Some(n) if (1..=100).contains(&n) => n,
        Some(_) => return Err(ServiceError::invalid("limit", "limit is between 1 and 100").into()),
    };
    let offset = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => super::page::decode(c)?,
    };
    let mut errors = Vec::new();
    if !(1..=8760).contains(&q.hours) {
        errors.push(field("hours", "hours is between 1 and 8,760 (a year)"));
    }
    if q.within_days.is_some_and(|d| !(1..=365).contains(&d)) {
        errors.push(field("within_days", "within_days is between 1 and 365"));
    }
    if q.gpus.is_some_and(|g| !(1..=1_000_000).contains(&g)) {
        errors.push(field("gpus", "gpus is between 1 and 1,000,000"));
    }
    if q.kw.is_some_and(|k| !(1..=10_000_000).contains(&k)) {
        errors.push(field("kw", "kw is between 1 and 10,000,000"));
    }
    if q.max_price_cents.is_some_and(|c| c < 1) {
        errors.push(field("max_price_cents", "max_price_cents is at least 1"));
    }
    if q.min_reliability
        .is_some_and(|r| !r.is_finite() || !(0.0..=100.0).contains(&r))
    {
        errors.push(field(
            "min_reliability",
            "min_reliability is a percentage between 0 and 100",
        ));
    }
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors).into());
    }
    let quantity = match (q.gpus, q.kw) {
        (Some(_), Some(_)) => {
            return Err(ServiceError::invalid("gpus", "ask for gpus or kw, not both").into())
        }
        (Some(g), None) => Some(Quantity::Gpus(g)),
        (None, Some(k)) => Some(Quantity::Kw(k)),
        (None, None) => None,
    };
    let query = MarketQuery {
        kind: q.kind,
        gpu_model: q.gpu_model,
        quantity,
        hours: q.hours,
        start: q.start,
        within_days: q.within_days,
        region: q.region,
        energy_source: q.energy_source,
        interconnect: q.interconnect,
        max_price_cents: q.max_price_cents,
        min_reliability_bp: q.min_reliability.map(|r| (r * 100.0).round() as i64),
        tier: q.tier.unwrap_or_default(),
        delivery: q.delivery.unwrap_or_default(),
        sort: q.sort.unwrap_or_default(),
        limit,
        offset,
    };
    let found = search::search(&s.db, &query, s.platform_fee.0, Utc::now()).await?;
    // The cursor of a ranked list is the offset of the next page (offsets start at 1 in the
    // cursor so that it is never 0).
    let next_cursor = found.has_more.then(|| super::page::encode(offset + limit));
    Ok(Json(Page {
        data: found.hits,
        next_cursor,
    }))
}
