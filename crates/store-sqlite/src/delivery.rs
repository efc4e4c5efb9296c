//! The delivery engine's writes, run by the writer thread inside its group transaction: claims,
//! completions (audit trail, transitions, dead letter), replays and retention.

use junction_store::rollup::samples_completion;
use junction_store::{
    Completion, DueJob, JobId, JobState, NewReplay, PruneOutcome, ReleasedJob, StoreError,
    UnixMillis,
};
use rusqlite::{Connection, OptionalExtension};

use crate::error::Error;
use crate::model::{JOB_COLUMNS, attempt_from_column, encode_headers, job_from_row};
use crate::rollup::{self, CompletedJob, Rollup};

/// A delivery write, queued like a commit and written in the same group transaction.
pub(crate) enum DeliveryWrite {
    /// See [`junction_store::Store::claim_jobs`].
    Claim {
        endpoint: String,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: usize,
    },
    /// See [`junction_store::Store::release_jobs`].
    Release(Vec<ReleasedJob>),
    /// See [`junction_store::Store::expedite_retries`].
    Expedite {
        endpoint: String,
        now: UnixMillis,
        limit: usize,
    },
    /// See [`junction_store::Store::complete_jobs`].
    Complete(Vec<Completion>),
    /// See [`junction_store::Store::replay_jobs`].
    Replay(Vec<NewReplay>),
    /// See [`junction_store::Store::prune`].
    Prune {
        before: UnixMillis,
        max_events: usize,
    },
}

/// What a [`DeliveryWrite`] answers once its transaction committed.
pub(crate) enum DeliveryAnswer {
    Claimed(Vec<DueJob>),
    Completed,
    Expedited(usize),
    Replayed(Vec<JobId>),
    Pruned(PruneOutcome),
}

impl DeliveryWrite {
    /// Whether committing it may make jobs due, so the job signal must fire.
    pub(crate) fn adds_jobs(&self) -> bool {
        match self {
            DeliveryWrite::Replay(replays) => !replays.is_empty(),
            DeliveryWrite::Release(jobs) => !jobs.is_empty(),
            // Whether it moved any is known only once written: the caller signals then.
            _ => false,
        }
    }

    /// Runs it inside the writer's open transaction; completions add to the transaction's
    /// overview `rollup`.
    pub(crate) fn write(
        &self,
        conn: &Connection,
        now: UnixMillis,
        rollup: &mut Rollup<'_>,
    ) -> Result<DeliveryAnswer, Error> {
        Ok(match self {
            DeliveryWrite::Claim {
                endpoint,
                now,
                lease_until,
                limit,
            } => DeliveryAnswer::Claimed(claim(conn, endpoint, *now, *lease_until, *limit)?),
            DeliveryWrite::Release(jobs) => {
                release(conn, jobs)?;
                DeliveryAnswer::Completed
            }
            DeliveryWrite::Complete(completions) => {
                complete(conn, completions, now, rollup)?;
                DeliveryAnswer::Completed
            }
            DeliveryWrite::Expedite {
                endpoint,
                now,
                limit,
            } => DeliveryAnswer::Expedited(expedite(conn, endpoint, *now, *limit)?),
            DeliveryWrite::Replay(replays) => DeliveryAnswer::Replayed(replay(conn, replays, now)?),
            DeliveryWrite::Prune { before, max_events } => {
                let outcome = prune(conn, *before, *max_events)?;
                // The overview keeps its own 14 days, whatever the events' retention.
                rollup::prune(conn, now)?;
                DeliveryAnswer::Pruned(outcome)
            }
        })
    }
}

