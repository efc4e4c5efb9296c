//! The one conformance suite every storage engine passes (design §3 property 11). Each engine
//! implements [`Harness`] in its tests and writes `junction_store::conformance_suite!(MyHarness);`,
//! which expands into one `#[tokio::test]` per check below (the engine's crate needs `tokio` with
//! the `macros` and `rt-multi-thread` features as a dev-dependency).

// Test code: a failed expectation is a failed test, and a panic says so best.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::{
    AttemptRecord, CommitOutcome, Completion, Counts, DeadLetterFilter, DiscardReason,
    DiscardRecord, EventId, EventRecord, JobId, JobState, JobUrl, NewDiscard, NewEvent, NewJob,
    NewRegulation, NewReplay, Overview, OverviewBucket, OverviewCounts, OverviewQuery,
    ProfileCheckpoint, PruneOutcome, RegulationStatus, RegulationUpdate, ReleasedJob, Store,
    StoreError, StoreOptions, StoredProfile, UnixMillis, Woken,
};

/// What an engine provides so that the suite can run against it.
#[async_trait::async_trait]
pub trait Harness: Send + Sync + Sized + 'static {
    /// The engine's store type.
    type Store: Store + 'static;
    /// A guard that keeps the writer from starting a transaction until it is dropped.
    type WriterPause: Send + 'static;

    /// A fresh, empty place for a store (a temp directory, a scratch database), kept until the
    /// harness is dropped so that the store can be reopened there.
    async fn create() -> Self;

    /// Opens (creating on first use) the store at this harness's place.
    async fn open(&self, options: StoreOptions) -> Result<Self::Store, StoreError>;

    /// Holds the writer: commits queue up (and fail with `Overloaded` past capacity) until the
    /// guard is dropped. Makes grouping and overload deterministic.
    fn pause_writer(store: &Self::Store) -> Self::WriterPause;
}

/// Expands into one `#[tokio::test]` per conformance check, run against `$harness`.
#[macro_export]
macro_rules! conformance_suite {
    ($harness:ty) => {
        $crate::conformance_suite!(@tests $harness;
            commit_then_read_back,
            dedupe_inside_window,
            dedupe_outside_window,
            dedupe_can_be_turned_off,
            event_with_jobs_and_discards_commits_atomically,
            claims_are_per_lane_ordered_limited_and_leased,
            expedited_retries_are_due_at_once_leases_untouched,
            released_jobs_keep_their_turn,
            commits_name_their_lanes_in_the_job_signal,
            completions_record_attempts_and_fill_the_dead_letter,
            replays_are_linked_jobs,
            prune_removes_old_finished_events,
            concurrent_commits_are_durable_answered_and_grouped,
            queued_commits_share_one_transaction,
            overload_fails_fast_without_blocking,
            config_versions_increase,
            reopen_after_drop_keeps_everything,
            close_finishes_queued_commits,
            overview_counts_every_outcome,
            profile_inbox_follows_commits,
            profile_checkpoints_are_atomic_and_read_back,
            profile_lead_is_held_by_one_owner,
            regulations_are_kept_and_drive_the_suppression_list,
            deleted_events_take_everything_recorded_about_them,
        );
    };
    (@tests $harness:ty; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::conformance::$name::<$harness>().await;
            }
        )*
    };
}

/// A fixed, realistic reception time (2025-01-01T00:00:00Z) so that dedupe windows are exact.
const T0: UnixMillis = 1_735_689_600_000;
const HOUR: UnixMillis = 60 * 60 * 1000;

fn now_ms() -> UnixMillis {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since_epoch.as_millis()).unwrap()
}

/// A job whose fields all differ with `n`, with headers in a deliberate order (a duplicate name
/// included) and a body that is not UTF-8, to prove the store keeps both exactly; odd jobs name
/// a URL setting, even ones a fixed URL, so both forms are kept.
fn job(n: usize) -> NewJob {
    NewJob {
        destination_id: format!("dest-{}", n % 2),
        subscription_id: format!("sub-{n}"),
        endpoint: format!("dest-{}|hooks.example.test", n % 2),
        method: "POST".to_owned(),
        url: if n.is_multiple_of(2) {
            JobUrl::Fixed(format!(
                "https://hooks.example.test/v1/segment/token-{n}?q=ü"
            ))
        } else {
            JobUrl::Setting(format!("webhook_url_{n}"))
        },
        headers: vec![
            ("user-agent".to_owned(), "Segment (Actions)".to_owned()),
            ("x-dup".to_owned(), "b".to_owned()),
            ("x-dup".to_owned(), "a".to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ],
        body: [format!("{{\"n\":{n}}}").into_bytes(), vec![0, 0xff, 0xfe]].concat(),
    }
}

fn discard(n: usize) -> NewDiscard {
    NewDiscard {
        destination_id: format!("dest-{n}"),
        subscription_id: (n % 2 == 1).then(|| format!("sub-{n}")),
        reason: DiscardReason::ALL[n % DiscardReason::ALL.len()],
        message: format!("The root value is missing the required field 'userId'. ({n})"),
    }
}

fn event(
    source_id: &str,
    message_id: &str,
    received_at: UnixMillis,
    jobs: usize,
    discards: usize,
) -> NewEvent {
    let payload = json!({
        "type": "identify",
        "messageId": message_id,
        "userId": "user-ünïcode-1",
        "traits": {"email": "a@example.test", "plan": "pro"},
        "receivedAt": received_at,
    });
    NewEvent {
        source_id: source_id.to_owned(),
        message_id: message_id.to_owned(),
        received_at,
        payload: serde_json::to_vec(&payload).unwrap(),
        jobs: (0..jobs).map(job).collect(),
        discards: (0..discards).map(discard).collect(),
        for_profiles: false,
    }
}

async fn open<H: Harness>(harness: &H, options: StoreOptions) -> Arc<H::Store> {
    Arc::new(harness.open(options).await.expect("open store"))
}

/// Every check goes through `&dyn Store`, as the server will.
fn dyn_store<S: Store>(store: &S) -> &dyn Store {
    store
}

async fn commit_one(store: &dyn Store, event: NewEvent) -> CommitOutcome {
    let mut outcomes = store.commit(vec![event]).await.expect("commit");
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0)
}

fn stored(outcome: &CommitOutcome) -> (EventId, Vec<JobId>) {
    match outcome {
        CommitOutcome::Stored { event_id, job_ids } => (*event_id, job_ids.clone()),
        CommitOutcome::Duplicate { original } => {
            panic!("expected stored, got duplicate of {original}")
        }
    }
}

async fn only_record(store: &dyn Store, source_id: &str, message_id: &str) -> EventRecord {
    let mut records = store
        .events_by_message_id(source_id, message_id)
        .await
        .expect("read events");
    assert_eq!(records.len(), 1, "events for {source_id}/{message_id}");
    records.remove(0)
}

/// Asserts that `record` is exactly `new` as committed with these ids at a time in `window`.
fn assert_record_matches(
    record: &EventRecord,
    new: &NewEvent,
    event_id: EventId,
    job_ids: &[JobId],
    window: (UnixMillis, UnixMillis),
) {
    assert_eq!(record.id, event_id);
    assert_eq!(record.source_id, new.source_id);
    assert_eq!(record.message_id, new.message_id);
    assert_eq!(record.received_at, new.received_at);
    assert_eq!(record.payload, new.payload);
    assert_eq!(record.jobs.len(), new.jobs.len());
    assert_eq!(job_ids.len(), new.jobs.len());
    for ((stored, new_job), id) in record.jobs.iter().zip(&new.jobs).zip(job_ids) {
        let job = &stored.job;
        assert_eq!(job.id, *id);
        assert_eq!(job.event_id, event_id);
        assert_eq!(job.destination_id, new_job.destination_id);
        assert_eq!(job.subscription_id, new_job.subscription_id);
        assert_eq!(job.endpoint, new_job.endpoint);
        assert_eq!(job.method, new_job.method);
        assert_eq!(job.url, new_job.url);
        assert_eq!(job.headers, new_job.headers);
        assert_eq!(job.body, new_job.body);
        assert!(
            (window.0..=window.1).contains(&job.created_at),
            "created_at {} outside {window:?}",
            job.created_at
        );
        assert_eq!(stored.transitions.len(), 1, "only the initial transition");
        let initial = &stored.transitions[0];
        assert_eq!(initial.seq, 0);
        assert_eq!(initial.state, JobState::Pending);
        assert_eq!(initial.at, job.created_at);
        assert_eq!(initial.next_at, Some(job.created_at), "due at once");
        assert_eq!(initial.attempt, 0);
        assert_eq!(initial.detail, None);
    }
    let expected_discards: Vec<DiscardRecord> = new
        .discards
        .iter()
        .map(|d| DiscardRecord {
            destination_id: d.destination_id.clone(),
            subscription_id: d.subscription_id.clone(),
            reason: d.reason,
            message: d.message.clone(),
        })
        .collect();
    assert_eq!(record.discards, expected_discards);
}

