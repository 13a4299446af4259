//! Links sent by mail: resetting a forgotten password, and verifying an email address.
//! Each link carries a random token that works once and expires; only its SHA-256 is kept.
//! Asking for a reset never tells whether an account exists for the address.

use super::error::ServiceError;
use super::mail::{self, Message, PublicUrl};
use super::{password, throttle, token};
use crate::account::{normalize_email, password_problem};
use chrono::{DateTime, Duration, Utc};
use sqlx::{PgConnection, PgPool};

/// How long a reset link works.
pub const RESET_VALID: Duration = Duration::hours(1);
/// How long a verification link works.
pub const VERIFY_VALID: Duration = Duration::days(3);
/// Reset mails per address per hour: enough for a lost mail, too few to flood a mailbox.
const RESETS_PER_HOUR: i64 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    PasswordReset,
    VerifyEmail,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::PasswordReset => "password_reset",
            Purpose::VerifyEmail => "verify_email",
        }
    }
}

async fn issue(
    conn: &mut PgConnection,
    user_id: i64,
    email: &str,
    purpose: Purpose,
    valid: Duration,
    now: DateTime<Utc>,
) -> Result<String, ServiceError> {
    let secret = token::random_hex(32);
    sqlx::query!(
        r#"insert into account_token (token_hash, user_id, purpose, email, created_at, expires_at)
           values ($1, $2, $3, $4, $5, $6)"#,
        token::sha256(&secret),
        user_id,
        purpose.as_str(),
        email,
        now,
        now + valid
    )
    .execute(conn)
    .await?;
    Ok(secret)
}

