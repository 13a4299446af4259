//! Errors of the JSON API as RFC 9457 problem documents (`application/problem+json`): a
//! stable `type` and `code`, a `title`, a `detail` that says what to fix, and per-field
//! `errors` for validation. A 5xx never carries internals.

use app::services::error::{FieldError, ServiceError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An RFC 9457 problem document: what went wrong and how to fix it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; stable.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// The kind of problem as a short machine-readable code, e.g. `validation-failed`.
    #[schema(value_type = String)]
    pub code: &'static str,
    #[schema(value_type = String)]
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong and how to fix it.
    pub detail: String,
    /// Per-field errors of a validation failure.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For capacity conflicts: the earliest start that would fit the same request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_start: Option<chrono::DateTime<chrono::Utc>>,
    /// For `price-changed`: the total the same request costs now, in cents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_cents: Option<i64>,
    /// For blackouts refused over booked units: the reservations in the way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicting_reservations: Vec<i64>,
    #[serde(skip)]
    retry_after: Option<u64>,
    #[serde(skip)]
    challenge: bool,
    /// A 5xx after the database may have carried out the request (see
    /// [`ServiceError::may_have_taken_effect`]); the answer then carries
    /// [`MayHaveTakenEffect`] for the idempotency layer.
    #[serde(skip)]
    may_have_taken_effect: bool,
}

/// Response extension of a 5xx whose request may have taken effect: its Idempotency-Key
/// is not released for a second run (see `idempotency`).
#[derive(Clone, Copy, Debug)]
pub struct MayHaveTakenEffect;

impl Problem {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            type_uri: format!("/api/v1/problems/{code}"),
            code,
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            next_start: None,
            conflicting_reservations: Vec::new(),
            total_cents: None,
            retry_after: None,
            challenge: status == StatusCode::UNAUTHORIZED,
            may_have_taken_effect: false,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request is malformed",
            detail,
        )
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, "Not allowed", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn too_many(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many requests",
            detail,
        );
        p.retry_after = Some(retry_after_secs);
        p
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let may_have_taken_effect = e.may_have_taken_effect();
        let mut p = match e {
            ServiceError::Invalid(errors) => {
                let mut p = Self::new(
                    status,
                    "validation-failed",
                    "The request breaks a rule",
                    errors
                        .iter()
                        .map(|f| format!("{}: {}", f.field, f.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                );
                p.errors = errors;
                p
            }
            ServiceError::NotFound(what) => Self::new(
                status,
                "not-found",
                "Not found",
                format!(
                    "{what} not found; check the id (only your organization's objects are visible)"
                ),
            ),
            ServiceError::Unauthorized(m) => {
                Self::new(status, "unauthorized", "Authentication required", m)
            }
            ServiceError::Forbidden(m) => Self::new(status, "forbidden", "Not allowed", m),
            ServiceError::TooManyRequests {
                message,
                retry_after_secs,
            } => {
                let mut p = Self::new(status, "too-many-requests", "Too many requests", message);
                p.retry_after = Some(retry_after_secs);
                p
            }
            ServiceError::Conflict {
                message,
                next_start,
                conflicting_reservations,
            } => {
                let mut p = Self::new(
                    status,
                    "conflict",
                    "The market refuses this right now",
                    message,
                );
                p.next_start = next_start;
                p.conflicting_reservations = conflicting_reservations;
                p
            }
            e @ ServiceError::PriceChanged { .. } => {
                let mut p = Self::new(status, "price-changed", "The price changed", e.to_string());
                if let ServiceError::PriceChanged { total_cents, .. } = e {
                    p.total_cents = Some(total_cents);
                }
                p
            }
            // The cause is logged where it happened; the caller learns only that it may retry,
            // and when (a failover or a restart of the database takes seconds).
            ServiceError::Unavailable(_) => {
                let mut p = Self::new(
                    status,
                    "unavailable",
                    "Temporarily unavailable",
                    "the marketplace database is unavailable right now; please retry in a moment",
                );
                p.retry_after = Some(app::services::error::UNAVAILABLE_RETRY_AFTER_SECS);
                p
            }
        };
        p.may_have_taken_effect = may_have_taken_effect;
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rigshift\""),
            );
        }
        if self.may_have_taken_effect {
            res.extensions_mut().insert(MayHaveTakenEffect);
        }
        res
    }
}
