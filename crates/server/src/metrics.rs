//! Prometheus metrics: every metric name in one place, the counters ingestion and delivery bump
//! (atomics, label sets resolved once per source, per request or per lane, never per event), and
//! the text exposition `/metrics` serves.
//!
//! Values that already live elsewhere (refusals in [`crate::Rejections`], ingestion totals, the
//! store's queue, the delivery lanes) are read when scraped rather than counted twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use junction_delivery::{DeliveryMetrics, DeliveryOutcome, LaneMetrics, LaneStatsHandle};
use junction_store::{CommitOutcome, LaneBacklog, LaneDue, NewEvent, StoreStats, UnixMillis};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::listener::ConnectionStats;
use crate::rejections::{IngestTotals, RejectionCount};

/// Events parsed from the requests of a source (accepted or refused one by one). Counter.
pub const EVENTS_RECEIVED: &str = "junction_events_received";
/// Events acknowledged with 200 (stored or duplicates). Counter.
pub const EVENTS_ACCEPTED: &str = "junction_events_accepted";
/// Events acknowledged as duplicates (not routed again). Counter.
pub const EVENTS_DUPLICATE: &str = "junction_events_duplicate";
/// Events acknowledged but dropped (neither stored nor routed) because they carry a suppressed
/// identifier. Counter.
pub const EVENTS_SUPPRESSED: &str = "junction_events_suppressed";
/// Refusals per source and reason (a whole request counts once). Counter.
pub const EVENTS_REJECTED: &str = "junction_events_rejected";
/// Tracking API requests. Counter.
pub const TRACKING_REQUESTS: &str = "junction_tracking_requests";
/// Tracking API requests answered 503 because the store's queue was full. Counter.
pub const TRACKING_OVERLOADED: &str = "junction_tracking_overloaded";
/// analytics.js's own telemetry posts to `/v1/m`, accepted and discarded. Counter.
pub const TRACKING_CLIENT_METRICS: &str = "junction_tracking_client_metrics";
/// Routing outcomes of stored events per destination, mapping and outcome. Counter.
pub const ROUTING_OUTCOMES: &str = "junction_routing_outcomes";
/// Job outcomes per destination, outcome and HTTP status class. Counter.
pub const DELIVERIES: &str = "junction_deliveries";
/// Webhook attempt durations per destination. Histogram.
pub const ATTEMPT_DURATION: &str = "junction_delivery_attempt_duration_seconds";
/// Time `Store::commit` took, as the Tracking API awaited it. Histogram.
pub const COMMIT_DURATION: &str = "junction_store_commit_duration_seconds";
/// Events waiting for the store's writer. Gauge.
pub const STORE_QUEUED_EVENTS: &str = "junction_store_queued_events";
/// Write transactions the store committed. Counter.
pub const STORE_TRANSACTIONS: &str = "junction_store_transactions";
/// A lane's current adaptive concurrency limit. Gauge.
pub const LANE_LIMIT: &str = "junction_lane_concurrency_limit";
/// A lane's attempts in flight. Gauge.
pub const LANE_IN_FLIGHT: &str = "junction_lane_in_flight";
/// Jobs a lane holds claimed and not finished. Gauge.
pub const LANE_HELD: &str = "junction_lane_held_jobs";
/// How long the earliest due job of a lane has waited past its due time (0 when none is late):
/// the delivery backlog, read from the store. Gauge.
pub const LANE_LAG: &str = "junction_lane_due_lag_seconds";
/// Jobs not yet terminal per lane: the backlog in the store.
pub const LANE_QUEUED: &str = "junction_lane_queued_jobs";
/// Seconds left of a lane's pause by `Retry-After` (0 when not paused). Gauge.
pub const LANE_PAUSED: &str = "junction_lane_paused_seconds";
/// Whether a lane's endpoint is failing (1: its last answered attempt failed). Gauge.
pub const LANE_FAILING: &str = "junction_lane_failing";
/// Connections open per listener (`tracking`, `admin`). Gauge.
pub const CONNECTIONS_OPEN: &str = "junction_connections_open";
/// Connections closed at once because their listener was at its cap. Counter.
pub const CONNECTIONS_REFUSED: &str = "junction_connections_refused";
/// Connections closed because a request's head did not arrive in time (slow or idle). Counter.
pub const CONNECTIONS_TIMED_OUT: &str = "junction_connections_timed_out";

