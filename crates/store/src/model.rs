//! The shared model: what callers hand to a store (`New*`) and what they read back (`*Record`,
//! [`Job`], [`DueJob`]). Every engine stores and returns exactly these values.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A point in time as milliseconds since the Unix epoch (UTC). One unit everywhere so that engines
/// store plain integers and comparisons need no conversion.
pub type UnixMillis = i64;

/// Identifies a stored event. Assigned by the store, increasing in commit order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub i64);

/// Identifies a delivery job. Assigned by the store, increasing in commit order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

/// The version of a saved workspace configuration; each save gets a larger one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigVersion(pub i64);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for ConfigVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An event to commit, with the routing outcome computed before the commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// The source the event was sent to (resolved from its write key).
    pub source_id: String,
    /// The event's `messageId`: with `source_id`, the dedupe key.
    pub message_id: String,
    /// When Junction received the event; also the clock the dedupe window is measured on.
    pub received_at: UnixMillis,
    /// The normalised event as JSON bytes, stored and returned byte for byte.
    pub payload: Vec<u8>,
    /// One delivery job per (destination, mapping) that produced a request.
    pub jobs: Vec<NewJob>,
    /// One discard per (destination, mapping) that produced no request, with the reason.
    pub discards: Vec<NewDiscard>,
    /// Whether the profile worker takes it in (see [`crate::Store::profile_inbox`]): set for
    /// the events that take part in identity resolution.
    pub for_profiles: bool,
}

/// A delivery job: the exact HTTP request to send. Immutable once stored; its progress is recorded
/// as appended [`JobTransition`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// The destination instance the request goes to.
    pub destination_id: String,
    /// The mapping (subscription) that built the request.
    pub subscription_id: String,
    /// The delivery lane key: destination id and webhook host, so that one slow endpoint never
    /// delays another.
    pub endpoint: String,
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// Where the request goes: usually the destination's URL setting, read when it is sent.
    pub url: JobUrl,
    /// Request headers, in order, duplicates allowed.
    pub headers: Vec<(String, String)>,
    /// The request body, stored byte for byte.
    pub body: Vec<u8>,
}

/// Where a job's request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobUrl {
    /// The destination's setting of this key (ChartMogul: `chartmogul_webhook_url`), read when
    /// the request is sent: a corrected URL applies to retries and replays of jobs already
    /// stored, and the secret token such a URL carries is not copied into every job.
    Setting(String),
    /// This URL, whatever the settings say (jobs stored before URLs were read at send time).
    Fixed(String),
}

impl JobUrl {
    /// Prefix of the stored form of [`JobUrl::Setting`]; never the start of an `http(s)` URL.
    const SETTING_PREFIX: &'static str = "setting:";

    /// The stored form (one text column): `setting:<key>`, or the URL itself.
    pub fn to_stored(&self) -> std::borrow::Cow<'_, str> {
        match self {
            JobUrl::Setting(key) => format!("{}{key}", Self::SETTING_PREFIX).into(),
            JobUrl::Fixed(url) => url.as_str().into(),
        }
    }

    /// Reads the stored form written by [`JobUrl::to_stored`].
    pub fn from_stored(stored: String) -> JobUrl {
        match stored.strip_prefix(Self::SETTING_PREFIX) {
            Some(key) => JobUrl::Setting(key.to_owned()),
            None => JobUrl::Fixed(stored),
        }
    }
}

/// A routing outcome that produced no job, recorded so that every fate is queryable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDiscard {
    /// The destination instance that did not receive the event.
    pub destination_id: String,
    /// The mapping concerned, when the outcome is per mapping (none for a destination-wide one
    /// such as the `integrations` object excluding it).
    pub subscription_id: Option<String>,
    /// Why nothing was sent.
    pub reason: DiscardReason,
    /// A human-readable explanation (a validation message, the trigger that did not match, …).
    pub message: String,
}

