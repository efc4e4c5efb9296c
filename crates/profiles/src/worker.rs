//! The profile worker: one task per process, of which one leads (the store's lease). Each step
//! takes in a batch of the inbox (or, after the definitions changed, a page of the backfill's
//! walk over every stored event), refreshes the profiles that changed or whose window edge has
//! passed, makes the syncs that are due, commits them as events, and writes a checkpoint.
//!
//! Exactly once, without a distributed transaction: the syncs are committed before the
//! checkpoint that records them, under `messageId`s that a step redone after a crash makes
//! again identically (see `sync::message_id`), so the store's dedupe drops the second copy.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use junction_audience::{Definitions, Limits, ProfileId};
use junction_store::{EventId, NewEvent, ProfileCheckpoint, Store, StoreError};
use junction_workspace::Snapshot;
use tokio::sync::Notify;

use crate::book::{Book, Scope};
use crate::clock::Clock;
use crate::document::{
    Backfill, ConnectionState, HISTORY_SAMPLES, SizeSample, WorkerDoc, connection_key,
};
use crate::error::ProfilesError;
use crate::privacy::{Regulating, Suppressions, carry_out};
use crate::sync::{PERSONAS_SOURCE, Sync as SyncValue, new_event};

/// How many times a sync commit waits for room in a full commit queue (200 ms each) before the
/// step fails.
const OVERLOADED_WAITS: u32 = 150;

/// The workspace snapshot in force, read at each step.
pub type Snapshots = Arc<dyn Fn() -> Arc<Snapshot> + Send + Sync>;

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Inbox events taken in per step at most. A step holds them all (payloads and parsed
    /// events) at once: 20,000 made the server's peak memory at full rate ≈ 35 MiB higher than
    /// 2,000, for ≈ 5% less CPU (BENCHMARKS.md, "CPU per delivered event and memory").
    pub batch: usize,
    /// Stored events walked per backfill step.
    pub backfill_batch: usize,
    /// The pause after a step that emptied the inbox: events gather meanwhile, so that a busy
    /// source's profiles are written once per pause rather than once per few events (the cost
    /// of a step is mostly its checkpoint, which rewrites each changed profile once).
    pub idle: Duration,
    /// How long a lead lasts without renewal.
    pub lease: Duration,
    /// How often every profile is checked for a passed window edge (the spec asks within a
    /// minute).
    pub edge_scan: Duration,
    /// How often the sizes are recounted.
    pub count_every: Duration,
    /// How often a size sample is added to the history.
    pub sample_every: Duration,
    /// Identifier limits per profile.
    pub limits: Limits,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            batch: 2_000,
            backfill_batch: 10_000,
            idle: Duration::from_secs(1),
            lease: Duration::from_secs(15),
            edge_scan: Duration::from_secs(5),
            count_every: Duration::from_secs(10),
            sample_every: Duration::from_secs(3_600),
            limits: Limits::default(),
        }
    }
}

/// What the rest of the server holds of the worker: how to wake it, and ask for a sync now.
#[derive(Debug, Default)]
pub struct WorkerHandle {
    wake: Notify,
    requests: Mutex<BTreeSet<String>>,
}

impl WorkerHandle {
    /// Asks for a sync of `definition` to `destination` at the next step, whatever its schedule.
    pub fn sync_now(&self, definition: &str, destination: &str) {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(connection_key(definition, destination));
        self.wake.notify_one();
    }

    /// Wakes the worker (a configuration change).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn take_requests(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.requests.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// What a leading worker holds in memory.
struct Leading {
    book: Book,
    doc: WorkerDoc,
    renewed: Instant,
    last_edge_scan: i64,
    last_count: i64,
    saved_doc: Vec<u8>,
}

/// The profile worker.
pub struct ProfileWorker {
    store: Arc<dyn Store>,
    snapshots: Snapshots,
    clock: Arc<dyn Clock>,
    owner: String,
    settings: WorkerSettings,
    handle: Arc<WorkerHandle>,
    leading: Option<Leading>,
    suppressions: Option<Arc<Suppressions>>,
}

/// What a step did, to decide how long to wait before the next.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome {
    /// Whether the worker leads.
    pub leading: bool,
    /// Whether more work is waiting (a full inbox batch, a backfill under way).
    pub more: bool,
    /// Events taken in (inbox or backfill).
    pub taken_in: usize,
    /// Sync events committed.
    pub synced: usize,
}

