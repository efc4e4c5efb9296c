//! The storage conformance suite (`junction_store::conformance_suite!`) run against the
//! PostgreSQL engine, each test on a scratch database (`junction_test_<random>`) created on the
//! server named by `JUNCTION_TEST_POSTGRES_URL` (default: the local server) and dropped after.
//!
//! With no server reachable the tests fail with an explanation, unless `JUNCTION_SKIP_POSTGRES=1`
//! is set at build time, which compiles them out (see `build.rs`).

// Test helpers: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(not(junction_skip_postgres))]
mod common;

#[cfg(not(junction_skip_postgres))]
mod suite {
    use junction_store::conformance::Harness;
    use junction_store::{StoreError, StoreOptions};
    use junction_store_postgres::{PostgresOptions, PostgresStore, WriterPause};

    use crate::common::ScratchDb;

    /// One scratch database, dropped with the harness.
    pub(super) struct PgHarness {
        db: ScratchDb,
    }

    #[async_trait::async_trait]
    impl Harness for PgHarness {
        type Store = PostgresStore;
        type WriterPause = WriterPause;

        async fn create() -> Self {
            PgHarness {
                db: ScratchDb::create().await,
            }
        }

        async fn open(&self, options: StoreOptions) -> Result<PostgresStore, StoreError> {
            let options = PostgresOptions {
                store: options,
                ..PostgresOptions::default()
            };
            PostgresStore::open(&self.db.url, options).await
        }

        fn pause_writer(store: &PostgresStore) -> WriterPause {
            store.pause_writer()
        }
    }

    junction_store::conformance_suite!(PgHarness);
}

/// Stands in for the suite when it was compiled out, so that the skip shows in the output.
#[cfg(junction_skip_postgres)]
#[test]
fn postgres_conformance_skipped() {
    eprintln!("JUNCTION_SKIP_POSTGRES=1: the PostgreSQL conformance suite was not built");
}
