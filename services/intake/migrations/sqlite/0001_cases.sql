-- SQLite twin of the PostgreSQL schema. Timestamps are microseconds since the Unix epoch (UTC)
-- so that they compare and sort as numbers; UUIDs are 16-byte blobs.
CREATE TABLE cases (
    id                     BLOB PRIMARY KEY,
    case_number            TEXT UNIQUE,
    query_code             TEXT NOT NULL UNIQUE,
    channel                TEXT NOT NULL,
    received_by            TEXT NOT NULL,
    received_at            INTEGER NOT NULL,
    registered_at          INTEGER NOT NULL,
    registered_by          TEXT NOT NULL,
    category               TEXT NOT NULL,
    type_of_matter         TEXT NOT NULL,
    diversion              TEXT,
    problem_location       TEXT NOT NULL,
    title                  TEXT NOT NULL,
    content                TEXT NOT NULL,
    people_present         INTEGER NOT NULL,
    people_affected        INTEGER NOT NULL,
    representatives        INTEGER NOT NULL,
    accused_name_sealed    BLOB,
    accused_organ          TEXT,
    source_system          TEXT,
    external_ref           TEXT,
    fingerprint            BLOB NOT NULL,
    competent_organ        TEXT,
    status                 TEXT NOT NULL DEFAULT 'registered',
    flag_group             INTEGER NOT NULL,
    flag_leapfrog          INTEGER NOT NULL,
    flag_repeat            INTEGER NOT NULL,
    repeat_of_case_id      BLOB,
    repeat_of_case_number  TEXT,
    first_at_organ         INTEGER NOT NULL,
    open_below_case_number TEXT
);

CREATE UNIQUE INDEX cases_idempotency_key ON cases (source_system, external_ref)
    WHERE source_system IS NOT NULL;
CREATE INDEX cases_by_received ON cases (received_at DESC, id DESC);
CREATE INDEX cases_by_organ ON cases (received_by, received_at DESC, id DESC);
CREATE INDEX cases_by_matter ON cases (category, problem_location);

CREATE TABLE petitioners (
    case_id          BLOB NOT NULL REFERENCES cases (id),
    ordinal          INTEGER NOT NULL,
    name             TEXT NOT NULL,
    id_type          TEXT,
    id_hash          BLOB,
    id_number_sealed BLOB,
    phone_sealed     BLOB,
    address_sealed   BLOB,
    is_main          INTEGER NOT NULL,
    sex              TEXT,
    age_band         TEXT,
    PRIMARY KEY (case_id, ordinal)
);

CREATE INDEX petitioners_by_id_hash ON petitioners (id_hash) WHERE id_hash IS NOT NULL;

CREATE TABLE case_number_counters (
    organ_id TEXT NOT NULL,
    year     INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (organ_id, year)
);