/// Why a (destination, mapping) produced no delivery job. Ordered as declared, so that maps keyed
/// by reason list them in a stable order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DiscardReason {
    /// The event's `integrations` object disabled the destination.
    IntegrationsFiltered,
    /// No enabled mapping's trigger matched the event.
    NotMatched,
    /// The mapping (subscription) itself is invalid.
    InvalidSubscription,
    /// The destination's settings are missing or invalid.
    Settings,
    /// The mapping failed to resolve a payload from the event.
    Mapping,
    /// The resolved payload failed the action's field schema.
    Schema,
    /// The event payload itself is unusable for this action.
    Payload,
    /// A lookup the action needed (e.g. a fetch before the request) failed permanently.
    Fetch,
}

impl DiscardReason {
    /// Every reason, in declaration order (for tests and metric labels).
    pub const ALL: [DiscardReason; 8] = [
        DiscardReason::IntegrationsFiltered,
        DiscardReason::NotMatched,
        DiscardReason::InvalidSubscription,
        DiscardReason::Settings,
        DiscardReason::Mapping,
        DiscardReason::Schema,
        DiscardReason::Payload,
        DiscardReason::Fetch,
    ];

    /// The stable name stored in databases and shown in APIs. Never change one: stored rows use it.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscardReason::IntegrationsFiltered => "integrations_filtered",
            DiscardReason::NotMatched => "not_matched",
            DiscardReason::InvalidSubscription => "invalid_subscription",
            DiscardReason::Settings => "settings",
            DiscardReason::Mapping => "mapping",
            DiscardReason::Schema => "schema",
            DiscardReason::Payload => "payload",
            DiscardReason::Fetch => "fetch",
        }
    }
}

impl fmt::Display for DiscardReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored name that no variant of the enum carries (a newer schema, or corruption).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{name}'")]
pub struct UnknownName {
    /// What was being parsed (`discard reason`, `job state`).
    pub kind: &'static str,
    /// The name found.
    pub name: String,
}

impl FromStr for DiscardReason {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        DiscardReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == name)
            .ok_or_else(|| UnknownName {
                kind: "discard reason",
                name: name.to_owned(),
            })
    }
}

/// The state a job enters with a transition (Segment's Centrifuge model). A claim is not a
/// transition: it only sets the lease on the queue entry (one write instead of two per delivery);
/// the attempt it leads to is recorded with the next transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobState {
    /// Scheduled: waiting for its `next_at`. Every job starts here.
    Pending,
    /// The last attempt failed in a retryable way; due again at `next_at`.
    AwaitingRetry,
    /// Delivered (a 2xx answer). Terminal.
    Succeeded,
    /// Dropped after a non-retryable answer or error. Terminal, replayable.
    Discarded,
    /// The retry window ended: the job is in the dead letter. Terminal, replayable.
    Expired,
}

impl JobState {
    /// Every state, in declaration order.
    pub const ALL: [JobState; 5] = [
        JobState::Pending,
        JobState::AwaitingRetry,
        JobState::Succeeded,
        JobState::Discarded,
        JobState::Expired,
    ];

    /// The stable name stored in databases and shown in APIs. Never change one: stored rows use it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::AwaitingRetry => "awaiting_retry",
            JobState::Succeeded => "succeeded",
            JobState::Discarded => "discarded",
            JobState::Expired => "expired",
        }
    }

    /// Whether no further transition follows this state (the job left the delivery queue).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Discarded | JobState::Expired
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
            .ok_or_else(|| UnknownName {
                kind: "job state",
                name: name.to_owned(),
            })
    }
}

/// What `commit` did with one event, in the order the events were given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The event, its jobs and its discards are durable.
    Stored {
        /// The new event's id.
        event_id: EventId,
        /// The new jobs' ids, in the order of [`NewEvent::jobs`].
        job_ids: Vec<JobId>,
    },
    /// The same (source, `messageId`) was stored within the dedupe window: nothing new was
    /// stored except the record that a duplicate arrived, which is durable.
    Duplicate {
        /// The event it duplicates.
        original: EventId,
    },
}

