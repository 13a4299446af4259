//! Platform administration: the one administrator sees every organization and may suspend
//! one (its sessions end, its keys stop working, its people can't sign in) or reinstate it.

use super::error::ServiceError;
use crate::account::{OrgKind, OrgSummary};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

pub async fn organizations(db: &PgPool) -> Result<Vec<OrgSummary>, ServiceError> {
    let rows = sqlx::query!(
        r#"select o.id, o.name, o.kind, o.created_at, o.suspended_at,
                  (select count(*) from app_user u where u.organization_id = o.id) as "users!",
                  (select count(*) from site s where s.operator_id = o.id) as "sites!",
                  (select count(*) from reservation r where r.customer_id = o.id) as "reservations!"
           from organization o order by o.name"#
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| OrgSummary {
            id: r.id,
            name: r.name,
            kind: OrgKind::parse(&r.kind).unwrap_or(OrgKind::Customer),
            users: r.users,
            sites: r.sites,
            reservations: r.reservations,
            created_at: r.created_at,
            suspended_at: r.suspended_at,
        })
        .collect())
}

/// Suspends (`suspend = true`) or reinstates an organization. The administrator's own
/// organization can't be suspended, so the platform is never left without its administrator.
pub async fn set_suspended(
    db: &PgPool,
    admin_user_id: i64,
    organization_id: i64,
    suspend: bool,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let own = sqlx::query_scalar!(
        "select organization_id from app_user where id = $1",
        admin_user_id
    )
    .fetch_optional(db)
    .await?;
    if suspend && own == Some(organization_id) {
        return Err(ServiceError::conflict(
            "you can't suspend the organization you administer the platform from",
        ));
    }
    let mut tx = db.begin().await?;
    let updated = sqlx::query!(
        r#"update organization
           set suspended_at = case when $2 then coalesce(suspended_at, $3) else null end,
               updated_at = $3
           where id = $1"#,
        organization_id,
        suspend,
        now
    )
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ServiceError::NotFound("organization"));
    }
    if suspend {
        // Sessions are checked against the organization anyway; deleting them makes the
        // suspension visible at once in the sessions table too.
        sqlx::query!(
            "delete from session where user_id in (select id from app_user where organization_id = $1)",
            organization_id
        )
        .execute(&mut *tx)
        .await?;
    }
    let action = if suspend {
        "organization.suspended"
    } else {
        "organization.reinstated"
    };
    super::audit::note(
        &mut tx,
        organization_id,
        action,
        ("organization", organization_id),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        organization_id,
        suspend,
        admin_user_id,
        "organization suspension changed"
    );
    Ok(())
}
