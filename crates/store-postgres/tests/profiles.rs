//! The profile worker on the clustered engine: two nodes' workers on one database, one leads;
//! when the leader stops renewing, the other takes over within the lease, loads the profiles the
//! first one wrote and goes on from the inbox it left, and the old leader cannot write again.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[cfg(not(junction_skip_postgres))]
mod common;

#[cfg(not(junction_skip_postgres))]
mod lead {
    use std::sync::Arc;
    use std::time::Duration;

    use junction_profiles::{
        ManualClock, ProfileWorker, Snapshots, WorkerSettings, find_profile, worker_status,
    };
    use junction_store::{NewEvent, Store, StoreOptions};
    use junction_store_postgres::{PostgresOptions, PostgresStore};
    use junction_workspace::{Snapshot, WorkspaceConfig};
    use serde_json::json;

    use crate::common::ScratchDb;

    const NOW: i64 = 1_772_323_200_000;

    async fn store(db: &ScratchDb) -> Arc<dyn Store> {
        let options = PostgresOptions {
            store: StoreOptions::default(),
            ..PostgresOptions::default()
        };
        Arc::new(PostgresStore::open(&db.url, options).await.unwrap())
    }

    fn worker(store: &Arc<dyn Store>, owner: &str) -> ProfileWorker {
        let config = json!({"audiences": [{"key": "buyers", "kind": "audience",
            "query": "event('Order Completed').count() >= 1"}]});
        let snapshot =
            Arc::new(Snapshot::compile(WorkspaceConfig::from_document(config).unwrap()).unwrap());
        let snapshots: Snapshots = Arc::new(move || Arc::clone(&snapshot));
        let settings = WorkerSettings {
            lease: Duration::from_secs(1),
            ..WorkerSettings::default()
        };
        ProfileWorker::new(
            Arc::clone(store),
            snapshots,
            Arc::new(ManualClock::new(NOW)),
            owner.to_owned(),
            settings,
        )
    }

    async fn order(store: &Arc<dyn Store>, user: &str) {
        let event = json!({"type": "track", "event": "Order Completed", "userId": user,
                           "messageId": format!("order-{user}"),
                           "timestamp": "2026-02-28T00:00:00Z"});
        let new = NewEvent {
            source_id: "web".to_owned(),
            message_id: format!("order-{user}"),
            received_at: NOW,
            payload: serde_json::to_vec(&event).unwrap(),
            jobs: Vec::new(),
            discards: Vec::new(),
            for_profiles: true,
        };
        store.commit(vec![new]).await.unwrap();
    }

    async fn member(store: &Arc<dyn Store>, user: &str) -> bool {
        find_profile(&**store, junction_audience_id(), user)
            .await
            .unwrap()
            .is_some_and(|profile| profile.values.get("buyers") == Some(&json!(true)))
    }

    fn junction_audience_id() -> junction_audience::IdType {
        junction_audience::IdType::UserId
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_lead_passes_to_the_survivor_with_everything_written() {
        let db = ScratchDb::create().await;
        let (store_a, store_b) = (store(&db).await, store(&db).await);
        let (mut a, mut b) = (worker(&store_a, "node-a"), worker(&store_b, "node-b"));

        order(&store_a, "u1").await;
        // Two steps: the backfill walk, then the inbox (whose events the walk covered).
        assert!(a.step().await.unwrap().leading);
        assert!(a.step().await.unwrap().leading);
        assert!(!b.step().await.unwrap().leading, "one leader at a time");
        assert!(
            member(&store_b, "u1").await,
            "written for every node to read"
        );

        // node-a stops renewing; node-b takes over once its lease ran out.
        order(&store_b, "u2").await;
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let mut led = false;
        for _ in 0..3 {
            led |= b.step().await.unwrap().leading;
        }
        assert!(led, "the survivor leads after the lease");
        assert!(
            member(&store_a, "u2").await,
            "the survivor went on from the inbox"
        );
        assert!(
            member(&store_a, "u1").await,
            "and kept what the first leader wrote"
        );
        let status = worker_status(&*store_a).await.unwrap().unwrap();
        assert_eq!(status.profiles, 2);

        // The old leader finds out at its next renewal and writes nothing.
        tokio::time::sleep(Duration::from_millis(400)).await;
        order(&store_a, "u3").await;
        let outcome = a.step().await.unwrap();
        assert!(!outcome.leading);
        assert!(!member(&store_a, "u3").await);
    }
}

#[cfg(junction_skip_postgres)]
#[test]
fn postgres_profile_tests_skipped() {
    eprintln!("JUNCTION_SKIP_POSTGRES=1: the PostgreSQL profile worker tests were not built");
}
