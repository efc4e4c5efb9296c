//! `ApiError`: every refusal the HTTP side answers, with its status code, its stable `code` and
//! the JSON body clients see (`{"success": false, "code", "error", "field"?}`).

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use junction_event::{EventRejection, LimitExceeded, RequestError};
use junction_store::StoreError;

use crate::listener::BodyTimeout;
use serde::Serialize;

/// Why a request was refused. Each variant maps to one status code; nothing of a refused request
/// is stored.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request as a whole is malformed or too large (junction-event's classification).
    #[error("{0}")]
    Request(RequestError),
    /// The decompressed body passed the request size limit while it was being read.
    #[error("request body is over the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit in force, in decompressed bytes.
        limit: usize,
    },
    /// The body could not be read: invalid gzip data, or the client went away.
    #[error("request body cannot be read: {0}")]
    UnreadableBody(String),
    /// The body did not arrive in time: past the listener's deadline, or slower than its
    /// minimum rate.
    #[error("{0}")]
    BodyTimeout(BodyTimeout),
    /// The only event of a single-event request was refused.
    #[error("{0}")]
    Event(EventRejection),
    /// A batch whose every event was refused: nothing was stored.
    #[error("no event in the batch was accepted")]
    NoValidEvents {
        /// Each refused item.
        rejected: Vec<RejectedItem>,
    },
    /// No write key in the `Authorization` header nor in the body.
    #[error("a write key is required: send it as the HTTP Basic user name or as writeKey")]
    MissingWriteKey,
    /// The write key authenticates no source.
    #[error("unknown write key")]
    UnknownWriteKey,
    /// The store refused or failed the commit. Retryable failures are answered 503 with
    /// `Retry-After`.
    #[error("{0}")]
    Store(StoreError, Duration),
    /// No route at this path.
    #[error("no such endpoint: {0}")]
    NotFound(String),
    /// The path exists but not for this method.
    #[error("method not allowed: tracking endpoints take POST")]
    MethodNotAllowed,
    /// A `Content-Encoding` other than gzip.
    #[error("unsupported content-encoding: only gzip is accepted")]
    UnsupportedEncoding,
    /// A JSON body (of an API other than tracking) does not parse into what the route expects,
    /// or is not sent as JSON; the status is axum's classification (400, 413, 415 or 422).
    #[error("{message}")]
    InvalidJson {
        /// The status answered.
        status: StatusCode,
        /// What is wrong.
        message: String,
    },
}

/// One refused item of a batch, as the answer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedItem {
    /// Its 0-based position in `batch`.
    pub index: usize,
    /// The stable reason code (`missing_identity`, `too_large`, …).
    pub code: &'static str,
    /// Why, in words.
    pub error: String,
    /// The field concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

impl RejectedItem {
    /// The item at `index` refused for `rejection`.
    pub fn new(index: usize, rejection: &EventRejection) -> Self {
        Self {
            index,
            code: event_rejection_code(rejection),
            error: rejection.to_string(),
            field: rejection.field(),
        }
    }
}

/// The body of every error answer.
#[derive(Serialize)]
struct ErrorBody<'a> {
    success: bool,
    code: &'static str,
    error: String,
    /// The same words as `error`: Segment's libraries read `message` (analytics-python logs it).
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected: Option<&'a [RejectedItem]>,
}

impl ApiError {
    /// The HTTP status answered.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Request(RequestError::TooLarge(_))
            | Self::BodyTooLarge { .. }
            | Self::Event(EventRejection::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Request(_)
            | Self::UnreadableBody(_)
            | Self::Event(_)
            | Self::NoValidEvents { .. } => StatusCode::BAD_REQUEST,
            Self::InvalidJson { status, .. } => *status,
            Self::MissingWriteKey | Self::UnknownWriteKey => StatusCode::UNAUTHORIZED,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Store(err, _) if is_unavailable(err) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(..) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The stable, machine-readable reason (also the label rejections are counted under).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Request(err) => request_error_code(err),
            Self::BodyTooLarge { .. } => "request_too_large",
            Self::UnreadableBody(_) => "unreadable_body",
            Self::BodyTimeout(_) => "body_timeout",
            Self::Event(rejection) => event_rejection_code(rejection),
            Self::NoValidEvents { .. } => "no_valid_events",
            Self::MissingWriteKey => "missing_write_key",
            Self::UnknownWriteKey => "unknown_write_key",
            Self::Store(StoreError::Overloaded { .. }, _) => "overloaded",
            Self::Store(StoreError::Closed, _) => "shutting_down",
            Self::Store(err, _) if is_unavailable(err) => "store_unavailable",
            Self::Store(..) => "internal_error",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnsupportedEncoding => "unsupported_encoding",
            Self::InvalidJson { .. } => "invalid_json",
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Request(err) => err.field(),
            Self::Event(rejection) => rejection.field(),
            _ => None,
        }
    }

    /// What the client is told. Internal store failures are not described (the log has them).
    fn message(&self) -> String {
        match self {
            Self::Store(err, _) if !is_unavailable(err) => {
                "the event could not be stored; see the server log".to_owned()
            }
            Self::Store(StoreError::Overloaded { .. }, _) => {
                "the server cannot keep up; retry later".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// Store failures a client should retry: the store is busy, briefly failing, or shutting down.
fn is_unavailable(err: &StoreError) -> bool {
    err.is_retryable() || matches!(err, StoreError::Closed)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let rejected = match &self {
            Self::NoValidEvents { rejected } => Some(rejected.as_slice()),
            _ => None,
        };
        let message = self.message();
        let body = ErrorBody {
            success: false,
            code: self.code(),
            error: message.clone(),
            message,
            field: self.field(),
            accepted: rejected.map(|_| 0),
            rejected,
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let Self::Store(_, retry_after) = &self
            && self.status() == StatusCode::SERVICE_UNAVAILABLE
        {
            let seconds = retry_after.as_secs().max(1);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// The stable code of a request-level refusal.
fn request_error_code(err: &RequestError) -> &'static str {
    match err {
        RequestError::TooLarge(LimitExceeded::Request { .. }) => "request_too_large",
        RequestError::TooLarge(LimitExceeded::Event { .. }) => "event_too_large",
        RequestError::TooLarge(LimitExceeded::BatchEvents { .. }) => "batch_too_large",
        RequestError::MalformedJson { .. } => "malformed_json",
        RequestError::NotAnObject { .. } => "not_an_object",
        RequestError::MissingBatch => "missing_batch",
        RequestError::WrongType { .. } => "wrong_type",
    }
}

/// The stable code of an event's refusal.
pub fn event_rejection_code(rejection: &EventRejection) -> &'static str {
    match rejection {
        EventRejection::TooLarge { .. } => "event_too_large",
        EventRejection::MalformedJson { .. } => "malformed_json",
        EventRejection::NotAnObject { .. } => "not_an_object",
        EventRejection::MissingType => "missing_type",
        EventRejection::UnknownType { .. } => "unknown_type",
        EventRejection::MissingIdentity => "missing_identity",
        EventRejection::MissingField { .. } => "missing_field",
        EventRejection::WrongType { .. } => "wrong_type",
        EventRejection::MessageIdTooLong { .. } => "message_id_too_long",
    }
}
