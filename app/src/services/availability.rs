//! Availability of a pool: free units over a window, the free-units timeline, and the
//! earliest slot for k units over D hours.

use super::error::ServiceError;
use super::pools::{self, PoolInfo};
use crate::availability::{self, Step};
use crate::window::HourWindow;
use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;

/// How far ahead find-a-slot looks by default.
pub const DEFAULT_HORIZON_DAYS: i64 = 365;

/// Units of the pool free over the whole window; 0 when the window is outside availability.
pub async fn free_units(
    conn: &mut PgConnection,
    pool: &PoolInfo,
    w: &HourWindow,
) -> Result<i64, ServiceError> {
    let open = pools::is_open(conn, pool.id, w).await?;
    // A closed window has nothing free, whatever is booked in it: skip the count.
    let busy = if open {
        let range = pools::to_range(w);
        sqlx::query_scalar!(r#"select pool_busy_units($1, $2) as "n!""#, pool.id, range)
            .fetch_one(&mut *conn)
            .await?
    } else {
        0
    };
    Ok(pool.free_units(open, busy))
}

/// The free-units step function of the pool over `range`, ready to draw.
pub async fn timeline(
    conn: &mut PgConnection,
    pool: &PoolInfo,
    range: &HourWindow,
) -> Result<Vec<Step>, ServiceError> {
    if range.hours() > 24 * 731 {
        return Err(ServiceError::invalid(
            "range",
            "a timeline covers at most two years; ask for a shorter range",
        ));
    }
    let open = pools::open_intervals(conn, pool.id, range.start(), range.end()).await?;
    let busy: Vec<_> = pools::busy_by_unit(conn, pool.id, range.start(), range.end())
        .await?
        .into_iter()
        .flatten()
        .collect();
    Ok(availability::timeline(
        pool.unit_count,
        &open,
        &busy,
        (range.start(), range.end()),
    ))
}

/// The earliest start at or after `from` (rounded up to the hour) at which `units` units are
/// free for `hours` hours, looking at most `horizon_days` ahead. `None`: nothing fits.
pub async fn find_slot(
    conn: &mut PgConnection,
    pool: &PoolInfo,
    units: i64,
    hours: i64,
    from: DateTime<Utc>,
    horizon_days: i64,
) -> Result<Option<DateTime<Utc>>, ServiceError> {
    if units > pool.unit_count {
        return Ok(None);
    }
    let from = crate::window::ceil_hour(from);
    let latest_start = from + Duration::days(horizon_days);
    let until = latest_start + Duration::hours(hours);
    let open = pools::open_intervals(conn, pool.id, from, until).await?;
    let busy = pools::busy_by_unit(conn, pool.id, from, until).await?;
    Ok(availability::earliest_slot(
        units,
        hours,
        &open,
        &busy,
        from,
        latest_start,
    ))
}
