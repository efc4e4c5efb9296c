//! What only the clustered engine has: several stores (nodes) on one database.

// Test helpers: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(not(junction_skip_postgres))]
mod common;

#[cfg(not(junction_skip_postgres))]
mod cluster {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use junction_store::{CommitOutcome, JobUrl, NewEvent, NewJob, Store, StoreError, Woken};
    use junction_store_postgres::{PostgresOptions, PostgresStore};
    use sqlx::{Connection, PgConnection};

    use crate::common::ScratchDb;

    /// Unix milliseconds now.
    pub(super) fn now_ms() -> i64 {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    }

    /// The lane every job of [`event`] is on.
    pub(super) const LANE: &str = "dest|hooks.example.test";

    /// An event with `jobs` jobs on [`LANE`].
    pub(super) fn event(message_id: &str, jobs: usize) -> NewEvent {
        NewEvent {
            source_id: "src".to_owned(),
            message_id: message_id.to_owned(),
            received_at: 1_735_689_600_000,
            payload: b"{}".to_vec(),
            jobs: (0..jobs)
                .map(|n| NewJob {
                    destination_id: "dest".to_owned(),
                    subscription_id: format!("sub-{n}"),
                    endpoint: LANE.to_owned(),
                    method: "POST".to_owned(),
                    url: JobUrl::Fixed("https://hooks.example.test/".to_owned()),
                    headers: Vec::new(),
                    body: b"{}".to_vec(),
                })
                .collect(),
            discards: Vec::new(),
            for_profiles: false,
        }
    }

    pub(super) async fn open(db: &ScratchDb) -> PostgresStore {
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
        let latest = *versions.last().unwrap();
        assert_eq!(
            versions,
            (1..=latest).collect::<Vec<_>>(),
            "each version once"
        );
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
    async fn another_node_s_commit_names_its_lanes() {
        let db = ScratchDb::create().await;
        let (a, b) = (open(&db).await, open(&db).await);
        let signal = a.job_signal();
        // A's listener asks for a listing once connected; B's commit then names its lanes.
        let deadline = Instant::now() + Duration::from_secs(10);
        for n in 0.. {
            let _ = signal.take();
            b.commit(vec![event(&format!("m-{n}"), 1)]).await.unwrap();
            let committed = now_ms();
            // A wake-up stored before the commit may come first, with nothing left to take.
            let woken = loop {
                tokio::time::timeout(Duration::from_secs(2), signal.notified())
                    .await
                    .expect("node A woken by node B's commit");
                match signal.take() {
                    Woken::Lanes(lanes) if lanes.is_empty() => continue,
                    woken => break woken,
                }
            };
            match woken {
                Woken::Lanes(lanes) => {
                    assert_eq!(lanes.len(), 1, "{lanes:?}");
                    assert_eq!(lanes[0].0, LANE);
                    assert!(lanes[0].1 <= committed, "due when committed: {lanes:?}");
                    break;
                }
                Woken::ListAll => assert!(Instant::now() < deadline, "never named"),
            }
        }
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

    /// A batch of completions is written with a few statements for the whole batch; one that
    /// completes a job twice (a repeat delivery after a lease ended) must still apply them in
    /// order, as one completion at a time would.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_completing_a_job_twice_applies_both_in_order() {
        use junction_store::{AttemptRecord, Completion, JobState};

        let db = ScratchDb::create().await;
        let store = open(&db).await;
        let outcomes = store.commit(vec![event("twice", 2)]).await.unwrap();
        let CommitOutcome::Stored { event_id, job_ids } = &outcomes[0] else {
            panic!("stored: {outcomes:?}");
        };
        let claimed = store
            .claim_jobs("dest|hooks.example.test", i64::MAX / 2, i64::MAX, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2);
        let attempt = |number: u32, status: u16| AttemptRecord {
            attempt: number,
            started_at: 1_000,
            duration_ms: 5,
            status: Some(status),
            error_class: (status >= 400).then(|| "http_status".to_owned()),
            response_headers: vec![("x-n".to_owned(), number.to_string())],
            response_excerpt: b"{}".to_vec(),
        };
        let completion = |job: usize, number: u32, status: u16, state: JobState| Completion {
            job_id: job_ids[job],
            attempt: Some(attempt(number, status)),
            state,
            next_at: 5_000,
            detail: Some(format!("{status}")),
        };
        store
            .complete_jobs(vec![
                completion(0, 1, 500, JobState::AwaitingRetry),
                completion(1, 1, 400, JobState::Discarded),
                completion(0, 2, 200, JobState::Succeeded),
                // After its terminal state: only the attempt is recorded.
                completion(1, 2, 200, JobState::Succeeded),
            ])
            .await
            .unwrap();
        let record = store.event(*event_id).await.unwrap().unwrap();
        let states = |n: usize| -> Vec<JobState> {
            record.jobs[n].transitions.iter().map(|t| t.state).collect()
        };
        assert_eq!(
            states(0),
            [
                JobState::Pending,
                JobState::AwaitingRetry,
                JobState::Succeeded
            ]
        );
        assert_eq!(states(1), [JobState::Pending, JobState::Discarded]);
        assert_eq!(record.jobs[0].attempts.len(), 2);
        assert_eq!(record.jobs[1].attempts.len(), 2);
        let dead = store
            .dead_letter(junction_store::DeadLetterFilter {
                limit: 10,
                ..junction_store::DeadLetterFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].job.id, dead[0].status), (job_ids[1], Some(400)));
        assert_eq!(store.counts().await.unwrap().jobs, 2);
        assert_eq!(store.lane_backlogs().await.unwrap(), []);
    }
}

