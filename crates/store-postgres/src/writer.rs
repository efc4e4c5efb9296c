//! Group commit: one task per open store takes every commit request waiting in its queue, writes
//! them in one PostgreSQL transaction, then answers every caller. Admission is bounded in events
//! and fails fast, exactly as in the embedded engine, so that both engines share one observable
//! contract (overload, grouping, graceful close). PostgreSQL would accept concurrent writers, but
//! one transaction per group also saves a WAL flush per request.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use junction_store::{
    Admission, CommitOutcome, ConfigVersion, Counts, JobSignal, JobState, NewEvent, StoreError,
    StoreStats, UnixMillis, WakeUp,
};
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::generations::{self, Sealed};
use crate::ingest;
use crate::rollup::Rollup;
use crate::{JOBS_CHANNEL, encode_headers, now_ms};

/// The answer to one commit request.
type CommitReply = oneshot::Sender<Result<Vec<CommitOutcome>, StoreError>>;
/// The answer to one config save.
type ConfigReply = oneshot::Sender<Result<ConfigVersion, StoreError>>;

enum Request {
    Write(Write),
    Shutdown,
}

enum Write {
    Commit {
        events: Vec<NewEvent>,
        reply: CommitReply,
    },
    SaveConfig {
        document: String,
        reply: ConfigReply,
    },
}

/// State shared by callers and the writer task.
pub(crate) struct Shared {
    admission: Admission,
    pub(crate) closed: AtomicBool,
    commit_requests: AtomicU64,
    transactions: AtomicU64,
    pauses: Mutex<usize>,
    resumed: Notify,
    /// Where the partitions created so far end (an event id; see `generations.rs`).
    partitions_until: AtomicI64,
    /// The newest event id this writer has stored (or the newest issued when it started).
    newest_event: AtomicI64,
    /// Whether a background task is creating generations now.
    extending: AtomicBool,
    /// The generations seen sealed, which bound dedupe lookups (refreshed with every extension).
    sealed: Mutex<Vec<Sealed>>,
}

impl Shared {
    fn paused(&self) -> bool {
        *self.pauses.lock().unwrap_or_else(PoisonError::into_inner) > 0
    }

    async fn wait_while_paused(&self) {
        loop {
            let resumed = self.resumed.notified();
            if !self.paused() {
                return;
            }
            // A bounded wait as well, in case a resume raced the registration above.
            let _ = tokio::time::timeout(Duration::from_millis(20), resumed).await;
        }
    }
}

/// Keeps the writer from starting a transaction until dropped (see
/// [`crate::PostgresStore::pause_writer`]).
#[must_use = "the writer resumes as soon as the guard is dropped"]
pub struct WriterPause {
    shared: Arc<Shared>,
}

impl Drop for WriterPause {
    fn drop(&mut self) {
        let mut pauses = self
            .shared
            .pauses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *pauses = pauses.saturating_sub(1);
        self.shared.resumed.notify_waiters();
    }
}

/// Settings the writer needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriterSettings {
    pub(crate) dedupe_window_ms: i64,
    pub(crate) max_group_events: usize,
    /// Event ids per generation (partition).
    pub(crate) generation_events: i64,
}

/// The generations as `open` found them.
pub(crate) struct Partitions {
    /// Where the partitions created so far end (an event id).
    pub(crate) until: i64,
    /// The newest event id issued so far.
    pub(crate) newest_event: i64,
    /// The generations seen sealed.
    pub(crate) sealed: Vec<Sealed>,
}

/// The callers' side of the writer.
pub(crate) struct Writer {
    sender: mpsc::UnboundedSender<Request>,
    pub(crate) shared: Arc<Shared>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer task with what `open` found of the generations.
    pub(crate) fn start(
        pool: PgPool,
        settings: WriterSettings,
        capacity: usize,
        signal: Arc<JobSignal>,
        partitions: Partitions,
    ) -> Writer {
        let shared = Arc::new(Shared {
            admission: Admission::new(capacity),
            closed: AtomicBool::new(false),
            commit_requests: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            pauses: Mutex::new(0),
            resumed: Notify::new(),
            partitions_until: AtomicI64::new(partitions.until),
            newest_event: AtomicI64::new(partitions.newest_event),
            extending: AtomicBool::new(false),
            sealed: Mutex::new(partitions.sealed),
        });
        let (sender, receiver) = mpsc::unbounded_channel();
        let task_shared = Arc::clone(&shared);
        let task = tokio::spawn(run(pool, receiver, task_shared, settings, signal));
        Writer {
            sender,
            shared,
            task: tokio::sync::Mutex::new(Some(task)),
        }
    }

