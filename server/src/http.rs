//! The HTTP surface: the Leptos app (pages and server functions), `/healthz`, static
//! assets, and the layers every response passes through (request ids, access logs,
//! security headers, compression).

/// The state, security settings and body limit the router is built with (defined in
/// [`crate::state`]).
pub use crate::state::{AppState, Security, MAX_BODY_BYTES};
use app::{shell, App};
use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderName, HeaderValue, Request, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, handle_server_fns_with_context, LeptosRoutes};
use std::time::Duration;
use tower_http::{
    compression::CompressionLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;

/// Longest a request may take before it is answered 408 (`REQUEST_TIMEOUT`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the complete router for `state`.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let x_request_id = HeaderName::from_static("x-request-id");

    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(crate::ops::livez))
        .route("/readyz", get(crate::ops::readyz))
        .route("/metrics", get(crate::ops::metrics))
        .route("/statement.csv", get(crate::exports::statement))
        .route("/earnings.csv", get(crate::exports::earnings))
        .route("/operator/bookings.csv", get(crate::exports::bookings))
        .nest("/api/v1", crate::api::router(state.clone()))
        .route(
            // One segment: server functions live at /api/<name>, and /api/v1/... stays the JSON API's.
            "/api/{fn_name}",
            post(server_fn_handler).get(server_fn_handler),
        )
        .leptos_routes_with_context(
            &state,
            routes,
            {
                let state = state.clone();
                move || provide_app_context(&state)
            },
            {
                let options = state.leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Forms that carry a `request_key` are idempotent like the JSON API's POSTs (inside
        // the auth layer: keys are per organization).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::api::idempotency::server_function_layer,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ))
        // Inside the router, so each request is counted under the route pattern it matched.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::ops::record,
        ))
        .layer(middleware::map_response(page_policy))
        .layer(middleware::from_fn(plain_forms_back_to_the_page))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn(run_to_completion))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // Brotli where the client takes it (smaller pages and bundles), gzip otherwise.
        .layer(CompressionLayer::new().br(true).gzip(true));
    with_security_headers(app)
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<Body>| {
                    let request_id = req
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        request_id = %request_id,
                        method = %req.method(),
                        path = %req.uri().path(),
                    )
                })
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Millis),
                ),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

/// Runs the request's handler in its own task, so that neither a client that hangs up nor
/// the 408 timeout outside cancels it half way: a handler dropped between two awaits can
/// leave what it began unfinished (an idempotency key never recorded; with sqlx 0.9.0 a
/// connection returned to the pool while its `BEGIN` is still in flight, whose next
/// borrower then writes inside that stray transaction). The client still gets its answer
/// or its 408; the work ends as it would have, bounded by the database's own timeouts.
async fn run_to_completion(req: Request<Body>, next: middleware::Next) -> Response {
    use tracing::Instrument;
    let task = tokio::spawn(next.run(req).instrument(tracing::Span::current()));
    match task.await {
        Ok(res) => res,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => {
            tracing::error!(error = %e, "request task cancelled");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// A plain form post (every form outside an island: pages are server-rendered) gets its
/// page back with what happened, rather than a bare answer that loses the form: a 303 to
/// the page it came from (its `Referer`, as a path on this site) with
/// `form_error=<message>` when it failed, which the app shows at the top of the page, or
/// `form_done=<the server function's path>` when it succeeded and the function did not
/// send the visitor elsewhere, which the form's `FormResult` confirms. Requests from an
/// island ask for JSON and get the answer itself.
async fn plain_forms_back_to_the_page(req: Request<Body>, next: middleware::Next) -> Response {
    let path = req.uri().path();
    let from_plain_form = req.method() == axum::http::Method::POST
        && path.starts_with("/api/")
        && !path.starts_with("/api/v1/")
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    let referer = req
        .headers()
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok());
    let back = referer.as_ref().map(|u| {
        let kept: Vec<(String, String)> = u
            .query_pairs()
            .filter(|(k, _)| k != "form_error" && k != "form_done")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        (u.path().to_string(), kept)
    });
    let function = path.to_string();
    let res = next.run(req).await;
    let status = res.status();
    let Some((page, mut query)) = back.filter(|_| from_plain_form) else {
        return res;
    };
    // Success: the server function layer sends a plain form back to its `Referer` unless the
    // function redirected elsewhere itself.
    if status.is_redirection() {
        let to = res
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok());
        if !referer
            .as_ref()
            .zip(to)
            .is_some_and(|(from, to)| same_page(from, to))
        {
            return res;
        }
        query.push(("form_done".into(), function));
        return see_other(&page, &query);
    }
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (_, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let message = app::plain_forms::refusal_reason(&bytes, status.as_u16());
    query.push(("form_error".into(), message.chars().take(500).collect()));
    see_other(&page, &query)
}

/// Whether the redirect `to` leads back to the page `from` as it was (the server function
/// layer appends an empty query when it sends a form back, so the text can differ).
fn same_page(from: &url::Url, to: &str) -> bool {
    let Ok(to) = from.join(to) else {
        return false;
    };
    let pairs = |u: &url::Url| u.query_pairs().into_owned().collect::<Vec<_>>();
    to.origin() == from.origin() && to.path() == from.path() && pairs(&to) == pairs(from)
}

/// A 303 to `page` with `query`.
fn see_other(page: &str, query: &[(String, String)]) -> Response {
    let mut to = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        to.append_pair(k, v);
    }
    let location = format!("{page}?{}", to.finish());
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::BAD_REQUEST.into_response())
}

