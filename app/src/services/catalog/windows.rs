//! Sale windows: opening a pool for sale over an hour-aligned window that overlaps none
//! already open.

use crate::services::error::ServiceError;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// Opens a pool for sale over `[start, end)`; refused when it overlaps an open window.
pub async fn open_window(
    db: &PgPool,
    operator_id: i64,
    pool_id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<i64, ServiceError> {
    let w = crate::window::HourWindow::new(start, end)?;
    let mut conn = db.acquire().await?;
    open_window_in(&mut conn, operator_id, pool_id, &w).await
}

pub(super) async fn open_window_in(
    conn: &mut PgConnection,
    operator_id: i64,
    pool_id: i64,
    w: &crate::window::HourWindow,
) -> Result<i64, ServiceError> {
    let range = crate::services::pools::to_range(w);
    let id = sqlx::query_scalar!(
        r#"insert into availability_window (site_id, pool_id, during)
           select p.site_id, p.id, $3 from capacity_pool p join site s on s.id = p.site_id
           where p.id = $1 and s.operator_id = $2
           returning id"#,
        pool_id,
        operator_id,
        range
    )
    .fetch_optional(conn)
    .await
    .map_err(|e| match crate::services::error::refusal(&e) {
        Some(crate::services::error::Refusal::SaleWindowOverlap) => ServiceError::conflict(
            "this window overlaps one that is already open; open only the part that is missing",
        ),
        _ => e.into(),
    })?;
    id.ok_or(ServiceError::NotFound("pool"))
}
