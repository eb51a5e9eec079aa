#!/usr/bin/env bash
# Bulk import benchmark: `petition import` of generated historical cases (1% bad rows) into the
# suite on PostgreSQL + Redis, then the same file again (which must import nothing), then the
# single RegisterPetition path of tests/bench/intake.sh on the same machine for comparison.
#
#   tests/bench/import.sh                  # 1,000,000 rows
#   ROWS=100000 tests/bench/import.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

ROWS="${ROWS:-1000000}"
PG_ADMIN="${PETITION_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
REDIS_URL="${PETITION_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
DB="petition_import_$$"
URL="${PG_ADMIN%/*}/$DB"
PREFIX="import$$:"
PORT="${BENCH_PORT:-50161}"
ADMIN_PORT="${BENCH_ADMIN_PORT:-9574}"
WORK="$(mktemp -d)"
SUITE_PID=""

cleanup() {
  [ -n "$SUITE_PID" ] && kill "$SUITE_PID" 2>/dev/null && wait "$SUITE_PID" 2>/dev/null
  psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

rss() { awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' "/proc/$1/status"; }

cargo build --release -q -p petition-suite -p petition-cli
cargo build --release -q -p petition-e2e --bin history-gen
psql -q "$PG_ADMIN" -c "CREATE DATABASE $DB"

echo "== generating $ROWS historical cases (1% bad rows)"
/usr/bin/time -f "   %e s, %M KiB peak" target/release/history-gen --rows "$ROWS" --bad-percent 1 >"$WORK/history.jsonl"
ls -l "$WORK/history.jsonl" | awk '{printf "   %.0f MB\n", $5/1e6}'

RUST_LOG=warn target/release/petition-suite --dev --database-url "$URL" --redis-url "$REDIS_URL" \
  --stream-prefix "$PREFIX" --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  --rate-limit-per-minute 0 --log-format json >"$WORK/suite.log" 2>&1 &
SUITE_PID=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$ADMIN_PORT/readyz" >/dev/null && break; sleep 0.1; done
echo "   suite at rest: $(rss $SUITE_PID)"

export PETITION_ADDR="127.0.0.1:$PORT"
PETITION_TOKEN="$(target/release/petition token issue --dev --org shanxi.bureau --role admin 2>/dev/null)"
export PETITION_TOKEN

# exit code 5: some rows were rejected, as generated; anything else is a failure
imported() { # the import, timed; fails unless it ends with 0 or 5
  local rc=0
  /usr/bin/time -f "   CLI: %e s, %M KiB peak" target/release/petition import "$WORK/history.jsonl" \
    --source-system old-xf --quiet "$@" || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 5 ] || { echo "import failed with exit code $rc"; exit 1; }
}

echo "== first import"
imported
echo "   suite after: $(rss $SUITE_PID)"
echo "   rejected rows written: $(wc -l <"$WORK/history.jsonl.rejected.jsonl")"
psql -qtA "$URL" -c "SELECT 'cases in intake: ' || count(*) FROM intake.cases"

BEFORE="$(psql -qtA "$URL" -c "SELECT count(*) FROM intake.cases")"
echo "== the same file again"
imported --restart
AFTER="$(psql -qtA "$URL" -c "SELECT count(*) FROM intake.cases")"
echo "   cases in intake: $AFTER"
[ "$BEFORE" = "$AFTER" ] || { echo "the second run imported $((AFTER - BEFORE)) cases"; exit 1; }

kill "$SUITE_PID"; wait "$SUITE_PID" 2>/dev/null || true; SUITE_PID=""

echo "== the single RegisterPetition path, for comparison"
CLIENTS="${CLIENTS:-16}" tests/bench/intake.sh