fn claim(
    conn: &Connection,
    endpoint: &str,
    now: UnixMillis,
    lease_until: UnixMillis,
    limit: usize,
) -> Result<Vec<DueJob>, Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Walks `job_queue_lane` from the lane's earliest entry and stops at `limit`.
    let sql = format!(
        "SELECT job_queue.next_at, job_queue.attempt, {JOB_COLUMNS}
         FROM job_queue JOIN jobs ON jobs.id = job_queue.job_id
         WHERE job_queue.endpoint = ?1 AND job_queue.next_at <= ?2
         ORDER BY job_queue.next_at, job_queue.job_id
         LIMIT ?3"
    );
    let mut claimed = Vec::new();
    {
        let mut select = conn.prepare_cached(&sql)?;
        let mut rows = select.query((endpoint, now, limit))?;
        while let Some(row) = rows.next()? {
            claimed.push(DueJob {
                next_at: row.get(0)?,
                attempt: attempt_from_column(row.get(1)?)?,
                job: job_from_row(row, 2)?,
            });
        }
    }
    let mut lease = conn.prepare_cached(
        "UPDATE job_queue SET next_at = ?2, attempt = attempt + 1 WHERE job_id = ?1",
    )?;
    for due in &claimed {
        lease.execute((due.job.id.0, lease_until))?;
    }
    Ok(claimed)
}

/// Makes due at `now` up to `limit` of the lane's jobs awaiting a retry. A queued job has a claim
/// outstanding while its attempt count (claims) is ahead of its last transition's number
/// (completions): those are leased or in flight, and are left alone.
fn expedite(
    conn: &Connection,
    endpoint: &str,
    now: UnixMillis,
    limit: usize,
) -> Result<usize, Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let moved = conn
        .prepare_cached(
            "UPDATE job_queue SET next_at = ?2
             WHERE job_id IN (
                 SELECT job_id FROM job_queue
                 WHERE endpoint = ?1 AND next_at > ?2 AND attempt = last_seq
                 ORDER BY next_at, job_id
                 LIMIT ?3)",
        )?
        .execute((endpoint, now, limit))?;
    Ok(moved)
}

fn release(conn: &Connection, jobs: &[ReleasedJob]) -> Result<(), Error> {
    let mut release = conn.prepare_cached(
        "UPDATE job_queue SET next_at = ?2, attempt = max(attempt - 1, 0) WHERE job_id = ?1",
    )?;
    for job in jobs {
        release.execute((job.job_id.0, job.due_at))?;
    }
    Ok(())
}

