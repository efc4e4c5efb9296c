//! Reads: a small pool of read-only connections used from tokio's blocking threads (never the
//! writer's connection), and the queries themselves, each in one read transaction so that an event
//! and its jobs come from the same snapshot.

use std::sync::{Arc, Mutex, PoisonError};

use junction_store::{
    ConfigDocument, ConfigVersion, Counts, DeadJob, DeadLetterFilter, EventId, EventRecord,
    JobRecord, LaneBacklog, LaneDue, Overview, OverviewQuery, OverviewTotals, StoreError,
    UnixMillis,
};
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::Semaphore;

use crate::error::Error;
use crate::model::{
    ATTEMPT_COLUMNS, DEAD_LETTER_COLUMNS, DISCARD_COLUMNS, JOB_COLUMNS, TRANSITION_COLUMNS,
    attempt_from_row, dead_job_from_row, dedupe_key, discard_from_row, job_from_row,
    transition_from_row,
};
use crate::recent::RecentKeys;
use junction_store::rollup::{Outcome, OverviewBuilder};

/// The read-only connections, the permits that bound how many reads run at once, and the recent
/// message keys that lookups by message id consult besides the index file.
pub(crate) struct Readers {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    recent: Arc<RecentKeys>,
}

impl Readers {
    /// A pool of the given open read-only connections (at least one).
    pub(crate) fn new(connections: Vec<Connection>, recent: Arc<RecentKeys>) -> Readers {
        let permits = Arc::new(Semaphore::new(connections.len()));
        Readers {
            idle: Mutex::new(connections),
            permits,
            recent,
        }
    }

    /// The recent message keys.
    pub(crate) fn recent(&self) -> &Arc<RecentKeys> {
        &self.recent
    }

    /// Runs `query` on an idle connection on a blocking thread, waiting (asynchronously) for one
    /// to be free.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let readers = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = readers
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            // A permit guarantees an idle connection, unless a query panicked with one.
            let Some(mut conn) = idle else {
                return Err(Error::Store(StoreError::Backend(
                    "no idle read connection: a query panicked".into(),
                )));
            };
            let result = query(&mut conn);
            readers
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            result
        });
        match task.await {
            Ok(result) => result.map_err(StoreError::from),
            Err(join) => Err(StoreError::Backend(Box::new(join))),
        }
    }
}

