//! Reads, and the delivery writes (claims, releases, completions, replays, retention). These run
//! on the pool directly, each in its own short transaction: unlike commits they gain nothing from
//! grouping, and several nodes must be able to run them side by side.

use junction_store::{
    AttemptRecord, ConfigDocument, ConfigVersion, Counts, DeadJob, DeadLetterFilter, DiscardRecord,
    DueJob, EventId, EventRecord, Job, JobId, JobRecord, JobState, JobTransition, JobUrl,
    LaneBacklog, LaneDue, NewReplay, PruneOutcome, ReleasedJob, StoreError, UnixMillis,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};

use crate::cursor::{Cursors, Plan, Position};
use crate::error::Error;
use crate::generations;
use crate::rollup;
use crate::writer::insert_job;
use crate::{JOBS_CHANNEL, now_ms};

const JOB_COLUMNS: &str = "jobs.id, jobs.event_id, jobs.destination_id, jobs.subscription_id, \
     jobs.endpoint, jobs.method, jobs.url, jobs.headers, jobs.body, jobs.created_at, \
     jobs.replay_of";

fn decode_headers(text: &str) -> Result<Vec<(String, String)>, Error> {
    serde_json::from_str(text).map_err(|err| Error::Corrupt(format!("headers: {err}")))
}

fn decode_u32(value: i64, what: &str) -> Result<u32, Error> {
    u32::try_from(value).map_err(|_| Error::Corrupt(format!("{what} out of range: {value}")))
}

fn decode_status(value: Option<i32>) -> Result<Option<u16>, Error> {
    value
        .map(|v| {
            u16::try_from(v).map_err(|_| Error::Corrupt(format!("HTTP status out of range: {v}")))
        })
        .transpose()
}

fn decode_state(name: &str) -> Result<JobState, Error> {
    name.parse()
        .map_err(|err| Error::Corrupt(format!("job state: {err}")))
}

/// Decodes [`JOB_COLUMNS`] starting at column `at`.
fn job_from_row(row: &PgRow, at: usize) -> Result<Job, Error> {
    let headers: String = row.try_get(at + 7)?;
    Ok(Job {
        id: JobId(row.try_get(at)?),
        event_id: EventId(row.try_get(at + 1)?),
        destination_id: row.try_get(at + 2)?,
        subscription_id: row.try_get(at + 3)?,
        endpoint: row.try_get(at + 4)?,
        method: row.try_get(at + 5)?,
        url: JobUrl::from_stored(row.try_get(at + 6)?),
        headers: decode_headers(&headers)?,
        body: row.try_get(at + 8)?,
        created_at: row.try_get(at + 9)?,
        replay_of: row.try_get::<Option<i64>, _>(at + 10)?.map(JobId),
    })
}

pub(crate) async fn events_by_message_id(
    pool: &PgPool,
    source_id: &str,
    message_id: &str,
) -> Result<Vec<EventRecord>, Error> {
    // One snapshot for the whole answer.
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM events WHERE source_id = $1 AND message_id = $2 ORDER BY id",
    )
    .bind(source_id)
    .bind(message_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(record) = event_record(&mut tx, EventId(id)).await? {
            records.push(record);
        }
    }
    tx.commit().await?;
    Ok(records)
}

pub(crate) async fn event(pool: &PgPool, id: EventId) -> Result<Option<EventRecord>, Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let record = event_record(&mut tx, id).await?;
    tx.commit().await?;
    Ok(record)
}

