//! The delivery engine: a dispatcher that watches the store's lanes, one task per lane that claims
//! that lane's due jobs and starts attempts within its flow control, and a completer that records
//! outcomes in batches.
//!
//! ```text
//!  store.job_signal ── lanes named ──────▶ dispatcher ──▶ wake those lane tasks
//!  other signals / timer ─▶ dispatcher ── lanes() ──▶ wake lane tasks whose jobs are due
//!  lane task: claim_jobs(lane) ─▶ buffer ─▶ LaneControl::room ─▶ spawn attempt ─▶ HttpSender
//!             (in a cluster: sync_lane ─▶ this node's share of the lane's limit)
//!  attempt: classify ─▶ Completion ─▶ completer ── complete_jobs(batch) ─▶ store
//! ```
//!
//! A lane only ever waits on its own endpoint, its own buffer and its own limits, so a failing or
//! slow endpoint delays nobody else. Memory is bounded by the lane buffers: backlogs stay in the
//! store.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use junction_store::{
    AttemptRecord, Completion, DueJob, JobId, JobState, JobUrl, ReleasedJob, Store, StoreError,
    UnixMillis, Woken,
};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::backoff::Backoff;
use crate::classify::{AttemptError, AttemptResult, ErrorClass, Verdict, classify};
use crate::client::{ClientOptions, HttpSender};
use crate::error::DeliveryError;
use crate::failure_log::FailureLog;
use crate::lane::{LaneControl, LaneLimits, Slot};
use crate::lane_sync::LaneSync;

/// Per-destination delivery settings the engine needs, read at each claim so that a
/// configuration change applies to running lanes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LanePolicy {
    /// Flow-control limits of each of the destination's lanes.
    pub limits: LaneLimits,
    /// How long after its creation a job is retried; then it expires into the dead letter.
    pub retry_window: Duration,
}

impl Default for LanePolicy {
    fn default() -> Self {
        LanePolicy {
            limits: LaneLimits::default(),
            retry_window: Duration::from_secs(4 * 60 * 60),
        }
    }
}

/// Where the engine reads each destination's [`LanePolicy`] (the serving binary reads its current
/// configuration snapshot). Must be cheap: it is called at every claim.
pub trait PolicySource: Send + Sync + 'static {
    /// The policy of `destination_id`; a destination no longer configured gets the defaults, so
    /// that its remaining jobs are still delivered or expire.
    fn policy(&self, destination_id: &str) -> LanePolicy;

    /// The URL a job of `destination_id` addressed to its setting `key` goes to now
    /// ([`JobUrl::Setting`]), or why it cannot be sent (the destination is gone, the setting is
    /// missing or not a URL). Called once per attempt.
    fn setting_url(&self, destination_id: &str, key: &str) -> Result<String, String>;
}

/// Engine tuning. The defaults suit one node on a small machine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How long a claimed job stays leased: if this process dies, the job is due again after it.
    /// A buffered job is started only while at least the request timeout of it is left, and
    /// given back otherwise.
    pub lease: Duration,
    /// The longest the dispatcher sleeps without a signal (retries and ended leases are found at
    /// the latest after this).
    pub idle_poll: Duration,
    /// Retry delays.
    pub backoff: Backoff,
    /// The shared HTTP client's options.
    pub client: ClientOptions,
    /// The most completions recorded in one store write.
    pub completion_batch: usize,
    /// The most attempts answered whose outcome is not yet recorded (durably) before lanes stop
    /// starting new ones: what a crash can make Junction send twice, beyond the requests in
    /// flight. Reached only when the store cannot keep up with deliveries.
    pub max_unrecorded: usize,
    /// The most jobs a lane holds claimed but not started.
    pub max_lane_buffer: usize,
    /// Where each job's outcome is counted (the server's Prometheus metrics); none counts nothing.
    pub metrics: Option<Arc<dyn DeliveryMetrics>>,
    /// In a cluster: how often an active lane reports its use and renews its share.
    pub lane_sync: Duration,
    /// In a cluster: how long a node's share of a lane outlives its last report (a dead node's
    /// share returns to the others after this).
    pub lane_share_lease: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lease: Duration::from_secs(5 * 60),
            idle_poll: Duration::from_secs(1),
            backoff: Backoff::default(),
            client: ClientOptions::default(),
            completion_batch: 1_000,
            max_unrecorded: 1_000,
            max_lane_buffer: 1_000,
            metrics: None,
            // Ten reports a second per active lane and node: a share moves between nodes within
            // a few hundred milliseconds, at a cost of a few small transactions.
            lane_sync: Duration::from_millis(100),
            lane_share_lease: Duration::from_secs(5),
        }
    }
}

/// What became of a job after an attempt (or without one, when its retry window ended while it
/// waited), as metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryOutcome {
    /// Delivered (a 2xx answer).
    Succeeded,
    /// Failed in a retryable way; the job awaits its next attempt.
    Retried,
    /// Failed for good (a non-retryable answer); in the dead letter.
    Discarded,
    /// Its retry window ended; in the dead letter.
    Expired,
}

impl DeliveryOutcome {
    /// Every outcome, in declaration order (for tests and metric labels).
    pub const ALL: [DeliveryOutcome; 4] = [
        DeliveryOutcome::Succeeded,
        DeliveryOutcome::Retried,
        DeliveryOutcome::Discarded,
        DeliveryOutcome::Expired,
    ];

    /// The stable name used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Succeeded => "succeeded",
            DeliveryOutcome::Retried => "retried",
            DeliveryOutcome::Discarded => "discarded",
            DeliveryOutcome::Expired => "expired",
        }
    }

    fn of(state: JobState) -> DeliveryOutcome {
        match state {
            JobState::Succeeded => DeliveryOutcome::Succeeded,
            JobState::Discarded => DeliveryOutcome::Discarded,
            JobState::Expired => DeliveryOutcome::Expired,
            // Only the three above and `AwaitingRetry` come out of an attempt.
            _ => DeliveryOutcome::Retried,
        }
    }
}

/// Receives the engine's measurements (the server implements it over its Prometheus registry).
pub trait DeliveryMetrics: std::fmt::Debug + Send + Sync + 'static {
    /// The recorder of one lane, asked once when the lane starts, so that label sets are resolved
    /// once per lane rather than once per attempt.
    fn lane(&self, destination_id: &str, endpoint: &str) -> Arc<dyn LaneMetrics>;
}

