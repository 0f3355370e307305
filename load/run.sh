#!/usr/bin/env bash
# Load test of the local server (release build, embedded store on disk, embedded
# realtime): wrk drives a mix of creates, connects, history reads, room lists and
# messages for a bounded time; then the store is checked for duplicated ids, and every
# accepted message is checked to have reached its channel's subscriber and to be kept in
# its room's history. Prints throughput, p50/p99 and error counts.
#
#   ./load/run.sh                         # 20 s, 32 connections, 50 pairs
#   LOAD_SECONDS=60 LOAD_CONNECTIONS=64 LOAD_PAIRS=200 ./load/run.sh
#   LOAD_PERF=/tmp/perf.data ./load/run.sh  # the server under `perf record` (a build
#                                           # with symbols), then where its time went
#
# Only loopback addresses are used. Needs what ./scripts/test.sh installs (e2e/ packages)
# and installs Debian's wrk when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${LOAD_SECONDS:-20}
connections=${LOAD_CONNECTIONS:-32}
pairs=${LOAD_PAIRS:-50}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'load: %s\n' "$*" >&2; exit 1; }

if ! command -v wrk >/dev/null; then
  say "installing Debian's wrk"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null || die "cannot install wrk"
fi
command -v node >/dev/null || die "node is missing: run ./scripts/test.sh once, or install nodejs"
[ -d e2e/node_modules/pusher-js ] || (cd e2e && npm ci --no-audit --no-fund --loglevel=error)
cargo build --release --locked -p local-server
server_bin=target/release/secret-rooms-local
if [ -n "${LOAD_PERF:-}" ]; then
  command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null || die "cannot install perf"
  CARGO_TARGET_DIR=target/profiling CARGO_PROFILE_RELEASE_STRIP=false \
    CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --locked -p local-server
  server_bin=target/profiling/release/secret-rooms-local
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# The rate limits are the one thing lifted: this measures the service, not the limiters
# (all creates come from 127.0.0.1, one address).
MESSAGE_RATE_LIMIT=1048575 MESSAGE_RATE_WINDOW_SECS=1 CONNECT_RATE_LIMIT=1048575 CREATE_RATE_LIMIT=0 RUST_LOG=info \
  ${LOAD_PERF:+perf record -F 499 -e cpu-clock --call-graph dwarf,16384 -o "$LOAD_PERF"} \
  "$server_bin" --data-dir "$work/data" --addr "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.1
done

say "making $pairs connected pairs and subscribing to their rooms"
(cd e2e && exec node load-subscriber.mjs "$base" "$pairs" "$work/pairs.lua" "$work/ready" "$work/received") &
subscriber=$!
pids+=("$subscriber")
for _ in $(seq 1 600); do
  [ -f "$work/ready" ] && break
  kill -0 "$subscriber" 2>/dev/null || die "the subscriber failed"
  sleep 0.1
done
[ -f "$work/ready" ] || die "the subscriber was not ready in 60 s"

say "wrk: $seconds s, $connections connections, 2 threads against $base"
LOAD_DATA="$work/pairs.lua" wrk -t2 -c"$connections" -d"${seconds}s" --timeout 10s -s load/mix.lua "$base" | tee "$work/wrk.txt"

sleep 2 # let the last events reach the subscriber
kill -TERM "$subscriber"
wait "$subscriber" || true
kill -TERM "$server"
wait "$server" || true

# The server's own log line per request is the count of accepted messages: wrk misses
# the answers still in flight when its time is up.
sent=$(grep -c '"route":"POST /rooms/{roomId}/message","status":204' "$work/server.log" || true)
received=$(cat "$work/received")
say "storage check"
target/release/secret-rooms-local verify --data-dir "$work/data" | tee "$work/verify.txt"
kept=$(sed -n 's/.*kept messages \([0-9]*\).*/\1/p' "$work/verify.txt")
echo "messages: $sent accepted by the service, $received delivered to subscribers, $kept kept in history"
[ "$sent" = "$received" ] || die "accepted messages were not all delivered"
[ "$sent" = "$kept" ] || die "accepted messages were not all kept in history"
grep -q "no problems found" "$work/verify.txt" || die "the store has problems"
echo "load: passed"
if [ -n "${LOAD_PERF:-}" ]; then
  echo "## where the server's time went (perf samples by thread, then by function)"
  # (head closes the pipe early: not a failure)
  { perf report -i "$LOAD_PERF" --no-children -g none --sort comm 2>/dev/null | grep -v '^#' | grep -v '^$' | head -5; } || true
  { perf report -i "$LOAD_PERF" --children -g none --sort sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40; } || true
fi
