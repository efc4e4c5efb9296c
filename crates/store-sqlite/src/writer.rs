//! Group commit: the one writer thread that owns the read-write connection. Callers enqueue
//! requests (admission is bounded in events and fails fast); the thread takes whatever is waiting
//! (up to a cap), writes it all in one durable transaction, then answers every caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;

use junction_store::{
    Admission, CONFIG_VERSIONS_KEPT, CommitOutcome, ConfigVersion, Counts, EventId, JobId,
    JobSignal, JobState, NewEvent, StoreError, StoreStats, UnixMillis, WakeUp,
};
use rusqlite::{CachedStatement, Connection};
use tokio::sync::oneshot;

use crate::delivery::{DeliveryAnswer, DeliveryWrite};
use crate::error::Error;
use crate::model::{dedupe_key, encode_headers, now_ms};
use crate::privacy::{PrivacyAnswer, PrivacyWrite};
use crate::recent::RecentKeys;
use crate::rollup::Rollup;
use junction_store::ProfileCheckpoint;

/// The answer to one commit request, with the request's events handed back: the caller drops
/// them, so that freeing thousands of payloads, bodies and strings happens on its thread rather
/// than on the single writer's, which is the ingestion bottleneck.
pub(crate) type CommitAnswer = (Result<Vec<CommitOutcome>, StoreError>, Vec<NewEvent>);
/// The answer channel of one commit request.
pub(crate) type CommitReply = oneshot::Sender<CommitAnswer>;
/// The answer channel of one config save.
pub(crate) type ConfigReply = oneshot::Sender<Result<ConfigVersion, StoreError>>;
/// The answer channel of one profile checkpoint.
pub(crate) type ProfilesReply = oneshot::Sender<Result<(), StoreError>>;
/// The answer channel of one privacy write.
pub(crate) type PrivacyReply = oneshot::Sender<Result<PrivacyAnswer, StoreError>>;
/// The answer channel of one delivery write.
pub(crate) type DeliveryReply = oneshot::Sender<Result<DeliveryAnswer, StoreError>>;

/// What the writer thread is asked to do.
enum Request {
    /// A write to put in the next transaction.
    Write(Write),
    /// Finish what is queued, then stop.
    Shutdown,
}

/// One caller's write.
enum Write {
    /// Commit these events (admitted: counted in `queued_events`).
    Commit {
        events: Vec<NewEvent>,
        reply: CommitReply,
    },
    /// Save a configuration document (JSON text). Not counted against the queue capacity: saves
    /// are rare and an operator's save should not be refused because ingestion is busy.
    SaveConfig {
        document: String,
        reply: ConfigReply,
    },
    /// A delivery write (claim, completion, replay, retention). Not counted against the queue
    /// capacity either: refusing them would stall delivery, and their size is bounded by the
    /// engine (lane buffers, completion batches).
    Delivery {
        write: DeliveryWrite,
        reply: DeliveryReply,
    },
    /// A step of the profile worker. Not counted either: the worker waits for each answer, so
    /// at most one is queued.
    Profiles {
        checkpoint: Box<ProfileCheckpoint>,
        reply: ProfilesReply,
    },
    /// A regulation's write or an event deletion (rare, operator-driven). Not counted either.
    Privacy {
        write: Box<PrivacyWrite>,
        reply: PrivacyReply,
    },
}

/// Settings the writer thread needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriterSettings {
    /// The dedupe window in milliseconds; 0 turns dedupe off.
    pub(crate) dedupe_window_ms: i64,
    /// The most events taken into one transaction (whole requests only).
    pub(crate) max_group_events: usize,
}

/// What the writer thread owns or shares.
struct Context<'a> {
    shared: &'a Shared,
    recent: &'a RecentKeys,
    settings: WriterSettings,
    /// Notified after a transaction that stored jobs (see `Store::job_signal`).
    signal: &'a JobSignal,
}

