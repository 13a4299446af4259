//! The browser's door, as server functions see it: who is signed in (resolved by the
//! server's auth layer and left in the request's extensions), the session cookie, and the
//! mapping of service errors to HTTP statuses and the typed [`AppError`] pages branch on.

use super::error::ServiceError;
use super::principal::Principal;
use super::sessions::SessionPolicy;
use crate::account::CurrentUser;
use crate::app_error::{AppError, ErrorKind, FieldProblem};
use http::{header, HeaderValue, StatusCode};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use std::net::IpAddr;

/// How the session cookie is set. Behind HTTPS, `secure` gives it the `Secure` flag and the
/// `__Host-` name (which browsers only accept from a secure origin, for the whole host).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CookiePolicy {
    pub secure: bool,
    pub session: SessionPolicy,
}

impl CookiePolicy {
    pub fn name(&self) -> &'static str {
        if self.secure {
            "__Host-rigshift_session"
        } else {
            "rigshift_session"
        }
    }

    pub fn set_cookie(&self, secret: &str) -> String {
        format!(
            "{}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            self.name(),
            self.session.absolute.num_seconds(),
            if self.secure { "; Secure" } else { "" }
        )
    }

    pub fn clear_cookie(&self) -> String {
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            self.name(),
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The session secret from a `Cookie` header, if any.
    pub fn read<'a>(&self, cookie_header: &'a str) -> Option<&'a str> {
        cookie_header
            .split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == self.name())
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// What the server's auth layer learned about a request.
#[derive(Clone, Debug, Default)]
pub struct RequestAuth {
    pub principal: Option<Principal>,
    pub user: Option<CurrentUser>,
    /// The session secret the request's cookie presented, live or not.
    pub presented_session: Option<String>,
    pub client: Option<IpAddr>,
    pub user_agent: String,
    pub cookies: CookiePolicy,
}

pub fn request_auth() -> RequestAuth {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<RequestAuth>().cloned())
        .unwrap_or_default()
}

/// The signed-in caller, or a 401 asking them to sign in.
pub fn principal() -> Result<Principal, AppError> {
    request_auth().principal.ok_or_else(|| {
        fail(ServiceError::Unauthorized(
            "please sign in first; your session may have expired".into(),
        ))
    })
}

/// Refuses a plain form post (the browser's, without JavaScript) to a server function whose
/// answer is a secret shown only once, by the page's island: the browser would reload the
/// page and lose the secret, leaving a key or endpoint nobody can use. `what` names the
/// secret (`a new key's secret`).
pub fn answer_read_by_the_page(what: &str) -> Result<(), AppError> {
    let plain_form = use_context::<http::request::Parts>().is_some_and(|parts| {
        parts
            .headers
            .get(http::header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
    });
    if plain_form {
        return Err(fail(ServiceError::conflict(format!(
            "{what} is shown once, on this page, which needs JavaScript: turn JavaScript on \
             and send the form again (nothing was created)"
        ))));
    }
    Ok(())
}

/// Maps a service error to the response status (and `Retry-After`) and the typed error the
/// page gets: its kind, a message that is safe to show (the services' messages say what was
/// wrong and how to fix it) and the fields to fix. The one mapping for every server function.
pub fn fail(err: ServiceError) -> AppError {
    let status = err.status();
    if let Some(res) = use_context::<ResponseOptions>() {
        res.set_status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST));
        if let ServiceError::TooManyRequests {
            retry_after_secs, ..
        } = &err
        {
            res.insert_header(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if let ServiceError::Unavailable(_) = &err {
            res.insert_header(
                header::RETRY_AFTER,
                HeaderValue::from(super::error::UNAVAILABLE_RETRY_AFTER_SECS),
            );
        }
    }
    let kind = match &err {
        ServiceError::Invalid(_) => ErrorKind::Invalid,
        ServiceError::NotFound(_) => ErrorKind::NotFound,
        ServiceError::Unauthorized(_) => ErrorKind::Unauthorized,
        ServiceError::Forbidden(_) => ErrorKind::Forbidden,
        ServiceError::TooManyRequests { .. } => ErrorKind::TooManyRequests,
        ServiceError::Conflict { .. } | ServiceError::PriceChanged { .. } => ErrorKind::Conflict,
        ServiceError::Unavailable(_) => ErrorKind::Unavailable,
    };
    let (message, fields) = match &err {
        ServiceError::Invalid(errors) => (
            match errors.as_slice() {
                [one] => one.message.clone(),
                _ => err.to_string(),
            },
            errors
                .iter()
                .map(|e| FieldProblem {
                    field: e.field.clone(),
                    message: capitalize(&e.message),
                })
                .collect(),
        ),
        other => (other.to_string(), Vec::new()),
    };
    AppError {
        status,
        kind,
        message: capitalize(&message),
        fields,
    }
}

impl From<ServiceError> for AppError {
    fn from(err: ServiceError) -> Self {
        fail(err)
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

pub fn set_response_header(name: http::HeaderName, value: &str) {
    if let (Some(res), Ok(v)) = (
        use_context::<ResponseOptions>(),
        HeaderValue::from_str(value),
    ) {
        res.append_header(name, v);
    }
}

/// The configured platform fee rate, in basis points.
pub fn platform_fee_bp() -> i64 {
    use_context::<crate::pricing::PlatformFee>()
        .unwrap_or_default()
        .0
}

/// Where links in mail point (the server provides it; a request without it is a bug).
pub fn public_url() -> Result<super::mail::PublicUrl, AppError> {
    use_context::<super::mail::PublicUrl>().ok_or_else(|| {
        tracing::error!("no PublicUrl in the request context");
        AppError::unavailable("The server is misconfigured; please try again later.")
    })
}

pub fn db() -> Result<sqlx::PgPool, AppError> {
    super::db_from_context()
}

/// The pool for reading the public market: the replica (see [`super::replica`]) when one is
/// configured and fresh and the visitor is not signed in, the primary otherwise, so a
/// signed-in person always reads their own writes.
pub fn browse_db() -> Result<sqlx::PgPool, AppError> {
    let auth = request_auth();
    if auth.principal.is_none() && auth.user.is_none() {
        if let Some(pool) =
            use_context::<super::replica::ReadReplica>().and_then(|r| r.pool_if_fresh())
        {
            return Ok(pool);
        }
    }
    db()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_carry_the_flags_the_setting_asks_for() {
        let plain = CookiePolicy::default();
        let c = plain.set_cookie("abc");
        assert!(c.starts_with("rigshift_session=abc;"));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && !c.contains("Secure"));
        let secure = CookiePolicy {
            secure: true,
            ..Default::default()
        };
        let c = secure.set_cookie("abc");
        assert!(c.starts_with("__Host-rigshift_session=abc;") && c.contains("; Secure"));
        assert!(c.contains("Path=/") && !c.contains("Domain"));
    }

    #[test]
    fn session_secret_is_read_from_the_cookie_header() {
        let p = CookiePolicy::default();
        assert_eq!(p.read("a=1; rigshift_session=xyz; b=2"), Some("xyz"));
        assert_eq!(p.read("rigshift_session_old=xyz"), None);
        assert_eq!(p.read("rigshift_session="), None);
    }
}
