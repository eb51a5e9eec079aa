-- Federation (DESIGN §5b): cases that travel between a city deployment and a district one.

-- A case a peer deployment sent down: the peer's name, its case number, and what it asked
-- (the Upstream message, protobuf-encoded, as the peer sent it).
CREATE TABLE upstream_cases (
    case_id          TEXT PRIMARY KEY REFERENCES cases (id),
    peer             TEXT NOT NULL,
    peer_case_number TEXT NOT NULL,
    organ            TEXT NOT NULL,
    upstream         BYTEA NOT NULL
);

-- The steps of those cases, in the order they were recorded here, for the peer to pull
-- (WatchCases). `seq` is gapless per peer: it is drawn from peer_feed_counters, whose row lock
-- is held until commit, so the rows of one peer commit in seq order and a reader that resumes
-- after seq N never skips one that commits later with a lower number.
CREATE TABLE peer_feed (
    peer     TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    case_id  TEXT NOT NULL,
    event_id TEXT NOT NULL,
    -- the step's event, protobuf-encoded, as our services published it
    payload  BYTEA NOT NULL,
    PRIMARY KEY (peer, seq)
);
CREATE UNIQUE INDEX peer_feed_once ON peer_feed (case_id, event_id);

CREATE TABLE peer_feed_counters (
    peer     TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);

-- Cases routed from here to an organ a peer deployment serves, and where their delivery
-- stands.
CREATE TABLE exchanges (
    case_id          TEXT PRIMARY KEY REFERENCES cases (id),
    case_number      TEXT NOT NULL,
    peer             TEXT NOT NULL,
    organ            TEXT NOT NULL,
    -- the bureau that routed it: whose supervisors list and retry the exchange
    routed_by        TEXT NOT NULL,
    accused_organ    TEXT,
    -- the Upstream message sent with it, protobuf-encoded
    upstream         BYTEA NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    reason           TEXT NOT NULL,
    peer_case_number TEXT,
    -- in a conflict, both versions (ExchangeVersion, protobuf-encoded)
    ours             BYTEA,
    theirs           BYTEA,
    steps_received   BIGINT NOT NULL,
    last_step_at     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX exchanges_due ON exchanges (next_attempt_at);
CREATE INDEX exchanges_by_status ON exchanges (status, created_at, case_id);
CREATE UNIQUE INDEX exchanges_by_peer_ref ON exchanges (peer, case_number);

-- How far each peer's steps were applied here (the WatchCases cursor), written in the
-- transaction that applies the step, so a step is applied once however often it is sent.
CREATE TABLE peer_cursors (
    peer TEXT PRIMARY KEY,
    seq  BIGINT NOT NULL
);
