//! The schema, as append-only versioned SQL. Each migration runs in its own transaction and is
//! recorded in `junction_migrations`; a session-level advisory lock serialises nodes that start
//! at the same time, so exactly one applies each version.

use junction_store::StoreError;
use sqlx::{Connection, PgConnection};

use crate::error::Error;

/// One schema step. Never edit a released one: append a new version instead.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// The advisory lock key held while migrating (an arbitrary constant: "junction" in ASCII).
const MIGRATION_LOCK: i64 = 0x6a75_6e63_7469_6f6e;

/// Version 1: ingestion, the delivery queue, dead letter, configuration. The SQL of each released
/// version lives in a file, so that tests can build a database at that version.
const V1: &str = include_str!("migrations/v1.sql");

/// Version 2: the delivery overview's per-minute rollups (the embedded engine's model: see its
/// migration 3), maintained in the transactions that store events and completions.
const V2: &str = include_str!("migrations/v2.sql");

/// Version 3: retention at scale. The event-scoped tables become range-partitioned by event id,
/// one partition per generation (see `generations.rs`), so that retention drops whole
/// generations instead of deleting rows. Transitions and attempts gain the event id they belong
/// to. Foreign keys between these tables (and from `job_queue` and `dead_letter` to `jobs`) go:
/// a key referencing a partitioned table must include its partition key, and it would forbid
/// dropping a partition whose rows are referenced; the engine keeps the integrity instead
/// (everything about an event is written in one transaction and dropped in one).
///
/// Existing rows are copied into generation 0, which covers every id issued so far; the identity
/// sequences continue where the old ones stopped.
const V3: &str = include_str!("migrations/v3.sql");

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

/// Version 5: each queue row carries its job's event id, so that claims and completions reach
/// the job (partitioned by event id) in its one partition instead of probing every generation's.
const V5: &str = r#"
ALTER TABLE job_queue ADD COLUMN event_id BIGINT;
UPDATE job_queue SET event_id = jobs.event_id FROM jobs WHERE jobs.id = job_queue.job_id;
ALTER TABLE job_queue ALTER COLUMN event_id SET NOT NULL;
"#;

/// Version 6: the counters and the overview's count, latency and gauge rows are sharded: each
/// transaction adds to one of a few rows per key, chosen at random, and readers sum them. With one
/// row per key every ingest group and completion batch of every node queued behind the same row
/// locks until the holder's commit was durable.
const V6: &str = r#"
ALTER TABLE counters DROP CONSTRAINT counters_id_check;

ALTER TABLE overview_counts ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE overview_counts DROP CONSTRAINT overview_counts_pkey;
ALTER TABLE overview_counts
    ADD PRIMARY KEY (destination_id, minute, subscription_id, outcome, shard);

ALTER TABLE overview_latency ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE overview_latency DROP CONSTRAINT overview_latency_pkey;
ALTER TABLE overview_latency ADD PRIMARY KEY (destination_id, minute, subscription_id, bin, shard);

ALTER TABLE overview_gauges ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE overview_gauges DROP CONSTRAINT overview_gauges_pkey;
ALTER TABLE overview_gauges ADD PRIMARY KEY (destination_id, subscription_id, shard);
"#;

/// Version 7: profiles (see `junction_store::ProfileCheckpoint`): the inbox of stored events the
/// profile worker has not taken in (written with the events), each profile's document and the
/// identifiers that find it, and the worker's document with the lease of the node that leads it.
const V7: &str = r#"
CREATE TABLE profile_inbox (
    event_id BIGINT PRIMARY KEY
);

CREATE TABLE profiles (
    id       BIGINT PRIMARY KEY,
    document BYTEA  NOT NULL
);

CREATE TABLE profile_identifiers (
    id_type    TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    profile_id BIGINT NOT NULL,
    PRIMARY KEY (id_type, value)
);
CREATE INDEX profile_identifiers_by_profile ON profile_identifiers (profile_id);

CREATE TABLE profile_worker (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    owner       TEXT    NOT NULL,
    lease_until BIGINT  NOT NULL,
    document    BYTEA
);
"#;