/// Counts one lane's job outcomes; called once per attempt, so it must be cheap (atomics).
pub trait LaneMetrics: Send + Sync {
    /// One job's outcome: the attempt's HTTP status (none after a network error or without an
    /// attempt) and how long the attempt took (none without an attempt).
    fn outcome(&self, outcome: DeliveryOutcome, status: Option<u16>, duration: Option<Duration>);
}

/// Reads the engine's lanes for metrics without keeping the engine alive: it holds the lanes'
/// shared state only, not the completion channel whose closing [`Engine::shutdown`] waits for.
#[derive(Clone)]
pub struct LaneStatsHandle {
    lanes: Arc<Mutex<HashMap<String, Arc<Lane>>>>,
}

impl std::fmt::Debug for LaneStatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneStatsHandle").finish_non_exhaustive()
    }
}

impl LaneStatsHandle {
    /// Every lane the engine has started, by endpoint.
    pub fn lane_stats(&self) -> Vec<LaneStats> {
        let lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stats: Vec<LaneStats> = lanes
            .values()
            .map(|lane| {
                let control = lane.control.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                let paused_until = control
                    .paused_until()
                    .filter(|until| *until > now)
                    .map(|until| now_ms().saturating_add(millis(until.duration_since(now))));
                let pause_reason = paused_until.map(|_| {
                    let noted = lane.pause.lock().unwrap_or_else(PoisonError::into_inner);
                    match noted.as_ref() {
                        Some((until, reason)) if *until > now_ms() => reason.clone(),
                        // Adopted from the cluster's shared pause.
                        _ => "a Retry-After another node received".to_owned(),
                    }
                });
                LaneStats {
                    endpoint: lane.endpoint.clone(),
                    in_flight: control.in_flight(),
                    limit: control.effective_limit(),
                    held: lane
                        .held
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .len(),
                    paused_until,
                    pause_reason,
                    failing: control.failing(),
                }
            })
            .collect();
        stats.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        stats
    }
}

/// A running delivery engine. Dropping it without [`Engine::shutdown`] aborts nothing: its tasks
/// stop when the runtime does, and leases bring unfinished jobs back.
pub struct Engine {
    stop: watch::Sender<bool>,
    dispatcher: JoinHandle<()>,
    completer: JoinHandle<()>,
    shared: Arc<Shared>,
}

/// What every task of the engine shares.
struct Shared {
    store: Arc<dyn Store>,
    policies: Arc<dyn PolicySource>,
    sender: HttpSender,
    options: EngineOptions,
    completions: mpsc::UnboundedSender<Completion>,
    /// Attempts answered whose completion is not yet durable (see
    /// [`EngineOptions::max_unrecorded`]).
    unrecorded: Arc<AtomicUsize>,
    stop: watch::Receiver<bool>,
    /// Shared with [`LaneStatsHandle`]s, which must not hold the rest of this.
    lanes: Arc<Mutex<HashMap<String, Arc<Lane>>>>,
    /// This process's identity in a cluster (lanes report under it).
    node: Arc<str>,
}

/// One lane's shared state (its task owns the buffer).
struct Lane {
    endpoint: String,
    destination_id: String,
    /// Woken by the dispatcher (jobs due) and by finishing attempts (room).
    wake: Notify,
    /// Set by the dispatcher with its wake: the lane has due jobs to claim.
    due: AtomicBool,
    control: Mutex<LaneControl>,
    /// Jobs claimed and not finished (buffered or in flight): a job claimed again after its
    /// lease ended while it waited is not started twice.
    held: Mutex<HashSet<JobId>>,
    /// Where this lane's job outcomes are counted.
    metrics: Option<Arc<dyn LaneMetrics>>,
    /// How often this lane's failures may be logged.
    failures: FailureLog,
    /// Why this node last paused the lane, and until when (Unix ms): shown with the lane's
    /// state.
    pause: Mutex<Option<(UnixMillis, String)>>,
    /// Bringing forward the retries of an endpoint that recovered.
    recovery: Mutex<Recovery>,
}

/// A lane's recovery after an outage: while on, each success brings a batch of the lane's jobs
/// waiting in backoff forward (at most one batch per [`RECOVERY_STEP`]), until none is left or
/// a failure ends it.
#[derive(Debug, Default)]
struct Recovery {
    on: bool,
    /// A batch is being brought forward.
    busy: bool,
    last: Option<Instant>,
}

/// The shortest time between two batches of a recovery.
const RECOVERY_STEP: Duration = Duration::from_millis(100);

/// A snapshot of one lane, for metrics and the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneStats {
    /// The lane key.
    pub endpoint: String,
    /// Attempts in flight.
    pub in_flight: u32,
    /// The attempts this node may have in flight now: the adaptive limit, or in a cluster its
    /// share of the lane if lower.
    pub limit: u32,
    /// Jobs claimed and not finished.
    pub held: usize,
    /// Until when the lane is paused by a `Retry-After` (Unix ms), while it is.
    pub paused_until: Option<UnixMillis>,
    /// Why it is paused, while it is.
    pub pause_reason: Option<String>,
    /// Whether the endpoint's last answered attempt failed (no success since).
    pub failing: bool,
}

impl Engine {
    /// Starts the engine on the current tokio runtime.
    pub fn start(
        store: Arc<dyn Store>,
        policies: Arc<dyn PolicySource>,
        options: EngineOptions,
    ) -> Result<Engine, DeliveryError> {
        let sender = HttpSender::new(options.client.clone())?;
        let (stop_sender, stop) = watch::channel(false);
        let (completions, completion_queue) = mpsc::unbounded_channel();
        let unrecorded = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Shared {
            store,
            policies,
            sender,
            options,
            completions,
            unrecorded: Arc::clone(&unrecorded),
            stop,
            lanes: Arc::new(Mutex::new(HashMap::new())),
            // Unique per run: a restarted node must not inherit the share of its former self,
            // whose attempts may still be in flight.
            node: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)).into(),
        });
        let completer = tokio::spawn(record_completions(
            Arc::clone(&shared.store),
            completion_queue,
            shared.options.completion_batch.max(1),
            unrecorded,
        ));
        let dispatcher = tokio::spawn(dispatch(Arc::clone(&shared)));
        Ok(Engine {
            stop: stop_sender,
            dispatcher,
            completer,
            shared,
        })
    }

    /// The shared HTTP client, for test requests that must go out the way deliveries do.
    pub fn sender(&self) -> &HttpSender {
        &self.shared.sender
    }

    /// Every lane this engine has started, by endpoint.
    pub fn lane_stats(&self) -> Vec<LaneStats> {
        self.lane_stats_handle().lane_stats()
    }

    /// A handle that reads the lanes after this engine has moved (e.g. into its shutdown); it
    /// does not delay [`Engine::shutdown`].
    pub fn lane_stats_handle(&self) -> LaneStatsHandle {
        LaneStatsHandle {
            lanes: Arc::clone(&self.shared.lanes),
        }
    }

    /// Stops claiming, gives back the jobs claimed but not started, lets attempts in flight
    /// finish for up to `grace`, and records every outcome known by then. Jobs still in flight
    /// at the end keep their lease and are delivered again after it ends (at-least-once).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let _ = self.dispatcher.await;
        let lanes: Vec<Arc<Lane>> = self
            .shared
            .lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for lane in &lanes {
            lane.wake.notify_one();
        }
        // The completer ends when every sender is gone: the lane tasks, the attempts, and ours.
        drop(self.shared);
        let mut completer = self.completer;
        if tokio::time::timeout(grace, &mut completer).await.is_err() {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "delivery attempts still running at shutdown; their jobs will be retried after \
                 their lease"
            );
            completer.abort();
        }
    }
}

