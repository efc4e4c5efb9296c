//! The delivery overview's rollup model, shared by every engine: the minute grain, the latency
//! histogram's bins, what a counter counts and its stored name, and how stored counters add up
//! into a destination's and a mapping's totals. Engines store and read the rows; this module says
//! what they mean, so that every engine answers [`crate::Store::overview`] the same way.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::{
    DiscardReason, JobState, LatencySummary, NewEvent, Overview, OverviewBucket, OverviewCounts,
    OverviewPoint, OverviewQuery, OverviewTotals, StoreError, UnixMillis, UnknownName,
};

/// Rollup rows are kept per minute: the finest grain of a series.
pub const MINUTE_MS: i64 = 60_000;

/// The minute holding `at` (minutes since the epoch).
pub fn minute_of(at: UnixMillis) -> i64 {
    at.div_euclid(MINUTE_MS)
}

/// Latency histogram buckets per doubling: bucket `b >= 1` holds `[2^((b-1)/4), 2^(b/4))` ms and
/// bucket 0 everything under 1 ms. Four per doubling keeps the estimate within about 9% of the
/// true value (reported at the bucket's geometric middle) with about 120 buckets up to 14 days.
const BINS_PER_DOUBLING: f64 = 4.0;

/// The histogram bucket of a latency in milliseconds.
pub fn latency_bin(ms: i64) -> i64 {
    if ms < 1 {
        return 0;
    }
    // Exact for every latency that matters: f64 holds integers up to 2^53 ms exactly.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let bin = ((ms as f64).log2() * BINS_PER_DOUBLING).floor() as i64;
    bin + 1
}

/// The value a histogram bucket stands for: its geometric middle, in milliseconds.
pub fn bin_value(bin: i64) -> u64 {
    if bin <= 0 {
        return 0;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let value = 2f64.powf((bin as f64 - 0.5) / BINS_PER_DOUBLING).round() as u64;
    value
}

/// A latency histogram: bucket to count.
pub type Histogram = BTreeMap<i64, u64>;

/// p50 and p95 of a histogram (nearest rank), each its bucket's middle value.
pub fn summarise(histogram: &Histogram) -> LatencySummary {
    let count: u64 = histogram.values().sum();
    if count == 0 {
        return LatencySummary::default();
    }
    let quantile = |q: u64| -> Option<u64> {
        // Nearest rank: the smallest value with at least q% of the values at or below it.
        let rank = (count * q).div_ceil(100).max(1);
        let mut seen = 0;
        for (&bin, &n) in histogram {
            seen += n;
            if seen >= rank {
                return Some(bin_value(bin));
            }
        }
        None
    };
    LatencySummary {
        count,
        p50_ms: quantile(50),
        p95_ms: quantile(95),
    }
}

/// What a rollup counter counts. Stored by name (see [`Outcome::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// An event routed to the destination (destination-level rows only, each event once).
    Received,
    /// A job built by the mapping.
    Job,
    /// A routing discard. Destination-level rows hold the destination-wide ones (the
    /// `integrations` object) and the events no mapping matched; mapping rows hold the mapping's.
    Discard(DiscardReason),
    /// A job delivered.
    Delivered,
    /// A failed attempt followed by a scheduled retry.
    Retried,
    /// A job discarded after a non-retryable answer.
    FailedDiscarded,
    /// A job whose retry window ended.
    FailedExpired,
}

impl Outcome {
    /// The stored name. Never change one: stored rows use it.
    pub fn name(self) -> Cow<'static, str> {
        match self {
            Outcome::Received => "received".into(),
            Outcome::Job => "job".into(),
            Outcome::Discard(reason) => format!("discard:{reason}").into(),
            Outcome::Delivered => "delivered".into(),
            Outcome::Retried => "retried".into(),
            Outcome::FailedDiscarded => "failed:discarded".into(),
            Outcome::FailedExpired => "failed:expired".into(),
        }
    }

    /// The outcome a stored name stands for.
    pub fn parse(name: &str) -> Result<Outcome, UnknownName> {
        Ok(match name {
            "received" => Outcome::Received,
            "job" => Outcome::Job,
            "delivered" => Outcome::Delivered,
            "retried" => Outcome::Retried,
            "failed:discarded" => Outcome::FailedDiscarded,
            "failed:expired" => Outcome::FailedExpired,
            other => {
                let reason = other.strip_prefix("discard:").and_then(|r| r.parse().ok());
                let Some(reason) = reason else {
                    return Err(UnknownName {
                        kind: "overview outcome",
                        name: other.to_owned(),
                    });
                };
                Outcome::Discard(reason)
            }
        })
    }
}

