//! Cluster-wide lane flow control (`Store::sync_lane`) between several stores (nodes) on one
//! database.

// Test helpers: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(not(junction_skip_postgres))]
mod common;

#[cfg(not(junction_skip_postgres))]
mod lanes {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use junction_store::{LaneGrant, LaneReport, Store};
    use junction_store_postgres::{PostgresOptions, PostgresStore};

    use crate::common::ScratchDb;

    const LANE: &str = "cm|api.chartmogul.test";

    async fn nodes(db: &ScratchDb, count: usize) -> Vec<Arc<PostgresStore>> {
        let mut stores = Vec::new();
        for _ in 0..count {
            stores.push(Arc::new(
                PostgresStore::open(&db.url, PostgresOptions::default())
                    .await
                    .unwrap(),
            ));
        }
        stores
    }

    fn report(node: &str, want: u32, in_flight_bound: u32) -> LaneReport {
        LaneReport {
            endpoint: LANE.to_owned(),
            node: node.to_owned(),
            max_concurrency: 20,
            in_flight_bound,
            want,
            epoch: 0,
            halved: false,
            successes: 0,
            paused_ms: 0,
            lease_ms: 5_000,
        }
    }

    #[tokio::test]
    async fn a_store_of_a_cluster_shares_lanes() {
        let db = ScratchDb::create().await;
        let store = PostgresStore::open(&db.url, PostgresOptions::default())
            .await
            .unwrap();
        assert!(store.shares_lanes());
    }

    /// Six nodes on three stores run the protocol as the delivery engine does (start only within
    /// the share, report what may be in flight until the answer), concurrently, with random
    /// demand: what is really in flight across all of them never exceeds the limit, and once all
    /// want work, each gets a fair part.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_nodes_never_have_more_in_flight_than_the_limit() {
        let db = ScratchDb::create().await;
        let stores = nodes(&db, 3).await;
        let in_flight_everywhere = Arc::new(AtomicU32::new(0));
        let peak = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for n in 0..6 {
            let store = Arc::clone(&stores[n % 3]);
            let everywhere = Arc::clone(&in_flight_everywhere);
            let peak = Arc::clone(&peak);
            tasks.push(tokio::spawn(async move {
                let node = format!("node-{n}");
                let (mut share, mut in_flight) = (0u32, 0u32);
                let mut last = None;
                for round in 0..60 {
                    // Some attempts finish.
                    let finished = fastrand::u32(0..=in_flight);
                    in_flight -= finished;
                    everywhere.fetch_sub(finished, Ordering::SeqCst);
                    // Random demand at first, then every node wants all it can get.
                    let want = if round < 40 {
                        fastrand::u32(0..=20)
                    } else {
                        20
                    };
                    // While the report travels, new attempts start within the current share.
                    let bound = in_flight.max(share);
                    let report = store.sync_lane(report(&node, want, bound));
                    let starting = async {
                        tokio::time::sleep(Duration::from_micros(fastrand::u64(0..2_000))).await;
                        let start = share.saturating_sub(in_flight);
                        let now = everywhere.fetch_add(start, Ordering::SeqCst) + start;
                        peak.fetch_max(now, Ordering::SeqCst);
                        start
                    };
                    let (grant, started) = tokio::join!(report, starting);
                    in_flight += started;
                    let grant: LaneGrant = grant.unwrap();
                    share = grant.share;
                    last = Some(grant);
                }
                last.unwrap()
            }));
        }
        let mut shares = Vec::new();
        for task in tasks {
            shares.push(task.await.unwrap().share);
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!(
            peak <= 20,
            "{peak} attempts in flight across nodes, limit 20"
        );
        assert!(
            peak >= 10,
            "the nodes used the lane ({peak} at most in flight)"
        );
        assert!(
            shares.iter().all(|share| *share >= 1),
            "every node wanting work gets a part: {shares:?}"
        );
    }

    #[tokio::test]
    async fn one_overload_seen_by_two_nodes_halves_the_shared_limit_once() {
        let db = ScratchDb::create().await;
        let stores = nodes(&db, 2).await;
        let first = stores[0].sync_lane(report("a", 20, 0)).await.unwrap();
        assert_eq!((first.limit, first.share, first.epoch), (20, 20, 0));
        let mut halved = report("a", 20, 20);
        halved.halved = true;
        let a = stores[0].sync_lane(halved.clone()).await.unwrap();
        assert_eq!((a.limit, a.epoch), (10, 1));
        // Node b saw the same burst before it heard of epoch 1.
        halved.node = "b".to_owned();
        let b = stores[1].sync_lane(halved).await.unwrap();
        assert_eq!((b.limit, b.epoch), (10, 1));
        assert_eq!(b.share, 0, "a still holds its 20 in flight");
        // Successes anywhere raise it again: 10 at limit 10.
        let mut ok = report("b", 20, 0);
        ok.epoch = 1;
        ok.successes = 10;
        assert_eq!(stores[1].sync_lane(ok).await.unwrap().limit, 11);
    }

    #[tokio::test]
    async fn a_retry_after_seen_by_one_node_pauses_the_others() {
        let db = ScratchDb::create().await;
        let stores = nodes(&db, 2).await;
        let mut paused = report("a", 20, 0);
        paused.paused_ms = 2_000;
        let a = stores[0].sync_lane(paused).await.unwrap();
        assert!(a.paused_ms > 1_900 && a.paused_ms <= 2_000, "{a:?}");
        let b = stores[1].sync_lane(report("b", 20, 0)).await.unwrap();
        assert!(b.paused_ms > 0 && b.paused_ms <= a.paused_ms, "{b:?}");
    }

    #[tokio::test]
    async fn a_silent_nodes_share_returns_to_the_others_after_its_lease() {
        let db = ScratchDb::create().await;
        let stores = nodes(&db, 2).await;
        let mut short = report("a", 20, 0);
        short.lease_ms = 300;
        assert_eq!(stores[0].sync_lane(short).await.unwrap().share, 20);
        assert_eq!(
            stores[1].sync_lane(report("b", 20, 0)).await.unwrap().share,
            0
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            stores[1].sync_lane(report("b", 20, 0)).await.unwrap().share,
            20,
            "a's lease ended"
        );
    }

    #[tokio::test]
    async fn a_node_done_with_the_lane_gives_its_share_back() {
        let db = ScratchDb::create().await;
        let stores = nodes(&db, 2).await;
        assert_eq!(
            stores[0].sync_lane(report("a", 20, 0)).await.unwrap().share,
            20
        );
        // Done: nothing wanted, nothing in flight beyond the old share, then nothing at all.
        assert_eq!(
            stores[0].sync_lane(report("a", 0, 20)).await.unwrap().share,
            0
        );
        assert_eq!(
            stores[0].sync_lane(report("a", 0, 0)).await.unwrap().share,
            0
        );
        assert_eq!(
            stores[1].sync_lane(report("b", 20, 0)).await.unwrap().share,
            20
        );
    }
}