/// Waits (bounded) until the store reports `n` events waiting for the writer.
async fn wait_queued<S: Store>(store: &S, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.stats().queued_events < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} events queued",
            store.stats().queued_events
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One event with two jobs and discards (one per mapping, one destination-wide) reads back
/// exactly, by message id and by event id; counts follow.
pub async fn commit_then_read_back<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);

    let new = event("src-1", "msg-1", T0, 2, 2);
    let before = now_ms();
    let outcome = commit_one(store, new.clone()).await;
    let after = now_ms();
    let (event_id, job_ids) = stored(&outcome);
    assert!(job_ids[0] < job_ids[1], "job ids follow commit order");

    let record = only_record(store, "src-1", "msg-1").await;
    assert_record_matches(&record, &new, event_id, &job_ids, (before, after));
    assert!(record.duplicates.is_empty());
    assert_eq!(record.discards[0].subscription_id, None);
    assert_eq!(record.discards[1].subscription_id.as_deref(), Some("sub-1"));

    assert_eq!(store.event(event_id).await.unwrap(), Some(record));
    assert_eq!(
        store.event(EventId(event_id.0 + 1_000)).await.unwrap(),
        None
    );
    let other_message = store.events_by_message_id("src-1", "msg-2").await;
    assert!(other_message.unwrap().is_empty());
    let other_source = store.events_by_message_id("src-2", "msg-1").await;
    assert!(other_source.unwrap().is_empty());

    let counts = store.counts().await.unwrap();
    let expected = Counts {
        events: 1,
        duplicates: 0,
        jobs: 2,
        discards: 2,
    };
    assert_eq!(counts, expected);
}

/// A repeated (source, messageId) within the window — later or earlier, in another commit or the
/// same batch — is acknowledged as a duplicate, stores nothing new, and is counted and recorded.
pub async fn dedupe_inside_window<H: Harness>() {
    let harness = H::create().await;
    let options = StoreOptions {
        dedupe_window: Duration::from_millis(HOUR as u64),
        ..StoreOptions::default()
    };
    let store = open(&harness, options).await;
    let store = dyn_store(&*store);

    let (first, _) = stored(&commit_one(store, event("src", "m1", T0, 1, 1)).await);
    let later = commit_one(store, event("src", "m1", T0 + HOUR - 1, 2, 0)).await;
    assert_eq!(later, CommitOutcome::Duplicate { original: first });
    let earlier = commit_one(store, event("src", "m1", T0 - HOUR / 2, 0, 1)).await;
    assert_eq!(earlier, CommitOutcome::Duplicate { original: first });
    // The dedupe key includes the source.
    stored(&commit_one(store, event("other-src", "m1", T0, 1, 0)).await);

    let batch = vec![
        event("src", "m2", T0, 1, 0),
        event("src", "m2", T0 + 1, 1, 0),
    ];
    let outcomes = store.commit(batch).await.unwrap();
    let (m2, _) = stored(&outcomes[0]);
    assert_eq!(outcomes[1], CommitOutcome::Duplicate { original: m2 });

    let record = only_record(store, "src", "m1").await;
    assert_eq!(record.id, first);
    assert_eq!(record.jobs.len(), 1, "a duplicate's jobs are not stored");
    assert_eq!(
        record.discards.len(),
        1,
        "a duplicate's discards are not stored"
    );
    assert_eq!(record.duplicates, vec![T0 + HOUR - 1, T0 - HOUR / 2]);
    assert_eq!(
        only_record(store, "src", "m2").await.duplicates,
        vec![T0 + 1]
    );

    let counts = store.counts().await.unwrap();
    let expected = Counts {
        events: 3,
        duplicates: 3,
        jobs: 3,
        discards: 1,
    };
    assert_eq!(counts, expected);
}

/// At or beyond the window the same messageId is a new event, and later duplicates refer to the
/// newest stored one.
pub async fn dedupe_outside_window<H: Harness>() {
    let harness = H::create().await;
    let options = StoreOptions {
        dedupe_window: Duration::from_millis(HOUR as u64),
        ..StoreOptions::default()
    };
    let store = open(&harness, options).await;
    let store = dyn_store(&*store);

    let (first, _) = stored(&commit_one(store, event("src", "m", T0, 1, 0)).await);
    let (second, _) = stored(&commit_one(store, event("src", "m", T0 + HOUR, 1, 0)).await);
    assert!(second > first);
    let before = commit_one(store, event("src", "m", T0 - HOUR, 0, 0)).await;
    let (third, _) = stored(&before);
    let again = commit_one(store, event("src", "m", T0 + HOUR + 10, 0, 0)).await;
    assert_eq!(again, CommitOutcome::Duplicate { original: second });

    let records = store.events_by_message_id("src", "m").await.unwrap();
    let ids: Vec<EventId> = records.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![first, second, third], "oldest first");
    assert_eq!(records[1].duplicates, vec![T0 + HOUR + 10]);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.events, counts.duplicates, counts.jobs), (3, 1, 2));
}

/// A zero window turns dedupe off.
pub async fn dedupe_can_be_turned_off<H: Harness>() {
    let harness = H::create().await;
    let options = StoreOptions {
        dedupe_window: Duration::ZERO,
        ..StoreOptions::default()
    };
    let store = open(&harness, options).await;
    let store = dyn_store(&*store);
    let batch = vec![event("src", "m", T0, 0, 0), event("src", "m", T0, 0, 0)];
    let outcomes = store.commit(batch).await.unwrap();
    assert!(matches!(outcomes[0], CommitOutcome::Stored { .. }));
    assert!(matches!(outcomes[1], CommitOutcome::Stored { .. }));
    assert_eq!(
        store.events_by_message_id("src", "m").await.unwrap().len(),
        2
    );
}

/// Several events with several jobs and discards in one batch: all stored together, each exactly.
pub async fn event_with_jobs_and_discards_commits_atomically<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);

    let batch = vec![
        event("src", "a", T0, 3, 2),
        event("src", "b", T0 + 1, 0, 1),
        event("src", "c", T0 + 2, 1, 0),
        event("src", "d", T0 + 3, 0, 0),
    ];
    let before = now_ms();
    let outcomes = store.commit(batch.clone()).await.unwrap();
    let after = now_ms();
    assert_eq!(outcomes.len(), batch.len());

    let mut all_jobs = Vec::new();
    let mut created = Vec::new();
    for (outcome, new) in outcomes.iter().zip(&batch) {
        let (event_id, job_ids) = stored(outcome);
        let record = only_record(store, &new.source_id, &new.message_id).await;
        assert_record_matches(&record, new, event_id, &job_ids, (before, after));
        created.extend(record.jobs.iter().map(|j| j.job.created_at));
        all_jobs.extend(job_ids);
    }
    let mut sorted = all_jobs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted, all_jobs,
        "job ids distinct and increasing across the batch"
    );
    assert!(
        created.windows(2).all(|w| w[0] == w[1]),
        "one transaction, one time"
    );

    let counts = store.counts().await.unwrap();
    let expected = Counts {
        events: 4,
        duplicates: 0,
        jobs: 4,
        discards: 3,
    };
    assert_eq!(counts, expected);
}