/// Retention at scale: generations of partitions, created ahead and dropped whole.
#[cfg(not(junction_skip_postgres))]
mod retention {
    use std::collections::HashSet;
    use std::sync::Arc;

    use junction_store::{
        AttemptRecord, CommitOutcome, Completion, DeadLetterFilter, EventId, JobId, JobState,
        JobUrl, NewEvent, NewJob, NewReplay, ReleasedJob, Store,
    };
    use junction_store_postgres::{PostgresOptions, PostgresStore};
    use sqlx::{Connection, PgConnection};

    use crate::common::ScratchDb;

    const LANE: &str = "dest|hooks.example.test";
    /// When the old events were received; the young ones a day later.
    const OLD: i64 = 1_700_000_000_000;
    const YOUNG: i64 = OLD + 86_400_000;
    const CUTOFF: i64 = OLD + 3_600_000;
    const TABLES: [&str; 6] = [
        "events",
        "event_duplicates",
        "discards",
        "jobs",
        "job_transitions",
        "job_attempts",
    ];

    fn new_job() -> NewJob {
        NewJob {
            destination_id: "dest".to_owned(),
            subscription_id: "sub".to_owned(),
            endpoint: LANE.to_owned(),
            method: "POST".to_owned(),
            url: JobUrl::Fixed("https://hooks.example.test/".to_owned()),
            headers: Vec::new(),
            body: b"{}".to_vec(),
        }
    }

    fn event(message_id: &str, received_at: i64, jobs: usize) -> NewEvent {
        NewEvent {
            source_id: "src".to_owned(),
            message_id: message_id.to_owned(),
            received_at,
            payload: b"{}".to_vec(),
            jobs: (0..jobs).map(|_| new_job()).collect(),
            discards: Vec::new(),
            for_profiles: false,
        }
    }

    async fn open(db: &ScratchDb, generation_events: u64) -> PostgresStore {
        let options = PostgresOptions {
            generation_events,
            ..PostgresOptions::default()
        };
        PostgresStore::open(&db.url, options)
            .await
            .expect("open store")
    }

    /// Commits `count` events one commit each (so that ids follow the order), named
    /// `<prefix>-<n>`; returns each event's id and its job's id.
    async fn commit_each(
        store: &PostgresStore,
        prefix: &str,
        count: usize,
        received_at: i64,
    ) -> Vec<(EventId, JobId)> {
        let mut stored = Vec::new();
        for n in 0..count {
            let outcome = store
                .commit(vec![event(&format!("{prefix}-{n}"), received_at, 1)])
                .await
                .unwrap();
            let CommitOutcome::Stored { event_id, job_ids } = &outcome[0] else {
                panic!("not stored: {outcome:?}");
            };
            stored.push((*event_id, job_ids[0]));
        }
        stored
    }

    /// Claims every due job of the lane, completes those in `jobs` in `state` and releases the
    /// others.
    async fn finish(store: &PostgresStore, jobs: &[JobId], state: JobState) {
        let wanted: HashSet<JobId> = jobs.iter().copied().collect();
        let claimed = store
            .claim_jobs(LANE, i64::MAX / 2, i64::MAX, 10_000)
            .await
            .unwrap();
        let (done, others): (Vec<_>, Vec<_>) = claimed
            .iter()
            .map(ReleasedJob::from)
            .partition(|job| wanted.contains(&job.job_id));
        assert_eq!(done.len(), wanted.len(), "every job to finish was due");
        let completions = done
            .into_iter()
            .map(|ReleasedJob { job_id, .. }| Completion {
                job_id,
                attempt: Some(AttemptRecord {
                    attempt: 1,
                    started_at: OLD,
                    duration_ms: 5,
                    status: Some(if state == JobState::Succeeded {
                        200
                    } else {
                        400
                    }),
                    error_class: None,
                    response_headers: Vec::new(),
                    response_excerpt: Vec::new(),
                }),
                state,
                next_at: 0,
                detail: None,
            })
            .collect();
        store.complete_jobs(completions).await.unwrap();
        store.release_jobs(others).await.unwrap();
    }

