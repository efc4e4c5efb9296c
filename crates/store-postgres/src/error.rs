//! The engine's internal error, mapped to [`StoreError`] at the trait boundary.

use junction_store::StoreError;

/// What can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A PostgreSQL or driver error.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// A store-level error raised by the engine itself (e.g. `NotFound`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored value could not be decoded.
    #[error("{0}")]
    Corrupt(String),
}

/// SQLSTATE classes worth distinguishing: see PostgreSQL's "Appendix A. Error Codes".
fn classify(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        let code = db.code().map(|code| code.into_owned()).unwrap_or_default();
        return match code.as_str() {
            // disk_full, out_of_memory, program_limit_exceeded, too_many_connections
            "53100" | "53200" => StoreError::Full(Box::new(err)),
            // serialization_failure, deadlock_detected, lock_not_available, admin/crash shutdown,
            // cannot_connect_now, too_many_connections, query_canceled
            "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" | "53300" | "57014" => {
                StoreError::Unavailable(Box::new(err))
            }
            _ if code.starts_with("08") => StoreError::Unavailable(Box::new(err)),
            _ => StoreError::Backend(Box::new(err)),
        };
    }
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(Box::new(err)),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::Corrupt {
            detail: err.to_string(),
        },
        other => StoreError::Backend(Box::new(other)),
    }
}

impl From<Error> for StoreError {
    fn from(err: Error) -> Self {
        match err {
            Error::Sql(err) => classify(err),
            Error::Store(err) => err,
            Error::Corrupt(detail) => StoreError::Corrupt { detail },
        }
    }
}