/// Lanes list each endpoint with its earliest due time; a claim takes one lane's due jobs in
/// order, up to its limit, leases them (not claimable again before the lease ends) and counts the
/// attempt; an ended lease makes them claimable again.
pub async fn claims_are_per_lane_ordered_limited_and_leased<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);

    let before = now_ms();
    let first = store
        .commit(vec![event("src", "a", T0, 2, 0)])
        .await
        .unwrap();
    let second = store
        .commit(vec![
            event("src", "b", T0, 2, 1),
            event("src", "c", T0, 0, 1),
        ])
        .await
        .unwrap();
    let (a, b) = (stored(&first[0]).1, stored(&second[0]).1);
    // job(0) goes to lane dest-0, job(1) to lane dest-1.
    let lane0 = "dest-0|hooks.example.test";
    let lane1 = "dest-1|hooks.example.test";

    let lanes = store.lanes().await.unwrap();
    let names: Vec<&str> = lanes.iter().map(|l| l.endpoint.as_str()).collect();
    assert_eq!(names, [lane0, lane1]);
    let backlogs = store.lane_backlogs().await.unwrap();
    let counted: Vec<(&str, u64)> = backlogs
        .iter()
        .map(|b| (b.endpoint.as_str(), b.queued))
        .collect();
    assert_eq!(counted, [(lane0, 2), (lane1, 2)]);
    assert!(lanes.iter().all(|l| l.next_at >= before));

    assert!(
        store
            .claim_jobs(lane0, before - 1, i64::MAX, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim_jobs(lane0, i64::MAX, i64::MAX, 0)
            .await
            .unwrap()
            .is_empty()
    );
    let now = now_ms();
    let lease = now + 60_000;
    let claimed = store.claim_jobs(lane0, now, lease, 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job.id, a[0], "earliest first");
    assert_eq!(claimed[0].attempt, 0);
    assert_eq!(claimed[0].next_at, claimed[0].job.created_at);
    let record = store.event(claimed[0].job.event_id).await.unwrap().unwrap();
    assert_eq!(record.jobs[0].job, claimed[0].job, "the request as stored");

    let rest = store.claim_jobs(lane0, now, lease, 10).await.unwrap();
    let ids: Vec<JobId> = rest.iter().map(|d| d.job.id).collect();
    assert_eq!(ids, [b[0]], "the leased job is not claimed twice");
    assert!(
        store
            .claim_jobs(lane0, now, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let lanes = store.lanes().await.unwrap();
    assert_eq!(
        lanes[0].next_at, lease,
        "a leased lane is due when its leases end"
    );

    let other = store.claim_jobs(lane1, now, lease, 10).await.unwrap();
    let ids: Vec<JobId> = other.iter().map(|d| d.job.id).collect();
    assert_eq!(ids, [a[1], b[1]], "lanes are independent");

    let again = store
        .claim_jobs(lane0, lease, lease + 60_000, 10)
        .await
        .unwrap();
    let ids: Vec<JobId> = again.iter().map(|d| d.job.id).collect();
    assert_eq!(ids, [a[0], b[0]], "an ended lease makes the job due again");
    assert!(
        again.iter().all(|d| d.attempt == 1),
        "the first claim counted an attempt"
    );
}

/// A lane whose endpoint recovered brings its jobs awaiting a retry forward, earliest first and
/// within the limit asked, leaving leased jobs (a claim outstanding) and other lanes alone.
pub async fn expedited_retries_are_due_at_once_leases_untouched<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);
    let outcome = store
        .commit(vec![event("src", "a", T0, 8, 0)])
        .await
        .unwrap();
    let (_, jobs) = stored(&outcome[0]);
    // Even jobs go to lane dest-0, odd ones to dest-1.
    let lane0 = "dest-0|hooks.example.test";
    let lane1 = "dest-1|hooks.example.test";
    let now = now_ms();
    let lease = now + 600_000;
    let claimed = store.claim_jobs(lane0, now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 4);
    store.claim_jobs(lane1, now, lease, 10).await.unwrap();
    // Three of lane 0's jobs failed and wait for retries, at different times; the fourth is
    // still leased (in flight). Lane 1's jobs wait for retries too.
    let retry = |job: JobId, at: UnixMillis| Completion {
        job_id: job,
        attempt: Some(attempt(1, Some(503), Some("http_status"))),
        state: JobState::AwaitingRetry,
        next_at: at,
        detail: Some("503 Service Unavailable".to_owned()),
    };
    store
        .complete_jobs(vec![
            retry(jobs[0], now + 300_000),
            retry(jobs[2], now + 100_000),
            retry(jobs[4], now + 200_000),
            retry(jobs[1], now + 100_000),
            retry(jobs[3], now + 100_000),
        ])
        .await
        .unwrap();

    let later = now + 1_000;
    assert_eq!(store.expedite_retries(lane0, later, 2).await.unwrap(), 2);
    let due = store.claim_jobs(lane0, later, lease, 10).await.unwrap();
    let ids: Vec<JobId> = due.iter().map(|d| d.job.id).collect();
    assert_eq!(
        ids,
        [jobs[2], jobs[4]],
        "earliest retries first, within the limit"
    );
    assert!(due.iter().all(|d| d.next_at == later && d.attempt == 1));

    assert_eq!(
        store.expedite_retries(lane0, later, 10).await.unwrap(),
        1,
        "the remaining one; the leased job and the ones just claimed are not retries waiting"
    );
    let due = store.claim_jobs(lane0, later, lease, 10).await.unwrap();
    let ids: Vec<JobId> = due.iter().map(|d| d.job.id).collect();
    assert_eq!(ids, [jobs[0]]);
    assert_eq!(store.expedite_retries(lane0, later, 10).await.unwrap(), 0);
    assert!(
        store
            .claim_jobs(lane1, later, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "other lanes wait out their backoff"
    );
}

/// A commit's wake-up of the delivery engine names the lanes of its jobs, due by the time the
/// commit is answered, so that the engine wakes them without listing every lane; jobs given back
/// name none (they are due when they were, and a listing finds them).
pub async fn commits_name_their_lanes_in_the_job_signal<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);
    let signal = store.job_signal();
    assert_eq!(signal.take(), Woken::ListAll, "nothing is known at first");
    let mut tries = 0;
    loop {
        let _ = signal.take();
        let message_id = format!("named-{tries}");
        let outcome = commit_one(store, event("src", &message_id, T0, 3, 1)).await;
        let after = now_ms();
        match signal.take() {
            Woken::Lanes(lanes) => {
                let names: Vec<&str> = lanes.iter().map(|(lane, _)| lane.as_str()).collect();
                assert_eq!(
                    names,
                    ["dest-0|hooks.example.test", "dest-1|hooks.example.test"]
                );
                assert!(
                    lanes.iter().all(|(_, due_at)| *due_at <= after),
                    "{lanes:?}"
                );
                let jobs = stored(&outcome).1;
                assert_eq!(jobs.len(), 3);
                break;
            }
            // An engine's own start may ask for a listing meanwhile (PostgreSQL's listener
            // connecting): once, not every time.
            Woken::ListAll if tries < 3 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Woken::ListAll => panic!("every commit asked for a listing"),
        }
    }

    let now = now_ms();
    let claimed = store
        .claim_jobs("dest-0|hooks.example.test", now, now + 60_000, 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store
        .release_jobs(claimed.iter().map(ReleasedJob::from).collect())
        .await
        .unwrap();
    assert_eq!(
        signal.take(),
        Woken::ListAll,
        "jobs given back ask for a listing"
    );
}

/// A job given back unattempted is due again when it was due before its claim, with its attempt
/// uncounted: it keeps its turn ahead of jobs that became due while it was held, instead of
/// going to the back of its lane each time a lane gives it back. A job finished meanwhile is
/// skipped.
pub async fn released_jobs_keep_their_turn<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);
    let lane = "dest-0|hooks.example.test";
    let mut ids = Vec::new();
    for message_id in ["first", "second"] {
        let outcome = commit_one(store, event("src", message_id, T0, 1, 0)).await;
        ids.push(stored(&outcome).1[0]);
        // Distinct due times, so that the order below is the due times' and not the ids'.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let now = now_ms();
    let claimed = store.claim_jobs(lane, now, now + 60_000, 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job.id, ids[0]);
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Due after the first job was claimed.
    let outcome = commit_one(store, event("src", "third", T0, 1, 0)).await;
    ids.push(stored(&outcome).1[0]);
    tokio::time::sleep(Duration::from_millis(5)).await;

    let given_back: Vec<ReleasedJob> = claimed.iter().map(ReleasedJob::from).collect();
    store.release_jobs(given_back.clone()).await.unwrap();
    let now = now_ms();
    let again = store.claim_jobs(lane, now, now + 60_000, 10).await.unwrap();
    let order: Vec<JobId> = again.iter().map(|due| due.job.id).collect();
    assert_eq!(order, ids, "the job given back is first again");
    assert_eq!(again[0].next_at, claimed[0].next_at, "due when it was due");
    assert_eq!(again[0].attempt, 0, "the claim given back is not counted");

    let done: Vec<Completion> = again
        .iter()
        .map(|due| Completion {
            job_id: due.job.id,
            attempt: Some(attempt(1, Some(200), None)),
            state: JobState::Succeeded,
            next_at: 0,
            detail: None,
        })
        .collect();
    store.complete_jobs(done).await.unwrap();
    store.release_jobs(given_back).await.unwrap();
    assert!(
        store.lanes().await.unwrap().is_empty(),
        "finished jobs stay finished"
    );
}

fn attempt(number: u32, status: Option<u16>, class: Option<&str>) -> AttemptRecord {
    AttemptRecord {
        attempt: number,
        started_at: T0 + i64::from(number),
        duration_ms: 12,
        status,
        error_class: class.map(str::to_owned),
        response_headers: vec![
            ("retry-after".to_owned(), "2".to_owned()),
            ("x-b".to_owned(), "1".to_owned()),
        ],
        response_excerpt: b"{\"error\":\"boom\"}".to_vec(),
    }
}

