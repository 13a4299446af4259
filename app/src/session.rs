//! Signing up, in and out, and who is signed in: the server functions of the browser's door
//! and the context every page reads to know its visitor.

use crate::account::CurrentUser;
use crate::app_error::AppError;
use leptos::prelude::*;

/// Who is signed in (`None`: nobody). Resolved by the server's auth layer; no query here.
#[server(endpoint = "who_am_i")]
pub async fn who_am_i() -> Result<Option<CurrentUser>, AppError> {
    Ok(crate::services::web::request_auth().user)
}

/// Where to go after signing in: a path on this site, never another origin. Browsers drop
/// tabs and newlines from URLs (so `/\t/evil.example` would become `//evil.example`) and read
/// `\` as `/`, hence both are refused along with every other control character.
pub fn safe_next(next: Option<&str>, default: &str) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && n.len() < 500 =>
        {
            n.to_string()
        }
        _ => default.to_string(),
    }
}

#[server(endpoint = "log_in")]
pub async fn log_in(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use crate::services::{accounts, second_factor, web};
    let auth = web::request_auth();
    let db = web::db()?;
    let now = chrono::Utc::now();
    let user_id = accounts::sign_in(&db, &email, &password, auth.client, now)
        .await
        .map_err(web::fail)?;
    let next = safe_next(next.as_deref(), "/");
    let mut conn = db.acquire().await.map_err(|e| web::fail(e.into()))?;
    if second_factor::enabled(&mut conn, user_id)
        .await
        .map_err(web::fail)?
    {
        // The password was right; the sign-in waits for the code on the same page.
        let challenge = second_factor::challenge(&db, user_id, now)
            .await
            .map_err(web::fail)?;
        leptos_axum::redirect(&format!(
            "/login?challenge={challenge}&next={}",
            crate::request::encode(&next)
        ));
        return Ok(());
    }
    start_session(&db, &auth, user_id, now).await?;
    leptos_axum::redirect(&next);
    Ok(())
}

/// The second step of a sign-in with two-factor authentication: the code from the
/// authenticator app (or a recovery code) for the challenge the password step gave.
#[server(endpoint = "log_in_code")]
pub async fn log_in_code(
    challenge: String,
    code: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::services::{second_factor, web};
    let auth = web::request_auth();
    let db = web::db()?;
    let now = chrono::Utc::now();
    let user_id = second_factor::answer(&db, &challenge, &code, now)
        .await
        .map_err(web::fail)?;
    start_session(&db, &auth, user_id, now).await?;
    leptos_axum::redirect(&safe_next(next.as_deref(), "/"));
    Ok(())
}

/// A fresh session id at every sign-in (the presented one, if any, ends), so a session id
/// planted before sign-in is worth nothing after it.
#[cfg(feature = "ssr")]
async fn start_session(
    db: &sqlx::PgPool,
    auth: &crate::services::web::RequestAuth,
    user_id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), AppError> {
    use crate::services::{sessions, web};
    if let Some(old) = &auth.presented_session {
        sessions::end(db, old).await.map_err(web::fail)?;
    }
    let secret = sessions::start(db, user_id, &auth.user_agent, auth.cookies.session, now)
        .await
        .map_err(web::fail)?;
    web::set_response_header(http::header::SET_COOKIE, &auth.cookies.set_cookie(&secret));
    Ok(())
}

#[server(endpoint = "sign_up")]
pub async fn sign_up(
    organization_name: String,
    kind: String,
    display_name: String,
    email: String,
    password: String,
) -> Result<(), AppError> {
    use crate::services::{accounts, web};
    let auth = web::request_auth();
    let db = web::db()?;
    let now = chrono::Utc::now();
    let user_id = accounts::sign_up(
        &db,
        &accounts::Signup {
            organization_name,
            kind,
            display_name,
            email,
            password,
        },
        auth.client,
        &web::public_url()?,
        now,
    )
    .await
    .map_err(web::fail)?;
    start_session(&db, &auth, user_id, now).await?;
    leptos_axum::redirect("/account");
    Ok(())
}

#[server(endpoint = "log_out")]
pub async fn log_out() -> Result<(), AppError> {
    use crate::services::{sessions, web};
    let auth = web::request_auth();
    if let Some(secret) = &auth.presented_session {
        sessions::end(&web::db()?, secret)
            .await
            .map_err(web::fail)?;
    }
    web::set_response_header(http::header::SET_COOKIE, &auth.cookies.clear_cookie());
    leptos_axum::redirect("/");
    Ok(())
}

/// The sign-in state shared by the whole app: the actions that change it and the visitor
/// they produce, refetched whenever one of them completes.
#[derive(Clone, Copy)]
pub struct Auth {
    pub log_in: ServerAction<LogIn>,
    pub log_in_code: ServerAction<LogInCode>,
    pub log_out: ServerAction<LogOut>,
    pub sign_up: ServerAction<SignUp>,
    pub user: crate::resource::Loaded<Result<Option<CurrentUser>, AppError>>,
}

impl Auth {
    pub fn provide() -> Self {
        let log_in = ServerAction::<LogIn>::new();
        let log_in_code = ServerAction::<LogInCode>::new();
        let log_out = ServerAction::<LogOut>::new();
        let sign_up = ServerAction::<SignUp>::new();
        let user = crate::resource::load(|| (), |_| who_am_i());
        let auth = Self {
            log_in,
            log_in_code,
            log_out,
            sign_up,
            user,
        };
        provide_context(auth);
        auth
    }
}

pub fn use_auth() -> Auth {
    expect_context::<Auth>()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/account"), "/"), "/account");
        assert_eq!(safe_next(Some("/operator?tab=2"), "/"), "/operator?tab=2");
        for hostile in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/x",
            "",
            "account",
        ] {
            assert_eq!(safe_next(Some(hostile), "/"), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(None, "/home"), "/home");
    }
}
