//! `StoreError`: the one error type of every storage engine, with variants the server can match
//! on (503 + `Retry-After` for [`StoreError::Overloaded`]) without knowing the engine.

use std::path::PathBuf;

/// An engine's own error (rusqlite, sqlx, I/O), kept as the source so that nothing is lost, while
/// this crate stays free of engine dependencies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The commit queue is full: the writer cannot keep up. Nothing was stored; the caller should
    /// answer 503 with `Retry-After` and let the client retry.
    #[error("store is overloaded: the commit queue holds its limit of {capacity} events")]
    Overloaded {
        /// The queue's capacity in events.
        capacity: usize,
    },
    /// The store was closed (shutdown); nothing more is accepted.
    #[error("store is closed")]
    Closed,
    /// A transient backend failure (busy or locked database, I/O error, lost connection). Nothing
    /// from the failed operation was stored; retrying later may succeed.
    #[error("store is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The disk or the database is full. Nothing from the failed operation was stored.
    #[error("store is full: {0}")]
    Full(#[source] BoxError),
    /// Stored data could not be decoded (a damaged file, or rows written by a newer version).
    #[error("stored data is corrupt: {detail}")]
    Corrupt {
        /// What could not be decoded.
        detail: String,
    },
    /// The database was migrated by a newer Junction than this one.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// The schema version found in the database.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// The store could not be opened or created.
    #[error("cannot open store at {}: {source}", path.display())]
    Open {
        /// The file or location that failed.
        path: PathBuf,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// A record the operation names does not exist (or is not in the state it requires).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `dead-letter job 42`.
        what: String,
    },
    /// The request itself is unacceptable (e.g. an overview asking for more points than
    /// [`crate::OverviewQuery::MAX_POINTS`]); the same request will always fail.
    #[error("invalid store request: {detail}")]
    InvalidRequest {
        /// What is wrong with it.
        detail: String,
    },
    /// Any other backend error: a bug or a misuse, not expected to go away by retrying.
    #[error("store backend error: {0}")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// Whether the same request may succeed later, so that the server answers 503 (and the
    /// client's retry policy applies) rather than 500.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Overloaded { .. } | StoreError::Unavailable(_) | StoreError::Full(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_precise() {
        let err = StoreError::Overloaded { capacity: 25_000 };
        assert_eq!(
            err.to_string(),
            "store is overloaded: the commit queue holds its limit of 25000 events"
        );
        assert!(err.is_retryable());
        assert!(!StoreError::Closed.is_retryable());
        let err = StoreError::SchemaTooNew {
            found: 3,
            supported: 1,
        };
        assert_eq!(
            err.to_string(),
            "database schema version 3 is newer than this build supports (1)"
        );
    }
}