/// Completions append transitions and attempts: a retry reschedules the job, success removes it
/// from the queue, a discard or expiry puts it in the dead letter (filtered and paged); a late
/// completion of a finished job records its attempt only.
pub async fn completions_record_attempts_and_fill_the_dead_letter<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);
    let outcome = store
        .commit(vec![event("src", "a", T0, 4, 0)])
        .await
        .unwrap();
    let (event_id, jobs) = stored(&outcome[0]);
    let lane0 = "dest-0|hooks.example.test";
    let lane1 = "dest-1|hooks.example.test";
    let now = now_ms();
    let claimed0 = store.claim_jobs(lane0, now, now + 1_000, 10).await.unwrap();
    let claimed1 = store.claim_jobs(lane1, now, now + 1_000, 10).await.unwrap();
    assert_eq!((claimed0.len(), claimed1.len()), (2, 2));

    let retry_at = now + 5_000;
    store
        .complete_jobs(vec![
            Completion {
                job_id: jobs[0],
                attempt: Some(attempt(1, Some(500), Some("http_status"))),
                state: JobState::AwaitingRetry,
                next_at: retry_at,
                detail: Some("500 Internal Server Error".to_owned()),
            },
            Completion {
                job_id: jobs[1],
                attempt: Some(attempt(1, Some(200), None)),
                state: JobState::Succeeded,
                next_at: 0,
                detail: None,
            },
            Completion {
                job_id: jobs[2],
                attempt: Some(attempt(1, Some(404), Some("http_status"))),
                state: JobState::Discarded,
                next_at: 0,
                detail: Some("404 Not Found".to_owned()),
            },
            Completion {
                job_id: jobs[3],
                attempt: None,
                state: JobState::Expired,
                next_at: 0,
                detail: Some("retry window of 4 h ended".to_owned()),
            },
        ])
        .await
        .unwrap();

    let record = store.event(event_id).await.unwrap().unwrap();
    let story = |n: usize| &record.jobs[n];
    assert_eq!(story(0).transitions.len(), 2);
    let retry = &story(0).transitions[1];
    assert_eq!(
        (retry.seq, retry.state, retry.next_at, retry.attempt),
        (1, JobState::AwaitingRetry, Some(retry_at), 1)
    );
    assert_eq!(retry.detail.as_deref(), Some("500 Internal Server Error"));
    assert_eq!(
        story(0).attempts,
        [attempt(1, Some(500), Some("http_status"))]
    );
    assert_eq!(story(1).transitions[1].state, JobState::Succeeded);
    assert_eq!(story(1).transitions[1].next_at, None);
    assert_eq!(story(2).transitions[1].state, JobState::Discarded);
    assert_eq!(story(3).transitions[1].state, JobState::Expired);
    assert!(story(3).attempts.is_empty());

    // Rescheduled, not due before its retry time; the finished ones are gone from the lane.
    assert!(
        store
            .claim_jobs(lane0, retry_at - 1, retry_at + 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let lanes = store.lanes().await.unwrap();
    assert_eq!(lanes.len(), 1);
    assert_eq!(
        (lanes[0].endpoint.as_str(), lanes[0].next_at),
        (lane0, retry_at)
    );

    let all = DeadLetterFilter {
        limit: 100,
        ..DeadLetterFilter::default()
    };
    let dead = store.dead_letter(all.clone()).await.unwrap();
    let ids: Vec<JobId> = dead.iter().map(|d| d.job.id).collect();
    assert_eq!(ids, [jobs[2], jobs[3]]);
    assert_eq!(dead[0].state, JobState::Discarded);
    assert_eq!(dead[0].status, Some(404));
    assert_eq!(dead[0].error_class.as_deref(), Some("http_status"));
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(dead[0].detail.as_deref(), Some("404 Not Found"));
    assert_eq!(dead[0].job, record.jobs[2].job);
    assert_eq!(dead[1].state, JobState::Expired);
    assert_eq!(dead[1].status, None);
    assert_eq!(dead[1].replayed_by, None);

    let filtered = |filter: DeadLetterFilter| async move {
        let dead = store.dead_letter(filter).await.unwrap();
        dead.iter().map(|d| d.job.id).collect::<Vec<_>>()
    };
    let expired = DeadLetterFilter {
        state: Some(JobState::Expired),
        ..all.clone()
    };
    assert_eq!(filtered(expired).await, [jobs[3]]);
    let by_class = DeadLetterFilter {
        error_class: Some("http_status".to_owned()),
        ..all.clone()
    };
    assert_eq!(filtered(by_class).await, [jobs[2]]);
    let by_mapping = DeadLetterFilter {
        subscription_id: Some("sub-3".to_owned()),
        destination_id: Some("dest-1".to_owned()),
        ..all.clone()
    };
    assert_eq!(filtered(by_mapping).await, [jobs[3]]);
    let later = DeadLetterFilter {
        since: Some(now_ms() + 60_000),
        ..all.clone()
    };
    assert!(filtered(later).await.is_empty());
    let earlier = DeadLetterFilter {
        until: Some(now - 60_000),
        ..all.clone()
    };
    assert!(filtered(earlier).await.is_empty());
    let paged = DeadLetterFilter {
        after: Some(jobs[2]),
        limit: 1,
        ..all.clone()
    };
    assert_eq!(filtered(paged).await, [jobs[3]]);
    let chosen = DeadLetterFilter {
        job_ids: vec![jobs[3], jobs[0]],
        ..all.clone()
    };
    assert_eq!(filtered(chosen).await, [jobs[3]], "only dead-letter jobs");

    // A second delivery of a finished job (its lease had ended): the attempt is kept, the story
    // is not rewritten.
    store
        .complete_jobs(vec![Completion {
            job_id: jobs[1],
            attempt: Some(attempt(2, Some(200), None)),
            state: JobState::Succeeded,
            next_at: 0,
            detail: None,
        }])
        .await
        .unwrap();
    let record = store.event(event_id).await.unwrap().unwrap();
    assert_eq!(record.jobs[1].attempts.len(), 2);
    assert_eq!(record.jobs[1].transitions.len(), 2);
}

/// A replay is a new job for the same event, linked to the job it replays, due at once and
/// signalled; the replayed job leaves the default dead-letter listing. Replaying a job that is not
/// in the dead letter fails and stores nothing.
pub async fn replays_are_linked_jobs<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);
    let outcome = store
        .commit(vec![event("src", "a", T0, 1, 0)])
        .await
        .unwrap();
    let (event_id, jobs) = stored(&outcome[0]);
    let lane = "dest-0|hooks.example.test";
    let now = now_ms();
    store.claim_jobs(lane, now, now + 1_000, 10).await.unwrap();
    store
        .complete_jobs(vec![Completion {
            job_id: jobs[0],
            attempt: Some(attempt(1, Some(400), Some("http_status"))),
            state: JobState::Discarded,
            next_at: 0,
            detail: Some("400 Bad Request".to_owned()),
        }])
        .await
        .unwrap();

    let missing = store
        .replay_jobs(vec![NewReplay {
            replay_of: JobId(jobs[0].0 + 1000),
            job: job(0),
        }])
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");

    let signal = store.job_signal();
    let woken = tokio::spawn(async move { signal.notified().await });
    let mut fixed = job(0);
    fixed.body = b"{\"fixed\":true}".to_vec();
    let replayed = store
        .replay_jobs(vec![NewReplay {
            replay_of: jobs[0],
            job: fixed.clone(),
        }])
        .await
        .unwrap();
    assert_eq!(replayed.len(), 1);
    tokio::time::timeout(Duration::from_secs(5), woken)
        .await
        .expect("the job signal fires for a replay")
        .unwrap();

    let record = store.event(event_id).await.unwrap().unwrap();
    assert_eq!(record.jobs.len(), 2);
    let replay = &record.jobs[1];
    assert_eq!(replay.job.id, replayed[0]);
    assert_eq!(replay.job.replay_of, Some(jobs[0]));
    assert_eq!(replay.job.body, fixed.body);
    assert_eq!(replay.transitions[0].state, JobState::Pending);
    assert_eq!(record.jobs[0].job.replay_of, None);

    let all = DeadLetterFilter {
        limit: 100,
        ..DeadLetterFilter::default()
    };
    assert!(store.dead_letter(all.clone()).await.unwrap().is_empty());
    let with_replayed = DeadLetterFilter {
        include_replayed: true,
        ..all
    };
    let dead = store.dead_letter(with_replayed).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].replayed_by, Some(replayed[0]));

    let claimed = store
        .claim_jobs(lane, now_ms(), now_ms() + 1_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job.id, replayed[0]);
}

/// Retention removes old events with everything about them, in passes of bounded size, keeps
/// events whose delivery is not over, and leaves young events alone.
pub async fn prune_removes_old_finished_events<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);
    let old: Vec<NewEvent> = (0..5)
        .map(|n| event("src", &format!("old-{n}"), T0 + n, 1, 1))
        .collect();
    let outcomes = store.commit(old).await.unwrap();
    let pending_event = store
        .commit(vec![event("src", "old-pending", T0 + 10, 1, 0)])
        .await
        .unwrap();
    let young = store
        .commit(vec![event("src", "young", T0 + HOUR, 1, 0)])
        .await
        .unwrap();
    // Finish every job except the one of "old-pending" and the young one.
    let now = now_ms();
    let lane = "dest-0|hooks.example.test";
    let claimed = store.claim_jobs(lane, now, now + 1_000, 5).await.unwrap();
    assert_eq!(claimed.len(), 5);
    let completions = claimed
        .iter()
        .map(|due| Completion {
            job_id: due.job.id,
            attempt: Some(attempt(1, Some(200), None)),
            state: JobState::Succeeded,
            next_at: 0,
            detail: None,
        })
        .collect();
    store.complete_jobs(completions).await.unwrap();

    let cutoff = T0 + HOUR / 2;
    let first = store.prune(cutoff, 3).await.unwrap();
    assert_eq!(
        first,
        PruneOutcome {
            events: 3,
            more: true
        }
    );
    let second = store.prune(cutoff, 3).await.unwrap();
    assert_eq!(second.events, 2);
    assert!(!second.more);
    assert_eq!(store.prune(cutoff, 3).await.unwrap().events, 0);

    for outcome in &outcomes {
        let (id, _) = stored(outcome);
        assert_eq!(store.event(id).await.unwrap(), None);
    }
    assert!(
        store
            .events_by_message_id("src", "old-0")
            .await
            .unwrap()
            .is_empty()
    );
    let (kept, _) = stored(&pending_event[0]);
    assert!(
        store.event(kept).await.unwrap().is_some(),
        "delivery not over"
    );
    let (young, _) = stored(&young[0]);
    assert!(store.event(young).await.unwrap().is_some());
}

/// Many tasks committing at once: every commit is answered, durable and readable, and the writer
/// used fewer transactions than there were callers.
pub async fn concurrent_commits_are_durable_answered_and_grouped<H: Harness>() {
    const CALLERS: usize = 200;
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let start = store.stats();

    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let store = Arc::clone(&store);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let message_id = format!("m-{caller}");
            let outcome = commit_one(&*store, event("src", &message_id, T0, 1, 0)).await;
            (message_id, stored(&outcome))
        }));
    }
    let mut answered = Vec::new();
    for task in tasks {
        answered.push(task.await.unwrap());
    }

    let end = store.stats();
    let requests = end.commit_requests - start.commit_requests;
    let transactions = end.transactions - start.transactions;
    assert_eq!(requests, CALLERS as u64);
    assert!(
        transactions < requests,
        "group commit did not group: {transactions} transactions for {requests} callers"
    );
    assert_eq!(end.queued_events, 0);

    let store = dyn_store(&*store);
    for (message_id, (event_id, job_ids)) in &answered {
        let record = only_record(store, "src", message_id).await;
        assert_eq!(record.id, *event_id);
        let ids: Vec<JobId> = record.jobs.iter().map(|j| j.job.id).collect();
        assert_eq!(&ids, job_ids);
    }
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.events, counts.jobs),
        (CALLERS as u64, CALLERS as u64)
    );
}

