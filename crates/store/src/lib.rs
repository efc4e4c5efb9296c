//! Junction's storage layer: the [`Store`] trait every engine implements (embedded SQLite now,
//! PostgreSQL for clustered mode later), the model types it stores, [`StoreError`], and — behind
//! the `conformance` feature — the one generic test suite every engine must pass.
//!
//! **Architecture Invariant:** this crate knows no engine, no HTTP and no event schema. Payloads,
//! request bodies and the configuration document are opaque bytes or JSON to it.

mod admission;
mod error;
mod job_signal;
pub mod lane_share;
mod model;
mod privacy;
mod profiles;
pub mod rollup;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::sync::Arc;
use std::time::Duration;

pub use admission::Admission;
pub use error::{BoxError, StoreError};
pub use job_signal::{JobSignal, WakeUp, Woken};
pub use model::{
    AttemptRecord, CommitOutcome, Completion, ConfigDocument, ConfigVersion, Counts, DeadJob,
    DeadLetterFilter, DiscardReason, DiscardRecord, DueJob, EventId, EventRecord, Job, JobId,
    JobRecord, JobState, JobTransition, JobUrl, LaneBacklog, LaneDue, LaneGrant, LaneReport,
    LatencySummary, NewDiscard, NewEvent, NewJob, NewReplay, Overview, OverviewBucket,
    OverviewCounts, OverviewPoint, OverviewQuery, OverviewTotals, PruneOutcome, ReleasedJob,
    StoreStats, UnixMillis, UnknownName,
};
pub use privacy::{
    DeletedEvents, NewRegulation, RegulationStatus, RegulationUpdate, StoredRegulation, Suppression,
};
pub use profiles::{ProfileCheckpoint, StoredEvent, StoredProfile};

