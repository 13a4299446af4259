//! The interconnect limit: a site's lock for capacity changes, the firm AI load already listed
//! on it over time (a forward pool's from its delivery), and the refusal of more load than its
//! interconnect carries.

use crate::bridge;
use crate::power;
use crate::services::error::ServiceError;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// What the interconnect check needs of a site.
pub(super) struct SitePowerTerms {
    pub interconnect_kw: i64,
    pub pue: f64,
    /// Still being built: a forward pool's load counts from its delivery.
    pub building: bool,
}

/// Locks the operator's site (serializing capacity changes on it) and returns its terms.
pub(super) async fn lock_site(
    conn: &mut PgConnection,
    operator_id: i64,
    site_id: i64,
) -> Result<SitePowerTerms, ServiceError> {
    let row = sqlx::query!(
        "select interconnect_kw, pue, status from site where id = $1 and operator_id = $2 for update",
        site_id,
        operator_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ServiceError::NotFound("site"))?;
    Ok(SitePowerTerms {
        interconnect_kw: i64::from(row.interconnect_kw),
        pue: row.pue,
        building: row.status == "building",
    })
}

/// Firm AI load in watts of everything listed on the site at `pue`, each pool from when it
/// counts ([`bridge::counts_from`]).
pub(super) async fn listed_load(
    conn: &mut PgConnection,
    site_id: i64,
    pue: f64,
    building: bool,
    now: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, i64)>, ServiceError> {
    let rows = sqlx::query!(
        "select kind, unit_count, node_power_w, block_kw, delivery_at from capacity_pool where site_id = $1",
        site_id
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                bridge::counts_from(building, r.delivery_at, now),
                power::pool_firm_w(
                    &r.kind,
                    i64::from(r.unit_count),
                    r.node_power_w,
                    r.block_kw,
                    pue,
                ),
            )
        })
        .collect())
}

/// Refuses more firm AI load than the interconnect carries at any time: `listed` is the
/// site's load over time, `adding` a new pool's; `field` is what the caller changed (a
/// pool's size, or the site's interconnect or PUE). Forward load counts from its delivery,
/// so the refusal says from when the interconnect would be short.
pub(super) fn check_interconnect(
    listed: &[(DateTime<Utc>, i64)],
    interconnect_kw: i64,
    adding: Option<(DateTime<Utc>, i64)>,
    field: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let cap_w = interconnect_kw * 1000;
    let all: Vec<_> = listed.iter().copied().chain(adding).collect();
    let Some((at, total_w)) = bridge::first_over(&all, cap_w) else {
        return Ok(());
    };
    let added_w = adding.filter(|a| a.0 <= at).map_or(0, |a| a.1);
    let committed_w = total_w - added_w;
    let kw = |w: i64| crate::money::group_thousands(((w + 999) / 1000).max(0) as u64);
    let when = if at > now {
        format!(
            "from {} (when forward capacity listed on this site is delivered), ",
            at.format("%Y-%m-%d %H:%M UTC")
        )
    } else {
        String::new()
    };
    Err(ServiceError::invalid(
        field,
        format!(
            "{when}this would commit {} kW of firm AI load (GPU IT load × PUE, plus power blocks) against an interconnect of {} kW; {} kW is already listed and {} kW is left",
            kw(total_w),
            kw(cap_w),
            kw(committed_w),
            kw((cap_w - committed_w).max(0))
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn interconnect_check_explains_the_numbers() {
        let listed = [(now(), 900_000)];
        assert!(
            check_interconnect(&listed, 1_000, Some((now(), 100_000)), "unit_count", now()).is_ok()
        );
        let err = check_interconnect(&listed, 1_000, Some((now(), 100_001)), "unit_count", now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("1,001 kW of firm AI load"), "{err}");
        assert!(err.contains("interconnect of 1,000 kW"), "{err}");
        assert!(
            err.contains("900 kW is already listed and 100 kW is left"),
            "{err}"
        );
        assert!(!err.contains("from "), "{err}");
    }

    #[test]
    fn forward_load_counts_from_its_delivery_and_the_refusal_says_when() {
        let later = now() + chrono::Duration::days(30);
        // 600 kW now, 300 kW delivered in 30 days; adding 200 kW now fits until the delivery.
        let listed = [(now(), 600_000), (later, 300_000)];
        let err = check_interconnect(&listed, 1_000, Some((now(), 200_000)), "unit_count", now())
            .unwrap_err()
            .to_string();
        assert!(err.contains(": from 2027-01-31 00:00 UTC ("), "{err}");
        assert!(err.contains("1,100 kW of firm AI load"), "{err}");
        assert!(
            err.contains("900 kW is already listed and 100 kW is left"),
            "{err}"
        );
        assert!(
            check_interconnect(&listed, 1_100, Some((now(), 200_000)), "unit_count", now()).is_ok()
        );
    }
}