/// Adds a stored counter to a mapping's counts: its `received` is what its trigger saw, that is
/// its jobs and its discards.
pub fn add_to_mapping(counts: &mut OverviewCounts, outcome: Outcome, n: u64) {
    match outcome {
        // Only written at destination level.
        Outcome::Received => {}
        Outcome::Job => {
            counts.jobs += n;
            counts.received += n;
        }
        Outcome::Discard(reason) => {
            *counts.discarded.entry(reason).or_default() += n;
            counts.received += n;
        }
        Outcome::Delivered => counts.delivered += n,
        Outcome::Retried => counts.retried += n,
        Outcome::FailedDiscarded => counts.failed_discarded += n,
        Outcome::FailedExpired => counts.failed_expired += n,
    }
}

/// Adds a stored counter to its destination's counts. Destination-level rows count events
/// (received, excluded by the integrations object, matched by no mapping); a mapping's rows add
/// its jobs, its other discards and its deliveries.
pub fn add_to_destination(
    counts: &mut OverviewCounts,
    destination_row: bool,
    outcome: Outcome,
    n: u64,
) {
    match (destination_row, outcome) {
        (true, Outcome::Received) => counts.received += n,
        (true, Outcome::Discard(reason)) => *counts.discarded.entry(reason).or_default() += n,
        // A mapping not matching an event the destination still delivered through another one is
        // not the destination's "not matched": its own row counts those.
        (true, _) | (false, Outcome::Received | Outcome::Discard(DiscardReason::NotMatched)) => {}
        (false, Outcome::Discard(reason)) => *counts.discarded.entry(reason).or_default() += n,
        (false, Outcome::Job) => counts.jobs += n,
        (false, Outcome::Delivered) => counts.delivered += n,
        (false, Outcome::Retried) => counts.retried += n,
        (false, Outcome::FailedDiscarded) => counts.failed_discarded += n,
        (false, Outcome::FailedExpired) => counts.failed_expired += n,
    }
}

