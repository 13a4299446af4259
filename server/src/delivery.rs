//! The webhook worker: announces reservations that started or completed, turns outbox
//! events into deliveries for the endpoints subscribed to them, and sends due deliveries,
//! signed as the Standard Webhooks specification says, retrying for about three days. An
//! endpoint whose deliveries all fail that long is disabled, and its organization's owners
//! are told by mail and on the webhooks page. Every step claims its rows with `skip locked`,
//! so any number of server processes can run it side by side.

use app::services::error::ServiceError;
use app::services::mail::PublicUrl;
use app::services::webhook_address::{self, Refused};
use app::services::webhook_queue;
/// Attempts before a delivery is given up (the queue's retry policy).
pub use app::services::webhook_queue::MAX_ATTEMPTS;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Deliveries sent per round.
const BATCH: i64 = 20;

/// The HMAC key of an endpoint secret: the base64 after `whsec_`, decoded, as stock
/// Standard Webhooks verifiers read it. Secrets made before the standard (`whsec_` and hex)
/// are valid base64 too, and verifiers decode them the same way.
fn signing_key(secret: &str) -> Vec<u8> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_else(|_| encoded.as_bytes().to_vec())
}

/// The `webhook-signature` header: `v1,` and the base64 HMAC-SHA256 of `"<id>.<ts>.<body>"`.
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&signing_key(secret)).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Whether `secret` is of the format made before Standard Webhooks (`whsec_` and 64 hex
/// digits); those endpoints also get the old `Rigshift-Signature` header for this release.
fn is_legacy_secret(secret: &str) -> bool {
    secret
        .strip_prefix("whsec_")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the old `Rigshift-Signature`
/// header, keyed with the secret's text.
pub fn legacy_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
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

/// Resolves names for the webhook client and gives it only public addresses, refusing a
/// name when any of its answers is private: the addresses checked are the addresses the
/// client connects to, so a name cannot resolve publicly for the check and privately for
/// the connection (DNS rebinding).
struct PublicAddressesOnly;

impl reqwest::dns::Resolve for PublicAddressesOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            // The port is the connector's to set; 0 stands in.
            let addrs = webhook_address::resolve_public(name.as_str(), 0)
                .await
                .map_err(|Refused(why)| -> Box<dyn std::error::Error + Send + Sync> {
                    why.into()
                })?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// An error with every cause it carries, for the attempt log.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub struct Worker {
    pub db: PgPool,
    pub client: reqwest::Client,
    pub allow_private: bool,
    /// Where links in the mail to owners of disabled endpoints point.
    pub public_url: PublicUrl,
}

impl Worker {
    pub fn new(db: PgPool, allow_private: bool) -> Self {
        let mut client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("Rigshift-Webhooks/1");
        if !allow_private {
            client = client.dns_resolver(Arc::new(PublicAddressesOnly));
        }
        let client = client.build().expect("the webhook HTTP client builds");
        Self {
            db,
            client,
            allow_private,
            public_url: PublicUrl(String::new()),
        }
    }

    /// Links in mail point at `url`.
    pub fn with_public_url(mut self, url: PublicUrl) -> Self {
        self.public_url = url;
        self
    }

    /// Runs forever, a round a second.
    pub async fn run(self, ops: Arc<crate::ops::Operations>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            match self.round().await {
                Ok(_) => ops.job_round("webhooks"),
                Err(e) => tracing::warn!(error = %e, "webhook round failed"),
            }
        }
    }

    /// One round: milestones, dispatch, delivery. Returns how many deliveries were attempted.
    pub async fn round(&self) -> Result<usize, ServiceError> {
        self.milestones().await?;
        self.dispatch().await?;
        self.deliver_due().await
    }

    /// Reservations that started or completed (in the last day: an old database coming back
    /// does not replay its whole history).
    async fn milestones(&self) -> Result<(), ServiceError> {
        webhook_queue::announce_milestones(&self.db).await
    }

    /// Outbox events become one delivery per subscribed endpoint of their organization.
    async fn dispatch(&self) -> Result<(), ServiceError> {
        webhook_queue::dispatch(&self.db).await
    }

    async fn deliver_due(&self) -> Result<usize, ServiceError> {
        let due = webhook_queue::lease_due(&self.db, BATCH).await?;
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
            // Names are checked by the client's resolver as it connects; literal addresses
            // never reach a resolver, so they are checked here.
            let literal = match parsed.host() {
                Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
                Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
                _ => None,
            };
            if let Some(ip) = literal.filter(|ip| !webhook_address::is_public(*ip)) {
                return Err(format!("refused: {ip} is a private or reserved address"));
            }
        }
        let ts = chrono::Utc::now().timestamp();
        let id = format!("msg_{delivery}");
        let mut req = self
            .client
            .post(parsed)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header(
                "webhook-signature",
                standard_signature(secret, &id, ts, body.as_bytes()),
            )
            .header("rigshift-event", kind)
            .header("rigshift-delivery", delivery.to_string());
        if is_legacy_secret(secret) {
            req = req.header(
                "rigshift-signature",
                legacy_signature(secret, ts, body.as_bytes()),
            );
        }
        let res = req.body(body).send().await.map_err(|e| {
            if e.is_timeout() {
                "timed out after 10 s".to_string()
            } else {
                format!("could not connect: {}", with_causes(&e.without_url()))
            }
        })?;
        Ok(res.status().as_u16())
    }

    /// Records the attempt: the next one is scheduled by the retry policy, or the delivery
    /// is given up (and a dead endpoint disabled).
    async fn record(
        &self,
        id: i64,
        attempts: i32,
        outcome: Result<u16, String>,
        ms: i32,
    ) -> Result<(), ServiceError> {
        let (status, error) = match &outcome {
            Ok(s) => (Some(*s as i16), None),
            Err(e) => (None, Some(e.chars().take(500).collect::<String>())),
        };
        let ok = matches!(outcome, Ok(s) if (200..300).contains(&s));
        let error = error
            .or_else(|| (!ok).then(|| format!("the endpoint answered {}", status.unwrap_or(0))));
        webhook_queue::record_attempt(
            &self.db,
            webhook_queue::Attempt {
                delivery_id: id,
                attempts,
                status,
                error,
                delivered: ok,
                duration_ms: ms,
            },
            &self.public_url,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::services::webhook_queue::backoff_secs;

    fn headers(id: &str, ts: i64, signature: &str) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
        h.insert("webhook-signature", signature.parse().unwrap());
        h
    }

    #[test]
    fn the_stock_verifier_accepts_standard_signatures_of_new_and_old_secrets() {
        let now = chrono::Utc::now().timestamp();
        let body = br#"{"type":"reservation.created"}"#;
        let new = format!("whsec_{}", app::services::token::random_base64(24));
        let old = format!("whsec_{}", app::services::token::random_hex(32));
        assert!(!is_legacy_secret(&new) && is_legacy_secret(&old));
        for secret in [&new, &old] {
            let sig = standard_signature(secret, "msg_1", now, body);
            let verifier = standardwebhooks::Webhook::new(secret).unwrap();
            verifier
                .verify(body, &headers("msg_1", now, &sig))
                .expect("a stock verifier accepts it");
            assert!(verifier.verify(body, &headers("msg_2", now, &sig)).is_err());
            assert!(verifier
                .verify(b"{}", &headers("msg_1", now, &sig))
                .is_err());
        }
    }

    #[test]
    fn legacy_signatures_are_hmac_sha256_over_timestamp_and_body() {
        // Known answer: HMAC-SHA256(key = "secret", message = "1700000000.{}").
        let sig = legacy_signature("secret", 1_700_000_000, b"{}");
        assert_eq!(
            sig,
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
        assert_eq!(sig.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(sig, legacy_signature("other", 1_700_000_000, b"{}"));
        assert_ne!(sig, legacy_signature("secret", 1_700_000_001, b"{}"));
    }

    #[test]
    fn retries_go_on_for_about_three_days() {
        assert_eq!(backoff_secs(1), 30);
        assert_eq!(backoff_secs(2), 120);
        let total: i64 = (1..MAX_ATTEMPTS).map(backoff_secs).sum();
        assert!(
            (3 * 86_400..4 * 86_400).contains(&total),
            "{total} s of retries"
        );
        assert_eq!(backoff_secs(99), 86_400);
    }
}
