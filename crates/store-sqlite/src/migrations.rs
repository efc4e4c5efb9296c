//! The schema and its migrations: an append-only list of versioned SQL scripts, each applied once
//! in its own transaction and recorded in the `migrations` table, so that opening is idempotent.
//! Also the message-key index (schema `keys`, its own file): created, and brought up to date with
//! the events table, at every open.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::Error;
use crate::model::{dedupe_key, now_ms};
use junction_store::StoreError;

/// One schema change. Never edit a released one: add the next version instead.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Version 1: ingestion (events, duplicates, jobs, transitions, discards), the delivery queue and
/// attempt tables issue 4 fills in, configuration and counters.
///
/// Why this shape:
/// - `events`, `jobs`, `discards` are immutable rows with increasing integer keys, so inserts
///   append at the right edge of their B-trees; retention can later delete by id range.
/// - dedupe and lookup by `messageId` go through the separate `keys` index ([`KEYS`]), not an
///   index on `events`, so the only indexes written per event append at their right edge.
/// - `job_transitions` is the append-only history (Centrifuge model); `job_queue` is the small
///   mutable work index of jobs not yet terminal — its `next_at` is the retry time, or the lease
///   expiry while a worker holds the job, so a job whose worker died becomes due again by itself.
/// - `counters` holds running totals updated once per transaction, so metrics never count rows.
/// - foreign keys are declared for the reader but not enforced (SQLite's default): the single
///   writer inserts parents first, and enforcement would cost a lookup per row.
const V1: &str = r#"
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    source_id   TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    payload     BLOB    NOT NULL
);

CREATE TABLE event_duplicates (
    id          INTEGER PRIMARY KEY,
    event_id    INTEGER NOT NULL REFERENCES events (id),
    received_at INTEGER NOT NULL
);
CREATE INDEX event_duplicates_by_event ON event_duplicates (event_id);

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    event_id        INTEGER NOT NULL REFERENCES events (id),
    destination_id  TEXT    NOT NULL,
    subscription_id TEXT    NOT NULL,
    endpoint        TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    headers         TEXT    NOT NULL,
    body            BLOB    NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX jobs_by_event ON jobs (event_id);