/// Histogram buckets, in seconds: from half a millisecond (a group commit) to a minute (a slow
/// webhook within its timeout).
const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    source: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoutingLabels {
    destination: String,
    mapping: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    destination: String,
    outcome: &'static str,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabels {
    destination: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLabels {
    destination: String,
    host: String,
}

/// A histogram whose observations are two relaxed atomic additions (prometheus-client's own takes
/// a lock per observation). Clones share their cells.
#[derive(Clone, Debug, Default)]
pub struct AtomicHistogram {
    cells: Arc<HistogramCells>,
}

#[derive(Debug, Default)]
struct HistogramCells {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl AtomicHistogram {
    /// Records one duration.
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let bucket = BUCKETS.partition_point(|bound| *bound < seconds);
        if let Some(cell) = self.cells.counts.get(bucket) {
            cell.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.cells.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.cells
            .counts
            .iter()
            .map(|cell| cell.load(Ordering::Relaxed))
            .sum()
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .zip(&self.cells.counts)
            .map(|(bound, cell)| (*bound, cell.load(Ordering::Relaxed)))
            .collect();
        let overflow = self.cells.counts[BUCKETS.len()].load(Ordering::Relaxed);
        buckets.push((f64::INFINITY, overflow));
        let count = buckets.iter().map(|(_, n)| n).sum();
        // Micro-seconds as f64 lose nothing below 2^53 µs (285 years).
        let sum = self.cells.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The counters of one source, resolved once and then bumped without any lookup.
#[derive(Debug)]
pub(crate) struct SourceCounters {
    received: Counter,
    accepted: Counter,
    duplicates: Counter,
    suppressed: Counter,
}

impl SourceCounters {
    /// `events` were parsed from one request (valid or not).
    pub(crate) fn received(&self, events: u64) {
        self.received.inc_by(events);
    }

    /// `stored` new events and `duplicates` were acknowledged.
    pub(crate) fn accepted(&self, stored: u64, duplicates: u64) {
        self.accepted.inc_by(stored + duplicates);
        self.duplicates.inc_by(duplicates);
    }

    /// `events` were acknowledged and dropped: they carry a suppressed identifier.
    pub(crate) fn suppressed(&self, events: u64) {
        self.suppressed.inc_by(events);
    }
}

/// The server's metrics; cheap to clone (clones share everything).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    inner: Arc<Families>,
}

#[derive(Debug, Default)]
struct Families {
    received: Family<SourceLabels, Counter>,
    accepted: Family<SourceLabels, Counter>,
    duplicates: Family<SourceLabels, Counter>,
    suppressed: Family<SourceLabels, Counter>,
    routing: Family<RoutingLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    attempt_duration: Family<DestinationLabels, AtomicHistogram>,
    commit_duration: AtomicHistogram,
    /// Per-source counters by source id, read without a lock on every request; replaced whole
    /// (under `sources_write`) the first time a source is seen.
    sources: ArcSwap<HashMap<String, Arc<SourceCounters>>>,
    sources_write: Mutex<()>,
    lanes: OnceLock<LaneStatsHandle>,
    /// Each listener's connection counts, by listener name.
    listeners: Mutex<Vec<(&'static str, Arc<ConnectionStats>)>>,
    client_metrics: Counter,
}

/// What a scrape reads besides the counters.
#[derive(Debug, Default)]
pub(crate) struct ScrapeInput {
    pub(crate) rejections: Vec<RejectionCount>,
    pub(crate) totals: IngestTotals,
    pub(crate) store: StoreStats,
    /// The store's lanes with their earliest due time, when it could be read.
    pub(crate) lanes_due: Option<Vec<LaneDue>>,
    /// The store's lanes with their queued jobs, when it could be read.
    pub(crate) lane_backlogs: Option<Vec<LaneBacklog>>,
    pub(crate) now: UnixMillis,
}

impl Metrics {
    /// The counters of `source_id`.
    pub(crate) fn source(&self, source_id: &str) -> Arc<SourceCounters> {
        if let Some(counters) = self.inner.sources.load().get(source_id) {
            return Arc::clone(counters);
        }
        let _guard = self
            .inner
            .sources_write
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.inner.sources.load_full();
        if let Some(counters) = current.get(source_id) {
            return Arc::clone(counters);
        }
        let labels = SourceLabels {
            source: source_id.to_owned(),
        };
        let counters = Arc::new(SourceCounters {
            received: self.inner.received.get_or_create_owned(&labels),
            accepted: self.inner.accepted.get_or_create_owned(&labels),
            duplicates: self.inner.duplicates.get_or_create_owned(&labels),
            suppressed: self.inner.suppressed.get_or_create_owned(&labels),
        });
        let mut next = HashMap::clone(&current);
        next.insert(source_id.to_owned(), Arc::clone(&counters));
        self.inner.sources.store(Arc::new(next));
        counters
    }

    /// Events of `source_id` dropped as suppressed since this process started.
    pub(crate) fn suppressed_of(&self, source_id: &str) -> u64 {
        self.inner
            .sources
            .load()
            .get(source_id)
            .map_or(0, |counters| counters.suppressed.get())
    }

    /// Records how long one `Store::commit` took.
    pub(crate) fn commit_duration(&self, duration: Duration) {
        self.inner.commit_duration.observe(duration);
    }

    /// Lets scrapes read the delivery engine's lanes (the first handle given stays).
    pub fn attach_lanes(&self, lanes: LaneStatsHandle) {
        let _ = self.inner.lanes.set(lanes);
    }

    /// The hook the delivery engine counts job outcomes through.
    pub fn delivery_hook(&self) -> Arc<dyn DeliveryMetrics> {
        Arc::new(self.clone())
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub(crate) fn render(&self, input: &ScrapeInput) -> Result<String, std::fmt::Error> {
        let families = &self.inner;
        let mut registry = Registry::default();
        registry.register(
            EVENTS_RECEIVED,
            "Events parsed from the Tracking API requests of a source, accepted or refused",
            families.received.clone(),
        );
        registry.register(
            EVENTS_ACCEPTED,
            "Events acknowledged with 200: stored, or duplicates of stored ones",
            families.accepted.clone(),
        );
        registry.register(
            EVENTS_DUPLICATE,
            "Events acknowledged as duplicates of a stored one, not routed again",
            families.duplicates.clone(),
        );
        registry.register(
            EVENTS_SUPPRESSED,
            "Events acknowledged with 200 but neither stored nor routed: they carry a \
             suppressed identifier",
            families.suppressed.clone(),
        );
        let rejected = Family::<RejectionLabels, Counter>::default();
        for count in &input.rejections {
            let labels = RejectionLabels {
                source: count.source_id.clone().unwrap_or_default(),
                reason: count.code,
            };
            rejected.get_or_create(&labels).inc_by(count.count);
        }
        registry.register(
            EVENTS_REJECTED,
            "Refusals by reason: whole requests count once, batch items one each; source is \
             empty when the write key was missing or unknown",
            rejected,
        );
        let requests = Counter::<u64>::default();
        requests.inc_by(input.totals.requests);
        registry.register(TRACKING_REQUESTS, "Tracking API requests", requests);
        let overloaded = Counter::<u64>::default();
        overloaded.inc_by(input.totals.overloaded);
        registry.register(
            TRACKING_OVERLOADED,
            "Tracking API requests answered 503 because the store could not keep up",
            overloaded,
        );
        registry.register(
            TRACKING_CLIENT_METRICS,
            "Telemetry posts of analytics.js to /v1/m, accepted and discarded (not events)",
            families.client_metrics.clone(),
        );
        registry.register(
            ROUTING_OUTCOMES,
            "Routing outcomes of stored events: a delivery job, or the reason nothing was sent",
            families.routing.clone(),
        );
        registry.register(
            DELIVERIES,
            "Delivery job outcomes by HTTP status class of the attempt (none: no answer)",
            families.deliveries.clone(),
        );
        registry.register(
            ATTEMPT_DURATION,
            "Webhook attempt durations",
            families.attempt_duration.clone(),
        );
        registry.register(
            COMMIT_DURATION,
            "Time a Tracking API request waited for its durable commit",
            families.commit_duration.clone(),
        );
        let queued = Gauge::<i64>::default();
        queued.set(i64::try_from(input.store.queued_events).unwrap_or(i64::MAX));
        registry.register(
            STORE_QUEUED_EVENTS,
            "Events waiting for the store's writer",
            queued,
        );
        let transactions = Counter::<u64>::default();
        transactions.inc_by(input.store.transactions);
        registry.register(
            STORE_TRANSACTIONS,
            "Write transactions the store committed",
            transactions,
        );
        self.register_lanes(&mut registry, input);
        self.register_listeners(&mut registry);

        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
        Ok(text)
    }

    /// The delivery lanes of this process (none before the engine is attached), by endpoint.
    pub fn lane_stats(&self) -> Vec<junction_delivery::LaneStats> {
        self.inner
            .lanes
            .get()
            .map(LaneStatsHandle::lane_stats)
            .unwrap_or_default()
    }

    /// One telemetry post of analytics.js (`/v1/m`) was accepted and discarded.
    pub(crate) fn client_metrics_post(&self) {
        self.inner.client_metrics.inc();
    }

    /// The connection counts of the listener called `name` (`tracking`, `admin`), created on
    /// first use and read at each scrape.
    pub fn listener(&self, name: &'static str) -> Arc<ConnectionStats> {
        let mut listeners = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, stats)) = listeners.iter().find(|(known, _)| *known == name) {
            return Arc::clone(stats);
        }
        let stats = Arc::new(ConnectionStats::default());
        listeners.push((name, Arc::clone(&stats)));
        stats
    }

    fn register_listeners(&self, registry: &mut Registry) {
        let open = Family::<ListenerLabels, Gauge>::default();
        let refused = Family::<ListenerLabels, Counter>::default();
        let timed_out = Family::<ListenerLabels, Counter>::default();
        let listeners = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (name, stats) in listeners.iter() {
            let labels = ListenerLabels {
                listener: (*name).to_owned(),
            };
            open.get_or_create(&labels)
                .set(i64::try_from(stats.open()).unwrap_or(i64::MAX));
            refused.get_or_create(&labels).inc_by(stats.refused());
            timed_out.get_or_create(&labels).inc_by(stats.timed_out());
        }
        registry.register(CONNECTIONS_OPEN, "Connections open per listener", open);
        registry.register(
            CONNECTIONS_REFUSED,
            "Connections closed at once because their listener was at its connection cap",
            refused,
        );
        registry.register(
            CONNECTIONS_TIMED_OUT,
            "Connections closed because a request's head did not arrive in time (slow or idle)",
            timed_out,
        );
    }

    fn register_lanes(&self, registry: &mut Registry, input: &ScrapeInput) {
        let limit = Family::<LaneLabels, Gauge>::default();
        let in_flight = Family::<LaneLabels, Gauge>::default();
        let held = Family::<LaneLabels, Gauge>::default();
        let paused = Family::<LaneLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let failing = Family::<LaneLabels, Gauge>::default();
        for lane in self.lane_stats() {
            let labels = lane_labels(&lane.endpoint);
            limit.get_or_create(&labels).set(i64::from(lane.limit));
            in_flight
                .get_or_create(&labels)
                .set(i64::from(lane.in_flight));
            held.get_or_create(&labels)
                .set(i64::try_from(lane.held).unwrap_or(i64::MAX));
            let left_ms = lane
                .paused_until
                .map_or(0, |until| until.saturating_sub(input.now).max(0));
            paused.get_or_create(&labels).set(left_ms as f64 / 1e3);
            failing.get_or_create(&labels).set(i64::from(lane.failing));
        }
        registry.register(
            LANE_PAUSED,
            "Seconds left of a delivery lane's pause by Retry-After (0 when not paused)",
            paused,
        );
        registry.register(
            LANE_FAILING,
            "1 while a delivery lane's endpoint fails (its last answered attempt failed)",
            failing,
        );
        registry.register(
            LANE_LIMIT,
            "A delivery lane's current adaptive concurrency limit",
            limit,
        );
        registry.register(
            LANE_IN_FLIGHT,
            "A delivery lane's attempts in flight",
            in_flight,
        );
        registry.register(
            LANE_HELD,
            "Jobs a delivery lane holds claimed and not finished",
            held,
        );
        let lag = Family::<LaneLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        for due in input.lanes_due.iter().flatten() {
            let late_ms = input.now.saturating_sub(due.next_at).max(0);
            lag.get_or_create(&lane_labels(&due.endpoint))
                .set(late_ms as f64 / 1e3);
        }
        registry.register(
            LANE_LAG,
            "How long a lane's earliest due job has waited past its due time",
            lag,
        );
        let queued = Family::<LaneLabels, Gauge>::default();
        for backlog in input.lane_backlogs.iter().flatten() {
            queued
                .get_or_create(&lane_labels(&backlog.endpoint))
                .set(i64::try_from(backlog.queued).unwrap_or(i64::MAX));
        }
        registry.register(
            LANE_QUEUED,
            "Jobs of a delivery lane not yet delivered, discarded or expired",
            queued,
        );
    }
}

/// A lane key is `destination id|webhook host`.
fn lane_labels(endpoint: &str) -> LaneLabels {
    let (destination, host) = endpoint.split_once('|').unwrap_or((endpoint, ""));
    LaneLabels {
        destination: destination.to_owned(),
        host: host.to_owned(),
    }
}

/// The status class label of an attempt's answer.
fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        _ => "none",
    }
}

const STATUS_CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "none"];

