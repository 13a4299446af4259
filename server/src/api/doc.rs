//! The OpenAPI 3.1 document of the JSON API, generated from the handlers' annotations and
//! served at `/api/v1/openapi.json`; the app's API reference page renders the same document.

use super::{ledger, market, operations, reservations, webhooks};
use axum::{http::header, response::IntoResponse};
use std::sync::OnceLock;
use utoipa::{
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
    Modify, OpenApi,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rigshift API",
        version = "1.0.0",
        description = "Reserve firm GPU capacity and power blocks on converted mining sites, or list them. \
Authenticate with an API key from your account page: `Authorization: Bearer rsk_...`. \
Times are RFC 3339 in UTC, on whole hours where a window is asked for; money is integer cents with its currency. \
Errors are RFC 9457 problem documents (`application/problem+json`). Lists are paginated with `limit` and an opaque `cursor`; \
each page carries `next_cursor` until the last. Creating POSTs accept an `Idempotency-Key`. \
Each key may make a limited number of requests a minute (429 with `Retry-After` beyond)."
    ),
    paths(
        operations::organization,
        market::list_pools, market::get_pool, market::availability, market::timeline,
        market::find_slot, market::search,
        reservations::quote, reservations::create, reservations::list, reservations::get,
        reservations::cancel, reservations::extend,
        operations::list_sites, operations::get_site, operations::create_site, operations::update_site,
        operations::create_pool, operations::update_pool, operations::open_window,
        operations::list_blackouts, operations::create_blackout, operations::delete_blackout,
        operations::list_bookings,
        webhooks::list, webhooks::create, webhooks::delete, webhooks::deliveries,
        ledger::entries, ledger::statement, ledger::earnings,
    ),
    // Enums used only in query parameters are not collected from the paths.
    components(schemas(app::services::search::SearchSort, app::market::PoolKind)),
    modifiers(&KeyAuth),
    tags(
        (name = "organization", description = "Who is calling"),
        (name = "market", description = "Listed capacity, availability and search (any key with `read`)"),
        (name = "reservations", description = "Quotes and reservations (customers)"),
        (name = "operations", description = "Sites, pools, blackouts and bookings (operators)"),
        (name = "webhooks", description = "Event notifications, signed with HMAC-SHA256"),
        (name = "ledger", description = "The books: entries, statements, earnings (integer cents)"),
    )
)]
pub struct ApiDoc;

struct KeyAuth;

impl Modify for KeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as JSON, built once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}

pub async fn openapi() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        json(),
    )
}
