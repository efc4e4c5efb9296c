//! What the Tracking API refused, so that nothing is dropped silently: counters per (source,
//! reason) since start, the last N refusals in memory (for the admin API), and ingestion totals.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use junction_store::UnixMillis;
use serde::Serialize;

/// One refusal: a whole request, or one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectionRecord {
    /// When it was refused (server clock, Unix milliseconds).
    pub at: UnixMillis,
    /// The source, when the write key was known.
    pub source_id: Option<String>,
    /// The request path, e.g. `/v1/batch`.
    pub path: String,
    /// The event's position in the batch; `None` when the whole request was refused.
    pub index: Option<usize>,
    /// The stable reason code, e.g. `missing_identity`.
    pub code: &'static str,
    /// Why, in words (never a write key).
    pub message: String,
}

/// How many refusals one (source, reason) has had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectionCount {
    /// The source; `None` for requests whose write key was missing or unknown.
    pub source_id: Option<String>,
    /// The reason code.
    pub code: &'static str,
    /// Refusals since the server started.
    pub count: u64,
}

/// Refusals since start: counted per (source, reason), the most recent kept in memory. Locks are
/// held only to bump a counter or push a record, never across an `.await`.
#[derive(Debug)]
pub struct Rejections {
    counts: Mutex<BTreeMap<(Option<String>, &'static str), u64>>,
    recent: Mutex<VecDeque<RejectionRecord>>,
    capacity: usize,
    summary: Mutex<SummaryWindow>,
}

/// How often refusals are summed up in the log at most.
pub const SUMMARY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// The refusals since the log's last summary.
#[derive(Debug, Default)]
struct SummaryWindow {
    logged_at: Option<std::time::Instant>,
    by_reason: BTreeMap<&'static str, u64>,
}

/// A summary of refusals for the log: how many, by reason, since the previous one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalSummary {
    /// Refusals counted, by reason.
    pub by_reason: BTreeMap<&'static str, u64>,
}

impl std::fmt::Display for RefusalSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (code, count) in &self.by_reason {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{code} {count}")?;
        }
        Ok(())
    }
}

impl Rejections {
    /// Keeps the last `capacity` refusals (0 keeps none, and only counts).
    pub fn new(capacity: usize) -> Self {
        Self {
            counts: Mutex::new(BTreeMap::new()),
            recent: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity,
            summary: Mutex::new(SummaryWindow::default()),
        }
    }

    /// Counts a refusal of `code` towards the log's summary, and returns the summary when one is
    /// due: at the first refusal, then at most once per [`SUMMARY_INTERVAL`] (each refusal is
    /// logged at debug level only, so that a misbehaving client cannot flood the log).
    pub fn summarise(&self, code: &'static str, now: std::time::Instant) -> Option<RefusalSummary> {
        let mut window = self.summary.lock().unwrap_or_else(PoisonError::into_inner);
        *window.by_reason.entry(code).or_insert(0) += 1;
        let due = window
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= SUMMARY_INTERVAL);
        if !due {
            return None;
        }
        window.logged_at = Some(now);
        Some(RefusalSummary {
            by_reason: std::mem::take(&mut window.by_reason),
        })
    }

    /// Records one refusal.
    pub fn record(&self, record: RejectionRecord) {
        {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            *counts
                .entry((record.source_id.clone(), record.code))
                .or_insert(0) += 1;
        }
        if self.capacity == 0 {
            return;
        }
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() == self.capacity {
            recent.pop_front();
        }
        recent.push_back(record);
    }

    /// Every (source, reason) counter, ordered by source then reason.
    pub fn counts(&self) -> Vec<RejectionCount> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts
            .iter()
            .map(|((source_id, code), count)| RejectionCount {
                source_id: source_id.clone(),
                code,
                count: *count,
            })
            .collect()
    }

    /// The count for one (source, reason).
    pub fn count(&self, source_id: Option<&str>, code: &str) -> u64 {
        self.counts()
            .into_iter()
            .filter(|c| c.source_id.as_deref() == source_id && c.code == code)
            .map(|c| c.count)
            .sum()
    }

    /// The most recent refusals, oldest first.
    pub fn recent(&self) -> Vec<RejectionRecord> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.iter().cloned().collect()
    }
}