/// The newest distinct `messageId`s of `found` (minute, id), at most
/// [`OverviewTotals::MAX_SAMPLES`].
pub fn newest(mut found: Vec<(i64, String)>) -> Vec<String> {
    found.sort_unstable_by(|a, b| b.cmp(a));
    let mut ids: Vec<String> = Vec::with_capacity(OverviewTotals::MAX_SAMPLES);
    for (_, id) in found {
        if ids.len() == OverviewTotals::MAX_SAMPLES {
            break;
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// One counter a stored event adds one to (see [`event_counts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventCount<'a> {
    /// The destination.
    pub destination: &'a str,
    /// The mapping, or empty for a destination-level counter.
    pub subscription: &'a str,
    /// The counter.
    pub outcome: Outcome,
    /// Whether the event's `messageId` is a sample of this counter.
    pub sampled: bool,
}

/// What one event did at one destination, to derive the destination-level counters; a buffer
/// [`event_counts`] reuses across events.
#[derive(Debug)]
pub struct DestinationSeen<'a> {
    destination: &'a str,
    jobs: bool,
    destination_wide: bool,
    mapping_discards: usize,
    not_matched: usize,
}

/// Calls `count` for every counter a stored event adds one to: a job per mapping that produced
/// one, a discard per mapping (or destination-wide) that refused it, and per destination it
/// reached, `received` and, when every mapping refused it as not matched, the destination's own
/// `not matched`. `seen` is scratch space, cleared first (kept by the caller so that the hot
/// path does not allocate per event).
pub fn event_counts<'a>(
    event: &'a NewEvent,
    seen: &mut Vec<DestinationSeen<'a>>,
    mut count: impl FnMut(EventCount<'a>),
) {
    seen.clear();
    let at = |seen: &mut Vec<DestinationSeen<'a>>, destination: &'a str| -> usize {
        // Usually one destination per event: a linear search beats hashing.
        match seen.iter().position(|s| s.destination == destination) {
            Some(index) => index,
            None => {
                seen.push(DestinationSeen {
                    destination,
                    jobs: false,
                    destination_wide: false,
                    mapping_discards: 0,
                    not_matched: 0,
                });
                seen.len() - 1
            }
        }
    };
    for job in &event.jobs {
        let index = at(seen, &job.destination_id);
        seen[index].jobs = true;
        count(EventCount {
            destination: &job.destination_id,
            subscription: &job.subscription_id,
            outcome: Outcome::Job,
            sampled: false,
        });
    }
    for discard in &event.discards {
        let index = at(seen, &discard.destination_id);
        let entry = &mut seen[index];
        let subscription = match &discard.subscription_id {
            Some(subscription) => {
                entry.mapping_discards += 1;
                if discard.reason == DiscardReason::NotMatched {
                    entry.not_matched += 1;
                }
                subscription.as_str()
            }
            None => {
                entry.destination_wide = true;
                ""
            }
        };
        count(EventCount {
            destination: &discard.destination_id,
            subscription,
            outcome: Outcome::Discard(discard.reason),
            sampled: true,
        });
    }
    for entry in seen.iter() {
        count(EventCount {
            destination: entry.destination,
            subscription: "",
            outcome: Outcome::Received,
            sampled: false,
        });
        let none_matched = !entry.jobs
            && !entry.destination_wide
            && entry.mapping_discards > 0
            && entry.not_matched == entry.mapping_discards;
        if none_matched {
            count(EventCount {
                destination: entry.destination,
                subscription: "",
                outcome: Outcome::Discard(DiscardReason::NotMatched),
                sampled: true,
            });
        }
    }
}

/// The counter a job's completion in `state` adds one to.
pub fn completion_outcome(state: JobState) -> Outcome {
    match state {
        JobState::Succeeded => Outcome::Delivered,
        JobState::AwaitingRetry | JobState::Pending => Outcome::Retried,
        JobState::Discarded => Outcome::FailedDiscarded,
        JobState::Expired => Outcome::FailedExpired,
    }
}

/// Whether a completion in `state` keeps its event's `messageId` as a sample of its counter:
/// failures do (retried, discarded, expired), so that the overview can show why with examples;
/// deliveries do not (they are the many, and need no explaining).
pub fn samples_completion(state: JobState) -> bool {
    matches!(
        state,
        JobState::AwaitingRetry | JobState::Discarded | JobState::Expired
    )
}

/// How a completion in `state` moves its mapping's awaiting-retry gauge, given whether the job
/// was already awaiting a retry (counted in the gauge) before it.
pub fn awaiting_retry_delta(state: JobState, was_retrying: bool) -> i64 {
    i64::from(!state.is_terminal()) - i64::from(was_retrying)
}

/// One list of samples an overview needs: the newest `messageId`s of one counter of one mapping
/// (`subscription` empty: the destination's own row) within the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SamplesWanted {
    /// The mapping, or empty for the destination's own counters.
    pub subscription: String,
    /// The counter.
    pub outcome: Outcome,
}

/// Assembles an [`Overview`] from an engine's rollup rows, so that every engine answers
/// [`crate::Store::overview`] alike: the engine reads the window's count, latency and gauge rows
/// and feeds them in, then reads the [`samples_wanted`](Self::samples_wanted) and feeds those.
#[derive(Debug)]
pub struct OverviewBuilder {
    scope: Option<String>,
    from_minute: i64,
    until_minute: i64,
    first: UnixMillis,
    step: i64,
    bucket: OverviewBucket,
    series: Vec<OverviewPoint>,
    series_latency: Vec<Histogram>,
    destination_counts: OverviewCounts,
    destination_latency: Histogram,
    mappings: BTreeMap<String, OverviewTotals>,
    mapping_latency: BTreeMap<String, Histogram>,
    mapping_failed: BTreeMap<String, Vec<(i64, String)>>,
    mapping_retried: BTreeMap<String, Vec<(i64, String)>>,
    gauges: BTreeMap<String, u64>,
    destination_samples: BTreeMap<DiscardReason, Vec<(i64, String)>>,
    destination_failed: Vec<(i64, String)>,
    destination_retried: Vec<(i64, String)>,
}

