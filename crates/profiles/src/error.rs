//! What can go wrong in the profile worker and its readers.

use junction_store::StoreError;

/// A failure of the profile worker or of a profile read.
#[derive(Debug, thiserror::Error)]
pub enum ProfilesError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored document did not decode.
    #[error("a stored profile document is corrupt: {0}")]
    Corrupt(String),
    /// The secret that keys identifier hashes could not be made.
    #[error("the privacy secret could not be made: {0}")]
    Secret(String),
    /// A definition given for a preview is refused (the language's message).
    #[error("{0}")]
    Invalid(String),
}