impl DeliveryMetrics for Metrics {
    fn lane(&self, destination_id: &str, _endpoint: &str) -> Arc<dyn LaneMetrics> {
        let labels = DestinationLabels {
            destination: destination_id.to_owned(),
        };
        Arc::new(LaneRecorder {
            families: Arc::clone(&self.inner),
            destination: destination_id.to_owned(),
            duration: self.inner.attempt_duration.get_or_create_owned(&labels),
            counters: Default::default(),
        })
    }
}

/// One lane's pre-resolved series: the histogram at once, each (outcome, status class) counter
/// on first use, so that only series that happen are exported.
struct LaneRecorder {
    families: Arc<Families>,
    destination: String,
    duration: AtomicHistogram,
    counters: [[OnceLock<Counter>; STATUS_CLASSES.len()]; DeliveryOutcome::ALL.len()],
}

impl LaneMetrics for LaneRecorder {
    fn outcome(&self, outcome: DeliveryOutcome, status: Option<u16>, duration: Option<Duration>) {
        if let Some(duration) = duration {
            self.duration.observe(duration);
        }
        let class = status_class(status);
        let row = DeliveryOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        let column = STATUS_CLASSES.iter().position(|c| *c == class).unwrap_or(0);
        let Some(cell) = self.counters.get(row).and_then(|r| r.get(column)) else {
            return;
        };
        cell.get_or_init(|| {
            self.families
                .deliveries
                .get_or_create_owned(&DeliveryLabels {
                    destination: self.destination.clone(),
                    outcome: outcome.as_str(),
                    status_class: class,
                })
        })
        .inc();
    }
}

