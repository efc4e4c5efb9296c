//! Deleting and suppressing a person (see `junction_store::NewRegulation`): regulations, the
//! suppression list, the secret that keys its hashes, and the deletion of events with
//! everything recorded about them, partitions included (each statement names the event ids, so
//! it reaches only their partitions).

use junction_store::{
    DeletedEvents, EventId, NewRegulation, RegulationStatus, RegulationUpdate, StoreError,
    StoredRegulation, Suppression,
};
use sqlx::PgPool;

use crate::error::Error;

const COLUMNS: &str = "id, kind, status, created_at, finished_at, record, request";

/// The raw columns of a regulation row.
type RegulationRow = (
    i64,
    String,
    String,
    i64,
    Option<i64>,
    String,
    Option<String>,
);

fn json(text: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(text).map_err(|err| Error::Corrupt(format!("regulation document: {err}")))
}

fn text(value: &serde_json::Value) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|err| Error::Store(StoreError::Backend(Box::new(err))))
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

/// See `Store::privacy_secret`.
pub(crate) async fn secret(pool: &PgPool, candidate: &[u8]) -> Result<Vec<u8>, Error> {
    // Two nodes starting at once both offer theirs; the first insert wins and both read it.
    sqlx::query(
        "INSERT INTO privacy_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
    )
    .bind(candidate)
    .execute(pool)
    .await?;
    Ok(
        sqlx::query_scalar("SELECT secret FROM privacy_secret WHERE id = 1")
            .fetch_one(pool)
            .await?,
    )
}

/// See `Store::create_regulation`.
pub(crate) async fn create(pool: &PgPool, new: &NewRegulation) -> Result<StoredRegulation, Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO regulations (kind, status, created_at, record, request)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&new.kind)
    .bind(RegulationStatus::Initialized.as_str())
    .bind(new.created_at)
    .bind(text(&new.record)?)
    .bind(text(&new.request)?)
    .fetch_one(pool)
    .await?;
    Ok(StoredRegulation {
        id,
        kind: new.kind.clone(),
        status: RegulationStatus::Initialized,
        created_at: new.created_at,
        finished_at: None,
        record: new.record.clone(),
        request: Some(new.request.clone()),
    })
}

/// See `Store::regulations`.
pub(crate) async fn list(pool: &PgPool, limit: usize) -> Result<Vec<StoredRegulation>, Error> {
    let rows: Vec<RegulationRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM regulations ORDER BY id DESC LIMIT $1"
    ))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(regulation).collect()
}

/// See `Store::regulation`.
pub(crate) async fn one(pool: &PgPool, id: i64) -> Result<Option<StoredRegulation>, Error> {
    let row: Option<RegulationRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM regulations WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(regulation).transpose()
}

/// See `Store::pending_regulations`.
pub(crate) async fn pending(pool: &PgPool) -> Result<Vec<StoredRegulation>, Error> {
    let rows: Vec<RegulationRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM regulations WHERE request IS NOT NULL ORDER BY id"
    ))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(regulation).collect()
}

/// See `Store::update_regulation`.
pub(crate) async fn update(pool: &PgPool, update: &RegulationUpdate) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    // The request (identifiers in clear) goes as soon as the regulation is done.
    let changed = sqlx::query(
        "UPDATE regulations SET status = $2, finished_at = $3, record = $4,
             request = CASE WHEN $5 THEN NULL ELSE request END
         WHERE id = $1",
    )
    .bind(update.id)
    .bind(update.status.as_str())
    .bind(update.finished_at)
    .bind(text(&update.record)?)
    .bind(update.status.is_done())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: format!("regulation {}", update.id),
        }
        .into());
    }
    sqlx::query(
        "INSERT INTO suppressions (hash, regulation_id) SELECT h, $2 FROM unnest($1::text[]) h
         ON CONFLICT (hash) DO UPDATE SET regulation_id = excluded.regulation_id",
    )
    .bind(&update.suppress)
    .bind(update.id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM suppressions WHERE hash = ANY($1)")
        .bind(&update.unsuppress)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// See `Store::suppressions`.
pub(crate) async fn suppressions(pool: &PgPool) -> Result<Vec<Suppression>, Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT hash, regulation_id FROM suppressions ORDER BY hash")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(hash, regulation_id)| Suppression {
            hash,
            regulation_id,
        })
        .collect())
}

/// See `Store::delete_events`. One transaction; every event-scoped table is reached by
/// `event_id = ANY(…)`, so the planner prunes to the partitions holding those ids.
pub(crate) async fn delete(pool: &PgPool, ids: &[EventId]) -> Result<DeletedEvents, Error> {
    let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
    let mut tx = pool.begin().await?;
    let jobs: Vec<i64> = sqlx::query_scalar("SELECT id FROM jobs WHERE event_id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
    // Cancelled jobs that were awaiting a retry leave the overview's gauge (a queued job with a
    // completion counts); the gauge is sharded and summed, so one negative row per key does.
    sqlx::query(
        "INSERT INTO overview_gauges (destination_id, subscription_id, awaiting_retry, shard)
         SELECT jobs.destination_id, jobs.subscription_id, -count(*), 0
         FROM job_queue JOIN jobs ON jobs.id = job_queue.job_id
                                 AND jobs.event_id = job_queue.event_id
         WHERE job_queue.last_seq > 0 AND job_queue.event_id = ANY($1)
         GROUP BY jobs.destination_id, jobs.subscription_id
         ON CONFLICT (destination_id, subscription_id, shard)
         DO UPDATE SET awaiting_retry = overview_gauges.awaiting_retry
                                        + excluded.awaiting_retry",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    let cancelled = sqlx::query("DELETE FROM job_queue WHERE event_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM dead_letter WHERE job_id = ANY($1)")
        .bind(&jobs)
        .execute(&mut *tx)
        .await?;
    for table in [
        "job_attempts",
        "job_transitions",
        "jobs",
        "discards",
        "event_duplicates",
        "profile_inbox",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE event_id = ANY($1)"))
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
    }
    let events = sqlx::query("DELETE FROM events WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(DeletedEvents {
        events,
        jobs: u64::try_from(jobs.len()).unwrap_or(u64::MAX),
        jobs_cancelled: cancelled,
    })
}
