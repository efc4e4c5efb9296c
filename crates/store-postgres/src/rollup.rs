//! The delivery overview's per-minute rollups (counters, sample `messageId`s, latency histograms,
//! awaiting-retry gauges), written in the transactions that store events and completions, and the
//! overview query that sums a window's minutes. The same model as the embedded engine's: see
//! `junction-store-sqlite`'s `rollup` module for the reasoning; only the SQL differs.
//!
//! Upserts run in key order, so that two nodes' transactions touching the same rollup rows take
//! their row locks in the same order and cannot deadlock.

use std::collections::BTreeMap;

use junction_store::{JobState, NewEvent, Overview, OverviewQuery, OverviewTotals, UnixMillis};
use sqlx::{PgConnection, PgPool, Row};

use junction_store::rollup::{
    MINUTE_MS, Outcome, OverviewBuilder, awaiting_retry_delta, completion_outcome, event_counts,
    latency_bin, minute_of,
};

use crate::error::Error;

/// The most minutes of one rollup table a prune pass removes (bounded transactions).
const PRUNE_MINUTES: i64 = 6 * 60;
/// (destination, minute, mapping or "" for destination-level, outcome).
type CountKey = (String, i64, String, Outcome);

#[derive(Default)]
struct Tally {
    count: i64,
    samples: Vec<String>,
    bins: BTreeMap<i64, i64>,
}

/// A completed job as the rollup needs it.
pub(crate) struct CompletedJob {
    pub(crate) destination_id: String,
    pub(crate) subscription_id: String,
    pub(crate) created_at: UnixMillis,
    /// The event's `messageId`, for failed jobs' samples.
    pub(crate) message_id: Option<String>,
    /// When the attempt ended (or the completion, without one).
    pub(crate) at: UnixMillis,
    pub(crate) state: JobState,
    /// Whether it had a completion before (it counted in the awaiting-retry gauge).
    pub(crate) was_retrying: bool,
}

/// The rollup changes of one transaction, aggregated and written once per key.
#[derive(Default)]
pub(crate) struct Rollup {
    counts: BTreeMap<CountKey, Tally>,
    gauges: BTreeMap<(String, String), i64>,
}

impl Rollup {
    fn count(&mut self, key: CountKey, sample: Option<&str>) {
        let tally = self.counts.entry(key).or_default();
        tally.count += 1;
        if let Some(sample) = sample
            && tally.samples.len() < OverviewTotals::MAX_SAMPLES
        {
            tally.samples.push(sample.to_owned());
        }
    }

    /// Counts a stored event's outcomes (see [`OverviewCounts`] for what each means).
    ///
    /// [`OverviewCounts`]: junction_store::OverviewCounts
    pub(crate) fn add_event(&mut self, event: &NewEvent) {
        let minute = minute_of(event.received_at);
        let message_id = event.message_id.as_str();
        let mut seen = Vec::new();
        event_counts(event, &mut seen, |counted| {
            self.count(
                (
                    counted.destination.to_owned(),
                    minute,
                    counted.subscription.to_owned(),
                    counted.outcome,
                ),
                counted.sampled.then_some(message_id),
            );
        });
    }

    /// Counts a completion: delivered (with its latency), retried or failed, and moves the
    /// awaiting-retry gauge.
    pub(crate) fn add_completion(&mut self, job: CompletedJob) {
        let outcome = completion_outcome(job.state);
        let delta = awaiting_retry_delta(job.state, job.was_retrying);
        if delta != 0 {
            *self
                .gauges
                .entry((job.destination_id.clone(), job.subscription_id.clone()))
                .or_default() += delta;
        }
        let tally = self
            .counts
            .entry((
                job.destination_id,
                minute_of(job.at),
                job.subscription_id,
                outcome,
            ))
            .or_default();
        tally.count += 1;
        if outcome == Outcome::Delivered {
            *tally
                .bins
                .entry(latency_bin(job.at - job.created_at))
                .or_default() += 1;
        }
        if let Some(message_id) = job.message_id
            && tally.samples.len() < OverviewTotals::MAX_SAMPLES
        {
            tally.samples.push(message_id);
        }
    }

