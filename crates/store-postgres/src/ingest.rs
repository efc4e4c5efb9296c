//! The ingest commit of one group: every event of every request in the group stored with a
//! fixed number of statements, whatever the group's size. Per-event statements cost a network
//! round trip each (four or five per event, the writer's whole time at a few thousand events a
//! second); arrays bound as parameters and expanded with `unnest` cost one per table.
//!
//! 1. Dedupe lookup: for each event, the newest stored event of its (source, `messageId`) within
//!    the window (one `LATERAL` probe per event, inside one statement).
//! 2. Decide, in order, which events are duplicates: of a stored event, or of an earlier event of
//!    the same group (exactly what one lookup per event in sequence would find).
//! 3. Draw the ids of the new events and jobs from their sequences (one statement each), so that
//!    jobs, transitions and discards can refer to their event without a round trip per event.
//! 4. Insert events, duplicates, jobs (with their first transition and queue row), discards.

use std::collections::HashMap;

use junction_store::{CommitOutcome, Counts, EventId, JobId, JobState, NewEvent, UnixMillis};
use sqlx::{PgConnection, Row};

use crate::encode_headers;
use crate::error::Error;
use crate::generations::{self, Sealed};
use crate::rollup::Rollup;

/// What an event of the group turned out to be.
enum Decision {
    /// Stored, as the n-th new event of the group.
    Stored(usize),
    /// A duplicate of a stored event.
    DuplicateOfStored(i64),
    /// A duplicate of the n-th new event of the group.
    DuplicateInGroup(usize),
}

/// Stores the events of `requests` (one slice per commit request, in group order) and answers
/// each request's outcomes.
pub(crate) async fn commit_group(
    conn: &mut PgConnection,
    requests: &[&[NewEvent]],
    now: UnixMillis,
    dedupe_window_ms: i64,
    sealed: &[Sealed],
    totals: &mut Counts,
    rollup: &mut Rollup,
) -> Result<Vec<Vec<CommitOutcome>>, Error> {
    let events: Vec<&NewEvent> = requests.iter().flat_map(|events| events.iter()).collect();
    if events.is_empty() {
        return Ok(requests.iter().map(|_| Vec::new()).collect());
    }
    let stored_originals = if dedupe_window_ms > 0 {
        lookup_originals(conn, &events, dedupe_window_ms, sealed).await?
    } else {
        vec![None; events.len()]
    };

    // Sequential semantics: an earlier event of the group with the same key, within the window,
    // is newer than any stored one (its id is drawn after the key's lock was taken).
    let mut decisions = Vec::with_capacity(events.len());
    let mut new_events: Vec<&NewEvent> = Vec::new();
    let mut in_group: HashMap<(&str, &str), Vec<(usize, UnixMillis)>> = HashMap::new();
    for (event, stored) in events.iter().zip(&stored_originals) {
        let key = (event.source_id.as_str(), event.message_id.as_str());
        let earlier = (dedupe_window_ms > 0)
            .then(|| in_group.get(&key))
            .flatten()
            .and_then(|earlier| {
                earlier.iter().rev().find(|(_, received_at)| {
                    received_at.abs_diff(event.received_at) < dedupe_window_ms.unsigned_abs()
                })
            });
        let decision = match (earlier, stored) {
            (Some((index, _)), _) => Decision::DuplicateInGroup(*index),
            (None, Some(original)) => Decision::DuplicateOfStored(*original),
            (None, None) => {
                let index = new_events.len();
                new_events.push(event);
                in_group
                    .entry(key)
                    .or_default()
                    .push((index, event.received_at));
                Decision::Stored(index)
            }
        };
        decisions.push(decision);
    }

    let event_ids = draw_ids(conn, "events", new_events.len()).await?;
    let job_count: usize = new_events.iter().map(|event| event.jobs.len()).sum();
    let job_ids = draw_ids(conn, "jobs", job_count).await?;

    insert_events(conn, &new_events, &event_ids).await?;
    let duplicates: Vec<(i64, UnixMillis)> = decisions
        .iter()
        .zip(&events)
        .filter_map(|(decision, event)| match decision {
            Decision::Stored(_) => None,
            Decision::DuplicateOfStored(original) => Some((*original, event.received_at)),
            Decision::DuplicateInGroup(index) => {
                event_ids.get(*index).map(|id| (*id, event.received_at))
            }
        })
        .collect();
    insert_duplicates(conn, &duplicates).await?;
    insert_jobs(conn, &new_events, &event_ids, &job_ids, now).await?;
    insert_discards(conn, &new_events, &event_ids).await?;

    // Answers, request by request, with each new event's job ids in order.
    let mut jobs_of: Vec<Vec<JobId>> = Vec::with_capacity(new_events.len());
    let mut next_job = job_ids.iter();
    for event in &new_events {
        jobs_of.push(
            next_job
                .by_ref()
                .take(event.jobs.len())
                .map(|id| JobId(*id))
                .collect(),
        );
        rollup.add_event(event);
        totals.events += 1;
        totals.jobs += event.jobs.len() as u64;
        totals.discards += event.discards.len() as u64;
    }
    totals.duplicates += duplicates.len() as u64;
    let mut decisions = decisions.into_iter();
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests {
        let mut outcomes = Vec::with_capacity(request.len());
        for decision in decisions.by_ref().take(request.len()) {
            let missing = || Error::Corrupt("an id drawn for the group is missing".to_owned());
            outcomes.push(match decision {
                Decision::Stored(index) => CommitOutcome::Stored {
                    event_id: EventId(*event_ids.get(index).ok_or_else(missing)?),
                    job_ids: jobs_of
                        .get_mut(index)
                        .map(std::mem::take)
                        .unwrap_or_default(),
                },
                Decision::DuplicateOfStored(original) => CommitOutcome::Duplicate {
                    original: EventId(original),
                },
                Decision::DuplicateInGroup(index) => CommitOutcome::Duplicate {
                    original: EventId(*event_ids.get(index).ok_or_else(missing)?),
                },
            });
        }
        answers.push(outcomes);
    }
    Ok(answers)
}

