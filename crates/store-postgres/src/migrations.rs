//! The schema, as append-only versioned SQL. Each migration runs in its own transaction and is
//! recorded in `junction_migrations`; a session-level advisory lock serialises nodes that start
//! at the same time, so exactly one applies each version.

use junction_store::StoreError;
use sqlx::{Connection, PgConnection, Row};

use crate::error::Error;

/// One schema step. Never edit a released one: append a new version instead.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// The advisory lock key held while migrating (an arbitrary constant: "junction" in ASCII).
const MIGRATION_LOCK: i64 = 0x6a75_6e63_7469_6f6e;

const V1: &str = r#"
CREATE TABLE events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id   TEXT   NOT NULL,
    message_id  TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    payload     BYTEA  NOT NULL
);
-- The dedupe lookup and `events_by_message_id`.
CREATE INDEX events_by_message ON events (source_id, message_id, received_at);
CREATE INDEX events_by_received_at ON events (received_at);

CREATE TABLE event_duplicates (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    BIGINT NOT NULL REFERENCES events (id),
    received_at BIGINT NOT NULL
);
CREATE INDEX event_duplicates_by_event ON event_duplicates (event_id);

CREATE TABLE jobs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        BIGINT NOT NULL REFERENCES events (id),
    destination_id  TEXT   NOT NULL,
    subscription_id TEXT   NOT NULL,
    endpoint        TEXT   NOT NULL,
    method          TEXT   NOT NULL,
    url             TEXT   NOT NULL,
    headers         TEXT   NOT NULL,
    body            BYTEA  NOT NULL,
    created_at      BIGINT NOT NULL,
    replay_of       BIGINT
);
CREATE INDEX jobs_by_event ON jobs (event_id);

CREATE TABLE job_transitions (
    job_id  BIGINT NOT NULL REFERENCES jobs (id),
    seq     BIGINT NOT NULL,
    state   TEXT   NOT NULL,
    at      BIGINT NOT NULL,
    next_at BIGINT,
    attempt BIGINT NOT NULL,
    detail  TEXT,
    PRIMARY KEY (job_id, seq)
);

-- The delivery queue: one row per job not yet terminal. Claims lock rows with
-- FOR UPDATE SKIP LOCKED, so nodes claiming the same lane never wait for each other.
CREATE TABLE job_queue (
    job_id   BIGINT PRIMARY KEY REFERENCES jobs (id),
    endpoint TEXT   NOT NULL,
    next_at  BIGINT NOT NULL,
    attempt  BIGINT NOT NULL,
    last_seq BIGINT NOT NULL
);
CREATE INDEX job_queue_lane ON job_queue (endpoint, next_at, job_id);