/// The routing outcomes of one request's events, tallied per distinct (destination, mapping,
/// outcome) before the commit and counted after it for the events actually stored (duplicates
/// are not routed again), so that label sets are resolved once per request, not per event.
#[derive(Debug, Default)]
pub(crate) struct RoutingTally {
    sets: Vec<(RoutingLabels, u64)>,
    /// (event index, set index) per outcome.
    marks: Vec<(usize, usize)>,
}

impl RoutingTally {
    /// The outcomes of `events`.
    pub(crate) fn of(events: &[NewEvent]) -> Self {
        let mut tally = Self::default();
        for (index, event) in events.iter().enumerate() {
            for job in &event.jobs {
                tally.mark(index, &job.destination_id, &job.subscription_id, "job");
            }
            for discard in &event.discards {
                let mapping = discard.subscription_id.as_deref().unwrap_or("");
                tally.mark(
                    index,
                    &discard.destination_id,
                    mapping,
                    discard.reason.as_str(),
                );
            }
        }
        tally
    }

    fn mark(&mut self, event: usize, destination: &str, mapping: &str, outcome: &'static str) {
        let found = self.sets.iter().position(|(labels, _)| {
            labels.outcome == outcome
                && labels.destination == destination
                && labels.mapping == mapping
        });
        let set = found.unwrap_or_else(|| {
            self.sets.push((
                RoutingLabels {
                    destination: destination.to_owned(),
                    mapping: mapping.to_owned(),
                    outcome,
                },
                0,
            ));
            self.sets.len() - 1
        });
        self.marks.push((event, set));
    }

