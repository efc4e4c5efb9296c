//! The clustered storage engine: every Junction node of a cluster opens the same PostgreSQL
//! database through [`PostgresStore`], which implements [`junction_store::Store`] with the same
//! behaviour as the embedded SQLite engine (the conformance suite checks both).
//!
//! - **Schema** applied at start-up by versioned, append-only migrations under an advisory lock
//!   (several nodes may start at once).
//! - **Commits** go through a small in-process queue with one committing task per node (group
//!   commit, bounded admission that fails fast with `Overloaded`); dedupe takes a
//!   transaction-scoped advisory lock on the (source, `messageId`) key so that it is exact across
//!   nodes.
//! - **Claims** use `FOR UPDATE SKIP LOCKED` and a lease (`lease_until`), so nodes never block
//!   each other and a dead node's jobs come back when its leases end; each node starts its walk
//!   of a lane past what it claimed last (`cursor.rs`), not through the consumed part.
//! - **Lanes** keep their flow control cluster-wide: each node reports its use of a lane a few
//!   times a second and is granted a share of the lane's shared adaptive limit (`lanes.rs`).
//! - **Retention** drops whole generations: the event-scoped tables are partitioned by event id,
//!   one partition per generation of [`PostgresOptions::generation_events`] ids.
//! - **Wake-ups**: commits and replays `NOTIFY` a channel (a commit naming the lanes of its
//!   jobs); a background `LISTEN`er on every node passes them to the local [`Store::job_signal`],
//!   so idle engines everywhere start at once without listing every lane.

mod completions;
mod cursor;
mod error;
mod generations;
mod ingest;
mod lanes;
mod migrations;
mod notice;
mod privacy;
mod profiles;
mod queries;
mod rollup;
mod writer;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use junction_store::{
    CommitOutcome, Completion, ConfigDocument, ConfigVersion, Counts, DeadJob, DeadLetterFilter,
    DeletedEvents, DueJob, EventId, EventRecord, JobId, JobSignal, LaneBacklog, LaneDue, LaneGrant,
    LaneReport, NewEvent, NewRegulation, NewReplay, Overview, OverviewQuery, ProfileCheckpoint,
    PruneOutcome, RegulationUpdate, ReleasedJob, Store, StoreError, StoreOptions, StoreStats,
    StoredEvent, StoredProfile, StoredRegulation, Suppression, UnixMillis,
};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use tokio::task::JoinHandle;

pub use writer::WriterPause;

use crate::cursor::Cursors;
use crate::error::Error;
use crate::notice::Notice;
use crate::writer::{Partitions, Writer, WriterSettings};

/// The channel commits and replays `NOTIFY` when they add due jobs.
pub const JOBS_CHANNEL: &str = "junction_jobs";
/// The channel a configuration save `NOTIFY`s, with the new version as payload.
pub const CONFIG_CHANNEL: &str = "junction_config";

/// Settings of the PostgreSQL engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The settings every engine honours.
    pub store: StoreOptions,
    /// Connections this node keeps to the database (reads, claims, completions, the writer).
    pub max_connections: u32,
    /// How long an operation waits for a free connection before failing as unavailable.
    pub acquire_timeout: Duration,
    /// Event ids per generation: the size of the partitions retention drops whole. Applies to
    /// the generations created from now on; existing ones keep their bounds.
    pub generation_events: u64,
}

/// The default [`PostgresOptions::generation_events`]: at 1,000 events a second, a generation
/// every three hours. Fewer, larger partitions keep lookups by job id alone (which probe every
/// partition) cheap.
pub const DEFAULT_GENERATION_EVENTS: u64 = 10_000_000;

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            store: StoreOptions::default(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            generation_events: DEFAULT_GENERATION_EVENTS,
        }
    }
}

