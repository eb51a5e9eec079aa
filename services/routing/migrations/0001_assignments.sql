-- Where each case is, why, and until when. Written in SQL that PostgreSQL and SQLite read
-- alike: timestamps are microseconds since the Unix epoch (UTC), ids are text, lists JSON text.
CREATE TABLE assignments (
    case_id            TEXT PRIMARY KEY,
    case_number        TEXT NOT NULL,
    organ              TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    state              TEXT NOT NULL,
    mode               TEXT,
    rule               TEXT NOT NULL,
    notice             TEXT NOT NULL,
    hops               TEXT NOT NULL,
    linked_case_number TEXT,
    diversion          TEXT,
    type_of_matter     TEXT NOT NULL,
    category           TEXT NOT NULL,
    problem_location   TEXT NOT NULL,
    channel            TEXT NOT NULL,
    forwarding_bureau  TEXT NOT NULL,
    accused_organ      TEXT,
    flag_group         BOOLEAN NOT NULL,
    flag_leapfrog      BOOLEAN NOT NULL,
    flag_repeat        BOOLEAN NOT NULL,
    received_at        BIGINT NOT NULL,
    route_due          BIGINT NOT NULL,
    organ_received_at  BIGINT,
    objection_due      BIGINT,
    accepted_at        BIGINT,
    handling_due       BIGINT,
    report_due         BIGINT,
    objection_reason   TEXT,
    history            TEXT NOT NULL,
    version            BIGINT NOT NULL
);

CREATE INDEX assignments_by_organ ON assignments (organ, state);

-- Client request ids already applied, so that a retried command is answered, not re-applied.
CREATE TABLE applied_requests (
    request_id TEXT PRIMARY KEY,
    case_id    TEXT NOT NULL,
    applied_at BIGINT NOT NULL
);