/// Commits queued while the writer is busy all go into the next transaction.
pub async fn queued_commits_share_one_transaction<H: Harness>() {
    const CALLERS: usize = 50;
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;

    let pause = H::pause_writer(&store);
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let batch = vec![
                event("src", &format!("a-{caller}"), T0, 1, 0),
                event("src", &format!("b-{caller}"), T0, 0, 1),
            ];
            store.commit(batch).await
        }));
    }
    wait_queued(&*store, 2 * CALLERS).await;
    let before = store.stats();
    drop(pause);
    for task in tasks {
        let outcomes = task.await.unwrap().expect("commit");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, CommitOutcome::Stored { .. }))
        );
    }
    let after = store.stats();
    assert_eq!(after.transactions - before.transactions, 1);
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.events, 2 * CALLERS as u64);
}

/// A full queue refuses at once with `Overloaded` (never waits), nothing of the refused batch is
/// stored, and service resumes when the queue drains. A batch larger than the whole queue is
/// still taken when the queue is empty.
pub async fn overload_fails_fast_without_blocking<H: Harness>() {
    let harness = H::create().await;
    let options = StoreOptions {
        queue_capacity: 10,
        ..StoreOptions::default()
    };
    let store = open(&harness, options).await;

    let pause = H::pause_writer(&store);
    let mut tasks = Vec::new();
    for caller in 0..5 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let batch = vec![
                event("src", &format!("a-{caller}"), T0, 1, 0),
                event("src", &format!("b-{caller}"), T0, 1, 0),
            ];
            store.commit(batch).await
        }));
    }
    wait_queued(&*store, 10).await;

    let started = Instant::now();
    let refused = tokio::time::timeout(
        Duration::from_secs(2),
        store.commit(vec![event("src", "refused", T0, 1, 0)]),
    )
    .await
    .expect("commit blocked on a full queue");
    assert!(
        matches!(refused, Err(StoreError::Overloaded { capacity: 10 })),
        "{refused:?}"
    );
    assert!(refused.unwrap_err().is_retryable());
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(store.stats().overloaded >= 1);
    assert_eq!(store.commit(Vec::new()).await.unwrap(), Vec::new());

    drop(pause);
    for task in tasks {
        task.await.unwrap().expect("queued commit");
    }
    let store_dyn = dyn_store(&*store);
    assert!(
        store_dyn
            .events_by_message_id("src", "refused")
            .await
            .unwrap()
            .is_empty()
    );

    let big: Vec<NewEvent> = (0..15)
        .map(|n| event("src", &format!("big-{n}"), T0, 0, 0))
        .collect();
    let outcomes = store_dyn
        .commit(big)
        .await
        .expect("oversize batch on an empty queue");
    assert_eq!(outcomes.len(), 15);
    assert_eq!(store_dyn.counts().await.unwrap().events, 25);
    assert_eq!(store.stats().queued_events, 0);
}

/// Config versions start absent, increase with each save, survive reopening, and are kept to
/// the last [`crate::CONFIG_VERSIONS_KEPT`].
pub async fn config_versions_increase<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let dyn_ref = dyn_store(&*store);
    assert_eq!(dyn_ref.load_config().await.unwrap(), None);

    let first_doc = json!({"sources": [{"id": "s1", "write_keys": ["k1"]}], "destinations": []});
    let before = now_ms();
    let v1 = dyn_ref.save_config(first_doc.clone()).await.unwrap();
    let after = now_ms();
    let loaded = dyn_ref.load_config().await.unwrap().unwrap();
    assert_eq!(loaded.version, v1);
    assert_eq!(loaded.document, first_doc);
    assert!((before..=after).contains(&loaded.saved_at));

    let second_doc = json!({"sources": [], "destinations": [{"id": "d1", "z": 1, "a": 2}]});
    let v2 = dyn_ref.save_config(second_doc.clone()).await.unwrap();
    assert!(v2 > v1);
    let loaded = dyn_ref.load_config().await.unwrap().unwrap();
    assert_eq!((loaded.version, &loaded.document), (v2, &second_doc));

    dyn_ref.close().await.unwrap();
    drop(store);
    let store = open(&harness, StoreOptions::default()).await;
    let loaded = store.load_config().await.unwrap().unwrap();
    assert_eq!((loaded.version, loaded.document), (v2, second_doc));
    let v3 = store.save_config(json!({})).await.unwrap();
    assert!(v3 > v2);
    assert_eq!(store.config_versions().await.unwrap(), [v1, v2, v3]);

    // The history is bounded: the newest versions are kept, the oldest removed.
    let extra = crate::CONFIG_VERSIONS_KEPT + 5;
    let mut last = v3;
    for n in 0..extra {
        last = store.save_config(json!({"n": n})).await.unwrap();
    }
    let kept = store.config_versions().await.unwrap();
    assert_eq!(
        i64::try_from(kept.len()).unwrap(),
        crate::CONFIG_VERSIONS_KEPT
    );
    assert_eq!(kept.last(), Some(&last));
    assert!(kept.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(kept[0].0, last.0 - crate::CONFIG_VERSIONS_KEPT + 1);
    let loaded = store.load_config().await.unwrap().unwrap();
    assert_eq!(
        (loaded.version, loaded.document),
        (last, json!({"n": extra - 1}))
    );
}

/// Everything committed survives closing and dropping the store (and dropping without closing):
/// records, counts, due jobs, config, and dedupe across the reopen; new ids keep increasing.
pub async fn reopen_after_drop_keeps_everything<H: Harness>() {
    let harness = H::create().await;
    let options = StoreOptions::default();
    let store = open(&harness, options.clone()).await;

    let batch: Vec<NewEvent> = (0..20)
        .map(|n| event("src", &format!("m-{n}"), T0 + n as i64, n % 3, n % 2))
        .collect();
    let outcomes = store.commit(batch.clone()).await.unwrap();
    let duplicate = commit_one(&*store, event("src", "m-0", T0 + 5, 1, 0)).await;
    assert!(matches!(duplicate, CommitOutcome::Duplicate { .. }));
    store.save_config(json!({"v": 1})).await.unwrap();

    let mut records = Vec::new();
    for new in &batch {
        records.push(only_record(&*store, &new.source_id, &new.message_id).await);
    }
    let counts = store.counts().await.unwrap();
    let lanes = store.lanes().await.unwrap();
    let config = store.load_config().await.unwrap();
    store.close().await.unwrap();
    drop(store);

    let store = open(&harness, options.clone()).await;
    for (record, new) in records.iter().zip(&batch) {
        assert_eq!(
            &only_record(&*store, &new.source_id, &new.message_id).await,
            record
        );
    }
    assert_eq!(store.counts().await.unwrap(), counts);
    assert_eq!(store.lanes().await.unwrap(), lanes);
    assert_eq!(store.load_config().await.unwrap(), config);

    let (first_id, _) = stored(&outcomes[0]);
    let again = commit_one(&*store, event("src", "m-0", T0 + 10, 0, 0)).await;
    assert_eq!(again, CommitOutcome::Duplicate { original: first_id });
    let (last_old, _) = stored(&outcomes[19]);
    let (fresh, _) = stored(&commit_one(&*store, event("src", "fresh", T0, 1, 0)).await);
    assert!(fresh > last_old, "ids keep increasing across reopen");

    // Dropped without `close`: drop itself must flush and stop the writer.
    drop(store);
    let store = open(&harness, options).await;
    assert_eq!(only_record(&*store, "src", "fresh").await.id, fresh);
    let counts_after = store.counts().await.unwrap();
    assert_eq!(counts_after.events, counts.events + 1);
    assert_eq!(counts_after.duplicates, counts.duplicates + 1);
}

/// `close` lets every queued commit finish and be answered, then refuses writes; reads still work.
pub async fn close_finishes_queued_commits<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;

    let pause = H::pause_writer(&store);
    let mut tasks = Vec::new();
    for caller in 0..10 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let message_id = format!("m-{caller}");
            commit_one(&*store, event("src", &message_id, T0, 1, 0)).await
        }));
    }
    wait_queued(&*store, 10).await;

    let closing = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.close().await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !closing.is_finished(),
        "close returned before queued commits were written"
    );
    drop(pause);
    closing.await.unwrap().expect("close");

    for task in tasks {
        stored(&task.await.unwrap());
    }
    let refused = store.commit(vec![event("src", "late", T0, 0, 0)]).await;
    assert!(matches!(refused, Err(StoreError::Closed)), "{refused:?}");
    let refused = store.save_config(json!({})).await;
    assert!(matches!(refused, Err(StoreError::Closed)), "{refused:?}");
    store.close().await.expect("second close is a no-op");
    assert_eq!(store.counts().await.unwrap().events, 10);
    assert_eq!(only_record(&*store, "src", "m-3").await.jobs.len(), 1);
}

/// An event of the overview check: `jobs` and mapping-level `discards` of destination `ov-d`
/// (mappings `m-a`, `m-b`), plus destination-wide discards.
fn overview_event(
    message_id: &str,
    received_at: UnixMillis,
    jobs: &[(&str, &str)],
    discards: &[(&str, Option<&str>, DiscardReason)],
) -> NewEvent {
    let mut new = event("src", message_id, received_at, 0, 0);
    new.jobs = jobs
        .iter()
        .map(|(destination, mapping)| NewJob {
            destination_id: (*destination).to_owned(),
            subscription_id: (*mapping).to_owned(),
            endpoint: format!("{destination}|hooks.example.test"),
            ..job(0)
        })
        .collect();
    new.discards = discards
        .iter()
        .map(|(destination, mapping, reason)| NewDiscard {
            destination_id: (*destination).to_owned(),
            subscription_id: mapping.map(str::to_owned),
            reason: *reason,
            message: format!("{reason}"),
        })
        .collect();
    new
}

