-- Deadlines counted into a year the holiday calendar does not cover are provisional until
-- that year is loaded; then they are counted again (docs/adr/0012-provisional-deadlines.md).
-- floor_day: the last day announced while provisional, which a recount never goes below.
ALTER TABLE clocks ADD COLUMN floor_day TEXT;
ALTER TABLE clocks ADD COLUMN provisional SMALLINT NOT NULL DEFAULT 0;
-- Rows written before this column existed are checked once: the first recount reads each open
-- clock, and marks only those still provisional.
UPDATE clocks SET provisional = 1 WHERE state IN ('running', 'paused', 'overdue');
CREATE INDEX clocks_provisional ON clocks (case_id, kind) WHERE provisional = 1;