    /// Prunes until a pass says nothing older remains; returns the events removed.
    async fn prune_all(store: &PostgresStore, before: i64) -> u64 {
        let mut removed = 0;
        for _ in 0..100 {
            let outcome = store.prune(before, 500).await.unwrap();
            removed += outcome.events;
            if !outcome.more {
                return removed;
            }
        }
        panic!("retention never finished");
    }

    /// The partitions of `parent`, by name, as the catalogue has them.
    async fn partitions(conn: &mut PgConnection, parent: &str) -> HashSet<String> {
        sqlx::query_scalar(
            "SELECT child.relname::text FROM pg_inherits
             JOIN pg_class child ON child.oid = pg_inherits.inhrelid
             JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
             WHERE parent.relname = $1",
        )
        .bind(parent)
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .into_iter()
        .collect()
    }

    /// Whether generation `n` still has its partition of every table (or of none).
    async fn generation_exists(conn: &mut PgConnection, n: i64) -> bool {
        let mut found = Vec::new();
        for table in TABLES {
            found.push(
                partitions(conn, table)
                    .await
                    .contains(&format!("{table}_g{n}")),
            );
        }
        assert!(
            found.iter().all(|f| *f == found[0]),
            "generation {n} partly dropped: {found:?}"
        );
        found[0]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prune_drops_old_generations_whole_and_keeps_newer_ones() {
        let db = ScratchDb::create().await;
        let store = open(&db, 10).await;
        let old = commit_each(&store, "old", 35, OLD).await;
        let young = commit_each(&store, "young", 3, YOUNG).await;
        let ids: Vec<i64> = old.iter().chain(&young).map(|(id, _)| id.0).collect();
        assert_eq!(
            ids,
            (1..=38).collect::<Vec<_>>(),
            "generations of 10 ids: 0 to 3"
        );
        let old_jobs: Vec<JobId> = old.iter().map(|(_, job)| *job).collect();
        finish(&store, &old_jobs, JobState::Succeeded).await;

        // Generations 0-2 go whole; the old part of generation 3 (being written) row-wise.
        assert_eq!(prune_all(&store, CUTOFF).await, 35);
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        for n in 0..3 {
            assert!(
                !generation_exists(&mut conn, n).await,
                "generation {n} kept"
            );
        }
        assert!(generation_exists(&mut conn, 3).await);
        let generations: Vec<i64> =
            sqlx::query_scalar("SELECT generation FROM event_generations ORDER BY generation")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(generations.first(), Some(&3));
        for (id, _) in &old {
            assert_eq!(store.event(*id).await.unwrap(), None, "event {id:?} kept");
        }
        for (id, job) in &young {
            let record = store.event(*id).await.unwrap().expect("young event kept");
            assert_eq!(record.jobs[0].job.id, *job);
            assert_eq!(record.jobs[0].transitions.len(), 1);
        }
        assert_eq!(prune_all(&store, CUTOFF).await, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_job_or_replay_pins_its_generation_until_it_finishes() {
        let db = ScratchDb::create().await;
        let store = open(&db, 10).await;
        // Generations 0 and 1 old and sealed; the young event opens generation 2.
        let old = commit_each(&store, "old", 20, OLD).await;
        let young = commit_each(&store, "young", 1, YOUNG).await;
        assert_eq!(young[0].0, EventId(21));
        let (first_event, first_job) = old[0];
        let rest: Vec<JobId> = old[1..].iter().map(|(_, job)| *job).collect();
        finish(&store, &rest, JobState::Succeeded).await;
        finish(&store, &[first_job], JobState::Discarded).await;
        let replayed = store
            .replay_jobs(vec![NewReplay {
                replay_of: first_job,
                job: new_job(),
            }])
            .await
            .unwrap();

        // The replay is queued: generation 0 stays whole (a sealed generation is never pruned
        // row-wise), generation 1 goes.
        assert_eq!(prune_all(&store, CUTOFF).await, 10);
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        assert!(generation_exists(&mut conn, 0).await);
        assert!(!generation_exists(&mut conn, 1).await);
        for (id, _) in &old[..10] {
            assert!(store.event(*id).await.unwrap().is_some(), "{id:?} pruned");
        }
        let all_dead = DeadLetterFilter {
            include_replayed: true,
            limit: 100,
            ..DeadLetterFilter::default()
        };
        assert_eq!(store.dead_letter(all_dead.clone()).await.unwrap().len(), 1);

        finish(&store, &replayed, JobState::Succeeded).await;
        assert_eq!(prune_all(&store, CUTOFF).await, 10);
        assert!(!generation_exists(&mut conn, 0).await);
        assert_eq!(store.event(first_event).await.unwrap(), None);
        assert!(store.dead_letter(all_dead).await.unwrap().is_empty());
        assert!(store.event(young[0].0).await.unwrap().is_some());
    }

    /// A database at schema version 2 with a few rows (three events: the first with a
    /// duplicate and a dead-letter job, the second with a queued job and a discard, the third
    /// delivered; and an id drawn but never stored), `recorded` as the applied versions.
    async fn version_2_database(db: &ScratchDb, recorded: &str) -> PgConnection {
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        let record = format!(
            "INSERT INTO junction_migrations (version, name)
             SELECT v, 'v' || v FROM unnest(ARRAY[{recorded}]::bigint[]) AS v"
        );
        let at_version_2 = [
            include_str!("../src/migrations/v1.sql"),
            include_str!("../src/migrations/v2.sql"),
            "CREATE TABLE junction_migrations (
                 version    BIGINT PRIMARY KEY,
                 name       TEXT   NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
            record.as_str(),
            r"INSERT INTO events (source_id, message_id, received_at, payload)
              VALUES ('src', 'm-1', 1, '\x7b7d'), ('src', 'm-2', 2, '\x7b7d'),
                     ('src', 'm-3', 3, '\x7b7d');
              SELECT nextval(pg_get_serial_sequence('events', 'id'));
              INSERT INTO event_duplicates (event_id, received_at) VALUES (1, 5);
              INSERT INTO jobs (event_id, destination_id, subscription_id, endpoint, method, url,
                                headers, body, created_at)
              SELECT id, 'dest', 'sub', 'dest|hooks.example.test', 'POST',
                     'https://hooks.example.test/', '[]', '\x7b7d', 1
              FROM events ORDER BY id;
              INSERT INTO job_transitions (job_id, seq, state, at, next_at, attempt, detail)
              VALUES (1, 0, 'pending', 1, 1, 0, NULL), (1, 1, 'discarded', 2, NULL, 1, 'boom'),
                     (2, 0, 'pending', 1, 1, 0, NULL), (3, 0, 'pending', 1, 1, 0, NULL),
                     (3, 1, 'succeeded', 2, NULL, 1, NULL);
              INSERT INTO job_attempts (job_id, attempt, started_at, duration_ms, status,
                                        error_class, response_headers, response_excerpt)
              VALUES (1, 1, 2, 5, 400, NULL, '[]', '\x'), (3, 1, 2, 5, 200, NULL, '[]', '\x');
              INSERT INTO job_queue (job_id, endpoint, next_at, attempt, last_seq)
              VALUES (2, 'dest|hooks.example.test', 1, 0, 0);
              INSERT INTO dead_letter (job_id, destination_id, subscription_id, state, at,
                                       attempts, status, error_class, detail)
              VALUES (1, 'dest', 'sub', 'discarded', 2, 1, 400, NULL, 'boom');
              INSERT INTO discards (event_id, destination_id, subscription_id, reason, message)
              VALUES (2, 'other', NULL, 'not_matched', 'no trigger matched');
              UPDATE counters SET events = 3, duplicates = 1, jobs = 3, discards = 1;",
        ];
        for sql in at_version_2 {
            sqlx::Executor::execute(&mut conn, sql).await.unwrap();
        }
        conn
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migration_keeps_version_2_rows_and_new_ids_continue_after_them() {
        let db = ScratchDb::create().await;
        let mut conn = version_2_database(&db, "1, 2").await;

        let store = open(&db, 10).await;
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM junction_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert!(versions.contains(&3), "{versions:?}");
        let first = store.event(EventId(1)).await.unwrap().expect("event 1");
        assert_eq!(first.duplicates, [5]);
        assert_eq!(first.jobs.len(), 1);
        assert_eq!(first.jobs[0].transitions.len(), 2);
        assert_eq!(first.jobs[0].attempts[0].status, Some(400));
        let second = store.event(EventId(2)).await.unwrap().expect("event 2");
        assert_eq!(second.discards[0].message, "no trigger matched");
        let third = store.event(EventId(3)).await.unwrap().expect("event 3");
        assert_eq!(third.jobs[0].attempts[0].status, Some(200));
        let dead = store
            .dead_letter(DeadLetterFilter {
                limit: 10,
                ..DeadLetterFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].job.id, JobId(1));
        assert_eq!(store.counts().await.unwrap().events, 3);
        // Generation 0 holds every id issued before the migration, the unused one included.
        let bounds: (i64, i64) =
            sqlx::query_as("SELECT first_id, end_id FROM event_generations WHERE generation = 0")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(bounds, (1, 5));

        let outcome = store.commit(vec![event("new", YOUNG, 1)]).await.unwrap();
        let CommitOutcome::Stored { event_id, job_ids } = &outcome[0] else {
            panic!("not stored: {outcome:?}");
        };
        assert_eq!(*event_id, EventId(5));
        assert_eq!(job_ids[0], JobId(4));
        let claimed = store
            .claim_jobs(LANE, i64::MAX / 2, i64::MAX, 10)
            .await
            .unwrap();
        let young: Vec<ReleasedJob> = claimed
            .iter()
            .filter(|due| due.job.id == JobId(4))
            .map(ReleasedJob::from)
            .collect();
        let mut claimed: Vec<JobId> = claimed.into_iter().map(|due| due.job.id).collect();
        claimed.sort();
        assert_eq!(claimed, [JobId(2), JobId(4)], "the old queue row survived");

        // Once its queued job is done, the old generation goes whole.
        store.release_jobs(young).await.unwrap();
        let done = Completion {
            job_id: JobId(2),
            attempt: None,
            state: JobState::Succeeded,
            next_at: 0,
            detail: None,
        };
        store.complete_jobs(vec![done]).await.unwrap();
        assert_eq!(prune_all(&store, CUTOFF).await, 3);
        assert!(!generation_exists(&mut conn, 0).await);
        assert!(store.event(EventId(5)).await.unwrap().is_some());
    }

    /// A build released version 4 before version 3: a database it migrated gets version 3 too.
    /// (Version 4's tables are left out of the fixture: nothing here uses them.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_below_the_newest_applied_one_is_still_applied() {
        let db = ScratchDb::create().await;
        let mut conn = version_2_database(&db, "1, 2, 4").await;
        let store = open(&db, 10).await;
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM junction_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let consecutive: Vec<i64> = (1..=i64::try_from(versions.len()).unwrap()).collect();
        assert_eq!(versions, consecutive, "every version, 3 included");
        assert_eq!(
            partitions(&mut conn, "events").await.len(),
            3,
            "generations 0-2"
        );
        assert!(store.event(EventId(3)).await.unwrap().is_some());
        let outcome = store.commit(vec![event("new", YOUNG, 0)]).await.unwrap();
        assert!(matches!(
            outcome[0],
            CommitOutcome::Stored {
                event_id: EventId(5),
                ..
            }
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_table_postpones_the_drop_instead_of_waiting_for_it() {
        let db = ScratchDb::create().await;
        let store = open(&db, 10).await;
        commit_each(&store, "old", 10, OLD).await;
        commit_each(&store, "young", 1, YOUNG).await;
        let old_jobs: Vec<JobId> = (1..=10).map(JobId).collect();
        finish(&store, &old_jobs, JobState::Succeeded).await;

        // A long read holds a share lock on the events until it ends.
        let mut reader = PgConnection::connect(&db.url).await.unwrap();
        sqlx::Executor::execute(&mut reader, "BEGIN; SELECT count(*) FROM events")
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let outcome = store.prune(CUTOFF, 500).await.unwrap();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(outcome.events, 0);
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        assert!(generation_exists(&mut conn, 0).await);

        sqlx::Executor::execute(&mut reader, "COMMIT")
            .await
            .unwrap();
        assert_eq!(prune_all(&store, CUTOFF).await, 10);
        assert!(!generation_exists(&mut conn, 0).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dedupe_searches_sealed_generations_within_the_window_only() {
        let db = ScratchDb::create().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        {
            let store = open(&db, 10).await;
            store.commit(vec![event("recent", now, 0)]).await.unwrap();
            store.commit(vec![event("ancient", OLD, 0)]).await.unwrap();
            commit_each(&store, "filler", 15, now).await;
            // A retention pass marks generation 0 sealed.
            store.prune(0, 10).await.unwrap();
        }
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        let sealed_at: Option<i64> =
            sqlx::query_scalar("SELECT sealed_at FROM event_generations WHERE generation = 0")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert!(sealed_at.is_some_and(|at| at >= now));

        // Generation 0 was sealed within the window of a duplicate of "recent": searched.
        let store = open(&db, 10).await;
        let outcome = store
            .commit(vec![event("recent", now + 1_000, 0)])
            .await
            .unwrap();
        assert_eq!(
            outcome[0],
            CommitOutcome::Duplicate {
                original: EventId(1)
            }
        );
        drop(store);

        // A generation sealed before a duplicate's window is not searched at all. (Forged here:
        // in real life such a generation holds no event received within the window.)
        sqlx::query("UPDATE event_generations SET sealed_at = $1 WHERE generation = 0")
            .bind(OLD + 1_000)
            .execute(&mut conn)
            .await
            .unwrap();
        let store = open(&db, 10).await;
        let outcome = store
            .commit(vec![event("ancient", OLD + 2 * 86_400_000, 0)])
            .await
            .unwrap();
        assert!(
            matches!(outcome[0], CommitOutcome::Stored { .. }),
            "{outcome:?}"
        );
        let outcome = store
            .commit(vec![event("ancient", OLD + 1_000, 0)])
            .await
            .unwrap();
        assert_eq!(
            outcome[0],
            CommitOutcome::Duplicate {
                original: EventId(2)
            },
            "within the window of the seal, still searched"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn inserts_beyond_the_partitions_created_ahead_succeed() {
        let db = ScratchDb::create().await;
        let nodes = [open(&db, 10).await, open(&db, 10).await];
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        let ahead: i64 = sqlx::query_scalar("SELECT max(end_id) FROM event_generations")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(ahead < 50, "only a few generations ahead: {ahead}");

        // A group far larger than the partitions ahead; then one on the other node, whose view
        // of the partitions is stale (its first try finds no partition for its ids); then both
        // nodes at once.
        for (node, prefix) in [(&nodes[0], "a"), (&nodes[1], "b")] {
            let batch = (0..50)
                .map(|n| event(&format!("{prefix}-{n}"), YOUNG, 1))
                .collect();
            let outcomes = node.commit(batch).await.unwrap();
            assert!(
                outcomes
                    .iter()
                    .all(|outcome| matches!(outcome, CommitOutcome::Stored { .. }))
            );
        }
        let nodes = nodes.map(Arc::new);
        let tasks: Vec<_> = (0..40)
            .map(|n| {
                let node = Arc::clone(&nodes[n % 2]);
                tokio::spawn(async move {
                    node.commit(vec![event(&format!("one-{n}"), YOUNG, 2)])
                        .await
                        .unwrap()
                })
            })
            .collect();
        for task in tasks {
            assert!(matches!(
                task.await.unwrap()[0],
                CommitOutcome::Stored { .. }
            ));
        }

        let (events, newest): (i64, i64) = sqlx::query_as("SELECT count(*), max(id) FROM events")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(events, 140);
        assert!(
            newest > events,
            "the ids of the try that found no partition are skipped"
        );
        let ahead: i64 = sqlx::query_scalar("SELECT max(end_id) FROM event_generations")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(
            ahead > newest,
            "partitions end at {ahead}, ids reach {newest}"
        );
        assert!(partitions(&mut conn, "jobs").await.len() >= 14);
    }
}

/// Claims that start past the lane's consumed part (migration 10, `cursor.rs`).
/// What the store's statements read: claims that start past the consumed part, an inbox read
/// from its first event.
#[cfg(not(junction_skip_postgres))]
mod reads {
    use std::time::Duration;

    use junction_store::{CommitOutcome, NewEvent, ProfileCheckpoint, Store};
    use junction_store_postgres::PostgresStore;
    use sqlx::{Connection, PgConnection};

    use super::cluster::{LANE, event, now_ms, open};
    use crate::common::ScratchDb;

    async fn claim(store: &PostgresStore, now: i64, limit: usize) -> Vec<i64> {
        store
            .claim_jobs(LANE, now, now + 60_000, limit)
            .await
            .unwrap()
            .iter()
            .map(|due| due.job.id.0)
            .collect()
    }

    /// Waits for `store`'s listener to have handled the notifications sent so far, then for one
    /// more (sent by `send`).
    async fn after_notification<F: std::future::Future<Output = ()>>(
        store: &PostgresStore,
        send: F,
    ) {
        let signal = store.job_signal();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = tokio::time::timeout(Duration::from_millis(50), signal.notified()).await;
        send.await;
        tokio::time::timeout(Duration::from_secs(5), signal.notified())
            .await
            .expect("notified");
    }

    /// Jobs given back behind a node's cursor, by that node or by another, are claimed again in
    /// their turn, before the younger jobs past the cursor.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_given_back_behind_the_cursor_keep_their_turn() {
        use junction_store::ReleasedJob;

        let db = ScratchDb::create().await;
        let (a, b) = (open(&db).await, open(&db).await);
        let outcomes = a.commit(vec![event("many", 12)]).await.unwrap();
        let CommitOutcome::Stored { job_ids, .. } = &outcomes[0] else {
            panic!("stored: {outcomes:?}");
        };
        let ids: Vec<i64> = job_ids.iter().map(|id| id.0).collect();
        let now = now_ms() + 1;
        assert_eq!(claim(&a, now, 2).await, ids[0..2]);
        assert_eq!(claim(&a, now, 2).await, ids[2..4], "from the cursor");
        let give_back = |due: &[junction_store::DueJob]| {
            due.iter()
                .map(|due| ReleasedJob {
                    job_id: due.job.id,
                    due_at: due.next_at,
                })
                .collect::<Vec<_>>()
        };

        // Given back by the node itself.
        let due_at: i64 = sqlx::query_scalar("SELECT next_at FROM job_queue WHERE job_id = $1")
            .bind(ids[0])
            .fetch_one(&mut PgConnection::connect(&db.url).await.unwrap())
            .await
            .unwrap();
        a.release_jobs(vec![ReleasedJob {
            job_id: job_ids[0],
            due_at,
        }])
        .await
        .unwrap();
        assert_eq!(claim(&a, now, 2).await, [ids[0], ids[4]]);

        // Given back by another node: the notification resets this node's cursor.
        let taken = b.claim_jobs(LANE, now, now + 60_000, 2).await.unwrap();
        let taken_ids: Vec<i64> = taken.iter().map(|due| due.job.id.0).collect();
        assert_eq!(taken_ids, ids[5..7]);
        assert_eq!(claim(&a, now, 1).await, [ids[7]]);
        after_notification(&a, async {
            b.release_jobs(give_back(&taken)).await.unwrap();
        })
        .await;
        assert_eq!(claim(&a, now, 3).await, [ids[5], ids[6], ids[8]]);
    }

    /// Rows that come to be due behind a node's cursor without any notification (the lease of
    /// a node that died ended; a commit whose clock was behind) are claimed in their turn within
    /// the walk interval of the claims' clock (1 s), whatever the cursor still finds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_due_behind_the_cursor_unannounced_are_claimed_within_a_second() {
        let db = ScratchDb::create().await;
        let (a, dead) = (open(&db).await, open(&db).await);
        let outcomes = a.commit(vec![event("many", 16)]).await.unwrap();
        let CommitOutcome::Stored { job_ids, .. } = &outcomes[0] else {
            panic!("stored: {outcomes:?}");
        };
        let ids: Vec<i64> = job_ids.iter().map(|id| id.0).collect();
        let now = now_ms() + 1;
        // The dead node's claim: its lease ends 100 ms on.
        let held = dead.claim_jobs(LANE, now, now + 100, 2).await.unwrap();
        assert_eq!(held.len(), 2);
        drop(dead);
        assert_eq!(claim(&a, now, 2).await, ids[2..4]);
        assert_eq!(claim(&a, now + 200, 2).await, ids[4..6], "from the cursor");
        assert_eq!(
            claim(&a, now + 1_000, 3).await,
            [ids[0], ids[1], ids[6]],
            "within a second of the claims' clock, in their turn"
        );

        // A row committed with a clock 5 s behind, after the cursor passed its place.
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("UPDATE job_queue SET next_at = next_at - 5000 WHERE job_id = $1")
            .bind(ids[15])
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(claim(&a, now + 1_100, 1).await, [ids[7]], "from the cursor");
        assert_eq!(claim(&a, now + 2_000, 2).await, [ids[15], ids[8]]);
    }

    /// The top node's buffers (hit and read) of `EXPLAIN (ANALYZE, BUFFERS)` of `sql`, run in a
    /// transaction rolled back.
    async fn buffers(conn: &mut PgConnection, sql: &str) -> u64 {
        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        let line = plan
            .iter()
            .find(|line| line.trim_start().starts_with("Buffers:"))
            .unwrap_or_else(|| panic!("no buffers in {plan:#?}"));
        line.split_whitespace()
            .filter_map(|part| {
                part.split_once('=')
                    .map(|(_, n)| n.parse::<u64>().unwrap_or(0))
            })
            .sum()
    }

    /// Forgets `pg_stat_statements`' counts of this database, so that [`blocks_read`] counts
    /// what runs next; false where it is not loaded (the measure is then skipped).
    async fn reset_statements(conn: &mut PgConnection) -> bool {
        let loaded = sqlx::query(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database \
             WHERE datname = current_database()), 0)",
        )
        .execute(&mut *conn)
        .await;
        if loaded.is_err() {
            eprintln!("pg_stat_statements not loaded: what the store read was not measured");
        }
        loaded.is_ok()
    }

    /// The shared buffers (hit and read) this database's statements whose text holds `text`
    /// read since [`reset_statements`].
    async fn blocks_read(conn: &mut PgConnection, text: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT coalesce(sum(shared_blks_hit + shared_blks_read), 0)::bigint \
             FROM pg_stat_statements WHERE strpos(query, $1) > 0 AND dbid = \
             (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .bind(text)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
    }

    /// What one claim of `store` at `now` took and read; `None` where that cannot be measured.
    async fn claim_reads(
        conn: &mut PgConnection,
        store: &PostgresStore,
        now: i64,
    ) -> Option<(usize, i64)> {
        if !reset_statements(conn).await {
            return None;
        }
        let claimed = claim(store, now, 1).await.len();
        Some((claimed, blocks_read(conn, "junction_claim_after").await))
    }

    /// The profile worker's read of its inbox starts at the inbox's first event, not at the
    /// start of the events' generation: the 18,000 events consumed before it cost it nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_profile_inbox_is_read_from_its_first_event() {
        let db = ScratchDb::create().await;
        let store = open(&db).await;
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        let mut ids = Vec::new();
        for batch in 0..20 {
            let events: Vec<NewEvent> = (0..1_000)
                .map(|n| NewEvent {
                    for_profiles: true,
                    ..event(&format!("p-{batch}-{n}"), 0)
                })
                .collect();
            for outcome in store.commit(events).await.unwrap() {
                match outcome {
                    CommitOutcome::Stored { event_id, .. } => ids.push(event_id),
                    CommitOutcome::Duplicate { .. } => panic!("no duplicates here"),
                }
            }
        }
        assert!(store.lead_profiles("node-a", 60_000).await.unwrap());
        let waiting = ids.split_off(18_000);
        store
            .save_profiles(ProfileCheckpoint {
                owner: "node-a".to_owned(),
                consumed: ids,
                worker: b"{}".to_vec(),
                ..ProfileCheckpoint::default()
            })
            .await
            .unwrap();
        // As autovacuum leaves it: the consumed rows' entries gone, the statistics current.
        sqlx::query("VACUUM ANALYZE profile_inbox")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("ANALYZE events")
            .execute(&mut conn)
            .await
            .unwrap();
        if !reset_statements(&mut conn).await {
            return;
        }
        let inbox = store.profile_inbox(1_000).await.unwrap();
        let read: Vec<_> = inbox.iter().map(|e| e.id).collect();
        assert_eq!(read, waiting[..1_000]);
        let blocks = blocks_read(&mut conn, "FROM profile_inbox i JOIN events").await;
        assert!(blocks < 100, "the inbox read {blocks} buffers");
    }

    /// At a lane's front, where every claim comes back short, the next claim starts just below
    /// where the last one ended, not at the floor ten seconds back: it does not read what was
    /// completed in between. The walk from the floor, once a second, does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_at_the_lane_s_front_does_not_read_the_last_seconds_completions() {
        let db = ScratchDb::create().await;
        let store = open(&db).await;
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("ALTER TABLE job_queue SET (autovacuum_enabled = false)")
            .execute(&mut conn)
            .await
            .unwrap();
        store.commit(vec![event("many", 20_000)]).await.unwrap();
        // By the claims' clock the jobs were due 2 s ago: above the floor, below the front.
        let now = now_ms() + 2_000;
        loop {
            let claimed = claim(&store, now, 500).await;
            if claimed.is_empty() {
                break;
            }
            sqlx::query("DELETE FROM job_queue WHERE job_id = ANY($1)")
                .bind(&claimed)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let Some((claimed, front)) = claim_reads(&mut conn, &store, now + 10).await else {
            return;
        };
        assert_eq!(claimed, 0);
        let Some((_, walk)) = claim_reads(&mut conn, &store, now + 1_000).await else {
            return;
        };
        assert!(
            front < 20 && walk > 5 * front,
            "buffers at the front {front}, from the floor {walk}"
        );
    }

    /// After 20,000 of a lane's jobs were claimed and their rows deleted (their index entries
    /// still at the lane's head: no vacuum), a claim from past the last one claimed reads a
    /// handful of pages, where one from the lane's start reads the whole consumed part.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_from_the_cursor_does_not_read_the_consumed_part() {
        let db = ScratchDb::create().await;
        let store = open(&db).await;
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("ALTER TABLE job_queue SET (autovacuum_enabled = false)")
            .execute(&mut conn)
            .await
            .unwrap();
        store.commit(vec![event("many", 21_000)]).await.unwrap();
        let now = now_ms() + 1;
        let mut last = (0, 0);
        for _ in 0..100 {
            let claimed = store
                .claim_jobs(LANE, now, now + 60_000, 200)
                .await
                .unwrap();
            assert_eq!(claimed.len(), 200);
            let ids: Vec<i64> = claimed.iter().map(|due| due.job.id.0).collect();
            last = claimed
                .last()
                .map(|due| (due.next_at, due.job.id.0))
                .unwrap();
            sqlx::query("DELETE FROM job_queue WHERE job_id = ANY($1)")
                .bind(&ids)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        // The store's own claim starts past its last one (measured before anything else reads
        // the dead entries and marks them so).
        if let Some((claimed, blocks)) = claim_reads(&mut conn, &store, now).await {
            assert_eq!(claimed, 1);
            assert!(
                blocks < 100,
                "the store's claim of one job read {blocks} buffers"
            );
        }
        // The same statement from there and from the lane's start (after a first call from
        // there, which reads the catalogues).
        let from_cursor = format!(
            "SELECT * FROM junction_claim_after('{LANE}', {now}, {}, 1, {}, {})",
            now + 60_000,
            last.0,
            last.1
        );
        buffers(&mut conn, &from_cursor).await;
        let from_cursor = buffers(&mut conn, &from_cursor).await;
        let from_start = buffers(
            &mut conn,
            &format!(
                "SELECT * FROM junction_claim_after('{LANE}', {now}, {}, 1, {}, {})",
                now + 60_000,
                i64::MIN,
                i64::MIN
            ),
        )
        .await;
        assert!(
            from_cursor < 40 && from_start > 5 * from_cursor,
            "buffers from the cursor {from_cursor}, from the lane's start {from_start}"
        );
    }
}

/// Stands in for the tests when they were compiled out.
#[cfg(junction_skip_postgres)]
#[test]
fn postgres_engine_tests_skipped() {
    eprintln!("JUNCTION_SKIP_POSTGRES=1: the PostgreSQL engine tests were not built");
}