fn ended_attempt(started_at: UnixMillis, duration_ms: u64, status: u16) -> AttemptRecord {
    AttemptRecord {
        attempt: 1,
        started_at,
        duration_ms,
        status: Some(status),
        error_class: (status >= 300).then(|| "http_status".to_owned()),
        response_headers: Vec::new(),
        response_excerpt: Vec::new(),
    }
}

fn counts(
    received: u64,
    jobs: u64,
    discarded: &[(DiscardReason, u64)],
    [delivered, retried, failed_discarded, failed_expired]: [u64; 4],
) -> OverviewCounts {
    OverviewCounts {
        received,
        jobs,
        discarded: discarded.iter().copied().collect(),
        delivered,
        retried,
        failed_discarded,
        failed_expired,
    }
}

fn sum_series(overview: &Overview) -> OverviewCounts {
    let mut sum = OverviewCounts::default();
    for point in &overview.series {
        let c = &point.counts;
        sum.received += c.received;
        sum.jobs += c.jobs;
        for (reason, n) in &c.discarded {
            *sum.discarded.entry(*reason).or_default() += n;
        }
        sum.delivered += c.delivered;
        sum.retried += c.retried;
        sum.failed_discarded += c.failed_discarded;
        sum.failed_expired += c.failed_expired;
    }
    sum
}

/// The delivery overview: receptions, jobs, discards by reason (destination-wide, "no mapping
/// matched", per mapping) with at most 10 newest samples, deliveries, retries, failures with
/// samples, the awaiting-retry gauge and latency percentiles, per destination and mapping, as a
/// series whose points add up to the totals; duplicates are not counted, other destinations are
/// apart, and retention removes rollups older than 14 days.
pub async fn overview_counts_every_outcome<H: Harness>() {
    use DiscardReason::{IntegrationsFiltered, NotMatched, Schema};
    const D: &str = "ov-d";
    const MINUTE: UnixMillis = 60_000;
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);
    // Two whole minutes a little ahead: everything below happens inside them, after the jobs'
    // commits, from which latency is measured.
    let m0 = (now_ms() / MINUTE + 2) * MINUTE;
    let m1 = m0 + MINUTE;

    // Minute 0: two contacts (m-a) that m-b did not match, one event no mapping matched, one
    // the integrations object excluded, one m-a rejected (schema) and m-b turned into a job.
    let first = vec![
        overview_event(
            "ov-01",
            m0 + 1_000,
            &[(D, "m-a")],
            &[(D, Some("m-b"), NotMatched)],
        ),
        overview_event(
            "ov-02",
            m0 + 1_000,
            &[(D, "m-a")],
            &[(D, Some("m-b"), NotMatched)],
        ),
        overview_event(
            "ov-03",
            m0 + 1_000,
            &[],
            &[(D, Some("m-a"), NotMatched), (D, Some("m-b"), NotMatched)],
        ),
        overview_event("ov-04", m0 + 1_000, &[], &[(D, None, IntegrationsFiltered)]),
        overview_event(
            "ov-05",
            m0 + 1_000,
            &[(D, "m-b")],
            &[(D, Some("m-a"), Schema)],
        ),
    ];
    let outcomes = store.commit(first).await.unwrap();
    let job_of = |outcomes: &[CommitOutcome], n: usize| stored(&outcomes[n]).1[0];
    let (j1, j2, j5) = (
        job_of(&outcomes, 0),
        job_of(&outcomes, 1),
        job_of(&outcomes, 4),
    );
    // A duplicate counts nowhere.
    let again = commit_one(
        store,
        overview_event("ov-01", m0 + 2_000, &[(D, "m-a")], &[]),
    )
    .await;
    assert!(matches!(again, CommitOutcome::Duplicate { .. }));

    // Minute 1: a contact (and a job of another destination), twelve schema rejections (more
    // than the 10 samples kept), and a contact whose job will expire.
    let mut second = vec![overview_event(
        "ov-06",
        m1 + 1_000,
        &[(D, "m-a"), ("ov-other", "m-x")],
        &[(D, Some("m-b"), NotMatched)],
    )];
    for n in 7..=18 {
        second.push(overview_event(
            &format!("ov-{n:02}"),
            m1 + 2_000,
            &[],
            &[(D, Some("m-a"), Schema), (D, Some("m-b"), NotMatched)],
        ));
    }
    second.push(overview_event(
        "ov-19",
        m1 + 3_000,
        &[(D, "m-a")],
        &[(D, Some("m-b"), NotMatched)],
    ));
    let outcomes = store.commit(second).await.unwrap();
    let (j6, j_other, j19) = (
        stored(&outcomes[0]).1[0],
        stored(&outcomes[0]).1[1],
        job_of(&outcomes, 13),
    );

    let now = now_ms();
    let claimed = store
        .claim_jobs("ov-d|hooks.example.test", now, now + 60_000, 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5);
    let complete = |job_id, attempt, state, detail: Option<&str>| Completion {
        job_id,
        attempt,
        state,
        next_at: now + 3_600_000,
        detail: detail.map(str::to_owned),
    };
    store
        .complete_jobs(vec![
            // Delivered 1.2 s after reception.
            complete(
                j1,
                Some(ended_attempt(m0 + 2_000, 200, 200)),
                JobState::Succeeded,
                None,
            ),
            complete(
                j2,
                Some(ended_attempt(m0 + 3_000, 10, 500)),
                JobState::AwaitingRetry,
                Some("500"),
            ),
            complete(
                j5,
                Some(ended_attempt(m0 + 4_000, 10, 400)),
                JobState::Discarded,
                Some("400"),
            ),
            complete(
                j6,
                Some(ended_attempt(m1 + 5_000, 10, 503)),
                JobState::AwaitingRetry,
                Some("503"),
            ),
        ])
        .await
        .unwrap();
    store
        .complete_jobs(vec![
            // Still failing: awaiting retry again (the gauge does not count it twice).
            complete(
                j2,
                Some(ended_attempt(m1 + 4_000, 10, 500)),
                JobState::AwaitingRetry,
                Some("500"),
            ),
            // Delivered 30.1 s after reception, on its second attempt.
            complete(
                j6,
                Some(ended_attempt(m1 + 31_000, 100, 200)),
                JobState::Succeeded,
                None,
            ),
            complete(
                j19,
                Some(ended_attempt(m1 + 6_000, 10, 500)),
                JobState::Expired,
                Some("retry window ended"),
            ),
            complete(
                j_other,
                Some(ended_attempt(m1 + 2_000, 10, 200)),
                JobState::Succeeded,
                None,
            ),
        ])
        .await
        .unwrap();

    let query = |from, until, bucket, mapping: Option<&str>| OverviewQuery {
        destination_id: D.to_owned(),
        subscription_id: mapping.map(str::to_owned),
        from,
        until,
        bucket,
    };
    let overview = store
        .overview(query(m0, m1 + MINUTE, OverviewBucket::Minute, None))
        .await
        .unwrap();
    assert_eq!((overview.from, overview.until), (m0, m1 + MINUTE));
    let totals = &overview.totals;
    assert_eq!(
        totals.counts,
        counts(
            19,
            5,
            &[(IntegrationsFiltered, 1), (NotMatched, 1), (Schema, 13)],
            [2, 3, 1, 1]
        ),
        "destination totals"
    );
    assert_eq!(totals.counts.filtered_by_integrations(), 1);
    assert_eq!(
        totals.counts.not_matched(),
        1,
        "only ov-03 matched no mapping"
    );
    assert_eq!(totals.counts.failed(), 2);
    assert_eq!(totals.awaiting_retry, 1, "j2");
    assert_eq!(totals.discard_samples[&IntegrationsFiltered], ["ov-04"]);
    assert_eq!(totals.discard_samples[&NotMatched], ["ov-03"]);
    // Ten per minute are kept (the first ten of minute 1), and the newest minute comes first.
    let schema_samples: Vec<String> = (7..=16).rev().map(|n| format!("ov-{n:02}")).collect();
    assert_eq!(totals.discard_samples[&Schema], schema_samples);
    assert_eq!(totals.failed_samples, ["ov-19", "ov-05"]);
    // Latency runs from the job's commit to the end of the successful attempt.
    let created_at = |record: EventRecord| record.jobs[0].job.created_at;
    let j1_latency = m0 + 2_200 - created_at(only_record(store, "src", "ov-01").await);
    let j6_latency = m1 + 31_100 - created_at(only_record(store, "src", "ov-06").await);
    assert_eq!(totals.latency.count, 2);
    let (p50, p95) = (
        totals.latency.p50_ms.unwrap(),
        totals.latency.p95_ms.unwrap(),
    );
    // The histogram's estimate is within about 9% of the true value.
    let close = |estimate: u64, truth: i64| estimate.abs_diff(truth as u64) * 10 < truth as u64;
    assert!(close(p50, j1_latency), "p50 {p50} ms, true {j1_latency}");
    assert!(close(p95, j6_latency), "p95 {p95} ms, true {j6_latency}");
    assert!(p50 < p95);

    let keys: Vec<&str> = overview.mappings.keys().map(String::as_str).collect();
    assert_eq!(keys, ["m-a", "m-b"]);
    let a = &overview.mappings["m-a"];
    assert_eq!(
        a.counts,
        counts(18, 4, &[(NotMatched, 1), (Schema, 13)], [2, 3, 0, 1]),
        "m-a"
    );
    assert_eq!(a.awaiting_retry, 1);
    assert_eq!(a.discard_samples[&NotMatched], ["ov-03"]);
    assert_eq!(a.discard_samples[&Schema], schema_samples);
    assert_eq!(a.failed_samples, ["ov-19"]);
    assert_eq!(a.latency.count, 2);
    let b = &overview.mappings["m-b"];
    assert_eq!(
        b.counts,
        counts(18, 1, &[(NotMatched, 17)], [0, 0, 1, 0]),
        "m-b"
    );
    assert_eq!(b.awaiting_retry, 0);
    assert_eq!(b.failed_samples, ["ov-05"]);
    assert_eq!(b.discard_samples[&NotMatched].len(), 10);
    assert_eq!(b.latency.count, 0);
    assert_eq!(b.latency.p50_ms, None);

    // The series: one point per minute, adding up to the totals.
    let starts: Vec<UnixMillis> = overview.series.iter().map(|p| p.start).collect();
    assert_eq!(starts, [m0, m1]);
    assert_eq!(
        overview.series[0].counts,
        counts(
            5,
            3,
            &[(IntegrationsFiltered, 1), (NotMatched, 1), (Schema, 1)],
            [1, 1, 1, 0]
        ),
        "minute 0"
    );
    assert_eq!(
        overview.series[1].counts,
        counts(14, 2, &[(Schema, 12)], [1, 2, 0, 1]),
        "minute 1"
    );
    assert_eq!(sum_series(&overview), totals.counts);
    assert_eq!(overview.series[0].latency.count, 1);
    assert!(overview.series[0].latency.p50_ms < overview.series[1].latency.p50_ms);

    // Hour buckets are sums of the minutes.
    let hourly = store
        .overview(query(m0, m1 + MINUTE, OverviewBucket::Hour, None))
        .await
        .unwrap();
    let same_hour = m0 / 3_600_000 == m1 / 3_600_000;
    assert_eq!(hourly.series.len(), if same_hour { 1 } else { 2 });
    assert_eq!(hourly.series[0].start % 3_600_000, 0);
    assert_eq!(sum_series(&hourly), totals.counts);
    assert_eq!(hourly.totals, overview.totals);

    // One mapping: its totals and its own series.
    let only_a = store
        .overview(query(m0, m1 + MINUTE, OverviewBucket::Minute, Some("m-a")))
        .await
        .unwrap();
    assert_eq!(only_a.totals, *a);
    assert_eq!(only_a.mappings.len(), 1);
    assert_eq!(
        only_a.series[0].counts,
        counts(4, 2, &[(NotMatched, 1), (Schema, 1)], [1, 1, 0, 0])
    );
    assert_eq!(sum_series(&only_a), a.counts);

    // A window of minute 1 alone; the window's start is rounded down to its minute.
    let later = store
        .overview(query(
            m1 + 30_000,
            m1 + MINUTE,
            OverviewBucket::Minute,
            None,
        ))
        .await
        .unwrap();
    assert_eq!(later.from, m1);
    assert_eq!(later.totals.counts, overview.series[1].counts);
    assert_eq!(later.totals.failed_samples, ["ov-19"]);
    assert_eq!(
        later.totals.awaiting_retry, 1,
        "a gauge, not bound to the window"
    );

    // Other destinations are apart; an unknown one is empty.
    let other = store
        .overview(OverviewQuery {
            destination_id: "ov-other".to_owned(),
            ..query(m0, m1 + MINUTE, OverviewBucket::Minute, None)
        })
        .await
        .unwrap();
    assert_eq!(other.totals.counts, counts(1, 1, &[], [1, 0, 0, 0]));
    let unknown = store
        .overview(OverviewQuery {
            destination_id: "nope".to_owned(),
            ..query(m0, m1 + MINUTE, OverviewBucket::Minute, None)
        })
        .await
        .unwrap();
    assert!(unknown.totals.counts.is_empty());
    assert!(unknown.mappings.is_empty());
    assert_eq!(unknown.series.len(), 2);

    // Too many points is refused.
    let too_many = store
        .overview(query(m0 - 2 * 86_400_000, m0, OverviewBucket::Minute, None))
        .await
        .unwrap_err();
    assert!(
        matches!(too_many, StoreError::InvalidRequest { .. }),
        "{too_many}"
    );

    // Retention removes rollups older than 14 days (whatever the events' cutoff).
    let old = now - OverviewQuery::MAX_WINDOW_MS - HOUR;
    store
        .commit(vec![overview_event(
            "ov-old",
            old,
            &[],
            &[(D, None, IntegrationsFiltered)],
        )])
        .await
        .unwrap();
    let old_window = query(old - HOUR, old + HOUR, OverviewBucket::Hour, None);
    let before = store.overview(old_window.clone()).await.unwrap();
    assert_eq!(before.totals.counts.received, 1);
    store.prune(0, 10).await.unwrap();
    let after = store.overview(old_window).await.unwrap();
    assert!(after.totals.counts.is_empty(), "{:?}", after.totals);
    let kept = store
        .overview(query(m0, m1 + MINUTE, OverviewBucket::Minute, None))
        .await
        .unwrap();
    assert_eq!(kept.totals, overview.totals);
}