    /// Writes the aggregated changes in the current transaction.
    pub(crate) async fn flush(self, conn: &mut PgConnection, shard: i16) -> Result<(), Error> {
        let max_samples = i64::try_from(OverviewTotals::MAX_SAMPLES).unwrap_or(i64::MAX);
        for ((destination, minute, subscription, outcome), tally) in &self.counts {
            let outcome = outcome.name();
            let total: i64 = sqlx::query_scalar(
                "INSERT INTO overview_counts
                     (destination_id, minute, subscription_id, outcome, n, shard)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (destination_id, minute, subscription_id, outcome, shard)
                 DO UPDATE SET n = overview_counts.n + excluded.n
                 RETURNING n",
            )
            .bind(destination)
            .bind(minute)
            .bind(subscription)
            .bind(&outcome)
            .bind(tally.count)
            .bind(shard)
            .fetch_one(&mut *conn)
            .await?;
            // Only while the minute's shard has fewer than the most samples kept (so at most
            // that many per shard are stored; readers take the newest).
            let room = usize::try_from(max_samples - (total - tally.count)).unwrap_or(0);
            let samples: Vec<&String> = tally.samples.iter().take(room).collect();
            if !samples.is_empty() {
                sqlx::query(
                    "INSERT INTO overview_samples
                         (destination_id, subscription_id, outcome, minute, message_id)
                     SELECT $1, $2, $3, $4, unnest($5::text[])
                     ON CONFLICT DO NOTHING",
                )
                .bind(destination)
                .bind(subscription)
                .bind(&outcome)
                .bind(minute)
                .bind(samples)
                .execute(&mut *conn)
                .await?;
            }
            for (bin, n) in &tally.bins {
                sqlx::query(
                    "INSERT INTO overview_latency
                         (destination_id, minute, subscription_id, bin, n, shard)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (destination_id, minute, subscription_id, bin, shard)
                     DO UPDATE SET n = overview_latency.n + excluded.n",
                )
                .bind(destination)
                .bind(minute)
                .bind(subscription)
                .bind(bin)
                .bind(n)
                .bind(shard)
                .execute(&mut *conn)
                .await?;
            }
        }
        for ((destination, subscription), delta) in &self.gauges {
            if *delta == 0 {
                continue;
            }
            sqlx::query(
                "INSERT INTO overview_gauges (destination_id, subscription_id, awaiting_retry, shard)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (destination_id, subscription_id, shard)
                 DO UPDATE SET awaiting_retry = overview_gauges.awaiting_retry
                                                + excluded.awaiting_retry",
            )
            .bind(destination)
            .bind(subscription)
            .bind(delta)
            .bind(shard)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Removes a bounded slice of rollup minutes older than the longest overview window.
pub(crate) async fn prune(conn: &mut PgConnection, now: UnixMillis) -> Result<(), Error> {
    let cutoff = minute_of(now) - OverviewQuery::MAX_WINDOW_MS / MINUTE_MS - 1;
    for table in ["overview_counts", "overview_latency", "overview_samples"] {
        let oldest: Option<i64> = sqlx::query_scalar(&format!("SELECT min(minute) FROM {table}"))
            .fetch_one(&mut *conn)
            .await?;
        let Some(oldest) = oldest.filter(|oldest| *oldest < cutoff) else {
            continue;
        };
        let upto = cutoff.min(oldest.saturating_add(PRUNE_MINUTES));
        sqlx::query(&format!("DELETE FROM {table} WHERE minute < $1"))
            .bind(upto)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The newest samples of one counter over a window: (minute, `messageId`).
async fn samples(
    conn: &mut PgConnection,
    destination: &str,
    subscription: &str,
    outcome: Outcome,
    (from_minute, until_minute): (i64, i64),
) -> Result<Vec<(i64, String)>, Error> {
    let rows = sqlx::query(
        "SELECT minute, message_id FROM overview_samples
         WHERE destination_id = $1 AND subscription_id = $2 AND outcome = $3
           AND minute >= $4 AND minute < $5
         ORDER BY minute DESC, message_id DESC
         LIMIT $6",
    )
    .bind(destination)
    .bind(subscription)
    .bind(outcome.name())
    .bind(from_minute)
    .bind(until_minute)
    .bind(i64::try_from(OverviewTotals::MAX_SAMPLES).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// The delivery overview: sums the window's rollup minutes into the destination's and each
/// mapping's totals and the series, in one read-only snapshot.
pub(crate) async fn overview(pool: &PgPool, query: &OverviewQuery) -> Result<Overview, Error> {
    let mut overview = OverviewBuilder::new(query)?;
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let destination = query.destination_id.as_str();
    let (from_minute, until_minute) = overview.minutes();
    let scope = overview.scope().map(str::to_owned);

    // `$4` NULL: every mapping; otherwise only the scoped mapping's rows.
    let rows = sqlx::query(
        "SELECT minute, subscription_id, outcome, n FROM overview_counts
         WHERE destination_id = $1 AND minute >= $2 AND minute < $3
           AND ($4::text IS NULL OR subscription_id = $4)",
    )
    .bind(destination)
    .bind(from_minute)
    .bind(until_minute)
    .bind(&scope)
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let outcome =
            Outcome::parse(row.try_get(2)?).map_err(|err| Error::Corrupt(err.to_string()))?;
        let n = u64::try_from(row.try_get::<i64, _>(3)?).unwrap_or(0);
        overview.add_count(row.try_get(0)?, row.try_get(1)?, outcome, n);
    }

    let rows = sqlx::query(
        "SELECT minute, subscription_id, bin, n FROM overview_latency
         WHERE destination_id = $1 AND minute >= $2 AND minute < $3
           AND ($4::text IS NULL OR subscription_id = $4)",
    )
    .bind(destination)
    .bind(from_minute)
    .bind(until_minute)
    .bind(&scope)
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let n = u64::try_from(row.try_get::<i64, _>(3)?).unwrap_or(0);
        overview.add_latency(row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, n);
    }

    let rows = sqlx::query(
        "SELECT subscription_id, sum(awaiting_retry)::bigint FROM overview_gauges
         WHERE destination_id = $1 GROUP BY subscription_id",
    )
    .bind(destination)
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        // A gauge is never negative; clamp rather than fail on a drifted one.
        let value = u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0);
        overview.add_gauge(row.try_get(0)?, value);
    }

    for wanted in overview.samples_wanted() {
        let found = samples(
            &mut tx,
            destination,
            &wanted.subscription,
            wanted.outcome,
            (from_minute, until_minute),
        )
        .await?;
        overview.add_samples(&wanted, found);
    }
    tx.commit().await?;
    Ok(overview.finish())
}

/// How many rows per key the counters and rollups are spread over (see migration 6).
const SHARDS: i16 = 8;

/// The shard a transaction adds its counters and rollups to: one at random, so that concurrent
/// transactions (of this node and of others) rarely wait on each other's row locks.
pub(crate) fn shard() -> i16 {
    fastrand::i16(0..SHARDS)
}
