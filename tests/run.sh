#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL and Redis.
#
# Where they are: PETITION_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)
# and PETITION_TEST_REDIS_URL (default redis://127.0.0.1:6379). If one does not answer, a
# throwaway instance is started from the installed server binaries (initdb/pg_ctl,
# redis-server) in a temp dir on a free port and removed afterwards. If the binaries are
# missing too: outside CI the storage tests skip and this script says so; under CI=true that
# is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

PG_URL="${PETITION_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
REDIS_URL="${PETITION_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
TMP_ROOT=""
PG_DATA=""
PG_CTL=""
REDIS_PORT=""
SKIPPED=()

say() { printf 'tests/run.sh: %s\n' "$*" >&2; }

host_port() { # URL -> "host port"
  local rest="${1#*://}"; rest="${rest#*@}"; rest="${rest%%/*}"
  local host="${rest%%:*}" port="${rest##*:}"
  [ "$port" = "$rest" ] && port="$2"
  printf '%s %s' "${host:-127.0.0.1}" "$port"
}

answers() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $(( 20000 + RANDOM % 20000 ))
}

tmp_root() {
  if [ -z "$TMP_ROOT" ]; then
    TMP_ROOT="$(mktemp -d -t petition-tests-XXXXXX)"
    chmod 755 "$TMP_ROOT"
  fi
}

cleanup() {
  if [ -n "$PG_CTL" ] && [ -n "$PG_DATA" ]; then
    as_pg "$PG_CTL" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1
  fi
  if [ -n "$REDIS_PORT" ]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
  fi
  [ -n "$TMP_ROOT" ] && rm -rf "$TMP_ROOT"
}
trap cleanup EXIT

as_pg() { # initdb and postgres refuse to run as root
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

find_pg_bin() {
  local name="$1" dir
  command -v "$name" 2>/dev/null && return
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/$name" ] && { echo "$dir/$name"; return; }
  done
  return 1
}

start_throwaway_postgres() {
  local initdb pg_ctl port
  initdb="$(find_pg_bin initdb)" || return 1
  pg_ctl="$(find_pg_bin pg_ctl)" || return 1
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then return 1; fi
  tmp_root
  port="$(free_port)"
  PG_DATA="$TMP_ROOT/pg"
  mkdir -p "$PG_DATA"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DATA"
  as_pg "$initdb" -D "$PG_DATA" -A trust -U postgres >"$TMP_ROOT/initdb.log" 2>&1 || return 1
  as_pg "$pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
    -o "-p $port -k $PG_DATA -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" \
    start >/dev/null 2>&1 || return 1
  PG_CTL="$pg_ctl"
  PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  say "started a throwaway PostgreSQL on port $port"
}

start_throwaway_redis() {
  command -v redis-server >/dev/null || return 1
  tmp_root
  local port; port="$(free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$TMP_ROOT" --daemonize yes --logfile "$TMP_ROOT/redis.log" >/dev/null || return 1
  for _ in $(seq 50); do answers 127.0.0.1 "$port" && break; sleep 0.1; done
  REDIS_PORT="$port"
  REDIS_URL="redis://127.0.0.1:$port"
  say "started a throwaway Redis on port $port"
}

read -r pg_host pg_port <<<"$(host_port "$PG_URL" 5432)"
if ! answers "$pg_host" "$pg_port"; then
  say "no PostgreSQL answers at $pg_host:$pg_port"
  start_throwaway_postgres || SKIPPED+=("PostgreSQL (install postgresql, or set PETITION_TEST_DATABASE_URL)")
fi
read -r redis_host redis_port <<<"$(host_port "$REDIS_URL" 6379)"
if ! answers "$redis_host" "$redis_port"; then
  say "no Redis answers at $redis_host:$redis_port"
  start_throwaway_redis || SKIPPED+=("Redis (install redis-server, or set PETITION_TEST_REDIS_URL)")
fi

if [ "${#SKIPPED[@]}" -gt 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    say "CI=true and these are unavailable: ${SKIPPED[*]}"
    exit 1
  fi
  say "SKIPPING the tests that need: ${SKIPPED[*]}"
  say "only the pure and embedded-default (SQLite) tests will do real work."
fi

# The console's browser walk (services/suite/tests/console.rs) runs playwright-core and
# axe-core from the npm registry, at the versions package-lock.json pins.
BROWSER_DIR=services/console/tests/browser
if [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ] && command -v npm >/dev/null; then
  say "installing the browser walk's npm packages (npm ci in $BROWSER_DIR)"
  (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --silent) || say "npm ci failed: the browser walk will say what is missing"
fi

export PETITION_TEST_DATABASE_URL="$PG_URL"
export PETITION_TEST_REDIS_URL="$REDIS_URL"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
status=$?
if [ "${#SKIPPED[@]}" -gt 0 ]; then
  say "reminder: tests needing ${SKIPPED[*]} were skipped"
fi
exit $status
