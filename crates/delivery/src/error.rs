//! `DeliveryError`: what can go wrong setting up delivery (as opposed to an attempt failing, which
//! is an [`AttemptError`](crate::AttemptError) recorded with the attempt).

/// An error setting up delivery or reading its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The shared HTTP client could not be built (TLS set-up, invalid options).
    #[error("cannot build the webhook http client: {0}")]
    Client(#[source] reqwest::Error),
    /// A name that is not one of [`ErrorClass`](crate::ErrorClass)'s (as stored in the audit
    /// trail or given in a dead-letter filter).
    #[error(
        "unknown error class {0:?} (expected timeout, connect, network, http_status or invalid_request)"
    )]
    UnknownErrorClass(String),
}
