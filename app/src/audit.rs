//! The audit trail as every front door shows it (shared with the browser): who did what to
//! which object, when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The organization whose trail it is.
    pub organization_id: Option<i64>,
    /// Who acted: a person (`Name <email>`), an API key (`API key rsk_… (name)`), or `system`.
    pub actor: String,
    /// What was done, such as `reservation.created` or `api_key.revoked`.
    pub action: String,
    /// `reservation`, `pool`, `site`, `blackout`, `api_key`, `organization`, `user` or `webhook`.
    pub object_type: String,
    pub object_id: Option<i64>,
    /// What changed, as recorded with the event.
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub detail: serde_json::Value,
}