impl OverviewBuilder {
    /// An empty overview of `query`'s window; fails with [`StoreError::InvalidRequest`] when its
    /// series would have more than [`OverviewQuery::MAX_POINTS`] points.
    pub fn new(query: &OverviewQuery) -> Result<Self, StoreError> {
        let points = query.points();
        if points > OverviewQuery::MAX_POINTS {
            return Err(StoreError::InvalidRequest {
                detail: format!(
                    "the series would have {points} points, more than {}",
                    OverviewQuery::MAX_POINTS
                ),
            });
        }
        let from_minute = minute_of(query.from);
        // Exclusive, rounded up: the minute holding the window's last millisecond counts whole.
        let until_minute = if query.until > query.from {
            minute_of(query.until.saturating_sub(1)) + 1
        } else {
            from_minute
        };
        let step = query.bucket.millis();
        let first = query.first_bucket();
        let series: Vec<OverviewPoint> = (0..points)
            .map(|n| OverviewPoint {
                start: first + i64::try_from(n).unwrap_or(i64::MAX) * step,
                ..OverviewPoint::default()
            })
            .collect();
        Ok(OverviewBuilder {
            scope: query.subscription_id.clone(),
            from_minute,
            until_minute,
            first,
            step,
            bucket: query.bucket,
            series_latency: vec![Histogram::new(); series.len()],
            series,
            destination_counts: OverviewCounts::default(),
            destination_latency: Histogram::new(),
            mappings: BTreeMap::new(),
            mapping_latency: BTreeMap::new(),
            mapping_failed: BTreeMap::new(),
            mapping_retried: BTreeMap::new(),
            gauges: BTreeMap::new(),
            destination_samples: BTreeMap::new(),
            destination_failed: Vec::new(),
            destination_retried: Vec::new(),
        })
    }

    /// The rollup minutes to read: `from` inclusive, `until` exclusive.
    pub fn minutes(&self) -> (i64, i64) {
        (self.from_minute, self.until_minute)
    }

