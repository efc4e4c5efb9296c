//! The embedded storage engine: one SQLite database in WAL mode (`junction.db`, plus its
//! message-key index `junction.db-keys`). One writer thread owns the only connection that writes
//! the database and commits concurrent callers' writes together (group commit); a maintenance
//! thread writes new message keys into the index in batches and checkpoints the WALs; reads use a
//! small pool of read-only connections on tokio's blocking threads.
//!
//! Roles: `connection` (pragmas), `migrations` (schema, key index), `model` (columns ↔ types),
//! `writer` (group commit), `delivery` (claims, completions, replays, retention: writes the
//! writer runs), `rollup` (the delivery overview's counters, kept by the writer), `recent` (keys
//! not yet in the index), `maintenance`, `queries` (reads), `error` (SQLite codes →
//! [`StoreError`]).
//!
//! **Architecture Invariant:** no SQLite call ever runs on an async worker thread.

mod connection;
mod delivery;
mod error;
mod maintenance;
mod migrations;
mod model;
mod privacy;
mod profiles;
mod queries;
mod recent;
mod rollup;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use junction_store::{
    CommitOutcome, Completion, ConfigDocument, ConfigVersion, Counts, DeadJob, DeadLetterFilter,
    DeletedEvents, DueJob, EventId, EventRecord, JobId, JobSignal, LaneBacklog, LaneDue, NewEvent,
    NewRegulation, NewReplay, Overview, OverviewQuery, ProfileCheckpoint, PruneOutcome,
    RegulationUpdate, ReleasedJob, Store, StoreError, StoreOptions, StoreStats, StoredEvent,
    StoredProfile, StoredRegulation, Suppression, UnixMillis,
};

use crate::delivery::{DeliveryAnswer, DeliveryWrite};
use crate::error::Error;
use crate::maintenance::Maintenance;
use crate::privacy::{PrivacyAnswer, PrivacyWrite};
use crate::queries::Readers;
use crate::recent::RecentKeys;
use crate::writer::{Writer, WriterSettings};

pub use crate::writer::WriterPause;

/// Options of the SQLite engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The settings every engine honours (dedupe window, queue capacity, group size).
    pub store: StoreOptions,
    /// Read-only connections in the pool (at least one). Two matches the two cores this runs on;
    /// more only helps when reads wait on I/O.
    pub read_connections: usize,
    /// The writer connection's page cache of the database in KiB (the key index has its own).
    pub writer_cache_kib: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            store: StoreOptions::default(),
            read_connections: 2,
            // 16 MiB: the writer appends at the B-trees' right edges and reads back recent rows
            // (claims of a backlog, completions), which this holds; 64 MiB cost its size in RSS
            // at full rate and made each commit's page-cache truncation walk a larger hash
            // table (BENCHMARKS.md, issue 15).
            writer_cache_kib: 16 * 1024,
        }
    }
}

/// The embedded store. Dropping it finishes queued commits, stops the writer, writes the last
/// recent keys to the index and checkpoints, blocking the dropping thread meanwhile (typically
/// milliseconds, at most about a second after a burst); in async code call [`Store::close`] first,
/// which does the same on a blocking thread.
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    maintenance: Arc<Maintenance>,
    readers: Arc<Readers>,
    signal: Arc<JobSignal>,
}

impl SqliteStore {
    /// Opens the store whose database file is `path` (creating it, its directory and the key
    /// index `path` + `-keys` if needed), applies the migrations, brings the key index up to date
    /// and starts the writer and maintenance threads. The blocking work runs on a blocking
    /// thread.
    pub async fn open(
        path: impl Into<PathBuf>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        let path = path.into();
        let task = tokio::task::spawn_blocking(move || Self::open_blocking(path, options));
        match task.await {
            Ok(result) => result,
            Err(join) => Err(StoreError::Backend(Box::new(join))),
        }
    }

