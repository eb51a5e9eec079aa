-- Cases registered at intake, in SQL that PostgreSQL and SQLite read alike: ids are text,
-- times are microseconds since the Unix epoch (UTC), flags are 0/1. Personal data lives only in
-- *_sealed columns (AEAD) and as a keyed hash of the identity document.
CREATE TABLE cases (
    id                     TEXT PRIMARY KEY,
    case_number            TEXT UNIQUE,
    query_code             TEXT NOT NULL UNIQUE,
    channel                TEXT NOT NULL,
    received_by            TEXT NOT NULL,
    received_at            BIGINT NOT NULL,
    registered_at          BIGINT NOT NULL,
    registered_by          TEXT NOT NULL,
    category               TEXT NOT NULL,
    type_of_matter         TEXT NOT NULL,
    diversion              TEXT,
    problem_location       TEXT NOT NULL,
    title                  TEXT NOT NULL,
    content                TEXT NOT NULL,
    people_present         BIGINT NOT NULL,
    people_affected        BIGINT NOT NULL,
    representatives        BIGINT NOT NULL,
    accused_name_sealed    BYTEA,
    -- the accused party's organ, for accusations only (Art. 30 ¶3)
    accused_organ          TEXT,
    source_system          TEXT,
    external_ref           TEXT,
    fingerprint            BYTEA NOT NULL,
    competent_organ        TEXT,
    flag_group             SMALLINT NOT NULL,
    flag_leapfrog          SMALLINT NOT NULL,
    flag_repeat            SMALLINT NOT NULL,
    repeat_of_case_id      TEXT,
    repeat_of_case_number  TEXT,
    repeat_of_open         SMALLINT NOT NULL,
    first_at_organ         SMALLINT NOT NULL,
    open_below_case_number TEXT,
    -- where the case stands, as the other services report it; the step that set it orders
    -- late deliveries (an older step never overwrites a newer one)
    status                 TEXT NOT NULL,
    holder                 TEXT,
    -- the bureau that routes it, as routing reports (it may act on the case)
    bureau                 TEXT,
    status_at              BIGINT NOT NULL,
    status_event           TEXT NOT NULL
);

CREATE UNIQUE INDEX cases_idempotency_key ON cases (source_system, external_ref);
CREATE INDEX cases_by_received ON cases (received_at DESC, id DESC);
CREATE INDEX cases_by_organ ON cases (received_by, received_at DESC, id DESC);
CREATE INDEX cases_by_holder ON cases (holder, received_at DESC, id DESC);
CREATE INDEX cases_by_matter ON cases (category, problem_location);

CREATE TABLE petitioners (
    case_id          TEXT NOT NULL REFERENCES cases (id),
    ordinal          BIGINT NOT NULL,
    name             TEXT NOT NULL,
    id_type          TEXT,
    id_hash          BYTEA,
    id_number_sealed BYTEA,
    phone_sealed     BYTEA,
    address_sealed   BYTEA,
    is_main          SMALLINT NOT NULL,
    sex              TEXT,
    age_band         TEXT,
    PRIMARY KEY (case_id, ordinal)
);

CREATE INDEX petitioners_by_id_hash ON petitioners (id_hash) WHERE id_hash IS NOT NULL;

-- Gapless case-number sequence per register (the region code that prefixes the number) and
-- year: two organs of one region share a register, or their numbers would collide. The row
-- lock taken when a registration draws its number serialises that register, so it is drawn
-- last.
CREATE TABLE case_number_counters (
    region   TEXT NOT NULL,
    year     BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (region, year)
);

-- The case's timeline: its registration and each step another service reported, once per
-- event.
CREATE TABLE case_steps (
    case_id     TEXT NOT NULL REFERENCES cases (id),
    event_id    TEXT NOT NULL,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    organ       TEXT NOT NULL,
    -- for staff: the rule, the reason
    note        TEXT NOT NULL,
    -- for the petitioner: the notice, the extension's reason
    public_note TEXT NOT NULL,
    PRIMARY KEY (case_id, event_id)
);