/// For each event, the newest stored event with its key within the dedupe window.
async fn lookup_originals(
    conn: &mut PgConnection,
    events: &[&NewEvent],
    window: i64,
    sealed: &[Sealed],
) -> Result<Vec<Option<i64>>, Error> {
    let sources: Vec<&str> = events.iter().map(|e| e.source_id.as_str()).collect();
    let messages: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
    let received: Vec<i64> = events.iter().map(|e| e.received_at).collect();
    // The id bound skips the partitions of generations sealed before the window: without it each
    // probe would visit every partition's index.
    let bounds: Vec<i64> = events
        .iter()
        .map(|e| generations::first_id_received_after(sealed, e.received_at.saturating_sub(window)))
        .collect();
    let rows = sqlx::query(
        "SELECT t.n, (
             SELECT events.id FROM events
             WHERE events.source_id = t.s AND events.message_id = t.m
               AND events.received_at > t.r - $5 AND events.received_at < t.r + $5
               AND events.id >= t.b
             ORDER BY events.id DESC LIMIT 1
         )
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
              WITH ORDINALITY AS t (s, m, r, b, n)",
    )
    .bind(&sources)
    .bind(&messages)
    .bind(&received)
    .bind(&bounds)
    .bind(window)
    .fetch_all(&mut *conn)
    .await?;
    let mut originals = vec![None; events.len()];
    for row in rows {
        let n: i64 = row.try_get(0)?;
        let slot = usize::try_from(n - 1)
            .ok()
            .and_then(|index| originals.get_mut(index))
            .ok_or_else(|| Error::Corrupt(format!("dedupe lookup answered row {n}")))?;
        *slot = row.try_get(1)?;
    }
    Ok(originals)
}

/// Draws `count` ids from `table`'s identity sequence, in increasing order.
async fn draw_ids(conn: &mut PgConnection, table: &str, count: usize) -> Result<Vec<i64>, Error> {
    if count == 0 {
        return Ok(Vec::new());
    }
    // The sequence is looked up once: in the select list `pg_get_serial_sequence` would run for
    // every id drawn, a catalogue scan each (5 µs per id against 0.7 µs, measured).
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "WITH seq AS MATERIALIZED (SELECT pg_get_serial_sequence($1, 'id')::regclass AS id)
         SELECT nextval(seq.id) FROM seq, generate_series(1, $2)",
    )
    .bind(table)
    .bind(i64::try_from(count).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    ids.sort_unstable();
    if ids.len() != count {
        return Err(Error::Corrupt(format!(
            "drew {} ids from {table}'s sequence, wanted {count}",
            ids.len()
        )));
    }
    Ok(ids)
}