CREATE TABLE job_attempts (
    job_id           BIGINT  NOT NULL REFERENCES jobs (id),
    attempt          BIGINT  NOT NULL,
    started_at       BIGINT  NOT NULL,
    duration_ms      BIGINT  NOT NULL,
    status           INTEGER,
    error_class      TEXT,
    response_headers TEXT,
    response_excerpt BYTEA,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE discards (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        BIGINT NOT NULL REFERENCES events (id),
    destination_id  TEXT   NOT NULL,
    subscription_id TEXT,
    reason          TEXT   NOT NULL,
    message         TEXT   NOT NULL
);
CREATE INDEX discards_by_event ON discards (event_id);

CREATE TABLE dead_letter (
    job_id          BIGINT PRIMARY KEY REFERENCES jobs (id),
    destination_id  TEXT   NOT NULL,
    subscription_id TEXT   NOT NULL,
    state           TEXT   NOT NULL,
    at              BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    status          INTEGER,
    error_class     TEXT,
    detail          TEXT,
    replayed_by     BIGINT
);
CREATE INDEX dead_letter_by_time ON dead_letter (at);

CREATE TABLE config_versions (
    version  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    saved_at BIGINT NOT NULL,
    document TEXT   NOT NULL
);

CREATE TABLE counters (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    events     BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    jobs       BIGINT NOT NULL,
    discards   BIGINT NOT NULL
);
INSERT INTO counters (id, events, duplicates, jobs, discards) VALUES (1, 0, 0, 0, 0);
"#;

/// Version 2: the delivery overview's per-minute rollups (the embedded engine's model: see its
/// migration 3), maintained in the transactions that store events and completions.
const V2: &str = r#"
CREATE TABLE overview_counts (
    destination_id  TEXT   NOT NULL,
    minute          BIGINT NOT NULL,
    subscription_id TEXT   NOT NULL,
    outcome         TEXT   NOT NULL,
    n               BIGINT NOT NULL,
    PRIMARY KEY (destination_id, minute, subscription_id, outcome)
);
CREATE INDEX overview_counts_by_minute ON overview_counts (minute);

CREATE TABLE overview_samples (
    destination_id  TEXT   NOT NULL,
    subscription_id TEXT   NOT NULL,
    outcome         TEXT   NOT NULL,
    minute          BIGINT NOT NULL,
    message_id      TEXT   NOT NULL,
    PRIMARY KEY (destination_id, subscription_id, outcome, minute, message_id)
);
CREATE INDEX overview_samples_by_minute ON overview_samples (minute);

CREATE TABLE overview_latency (
    destination_id  TEXT   NOT NULL,
    minute          BIGINT NOT NULL,
    subscription_id TEXT   NOT NULL,
    bin             BIGINT NOT NULL,
    n               BIGINT NOT NULL,
    PRIMARY KEY (destination_id, minute, subscription_id, bin)
);
CREATE INDEX overview_latency_by_minute ON overview_latency (minute);

CREATE TABLE overview_gauges (
    destination_id  TEXT   NOT NULL,
    subscription_id TEXT   NOT NULL,
    awaiting_retry  BIGINT NOT NULL,
    PRIMARY KEY (destination_id, subscription_id)
);
INSERT INTO overview_gauges (destination_id, subscription_id, awaiting_retry)
SELECT jobs.destination_id, jobs.subscription_id, count(*)
FROM job_queue JOIN jobs ON jobs.id = job_queue.job_id
WHERE job_queue.last_seq > 0
GROUP BY jobs.destination_id, jobs.subscription_id;
"#;

/// Version 4: cluster-wide lane flow control (see `lanes.rs`): the shared adaptive limit of each
/// lane, and each node's share of it, held under a lease.
const V4: &str = r#"
CREATE TABLE lane_control (
    endpoint        TEXT    PRIMARY KEY,
    lane_limit      INTEGER NOT NULL,
    max_concurrency INTEGER NOT NULL,
    epoch           BIGINT  NOT NULL,
    successes       INTEGER NOT NULL,
    paused_until    BIGINT  NOT NULL
);

CREATE TABLE lane_shares (
    endpoint    TEXT    NOT NULL,
    node        TEXT    NOT NULL,
    held        INTEGER NOT NULL,
    want        INTEGER NOT NULL,
    lease_until BIGINT  NOT NULL,
    PRIMARY KEY (endpoint, node)
);
"#;

/// Every migration, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "ingestion, delivery queue, dead letter, config",
        sql: V1,
    },
    Migration {
        version: 2,
        name: "delivery overview rollups",
        sql: V2,
    },
    Migration {
        version: 4,
        name: "cluster-wide lane flow control",
        sql: V4,
    },
];

/// The newest schema version this build knows.
pub(crate) fn supported() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies every pending migration on `conn`, holding the migration lock meanwhile.
pub(crate) async fn migrate(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(Error::from)?;
    let result = apply(conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    result?;
    unlocked.map_err(Error::from)?;
    Ok(())
}

async fn apply(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::Executor::execute(
        &mut *conn,
        "CREATE TABLE IF NOT EXISTS junction_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT   NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(Error::from)?;
    let current: i64 = sqlx::query("SELECT coalesce(max(version), 0) FROM junction_migrations")
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(Error::from)?;
    if current > supported() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: supported(),
        });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        let mut tx = conn.begin().await.map_err(Error::from)?;
        sqlx::Executor::execute(&mut *tx, migration.sql)
            .await
            .map_err(Error::from)?;
        sqlx::query("INSERT INTO junction_migrations (version, name) VALUES ($1, $2)")
            .bind(migration.version)
            .bind(migration.name)
            .execute(&mut *tx)
            .await
            .map_err(Error::from)?;
        tx.commit().await.map_err(Error::from)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "migrated"
        );
    }
    Ok(())
}
