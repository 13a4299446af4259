//! Sites: an operator creates one, reads it back for its edit form and updates it; an update
//! must still carry the firm load already listed on the site.

use super::inputs::{validate_site, SiteInput};
use super::interconnect::{check_interconnect, listed_load, lock_site};
use crate::services::audit;
use crate::services::error::ServiceError;
use sqlx::{PgConnection, PgPool};

/// Creates a site for the operator.
pub async fn create_site(
    db: &PgPool,
    operator_id: i64,
    s: &SiteInput,
) -> Result<i64, ServiceError> {
    validate_site(s)?;
    let mut conn = db.acquire().await?;
    require_operator(&mut conn, operator_id).await?;
    let id = sqlx::query_scalar!(
        r#"insert into site (operator_id, name, country, region, grid_region, energy_source, interconnect_kw, pue,
                             cooling, status, hashrate_th, fleet_efficiency_j_th, hashprice_usd_cents_per_ph_day)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           on conflict (operator_id, name) do nothing
           returning id"#,
        operator_id,
        s.name.trim(),
        s.country,
        s.region.trim(),
        s.grid_region.trim(),
        s.energy_source.trim(),
        s.interconnect_kw as i32,
        s.pue,
        s.cooling.trim(),
        s.status,
        s.hashrate_th,
        s.fleet_efficiency_j_th,
        s.hashprice_usd_cents_per_ph_day
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| {
        ServiceError::invalid(
            "name",
            "you already have a site with this name; choose another",
        )
    })?;
    let detail = serde_json::json!({ "name": s.name.trim(), "status": s.status });
    audit::note(&mut conn, operator_id, "site.created", ("site", id), detail).await?;
    Ok(id)
}

/// One of the operator's sites as its edit form shows it.
pub async fn site_input(
    db: &PgPool,
    operator_id: i64,
    site_id: i64,
) -> Result<SiteInput, ServiceError> {
    let r = sqlx::query!(
        r#"select name, country, region, grid_region, energy_source, interconnect_kw, pue, cooling, status,
                  hashrate_th, fleet_efficiency_j_th, hashprice_usd_cents_per_ph_day
           from site where id = $1 and operator_id = $2"#,
        site_id,
        operator_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("site"))?;
    Ok(SiteInput {
        name: r.name,
        country: r.country,
        region: r.region,
        grid_region: r.grid_region,
        energy_source: r.energy_source,
        interconnect_kw: i64::from(r.interconnect_kw),
        pue: r.pue,
        cooling: r.cooling,
        status: r.status,
        hashrate_th: r.hashrate_th,
        fleet_efficiency_j_th: r.fleet_efficiency_j_th,
        hashprice_usd_cents_per_ph_day: r.hashprice_usd_cents_per_ph_day,
    })
}

/// Updates a site. A smaller interconnect or a higher PUE must still carry what is listed.
pub async fn update_site(
    db: &PgPool,
    operator_id: i64,
    site_id: i64,
    s: &SiteInput,
) -> Result<(), ServiceError> {
    validate_site(s)?;
    let mut tx = db.begin().await?;
    lock_site(&mut tx, operator_id, site_id).await?;
    // As the site will be: a site marked live counts every pool from now.
    let now = chrono::Utc::now();
    let listed = listed_load(&mut tx, site_id, s.pue, s.status == "building", now).await?;
    check_interconnect(&listed, s.interconnect_kw, None, "interconnect_kw", now)?;
    sqlx::query!(
        r#"update site set name = $3, country = $4, region = $5, grid_region = $6, energy_source = $7,
                           interconnect_kw = $8, pue = $9, cooling = $10, status = $11, hashrate_th = $12,
                           fleet_efficiency_j_th = $13, hashprice_usd_cents_per_ph_day = $14, updated_at = now()
           where id = $1 and operator_id = $2"#,
        site_id,
        operator_id,
        s.name.trim(),
        s.country,
        s.region.trim(),
        s.grid_region.trim(),
        s.energy_source.trim(),
        s.interconnect_kw as i32,
        s.pue,
        s.cooling.trim(),
        s.status,
        s.hashrate_th,
        s.fleet_efficiency_j_th,
        s.hashprice_usd_cents_per_ph_day
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| match crate::services::error::refusal(&e) {
        Some(crate::services::error::Refusal::SiteNameTaken) => ServiceError::invalid("name", "you already have a site with this name; choose another"),
        _ => e.into(),
    })?;
    let detail = serde_json::json!({ "name": s.name.trim(), "status": s.status });
    audit::note(
        &mut tx,
        operator_id,
        "site.updated",
        ("site", site_id),
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn require_operator(conn: &mut PgConnection, org_id: i64) -> Result<(), ServiceError> {
    let kind = sqlx::query_scalar!("select kind from organization where id = $1", org_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(ServiceError::NotFound("organization"))?;
    if kind == "customer" {
        return Err(ServiceError::Forbidden(
            "this organization is registered as a customer only; listing capacity needs an operator organization".into(),
        ));
    }
    Ok(())
}
