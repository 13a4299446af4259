//! The mail worker: sends queued mail over SMTP, or, with no SMTP server configured, keeps it
//! in the local outbox. Every process runs it; messages are claimed with `skip locked`, so
//! each is sent by one process. A failed message is retried with growing pauses for about a
//! day.

use app::services::mail;
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

const BATCH: i64 = 20;

pub enum Transport {
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
    Outbox,
}

pub struct Mailer {
    db: PgPool,
    transport: Transport,
    from: Mailbox,
}

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("RIGSHIFT_MAIL_FROM is not a mailbox such as `Rigshift <rigshift@example.com>`: {0}")]
    From(String),
    #[error("RIGSHIFT_SMTP_URL could not be used: {0}")]
    Smtp(String),
}

impl Mailer {
    /// Sends over SMTP at `smtp_url`, or keeps mail in the local outbox when it is `None`.
    pub fn new(db: PgPool, smtp_url: Option<&str>, from: &str) -> Result<Self, MailerError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailerError::From(format!("{e}")))?;
        let transport = match smtp_url {
            None => Transport::Outbox,
            Some(url) => Transport::Smtp(Box::new(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailerError::Smtp(e.to_string()))?
                    .timeout(Some(Duration::from_secs(20)))
                    .build(),
            )),
        };
        Ok(Self {
            db,
            transport,
            from,
        })
    }

    /// Runs forever, a round every two seconds.
    pub async fn run(self, ops: Arc<crate::ops::Operations>) {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            match self.round().await {
                Ok(_) => ops.job_round("mail"),
                Err(e) => tracing::warn!(error = %e, "mail round failed"),
            }
        }
    }

    /// Sends what is due; how many messages were attempted.
    pub async fn round(&self) -> Result<usize, sqlx::Error> {
        let due = mail::claim_due(&self.db, BATCH).await?;
        let n = due.len();
        for m in due {
            let outcome = self.send(&m).await;
            if let Err(e) = &outcome {
                tracing::warn!(message = m.id, error = %e, "mail not sent");
            }
            mail::record(&self.db, m.id, m.attempts + 1, outcome).await?;
        }
        Ok(n)
    }

    async fn send(&self, m: &mail::Due) -> Result<&'static str, String> {
        let transport = match &self.transport {
            Transport::Outbox => return Ok("outbox"),
            Transport::Smtp(t) => t,
        };
        let to: Mailbox =
            m.to.parse()
                .map_err(|e| format!("the address {} is not usable: {e}", m.to))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone())
            .map_err(|e| format!("could not build the message: {e}"))?;
        transport
            .send(message)
            .await
            .map(|_| "smtp")
            .map_err(|e| format!("SMTP: {e}"))
    }
}
