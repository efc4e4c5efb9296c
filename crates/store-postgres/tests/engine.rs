//! What only the clustered engine has: several stores (nodes) on one database.

// Test helpers: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(not(junction_skip_postgres))]
mod common;

#[cfg(not(junction_skip_postgres))]
mod cluster {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use junction_store::{CommitOutcome, NewEvent, NewJob, Store, StoreError};
    use junction_store_postgres::{PostgresOptions, PostgresStore};
    use sqlx::{Connection, PgConnection};

    use crate::common::ScratchDb;

    fn event(message_id: &str, jobs: usize) -> NewEvent {
        NewEvent {
            source_id: "src".to_owned(),
            message_id: message_id.to_owned(),
            received_at: 1_735_689_600_000,
            payload: b"{}".to_vec(),
            jobs: (0..jobs)
                .map(|n| NewJob {
                    destination_id: "dest".to_owned(),
                    subscription_id: format!("sub-{n}"),
                    endpoint: "dest|hooks.example.test".to_owned(),
                    method: "POST".to_owned(),
                    url: "https://hooks.example.test/".to_owned(),
                    headers: Vec::new(),
                    body: b"{}".to_vec(),
                })
                .collect(),
            discards: Vec::new(),
        }
    }

    async fn open(db: &ScratchDb) -> PostgresStore {
        PostgresStore::open(&db.url, PostgresOptions::default())
            .await
            .expect("open store")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_opens_migrate_once() {
        let db = ScratchDb::create().await;
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let url = db.url.clone();
                tokio::spawn(async move {
                    PostgresStore::open(&url, PostgresOptions::default())
                        .await
                        .expect("open store")
                })
            })
            .collect();
        let mut stores = Vec::new();
        for handle in handles {
            stores.push(handle.await.unwrap());
        }
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM junction_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(versions, [1, 2, 4]);
        drop(stores);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_newer_schema_is_refused() {
        let db = ScratchDb::create().await;
        drop(open(&db).await);
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("INSERT INTO junction_migrations (version, name) VALUES (99, 'future')")
            .execute(&mut conn)
            .await
            .unwrap();
        let err = PostgresStore::open(&db.url, PostgresOptions::default())
            .await
            .err()
            .expect("refused");
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_server_fails_to_open() {
        let err = PostgresStore::open(
            "postgres://nobody@127.0.0.1:1/none",
            PostgresOptions::default(),
        )
        .await
        .err()
        .expect("refused");
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_on_one_node_wake_the_others() {
        let db = ScratchDb::create().await;
        let (a, b) = (open(&db).await, open(&db).await);
        let signal = a.job_signal();
        // Drain the permit a listener stores when it (re)connects.
        let _ = tokio::time::timeout(Duration::from_millis(500), signal.notified()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = tokio::time::timeout(Duration::from_millis(50), signal.notified()).await;
        b.commit(vec![event("m-1", 1)]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), signal.notified())
            .await
            .expect("node A woken by node B's commit");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dedupe_holds_across_nodes() {
        let db = ScratchDb::create().await;
        let nodes = [Arc::new(open(&db).await), Arc::new(open(&db).await)];
        let mut tasks = Vec::new();
        for round in 0..20 {
            for node in &nodes {
                let node = Arc::clone(node);
                tasks.push(tokio::spawn(async move {
                    node.commit(vec![event(&format!("same-{round}"), 0)])
                        .await
                        .unwrap()
                }));
            }
        }
        let mut stored = 0;
        for task in tasks {
            for outcome in task.await.unwrap() {
                stored += usize::from(matches!(outcome, CommitOutcome::Stored { .. }));
            }
        }
        assert_eq!(
            stored, 20,
            "one stored event per message id, whatever the node"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claims_never_share_a_job() {
        let db = ScratchDb::create().await;
        let nodes = [Arc::new(open(&db).await), Arc::new(open(&db).await)];
        nodes[0].commit(vec![event("many", 200)]).await.unwrap();
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let node = Arc::clone(&nodes[worker % 2]);
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let claimed = node
                        .claim_jobs("dest|hooks.example.test", i64::MAX / 2, i64::MAX, 7)
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        return ids;
                    }
                    ids.extend(claimed.into_iter().map(|due| due.job.id));
                }
            }));
        }
        let mut seen = HashSet::new();
        for task in tasks {
            for id in task.await.unwrap() {
                assert!(seen.insert(id), "job {id} claimed twice");
            }
        }
        assert_eq!(seen.len(), 200);
    }
}

/// Stands in for the tests when they were compiled out.
#[cfg(junction_skip_postgres)]
#[test]
fn postgres_engine_tests_skipped() {
    eprintln!("JUNCTION_SKIP_POSTGRES=1: the PostgreSQL engine tests were not built");
}