/// Version 8: deleting and suppressing a person. Regulations are the audit log: each keeps its
/// record (identifiers only as keyed hashes) for good, and its request (the identifiers as
/// given) only until it is done, which the partial index finds. The suppression list holds keyed
/// hashes only; the secret that keys them is one row, written once.
const V8: &str = r#"
CREATE TABLE regulations (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    finished_at BIGINT,
    record      TEXT   NOT NULL,
    request     TEXT
);
CREATE INDEX regulations_pending ON regulations (id) WHERE request IS NOT NULL;

CREATE TABLE suppressions (
    hash          TEXT   PRIMARY KEY,
    regulation_id BIGINT NOT NULL
);

CREATE TABLE privacy_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret BYTEA   NOT NULL
);
"#;

/// Version 9: claims that stay cheap whatever the backlog (see `queries::claim`).
///
/// - The lease moves to a column of its own, outside every index: a claim then rewrites no
///   indexed column and is a HOT update (no new entries in the queue's two indexes, no dead ones
///   left at the lane's head for the next claims to walk). A row is due once both `next_at` and
///   `lease_until` have passed; `next_at` keeps the job's place in its lane. Rows leased before
///   the upgrade carry their lease in `next_at`, which stays correct.
/// - Half of each page is left free (`fillfactor`), so that a claimed row's new version fits in
///   its page, which HOT needs.
/// - Vacuum and analyze after a fixed number of changed rows, not a fraction of the table: the
///   queue turns over its whole content in seconds, and with the default fractions its
///   statistics described a queue a fraction of its size.
/// - The claim is a function whose plan cannot be a bitmap scan and sort of every due row of the
///   lane (what stale statistics chose: 111 ms per claim at 41,599 due rows): with those ruled
///   out for its statement only, it walks the lane's index in order and stops at the limit. JIT
///   is off for it too: the cost penalty of a ruled-out sort (the 200 rows returned are still
///   sorted) would otherwise make every claim pay a quarter of a second of compilation.
const V9: &str = r#"
ALTER TABLE job_queue ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE job_queue SET (
    fillfactor = 50,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 20000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 20000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 20000,
    autovacuum_vacuum_cost_delay = 0
);

CREATE FUNCTION junction_claim(lane TEXT, now_ms BIGINT, lease BIGINT, max_jobs BIGINT)
RETURNS TABLE (
    due_at BIGINT, attempts BIGINT, id BIGINT, event_id BIGINT, destination_id TEXT,
    subscription_id TEXT, endpoint TEXT, method TEXT, url TEXT, headers TEXT, body BYTEA,
    created_at BIGINT, replay_of BIGINT
)
LANGUAGE sql VOLATILE
SET enable_bitmapscan = off
SET enable_sort = off
SET jit = off
ROWS 200
AS $fn$
    WITH due AS (
        SELECT q.job_id, q.event_id, q.next_at, q.attempt FROM job_queue q
        WHERE q.endpoint = lane AND q.next_at <= now_ms AND q.lease_until <= now_ms
        ORDER BY q.next_at, q.job_id
        LIMIT max_jobs
        FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE job_queue q SET lease_until = lease, attempt = q.attempt + 1
        FROM due WHERE q.job_id = due.job_id
        RETURNING due.job_id, due.event_id, due.next_at, due.attempt
    )
    SELECT leased.next_at, leased.attempt, j.id, j.event_id, j.destination_id,
           j.subscription_id, j.endpoint, j.method, j.url, j.headers, j.body, j.created_at,
           j.replay_of
    FROM leased JOIN jobs j ON j.id = leased.job_id AND j.event_id = leased.event_id
    ORDER BY leased.next_at, leased.job_id
$fn$;
"#;

