-- Analytics' own copy of every event it applied, the case facts folded from them, and the
-- monthly rollups the figures are read from. SQL that PostgreSQL and SQLite read alike:
-- timestamps are microseconds since the Unix epoch (UTC), months YYYYMM numbers, flags 0/1.
-- No personal data: age band and sex of the main petitioner at most.
-- An event belongs to one case, so the key (case_id, event_id) is unique exactly when the
-- event id is, and the one index serves both the redelivery check and a rebuild, which reads
-- the events case by case.
CREATE TABLE events (
    case_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    -- the envelope as it came (protobuf), type and time included
    payload     BYTEA NOT NULL,
    PRIMARY KEY (case_id, event_id)
);

CREATE TABLE cases (
    case_id          TEXT PRIMARY KEY,
    registered       SMALLINT NOT NULL,
    case_number      TEXT,
    channel          TEXT,
    received_by      TEXT,
    received_at      BIGINT,
    registered_at    BIGINT,
    category         TEXT,
    type_of_matter   TEXT,
    location         TEXT,
    people_present   BIGINT,
    petitioner_count BIGINT,
    age_band         TEXT,
    sex              TEXT,
    is_group         SMALLINT,
    leapfrog         SMALLINT,
    is_repeat        SMALLINT,
    repeat_of        TEXT,
    imported         SMALLINT,
    accused_organ    TEXT,
    routed_at        BIGINT,
    -- the latest route, acceptance, rating and leader: the instant that set each, which is how
    -- a later one replaces it whatever order the events arrive in
    route_at         BIGINT,
    route_organ      TEXT,
    route_outcome    TEXT,
    route_mode       TEXT,
    route_bureau     TEXT,
    -- where an upheld objection (异议成立) moved the case, and when
    reassigned_at    BIGINT,
    reassigned_organ TEXT,
    accepted_at      BIGINT,
    accepted_by_at   BIGINT,
    accepted_by      TEXT,
    handling_due     BIGINT,
    extended         SMALLINT NOT NULL,
    objections       BIGINT NOT NULL,
    answered_at      BIGINT,
    rating_at        BIGINT,
    bureau_rating    TEXT,
    organ_rating     TEXT,
    reviews          BIGINT NOT NULL,
    final_at         BIGINT,
    urged            BIGINT NOT NULL,
    supervised       BIGINT NOT NULL,
    leader_at        BIGINT,
    leader_organ_at  BIGINT,
    leader_organ     TEXT,
    backlog_flag     SMALLINT NOT NULL,
    resolved_at      BIGINT,
    -- derived when written, and kept: the rollups hold what the row contributed as written
    organ            TEXT,
    is_open          SMALLINT NOT NULL,
    received_month   BIGINT,
    registered_month BIGINT,
    routed_month     BIGINT,
    route_due        BIGINT,
    accept_due       BIGINT
);
-- the export's pages, in the order it writes them
CREATE INDEX cases_by_time ON cases (received_at, case_id);
CREATE INDEX cases_by_repeat ON cases (repeat_of) WHERE repeat_of IS NOT NULL;
CREATE INDEX cases_open ON cases (received_at) WHERE is_open = 1;
-- the parts of the rates that grow with time alone: open cases past a limit
CREATE INDEX cases_unrouted ON cases (route_due) WHERE is_open = 1 AND routed_at IS NULL;
CREATE INDEX cases_unaccepted ON cases (accept_due)
    WHERE is_open = 1 AND accepted_at IS NULL AND routed_at IS NOT NULL;
CREATE INDEX cases_unanswered ON cases (handling_due)
    WHERE is_open = 1 AND answered_at IS NULL AND handling_due IS NOT NULL;

-- Rollups. `shard`: each stream's consumer moves its own copy of a cell, so that the three
-- never queue on the same row; every read sums over the shards.
CREATE TABLE tally (
    shard       SMALLINT NOT NULL,
    month       BIGINT NOT NULL,
    received_by TEXT NOT NULL,
    organ       TEXT NOT NULL,
    accused     TEXT NOT NULL,
    dim         TEXT NOT NULL,
    value       TEXT NOT NULL,
    cases       BIGINT NOT NULL,
    persons     BIGINT NOT NULL,
    PRIMARY KEY (month, dim, value, received_by, organ, accused, shard)
);

CREATE TABLE scores (
    shard           SMALLINT NOT NULL,
    basis           TEXT NOT NULL,
    month           BIGINT NOT NULL,
    role            TEXT NOT NULL,
    organ           TEXT NOT NULL,
    accused         TEXT NOT NULL,
    cases           BIGINT NOT NULL,
    timely_num      BIGINT NOT NULL,
    timely_den      BIGINT NOT NULL,
    on_time_num     BIGINT NOT NULL,
    on_time_den     BIGINT NOT NULL,
    answered        BIGINT NOT NULL,
    rated           BIGINT NOT NULL,
    satisfied       BIGINT NOT NULL,
    repeats         BIGINT NOT NULL,
    leader          BIGINT NOT NULL,
    leader_resolved BIGINT NOT NULL,
    PRIMARY KEY (basis, month, role, organ, accused, shard)
);

-- Suggestions made to the Party committee and government, and whether they were adopted
-- (Art. 41 ¶2).
CREATE TABLE suggestions (
    id          TEXT PRIMARY KEY,
    organ       TEXT NOT NULL,
    made_on     TEXT NOT NULL,
    made_month  BIGINT NOT NULL,
    addressee   TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    adoption    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX suggestions_by_month ON suggestions (made_month);