CREATE TABLE job_transitions (
    job_id  INTEGER NOT NULL REFERENCES jobs (id),
    seq     INTEGER NOT NULL,
    state   TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    next_at INTEGER,
    attempt INTEGER NOT NULL,
    detail  TEXT,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;

CREATE TABLE job_queue (
    job_id      INTEGER PRIMARY KEY REFERENCES jobs (id),
    endpoint    TEXT    NOT NULL,
    next_at     INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    lease_owner TEXT
);
CREATE INDEX job_queue_due ON job_queue (next_at);

CREATE TABLE job_attempts (
    job_id           INTEGER NOT NULL REFERENCES jobs (id),
    attempt          INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    duration_ms      INTEGER NOT NULL,
    status           INTEGER,
    error_class      TEXT,
    response_headers TEXT,
    response_excerpt BLOB,
    PRIMARY KEY (job_id, attempt)
) WITHOUT ROWID;

CREATE TABLE discards (
    id              INTEGER PRIMARY KEY,
    event_id        INTEGER NOT NULL REFERENCES events (id),
    destination_id  TEXT    NOT NULL,
    subscription_id TEXT,
    reason          TEXT    NOT NULL,
    message         TEXT    NOT NULL
);
CREATE INDEX discards_by_event ON discards (event_id);

CREATE TABLE config_versions (
    version  INTEGER PRIMARY KEY,
    saved_at INTEGER NOT NULL,
    document TEXT    NOT NULL
);

CREATE TABLE counters (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    events     INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    jobs       INTEGER NOT NULL,
    discards   INTEGER NOT NULL
);
INSERT INTO counters (id, events, duplicates, jobs, discards) VALUES (1, 0, 0, 0, 0);
"#;

/// Version 2: delivery. Replays link to the job they replay; the queue gets a per-lane index
/// (claims and the lane list walk it, so a lane with a huge backlog never slows another lane's
/// claim); the dead letter is its own small table, written when a job is discarded or expires, so
/// that listing it never scans the transition history.
const V2: &str = r#"
ALTER TABLE jobs ADD COLUMN replay_of INTEGER REFERENCES jobs (id);

DROP INDEX job_queue_due;
CREATE INDEX job_queue_lane ON job_queue (endpoint, next_at);

CREATE TABLE dead_letter (
    job_id          INTEGER PRIMARY KEY REFERENCES jobs (id),
    destination_id  TEXT    NOT NULL,
    subscription_id TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    at              INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    status          INTEGER,
    error_class     TEXT,
    detail          TEXT,
    replayed_by     INTEGER
);
CREATE INDEX dead_letter_by_time ON dead_letter (at);
"#;

/// Version 3: the delivery overview's rollups, maintained by the writer in the transactions that
/// store events and completions, so that an overview reads a window's minutes instead of its
/// events.
///
/// Why this shape:
/// - counters are rows of (destination, minute, mapping, outcome), the mapping empty for
///   destination-level ones, keyed destination first so that one destination's window is one
///   contiguous range; a transaction adds to each distinct key once (an upsert), and a key gets a
///   new row once a minute, so the `minute` indexes (for retention) cost almost nothing.
/// - samples: at most 10 `messageId`s per counter and minute, keyed so that the newest 10 of a
///   (destination, mapping, outcome) over a window are one backwards range read.
/// - latency: a fixed log-scale histogram per (destination, minute, mapping), summed over the
///   window to estimate percentiles; exact percentiles would need every value.
/// - the awaiting-retry gauge is kept up to date by completions (jobs with a completion that are
///   still queued), seeded here from the queue, so reading it never counts a backlog.
const V3: &str = r#"
CREATE TABLE overview_counts (
    destination_id  TEXT    NOT NULL,
    minute          INTEGER NOT NULL,
    subscription_id TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    n               INTEGER NOT NULL,
    PRIMARY KEY (destination_id, minute, subscription_id, outcome)
) WITHOUT ROWID;
CREATE INDEX overview_counts_by_minute ON overview_counts (minute);

CREATE TABLE overview_samples (
    destination_id  TEXT    NOT NULL,
    subscription_id TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    minute          INTEGER NOT NULL,
    message_id      TEXT    NOT NULL,
    PRIMARY KEY (destination_id, subscription_id, outcome, minute, message_id)
) WITHOUT ROWID;
CREATE INDEX overview_samples_by_minute ON overview_samples (minute);

CREATE TABLE overview_latency (
    destination_id  TEXT    NOT NULL,
    minute          INTEGER NOT NULL,
    subscription_id TEXT    NOT NULL,
    bin             INTEGER NOT NULL,
    n               INTEGER NOT NULL,
    PRIMARY KEY (destination_id, minute, subscription_id, bin)
) WITHOUT ROWID;
CREATE INDEX overview_latency_by_minute ON overview_latency (minute);

CREATE TABLE overview_gauges (
    destination_id  TEXT    NOT NULL,
    subscription_id TEXT    NOT NULL,
    awaiting_retry  INTEGER NOT NULL,
    PRIMARY KEY (destination_id, subscription_id)
) WITHOUT ROWID;
INSERT INTO overview_gauges (destination_id, subscription_id, awaiting_retry)
SELECT jobs.destination_id, jobs.subscription_id, count(*)
FROM job_queue JOIN jobs ON jobs.id = job_queue.job_id
WHERE job_queue.last_seq > 0
GROUP BY jobs.destination_id, jobs.subscription_id;
"#;

/// The message-key index, in its own file attached as schema `keys`: (dedupe key, event id)
/// pairs, where the dedupe key is a 64-bit hash of (source, messageId), plus a watermark: every
/// event with an id up to it is indexed. Keys of newer events are in memory (`recent`) until the
/// maintenance thread writes them here, sorted, about once a second.
///
/// Why not an index on `events`: message ids are random, so each new key lands on a random leaf
/// page. Inside the main database every such page went to the fsynced WAL at each commit and
/// again at checkpoint: measured at more bytes per event than the event itself, and about 40% of
/// the writer's time. Here, batched and off the writer's thread, with `synchronous=NORMAL` (no
/// fsync per commit), neighbouring keys share pages. The index is derived from `events`: what a
/// crash or power cut loses of it (never a committed event) is re-indexed at open by
/// [`reconcile`], a missing or damaged file is rebuilt, and every lookup checks the event row
/// itself, because a key is a hash.
const KEYS: &str = r#"
CREATE TABLE IF NOT EXISTS keys.message_keys (
    dedupe_key INTEGER NOT NULL,
    event_id   INTEGER NOT NULL,
    PRIMARY KEY (dedupe_key, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keys.watermark (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    event_id INTEGER NOT NULL
);
INSERT OR IGNORE INTO keys.watermark (id, event_id) VALUES (1, 0);
"#;

/// Version 4: profiles (see `junction_store::ProfileCheckpoint`). The inbox holds the ids of
/// stored events the profile worker has not taken in, written by the same transaction as the
/// event; each profile is one opaque document with its identifiers in an index table, so that
/// a lookup by any identifier is one probe; the worker's own document is one row.
const V4: &str = r#"
CREATE TABLE profile_inbox (
    event_id INTEGER PRIMARY KEY
);

CREATE TABLE profiles (
    id       INTEGER PRIMARY KEY,
    document BLOB NOT NULL
);

CREATE TABLE profile_identifiers (
    id_type    TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    profile_id INTEGER NOT NULL,
    PRIMARY KEY (id_type, value)
) WITHOUT ROWID;
CREATE INDEX profile_identifiers_by_profile ON profile_identifiers (profile_id);

CREATE TABLE profile_worker (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    document BLOB NOT NULL
);
"#;

/// Version 5: deleting and suppressing a person. Regulations are the audit log: each keeps its
/// record (identifiers only as keyed hashes) for good, and its request (the identifiers as
/// given) only until it is done, which the partial index finds. The suppression list holds keyed
/// hashes only; the secret that keys them is one row, written once.
const V5: &str = r#"
CREATE TABLE regulations (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER,
    record      TEXT    NOT NULL,
    request     TEXT
);
CREATE INDEX regulations_pending ON regulations (id) WHERE request IS NOT NULL;

CREATE TABLE suppressions (
    hash          TEXT    PRIMARY KEY,
    regulation_id INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE privacy_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB    NOT NULL
);
"#;

/// The layout version of the key index, kept in its `user_version`. A file with another version
/// is emptied and rebuilt from `events`.
const KEYS_VERSION: i64 = 1;

/// Events re-indexed per transaction by [`reconcile`], so that a large rebuild neither holds one
/// huge transaction nor the writer lock for long.
const REINDEX_CHUNK: i64 = 10_000;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "ingestion, delivery queue, config",
        sql: V1,
    },
    Migration {
        version: 2,
        name: "delivery lanes, dead letter, replays",
        sql: V2,
    },
    Migration {
        version: 3,
        name: "delivery overview rollups",
        sql: V3,
    },
    Migration {
        version: 4,
        name: "profiles",
        sql: V4,
    },
    Migration {
        version: 5,
        name: "regulations and suppressions",
        sql: V5,
    },
];

/// The newest schema version this build knows.
pub(crate) const LATEST: i64 = 5;

/// Creates the key index if needed (rebuilding it when its layout is not [`KEYS_VERSION`]) and
/// indexes every event it is missing. Runs at open, before the writer starts.
pub(crate) fn prepare_keys(conn: &mut Connection) -> Result<(), Error> {
    let version: i64 = conn.query_row("PRAGMA keys.user_version", [], |row| row.get(0))?;
    if version != KEYS_VERSION {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "DROP TABLE IF EXISTS keys.message_keys; DROP TABLE IF EXISTS keys.watermark;",
        )?;
        tx.execute_batch(KEYS)?;
        tx.execute_batch(&format!("PRAGMA keys.user_version = {KEYS_VERSION}"))?;
        tx.commit()?;
    }
    reconcile(conn)
}

