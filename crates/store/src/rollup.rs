//! The delivery overview's rollup model, shared by every engine: the minute grain, the latency
//! histogram's bins, what a counter counts and its stored name, and how stored counters add up
//! into a destination's and a mapping's totals. Engines store and read the rows; this module says
//! what they mean, so that every engine answers [`crate::Store::overview`] the same way.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::{
    DiscardReason, LatencySummary, OverviewCounts, OverviewTotals, UnixMillis, UnknownName,
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
