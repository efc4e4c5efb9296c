//! The delivery overview's rollups, written by the writer thread: per (destination, minute,
//! mapping, outcome) counters, a few sample `messageId`s per counter and minute, a latency
//! histogram and the awaiting-retry gauge. A transaction aggregates them in memory ([`Rollup`])
//! and writes each distinct key once at its end, so the per-event cost is a few hash-map updates.

use std::borrow::Cow;
use std::collections::HashMap;

use junction_store::{JobState, NewEvent, OverviewQuery, OverviewTotals, UnixMillis};
use rusqlite::Connection;

use junction_store::rollup::{
    DestinationSeen, MINUTE_MS, Outcome, awaiting_retry_delta, completion_outcome, event_counts,
    latency_bin, minute_of,
};

use crate::error::Error;

/// Minutes of rollups deleted per retention pass at most, so that a first pass after a long pause
/// does not hold the writer for long.
const PRUNE_MINUTES: i64 = 6 * 60;

/// The most sample `messageId`s stored per counter and minute.
const MAX_SAMPLES: i64 = OverviewTotals::MAX_SAMPLES as i64;

#[derive(Clone, PartialEq, Eq, Hash)]
struct CountKey<'a> {
    destination: Cow<'a, str>,
    /// Empty for destination-level counters.
    subscription: Cow<'a, str>,
    minute: i64,
    outcome: Outcome,
}

#[derive(Default)]
struct Tally<'a> {
    count: i64,
    /// At most [`MAX_SAMPLES`], in the order they came.
    samples: Vec<Cow<'a, str>>,
    /// Deliveries only: the latency histogram's (bucket, count) pairs, so that latency shares
    /// the delivered counter's key instead of needing a lookup of its own.
    bins: Vec<(i64, i64)>,
}

/// A completed job as the rollup needs it.
pub(crate) struct CompletedJob {
    pub(crate) destination_id: String,
    pub(crate) subscription_id: String,
    /// When the job was stored (committed): where its ingest-to-delivery latency starts.
    pub(crate) created_at: UnixMillis,
    /// The event's `messageId`, read for failures only (their samples).
    pub(crate) message_id: Option<String>,
    /// When the outcome happened: the attempt's end, or the completion's time.
    pub(crate) at: UnixMillis,
    /// The state entered.
    pub(crate) state: JobState,
    /// Whether the job was awaiting retry before (its queue entry had a completion already).
    pub(crate) was_retrying: bool,
}

/// Distinct counters a transaction looks up by scanning before it builds a hash index. A
/// transaction usually touches a handful (events of one minute, a few mappings): comparing two
/// integers per entry then is several times cheaper than hashing two strings per count.
const SCAN_KEYS: usize = 16;

/// One transaction's rollup changes, aggregated in memory and written by [`Rollup::flush`].
#[derive(Default)]
pub(crate) struct Rollup<'a> {
    /// Every counter touched, in first-use order.
    counts: Vec<(CountKey<'a>, Tally<'a>)>,
    /// Positions in `counts`, built once there are more than [`SCAN_KEYS`].
    index: HashMap<CountKey<'a>, usize>,
    gauges: HashMap<(Cow<'a, str>, Cow<'a, str>), i64>,
    /// Reused per event, so that counting an event allocates nothing.
    seen: Vec<DestinationSeen<'a>>,
}

impl<'a> Rollup<'a> {
    fn count(
        &mut self,
        destination: Cow<'a, str>,
        subscription: Cow<'a, str>,
        minute: i64,
        outcome: Outcome,
        sample: Option<Cow<'a, str>>,
    ) {
        let key = CountKey {
            destination,
            subscription,
            minute,
            outcome,
        };
        let tally = self.tally(key);
        tally.count += 1;
        if let Some(sample) = sample
            && tally.samples.len() < OverviewTotals::MAX_SAMPLES
        {
            tally.samples.push(sample);
        }
    }