/// State shared by callers and the writer thread.
pub(crate) struct Shared {
    admission: Admission,
    closed: AtomicBool,
    commit_requests: AtomicU64,
    transactions: AtomicU64,
    /// How many [`WriterPause`] guards are alive; the writer starts no transaction while > 0.
    pauses: Mutex<usize>,
    resumed: Condvar,
}

impl Shared {
    fn wait_while_paused(&self) {
        let pauses = self.pauses.lock().unwrap_or_else(PoisonError::into_inner);
        let _resumed = self
            .resumed
            .wait_while(pauses, |pauses| *pauses > 0)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// Keeps the writer from starting a transaction until dropped (see
/// [`crate::SqliteStore::pause_writer`]).
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
        self.shared.resumed.notify_all();
    }
}

/// The callers' side of the writer: the queue's sending end and the thread to join.
pub(crate) struct Writer {
    sender: mpsc::Sender<Request>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on `conn` (already configured and migrated).
    pub(crate) fn start(
        conn: Connection,
        settings: WriterSettings,
        capacity: usize,
        recent: Arc<RecentKeys>,
        signal: Arc<JobSignal>,
    ) -> std::io::Result<Writer> {
        let shared = Arc::new(Shared {
            admission: Admission::new(capacity),
            closed: AtomicBool::new(false),
            commit_requests: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            pauses: Mutex::new(0),
            resumed: Condvar::new(),
        });
        // Unbounded channel, bounded admission: the event count in `Admission::admit` is the real
        // limit (a request may carry 1 or 2,500 events), and sending never blocks a caller.
        let (sender, receiver) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            // Short: Linux shows at most 15 characters of a thread name.
            .name("store-writer".to_owned())
            .spawn(move || {
                let context = Context {
                    shared: &thread_shared,
                    recent: &recent,
                    settings,
                    signal: &signal,
                };
                run(conn, &receiver, &context);
            })?;
        Ok(Writer {
            sender,
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Enqueues a commit; fails at once when closed or full. Never blocks.
    pub(crate) fn submit_commit(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<oneshot::Receiver<CommitAnswer>, StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let count = events.len();
        self.shared.admission.admit(count)?;
        let (reply, answer) = oneshot::channel();
        let write = Write::Commit { events, reply };
        if self.sender.send(Request::Write(write)).is_err() {
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

    /// Enqueues a delivery write; fails at once when closed.
    pub(crate) fn submit_delivery(
        &self,
        write: DeliveryWrite,
    ) -> Result<oneshot::Receiver<Result<DeliveryAnswer, StoreError>>, StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Request::Write(Write::Delivery { write, reply }))
            .map_err(|_| StoreError::Closed)?;
        Ok(answer)
    }

    /// Enqueues a profile checkpoint; fails at once when closed.
    pub(crate) fn submit_profiles(
        &self,
        checkpoint: ProfileCheckpoint,
    ) -> Result<oneshot::Receiver<Result<(), StoreError>>, StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let (reply, answer) = oneshot::channel();
        let write = Write::Profiles {
            checkpoint: Box::new(checkpoint),
            reply,
        };
        self.sender
            .send(Request::Write(write))
            .map_err(|_| StoreError::Closed)?;
        Ok(answer)
    }

    /// Enqueues a privacy write; fails at once when closed.
    pub(crate) fn submit_privacy(
        &self,
        write: PrivacyWrite,
    ) -> Result<oneshot::Receiver<Result<PrivacyAnswer, StoreError>>, StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let (reply, answer) = oneshot::channel();
        let write = Write::Privacy {
            write: Box::new(write),
            reply,
        };
        self.sender
            .send(Request::Write(write))
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

    /// See [`crate::SqliteStore::pause_writer`].
    pub(crate) fn pause(&self) -> WriterPause {
        let mut pauses = self
            .shared
            .pauses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *pauses += 1;
        WriterPause {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Refuses new requests and asks the thread to stop after what is queued. Returns the thread
    /// to join, or `None` if an earlier call already took it.
    pub(crate) fn begin_shutdown(&self) -> Option<JoinHandle<()>> {
        self.shared.closed.store(true, Ordering::Release);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        // Queued before Shutdown, so the thread handles everything admitted earlier first. A send
        // error means the thread is already gone; joining it is still right.
        let _ = self.sender.send(Request::Shutdown);
        Some(thread)
    }
}

/// The writer thread: group, write, answer; until shut down or every sender is gone.
fn run(mut conn: Connection, receiver: &mpsc::Receiver<Request>, context: &Context<'_>) {
    let (shared, settings) = (context.shared, context.settings);
    let mut stopping = false;
    while !stopping {
        // Block for the first request, then take whatever else is already waiting.
        let Ok(first) = receiver.recv() else { break };
        shared.wait_while_paused();
        let mut group = Group::default();
        stopping |= group.push(first);
        while group.events < settings.max_group_events {
            match receiver.try_recv() {
                Ok(request) => stopping |= group.push(request),
                Err(_) => break,
            }
        }
        if stopping {
            // Everything admitted before the store was closed is answered, not dropped.
            while let Ok(request) = receiver.try_recv() {
                group.push(request);
            }
        }
        write_group(&mut conn, group, context);
    }
    // The maintenance thread, stopped next, checkpoints for the last time.
    drop(conn);
}

/// The writes sharing one transaction.
#[derive(Default)]
struct Group {
    writes: Vec<Write>,
    events: usize,
}

impl Group {
    /// Adds a request; returns whether it asks the writer to stop.
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

/// The answer prepared for one write, sent only after the transaction committed.
enum Answer {
    Commit(Vec<CommitOutcome>),
    Config(ConfigVersion),
    Delivery(DeliveryAnswer),
    Profiles,
    Privacy(PrivacyAnswer),
}

/// Writes a group in one transaction and answers every caller. If that transaction fails, each
/// write is retried in a transaction of its own, so that one bad request fails alone (and a
/// transient failure gets a second chance); that costs nothing on the normal path, unlike a
/// savepoint per request.
fn write_group(conn: &mut Connection, group: Group, context: &Context<'_>) {
    if group.writes.is_empty() {
        return;
    }
    let commit_requests = group
        .writes
        .iter()
        .filter(|w| matches!(w, Write::Commit { .. }))
        .count();
    let mut wake_up = WakeUp::None;
    for write in &group.writes {
        match write {
            Write::Commit { events, .. } => wake_up.commit(events),
            Write::SaveConfig { .. } | Write::Profiles { .. } | Write::Privacy { .. } => {}
            Write::Delivery { write, .. } => {
                if write.adds_jobs() {
                    wake_up = WakeUp::ListAll;
                }
            }
        }
    }
    let mut transactions = 0;
    let mut answered = Vec::with_capacity(group.writes.len());
    match write_transaction(conn, &group.writes, context) {
        Ok(answers) => {
            transactions += 1;
            answered.extend(group.writes.into_iter().zip(answers.into_iter().map(Ok)));
        }
        Err(_) => {
            for write in group.writes {
                let answer = match write_transaction(conn, std::slice::from_ref(&write), context) {
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
    let shared = context.shared;
    shared
        .transactions
        .fetch_add(transactions, Ordering::Relaxed);
    shared
        .commit_requests
        .fetch_add(commit_requests as u64, Ordering::Relaxed);
    // Released before answering: a caller that saw its answer must not find its own events still
    // counted as queued, and one that retries at once must find the room it freed.
    shared.admission.release(group.events);
    if transactions > 0 {
        // A stored permit, so a delivery engine busy elsewhere still sees it on its next wait.
        wake_up.send(context.signal, now_ms());
    }
    for (write, answer) in answered {
        answer_write(write, answer);
    }
}

/// Sends one caller its answer. A send error only means the caller stopped waiting (its request
/// was cancelled): its data is committed all the same, which is what at-least-once wants.
fn answer_write(write: Write, answer: Result<Answer, StoreError>) {
    match write {
        Write::Commit { events, reply } => {
            let answer = answer.and_then(|answer| match answer {
                Answer::Commit(outcomes) => Ok(outcomes),
                _ => Err(mismatch()),
            });
            let _ = reply.send((answer, events));
        }
        Write::SaveConfig { reply, .. } => {
            let _ = reply.send(answer.and_then(|answer| match answer {
                Answer::Config(version) => Ok(version),
                _ => Err(mismatch()),
            }));
        }
        Write::Delivery { reply, .. } => {
            let _ = reply.send(answer.and_then(|answer| match answer {
                Answer::Delivery(answer) => Ok(answer),
                _ => Err(mismatch()),
            }));
        }
        Write::Profiles { reply, .. } => {
            let _ = reply.send(answer.and_then(|answer| match answer {
                Answer::Profiles => Ok(()),
                _ => Err(mismatch()),
            }));
        }
        Write::Privacy { reply, .. } => {
            let _ = reply.send(answer.and_then(|answer| match answer {
                Answer::Privacy(answer) => Ok(answer),
                _ => Err(mismatch()),
            }));
        }
    }
}

/// `write_transaction` answers each write with its own kind; this reports a broken invariant
/// rather than panicking the writer thread.
fn mismatch() -> StoreError {
    StoreError::Backend("the writer answered a request with another kind of answer".into())
}

/// The transaction itself: `BEGIN`, every write, the counters, `COMMIT`; then the new message
/// keys go to [`RecentKeys`]. Returns one answer per write, in order. On error the transaction is
/// rolled back.
fn write_transaction(
    conn: &Connection,
    writes: &[Write],
    context: &Context<'_>,
) -> Result<Vec<Answer>, Error> {
    // Before the transaction's first read, so that its snapshot of the key index includes what
    // is forgotten here.
    context.recent.prune();
    // Deferred, not IMMEDIATE: IMMEDIATE would also take the write lock of the attached key
    // index, which the maintenance thread writes; this connection only reads it. Then a no-op
    // write takes the lock of `main` before anything is read from it: taken that way, a lock
    // held for a moment by a checkpoint is waited for (busy timeout), whereas upgrading a read
    // transaction fails at once.
    conn.prepare_cached("BEGIN")?.execute([])?;
    conn.prepare_cached("UPDATE counters SET events = events WHERE id = 1")?
        .execute([])?;
    let mut keys = TransactionKeys::default();
    let result = write_all(conn, writes, context, &mut keys).and_then(|answers| {
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(answers)
    });
    if result.is_ok() {
        // Only committed events' keys, and before any caller is answered.
        context.recent.add(&keys.pairs);
    }
    if result.is_err() && !conn.is_autocommit() {
        // Still open after a failed statement or COMMIT: undo it. If even that fails the
        // connection is unusable, and the next BEGIN reports it to the next callers.
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// The message keys of the events stored by the current transaction: [`RecentKeys`] only gets
/// them once it commits, and dedupe within the transaction needs them before.
#[derive(Default)]
struct TransactionKeys {
    /// (event id, key) in insertion order.
    pairs: Vec<(i64, i64)>,
    by_key: HashMap<i64, Vec<i64>>,
}

fn write_all(
    conn: &Connection,
    writes: &[Write],
    context: &Context<'_>,
    keys: &mut TransactionKeys,
) -> Result<Vec<Answer>, Error> {
    let now = now_ms();
    let mut statements = Statements::prepare(conn)?;
    let mut answers = Vec::with_capacity(writes.len());
    let mut totals = Counts::default();
    // The overview's counters, aggregated over the whole transaction and written once per key.
    let mut rollup = Rollup::default();
    for write in writes {
        answers.push(match write {
            Write::Commit { events, .. } => Answer::Commit(statements.commit_events(
                events,
                now,
                context,
                &mut totals,
                keys,
                &mut rollup,
            )?),
            Write::SaveConfig { document, .. } => Answer::Config(save_config(conn, document, now)?),
            Write::Delivery { write, .. } => {
                Answer::Delivery(write.write(conn, now, &mut rollup)?)
            }
            Write::Profiles { checkpoint, .. } => {
                crate::profiles::save(conn, checkpoint)?;
                Answer::Profiles
            }
            Write::Privacy { write, .. } => Answer::Privacy(write.write(conn)?),
        });
    }
    rollup.flush(conn)?;
    // SQLite integers are i64; one transaction's totals are far below its range.
    let as_sql = |total: u64| i64::try_from(total).unwrap_or(i64::MAX);
    statements.add_counters.execute((
        as_sql(totals.events),
        as_sql(totals.duplicates),
        as_sql(totals.jobs),
        as_sql(totals.discards),
    ))?;
    Ok(answers)
}

fn save_config(conn: &Connection, document: &str, now: UnixMillis) -> Result<ConfigVersion, Error> {
    let next: i64 = conn
        .prepare_cached("SELECT coalesce(max(version), 0) + 1 FROM config_versions")?
        .query_row([], |row| row.get(0))?;
    conn.prepare_cached(
        "INSERT INTO config_versions (version, saved_at, document) VALUES (?1, ?2, ?3)",
    )?
    .execute((next, now, document))?;
    conn.prepare_cached("DELETE FROM config_versions WHERE version <= ?1")?
        .execute([next - CONFIG_VERSIONS_KEPT])?;
    Ok(ConfigVersion(next))
}

/// Every statement of the ingest path, fetched from the connection's cache once per transaction
/// rather than once per row.
struct Statements<'c> {
    find_candidates: CachedStatement<'c>,
    is_duplicate: CachedStatement<'c>,
    insert_duplicate: CachedStatement<'c>,
    insert_event: CachedStatement<'c>,
    insert_job: CachedStatement<'c>,
    insert_transition: CachedStatement<'c>,
    insert_queue: CachedStatement<'c>,
    insert_discard: CachedStatement<'c>,
    insert_inbox: CachedStatement<'c>,
    add_counters: CachedStatement<'c>,
}

impl<'c> Statements<'c> {
    fn prepare(conn: &'c Connection) -> Result<Self, Error> {
        Ok(Statements {
            // Events under the same key in the index file. Almost always none: only then is an
            // event row read, so the common case touches the key index alone.
            find_candidates: conn.prepare_cached(
                "SELECT event_id FROM keys.message_keys WHERE dedupe_key = ?1
                 ORDER BY event_id DESC",
            )?,
            // Whether a candidate is the same message (the key is a hash) received less than a
            // window away on either side. The row itself is checked because an index entry may
            // outlive a rolled-back event (see `KEYS` in `migrations`).
            is_duplicate: conn.prepare_cached(
                "SELECT 1 FROM events
                 WHERE id = ?1 AND source_id = ?2 AND message_id = ?3
                   AND received_at > ?4 AND received_at < ?5",
            )?,
            insert_duplicate: conn.prepare_cached(
                "INSERT INTO event_duplicates (event_id, received_at) VALUES (?1, ?2)",
            )?,
            insert_event: conn.prepare_cached(
                "INSERT INTO events (source_id, message_id, received_at, payload)
                 VALUES (?1, ?2, ?3, ?4)",
            )?,
            insert_job: conn.prepare_cached(
                "INSERT INTO jobs (event_id, destination_id, subscription_id, endpoint, method,
                                   url, headers, body, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?,
            insert_transition: conn.prepare_cached(
                "INSERT INTO job_transitions (job_id, seq, state, at, next_at, attempt, detail)
                 VALUES (?1, 0, ?2, ?3, ?3, 0, NULL)",
            )?,
            insert_queue: conn.prepare_cached(
                "INSERT INTO job_queue (job_id, endpoint, next_at, attempt, last_seq, lease_owner)
                 VALUES (?1, ?2, ?3, 0, 0, NULL)",
            )?,
            insert_inbox: conn
                .prepare_cached("INSERT INTO profile_inbox (event_id) VALUES (?1)")?,
            insert_discard: conn.prepare_cached(
                "INSERT INTO discards (event_id, destination_id, subscription_id, reason, message)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?,
            add_counters: conn.prepare_cached(
                "UPDATE counters SET events = events + ?1, duplicates = duplicates + ?2,
                                     jobs = jobs + ?3, discards = discards + ?4
                 WHERE id = 1",
            )?,
        })
    }

    /// The newest stored event that `event` duplicates, if any: candidates under the same key
    /// come from the index file, from [`RecentKeys`] and from this transaction.
    fn find_duplicate(
        &mut self,
        key: i64,
        event: &NewEvent,
        context: &Context<'_>,
        keys: &TransactionKeys,
    ) -> Result<Option<i64>, Error> {
        let mut candidates: Vec<i64> = {
            let rows = self.find_candidates.query_map([key], |row| row.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        candidates.extend(context.recent.get(key));
        if let Some(ids) = keys.by_key.get(&key) {
            candidates.extend(ids);
        }
        // Newest first; an id can be both in memory and in the file while a flush settles.
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        candidates.dedup();
        let window = context.settings.dedupe_window_ms;
        for candidate in candidates {
            let same = self.is_duplicate.exists((
                candidate,
                &event.source_id,
                &event.message_id,
                event.received_at.saturating_sub(window),
                event.received_at.saturating_add(window),
            ))?;
            if same {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }

    /// Dedupes and inserts one request's events, adding to `totals` and `rollup` and recording
    /// their keys.
    fn commit_events<'w>(
        &mut self,
        events: &'w [NewEvent],
        now: UnixMillis,
        context: &Context<'_>,
        totals: &mut Counts,
        keys: &mut TransactionKeys,
        rollup: &mut Rollup<'w>,
    ) -> Result<Vec<CommitOutcome>, Error> {
        let pending = JobState::Pending.as_str();
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let key = dedupe_key(&event.source_id, &event.message_id);
            let dedupe = context.settings.dedupe_window_ms > 0;
            if dedupe && let Some(original) = self.find_duplicate(key, event, context, keys)? {
                self.insert_duplicate
                    .execute((original, event.received_at))?;
                totals.duplicates += 1;
                outcomes.push(CommitOutcome::Duplicate {
                    original: EventId(original),
                });
                continue;
            }

            let event_id = self.insert_event.insert((
                &event.source_id,
                &event.message_id,
                event.received_at,
                &event.payload,
            ))?;
            keys.pairs.push((event_id, key));
            keys.by_key.entry(key).or_default().push(event_id);
            let mut job_ids = Vec::with_capacity(event.jobs.len());
            for job in &event.jobs {
                let headers = encode_headers(&job.headers)?;
                let job_id = self.insert_job.insert((
                    event_id,
                    &job.destination_id,
                    &job.subscription_id,
                    &job.endpoint,
                    &job.method,
                    job.url.to_stored(),
                    &headers,
                    &job.body,
                    now,
                ))?;
                self.insert_transition.execute((job_id, pending, now))?;
                self.insert_queue.execute((job_id, &job.endpoint, now))?;
                job_ids.push(JobId(job_id));
            }
            for discard in &event.discards {
                self.insert_discard.execute((
                    event_id,
                    &discard.destination_id,
                    &discard.subscription_id,
                    discard.reason.as_str(),
                    &discard.message,
                ))?;
            }
            if event.for_profiles {
                self.insert_inbox.execute([event_id])?;
            }
            rollup.add_event(event);
            totals.events += 1;
            totals.jobs += event.jobs.len() as u64;
            totals.discards += event.discards.len() as u64;
            outcomes.push(CommitOutcome::Stored {
                event_id: EventId(event_id),
                job_ids,
            });
        }
        Ok(outcomes)
    }
}
