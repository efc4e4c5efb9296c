//! Recording a batch of delivery outcomes with a fixed number of statements per batch (arrays
//! bound as parameters, expanded with `unnest`), not four or five round trips per job: at
//! thousands of deliveries a second the round trips were the cost.
//!
//! A batch may complete a job twice (a duplicate delivery after a lease ended, both outcomes
//! reaching this node's completer). It is then split into rounds, the n-th completion of each job
//! in round n, applied in order in the one transaction: the same result as one completion at a
//! time.

use std::collections::HashMap;

use junction_store::rollup::samples_completion;
use junction_store::{Completion, JobState, UnixMillis};
use sqlx::{PgConnection, PgPool, Row};

use crate::error::Error;
use crate::rollup::{CompletedJob, Rollup};
use crate::{encode_headers, now_ms};

/// Records `completions` in one transaction.
pub(crate) async fn complete(pool: &PgPool, completions: &[Completion]) -> Result<(), Error> {
    if completions.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut rounds: Vec<Vec<&Completion>> = Vec::new();
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for completion in completions {
        let round = seen.entry(completion.job_id.0).or_default();
        if rounds.len() <= *round {
            rounds.push(Vec::new());
        }
        if let Some(jobs) = rounds.get_mut(*round) {
            jobs.push(completion);
        }
        *round += 1;
    }
    let mut tx = pool.begin().await?;
    let mut rollup = Rollup::default();
    for mut round in rounds {
        // Row locks in job order, so that two nodes completing overlapping jobs cannot deadlock.
        round.sort_by_key(|completion| completion.job_id);
        complete_round(&mut tx, &round, now, &mut rollup).await?;
    }
    rollup.flush(&mut tx, crate::rollup::shard()).await?;
    tx.commit().await?;
    Ok(())
}

/// A job's queue row as the completion found it (locked).
struct Queued {
    last_seq: i64,
    attempts: i64,
    event_id: i64,
    destination_id: String,
    subscription_id: String,
    created_at: UnixMillis,
    message_id: Option<String>,
}

/// Completions of distinct jobs, in job order.
async fn complete_round(
    conn: &mut PgConnection,
    round: &[&Completion],
    now: UnixMillis,
    rollup: &mut Rollup,
) -> Result<(), Error> {
    // Locked (in job order: the sort runs below the lock) so that a concurrent completion of the
    // same job on another node waits, then finds it terminal.
    let ids: Vec<i64> = round.iter().map(|completion| completion.job_id.0).collect();
    let rows = sqlx::query(
        "SELECT q.job_id, q.last_seq, q.attempt, jobs.destination_id, jobs.subscription_id,
                jobs.created_at, jobs.event_id
         FROM job_queue q
         JOIN jobs ON jobs.id = q.job_id AND jobs.event_id = q.event_id
         WHERE q.job_id = ANY($1)
         ORDER BY q.job_id
         FOR UPDATE OF q",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut queued: HashMap<i64, Queued> = HashMap::with_capacity(rows.len());
    for row in rows {
        queued.insert(
            row.try_get(0)?,
            Queued {
                last_seq: row.try_get(1)?,
                attempts: row.try_get(2)?,
                destination_id: row.try_get(3)?,
                subscription_id: row.try_get(4)?,
                created_at: row.try_get(5)?,
                message_id: None,
                event_id: row.try_get(6)?,
            },
        );
    }
    add_failures_message_ids(conn, round, &mut queued).await?;

    let event_ids: HashMap<i64, i64> = queued
        .iter()
        .map(|(job_id, entry)| (*job_id, entry.event_id))
        .collect();
    record_attempts(conn, round, event_ids).await?;

    let mut transitions = Transitions::default();
    let (mut retry_ids, mut retry_next, mut retry_seq) = (Vec::new(), Vec::new(), Vec::new());
    let mut finished: Vec<i64> = Vec::new();
    let mut failed: Vec<(&Completion, &Queued)> = Vec::new();
    for completion in round {
        let job_id = completion.job_id.0;
        // Already terminal: the attempt is recorded, nothing else.
        let Some(entry) = queued.get(&job_id) else {
            continue;
        };
        let state = completion.state;
        let is_failure = samples_completion(state);
        rollup.add_completion(CompletedJob {
            destination_id: entry.destination_id.clone(),
            subscription_id: entry.subscription_id.clone(),
            created_at: entry.created_at,
            message_id: if is_failure {
                entry.message_id.clone()
            } else {
                None
            },
            at: completion.attempt.as_ref().map_or(now, |attempt| {
                let duration = i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX);
                attempt.started_at.saturating_add(duration)
            }),
            state,
            was_retrying: entry.last_seq > 0,
        });
        let seq = entry.last_seq + 1;
        transitions.push(completion, entry, seq, now);
        match state {
            JobState::AwaitingRetry | JobState::Pending => {
                retry_ids.push(job_id);
                retry_next.push(completion.next_at);
                retry_seq.push(seq);
            }
            JobState::Discarded | JobState::Expired => {
                finished.push(job_id);
                failed.push((completion, entry));
            }
            _ => finished.push(job_id),
        }
    }
    transitions.insert(conn).await?;
    if !retry_ids.is_empty() {
        sqlx::query(
            "UPDATE job_queue q SET next_at = t.next_at, lease_until = 0, last_seq = t.seq
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t (job_id, next_at, seq)
             WHERE q.job_id = t.job_id",
        )
        .bind(&retry_ids)
        .bind(&retry_next)
        .bind(&retry_seq)
        .execute(&mut *conn)
        .await?;
    }
    if !finished.is_empty() {
        sqlx::query("DELETE FROM job_queue WHERE job_id = ANY($1)")
            .bind(&finished)
            .execute(&mut *conn)
            .await?;
    }
    dead_letter(conn, &failed, now).await
}

