//! Grid curtailment events for operators: record one on a site (its shed plan is carried
//! out at once), read a site's events and one event's shed units, and demand response per
//! site and month.

use super::page::{Page, PageParams};
use super::problem::Problem;
use super::{ApiResult, Body, Caller, Id, Params};
use crate::state::AppState;
use app::account::Scope;
use app::grid::{DemandResponseMonth, GridEvent, GridEventDetail};
use app::services::grid_events::{self, NewGridEvent};
use app::window::HourWindow;
use axum::{extract::State, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

/// A curtailment event the grid called on a site.
#[derive(Deserialize, ToSchema)]
pub struct NewGridEventBody {
    /// The program that called it (ERCOT ERS, 4CP, ...); 1 to 80 characters.
    pub program: String,
    /// On the hour, UTC; this hour or later, at most a year ahead.
    pub start: DateTime<Utc>,
    /// On the hour, after `start`, at most 72 hours later.
    pub end: DateTime<Utc>,
    /// The load to shed, in kW: at least 1, at most the site's interconnect.
    pub shed_kw: i64,
    /// What the program pays per MWh shed, in cents, when it pays.
    #[serde(default)]
    pub payment_cents_per_mwh: Option<i64>,
}

/// Records a grid event on the site and sheds its load at once: mining first (the fleet's
/// hashrate × J/TH, as far as it runs beside the AI load), then interruptible reservations
/// (lowest price paid first, then the latest booked; cut for the hours needed and credited
/// at the price paid, with `reservation.preempted` to their customers), never firm ones.
/// `grid_event.created` goes to the operator. Refused with 422 and the numbers of the
/// hour that falls short when the request needs firm load. Send an `Idempotency-Key` to
/// retry safely.
#[utoipa::path(post, path = "/api/v1/sites/{id}/grid-events", tag = "operations", request_body = NewGridEventBody,
    params(("id" = i64, Path, description = "Site id", minimum = 1),
           ("Idempotency-Key" = Option<String>, Header, description = "A unique key per intended event; a retry with the same key and body replays the first answer", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    security(("api_key" = ["operate"])),
    responses(
        (status = 201, description = "The event with what it shed", body = GridEvent),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `operate` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The same Idempotency-Key is still running, or a race lost on every retry", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid event, or more load than the site can shed without firm AI load (the hour and its numbers)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(site_id): Id,
    Body(b): Body<NewGridEventBody>,
) -> ApiResult<(StatusCode, Json<GridEvent>)> {
    let me = p.operator(Scope::Operate)?;
    let window =
        HourWindow::new(b.start, b.end).map_err(app::services::error::ServiceError::from)?;
    let event = grid_events::record(
        &s.db,
        me,
        site_id,
        &NewGridEvent {
            program: b.program,
            window,
            shed_kw: b.shed_kw,
            payment_cents_per_mwh: b.payment_cents_per_mwh,
        },
        Utc::now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(event)))
}

/// The site's grid events, the latest recorded first.
#[utoipa::path(get, path = "/api/v1/sites/{id}/grid-events", tag = "operations",
    params(("id" = i64, Path, description = "Site id", minimum = 1), PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of events", body = Page<GridEvent>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site of this organization", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(site_id): Id,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<GridEvent>>> {
    let me = p.operator(Scope::Read)?;
    let limit = page.limit()?;
    let items = grid_events::list(&s.db, me, site_id, page.position()?, limit + 1).await?;
    Ok(Json(Page::of(items, limit, |e| e.id)))
}

/// One grid event with the interruptible units it took.
#[utoipa::path(get, path = "/api/v1/grid-events/{id}", tag = "operations",
    params(("id" = i64, Path, description = "Grid event id", minimum = 1)),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The event and its shed units", body = GridEventDetail),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event on this organization's sites", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(s): State<AppState>,
    Caller(p): Caller,
    Id(id): Id,
) -> ApiResult<Json<GridEventDetail>> {
    let me = p.operator(Scope::Read)?;
    Ok(Json(grid_events::get(&s.db, me, id).await?))
}

/// Demand response per site and month, the latest month first: events, energy asked to be
/// shed, what the programs pay, and the credits the curtailments gave.
#[utoipa::path(get, path = "/api/v1/demand-response", tag = "operations",
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "One row per site and month with events", body = [DemandResponseMonth]),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn demand_response(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> ApiResult<Json<Vec<DemandResponseMonth>>> {
    let me = p.operator(Scope::Read)?;
    Ok(Json(grid_events::demand_response(&s.db, me).await?))
}
