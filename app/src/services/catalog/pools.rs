//! Capacity pools: listing one (with its units, discounts, cancellation policy and, if asked,
//! its first sale window), reading it back for its edit form, and changing its terms.

use super::inputs::{validate_pool, PoolInput, PoolSpec};
use super::interconnect::{check_interconnect, listed_load, lock_site};
use super::windows::open_window_in;
use crate::power;
use crate::pricing::{CancellationTier, TermDiscount};
use crate::services::audit;
use crate::services::error::ServiceError;
use sqlx::{PgConnection, PgPool};

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
    if let Some(f) = &p.forward {
        f.check_new_delivery(chrono::Utc::now())
            .map_err(|(field, m)| ServiceError::invalid(field, m))?;
    }
    let mut tx = db.begin().await?;
    let site = lock_site(&mut tx, operator_id, site_id).await?;
    let now = chrono::Utc::now();
    let listed = listed_load(&mut tx, site_id, site.pue, site.building, now).await?;
    let adding = match &p.spec {
        PoolSpec::Gpu { node_power_w, .. } => {
            power::gpu_firm_w(p.unit_count, *node_power_w, site.pue)
        }
        PoolSpec::Power { block_kw, .. } => power::blocks_firm_w(p.unit_count, *block_kw),
    };
    let from = crate::bridge::counts_from(site.building, p.forward.map(|f| f.delivery_at), now);
    check_interconnect(
        &listed,
        site.interconnect_kw,
        Some((from, adding)),
        "unit_count",
        now,
    )?;
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
                                      min_term_hours, max_term_hours, min_lead_hours,
                                      interruptible_price_cents, interruptible_notice_hours)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
           returning id"#,
        site_id, kind, p.name.trim(), p.unit_count as i32, gpu_model, gpus, mem, fabric, node_w, block_kw,
        redundancy, cooling, p.price_cents, p.min_term_hours as i32, p.max_term_hours as i32, p.min_lead_hours as i32,
        p.interruptible.map(|o| o.price_cents), p.interruptible.map_or(0, |o| o.notice_hours as i32)
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
    set_sla(&mut tx, pool_id, p.sla.as_ref()).await?;
    set_forward(&mut tx, pool_id, p.forward.as_ref()).await?;
    let detail = serde_json::json!({
        "site_id": site_id, "name": p.name.trim(), "units": p.unit_count, "price_cents": p.price_cents,
        "forward": p.forward,
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
                  p.node_power_w, p.block_kw, p.redundancy, p.cooling,
                  p.sla_promise_bp, p.sla_below_bp, p.sla_credit_bp
           from capacity_pool p join site s on s.id = p.site_id
           where p.id = $1 and s.operator_id = $2"#,
        pool_id,
        operator_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("pool"))?;
    let mut conn = db.acquire().await?;
    let info = crate::services::pools::load(&mut conn, pool_id, false).await?;
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
        interruptible: info.interruptible,
        sla: Some(crate::incidents::SlaTerms::from_columns(
            r.sla_promise_bp,
            &r.sla_below_bp,
            &r.sla_credit_bp,
        )),
        forward: info.forward,
    })
}