/// Fills in the message id of the jobs whose completion the overview samples (failures): only
/// they need it, and reading every job's event for it cost an index probe per delivery.
async fn add_failures_message_ids(
    conn: &mut PgConnection,
    round: &[&Completion],
    queued: &mut HashMap<i64, Queued>,
) -> Result<(), Error> {
    let events: Vec<i64> = round
        .iter()
        .filter(|completion| samples_completion(completion.state))
        .filter_map(|completion| queued.get(&completion.job_id.0))
        .map(|entry| entry.event_id)
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    let rows = sqlx::query("SELECT id, message_id FROM events WHERE id = ANY($1)")
        .bind(&events)
        .fetch_all(&mut *conn)
        .await?;
    let mut message_ids: HashMap<i64, Option<String>> = HashMap::with_capacity(rows.len());
    for row in rows {
        message_ids.insert(row.try_get(0)?, row.try_get(1)?);
    }
    for entry in queued.values_mut() {
        if let Some(message_id) = message_ids.get(&entry.event_id) {
            entry.message_id.clone_from(message_id);
        }
    }
    Ok(())
}

/// Inserts (or, for an attempt recorded before, replaces) the attempts made. `event_ids` has the
/// event of each job still queued; a job already terminal (a repeat delivery) is looked up.
async fn record_attempts(
    conn: &mut PgConnection,
    round: &[&Completion],
    mut event_ids: HashMap<i64, i64>,
) -> Result<(), Error> {
    let unknown: Vec<i64> = round
        .iter()
        .filter(|completion| completion.attempt.is_some())
        .map(|completion| completion.job_id.0)
        .filter(|job_id| !event_ids.contains_key(job_id))
        .collect();
    if !unknown.is_empty() {
        let rows = sqlx::query("SELECT id, event_id FROM jobs WHERE id = ANY($1)")
            .bind(&unknown)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            event_ids.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    let (mut ids, mut events) = (Vec::new(), Vec::new());
    let (mut numbers, mut started, mut durations, mut statuses) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut classes, mut headers, mut excerpts) = (Vec::new(), Vec::new(), Vec::new());
    for completion in round {
        let Some(attempt) = &completion.attempt else {
            continue;
        };
        // A job that is not stored (never, unless retention removed it meanwhile) has no row
        // for its attempt to belong to.
        let Some(event_id) = event_ids.get(&completion.job_id.0) else {
            continue;
        };
        ids.push(completion.job_id.0);
        events.push(*event_id);
        numbers.push(i64::from(attempt.attempt));
        started.push(attempt.started_at);
        durations.push(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX));
        statuses.push(attempt.status.map(i32::from));
        classes.push(attempt.error_class.as_deref());
        headers.push(encode_headers(&attempt.response_headers)?);
        excerpts.push(attempt.response_excerpt.as_slice());
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO job_attempts (job_id, attempt, started_at, duration_ms, status, error_class,
                                   response_headers, response_excerpt, event_id)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::int[],
                              $6::text[], $7::text[], $8::bytea[], $9::bigint[])
         ON CONFLICT (job_id, attempt, event_id) DO UPDATE SET
             started_at = excluded.started_at, duration_ms = excluded.duration_ms,
             status = excluded.status, error_class = excluded.error_class,
             response_headers = excluded.response_headers,
             response_excerpt = excluded.response_excerpt",
    )
    .bind(&ids)
    .bind(&numbers)
    .bind(&started)
    .bind(&durations)
    .bind(&statuses)
    .bind(&classes)
    .bind(&headers)
    .bind(&excerpts)
    .bind(&events)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The transitions of one round, as columns.
