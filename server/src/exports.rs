//! CSV downloads for signed-in people (the statement and earnings pages link here). They
//! use the browser session, like the pages; integrations read the same data as JSON from
//! `/api/v1/ledger`.

use crate::api::{ledger::month_or_now, problem::Problem, Caller};
use crate::state::AppState;
use app::account::Scope;
use app::operations::{bookings_csv, BookingFilter};
use app::services::{error::ServiceError, ledger, operations};
use axum::{
    extract::{Query, State},
    http::header,
    response::IntoResponse,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct MonthQuery {
    month: Option<String>,
}

fn csv(filename: String, body: String) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        body,
    )
}

/// `/statement.csv?month=YYYY-MM`: a customer's statement lines.
pub async fn statement(
    State(s): State<AppState>,
    Caller(p): Caller,
    Query(q): Query<MonthQuery>,
) -> Result<impl IntoResponse, Problem> {
    let me = p.customer(Scope::Read)?;
    let month = month_or_now(q.month.as_deref())?;
    let st = ledger::statement(&s.db, me, month).await?;
    Ok(csv(format!("rigshift-statement-{month}.csv"), st.to_csv()))
}

/// `/earnings.csv`: an operator's earnings per site and month.
pub async fn earnings(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<impl IntoResponse, Problem> {
    let me = p.operator(Scope::Read)?;
    let e = ledger::earnings(&s.db, me).await?;
    Ok(csv("rigshift-earnings.csv".into(), e.to_csv()))
}

#[derive(Debug, Deserialize)]
pub struct BookingQuery {
    #[serde(default)]
    site: String,
    #[serde(default)]
    pool: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// `/operator/bookings.csv?site=&pool=&state=&from=&to=`: the operator's bookings under the
/// same filter as the operations page, every one of them (up to 10,000).
pub async fn bookings(
    State(s): State<AppState>,
    Caller(p): Caller,
    Query(q): Query<BookingQuery>,
) -> Result<impl IntoResponse, Problem> {
    let me = p.operator(Scope::Read)?;
    let filter = BookingFilter::parse(&q.site, &q.pool, &q.state, &q.from, &q.to)
        .map_err(|m| ServiceError::invalid("filter", m))?;
    let rows = operations::bookings(&s.db, me, &filter, None, 10_000).await?;
    Ok(csv("rigshift-bookings.csv".into(), bookings_csv(&rows)))
}
