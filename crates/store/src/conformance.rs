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
    CommitOutcome, Counts, DiscardReason, DiscardRecord, EventId, EventRecord, JobId, JobState,
    NewDiscard, NewEvent, NewJob, Store, StoreError, StoreOptions, UnixMillis,
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
            due_jobs_are_ordered_and_limited,
            concurrent_commits_are_durable_answered_and_grouped,
            queued_commits_share_one_transaction,
            overload_fails_fast_without_blocking,
            config_versions_increase,
            reopen_after_drop_keeps_everything,
            close_finishes_queued_commits,
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
/// included) and a body that is not UTF-8, to prove the store keeps both exactly.
fn job(n: usize) -> NewJob {
    NewJob {
        destination_id: format!("dest-{}", n % 2),
        subscription_id: format!("sub-{n}"),
        endpoint: format!("dest-{}|hooks.example.test", n % 2),
        method: "POST".to_owned(),
        url: format!("https://hooks.example.test/v1/segment/token-{n}?q=ü"),
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

/// Due jobs come earliest first, then by id, limited, with their exact requests; none before
/// their time.
pub async fn due_jobs_are_ordered_and_limited<H: Harness>() {
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
            event("src", "b", T0, 1, 1),
            event("src", "c", T0, 0, 1),
        ])
        .await
        .unwrap();
    let mut expected: Vec<JobId> = stored(&first[0]).1;
    expected.extend(stored(&second[0]).1);

    let due = store.due_jobs(i64::MAX, 100).await.unwrap();
    let ids: Vec<JobId> = due.iter().map(|d| d.job.id).collect();
    assert_eq!(ids, expected);
    assert!(due.windows(2).all(|w| w[0].next_at <= w[1].next_at));
    for due_job in &due {
        assert_eq!(due_job.attempt, 0);
        assert_eq!(due_job.next_at, due_job.job.created_at);
        let record = store.event(due_job.job.event_id).await.unwrap().unwrap();
        let stored_job = record
            .jobs
            .iter()
            .find(|j| j.job.id == due_job.job.id)
            .unwrap();
        assert_eq!(stored_job.job, due_job.job);
    }

    let limited = store.due_jobs(i64::MAX, 2).await.unwrap();
    let limited_ids: Vec<JobId> = limited.iter().map(|d| d.job.id).collect();
    assert_eq!(limited_ids, expected[..2]);
    assert!(store.due_jobs(before - 1, 100).await.unwrap().is_empty());
    assert!(store.due_jobs(i64::MAX, 0).await.unwrap().is_empty());
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

/// Config versions start absent, increase with each save, and survive reopening.
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
    let due = store.due_jobs(i64::MAX, 1_000).await.unwrap();
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
    assert_eq!(store.due_jobs(i64::MAX, 1_000).await.unwrap(), due);
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
