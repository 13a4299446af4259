//! The error every server function returns, shared by the server and the browser: an HTTP
//! status, a kind pages branch on, a message safe to show, and the fields to fix. The
//! services' `ServiceError` maps into it in one place (`services::web::fail`); transport
//! failures (no network, a garbled answer) arrive as the kind [`ErrorKind::Transport`].

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// What went wrong, for pages to branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input breaks a rule; `fields` says which and how to fix it.
    Invalid,
    /// The thing does not exist, or the caller may not see it.
    NotFound,
    /// Not signed in (or the session ended).
    Unauthorized,
    /// Signed in, but not allowed to do this.
    Forbidden,
    /// The market state refuses the request (capacity gone, units booked).
    Conflict,
    /// Too many attempts; wait and try again.
    TooManyRequests,
    /// The database or the server is unavailable for a moment.
    Unavailable,
    /// The request never got a readable answer (network, encoding).
    Transport,
}

/// A field to fix, with how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// A server function's failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// The HTTP status the server answered with (0 when no answer arrived).
    pub status: u16,
    pub kind: ErrorKind,
    /// One sentence, safe to show, saying what to do.
    pub message: String,
    pub fields: Vec<FieldProblem>,
}

impl AppError {
    pub fn new(status: u16, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// The server cannot do its work (a missing piece of its set-up, a database away).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, ErrorKind::Unavailable, message)
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// The message for `field`, when the input of that field was refused.
    pub fn field(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.field == field)
            .map(|f| f.message.as_str())
    }
}

impl ErrorKind {
    /// The kind an HTTP status stands for, for answers that carry only a status.
    pub fn of_status(status: u16) -> Self {
        match status {
            400 | 413 | 415 | 422 => Self::Invalid,
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            409 => Self::Conflict,
            429 => Self::TooManyRequests,
            503 => Self::Unavailable,
            _ => Self::Transport,
        }
    }
}

/// A problem document (RFC 9457), as the layers in front of the server functions answer
/// (a repeated form still running, a body too large).
#[derive(Deserialize)]
struct ProblemDocument {
    status: u16,
    detail: String,
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    /// The app's own error, or a problem document from a layer in front of the function.
    fn de(data: leptos::server_fn::Bytes) -> Self {
        if let Ok(e) = serde_json::from_slice::<AppError>(&data) {
            return e;
        }
        match serde_json::from_slice::<ProblemDocument>(&data) {
            Ok(p) => Self::new(p.status, ErrorKind::of_status(p.status), p.detail),
            Err(e) => Self::from_server_fn_error(ServerFnErrorErr::Deserialization(e.to_string())),
        }
    }

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => Self::new(
                400,
                ErrorKind::Invalid,
                format!("The form was incomplete or malformed: {m}"),
            ),
            ServerFnErrorErr::Request(_) => Self::new(
                0,
                ErrorKind::Transport,
                "The marketplace could not be reached; check your connection and try again.",
            ),
            other => Self::new(
                500,
                ErrorKind::Transport,
                format!("Something went wrong on the way: {other}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_wire_encoding() {
        let e = AppError {
            status: 422,
            kind: ErrorKind::Invalid,
            message: "Give a name".into(),
            fields: vec![FieldProblem {
                field: "name".into(),
                message: "Give a name".into(),
            }],
        };
        assert_eq!(AppError::de(e.ser()), e);
        assert_eq!(e.field("name"), Some("Give a name"));
        assert_eq!(e.to_string(), "Give a name");
        let garbled = AppError::de(leptos::server_fn::Bytes::from_static(b"not json"));
        assert_eq!(garbled.kind, ErrorKind::Transport);
        let problem = AppError::de(leptos::server_fn::Bytes::from_static(
            br#"{"type":"about:blank","title":"Still running","status":409,"detail":"retry in a moment"}"#,
        ));
        assert_eq!(
            (problem.status, problem.kind, problem.message.as_str()),
            (409, ErrorKind::Conflict, "retry in a moment")
        );
    }
}