/// Unix milliseconds now.
fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The dispatcher: wakes the lanes a job signal names as due, and on any other signal, and at the
/// latest when the earliest known job is due (or after `idle_poll`), lists the lanes and wakes
/// those with due jobs. Commits name their lanes, so a busy store is listed about once per
/// `idle_poll`, not at every commit (in clustered mode every node hears every commit).
async fn dispatch(shared: Arc<Shared>) {
    let signal = shared.store.job_signal();
    let mut stop = shared.stop.clone();
    let idle = millis(shared.options.idle_poll).max(1);
    // When to list the lanes again even though no signal asks for it.
    let mut next = now_ms();
    loop {
        if *stop.borrow() {
            break;
        }
        let now = now_ms();
        match signal.take() {
            Woken::Lanes(lanes) if now < next => {
                for (endpoint, due_at) in lanes {
                    if due_at <= now {
                        wake(&shared, &endpoint);
                    } else {
                        next = next.min(due_at);
                    }
                }
            }
            _ => {
                next = now.saturating_add(idle);
                match shared.store.lanes().await {
                    Ok(lanes) => {
                        for due in lanes {
                            if due.next_at <= now {
                                wake(&shared, &due.endpoint);
                            } else {
                                next = next.min(due.next_at);
                            }
                        }
                    }
                    Err(StoreError::Closed) => break,
                    Err(err) => tracing::warn!(error = %err, "cannot list delivery lanes"),
                }
            }
        }
        let sleep = Duration::from_millis(u64::try_from(next.saturating_sub(now)).unwrap_or(0));
        tokio::select! {
            () = signal.notified() => {}
            () = tokio::time::sleep(sleep) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Tells `endpoint`'s lane it has due jobs.
fn wake(shared: &Arc<Shared>, endpoint: &str) {
    let lane = lane(shared, endpoint);
    lane.due.store(true, Ordering::Release);
    lane.wake.notify_one();
}

/// The lane of `endpoint`, started on first use.
fn lane(shared: &Arc<Shared>, endpoint: &str) -> Arc<Lane> {
    let mut lanes = shared.lanes.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(lane) = lanes.get(endpoint) {
        return Arc::clone(lane);
    }
    // The lane key is `destination id|host`; the id is what the policy is looked up by.
    let destination_id = endpoint
        .split_once('|')
        .map_or(endpoint, |(id, _)| id)
        .to_owned();
    let policy = shared.policies.policy(&destination_id);
    let metrics = shared
        .options
        .metrics
        .as_ref()
        .map(|metrics| metrics.lane(&destination_id, endpoint));
    let lane = Arc::new(Lane {
        endpoint: endpoint.to_owned(),
        destination_id,
        wake: Notify::new(),
        due: AtomicBool::new(true),
        control: Mutex::new(if shared.store.shares_lanes() {
            LaneControl::shared(policy.limits, Instant::now())
        } else {
            LaneControl::new(policy.limits, Instant::now())
        }),
        held: Mutex::new(HashSet::new()),
        metrics,
        failures: FailureLog::default(),
        pause: Mutex::new(None),
        recovery: Mutex::new(Recovery::default()),
    });
    lanes.insert(endpoint.to_owned(), Arc::clone(&lane));
    tokio::spawn(run_lane(Arc::clone(shared), Arc::clone(&lane)));
    lane
}

/// One lane's loop: keep a small buffer of claimed jobs, start attempts while the lane's flow
/// control has room, sleep until woken (due jobs, a finished attempt) or until the pause or rate
/// limit allows the next start.
async fn run_lane(shared: Arc<Shared>, lane: Arc<Lane>) {
    let mut buffer: VecDeque<Buffered> = VecDeque::new();
    // A buffered job is started only while enough of its lease is left for the request to end
    // inside it; past that it is given back (another claim, here or on another node, takes it).
    let usable = shared
        .options
        .lease
        .saturating_sub(shared.options.client.timeout)
        .max(Duration::from_secs(1));
    // Set when a claim found fewer jobs than asked: claim again only once woken.
    let mut drained = false;
    let mut claiming: Option<Claim> = None;
    // Give-backs on their way (see below).
    let mut releasing: JoinSet<()> = JoinSet::new();
    let mut sync = shared.store.shares_lanes().then(|| {
        LaneSync::new(
            Arc::clone(&shared.store),
            Arc::clone(&shared.node),
            lane.endpoint.clone(),
            shared.options.lane_sync,
            shared.options.lane_share_lease,
        )
    });
    let mut stop = shared.stop.clone();
    let mut policy = shared.policies.policy(&lane.destination_id);
    loop {
        if *stop.borrow() {
            break;
        }
        policy = shared.policies.policy(&lane.destination_id);
        // What this node may start: in a cluster, its share of the lane, which may be none.
        let may_start = {
            let mut control = lane.control.lock().unwrap_or_else(PoisonError::into_inner);
            if control.limits() != policy.limits {
                control.set_limits(policy.limits);
            }
            control.effective_limit()
        };
        let max_buffer = shared.options.max_lane_buffer;
        let target = buffer_target(may_start, max_buffer);
        // Not while jobs are being given back: a claim meanwhile would miss them (still leased)
        // and take younger ones before them.
        let claim = if claiming.is_none() && !drained && releasing.is_empty() {
            claim_size(may_start, buffer.len(), max_buffer)
        } else {
            None
        };
        if let Some(want) = claim {
            // Claimed in the background: the lane goes on starting what it holds meanwhile.
            let now = now_ms();
            let lease_until = now.saturating_add(millis(shared.options.lease));
            let store = Arc::clone(&shared.store);
            let endpoint = lane.endpoint.clone();
            claiming = Some(Box::pin(async move {
                let claimed = store.claim_jobs(&endpoint, now, lease_until, want).await;
                (want, claimed)
            }));
        }

        // After the limit fell (timeouts, 429s) or the node's share shrank, more is held than the
        // lane can start soon: give the rest back so it waits in the store (for another node, or
        // in its turn for this one), not behind this lane's slow requests.
        let mut give_back: Vec<ReleasedJob> = if buffer.len() > target {
            buffer
                .split_off(target)
                .iter()
                .map(|b| ReleasedJob::from(&b.due))
                .collect()
        } else {
            Vec::new()
        };
        // In a cluster, ask for a share of the lane's limit for what this node could start: all
        // of it while more jobs may be waiting in the store, else what it holds.
        let active = if let Some(sync) = &mut sync {
            let mut control = lane.control.lock().unwrap_or_else(PoisonError::into_inner);
            let ceiling = control.limit();
            let in_flight = control.in_flight();
            let waiting = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
            let want = if !drained || claiming.is_some() {
                ceiling
            } else {
                ceiling.min(in_flight.saturating_add(waiting))
            };
            sync.maybe_report(
                &mut control,
                want,
                policy.limits.max_concurrency,
                Instant::now(),
            );
            want > 0 || in_flight > 0
        } else {
            false
        };
        let wake_at = start_attempts(&shared, &lane, &policy, &mut buffer, &mut give_back);
        // In the background, like claims and reports. The lane awaits nothing outside its
        // `select!` below: a claim or a report it left unread there would keep its row locks (a
        // claim whose answer is not read does not finish; a report's transaction holds the
        // lane's row) for as long as a give-back awaited here took, and a give-back waiting on
        // one of those locks, directly or through another node's transaction, would never end.
        if !give_back.is_empty() {
            releasing.spawn(release(
                Arc::clone(&shared.store),
                lane.endpoint.clone(),
                forget_all(&lane, give_back),
            ));
        }
        let wake_at = match (wake_at, sync.as_ref().and_then(|sync| sync.wake_at(active))) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if buffer.is_empty()
            && !drained
            && claiming.is_none()
            && releasing.is_empty()
            && may_start > 0
        {
            // The last claim was full: there may be more due right now.
            continue;
        }
        let sleep = wake_at.map(|at| at.saturating_duration_since(Instant::now()));
        tokio::select! {
            (want, claimed) = or_never(claiming.as_mut()) => {
                claiming = None;
                match claimed {
                    Ok(claimed) => {
                        drained = claimed.len() < want;
                        let usable_until = Instant::now() + usable;
                        let mut held = lane.held.lock().unwrap_or_else(PoisonError::into_inner);
                        for due in claimed {
                            if held.insert(due.job.id) {
                                hold(&mut buffer, Buffered { due, usable_until });
                            }
                        }
                    }
                    Err(StoreError::Closed) => break,
                    Err(err) => {
                        tracing::warn!(lane = %lane.endpoint, error = %err, "cannot claim jobs");
                        drained = true;
                    }
                }
            }
            answer = or_never(sync.as_mut().map(LaneSync::answer)) => {
                if let Some(sync) = &mut sync {
                    let mut control = lane.control.lock().unwrap_or_else(PoisonError::into_inner);
                    sync.apply(&mut control, answer);
                }
            }
            Some(_) = releasing.join_next(), if !releasing.is_empty() => {}
            () = lane.wake.notified() => {}
            () = or_never(sleep.map(tokio::time::sleep)) => {}
            _ = stop.changed() => {}
        }
        // Only the dispatcher's wake means new jobs may be due; a finished attempt only means
        // room, and must not cost a claim (a write) each time.
        if lane.due.swap(false, Ordering::AcqRel) {
            drained = false;
        }
    }
    // Unstarted jobs are given back, so that a restart delivers them at once rather than after
    // their lease; a claim still on its way is awaited, so that its jobs are given back too, and
    // so are the give-backs on their way (dropped, they would stop).
    while releasing.join_next().await.is_some() {}
    let mut unstarted: Vec<ReleasedJob> =
        buffer.iter().map(|b| ReleasedJob::from(&b.due)).collect();
    if let Some(claim) = claiming
        && let (_, Ok(claimed)) = claim.await
    {
        unstarted.extend(claimed.iter().map(ReleasedJob::from));
    }
    let unstarted = forget_all(&lane, unstarted);
    release(Arc::clone(&shared.store), lane.endpoint.clone(), unstarted).await;
    if let Some(sync) = sync {
        sync.leave(&lane.control, policy.limits.max_concurrency)
            .await;
    }
}

/// `future`'s output, or never when there is none: lets `select!` always poll an optional
/// branch (a claim or a report on its way, a timer).
pub(crate) async fn or_never<F: Future>(future: Option<F>) -> F::Output {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

/// The most claimed, unstarted jobs a lane holds when it may have `may_start` attempts in flight:
/// enough to keep it busy while the next claim is on its way (a claim is a write, queued behind
/// ingestion's group commits), small enough that a backed-off lane does not make due retries
/// wait behind many unstarted jobs.
///
/// None at all when it may start none. In a cluster that is a node without a share of the lane:
/// it could not start what it held, and would hide those jobs (the earliest due, retries first
/// among them) from the nodes that can send them, for as long as it held them. It gives back
/// what it holds and asks for a share instead (it wants the whole limit while it has not found
/// the store drained).
fn buffer_target(may_start: u32, max_buffer: usize) -> usize {
    if may_start == 0 {
        return 0;
    }
    (may_start as usize * 32).clamp(8, max_buffer.max(8))
}

/// How many jobs a lane holding `buffered` claims now, if it claims: up to its target once it
/// holds less than half of it, and nothing while it may start nothing.
fn claim_size(may_start: u32, buffered: usize, max_buffer: usize) -> Option<usize> {
    let target = buffer_target(may_start, max_buffer);
    (target > 0 && buffered < target / 2).then(|| target - buffered)
}

/// A claim on its way, answering with how many jobs were asked for.
type Claim = Pin<Box<dyn Future<Output = (usize, Result<Vec<DueJob>, StoreError>)> + Send>>;

/// A claimed job waiting in a lane's buffer.
struct Buffered {
    due: DueJob,
    /// Past this, too little of the lease is left to start it.
    usable_until: Instant,
}

/// Adds a claimed job to a lane's buffer, which is kept in the order claims take jobs (earliest
/// due first): the lane starts its jobs in their turn. A claim usually comes after everything
/// held; not a job given back stale and claimed again, which is older than what was claimed
/// after it and must not wait behind it (stale again there, it would be given back and claimed
/// again for ever while younger jobs went first).
fn hold(buffer: &mut VecDeque<Buffered>, job: Buffered) {
    let turn = |b: &Buffered| (b.due.next_at, b.due.job.id);
    let at = buffer.partition_point(|b| turn(b) <= turn(&job));
    buffer.insert(at, job);
}

/// Moves the buffered jobs with too little of their lease left to `give_back`. Anywhere in the
/// buffer, which is in due order, not in lease order.
fn give_back_stale(
    buffer: &mut VecDeque<Buffered>,
    now: Instant,
    give_back: &mut Vec<ReleasedJob>,
) {
    if buffer.iter().all(|b| b.usable_until > now) {
        return;
    }
    buffer.retain(|b| {
        let stale = b.usable_until <= now;
        if stale {
            give_back.push(ReleasedJob::from(&b.due));
        }
        !stale
    });
}

/// Forgets claimed, unstarted jobs (a later claim may take them again); returns them, to be
/// given back with [`release`].
fn forget_all(lane: &Lane, jobs: Vec<ReleasedJob>) -> Vec<ReleasedJob> {
    let mut held = lane.held.lock().unwrap_or_else(PoisonError::into_inner);
    for job in &jobs {
        held.remove(&job.job_id);
    }
    jobs
}

/// Gives claimed, unstarted jobs back to the store, each due when it was due before its claim
/// (it keeps its turn). If the store refuses, their lease brings them back later: nothing is
/// lost either way.
async fn release(store: Arc<dyn Store>, endpoint: String, jobs: Vec<ReleasedJob>) {
    if jobs.is_empty() {
        return;
    }
    match store.release_jobs(jobs).await {
        Ok(()) | Err(StoreError::Closed) => {}
        Err(err) => {
            tracing::warn!(lane = %endpoint, error = %err, "cannot give back claimed jobs");
        }
    }
}

/// Starts as many buffered jobs as the lane allows now; returns when to look again if time (a
/// pause, the rate limit) is what stops it.
fn start_attempts(
    shared: &Arc<Shared>,
    lane: &Arc<Lane>,
    policy: &LanePolicy,
    buffer: &mut VecDeque<Buffered>,
    give_back: &mut Vec<ReleasedJob>,
) -> Option<Instant> {
    loop {
        let now = Instant::now();
        give_back_stale(buffer, now, give_back);
        if buffer.is_empty() {
            return None;
        }
        // A job whose window ended is expired before any slot is taken: expiring sends nothing,
        // and must not wait for room (nor count as a probe of a failing endpoint).
        if let Some(front) = buffer.front() {
            let deadline = front
                .due
                .job
                .created_at
                .saturating_add(millis(policy.retry_window));
            let paused_until = lane
                .control
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .paused_until();
            if now_ms() >= deadline && !owed_an_attempt(&front.due, paused_until, now) {
                if let Some(Buffered { due, .. }) = buffer.pop_front() {
                    expire_unattempted(shared, lane, policy, &due);
                }
                continue;
            }
        }
        // The store is behind on recording outcomes: starting more would only add to what a
        // crash could send twice. Look again shortly.
        if shared.unrecorded.load(Ordering::Acquire) >= shared.options.max_unrecorded.max(1) {
            return Some(now + UNRECORDED_RECHECK);
        }
        let slot = {
            let mut control = lane.control.lock().unwrap_or_else(PoisonError::into_inner);
            let room = control.room(now);
            if room.available == 0 {
                return room.wake_at;
            }
            control.start(now)
        };
        let Some(Buffered { due, .. }) = buffer.pop_front() else {
            // Unreachable (checked above); hand the slot back unused.
            finish(lane, slot, &Verdict::Delivered);
            return None;
        };
        let deadline = due
            .job
            .created_at
            .saturating_add(millis(policy.retry_window));
        tokio::spawn(attempt(
            Arc::clone(shared),
            Arc::clone(lane),
            due,
            slot,
            deadline,
        ));
    }
}

/// How soon a lane held back by [`EngineOptions::max_unrecorded`] looks again.
const UNRECORDED_RECHECK: Duration = Duration::from_millis(5);

/// Records that a job's retry window ended while it waited for a retry (a backlog, the process
/// down), without an attempt.
fn expire_unattempted(shared: &Shared, lane: &Lane, policy: &LanePolicy, due: &DueJob) {
    forget(lane, due.job.id);
    if let Some(metrics) = &lane.metrics {
        metrics.outcome(DeliveryOutcome::Expired, None, None);
    }
    let _ = shared.completions.send(Completion {
        job_id: due.job.id,
        attempt: None,
        state: JobState::Expired,
        next_at: 0,
        detail: Some(format!(
            "retry window of {} ended before attempt {}",
            human(policy.retry_window),
            due.attempt + 1
        )),
    });
}

/// Whether a job whose retry window has ended still gets an attempt: one never attempted does
/// (a job never expires unattempted), and so does one that came due while the lane was paused
/// by a `Retry-After` (the pause, not the endpoint's failures, kept it waiting). `paused_until`
/// is the lane's latest pause end, possibly past; `now` the instant the decision is taken.
fn owed_an_attempt(due: &DueJob, paused_until: Option<Instant>, now: Instant) -> bool {
    if due.attempt == 0 {
        return true;
    }
    paused_until.is_some_and(|until| {
        let ended_ms_ago = millis(now.saturating_duration_since(until));
        let pause_end = now_ms().saturating_sub(ended_ms_ago);
        due.next_at <= pause_end
    })
}

/// A duration for a person: `4 h`, `90 s`, `15 min`.
fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

fn finish(lane: &Lane, slot: Slot, verdict: &Verdict) {
    lane.control
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .finish(slot, verdict, Instant::now());
}

fn forget(lane: &Lane, job_id: JobId) {
    lane.held
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&job_id);
}

/// One attempt: send, classify, decide the job's next state, record it.
async fn attempt(
    shared: Arc<Shared>,
    lane: Arc<Lane>,
    due: DueJob,
    slot: Slot,
    deadline: UnixMillis,
) {
    let job = &due.job;
    let number = due.attempt + 1;
    let result = match target_url(&*shared.policies, &job.destination_id, &job.url) {
        Ok(url) => {
            shared
                .sender
                .send(&job.method, &url, &job.headers, job.body.clone())
                .await
        }
        Err(why) => AttemptResult::not_sent(AttemptError {
            class: ErrorClass::InvalidRequest,
            message: why,
        }),
    };
    let classified = classify(&result, SystemTime::now());
    let verdict = within_window(classified, deadline, now_ms());
    let was_failing = lane
        .control
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .failing();
    finish(&lane, slot, &verdict);
    note_pause(&lane, &classified, &verdict, &result);
    recover(&shared, &lane, &verdict, was_failing);
    let completion = decide(
        &shared.options.backoff,
        &due,
        number,
        &result,
        verdict,
        deadline,
    );
    forget(&lane, job.id);
    let outcome = DeliveryOutcome::of(completion.state);
    // The lane key names the destination and host only: the URL's path and query carry secrets.
    tracing::debug!(
        lane = %lane.endpoint,
        job = job.id.0,
        attempt = number,
        status = result.status,
        duration_ms = u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
        outcome = outcome.as_str(),
        "delivery attempt"
    );
    if let Some(error) = &result.error {
        log_failure(&lane, job, number, outcome, error);
    }
    if let Some(metrics) = &lane.metrics {
        metrics.outcome(outcome, result.status, Some(result.duration));
    }
    shared.unrecorded.fetch_add(1, Ordering::AcqRel);
    let _ = shared.completions.send(completion);
    // Room for the next attempt.
    lane.wake.notify_one();
}

/// The URL a job goes to now: its destination's setting as configured when it is sent, or the
/// fixed URL of a job stored before URLs were read at send time.
fn target_url<'a>(
    policies: &dyn PolicySource,
    destination_id: &str,
    url: &'a JobUrl,
) -> Result<std::borrow::Cow<'a, str>, String> {
    match url {
        JobUrl::Fixed(url) => Ok(url.as_str().into()),
        JobUrl::Setting(key) => policies.setting_url(destination_id, key).map(Into::into),
    }
}

/// A failed attempt at warn level, within the lane's log budget; the reason never holds the URL's
/// path or query (the client's messages name the host only).
fn log_failure(
    lane: &Lane,
    job: &junction_store::Job,
    number: u32,
    outcome: DeliveryOutcome,
    error: &AttemptError,
) {
    let Some(suppressed) = lane.failures.admit(Instant::now()) else {
        return;
    };
    let host = lane.endpoint.split_once('|').map_or("", |(_, host)| host);
    tracing::warn!(
        destination = %lane.destination_id,
        host,
        mapping = %job.subscription_id,
        job = job.id.0,
        attempt = number,
        outcome = outcome.as_str(),
        class = error.class.as_str(),
        not_logged = suppressed,
        "delivery failed: {}{}",
        error.message,
        if suppressed > 0 {
            format!(
                " ({suppressed} more failure{} of this destination since the last such line)",
                if suppressed == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    );
}

/// How long before its retry window ends a job's last attempt is scheduled, when its backoff or
/// a `Retry-After` would put its next attempt past the window.
const LAST_ATTEMPT_MARGIN_MS: i64 = 1_000;

/// Remembers why the lane is paused when this attempt paused it (a `Retry-After`, as asked and
/// as capped to the job's retry window).
fn note_pause(lane: &Lane, asked: &Verdict, verdict: &Verdict, result: &AttemptResult) {
    let (
        Verdict::Retry {
            retry_after: Some(asked),
            ..
        },
        Verdict::Retry {
            retry_after: Some(wait),
            ..
        },
    ) = (asked, verdict)
    else {
        return;
    };
    if wait.is_zero() {
        return;
    }
    let status = result
        .error
        .as_ref()
        .map_or_else(|| "an answer".to_owned(), |error| error.message.clone());
    let reason = if asked > wait {
        format!(
            "Retry-After of {} s on {status}, cut to {} s to keep within the retry window",
            asked.as_secs(),
            wait.as_secs()
        )
    } else {
        format!("Retry-After of {} s on {status}", wait.as_secs())
    };
    let until = now_ms().saturating_add(millis(*wait));
    let mut pause = lane.pause.lock().unwrap_or_else(PoisonError::into_inner);
    if pause.as_ref().is_none_or(|(old, _)| *old < until) {
        *pause = Some((until, reason));
    }
}

/// After an outage, the endpoint's first success starts bringing the lane's jobs waiting in
/// backoff forward, batch by batch with each further success (their backoff was for an endpoint
/// that was down); a failure stops it. The lane's limit still bounds what is in flight.
fn recover(shared: &Arc<Shared>, lane: &Arc<Lane>, verdict: &Verdict, was_failing: bool) {
    let batch = {
        let mut recovery = lane.recovery.lock().unwrap_or_else(PoisonError::into_inner);
        match verdict {
            Verdict::Delivered => {
                if was_failing {
                    recovery.on = true;
                }
            }
            Verdict::Retry { .. } => recovery.on = false,
            Verdict::Discard => {}
        }
        let now = Instant::now();
        let due = recovery
            .last
            .is_none_or(|last| now.duration_since(last) >= RECOVERY_STEP);
        if !recovery.on || recovery.busy || !due {
            return;
        }
        recovery.busy = true;
        recovery.last = Some(now);
        let limit = lane
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .effective_limit();
        (limit as usize * 8).max(16)
    };
    let shared = Arc::clone(shared);
    let lane = Arc::clone(lane);
    tokio::spawn(async move {
        let moved = shared
            .store
            .expedite_retries(&lane.endpoint, now_ms(), batch)
            .await;
        let mut recovery = lane.recovery.lock().unwrap_or_else(PoisonError::into_inner);
        recovery.busy = false;
        match moved {
            Ok(0) => recovery.on = false,
            Ok(_) => {
                drop(recovery);
                lane.due.store(true, Ordering::Release);
                lane.wake.notify_one();
            }
            Err(err) => {
                recovery.on = false;
                tracing::warn!(lane = %lane.endpoint, error = %err, "cannot bring retries forward");
            }
        }
    });
}

/// A `Retry-After` no longer than what is left of the job's retry window (less the margin of its
/// last attempt): a lane paused past a job's window would make it expire unattempted.
fn within_window(verdict: Verdict, deadline: UnixMillis, now: UnixMillis) -> Verdict {
    match verdict {
        Verdict::Retry {
            retry_after: Some(wait),
            overload,
        } => {
            let left = deadline
                .saturating_sub(LAST_ATTEMPT_MARGIN_MS)
                .saturating_sub(now)
                .max(0);
            let left = Duration::from_millis(u64::try_from(left).unwrap_or(0));
            Verdict::Retry {
                retry_after: Some(wait.min(left)),
                overload,
            }
        }
        other => other,
    }
}

/// The job's next state after attempt `number` ended with `verdict`.
fn decide(
    backoff: &Backoff,
    due: &DueJob,
    number: u32,
    result: &AttemptResult,
    verdict: Verdict,
    deadline: UnixMillis,
) -> Completion {
    let error = result.error.as_ref();
    let record = AttemptRecord {
        attempt: number,
        started_at: result.started_at,
        duration_ms: u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
        status: result.status,
        error_class: error.map(|e| e.class.as_str().to_owned()),
        response_headers: result.response_headers.clone(),
        response_excerpt: result.body_excerpt.clone(),
    };
    let detail = error.map(|e| e.message.clone());
    let (state, next_at, detail) = match verdict {
        Verdict::Delivered => (JobState::Succeeded, 0, None),
        Verdict::Discard => (JobState::Discarded, 0, detail),
        Verdict::Retry { retry_after, .. } => {
            let delay = backoff.next_retry(number, retry_after, fastrand::f64());
            let now = now_ms();
            let next_at = now.saturating_add(millis(delay));
            // A retry that would fall past the window (a long backoff, a Retry-After of hours) is
            // brought back to a last attempt just before it ends, so that the window's end, not
            // the wait, decides the job's fate.
            let last_chance = deadline.saturating_sub(LAST_ATTEMPT_MARGIN_MS);
            if next_at >= deadline && last_chance > now {
                (JobState::AwaitingRetry, last_chance, detail)
            } else if next_at >= deadline {
                let why = detail.unwrap_or_else(|| "failed".to_owned());
                let detail = format!(
                    "retry window ended after {number} attempt{}: {why}",
                    if number == 1 { "" } else { "s" }
                );
                (JobState::Expired, 0, Some(detail))
            } else {
                (JobState::AwaitingRetry, next_at, detail)
            }
        }
    };
    Completion {
        job_id: due.job.id,
        attempt: Some(record),
        state,
        next_at,
        detail,
    }
}

/// Records completions in batches: whatever is waiting (up to `batch`) goes in one store write,
/// so that a busy engine costs few transactions. Ends when every sender is gone.
async fn record_completions(
    store: Arc<dyn Store>,
    mut queue: mpsc::UnboundedReceiver<Completion>,
    batch: usize,
    unrecorded: Arc<AtomicUsize>,
) {
    let mut pending = Vec::with_capacity(batch);
    while queue.recv_many(&mut pending, batch).await > 0 {
        let completions = std::mem::take(&mut pending);
        // A retry changes when its lane is next due: the dispatcher must look again, or the
        // retry would wait for its next idle poll.
        let retries = completions
            .iter()
            .any(|completion| completion.state == JobState::AwaitingRetry);
        let answered = completions
            .iter()
            .filter(|completion| completion.attempt.is_some())
            .count();
        let mut delay = Duration::from_millis(50);
        let mut completions = Some(completions);
        while let Some(batch) = completions.take() {
            match store.complete_jobs(batch.clone()).await {
                Ok(()) => {
                    if retries {
                        store.job_signal().wake();
                    }
                }
                // Closed: the outcomes are lost with the process, and the leases bring the jobs
                // back (delivered twice at worst, never lost).
                Err(StoreError::Closed) => return,
                Err(err) if err.is_retryable() => {
                    tracing::warn!(error = %err, "cannot record delivery outcomes; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    completions = Some(batch);
                }
                Err(err) => {
                    tracing::error!(
                        error = %err,
                        jobs = batch.len(),
                        "cannot record delivery outcomes; the jobs will be retried after their lease"
                    );
                }
            }
        }
        // Recorded (or given up on: their lease brings them back either way).
        unrecorded.fetch_sub(answered, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{AttemptError, ErrorClass};
    use junction_store::{EventId, Job};

    fn due(created_at: UnixMillis, attempt: u32) -> DueJob {
        DueJob {
            job: Job {
                id: JobId(7),
                event_id: EventId(1),
                destination_id: "d".to_owned(),
                subscription_id: "m".to_owned(),
                endpoint: "d|h".to_owned(),
                method: "POST".to_owned(),
                url: JobUrl::Fixed("http://h/".to_owned()),
                headers: Vec::new(),
                body: Vec::new(),
                created_at,
                replay_of: None,
            },
            next_at: created_at,
            attempt,
        }
    }

    fn failed(status: u16) -> AttemptResult {
        AttemptResult {
            started_at: 5,
            duration: Duration::from_millis(12),
            status: Some(status),
            response_headers: vec![("x".to_owned(), "y".to_owned())],
            body_excerpt: b"no".to_vec(),
            error: Some(AttemptError {
                class: ErrorClass::Status,
                message: format!("{status} Internal Server Error"),
            }),
        }
    }

    #[test]
    fn a_retry_inside_the_window_awaits_and_records_the_attempt() {
        let now = now_ms();
        let verdict = Verdict::Retry {
            retry_after: Some(Duration::from_secs(2)),
            overload: false,
        };
        let completion = decide(
            &Backoff::default(),
            &due(now, 0),
            1,
            &failed(500),
            verdict,
            now + 3_600_000,
        );
        assert_eq!(completion.state, JobState::AwaitingRetry);
        assert!(completion.next_at >= now + 2_000, "Retry-After honoured");
        let record = completion.attempt.unwrap();
        assert_eq!(record.attempt, 1);
        assert_eq!(record.status, Some(500));
        assert_eq!(record.error_class.as_deref(), Some("http_status"));
        assert_eq!(record.duration_ms, 12);
        assert_eq!(
            completion.detail.as_deref(),
            Some("500 Internal Server Error")
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(4 * 3600)), "4 h");
        assert_eq!(human(Duration::from_secs(900)), "15 min");
        assert_eq!(human(Duration::from_secs(90)), "90 s");
    }

    #[test]
    fn a_job_past_its_window_is_attempted_if_never_tried_or_held_by_a_pause() {
        let now = Instant::now();
        let created = now_ms() - 60_000;
        assert!(owed_an_attempt(&due(created, 0), None, now), "never tried");
        let mut retried = due(created, 2);
        retried.next_at = now_ms() - 30_000;
        assert!(
            !owed_an_attempt(&retried, None, now),
            "no pause: it expires"
        );
        let pause_ended = now - Duration::from_secs(10);
        assert!(
            owed_an_attempt(&retried, Some(pause_ended), now),
            "due before the pause ended: the pause held it"
        );
        let long_ago = now - Duration::from_secs(50);
        assert!(
            !owed_an_attempt(&retried, Some(long_ago), now),
            "due after an earlier pause: its own failures ran it out"
        );
    }

    #[test]
    fn a_retry_that_would_pass_the_window_is_a_last_attempt_before_it_ends() {
        let now = now_ms();
        let verdict = Verdict::Retry {
            retry_after: Some(Duration::from_secs(86_400)),
            overload: true,
        };
        let deadline = now + 60_000;
        let completion = decide(
            &Backoff::default(),
            &due(now, 0),
            1,
            &failed(429),
            verdict,
            deadline,
        );
        assert_eq!(completion.state, JobState::AwaitingRetry);
        assert_eq!(completion.next_at, deadline - LAST_ATTEMPT_MARGIN_MS);
    }

    #[test]
    fn a_retry_after_never_pauses_past_the_window() {
        let now = now_ms();
        let asked = Verdict::Retry {
            retry_after: Some(Duration::from_secs(86_400)),
            overload: true,
        };
        assert_eq!(
            within_window(asked, now + 10_000, now),
            Verdict::Retry {
                retry_after: Some(Duration::from_secs(9)),
                overload: true
            }
        );
        assert_eq!(
            within_window(asked, now - 5_000, now),
            Verdict::Retry {
                retry_after: Some(Duration::ZERO),
                overload: true
            },
            "a window already over leaves no pause"
        );
        let short = Verdict::Retry {
            retry_after: Some(Duration::from_secs(2)),
            overload: false,
        };
        assert_eq!(within_window(short, now + 10_000, now), short);
        assert_eq!(
            within_window(Verdict::Delivered, now, now),
            Verdict::Delivered
        );
    }

    #[test]
    fn a_retry_past_the_window_expires() {
        let now = now_ms();
        let verdict = Verdict::Retry {
            retry_after: Some(Duration::from_secs(60)),
            overload: true,
        };
        let completion = decide(
            &Backoff::default(),
            &due(now, 2),
            3,
            &failed(503),
            verdict,
            now + 1_000,
        );
        assert_eq!(completion.state, JobState::Expired);
        assert_eq!(
            completion.detail.as_deref(),
            Some("retry window ended after 3 attempts: 503 Internal Server Error")
        );
    }

    #[test]
    fn delivered_and_discarded_are_terminal() {
        let now = now_ms();
        let ok = decide(
            &Backoff::default(),
            &due(now, 0),
            1,
            &failed(200),
            Verdict::Delivered,
            now,
        );
        assert_eq!((ok.state, ok.detail), (JobState::Succeeded, None));
        let gone = decide(
            &Backoff::default(),
            &due(now, 0),
            1,
            &failed(404),
            Verdict::Discard,
            now,
        );
        assert_eq!(gone.state, JobState::Discarded);
    }

    #[test]
    fn metric_outcomes_follow_the_job_state() {
        let names: Vec<&str> = [
            JobState::Succeeded,
            JobState::AwaitingRetry,
            JobState::Discarded,
            JobState::Expired,
        ]
        .into_iter()
        .map(|state| DeliveryOutcome::of(state).as_str())
        .collect();
        assert_eq!(names, ["succeeded", "retried", "discarded", "expired"]);
    }

    fn buffered(id: i64, next_at: UnixMillis, usable_until: Instant) -> Buffered {
        let mut due = due(next_at, 0);
        due.job.id = JobId(id);
        due.next_at = next_at;
        Buffered { due, usable_until }
    }

    fn ids(buffer: &VecDeque<Buffered>) -> Vec<i64> {
        buffer.iter().map(|b| b.due.job.id.0).collect()
    }

    #[test]
    fn the_buffer_keeps_the_order_of_claims_and_gives_back_stale_jobs_anywhere() {
        let now = Instant::now();
        let later = now + Duration::from_secs(2);
        let mut buffer = VecDeque::new();
        for (id, due) in [(1, 100), (2, 200), (4, 400)] {
            hold(&mut buffer, buffered(id, due, later));
        }
        // Given back stale, then claimed again with a fresh lease: first again.
        hold(&mut buffer, buffered(0, 50, later + Duration::from_secs(2)));
        // Same due time: in job order.
        hold(&mut buffer, buffered(3, 200, later));
        assert_eq!(ids(&buffer), [0, 1, 2, 3, 4]);

        let mut give_back = Vec::new();
        give_back_stale(&mut buffer, now, &mut give_back);
        assert!(give_back.is_empty());
        give_back_stale(&mut buffer, later, &mut give_back);
        assert_eq!(ids(&buffer), [0], "the one claimed last is still usable");
        let back: Vec<(JobId, UnixMillis)> =
            give_back.iter().map(|r| (r.job_id, r.due_at)).collect();
        assert_eq!(
            back,
            [
                (JobId(1), 100),
                (JobId(2), 200),
                (JobId(3), 200),
                (JobId(4), 400)
            ],
            "each due when it was"
        );
    }

    #[test]
    fn a_lane_that_may_start_nothing_claims_nothing() {
        assert_eq!(claim_size(0, 0, 1_000), None, "no share: no claim");
        assert_eq!(claim_size(1, 0, 1_000), Some(32));
        assert_eq!(claim_size(20, 319, 1_000), Some(321));
        assert_eq!(claim_size(20, 320, 1_000), None, "holds half its target");
        assert_eq!(
            claim_size(100, 0, 1_000),
            Some(1_000),
            "at most the buffer's maximum"
        );
        assert_eq!(buffer_target(0, 1_000), 0, "gives back what it holds");
        assert_eq!(buffer_target(1, 1_000), 32);
        assert_eq!(buffer_target(1, 4), 8, "at least 8");
    }
}