/// Version 10: claims that start their walk where the lane's live rows begin (see
/// `queries::claim` and `cursor.rs`). Completed jobs' rows are deleted, and their entries stay at
/// the head of the lane's index until `VACUUM`; a claim from the lane's start read them all (in
/// a 5,000,000-job drain it grew from 15 ms to 260 ms). `junction_claim_after` is migration 9's
/// claim taking only rows after a place in the index, which the index descends to directly;
/// `junction_lane_first` finds a lane's first row (leased or not) after a place, which is how a
/// node learns a floor below every row that can be due. Migration 9's function stays for nodes
/// of the previous build during an upgrade.
const V10: &str = r#"
CREATE FUNCTION junction_claim_after(
    lane TEXT, now_ms BIGINT, lease BIGINT, max_jobs BIGINT, after_next_at BIGINT,
    after_job_id BIGINT
)
RETURNS TABLE (
    due_at BIGINT, attempts BIGINT, id BIGINT, event_id BIGINT, destination_id TEXT,
    subscription_id TEXT, endpoint TEXT, method TEXT, url TEXT, headers TEXT, body BYTEA,
    created_at BIGINT, replay_of BIGINT
)
LANGUAGE sql VOLATILE
SET enable_bitmapscan = off
SET enable_sort = off
SET jit = off
ROWS 200
AS $fn$
    WITH due AS (
        SELECT q.job_id, q.event_id, q.next_at, q.attempt FROM job_queue q
        WHERE q.endpoint = lane AND (q.next_at, q.job_id) > (after_next_at, after_job_id)
          AND q.next_at <= now_ms AND q.lease_until <= now_ms
        ORDER BY q.next_at, q.job_id
        LIMIT max_jobs
        FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE job_queue q SET lease_until = lease, attempt = q.attempt + 1
        FROM due WHERE q.job_id = due.job_id
        RETURNING due.job_id, due.event_id, due.next_at, due.attempt
    )
    SELECT leased.next_at, leased.attempt, j.id, j.event_id, j.destination_id,
           j.subscription_id, j.endpoint, j.method, j.url, j.headers, j.body, j.created_at,
           j.replay_of
    FROM leased JOIN jobs j ON j.id = leased.job_id AND j.event_id = leased.event_id
    ORDER BY leased.next_at, leased.job_id
$fn$;

CREATE FUNCTION junction_lane_first(lane TEXT, after_next_at BIGINT, after_job_id BIGINT)
RETURNS TABLE (first_next_at BIGINT, first_job_id BIGINT)
LANGUAGE sql STABLE
SET enable_bitmapscan = off
SET enable_sort = off
SET jit = off
ROWS 1
AS $fn$
    SELECT q.next_at, q.job_id FROM job_queue q
    WHERE q.endpoint = lane AND (q.next_at, q.job_id) > (after_next_at, after_job_id)
    ORDER BY q.next_at, q.job_id
    LIMIT 1
$fn$;
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
        version: 3,
        name: "event tables partitioned by generation",
        sql: V3,
    },
    Migration {
        version: 4,
        name: "cluster-wide lane flow control",
        sql: V4,
    },
    Migration {
        version: 5,
        name: "event id in the delivery queue",
        sql: V5,
    },
    Migration {
        version: 6,
        name: "sharded counters and rollups",
        sql: V6,
    },
    Migration {
        version: 7,
        name: "profiles",
        sql: V7,
    },
    Migration {
        version: 8,
        name: "regulations and suppressions",
        sql: V8,
    },
    Migration {
        version: 9,
        name: "claims as HOT updates with a fixed plan",
        sql: V9,
    },
    Migration {
        version: 10,
        name: "claims that start past the lane's consumed part",
        sql: V10,
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
    // Looked up first rather than `CREATE TABLE IF NOT EXISTS`, whose "already exists" notice
    // would be logged at every start of every node.
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('junction_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::from)?;
    if !exists {
        sqlx::Executor::execute(
            &mut *conn,
            "CREATE TABLE junction_migrations (
                 version    BIGINT PRIMARY KEY,
                 name       TEXT   NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(Error::from)?;
    }
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM junction_migrations")
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::from)?;
    let current = applied.iter().copied().max().unwrap_or(0);
    if current > supported() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: supported(),
        });
    }
    // Every version not applied yet, including one below the newest applied (a build that
    // shipped a later version first: version 4 was released before version 3).
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
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
