//! Why an action did not produce a request, or why a request failed, with the reference's
//! messages and the status that decides retries.

use junction_fields::ValidationError;
use junction_mapping::MappingError;

use crate::request::FetchError;

/// Why one event did not become a delivered request for one subscription.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    /// The mapping failed while it was resolved against the event.
    #[error("{0}")]
    Mapping(MappingError),
    /// The resolved payload failed the action's field schema (the reference's `AggregateAjvError`).
    #[error("{0}")]
    Schema(ValidationError),
    /// The action's own rules rejected the payload (the reference's `PayloadValidationError`).
    #[error("{message}")]
    Payload {
        /// The reference's message, verbatim.
        message: String,
    },
    /// The request could not be made at all (for example a URL that is not `http(s)`).
    #[error("{0}")]
    Fetch(FetchError),
    /// The destination answered with a non-2xx status (the reference's `HTTPError`).
    #[error("{message}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The status's reason phrase, or the status number when none is known.
        message: String,
    },
}

impl ActionError {
    /// The status the reference attaches to the error, which callers use to classify it.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Mapping(_) | Self::Schema(_) | Self::Payload { .. } => Some(400),
            Self::Fetch(_) => None,
            Self::Http { status, .. } => Some(*status),
        }
    }

    /// Whether delivering the same request again may succeed (the Actions retry contract:
    /// network failures, 408, 423, 429 and 5xx except 501 and 505).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Http { status, .. } => is_retryable_status(*status),
            Self::Fetch(err) => err.is_retryable(),
            Self::Mapping(_) | Self::Schema(_) | Self::Payload { .. } => false,
        }
    }
}

/// Whether a response status is worth retrying under the Actions contract.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 423 | 429)
        || ((500..600).contains(&status) && status != 501 && status != 505)
}

/// Why a destination's test of its settings failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    /// The settings fail the destination's settings schema (not wrapped, as in the reference).
    #[error("{0}")]
    Settings(ValidationError),
    /// The destination's test rejected the settings (before sending, or by its answer).
    #[error("{message}")]
    Invalid {
        /// `Credentials are invalid: …`, as the reference words it.
        message: String,
    },
    /// The test request got no answer (DNS, connection, TLS, timeout): nothing is known of
    /// the settings, only that the destination could not be reached.
    #[error("{message}")]
    Unreachable {
        /// What failed, naming the host (never the URL's path or query).
        message: String,
    },
}
