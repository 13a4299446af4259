//! What operators list: sites, capacity pools and their availability windows.
//! Every write is scoped to the operator's own sites.

use super::audit;
use super::error::{FieldError, ServiceError};
use crate::power;
use crate::pricing::{CancellationTier, TermDiscount};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteInput {
    pub name: String,
    /// ISO 3166-1 alpha-2, e.g. "US".
    pub country: String,
    pub region: String,
    /// e.g. "ERCOT".
    pub grid_region: String,
    pub energy_source: String,
    pub interconnect_kw: i64,
    pub pue: f64,
    pub cooling: String,
    /// "building" or "live".
    pub status: String,
    pub hashrate_th: i64,
    pub fleet_efficiency_j_th: Option<f64>,
    pub hashprice_usd_cents_per_ph_day: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PoolSpec {
    Gpu {
        gpu_model: String,
        gpus_per_node: i64,
        gpu_memory_gb: i64,
        /// "infiniband", "roce" or "ethernet".
        interconnect: String,
        node_power_w: i64,
    },
    Power {
        block_kw: i64,
        /// "N", "N+1" or "2N".
        redundancy: String,
        cooling: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PoolInput {
    pub name: String,
    pub spec: PoolSpec,
    pub unit_count: i64,
    pub price_cents: i64,
    pub min_term_hours: i64,
    pub max_term_hours: i64,
    pub min_lead_hours: i64,
    pub discounts: Vec<TermDiscount>,
    /// Empty: the default policy ([`crate::pricing::DEFAULT_CANCELLATION`]).
    pub cancellation: Vec<CancellationTier>,
}

struct Errors(Vec<FieldError>);

impl Errors {
    fn check(&mut self, ok: bool, field: &str, message: impl Into<String>) {
        if !ok {
            self.0.push(FieldError {
                field: field.into(),
                message: message.into(),
            });
        }
    }
    fn text(&mut self, value: &str, field: &str, max: usize) {
        let len = value.trim().chars().count();
        self.check(
            len >= 1 && len <= max,
            field,
            format!("required, at most {max} characters"),
        );
    }
    fn finish(self) -> Result<(), ServiceError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid(self.0))
        }
    }
}

fn validate_site(s: &SiteInput) -> Result<(), ServiceError> {
    let mut e = Errors(Vec::new());
    e.text(&s.name, "name", 200);
    e.check(
        s.country.len() == 2 && s.country.chars().all(|c| c.is_ascii_uppercase()),
        "country",
        "use the two-letter country code, e.g. US, SE, PY",
    );
    e.text(&s.region, "region", 200);
    e.text(&s.grid_region, "grid_region", 100);
    e.text(&s.energy_source, "energy_source", 100);
    e.text(&s.cooling, "cooling", 100);
    e.check(
        s.interconnect_kw > 0 && s.interconnect_kw <= 5_000_000,
        "interconnect_kw",
        "between 1 kW and 5 GW",
    );
    e.check(
        s.pue.is_finite() && (1.0..=3.0).contains(&s.pue),
        "pue",
        "a PUE between 1.0 and 3.0",
    );
    e.check(
        s.status == "building" || s.status == "live",
        "status",
        "either building or live",
    );
    e.check(s.hashrate_th >= 0, "hashrate_th", "zero or more TH/s");
    e.check(
        s.fleet_efficiency_j_th
            .is_none_or(|j| j.is_finite() && j > 0.0 && j < 1000.0),
        "fleet_efficiency_j_th",
        "a positive J/TH, e.g. 21.5",
    );
    e.check(
        s.hashprice_usd_cents_per_ph_day.is_none_or(|c| c >= 0),
        "hashprice_usd_cents_per_ph_day",
        "zero or more cents per PH/s per day",
    );
    e.finish()
}