/// Every event stored under (source, messageId), oldest first, with everything about each.
/// `recent` are the ids under its key not yet in the index file, read before the transaction
/// starts: a key leaves memory only once the index holds it, so the snapshot taken afterwards
/// has it if memory no longer did.
pub(crate) fn events_by_message_id(
    conn: &mut Connection,
    source_id: &str,
    message_id: &str,
    recent: Vec<i64>,
) -> Result<Vec<EventRecord>, Error> {
    let tx = conn.transaction()?;
    let mut ids: Vec<i64> = {
        // The key is a hash: the event row's strings decide.
        let mut stmt = tx.prepare_cached(
            "SELECT events.id
             FROM keys.message_keys JOIN events ON events.id = keys.message_keys.event_id
             WHERE keys.message_keys.dedupe_key = ?1
               AND events.source_id = ?2 AND events.message_id = ?3
             ORDER BY events.id",
        )?;
        let rows = stmt.query_map(
            (dedupe_key(source_id, message_id), source_id, message_id),
            |row| row.get(0),
        )?;
        rows.collect::<Result<_, _>>()?
    };
    // Recent ids are not in the index file: check their rows' strings (the key is a hash).
    for id in recent {
        let same: bool = tx
            .prepare_cached(
                "SELECT 1 FROM events WHERE id = ?1 AND source_id = ?2 AND message_id = ?3",
            )?
            .exists((id, source_id, message_id))?;
        if same {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(record) = event_record(&tx, EventId(id))? {
            records.push(record);
        }
    }
    Ok(records)
}

/// One event by id, with everything about it.
pub(crate) fn event(conn: &mut Connection, id: EventId) -> Result<Option<EventRecord>, Error> {
    let tx = conn.transaction()?;
    event_record(&tx, id)
}

fn event_record(conn: &Connection, id: EventId) -> Result<Option<EventRecord>, Error> {
    let event = conn
        .prepare_cached(
            "SELECT source_id, message_id, received_at, payload FROM events WHERE id = ?1",
        )?
        .query_row([id.0], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?;
    let Some((source_id, message_id, received_at, payload)) = event else {
        return Ok(None);
    };

    let duplicates = {
        let mut stmt = conn.prepare_cached(
            "SELECT received_at FROM event_duplicates WHERE event_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id.0], |row| row.get(0))?;
        rows.collect::<Result<Vec<UnixMillis>, _>>()?
    };

    let mut jobs = Vec::new();
    {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE event_id = ?1 ORDER BY id");
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([id.0])?;
        while let Some(row) = rows.next()? {
            jobs.push(job_from_row(row, 0)?);
        }
    }
    let mut job_records = Vec::with_capacity(jobs.len());
    let sql =
        format!("SELECT {TRANSITION_COLUMNS} FROM job_transitions WHERE job_id = ?1 ORDER BY seq");
    let mut transitions_stmt = conn.prepare_cached(&sql)?;
    let sql =
        format!("SELECT {ATTEMPT_COLUMNS} FROM job_attempts WHERE job_id = ?1 ORDER BY attempt");
    let mut attempts_stmt = conn.prepare_cached(&sql)?;
    for job in jobs {
        let mut transitions = Vec::new();
        let mut rows = transitions_stmt.query([job.id.0])?;
        while let Some(row) = rows.next()? {
            transitions.push(transition_from_row(row)?);
        }
        let mut attempts = Vec::new();
        let mut rows = attempts_stmt.query([job.id.0])?;
        while let Some(row) = rows.next()? {
            attempts.push(attempt_from_row(row)?);
        }
        job_records.push(JobRecord {
            job,
            transitions,
            attempts,
        });
    }

    let mut discards = Vec::new();
    {
        let sql = format!("SELECT {DISCARD_COLUMNS} FROM discards WHERE event_id = ?1 ORDER BY id");
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([id.0])?;
        while let Some(row) = rows.next()? {
            discards.push(discard_from_row(row)?);
        }
    }

    Ok(Some(EventRecord {
        id,
        source_id,
        message_id,
        received_at,
        payload,
        duplicates,
        jobs: job_records,
        discards,
    }))
}

/// The running totals.
pub(crate) fn counts(conn: &mut Connection) -> Result<Counts, Error> {
    let totals: [i64; 4] = conn
        .prepare_cached("SELECT events, duplicates, jobs, discards FROM counters WHERE id = 1")?
        .query_row([], |row| {
            Ok([row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?])
        })?;
    let [events, duplicates, jobs, discards] = totals.map(|total| u64::try_from(total).ok());
    match (events, duplicates, jobs, discards) {
        (Some(events), Some(duplicates), Some(jobs), Some(discards)) => Ok(Counts {
            events,
            duplicates,
            jobs,
            discards,
        }),
        _ => Err(Error::Corrupt(format!("negative counters: {totals:?}"))),
    }
}

/// Every lane with queued jobs and its earliest `next_at`: a loose index scan over
/// `job_queue_lane` (one probe per lane, not one row per job).
pub(crate) fn lanes(conn: &mut Connection) -> Result<Vec<LaneDue>, Error> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE lane (endpoint) AS (
             SELECT min(endpoint) FROM job_queue
             UNION ALL
             SELECT (SELECT min(endpoint) FROM job_queue WHERE endpoint > lane.endpoint)
             FROM lane WHERE lane.endpoint IS NOT NULL
         )
         SELECT endpoint,
                (SELECT min(next_at) FROM job_queue WHERE job_queue.endpoint = lane.endpoint)
         FROM lane WHERE endpoint IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(LaneDue {
            endpoint: row.get(0)?,
            next_at: row.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every lane's count of queued jobs: one pass over `job_queue_lane` (the index covers it).
pub(crate) fn lane_backlogs(conn: &mut Connection) -> Result<Vec<LaneBacklog>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT endpoint, count(*) FROM job_queue GROUP BY endpoint ORDER BY endpoint",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(LaneBacklog {
            endpoint: row.get(0)?,
            queued: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The dead-letter jobs `filter` selects, by job id.
pub(crate) fn dead_letter(
    conn: &mut Connection,
    filter: &DeadLetterFilter,
) -> Result<Vec<DeadJob>, Error> {
    use rusqlite::types::Value;
    let mut conditions = vec!["1 = 1".to_owned()];
    let mut params: Vec<Value> = Vec::new();
    let mut bind = |condition: &str, value: Value, params: &mut Vec<Value>| {
        params.push(value);
        conditions.push(condition.replace('?', &format!("?{}", params.len())));
    };
    if let Some(destination) = &filter.destination_id {
        bind(
            "dead_letter.destination_id = ?",
            Value::Text(destination.clone()),
            &mut params,
        );
    }
    if let Some(subscription) = &filter.subscription_id {
        bind(
            "dead_letter.subscription_id = ?",
            Value::Text(subscription.clone()),
            &mut params,
        );
    }
    if let Some(state) = filter.state {
        bind(
            "dead_letter.state = ?",
            Value::Text(state.as_str().to_owned()),
            &mut params,
        );
    }
    if let Some(class) = &filter.error_class {
        bind(
            "dead_letter.error_class = ?",
            Value::Text(class.clone()),
            &mut params,
        );
    }
    if let Some(since) = filter.since {
        bind("dead_letter.at >= ?", Value::Integer(since), &mut params);
    }
    if let Some(until) = filter.until {
        bind("dead_letter.at < ?", Value::Integer(until), &mut params);
    }
    if let Some(after) = filter.after {
        bind(
            "dead_letter.job_id > ?",
            Value::Integer(after.0),
            &mut params,
        );
    }
    if !filter.include_replayed {
        conditions.push("dead_letter.replayed_by IS NULL".to_owned());
    }
    if !filter.job_ids.is_empty() {
        let list = filter
            .job_ids
            .iter()
            .map(|id| id.0.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        conditions.push(format!("dead_letter.job_id IN ({list})"));
    }
    params.push(Value::Integer(
        i64::try_from(filter.limit).unwrap_or(i64::MAX),
    ));
    let sql = format!(
        "SELECT {DEAD_LETTER_COLUMNS}, {JOB_COLUMNS}
         FROM dead_letter JOIN jobs ON jobs.id = dead_letter.job_id
         WHERE {}
         ORDER BY dead_letter.job_id
         LIMIT ?{}",
        conditions.join(" AND "),
        params.len()
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut jobs = Vec::new();
    while let Some(row) = rows.next()? {
        jobs.push(dead_job_from_row(row)?);
    }
    Ok(jobs)
}

/// The versions of the configuration kept, oldest first.
pub(crate) fn config_versions(conn: &mut Connection) -> Result<Vec<ConfigVersion>, Error> {
    let mut statement =
        conn.prepare_cached("SELECT version FROM config_versions ORDER BY version")?;
    let versions = statement
        .query_map([], |row| row.get::<_, i64>(0).map(ConfigVersion))?
        .collect::<Result<_, _>>()?;
    Ok(versions)
}

/// The newest configuration document.
pub(crate) fn load_config(conn: &mut Connection) -> Result<Option<ConfigDocument>, Error> {
    let row = conn
        .prepare_cached(
            "SELECT version, saved_at, document FROM config_versions
             ORDER BY version DESC LIMIT 1",
        )?
        .query_row([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get(1)?, row.get::<_, String>(2)?))
        })
        .optional()?;
    let Some((version, saved_at, text)) = row else {
        return Ok(None);
    };
    let document = serde_json::from_str(&text)
        .map_err(|err| Error::Corrupt(format!("config version {version}: {err}")))?;
    Ok(Some(ConfigDocument {
        version: ConfigVersion(version),
        saved_at,
        document,
    }))
}

/// The delivery overview: sums the window's rollup minutes (never its events) into the
/// destination's and each mapping's totals and the series, reads the newest samples of each
/// counter with a backwards index range, and the awaiting-retry gauges. One read transaction.
pub(crate) fn overview(conn: &mut Connection, query: &OverviewQuery) -> Result<Overview, Error> {
    let mut overview = OverviewBuilder::new(query)?;
    let tx = conn.transaction()?;
    let destination = query.destination_id.as_str();
    let (from_minute, until_minute) = overview.minutes();
    // `subscription_id = ''` holds destination-level counters; a scoped query reads only its
    // mapping's rows.
    let scope_filter = if overview.scope().is_some() {
        " AND subscription_id = ?4"
    } else {
        ""
    };
    let mut params: Vec<rusqlite::types::Value> = vec![
        rusqlite::types::Value::Text(destination.to_owned()),
        rusqlite::types::Value::Integer(from_minute),
        rusqlite::types::Value::Integer(until_minute),
    ];
    if let Some(scope) = overview.scope() {
        params.push(rusqlite::types::Value::Text(scope.to_owned()));
    }
    {
        let sql = format!(
            "SELECT minute, subscription_id, outcome, n FROM overview_counts
             WHERE destination_id = ?1 AND minute >= ?2 AND minute < ?3{scope_filter}"
        );
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(&params))?;
        while let Some(row) = rows.next()? {
            let subscription = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
            let outcome = Outcome::parse(row.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?)
                .map_err(|err| Error::Corrupt(err.to_string()))?;
            let n = u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0);
            overview.add_count(row.get(0)?, subscription, outcome, n);
        }
    }
    {
        let sql = format!(
            "SELECT minute, subscription_id, bin, n FROM overview_latency
             WHERE destination_id = ?1 AND minute >= ?2 AND minute < ?3{scope_filter}"
        );
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(&params))?;
        while let Some(row) = rows.next()? {
            let subscription = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
            let n = u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0);
            overview.add_latency(row.get(0)?, subscription, row.get(2)?, n);
        }
    }
    {
        let mut stmt = tx.prepare_cached(
            "SELECT subscription_id, awaiting_retry FROM overview_gauges WHERE destination_id = ?1",
        )?;
        let mut rows = stmt.query([destination])?;
        while let Some(row) = rows.next()? {
            let subscription = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            // A gauge is never negative; clamp rather than fail on a drifted one.
            let value = u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
            overview.add_gauge(subscription, value);
        }
    }
    for wanted in overview.samples_wanted() {
        let found = samples(
            &tx,
            destination,
            &wanted.subscription,
            wanted.outcome,
            (from_minute, until_minute),
        )?;
        overview.add_samples(&wanted, found);
    }
    tx.finish()?;
    Ok(overview.finish())
}

/// The newest samples of one counter in the window, with their minutes: a backwards range read
/// of the samples' primary key that stops after [`OverviewTotals::MAX_SAMPLES`].
fn samples(
    conn: &Connection,
    destination: &str,
    subscription: &str,
    outcome: Outcome,
    (from_minute, until_minute): (i64, i64),
) -> Result<Vec<(i64, String)>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT minute, message_id FROM overview_samples
         WHERE destination_id = ?1 AND subscription_id = ?2 AND outcome = ?3
           AND minute >= ?4 AND minute < ?5
         ORDER BY minute DESC, message_id DESC
         LIMIT ?6",
    )?;
    let limit = i64::try_from(OverviewTotals::MAX_SAMPLES).unwrap_or(i64::MAX);
    let rows = stmt.query_map(
        (
            destination,
            subscription,
            outcome.name(),
            from_minute,
            until_minute,
            limit,
        ),
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
