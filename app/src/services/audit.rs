//! The audit trail: every use case that changes an organization's reservations, capacity,
//! keys, webhooks or account records who did it, in the same transaction as the change.
//! Events are append-only (PostgreSQL refuses to change them); an organization reads its
//! own trail on its account page and over the API, the platform administrator reads all.

use super::error::ServiceError;
use super::principal::{Door, Principal};
use crate::audit::AuditEvent;
use sqlx::{PgConnection, PgPool};
use std::future::Future;

/// Who acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    Person {
        user_id: i64,
    },
    Key {
        key_id: i64,
    },
    /// The platform itself: background jobs and the command line.
    System,
}

impl Actor {
    pub fn of(p: &Principal) -> Self {
        match p.door {
            Door::Session { user_id } => Actor::Person { user_id },
            Door::ApiKey { key_id, .. } => Actor::Key { key_id },
        }
    }

    fn ids(self) -> (Option<i64>, Option<i64>) {
        match self {
            Actor::Person { user_id } => (Some(user_id), None),
            Actor::Key { key_id } => (None, Some(key_id)),
            Actor::System => (None, None),
        }
    }
}

tokio::task_local! {
    /// The actor of the request being served. The auth layer sets it for the whole request,
    /// as it hands the request its principal, so use cases record who acted without every
    /// signature carrying it; whatever runs outside a request acts as the platform.
    static ACTOR: Actor;
}

/// Runs `f` (a request's handling) with `actor` as the one who acts.
pub async fn acting_as<F: Future>(actor: Actor, f: F) -> F::Output {
    ACTOR.scope(actor, f).await
}

/// Who acts now.
pub fn current() -> Actor {
    ACTOR.try_with(|a| *a).unwrap_or(Actor::System)
}

/// The ids of the current actor: (person, API key), for statements that write the event
/// themselves (the booking statement).
pub fn current_ids() -> (Option<i64>, Option<i64>) {
    current().ids()
}

/// One thing that happened.
pub struct Event<'a> {
    pub organization_id: Option<i64>,
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: Option<i64>,
    pub detail: serde_json::Value,
}

/// Records `e`, done by the current actor, in the caller's transaction.
pub async fn record(conn: &mut PgConnection, e: Event<'_>) -> Result<(), ServiceError> {
    let (user_id, key_id) = current_ids();
    sqlx::query!(
        r#"insert into audit_event (organization_id, actor_user_id, actor_key_id, actor_label,
                                    action, object_type, object_id, detail)
           values ($1, $2, $3, audit_actor_label($2, $3), $4, $5, $6, $7)"#,
        e.organization_id,
        user_id,
        key_id,
        e.action,
        e.object_type,
        e.object_id,
        e.detail
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records `action` on one object of organization `organization_id`.
pub async fn note(
    conn: &mut PgConnection,
    organization_id: i64,
    action: &str,
    object: (&str, i64),
    detail: serde_json::Value,
) -> Result<(), ServiceError> {
    record(
        conn,
        Event {
            organization_id: Some(organization_id),
            action,
            object_type: object.0,
            object_id: Some(object.1),
            detail,
        },
    )
    .await
}

/// Records `action` on a person's account (their organization's trail).
pub async fn record_for_user(
    conn: &mut PgConnection,
    user_id: i64,
    action: &str,
) -> Result<(), ServiceError> {
    let organization_id = sqlx::query_scalar!(
        "select organization_id from app_user where id = $1",
        user_id
    )
    .fetch_one(&mut *conn)
    .await?;
    record(
        conn,
        Event {
            organization_id: Some(organization_id),
            action,
            object_type: "user",
            object_id: Some(user_id),
            detail: serde_json::json!({}),
        },
    )
    .await
}

/// The trail of one organization (or, with `None`, of everyone: the administrator's view),
/// newest first, `limit` at a time before `before_id`.
pub async fn list(
    db: &PgPool,
    organization_id: Option<i64>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEvent>, ServiceError> {
    let rows = sqlx::query_as!(
        AuditEvent,
        r#"select id, created_at as at, organization_id, actor_label as actor, action,
                  object_type, object_id, detail
           from audit_event
           where ($1::bigint is null or organization_id = $1)
             and ($2::bigint is null or id < $2)
           order by id desc limit $3"#,
        organization_id,
        before_id,
        limit.clamp(1, 500)
    )
    .fetch_all(db)
    .await?;
    Ok(rows)
}
