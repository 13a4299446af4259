//! Login throttling, per account and per client address, kept in PostgreSQL so every server
//! process counts the same failures. After `limit` failures within the window, attempts are
//! refused until a lock expires; each further failure doubles the lock, up to a cap, so an
//! attacker is slowed to a crawl while the real owner is never locked out for long.

use super::error::ServiceError;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug)]
pub struct Limit {
    /// Failures allowed within `window_secs` before locking.
    pub failures: i32,
    pub window_secs: i64,
    /// The first lock; doubled by each further failure, up to `max_lock_secs`.
    pub lock_secs: i64,
    pub max_lock_secs: i64,
}

/// Per account: five tries, then a minute, doubling to at most fifteen minutes.
pub const ACCOUNT: Limit = Limit {
    failures: 5,
    window_secs: 15 * 60,
    lock_secs: 60,
    max_lock_secs: 15 * 60,
};

/// Per client address: more room, since offices and NATs share addresses.
pub const ADDRESS: Limit = Limit {
    failures: 30,
    window_secs: 15 * 60,
    lock_secs: 60,
    max_lock_secs: 15 * 60,
};

pub fn account_key(email: &str) -> String {
    format!("account:{email}")
}

pub fn address_key(ip: IpAddr) -> String {
    format!("address:{ip}")
}

/// Refuses with 429 (and the seconds to wait) while any of `keys` is locked.
pub async fn check(db: &PgPool, keys: &[String], now: DateTime<Utc>) -> Result<(), ServiceError> {
    let locked_until = sqlx::query_scalar!(
        r#"select max(locked_until) from login_throttle
           where key = any($1) and locked_until > $2"#,
        keys,
        now
    )
    .fetch_one(db)
    .await?;
    match locked_until {
        Some(until) => Err(too_many(until, now)),
        None => Ok(()),
    }
}

fn too_many(until: DateTime<Utc>, now: DateTime<Utc>) -> ServiceError {
    let secs = (until - now).num_seconds().max(1) as u64;
    let wait = if secs >= 90 {
        format!("{} minutes", secs.div_ceil(60))
    } else {
        format!("{secs} seconds")
    };
    ServiceError::TooManyRequests {
        message: format!(
            "too many failed sign-in attempts; wait {wait} and try again, or reset your password with your administrator"
        ),
        retry_after_secs: secs,
    }
}

/// Counts a failure against `key`; locks it once the limit is reached.
pub async fn fail(
    db: &PgPool,
    key: &str,
    limit: Limit,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    // One statement, so concurrent failures from many processes all count.
    sqlx::query!(
        r#"insert into login_throttle as t (key, failures, window_start)
           values ($1, 1, $2::timestamptz)
           on conflict (key) do update set
             failures = case when t.window_start < $2 - make_interval(secs => $3::bigint::double precision)
                             then 1 else t.failures + 1 end,
             window_start = case when t.window_start < $2 - make_interval(secs => $3::bigint::double precision)
                                 then $2 else t.window_start end"#,
        key,
        now,
        limit.window_secs
    )
    .execute(db)
    .await?;
    sqlx::query!(
        r#"update login_throttle set locked_until = $2::timestamptz + make_interval(secs => least(
               $5::bigint, $4::bigint * power(2, least(failures - $3, 20)))::double precision)
           where key = $1 and failures >= $3"#,
        key,
        now,
        limit.failures,
        limit.lock_secs,
        limit.max_lock_secs
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets the failures of `key` (after a successful sign-in).
pub async fn clear(db: &PgPool, key: &str) -> Result<(), ServiceError> {
    sqlx::query!("delete from login_throttle where key = $1", key)
        .execute(db)
        .await?;
    Ok(())
}

/// Drops rows whose window and lock are long over.
pub async fn purge(db: &PgPool, now: DateTime<Utc>) -> Result<u64, ServiceError> {
    let r = sqlx::query!(
        r#"delete from login_throttle
           where window_start < $1::timestamptz - interval '1 day'
             and (locked_until is null or locked_until < $1)"#,
        now
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}
