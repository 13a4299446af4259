//! The interconnect limit: a site's lock for capacity changes, the firm AI load already listed
//! on it, and the refusal of more load than its interconnect carries.

use crate::power;
use crate::services::error::ServiceError;
use sqlx::PgConnection;

/// Locks the operator's site (serializing capacity changes on it) and returns (interconnect kW, PUE).
pub(super) async fn lock_site(
    conn: &mut PgConnection,
    operator_id: i64,
    site_id: i64,
) -> Result<(i64, f64), ServiceError> {
    let row = sqlx::query!(
        "select interconnect_kw, pue from site where id = $1 and operator_id = $2 for update",
        site_id,
        operator_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ServiceError::NotFound("site"))?;
    Ok((i64::from(row.interconnect_kw), row.pue))
}

/// Firm AI load in watts of everything listed on the site, at `pue`.
pub(super) async fn firm_load_w(
    conn: &mut PgConnection,
    site_id: i64,
    pue: f64,
) -> Result<i64, ServiceError> {
    let rows = sqlx::query!(
        "select kind, unit_count, node_power_w, block_kw from capacity_pool where site_id = $1",
        site_id
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| match r.kind.as_str() {
            "gpu" => power::gpu_firm_w(
                i64::from(r.unit_count),
                i64::from(r.node_power_w.unwrap_or(0)),
                pue,
            ),
            _ => power::blocks_firm_w(i64::from(r.unit_count), i64::from(r.block_kw.unwrap_or(0))),
        })
        .sum())
}

/// Refuses more firm AI load than the interconnect carries; `field` is what the caller
/// changed (a pool's size, or the site's interconnect or PUE).
pub(super) fn check_interconnect(
    committed_w: i64,
    interconnect_kw: i64,
    adding_w: i64,
    field: &str,
) -> Result<(), ServiceError> {
    let cap_w = interconnect_kw * 1000;
    if committed_w + adding_w > cap_w {
        let kw = |w: i64| crate::money::group_thousands(((w + 999) / 1000).max(0) as u64);
        return Err(ServiceError::invalid(
            field,
            format!(
                "this would commit {} kW of firm AI load (GPU IT load × PUE, plus power blocks) against an interconnect of {} kW; {} kW is already listed and {} kW is left",
                kw(committed_w + adding_w),
                kw(cap_w),
                kw(committed_w),
                kw((cap_w - committed_w).max(0))
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interconnect_check_explains_the_numbers() {
        assert!(check_interconnect(900_000, 1_000, 100_000, "unit_count").is_ok());
        let err = check_interconnect(900_000, 1_000, 100_001, "unit_count")
            .unwrap_err()
            .to_string();
        assert!(err.contains("1,001 kW of firm AI load"), "{err}");
        assert!(err.contains("interconnect of 1,000 kW"), "{err}");
        assert!(
            err.contains("900 kW is already listed and 100 kW is left"),
            "{err}"
        );
    }
}
