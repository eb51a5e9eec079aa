#!/usr/bin/env bash
# Analytics benchmark on PostgreSQL + Redis: a generated history of CASES cases (about seven
# events each) published to the streams, then ingest rate, query latency (situation,
# scorecards, trend, the yearly report) and rebuild rate. Writes the 2025 report next to it.
#
#   tests/bench/analytics.sh                  # 1,000,000 cases
#   CASES=100000 tests/bench/analytics.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

CASES="${CASES:-1000000}"
PG_ADMIN="${PETITION_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
REDIS_URL="${PETITION_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
DB="petition_analytics_$$"
URL="${PG_ADMIN%/*}/$DB"
PREFIX="analytics$$:"

cleanup() {
  psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
}
trap cleanup EXIT

cargo build --release -q -p petition-e2e --bin analytics-bench
psql -q "$PG_ADMIN" -c "CREATE DATABASE $DB"
RUST_LOG=warn /usr/bin/time -f "analytics-bench: %e s, %M KiB peak" target/release/analytics-bench \
  --cases "$CASES" --months "${MONTHS:-35}" --database-url "$URL" --redis-url "$REDIS_URL" --stream-prefix "$PREFIX" \
  --report-out "${REPORT_OUT:-situation-2025.html}"