impl ProfileWorker {
    /// A worker for `owner` (unique per process, e.g. the node's id).
    pub fn new(
        store: Arc<dyn Store>,
        snapshots: Snapshots,
        clock: Arc<dyn Clock>,
        owner: String,
        settings: WorkerSettings,
    ) -> ProfileWorker {
        ProfileWorker {
            store,
            snapshots,
            clock,
            owner,
            settings,
            handle: Arc::new(WorkerHandle::default()),
            leading: None,
            suppressions: None,
        }
    }

    /// The same, carrying out regulations (deleting and suppressing a person) and keeping
    /// `suppressions` (the Tracking API's list) up to date as they finish. Without it,
    /// regulations wait for a worker that has one.
    #[must_use]
    pub fn with_suppressions(mut self, suppressions: Arc<Suppressions>) -> ProfileWorker {
        self.suppressions = Some(suppressions);
        self
    }

    /// The handle to wake it and ask for syncs.
    pub fn handle(&self) -> Arc<WorkerHandle> {
        Arc::clone(&self.handle)
    }

    /// Runs steps until `shutdown` completes. A failed step is logged and retried after the
    /// worker reloads what the store holds: nothing it had not checkpointed is trusted.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = match self.step().await {
                Ok(outcome) if outcome.more => Duration::ZERO,
                Ok(outcome) if outcome.leading => self.settings.idle,
                Ok(_) => self.settings.lease / 5,
                Err(err) => {
                    tracing::warn!(error = %err, "profile worker step failed; retrying");
                    self.leading = None;
                    Duration::from_secs(1)
                }
            };
            let handle = Arc::clone(&self.handle);
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = handle.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One step (see the module's documentation).
    pub async fn step(&mut self) -> Result<StepOutcome, ProfilesError> {
        if !self.lead().await? {
            return Ok(StepOutcome::default());
        }
        let now = self.clock.now_ms();
        // First, before anything else changes the book: a deletion's checkpoint then carries
        // only the profiles it removed.
        self.regulate(now).await?;
        let snapshot = (self.snapshots)();
        let definitions = snapshot.definitions();
        let Some(leading) = self.leading.as_mut() else {
            return Ok(StepOutcome::default());
        };
        let wanted = fingerprint(definitions);
        let backfill_wanted = match &leading.doc.backfill {
            Some(backfill) => backfill.for_definitions != wanted,
            None => leading.doc.built_for != wanted,
        };
        if backfill_wanted {
            let until = self.store.last_event_id().await?.map_or(0, |id| id.0);
            leading.book.reset_states(definitions);
            leading.doc.backfill = Some(Backfill {
                for_definitions: wanted,
                after: 0,
                until,
                walked: 0,
                started_at: now,
            });
            tracing::info!(
                definitions = definitions.len(),
                profiles = leading.book.len(),
                "definitions changed: recomputing every profile from the stored events"
            );
        }

        let mut outcome = StepOutcome {
            leading: true,
            ..StepOutcome::default()
        };
        let mut consumed = Vec::new();
        let mut changed: Vec<ProfileId> = Vec::new();
        if let Some(mut backfill) = leading.doc.backfill.take() {
            let mut page = self
                .store
                .stored_events(EventId(backfill.after), self.settings.backfill_batch)
                .await?;
            page.retain(|event| event.id.0 <= backfill.until);
            for event in &page {
                backfill.after = event.id.0;
                backfill.walked += 1;
                if event.source_id == PERSONAS_SOURCE {
                    continue;
                }
                let Ok(value) = junction_event::value_from_slice(&event.payload) else {
                    continue;
                };
                leading.book.take_in(definitions, value, event.id.0, now);
            }
            outcome.taken_in = page.len();
            if page.is_empty() {
                tracing::info!(
                    events = backfill.walked,
                    ms = now - backfill.started_at,
                    "backfill done"
                );
                leading.doc.built_for = backfill.for_definitions;
                // Every event up to `until` was walked (a document from before `until` existed
                // walked to the end it found).
                leading.doc.walked_upto = if backfill.until == i64::MAX {
                    backfill.after
                } else {
                    backfill.until
                };
                changed = leading.book.refresh(definitions, now, Scope::All);
                leading.last_edge_scan = now;
                leading.last_count = i64::MIN;
                // The inbox gathered meanwhile: take it in at once.
                outcome.more = true;
            } else {
                leading.doc.backfill = Some(backfill);
                outcome.more = true;
            }
        } else {
            let inbox = self.store.profile_inbox(self.settings.batch).await?;
            outcome.more = inbox.len() >= self.settings.batch;
            outcome.taken_in = inbox.len();
            for event in &inbox {
                consumed.push(event.id);
                if event.id.0 <= leading.doc.walked_upto || event.source_id == PERSONAS_SOURCE {
                    // Already in the states: the backfill walked it.
                    continue;
                }
                let Ok(value) = junction_event::value_from_slice(&event.payload) else {
                    continue;
                };
                leading.book.take_in(definitions, value, event.id.0, now);
            }
            let scan_edges =
                now.saturating_sub(leading.last_edge_scan) >= millis(self.settings.edge_scan);
            if scan_edges {
                leading.last_edge_scan = now;
            }
            let scope = if scan_edges {
                Scope::ChangedOrDue
            } else {
                Scope::Changed
            };
            changed = leading.book.refresh(definitions, now, scope);
        }

        let mut syncs = Vec::new();
        if leading.doc.backfill.is_none() {
            let requests = self.handle.take_requests();
            reconcile_connections(leading, &snapshot, now);
            syncs = collect_syncs(leading, &snapshot, &changed, &requests, now);
        }
        if !syncs.is_empty() {
            outcome.synced = syncs.len();
            for chunk in syncs.chunks(500) {
                commit_syncs(&*self.store, chunk.to_vec()).await?;
            }
        }

        let count_every = millis(self.settings.count_every);
        if leading.doc.backfill.is_none() && now.saturating_sub(leading.last_count) >= count_every {
            leading.last_count = now;
            leading.doc.sizes = leading.book.sizes(definitions);
            leading.doc.profiles = leading.book.len() as u64;
            let sample_every = millis(self.settings.sample_every);
            let last_sample = leading.doc.history.last().map_or(i64::MIN, |s| s.at);
            let sizes_moved = leading
                .doc
                .history
                .last()
                .is_none_or(|sample| sample.sizes != leading.doc.sizes);
            if now.saturating_sub(last_sample) >= sample_every
                || (sizes_moved && now.saturating_sub(last_sample) >= count_every)
            {
                leading.doc.history.push(SizeSample {
                    at: now,
                    sizes: leading.doc.sizes.clone(),
                });
                let excess = leading.doc.history.len().saturating_sub(HISTORY_SAMPLES);
                leading.doc.history.drain(..excess);
            }
        }

        let (upserts, removed) = leading.book.take_changes()?;
        let worker = serde_json::to_vec(&leading.doc)
            .map_err(|err| ProfilesError::Corrupt(format!("worker document: {err}")))?;
        if !consumed.is_empty()
            || !upserts.is_empty()
            || !removed.is_empty()
            || worker != leading.saved_doc
        {
            self.store
                .save_profiles(ProfileCheckpoint {
                    owner: self.owner.clone(),
                    consumed,
                    upserts,
                    removed,
                    worker: worker.clone(),
                })
                .await?;
            leading.saved_doc = worker;
        }
        Ok(outcome)
    }

    /// Carries out the pending regulations, oldest first.
    async fn regulate(&mut self, now: i64) -> Result<(), ProfilesError> {
        let (Some(suppressions), Some(leading)) = (&self.suppressions, self.leading.as_mut())
        else {
            return Ok(());
        };
        let pending = self.store.pending_regulations().await?;
        for regulation in pending {
            let ctx = Regulating {
                store: &*self.store,
                suppressions,
                owner: &self.owner,
                saved_doc: &leading.saved_doc,
                now,
            };
            carry_out(&ctx, &mut leading.book, regulation).await?;
        }
        Ok(())
    }

    /// Takes or renews the lead; loads the profiles when it was just taken. Answers whether this
    /// worker leads.
    async fn lead(&mut self) -> Result<bool, ProfilesError> {
        let lease_ms = millis(self.settings.lease);
        let renew_after = self.settings.lease / 3;
        if let Some(leading) = &mut self.leading {
            if leading.renewed.elapsed() < renew_after {
                return Ok(true);
            }
            if self.store.lead_profiles(&self.owner, lease_ms).await? {
                leading.renewed = Instant::now();
                return Ok(true);
            }
            tracing::info!(owner = %self.owner, "the profile worker's lead passed to another node");
            self.leading = None;
            return Ok(false);
        }
        if !self.store.lead_profiles(&self.owner, lease_ms).await? {
            return Ok(false);
        }
        let renewed = Instant::now();
        let mut book = Book::new(self.settings.limits);
        let mut from = 0;
        loop {
            let page = self.store.load_profiles(from, 10_000).await?;
            let Some(last) = page.last() else { break };
            from = last.id + 1;
            for stored in &page {
                book.restore(stored)?;
            }
        }
        let saved_doc = self.store.profile_worker().await?.unwrap_or_default();
        let doc = if saved_doc.is_empty() {
            WorkerDoc::default()
        } else {
            serde_json::from_slice(&saved_doc)
                .map_err(|err| ProfilesError::Corrupt(format!("worker document: {err}")))?
        };
        tracing::info!(owner = %self.owner, profiles = book.len(), "leading the profile worker");
        self.leading = Some(Leading {
            book,
            doc,
            renewed,
            last_edge_scan: i64::MIN,
            last_count: i64::MIN,
            saved_doc,
        });
        Ok(true)
    }
}

