-- The transactional outbox and the processed-event marks of one service, in its own schema.
-- Times are microseconds since the Unix epoch (UTC), read from the service's clock. Written
-- for PostgreSQL; SQLite reads the same text with its auto-increment spelled its own way.
CREATE TABLE outbox (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    stream       TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    published_at BIGINT,
    -- the Redis entry id the row's batch ended at on its stream, to find what a restarted
    -- Redis lost
    entry_ms     BIGINT,
    entry_seq    BIGINT
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_by_stream ON outbox (stream, published_at);

CREATE TABLE processed_events (
    consumer_group TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    processed_at   BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, event_id)
);
CREATE INDEX processed_events_by_time ON processed_events (processed_at);
