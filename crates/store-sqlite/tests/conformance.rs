//! The storage conformance suite (`junction_store::conformance_suite!`) run against the SQLite
//! engine, each test on a fresh database file in its own temp directory.

// Test helpers: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use junction_store::conformance::Harness;
use junction_store::{StoreError, StoreOptions};
use junction_store_sqlite::{SqliteOptions, SqliteStore, WriterPause};

/// A temp directory holding one database file; removed when the test ends.
struct SqliteHarness {
    dir: tempfile::TempDir,
}

#[async_trait::async_trait]
impl Harness for SqliteHarness {
    type Store = SqliteStore;
    type WriterPause = WriterPause;

    async fn create() -> Self {
        SqliteHarness {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    async fn open(&self, options: StoreOptions) -> Result<SqliteStore, StoreError> {
        let options = SqliteOptions {
            store: options,
            ..SqliteOptions::default()
        };
        SqliteStore::open(self.dir.path().join("junction.db"), options).await
    }

    fn pause_writer(store: &SqliteStore) -> WriterPause {
        store.pause_writer()
    }
}

junction_store::conformance_suite!(SqliteHarness);
