//! Junction's storage layer: the [`Store`] trait every engine implements (embedded SQLite now,
//! PostgreSQL for clustered mode later), the model types it stores, [`StoreError`], and — behind
//! the `conformance` feature — the one generic test suite every engine must pass.
//!
//! **Architecture Invariant:** this crate knows no engine, no HTTP and no event schema. Payloads,
//! request bodies and the configuration document are opaque bytes or JSON to it.

mod error;
mod model;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::time::Duration;

pub use error::{BoxError, StoreError};
pub use model::{
    CommitOutcome, ConfigDocument, ConfigVersion, Counts, DiscardReason, DiscardRecord, DueJob,
    EventId, EventRecord, Job, JobId, JobRecord, JobState, JobTransition, NewDiscard, NewEvent,
    NewJob, StoreStats, UnixMillis, UnknownName,
};

/// Durable storage for events, their routing outcomes (jobs, discards), the jobs' transitions and
/// the workspace configuration.
///
/// Async methods never block the calling runtime for long: an engine runs its blocking work on its
/// own threads. The trait is dyn-compatible (`async-trait`) because the server holds the store as
/// `Arc<dyn Store>` and picks the engine from configuration.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Commits `batch` in one transaction shared with other concurrent callers (group commit), and
    /// answers only once it is durable. For each event, in order: if the same
    /// (`source_id`, `message_id`) was stored with a `received_at` within the dedupe window of this
    /// one's, it is a [`CommitOutcome::Duplicate`] (acknowledged and counted, nothing routed);
    /// otherwise the event, its jobs (each with an initial [`JobState::Pending`] transition, due at
    /// once) and its discards are stored together.
    ///
    /// Fails fast with [`StoreError::Overloaded`] when the commit queue is full; never waits for
    /// room. On any error nothing of `batch` was stored.
    async fn commit(&self, batch: Vec<NewEvent>) -> Result<Vec<CommitOutcome>, StoreError>;

    /// Every stored event with this (`source_id`, `message_id`) — usually one; more when the same
    /// id came back after the dedupe window — oldest first, each with its duplicates, jobs,
    /// transitions and discards.
    async fn events_by_message_id(
        &self,
        source_id: &str,
        message_id: &str,
    ) -> Result<Vec<EventRecord>, StoreError>;

    /// One stored event by id, with its duplicates, jobs, transitions and discards.
    async fn event(&self, id: EventId) -> Result<Option<EventRecord>, StoreError>;

    /// Totals committed so far: events, duplicates, jobs, discards.
    async fn counts(&self) -> Result<Counts, StoreError>;

    /// Up to `limit` jobs not in a terminal state whose `next_at <= now`, earliest `next_at` first
    /// (then by id), with their requests. Reading does not claim them.
    async fn due_jobs(&self, now: UnixMillis, limit: usize) -> Result<Vec<DueJob>, StoreError>;

    /// The latest saved configuration, if any was saved.
    async fn load_config(&self) -> Result<Option<ConfigDocument>, StoreError>;

    /// Durably saves `document` as the new configuration and returns its version, larger than every
    /// earlier one. Older versions are kept (so nodes can detect changes and an operator can see
    /// history).
    async fn save_config(&self, document: serde_json::Value) -> Result<ConfigVersion, StoreError>;

    /// Live counters of this open store (group commit and queue); cheap, never fails.
    fn stats(&self) -> StoreStats;

    /// Graceful shutdown: refuses new writes with [`StoreError::Closed`], finishes every commit
    /// already queued (their callers get their answers), then stops the writer and flushes. Reads
    /// may still be served until the store is dropped. Calling it again does nothing.
    async fn close(&self) -> Result<(), StoreError>;
}

/// Settings every engine honours; an engine's own options wrap these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a (source, `messageId`) stays a duplicate, measured between the events'
    /// `received_at`. `Duration::ZERO` turns dedupe off.
    pub dedupe_window: Duration,
    /// Events that may wait for the writer (queued or being written) before `commit` fails with
    /// [`StoreError::Overloaded`]. Bounds memory. A single `commit` larger than this is still
    /// accepted when the queue is empty, so that no valid batch is refused forever.
    pub queue_capacity: usize,
    /// The most events the writer puts in one transaction; it takes whole requests, so one large
    /// request may exceed it.
    pub max_group_events: usize,
}

impl StoreOptions {
    /// The default dedupe window: 24 hours, as Segment's.
    pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            dedupe_window: Self::DEFAULT_DEDUPE_WINDOW,
            // Ten full 2,500-event batches: at 50,000 events/s about half a second of backlog,
            // enough to absorb bursts without letting latency or memory run away.
            queue_capacity: 25_000,
            // Large enough to amortise one fsync over many requests, small enough that a
            // transaction stays in the low milliseconds.
            max_group_events: 5_000,
        }
    }
}
