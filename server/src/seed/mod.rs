//! The demo market: a dozen converted mining sites across grid regions, GPU pools of
//! several models, power blocks, blackouts and reservations in the past, present and
//! future, so the first page a newcomer sees is a living market.
//!
//! Loaded automatically into an empty database, or with `server seed`. Every demo
//! account's password is [`DEMO_PASSWORD`] (listed in the README).

mod calendar;
mod organizations;
mod pools;
mod sites;

use app::pricing::{self, Priced, DEFAULT_PLATFORM_FEE_BP};
use app::services::{grid_events, password, settlement};
use app::window::HourWindow;
use chrono::{DateTime, Duration, DurationRound, Utc};
use sqlx::PgPool;

use calendar::{
    BLACKOUTS, FORWARD, GRID_EVENTS, INCIDENTS, INTERRUPTIBLE_RESERVATIONS, RESALE, RESERVATIONS,
};
use organizations::ORGS;
use pools::{gpu_spec, interruptible_price, pools, PoolSpec, CANCELLATION, DISCOUNTS};
use sites::SITES;

pub const DEMO_PASSWORD: &str = "rigshift-demo-2026";

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("the database already holds {0} organizations; demo data is only loaded into an empty database")]
    NotEmpty(i64),
    #[error("demo data is inconsistent: {0}")]
    Inconsistent(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("could not hash a demo password: {0}")]
    Hash(String),
}

/// What [`seed_if_empty`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum SeedOutcome {
    Seeded(SeedCounts),
    AlreadyPopulated,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedCounts {
    pub organizations: usize,
    pub users: usize,
    pub sites: usize,
    pub pools: usize,
    pub reservations: usize,
    pub blackouts: usize,
    pub grid_events: usize,
    pub incidents: usize,
}

/// Loads the demo market when the database holds no organizations yet.
pub async fn seed_if_empty(db: &PgPool) -> Result<SeedOutcome, SeedError> {
    match seed(db).await {
        Ok(counts) => Ok(SeedOutcome::Seeded(counts)),
        Err(SeedError::NotEmpty(_)) => Ok(SeedOutcome::AlreadyPopulated),
        Err(e) => Err(e),
    }
}