async fn event_record(conn: &mut PgConnection, id: EventId) -> Result<Option<EventRecord>, Error> {
    let Some(row) =
        sqlx::query("SELECT source_id, message_id, received_at, payload FROM events WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?
    else {
        return Ok(None);
    };
    let duplicates: Vec<i64> = sqlx::query_scalar(
        "SELECT received_at FROM event_duplicates WHERE event_id = $1 ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    let job_rows = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE event_id = $1 ORDER BY id"
    ))
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    let transition_rows = sqlx::query(
        "SELECT t.job_id, t.seq, t.state, t.at, t.next_at, t.attempt, t.detail
         FROM job_transitions t JOIN jobs ON jobs.id = t.job_id
         WHERE jobs.event_id = $1 AND t.event_id = $1 ORDER BY t.job_id, t.seq",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    let attempt_rows = sqlx::query(
        "SELECT a.job_id, a.attempt, a.started_at, a.duration_ms, a.status, a.error_class,
                a.response_headers, a.response_excerpt
         FROM job_attempts a JOIN jobs ON jobs.id = a.job_id
         WHERE jobs.event_id = $1 AND a.event_id = $1 ORDER BY a.job_id, a.attempt",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    let mut jobs = Vec::with_capacity(job_rows.len());
    for row in &job_rows {
        let job = job_from_row(row, 0)?;
        let mut transitions = Vec::new();
        for t in &transition_rows {
            if t.try_get::<i64, _>(0)? != job.id.0 {
                continue;
            }
            transitions.push(JobTransition {
                seq: decode_u32(t.try_get(1)?, "seq")?,
                state: decode_state(t.try_get(2)?)?,
                at: t.try_get(3)?,
                next_at: t.try_get(4)?,
                attempt: decode_u32(t.try_get(5)?, "attempt")?,
                detail: t.try_get(6)?,
            });
        }
        let mut attempts = Vec::new();
        for a in &attempt_rows {
            if a.try_get::<i64, _>(0)? != job.id.0 {
                continue;
            }
            let headers: Option<String> = a.try_get(6)?;
            let duration: i64 = a.try_get(3)?;
            attempts.push(AttemptRecord {
                attempt: decode_u32(a.try_get(1)?, "attempt")?,
                started_at: a.try_get(2)?,
                duration_ms: u64::try_from(duration).unwrap_or(0),
                status: decode_status(a.try_get(4)?)?,
                error_class: a.try_get(5)?,
                response_headers: headers
                    .as_deref()
                    .map(decode_headers)
                    .transpose()?
                    .unwrap_or_default(),
                response_excerpt: a.try_get::<Option<Vec<u8>>, _>(7)?.unwrap_or_default(),
            });
        }
        jobs.push(JobRecord {
            job,
            transitions,
            attempts,
        });
    }
    let discard_rows = sqlx::query(
        "SELECT destination_id, subscription_id, reason, message FROM discards
         WHERE event_id = $1 ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    let mut discards = Vec::with_capacity(discard_rows.len());
    for d in &discard_rows {
        let reason: String = d.try_get(2)?;
        discards.push(DiscardRecord {
            destination_id: d.try_get(0)?,
            subscription_id: d.try_get(1)?,
            reason: reason
                .parse()
                .map_err(|err| Error::Corrupt(format!("discard: {err}")))?,
            message: d.try_get(3)?,
        });
    }
    Ok(Some(EventRecord {
        id,
        source_id: row.try_get(0)?,
        message_id: row.try_get(1)?,
        received_at: row.try_get(2)?,
        payload: row.try_get(3)?,
        duplicates,
        jobs,
        discards,
    }))
}

pub(crate) async fn counts(pool: &PgPool) -> Result<Counts, Error> {
    let row = sqlx::query(
        "SELECT sum(events)::bigint, sum(duplicates)::bigint, sum(jobs)::bigint,
                sum(discards)::bigint
         FROM counters",
    )
    .fetch_one(pool)
    .await?;
    let get = |at: usize| -> Result<u64, Error> {
        let value: i64 = row.try_get(at)?;
        u64::try_from(value).map_err(|_| Error::Corrupt(format!("negative counter: {value}")))
    };
    Ok(Counts {
        events: get(0)?,
        duplicates: get(1)?,
        jobs: get(2)?,
        discards: get(3)?,
    })
}

pub(crate) async fn lanes(pool: &PgPool) -> Result<Vec<LaneDue>, Error> {
    // A loose index scan: one probe per lane, whatever the backlog. A row is due at the later
    // of `next_at` and its lease's end. Rows in lane order up to the first one without a lease
    // running past its `next_at` hold the earliest: later rows are due no sooner than it. Those
    // before it are the lane's claimed rows, as many as are in flight, not the backlog.
    let rows = sqlx::query(
        "WITH RECURSIVE lane (endpoint) AS (
             SELECT min(endpoint) FROM job_queue
             UNION ALL
             SELECT (SELECT min(endpoint) FROM job_queue WHERE endpoint > lane.endpoint)
             FROM lane WHERE lane.endpoint IS NOT NULL
         )
         SELECT endpoint,
                (SELECT min(greatest(q.next_at, q.lease_until)) FROM job_queue q
                 WHERE q.endpoint = lane.endpoint
                   AND q.next_at <= coalesce(
                       (SELECT f.next_at FROM job_queue f
                        WHERE f.endpoint = lane.endpoint AND f.lease_until <= f.next_at
                        ORDER BY f.next_at LIMIT 1),
                       9223372036854775807))
         FROM lane WHERE endpoint IS NOT NULL",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LaneDue {
                endpoint: row.try_get(0)?,
                next_at: row.try_get(1)?,
            })
        })
        .collect()
}

