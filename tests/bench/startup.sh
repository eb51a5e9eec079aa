#!/usr/bin/env bash
# Start-up and memory of the all-in-one suite on the embedded default: resident memory at rest
# on a fresh data directory, then the time from exec to ready (/readyz answers 200) when it
# starts again on the same, existing data directory, five times.
#
#   tests/bench/startup.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p petition-suite
DIR="$(mktemp -d)"
ADMIN=127.0.0.1:9594
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT

MS=0
start() { # sets PID and MS (milliseconds from exec to ready)
  local t0; t0=$(date +%s%N)
  target/release/petition-suite --dev --data-dir "$DIR/data" --listen 127.0.0.1:50191 \
    --admin-listen "$ADMIN" --log-format json >/dev/null 2>&1 &
  PID=$!
  until curl -sf "$ADMIN/readyz" >/dev/null; do sleep 0.005; done
  MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

start
sleep 2
echo "fresh data directory: ready in ${MS} ms; at rest $(awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' /proc/$PID/status)"
stop
for i in 1 2 3 4 5; do
  start; echo "existing data directory, start $i: ready in ${MS} ms"; stop
done
