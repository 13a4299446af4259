//! API keys for integrations: `rsk_<prefix>_<secret>`, shown once, stored as a SHA-256 hash
//! next to their public prefix. Keys belong to an organization, carry scopes, may expire,
//! and are revoked rather than deleted so their history (last use) stays visible.

use super::error::{FieldError, ServiceError};
use super::principal::{Door, Principal};
use super::token;
use crate::account::{ApiKeyView, CreatedApiKey, OrgKind, Scope};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

pub const KEY_PREFIX: &str = "rsk_";
/// Longest expiry a key may be given, in days.
pub const MAX_EXPIRY_DAYS: i64 = 3650;

#[derive(Clone, Debug, Default)]
pub struct NewKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Days until the key stops working; `None`: until revoked.
    pub expires_in_days: Option<i64>,
}

fn check(k: &NewKey, kind: OrgKind) -> Result<(), ServiceError> {
    let mut errors = Vec::new();
    if k.scopes.contains(&Scope::Operate) && !kind.operates() {
        errors.push(FieldError {
            field: "scopes".into(),
            message: "the `operate` scope is for operator organizations; this one is a customer"
                .into(),
        });
    }
    if k.scopes.contains(&Scope::Reserve) && !kind.buys() {
        errors.push(FieldError {
            field: "scopes".into(),
            message: "the `reserve` scope is for customer organizations; this one is an operator"
                .into(),
        });
    }
    let len = k.name.trim().chars().count();
    if len == 0 || len > 100 || k.name.chars().any(char::is_control) {
        errors.push(FieldError {
            field: "name".into(),
            message: "name the key (1 to 100 characters), e.g. after the system that will use it"
                .into(),
        });
    }
    if k.scopes.is_empty() {
        errors.push(FieldError {
            field: "scopes".into(),
            message: "pick at least one scope: read, reserve or operate".into(),
        });
    }
    if let Some(d) = k.expires_in_days {
        if !(1..=MAX_EXPIRY_DAYS).contains(&d) {
            errors.push(FieldError {
                field: "expires_in_days".into(),
                message: format!(
                    "expiry is between 1 and {MAX_EXPIRY_DAYS} days, or leave it empty for none"
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Invalid(errors))
    }
}

/// Creates a key for `organization_id`; the returned secret is never stored or shown again.
/// The organization's owners (or the person who made the key) get a security notice.
pub async fn create(
    db: &PgPool,
    organization_id: i64,
    created_by: Option<i64>,
    k: &NewKey,
    url: &super::mail::PublicUrl,
    now: DateTime<Utc>,
) -> Result<CreatedApiKey, ServiceError> {
    let kind = sqlx::query_scalar!(
        "select kind from organization where id = $1",
        organization_id
    )
    .fetch_optional(db)
    .await?
    .and_then(|k| OrgKind::parse(&k))
    .ok_or(ServiceError::NotFound("organization"))?;
    check(k, kind)?;
    let mut scopes: Vec<Scope> = k.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let scope_names: Vec<String> = scopes.iter().map(|s| s.as_str().to_string()).collect();
    let expires_at = k.expires_in_days.map(|d| now + Duration::days(d));
    let prefix = token::random_alnum(10);
    let secret = format!("{KEY_PREFIX}{prefix}_{}", token::random_hex(32));
    let mut tx = db.begin().await?;
    let row = sqlx::query!(
        r#"insert into api_key (organization_id, created_by, name, prefix, secret_hash, scopes, expires_at, created_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8)
           returning id"#,
        organization_id,
        created_by,
        k.name.trim(),
        prefix,
        token::sha256(&secret),
        &scope_names,
        expires_at,
        now
    )
    .fetch_one(&mut *tx)
    .await?;
    let told = sqlx::query_scalar!(
        r#"select id from app_user
           where case when $2::bigint is null then organization_id = $1 and role = 'owner'
                      else id = $2 end"#,
        organization_id,
        created_by
    )
    .fetch_all(&mut *tx)
    .await?;
    let what = format!(
        "A new API key, \"{}\" (rsk_{prefix}), was created for your organization with the scopes {}.",
        k.name.trim(),
        scope_names.join(", ")
    );
    for user_id in told {
        super::mail::security_notice(&mut tx, user_id, &what, url).await?;
    }
    super::audit::record(
        &mut tx,
        super::audit::Event {
            organization_id: Some(organization_id),
            action: "api_key.created",
            object_type: "api_key",
            object_id: Some(row.id),
            detail: serde_json::json!({
                "prefix": format!("{KEY_PREFIX}{prefix}"), "name": k.name.trim(),
                "scopes": scope_names, "expires_at": expires_at,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedApiKey {
        key: ApiKeyView {
            id: row.id,
            name: k.name.trim().to_string(),
            prefix: format!("{KEY_PREFIX}{prefix}"),
            scopes,
            created_at: now,
            last_used_at: None,
            expires_at,
            revoked_at: None,
        },
        secret,
    })
}

/// The organization's keys, newest first, revoked ones included.
pub async fn list(db: &PgPool, organization_id: i64) -> Result<Vec<ApiKeyView>, ServiceError> {
    let rows = sqlx::query!(
        r#"select id, name, prefix, scopes, created_at, last_used_at, expires_at, revoked_at
           from api_key where organization_id = $1 order by id desc limit 500"#,
        organization_id
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ApiKeyView {
            id: r.id,
            name: r.name,
            prefix: format!("{KEY_PREFIX}{}", r.prefix),
            scopes: r.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        })
        .collect())
}

/// Revokes one of the organization's keys; a key of another organization is "not found".
pub async fn revoke(
    db: &PgPool,
    organization_id: i64,
    key_id: i64,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let mut tx = db.begin().await?;
    let revoked = sqlx::query!(
        r#"update api_key set revoked_at = coalesce(revoked_at, $3), updated_at = $3
           where id = $1 and organization_id = $2
           returning prefix, name"#,
        key_id,
        organization_id,
        now
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ServiceError::NotFound("API key"))?;
    super::audit::record(
        &mut tx,
        super::audit::Event {
            organization_id: Some(organization_id),
            action: "api_key.revoked",
            object_type: "api_key",
            object_id: Some(key_id),
            detail: serde_json::json!({
                "prefix": format!("{KEY_PREFIX}{}", revoked.prefix), "name": revoked.name,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The organization behind a presented key, or 401 with what is wrong with it.
pub async fn authenticate(
    db: &PgPool,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<Principal, ServiceError> {
    let bad = || {
        ServiceError::Unauthorized(
            "the API key is not valid; send `Authorization: Bearer rsk_...` with a key from your account page".into(),
        )
    };
    let prefix = presented
        .strip_prefix(KEY_PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .map(|(prefix, _)| prefix)
        .filter(|p| p.len() == 10)
        .ok_or_else(bad)?;
    let row = sqlx::query!(
        r#"select k.id, k.secret_hash, k.scopes, k.expires_at, k.revoked_at,
                  o.id as organization_id, o.kind, o.suspended_at
           from api_key k join organization o on o.id = k.organization_id
           where k.prefix = $1"#,
        prefix
    )
    .fetch_optional(db)
    .await?
    .ok_or_else(bad)?;
    if !token::digests_equal(&row.secret_hash, &token::sha256(presented)) {
        return Err(bad());
    }
    if row.revoked_at.is_some() {
        return Err(ServiceError::Unauthorized(
            "this API key was revoked; create a new one on your account page".into(),
        ));
    }
    if row.expires_at.is_some_and(|e| e <= now) {
        return Err(ServiceError::Unauthorized(
            "this API key has expired; create a new one on your account page".into(),
        ));
    }
    if row.suspended_at.is_some() {
        return Err(ServiceError::Forbidden(
            "this organization is suspended; contact Rigshift support".into(),
        ));
    }
    // Last use to the minute is plenty, and spares a write per request.
    sqlx::query!(
        r#"update api_key set last_used_at = $2
           where id = $1 and (last_used_at is null or last_used_at < $2::timestamptz - interval '1 minute')"#,
        row.id,
        now
    )
    .execute(db)
    .await?;
    Ok(Principal {
        organization_id: row.organization_id,
        kind: OrgKind::parse(&row.kind).unwrap_or(OrgKind::Customer),
        platform_admin: false,
        second_factor: false,
        door: Door::ApiKey {
            key_id: row.id,
            scopes: row.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        },
    })
}

/// Counts one request of API key `key_id` in the minute of `now` and returns how many it has
/// made in that minute. One statement, so every server process counts the same requests.
pub async fn count_request(
    db: &PgPool,
    key_id: i64,
    now: DateTime<Utc>,
) -> Result<i64, ServiceError> {
    let count = sqlx::query_scalar!(
        r#"insert into api_rate_window as w (api_key_id, window_start, requests)
           values ($1, date_trunc('minute', $2::timestamptz), 1)
           on conflict (api_key_id) do update set
             requests = case when w.window_start = excluded.window_start then w.requests + 1 else 1 end,
             window_start = excluded.window_start
           returning requests"#,
        key_id,
        now
    )
    .fetch_one(db)
    .await?;
    Ok(i64::from(count))
}
