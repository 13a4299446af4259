//! `Idempotency-Key` on POST, per organization: the first request with a key runs and its
//! answer (status, body and redirect target) is kept for 24 hours; a retry with the same key
//! and the same request replays it, with another request is 422, and while the first still
//! runs is 409. A retried request never creates a second reservation.
//!
//! The browser's forms that change money (reserve, extend, cancel) carry the same kind of key
//! in a `request_key` field rendered into the form, and their server functions pass through
//! this same layer, so a double click, a reload or a resubmitted page does the thing once and
//! shows the same result, with JavaScript or without.
//!
//! The key is claimed (a row in state `running`, naming this process's lease) before the
//! handler runs, so concurrent retries can't both run it. A 5xx answer releases the key, so
//! the caller may retry it. A 5xx after the request reached the database (the connection
//! broke; the first attempt may have committed) ends the key `unknown` instead: retries get
//! 409 "outcome unknown", which tells the caller to look before it tries again with a new
//! key. Handlers run to completion even when the client hangs up (see
//! `http::run_to_completion`), and a record the database can't take at once is retried in
//! the background, so a key is left `running` only when its process dies mid-request; once
//! that process's lease lapses (seconds), a retry is answered "outcome unknown".
//!
//! Routes that find their own earlier effect by the key ([`finds_its_own_effect`]: keyed
//! reservations and holds, whose reservation carries the key) are never left in doubt: a
//! 5xx releases their key, and a retry after their process died runs them again, which
//! returns the reservation the first run committed or makes it once.

use super::problem::{MayHaveTakenEffect, Problem};
use crate::state::{AppState, MAX_BODY_BYTES};
use app::services::idempotency::{claim, record, Claim, ClaimToken, Outcome, Rerun};
use app::services::web::RequestAuth;
use axum::{
    body::{to_bytes, Body},
    extract::{OriginalUri, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};
use std::time::Duration;

pub const HEADER: &str = "idempotency-key";
/// The form field that carries a browser form's key.
pub const FORM_FIELD: &str = "request_key";
/// How long (in tenths of a second) a form sent again waits for the first to finish.
const FORM_WAIT_ROUNDS: u32 = 150;
/// Largest answer kept for replay.
const MAX_STORED_BYTES: usize = 1024 * 1024;

/// The request's Idempotency-Key, when it has a well-formed one (the layer has answered
/// 400 to any other before a handler sees it).
pub fn request_key(headers: &HeaderMap) -> Option<&str> {
    headers.get(HEADER).and_then(valid_key)
}

fn valid_key(raw: &HeaderValue) -> Option<&str> {
    raw.to_str()
        .ok()
        .filter(|k| (1..=200).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
}

enum FormKey {
    Valid(String),
    Absent,
    Invalid,
}

/// A browser form's `request_key` field.
fn form_key(body: &[u8]) -> FormKey {
    match url::form_urlencoded::parse(body).find(|(name, _)| name == FORM_FIELD) {
        None => FormKey::Absent,
        Some((_, v)) if v.is_empty() => FormKey::Absent,
        Some((_, v)) => match HeaderValue::from_str(&v).ok().as_ref().and_then(valid_key) {
            Some(k) => FormKey::Valid(k.to_string()),
            None => FormKey::Invalid,
        },
    }
}

/// The same layer for the browser's server functions (`/api/<name>`), whose forms carry
/// their key in `request_key`; the JSON API under `/api/v1` has the layer on its own router.
pub async fn server_function_layer(state: State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/") && !path.starts_with("/api/v1/") {
        layer(state, req, next).await
    } else {
        next.run(req).await
    }
}

/// The routes whose handler finds its own earlier effect by the request's key, so running
/// them again is safe whatever their first run did: the API's keyed reservations and holds,
/// and the browser's reserve form (`reservations::reserve_once` and `hold`).
const RERUNNABLE: [&str; 3] = ["/api/v1/reservations", "/api/v1/holds", "/api/reserve"];

/// Whether a request to `path` may be run again after a first run that may have taken effect.
pub fn finds_its_own_effect(path: &str) -> Rerun {
    if RERUNNABLE.contains(&path) {
        Rerun::FindsItsOwnEffect
    } else {
        Rerun::Unsafe
    }
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let header_key = req.headers().get(HEADER).cloned();
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if header_key.is_none() && !is_form {
        return next.run(req).await;
    }
    // Unauthenticated requests are refused by the handler; nothing to remember.
    let Some(org) = req
        .extensions()
        .get::<RequestAuth>()
        .and_then(|a| a.principal.as_ref())
        .map(|p| p.organization_id)
    else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The body is too large",
            format!(
                "request bodies are limited to {} KiB",
                MAX_BODY_BYTES / 1024
            ),
        )
        .into_response();
    };
    let key = match &header_key {
        Some(raw) => match valid_key(raw) {
            Some(k) => k.to_string(),
            None => {
                return Problem::bad_request(
                    "Idempotency-Key is 1 to 200 visible ASCII characters, e.g. a UUID",
                )
                .into_response()
            }
        },
        None => match form_key(&bytes) {
            FormKey::Valid(k) => k,
            FormKey::Absent => {
                return next
                    .run(Request::from_parts(parts, Body::from(bytes)))
                    .await
            }
            FormKey::Invalid => {
                return Problem::bad_request(
                    "the form's key is malformed; reload the page and submit the form again",
                )
                .into_response()
            }
        },
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.uri.path().as_bytes());
    hasher.update(b"?");
    hasher.update(parts.uri.query().unwrap_or("").as_bytes());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let hash = hasher.finalize().to_vec();

    // The path as the client sent it: this layer also runs inside the nested `/api/v1`.
    let full_path = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(parts.uri.path(), |u| u.0.path());
    let rerun = finds_its_own_effect(full_path);
    let (lease, token) = (state.lease, ClaimToken::new());
    let mut claimed = claim(&state.db, lease, token, org, &key, &hash, rerun).await;
    // A browser form sent twice at once (a double click): the second waits for the first
    // and shows its answer, rather than an error about a request the person can't see.
    if header_key.is_none() {
        for _ in 0..FORM_WAIT_ROUNDS {
            if !matches!(claimed, Ok(Claim::Running)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            claimed = claim(&state.db, lease, token, org, &key, &hash, rerun).await;
        }
    }
    match claimed {
        Err(e) => {
            // The claim's own insert may have committed though its answer was lost (the
            // database failed over under it): released in the background, or retries would
            // find it running under this live process until the key expires. Nothing ran.
            let db = state.db.clone();
            tokio::spawn(async move { record_soon(&db, token, org, &key, Outcome::Release).await });
            Problem::from(e).into_response()
        }
        Ok(Claim::Running) => {
            let mut res = Problem::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-use",
                "The first request with this key is still running",
                "a request with this Idempotency-Key is still being processed; retry in a moment to get its answer",
            )
            .into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            res
        }
        Ok(Claim::Unknown) => Problem::new(
            StatusCode::CONFLICT,
            "idempotency-outcome-unknown",
            "The first request with this key was cut off",
            "the first request with this Idempotency-Key was cut off (the database or its server stopped) after it may have taken effect, so it is not run again; check the current state (e.g. GET /api/v1/reservations) and, if it did not take effect, send the request again with a new key",
        )
        .into_response(),
        Ok(Claim::OtherRequest) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "This Idempotency-Key belongs to another request",
            "this Idempotency-Key was already used with a different request (path or body); use a new key for a new request",
        )
        .into_response(),
        Ok(Claim::Replay {
            status,
            content_type,
            location,
            body,
        }) => replay(status, content_type, location, body),
        Ok(Claim::Run) => {
            let res = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            finish(&state.db, token, org, &key, rerun, res).await
        }
    }
}

