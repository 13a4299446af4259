//! The HTTP surface: the Leptos app (pages and server functions), `/healthz`, static
//! assets, and the layers every response passes through (request ids, access logs,
//! security headers, compression).

use app::services::web::CookiePolicy;
use app::{shell, App};
use axum::{
    body::Body,
    extract::{FromRef, State},
    http::{header, HeaderName, HeaderValue, Request, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, handle_server_fns_with_context, LeptosRoutes};
use sqlx::PgPool;
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

/// Everything a handler may need; cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: PgPool,
    pub security: Security,
    /// The platform fee rate new reservations are priced at.
    pub platform_fee: app::pricing::PlatformFee,
}

/// How the doors are kept: session cookies, whom to believe about client addresses, how
/// much each API key may ask, and where webhooks may point.
#[derive(Clone, Copy, Debug)]
pub struct Security {
    pub cookies: CookiePolicy,
    pub trust_proxy: bool,
    /// Requests per API key per minute.
    pub api_rate_per_minute: u32,
    /// Webhooks may use plain http:// and private or loopback addresses (development, tests).
    pub allow_private_webhooks: bool,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            cookies: CookiePolicy::default(),
            trust_proxy: false,
            api_rate_per_minute: 600,
            allow_private_webhooks: false,
        }
    }
}

impl Security {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            cookies: CookiePolicy {
                secure: config.secure_cookies,
                ..Default::default()
            },
            trust_proxy: config.trust_proxy,
            api_rate_per_minute: config.api_rate_per_minute,
            allow_private_webhooks: config.allow_private_webhooks,
        }
    }
}

/// Largest request body accepted (larger ones get 413); the API's bodies are small.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Longest a request may take before it is answered 408 (`REQUEST_TIMEOUT`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the complete router for `state`.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let x_request_id = HeaderName::from_static("x-request-id");

    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/statement.csv", get(crate::exports::statement))
        .route("/earnings.csv", get(crate::exports::earnings))
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
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(CompressionLayer::new());
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

/// Server functions get the database pool in their reactive context.
async fn server_fn_handler(State(state): State<AppState>, req: Request<Body>) -> impl IntoResponse {
    handle_server_fns_with_context(move || provide_app_context(&state), req).await
}

/// What pages and server functions find in their reactive context.
fn provide_app_context(state: &AppState) {
    provide_context(state.db.clone());
    provide_context(state.platform_fee);
    provide_context(app::pages::developers::ApiDocument(crate::api::doc::json()));
    provide_context(app::pages::webhooks::WebhookPolicy {
        allow_private: state.security.allow_private_webhooks,
    });
}

/// 200 when the database answers within two seconds, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> Response {
    let ping = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("select 1").fetch_one(&state.db),
    )
    .await;
    match ping {
        Ok(Ok(_)) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ok", "database": "ok" })),
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database error");
            unavailable()
        }
        Err(_) => {
            tracing::warn!("health check: database did not answer within 2 s");
            unavailable()
        }
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

/// Headers every response carries. Pages set their own content security policy (with the
/// nonce of their inline scripts, see `app::shell`); every other response gets one that
/// allows nothing at all.
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
