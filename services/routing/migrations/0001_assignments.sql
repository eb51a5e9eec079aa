-- Where each case is, why, and until when. Written in SQL that PostgreSQL and SQLite read
-- alike: timestamps are microseconds since the Unix epoch (UTC), ids are text, flags 0/1,
-- lists JSON text.
CREATE TABLE assignments (
    case_id                TEXT PRIMARY KEY,
    case_number            TEXT NOT NULL,
    received_by            TEXT NOT NULL,
    organ                  TEXT NOT NULL,
    outcome                TEXT NOT NULL,
    state                  TEXT NOT NULL,
    mode                   TEXT,
    rule                   TEXT NOT NULL,
    notice                 TEXT NOT NULL,
    hops                   TEXT NOT NULL,
    linked_case_number     TEXT,
    diversion              TEXT,
    type_of_matter         TEXT,
    category               TEXT NOT NULL,
    problem_location       TEXT NOT NULL,
    channel                TEXT NOT NULL,
    forwarding_bureau      TEXT NOT NULL,
    -- the accused party's organ, for accusations only (Art. 30 ¶3)
    accused_organ          TEXT,
    flag_group             SMALLINT NOT NULL,
    flag_leapfrog          SMALLINT NOT NULL,
    flag_repeat            SMALLINT NOT NULL,
    received_at            BIGINT NOT NULL,
    route_due              BIGINT NOT NULL,
    organ_received_at      BIGINT,
    objection_due          BIGINT,
    accepted_at            BIGINT,
    handling_due           BIGINT,
    report_due             BIGINT,
    -- what orders the inbox; the largest BIGINT when nothing is due, so lists sort in SQL
    due_at                 BIGINT NOT NULL,
    objection_reason       TEXT,
    history                TEXT NOT NULL,
    version                BIGINT NOT NULL,
    reply_outcome          TEXT,
    reply_text             TEXT,
    legal_basis            TEXT,
    service_record         TEXT,
    replied_at             BIGINT,
    served_at              BIGINT,
    extension_days         BIGINT,
    extension_reason       TEXT,
    completion_report      TEXT,
    completion_reported_at BIGINT
);

CREATE INDEX assignments_inbox ON assignments (organ, state, due_at, case_id);
CREATE INDEX assignments_by_bureau ON assignments (forwarding_bureau, state, route_due, case_id);

-- Client request ids already applied, per organ, so that a retried command is answered, not
-- re-applied, and one organ's ids never collide with another's.
CREATE TABLE applied_requests (
    organ      TEXT NOT NULL,
    request_id TEXT NOT NULL,
    case_id    TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (organ, request_id)
);