pub(crate) async fn lane_backlogs(pool: &PgPool) -> Result<Vec<LaneBacklog>, Error> {
    let rows =
        sqlx::query("SELECT endpoint, count(*) FROM job_queue GROUP BY endpoint ORDER BY endpoint")
            .fetch_all(pool)
            .await?;
    rows.iter()
        .map(|row| {
            Ok(LaneBacklog {
                endpoint: row.try_get(0)?,
                queued: u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0),
            })
        })
        .collect()
}

/// Claims up to `limit` of the lane's due jobs, earliest first. Where the walk of the lane's index
/// starts is `cursors`' plan: past this node's last claim while that keeps filling claims, from
/// the lane's floor otherwise (`cursor.rs`), so that no claim reads the dead entries completed
/// jobs leave at the lane's head.
pub(crate) async fn claim(
    pool: &PgPool,
    cursors: &Cursors,
    endpoint: &str,
    now: UnixMillis,
    lease_until: UnixMillis,
    limit: usize,
) -> Result<Vec<DueJob>, Error> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let plan = cursors.plan(endpoint, now);
    let claimed = claim_walk(pool, cursors, &plan, endpoint, now, lease_until, limit).await;
    let jobs = match claimed {
        Ok(jobs) => jobs,
        Err(err) => {
            // The claim may have taken and let go rows this node's cursor had already passed.
            cursors.reset(endpoint);
            return Err(err);
        }
    };
    if plan.refresh_floor {
        let first: Option<(i64, i64)> =
            sqlx::query_as("SELECT * FROM junction_lane_first($1, $2, $3)")
                .bind(endpoint)
                .bind(plan.floor.0)
                .bind(plan.floor.1)
                .fetch_optional(pool)
                .await?;
        cursors.floor_found(endpoint, now, first);
    }
    Ok(jobs)
}

/// The claim itself: from the plan's start, then, when a claim from the cursor comes back short
/// (the lane's due end, or rows due behind the cursor), from the floor for the rest.
async fn claim_walk(
    pool: &PgPool,
    cursors: &Cursors,
    plan: &Plan,
    endpoint: &str,
    now: UnixMillis,
    lease_until: UnixMillis,
    limit: usize,
) -> Result<Vec<DueJob>, Error> {
    let mut jobs = claim_after(pool, endpoint, now, lease_until, limit, plan.from).await?;
    let short = jobs.len() < limit;
    if !plan.walk && short {
        let rest = limit - jobs.len();
        jobs.extend(claim_after(pool, endpoint, now, lease_until, rest, plan.floor).await?);
        jobs.sort_by_key(|due| (due.next_at, due.job.id.0));
    }
    // Short from where it started, the claim reached the lane's due end (or found rows behind
    // the cursor): the next ones start just below that end, until the next walk from the floor.
    let last = jobs.last().map(|due| (due.next_at, due.job.id.0));
    cursors.claimed(endpoint, plan, now, last, !short);
    Ok(jobs)
}

