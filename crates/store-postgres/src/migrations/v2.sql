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
