//! The organization's audit trail.

use super::page::{Page, PageParams};
use super::problem::Problem;
use super::{ApiResult, Caller, Params};
use crate::state::AppState;
use app::account::Scope;
use app::audit::AuditEvent;
use app::services::audit;
use axum::{extract::State, Json};

/// Who did what to the organization's reservations, capacity, keys, webhooks and accounts,
/// newest first. Events can't be changed or deleted.
#[utoipa::path(get, path = "/api/v1/audit-events", tag = "organization", params(PageParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "A page of events", body = Page<AuditEvent>),
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
) -> ApiResult<Json<Page<AuditEvent>>> {
    p.require(Scope::Read)?;
    let limit = page.limit()?;
    let items = audit::list(&s.db, Some(p.organization_id), page.position()?, limit + 1).await?;
    Ok(Json(Page::of(items, limit, |e| e.id)))
}
