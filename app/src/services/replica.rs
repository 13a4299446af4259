//! Reads that may come from a replica: anonymous market browsing and search, when a replica
//! is configured and no further behind the primary than a bound. Everything else (writes,
//! and every page of a signed-in person, so people always read their own writes) uses the
//! primary.
//!
//! How far behind a replica is, is read from the replica itself: every server process renews
//! its lease on the primary every second ([`super::lease`]), so the newest renewal the
//! replica has replayed is at most a second old on a replica that is caught up, and as old
//! as its lag on one that is not. No clock but the database's is involved.

use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A replica and whether it is fresh enough to read from now.
#[derive(Clone, Debug)]
pub struct ReadReplica {
    pool: PgPool,
    fresh: Arc<AtomicBool>,
    max_lag_secs: u32,
}

impl ReadReplica {
    /// Not fresh until its first check.
    pub fn new(pool: PgPool, max_lag_secs: u32) -> Self {
        Self {
            pool,
            fresh: Arc::new(AtomicBool::new(false)),
            max_lag_secs,
        }
    }

    /// The replica's pool while it is within its bound.
    pub fn pool_if_fresh(&self) -> Option<PgPool> {
        self.fresh
            .load(Ordering::Relaxed)
            .then(|| self.pool.clone())
    }

    /// Checks the replica's lag every second, for as long as the task runs. A replica that
    /// can't be reached, or whose newest lease renewal is older than the bound, is not read.
    pub async fn watch(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let lag = tokio::time::timeout(Duration::from_secs(2), lag_seconds(&self.pool)).await;
            let fresh = matches!(lag, Ok(Ok(Some(secs))) if secs <= f64::from(self.max_lag_secs));
            if fresh != self.fresh.swap(fresh, Ordering::Relaxed) {
                match lag {
                    Ok(Ok(Some(secs))) => tracing::info!(
                        fresh,
                        lag_secs = secs,
                        "anonymous reads {} the replica",
                        if fresh { "use" } else { "leave" }
                    ),
                    _ => tracing::warn!("anonymous reads leave the replica: it does not answer"),
                }
            }
        }
    }
}

/// How many seconds behind the primary the database behind `db` is, by the newest lease
/// renewal it holds (`None` while no server has ever held a lease).
pub async fn lag_seconds(db: &PgPool) -> Result<Option<f64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select extract(epoch from now() - max(renewed_at))::float8 as "lag" from server_lease"#
    )
    .fetch_one(db)
    .await
}