    /// The mapping the overview is scoped to, if any: the engine reads only its rows (and its
    /// gauge), while a destination overview reads every row of the destination.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    fn point(&self, minute: i64) -> Option<usize> {
        usize::try_from((minute * MINUTE_MS - self.first).div_euclid(self.step)).ok()
    }

    /// Adds one stored counter row (`subscription` empty: a destination-level row).
    pub fn add_count(&mut self, minute: i64, subscription: &str, outcome: Outcome, n: u64) {
        let destination_row = subscription.is_empty();
        add_to_destination(&mut self.destination_counts, destination_row, outcome, n);
        if !destination_row {
            let totals = match self.mappings.get_mut(subscription) {
                Some(totals) => totals,
                None => self.mappings.entry(subscription.to_owned()).or_default(),
            };
            add_to_mapping(&mut totals.counts, outcome, n);
        }
        let scoped = self.scope.is_some();
        if let Some(point) = self
            .point(minute)
            .and_then(|index| self.series.get_mut(index))
        {
            if scoped {
                add_to_mapping(&mut point.counts, outcome, n);
            } else {
                add_to_destination(&mut point.counts, destination_row, outcome, n);
            }
        }
    }

    /// Adds one stored latency histogram row.
    pub fn add_latency(&mut self, minute: i64, subscription: &str, bin: i64, n: u64) {
        *self.destination_latency.entry(bin).or_default() += n;
        let histogram = match self.mapping_latency.get_mut(subscription) {
            Some(histogram) => histogram,
            None => self
                .mapping_latency
                .entry(subscription.to_owned())
                .or_default(),
        };
        *histogram.entry(bin).or_default() += n;
        if let Some(histogram) = self
            .point(minute)
            .and_then(|index| self.series_latency.get_mut(index))
        {
            *histogram.entry(bin).or_default() += n;
        }
    }

    /// Adds a mapping's awaiting-retry gauge (ignored outside the scope, and when zero).
    pub fn add_gauge(&mut self, subscription: &str, value: u64) {
        if value > 0
            && self
                .scope
                .as_deref()
                .is_none_or(|scope| scope == subscription)
        {
            self.gauges.insert(subscription.to_owned(), value);
        }
    }

    /// The sample lists the totals need, once every count row is in: those of each counter that
    /// counted something.
    pub fn samples_wanted(&self) -> Vec<SamplesWanted> {
        let mut wanted = Vec::new();
        for (subscription, totals) in &self.mappings {
            let discards = totals
                .counts
                .discarded
                .iter()
                .filter(|(_, count)| **count > 0)
                .map(|(reason, _)| Outcome::Discard(*reason));
            let failures = [
                (Outcome::Retried, totals.counts.retried),
                (Outcome::FailedDiscarded, totals.counts.failed_discarded),
                (Outcome::FailedExpired, totals.counts.failed_expired),
            ]
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(outcome, _)| outcome);
            wanted.extend(discards.chain(failures).map(|outcome| SamplesWanted {
                subscription: subscription.clone(),
                outcome,
            }));
        }
        if self.scope.is_none() {
            for reason in [
                DiscardReason::IntegrationsFiltered,
                DiscardReason::NotMatched,
            ] {
                if self.destination_counts.discard_count(reason) > 0 {
                    wanted.push(SamplesWanted {
                        subscription: String::new(),
                        outcome: Outcome::Discard(reason),
                    });
                }
            }
        }
        wanted
    }

    /// Adds the samples (minute, `messageId`) read for `wanted`.
    pub fn add_samples(&mut self, wanted: &SamplesWanted, found: Vec<(i64, String)>) {
        let destination_row = wanted.subscription.is_empty();
        match wanted.outcome {
            Outcome::Discard(reason) if destination_row => {
                self.destination_samples
                    .entry(reason)
                    .or_default()
                    .extend(found);
            }
            Outcome::Discard(reason) => {
                // The destination counts events no mapping matched on its own row.
                if reason != DiscardReason::NotMatched {
                    self.destination_samples
                        .entry(reason)
                        .or_default()
                        .extend(found.iter().cloned());
                }
                if let Some(totals) = self.mappings.get_mut(&wanted.subscription) {
                    totals.discard_samples.insert(reason, newest(found));
                }
            }
            Outcome::FailedDiscarded | Outcome::FailedExpired if !destination_row => {
                self.destination_failed.extend(found.iter().cloned());
                self.mapping_failed
                    .entry(wanted.subscription.clone())
                    .or_default()
                    .extend(found);
            }
            Outcome::Retried if !destination_row => {
                self.destination_retried.extend(found.iter().cloned());
                self.mapping_retried
                    .entry(wanted.subscription.clone())
                    .or_default()
                    .extend(found);
            }
            _ => {}
        }
    }

    /// The overview.
    pub fn finish(mut self) -> Overview {
        for (point, histogram) in self.series.iter_mut().zip(&self.series_latency) {
            point.latency = summarise(histogram);
        }
        for (subscription, value) in &self.gauges {
            self.mappings
                .entry(subscription.clone())
                .or_default()
                .awaiting_retry = *value;
        }
        for (subscription, totals) in &mut self.mappings {
            if let Some(histogram) = self.mapping_latency.get(subscription) {
                totals.latency = summarise(histogram);
            }
            if let Some(failed) = self.mapping_failed.remove(subscription) {
                totals.failed_samples = newest(failed);
            }
            if let Some(retried) = self.mapping_retried.remove(subscription) {
                totals.retried_samples = newest(retried);
            }
        }
        let totals = match &self.scope {
            Some(scope) => self.mappings.get(scope).cloned().unwrap_or_default(),
            None => OverviewTotals {
                counts: self.destination_counts,
                discard_samples: self
                    .destination_samples
                    .into_iter()
                    .map(|(reason, found)| (reason, newest(found)))
                    .collect(),
                failed_samples: newest(self.destination_failed),
                retried_samples: newest(self.destination_retried),
                awaiting_retry: self.gauges.values().sum(),
                latency: summarise(&self.destination_latency),
            },
        };
        Overview {
            from: self.from_minute * MINUTE_MS,
            until: self.until_minute * MINUTE_MS,
            bucket: self.bucket,
            totals,
            mappings: self.mappings,
            series: self.series,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_round_trip() {
        let mut outcomes = vec![
            Outcome::Received,
            Outcome::Job,
            Outcome::Delivered,
            Outcome::Retried,
            Outcome::FailedDiscarded,
            Outcome::FailedExpired,
        ];
        outcomes.extend(DiscardReason::ALL.map(Outcome::Discard));
        for outcome in outcomes {
            assert_eq!(Outcome::parse(&outcome.name()), Ok(outcome));
        }
        assert!(Outcome::parse("discard:nope").is_err());
    }

    #[test]
    fn latency_bins_are_log_scale_and_values_close() {
        assert_eq!((latency_bin(0), bin_value(0)), (0, 0));
        assert_eq!(latency_bin(-5), 0);
        assert_eq!(latency_bin(1), 1);
        assert_eq!(latency_bin(2), 5);
        assert_eq!(latency_bin(1024), 41);
        for ms in [1i64, 3, 17, 250, 999, 12_345, 3_600_000, 14 * 86_400_000] {
            let value = bin_value(latency_bin(ms));
            #[allow(clippy::cast_precision_loss)]
            let error = (value as f64 - ms as f64).abs() / ms as f64;
            assert!(error < 0.1, "{ms} ms read back as {value}");
        }
        assert!(latency_bin(14 * 86_400_000) < 130);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let histogram: Histogram = [(latency_bin(10), 90), (latency_bin(1000), 10)].into();
        let summary = summarise(&histogram);
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_ms, Some(bin_value(latency_bin(10))));
        assert_eq!(summary.p95_ms, Some(bin_value(latency_bin(1000))));
        assert_eq!(summarise(&Histogram::new()), LatencySummary::default());
    }
}
