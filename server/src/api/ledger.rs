//! The books over the API: the entries on the caller's own accounts, a customer's monthly
//! statement and an operator's earnings. Same services as the browser's pages.

use super::page::{Page, PageParams};
use super::problem::Problem;
use super::{ApiResult, Caller, Params};
use crate::state::AppState;
use app::account::Scope;
use app::ledger::{Earnings, Month, Statement};
use app::services::{error::ServiceError, ledger, ledger::LedgerEntry};
use axum::{extract::State, Json};
use serde::Deserialize;
use utoipa::IntoParams;

/// The entries on the organization's accounts (a customer's receivable, an operator's
/// payable), oldest first. Positive amounts are debits.
#[utoipa::path(get, path = "/api/v1/ledger/entries", tag = "ledger", params(PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of entries", body = Page<LedgerEntry>),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn entries(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<LedgerEntry>>> {
    p.require(Scope::Read)?;
    let limit = page.limit()?;
    let after = page.position()?.unwrap_or(0);
    let items = ledger::entries(&s.db, p.organization_id, after, limit + 1).await?;
    Ok(Json(Page::of(items, limit, |e| e.id)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthParams {
    /// The month, `YYYY-MM` (UTC); default the current month.
    #[param(example = "2026-11")]
    pub month: Option<String>,
}

/// Parses `month` (default: the current one) or says how to write it.
pub fn month_or_now(month: Option<&str>) -> Result<Month, ServiceError> {
    match month.map(str::trim).filter(|m| !m.is_empty()) {
        None => Ok(Month::of(chrono::Utc::now())),
        Some(m) => Month::parse(m).map_err(|e| ServiceError::invalid("month", e)),
    }
}

/// A customer's statement for one month: opening balance, charges and refunds, closing.
#[utoipa::path(get, path = "/api/v1/ledger/statement", tag = "ledger", params(MonthParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The statement", body = Statement),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid month", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn statement(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<MonthParams>,
) -> ApiResult<Json<Statement>> {
    let me = p.customer(Scope::Read)?;
    let month = month_or_now(q.month.as_deref())?;
    Ok(Json(ledger::statement(&s.db, me, month).await?))
}

/// An operator's earnings: owed now, pending, per site and month, payouts.
#[utoipa::path(get, path = "/api/v1/ledger/earnings", tag = "ledger",
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The earnings", body = Earnings),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator organization, or no `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn earnings(State(s): State<AppState>, Caller(p): Caller) -> ApiResult<Json<Earnings>> {
    let me = p.operator(Scope::Read)?;
    Ok(Json(ledger::earnings(&s.db, me).await?))
}
