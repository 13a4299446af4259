//! Organizations and the people in them: sign-up, sign-in, password changes, and the
//! administrator's commands. Passwords are argon2id hashes (see [`super::password`]).

use super::error::{FieldError, ServiceError};
use super::password;
use super::throttle;
use crate::account::{email_problem, normalize_email, password_problem, OrgKind};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use std::net::IpAddr;
use tokio::sync::OnceCell;

/// A new organization with its first person (its owner).
#[derive(Clone, Debug)]
pub struct Signup {
    pub organization_name: String,
    pub kind: String,
    pub display_name: String,
    pub email: String,
    pub password: String,
}

fn check_name(field: &str, value: &str, what: &str, errors: &mut Vec<FieldError>) {
    let len = value.trim().chars().count();
    if value.chars().any(char::is_control) {
        errors.push(FieldError {
            field: field.into(),
            message: format!("{what} can't contain control characters such as line breaks"),
        });
    } else if len == 0 {
        errors.push(FieldError {
            field: field.into(),
            message: format!("enter {what}"),
        });
    } else if len > 200 {
        errors.push(FieldError {
            field: field.into(),
            message: format!("{what} has at most 200 characters"),
        });
    }
}

fn check_person(email: &str, display_name: &str, password: &str, errors: &mut Vec<FieldError>) {
    if let Some(m) = email_problem(email) {
        errors.push(FieldError {
            field: "email".into(),
            message: m.into(),
        });
    }
    check_name("display_name", display_name, "your name", errors);
    let email = normalize_email(email);
    if let Some(m) = password_problem(password, &email)
        .or_else(|| password::weakness(password, &[&email, display_name]))
    {
        errors.push(FieldError {
            field: "password".into(),
            message: m,
        });
    }
}

fn parse_kind(kind: &str) -> Result<OrgKind, ServiceError> {
    OrgKind::parse(kind.trim())
        .ok_or_else(|| ServiceError::invalid("kind", "choose customer, operator or both"))
}

/// Creates the organization and its owner in one transaction; returns the user id. Each
/// sign-up costs a password hash, so a client address gets ten an hour.
pub async fn sign_up(
    db: &PgPool,
    s: &Signup,
    client: Option<IpAddr>,
    url: &super::mail::PublicUrl,
    now: DateTime<Utc>,
) -> Result<i64, ServiceError> {
    let mut errors = Vec::new();
    check_name(
        "organization_name",
        &s.organization_name,
        "your organization's name",
        &mut errors,
    );
    if OrgKind::parse(s.kind.trim()).is_none() {
        errors.push(FieldError {
            field: "kind".into(),
            message: "choose customer, operator or both".into(),
        });
    }
    check_person(&s.email, &s.display_name, &s.password, &mut errors);
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    if let Some(ip) = client {
        throttle::attempt(db, &throttle::signup_key(ip), throttle::SIGNUP, now).await?;
    }
    let phc = hash(&s.password).await?;
    let mut tx = db.begin().await?;
    let org = insert_organization(&mut tx, &s.organization_name, parse_kind(&s.kind)?).await?;
    let user = insert_user(
        &mut tx,
        org,
        &s.email,
        &s.display_name,
        &phc,
        "owner",
        false,
    )
    .await?;
    super::recovery::send_verification(&mut tx, user, url, now).await?;
    tx.commit().await?;
    Ok(user)
}

async fn hash(password: &str) -> Result<String, ServiceError> {
    password::hash(password.to_string()).await.map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        ServiceError::conflict("could not secure the password right now; please try again")
    })
}

