-- Move the old tables aside, with the names of their indexes and sequences.
ALTER TABLE events RENAME TO events_v2;
ALTER TABLE event_duplicates RENAME TO event_duplicates_v2;
ALTER TABLE discards RENAME TO discards_v2;
ALTER TABLE jobs RENAME TO jobs_v2;
ALTER TABLE job_transitions RENAME TO job_transitions_v2;
ALTER TABLE job_attempts RENAME TO job_attempts_v2;
ALTER TABLE events_v2 RENAME CONSTRAINT events_pkey TO events_v2_pkey;
ALTER TABLE event_duplicates_v2 RENAME CONSTRAINT event_duplicates_pkey TO event_duplicates_v2_pkey;
ALTER TABLE discards_v2 RENAME CONSTRAINT discards_pkey TO discards_v2_pkey;
ALTER TABLE jobs_v2 RENAME CONSTRAINT jobs_pkey TO jobs_v2_pkey;
ALTER TABLE job_transitions_v2 RENAME CONSTRAINT job_transitions_pkey TO job_transitions_v2_pkey;
ALTER TABLE job_attempts_v2 RENAME CONSTRAINT job_attempts_pkey TO job_attempts_v2_pkey;
DROP INDEX events_by_message, events_by_received_at, event_duplicates_by_event, jobs_by_event,
           discards_by_event;
ALTER SEQUENCE events_id_seq RENAME TO events_v2_id_seq;
ALTER SEQUENCE event_duplicates_id_seq RENAME TO event_duplicates_v2_id_seq;
ALTER SEQUENCE discards_id_seq RENAME TO discards_v2_id_seq;
ALTER SEQUENCE jobs_id_seq RENAME TO jobs_v2_id_seq;

-- Primary keys include the partition key (PostgreSQL requires it); job ids stay unique because
-- one sequence issues them.
CREATE TABLE events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY,
    source_id   TEXT   NOT NULL,
    message_id  TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    payload     BYTEA  NOT NULL,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE INDEX events_by_message ON events (source_id, message_id, received_at);
CREATE INDEX events_by_received_at ON events (received_at);

CREATE TABLE event_duplicates (
    id          BIGINT GENERATED ALWAYS AS IDENTITY,
    event_id    BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, id)
) PARTITION BY RANGE (event_id);

CREATE TABLE discards (
    id              BIGINT GENERATED ALWAYS AS IDENTITY,
    event_id        BIGINT NOT NULL,
    destination_id  TEXT   NOT NULL,
    subscription_id TEXT,
    reason          TEXT   NOT NULL,
    message         TEXT   NOT NULL,
    PRIMARY KEY (event_id, id)
) PARTITION BY RANGE (event_id);

CREATE TABLE jobs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY,
    event_id        BIGINT NOT NULL,
    destination_id  TEXT   NOT NULL,
    subscription_id TEXT   NOT NULL,
    endpoint        TEXT   NOT NULL,
    method          TEXT   NOT NULL,
    url             TEXT   NOT NULL,
    headers         TEXT   NOT NULL,
    body            BYTEA  NOT NULL,
    created_at      BIGINT NOT NULL,
    replay_of       BIGINT,
    PRIMARY KEY (id, event_id)
) PARTITION BY RANGE (event_id);
CREATE INDEX jobs_by_event ON jobs (event_id);

CREATE TABLE job_transitions (
    job_id   BIGINT NOT NULL,
    seq      BIGINT NOT NULL,
    state    TEXT   NOT NULL,
    at       BIGINT NOT NULL,
    next_at  BIGINT,
    attempt  BIGINT NOT NULL,
    detail   TEXT,
    event_id BIGINT NOT NULL,
    PRIMARY KEY (job_id, seq, event_id)
) PARTITION BY RANGE (event_id);

CREATE TABLE job_attempts (
    job_id           BIGINT  NOT NULL,
    attempt          BIGINT  NOT NULL,
    started_at       BIGINT  NOT NULL,
    duration_ms      BIGINT  NOT NULL,
    status           INTEGER,
    error_class      TEXT,
    response_headers TEXT,
    response_excerpt BYTEA,
    event_id         BIGINT  NOT NULL,
    PRIMARY KEY (job_id, attempt, event_id)
) PARTITION BY RANGE (event_id);