/// How many versions of the configuration a store keeps.
pub const CONFIG_VERSIONS_KEPT: i64 = 100;

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

    /// Every lane (endpoint) with jobs not yet terminal, with its earliest `next_at`, in endpoint
    /// order. Cheap: one index probe per lane, whatever the backlog.
    async fn lanes(&self) -> Result<Vec<LaneDue>, StoreError>;

    /// Every lane with jobs not yet terminal and how many it has (pending, awaiting retry or
    /// claimed), in endpoint order. Counts the queue: for metrics scrapes, not for hot paths.
    async fn lane_backlogs(&self) -> Result<Vec<LaneBacklog>, StoreError>;

    /// Claims up to `limit` jobs of `endpoint` due at `now` (earliest first): each gets a lease
    /// until `lease_until` (it is not due again before, so no other worker takes it) and its
    /// attempt count goes up by one. If the claimer dies, the job is due again when the lease
    /// ends. Returned with the attempts made before this claim.
    async fn claim_jobs(
        &self,
        endpoint: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: usize,
    ) -> Result<Vec<DueJob>, StoreError>;

    /// Gives claimed jobs back unattempted (a lane stopping, or holding more than it can start
    /// soon): each is due again at the time it was due when claimed, and its attempt count goes
    /// back down. Jobs no longer queued (finished meanwhile) are skipped.
    ///
    /// Not "due now": claims take the earliest due jobs first, so a job given back as due now
    /// would go behind every job that became due while it was held, and a lane that keeps
    /// claiming more than it can start would keep sending the same jobs (often retries) to the
    /// back of its queue.
    async fn release_jobs(&self, jobs: Vec<ReleasedJob>) -> Result<(), StoreError>;

    /// Brings forward at most `limit` of the lane `endpoint`'s jobs waiting for a retry (due after
    /// `now`, no claim of theirs outstanding), earliest first: each is due at `now`. A lane whose
    /// endpoint recovered calls it, so that jobs backed off during the outage do not wait out
    /// their backoff. Returns how many were moved; wakes the job signal when some were.
    async fn expedite_retries(
        &self,
        endpoint: &str,
        now: UnixMillis,
        limit: usize,
    ) -> Result<usize, StoreError>;

    /// Records what became of claimed jobs, in one transaction: each attempt in the audit trail,
    /// a transition to the new state, and the queue entry rescheduled (awaiting retry) or removed
    /// (terminal; discarded and expired jobs enter the dead letter). A completion for a job
    /// already terminal (a duplicate delivery after a lease ended) records its attempt only.
    async fn complete_jobs(&self, completions: Vec<Completion>) -> Result<(), StoreError>;

    /// Dead-letter jobs matching `filter`, by job id.
    async fn dead_letter(&self, filter: DeadLetterFilter) -> Result<Vec<DeadJob>, StoreError>;

    /// Stores replays as new jobs (due at once, for the same event as the job each replays) and
    /// marks the replayed jobs; returns the new ids in order. Fails with
    /// [`StoreError::NotFound`] naming the first `replay_of` that is not in the dead letter.
    async fn replay_jobs(&self, replays: Vec<NewReplay>) -> Result<Vec<JobId>, StoreError>;

    /// Retention: removes up to `max_events` of the oldest events received before `before`, with
    /// everything recorded about them, in small transactions so that ingestion is not held up.
    /// Events with a job not yet terminal are kept. An engine that drops whole generations of
    /// events at once (the PostgreSQL engine) may remove more in one pass: `max_events` bounds
    /// the passes that delete row by row. Each pass also removes a bounded slice of the
    /// overview's rollups older than [`OverviewQuery::MAX_WINDOW_MS`], whatever `before` is.
    async fn prune(
        &self,
        before: UnixMillis,
        max_events: usize,
    ) -> Result<PruneOutcome, StoreError>;

    /// The delivery overview of a destination (or one of its mappings) over a window: received,
    /// jobs, discards by reason with sample `messageId`s, deliveries, retries, failures,
    /// ingest-to-delivery latency, the jobs awaiting retry now, per mapping and as a time series
    /// (see [`OverviewCounts`] for what each count means). Cheap whatever the event volume:
    /// engines keep per-minute rollups written with the events and completions, so the cost
    /// follows the window's minutes, not its events. Data older than
    /// [`OverviewQuery::MAX_WINDOW_MS`] may have been removed by [`Store::prune`].
    ///
    /// Fails with [`StoreError::InvalidRequest`] when the series would have more than
    /// [`OverviewQuery::MAX_POINTS`] points.
    async fn overview(&self, query: OverviewQuery) -> Result<Overview, StoreError>;

    /// Woken whenever committed work may have made jobs due (new jobs, replays), so that an
    /// idle delivery engine starts at once instead of polling; a commit's wake-up names the lanes
    /// of its jobs, so that the engine need not list every lane to find them.
    fn job_signal(&self) -> Arc<JobSignal>;

    /// True when other processes deliver from this store too (clustered mode): each lane's flow
    /// control must then be shared through [`Store::sync_lane`]. Engines serving one process
    /// answer false, and the node's own limits are the whole story.
    fn shares_lanes(&self) -> bool {
        false
    }

    /// Reports this node's use of a lane and answers the share of the lane's cluster-wide limit
    /// it may use until its next report: shares of live nodes add up to at most the shared
    /// adaptive limit, which halves once per overload whichever node saw it, rises with the
    /// successes of all, and pauses for the longest `Retry-After` any node was given. A node
    /// that stops reporting loses its share after its lease. Engines that do not share lanes
    /// grant the whole configured limit.
    async fn sync_lane(&self, report: LaneReport) -> Result<LaneGrant, StoreError> {
        let limit = report.max_concurrency.max(1);
        Ok(LaneGrant {
            limit,
            share: limit,
            epoch: report.epoch,
            paused_ms: report.paused_ms,
        })
    }

    /// The latest saved configuration, if any was saved.
    async fn load_config(&self) -> Result<Option<ConfigDocument>, StoreError>;

    /// Durably saves `document` as the new configuration and returns its version, larger than every
    /// earlier one. The last [`CONFIG_VERSIONS_KEPT`] versions are kept (so nodes can detect
    /// changes and an operator can see recent history); older ones are removed in the same
    /// transaction, so the history's size is bounded whatever the number of changes.
    async fn save_config(&self, document: serde_json::Value) -> Result<ConfigVersion, StoreError>;

    /// The versions of the configuration kept, oldest first.
    async fn config_versions(&self) -> Result<Vec<ConfigVersion>, StoreError>;

    /// Up to `limit` events of the profile inbox (committed with [`NewEvent::for_profiles`] and
    /// not yet taken in by a [`ProfileCheckpoint`]), in event id order. Events pruned before
    /// they were taken in are not returned.
    async fn profile_inbox(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError>;

    /// Up to `limit` stored events with an id above `after`, in id order: how a backfill walks
    /// the history.
    async fn stored_events(
        &self,
        after: EventId,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The largest stored event id, if any: where a backfill's walk ends (events after it reach
    /// the profiles through the inbox).
    async fn last_event_id(&self) -> Result<Option<EventId>, StoreError>;

    /// Up to `limit` profiles with an id of `from` or more, in id order.
    async fn load_profiles(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<StoredProfile>, StoreError>;

    /// The profile holding this identifier (type, value), if any.
    async fn find_profile(
        &self,
        id_type: &str,
        value: &str,
    ) -> Result<Option<StoredProfile>, StoreError>;

    /// The profile worker's document, if one was ever written.
    async fn profile_worker(&self) -> Result<Option<Vec<u8>>, StoreError>;

    /// Takes or keeps the lead of the profile worker for `owner` until `lease_ms` from now (on
    /// the database's clock); answers whether `owner` leads. Only one worker leads at a time:
    /// the lead passes to another only once the leader's lease has run out.
    async fn lead_profiles(&self, owner: &str, lease_ms: i64) -> Result<bool, StoreError>;

    /// Writes one step of the profile worker atomically (see [`ProfileCheckpoint`]). Fails with
    /// [`StoreError::NotFound`] and writes nothing when `checkpoint.owner` does not lead.
    async fn save_profiles(&self, checkpoint: ProfileCheckpoint) -> Result<(), StoreError>;

    /// The secret that keys the hashes of regulated identifiers: the one kept, or `candidate`
    /// when none is kept yet (it is then kept, once for the store's whole life).
    async fn privacy_secret(&self, candidate: Vec<u8>) -> Result<Vec<u8>, StoreError>;

    /// Stores a new regulation (status `initialized`) and answers it with its id.
    async fn create_regulation(
        &self,
        regulation: NewRegulation,
    ) -> Result<StoredRegulation, StoreError>;

    /// Up to `limit` regulations, newest first.
    async fn regulations(&self, limit: usize) -> Result<Vec<StoredRegulation>, StoreError>;

    /// One regulation.
    async fn regulation(&self, id: i64) -> Result<Option<StoredRegulation>, StoreError>;

    /// Regulations not done yet (`initialized` or `running`), oldest first.
    async fn pending_regulations(&self) -> Result<Vec<StoredRegulation>, StoreError>;

    /// Writes a regulation's progress and the suppression list's changes in one transaction;
    /// erases the request once the regulation is done. Fails with [`StoreError::NotFound`] for
    /// an unknown id.
    async fn update_regulation(&self, update: RegulationUpdate) -> Result<(), StoreError>;

    /// Every hash on the suppression list, in hash order.
    async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError>;

    /// Removes these events with everything recorded about them: duplicates, jobs (their
    /// transitions, attempts, queue entries: undelivered jobs are cancelled), discards, dead
    /// letter rows and profile inbox entries. Ids not stored are skipped.
    async fn delete_events(&self, ids: Vec<EventId>) -> Result<DeletedEvents, StoreError>;

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
