//! Deleting and suppressing a person (see `junction_store::NewRegulation`): the regulations, the
//! suppression list and the secret are read on the reader pool; their writes and the deletion of
//! events run on the writer thread, inside its transaction.

use junction_store::{
    DeletedEvents, EventId, NewRegulation, RegulationStatus, RegulationUpdate, StoreError,
    StoredRegulation, Suppression,
};
use rusqlite::{Connection, Row};

use crate::error::Error;

/// A write of this module, queued like a commit and written in the same group transaction.
pub(crate) enum PrivacyWrite {
    /// See `Store::privacy_secret`.
    Secret(Vec<u8>),
    /// See `Store::create_regulation`.
    Create(NewRegulation),
    /// See `Store::update_regulation`.
    Update(RegulationUpdate),
    /// See `Store::delete_events`.
    Delete(Vec<EventId>),
}

/// What a [`PrivacyWrite`] answers once its transaction committed.
pub(crate) enum PrivacyAnswer {
    Secret(Vec<u8>),
    Created(StoredRegulation),
    Updated,
    Deleted(DeletedEvents),
}

impl PrivacyWrite {
    /// Runs it inside the writer's open transaction.
    pub(crate) fn write(&self, conn: &Connection) -> Result<PrivacyAnswer, Error> {
        Ok(match self {
            PrivacyWrite::Secret(candidate) => PrivacyAnswer::Secret(secret(conn, candidate)?),
            PrivacyWrite::Create(regulation) => PrivacyAnswer::Created(create(conn, regulation)?),
            PrivacyWrite::Update(update) => {
                self::update(conn, update)?;
                PrivacyAnswer::Updated
            }
            PrivacyWrite::Delete(ids) => PrivacyAnswer::Deleted(delete(conn, ids)?),
        })
    }
}

const COLUMNS: &str = "id, kind, status, created_at, finished_at, record, request";

fn json(text: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(text).map_err(|err| Error::Corrupt(format!("regulation document: {err}")))
}

fn text(value: &serde_json::Value) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|err| Error::Store(StoreError::Backend(Box::new(err))))
}

/// The raw columns of a regulation row, decoded by [`regulation`] outside rusqlite's closure.
type RegulationRow = (
    i64,
    String,
    String,
    i64,
    Option<i64>,
    String,
    Option<String>,
);

fn row(row: &Row<'_>) -> rusqlite::Result<RegulationRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn regulation(row: RegulationRow) -> Result<StoredRegulation, Error> {
    let (id, kind, status, created_at, finished_at, record, request) = row;
    Ok(StoredRegulation {
        id,
        kind,
        status: RegulationStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("regulation {id}: status {status:?}")))?,
        created_at,
        finished_at,
        record: json(&record)?,
        request: request.as_deref().map(json).transpose()?,
    })
}

fn select(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<StoredRegulation>, Error> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows: Vec<RegulationRow> = statement
        .query_map(params, row)?
        .collect::<Result<_, _>>()?;
    rows.into_iter().map(regulation).collect()
}

/// See `Store::regulations`.
pub(crate) fn list(conn: &mut Connection, limit: usize) -> Result<Vec<StoredRegulation>, Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    select(
        conn,
        &format!("SELECT {COLUMNS} FROM regulations ORDER BY id DESC LIMIT ?1"),
        [limit],
    )
}

/// See `Store::regulation`.
pub(crate) fn one(conn: &mut Connection, id: i64) -> Result<Option<StoredRegulation>, Error> {
    Ok(select(
        conn,
        &format!("SELECT {COLUMNS} FROM regulations WHERE id = ?1"),
        [id],
    )?
    .pop())
}

/// See `Store::pending_regulations`.
pub(crate) fn pending(conn: &mut Connection) -> Result<Vec<StoredRegulation>, Error> {
    select(
        conn,
        &format!("SELECT {COLUMNS} FROM regulations WHERE request IS NOT NULL ORDER BY id"),
        [],
    )
}