/// A stored job: the request exactly as committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The job's id.
    pub id: JobId,
    /// The event it was routed from.
    pub event_id: EventId,
    /// See [`NewJob::destination_id`].
    pub destination_id: String,
    /// See [`NewJob::subscription_id`].
    pub subscription_id: String,
    /// See [`NewJob::endpoint`].
    pub endpoint: String,
    /// See [`NewJob::method`].
    pub method: String,
    /// See [`NewJob::url`].
    pub url: JobUrl,
    /// See [`NewJob::headers`].
    pub headers: Vec<(String, String)>,
    /// See [`NewJob::body`].
    pub body: Vec<u8>,
    /// When the job was committed.
    pub created_at: UnixMillis,
    /// The dead-letter job this one replays, if it is a replay.
    pub replay_of: Option<JobId>,
}

/// One appended step in a job's life. Never updated or removed (except by retention).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobTransition {
    /// Position in the job's history, from 0 (the initial `pending` transition).
    pub seq: u32,
    /// The state entered.
    pub state: JobState,
    /// When the transition was recorded.
    pub at: UnixMillis,
    /// When the job is due next (its retry time); none once terminal.
    pub next_at: Option<UnixMillis>,
    /// Delivery attempts made so far (0 before the first).
    pub attempt: u32,
    /// Why the state was entered (error class, status, message), if anything is worth saying.
    pub detail: Option<String>,
}

/// A job with its whole history, oldest transition first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRecord {
    /// The job.
    pub job: Job,
    /// Its transitions, by `seq`.
    pub transitions: Vec<JobTransition>,
    /// Its delivery attempts, by number.
    pub attempts: Vec<AttemptRecord>,
}

/// A stored discard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscardRecord {
    /// See [`NewDiscard::destination_id`].
    pub destination_id: String,
    /// See [`NewDiscard::subscription_id`].
    pub subscription_id: Option<String>,
    /// See [`NewDiscard::reason`].
    pub reason: DiscardReason,
    /// See [`NewDiscard::message`].
    pub message: String,
}

/// Everything known about one stored event: the answer to "what happened to this `messageId`".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// The event's id.
    pub id: EventId,
    /// See [`NewEvent::source_id`].
    pub source_id: String,
    /// See [`NewEvent::message_id`].
    pub message_id: String,
    /// See [`NewEvent::received_at`].
    pub received_at: UnixMillis,
    /// The payload, byte for byte.
    pub payload: Vec<u8>,
    /// When each duplicate of it was received (acknowledged without being routed), in the order
    /// the duplicates arrived.
    pub duplicates: Vec<UnixMillis>,
    /// Its jobs in commit order, each with its transitions.
    pub jobs: Vec<JobRecord>,
    /// Its discards in commit order.
    pub discards: Vec<DiscardRecord>,
}

/// One delivery attempt, as the audit trail keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The attempt's number, from 1.
    pub attempt: u32,
    /// When the request started.
    pub started_at: UnixMillis,
    /// How long it took until the answer (or the error), in milliseconds.
    pub duration_ms: u64,
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    /// Why it did not succeed (`timeout`, `connect`, `network`, `http_status`), if it did not.
    pub error_class: Option<String>,
    /// The response headers, in order.
    pub response_headers: Vec<(String, String)>,
    /// The first bytes of the response body (bounded by the delivery engine).
    pub response_excerpt: Vec<u8>,
}