/// Indexes the events above the watermark (keys still in memory when the process stopped, those
/// a power cut took from the index, or all of them after a rebuild), and lowers a watermark above
/// the last event (a database file restored from an older copy beside a newer index).
fn reconcile(conn: &mut Connection) -> Result<(), Error> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let watermark: i64 = tx.query_row(
            "SELECT event_id FROM keys.watermark WHERE id = 1",
            [],
            |row| row.get(0),
        )?;
        let last: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM events", [], |row| {
            row.get(0)
        })?;
        if watermark >= last {
            if watermark > last {
                tx.execute(
                    "UPDATE keys.watermark SET event_id = ?1 WHERE id = 1",
                    [last],
                )?;
                tx.commit()?;
            }
            return Ok(());
        }
        let upto = {
            let mut select = tx.prepare(
                "SELECT id, source_id, message_id FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO keys.message_keys (dedupe_key, event_id) VALUES (?1, ?2)",
            )?;
            let mut rows = select.query((watermark, REINDEX_CHUNK))?;
            let mut upto = watermark;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                let source_id: String = row.get(1)?;
                let message_id: String = row.get(2)?;
                insert.execute((dedupe_key(&source_id, &message_id), id))?;
                upto = id;
            }
            upto
        };
        tx.execute(
            "UPDATE keys.watermark SET event_id = ?1 WHERE id = 1",
            [upto],
        )?;
        tx.commit()?;
    }
}

