//! Browser sessions, stored in PostgreSQL so any number of server processes share them.
//! The cookie holds 256 random bits; the table holds only their SHA-256. A session ends at
//! logout (deleted), after `idle` without requests, or `absolute` after sign-in, whichever
//! comes first.

use super::error::ServiceError;
use super::principal::{Door, Principal};
use super::token;
use crate::account::{CurrentUser, OrgKind};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::hours(12),
            absolute: Duration::days(7),
        }
    }
}

/// Starts a session for `user_id`; returns the secret for the cookie.
pub async fn start(
    db: &PgPool,
    user_id: i64,
    user_agent: &str,
    policy: SessionPolicy,
    now: DateTime<Utc>,
) -> Result<String, ServiceError> {
    let secret = token::random_hex(32);
    let user_agent: String = user_agent.chars().take(400).collect();
    sqlx::query!(
        r#"insert into session (id_hash, user_id, created_at, last_seen_at, expires_at, user_agent)
           values ($1, $2, $3, $3, $4, $5)"#,
        token::sha256(&secret),
        user_id,
        now,
        now + policy.absolute,
        user_agent
    )
    .execute(db)
    .await?;
    Ok(secret)
}

/// The person and organization behind a live session, or `None` for an unknown, expired
/// or idle session, or one whose organization is suspended.
pub async fn resolve(
    db: &PgPool,
    secret: &str,
    policy: SessionPolicy,
    now: DateTime<Utc>,
) -> Result<Option<(Principal, CurrentUser)>, ServiceError> {
    // Anything that isn't one of our secrets is not worth a query.
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let hash = token::sha256(secret);
    let row = sqlx::query!(
        r#"select u.id as user_id, u.email, u.display_name, u.platform_admin,
                  u.email_verified_at is not null as "email_verified!",
                  u.totp_enabled_at is not null as "second_factor!",
                  o.id as organization_id, o.name as organization_name, o.kind,
                  s.last_seen_at
           from session s
           join app_user u on u.id = s.user_id
           join organization o on o.id = u.organization_id
           where s.id_hash = $1 and s.expires_at > $2 and s.last_seen_at > $3
             and o.suspended_at is null"#,
        hash,
        now,
        now - policy.idle
    )
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    // Keep the session alive, writing at most once a minute per session.
    if now - row.last_seen_at > Duration::minutes(1) {
        sqlx::query!(
            "update session set last_seen_at = $2 where id_hash = $1",
            hash,
            now
        )
        .execute(db)
        .await?;
    }
    let kind = OrgKind::parse(&row.kind).unwrap_or(OrgKind::Customer);
    let principal = Principal {
        organization_id: row.organization_id,
        kind,
        platform_admin: row.platform_admin,
        second_factor: row.second_factor,
        door: Door::Session {
            user_id: row.user_id,
        },
    };
    let user = CurrentUser {
        user_id: row.user_id,
        email: row.email,
        display_name: row.display_name,
        organization_id: row.organization_id,
        organization_name: row.organization_name,
        kind,
        platform_admin: row.platform_admin,
        email_verified: row.email_verified,
        second_factor: row.second_factor,
    };
    Ok(Some((principal, user)))
}

/// Ends the session (logout). Ending an unknown session is not an error.
pub async fn end(db: &PgPool, secret: &str) -> Result<(), ServiceError> {
    sqlx::query!(
        "delete from session where id_hash = $1",
        token::sha256(secret)
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Ends every session of `user_id` except `keep` (after a password change).
pub async fn end_others(
    db: &PgPool,
    user_id: i64,
    keep: Option<&str>,
) -> Result<u64, ServiceError> {
    let keep = keep.map(token::sha256).unwrap_or_default();
    let r = sqlx::query!(
        "delete from session where user_id = $1 and id_hash <> $2",
        user_id,
        keep
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// Deletes sessions past their absolute or idle expiry.
pub async fn purge(
    db: &PgPool,
    policy: SessionPolicy,
    now: DateTime<Utc>,
) -> Result<u64, ServiceError> {
    let r = sqlx::query!(
        "delete from session where expires_at <= $1 or last_seen_at <= $2",
        now,
        now - policy.idle
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}
