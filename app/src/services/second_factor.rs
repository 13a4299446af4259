//! A second factor for signing in: time-based one-time passwords (TOTP, RFC 6238: HMAC-SHA1,
//! 30-second steps, six digits), as every authenticator app makes them, with ten single-use
//! recovery codes for a lost phone. Anyone may turn it on; the platform administrator must.
//! A sign-in whose password was right waits in a challenge for the code (five minutes, five
//! tries).

use super::error::ServiceError;
use super::mail::{self, PublicUrl};
use super::{password, token};
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sqlx::{PgConnection, PgPool};

const STEP_SECS: i64 = 30;
/// Codes of the step before and after the current one count too: clocks drift.
const DRIFT_STEPS: i64 = 1;
const RECOVERY_CODES: usize = 10;
const CHALLENGE_VALID: Duration = Duration::minutes(5);
const CHALLENGE_TRIES: i32 = 5;

/// The six-digit code of `secret` for the 30-second step `step` (RFC 6238 over RFC 4226).
pub fn code_for_step(secret: &[u8], step: i64) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&(step as u64).to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let bin = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", bin % 1_000_000)
}

/// The step `at` falls in.
pub fn step_at(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(STEP_SECS)
}

/// The code an authenticator shows at `at`.
pub fn code_at(secret: &[u8], at: DateTime<Utc>) -> String {
    code_for_step(secret, step_at(at))
}

/// RFC 4648 base32 without padding: how authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for b in bytes {
        buffer = (buffer << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// What the person types into their authenticator app, shown once while they set it up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrollment {
    /// The secret in base32, for typing.
    pub secret: String,
    /// The `otpauth://` link authenticator apps read (as a QR code or a tap on a phone).
    pub uri: String,
    /// The recovery codes that work once the setup is confirmed.
    pub recovery_codes: Vec<String>,
}

/// Whether the person signs in with a second factor.
pub async fn enabled(conn: &mut PgConnection, user_id: i64) -> Result<bool, ServiceError> {
    let on = sqlx::query_scalar!(
        r#"select totp_enabled_at is not null as "on!" from app_user where id = $1"#,
        user_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(on.unwrap_or(false))
}

/// Starts setting up TOTP: a new secret and ten recovery codes, kept until the person
/// confirms the secret with a code.
pub async fn begin(db: &PgPool, user_id: i64) -> Result<Enrollment, ServiceError> {
    let mut secret = [0u8; 20];
    getrandom::fill(&mut secret).expect("the operating system's random source failed");
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let raw = token::random_alnum(10);
            format!("{}-{}", &raw[..5], &raw[5..])
        })
        .collect();
    let email = sqlx::query_scalar!(
        r#"update app_user set totp_secret = $2, totp_pending_codes = $3, updated_at = now()
           where id = $1 and totp_enabled_at is null returning email"#,
        user_id,
        &secret[..],
        &codes
    )
    .fetch_optional(db)
    .await?
    .ok_or_else(|| {
        ServiceError::conflict("two-factor authentication is already on; turn it off first to set up a new authenticator")
    })?;
    Ok(enrollment(&secret, &email, codes))
}

fn enrollment(secret: &[u8], email: &str, recovery_codes: Vec<String>) -> Enrollment {
    let encoded = base32(secret);
    Enrollment {
        recovery_codes,
        uri: format!(
            "otpauth://totp/Rigshift:{}?secret={encoded}&issuer=Rigshift&algorithm=SHA1&digits=6&period=30",
            crate::request::encode(email)
        ),
        secret: encoded,
    }
}

/// Where a person stands with their second factor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub enabled: bool,
    /// A setup begun and not yet confirmed with a code.
    pub pending: Option<Enrollment>,
    pub recovery_codes_left: i64,
}

pub async fn status(db: &PgPool, user_id: i64) -> Result<Status, ServiceError> {
    let row = sqlx::query!(
        r#"select email, totp_secret, totp_pending_codes, totp_enabled_at is not null as "enabled!",
                  (select count(*) from recovery_code r where r.user_id = u.id and r.used_at is null) as "left!"
           from app_user u where id = $1"#,
        user_id
    )
    .fetch_one(db)
    .await?;
    Ok(Status {
        enabled: row.enabled,
        pending: row
            .totp_secret
            .filter(|_| !row.enabled)
            .map(|s| enrollment(&s, &row.email, row.totp_pending_codes.unwrap_or_default())),
        recovery_codes_left: row.left,
    })
}