/// Brings the database up to [`LATEST`], applying each missing migration in its own immediate
/// transaction (so two processes opening the same file at once cannot both apply it). Refuses a
/// database already migrated past what this build knows.
pub(crate) fn apply(conn: &mut Connection) -> Result<(), Error> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT    NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )?;
    for migration in MIGRATIONS {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: i64 = tx.query_row(
            "SELECT coalesce(max(version), 0) FROM migrations",
            [],
            |row| row.get(0),
        )?;
        if current > LATEST {
            return Err(StoreError::SchemaTooNew {
                found: current,
                supported: LATEST,
            }
            .into());
        }
        if current >= migration.version {
            continue;
        }
        tx.execute_batch(migration.sql)?;
        tx.execute(
            "INSERT INTO migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            (migration.version, migration.name, now_ms()),
        )?;
        tx.commit()?;
    }
    // Checked again for a database with no migration left to apply.
    let current: i64 = conn.query_row(
        "SELECT coalesce(max(version), 0) FROM migrations",
        [],
        |row| row.get(0),
    )?;
    if current > LATEST {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: LATEST,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(conn: &Connection) -> Vec<i64> {
        let mut stmt = conn
            .prepare("SELECT version FROM migrations ORDER BY version")
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn memory() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("ATTACH DATABASE ':memory:' AS keys")
            .unwrap();
        conn
    }

    fn indexed(conn: &Connection) -> (i64, i64) {
        conn.query_row(
            "SELECT (SELECT count(*) FROM keys.message_keys), event_id FROM keys.watermark",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
    }

    #[test]
    fn missing_keys_are_reindexed_and_a_high_watermark_lowered() {
        let mut conn = memory();
        apply(&mut conn).unwrap();
        prepare_keys(&mut conn).unwrap();
        assert_eq!(indexed(&conn), (0, 0));
        for n in 0..25_000 {
            conn.execute(
                "INSERT INTO events (source_id, message_id, received_at, payload)
                 VALUES ('s', ?1, 0, x'')",
                [format!("m-{n}")],
            )
            .unwrap();
        }
        prepare_keys(&mut conn).unwrap();
        assert_eq!(indexed(&conn), (25_000, 25_000), "indexed in chunks");
        let key = dedupe_key("s", "m-7");
        let found: i64 = conn
            .query_row(
                "SELECT event_id FROM keys.message_keys WHERE dedupe_key = ?1",
                [key],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(found, 8);

        conn.execute("UPDATE keys.watermark SET event_id = 99999", [])
            .unwrap();
        prepare_keys(&mut conn).unwrap();
        assert_eq!(indexed(&conn), (25_000, 25_000));
    }

    #[test]
    fn a_key_index_of_another_layout_is_rebuilt() {
        let mut conn = memory();
        apply(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO events (source_id, message_id, received_at, payload)
             VALUES ('s', 'm', 0, x'')",
            [],
        )
        .unwrap();
        prepare_keys(&mut conn).unwrap();
        conn.execute_batch("PRAGMA keys.user_version = 0; DELETE FROM keys.message_keys;")
            .unwrap();
        prepare_keys(&mut conn).unwrap();
        assert_eq!(indexed(&conn), (1, 1));
    }

    #[test]
    fn applying_twice_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        apply(&mut conn).unwrap();
        assert_eq!(versions(&conn), vec![1, 2, 3, 4, 5]);
        let counters: i64 = conn
            .query_row("SELECT count(*) FROM counters", [], |row| row.get(0))
            .unwrap();
        assert_eq!(counters, 1, "the seed row is inserted once");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO migrations (version, name, applied_at) VALUES (99, 'future', 0)",
            [],
        )
        .unwrap();
        let err = StoreError::from(apply(&mut conn).unwrap_err());
        assert!(
            matches!(
                err,
                StoreError::SchemaTooNew {
                    found: 99,
                    supported: 5
                }
            ),
            "{err}"
        );
    }
}