-- One row per generation: the event ids [first_id, end_id) of its partitions, and when it was
-- first seen sealed (the id sequence past its end; Unix milliseconds): every event in it was
-- received before then.
CREATE TABLE event_generations (
    generation BIGINT PRIMARY KEY,
    first_id   BIGINT NOT NULL,
    end_id     BIGINT NOT NULL CHECK (end_id > first_id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sealed_at  BIGINT
);

-- Creates a generation's partition of every event-scoped table. Each is created alone and then
-- attached: ATTACH takes a lock that lets reads and writes of the parent go on, where
-- CREATE TABLE ... PARTITION OF would block them.
CREATE FUNCTION junction_create_generation(g BIGINT, first_id BIGINT, end_id BIGINT)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    parent TEXT;
BEGIN
    INSERT INTO event_generations (generation, first_id, end_id) VALUES (g, first_id, end_id);
    FOREACH parent IN ARRAY ARRAY['events', 'event_duplicates', 'discards', 'jobs',
                                  'job_transitions', 'job_attempts'] LOOP
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING STORAGE INCLUDING COMPRESSION)',
                       parent || '_g' || g, parent);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                       parent, parent || '_g' || g, first_id, end_id);
    END LOOP;
END
$fn$;

-- Generation 0 holds every id issued so far (none on a new database).
DO $do$
DECLARE
    issued BIGINT;
BEGIN
    SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO issued
    FROM events_v2_id_seq;
    issued := greatest(issued, (SELECT coalesce(max(id), 0) FROM events_v2));
    IF issued > 0 THEN
        PERFORM junction_create_generation(0, 1, issued + 1);
    END IF;
END
$do$;

INSERT INTO events (id, source_id, message_id, received_at, payload) OVERRIDING SYSTEM VALUE
SELECT id, source_id, message_id, received_at, payload FROM events_v2;
INSERT INTO event_duplicates (id, event_id, received_at) OVERRIDING SYSTEM VALUE
SELECT id, event_id, received_at FROM event_duplicates_v2;
INSERT INTO discards (id, event_id, destination_id, subscription_id, reason, message)
OVERRIDING SYSTEM VALUE
SELECT id, event_id, destination_id, subscription_id, reason, message FROM discards_v2;
INSERT INTO jobs (id, event_id, destination_id, subscription_id, endpoint, method, url, headers,
                  body, created_at, replay_of) OVERRIDING SYSTEM VALUE
SELECT id, event_id, destination_id, subscription_id, endpoint, method, url, headers, body,
       created_at, replay_of FROM jobs_v2;
INSERT INTO job_transitions (job_id, seq, state, at, next_at, attempt, detail, event_id)
SELECT t.job_id, t.seq, t.state, t.at, t.next_at, t.attempt, t.detail, j.event_id
FROM job_transitions_v2 t JOIN jobs_v2 j ON j.id = t.job_id;
INSERT INTO job_attempts (job_id, attempt, started_at, duration_ms, status, error_class,
                          response_headers, response_excerpt, event_id)
SELECT a.job_id, a.attempt, a.started_at, a.duration_ms, a.status, a.error_class,
       a.response_headers, a.response_excerpt, j.event_id
FROM job_attempts_v2 a JOIN jobs_v2 j ON j.id = a.job_id;

-- New ids continue after the old ones.
SELECT setval(pg_get_serial_sequence('events', 'id'), last_value, is_called)
FROM events_v2_id_seq;
SELECT setval(pg_get_serial_sequence('event_duplicates', 'id'), last_value, is_called)
FROM event_duplicates_v2_id_seq;
SELECT setval(pg_get_serial_sequence('discards', 'id'), last_value, is_called)
FROM discards_v2_id_seq;
SELECT setval(pg_get_serial_sequence('jobs', 'id'), last_value, is_called)
FROM jobs_v2_id_seq;

-- CASCADE: the foreign keys of job_queue and dead_letter to the old jobs go with it.
DROP TABLE job_attempts_v2, job_transitions_v2, discards_v2, event_duplicates_v2, jobs_v2,
           events_v2 CASCADE;
