#!/usr/bin/env bash
# Intake throughput benchmark: RegisterPetition over gRPC against PostgreSQL + Redis, beside
# pgbench running the same transaction on the same machine.
#
#   tests/bench/intake.sh                 # 1, 16 and 64 clients, 15 s each
#   CLIENTS=16 SECONDS_PER_RUN=30 tests/bench/intake.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

CLIENTS="${CLIENTS:-1,16,64}"
RUN_SECONDS="${SECONDS_PER_RUN:-15}"
PG_ADMIN="${PETITION_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
REDIS_URL="${PETITION_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
# Separate fresh databases, so neither run inherits the other's rows, bloat or checkpoint.
DB="petition_bench_$$"
DB_PGBENCH="petition_bench_pgb_$$"
URL="${PG_ADMIN%/*}/$DB"
URL_PGBENCH="${PG_ADMIN%/*}/$DB_PGBENCH"
PREFIX="bench$$:"
PORT="${BENCH_PORT:-50151}"
ADMIN_PORT="${BENCH_ADMIN_PORT:-9564}"
INTAKE_PID=""

cleanup() {
  [ -n "$INTAKE_PID" ] && kill "$INTAKE_PID" 2>/dev/null && wait "$INTAKE_PID" 2>/dev/null
  psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB_PGBENCH WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
}
trap cleanup EXIT

cargo build --release -q -p petition-intake -p petition-e2e --bin petition-intake --bin intake-load
psql -q "$PG_ADMIN" -c "CREATE DATABASE $DB"
psql -q "$PG_ADMIN" -c "CREATE DATABASE $DB_PGBENCH"

start_intake() { # database URL; the service migrates its schema at start-up
  RUST_LOG="${RUST_LOG:-info}" target/release/petition-intake --dev \
    --database-url "$1" --redis-url "$REDIS_URL" --stream-prefix "$PREFIX" \
    --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
    --pg-max-connections 32 --rate-limit-per-minute 0 --log-format json >/dev/null 2>&1 &
  INTAKE_PID=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
}
stop_intake() { kill "$INTAKE_PID"; wait "$INTAKE_PID" 2>/dev/null || true; INTAKE_PID=""; }

start_intake "$URL_PGBENCH"; stop_intake

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; PostgreSQL $(psql -tA "$PG_ADMIN" -c 'show server_version'); Redis $(redis-cli -u "$REDIS_URL" info server | awk -F: '/redis_version/{print $2}' | tr -d '\r')"
psql -q "$PG_ADMIN" -c CHECKPOINT
start_intake "$URL"

echo "== petition-intake (release) over gRPC, PostgreSQL + Redis"
target/release/intake-load --target "http://127.0.0.1:$PORT" --clients "$CLIENTS" --seconds "$RUN_SECONDS"
echo "   events on the stream: $(redis-cli -u "$REDIS_URL" xlen "${PREFIX}petition.intake.v1")"
stop_intake
psql -q "$PG_ADMIN" -c CHECKPOINT

echo "== pgbench, the same transaction (tests/bench/register.sql), prepared statements"
printf '%8s %10s %10s %12s\n' clients tx tps "avg lat ms"
for c in ${CLIENTS//,/ }; do
  j=$(( c < $(nproc) ? c : $(nproc) ))
  out=$(pgbench -n -M prepared -f tests/bench/register.sql -c "$c" -j "$j" -T "$RUN_SECONDS" "$URL_PGBENCH" 2>&1) || { echo "$out" >&2; exit 1; }
  tx=$(awk '/number of transactions actually processed/{print $NF}' <<<"$out" | cut -d/ -f1)
  tps=$(awk '/^tps/{print $3; exit}' <<<"$out")
  lat=$(awk '/latency average/{print $4}' <<<"$out")
  printf '%8s %10s %10s %12s\n' "$c" "$tx" "$tps" "$lat"
done
