//! The webhook worker: announces reservations that started or completed, turns outbox
//! events into deliveries for the endpoints subscribed to them, and sends due deliveries,
//! signed, retrying with backoff. Every step claims its rows with `skip locked`, so any number
//! of server processes can run it side by side.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i32 = 8;
/// Deliveries sent per round.
const BATCH: i64 = 20;

/// Seconds to wait after the `attempts`-th failed attempt: 30 s, 1 min, 2 min, … 32 min.
pub fn backoff_secs(attempts: i32) -> i64 {
    30 * 2_i64.pow(attempts.clamp(1, 7) as u32 - 1)
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the `Rigshift-Signature` header.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

pub struct Worker {
    pub db: PgPool,
    pub client: reqwest::Client,
    pub allow_private: bool,
}

impl Worker {
    pub fn new(db: PgPool, allow_private: bool) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Rigshift-Webhooks/1")
            .build()
            .expect("the webhook HTTP client builds");
        Self {
            db,
            client,
            allow_private,
        }
    }

    /// Runs forever, a round a second.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "webhook round failed");
            }
        }
    }

    /// One round: milestones, dispatch, delivery. Returns how many deliveries were attempted.
    pub async fn round(&self) -> Result<usize, sqlx::Error> {
        self.milestones().await?;
        self.dispatch().await?;
        self.deliver_due().await
    }

    /// Reservations that started or completed (in the last day: an old database coming back
    /// does not replay its whole history).
    async fn milestones(&self) -> Result<(), sqlx::Error> {
        for (kind, event) in [
            ("started", "reservation.started"),
            ("completed", "reservation.completed"),
        ] {
            sqlx::query(
                r#"with due as (
                       insert into reservation_milestone (reservation_id, kind)
                       select r.id, $1 from reservation r
                       where r.state = 'confirmed'
                         and (case when $1 = 'started' then lower(r.during) else upper(r.during) end)
                             between now() - interval '1 day' and now()
                       on conflict do nothing
                       returning reservation_id)
                   select emit_reservation_event($2, r) from reservation r join due on due.reservation_id = r.id"#,
            )
            .bind(kind)
            .bind(event)
            .fetch_all(&self.db)
            .await?;
        }
        Ok(())
    }

    /// Outbox events become one delivery per subscribed endpoint of their organization.
    async fn dispatch(&self) -> Result<(), sqlx::Error> {
        sqlx::query!(
            r#"with batch as (
                   select id, organization_id, kind, created_at from event_outbox
                   where dispatched_at is null order by id limit 500 for update skip locked),
               made as (
                   insert into webhook_delivery (endpoint_id, event_id)
                   select w.id, b.id from batch b
                   join webhook_endpoint w on w.organization_id = b.organization_id and b.kind = any(w.events)
                       -- An endpoint hears of what happens after it was registered.
                       and w.created_at <= b.created_at
                   on conflict do nothing)
               update event_outbox e set dispatched_at = now() from batch b where e.id = b.id"#
        )
        .execute(&self.db)
        .await?;
        Ok(())
    }

    async fn deliver_due(&self) -> Result<usize, sqlx::Error> {
        // Lease the due deliveries for two minutes, so no other process sends them meanwhile.
        let due = sqlx::query!(
            r#"with due as (
                   select id from webhook_delivery
                   where delivered_at is null and failed_at is null and next_attempt_at <= now()
                   order by next_attempt_at limit $1 for update skip locked)
               update webhook_delivery d set next_attempt_at = now() + interval '2 minutes'
               from due, webhook_endpoint w, event_outbox e
               where d.id = due.id and w.id = d.endpoint_id and e.id = d.event_id
               returning d.id, d.attempts, w.url, w.secret, e.id as event_id, e.kind, e.payload, e.created_at"#,
            BATCH
        )
        .fetch_all(&self.db)
        .await?;
        let n = due.len();
        for d in due {
            let body = serde_json::json!({
                "id": d.event_id,
                "type": d.kind,
                "created_at": d.created_at,
                "data": d.payload,
            })
            .to_string();
            let started = Instant::now();
            let outcome = self.send(&d.url, &d.secret, &d.kind, d.id, body).await;
            let ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
            self.record(d.id, d.attempts + 1, outcome, ms).await?;
        }
        Ok(n)
    }

    async fn send(
        &self,
        url: &str,
        secret: &str,
        kind: &str,
        delivery: i64,
        body: String,
    ) -> Result<u16, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
        if !self.allow_private {
            let host = parsed.host_str().ok_or("the URL has no host")?;
            let port = parsed.port_or_known_default().unwrap_or(443);
            let addrs = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| format!("could not resolve {host}: {e}"))?;
            for a in addrs {
                if !is_public(a.ip()) {
                    return Err(format!(
                        "refused: {host} resolves to a private address ({})",
                        a.ip()
                    ));
                }
            }
        }
        let ts = chrono::Utc::now().timestamp();
        let res = self
            .client
            .post(parsed)
            .header("content-type", "application/json")
            .header("rigshift-event", kind)
            .header("rigshift-delivery", delivery.to_string())
            .header("rigshift-signature", signature(secret, ts, body.as_bytes()))
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out after 10 s".to_string()
                } else {
                    format!("could not connect: {}", e.without_url())
                }
            })?;
        Ok(res.status().as_u16())
    }

    async fn record(
        &self,
        id: i64,
        attempts: i32,
        outcome: Result<u16, String>,
        ms: i32,
    ) -> Result<(), sqlx::Error> {
        let (status, error) = match &outcome {
            Ok(s) => (Some(*s as i16), None),
            Err(e) => (None, Some(e.chars().take(500).collect::<String>())),
        };
        let ok = matches!(outcome, Ok(s) if (200..300).contains(&s));
        let error = error
            .or_else(|| (!ok).then(|| format!("the endpoint answered {}", status.unwrap_or(0))));
        let mut tx = self.db.begin().await?;
        sqlx::query!(
            "insert into webhook_attempt (delivery_id, status, error, duration_ms) values ($1, $2, $3, $4)",
            id,
            status,
            error,
            ms
        )
        .execute(&mut *tx)
        .await?;
        let give_up = !ok && attempts >= MAX_ATTEMPTS;
        sqlx::query!(
            r#"update webhook_delivery set
                 attempts = $2, last_status = $3, last_error = $4,
                 delivered_at = case when $5 then now() end,
                 failed_at = case when $6 then now() end,
                 next_attempt_at = now() + make_interval(secs => $7::bigint::double precision)
               where id = $1"#,
            id,
            attempts,
            status,
            error,
            ok,
            give_up,
            backoff_secs(attempts)
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}

/// Whether an address is on the public internet (not loopback, private, link-local, …).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_over_timestamp_and_body() {
        // Known answer: HMAC-SHA256(key = "secret", message = "1700000000.{}").
        let sig = signature("secret", 1_700_000_000, b"{}");
        assert!(sig.starts_with("t=1700000000,v1="));
        assert_eq!(sig.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(sig, signature("other", 1_700_000_000, b"{}"));
        assert_ne!(sig, signature("secret", 1_700_000_001, b"{}"));
    }

    #[test]
    fn backoff_doubles_from_thirty_seconds() {
        assert_eq!(backoff_secs(1), 30);
        assert_eq!(backoff_secs(2), 60);
        assert_eq!(backoff_secs(7), 1920);
        assert_eq!(backoff_secs(9), 1920);
    }

    #[test]
    fn private_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "100.64.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        assert!(is_public("93.184.216.34".parse().unwrap()));
    }
}
