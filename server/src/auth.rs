//! The auth layer every request passes through: it finds out who is asking (an API key in
//! `Authorization: Bearer`, or a session cookie), refuses cross-site state changes (CSRF)
//! and credentials in URLs, and leaves what it learned in the request's extensions as
//! [`RequestAuth`] for pages, server functions and the JSON API.

use crate::api::problem::Problem;
use crate::state::AppState;
use app::services::audit::{self, Actor};
use app::services::{api_keys, principal::Door, sessions, web::RequestAuth};
use axum::{
    body::Body,
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, HeaderValue, Method, Request},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::net::{IpAddr, SocketAddr};

/// Query parameters that look like credentials; a request carrying one is refused so the
/// caller notices before the key sits in more logs.
const CREDENTIAL_PARAMS: [&str; 6] = [
    "api_key",
    "apikey",
    "key",
    "token",
    "access_token",
    "authorization",
];

pub async fn authenticate(
    State(state): State<AppState>,
    mut req: Request<Body>,
    next: Next,
) -> Response {
    let now = chrono::Utc::now();
    if let Some(query) = req.uri().query() {
        if query_has_credential(query) {
            return Problem::bad_request(
                "API keys are never accepted in a URL, where logs and browser history keep them; \
                 send `Authorization: Bearer rsk_...` instead, and revoke the key you sent this way",
            )
            .into_response();
        }
    }
    // The app's own files (the wasm bundle and its chunks, styles, icons) are the same for
    // everyone: no session lookup (a page loads dozens of them) and no `no-store`, so the
    // browser keeps them.
    if is_safe(req.method()) && is_static_asset(req.uri().path()) {
        req.extensions_mut().insert(RequestAuth::default());
        return next.run(req).await;
    }
    let is_api = req.uri().path().starts_with("/api/v1/") || req.uri().path() == "/api/v1";
    let mut auth = RequestAuth {
        client: client_addr(&req, state.security.trust_proxy),
        user_agent: header_str(req.headers(), header::USER_AGENT)
            .unwrap_or_default()
            .to_string(),
        cookies: state.security.cookies,
        ..Default::default()
    };

    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| bearer_token(v.to_str().unwrap_or("")));
    // Outside the API, an Authorization header of another scheme (say, Basic from a proxy in
    // front of a staging site) is none of our business.
    let bearer = bearer.filter(|b| is_api || b.is_some());
    if let Some(token) = bearer {
        let Some(key) = token else {
            return Problem::unauthorized(
                "the Authorization header must be `Bearer rsk_...` with an API key from your account page",
            )
            .into_response();
        };
        match api_keys::authenticate(&state.db, &key, now).await {
            Ok(p) => {
                if let Door::ApiKey { key_id, .. } = p.door {
                    let per_minute = state.security.api_rate_per_minute;
                    let quota = match rate_limit(&state.db, key_id, per_minute, now).await {
                        Ok(q) => q,
                        Err(problem) => return problem.into_response(),
                    };
                    let actor = Actor::of(&p);
                    auth.principal = Some(p);
                    req.extensions_mut().insert(auth);
                    let mut res = audit::acting_as(actor, next.run(req)).await;
                    quota.write(res.headers_mut());
                    return res;
                }
                auth.principal = Some(p);
            }
            Err(e) => return Problem::from(e).into_response(),
        }
    } else if !is_api {
        // Browsers attach cookies to cross-site requests too; a state change must come from
        // one of our own pages. (The JSON API never reads cookies, so it needs no such check.)
        if !is_safe(req.method()) {
            if let Err(why) = same_origin(req.headers()) {
                return Problem::forbidden("cross-site-request", why).into_response();
            }
        }
        let secret = header_str(req.headers(), header::COOKIE)
            .and_then(|c| state.security.cookies.read(c))
            .map(str::to_string);
        if let Some(secret) = secret {
            match sessions::resolve(&state.db, &secret, state.security.cookies.session, now).await {
                Ok(Some((principal, user))) => {
                    auth.principal = Some(principal);
                    auth.user = Some(user);
                }
                Ok(None) => {}
                Err(e) => return Problem::from(e).into_response(),
            }
            auth.presented_session = Some(secret);
        }
    }
    let signed_in = auth.user.is_some();
    let actor = auth.principal.as_ref().map(Actor::of);
    req.extensions_mut().insert(auth);
    // Whatever the request changes is recorded in the audit trail as done by its caller.
    let mut res = match actor {
        Some(actor) => audit::acting_as(actor, next.run(req)).await,
        None => next.run(req).await,
    };
    if signed_in {
        // Pages for a signed-in person hold their organization's data: never cached by
        // shared caches, nor kept by the browser for the next person at the keyboard.
        res.headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("private, no-store"));
        res.headers_mut()
            .append(header::VARY, HeaderValue::from_static("Cookie"));
    }
    res
}

