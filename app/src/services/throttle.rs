//! Login throttling, per account and per client address, kept in PostgreSQL so every server
//! process counts the same attempts. Each attempt is claimed before the password is checked
//! ([`attempt`]); after `limit` failures within the window, attempts are refused until a lock
//! expires; each further failure doubles the lock, up to a cap, so an attacker is slowed to a
//! crawl while the real owner is never locked out for long.

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

/// IPv6 clients usually hold a whole /64, so they are counted per /64.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("address:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("address:{v4}"),
            None => {
                let s = v6.segments();
                format!("address:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

pub fn signup_key(ip: IpAddr) -> String {
    format!("signup:{}", address_key(ip).trim_start_matches("address:"))
}

/// Password-reset mails asked for from a client address (each sends a mail), counted apart
/// from sign-ups so one does not use up the other.
pub fn reset_key(ip: IpAddr) -> String {
    format!("reset:{}", address_key(ip).trim_start_matches("address:"))
}

/// Sign-ups per client address: ten an hour (each costs a password hash).
pub const SIGNUP: Limit = Limit {
    failures: 10,
    window_secs: 3600,
    lock_secs: 3600,
    max_lock_secs: 3600,
};

/// Claims one attempt against `key` before the password is checked, so that parallel
/// requests can't all slip past the limit while the (slow) check runs. Refused (429 with the
/// seconds to wait) while a lock holds, or when `limit.failures` attempts are already counted
/// in the window and no lock has just ended. After a lock ends exactly one attempt goes
/// through; if it fails, [`fail`] locks again for twice as long.
pub async fn attempt(
    db: &PgPool,
    key: &str,
    limit: Limit,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let claimed = sqlx::query_scalar!(
        r#"insert into login_throttle as t (key, failures, window_start)
           values ($1, 1, $2::timestamptz)
           on conflict (key) do update set
             failures = case when t.window_start < $2::timestamptz - make_interval(secs => $3::bigint::double precision)
                             then 1 else t.failures + 1 end,
             window_start = case when t.window_start < $2::timestamptz - make_interval(secs => $3::bigint::double precision)
                                 then $2::timestamptz else t.window_start end,
             locked_until = null
           where (t.locked_until is null or t.locked_until <= $2::timestamptz)
             and (t.failures < $4
                  or t.locked_until is not null
                  or t.window_start < $2::timestamptz - make_interval(secs => $3::bigint::double precision))
           returning failures"#,
        key,
        now,
        limit.window_secs,
        limit.failures
    )
    .fetch_optional(db)
    .await?;
    if claimed.is_some() {
        return Ok(());
    }
    let row = sqlx::query!(
        "select locked_until, window_start from login_throttle where key = $1",
        key
    )
    .fetch_optional(db)
    .await?;
    let until = match row {
        Some(r) => match r.locked_until {
            Some(l) if l > now => l,
            // Over the limit with an attempt still being checked: wait for the window.
            _ => r.window_start + chrono::Duration::seconds(limit.window_secs),
        },
        None => now + chrono::Duration::seconds(limit.lock_secs),
    };
    Err(too_many(until, now))
}

fn too_many(until: DateTime<Utc>, now: DateTime<Utc>) -> ServiceError {
    // Rounded up, so a client that waits exactly this long is not refused again.
    let millis = (until - now).num_milliseconds().max(1) as u64;
    let secs = millis.div_ceil(1000);
    let wait = if secs >= 90 {
        format!("{} minutes", secs.div_ceil(60))
    } else {
        format!("{secs} seconds")
    };
    ServiceError::TooManyRequests {
        message: format!(
            "too many attempts; wait {wait} and try again (a forgotten password can be reset from the sign-in page)"
        ),
        retry_after_secs: secs,
    }
}

/// The attempt claimed on `key` failed: once the limit is reached, lock; each failure past
/// it doubles the lock, up to the cap.
pub async fn fail(
    db: &PgPool,
    key: &str,
    limit: Limit,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
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

/// The attempt succeeded: forget the key's failures.
pub async fn clear(db: &PgPool, key: &str) -> Result<(), ServiceError> {
    sqlx::query!("delete from login_throttle where key = $1", key)
        .execute(db)
        .await?;
    Ok(())
}

/// The attempt succeeded, but the key is shared (a client address): give back its slot.
pub async fn release(db: &PgPool, key: &str) -> Result<(), ServiceError> {
    sqlx::query!(
        "update login_throttle set failures = greatest(failures - 1, 0) where key = $1",
        key
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let v4: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(v4), "address:192.0.2.7");
        assert_eq!(signup_key("192.0.2.7".parse().unwrap()), "signup:192.0.2.7");
    }

    #[test]
    fn retry_after_rounds_up() {
        let now = Utc::now();
        match too_many(now + chrono::Duration::milliseconds(1500), now) {
            ServiceError::TooManyRequests {
                retry_after_secs, ..
            } => assert_eq!(retry_after_secs, 2),
            other => panic!("{other:?}"),
        }
    }
}