/// One statement (migration 10's `junction_claim_after`): lock the lane's earliest due rows
/// after `after` that other claimers have not locked, lease them, and return them with the
/// values from before the lease, walking the lane's index in order whatever the statistics say.
async fn claim_after(
    pool: &PgPool,
    endpoint: &str,
    now: UnixMillis,
    lease_until: UnixMillis,
    limit: usize,
    after: Position,
) -> Result<Vec<DueJob>, Error> {
    let rows = sqlx::query("SELECT * FROM junction_claim_after($1, $2, $3, $4, $5, $6)")
        .bind(endpoint)
        .bind(now)
        .bind(lease_until)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(after.0)
        .bind(after.1)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(DueJob {
                next_at: row.try_get(0)?,
                attempt: decode_u32(row.try_get(1)?, "attempt")?,
                job: job_from_row(row, 2)?,
            })
        })
        .collect()
}

/// Makes due at `now` up to `limit` of the lane's jobs awaiting a retry (no claim outstanding:
/// the attempt count, bumped by claims, equals the last transition's number, bumped by
/// completions), and wakes every node's engine when it moved some.
pub(crate) async fn expedite(
    pool: &PgPool,
    endpoint: &str,
    now: UnixMillis,
    limit: usize,
) -> Result<usize, Error> {
    let mut tx = pool.begin().await?;
    let moved = sqlx::query(
        "UPDATE job_queue SET next_at = $2
         WHERE job_id IN (
             SELECT job_id FROM job_queue
             WHERE endpoint = $1 AND next_at > $2 AND attempt = last_seq
             ORDER BY next_at, job_id
             LIMIT $3
             FOR UPDATE SKIP LOCKED)",
    )
    .bind(endpoint)
    .bind(now)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved > 0 {
        // The lane as payload: every node's claims of it walk from the floor again, the rows
        // brought forward possibly behind their cursors.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(JOBS_CHANNEL)
            .bind(endpoint)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(usize::try_from(moved).unwrap_or(usize::MAX))
}

/// Gives the jobs back, each due again when it was due before its claim, and returns their lanes.
pub(crate) async fn release(pool: &PgPool, jobs: &[ReleasedJob]) -> Result<Vec<String>, Error> {
    let ids: Vec<i64> = jobs.iter().map(|job| job.job_id.0).collect();
    let due: Vec<i64> = jobs.iter().map(|job| job.due_at).collect();
    let mut tx = pool.begin().await?;
    // Each row is due again when it was due before the claim (see `Store::release_jobs`), its
    // lease ended.
    let lanes: Vec<String> = sqlx::query_scalar(
        "WITH released AS (
             UPDATE job_queue q
             SET next_at = t.due_at, lease_until = 0, attempt = greatest(q.attempt - 1, 0)
             FROM unnest($1::bigint[], $2::bigint[]) AS t (job_id, due_at)
             WHERE q.job_id = t.job_id
             RETURNING q.endpoint
         )
         SELECT DISTINCT endpoint FROM released",
    )
    .bind(&ids)
    .bind(&due)
    .fetch_all(&mut *tx)
    .await?;
    // One notification per lane, the lane as payload: the rows given back are behind the
    // cursors of every node's claims of it (`cursor.rs`). Old nodes' empty payloads still wake.
    sqlx::query("SELECT pg_notify($1, lane) FROM unnest($2::text[]) AS lane")
        .bind(JOBS_CHANNEL)
        .bind(&lanes)
        .execute(&mut *tx)
        .await?;
    if lanes.is_empty() {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(JOBS_CHANNEL)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(lanes)
}

pub(crate) async fn dead_letter(
    pool: &PgPool,
    filter: &DeadLetterFilter,
) -> Result<Vec<DeadJob>, Error> {
    let mut sql: QueryBuilder<'_, Postgres> = QueryBuilder::new(format!(
        "SELECT dead_letter.state, dead_letter.at, dead_letter.attempts, dead_letter.status,
                dead_letter.error_class, dead_letter.detail, dead_letter.replayed_by, {JOB_COLUMNS}
         FROM dead_letter JOIN jobs ON jobs.id = dead_letter.job_id WHERE TRUE"
    ));
    if let Some(destination) = &filter.destination_id {
        sql.push(" AND dead_letter.destination_id = ")
            .push_bind(destination.clone());
    }
    if let Some(subscription) = &filter.subscription_id {
        sql.push(" AND dead_letter.subscription_id = ")
            .push_bind(subscription.clone());
    }
    if let Some(state) = filter.state {
        sql.push(" AND dead_letter.state = ")
            .push_bind(state.as_str());
    }
    if let Some(class) = &filter.error_class {
        sql.push(" AND dead_letter.error_class = ")
            .push_bind(class.clone());
    }
    if let Some(since) = filter.since {
        sql.push(" AND dead_letter.at >= ").push_bind(since);
    }
    if let Some(until) = filter.until {
        sql.push(" AND dead_letter.at < ").push_bind(until);
    }
    if let Some(after) = filter.after {
        sql.push(" AND dead_letter.job_id > ").push_bind(after.0);
    }
    if !filter.include_replayed {
        sql.push(" AND dead_letter.replayed_by IS NULL");
    }
    if !filter.job_ids.is_empty() {
        let ids: Vec<i64> = filter.job_ids.iter().map(|id| id.0).collect();
        sql.push(" AND dead_letter.job_id = ANY(")
            .push_bind(ids)
            .push(")");
    }
    sql.push(" ORDER BY dead_letter.job_id LIMIT ")
        .push_bind(i64::try_from(filter.limit).unwrap_or(i64::MAX));
    let rows = sql.build().fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            let state: String = row.try_get(0)?;
            Ok(DeadJob {
                state: decode_state(&state)?,
                at: row.try_get(1)?,
                attempts: decode_u32(row.try_get(2)?, "attempts")?,
                status: decode_status(row.try_get(3)?)?,
                error_class: row.try_get(4)?,
                detail: row.try_get(5)?,
                replayed_by: row.try_get::<Option<i64>, _>(6)?.map(JobId),
                job: job_from_row(row, 7)?,
            })
        })
        .collect()
}

