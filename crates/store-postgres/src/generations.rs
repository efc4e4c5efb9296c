//! Generations: the event-scoped tables are range-partitioned by event id, one partition of each
//! per generation (a fixed number of ids). Partitions are created ahead of the ids the writer
//! draws, and retention drops a whole generation once nothing in it is young or still queued.

use junction_store::UnixMillis;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::error::Error;
use crate::now_ms;

/// The event-scoped tables: a generation has one partition of each, named `<table>_g<n>`
/// (`junction_create_generation` in migration 3 creates them).
const PARTITIONED: [&str; 6] = [
    "events",
    "event_duplicates",
    "discards",
    "jobs",
    "job_transitions",
    "job_attempts",
];

/// Serialises the creation of generations across nodes (an arbitrary constant).
const CREATE_LOCK: i64 = 0x6a75_6e63_0000_0001;
/// Serialises drops across nodes; a node that finds it taken skips dropping in that pass.
const DROP_LOCK: i64 = 0x6a75_6e63_0000_0002;

/// How long a drop waits for the exclusive lock on the tables before trying again in a later
/// pass: every query on the tables queues behind a waiting exclusive lock, so the wait is kept
/// short, and below `deadlock_timeout` (1 s by default) so that a lock-order conflict with a
/// delivery transaction costs the drop, never the delivery.
const DROP_LOCK_TIMEOUT: &str = "500ms";

/// One row of `event_generations`: the event ids `[first_id, end_id)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Generation {
    number: i64,
    first_id: i64,
    end_id: i64,
}

impl Generation {
    fn partition(&self, table: &str) -> String {
        format!("{table}_g{}", self.number)
    }
}

/// The id the events sequence issues next. Ids below it may still be in flight (drawn by a
/// transaction not yet committed); none at or above it is.
pub(crate) async fn next_event_id(conn: &mut PgConnection) -> Result<i64, Error> {
    let next: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM events_id_seq",
    )
    .fetch_one(conn)
    .await?;
    Ok(next)
}

/// Creates generations of `size` ids until the partitions cover every id below `upto`; returns
/// where they end. Nodes serialise on an advisory lock, so each generation is created once.
pub(crate) async fn ensure(pool: &PgPool, size: i64, upto: i64) -> Result<i64, Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CREATE_LOCK)
        .execute(&mut *tx)
        .await?;
    let newest = sqlx::query(
        "SELECT generation, end_id FROM event_generations ORDER BY generation DESC LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await?;
    // Read the sequence before the clock: a generation it has passed was sealed before `now`.
    let next = next_event_id(&mut tx).await?;
    sqlx::query(
        "UPDATE event_generations SET sealed_at = $2 WHERE sealed_at IS NULL AND end_id <= $1",
    )
    .bind(next)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let (mut number, mut end) = match newest {
        Some(row) => (row.try_get::<i64, _>(0)? + 1, row.try_get::<i64, _>(1)?),
        None => (0, 1),
    };
    let size = size.max(1);
    while end < upto {
        let first = end;
        end = first.saturating_add(size);
        sqlx::query("SELECT junction_create_generation($1, $2, $3)")
            .bind(number)
            .bind(first)
            .bind(end)
            .execute(&mut *tx)
            .await?;
        tracing::debug!(generation = number, first, end, "created a generation");
        number += 1;
    }
    tx.commit().await?;
    Ok(end)
}

/// Every generation, oldest first.
pub(crate) async fn list(conn: &mut PgConnection) -> Result<Vec<Generation>, Error> {
    let rows = sqlx::query(
        "SELECT generation, first_id, end_id FROM event_generations ORDER BY generation",
    )
    .fetch_all(conn)
    .await?;
    rows.iter().map(generation_from_row).collect()
}

fn generation_from_row(row: &PgRow) -> Result<Generation, Error> {
    Ok(Generation {
        number: row.try_get(0)?,
        first_id: row.try_get(1)?,
        end_id: row.try_get(2)?,
    })
}

/// A generation seen sealed: every event in it was received before `sealed_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sealed {
    first_id: i64,
    end_id: i64,
    sealed_at: UnixMillis,
}

/// How far apart the clocks of the nodes may be: `sealed_at` and `received_at` come from
/// different nodes' clocks.
const CLOCK_SKEW_MS: i64 = 60_000;

/// The generations seen sealed, oldest first.
pub(crate) async fn sealed(pool: &PgPool) -> Result<Vec<Sealed>, Error> {
    let rows = sqlx::query(
        "SELECT first_id, end_id, sealed_at FROM event_generations
         WHERE sealed_at IS NOT NULL ORDER BY generation",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Sealed {
                first_id: row.try_get(0)?,
                end_id: row.try_get(1)?,
                sealed_at: row.try_get(2)?,
            })
        })
        .collect()
}

/// The lowest event id that may belong to an event received after `after`: generations sealed
/// before then (allowing for clock skew) hold none, so a dedupe lookup skips their partitions.
pub(crate) fn first_id_received_after(sealed: &[Sealed], after: UnixMillis) -> i64 {
    let after = after.saturating_sub(CLOCK_SKEW_MS);
    sealed
        .iter()
        .find(|generation| generation.sealed_at > after)
        .map_or_else(
            || sealed.last().map_or(0, |newest| newest.end_id),
            |generation| generation.first_id,
        )
}

