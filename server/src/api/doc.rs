//! The OpenAPI 3.1 document of the JSON API, generated from the handlers' annotations and
//! served at `/api/v1/openapi.json`; the app's API reference page renders the same document.

use super::{
    audit, grid_events, incidents, ledger, market, operations, orders, resale, reservations,
    webhooks,
};
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
        operations::organization, audit::list,
        market::list_pools, market::get_pool, market::availability, market::timeline,
        market::find_slot, market::search,
        reservations::quote, reservations::create, reservations::list, reservations::get,
        reservations::units, reservations::credits, reservations::cancel, reservations::extend,
        reservations::hold, reservations::confirm,
        orders::create, orders::list, orders::get, orders::cancel,
        resale::offers, resale::create, resale::mine, resale::withdraw, resale::buy,
        operations::list_sites, operations::get_site, operations::site_bridge, operations::create_site, operations::update_site,
        operations::create_pool, operations::update_pool, operations::open_window,
        operations::list_blackouts, operations::create_blackout, operations::delete_blackout,
        operations::list_bookings,
        grid_events::create, grid_events::list, grid_events::get, grid_events::demand_response,
        incidents::create, incidents::list, incidents::get, incidents::resolve,
        incidents::offers, incidents::accept, incidents::decline,
        webhooks::list, webhooks::create, webhooks::delete, webhooks::enable,
        webhooks::deliveries,
        ledger::entries, ledger::statement, ledger::earnings,
    ),
    // Enums used only in query parameters are not collected from the paths.
    components(schemas(app::services::search::SearchSort, app::market::PoolKind)),
    modifiers(&KeyAuth, &MalformedQuery),
    tags(
        (name = "organization", description = "Who is calling"),
        (name = "market", description = "Listed capacity, availability and search (any key with `read`)"),
        (name = "reservations", description = "Quotes, holds, reservations and standing orders (customers)"),
        (name = "operations", description = "Sites, pools, blackouts, incidents and bookings (operators)"),
        (name = "webhooks", description = "Event notifications, signed as Standard Webhooks says (HMAC-SHA256)"),
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

/// Every operation that reads query parameters answers 400 when they don't parse (a letter
/// where a number goes, a repeated parameter; see `api::Params`). Declared here once for all
/// of them, so a new route can't forget it.
struct MalformedQuery;

impl Modify for MalformedQuery {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{path::ParameterIn, ContentBuilder, Ref, RefOr, ResponseBuilder};
        let bad_query = ResponseBuilder::new()
            .description("Malformed query parameters")
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let reads_query = op
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| p.parameter_in == ParameterIn::Query);
                if reads_query {
                    op.responses
                        .responses
                        .entry("400".into())
                        .or_insert_with(|| RefOr::T(bad_query.clone()));
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn every_operation_that_reads_the_query_documents_its_400() {
        let doc: Value = serde_json::from_str(super::json()).expect("the document is JSON");
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let reads_query = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
                if reads_query {
                    checked += 1;
                    assert_eq!(
                        op["responses"]["400"]["content"]["application/problem+json"]["schema"]
                            ["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path} reads query parameters but documents no 400"
                    );
                }
            }
        }
        // The list routes, search, availability, timeline, slots and the ledger's.
        assert!(checked >= 10, "only {checked} operations read the query");
        assert!(doc["paths"]["/api/v1/ledger/entries"]["get"]["responses"]["400"].is_object());
    }
}