pub(crate) async fn replay(pool: &PgPool, replays: &[NewReplay]) -> Result<Vec<JobId>, Error> {
    let now = now_ms();
    let mut tx = pool.begin().await?;
    let mut ids = Vec::with_capacity(replays.len());
    for replay in replays {
        let original = replay.replay_of.0;
        let event_id: Option<i64> = sqlx::query_scalar(
            "SELECT jobs.event_id FROM dead_letter JOIN jobs ON jobs.id = dead_letter.job_id
             WHERE dead_letter.job_id = $1 FOR UPDATE OF dead_letter",
        )
        .bind(original)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(event_id) = event_id else {
            return Err(StoreError::NotFound {
                what: format!("dead-letter job {original}"),
            }
            .into());
        };
        let detail = format!("replay of job {original}");
        let id = insert_job(
            &mut tx,
            event_id,
            &replay.job,
            now,
            Some(original),
            Some(detail),
        )
        .await?;
        sqlx::query("UPDATE dead_letter SET replayed_by = $2 WHERE job_id = $1")
            .bind(original)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        ids.push(JobId(id));
    }
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(JOBS_CHANNEL)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ids)
}

/// Retention (see `generations.rs`): keeps partitions ahead of the writer, drops the oldest
/// sealed generation that can go whole, and otherwise prunes the generation being written
/// row-wise, as the embedded engine does. Sealed generations are never pruned row-wise: they wait
/// until they can be dropped whole.
pub(crate) async fn prune(
    pool: &PgPool,
    before: UnixMillis,
    max_events: usize,
    generation_events: i64,
) -> Result<PruneOutcome, Error> {
    // Each pass also removes a bounded slice of old rollup minutes, whatever `before` is.
    let mut tx = pool.begin().await?;
    rollup::prune(&mut tx, now_ms()).await?;
    tx.commit().await?;
    let mut conn = pool.acquire().await?;
    let next_id = generations::next_event_id(&mut conn).await?;
    // Headroom even when this node's writer has been idle while others wrote.
    generations::ensure(
        pool,
        generation_events,
        next_id.saturating_add(generation_events),
    )
    .await?;
    let all = generations::list(&mut conn).await?;
    drop(conn);
    if let Some(events) = generations::drop_one(pool, &all, next_id, before).await? {
        return Ok(PruneOutcome { events, more: true });
    }
    let from = generations::current_first_id(&all, next_id);
    prune_rows(pool, before, max_events, from).await
}