fn complete(
    conn: &Connection,
    completions: &[Completion],
    now: UnixMillis,
    rollup: &mut Rollup<'_>,
) -> Result<(), Error> {
    // With what the overview needs: the job's destination, mapping and commit time (one more
    // primary-key probe; the request's columns, stored after them, are not decoded).
    let mut queued = conn.prepare_cached(
        "SELECT job_queue.last_seq, job_queue.attempt, jobs.destination_id,
                jobs.subscription_id, jobs.created_at, jobs.event_id
         FROM job_queue LEFT JOIN jobs ON jobs.id = job_queue.job_id
         WHERE job_queue.job_id = ?1",
    )?;
    // Failures only (retried or dead), for the overview's samples: rare, so their event is read
    // apart.
    let mut message_id_of = conn.prepare_cached("SELECT message_id FROM events WHERE id = ?1")?;
    let mut insert_attempt = conn.prepare_cached(
        "INSERT OR REPLACE INTO job_attempts (job_id, attempt, started_at, duration_ms, status,
                                              error_class, response_headers, response_excerpt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut insert_transition = conn.prepare_cached(
        "INSERT INTO job_transitions (job_id, seq, state, at, next_at, attempt, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut reschedule =
        conn.prepare_cached("UPDATE job_queue SET next_at = ?2, last_seq = ?3 WHERE job_id = ?1")?;
    let mut dequeue = conn.prepare_cached("DELETE FROM job_queue WHERE job_id = ?1")?;
    let mut last_attempt = conn.prepare_cached(
        "SELECT status, error_class FROM job_attempts WHERE job_id = ?1
         ORDER BY attempt DESC LIMIT 1",
    )?;
    let mut bury = conn.prepare_cached(
        "INSERT OR REPLACE INTO dead_letter (job_id, destination_id, subscription_id, state, at,
                                             attempts, status, error_class, detail)
         SELECT id, destination_id, subscription_id, ?2, ?3, ?4, ?5, ?6, ?7
         FROM jobs WHERE id = ?1",
    )?;
    for completion in completions {
        let job_id = completion.job_id.0;
        if let Some(attempt) = &completion.attempt {
            let headers = encode_headers(&attempt.response_headers)?;
            insert_attempt.execute((
                job_id,
                attempt.attempt,
                attempt.started_at,
                i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX),
                attempt.status,
                &attempt.error_class,
                headers,
                &attempt.response_excerpt,
            ))?;
        }
        let entry = queued
            .query_row([job_id], |row| {
                type Job = (String, String, UnixMillis, i64);
                let job: Option<Job> = match (row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?) {
                    (Some(destination), Some(subscription), Some(created_at), Some(event_id)) => {
                        Some((destination, subscription, created_at, event_id))
                    }
                    _ => None,
                };
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, job))
            })
            .optional()?;
        // Already terminal: a second delivery after its lease ended. Its attempt is recorded
        // above; the job's story already has its end.
        let Some((last_seq, attempts, job)) = entry else {
            continue;
        };
        if let Some((destination_id, subscription_id, created_at, event_id)) = job {
            // The outcome happened when the attempt ended; without an attempt, now.
            let at = completion.attempt.as_ref().map_or(now, |attempt| {
                let duration = i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX);
                attempt.started_at.saturating_add(duration)
            });
            let message_id = if samples_completion(completion.state) {
                message_id_of
                    .query_row([event_id], |row| row.get(0))
                    .optional()?
            } else {
                None
            };
            rollup.add_completion(CompletedJob {
                destination_id,
                subscription_id,
                created_at,
                message_id,
                at,
                state: completion.state,
                was_retrying: last_seq > 0,
            });
        }
        let seq = last_seq + 1;
        let state = completion.state;
        let next_at = (!state.is_terminal()).then_some(completion.next_at);
        insert_transition.execute((
            job_id,
            seq,
            state.as_str(),
            now,
            next_at,
            attempts,
            &completion.detail,
        ))?;
        match state {
            JobState::AwaitingRetry | JobState::Pending => {
                reschedule.execute((job_id, completion.next_at, seq))?;
            }
            JobState::Discarded | JobState::Expired => {
                dequeue.execute([job_id])?;
                // Without an attempt (the window ended before the claim's attempt was made), the
                // claim sent nothing: the attempts made are the claims before it, and the last
                // one is the last recorded.
                let (made, status, error_class) = match &completion.attempt {
                    Some(attempt) => (attempts, attempt.status, attempt.error_class.clone()),
                    None => {
                        let last: Option<(Option<u16>, Option<String>)> = last_attempt
                            .query_row([job_id], |row| Ok((row.get(0)?, row.get(1)?)))
                            .optional()?;
                        let (status, error_class) = last.unwrap_or((None, None));
                        ((attempts - 1).max(0), status, error_class)
                    }
                };
                bury.execute((
                    job_id,
                    state.as_str(),
                    now,
                    made,
                    status,
                    error_class,
                    &completion.detail,
                ))?;
            }
            // Succeeded, and any terminal state added later: out of the queue.
            _ => {
                dequeue.execute([job_id])?;
            }
        }
    }
    Ok(())
}

