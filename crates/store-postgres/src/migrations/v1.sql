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