/// Commits sync events, waiting while the store's commit queue is full (ingestion has priority;
/// failing the step would throw away the profiles in memory and reload them).
async fn commit_syncs(store: &dyn Store, events: Vec<NewEvent>) -> Result<(), ProfilesError> {
    let mut waits = 0;
    loop {
        match store.commit(events.clone()).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Overloaded { .. }) if waits < OVERLOADED_WAITS => {
                waits += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// A duration in the clock's unit (ms), saturating.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The definitions as a state is built for them: (key, text), in order.
fn fingerprint(definitions: &Definitions) -> Vec<(String, String)> {
    definitions
        .list()
        .iter()
        .map(|definition| (definition.key().to_owned(), definition.text().to_owned()))
        .collect()
}

/// Brings the tracked connections in line with the workspace: a new one gets a new id (and
/// sends every member once), a removed one is forgotten.
fn reconcile_connections(leading: &mut Leading, snapshot: &Snapshot, now: i64) {
    let configured: BTreeSet<String> = snapshot
        .config()
        .audiences
        .iter()
        .flat_map(|audience| {
            audience
                .connections
                .iter()
                .map(|connection| connection_key(&audience.key, &connection.destination))
        })
        .collect();
    let before = leading.doc.connections.len();
    leading
        .doc
        .connections
        .retain(|key, _| configured.contains(key));
    let forgot = leading.doc.connections.len() != before;
    for key in configured {
        if leading.doc.connections.contains_key(&key) {
            continue;
        }
        leading.doc.connections_made += 1;
        let id = format!("c{}", leading.doc.connections_made);
        leading.doc.connections.insert(
            key,
            ConnectionState {
                id,
                initial_done: false,
                last_sync_at: now,
                sync_requested: false,
            },
        );
    }
    if forgot {
        let live: BTreeSet<&str> = leading
            .doc
            .connections
            .values()
            .map(|connection| connection.id.as_str())
            .collect();
        leading.book.forget_connections(&live);
    }
}

/// The sync events due now: for each connection, every profile when it is new, asked for, or
/// its period has passed; the profiles whose values just changed when it is real-time.
fn collect_syncs(
    leading: &mut Leading,
    snapshot: &Snapshot,
    changed: &[ProfileId],
    requests: &BTreeSet<String>,
    now: i64,
) -> Vec<NewEvent> {
    let received_at = SystemTime::now();
    let mut events = Vec::new();
    let mut everyone: Option<Vec<ProfileId>> = None;
    for audience in &snapshot.config().audiences {
        for connection in &audience.connections {
            let key = connection_key(&audience.key, &connection.destination);
            let Some(state) = leading.doc.connections.get_mut(&key) else {
                continue;
            };
            if requests.contains(&key) {
                state.sync_requested = true;
            }
            let period_passed = connection.every_hours.is_some_and(|hours| {
                now.saturating_sub(state.last_sync_at) >= i64::from(hours) * 3_600_000
            });
            let whole = !state.initial_done || state.sync_requested || period_passed;
            let profiles: &[ProfileId] = if whole {
                state.initial_done = true;
                state.sync_requested = false;
                state.last_sync_at = now;
                everyone.get_or_insert_with(|| leading.book.ids().collect())
            } else if connection.every_hours.is_none() {
                changed
            } else {
                &[]
            };
            let connection_id = state.id.clone();
            for &profile in profiles {
                let Some((value, number)) =
                    leading.book.sync(profile, &audience.key, &connection_id)
                else {
                    continue;
                };
                let sync = SyncValue {
                    key: &audience.key,
                    kind: audience.kind,
                    destination: &connection.destination,
                    connection: &connection_id,
                    profile: profile.0,
                    number,
                    value,
                    at: now,
                };
                let (Some(identifiers), Some(doc)) =
                    (leading.book.identifiers(profile), leading.book.doc(profile))
                else {
                    continue;
                };
                match new_event(
                    snapshot,
                    &sync,
                    identifiers,
                    doc.last_anonymous_id.as_deref(),
                    received_at,
                ) {
                    Ok(event) => events.push(event),
                    Err(err) => tracing::warn!(error = %err, "a sync event could not be encoded"),
                }
            }
        }
    }
    events
}
