//! Profiles (see `junction_store::ProfileCheckpoint`). The worker's lead is a lease in the
//! `profile_worker` row, on the database's clock: a checkpoint locks that row and is written only
//! while its owner still holds the lease, so two nodes never both advance the profiles.

use junction_store::{EventId, ProfileCheckpoint, StoreError, StoredEvent, StoredProfile};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::error::Error;

/// The database's clock in milliseconds, as the lease compares it.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn sql_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn stored_event(row: &PgRow) -> Result<StoredEvent, Error> {
    Ok(StoredEvent {
        id: EventId(row.try_get(0)?),
        source_id: row.try_get(1)?,
        received_at: row.try_get(2)?,
        payload: row.try_get(3)?,
    })
}

/// See `Store::profile_inbox`.
pub(crate) async fn inbox(pool: &PgPool, limit: usize) -> Result<Vec<StoredEvent>, Error> {
    // The bound on `e.id` is what the planner cannot infer: without it the merge join reads the
    // events partition from its start up to the inbox's first event at every call, a walk that
    // grows with the generation (15 ms a call 36,000 events into one, measured).
    let rows = sqlx::query(
        "SELECT e.id, e.source_id, e.received_at, e.payload
         FROM profile_inbox i JOIN events e ON e.id = i.event_id
         WHERE e.id >= (SELECT min(event_id) FROM profile_inbox)
         ORDER BY i.event_id LIMIT $1",
    )
    .bind(sql_limit(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(stored_event).collect()
}

/// See `Store::stored_events`.
pub(crate) async fn events_after(
    pool: &PgPool,
    after: EventId,
    limit: usize,
) -> Result<Vec<StoredEvent>, Error> {
    let rows = sqlx::query(
        "SELECT id, source_id, received_at, payload FROM events
         WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after.0)
    .bind(sql_limit(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(stored_event).collect()
}

/// See `Store::last_event_id`.
pub(crate) async fn last_event_id(pool: &PgPool) -> Result<Option<EventId>, Error> {
    let id: Option<i64> = sqlx::query_scalar("SELECT max(id) FROM events")
        .fetch_one(pool)
        .await?;
    Ok(id.map(EventId))
}

async fn with_identifiers(
    pool: &PgPool,
    rows: Vec<(i64, Vec<u8>)>,
) -> Result<Vec<StoredProfile>, Error> {
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    let identifiers: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT profile_id, id_type, value FROM profile_identifiers
         WHERE profile_id = ANY($1) ORDER BY profile_id, id_type, value",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(id, document)| {
            Ok(StoredProfile {
                id: u64::try_from(id).map_err(|_| Error::Corrupt(format!("profile id {id}")))?,
                identifiers: identifiers
                    .iter()
                    .filter(|(profile, _, _)| *profile == id)
                    .map(|(_, id_type, value)| (id_type.clone(), value.clone()))
                    .collect(),
                document,
            })
        })
        .collect()
}

/// See `Store::load_profiles`.
pub(crate) async fn load(
    pool: &PgPool,
    from: u64,
    limit: usize,
) -> Result<Vec<StoredProfile>, Error> {
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT id, document FROM profiles WHERE id >= $1 ORDER BY id LIMIT $2")
            .bind(sql_id(from))
            .bind(sql_limit(limit))
            .fetch_all(pool)
            .await?;
    with_identifiers(pool, rows).await
}

/// See `Store::find_profile`.
pub(crate) async fn find(
    pool: &PgPool,
    id_type: &str,
    value: &str,
) -> Result<Option<StoredProfile>, Error> {
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT p.id, p.document FROM profile_identifiers i
         JOIN profiles p ON p.id = i.profile_id
         WHERE i.id_type = $1 AND i.value = $2",
    )
    .bind(id_type)
    .bind(value)
    .fetch_all(pool)
    .await?;
    Ok(with_identifiers(pool, rows).await?.into_iter().next())
}

/// See `Store::profile_worker`.
pub(crate) async fn worker(pool: &PgPool) -> Result<Option<Vec<u8>>, Error> {
    let document: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT document FROM profile_worker WHERE id = 1")
            .fetch_optional(pool)
            .await?;
    Ok(document.flatten())
}

/// See `Store::lead_profiles`.
pub(crate) async fn lead(pool: &PgPool, owner: &str, lease_ms: i64) -> Result<bool, Error> {
    let leader: Option<String> = sqlx::query_scalar(&format!(
        "INSERT INTO profile_worker (id, owner, lease_until) VALUES (1, $1, {NOW_MS} + $2)
         ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
         WHERE profile_worker.owner = excluded.owner OR profile_worker.lease_until < {NOW_MS}
         RETURNING owner"
    ))
    .bind(owner)
    .bind(lease_ms)
    .fetch_optional(pool)
    .await?;
    Ok(leader.is_some_and(|leader| leader == owner))
}

/// See `Store::save_profiles`.
pub(crate) async fn save(pool: &PgPool, checkpoint: &ProfileCheckpoint) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    let leads: Option<bool> = sqlx::query_scalar(&format!(
        "SELECT owner = $1 AND lease_until >= {NOW_MS} FROM profile_worker WHERE id = 1
         FOR UPDATE"
    ))
    .bind(&checkpoint.owner)
    .fetch_optional(&mut *tx)
    .await?;
    if leads != Some(true) {
        return Err(StoreError::NotFound {
            what: format!("the profile worker's lead for {}", checkpoint.owner),
        }
        .into());
    }
    write(&mut tx, checkpoint).await?;
    tx.commit().await?;
    Ok(())
}