/// The files cargo-leptos builds into the site's `pkg/` directory and the public assets.
fn is_static_asset(path: &str) -> bool {
    path.starts_with("/pkg/") || path == "/favicon.svg" || path == "/favicon.ico"
}

/// Where an API key stands in its minute, told to the caller in every answer as the
/// `RateLimit-*` fields of the IETF's rate-limit headers draft, so a client can slow down
/// before it meets a 429.
struct Quota {
    limit: u32,
    used: i64,
    reset_secs: u64,
}

impl Quota {
    fn write(&self, headers: &mut HeaderMap) {
        let remaining = (i64::from(self.limit) - self.used).max(0);
        for (name, value) in [
            ("ratelimit-limit", self.limit.to_string()),
            ("ratelimit-remaining", remaining.to_string()),
            ("ratelimit-reset", self.reset_secs.to_string()),
            ("ratelimit-policy", format!("{};w=60", self.limit)),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(header::HeaderName::from_static(name), v);
            }
        }
    }
}

/// Counts the request against the key's minute; beyond `per_minute`, 429 until the next
/// minute. One statement, so every server process counts the same requests.
async fn rate_limit(
    db: &sqlx::PgPool,
    key_id: i64,
    per_minute: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Quota, Response> {
    let count = api_keys::count_request(db, key_id, now)
        .await
        .map_err(|e| Problem::from(e).into_response())?;
    let quota = Quota {
        limit: per_minute,
        used: count,
        reset_secs: 60 - now.timestamp().rem_euclid(60) as u64,
    };
    if quota.used > i64::from(per_minute) {
        let mut res = Problem::too_many(
            format!(
                "this API key may make {per_minute} requests a minute; wait for the next minute"
            ),
            quota.reset_secs,
        )
        .into_response();
        quota.write(res.headers_mut());
        return Err(res);
    }
    Ok(quota)
}

/// `Some(token)` for a Bearer credential (the scheme is case-insensitive), `None` otherwise.
fn bearer_token(value: &str) -> Option<String> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A state-changing browser request must say it comes from this site: `Sec-Fetch-Site:
/// same-origin` (every current browser sends it), or else an `Origin` whose host is ours.
fn same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    if let Some(site) = header_str(headers, header::HeaderName::from_static("sec-fetch-site")) {
        return match site {
            "same-origin" | "none" => Ok(()),
            _ => Err("this request came from another site; Rigshift only accepts changes made from its own pages"),
        };
    }
    let host = header_str(headers, header::HOST);
    match (header_str(headers, header::ORIGIN), host) {
        (Some(origin), Some(host)) if origin_host(origin) == Some(host) => Ok(()),
        (Some(_), _) => Err("this request came from another site; Rigshift only accepts changes made from its own pages"),
        (None, _) => Err(
            "this request has no Origin header, so it can't be told apart from a cross-site one; \
             browsers send it, and integrations use the JSON API under /api/v1 with an API key",
        ),
    }
}

fn origin_host(origin: &str) -> Option<&str> {
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .filter(|h| !h.contains('/'))
}

fn query_has_credential(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or("").to_ascii_lowercase();
        CREDENTIAL_PARAMS.contains(&name.as_str())
    }) || query.contains("rsk_")
}

/// The client's address: the TCP peer, or behind a trusted proxy the last
/// `X-Forwarded-For` entry (the one the proxy itself added).
fn client_addr(req: &Request<Body>, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy {
        let forwarded = header_str(
            req.headers(),
            header::HeaderName::from_static("x-forwarded-for"),
        )
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer rsk_x"), Some("rsk_x".into()));
        assert_eq!(bearer_token("bearer  rsk_x "), Some("rsk_x".into()));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_same_site_requests_may_change_state() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://a"),
            ("host", "a")
        ]))
        .is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-site")])).is_err());
        assert!(same_origin(&headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000")
        ]))
        .is_ok());
        assert!(same_origin(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:3000")
        ]))
        .is_err());
        assert!(same_origin(&headers(&[("origin", "null"), ("host", "127.0.0.1:3000")])).is_err());
        assert!(same_origin(&headers(&[("host", "127.0.0.1:3000")])).is_err());
    }

    #[test]
    fn credentials_in_query_strings_are_spotted() {
        assert!(query_has_credential("api_key=abc"));
        assert!(query_has_credential("limit=5&Token=x"));
        assert!(query_has_credential("q=rsk_abcdefghij_123"));
        assert!(!query_has_credential("limit=5&cursor=abc"));
        assert!(!query_has_credential("next=/account"));
    }
}
