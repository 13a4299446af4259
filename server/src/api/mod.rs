//! The JSON API under `/api/v1`, for integrations with API keys. Handlers are thin: they
//! take the caller from the auth layer, parse the request, call the same services as the
//! browser's server functions, and answer JSON or a [`problem::Problem`]. The OpenAPI
//! document ([`doc`]) is generated from these handlers' annotations.

pub mod audit;
pub mod doc;
pub mod grid_events;
pub mod idempotency;
pub mod incidents;
pub mod ledger;
pub mod market;
pub mod operations;
pub mod orders;
pub mod page;
pub mod problem;
pub mod resale;
pub mod reservations;
pub mod webhooks;

use crate::state::AppState;
use app::services::{error::ServiceError, principal::Principal, web::RequestAuth};
use axum::{
    extract::{rejection::JsonRejection, FromRequest, FromRequestParts, Request},
    http::{request::Parts, StatusCode},
    middleware,
    routing::{get, post},
    Json, Router,
};
use problem::Problem;
use serde::de::DeserializeOwned;

pub type ApiResult<T> = Result<T, Problem>;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(doc::openapi))
        .route("/organization", get(operations::organization))
        .route("/pools", get(market::list_pools))
        .route(
            "/pools/{id}",
            get(market::get_pool).put(operations::update_pool),
        )
        .route("/pools/{id}/availability", get(market::availability))
        .route("/pools/{id}/timeline", get(market::timeline))
        .route("/pools/{id}/slots", get(market::find_slot))
        .route("/pools/{id}/windows", post(operations::open_window))
        .route("/search", get(market::search))
        .route("/quotes", post(reservations::quote))
        .route(
            "/reservations",
            get(reservations::list).post(reservations::create),
        )
        .route("/reservations/{id}", get(reservations::get))
        .route("/reservations/{id}/units", get(reservations::units))
        .route("/reservations/{id}/credits", get(reservations::credits))
        .route("/holds", post(reservations::hold))
        .route("/orders", get(orders::list).post(orders::create))
        .route("/orders/{id}", get(orders::get))
        .route("/orders/{id}/cancel", post(orders::cancel))
        .route("/resale-listings", get(resale::offers).post(resale::create))
        .route("/resale-listings/mine", get(resale::mine))
        .route("/resale-listings/{id}/withdraw", post(resale::withdraw))
        .route("/resale-listings/{id}/buy", post(resale::buy))
        .route("/reservations/{id}/confirm", post(reservations::confirm))
        .route("/reservations/{id}/cancel", post(reservations::cancel))
        .route("/reservations/{id}/extend", post(reservations::extend))
        .route(
            "/sites",
            get(operations::list_sites).post(operations::create_site),
        )
        .route(
            "/sites/{id}",
            get(operations::get_site).put(operations::update_site),
        )
        .route("/sites/{id}/pools", post(operations::create_pool))
        .route("/sites/{id}/bridge", get(operations::site_bridge))
        .route(
            "/sites/{id}/grid-events",
            get(grid_events::list).post(grid_events::create),
        )
        .route("/grid-events/{id}", get(grid_events::get))
        .route(
            "/pools/{id}/incidents",
            get(incidents::list).post(incidents::create),
        )
        .route("/incidents/{id}", get(incidents::get))
        .route("/incidents/{id}/resolve", post(incidents::resolve))
        .route("/incident-offers", get(incidents::offers))
        .route("/incident-offers/{id}/accept", post(incidents::accept))
        .route("/incident-offers/{id}/decline", post(incidents::decline))
        .route("/demand-response", get(grid_events::demand_response))
        .route(
            "/blackouts",
            get(operations::list_blackouts).post(operations::create_blackout),
        )
        .route(
            "/blackouts/{id}",
            axum::routing::delete(operations::delete_blackout),
        )
        .route("/bookings", get(operations::list_bookings))
        .route("/ledger/entries", get(ledger::entries))
        .route("/ledger/statement", get(ledger::statement))
        .route("/ledger/earnings", get(ledger::earnings))
        .route("/audit-events", get(audit::list))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", axum::routing::delete(webhooks::delete))
        .route("/webhooks/{id}/enable", post(webhooks::enable))
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        // Retried creating POSTs replay their first answer (see `idempotency`).
        .layer(middleware::from_fn_with_state(state, idempotency::layer))
}

async fn no_such_route() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-such-route",
        "No such route",
        "there is no API route at this path; see /api/v1/openapi.json or the API reference at /developers",
    )
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not take this HTTP method; see /api/v1/openapi.json",
    )
}

/// The organization calling, from its API key. Browser sessions don't open the JSON API.
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestAuth>()
            .and_then(|a| a.principal.clone())
            .map(Caller)
            .ok_or_else(|| {
                Problem::unauthorized(
                    "send an API key as `Authorization: Bearer rsk_...`; create one on your account page",
                )
            })
    }
}

/// A JSON body whose every rejection is a problem document saying what was wrong.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "The body does not match the expected shape",
                // serde's message names the field and what it expected.
                e.body_text()
                    .trim_start_matches(
                        "Failed to deserialize the JSON body into the target type: ",
                    )
                    .to_string(),
            )),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "JSON expected",
                "send the body as JSON with `Content-Type: application/json`",
            )),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "The body is too large",
                format!(
                    "request bodies are limited to {} KiB",
                    crate::state::MAX_BODY_BYTES / 1024
                ),
            )),
            Err(e) => Err(Problem::bad_request(format!(
                "the body is not valid JSON: {}",
                e.body_text()
            ))),
        }
    }
}

/// A path id; anything but a positive whole number is a 404 (there is no such object).
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| Problem::bad_request("the path is missing an id"))?;
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Id)
            .ok_or_else(|| {
                Problem::not_found(format!(
                    "`{}` is not an id; ids are positive whole numbers",
                    raw.chars().take(40).collect::<String>()
                ))
            })
    }
}

/// Query parameters whose rejection is a problem document.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Params(v))
            .map_err(|e| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-query",
                    "The query parameters are invalid",
                    e.body_text()
                        .trim_start_matches("Failed to deserialize query string: ")
                        .to_string(),
                )
            })
    }
}

impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Self {
        ServiceError::from(e).into()
    }
}