/// Row-wise retention of the events from id `from` on: the oldest received before `before`, up
/// to `max_events`, minus those with a job still queued, with everything about them.
async fn prune_rows(
    pool: &PgPool,
    before: UnixMillis,
    max_events: usize,
    from: i64,
) -> Result<PruneOutcome, Error> {
    let limit = i64::try_from(max_events).unwrap_or(i64::MAX);
    let mut tx = pool.begin().await?;
    // The oldest events (by id) received before the cutoff, up to the limit, one more to know
    // whether the pass stopped at it.
    let rows =
        sqlx::query("SELECT id, received_at FROM events WHERE id >= $1 ORDER BY id LIMIT $2")
            .bind(from)
            .bind(limit.saturating_add(1))
            .fetch_all(&mut *tx)
            .await?;
    let (mut oldest, mut upto, mut count, mut full) = (None, None, 0u64, false);
    for row in &rows {
        let (id, received_at): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        if received_at >= before {
            break;
        }
        if count == max_events as u64 {
            full = true;
            break;
        }
        oldest.get_or_insert(id);
        upto = Some(id);
        count += 1;
    }
    let (Some(from), Some(upto)) = (oldest, upto) else {
        tx.commit().await?;
        return Ok(PruneOutcome::default());
    };
    // Events with a job still queued are kept; everything about the others goes.
    let doomed: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM events WHERE id BETWEEN $1 AND $2
           AND NOT EXISTS (SELECT 1 FROM jobs JOIN job_queue ON job_queue.job_id = jobs.id
                           WHERE jobs.event_id = events.id)
         FOR UPDATE",
    )
    .bind(from)
    .bind(upto)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM dead_letter WHERE job_id IN (SELECT id FROM jobs WHERE event_id = ANY($1))",
    )
    .bind(&doomed)
    .execute(&mut *tx)
    .await?;
    for table in [
        "job_attempts",
        "job_transitions",
        "jobs",
        "discards",
        "event_duplicates",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE event_id = ANY($1)"))
            .bind(&doomed)
            .execute(&mut *tx)
            .await?;
    }
    let removed = sqlx::query("DELETE FROM events WHERE id = ANY($1)")
        .bind(&doomed)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(PruneOutcome {
        events: removed,
        more: full && removed > 0,
    })
}

/// The versions of the configuration kept, oldest first.
pub(crate) async fn config_versions(pool: &PgPool) -> Result<Vec<ConfigVersion>, Error> {
    let rows = sqlx::query("SELECT version FROM config_versions ORDER BY version")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| Ok(ConfigVersion(row.try_get(0)?)))
        .collect()
}

pub(crate) async fn load_config(pool: &PgPool) -> Result<Option<ConfigDocument>, Error> {
    let Some(row) = sqlx::query(
        "SELECT version, saved_at, document FROM config_versions ORDER BY version DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let version: i64 = row.try_get(0)?;
    let text: String = row.try_get(2)?;
    let document = serde_json::from_str(&text)
        .map_err(|err| Error::Corrupt(format!("config version {version}: {err}")))?;
    Ok(Some(ConfigDocument {
        version: ConfigVersion(version),
        saved_at: row.try_get(1)?,
        document,
    }))
}
