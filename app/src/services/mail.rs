//! Mail to people. A message is queued in the same transaction as what it tells of (a reset
//! asked for, a key created, a password changed), so it is sent exactly when that change
//! commits; the server's mail worker sends it over SMTP, or keeps it in the local outbox when
//! no SMTP server is configured. Messages are plain text: names people typed go into them as
//! text, never as markup.

use super::error::ServiceError;
use crate::account::OutboxMessage;
use sqlx::{PgConnection, PgPool};

/// Where links in mail point: the address people reach this marketplace at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl(pub String);

impl PublicUrl {
    /// `path` (starting with `/`) on the public address.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.0.trim_end_matches('/'))
    }
}

/// One message for one person.
pub struct Message<'a> {
    pub user_id: Option<i64>,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: String,
}

/// Queues `m` in the caller's transaction.
pub async fn queue(conn: &mut PgConnection, m: Message<'_>) -> Result<(), ServiceError> {
    // Subjects are one line; a name with a line break must not add mail headers.
    let subject: String = m
        .subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    sqlx::query!(
        "insert into mail_message (user_id, to_address, subject, body) values ($1, $2, $3, $4)",
        m.user_id,
        m.to,
        subject,
        m.body
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The signature every message ends with.
pub fn footer(url: &PublicUrl) -> String {
    format!(
        "\n\n-- \nRigshift, capacity on converted mining sites\n{}\n",
        url.link("/")
    )
}

/// A notice of something that changed the security of an account, to its owner.
pub async fn security_notice(
    conn: &mut PgConnection,
    user_id: i64,
    what: &str,
    url: &PublicUrl,
) -> Result<(), ServiceError> {
    let person = sqlx::query!(
        "select email, display_name from app_user where id = $1",
        user_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let body = format!(
        "Hello {name},\n\n{what}\n\nIf this was you, there is nothing to do. If it was not, \
         reset your password now at {reset} and tell your organization's owner.{footer}",
        name = person.display_name,
        reset = url.link("/forgot"),
        footer = footer(url),
    );
    queue(
        conn,
        Message {
            user_id: Some(user_id),
            to: &person.email,
            subject: "Security notice for your Rigshift account",
            body,
        },
    )
    .await
}

/// The newest messages of the local outbox.
pub async fn outbox(db: &PgPool, limit: i64) -> Result<Vec<OutboxMessage>, ServiceError> {
    let rows = sqlx::query_as!(
        OutboxMessage,
        r#"select id, to_address as "to", subject, body, created_at from mail_message
           where delivered_via = 'outbox' order by id desc limit $1"#,
        limit.clamp(1, 200)
    )
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// A message due for sending, claimed by one worker.
pub struct Due {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub attempts: i32,
}

/// Claims up to `limit` due messages for five minutes, so no other process sends them
/// meanwhile.
pub async fn claim_due(db: &PgPool, limit: i64) -> Result<Vec<Due>, sqlx::Error> {
    sqlx::query_as!(
        Due,
        r#"with due as (
               select id from mail_message
               where sent_at is null and failed_at is null and next_attempt_at <= now()
               order by next_attempt_at limit $1 for update skip locked)
           update mail_message m set next_attempt_at = now() + interval '5 minutes'
           from due where m.id = due.id
           returning m.id, m.to_address as "to", m.subject, m.body, m.attempts"#,
        limit
    )
    .fetch_all(db)
    .await
}

/// Attempts before a message is given up (about a day of retries).
pub const MAX_ATTEMPTS: i32 = 10;

/// Records the outcome of an attempt: sent (over SMTP or into the outbox), or failed with a
/// retry after a growing pause.
pub async fn record(
    db: &PgPool,
    id: i64,
    attempts: i32,
    outcome: Result<&'static str, String>,
) -> Result<(), sqlx::Error> {
    match outcome {
        Ok(via) => {
            sqlx::query!(
                "update mail_message set sent_at = now(), delivered_via = $2, attempts = $3, last_error = null where id = $1",
                id,
                via,
                attempts
            )
            .execute(db)
            .await?;
        }
        Err(error) => {
            let error: String = error.chars().take(1000).collect();
            let pause_secs = 30_i64 * 2_i64.pow(attempts.clamp(1, 11) as u32 - 1);
            sqlx::query!(
                r#"update mail_message set attempts = $2::int, last_error = $3,
                     failed_at = case when $2::int >= $4::int then now() end,
                     next_attempt_at = now() + make_interval(secs => $5::bigint::double precision)
                   where id = $1"#,
                id,
                attempts,
                error,
                MAX_ATTEMPTS,
                pause_secs
            )
            .execute(db)
            .await?;
        }
    }
    Ok(())
}