/// The first id of the generation `next_id` falls in: the one being written, which retention
/// prunes row-wise (all older ones are sealed and only ever dropped whole).
pub(crate) fn current_first_id(generations: &[Generation], next_id: i64) -> i64 {
    generations
        .iter()
        .find(|g| g.first_id <= next_id && next_id < g.end_id)
        .map_or(next_id, |g| g.first_id)
}

/// Drops the oldest sealed generation that can go: every event received before `before` and no
/// job queued. Returns the events it held, or `None` when no generation could go in this pass.
pub(crate) async fn drop_one(
    pool: &PgPool,
    generations: &[Generation],
    next_id: i64,
    before: UnixMillis,
) -> Result<Option<u64>, Error> {
    for generation in generations.iter().filter(|g| g.end_id <= next_id) {
        // A first look without locks: cheap index probes, and most passes stop here.
        let verdict = match verdict(&mut *pool.acquire().await?, generation, before).await {
            // Another node dropped it since the list was read.
            Err(Error::Sql(err)) if is_undefined_table(&err) => continue,
            other => other?,
        };
        match verdict {
            // Ids follow commit order, so the newer generations are younger still.
            Verdict::TooYoung => break,
            Verdict::Pinned => continue,
            Verdict::Droppable => {}
        }
        match drop_generation(pool, generation, before).await {
            Ok(Some(events)) => return Ok(Some(events)),
            Ok(None) => {}
            Err(Error::Sql(err)) if is_undefined_table(&err) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(None)
}

/// Whether a generation can be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// It holds an event received at or after the cutoff.
    TooYoung,
    /// One of its jobs is still queued (a job not yet terminal, or a replay of one).
    Pinned,
    /// Neither.
    Droppable,
}

async fn verdict(
    conn: &mut PgConnection,
    generation: &Generation,
    before: UnixMillis,
) -> Result<Verdict, Error> {
    let newest: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT max(received_at) FROM {}",
        generation.partition("events")
    ))
    .fetch_one(&mut *conn)
    .await?;
    if newest.is_some_and(|newest| newest >= before) {
        return Ok(Verdict::TooYoung);
    }
    let queued: bool = sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM job_queue JOIN {jobs} j ON j.id = job_queue.job_id)",
        jobs = generation.partition("jobs")
    ))
    .fetch_one(&mut *conn)
    .await?;
    Ok(if queued {
        Verdict::Pinned
    } else {
        Verdict::Droppable
    })
}

/// Drops one generation in a short transaction holding the parents' exclusive lock (which
/// dropping a partition needs): the checks are repeated under it, since a commit or replay in
/// flight during the first look has finished by then. `None` when the generation must stay, or
/// when the lock did not come in time.
async fn drop_generation(
    pool: &PgPool,
    generation: &Generation,
    before: UnixMillis,
) -> Result<Option<u64>, Error> {
    let jobs = generation.partition("jobs");
    // Counted and cleaned before the lock is taken, so that the lock is held for milliseconds
    // whatever the generation's size. Dead-letter rows (unpartitioned) go with their jobs.
    let events: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {}",
        generation.partition("events")
    ))
    .fetch_one(pool)
    .await?;
    sqlx::query(&format!(
        "DELETE FROM dead_letter USING {jobs} j WHERE j.id = dead_letter.job_id"
    ))
    .execute(pool)
    .await?;

    match drop_locked(pool, generation, before).await {
        Ok(false) => Ok(None),
        Ok(true) => {
            tracing::info!(
                generation = generation.number,
                first_id = generation.first_id,
                end_id = generation.end_id,
                events,
                "retention dropped a generation"
            );
            Ok(Some(u64::try_from(events).unwrap_or(0)))
        }
        // Any lock wait of the transaction (the tables, or a row of `event_generations` another
        // node's maintenance holds) gives up after the timeout.
        Err(Error::Sql(err)) if is_lock_timeout(&err) => {
            tracing::info!(
                generation = generation.number,
                "retention: the tables are busy; the generation is dropped in a later pass"
            );
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// The transaction of [`drop_generation`]; whether it dropped the generation.
async fn drop_locked(
    pool: &PgPool,
    generation: &Generation,
    before: UnixMillis,
) -> Result<bool, Error> {
    let mut tx = pool.begin().await?;
    let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(DROP_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !mine {
        return Ok(false);
    }
    sqlx::query(&format!("SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'"))
        .execute(&mut *tx)
        .await?;
    let parents = PARTITIONED.map(|table| format!("ONLY {table}")).join(", ");
    sqlx::query(&format!("LOCK TABLE {parents} IN ACCESS EXCLUSIVE MODE"))
        .execute(&mut *tx)
        .await?;
    // Another node may have dropped it meanwhile.
    let still_there: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM event_generations WHERE generation = $1)")
            .bind(generation.number)
            .fetch_one(&mut *tx)
            .await?;
    if !still_there || verdict(&mut tx, generation, before).await? != Verdict::Droppable {
        return Ok(false);
    }
    sqlx::query("DELETE FROM event_generations WHERE generation = $1")
        .bind(generation.number)
        .execute(&mut *tx)
        .await?;
    let partitions = PARTITIONED
        .map(|table| generation.partition(table))
        .join(", ");
    sqlx::query(&format!("DROP TABLE {partitions}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// `undefined_table`.
fn is_undefined_table(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01"))
}

/// `lock_not_available`: a `lock_timeout` expired.
fn is_lock_timeout(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03"))
}