/// Loads the demo market into an empty database, in one transaction.
pub async fn seed(db: &PgPool) -> Result<SeedCounts, SeedError> {
    // Hash before opening the transaction: argon2 is deliberately slow.
    let mut hashes = Vec::with_capacity(ORGS.len());
    for _ in ORGS {
        hashes.push(
            password::hash(DEMO_PASSWORD.to_string())
                .await
                .map_err(|e| SeedError::Hash(e.to_string()))?,
        );
    }

    let mut tx = db.begin().await?;
    // Two servers starting at once against one empty database must not both seed.
    sqlx::query!("lock table organization in exclusive mode")
        .execute(&mut *tx)
        .await?;
    let existing = sqlx::query_scalar!(r#"select count(*) as "n!" from organization"#)
        .fetch_one(&mut *tx)
        .await?;
    if existing > 0 {
        return Err(SeedError::NotEmpty(existing));
    }

    let mut counts = SeedCounts::default();
    let mut org_ids = std::collections::HashMap::new();
    for (org, hash) in ORGS.iter().zip(hashes) {
        let org_id = sqlx::query_scalar!(
            "insert into organization (name, kind) values ($1, $2) returning id",
            org.name,
            org.kind
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query!(
            "insert into app_user (organization_id, email, display_name, password_hash, role, email_verified_at) values ($1, $2, $3, $4, 'owner', now())",
            org_id,
            org.email,
            org.person,
            hash
        )
        .execute(&mut *tx)
        .await?;
        org_ids.insert(org.name, org_id);
        counts.organizations += 1;
        counts.users += 1;
    }
    let org = |name: &str| {
        org_ids
            .get(name)
            .copied()
            .ok_or_else(|| SeedError::Inconsistent(format!("unknown organization {name}")))
    };

    let mut site_ids = std::collections::HashMap::new();
    for s in SITES {
        let id = sqlx::query_scalar!(
            r#"
            insert into site (operator_id, name, country, region, grid_region, energy_source,
                              interconnect_kw, pue, cooling, status, hashrate_th,
                              fleet_efficiency_j_th, hashprice_usd_cents_per_ph_day)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            returning id
            "#,
            org(s.operator)?,
            s.name,
            s.country,
            s.region,
            s.grid_region,
            s.energy_source,
            s.interconnect_kw,
            s.pue,
            s.cooling,
            s.status,
            s.hashrate_th,
            s.j_per_th,
            s.hashprice_cents,
        )
        .fetch_one(&mut *tx)
        .await?;
        site_ids.insert(s.name, id);
        counts.sites += 1;
    }

    // Availability opens 60 days back (so past reservations sit inside a window) and
    // runs a year ahead; times are hour-aligned UTC.
    let now_hour = Utc::now()
        .duration_trunc(Duration::hours(1))
        .map_err(|e| SeedError::Inconsistent(e.to_string()))?;
    let open = settlement::window(
        now_hour - Duration::days(60),
        now_hour + Duration::days(365),
    );

    let mut pool_ids = std::collections::HashMap::new();
    let mut pricing_of = std::collections::HashMap::new();
    let mut interruptible_prices = std::collections::HashMap::new();
    for (site, name, spec) in pools() {
        let site_id = *site_ids
            .get(site)
            .ok_or_else(|| SeedError::Inconsistent(format!("unknown site {site}")))?;
        let (pool_id, priced_unit) = match spec {
            PoolSpec::Gpu {
                model,
                nodes,
                cents_per_gpu_hour,
            } => {
                let (mem, watts, fabric) = gpu_spec(model);
                let interruptible = interruptible_price(model, cents_per_gpu_hour);
                let id = sqlx::query_scalar!(
                    r#"
                    insert into capacity_pool (site_id, kind, name, unit_count, gpu_model, gpus_per_node,
                                               gpu_memory_gb, interconnect, node_power_w, price_cents,
                                               min_term_hours, max_term_hours, min_lead_hours,
                                               interruptible_price_cents, interruptible_notice_hours)
                    values ($1, 'gpu', $2, $3, $4, 8, $5, $6, $7, $8, 24, 8760, 12, $9, 2)
                    returning id
                    "#,
                    site_id, name, nodes, model, mem, fabric, watts, cents_per_gpu_hour, interruptible
                )
                .fetch_one(&mut *tx)
                .await?;
                interruptible_prices.insert(id, interruptible);
                (id, (true, 8_i64, cents_per_gpu_hour, nodes))
            }
            PoolSpec::Power {
                block_kw,
                blocks,
                redundancy,
                cooling,
                cents_per_kw_month,
            } => {
                let id = sqlx::query_scalar!(
                    r#"
                    insert into capacity_pool (site_id, kind, name, unit_count, block_kw, redundancy, cooling,
                                               price_cents, min_term_hours, max_term_hours, min_lead_hours)
                    values ($1, 'power', $2, $3, $4, $5, $6, $7, 720, 26280, 72)
                    returning id
                    "#,
                    site_id, name, blocks, block_kw, redundancy, cooling, cents_per_kw_month
                )
                .fetch_one(&mut *tx)
                .await?;
                (id, (false, i64::from(block_kw), cents_per_kw_month, blocks))
            }
        };
        let unit_prefix = if priced_unit.0 { "node" } else { "block" };
        sqlx::query!(
            r#"
            insert into capacity_unit (site_id, pool_id, ordinal, label)
            select $1, $2, n, $3 || '-' || lpad(n::text, 3, '0')
            from generate_series(1, $4::int) as n
            "#,
            site_id,
            pool_id,
            unit_prefix,
            priced_unit.3
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "insert into availability_window (site_id, pool_id, during) values ($1, $2, $3)",
            site_id,
            pool_id,
            open
        )
        .execute(&mut *tx)
        .await?;
        for d in DISCOUNTS {
            sqlx::query!(
                "insert into pool_term_discount (site_id, pool_id, min_hours, discount_bp) values ($1, $2, $3, $4)",
                site_id, pool_id, d.min_hours as i32, d.discount_bp as i32
            )
            .execute(&mut *tx)
            .await?;
        }
        for (notice, refund) in CANCELLATION {
            sqlx::query!(
                "insert into pool_cancellation_tier (site_id, pool_id, min_notice_hours, refund_bp) values ($1, $2, $3, $4)",
                site_id, pool_id, notice, refund
            )
            .execute(&mut *tx)
            .await?;
        }
        pool_ids.insert((site, name), (site_id, pool_id));
        pricing_of.insert(pool_id, priced_unit);
        counts.pools += 1;
    }
    let pool = |site: &str, name: &str| {
        pool_ids
            .iter()
            .find(|((s, n), _)| *s == site && *n == name)
            .map(|(_, ids)| *ids)
            .ok_or_else(|| SeedError::Inconsistent(format!("unknown pool {site} / {name}")))
    };

    // Forward terms before the reservations: PostgreSQL locks them into each one it books.
    {
        let (site, name, days, late_bp, walk_days) = FORWARD;
        let (_, pool_id) = pool(site, name)?;
        let delivery = now_hour
            .duration_trunc(Duration::days(1))
            .unwrap_or(now_hour)
            + Duration::days(days);
        sqlx::query!(
            "update capacity_pool set delivery_at = $2, late_credit_bp = $3, walk_away_at = $4 where id = $1",
            pool_id,
            delivery,
            late_bp,
            delivery + Duration::days(walk_days)
        )
        .execute(&mut *tx)
        .await?;
    }

    for &(site, name, units, start_h, hours, reason) in BLACKOUTS {
        let (site_id, pool_id) = pool(site, name)?;
        let during = hour_window(now_hour, start_h, hours);
        let id = sqlx::query_scalar!(
            "insert into blackout (site_id, pool_id, during, reason) values ($1, $2, $3, $4) returning id",
            site_id, pool_id, during, reason
        )
        .fetch_one(&mut *tx)
        .await?;
        settlement::allocate(
            &mut tx,
            pool_id,
            &during,
            i64::from(units),
            settlement::AllocationOwner::Blackout(id),
        )
        .await
        .map_err(|e| SeedError::Inconsistent(format!("blackout on {site} / {name}: {e}")))?;
        counts.blackouts += 1;
    }

    let firm = RESERVATIONS
        .iter()
        .map(|&(c, s, n, u, st, h, cancelled)| (c, s, n, u, st, h, cancelled, "firm"));
    let interruptible = INTERRUPTIBLE_RESERVATIONS
        .iter()
        .map(|&(c, s, n, u, st, h)| (c, s, n, u, st, h, false, "interruptible"));
    for (customer, site, name, units, start_h, hours, cancelled, tier) in firm.chain(interruptible)
    {
        let (site_id, pool_id) = pool(site, name)?;
        let (is_gpu, per_unit, firm_price, _) = pricing_of[&pool_id];
        let unit_price = if tier == "firm" {
            firm_price
        } else {
            interruptible_prices
                .get(&pool_id)
                .copied()
                .flatten()
                .ok_or_else(|| {
                    SeedError::Inconsistent(format!("{site} / {name} sells no interruptible tier"))
                })?
        };
        let priced = if is_gpu {
            Priced::Gpu {
                nodes: i64::from(units),
                gpus_per_node: per_unit,
                cents_per_gpu_hour: unit_price,
            }
        } else {
            Priced::Power {
                blocks: i64::from(units),
                block_kw: per_unit,
                cents_per_kw_month: unit_price,
            }
        };
        let p = pricing::price(priced, hours, DISCOUNTS, DEFAULT_PLATFORM_FEE_BP);
        let during = hour_window(now_hour, start_h, hours);
        let created_at: DateTime<Utc> =
            now_hour + Duration::hours(start_h.min(0)) - Duration::days(7);
        let cancelled_at = cancelled.then(|| now_hour - Duration::hours(2));
        let state = if cancelled { "cancelled" } else { "confirmed" };
        let id = sqlx::query_scalar!(
            r#"
            insert into reservation (site_id, pool_id, customer_id, unit_count, during, state, currency,
                                     unit_price_cents, base_cents, discount_cents, fee_cents, total_cents,
                                     cancelled_at, created_at, updated_at, tier)
            values ($1, $2, $3, $4, $5, $6, 'USD', $7, $8, $9, $10, $11, $12, $13, $13, $14)
            returning id
            "#,
            site_id, pool_id, org(customer)?, units, during, state, unit_price,
            p.base_cents, p.discount_cents, p.fee_cents, p.total_cents, cancelled_at, created_at, tier
        )
        .fetch_one(&mut *tx)
        .await?;
        // A cancelled reservation holds no units.
        if !cancelled {
            settlement::allocate(
                &mut tx,
                pool_id,
                &during,
                i64::from(units),
                settlement::AllocationOwner::Reservation(id),
            )
            .await
            .map_err(|e| SeedError::Inconsistent(format!("reservation on {site} / {name}: {e}")))?;
        }
        counts.reservations += 1;
    }

    // A customer selling back the last three days of two nodes of a contract, a tenth under
    // the list price, so search and the pool page show a resale listing.
    let (_, resale_pool) = pool(RESALE.1, RESALE.2)?;
    let (_, per_node, list_price, _) = pricing_of[&resale_pool];
    let listed = sqlx::query!(
        r#"insert into resale_listing (seller_id, reservation_id, site_id, pool_id, unit_count, during,
                                       unit_hour_price_cents, currency)
           select r.customer_id, r.id, r.site_id, r.pool_id, $3,
                  tstzrange(upper(r.during) - make_interval(hours => $4), upper(r.during)), $5, r.currency
             from reservation r join organization o on o.id = r.customer_id
            where r.pool_id = $1 and o.name = $2 and r.state = 'confirmed' and r.tier = 'firm'
            order by r.id limit 1"#,
        resale_pool,
        RESALE.0,
        RESALE.3,
        RESALE.4 as i32,
        per_node * list_price * 9 / 10,
    )
    .execute(&mut *tx)
    .await?;
    if listed.rows_affected() != 1 {
        return Err(SeedError::Inconsistent(format!(
            "no reservation of {} on {} / {} to list for resale",
            RESALE.0, RESALE.1, RESALE.2
        )));
    }

    // Recorded as the operator would have recorded it an hour before it started, through
    // the one use case that plans the shed, cuts and credits.
    for g in GRID_EVENTS {
        let site = g.site;
        let site_id = *site_ids
            .get(site)
            .ok_or_else(|| SeedError::Inconsistent(format!("unknown site {site}")))?;
        let operator_id =
            sqlx::query_scalar!("select operator_id from site where id = $1", site_id)
                .fetch_one(&mut *tx)
                .await?;
        let start = now_hour + Duration::hours(g.start_h);
        let event = grid_events::NewGridEvent {
            program: g.program.to_string(),
            window: HourWindow::starting_at(start, g.hours)
                .map_err(|e| SeedError::Inconsistent(format!("grid event on {site}: {e}")))?,
            shed_kw: g.shed_kw,
            payment_cents_per_mwh: g.cents_per_mwh,
        };
        grid_events::record_in(
            &mut tx,
            operator_id,
            site_id,
            &event,
            start - Duration::hours(1),
        )
        .await
        .map_err(|e| SeedError::Inconsistent(format!("grid event on {site}: {e}")))?;
        counts.grid_events += 1;
    }

    // Past incidents, written as they would have been recorded then (the incident's own
    // clock is its creation) and healed by the one function that heals: PostgreSQL's
    // `incident_heal`, with hours from `heal_from` movable and earlier ones lost.
    for &(site, name, customer, start_h, hours, recorded_after_h, cause) in INCIDENTS {
        let (_, pool_id) = pool(site, name)?;
        let start = now_hour + Duration::hours(start_h);
        let end = start + Duration::hours(hours);
        let recorded = start + Duration::hours(recorded_after_h);
        let id = sqlx::query_scalar!(
            r#"insert into incident (site_id, pool_id, cause, started_at, ends_at, during, created_at)
               select p.site_id, p.id, $2, $3, $4, tstzrange($3, $4), $5 from capacity_pool p where p.id = $1
               returning id"#,
            pool_id,
            cause,
            start,
            end,
            recorded
        )
        .fetch_one(&mut *tx)
        .await?;
        let unit = sqlx::query!(
            r#"insert into incident_unit (incident_id, unit_id)
               select $1, a.unit_id from allocation a
                 join reservation r on r.id = a.reservation_id
                 join organization o on o.id = r.customer_id
                where a.pool_id = $2 and o.name = $3 and a.during @> tstzrange($4, $5)
                order by a.unit_id limit 1"#,
            id,
            pool_id,
            customer,
            start,
            end
        )
        .execute(&mut *tx)
        .await?;
        if unit.rows_affected() != 1 {
            return Err(SeedError::Inconsistent(format!(
                "no unit of {customer} on {site} / {name} for an incident"
            )));
        }
        sqlx::query!(
            "select * from incident_heal($1, tstzrange($2, $3), $4)",
            id,
            start,
            end,
            app::window::ceil_hour(recorded)
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query!("select incident_resolve($1, $2)", id, end)
            .fetch_one(&mut *tx)
            .await?;
        counts.incidents += 1;
    }
    sqlx::query!("select refresh_pool_reliability()")
        .fetch_one(&mut *tx)
        .await?;

    tx.commit().await?;
    Ok(counts)
}

fn hour_window(
    now_hour: DateTime<Utc>,
    start_h: i64,
    hours: i64,
) -> sqlx::postgres::types::PgRange<DateTime<Utc>> {
    let start = now_hour + Duration::hours(start_h);
    settlement::window(start, start + Duration::hours(hours))
}

/// The demo accounts, for the README and the start-up banner: (organization, kind, email).
pub fn demo_accounts() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    ORGS.iter().map(|o| (o.name, o.kind, o.email))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_sites_never_list_more_firm_load_than_their_interconnect() {
        for site in SITES {
            let load_kw: f64 = pools()
                .iter()
                .filter(|(s, _, _)| *s == site.name)
                .map(|(_, _, spec)| match spec {
                    PoolSpec::Gpu { model, nodes, .. } => {
                        f64::from(*nodes) * f64::from(gpu_spec(model).1) / 1000.0 * site.pue
                    }
                    PoolSpec::Power {
                        block_kw, blocks, ..
                    } => f64::from(block_kw * blocks),
                })
                .sum();
            assert!(
                load_kw <= f64::from(site.interconnect_kw),
                "{} lists {load_kw} kW over a {} kW interconnect",
                site.name,
                site.interconnect_kw
            );
        }
    }

    #[test]
    fn every_demo_reference_points_at_a_known_org_site_and_pool() {
        let pools = pools();
        for (customer, site, pool, ..) in RESERVATIONS {
            assert!(ORGS.iter().any(|o| o.name == *customer), "{customer}");
            assert!(
                pools.iter().any(|(s, n, _)| s == site && n == pool),
                "{site} / {pool}"
            );
        }
        for (customer, site, pool, ..) in INTERRUPTIBLE_RESERVATIONS {
            assert!(ORGS.iter().any(|o| o.name == *customer), "{customer}");
            assert!(
                pools.iter().any(|(s, n, _)| s == site && n == pool),
                "{site} / {pool}"
            );
        }
        for g in GRID_EVENTS {
            assert!(SITES.iter().any(|s| s.name == g.site), "{}", g.site);
        }
        for (site, pool, ..) in BLACKOUTS {
            assert!(
                pools.iter().any(|(s, n, _)| s == site && n == pool),
                "{site} / {pool}"
            );
        }
        for s in SITES {
            assert!(
                ORGS.iter()
                    .any(|o| o.name == s.operator && o.kind != "customer"),
                "{}",
                s.operator
            );
        }
    }
}