fn validate_pool(p: &PoolInput) -> Result<(), ServiceError> {
    let mut e = Errors(Vec::new());
    e.text(&p.name, "name", 200);
    e.check(
        p.unit_count >= 1 && p.unit_count <= 100_000,
        "unit_count",
        "between 1 and 100,000 units",
    );
    e.check(
        p.price_cents >= 1 && p.price_cents <= 100_000_000,
        "price_cents",
        "a positive price in cents",
    );
    e.check(p.min_term_hours >= 1, "min_term_hours", "at least 1 hour");
    e.check(
        p.max_term_hours >= p.min_term_hours && p.max_term_hours <= 24 * 365 * 5,
        "max_term_hours",
        "at least the minimum term and at most five years",
    );
    e.check(
        p.min_lead_hours >= 0 && p.min_lead_hours <= 24 * 365,
        "min_lead_hours",
        "between 0 hours and a year",
    );
    for d in &p.discounts {
        e.check(
            d.min_hours >= 1 && (1..=9_000).contains(&d.discount_bp),
            "discounts",
            "each tier needs at least 1 hour and 0.01 % to 90 %",
        );
    }
    for t in &p.cancellation {
        e.check(
            t.min_notice_hours >= 0 && (0..=10_000).contains(&t.refund_bp),
            "cancellation",
            "each tier needs a notice of 0 hours or more and a refund of 0 % to 100 %",
        );
    }
    match &p.spec {
        PoolSpec::Gpu {
            gpu_model,
            gpus_per_node,
            gpu_memory_gb,
            interconnect,
            node_power_w,
        } => {
            e.text(gpu_model, "gpu_model", 100);
            e.check(
                (1..=72).contains(gpus_per_node),
                "gpus_per_node",
                "between 1 and 72",
            );
            e.check(
                *gpu_memory_gb >= 1 && *gpu_memory_gb <= 10_000,
                "gpu_memory_gb",
                "a positive number of GB",
            );
            e.check(
                ["infiniband", "roce", "ethernet"].contains(&interconnect.as_str()),
                "interconnect",
                "infiniband, roce or ethernet",
            );
            e.check(
                *node_power_w >= 1 && *node_power_w <= 200_000,
                "node_power_w",
                "IT watts per node, e.g. 10200",
            );
        }
        PoolSpec::Power {
            block_kw,
            redundancy,
            cooling,
        } => {
            e.check(
                *block_kw >= 1 && *block_kw <= 100_000,
                "block_kw",
                "a positive block size in kW",
            );
            e.check(
                ["N", "N+1", "2N"].contains(&redundancy.as_str()),
                "redundancy",
                "N, N+1 or 2N",
            );
            e.text(cooling, "cooling", 100);
        }
    }
    e.finish()
}

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
    let load_w = firm_load_w(&mut tx, site_id, s.pue).await?;
    check_interconnect(load_w, s.interconnect_kw, 0, "interconnect_kw")?;
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
    .map_err(|e| match super::error::refusal(&e) {
        Some(super::error::Refusal::SiteNameTaken) => ServiceError::invalid("name", "you already have a site with this name; choose another"),
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

/// Locks the operator's site (serializing capacity changes on it) and returns (interconnect kW, PUE).
async fn lock_site(
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
async fn firm_load_w(conn: &mut PgConnection, site_id: i64, pue: f64) -> Result<i64, ServiceError> {
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
fn check_interconnect(
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

/// Lists a new pool on one of the operator's sites, with its units, discounts and policy,
/// and, when `on_sale` is given, opens it for sale over that window in the same
/// transaction: a pool is never left listed without the window its form asked for.
pub async fn create_pool(
    db: &PgPool,
    operator_id: i64,
    site_id: i64,
    p: &PoolInput,
    on_sale: Option<&crate::window::HourWindow>,
) -> Result<i64, ServiceError> {
    validate_pool(p)?;
    let mut tx = db.begin().await?;
    let (interconnect_kw, pue) = lock_site(&mut tx, operator_id, site_id).await?;
    let committed = firm_load_w(&mut tx, site_id, pue).await?;
    let adding = match &p.spec {
        PoolSpec::Gpu { node_power_w, .. } => power::gpu_firm_w(p.unit_count, *node_power_w, pue),
        PoolSpec::Power { block_kw, .. } => power::blocks_firm_w(p.unit_count, *block_kw),
    };
    check_interconnect(committed, interconnect_kw, adding, "unit_count")?;
    let (kind, gpu_model, gpus, mem, fabric, node_w, block_kw, redundancy, cooling) = match &p.spec
    {
        PoolSpec::Gpu {
            gpu_model,
            gpus_per_node,
            gpu_memory_gb,
            interconnect,
            node_power_w,
        } => (
            "gpu",
            Some(gpu_model.trim()),
            Some(*gpus_per_node as i32),
            Some(*gpu_memory_gb as i32),
            Some(interconnect.as_str()),
            Some(*node_power_w as i32),
            None,
            None,
            None,
        ),
        PoolSpec::Power {
            block_kw,
            redundancy,
            cooling,
        } => (
            "power",
            None,
            None,
            None,
            None,
            None,
            Some(*block_kw as i32),
            Some(redundancy.as_str()),
            Some(cooling.trim()),
        ),
    };
    let pool_id = sqlx::query_scalar!(
        r#"insert into capacity_pool (site_id, kind, name, unit_count, gpu_model, gpus_per_node, gpu_memory_gb,
                                      interconnect, node_power_w, block_kw, redundancy, cooling, price_cents,
                                      min_term_hours, max_term_hours, min_lead_hours)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
           returning id"#,
        site_id, kind, p.name.trim(), p.unit_count as i32, gpu_model, gpus, mem, fabric, node_w, block_kw,
        redundancy, cooling, p.price_cents, p.min_term_hours as i32, p.max_term_hours as i32, p.min_lead_hours as i32
    )
    .fetch_one(&mut *tx)
    .await?;
    let prefix = if kind == "gpu" { "node" } else { "block" };
    sqlx::query!(
        r#"insert into capacity_unit (site_id, pool_id, ordinal, label)
           select $1, $2, n, $3 || '-' || lpad(n::text, 3, '0') from generate_series(1, $4::int) n"#,
        site_id, pool_id, prefix, p.unit_count as i32
    )
    .execute(&mut *tx)
    .await?;
    replace_policies(&mut tx, site_id, pool_id, &p.discounts, &p.cancellation).await?;
    let detail = serde_json::json!({
        "site_id": site_id, "name": p.name.trim(), "units": p.unit_count, "price_cents": p.price_cents,
    });
    audit::note(
        &mut tx,
        operator_id,
        "pool.created",
        ("pool", pool_id),
        detail,
    )
    .await?;
    if let Some(w) = on_sale {
        open_window_in(&mut tx, operator_id, pool_id, w).await?;
    }
    tx.commit().await?;
    Ok(pool_id)
}

/// One of the operator's pools as listed, in the shape [`update_pool`] takes, so an edit
/// form can change its terms and send the hardware back unchanged.
pub async fn pool_input(
    db: &PgPool,
    operator_id: i64,
    pool_id: i64,
) -> Result<PoolInput, ServiceError> {
    let r = sqlx::query!(
        r#"select p.kind, p.name, p.unit_count, p.gpu_model, p.gpus_per_node, p.gpu_memory_gb, p.interconnect,
                  p.node_power_w, p.block_kw, p.redundancy, p.cooling
           from capacity_pool p join site s on s.id = p.site_id
           where p.id = $1 and s.operator_id = $2"#,
        pool_id,
        operator_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("pool"))?;
    let mut conn = db.acquire().await?;
    let info = super::pools::load(&mut conn, pool_id, false).await?;
    let spec = if r.kind == "gpu" {
        PoolSpec::Gpu {
            gpu_model: r.gpu_model.unwrap_or_default(),
            gpus_per_node: r.gpus_per_node.map(i64::from).unwrap_or(0),
            gpu_memory_gb: r.gpu_memory_gb.map(i64::from).unwrap_or(0),
            interconnect: r.interconnect.unwrap_or_default(),
            node_power_w: r.node_power_w.map(i64::from).unwrap_or(0),
        }
    } else {
        PoolSpec::Power {
            block_kw: r.block_kw.map(i64::from).unwrap_or(0),
            redundancy: r.redundancy.unwrap_or_default(),
            cooling: r.cooling.unwrap_or_default(),
        }
    };
    Ok(PoolInput {
        name: r.name,
        spec,
        unit_count: i64::from(r.unit_count),
        price_cents: info.price_cents,
        min_term_hours: info.terms.min_term_hours,
        max_term_hours: info.terms.max_term_hours,
        min_lead_hours: info.terms.min_lead_hours,
        discounts: info.discounts,
        cancellation: info.cancellation,
    })
}

/// Changes a pool's name, price, terms, discounts and cancellation policy. Its hardware and
/// size stay as listed: reservations were sold against them.
pub async fn update_pool(
    db: &PgPool,
    operator_id: i64,
    pool_id: i64,
    p: &PoolInput,
) -> Result<(), ServiceError> {
    validate_pool(p)?;
    let mut tx = db.begin().await?;
    let row = sqlx::query!(
        r#"select p.site_id, p.kind, p.unit_count, p.gpu_model, p.gpus_per_node, p.gpu_memory_gb,
                  p.interconnect, p.node_power_w, p.block_kw, p.redundancy, p.cooling
           from capacity_pool p join site s on s.id = p.site_id
           where p.id = $1 and s.operator_id = $2
           for update of p"#,
        pool_id,
        operator_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ServiceError::NotFound("pool"))?;
    let same_hardware = match &p.spec {
        PoolSpec::Gpu {
            gpu_model,
            gpus_per_node,
            gpu_memory_gb,
            interconnect,
            node_power_w,
        } => {
            row.kind == "gpu"
                && row.gpu_model.as_deref() == Some(gpu_model.trim())
                && row.gpus_per_node.map(i64::from) == Some(*gpus_per_node)
                && row.gpu_memory_gb.map(i64::from) == Some(*gpu_memory_gb)
                && row.interconnect.as_deref() == Some(interconnect.as_str())
                && row.node_power_w.map(i64::from) == Some(*node_power_w)
        }
        PoolSpec::Power {
            block_kw,
            redundancy,
            cooling,
        } => {
            row.kind == "power"
                && row.block_kw.map(i64::from) == Some(*block_kw)
                && row.redundancy.as_deref() == Some(redundancy.as_str())
                && row.cooling.as_deref() == Some(cooling.trim())
        }
    };
    if !same_hardware {
        return Err(ServiceError::invalid(
            "spec",
            "a pool's hardware can't change once listed; send its current spec, or list a new pool",
        ));
    }
    if i64::from(row.unit_count) != p.unit_count {
        return Err(ServiceError::invalid(
            "unit_count",
            format!(
                "a pool's size can't change once listed (it has {}); list another pool for more units",
                row.unit_count
            ),
        ));
    }
    sqlx::query!(
        r#"update capacity_pool
           set name = $2, price_cents = $3, min_term_hours = $4, max_term_hours = $5,
               min_lead_hours = $6, updated_at = now()
           where id = $1"#,
        pool_id,
        p.name.trim(),
        p.price_cents,
        p.min_term_hours as i32,
        p.max_term_hours as i32,
        p.min_lead_hours as i32
    )
    .execute(&mut *tx)
    .await?;
    replace_policies(&mut tx, row.site_id, pool_id, &p.discounts, &p.cancellation).await?;
    let detail = serde_json::json!({
        "name": p.name.trim(), "price_cents": p.price_cents, "min_term_hours": p.min_term_hours,
        "max_term_hours": p.max_term_hours, "min_lead_hours": p.min_lead_hours,
    });
    audit::note(
        &mut tx,
        operator_id,
        "pool.updated",
        ("pool", pool_id),
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn replace_policies(
    conn: &mut PgConnection,
    site_id: i64,
    pool_id: i64,
    discounts: &[TermDiscount],
    cancellation: &[CancellationTier],
) -> Result<(), ServiceError> {
    sqlx::query!("delete from pool_term_discount where pool_id = $1", pool_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "delete from pool_cancellation_tier where pool_id = $1",
        pool_id
    )
    .execute(&mut *conn)
    .await?;
    for d in discounts {
        sqlx::query!(
            "insert into pool_term_discount (site_id, pool_id, min_hours, discount_bp) values ($1, $2, $3, $4)
             on conflict (pool_id, min_hours) do update set discount_bp = excluded.discount_bp",
            site_id, pool_id, d.min_hours as i32, d.discount_bp as i32
        )
        .execute(&mut *conn)
        .await?;
    }
    for t in cancellation {
        sqlx::query!(
            "insert into pool_cancellation_tier (site_id, pool_id, min_notice_hours, refund_bp) values ($1, $2, $3, $4)
             on conflict (pool_id, min_notice_hours) do update set refund_bp = excluded.refund_bp",
            site_id, pool_id, t.min_notice_hours as i32, t.refund_bp as i32
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

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

async fn open_window_in(
    conn: &mut PgConnection,
    operator_id: i64,
    pool_id: i64,
    w: &crate::window::HourWindow,
) -> Result<i64, ServiceError> {
    let range = super::pools::to_range(w);
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
    .map_err(|e| match super::error::refusal(&e) {
        Some(super::error::Refusal::SaleWindowOverlap) => ServiceError::conflict(
            "this window overlaps one that is already open; open only the part that is missing",
        ),
        _ => e.into(),
    })?;
    id.ok_or(ServiceError::NotFound("pool"))
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

    #[test]
    fn pool_validation_lists_every_problem() {
        let p = PoolInput {
            name: " ".into(),
            spec: PoolSpec::Gpu {
                gpu_model: "H100".into(),
                gpus_per_node: 0,
                gpu_memory_gb: 80,
                interconnect: "carrier pigeon".into(),
                node_power_w: 10_200,
            },
            unit_count: 0,
            price_cents: 199,
            min_term_hours: 24,
            max_term_hours: 12,
            min_lead_hours: 0,
            discounts: vec![],
            cancellation: vec![],
        };
        let ServiceError::Invalid(errs) = validate_pool(&p).unwrap_err() else {
            panic!()
        };
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "unit_count",
                "max_term_hours",
                "gpus_per_node",
                "interconnect"
            ]
        );
    }
}