async fn insert_events(
    conn: &mut PgConnection,
    events: &[&NewEvent],
    ids: &[i64],
) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    let sources: Vec<&str> = events.iter().map(|e| e.source_id.as_str()).collect();
    let messages: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
    let received: Vec<i64> = events.iter().map(|e| e.received_at).collect();
    let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload.as_slice()).collect();
    sqlx::query(
        "INSERT INTO events (id, source_id, message_id, received_at, payload)
         OVERRIDING SYSTEM VALUE
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bytea[])",
    )
    .bind(ids)
    .bind(&sources)
    .bind(&messages)
    .bind(&received)
    .bind(&payloads)
    .execute(&mut *conn)
    .await?;
    let inbox: Vec<i64> = events
        .iter()
        .zip(ids)
        .filter(|(event, _)| event.for_profiles)
        .map(|(_, id)| *id)
        .collect();
    if !inbox.is_empty() {
        sqlx::query("INSERT INTO profile_inbox (event_id) SELECT * FROM unnest($1::bigint[])")
            .bind(&inbox)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn insert_duplicates(
    conn: &mut PgConnection,
    duplicates: &[(i64, UnixMillis)],
) -> Result<(), Error> {
    if duplicates.is_empty() {
        return Ok(());
    }
    let (originals, received): (Vec<i64>, Vec<i64>) = duplicates.iter().copied().unzip();
    sqlx::query(
        "INSERT INTO event_duplicates (event_id, received_at)
         SELECT * FROM unnest($1::bigint[], $2::bigint[])",
    )
    .bind(&originals)
    .bind(&received)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts the new events' jobs, each with its initial `pending` transition and its queue row,
/// in one statement (data-modifying CTEs).
async fn insert_jobs(
    conn: &mut PgConnection,
    events: &[&NewEvent],
    event_ids: &[i64],
    job_ids: &[i64],
    now: UnixMillis,
) -> Result<(), Error> {
    if job_ids.is_empty() {
        return Ok(());
    }
    let mut of_event = Vec::with_capacity(job_ids.len());
    let (mut destinations, mut subscriptions, mut endpoints) = (Vec::new(), Vec::new(), Vec::new());
    let (mut methods, mut urls, mut headers, mut bodies) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (event, event_id) in events.iter().zip(event_ids) {
        for job in &event.jobs {
            of_event.push(*event_id);
            destinations.push(job.destination_id.as_str());
            subscriptions.push(job.subscription_id.as_str());
            endpoints.push(job.endpoint.as_str());
            methods.push(job.method.as_str());
            urls.push(job.url.to_stored());
            headers.push(encode_headers(&job.headers)?);
            bodies.push(job.body.as_slice());
        }
    }
    sqlx::query(
        "WITH job AS (
             INSERT INTO jobs (id, event_id, destination_id, subscription_id, endpoint, method,
                               url, headers, body, created_at)
             OVERRIDING SYSTEM VALUE
             SELECT t.*, $10 FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[],
                                         $5::text[], $6::text[], $7::text[], $8::text[],
                                         $9::bytea[]) AS t
             RETURNING id, event_id, endpoint, created_at
         ), transition AS (
             INSERT INTO job_transitions (job_id, seq, state, at, next_at, attempt, detail,
                                          event_id)
             SELECT id, 0, $11, created_at, created_at, 0, NULL, event_id FROM job
         )
         INSERT INTO job_queue (job_id, endpoint, next_at, attempt, last_seq, event_id)
         SELECT id, endpoint, created_at, 0, 0, event_id FROM job",
    )
    .bind(job_ids)
    .bind(&of_event)
    .bind(&destinations)
    .bind(&subscriptions)
    .bind(&endpoints)
    .bind(&methods)
    .bind(urls.iter().map(AsRef::as_ref).collect::<Vec<&str>>())
    .bind(&headers)
    .bind(&bodies)
    .bind(now)
    .bind(JobState::Pending.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_discards(
    conn: &mut PgConnection,
    events: &[&NewEvent],
    event_ids: &[i64],
) -> Result<(), Error> {
    let mut of_event = Vec::new();
    let (mut destinations, mut subscriptions, mut reasons, mut messages) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (event, event_id) in events.iter().zip(event_ids) {
        for discard in &event.discards {
            of_event.push(*event_id);
            destinations.push(discard.destination_id.as_str());
            subscriptions.push(discard.subscription_id.as_deref());
            reasons.push(discard.reason.as_str());
            messages.push(discard.message.as_str());
        }
    }
    if of_event.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO discards (event_id, destination_id, subscription_id, reason, message)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])",
    )
    .bind(&of_event)
    .bind(&destinations)
    .bind(&subscriptions)
    .bind(&reasons)
    .bind(&messages)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
