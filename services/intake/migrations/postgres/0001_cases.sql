-- Cases registered at intake. Personal data lives only in *_sealed columns (AEAD) and as a
-- keyed hash of the identity document.
CREATE TABLE cases (
    id                     UUID PRIMARY KEY,
    case_number            TEXT UNIQUE,
    query_code             TEXT NOT NULL UNIQUE,
    channel                TEXT NOT NULL,
    received_by            TEXT NOT NULL,
    received_at            TIMESTAMPTZ NOT NULL,
    registered_at          TIMESTAMPTZ NOT NULL,
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
    accused_name_sealed    BYTEA,
    accused_organ          TEXT,
    source_system          TEXT,
    external_ref           TEXT,
    fingerprint            BYTEA NOT NULL,
    competent_organ        TEXT,
    status                 TEXT NOT NULL DEFAULT 'registered',
    flag_group             BOOLEAN NOT NULL,
    flag_leapfrog          BOOLEAN NOT NULL,
    flag_repeat            BOOLEAN NOT NULL,
    repeat_of_case_id      UUID,
    repeat_of_case_number  TEXT,
    first_at_organ         BOOLEAN NOT NULL,
    open_below_case_number TEXT
);

CREATE UNIQUE INDEX cases_idempotency_key ON cases (source_system, external_ref)
    WHERE source_system IS NOT NULL;
CREATE INDEX cases_by_received ON cases (received_at DESC, id DESC);
CREATE INDEX cases_by_organ ON cases (received_by, received_at DESC, id DESC);
CREATE INDEX cases_by_matter ON cases (category, problem_location);

CREATE TABLE petitioners (
    case_id          UUID NOT NULL REFERENCES cases (id),
    ordinal          INTEGER NOT NULL,
    name             TEXT NOT NULL,
    id_type          TEXT,
    id_hash          BYTEA,
    id_number_sealed BYTEA,
    phone_sealed     BYTEA,
    address_sealed   BYTEA,
    is_main          BOOLEAN NOT NULL,
    sex              TEXT,
    age_band         TEXT,
    PRIMARY KEY (case_id, ordinal)
);

CREATE INDEX petitioners_by_id_hash ON petitioners (id_hash) WHERE id_hash IS NOT NULL;

-- Gapless case-number sequence per registering organ and year. The row lock taken when a
-- registration draws its number serialises that organ's registrations, so it is drawn last.
CREATE TABLE case_number_counters (
    organ_id TEXT NOT NULL,
    year     INTEGER NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (organ_id, year)
);