#[derive(Default)]
struct Transitions<'a> {
    job_ids: Vec<i64>,
    seqs: Vec<i64>,
    states: Vec<&'static str>,
    at: Vec<i64>,
    next_at: Vec<Option<i64>>,
    attempts: Vec<i64>,
    details: Vec<Option<&'a str>>,
    event_ids: Vec<i64>,
}

impl<'a> Transitions<'a> {
    fn push(&mut self, completion: &'a Completion, entry: &Queued, seq: i64, now: UnixMillis) {
        self.job_ids.push(completion.job_id.0);
        self.seqs.push(seq);
        self.states.push(completion.state.as_str());
        self.at.push(now);
        self.next_at
            .push((!completion.state.is_terminal()).then_some(completion.next_at));
        self.attempts.push(entry.attempts);
        self.details.push(completion.detail.as_deref());
        self.event_ids.push(entry.event_id);
    }

    async fn insert(&self, conn: &mut PgConnection) -> Result<(), Error> {
        if self.job_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO job_transitions (job_id, seq, state, at, next_at, attempt, detail,
                                          event_id)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[],
                                  $5::bigint[], $6::bigint[], $7::text[], $8::bigint[])",
        )
        .bind(&self.job_ids)
        .bind(&self.seqs)
        .bind(&self.states)
        .bind(&self.at)
        .bind(&self.next_at)
        .bind(&self.attempts)
        .bind(&self.details)
        .bind(&self.event_ids)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Puts the round's failed jobs in the dead letter, with their last attempt's status and class
/// (the one just made, or for a job that expired without one, the last recorded).
async fn dead_letter(
    conn: &mut PgConnection,
    failed: &[(&Completion, &Queued)],
    now: UnixMillis,
) -> Result<(), Error> {
    if failed.is_empty() {
        return Ok(());
    }
    let without_attempt: Vec<i64> = failed
        .iter()
        .filter(|(completion, _)| completion.attempt.is_none())
        .map(|(completion, _)| completion.job_id.0)
        .collect();
    let mut last: HashMap<i64, (Option<i32>, Option<String>)> = HashMap::new();
    if !without_attempt.is_empty() {
        let rows = sqlx::query(
            "SELECT DISTINCT ON (job_id) job_id, status, error_class FROM job_attempts
             WHERE job_id = ANY($1) ORDER BY job_id, attempt DESC",
        )
        .bind(&without_attempt)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            last.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
        }
    }
    let (mut ids, mut states, mut made, mut statuses) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut classes, mut details) = (Vec::new(), Vec::new());
    for (completion, entry) in failed {
        let job_id = completion.job_id.0;
        let (attempts, status, class) = match &completion.attempt {
            Some(attempt) => (
                entry.attempts,
                attempt.status.map(i32::from),
                attempt.error_class.clone(),
            ),
            None => {
                let (status, class) = last.remove(&job_id).unwrap_or_default();
                // The claim counted an attempt that was not made.
                ((entry.attempts - 1).max(0), status, class)
            }
        };
        ids.push(job_id);
        states.push(completion.state.as_str());
        made.push(attempts);
        statuses.push(status);
        classes.push(class);
        details.push(completion.detail.as_deref());
    }
    sqlx::query(
        "INSERT INTO dead_letter (job_id, destination_id, subscription_id, state, at, attempts,
                                  status, error_class, detail)
         SELECT t.job_id, jobs.destination_id, jobs.subscription_id, t.state, $2, t.attempts,
                t.status, t.error_class, t.detail
         FROM unnest($1::bigint[], $3::text[], $4::bigint[], $5::int[], $6::text[], $7::text[])
              AS t (job_id, state, attempts, status, error_class, detail)
         JOIN jobs ON jobs.id = t.job_id
         ON CONFLICT (job_id) DO UPDATE SET
             state = excluded.state, at = excluded.at, attempts = excluded.attempts,
             status = excluded.status, error_class = excluded.error_class,
             detail = excluded.detail",
    )
    .bind(&ids)
    .bind(now)
    .bind(&states)
    .bind(&made)
    .bind(&statuses)
    .bind(&classes)
    .bind(&details)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