/// Events committed for the profiles enter the inbox in id order, others do not; a checkpoint
/// takes them out; the history walk sees every stored event.
pub async fn profile_inbox_follows_commits<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);
    let mut events: Vec<NewEvent> = (0..4)
        .map(|n| event("src", &format!("p-{n}"), T0 + n, 0, 1))
        .collect();
    for (n, event) in events.iter_mut().enumerate() {
        event.for_profiles = n != 2;
    }
    let outcomes = store.commit(events).await.unwrap();
    let ids: Vec<EventId> = outcomes.iter().map(|o| stored(o).0).collect();
    assert!(store.lead_profiles("node-a", 10_000).await.unwrap());

    let inbox = store.profile_inbox(10).await.unwrap();
    let inbox_ids: Vec<EventId> = inbox.iter().map(|e| e.id).collect();
    assert_eq!(inbox_ids, vec![ids[0], ids[1], ids[3]]);
    assert_eq!(inbox[0].source_id, "src");
    assert_eq!(inbox[0].received_at, T0);
    let record = store.event(ids[0]).await.unwrap().unwrap();
    assert_eq!(inbox[0].payload, record.payload);
    assert_eq!(store.profile_inbox(2).await.unwrap().len(), 2);

    assert_eq!(store.last_event_id().await.unwrap(), Some(ids[3]));
    let walked = store.stored_events(ids[0], 10).await.unwrap();
    let walked: Vec<EventId> = walked.iter().map(|e| e.id).collect();
    assert_eq!(walked, ids[1..].to_vec());

    let checkpoint = ProfileCheckpoint {
        owner: "node-a".to_owned(),
        consumed: vec![ids[0], ids[1]],
        worker: b"{}".to_vec(),
        ..ProfileCheckpoint::default()
    };
    store.save_profiles(checkpoint).await.unwrap();
    let left: Vec<EventId> = store
        .profile_inbox(10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, vec![ids[3]]);
}

fn profile(id: u64, identifiers: &[(&str, &str)], document: &str) -> StoredProfile {
    StoredProfile {
        id,
        identifiers: identifiers
            .iter()
            .map(|(t, v)| ((*t).to_owned(), (*v).to_owned()))
            .collect(),
        document: document.as_bytes().to_vec(),
    }
}

/// A checkpoint writes profiles, their identifiers and the worker's document together; a merge
/// (one removed, its identifiers moved to the other) reads back as one profile; everything
/// survives reopening.
pub async fn profile_checkpoints_are_atomic_and_read_back<H: Harness>() {
    let harness = H::create().await;
    {
        let store = open(&harness, StoreOptions::default()).await;
        let store = dyn_store(&*store);
        assert_eq!(store.profile_worker().await.unwrap(), None);
        assert!(store.lead_profiles("node-a", 10_000).await.unwrap());
        let first = ProfileCheckpoint {
            owner: "node-a".to_owned(),
            upserts: vec![
                profile(1, &[("user_id", "u1"), ("email", "a@x.io")], "{\"p\":1}"),
                profile(2, &[("anonymous_id", "anon-2")], "{\"p\":2}"),
            ],
            worker: b"{\"v\":1}".to_vec(),
            ..ProfileCheckpoint::default()
        };
        store.save_profiles(first).await.unwrap();
        let found = store
            .find_profile("email", "a@x.io")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, 1);
        assert_eq!(found.document, b"{\"p\":1}".to_vec());
        assert_eq!(
            found.identifiers,
            vec![
                ("email".to_owned(), "a@x.io".to_owned()),
                ("user_id".to_owned(), "u1".to_owned())
            ]
        );
        // Profile 2 merges into 1.
        let merge = ProfileCheckpoint {
            owner: "node-a".to_owned(),
            upserts: vec![profile(
                1,
                &[
                    ("user_id", "u1"),
                    ("email", "a@x.io"),
                    ("anonymous_id", "anon-2"),
                ],
                "{\"p\":12}",
            )],
            removed: vec![2],
            worker: b"{\"v\":2}".to_vec(),
            ..ProfileCheckpoint::default()
        };
        store.save_profiles(merge).await.unwrap();
    }
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);
    let merged = store
        .find_profile("anonymous_id", "anon-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(merged.id, 1);
    assert_eq!(merged.document, b"{\"p\":12}".to_vec());
    assert_eq!(store.find_profile("user_id", "nobody").await.unwrap(), None);
    let all = store.load_profiles(0, 10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, 1);
    assert_eq!(all[0].identifiers.len(), 3);
    assert_eq!(
        store.load_profiles(1, 10).await.unwrap().len(),
        1,
        "from is inclusive"
    );
    assert!(store.load_profiles(2, 10).await.unwrap().is_empty());
    assert_eq!(
        store.profile_worker().await.unwrap(),
        Some(b"{\"v\":2}".to_vec())
    );
}