    /// [`SqliteStore::open`] for a caller outside an async runtime (start-up code, tools).
    pub fn open_blocking(
        path: impl Into<PathBuf>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        let path = path.into();
        let opened = Self::open_parts(&path, &options);
        let (conn, readers, maintenance_conn) = opened.map_err(|err| open_error(&path, err))?;
        let recent = Arc::new(RecentKeys::default());
        let dedupe_window_ms =
            i64::try_from(options.store.dedupe_window.as_millis()).unwrap_or(i64::MAX);
        let settings = WriterSettings {
            dedupe_window_ms,
            max_group_events: options.store.max_group_events.max(1),
        };
        let signal = Arc::new(JobSignal::new());
        let writer = Writer::start(
            conn,
            settings,
            options.store.queue_capacity,
            Arc::clone(&recent),
            Arc::clone(&signal),
        )
        .map_err(|err| StoreError::Open {
            path: path.clone(),
            source: Box::new(err),
        })?;
        let maintenance =
            Maintenance::start(maintenance_conn, Arc::clone(&recent)).map_err(|err| {
                // Stop the writer already started, so that no thread outlives the failed open.
                if let Some(thread) = writer.begin_shutdown() {
                    let _ = thread.join();
                }
                StoreError::Open {
                    path: path.clone(),
                    source: Box::new(err),
                }
            })?;
        Ok(SqliteStore {
            path,
            writer,
            maintenance: Arc::new(maintenance),
            readers: Arc::new(Readers::new(readers, recent)),
            signal,
        })
    }