/// What became of a claimed job: the delivery engine's decision after an attempt, or without one
/// (a job whose retry window had already ended expires unattempted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The job.
    pub job_id: JobId,
    /// The attempt made, if one was.
    pub attempt: Option<AttemptRecord>,
    /// The state entered: [`JobState::AwaitingRetry`], or a terminal one.
    pub state: JobState,
    /// When an [`JobState::AwaitingRetry`] job is due again; ignored for terminal states.
    pub next_at: UnixMillis,
    /// Why (the error, the status), for the transition.
    pub detail: Option<String>,
}

/// A delivery lane (endpoint) with jobs not yet terminal, and when its earliest one is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneDue {
    /// The lane key (see [`NewJob::endpoint`]).
    pub endpoint: String,
    /// The earliest `next_at` among its jobs (a lease expiry while they are claimed).
    pub next_at: UnixMillis,
}

/// What one node tells the cluster about its use of a lane (see [`Store::sync_lane`]).
///
/// [`Store::sync_lane`]: crate::Store::sync_lane
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneReport {
    /// The lane key (see [`NewJob::endpoint`]).
    pub endpoint: String,
    /// This process's identity in the cluster, unique per process run.
    pub node: String,
    /// The lane's configured concurrency, the ceiling of the shared adaptive limit.
    pub max_concurrency: u32,
    /// The most attempts this node may have in flight until it applies the answer: those in
    /// flight now, or its current share if more (it may start up to that meanwhile).
    pub in_flight_bound: u32,
    /// Attempts this node could have in flight now (its due work), at most the limit.
    pub want: u32,
    /// The shared limit's epoch this node last saw: a halving reported against an older epoch
    /// answered an overload another node already halved for, and does not halve again.
    pub epoch: u64,
    /// An overload (429, 503, timeout) halved this node's limit since its last report.
    pub halved: bool,
    /// Successful attempts since its last report (they raise the shared limit additively).
    pub successes: u32,
    /// How much longer this node's lane stays paused by a `Retry-After`, in milliseconds.
    pub paused_ms: u64,
    /// How long the share granted stays reserved for this node without another report, in
    /// milliseconds: if the node dies, its share returns to the others after this.
    pub lease_ms: u64,
}

/// A lane's cluster-wide flow control as one node may apply it (see [`Store::sync_lane`]).
///
/// [`Store::sync_lane`]: crate::Store::sync_lane
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneGrant {
    /// The shared adaptive concurrency limit, across every node.
    pub limit: u32,
    /// How many attempts this node may have in flight: the nodes' shares never add up to more
    /// than `limit` (except while attempts started under a higher limit finish).
    pub share: u32,
    /// The shared limit's epoch (bumped at every halving).
    pub epoch: u64,
    /// How much longer the whole lane is paused, cluster-wide, in milliseconds (0: not paused).
    pub paused_ms: u64,
}

/// A lane (endpoint) and how many jobs it holds that are not yet terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneBacklog {
    /// The lane key (see [`NewJob::endpoint`]).
    pub endpoint: String,
    /// Its jobs not yet terminal: due, awaiting retry, or claimed.
    pub queued: u64,
}

/// Which dead-letter jobs to list: every condition given must hold. The list is ordered by job id
/// and paged with `after`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// Only these jobs (empty: any).
    pub job_ids: Vec<JobId>,
    /// Only jobs of this destination.
    pub destination_id: Option<String>,
    /// Only jobs of this mapping.
    pub subscription_id: Option<String>,
    /// Only jobs that ended in this state ([`JobState::Discarded`] or [`JobState::Expired`]).
    pub state: Option<JobState>,
    /// Only jobs whose last attempt failed with this error class.
    pub error_class: Option<String>,
    /// Only jobs that entered the dead letter at or after this time.
    pub since: Option<UnixMillis>,
    /// Only jobs that entered the dead letter before this time.
    pub until: Option<UnixMillis>,
    /// Include jobs already replayed (by default they are left out: their replay is the live one).
    pub include_replayed: bool,
    /// Only jobs with a larger id (the cursor of the previous page).
    pub after: Option<JobId>,
    /// At most this many (0 means none).
    pub limit: usize,
}

