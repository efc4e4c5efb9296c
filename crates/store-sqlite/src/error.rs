//! Error mapping: SQLite's result codes to the engine-neutral [`StoreError`] variants the server
//! matches on (busy or I/O → unavailable, disk full → full, damaged file → corrupt).

use junction_store::StoreError;
use rusqlite::ErrorCode;

/// The engine's internal error: `?` works on rusqlite calls inside the engine, and the mapping to
/// [`StoreError`] happens once, at the trait boundary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A SQLite call failed.
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    /// A stored value did not decode.
    #[error("{0}")]
    Corrupt(String),
    /// Already classified.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Error> for StoreError {
    fn from(err: Error) -> Self {
        match err {
            Error::Sql(err) => classify(err),
            Error::Corrupt(detail) => StoreError::Corrupt { detail },
            Error::Store(err) => err,
        }
    }
}

/// Maps a SQLite error to the variant that tells the caller what to do about it.
fn classify(err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        | Some(ErrorCode::SystemIoFailure | ErrorCode::CannotOpen)
        | Some(ErrorCode::OutOfMemory | ErrorCode::OperationInterrupted) => {
            StoreError::Unavailable(Box::new(err))
        }
        Some(ErrorCode::DiskFull) => StoreError::Full(Box::new(err)),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
            detail: err.to_string(),
        },
        _ => StoreError::Backend(Box::new(err)),
    }
}

impl Error {
    /// Whether SQLite found a file damaged or not a database at all.
    pub(crate) fn is_corrupt(&self) -> bool {
        let code = match self {
            Error::Sql(err) => err.sqlite_error_code(),
            _ => None,
        };
        matches!(
            code,
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_error(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn classification_follows_the_result_code() {
        let busy = StoreError::from(Error::Sql(sqlite_error(rusqlite::ffi::SQLITE_BUSY)));
        assert!(matches!(busy, StoreError::Unavailable(_)));
        assert!(busy.is_retryable());
        let full = StoreError::from(Error::Sql(sqlite_error(rusqlite::ffi::SQLITE_FULL)));
        assert!(matches!(full, StoreError::Full(_)));
        let corrupt = StoreError::from(Error::Sql(sqlite_error(rusqlite::ffi::SQLITE_CORRUPT)));
        assert!(matches!(corrupt, StoreError::Corrupt { .. }));
        let other = StoreError::from(Error::Sql(sqlite_error(rusqlite::ffi::SQLITE_CONSTRAINT)));
        assert!(matches!(other, StoreError::Backend(_)));
        assert!(Error::Sql(sqlite_error(rusqlite::ffi::SQLITE_NOTADB)).is_corrupt());
        assert!(!Error::Sql(sqlite_error(rusqlite::ffi::SQLITE_BUSY)).is_corrupt());
    }
}
