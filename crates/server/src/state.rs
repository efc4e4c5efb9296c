//! What every handler shares: the store, the current workspace snapshot (swapped atomically, read
//! without locks), the Tracking API's settings, the record of refusals, the metrics and the
//! source debugger's feed.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use junction_event::Limits;
use junction_profiles::Suppressions;
use junction_store::Store;
use junction_workspace::Snapshot;

use crate::live::LiveEvents;
use crate::metrics::Metrics;
use crate::rejections::{IngestStats, IngestTotals, Rejections};

/// Settings of the Tracking API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingConfig {
    /// Size and count limits, counted on decompressed bytes (Segment's values by default).
    pub limits: Limits,
    /// The `Retry-After` sent with a 503 when the store cannot keep up (at least one second).
    pub retry_after: Duration,
    /// How many recent refusals are kept in memory for the admin API.
    pub rejection_log_capacity: usize,
    /// How many accepted events per source the source debugger keeps in memory (0: none, and
    /// events are then copied only while someone watches the live stream).
    pub debugger_recent: usize,
    /// Whether stored events go to the profile worker (audiences and computed traits).
    pub profiles: bool,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            // Both official clients wait exactly this long without counting it as a retry; one
            // second lets a full commit queue (about half a second of work) drain.
            retry_after: Duration::from_secs(1),
            rejection_log_capacity: 1000,
            debugger_recent: 500,
            profiles: true,
        }
    }
}

/// The state shared by all handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    snapshot: ArcSwap<Snapshot>,
    config: TrackingConfig,
    rejections: Rejections,
    stats: IngestStats,
    metrics: Metrics,
    live: LiveEvents,
    suppressions: OnceLock<Arc<Suppressions>>,
}

impl AppState {
    /// A state serving `snapshot` and committing to `store`.
    pub fn new(store: Arc<dyn Store>, snapshot: Snapshot, config: TrackingConfig) -> Self {
        let rejections = Rejections::new(config.rejection_log_capacity);
        let live = LiveEvents::new(config.debugger_recent);
        Self {
            inner: Arc::new(Inner {
                store,
                snapshot: ArcSwap::from_pointee(snapshot),
                config,
                rejections,
                stats: IngestStats::default(),
                metrics: Metrics::default(),
                live,
                suppressions: OnceLock::new(),
            }),
        }
    }

    /// The store events are committed to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The workspace snapshot in force. A request keeps the one it started with to the end.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    /// Puts a new snapshot in force for the requests that start from now on. Requests in flight
    /// finish with the one they loaded; nothing waits.
    pub fn replace_snapshot(&self, snapshot: Snapshot) {
        self.inner.snapshot.store(Arc::new(snapshot));
    }

    /// The Tracking API's settings.
    pub fn config(&self) -> &TrackingConfig {
        &self.inner.config
    }

    /// Refusals since start.
    pub fn rejections(&self) -> &Rejections {
        &self.inner.rejections
    }

    /// Ingestion totals since start.
    pub fn stats(&self) -> IngestTotals {
        self.inner.stats.totals()
    }

    pub(crate) fn ingest_stats(&self) -> &IngestStats {
        &self.inner.stats
    }

    /// The Prometheus metrics (the delivery engine counts into them too, see
    /// [`Metrics::delivery_hook`]).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Checks tracked events against `suppressions` from now on (the first list given stays).
    pub fn attach_suppressions(&self, suppressions: Arc<Suppressions>) {
        let _ = self.inner.suppressions.set(suppressions);
    }

    /// The suppression list, when one is attached (regulations need it).
    pub fn suppressions(&self) -> Option<&Arc<Suppressions>> {
        self.inner.suppressions.get()
    }

    /// The source debugger's feed of accepted events.
    pub fn live(&self) -> &LiveEvents {
        &self.inner.live
    }
}