/// A job in the dead letter: discarded after a non-retryable answer, or expired after its retry
/// window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadJob {
    /// The job, with its request.
    pub job: Job,
    /// [`JobState::Discarded`] or [`JobState::Expired`].
    pub state: JobState,
    /// When it entered the dead letter.
    pub at: UnixMillis,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's status, if an answer came.
    pub status: Option<u16>,
    /// The last attempt's error class.
    pub error_class: Option<String>,
    /// The final transition's detail.
    pub detail: Option<String>,
    /// The job that replayed it, if it was replayed.
    pub replayed_by: Option<JobId>,
}

/// A replay of a dead-letter job: a new job (the same request, or one re-mapped from the stored
/// event) for the same event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReplay {
    /// The dead-letter job replayed.
    pub replay_of: JobId,
    /// The request to send.
    pub job: NewJob,
}

/// What one retention pass removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneOutcome {
    /// Events removed (with their duplicates, jobs, transitions, attempts and discards).
    pub events: u64,
    /// Whether older events remain (the pass stopped at its limit).
    pub more: bool,
}

/// A job whose time has come: due for a delivery attempt (`next_at <= now`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueJob {
    /// The job, with the request to send.
    pub job: Job,
    /// When it became due.
    pub next_at: UnixMillis,
    /// Attempts already made (claimed ones included, even if their worker died before recording
    /// them).
    pub attempt: u32,
}

/// A claimed job given back unattempted (see [`Store::release_jobs`](crate::Store::release_jobs)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleasedJob {
    /// The job.
    pub job_id: JobId,
    /// When it was due before the claim ([`DueJob::next_at`]): it is due then again, so that it
    /// keeps its turn among its lane's due jobs.
    pub due_at: UnixMillis,
}

impl From<&DueJob> for ReleasedJob {
    fn from(due: &DueJob) -> Self {
        ReleasedJob {
            job_id: due.job.id,
            due_at: due.next_at,
        }
    }
}

/// Totals committed since the store was created (never decreased by retention): Prometheus-style
/// counters, cheap to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events stored.
    pub events: u64,
    /// Duplicates acknowledged without storing a new event.
    pub duplicates: u64,
    /// Jobs stored.
    pub jobs: u64,
    /// Discards stored.
    pub discards: u64,
}

/// A saved workspace configuration document.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigDocument {
    /// Its version.
    pub version: ConfigVersion,
    /// When it was saved.
    pub saved_at: UnixMillis,
    /// The document; its schema belongs to the config layer, not to the store.
    pub document: serde_json::Value,
}

/// Live counters of one open store (in memory, reset when it is reopened): how well group commit
/// groups, and how full the queue is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// `commit` calls that reached the writer (empty and refused ones excluded).
    pub commit_requests: u64,
    /// Write transactions the writer committed (each carries one or more requests).
    pub transactions: u64,
    /// Events waiting in the queue or in the transaction being written.
    pub queued_events: usize,
    /// `commit` calls refused with [`crate::StoreError::Overloaded`].
    pub overloaded: u64,
}

/// The size of one point of an overview's time series. Buckets are aligned on UTC minutes, hours
/// and days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverviewBucket {
    /// One minute: the finest grain the store keeps.
    Minute,
    /// One hour (60 minutes).
    Hour,
    /// One UTC day (1,440 minutes).
    Day,
}

impl OverviewBucket {
    /// The bucket's length in milliseconds.
    pub fn millis(self) -> UnixMillis {
        match self {
            OverviewBucket::Minute => 60_000,
            OverviewBucket::Hour => 3_600_000,
            OverviewBucket::Day => 86_400_000,
        }
    }

    /// The start of the bucket holding `at`.
    pub fn start_of(self, at: UnixMillis) -> UnixMillis {
        at.div_euclid(self.millis()) * self.millis()
    }

