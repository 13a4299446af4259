//! Webhook endpoints and their deliveries, per organization. Events are written to the
//! outbox by database triggers in the same transaction as the change (see the migration
//! `integrations`); the server's delivery worker sends them.

use super::audit;
use super::error::{FieldError, ServiceError};
use super::mail::{self, PublicUrl};
use super::token;
use super::webhook_address;
use crate::webhook::{Attempt, CreatedWebhook, Delivery, Webhook, EVENTS};
use sqlx::{PgConnection, PgPool};

/// Endpoints per organization; plenty for real integrations, bounded against abuse.
pub const MAX_ENDPOINTS: i64 = 20;

fn check(url: &str, events: &[String], allow_plain_http: bool) -> Result<(), ServiceError> {
    let mut errors = Vec::new();
    let url_ok = url.len() <= 2000
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        && (url.starts_with("https://") || (allow_plain_http && url.starts_with("http://")))
        && url.split("://").nth(1).is_some_and(|rest| {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !host.contains('@')
        });
    if !url_ok {
        errors.push(FieldError {
            field: "url".into(),
            message: if allow_plain_http {
                "give an http:// or https:// URL without credentials, at most 2,000 characters"
                    .into()
            } else {
                "give an https:// URL without credentials, at most 2,000 characters".into()
            },
        });
    }
    if events.is_empty() || events.iter().any(|e| !EVENTS.contains(&e.as_str())) {
        errors.push(FieldError {
            field: "events".into(),
            message: format!("pick one or more of: {}", EVENTS.join(", ")),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Invalid(errors))
    }
}

/// Registers an endpoint; the returned secret is shown once.
pub async fn create(
    db: &PgPool,
    organization_id: i64,
    url: &str,
    events: &[String],
    allow_plain_http: bool,
) -> Result<CreatedWebhook, ServiceError> {
    let url = url.trim();
    let mut events: Vec<String> = events.iter().map(|e| e.trim().to_string()).collect();
    events.sort();
    events.dedup();
    check(url, &events, allow_plain_http)?;
    // `allow_plain_http` is the development setting that also allows private addresses.
    if !allow_plain_http {
        if let Err(webhook_address::Refused(why)) = webhook_address::check_destination(url).await {
            return Err(ServiceError::Invalid(vec![FieldError {
                field: "url".into(),
                message: why,
            }]));
        }
    }
    let count = sqlx::query_scalar!(
        r#"select count(*) as "n!" from webhook_endpoint where organization_id = $1"#,
        organization_id
    )
    .fetch_one(db)
    .await?;
    if count >= MAX_ENDPOINTS {
        return Err(ServiceError::conflict(format!(
            "an organization has at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
        )));
    }
    // Standard Webhooks secrets: `whsec_` and base64 of the key (24 random bytes), which
    // stock verifiers decode. Secrets made before were `whsec_` and 64 hex digits.
    let secret = format!("whsec_{}", token::random_base64(24));
    let mut tx = db.begin().await?;
    let row = sqlx::query!(
        r#"insert into webhook_endpoint (organization_id, url, secret, events)
           values ($1, $2, $3, $4) returning id, created_at"#,
        organization_id,
        url,
        secret,
        &events
    )
    .fetch_one(&mut *tx)
    .await?;
    let detail = serde_json::json!({ "url": url, "events": events });
    audit::note(
        &mut tx,
        organization_id,
        "webhook.created",
        ("webhook", row.id),
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedWebhook {
        webhook: Webhook {
            id: row.id,
            url: url.to_string(),
            events,
            created_at: row.created_at,
            disabled_at: None,
            disabled_reason: None,
        },
        secret,
    })
}

/// The organization's endpoints, newest first, `limit` at a time before `before_id`.
pub async fn list(
    db: &PgPool,
    organization_id: i64,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Webhook>, ServiceError> {
    let rows = sqlx::query!(
        r#"select id, url, events, created_at, disabled_at, disabled_reason from webhook_endpoint
           where organization_id = $1 and ($2::bigint is null or id < $2)
           order by id desc limit $3"#,
        organization_id,
        before_id,
        limit.clamp(1, 500)
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Webhook {
            id: r.id,
            url: r.url,
            events: r.events,
            created_at: r.created_at,
            disabled_at: r.disabled_at,
            disabled_reason: r.disabled_reason,
        })
        .collect())
}

/// Enables a disabled endpoint again: its waiting deliveries go out at once, each with a
/// fresh set of retries. Enabling an endpoint that is not disabled changes nothing.
pub async fn enable(db: &PgPool, organization_id: i64, id: i64) -> Result<(), ServiceError> {
    let mut tx = db.begin().await?;
    let found = sqlx::query_scalar!(
        r#"update webhook_endpoint set disabled_at = null, disabled_reason = null, updated_at = now()
           where id = $1 and organization_id = $2 returning id"#,
        id,
        organization_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if found.is_none() {
        return Err(ServiceError::NotFound("webhook"));
    }
    audit::note(
        &mut tx,
        organization_id,
        "webhook.enabled",
        ("webhook", id),
        serde_json::json!({}),
    )
    .await?;
    sqlx::query!(
        r#"update webhook_delivery set attempts = 0, failed_at = null, next_attempt_at = now()
           where endpoint_id = $1 and delivered_at is null"#,
        id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes an endpoint (its pending deliveries go with it).
pub async fn delete(db: &PgPool, organization_id: i64, id: i64) -> Result<(), ServiceError> {
    let mut tx = db.begin().await?;
    let url = sqlx::query_scalar!(
        "delete from webhook_endpoint where id = $1 and organization_id = $2 returning url",
        id,
        organization_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ServiceError::NotFound("webhook"))?;
    let detail = serde_json::json!({ "url": url });
    audit::note(
        &mut tx,
        organization_id,
        "webhook.deleted",
        ("webhook", id),
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// After a delivery failed for the whole retry period: if nothing reached its endpoint since
/// that delivery was made, the endpoint is down for good. It is disabled, with the reason
/// on its page, and the organization's owners are told by mail, in the caller's transaction.
pub async fn disable_if_dead(
    conn: &mut PgConnection,
    delivery_id: i64,
    attempts: i32,
    last_error: Option<&str>,
    url: &PublicUrl,
) -> Result<(), ServiceError> {
    let last: String = last_error
        .unwrap_or("no answer")
        .chars()
        .take(500)
        .collect();
    let disabled = sqlx::query!(
        r#"update webhook_endpoint w
           set disabled_at = now(), updated_at = now(),
               disabled_reason = format('every delivery failed for %s attempts over about three days; the last: %s', $2::int, $3::text)
           from webhook_delivery failed
           where failed.id = $1 and w.id = failed.endpoint_id and w.disabled_at is null
             and not exists (select 1 from webhook_delivery ok
                             where ok.endpoint_id = w.id and ok.delivered_at >= failed.created_at)
           returning w.organization_id, w.url"#,
        delivery_id,
        attempts,
        last
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(endpoint) = disabled else {
        return Ok(());
    };
    let owners = sqlx::query!(
        "select id, email, display_name from app_user where organization_id = $1 and role = 'owner'",
        endpoint.organization_id
    )
    .fetch_all(&mut *conn)
    .await?;
    for owner in owners {
        let body = format!(
            "Hello {name},\n\nRigshift disabled your webhook endpoint {hook} because every \
             delivery to it failed for about three days ({attempts} attempts; the last: {last}).\n\n\
             Nothing is sent to it until you enable it again at {page}; the events meanwhile \
             wait and go out then.{footer}",
            name = owner.display_name,
            hook = endpoint.url,
            page = url.link("/webhooks"),
            footer = mail::footer(url),
        );
        mail::queue(
            conn,
            mail::Message {
                user_id: Some(owner.id),
                to: &owner.email,
                subject: "A Rigshift webhook endpoint was disabled",
                body,
            },
        )
        .await?;
    }
    Ok(())
}

/// Deliveries to the organization's endpoints (one endpoint, or all), newest first, with
/// every attempt.
pub async fn deliveries(
    db: &PgPool,
    organization_id: i64,
    webhook_id: Option<i64>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>, ServiceError> {
    if let Some(id) = webhook_id {
        let mine = sqlx::query_scalar!(
            "select id from webhook_endpoint where id = $1 and organization_id = $2",
            id,
            organization_id
        )
        .fetch_optional(db)
        .await?;
        if mine.is_none() {
            return Err(ServiceError::NotFound("webhook"));
        }
    }
    let rows = sqlx::query!(
        r#"select d.id, d.endpoint_id, d.event_id, e.kind, d.created_at, d.attempts,
                  d.next_attempt_at, d.delivered_at, d.failed_at
           from webhook_delivery d
           join webhook_endpoint w on w.id = d.endpoint_id
           join event_outbox e on e.id = d.event_id
           where w.organization_id = $1 and ($2::bigint is null or d.endpoint_id = $2)
             and ($3::bigint is null or d.id < $3)
           order by d.id desc limit $4"#,
        organization_id,
        webhook_id,
        before_id,
        limit.clamp(1, 500)
    )
    .fetch_all(db)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let attempts = sqlx::query!(
        r#"select delivery_id, attempted_at, status, error, duration_ms
           from webhook_attempt where delivery_id = any($1) order by id"#,
        &ids
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Delivery {
            id: r.id,
            webhook_id: r.endpoint_id,
            event_id: r.event_id,
            event: r.kind,
            created_at: r.created_at,
            status: if r.delivered_at.is_some() {
                "delivered"
            } else if r.failed_at.is_some() {
                "failed"
            } else {
                "pending"
            }
            .into(),
            attempts: r.attempts,
            next_attempt_at: (r.delivered_at.is_none() && r.failed_at.is_none())
                .then_some(r.next_attempt_at),
            attempt_log: attempts
                .iter()
                .filter(|a| a.delivery_id == r.id)
                .map(|a| Attempt {
                    at: a.attempted_at,
                    status: a.status.map(i32::from),
                    error: a.error.clone(),
                    duration_ms: a.duration_ms,
                })
                .collect(),
        })
        .collect())
}
