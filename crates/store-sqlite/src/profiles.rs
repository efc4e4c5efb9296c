//! Profiles (see `junction_store::ProfileCheckpoint`): reads on the reader pool, the checkpoint
//! on the writer thread, in the writer's transaction.

use junction_store::{EventId, ProfileCheckpoint, StoredEvent, StoredProfile};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::error::Error;

/// SQLite integers are i64; a limit beyond that range means "all".
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Profile ids are the worker's u64s; stored as SQLite's i64 (they never come near 2^63).
fn sql_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn stored_event(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        id: EventId(row.get(0)?),
        source_id: row.get(1)?,
        received_at: row.get(2)?,
        payload: row.get(3)?,
    })
}

/// See `Store::profile_inbox`.
pub(crate) fn inbox(conn: &mut Connection, limit: usize) -> Result<Vec<StoredEvent>, Error> {
    let mut statement = conn.prepare_cached(
        "SELECT e.id, e.source_id, e.received_at, e.payload
         FROM profile_inbox i JOIN events e ON e.id = i.event_id
         ORDER BY i.event_id LIMIT ?1",
    )?;
    let rows = statement.query_map([sql_limit(limit)], stored_event)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// See `Store::stored_events`.
pub(crate) fn events_after(
    conn: &mut Connection,
    after: EventId,
    limit: usize,
) -> Result<Vec<StoredEvent>, Error> {
    let mut statement = conn.prepare_cached(
        "SELECT id, source_id, received_at, payload FROM events
         WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = statement.query_map((after.0, sql_limit(limit)), stored_event)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// See `Store::last_event_id`.
pub(crate) fn last_event_id(conn: &mut Connection) -> Result<Option<EventId>, Error> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT max(id) FROM events")?
        .query_row([], |row| row.get(0))?;
    Ok(id.map(EventId))
}

fn identifiers(conn: &Connection, profile: i64) -> Result<Vec<(String, String)>, Error> {
    let mut statement = conn.prepare_cached(
        "SELECT id_type, value FROM profile_identifiers WHERE profile_id = ?1
         ORDER BY id_type, value",
    )?;
    let rows = statement.query_map([profile], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn profile(conn: &Connection, id: i64, document: Vec<u8>) -> Result<StoredProfile, Error> {
    Ok(StoredProfile {
        id: u64::try_from(id).map_err(|_| Error::Corrupt(format!("profile id {id}")))?,
        identifiers: identifiers(conn, id)?,
        document,
    })
}

/// See `Store::load_profiles`.
pub(crate) fn load(
    conn: &mut Connection,
    from: u64,
    limit: usize,
) -> Result<Vec<StoredProfile>, Error> {
    let rows: Vec<(i64, Vec<u8>)> = {
        let mut statement = conn.prepare_cached(
            "SELECT id, document FROM profiles WHERE id >= ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = statement.query_map((sql_id(from), sql_limit(limit)), |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    rows.into_iter()
        .map(|(id, document)| profile(conn, id, document))
        .collect()
}

/// See `Store::find_profile`.
pub(crate) fn find(
    conn: &mut Connection,
    id_type: &str,
    value: &str,
) -> Result<Option<StoredProfile>, Error> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT p.id, p.document FROM profile_identifiers i
             JOIN profiles p ON p.id = i.profile_id
             WHERE i.id_type = ?1 AND i.value = ?2",
        )?
        .query_row((id_type, value), |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    row.map(|(id, document)| profile(conn, id, document))
        .transpose()
}

/// See `Store::profile_worker`.
pub(crate) fn worker(conn: &mut Connection) -> Result<Option<Vec<u8>>, Error> {
    Ok(conn
        .prepare_cached("SELECT document FROM profile_worker WHERE id = 1")?
        .query_row([], |row| row.get(0))
        .optional()?)
}

/// Writes a checkpoint inside the writer's open transaction. One process owns an embedded
/// database, so whoever writes leads.
pub(crate) fn save(conn: &Connection, checkpoint: &ProfileCheckpoint) -> Result<(), Error> {
    let mut consume = conn.prepare_cached("DELETE FROM profile_inbox WHERE event_id = ?1")?;
    for event in &checkpoint.consumed {
        consume.execute([event.0])?;
    }
    let mut forget =
        conn.prepare_cached("DELETE FROM profile_identifiers WHERE profile_id = ?1")?;
    let mut remove = conn.prepare_cached("DELETE FROM profiles WHERE id = ?1")?;
    for id in &checkpoint.removed {
        forget.execute([sql_id(*id)])?;
        remove.execute([sql_id(*id)])?;
    }
    let mut upsert = conn.prepare_cached(
        "INSERT INTO profiles (id, document) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET document = excluded.document",
    )?;
    let mut index = conn.prepare_cached(
        "INSERT INTO profile_identifiers (id_type, value, profile_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (id_type, value) DO UPDATE SET profile_id = excluded.profile_id",
    )?;
    for profile in &checkpoint.upserts {
        let id = sql_id(profile.id);
        upsert.execute((id, &profile.document))?;
        if profile.identifiers.is_empty() {
            continue;
        }
        forget.execute([id])?;
        for (id_type, value) in &profile.identifiers {
            index.execute((id_type, value, id))?;
        }
    }
    conn.prepare_cached(
        "INSERT INTO profile_worker (id, document) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET document = excluded.document",
    )?
    .execute([&checkpoint.worker])?;
    Ok(())
}
