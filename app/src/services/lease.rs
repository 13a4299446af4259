//! The lease each server process holds while it runs: renewed every [`RENEW_EVERY`], dropped
//! when the process stops. Keyed requests name the lease of the process running them (see
//! [`super::idempotency`]), so a request cut off by its process's death is known to be
//! within [`LEASE_SECONDS`], measured by the database's clock, the one clock every process
//! shares.

use sqlx::PgPool;
use std::time::Duration;

/// How often a running process renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// A lease not renewed for this long belongs to a process that has stopped. Five renewals:
/// a process busy or briefly cut off from the database is not taken for dead.
pub const LEASE_SECONDS: i32 = 5;

/// A process's lease, by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease(pub i64);

impl Lease {
    /// Takes a new lease for this process.
    pub async fn take(db: &PgPool) -> Result<Self, sqlx::Error> {
        let id = sqlx::query_scalar!(
            "insert into server_lease (host, pid) values ($1, $2) returning id",
            host(),
            std::process::id() as i32
        )
        .fetch_one(db)
        .await?;
        Ok(Self(id))
    }

    /// Renews the lease, taking it back under the same id if it was purged meanwhile.
    pub async fn renew(self, db: &PgPool) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "insert into server_lease (id, host, pid) values ($1, $2, $3)
             on conflict (id) do update set renewed_at = now()",
            self.0,
            host(),
            std::process::id() as i32
        )
        .execute(db)
        .await
        .map(|_| ())
    }

    /// Renews the lease every [`RENEW_EVERY`] until the task is dropped or aborted.
    pub async fn keep(self, db: PgPool) {
        let mut tick = tokio::time::interval(RENEW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            match self.renew(&db).await {
                Ok(()) if failing => {
                    tracing::info!(lease = self.0, "renewing this process's lease again");
                    failing = false;
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    tracing::warn!(error = %e, lease = self.0, "could not renew this process's lease");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }

    /// Drops the lease as the process stops: its keyed requests that never recorded an
    /// answer are at once known to be cut off.
    pub async fn end(self, db: &PgPool) -> Result<(), sqlx::Error> {
        sqlx::query!("delete from server_lease where id = $1", self.0)
            .execute(db)
            .await
            .map(|_| ())
    }
}

/// Deletes leases not renewed for a day (processes long stopped). Claims naming them stay
/// abandoned: a missing lease reads as a stopped process.
pub async fn purge(db: &PgPool) -> Result<u64, sqlx::Error> {
    let r = sqlx::query!("delete from server_lease where renewed_at < now() - interval '1 day'")
        .execute(db)
        .await?;
    Ok(r.rows_affected())
}

fn host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    if name.is_empty() {
        "unknown".into()
    } else {
        name.chars().take(255).collect()
    }
}