    fn open_parts(
        path: &Path,
        options: &SqliteOptions,
    ) -> Result<
        (
            rusqlite::Connection,
            Vec<rusqlite::Connection>,
            rusqlite::Connection,
        ),
        Error,
    > {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|err| StoreError::Unavailable(Box::new(err)))?;
        }
        let conn = match Self::open_writer(path, options) {
            // The key index is derived data: a damaged one is removed and rebuilt from the
            // events. If the damage is in the main file, the second attempt reports it.
            Err(err) if err.is_corrupt() => {
                for file in connection::keys_files(path) {
                    match std::fs::remove_file(&file) {
                        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                            return Err(StoreError::Unavailable(Box::new(err)).into());
                        }
                        _ => {}
                    }
                }
                Self::open_writer(path, options)?
            }
            other => other?,
        };
        let readers = (0..options.read_connections.max(1))
            .map(|_| connection::open_reader(path))
            .collect::<Result<Vec<_>, _>>()?;
        let maintenance_conn = connection::open_maintenance(path)?;
        Ok((conn, readers, maintenance_conn))
    }

    /// The writer's connection, migrated, with the key index up to date.
    fn open_writer(path: &Path, options: &SqliteOptions) -> Result<rusqlite::Connection, Error> {
        let mut conn = connection::open_writer(path, options.writer_cache_kib)?;
        migrations::apply(&mut conn)?;
        migrations::prepare_keys(&mut conn)?;
        Ok(conn)
    }

    /// Stops the writer (which finishes what is queued), then the maintenance thread (which
    /// flushes the last keys and checkpoints). Blocking: one transaction, one flush, one
    /// checkpoint at most.
    fn shut_down(maintenance: &Maintenance, writer: &Writer) -> Result<(), StoreError> {
        let joined = writer.begin_shutdown().map(|thread| thread.join());
        maintenance.stop();
        match joined {
            None | Some(Ok(())) => Ok(()),
            Some(Err(_panic)) => Err(StoreError::Backend("the writer thread panicked".into())),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the writer from starting a transaction until the guard is dropped: commits queue up
    /// (and past capacity fail with `Overloaded`), reads go on. The conformance suite uses it to
    /// make grouping and overload deterministic; it also gives a quiet moment for copying the
    /// file. Do not drop the store while holding it: the drop would wait for the writer forever.
    pub fn pause_writer(&self) -> WriterPause {
        self.writer.pause()
    }

    /// Queues a delivery write and waits for its transaction.
    async fn deliver(&self, write: DeliveryWrite) -> Result<DeliveryAnswer, StoreError> {
        let answer = self.writer.submit_delivery(write)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a privacy write and waits for its transaction.
    async fn privacy(&self, write: PrivacyWrite) -> Result<PrivacyAnswer, StoreError> {
        let answer = self.writer.submit_privacy(write)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// The schema version this build writes.
    pub const SCHEMA_VERSION: i64 = migrations::LATEST;
}

/// The writer answered a delivery or privacy write with another kind of answer: a broken invariant, reported
/// rather than panicking.
fn answer_mismatch() -> StoreError {
    StoreError::Backend("the writer answered a delivery write with another kind of answer".into())
}

/// Errors while opening name the file; a newer schema is reported as such.
fn open_error(path: &Path, err: Error) -> StoreError {
    match StoreError::from(err) {
        err @ StoreError::SchemaTooNew { .. } => err,
        err => StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(err),
        },
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn commit(&self, batch: Vec<NewEvent>) -> Result<Vec<CommitOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let answer = self.writer.submit_commit(batch)?;
        // The writer dropping the reply without answering only happens when it stopped first.
        let (outcomes, events) = answer.await.map_err(|_| StoreError::Closed)?;
        // Freed here, on the caller's thread: see `writer::CommitAnswer`.
        drop(events);
        outcomes
    }

    async fn events_by_message_id(
        &self,
        source_id: &str,
        message_id: &str,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let (source_id, message_id) = (source_id.to_owned(), message_id.to_owned());
        // Read before the query's transaction starts (see `queries::events_by_message_id`).
        let recent = self
            .readers
            .recent()
            .get(model::dedupe_key(&source_id, &message_id));
        self.readers
            .run(move |conn| queries::events_by_message_id(conn, &source_id, &message_id, recent))
            .await
    }

    async fn event(&self, id: EventId) -> Result<Option<EventRecord>, StoreError> {
        self.readers.run(move |conn| queries::event(conn, id)).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.readers.run(queries::counts).await
    }

    async fn overview(&self, query: OverviewQuery) -> Result<Overview, StoreError> {
        self.readers
            .run(move |conn| queries::overview(conn, &query))
            .await
    }

    async fn lanes(&self) -> Result<Vec<LaneDue>, StoreError> {
        self.readers.run(queries::lanes).await
    }

    async fn lane_backlogs(&self) -> Result<Vec<LaneBacklog>, StoreError> {
        self.readers.run(queries::lane_backlogs).await
    }

    async fn claim_jobs(
        &self,
        endpoint: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: usize,
    ) -> Result<Vec<DueJob>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let write = DeliveryWrite::Claim {
            endpoint: endpoint.to_owned(),
            now,
            lease_until,
            limit,
        };
        match self.deliver(write).await? {
            DeliveryAnswer::Claimed(jobs) => Ok(jobs),
            _ => Err(answer_mismatch()),
        }
    }

    async fn release_jobs(&self, jobs: Vec<ReleasedJob>) -> Result<(), StoreError> {
        if jobs.is_empty() {
            return Ok(());
        }
        match self.deliver(DeliveryWrite::Release(jobs)).await? {
            DeliveryAnswer::Completed => Ok(()),
            _ => Err(answer_mismatch()),
        }
    }

    async fn expedite_retries(
        &self,
        endpoint: &str,
        now: UnixMillis,
        limit: usize,
    ) -> Result<usize, StoreError> {
        if limit == 0 {
            return Ok(0);
        }
        let write = DeliveryWrite::Expedite {
            endpoint: endpoint.to_owned(),
            now,
            limit,
        };
        match self.deliver(write).await? {
            DeliveryAnswer::Expedited(moved) => {
                if moved > 0 {
                    self.job_signal().wake();
                }
                Ok(moved)
            }
            _ => Err(answer_mismatch()),
        }
    }

    async fn complete_jobs(&self, completions: Vec<Completion>) -> Result<(), StoreError> {
        if completions.is_empty() {
            return Ok(());
        }
        match self.deliver(DeliveryWrite::Complete(completions)).await? {
            DeliveryAnswer::Completed => Ok(()),
            _ => Err(answer_mismatch()),
        }
    }

    async fn dead_letter(&self, filter: DeadLetterFilter) -> Result<Vec<DeadJob>, StoreError> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        self.readers
            .run(move |conn| queries::dead_letter(conn, &filter))
            .await
    }

    async fn replay_jobs(&self, replays: Vec<NewReplay>) -> Result<Vec<JobId>, StoreError> {
        if replays.is_empty() {
            return Ok(Vec::new());
        }
        match self.deliver(DeliveryWrite::Replay(replays)).await? {
            DeliveryAnswer::Replayed(ids) => Ok(ids),
            _ => Err(answer_mismatch()),
        }
    }

    async fn prune(
        &self,
        before: UnixMillis,
        max_events: usize,
    ) -> Result<PruneOutcome, StoreError> {
        if max_events == 0 {
            return Ok(PruneOutcome::default());
        }
        match self
            .deliver(DeliveryWrite::Prune { before, max_events })
            .await?
        {
            DeliveryAnswer::Pruned(outcome) => Ok(outcome),
            _ => Err(answer_mismatch()),
        }
    }

    fn job_signal(&self) -> Arc<JobSignal> {
        Arc::clone(&self.signal)
    }

    async fn load_config(&self) -> Result<Option<ConfigDocument>, StoreError> {
        self.readers.run(queries::load_config).await
    }

    async fn save_config(&self, document: serde_json::Value) -> Result<ConfigVersion, StoreError> {
        let text =
            serde_json::to_string(&document).map_err(|err| StoreError::Backend(Box::new(err)))?;
        let answer = self.writer.submit_config(text)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn config_versions(&self) -> Result<Vec<ConfigVersion>, StoreError> {
        self.readers.run(queries::config_versions).await
    }

    async fn profile_inbox(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.readers
            .run(move |conn| profiles::inbox(conn, limit))
            .await
    }

    async fn stored_events(
        &self,
        after: EventId,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.readers
            .run(move |conn| profiles::events_after(conn, after, limit))
            .await
    }

    async fn last_event_id(&self) -> Result<Option<EventId>, StoreError> {
        self.readers.run(profiles::last_event_id).await
    }

    async fn load_profiles(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<StoredProfile>, StoreError> {
        self.readers
            .run(move |conn| profiles::load(conn, from, limit))
            .await
    }

    async fn find_profile(
        &self,
        id_type: &str,
        value: &str,
    ) -> Result<Option<StoredProfile>, StoreError> {
        let (id_type, value) = (id_type.to_owned(), value.to_owned());
        self.readers
            .run(move |conn| profiles::find(conn, &id_type, &value))
            .await
    }

    async fn profile_worker(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.readers.run(profiles::worker).await
    }

    async fn lead_profiles(&self, _owner: &str, _lease_ms: i64) -> Result<bool, StoreError> {
        // One process owns an embedded database: its worker always leads.
        Ok(true)
    }

    async fn save_profiles(&self, checkpoint: ProfileCheckpoint) -> Result<(), StoreError> {
        let answer = self.writer.submit_profiles(checkpoint)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn privacy_secret(&self, candidate: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        match self.privacy(PrivacyWrite::Secret(candidate)).await? {
            PrivacyAnswer::Secret(secret) => Ok(secret),
            _ => Err(answer_mismatch()),
        }
    }

    async fn create_regulation(
        &self,
        regulation: NewRegulation,
    ) -> Result<StoredRegulation, StoreError> {
        match self.privacy(PrivacyWrite::Create(regulation)).await? {
            PrivacyAnswer::Created(regulation) => Ok(regulation),
            _ => Err(answer_mismatch()),
        }
    }

    async fn regulations(&self, limit: usize) -> Result<Vec<StoredRegulation>, StoreError> {
        self.readers
            .run(move |conn| privacy::list(conn, limit))
            .await
    }

    async fn regulation(&self, id: i64) -> Result<Option<StoredRegulation>, StoreError> {
        self.readers.run(move |conn| privacy::one(conn, id)).await
    }

    async fn pending_regulations(&self) -> Result<Vec<StoredRegulation>, StoreError> {
        self.readers.run(privacy::pending).await
    }

    async fn update_regulation(&self, update: RegulationUpdate) -> Result<(), StoreError> {
        match self.privacy(PrivacyWrite::Update(update)).await? {
            PrivacyAnswer::Updated => Ok(()),
            _ => Err(answer_mismatch()),
        }
    }

    async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        self.readers.run(privacy::suppressions).await
    }

    async fn delete_events(&self, ids: Vec<EventId>) -> Result<DeletedEvents, StoreError> {
        if ids.is_empty() {
            return Ok(DeletedEvents::default());
        }
        match self.privacy(PrivacyWrite::Delete(ids)).await? {
            PrivacyAnswer::Deleted(deleted) => Ok(deleted),
            _ => Err(answer_mismatch()),
        }
    }

    fn stats(&self) -> StoreStats {
        self.writer.stats()
    }

    async fn close(&self) -> Result<(), StoreError> {
        // Refuse new writes at once, before waiting on a blocking thread.
        let Some(thread) = self.writer.begin_shutdown() else {
            return Ok(());
        };
        let maintenance = Arc::clone(&self.maintenance);
        let joined = tokio::task::spawn_blocking(move || {
            let joined = thread.join();
            maintenance.stop();
            joined
        })
        .await;
        match joined {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_panic)) => Err(StoreError::Backend("the writer thread panicked".into())),
            Err(join) => Err(StoreError::Backend(Box::new(join))),
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Finish what is queued and release the file before the store is gone, so that reopening
        // right after drop finds everything and no second writer.
        let _ = Self::shut_down(&self.maintenance, &self.writer);
    }
}