async fn insert_organization(
    conn: &mut PgConnection,
    name: &str,
    kind: OrgKind,
) -> Result<i64, ServiceError> {
    let id = sqlx::query_scalar!(
        r#"insert into organization (name, kind) values ($1, $2)
           on conflict (name) do nothing returning id"#,
        name.trim(),
        kind.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?;
    id.ok_or_else(|| {
        ServiceError::invalid(
            "organization_name",
            "an organization with this name is already registered; choose another name or ask its owner to add you",
        )
    })
}

async fn insert_user(
    conn: &mut PgConnection,
    organization_id: i64,
    email: &str,
    display_name: &str,
    phc: &str,
    role: &str,
    platform_admin: bool,
) -> Result<i64, ServiceError> {
    let result = sqlx::query_scalar!(
        r#"insert into app_user (organization_id, email, display_name, password_hash, role, platform_admin)
           values ($1, $2, $3, $4, $5, $6)
           on conflict (email) do nothing returning id"#,
        organization_id,
        normalize_email(email),
        display_name.trim(),
        phc,
        role,
        platform_admin
    )
    .fetch_optional(&mut *conn)
    .await;
    match result {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(ServiceError::invalid(
            "email",
            "an account with this email already exists; sign in instead",
        )),
        Err(e) if super::error::refusal(&e) == Some(super::error::Refusal::SecondAdministrator) => {
            Err(ServiceError::conflict(
                "there is already a platform administrator; there can be only one",
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// A hash of a password nobody has, verified when the email is unknown, so that an unknown
/// email costs the same time as a wrong password.
async fn decoy_hash() -> &'static str {
    static DECOY: OnceCell<String> = OnceCell::const_new();
    DECOY
        .get_or_init(|| async {
            password::hash(super::token::random_hex(16))
                .await
                .unwrap_or_default()
        })
        .await
}

/// Signs in: the user id when the email and password match. Throttled per account and per
/// client address; an unknown email and a wrong password get the same answer in the same time.
pub async fn sign_in(
    db: &PgPool,
    email: &str,
    password: &str,
    client: Option<IpAddr>,
    now: DateTime<Utc>,
) -> Result<i64, ServiceError> {
    let email = normalize_email(email);
    if email.is_empty() || password.is_empty() {
        return Err(ServiceError::invalid(
            "email",
            "enter your email address and password",
        ));
    }
    if email.len() > 254
        || email.chars().any(char::is_control)
        || password.chars().count() > crate::account::MAX_PASSWORD_CHARS
    {
        return Err(wrong_credentials());
    }
    // Claim the attempt on the address first, then on the account; a refusal on the account
    // gives the address its slot back.
    let address = client.map(throttle::address_key);
    if let Some(k) = &address {
        throttle::attempt(db, k, throttle::ADDRESS, now).await?;
    }
    let account = throttle::account_key(&email);
    if let Err(e) = throttle::attempt(db, &account, throttle::ACCOUNT, now).await {
        if let Some(k) = &address {
            throttle::release(db, k).await?;
        }
        return Err(e);
    }

    let row = sqlx::query!(
        r#"select u.id, u.password_hash, o.suspended_at
           from app_user u join organization o on o.id = u.organization_id
           where u.email = $1"#,
        email
    )
    .fetch_optional(db)
    .await?;
    let phc = match &row {
        Some(r) => r.password_hash.clone(),
        None => decoy_hash().await.to_string(),
    };
    let matches = password::verify(password.to_string(), phc).await && row.is_some();
    let Some(row) = row.filter(|_| matches) else {
        throttle::fail(db, &account, throttle::ACCOUNT, now).await?;
        if let Some(k) = &address {
            throttle::fail(db, k, throttle::ADDRESS, now).await?;
        }
        return Err(wrong_credentials());
    };
    throttle::clear(db, &account).await?;
    if let Some(k) = &address {
        throttle::release(db, k).await?;
    }
    if row.suspended_at.is_some() {
        return Err(ServiceError::Forbidden(
            "your organization is suspended; contact Rigshift support to reinstate it".into(),
        ));
    }
    Ok(row.id)
}

fn wrong_credentials() -> ServiceError {
    ServiceError::Unauthorized(
        "that email and password don't match an account; check both and try again".into(),
    )
}

/// Changes the password after checking the current one, and tells the person by mail.
pub async fn change_password(
    db: &PgPool,
    user_id: i64,
    current: &str,
    new: &str,
    url: &super::mail::PublicUrl,
) -> Result<(), ServiceError> {
    let row = sqlx::query!(
        "select email, password_hash from app_user where id = $1",
        user_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("user"))?;
    // Guesses at the current password count like failed sign-ins: a stolen session must not
    // be a way to try passwords without limit.
    let account = throttle::account_key(&row.email);
    let now = chrono::Utc::now();
    throttle::attempt(db, &account, throttle::ACCOUNT, now).await?;
    if !password::verify(current.to_string(), row.password_hash).await {
        throttle::fail(db, &account, throttle::ACCOUNT, now).await?;
        return Err(ServiceError::invalid(
            "current_password",
            "that is not your current password",
        ));
    }
    throttle::clear(db, &account).await?;
    if let Some(m) =
        password_problem(new, &row.email).or_else(|| password::weakness(new, &[&row.email]))
    {
        return Err(ServiceError::invalid("new_password", m));
    }
    if new == current {
        return Err(ServiceError::invalid(
            "new_password",
            "the new password is the same as the current one",
        ));
    }
    let phc = hash(new).await?;
    let mut tx = db.begin().await?;
    sqlx::query!(
        "update app_user set password_hash = $2, updated_at = now() where id = $1",
        user_id,
        phc
    )
    .execute(&mut *tx)
    .await?;
    super::mail::security_notice(
        &mut tx,
        user_id,
        "The password of your Rigshift account was changed, and your other sessions were signed out.",
        url,
    )
    .await?;
    super::audit::record_for_user(&mut tx, user_id, "user.password_changed").await?;
    tx.commit().await?;
    Ok(())
}

/// The people of an organization, owners first.
pub async fn members(
    db: &PgPool,
    organization_id: i64,
) -> Result<Vec<crate::account::Member>, ServiceError> {
    let rows = sqlx::query!(
        r#"select display_name, email, role, created_at from app_user
           where organization_id = $1 order by role = 'owner' desc, display_name, id limit 500"#,
        organization_id
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| crate::account::Member {
            display_name: r.display_name,
            email: r.email,
            role: r.role,
            created_at: r.created_at,
        })
        .collect())
}

/// An owner adds a person to their own organization, as a member. There is no email
/// delivery yet, so the new member gets a random temporary password, returned once for the
/// owner to hand over; the member signs in with it and sets their own on the account page.
/// Returns the new user's id and the temporary password.
pub async fn add_member(
    db: &PgPool,
    owner_user_id: i64,
    organization_id: i64,
    email: &str,
    display_name: &str,
) -> Result<(i64, String), ServiceError> {
    let role = sqlx::query_scalar!(
        "select role from app_user where id = $1 and organization_id = $2",
        owner_user_id,
        organization_id
    )
    .fetch_optional(db)
    .await?;
    if role.as_deref() != Some("owner") {
        return Err(ServiceError::Forbidden(
            "only an owner of the organization adds people; ask one of its owners".into(),
        ));
    }
    // 20 characters of [A-Za-z0-9]: about 119 bits, far beyond guessing.
    let password = super::token::random_alnum(20);
    let mut errors = Vec::new();
    check_person(email, display_name, &password, &mut errors);
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    let phc = hash(&password).await?;
    let mut tx = db.begin().await?;
    let id = insert_user(
        &mut tx,
        organization_id,
        email,
        display_name,
        &phc,
        "member",
        false,
    )
    .await?;
    tx.commit().await?;
    Ok((id, password))
}

/// Administrator command: a new organization; returns its id.
pub async fn create_organization(db: &PgPool, name: &str, kind: &str) -> Result<i64, ServiceError> {
    let mut errors = Vec::new();
    check_name("name", name, "the organization's name", &mut errors);
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    let kind = parse_kind(kind)?;
    let mut conn = db.acquire().await?;
    insert_organization(&mut conn, name, kind).await
}

/// Administrator command: a new person in an existing organization; returns the user id.
pub async fn create_user(
    db: &PgPool,
    organization_id: i64,
    email: &str,
    display_name: &str,
    password: &str,
    platform_admin: bool,
) -> Result<i64, ServiceError> {
    let mut errors = Vec::new();
    check_person(email, display_name, password, &mut errors);
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    let phc = hash(password).await?;
    let mut tx = db.begin().await?;
    let exists = sqlx::query_scalar!(
        "select id from organization where id = $1 for share",
        organization_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if exists.is_none() {
        return Err(ServiceError::NotFound("organization"));
    }
    let role = if platform_admin { "owner" } else { "member" };
    let id = insert_user(
        &mut tx,
        organization_id,
        email,
        display_name,
        &phc,
        role,
        platform_admin,
    )
    .await?;
    // The administrator gave the address; it needs no link to prove it.
    sqlx::query!(
        "update app_user set email_verified_at = now() where id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// The organization's name; "not found" for an id that does not exist.
pub async fn organization_name(db: &PgPool, organization_id: i64) -> Result<String, ServiceError> {
    sqlx::query_scalar!(
        "select name from organization where id = $1",
        organization_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("organization"))
}