/// Accepts a TOTP code of `secret` near `now` whose step is after `last_step`; the step.
fn matching_step(
    secret: &[u8],
    code: &str,
    last_step: Option<i64>,
    now: DateTime<Utc>,
) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now);
    (current - DRIFT_STEPS..=current + DRIFT_STEPS)
        .filter(|s| last_step.is_none_or(|last| *s > last))
        .find(|s| token::digests_equal(code_for_step(secret, *s).as_bytes(), code.as_bytes()))
}

fn wrong_code() -> ServiceError {
    ServiceError::invalid(
        "code",
        "that code is not right; type the six digits your authenticator shows now, or a recovery code",
    )
}

/// Confirms the setup with a code from the authenticator: TOTP is on from now, and the ten
/// recovery codes are returned, once.
pub async fn confirm(
    db: &PgPool,
    user_id: i64,
    code: &str,
    url: &PublicUrl,
    now: DateTime<Utc>,
) -> Result<Vec<String>, ServiceError> {
    let mut tx = db.begin().await?;
    let row = sqlx::query!(
        "select totp_secret, totp_enabled_at, totp_pending_codes from app_user where id = $1 for update",
        user_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if row.totp_enabled_at.is_some() {
        return Err(ServiceError::conflict(
            "two-factor authentication is already on",
        ));
    }
    let secret = row.totp_secret.ok_or_else(|| {
        ServiceError::conflict(
            "start the setup first: the page shows a new secret to add to your authenticator",
        )
    })?;
    let step = matching_step(&secret, code, None, now).ok_or_else(wrong_code)?;
    sqlx::query!(
        r#"update app_user set totp_enabled_at = $2, totp_last_step = $3, totp_pending_codes = null,
             updated_at = now() where id = $1"#,
        user_id,
        now,
        step
    )
    .execute(&mut *tx)
    .await?;
    let codes = row.totp_pending_codes.unwrap_or_default();
    keep_recovery_codes(&mut tx, user_id, &codes).await?;
    mail::security_notice(
        &mut tx,
        user_id,
        "Two-factor authentication was turned on for your Rigshift account.",
        url,
    )
    .await?;
    super::audit::record_for_user(&mut tx, user_id, "user.second_factor_enabled").await?;
    tx.commit().await?;
    Ok(codes)
}

/// Keeps only the hashes of `codes` as the person's recovery codes.
async fn keep_recovery_codes(
    conn: &mut PgConnection,
    user_id: i64,
    codes: &[String],
) -> Result<(), ServiceError> {
    sqlx::query!("delete from recovery_code where user_id = $1", user_id)
        .execute(&mut *conn)
        .await?;
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| token::sha256(c)).collect();
    sqlx::query!(
        "insert into recovery_code (user_id, code_hash) select $1, unnest($2::bytea[])",
        user_id,
        &hashes
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Checks a code typed at sign-in: a TOTP code not used before, or an unused recovery code
/// (which is then used up). Locks the person's row, so one code signs in once.
async fn accept_code(
    conn: &mut PgConnection,
    user_id: i64,
    code: &str,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let row = sqlx::query!(
        "select totp_secret, totp_last_step from app_user where id = $1 and totp_enabled_at is not null for update",
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(false) };
    if let Some(step) = row
        .totp_secret
        .as_deref()
        .and_then(|s| matching_step(s, code, row.totp_last_step, now))
    {
        sqlx::query!(
            "update app_user set totp_last_step = $2 where id = $1",
            user_id,
            step
        )
        .execute(&mut *conn)
        .await?;
        return Ok(true);
    }
    let typed = code.trim().to_ascii_lowercase();
    let used = sqlx::query!(
        r#"update recovery_code set used_at = $3
           where user_id = $1 and code_hash = $2 and used_at is null"#,
        user_id,
        token::sha256(&typed),
        now
    )
    .execute(&mut *conn)
    .await?;
    Ok(used.rows_affected() == 1)
}

/// Turns TOTP off, with the current password and a code. The platform administrator can't:
/// the administrator must sign in with a second factor.
pub async fn disable(
    db: &PgPool,
    user_id: i64,
    current_password: &str,
    code: &str,
    url: &PublicUrl,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let row = sqlx::query!(
        "select password_hash, platform_admin from app_user where id = $1",
        user_id
    )
    .fetch_one(db)
    .await?;
    if row.platform_admin {
        return Err(ServiceError::Forbidden(
            "the platform administrator must sign in with a second factor; set up a new authenticator instead of turning it off".into(),
        ));
    }
    if !password::verify(current_password.to_string(), row.password_hash).await {
        return Err(ServiceError::invalid(
            "current_password",
            "that is not your current password",
        ));
    }
    let mut tx = db.begin().await?;
    if !accept_code(&mut tx, user_id, code, now).await? {
        return Err(wrong_code());
    }
    sqlx::query!(
        r#"update app_user set totp_secret = null, totp_enabled_at = null, totp_last_step = null, totp_pending_codes = null,
             updated_at = now() where id = $1"#,
        user_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("delete from recovery_code where user_id = $1", user_id)
        .execute(&mut *tx)
        .await?;
    mail::security_notice(
        &mut tx,
        user_id,
        "Two-factor authentication was turned off for your Rigshift account.",
        url,
    )
    .await?;
    super::audit::record_for_user(&mut tx, user_id, "user.second_factor_disabled").await?;
    tx.commit().await?;
    Ok(())
}

/// A sign-in whose password was right, waiting for the code: its token for the code form.
pub async fn challenge(
    db: &PgPool,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<String, ServiceError> {
    let secret = token::random_hex(32);
    sqlx::query!("delete from login_challenge where expires_at < $1", now)
        .execute(db)
        .await?;
    sqlx::query!(
        "insert into login_challenge (token_hash, user_id, created_at, expires_at) values ($1, $2, $3, $4)",
        token::sha256(&secret),
        user_id,
        now,
        now + CHALLENGE_VALID
    )
    .execute(db)
    .await?;
    Ok(secret)
}

/// Finishes a sign-in with its code; the user id. A challenge takes five tries and lasts
/// five minutes, then the sign-in starts over with the password.
pub async fn answer(
    db: &PgPool,
    challenge: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<i64, ServiceError> {
    let start_over = || {
        ServiceError::Unauthorized(
            "this sign-in has expired or had too many wrong codes; sign in again with your password".into(),
        )
    };
    if challenge.len() != 64 || !challenge.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(start_over());
    }
    let hash = token::sha256(challenge);
    let mut tx = db.begin().await?;
    let user_id = sqlx::query_scalar!(
        r#"update login_challenge set attempts = attempts + 1
           where token_hash = $1 and expires_at > $2 and attempts < $3
           returning user_id"#,
        hash,
        now,
        CHALLENGE_TRIES
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(start_over)?;
    if !accept_code(&mut tx, user_id, code, now).await? {
        // The try counts even though the sign-in fails.
        tx.commit().await?;
        return Err(wrong_code());
    }
    sqlx::query!("delete from login_challenge where token_hash = $1", hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890": the last six digits.
        let secret = b"12345678901234567890";
        for (unix, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            let at = DateTime::from_timestamp(unix, 0).unwrap();
            assert_eq!(code_at(secret, at), code, "at {unix}");
        }
    }

    #[test]
    fn base32_is_rfc_4648_without_padding() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn a_code_is_accepted_near_its_step_and_only_once() {
        let secret = b"abcdefghijabcdefghij";
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let code = code_at(secret, now);
        let step = step_at(now);
        assert_eq!(matching_step(secret, &code, None, now), Some(step));
        assert_eq!(
            matching_step(secret, &format!("{} {}", &code[..3], &code[3..]), None, now),
            Some(step)
        );
        // Thirty seconds late still works; two minutes late does not.
        assert_eq!(
            matching_step(secret, &code, None, now + Duration::seconds(30)),
            Some(step)
        );
        assert_eq!(
            matching_step(secret, &code, None, now + Duration::minutes(2)),
            None
        );
        // Used once: the same step is refused.
        assert_eq!(matching_step(secret, &code, Some(step), now), None);
        assert_eq!(matching_step(secret, "12345", None, now), None);
        assert_eq!(matching_step(secret, "abcdef", None, now), None);
    }
}