/// The PostgreSQL engine: see the crate documentation.
pub struct PostgresStore {
    pool: PgPool,
    writer: Writer,
    signal: Arc<JobSignal>,
    listener: JoinHandle<()>,
    generation_events: i64,
    cursors: Arc<Cursors>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/database`), applies pending migrations and
    /// starts the writer and the `LISTEN`er. Must be called within a Tokio runtime.
    pub async fn open(url: &str, options: PostgresOptions) -> Result<PostgresStore, StoreError> {
        let open_error = |source: sqlx::Error| StoreError::Open {
            path: redact(url).into(),
            source: Box::new(source),
        };
        let connect: PgConnectOptions = url.parse().map_err(open_error)?;
        {
            let mut conn = connect.connect().await.map_err(open_error)?;
            migrations::migrate(&mut conn).await?;
            let _ = conn.close().await;
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(open_error)?;
        let generation_events = i64::try_from(options.generation_events.max(1)).unwrap_or(i64::MAX);
        let next_id = {
            let mut conn = pool.acquire().await.map_err(Error::from)?;
            generations::next_event_id(&mut conn).await?
        };
        let partitions_until = generations::ensure(
            &pool,
            generation_events,
            next_id.saturating_add(generation_events.saturating_mul(2)),
        )
        .await?;
        let signal = Arc::new(JobSignal::new());
        let cursors = Arc::new(Cursors::default());
        let listener = tokio::spawn(listen(
            pool.clone(),
            Arc::clone(&signal),
            Arc::clone(&cursors),
        ));
        let settings = WriterSettings {
            dedupe_window_ms: i64::try_from(options.store.dedupe_window.as_millis())
                .unwrap_or(i64::MAX),
            max_group_events: options.store.max_group_events.max(1),
            generation_events,
        };
        let writer = Writer::start(
            pool.clone(),
            settings,
            options.store.queue_capacity,
            Arc::clone(&signal),
            Partitions {
                until: partitions_until,
                newest_event: next_id - 1,
                sealed: generations::sealed(&pool).await?,
            },
        );
        Ok(PostgresStore {
            pool,
            writer,
            signal,
            listener,
            generation_events,
            cursors,
        })
    }

    /// Holds the writer: commits queue up (and fail with `Overloaded` past capacity) until the
    /// guard is dropped. For tests.
    pub fn pause_writer(&self) -> WriterPause {
        self.writer.pause()
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.writer.shared.closed.load(Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Holds a `LISTEN` connection and passes every job notification to `signal` (`notice.rs`): a
/// commit's names the lanes it made due; one naming a single lane (jobs given back or brought
/// forward) resets that lane's cursor and asks for a listing, as does any other. Reconnects after
/// a lost connection, and asks for a listing then, since notifications may have been missed.
async fn listen(pool: PgPool, signal: Arc<JobSignal>, cursors: Arc<Cursors>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(err) = listener.listen(JOBS_CHANNEL).await {
                    tracing::warn!(error = %err, "cannot LISTEN for jobs");
                } else {
                    cursors.reset_all();
                    signal.wake();
                    loop {
                        match listener.recv().await {
                            Ok(notification) => match notice::read(notification.payload()) {
                                Notice::Due { due_at, lanes } => signal.lanes_due(lanes, due_at),
                                Notice::Lane(lane) => {
                                    cursors.reset(lane);
                                    signal.wake();
                                }
                                Notice::Any => signal.wake(),
                            },
                            Err(err) => {
                                tracing::warn!(error = %err, "job notifications lost");
                                break;
                            }
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot connect the job listener"),
        }
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Headers as stored: a JSON array of `[name, value]` pairs, order and duplicates kept.
pub(crate) fn encode_headers(headers: &[(String, String)]) -> Result<String, Error> {
    serde_json::to_string(headers).map_err(|err| Error::Corrupt(format!("headers: {err}")))
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn commit(&self, batch: Vec<NewEvent>) -> Result<Vec<CommitOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let answer = self.writer.submit_commit(batch)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn events_by_message_id(
        &self,
        source_id: &str,
        message_id: &str,
    ) -> Result<Vec<EventRecord>, StoreError> {
        Ok(queries::events_by_message_id(&self.pool, source_id, message_id).await?)
    }

    async fn event(&self, id: EventId) -> Result<Option<EventRecord>, StoreError> {
        Ok(queries::event(&self.pool, id).await?)
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        Ok(queries::counts(&self.pool).await?)
    }

    async fn lanes(&self) -> Result<Vec<LaneDue>, StoreError> {
        Ok(queries::lanes(&self.pool).await?)
    }

    async fn lane_backlogs(&self) -> Result<Vec<LaneBacklog>, StoreError> {
        Ok(queries::lane_backlogs(&self.pool).await?)
    }

    async fn claim_jobs(
        &self,
        endpoint: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: usize,
    ) -> Result<Vec<DueJob>, StoreError> {
        self.check_open()?;
        Ok(queries::claim(&self.pool, &self.cursors, endpoint, now, lease_until, limit).await?)
    }

    fn shares_lanes(&self) -> bool {
        true
    }

    async fn sync_lane(&self, report: LaneReport) -> Result<LaneGrant, StoreError> {
        self.check_open()?;
        Ok(lanes::sync(&self.pool, &report).await?)
    }

    async fn release_jobs(&self, jobs: Vec<ReleasedJob>) -> Result<(), StoreError> {
        self.check_open()?;
        if jobs.is_empty() {
            return Ok(());
        }
        // This node's claims of those lanes walk from the floor again at once, without waiting
        // for the notification.
        for lane in queries::release(&self.pool, &jobs).await? {
            self.cursors.reset(&lane);
        }
        self.signal.wake();
        Ok(())
    }

    async fn expedite_retries(
        &self,
        endpoint: &str,
        now: UnixMillis,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.check_open()?;
        if limit == 0 {
            return Ok(0);
        }
        let moved = queries::expedite(&self.pool, endpoint, now, limit).await?;
        if moved > 0 {
            self.cursors.reset(endpoint);
            self.signal.wake();
        }
        Ok(moved)
    }

    async fn complete_jobs(&self, completions: Vec<Completion>) -> Result<(), StoreError> {
        self.check_open()?;
        Ok(completions::complete(&self.pool, &completions).await?)
    }

    async fn dead_letter(&self, filter: DeadLetterFilter) -> Result<Vec<DeadJob>, StoreError> {
        Ok(queries::dead_letter(&self.pool, &filter).await?)
    }

    async fn replay_jobs(&self, replays: Vec<NewReplay>) -> Result<Vec<JobId>, StoreError> {
        self.check_open()?;
        if replays.is_empty() {
            return Ok(Vec::new());
        }
        let ids = queries::replay(&self.pool, &replays).await?;
        self.signal.wake();
        Ok(ids)
    }

    async fn prune(
        &self,
        before: UnixMillis,
        max_events: usize,
    ) -> Result<PruneOutcome, StoreError> {
        self.check_open()?;
        Ok(queries::prune(&self.pool, before, max_events, self.generation_events).await?)
    }

    async fn overview(&self, query: OverviewQuery) -> Result<Overview, StoreError> {
        Ok(rollup::overview(&self.pool, &query).await?)
    }

    fn job_signal(&self) -> Arc<JobSignal> {
        Arc::clone(&self.signal)
    }

    async fn load_config(&self) -> Result<Option<ConfigDocument>, StoreError> {
        Ok(queries::load_config(&self.pool).await?)
    }

    async fn save_config(&self, document: serde_json::Value) -> Result<ConfigVersion, StoreError> {
        let text =
            serde_json::to_string(&document).map_err(|err| StoreError::Backend(Box::new(err)))?;
        let answer = self.writer.submit_config(text)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn config_versions(&self) -> Result<Vec<ConfigVersion>, StoreError> {
        Ok(queries::config_versions(&self.pool).await?)
    }

    async fn profile_inbox(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(profiles::inbox(&self.pool, limit).await?)
    }

    async fn stored_events(
        &self,
        after: EventId,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(profiles::events_after(&self.pool, after, limit).await?)
    }

    async fn last_event_id(&self) -> Result<Option<EventId>, StoreError> {
        Ok(profiles::last_event_id(&self.pool).await?)
    }

    async fn load_profiles(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<StoredProfile>, StoreError> {
        Ok(profiles::load(&self.pool, from, limit).await?)
    }

    async fn find_profile(
        &self,
        id_type: &str,
        value: &str,
    ) -> Result<Option<StoredProfile>, StoreError> {
        Ok(profiles::find(&self.pool, id_type, value).await?)
    }

    async fn profile_worker(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(profiles::worker(&self.pool).await?)
    }

    async fn lead_profiles(&self, owner: &str, lease_ms: i64) -> Result<bool, StoreError> {
        Ok(profiles::lead(&self.pool, owner, lease_ms).await?)
    }

    async fn save_profiles(&self, checkpoint: ProfileCheckpoint) -> Result<(), StoreError> {
        Ok(profiles::save(&self.pool, &checkpoint).await?)
    }

    async fn privacy_secret(&self, candidate: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        self.check_open()?;
        Ok(privacy::secret(&self.pool, &candidate).await?)
    }

    async fn create_regulation(
        &self,
        regulation: NewRegulation,
    ) -> Result<StoredRegulation, StoreError> {
        self.check_open()?;
        Ok(privacy::create(&self.pool, &regulation).await?)
    }

    async fn regulations(&self, limit: usize) -> Result<Vec<StoredRegulation>, StoreError> {
        Ok(privacy::list(&self.pool, limit).await?)
    }

    async fn regulation(&self, id: i64) -> Result<Option<StoredRegulation>, StoreError> {
        Ok(privacy::one(&self.pool, id).await?)
    }

    async fn pending_regulations(&self) -> Result<Vec<StoredRegulation>, StoreError> {
        Ok(privacy::pending(&self.pool).await?)
    }

    async fn update_regulation(&self, update: RegulationUpdate) -> Result<(), StoreError> {
        self.check_open()?;
        Ok(privacy::update(&self.pool, &update).await?)
    }

    async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        Ok(privacy::suppressions(&self.pool).await?)
    }

    async fn delete_events(&self, ids: Vec<EventId>) -> Result<DeletedEvents, StoreError> {
        self.check_open()?;
        if ids.is_empty() {
            return Ok(DeletedEvents::default());
        }
        Ok(privacy::delete(&self.pool, &ids).await?)
    }

    fn stats(&self) -> StoreStats {
        self.writer.stats()
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.writer.shutdown().await
    }
}