    /// Counts the outcomes of the events `outcomes` says were stored.
    pub(crate) fn record(mut self, metrics: &Metrics, outcomes: &[CommitOutcome]) {
        for (event, set) in &self.marks {
            if matches!(outcomes.get(*event), Some(CommitOutcome::Stored { .. }))
                && let Some((_, count)) = self.sets.get_mut(*set)
            {
                *count += 1;
            }
        }
        for (labels, count) in &self.sets {
            if *count > 0 {
                metrics.inner.routing.get_or_create(labels).inc_by(*count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_put_each_observation_in_its_bucket() {
        let histogram = AtomicHistogram::default();
        histogram.observe(Duration::from_micros(400));
        histogram.observe(Duration::from_millis(1));
        histogram.observe(Duration::from_secs(120));
        assert_eq!(histogram.count(), 3);
        let metrics = Metrics::default();
        metrics.commit_duration(Duration::from_micros(400));
        metrics.commit_duration(Duration::from_secs(120));
        let text = metrics.render(&ScrapeInput::default()).unwrap();
        assert!(
            text.contains("junction_store_commit_duration_seconds_bucket{le=\"0.0005\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("junction_store_commit_duration_seconds_bucket{le=\"60\"} 1\n"));
        assert!(text.contains("junction_store_commit_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("junction_store_commit_duration_seconds_count 2\n"));
        assert!(text.contains("junction_store_commit_duration_seconds_sum 120.0004\n"));
    }

    #[test]
    fn source_counters_are_resolved_once_and_shared() {
        let metrics = Metrics::default();
        metrics.source("web").received(3);
        metrics.source("web").accepted(2, 1);
        let text = metrics.render(&ScrapeInput::default()).unwrap();
        assert!(text.contains("junction_events_received_total{source=\"web\"} 3\n"));
        assert!(text.contains("junction_events_accepted_total{source=\"web\"} 3\n"));
        assert!(text.contains("junction_events_duplicate_total{source=\"web\"} 1\n"));
        assert!(Arc::ptr_eq(&metrics.source("web"), &metrics.source("web")));
    }

    #[test]
    fn lanes_count_outcomes_by_status_class() {
        let metrics = Metrics::default();
        let lane = metrics.lane("cm", "cm|host");
        lane.outcome(
            DeliveryOutcome::Retried,
            Some(503),
            Some(Duration::from_millis(3)),
        );
        lane.outcome(
            DeliveryOutcome::Retried,
            Some(500),
            Some(Duration::from_millis(3)),
        );
        lane.outcome(DeliveryOutcome::Expired, None, None);
        let text = metrics.render(&ScrapeInput::default()).unwrap();
        assert!(text.contains(
            "junction_deliveries_total{destination=\"cm\",outcome=\"retried\",status_class=\"5xx\"} 2\n"
        ), "{text}");
        assert!(text.contains(
            "junction_deliveries_total{destination=\"cm\",outcome=\"expired\",status_class=\"none\"} 1\n"
        ));
        assert!(
            text.contains(
                "junction_delivery_attempt_duration_seconds_count{destination=\"cm\"} 2\n"
            )
        );
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(Some(204)), "2xx");
        assert_eq!(status_class(Some(429)), "4xx");
        assert_eq!(status_class(Some(503)), "5xx");
        assert_eq!(status_class(None), "none");
        assert_eq!(status_class(Some(101)), "none");
    }
}