/// Keeps the answer for replay (or releases the key after a 5xx) and returns it. When the
/// database can't take the record now (it is restarting), the answer still goes out and the
/// record is retried in the background for a while, so retries find it rather than a key
/// stuck `running`.
async fn finish(
    db: &sqlx::PgPool,
    token: ClaimToken,
    org: i64,
    key: &str,
    rerun: Rerun,
    res: Response,
) -> Response {
    let (parts, body) = res.into_parts();
    let bytes = match to_bytes(body, MAX_STORED_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "could not buffer an idempotent answer");
            record_soon(db, token, org, key, Outcome::Release).await;
            return Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "the answer could not be recorded; retry with the same Idempotency-Key",
            )
            .into_response();
        }
    };
    let outcome = if parts.status.is_server_error() {
        if rerun == Rerun::Unsafe && parts.extensions.get::<MayHaveTakenEffect>().is_some() {
            Outcome::Unknown
        } else {
            Outcome::Release
        }
    } else {
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Outcome::Keep {
            status: parts.status.as_u16() as i16,
            content_type: header(header::CONTENT_TYPE),
            location: header(header::LOCATION).filter(|l| l.len() <= 2000),
            body: bytes.to_vec(),
        }
    };
    record_soon(db, token, org, key, outcome).await;
    Response::from_parts(parts, Body::from(bytes))
}

/// How long a failed record is retried in the background before the key is left `running`
/// (it then reads as cut off once this process's lease lapses).
const RECORD_RETRY_FOR: Duration = Duration::from_secs(120);
/// Records `outcome` now, or keeps trying in a background task if the database refuses.
async fn record_soon(db: &sqlx::PgPool, token: ClaimToken, org: i64, key: &str, outcome: Outcome) {
    let Err(e) = record(db, token, org, key, &outcome).await else {
        return;
    };
    tracing::warn!(error = %e, "could not record an idempotent answer; retrying in the background");
    let (db, key) = (db.clone(), key.to_string());
    tokio::spawn(async move {
        let give_up = tokio::time::Instant::now() + RECORD_RETRY_FOR;
        let mut pause = Duration::from_millis(250);
        loop {
            tokio::time::sleep(pause).await;
            match record(&db, token, org, &key, &outcome).await {
                Ok(()) => return,
                Err(e) if tokio::time::Instant::now() >= give_up => {
                    tracing::error!(error = %e, "gave up recording an idempotent answer; retries of that key get 409");
                    return;
                }
                Err(_) => pause = (pause * 2).min(Duration::from_secs(5)),
            }
        }
    });
}

fn replay(
    status: i16,
    content_type: Option<String>,
    location: Option<String>,
    body: Vec<u8>,
) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    if let Some(to) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        res.headers_mut().insert(header::LOCATION, to);
    }
    res.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    res
}