/// See `Store::suppressions`.
pub(crate) fn suppressions(conn: &mut Connection) -> Result<Vec<Suppression>, Error> {
    let mut statement =
        conn.prepare_cached("SELECT hash, regulation_id FROM suppressions ORDER BY hash")?;
    let rows = statement.query_map([], |row| {
        Ok(Suppression {
            hash: row.get(0)?,
            regulation_id: row.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn secret(conn: &Connection, candidate: &[u8]) -> Result<Vec<u8>, Error> {
    conn.prepare_cached("INSERT OR IGNORE INTO privacy_secret (id, secret) VALUES (1, ?1)")?
        .execute([candidate])?;
    Ok(conn
        .prepare_cached("SELECT secret FROM privacy_secret WHERE id = 1")?
        .query_row([], |row| row.get(0))?)
}

fn create(conn: &Connection, new: &NewRegulation) -> Result<StoredRegulation, Error> {
    conn.prepare_cached(
        "INSERT INTO regulations (kind, status, created_at, record, request)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute((
        &new.kind,
        RegulationStatus::Initialized.as_str(),
        new.created_at,
        text(&new.record)?,
        text(&new.request)?,
    ))?;
    Ok(StoredRegulation {
        id: conn.last_insert_rowid(),
        kind: new.kind.clone(),
        status: RegulationStatus::Initialized,
        created_at: new.created_at,
        finished_at: None,
        record: new.record.clone(),
        request: Some(new.request.clone()),
    })
}

fn update(conn: &Connection, update: &RegulationUpdate) -> Result<(), Error> {
    // The request (identifiers in clear) goes as soon as the regulation is done.
    let changed = conn
        .prepare_cached(
            "UPDATE regulations SET status = ?2, finished_at = ?3, record = ?4,
                 request = CASE WHEN ?5 THEN NULL ELSE request END
             WHERE id = ?1",
        )?
        .execute((
            update.id,
            update.status.as_str(),
            update.finished_at,
            text(&update.record)?,
            update.status.is_done(),
        ))?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: format!("regulation {}", update.id),
        }
        .into());
    }
    let mut add = conn.prepare_cached(
        "INSERT INTO suppressions (hash, regulation_id) VALUES (?1, ?2)
         ON CONFLICT (hash) DO UPDATE SET regulation_id = excluded.regulation_id",
    )?;
    for hash in &update.suppress {
        add.execute((hash, update.id))?;
    }
    let mut remove = conn.prepare_cached("DELETE FROM suppressions WHERE hash = ?1")?;
    for hash in &update.unsuppress {
        remove.execute([hash])?;
    }
    Ok(())
}

fn delete(conn: &Connection, ids: &[EventId]) -> Result<DeletedEvents, Error> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS privacy_doomed (event_id INTEGER PRIMARY KEY);
         DELETE FROM temp.privacy_doomed;",
    )?;
    {
        let mut doom = conn
            .prepare_cached("INSERT OR IGNORE INTO temp.privacy_doomed (event_id) VALUES (?1)")?;
        for id in ids {
            doom.execute([id.0])?;
        }
    }
    let doomed_jobs =
        "SELECT id FROM jobs WHERE event_id IN (SELECT event_id FROM temp.privacy_doomed)";
    let cancelled: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM job_queue WHERE job_id IN ({doomed_jobs})"
        ))?
        .query_row([], |row| row.get(0))?;
    // Cancelled jobs that were awaiting a retry leave the overview's gauge (see
    // `junction_store::rollup::awaiting_retry_delta`: a queued job with a completion counts).
    conn.prepare_cached(&format!(
        "INSERT INTO overview_gauges (destination_id, subscription_id, awaiting_retry)
         SELECT jobs.destination_id, jobs.subscription_id, -count(*)
         FROM job_queue JOIN jobs ON jobs.id = job_queue.job_id
         WHERE job_queue.last_seq > 0 AND job_queue.job_id IN ({doomed_jobs})
         GROUP BY jobs.destination_id, jobs.subscription_id
         ON CONFLICT (destination_id, subscription_id)
         DO UPDATE SET awaiting_retry = awaiting_retry + excluded.awaiting_retry"
    ))?
    .execute([])?;
    for table in [
        "job_attempts",
        "job_transitions",
        "dead_letter",
        "job_queue",
    ] {
        conn.prepare_cached(&format!(
            "DELETE FROM {table} WHERE job_id IN ({doomed_jobs})"
        ))?
        .execute([])?;
    }
    let mut jobs = 0;
    for table in ["jobs", "discards", "event_duplicates", "profile_inbox"] {
        let removed = conn
            .prepare_cached(&format!(
                "DELETE FROM {table}
                 WHERE event_id IN (SELECT event_id FROM temp.privacy_doomed)"
            ))?
            .execute([])?;
        if table == "jobs" {
            jobs = removed;
        }
    }
    let events = conn
        .prepare_cached(
            "DELETE FROM events WHERE id IN (SELECT event_id FROM temp.privacy_doomed)",
        )?
        .execute([])?;
    Ok(DeletedEvents {
        events: events as u64,
        jobs: jobs as u64,
        jobs_cancelled: u64::try_from(cancelled).unwrap_or(0),
    })
}
