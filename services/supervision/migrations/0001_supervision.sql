-- Every case supervision follows, its statutory clocks, its timeline and the notices sent
-- about it. SQL that PostgreSQL and SQLite read alike: timestamps are microseconds since the
-- Unix epoch (UTC), ids text, dates ISO text (YYYY-MM-DD, Beijing calendar days).
CREATE TABLE cases (
    case_id                  TEXT PRIMARY KEY,
    case_number              TEXT NOT NULL,
    received_by              TEXT NOT NULL,
    -- the bureau that routes it, and the organ that owes the handling now
    bureau                   TEXT,
    holder                   TEXT,
    -- the accused party's organ, for accusations only (Art. 30 ¶3)
    accused_organ            TEXT,
    stage                    TEXT NOT NULL,
    first_routed_at          BIGINT,
    extension_requested_days BIGINT,
    extension_reason         TEXT,
    -- SHA-256 of the petitioner's query code: checks a rating or review request
    query_code_digest        TEXT,
    answered_by              TEXT,
    bureau_rating            TEXT,
    organ_rating             TEXT,
    rating_reason            TEXT,
    rated_at                 BIGINT,
    final_reason             TEXT,
    -- the earlier case this petition repeats (same petitioner, same matter)
    repeat_of                TEXT,
    -- 包案: the leader in charge
    leader                   TEXT,
    leader_organ             TEXT,
    leader_plan              TEXT,
    leader_target_day        TEXT,
    leader_taken_at          BIGINT,
    -- 积案: flagged by hand, and its resolution (化解)
    backlog_flag             SMALLINT NOT NULL,
    resolved_at              BIGINT,
    resolution               TEXT,
    petitioner_confirmed     SMALLINT NOT NULL,
    version                  BIGINT NOT NULL
);
CREATE INDEX cases_by_repeat ON cases (repeat_of);
CREATE INDEX cases_by_number ON cases (case_number);

CREATE TABLE clocks (
    case_id        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    organ          TEXT,
    started_at     BIGINT NOT NULL,
    -- a period of the law, or a date the bureau set (an assignment's report)
    period_days    BIGINT,
    working_days   SMALLINT NOT NULL,
    until_day      TEXT,
    extension_days BIGINT NOT NULL,
    paused_days    BIGINT NOT NULL,
    -- days paused after the original end, in the extension
    paused_days_late BIGINT NOT NULL DEFAULT 0,
    paused_since   BIGINT,
    state          TEXT NOT NULL,
    stage          TEXT NOT NULL,
    ended_at       BIGINT,
    -- derived from the above on every write, so that lists sort and filter in SQL
    last_day       TEXT NOT NULL,
    due_at         BIGINT NOT NULL,
    -- when the engine must next look at this clock; NULL when it never will
    next_fire_at   BIGINT,
    PRIMARY KEY (case_id, kind)
);

-- The engine reads only what is due: O(due), not O(open).
CREATE INDEX clocks_to_fire ON clocks (next_fire_at) WHERE next_fire_at IS NOT NULL;
CREATE INDEX clocks_by_organ ON clocks (organ, state, due_at, case_id);

CREATE TABLE timeline (
    entry_id TEXT PRIMARY KEY,
    case_id  TEXT NOT NULL,
    at       BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    text     TEXT NOT NULL,
    actor    TEXT NOT NULL
);
CREATE INDEX timeline_by_case ON timeline (case_id, at, entry_id);

CREATE TABLE notices (
    notice_id       TEXT PRIMARY KEY,
    case_id         TEXT NOT NULL,
    case_number     TEXT NOT NULL,
    organ           TEXT NOT NULL,
    accused_organ   TEXT,
    kind            TEXT NOT NULL,
    clock           TEXT,
    text            TEXT NOT NULL,
    copy_to         TEXT NOT NULL,
    issued_at       BIGINT NOT NULL,
    issued_by       TEXT NOT NULL,
    feedback_due    BIGINT,
    acknowledged_at BIGINT,
    acknowledged_by TEXT,
    feedback        TEXT
);
CREATE INDEX notices_by_organ ON notices (organ, issued_at, notice_id);