/// Server functions get the database pool in their reactive context.
async fn server_fn_handler(State(state): State<AppState>, req: Request<Body>) -> impl IntoResponse {
    handle_server_fns_with_context(move || provide_app_context(&state), req).await
}

/// What pages and server functions find in their reactive context.
fn provide_app_context(state: &AppState) {
    provide_context(state.db.clone());
    if let Some(replica) = &state.replica {
        provide_context(replica.clone());
    }
    provide_context(state.platform_fee);
    provide_context(state.public_url.clone());
    provide_context(app::pages::outbox::OutboxPolicy {
        shown: state.mail_outbox,
    });
    provide_context(app::pages::developers::ApiDocument(crate::api::doc::json()));
    provide_context(app::pages::webhooks::WebhookPolicy {
        allow_private: state.security.allow_private_webhooks,
    });
}

/// 200 when the database answers within two seconds, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> Response {
    if app::services::health::database_answers(&state.db).await {
        (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ok", "database": "ok" })),
        )
            .into_response()
    } else {
        unavailable()
    }
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "status": "unavailable", "database": "unreachable" })),
    )
        .into_response()
}

/// Pages get a policy that allows only their own inline scripts (by the nonce Leptos put on
/// them) and what those load ('strict-dynamic'), plus WebAssembly; everything else comes
/// from this origin. Set here, from the rendered page itself, so every HTML response gets
/// exactly the nonce it carries; other responses get `default-src 'none'` below.
async fn page_policy(res: Response) -> Response {
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !is_html || res.headers().contains_key(header::CONTENT_SECURITY_POLICY) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // Pages are rendered completely before the first byte (async SSR), so this waits for
    // nothing that was not already being waited for.
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page could not be rendered",
        )
            .into_response();
    };
    let nonce = page_nonce(&bytes);
    let policy = format!(
        "default-src 'self'; script-src {} 'strict-dynamic' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        nonce
            .map(|n| format!("'nonce-{n}'"))
            .unwrap_or_else(|| "'none'".into())
    );
    if let Ok(v) = HeaderValue::from_str(&policy) {
        parts.headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The nonce on the page's scripts: the first `nonce="…"`, if it is a plain token.
fn page_nonce(html: &[u8]) -> Option<&str> {
    let html = std::str::from_utf8(html).ok()?;
    let start = html.find("nonce=\"")? + "nonce=\"".len();
    let len = html[start..].find('"')?;
    let nonce = &html[start..start + len];
    (!nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')))
    .then_some(nonce)
}

/// Headers every response carries. Pages have their own content security policy by now
/// (`page_policy`); every other response gets one that allows nothing at all.
fn with_security_headers(router: Router<AppState>) -> Router<AppState> {
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ))
        .layer(set(
            header::REFERRER_POLICY,
            "strict-origin-when-cross-origin",
        ))
        .layer(set(
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ))
}

#[cfg(test)]
mod tests {
    use super::page_nonce;

    #[test]
    fn the_page_nonce_is_read_from_its_scripts_and_must_be_a_plain_token() {
        let html = br#"<html><head><script nonce="aB3+/x=_-">x</script><script nonce="other">"#;
        assert_eq!(page_nonce(html), Some("aB3+/x=_-"));
        assert_eq!(page_nonce(b"<html>no scripts</html>"), None);
        assert_eq!(page_nonce(br#"<script nonce="a' 'unsafe-inline">"#), None);
        assert_eq!(page_nonce(br#"<script nonce="">"#), None);
    }
}