/// Writes a pool's service level when one is given (none: the pool keeps its own, the
/// database's default for a new pool). The database checks the tiers too.
async fn set_sla(
    conn: &mut sqlx::PgConnection,
    pool_id: i64,
    sla: Option<&crate::incidents::SlaTerms>,
) -> Result<(), ServiceError> {
    let Some(sla) = sla else { return Ok(()) };
    let (promise, below, credit) = sla.to_columns();
    sqlx::query!(
        "update capacity_pool set sla_promise_bp = $2, sla_below_bp = $3, sla_credit_bp = $4 where id = $1",
        pool_id,
        promise,
        &below,
        &credit
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes a pool's forward terms (none: it sells only once its site is live). Reservations
/// already sold keep the terms they were sold on (PostgreSQL copies them at booking).
async fn set_forward(
    conn: &mut sqlx::PgConnection,
    pool_id: i64,
    forward: Option<&crate::forward::ForwardTerms>,
) -> Result<(), ServiceError> {
    let (bp, cents) = forward.map_or((None, None), |f| f.late_credit.to_columns());
    sqlx::query!(
        "update capacity_pool set delivery_at = $2, late_credit_bp = $3,
                late_credit_cents_per_unit_day = $4, walk_away_at = $5
          where id = $1",
        pool_id,
        forward.map(|f| f.delivery_at),
        bp,
        cents,
        forward.map(|f| f.walk_away_at)
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves a forward pool's delivery later, shifting every reservation the new date passes by
/// the delay (PostgreSQL's `forward_move_delivery`: whole, on the same units, in order, each
/// customer told by `reservation.delayed`); returns how many moved. Refused, changing
/// nothing, when a shifted reservation would run into hours sold or blocked on its units.
async fn delay_delivery(
    conn: &mut PgConnection,
    pool_id: i64,
    delivery_at: chrono::DateTime<chrono::Utc>,
) -> Result<i64, ServiceError> {
    use crate::services::error::{refusal, Refusal};
    let when = delivery_at.format("%Y-%m-%d %H:%M UTC");
    sqlx::query_scalar!(
        r#"select forward_move_delivery($1, $2) as "shifted!""#,
        pool_id,
        delivery_at
    )
    .fetch_one(&mut *conn)
    .await
    .map(i64::from)
    .map_err(|e| match refusal(&e) {
        Some(Refusal::UnitTaken) => ServiceError::conflict(format!(
            "moving the delivery to {when} would shift reservations sold before it into hours already sold or blocked on the same units; move it less, or agree new dates with those customers first"
        )),
        Some(Refusal::DelayBreaksContract) => ServiceError::conflict(format!(
            "moving the delivery to {when} would shift a reservation that has hours taken from it or listed for resale; it can't be shifted whole"
        )),
        _ => e.into(),
    })
}

/// Changes a pool's name, price, terms, discounts and cancellation policy. Its hardware and
/// size stay as listed: reservations were sold against them. Returns how many reservations a
/// later delivery shifted ([`delay_delivery`]).
pub async fn update_pool(
    db: &PgPool,
    operator_id: i64,
    pool_id: i64,
    p: &PoolInput,
) -> Result<i64, ServiceError> {
    validate_pool(p)?;
    let mut tx = db.begin().await?;
    let row = sqlx::query!(
        r#"select p.site_id, p.kind, p.unit_count, p.gpu_model, p.gpus_per_node, p.gpu_memory_gb,
                  p.interconnect, p.node_power_w, p.block_kw, p.redundancy, p.cooling, p.delivery_at
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
    // A delivery already promised may pass while the site is late; a new or moved one is
    // checked as a promise made now.
    if let Some(f) = p.forward.filter(|f| Some(f.delivery_at) != row.delivery_at) {
        f.check_new_delivery(chrono::Utc::now())
            .map_err(|(field, m)| ServiceError::invalid(field, m))?;
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
               min_lead_hours = $6, interruptible_price_cents = $7, interruptible_notice_hours = $8,
               updated_at = now()
           where id = $1"#,
        pool_id,
        p.name.trim(),
        p.price_cents,
        p.min_term_hours as i32,
        p.max_term_hours as i32,
        p.min_lead_hours as i32,
        p.interruptible.map(|o| o.price_cents),
        p.interruptible.map_or(0, |o| o.notice_hours as i32)
    )
    .execute(&mut *tx)
    .await?;
    replace_policies(&mut tx, row.site_id, pool_id, &p.discounts, &p.cancellation).await?;
    set_sla(&mut tx, pool_id, p.sla.as_ref()).await?;
    let delayed = match (&p.forward, row.delivery_at) {
        (Some(f), Some(was)) if f.delivery_at > was => {
            delay_delivery(&mut tx, pool_id, f.delivery_at).await?
        }
        _ => 0,
    };
    set_forward(&mut tx, pool_id, p.forward.as_ref()).await?;
    let detail = serde_json::json!({
        "delayed_reservations": delayed,
        "name": p.name.trim(), "price_cents": p.price_cents, "min_term_hours": p.min_term_hours,
        "max_term_hours": p.max_term_hours, "min_lead_hours": p.min_lead_hours,
        "interruptible": p.interruptible, "sla": p.sla, "forward": p.forward,
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
    Ok(delayed)
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