/// Mails a reset link to `email` if it belongs to an account; answers the same either way,
/// so the form tells nobody which addresses have accounts.
pub async fn request_reset(
    db: &PgPool,
    email: &str,
    url: &PublicUrl,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let email = normalize_email(email);
    if let Some(m) = crate::account::email_problem(&email) {
        return Err(ServiceError::invalid("email", m));
    }
    let mut tx = db.begin().await?;
    let user = sqlx::query!(
        "select id, display_name from app_user where email = $1 for update",
        email
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(user) = user else {
        return Ok(());
    };
    let recent = sqlx::query_scalar!(
        r#"select count(*) as "n!" from account_token
           where user_id = $1 and purpose = 'password_reset' and created_at > $2"#,
        user.id,
        now - Duration::hours(1)
    )
    .fetch_one(&mut *tx)
    .await?;
    if recent >= RESETS_PER_HOUR {
        // Quietly: an answer that differed would tell that the account exists.
        return Ok(());
    }
    let secret = issue(
        &mut tx,
        user.id,
        &email,
        Purpose::PasswordReset,
        RESET_VALID,
        now,
    )
    .await?;
    let body = format!(
        "Hello {name},\n\nSomeone (we hope you) asked to reset the password of your Rigshift \
         account. Choose a new password here; the link works once, for one hour:\n\n{link}\n\n\
         If you did not ask, ignore this message: your password stays as it is.{footer}",
        name = user.display_name,
        link = url.link(&format!("/reset?code={secret}")),
        footer = mail::footer(url),
    );
    mail::queue(
        &mut tx,
        Message {
            user_id: Some(user.id),
            to: &email,
            subject: "Reset your Rigshift password",
            body,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether a reset link still works, to show its form or say at once that it does not.
pub async fn reset_link_works(
    db: &PgPool,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let found = sqlx::query_scalar!(
        r#"select 1 as "one!" from account_token
           where token_hash = $1 and purpose = 'password_reset' and used_at is null and expires_at > $2"#,
        token::sha256(secret),
        now
    )
    .fetch_optional(db)
    .await?;
    Ok(found.is_some())
}

fn dead_link() -> ServiceError {
    ServiceError::invalid(
        "token",
        "this link has expired or was already used; ask for a new one",
    )
}

/// Sets a new password with a reset link: the link is used up, every session of the person
/// ends (whoever else was signed in is signed out), failed sign-ins are forgotten, and a
/// notice is mailed. Returns the user id.
pub async fn reset_password(
    db: &PgPool,
    secret: &str,
    new_password: &str,
    url: &PublicUrl,
    now: DateTime<Utc>,
) -> Result<i64, ServiceError> {
    let mut tx = db.begin().await?;
    let claimed = sqlx::query!(
        r#"update account_token t set used_at = $2
           from app_user u
           where t.token_hash = $1 and t.purpose = 'password_reset' and t.used_at is null
             and t.expires_at > $2 and u.id = t.user_id
           returning u.id, u.email, u.display_name"#,
        token::sha256(secret),
        now
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(dead_link)?;
    if let Some(m) = password_problem(new_password, &claimed.email)
        .or_else(|| password::weakness(new_password, &[&claimed.email, &claimed.display_name]))
    {
        return Err(ServiceError::invalid("new_password", m));
    }
    let phc = password::hash(new_password.to_string())
        .await
        .map_err(|_| {
            ServiceError::conflict("could not secure the password right now; please try again")
        })?;
    // The link proved the address, as a verification link would.
    sqlx::query!(
        r#"update app_user set password_hash = $2, updated_at = now(),
             email_verified_at = coalesce(email_verified_at, $3)
           where id = $1"#,
        claimed.id,
        phc,
        now
    )
    .execute(&mut *tx)
    .await?;
    // Other reset links of the person stop working too.
    sqlx::query!(
        "update account_token set used_at = $2 where user_id = $1 and purpose = 'password_reset' and used_at is null",
        claimed.id,
        now
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("delete from session where user_id = $1", claimed.id)
        .execute(&mut *tx)
        .await?;
    mail::security_notice(
        &mut tx,
        claimed.id,
        "The password of your Rigshift account was reset with a link sent to this address, \
         and every session was signed out.",
        url,
    )
    .await?;
    super::audit::record_for_user(&mut tx, claimed.id, "user.password_reset").await?;
    tx.commit().await?;
    throttle::clear(db, &throttle::account_key(&claimed.email)).await?;
    Ok(claimed.id)
}

/// Queues the verification mail for a person's address (at sign-up, or when they ask again).
pub async fn send_verification(
    conn: &mut PgConnection,
    user_id: i64,
    url: &PublicUrl,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let user = sqlx::query!(
        "select email, display_name, email_verified_at from app_user where id = $1",
        user_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if user.email_verified_at.is_some() {
        return Err(ServiceError::conflict(
            "your email address is already verified",
        ));
    }
    let recent = sqlx::query_scalar!(
        r#"select count(*) as "n!" from account_token
           where user_id = $1 and purpose = 'verify_email' and created_at > $2"#,
        user_id,
        now - Duration::hours(1)
    )
    .fetch_one(&mut *conn)
    .await?;
    if recent >= 3 {
        return Err(ServiceError::TooManyRequests {
            message: "three verification mails were sent in the last hour; check your spam folder, or try again later".into(),
            retry_after_secs: 3600,
        });
    }
    let secret = issue(
        conn,
        user_id,
        &user.email,
        Purpose::VerifyEmail,
        VERIFY_VALID,
        now,
    )
    .await?;
    let body = format!(
        "Hello {name},\n\nPlease confirm that this is your address for Rigshift by opening \
         this link within three days:\n\n{link}{footer}",
        name = user.display_name,
        link = url.link(&format!("/verify?code={secret}")),
        footer = mail::footer(url),
    );
    mail::queue(
        conn,
        Message {
            user_id: Some(user_id),
            to: &user.email,
            subject: "Confirm your email address for Rigshift",
            body,
        },
    )
    .await
}

/// Marks the address a verification link was sent to as verified (if it is still the
/// person's address). Returns the user id.
pub async fn verify_email(
    db: &PgPool,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<i64, ServiceError> {
    let mut tx = db.begin().await?;
    let claimed = sqlx::query!(
        r#"update account_token set used_at = $2
           where token_hash = $1 and purpose = 'verify_email' and used_at is null and expires_at > $2
           returning user_id, email"#,
        token::sha256(secret),
        now
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(dead_link)?;
    sqlx::query!(
        r#"update app_user set email_verified_at = coalesce(email_verified_at, $3), updated_at = now()
           where id = $1 and email = $2"#,
        claimed.user_id,
        claimed.email,
        now
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(claimed.user_id)
}