/// The lead is kept by its owner and refused to another while the lease runs; a checkpoint by
/// an owner that does not lead writes nothing. (An embedded engine has one process: there,
/// every owner leads.)
pub async fn profile_lead_is_held_by_one_owner<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);
    assert!(store.lead_profiles("node-a", 60_000).await.unwrap());
    assert!(store.lead_profiles("node-a", 60_000).await.unwrap());
    if !store.shares_lanes() {
        return;
    }
    assert!(!store.lead_profiles("node-b", 60_000).await.unwrap());
    let stray = ProfileCheckpoint {
        owner: "node-b".to_owned(),
        upserts: vec![profile(7, &[("user_id", "u7")], "{}")],
        worker: b"{}".to_vec(),
        ..ProfileCheckpoint::default()
    };
    let refused = store.save_profiles(stray).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound { .. })),
        "{refused:?}"
    );
    assert_eq!(store.find_profile("user_id", "u7").await.unwrap(), None);
    // A lease that ran out passes to the next who asks.
    assert!(store.lead_profiles("node-a", -1).await.unwrap());
    assert!(store.lead_profiles("node-b", 60_000).await.unwrap());
    assert!(!store.lead_profiles("node-a", 60_000).await.unwrap());
}

/// Regulations: the secret is written once, regulations are listed newest first, a finished
/// one loses its request and changes the suppression list in the same write.
pub async fn regulations_are_kept_and_drive_the_suppression_list<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);
    let secret = store.privacy_secret(vec![1; 32]).await.unwrap();
    assert_eq!(secret, vec![1; 32]);
    assert_eq!(
        store.privacy_secret(vec![2; 32]).await.unwrap(),
        secret,
        "the first secret stays"
    );

    let new = |kind: &str, at: UnixMillis| NewRegulation {
        kind: kind.to_owned(),
        created_at: at,
        record: json!({"identifiers": [{"type": "email", "hash": format!("h-{at}")}]}),
        request: json!({"identifiers": [{"type": "email", "value": "a@example.test"}]}),
    };
    let first = store
        .create_regulation(new("SUPPRESS_WITH_DELETE", T0))
        .await
        .unwrap();
    let second = store
        .create_regulation(new("UNSUPPRESS", T0 + 1))
        .await
        .unwrap();
    assert!(second.id > first.id);
    assert_eq!(first.status, RegulationStatus::Initialized);
    assert_eq!(store.regulation(first.id).await.unwrap().unwrap(), first);
    assert!(store.regulation(second.id + 100).await.unwrap().is_none());
    let listed: Vec<i64> = store
        .regulations(10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, [second.id, first.id], "newest first");
    assert_eq!(store.regulations(1).await.unwrap().len(), 1);
    let pending: Vec<i64> = store
        .pending_regulations()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(pending, [first.id, second.id], "oldest first");

    let update = |id, status, suppress: &[&str], unsuppress: &[&str]| RegulationUpdate {
        id,
        status,
        finished_at: status.is_done().then_some(T0 + 10),
        record: json!({"events_deleted": 3}),
        suppress: suppress.iter().map(|h| (*h).to_owned()).collect(),
        unsuppress: unsuppress.iter().map(|h| (*h).to_owned()).collect(),
    };
    store
        .update_regulation(update(first.id, RegulationStatus::Running, &[], &[]))
        .await
        .unwrap();
    let running = store.regulation(first.id).await.unwrap().unwrap();
    assert_eq!(running.status, RegulationStatus::Running);
    assert!(running.request.is_some(), "kept while running");
    store
        .update_regulation(update(
            first.id,
            RegulationStatus::Finished,
            &["h-a", "h-b"],
            &[],
        ))
        .await
        .unwrap();
    let finished = store.regulation(first.id).await.unwrap().unwrap();
    assert_eq!(finished.status, RegulationStatus::Finished);
    assert_eq!(finished.finished_at, Some(T0 + 10));
    assert_eq!(finished.record, json!({"events_deleted": 3}));
    assert_eq!(
        finished.request, None,
        "the identifiers in clear are erased"
    );
    let list = store.suppressions().await.unwrap();
    let hashes: Vec<(&str, i64)> = list
        .iter()
        .map(|s| (s.hash.as_str(), s.regulation_id))
        .collect();
    assert_eq!(hashes, [("h-a", first.id), ("h-b", first.id)]);
    let pending = store.pending_regulations().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, second.id);

    store
        .update_regulation(update(
            second.id,
            RegulationStatus::Finished,
            &[],
            &["h-a", "h-unknown"],
        ))
        .await
        .unwrap();
    let hashes = |list: Vec<crate::Suppression>| -> Vec<String> {
        list.into_iter().map(|s| s.hash).collect()
    };
    assert_eq!(hashes(store.suppressions().await.unwrap()), ["h-b"]);
    assert!(store.pending_regulations().await.unwrap().is_empty());
    let err = store
        .update_regulation(update(
            second.id + 100,
            RegulationStatus::Failed,
            &["x"],
            &[],
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert_eq!(
        hashes(store.suppressions().await.unwrap()),
        ["h-b"],
        "nothing written"
    );
}

/// Deleting events removes their duplicates, jobs (queued ones cancelled), transitions,
/// attempts, discards, dead-letter rows and inbox entries, and nothing of other events.
pub async fn deleted_events_take_everything_recorded_about_them<H: Harness>() {
    let harness = H::create().await;
    let store = open(&harness, StoreOptions::default()).await;
    let store = dyn_store(&*store);
    let mut doomed = event("src", "doomed", T0, 3, 1);
    doomed.for_profiles = true;
    let mut kept = event("src", "kept", T0, 2, 1);
    kept.for_profiles = true;
    let outcomes = store.commit(vec![doomed, kept]).await.unwrap();
    let (doomed_id, doomed_jobs) = stored(&outcomes[0]);
    let (kept_id, kept_jobs) = stored(&outcomes[1]);
    let duplicate = commit_one(store, event("src", "doomed", T0 + 1, 0, 0)).await;
    assert!(matches!(duplicate, CommitOutcome::Duplicate { .. }));

    // On the lane of dest-0: a doomed job and a kept one dead-lettered, a doomed one awaiting a
    // retry; the doomed event's dest-1 job stays pending.
    let now = now_ms();
    let claimed = store
        .claim_jobs("dest-0|hooks.example.test", now, now + 1_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let completion = |job_id: JobId, state: JobState| Completion {
        job_id,
        attempt: Some(attempt(1, Some(503), Some("http_status"))),
        state,
        next_at: if state == JobState::AwaitingRetry {
            now + HOUR
        } else {
            0
        },
        detail: Some("503 Service Unavailable".to_owned()),
    };
    store
        .complete_jobs(vec![
            completion(doomed_jobs[0], JobState::Discarded),
            completion(doomed_jobs[2], JobState::AwaitingRetry),
            completion(kept_jobs[0], JobState::Discarded),
        ])
        .await
        .unwrap();
    let all = DeadLetterFilter {
        limit: 100,
        ..DeadLetterFilter::default()
    };
    assert_eq!(store.dead_letter(all.clone()).await.unwrap().len(), 2);
    let awaiting = || async {
        store
            .overview(OverviewQuery {
                destination_id: "dest-0".to_owned(),
                subscription_id: None,
                from: now - HOUR,
                until: now + HOUR,
                bucket: OverviewBucket::Hour,
            })
            .await
            .unwrap()
            .totals
            .awaiting_retry
    };
    assert_eq!(awaiting().await, 1);

    let deleted = store
        .delete_events(vec![doomed_id, EventId(doomed_id.0 + 1_000)])
        .await
        .unwrap();
    assert_eq!(deleted.events, 1);
    assert_eq!(deleted.jobs, 3);
    assert_eq!(
        deleted.jobs_cancelled, 2,
        "the pending job and the one awaiting a retry"
    );
    assert_eq!(awaiting().await, 0, "the cancelled retry leaves the gauge");
    assert!(store.event(doomed_id).await.unwrap().is_none());
    assert!(
        store
            .events_by_message_id("src", "doomed")
            .await
            .unwrap()
            .is_empty()
    );
    let dead: Vec<JobId> = store
        .dead_letter(all)
        .await
        .unwrap()
        .iter()
        .map(|d| d.job.id)
        .collect();
    assert!(dead.iter().all(|id| !doomed_jobs.contains(id)), "{dead:?}");
    assert_eq!(dead.len(), 1);
    let now = now_ms();
    let left = store
        .claim_jobs("dest-1|hooks.example.test", now, now + 1_000, 10)
        .await
        .unwrap();
    let left: Vec<JobId> = left.iter().map(|due| due.job.id).collect();
    assert_eq!(left.len(), 1, "only the kept event's job is queued");
    assert!(!doomed_jobs.contains(&left[0]));
    let inbox: Vec<EventId> = store
        .profile_inbox(10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(inbox, [kept_id]);
    let record = store.event(kept_id).await.unwrap().unwrap();
    assert_eq!((record.jobs.len(), record.discards.len()), (2, 1));
    assert_eq!(
        store.delete_events(vec![doomed_id]).await.unwrap(),
        crate::DeletedEvents::default(),
        "deleting again finds nothing"
    );
}
