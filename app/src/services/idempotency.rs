//! The store behind `Idempotency-Key` (API) and `request_key` (browser forms): a key is
//! claimed before its request runs, its answer kept for replay, released after a failure
//! that took no effect, or marked `unknown` after one that may have. Each claim names the
//! lease of the process running it, so a process's death is seen within seconds. The HTTP
//! layer that uses it is the server's `api::idempotency`.

use super::lease::{Lease, LEASE_SECONDS};
use sqlx::PgPool;

/// Kept at least this long, then purged.
pub const RETENTION_HOURS: i64 = 24;

/// A key still `running` this long after its claim lost its request (the process stopped),
/// for claims made before claims named their process's lease: no request runs that long
/// (the 408 timeout, run to completion, and the background retry of its record all end
/// sooner).
const ABANDONED_AFTER_SECONDS: i32 = 300;

/// One claim's own token (see the `claim_token` column): what it records or releases is
/// its own, never a later claim of the same key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimToken(pub i64);

impl ClaimToken {
    pub fn new() -> Self {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        Self(i64::from_le_bytes(bytes))
    }
}

impl Default for ClaimToken {
    fn default() -> Self {
        Self::new()
    }
}

/// What a request with a key may do.
pub enum Claim {
    Run,
    Replay {
        status: i16,
        content_type: Option<String>,
        location: Option<String>,
        body: Vec<u8>,
    },
    Running,
    /// The first request may or may not have taken effect: it failed after reaching the
    /// database (state `unknown`), or its process stopped while it ran (its lease lapsed),
    /// and running it again could do it twice.
    Unknown,
    OtherRequest,
}

/// Whether running a request again is safe whatever its first run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rerun {
    /// It finds its own earlier effect by its key (a keyed reservation or hold: the
    /// reservation carries the key), so a cut-off first run is simply run again.
    FindsItsOwnEffect,
    /// It might do its effect twice: a cut-off first run is reported, never rerun.
    Unsafe,
}

/// Claims `key` of organization `org` for a request whose hash is `hash`, as `token`, run by
/// the process holding `lease`: run it, replay the answer kept for it, or refuse (another
/// request has the key, or it is still running, or its first run was cut off). A first run
/// cut off (its process's lease lapsed, or it ended `unknown`) is taken over when `rerun`
/// says that is safe, so the retry gets a definite answer within seconds.
pub async fn claim(
    db: &PgPool,
    lease: Lease,
    token: ClaimToken,
    org: i64,
    key: &str,
    hash: &[u8],
    rerun: Rerun,
) -> Result<Claim, sqlx::Error> {
    // A key past its retention is gone, even if the purge has not run yet.
    sqlx::query!(
        "delete from idempotency_key where organization_id = $1 and key = $2 and created_at < now() - make_interval(hours => $3)",
        org,
        key,
        RETENTION_HOURS as i32
    )
    .execute(db)
    .await?;
    let fresh = sqlx::query_scalar!(
        r#"insert into idempotency_key (organization_id, key, request_hash, state, lease_id, claim_token)
           values ($1, $2, $3, 'running', $4, $5)
           on conflict do nothing returning 1 as "one!""#,
        org,
        key,
        hash,
        lease.0,
        token.0
    )
    .fetch_optional(db)
    .await?;
    if fresh.is_some() {
        return Ok(Claim::Run);
    }
    let Some(row) = sqlx::query!(
        r#"select k.request_hash, k.state, k.status, k.content_type, k.location, k.body, k.lease_id,
                  case when k.lease_id is null
                       then k.created_at < now() - make_interval(secs => $3)
                       else coalesce(l.renewed_at < now() - make_interval(secs => $4), true)
                  end as "abandoned!"
           from idempotency_key k left join server_lease l on l.id = k.lease_id
           where k.organization_id = $1 and k.key = $2"#,
        org,
        key,
        f64::from(ABANDONED_AFTER_SECONDS),
        f64::from(LEASE_SECONDS)
    )
    .fetch_optional(db)
    .await?
    else {
        // Released by a failed first attempt in between: this request may run.
        return Box::pin(claim(db, lease, token, org, key, hash, rerun)).await;
    };
    let cut_off = row.state == "unknown" || row.state == "running" && row.abandoned;
    Ok(if row.request_hash != hash {
        Claim::OtherRequest
    } else if cut_off && rerun == Rerun::FindsItsOwnEffect {
        // Taken over only if no other retry took it first (the same cut-off owner).
        let taken = sqlx::query_scalar!(
            r#"update idempotency_key set state = 'running', lease_id = $3, claim_token = $6
               where organization_id = $1 and key = $2 and state = $4
                 and lease_id is not distinct from $5
               returning 1 as "one!""#,
            org,
            key,
            lease.0,
            row.state,
            row.lease_id,
            token.0
        )
        .fetch_optional(db)
        .await?;
        match taken {
            Some(_) => Claim::Run,
            None => return Box::pin(claim(db, lease, token, org, key, hash, rerun)).await,
        }
    } else if cut_off {
        Claim::Unknown
    } else if row.state == "running" {
        Claim::Running
    } else {
        Claim::Replay {
            status: row.status.unwrap_or(200),
            content_type: row.content_type,
            location: row.location,
            body: row.body.unwrap_or_default(),
        }
    })
}

/// What becomes of a key once its request has answered.
pub enum Outcome {
    /// A 5xx before anything reached the database: the key is released so the caller may
    /// retry.
    Release,
    /// A 5xx after the request may have taken effect: the key is never run again.
    Unknown,
    /// Anything else is kept and replayed to retries.
    Keep {
        status: i16,
        content_type: Option<String>,
        location: Option<String>,
        body: Vec<u8>,
    },
}

/// Records what became of a key's request, run under the claim `token`. A claim another
/// process took over meanwhile (this one was taken for dead) is that process's to record.
pub async fn record(
    db: &PgPool,
    token: ClaimToken,
    org: i64,
    key: &str,
    outcome: &Outcome,
) -> Result<(), sqlx::Error> {
    match outcome {
        Outcome::Release => release(db, token, org, key).await,
        Outcome::Unknown => sqlx::query!(
            "update idempotency_key set state = 'unknown', completed_at = now()
             where organization_id = $1 and key = $2 and state = 'running' and claim_token = $3",
            org,
            key,
            token.0
        )
        .execute(db)
        .await
        .map(|_| ()),
        Outcome::Keep {
            status,
            content_type,
            location,
            body,
        } => sqlx::query!(
            r#"update idempotency_key set state = 'done', status = $3, content_type = $4, body = $5,
                      location = $6, completed_at = now()
               where organization_id = $1 and key = $2 and state = 'running' and claim_token = $7"#,
            org,
            key,
            status,
            content_type.as_deref(),
            body.as_slice(),
            location.as_deref(),
            token.0
        )
        .execute(db)
        .await
        .map(|_| ()),
    }
}

/// Frees a key whose run under the claim `token` took no effect (or never started: the
/// claim's own answer was lost), for the caller to retry.
pub async fn release(
    db: &PgPool,
    token: ClaimToken,
    org: i64,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "delete from idempotency_key
         where organization_id = $1 and key = $2 and state = 'running' and claim_token = $3",
        org,
        key,
        token.0
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// Drops keys past their retention.
pub async fn purge(db: &PgPool) -> Result<u64, sqlx::Error> {
    let r = sqlx::query!(
        "delete from idempotency_key where created_at < now() - make_interval(hours => $1)",
        RETENTION_HOURS as i32
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}