    /// The tally of `key`, created empty on first use.
    fn tally(&mut self, key: CountKey<'a>) -> &mut Tally<'a> {
        let found = if self.counts.len() <= SCAN_KEYS {
            // Integers first: the strings are compared only for the likely match.
            self.counts.iter().position(|(k, _)| {
                k.minute == key.minute
                    && k.outcome == key.outcome
                    && k.subscription == key.subscription
                    && k.destination == key.destination
            })
        } else {
            self.index.get(&key).copied()
        };
        let at = match found {
            Some(at) => at,
            None => {
                let at = self.counts.len();
                if at == SCAN_KEYS {
                    // From now on, hash: index every counter so far.
                    self.index = (self.counts.iter().enumerate())
                        .map(|(at, (key, _))| (key.clone(), at))
                        .collect();
                }
                if at >= SCAN_KEYS {
                    self.index.insert(key.clone(), at);
                }
                self.counts.push((key, Tally::default()));
                at
            }
        };
        &mut self.counts[at].1
    }

    /// Counts a stored event's routing outcomes at its `received_at` minute.
    pub(crate) fn add_event(&mut self, event: &'a NewEvent) {
        let minute = minute_of(event.received_at);
        let message_id = event.message_id.as_str();
        let mut seen = std::mem::take(&mut self.seen);
        event_counts(event, &mut seen, |counted| {
            self.count(
                Cow::Borrowed(counted.destination),
                Cow::Borrowed(counted.subscription),
                minute,
                counted.outcome,
                counted.sampled.then_some(Cow::Borrowed(message_id)),
            );
        });
        self.seen = seen;
    }

    /// Counts a job's completion at its minute, its latency when delivered, and the change of the
    /// awaiting-retry gauge.
    pub(crate) fn add_completion(&mut self, job: CompletedJob) {
        let outcome = completion_outcome(job.state);
        let delta = awaiting_retry_delta(job.state, job.was_retrying);
        if delta != 0 {
            let key = (
                Cow::Owned(job.destination_id.clone()),
                Cow::Owned(job.subscription_id.clone()),
            );
            *self.gauges.entry(key).or_default() += delta;
        }
        let tally = self.tally(CountKey {
            destination: Cow::Owned(job.destination_id),
            subscription: Cow::Owned(job.subscription_id),
            minute: minute_of(job.at),
            outcome,
        });
        tally.count += 1;
        if outcome == Outcome::Delivered {
            let bin = latency_bin(job.at - job.created_at);
            match tally.bins.iter_mut().find(|(b, _)| *b == bin) {
                Some((_, n)) => *n += 1,
                None => tally.bins.push((bin, 1)),
            }
        }
        if let Some(message_id) = job.message_id
            && tally.samples.len() < OverviewTotals::MAX_SAMPLES
        {
            tally.samples.push(Cow::Owned(message_id));
        }
    }

    /// Writes every aggregated change: one upsert per distinct key, and the samples that still fit
    /// under [`MAX_SAMPLES`] per counter and minute (the upsert returns the new total, so the
    /// room left is known without another read).
    pub(crate) fn flush(self, conn: &Connection) -> Result<(), Error> {
        if !self.counts.is_empty() {
            let mut upsert = conn.prepare_cached(
                "INSERT INTO overview_counts (destination_id, minute, subscription_id, outcome, n)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (destination_id, minute, subscription_id, outcome)
                 DO UPDATE SET n = n + excluded.n
                 RETURNING n",
            )?;
            let mut sample = conn.prepare_cached(
                "INSERT OR IGNORE INTO overview_samples
                     (destination_id, subscription_id, outcome, minute, message_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (key, tally) in &self.counts {
                let outcome = key.outcome.name();
                let total: i64 = upsert.query_row(
                    (
                        &key.destination,
                        key.minute,
                        &key.subscription,
                        &outcome,
                        tally.count,
                    ),
                    |row| row.get(0),
                )?;
                let before = total - tally.count;
                let room = usize::try_from(MAX_SAMPLES - before).unwrap_or(0);
                for message_id in tally.samples.iter().take(room) {
                    sample.execute((
                        &key.destination,
                        &key.subscription,
                        &outcome,
                        key.minute,
                        message_id,
                    ))?;
                }
            }
        }
        let delivered = self
            .counts
            .iter()
            .filter(|(_, tally)| !tally.bins.is_empty());
        let mut latency = None;
        for (key, tally) in delivered {
            let upsert = match &mut latency {
                Some(upsert) => upsert,
                None => latency.insert(conn.prepare_cached(
                    "INSERT INTO overview_latency (destination_id, minute, subscription_id, bin, n)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (destination_id, minute, subscription_id, bin)
                     DO UPDATE SET n = n + excluded.n",
                )?),
            };
            for (bin, n) in &tally.bins {
                upsert.execute((&key.destination, key.minute, &key.subscription, bin, n))?;
            }
        }
        if !self.gauges.is_empty() {
            let mut upsert = conn.prepare_cached(
                "INSERT INTO overview_gauges (destination_id, subscription_id, awaiting_retry)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (destination_id, subscription_id)
                 DO UPDATE SET awaiting_retry = awaiting_retry + excluded.awaiting_retry",
            )?;
            for ((destination, subscription), delta) in self.gauges {
                if delta != 0 {
                    upsert.execute((&destination, &subscription, delta))?;
                }
            }
        }
        Ok(())
    }
}

/// Retention of the rollups: removes rows older than the longest window an overview may ask for
/// (plus the minute a window's start is rounded down to), at most [`PRUNE_MINUTES`] of them per
/// call. Each table's oldest minute is one probe of its `minute` index.
pub(crate) fn prune(conn: &Connection, now: UnixMillis) -> Result<(), Error> {
    let cutoff = minute_of(now) - OverviewQuery::MAX_WINDOW_MS / MINUTE_MS - 1;
    for table in ["overview_counts", "overview_latency", "overview_samples"] {
        let oldest: Option<i64> = conn
            .prepare_cached(&format!("SELECT min(minute) FROM {table}"))?
            .query_row([], |row| row.get(0))?;
        let Some(oldest) = oldest.filter(|oldest| *oldest < cutoff) else {
            continue;
        };
        let upto = cutoff.min(oldest.saturating_add(PRUNE_MINUTES));
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE minute < ?1"))?
            .execute([upto])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_counters_switch_to_an_index_and_keep_counting() {
        let mut rollup = Rollup::default();
        let names: Vec<String> = (0..40).map(|n| format!("m-{n}")).collect();
        for _ in 0..3 {
            for (minute, name) in names.iter().enumerate() {
                let minute = i64::try_from(minute % 3).unwrap();
                rollup.count(
                    Cow::Borrowed("d"),
                    Cow::Borrowed(name),
                    minute,
                    Outcome::Job,
                    None,
                );
            }
        }
        assert_eq!(rollup.counts.len(), 40);
        assert!(rollup.counts.iter().all(|(_, tally)| tally.count == 3));
        assert_eq!(rollup.index.len(), 40);
    }
}