/// Ingestion totals since the server started.
#[derive(Debug, Default)]
pub struct IngestStats {
    requests: AtomicU64,
    accepted: AtomicU64,
    stored: AtomicU64,
    duplicates: AtomicU64,
    rejected_events: AtomicU64,
    rejected_requests: AtomicU64,
    overloaded: AtomicU64,
}

/// A reading of [`IngestStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestTotals {
    /// Tracking requests received (answered or not yet).
    pub requests: u64,
    /// Events acknowledged with 200 (stored or duplicates).
    pub accepted: u64,
    /// Events stored as new events.
    pub stored: u64,
    /// Events acknowledged as duplicates of a stored one (not routed again).
    pub duplicates: u64,
    /// Batch items refused individually (the rest of their batch went on).
    pub rejected_events: u64,
    /// Requests refused as a whole (4xx or 5xx answers; nothing of them was stored).
    pub rejected_requests: u64,
    /// Requests answered 503 because the store's queue was full.
    pub overloaded: u64,
}

impl IngestStats {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn committed(&self, stored: u64, duplicates: u64) {
        self.accepted
            .fetch_add(stored + duplicates, Ordering::Relaxed);
        self.stored.fetch_add(stored, Ordering::Relaxed);
        self.duplicates.fetch_add(duplicates, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self, events: u64) {
        self.rejected_events.fetch_add(events, Ordering::Relaxed);
    }

    pub(crate) fn rejected_request(&self) {
        self.rejected_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn overloaded(&self) {
        self.overloaded.fetch_add(1, Ordering::Relaxed);
    }

    /// The current totals.
    pub fn totals(&self) -> IngestTotals {
        IngestTotals {
            requests: self.requests.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            rejected_events: self.rejected_events.load(Ordering::Relaxed),
            rejected_requests: self.rejected_requests.load(Ordering::Relaxed),
            overloaded: self.overloaded.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_summed_up_once_a_minute() {
        let rejections = Rejections::new(0);
        let start = std::time::Instant::now();
        let first = rejections.summarise("malformed_json", start).unwrap();
        assert_eq!(first.to_string(), "malformed_json 1");
        for n in 0..5 {
            let at = start + std::time::Duration::from_secs(n);
            assert_eq!(rejections.summarise("unknown_write_key", at), None);
        }
        assert_eq!(rejections.summarise("malformed_json", start), None);
        let next = rejections
            .summarise("unknown_write_key", start + SUMMARY_INTERVAL)
            .unwrap();
        assert_eq!(next.to_string(), "malformed_json 1, unknown_write_key 6");
    }

    fn record(source: Option<&str>, code: &'static str, n: i64) -> RejectionRecord {
        RejectionRecord {
            at: n,
            source_id: source.map(str::to_owned),
            path: "/v1/batch".to_owned(),
            index: Some(0),
            code,
            message: format!("#{n}"),
        }
    }

    #[test]
    fn counts_per_source_and_reason_and_keeps_the_last_n() {
        let rejections = Rejections::new(2);
        rejections.record(record(Some("web"), "missing_identity", 1));
        rejections.record(record(Some("web"), "missing_identity", 2));
        rejections.record(record(None, "unknown_write_key", 3));
        assert_eq!(rejections.count(Some("web"), "missing_identity"), 2);
        assert_eq!(rejections.count(None, "unknown_write_key"), 1);
        assert_eq!(rejections.counts().len(), 2);
        let recent: Vec<i64> = rejections.recent().iter().map(|r| r.at).collect();
        assert_eq!(recent, [2, 3]);
    }
}
