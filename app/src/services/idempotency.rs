//! The store behind `Idempotency-Key` (API) and `request_key` (browser forms): a key is
//! claimed before its request runs, its answer kept for replay, released after a failure
//! that took no effect, or marked `unknown` after one that may have. The HTTP layer that
//! uses it is the server's `api::idempotency`.

use sqlx::PgPool;

/// Kept at least this long, then purged.
pub const RETENTION_HOURS: i64 = 24;

/// A key still `running` this long after its claim lost its request (the process stopped):
/// no request runs that long (the 408 timeout, run to completion, and the background retry
/// of its record all end sooner).
const ABANDONED_AFTER_SECONDS: i32 = 300;

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
    /// database (state `unknown`), or it is still `running` long after any request could
    /// have ended (its process stopped).
    Unknown,
    OtherRequest,
}

/// Claims `key` of organization `org` for a request whose hash is `hash`: run it, replay
/// the answer kept for it, or refuse (another request has the key, or it is still running,
/// or its first run was cut off).
pub async fn claim(db: &PgPool, org: i64, key: &str, hash: &[u8]) -> Result<Claim, sqlx::Error> {
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
        r#"insert into idempotency_key (organization_id, key, request_hash, state)
           values ($1, $2, $3, 'running')
           on conflict do nothing returning 1 as "one!""#,
        org,
        key,
        hash
    )
    .fetch_optional(db)
    .await?;
    if fresh.is_some() {
        return Ok(Claim::Run);
    }
    let Some(row) = sqlx::query!(
        r#"select request_hash, state, status, content_type, location, body,
                  created_at < now() - make_interval(secs => $3) as "abandoned!"
           from idempotency_key where organization_id = $1 and key = $2"#,
        org,
        key,
        f64::from(ABANDONED_AFTER_SECONDS)
    )
    .fetch_optional(db)
    .await?
    else {
        // Released by a failed first attempt in between: this request may run.
        return Box::pin(claim(db, org, key, hash)).await;
    };
    Ok(if row.request_hash != hash {
        Claim::OtherRequest
    } else if row.state == "unknown" || row.state == "running" && row.abandoned {
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

/// Records what became of a key's request.
pub async fn record(
    db: &PgPool,
    org: i64,
    key: &str,
    outcome: &Outcome,
) -> Result<(), sqlx::Error> {
    match outcome {
        Outcome::Release => release(db, org, key).await,
        Outcome::Unknown => sqlx::query!(
            "update idempotency_key set state = 'unknown', completed_at = now()
             where organization_id = $1 and key = $2 and state = 'running'",
            org,
            key
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
               where organization_id = $1 and key = $2 and state = 'running'"#,
            org,
            key,
            status,
            content_type.as_deref(),
            body.as_slice(),
            location.as_deref()
        )
        .execute(db)
        .await
        .map(|_| ()),
    }
}

pub async fn release(db: &PgPool, org: i64, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "delete from idempotency_key where organization_id = $1 and key = $2 and state = 'running'",
        org,
        key
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