    /// The name shown in APIs (`minute`, `hour`, `day`).
    pub fn as_str(self) -> &'static str {
        match self {
            OverviewBucket::Minute => "minute",
            OverviewBucket::Hour => "hour",
            OverviewBucket::Day => "day",
        }
    }
}

/// What [`crate::Store::overview`] summarises: one destination (optionally one of its mappings)
/// over `[from, until)`, rounded out to whole minutes, with a time series in `bucket` steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverviewQuery {
    /// The destination.
    pub destination_id: String,
    /// Only this mapping (its totals, and the series of it alone); `None`: the whole destination
    /// and every mapping's totals.
    pub subscription_id: Option<String>,
    /// The window's start (inclusive; the minute holding it counts whole).
    pub from: UnixMillis,
    /// The window's end (exclusive; the minute holding it counts whole).
    pub until: UnixMillis,
    /// The time series' step.
    pub bucket: OverviewBucket,
}

impl OverviewQuery {
    /// The most points a series may have: a day of minutes, and one more for a window that is not
    /// aligned on bucket boundaries. Bounds the answer's size whatever the window.
    pub const MAX_POINTS: usize = 1_441;

    /// The longest window the store keeps data for: 14 days. Older rollup rows are removed by
    /// retention ([`crate::Store::prune`]).
    pub const MAX_WINDOW_MS: UnixMillis = 14 * 86_400_000;

    /// The start of the series' first bucket (the one holding `from`).
    pub fn first_bucket(&self) -> UnixMillis {
        self.bucket.start_of(self.from)
    }

    /// How many points the series has.
    pub fn points(&self) -> usize {
        let step = self.bucket.millis();
        if self.until <= self.from {
            return 0;
        }
        let first = self.first_bucket();
        let last = self.bucket.start_of(self.until.saturating_sub(1));
        // Saturating: an absurd window must fail the size check, not overflow.
        usize::try_from(last.saturating_sub(first) / step)
            .map_or(usize::MAX, |n| n.saturating_add(1))
    }
}

/// Counts of what happened to events and jobs of one destination (or one mapping) in a window.
///
/// For a destination, `received` counts events routed to it (each once, whatever its mappings
/// did), `not_matched` (in `discarded`) the events none of its mappings matched, and
/// `integrations_filtered` the events its `integrations` object excluded; the other discard
/// reasons and the job counts add up its mappings'. For a mapping, `received` counts the events
/// its trigger was evaluated on (`jobs` + its discards).
///
/// Receptions and discards count at the event's `received_at`; deliveries, retries and failures at
/// the attempt's end (the completion's time when no attempt was made).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverviewCounts {
    /// Events routed to it.
    pub received: u64,
    /// Delivery jobs built for it (requests to send).
    pub jobs: u64,
    /// Routing outcomes that produced no job, by reason (reasons with a count only).
    pub discarded: BTreeMap<DiscardReason, u64>,
    /// Jobs delivered (2xx).
    pub delivered: u64,
    /// Attempts that failed in a retryable way (a retry was scheduled).
    pub retried: u64,
    /// Jobs dropped after a non-retryable answer (in the dead letter).
    pub failed_discarded: u64,
    /// Jobs whose retry window ended (in the dead letter).
    pub failed_expired: u64,
}

impl OverviewCounts {
    /// Events the `integrations` object excluded (destination level only).
    pub fn filtered_by_integrations(&self) -> u64 {
        self.discard_count(DiscardReason::IntegrationsFiltered)
    }

    /// Events (for a destination: that no mapping matched; for a mapping: its trigger did not
    /// match).
    pub fn not_matched(&self) -> u64 {
        self.discard_count(DiscardReason::NotMatched)
    }

    /// How many discards of `reason`.
    pub fn discard_count(&self, reason: DiscardReason) -> u64 {
        self.discarded.get(&reason).copied().unwrap_or(0)
    }