fn replay(conn: &Connection, replays: &[NewReplay], now: UnixMillis) -> Result<Vec<JobId>, Error> {
    let mut source = conn.prepare_cached(
        "SELECT jobs.event_id FROM dead_letter JOIN jobs ON jobs.id = dead_letter.job_id
         WHERE dead_letter.job_id = ?1",
    )?;
    let mut insert_job = conn.prepare_cached(
        "INSERT INTO jobs (event_id, destination_id, subscription_id, endpoint, method, url,
                           headers, body, created_at, replay_of)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut insert_transition = conn.prepare_cached(
        "INSERT INTO job_transitions (job_id, seq, state, at, next_at, attempt, detail)
         VALUES (?1, 0, ?2, ?3, ?3, 0, ?4)",
    )?;
    let mut insert_queue = conn.prepare_cached(
        "INSERT INTO job_queue (job_id, endpoint, next_at, attempt, last_seq, lease_owner)
         VALUES (?1, ?2, ?3, 0, 0, NULL)",
    )?;
    let mut mark =
        conn.prepare_cached("UPDATE dead_letter SET replayed_by = ?2 WHERE job_id = ?1")?;
    let mut ids = Vec::with_capacity(replays.len());
    for replay in replays {
        let original = replay.replay_of.0;
        let event_id: Option<i64> = source.query_row([original], |row| row.get(0)).optional()?;
        let Some(event_id) = event_id else {
            return Err(StoreError::NotFound {
                what: format!("dead-letter job {original}"),
            }
            .into());
        };
        let job = &replay.job;
        let headers = encode_headers(&job.headers)?;
        let id = insert_job.insert((
            event_id,
            &job.destination_id,
            &job.subscription_id,
            &job.endpoint,
            &job.method,
            job.url.to_stored(),
            headers,
            &job.body,
            now,
            original,
        ))?;
        let detail = format!("replay of job {original}");
        insert_transition.execute((id, JobState::Pending.as_str(), now, detail))?;
        insert_queue.execute((id, &job.endpoint, now))?;
        mark.execute((original, id))?;
        ids.push(JobId(id));
    }
    Ok(ids)
}

fn prune(conn: &Connection, before: UnixMillis, max_events: usize) -> Result<PruneOutcome, Error> {
    let limit = i64::try_from(max_events).unwrap_or(i64::MAX);
    // Ids grow with commit time, and `received_at` is the commit's clock: the oldest events are
    // the lowest ids, so a pass reads from the left edge and stops at the first young one.
    let (mut oldest, mut upto, mut count, mut full) = (None, None, 0u64, false);
    {
        let mut select =
            conn.prepare_cached("SELECT id, received_at FROM events ORDER BY id LIMIT ?1")?;
        let mut rows = select.query([limit.saturating_add(1)])?;
        while let Some(row) = rows.next()? {
            let (id, received_at): (i64, i64) = (row.get(0)?, row.get(1)?);
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
    }
    let (Some(from), Some(upto)) = (oldest, upto) else {
        return Ok(PruneOutcome::default());
    };
    // Events whose delivery is not over stay, with everything about them.
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS prune_keep (event_id INTEGER PRIMARY KEY);
         DELETE FROM temp.prune_keep;",
    )?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO temp.prune_keep (event_id)
         SELECT jobs.event_id FROM job_queue JOIN jobs ON jobs.id = job_queue.job_id
         WHERE jobs.event_id BETWEEN ?1 AND ?2",
    )?
    .execute((from, upto))?;
    let doomed_jobs = "SELECT id FROM jobs WHERE event_id BETWEEN ?1 AND ?2 \
                       AND event_id NOT IN (SELECT event_id FROM temp.prune_keep)";
    for table in ["job_attempts", "job_transitions"] {
        conn.prepare_cached(&format!(
            "DELETE FROM {table} WHERE job_id IN ({doomed_jobs})"
        ))?
        .execute((from, upto))?;
    }
    conn.prepare_cached(&format!(
        "DELETE FROM dead_letter WHERE job_id IN ({doomed_jobs})"
    ))?
    .execute((from, upto))?;
    for table in ["jobs", "discards", "event_duplicates", "profile_inbox"] {
        conn.prepare_cached(&format!(
            "DELETE FROM {table} WHERE event_id BETWEEN ?1 AND ?2
               AND event_id NOT IN (SELECT event_id FROM temp.prune_keep)"
        ))?
        .execute((from, upto))?;
    }
    let removed = conn
        .prepare_cached(
            "DELETE FROM events WHERE id BETWEEN ?1 AND ?2
               AND id NOT IN (SELECT event_id FROM temp.prune_keep)",
        )?
        .execute((from, upto))?;
    // Kept events stay at the left edge: a pass that removed nothing says there is no more, so
    // that the caller does not spin on them until their jobs end.
    let more = full && removed > 0;
    Ok(PruneOutcome {
        events: removed as u64,
        more,
    })
}