async fn write(conn: &mut PgConnection, checkpoint: &ProfileCheckpoint) -> Result<(), Error> {
    let consumed: Vec<i64> = checkpoint.consumed.iter().map(|event| event.0).collect();
    sqlx::query("DELETE FROM profile_inbox WHERE event_id = ANY($1)")
        .bind(&consumed)
        .execute(&mut *conn)
        .await?;
    let gone: Vec<i64> = checkpoint
        .removed
        .iter()
        .chain(
            checkpoint
                .upserts
                .iter()
                .filter(|profile| !profile.identifiers.is_empty())
                .map(|profile| &profile.id),
        )
        .map(|id| sql_id(*id))
        .collect();
    sqlx::query("DELETE FROM profile_identifiers WHERE profile_id = ANY($1)")
        .bind(&gone)
        .execute(&mut *conn)
        .await?;
    let removed: Vec<i64> = checkpoint.removed.iter().map(|id| sql_id(*id)).collect();
    sqlx::query("DELETE FROM profiles WHERE id = ANY($1)")
        .bind(&removed)
        .execute(&mut *conn)
        .await?;
    let ids: Vec<i64> = checkpoint.upserts.iter().map(|p| sql_id(p.id)).collect();
    let documents: Vec<&[u8]> = checkpoint
        .upserts
        .iter()
        .map(|p| p.document.as_slice())
        .collect();
    sqlx::query(
        "INSERT INTO profiles (id, document) SELECT * FROM unnest($1::bigint[], $2::bytea[])
         ON CONFLICT (id) DO UPDATE SET document = excluded.document",
    )
    .bind(&ids)
    .bind(&documents)
    .execute(&mut *conn)
    .await?;
    let mut owners = Vec::new();
    let mut types = Vec::new();
    let mut values = Vec::new();
    for profile in &checkpoint.upserts {
        for (id_type, value) in &profile.identifiers {
            owners.push(sql_id(profile.id));
            types.push(id_type.as_str());
            values.push(value.as_str());
        }
    }
    sqlx::query(
        "INSERT INTO profile_identifiers (id_type, value, profile_id)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
         ON CONFLICT (id_type, value) DO UPDATE SET profile_id = excluded.profile_id",
    )
    .bind(&types)
    .bind(&values)
    .bind(&owners)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE profile_worker SET document = $1 WHERE id = 1")
        .bind(&checkpoint.worker)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