    /// Jobs that ended in the dead letter: discarded plus expired.
    pub fn failed(&self) -> u64 {
        self.failed_discarded + self.failed_expired
    }

    /// Whether every count is zero.
    pub fn is_empty(&self) -> bool {
        *self == OverviewCounts::default()
    }
}

/// Ingest-to-delivery latency of delivered jobs: from the job's `created_at` (the ingest commit,
/// milliseconds after the event's `received_at`; for a replay, the replay) to the end of the
/// successful attempt. `created_at` rather than `received_at`: it is on the job row a completion
/// reads anyway, so measuring costs no read of the event. Percentiles are estimated from a
/// histogram with four buckets per doubling (each reported at its geometric middle: within about
/// 9% of the true value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Deliveries measured.
    pub count: u64,
    /// The median, in milliseconds; `None` without deliveries.
    pub p50_ms: Option<u64>,
    /// The 95th percentile, in milliseconds; `None` without deliveries.
    pub p95_ms: Option<u64>,
}

/// The totals of a destination or of one of its mappings over the window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverviewTotals {
    /// The counts.
    pub counts: OverviewCounts,
    /// Up to [`OverviewTotals::MAX_SAMPLES`] `messageId`s per discard reason, most recent first.
    pub discard_samples: BTreeMap<DiscardReason, Vec<String>>,
    /// Up to [`OverviewTotals::MAX_SAMPLES`] `messageId`s of failed jobs (discarded or expired),
    /// most recent first.
    pub failed_samples: Vec<String>,
    /// Up to [`OverviewTotals::MAX_SAMPLES`] `messageId`s of jobs whose attempt failed and was
    /// retried, most recent first.
    pub retried_samples: Vec<String>,
    /// Jobs awaiting a retry now (not terminal, at least one failed attempt): a gauge, not bound
    /// to the window.
    pub awaiting_retry: u64,
    /// Ingest-to-delivery latency of the window's deliveries.
    pub latency: LatencySummary,
}

impl OverviewTotals {
    /// The most sample `messageId`s kept per reason (per minute in the store, per window in an
    /// answer).
    pub const MAX_SAMPLES: usize = 10;
}

/// One point of an overview's time series.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverviewPoint {
    /// The bucket's start.
    pub start: UnixMillis,
    /// What happened in it.
    pub counts: OverviewCounts,
    /// Latency of the deliveries in it.
    pub latency: LatencySummary,
}

/// The delivery overview of one destination over a window: see [`crate::Store::overview`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overview {
    /// The window's start, rounded down to its minute.
    pub from: UnixMillis,
    /// The window's end (exclusive), rounded up to a minute.
    pub until: UnixMillis,
    /// The series' step.
    pub bucket: OverviewBucket,
    /// The destination's totals (the mapping's, when the query names one).
    pub totals: OverviewTotals,
    /// Each mapping's totals, by mapping id (only the queried one when the query names one):
    /// every mapping with something in the window or a job awaiting retry.
    pub mappings: BTreeMap<String, OverviewTotals>,
    /// One point per bucket from the window's first to its last, empty ones included.
    pub series: Vec<OverviewPoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_urls_round_trip_through_their_stored_form() {
        for url in [
            JobUrl::Setting("chartmogul_webhook_url".to_owned()),
            JobUrl::Fixed("https://h.example/wh/abc?token=1".to_owned()),
        ] {
            assert_eq!(JobUrl::from_stored(url.to_stored().into_owned()), url);
        }
        assert_eq!(JobUrl::Setting("k".to_owned()).to_stored(), "setting:k");
    }

    #[test]
    fn names_round_trip() {
        for reason in DiscardReason::ALL {
            assert_eq!(reason.as_str().parse::<DiscardReason>(), Ok(reason));
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
        assert_eq!(
            "nope".parse::<JobState>().unwrap_err().to_string(),
            "unknown job state 'nope'"
        );
    }
}
