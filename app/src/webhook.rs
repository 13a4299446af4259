//! Webhooks as every front door shows them (shared with the browser): the endpoints an
//! organization registered and the deliveries of its events, with every attempt.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The events an endpoint can subscribe to.
pub const EVENTS: [&str; 16] = [
    "reservation.created",
    "reservation.cancelled",
    "reservation.started",
    "reservation.completed",
    "reservation.preempted",
    "blackout.created",
    "capacity.changed",
    "grid_event.created",
    "order.filled",
    "order.expired",
    "incident.opened",
    "incident.resolved",
    "reservation.moved",
    "reservation.credited",
    "site.delivered",
    "reservation.delayed",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Set when every delivery failed for the whole retry period (about three days);
    /// nothing is sent until the endpoint is enabled again.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why it was disabled, with the last error.
    pub disabled_reason: Option<String>,
}

/// An endpoint just registered: the only time its signing secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    /// Verify deliveries with it as the Standard Webhooks specification says: `webhook-signature`
    /// is `v1,` and the base64 HMAC-SHA256, keyed with the base64-decoded part after `whsec_`,
    /// of `"<webhook-id>.<webhook-timestamp>.<body>"`.
    pub secret: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// The endpoint's HTTP status, if it answered.
    pub status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// One event on its way to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub event: String,
    pub created_at: DateTime<Utc>,
    /// `pending`, `delivered` or `failed` (gave up after the last retry).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempt_log: Vec<Attempt>,
}