    /// Enqueues a commit; fails at once when closed or full.
    pub(crate) fn submit_commit(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<oneshot::Receiver<Result<Vec<CommitOutcome>, StoreError>>, StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let count = events.len();
        self.shared.admission.admit(count)?;
        let (reply, answer) = oneshot::channel();
        if self
            .sender
            .send(Request::Write(Write::Commit { events, reply }))
            .is_err()
        {
            self.shared.admission.release(count);
            return Err(StoreError::Closed);
        }
        Ok(answer)
    }

    /// Enqueues a config save; fails at once when closed.
    pub(crate) fn submit_config(
        &self,
        document: String,
    ) -> Result<oneshot::Receiver<Result<ConfigVersion, StoreError>>, StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Request::Write(Write::SaveConfig { document, reply }))
            .map_err(|_| StoreError::Closed)?;
        Ok(answer)
    }

    /// Live counters.
    pub(crate) fn stats(&self) -> StoreStats {
        StoreStats {
            commit_requests: self.shared.commit_requests.load(Ordering::Relaxed),
            transactions: self.shared.transactions.load(Ordering::Relaxed),
            queued_events: self.shared.admission.queued(),
            overloaded: self.shared.admission.overloaded(),
        }
    }

    /// See [`crate::PostgresStore::pause_writer`].
    pub(crate) fn pause(&self) -> WriterPause {
        *self
            .shared
            .pauses
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
        WriterPause {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Refuses new requests, lets the task finish what is queued, and waits for it. Calling it
    /// again does nothing.
    pub(crate) async fn shutdown(&self) -> Result<(), StoreError> {
        self.shared.closed.store(true, Ordering::Release);
        let Some(task) = self.task.lock().await.take() else {
            return Ok(());
        };
        // Queued after everything admitted so far, so all of it is written first. A send error
        // means the task is already gone; awaiting it is still right.
        let _ = self.sender.send(Request::Shutdown);
        task.await
            .map_err(|join| StoreError::Backend(Box::new(join)))
    }
}

/// The writer task: group, write, answer; until shut down or every sender is gone.
async fn run(
    pool: PgPool,
    mut receiver: mpsc::UnboundedReceiver<Request>,
    shared: Arc<Shared>,
    settings: WriterSettings,
    signal: Arc<JobSignal>,
) {
    let mut stopping = false;
    while !stopping {
        let Some(first) = receiver.recv().await else {
            break;
        };
        shared.wait_while_paused().await;
        let mut group = Group::default();
        stopping |= group.push(first);
        while group.events < settings.max_group_events {
            match receiver.try_recv() {
                Ok(request) => stopping |= group.push(request),
                Err(_) => break,
            }
        }
        if stopping {
            while let Ok(request) = receiver.try_recv() {
                group.push(request);
            }
        }
        make_room(&pool, &shared, settings, group.events).await;
        if let Some(newest) = write_group(&pool, group, &shared, settings, &signal).await {
            shared.newest_event.fetch_max(newest, Ordering::AcqRel);
            keep_ahead(&pool, &shared, settings);
        }
    }
}

/// Once the newest event id comes within a generation of the partitions' end, creates the next
/// generations in the background (a few hundred milliseconds of DDL, kept off the commit path).
fn keep_ahead(pool: &PgPool, shared: &Arc<Shared>, settings: WriterSettings) {
    let size = settings.generation_events;
    let newest = shared.newest_event.load(Ordering::Acquire);
    if newest.saturating_add(size) < shared.partitions_until.load(Ordering::Acquire)
        || shared.extending.swap(true, Ordering::AcqRel)
    {
        return;
    }
    let (pool, shared) = (pool.clone(), Arc::clone(shared));
    tokio::spawn(async move {
        extend(&pool, &shared, settings, newest).await;
        shared.extending.store(false, Ordering::Release);
    });
}

/// Before a group whose ids might not fit in the partitions created so far (the background
/// task fell behind, or the group is larger than a generation), creates them first. With several
/// nodes drawing ids this node's view can lag; [`write_covered`] catches what it misses.
async fn make_room(pool: &PgPool, shared: &Shared, settings: WriterSettings, events: usize) {
    let events = i64::try_from(events).unwrap_or(i64::MAX);
    let last = shared
        .newest_event
        .load(Ordering::Acquire)
        .saturating_add(events);
    if last < shared.partitions_until.load(Ordering::Acquire) {
        return;
    }
    extend(pool, shared, settings, last).await;
}

/// Creates generations until two of them lie beyond event id `from`.
async fn extend(pool: &PgPool, shared: &Shared, settings: WriterSettings, from: i64) {
    let size = settings.generation_events;
    let upto = from.saturating_add(size.saturating_mul(2));
    match generations::ensure(pool, size, upto).await {
        Ok(until) => {
            shared.partitions_until.fetch_max(until, Ordering::AcqRel);
        }
        Err(err) => tracing::warn!(
            error = %StoreError::from(err),
            "cannot create the next generations of partitions"
        ),
    }
    match generations::sealed(pool).await {
        Ok(sealed) => *shared.sealed.lock().unwrap_or_else(PoisonError::into_inner) = sealed,
        Err(err) => tracing::warn!(error = %StoreError::from(err), "cannot read the generations"),
    }
}

#[derive(Default)]
struct Group {
    writes: Vec<Write>,
    events: usize,
}

impl Group {
    fn push(&mut self, request: Request) -> bool {
        match request {
            Request::Shutdown => true,
            Request::Write(write) => {
                if let Write::Commit { events, .. } = &write {
                    self.events += events.len();
                }
                self.writes.push(write);
                false
            }
        }
    }
}

enum Answer {
    Commit(Vec<CommitOutcome>),
    Config(ConfigVersion),
}

/// Writes a group in one transaction and answers every caller; if it fails, each write is
/// retried alone so that one bad request fails alone. Returns the newest event id stored.
async fn write_group(
    pool: &PgPool,
    group: Group,
    shared: &Shared,
    settings: WriterSettings,
    signal: &JobSignal,
) -> Option<i64> {
    if group.writes.is_empty() {
        return None;
    }
    let commit_requests = group
        .writes
        .iter()
        .filter(|w| matches!(w, Write::Commit { .. }))
        .count();
    let mut wake_up = WakeUp::None;
    for write in &group.writes {
        if let Write::Commit { events, .. } = write {
            wake_up.commit(events);
        }
    }
    let mut transactions = 0;
    let mut answered = Vec::with_capacity(group.writes.len());
    match write_covered(pool, &group.writes, shared, settings).await {
        Ok(answers) => {
            transactions += 1;
            answered.extend(group.writes.into_iter().zip(answers.into_iter().map(Ok)));
        }
        Err(_) => {
            for write in group.writes {
                let answer =
                    match write_covered(pool, std::slice::from_ref(&write), shared, settings).await
                    {
                        Ok(mut answers) => {
                            transactions += 1;
                            answers.pop().ok_or_else(mismatch)
                        }
                        Err(err) => Err(StoreError::from(err)),
                    };
                answered.push((write, answer));
            }
        }
    }
    shared
        .transactions
        .fetch_add(transactions, Ordering::Relaxed);
    shared
        .commit_requests
        .fetch_add(commit_requests as u64, Ordering::Relaxed);
    shared.admission.release(group.events);
    if transactions > 0 {
        // This node's engine at once; other nodes through the NOTIFY sent with the transaction.
        wake_up.send(signal, now_ms());
    }
    let newest = answered
        .iter()
        .filter_map(|(_, answer)| match answer {
            Ok(Answer::Commit(outcomes)) => outcomes
                .iter()
                .filter_map(|outcome| match outcome {
                    CommitOutcome::Stored { event_id, .. } => Some(event_id.0),
                    CommitOutcome::Duplicate { .. } => None,
                })
                .max(),
            _ => None,
        })
        .max();
    for (write, answer) in answered {
        match write {
            Write::Commit { reply, .. } => {
                let _ = reply.send(answer.and_then(|answer| match answer {
                    Answer::Commit(outcomes) => Ok(outcomes),
                    Answer::Config(_) => Err(mismatch()),
                }));
            }
            Write::SaveConfig { reply, .. } => {
                let _ = reply.send(answer.and_then(|answer| match answer {
                    Answer::Config(version) => Ok(version),
                    Answer::Commit(_) => Err(mismatch()),
                }));
            }
        }
    }
    newest
}

fn mismatch() -> StoreError {
    StoreError::Backend("the writer answered a request with another kind of answer".into())
}

/// [`write_transaction`], with the safety net that keeps an insert from failing for want of a
/// partition: when the ids drawn outran the partitions (a burst on another node, or a group
/// larger than a generation), the missing generations are created and the writes retried.
async fn write_covered(
    pool: &PgPool,
    writes: &[Write],
    shared: &Shared,
    settings: WriterSettings,
) -> Result<Vec<Answer>, Error> {
    let events: usize = writes
        .iter()
        .map(|write| match write {
            Write::Commit { events, .. } => events.len(),
            Write::SaveConfig { .. } => 0,
        })
        .sum();
    let mut tries = 0;
    loop {
        let sealed = shared
            .sealed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match write_transaction(pool, writes, settings, &sealed).await {
            Err(Error::Sql(err)) if tries < 3 && is_missing_partition(&err) => {
                tries += 1;
                let size = settings.generation_events;
                let mut conn = pool.acquire().await?;
                let next = generations::next_event_id(&mut conn).await?;
                drop(conn);
                let wanted = i64::try_from(events).unwrap_or(i64::MAX);
                let upto = next
                    .saturating_add(wanted)
                    .saturating_add(size.saturating_mul(2));
                let until = generations::ensure(pool, size, upto).await?;
                shared.partitions_until.fetch_max(until, Ordering::AcqRel);
                tracing::info!(until, "ids outran the partitions: created more and retried");
            }
            other => return other,
        }
    }
}

/// The error of an insert whose partition key falls in no partition.
fn is_missing_partition(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23514") && db.message().starts_with("no partition of"))
}

async fn write_transaction(
    pool: &PgPool,
    writes: &[Write],
    settings: WriterSettings,
    sealed: &[Sealed],
) -> Result<Vec<Answer>, Error> {
    let now = now_ms();
    let mut tx = pool.begin().await?;
    let mut answers = Vec::with_capacity(writes.len());
    let mut totals = Counts::default();
    let mut rollup = Rollup::default();
    if settings.dedupe_window_ms > 0 {
        lock_message_keys(&mut tx, writes).await?;
    }
    // Every request's events in one batch: a fixed number of statements for the whole group.
    let requests: Vec<&[NewEvent]> = writes
        .iter()
        .filter_map(|write| match write {
            Write::Commit { events, .. } => Some(events.as_slice()),
            Write::SaveConfig { .. } => None,
        })
        .collect();
    let mut wake_up = WakeUp::None;
    for events in &requests {
        wake_up.commit(*events);
    }
    let mut outcomes = ingest::commit_group(
        &mut tx,
        &requests,
        now,
        settings.dedupe_window_ms,
        sealed,
        &mut totals,
        &mut rollup,
    )
    .await?
    .into_iter();
    for write in writes {
        answers.push(match write {
            Write::Commit { .. } => Answer::Commit(outcomes.next().unwrap_or_default()),
            Write::SaveConfig { document, .. } => {
                let version: i64 = sqlx::query(
                    "INSERT INTO config_versions (saved_at, document) VALUES ($1, $2)
                     RETURNING version",
                )
                .bind(now)
                .bind(document)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
                sqlx::query("DELETE FROM config_versions WHERE version <= $1")
                    .bind(version - junction_store::CONFIG_VERSIONS_KEPT)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(crate::CONFIG_CHANNEL)
                    .bind(version.to_string())
                    .execute(&mut *tx)
                    .await?;
                Answer::Config(ConfigVersion(version))
            }
        });
    }
    let shard = crate::rollup::shard();
    rollup.flush(&mut tx, shard).await?;
    let as_sql = |total: u64| i64::try_from(total).unwrap_or(i64::MAX);
    if totals != Counts::default() {
        // One of a few rows, summed by `counts` (see migration 6): a single row would make every
        // node's commits wait for each other's.
        sqlx::query(
            "INSERT INTO counters AS c (id, events, duplicates, jobs, discards)
             VALUES ($5, $1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET
                 events = c.events + excluded.events, duplicates = c.duplicates + excluded.duplicates,
                 jobs = c.jobs + excluded.jobs, discards = c.discards + excluded.discards",
        )
        .bind(as_sql(totals.events))
        .bind(as_sql(totals.duplicates))
        .bind(as_sql(totals.jobs))
        .bind(as_sql(totals.discards))
        .bind(i32::from(shard) + 1)
        .execute(&mut *tx)
        .await?;
    }
    if let WakeUp::Lanes(lanes) = &wake_up {
        // Delivered to every listening node when (and only if) the transaction commits; naming
        // the lanes spares each node's dispatcher a listing of every lane (`notice.rs`).
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(JOBS_CHANNEL)
            .bind(crate::notice::due(lanes, now))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(answers)
}

/// Takes a transaction-scoped advisory lock on every (source, `messageId`) of the group, in key
/// order (so that two nodes' groups cannot deadlock), in one statement. A node committing the same
/// message concurrently waits until this transaction ends, and its lookup, a later statement,
/// then sees this one's event: dedupe is exact across nodes. (The lookup must not share the
/// locking statement: a statement's snapshot predates the wait.)
async fn lock_message_keys(conn: &mut PgConnection, writes: &[Write]) -> Result<(), Error> {
    let (mut sources, mut messages) = (Vec::new(), Vec::new());
    for write in writes {
        if let Write::Commit { events, .. } = write {
            for event in events {
                sources.push(event.source_id.as_str());
                messages.push(event.message_id.as_str());
            }
        }
    }
    if sources.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock(key) FROM (
             SELECT DISTINCT hashtextextended(s || chr(31) || m, 0) AS key
             FROM unnest($1::text[], $2::text[]) AS t (s, m)
             ORDER BY key
         ) AS keys",
    )
    .bind(sources)
    .bind(messages)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts a job with its initial `pending` transition and its queue entry, in one statement.
pub(crate) async fn insert_job(
    conn: &mut PgConnection,
    event_id: i64,
    job: &junction_store::NewJob,
    now: UnixMillis,
    replay_of: Option<i64>,
    detail: Option<String>,
) -> Result<i64, Error> {
    let headers = encode_headers(&job.headers)?;
    let id: i64 = sqlx::query(
        "WITH job AS (
             INSERT INTO jobs (event_id, destination_id, subscription_id, endpoint, method, url,
                               headers, body, created_at, replay_of)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             RETURNING id, endpoint, created_at
         ), transition AS (
             INSERT INTO job_transitions (job_id, seq, state, at, next_at, attempt, detail,
                                          event_id)
             SELECT id, 0, $11, created_at, created_at, 0, $12, $1 FROM job
         )
         INSERT INTO job_queue (job_id, endpoint, next_at, attempt, last_seq, event_id)
         SELECT id, endpoint, created_at, 0, 0, $1 FROM job
         RETURNING job_id",
    )
    .bind(event_id)
    .bind(&job.destination_id)
    .bind(&job.subscription_id)
    .bind(&job.endpoint)
    .bind(&job.method)
    .bind(job.url.to_stored().as_ref())
    .bind(headers)
    .bind(&job.body)
    .bind(now)
    .bind(replay_of)
    .bind(JobState::Pending.as_str())
    .bind(detail)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    Ok(id)
}
